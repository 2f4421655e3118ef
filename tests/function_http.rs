//! The HTTP target against a real HTTP/1.1 server on loopback (`support::http_server`,
//! every byte on the wire under the test's control): what each answer
//! means once classified, the request as the function receives it, the response bound,
//! and whole engine runs with `run_until` and a `file://` destination.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use esm_sim::config::schema::{AwsIdentity, FunctionConfig};
use esm_sim::function::http::HttpFunction;
use esm_sim::function::{Function, FunctionResponse, Invocation, InvokeResult};
use esm_sim::model::{RecordBody, SequenceNumber, ShardId, StreamRecord};
use esm_sim::policy::{classify, Outcome};
use serde_json::Value;
use support::daemon::Daemon;
use support::http_server::{Reply, Server};

mod support;

// ---------------------------------------------------------------------------------------
// Driving the target directly.

fn function(url: &str, timeout_seconds: u64) -> FunctionConfig {
    FunctionConfig {
        name: "http-fn".into(),
        function_type: "http".into(),
        url: Some(url.into()),
        timeout_seconds,
        ..Default::default()
    }
}

fn target(url: &str) -> HttpFunction {
    HttpFunction::new(&function(url, 3), &AwsIdentity::default()).expect("target")
}

fn seq(i: usize) -> String {
    format!("{:056}", 4960 + i)
}

fn records() -> Vec<StreamRecord> {
    (0..3)
        .map(|i| StreamRecord {
            sequence_number: SequenceNumber(seq(i)),
            approximate_arrival_ms: 0,
            body: RecordBody::Kinesis {
                partition_key: "k".into(),
                data: format!(r#"{{"n":{i}}}"#).into_bytes(),
            },
        })
        .collect()
}

const PAYLOAD: &[u8] = br#"{"Records":[{"kinesis":{"data":"eyJuIjowfQ=="}}]}"#;

async fn invoke(target: &HttpFunction) -> InvokeResult {
    let shard = ShardId("shardId-000000000000".into());
    let records = records();
    target
        .invoke(Invocation {
            shard_id: &shard,
            payload: PAYLOAD,
            records: &records,
        })
        .await
}

fn classified(result: &InvokeResult, report_batch_item_failures: bool) -> Outcome {
    let invoked: Vec<SequenceNumber> = records().into_iter().map(|r| r.sequence_number).collect();
    classify(result, report_batch_item_failures, &invoked)
}

fn response(result: InvokeResult) -> FunctionResponse {
    match result {
        InvokeResult::Response(r) => r,
        InvokeResult::NotReached(why) => panic!("not reached: {why}"),
    }
}

/// The outcome of one invocation whose answer is `reply`.
async fn outcome_of(reply: fn() -> Reply, report_batch_item_failures: bool) -> Outcome {
    let server = Server::start("/", move |_| reply()).await;
    classified(
        &invoke(&target(&server.url)).await,
        report_batch_item_failures,
    )
}

#[tokio::test]
async fn a_2xx_answer_is_the_functions_response_with_its_body() {
    for body in ["", "{}", r#"{"batchItemFailures":[]}"#] {
        let server = Server::start("/", move |_| Reply::new(200, body)).await;
        let result = invoke(&target(&server.url)).await;
        assert_eq!(classified(&result, true), Outcome::Success, "body {body:?}");
        assert_eq!(
            classified(&result, false),
            Outcome::Success,
            "body {body:?}"
        );
        assert_eq!(
            response(result),
            FunctionResponse {
                status_code: 200,
                function_error: None,
                timed_out: false,
                executed_version: "$LATEST".into(),
                body: body.as_bytes().to_vec(),
            }
        );
    }
    let created = Server::start("/", |_| Reply::new(202, "null")).await;
    let result = invoke(&target(&created.url)).await;
    assert_eq!(classified(&result, true), Outcome::Success);
}

#[tokio::test]
async fn the_function_receives_exactly_the_payload_with_the_configured_headers() {
    let server = Server::start("/2015-03-31/functions/function/invocations", |_| {
        Reply::new(200, "null")
    })
    .await;
    let mut cfg = function(&server.url, 3);
    cfg.headers.insert("x-api-key".into(), "s3cret".into());
    cfg.headers.insert("X-Tenant".into(), "blue".into());
    let target = HttpFunction::new(&cfg, &AwsIdentity::default()).expect("target");
    for _ in 0..3 {
        assert_eq!(classified(&invoke(&target).await, false), Outcome::Success);
    }
    let received = server.received();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2015-03-31/functions/function/invocations");
        assert_eq!(request.body, PAYLOAD);
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("x-api-key"), Some("s3cret"));
        assert_eq!(request.header("x-tenant"), Some("blue"));
        let length = PAYLOAD.len().to_string();
        assert_eq!(request.header("content-length"), Some(length.as_str()));
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "one pooled connection is reused"
    );
    assert_eq!(
        target.function_arn(),
        "arn:aws:lambda:us-east-1:123456789012:function:http-fn"
    );
}

#[tokio::test]
async fn x_amz_function_error_makes_a_function_error_with_its_value() {
    for value in ["Unhandled", "Handled"] {
        let server = Server::start("/", move |_| {
            Reply::new(200, r#"{"errorMessage":"boom","errorType":"Error"}"#)
                .header("X-Amz-Function-Error", value)
        })
        .await;
        let result = invoke(&target(&server.url)).await;
        // A function error wins over a body that would be a valid batch response.
        match classified(&result, true) {
            Outcome::FunctionError {
                response,
                timed_out: false,
            } => {
                assert_eq!(response.function_error.as_deref(), Some(value));
                assert_eq!(response.status_code, 200);
                assert_eq!(response.executed_version, "$LATEST");
            }
            other => panic!("{value}: {other:?}"),
        }
        assert_eq!(
            response(result).body,
            br#"{"errorMessage":"boom","errorType":"Error"}"#
        );
    }
    let empty = outcome_of(
        || Reply::new(200, r#"{"batchItemFailures":[]}"#).header("X-Amz-Function-Error", ""),
        true,
    )
    .await;
    assert!(
        matches!(empty, Outcome::FunctionError { ref response, .. } if response.function_error.as_deref() == Some("Unhandled")),
        "{empty:?}"
    );
}

#[tokio::test]
async fn a_5xx_or_another_4xx_is_a_function_error() {
    for reply in [
        (|| Reply::new(500, "oops")) as fn() -> Reply,
        || Reply::new(502, ""),
        || Reply::new(404, "not found"),
        || Reply::new(400, "{}"),
        || Reply::new(301, "").header("Location", "/elsewhere"),
    ] {
        let outcome = outcome_of(reply, true).await;
        assert!(
            matches!(outcome, Outcome::FunctionError { ref response, timed_out: false }
                if response.function_error.as_deref() == Some("Unhandled") && response.status_code == 200),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_function_slower_than_its_timeout_times_out() {
    let server = Server::start("/", |_| {
        let mut reply = Reply::new(200, "{}");
        reply.delay = Duration::from_secs(3);
        reply
    })
    .await;
    let target = HttpFunction::new(&function(&server.url, 1), &AwsIdentity::default()).unwrap();
    let started = Instant::now();
    let result = invoke(&target).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(990) && took < Duration::from_millis(2_000),
        "{took:?}"
    );
    assert!(matches!(
        classified(&result, true),
        Outcome::FunctionError {
            timed_out: true,
            ..
        }
    ));
    let r = response(result);
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert!(r.timed_out);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert_eq!(body["errorMessage"], "Task timed out after 1.00 seconds");
    assert_eq!(
        classified(&InvokeResult::Response(r), false).label(),
        "timeout"
    );
}

#[tokio::test]
async fn connection_refused_and_429_never_reach_the_function() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let refused = invoke(&target(&format!("http://127.0.0.1:{port}/"))).await;
    assert!(
        matches!(refused, InvokeResult::NotReached(ref why) if why.contains("connect")),
        "{refused:?}"
    );
    assert_eq!(classified(&refused, true).label(), "throttled");

    let throttled = outcome_of(|| Reply::new(429, r#"{"message":"Rate Exceeded."}"#), true).await;
    assert!(
        matches!(throttled, Outcome::NotReached { ref reason } if reason.contains("429")),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn an_unknown_host_never_reaches_the_function() {
    let result = invoke(&target("http://no-such-host.invalid/")).await;
    assert!(matches!(result, InvokeResult::NotReached(_)), "{result:?}");
}

/// Spec 2.4, row by row, as the body of a 200 with ReportBatchItemFailures on.
#[tokio::test]
async fn every_row_of_the_batch_response_table() {
    let id = |i: usize| format!(r#"{{"itemIdentifier":"{}"}}"#, seq(i));
    let success = [
        String::new(),
        r#""""#.to_string(),
        "null".to_string(),
        "{}".to_string(),
        "[]".to_string(),
        r#"{"batchItemFailures":[]}"#.to_string(),
        r#"{"batchItemFailures":null}"#.to_string(),
    ];
    let partial = [
        (
            format!(r#"{{"batchItemFailures":[{},{}]}}"#, id(2), id(1)),
            1,
        ),
        (format!(r#"{{"batchItemFailures":[{}]}}"#, id(0)), 0),
        (format!(r#"{{"batchItemFailures":[{}]}}"#, id(2)), 2),
    ];
    let invalid = [
        r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#.to_string(),
        r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#.to_string(),
        r#"{"batchItemFailures":[{"itemIdentifier":4960}]}"#.to_string(),
        format!(
            r#"{{"batchItemFailures":[{},{{"itemIdentifier":"{}"}}]}}"#,
            id(1),
            seq(99)
        ),
        r#"{"foo":123}"#.to_string(),
        r#"{"batchItemFailures":"oops"}"#.to_string(),
        r#"{"batchItemFailures":{"itemIdentifier":"1"}}"#.to_string(),
        "not json".to_string(),
    ];
    let body_server = |body: String| async move {
        let server = Server::start("/", move |_| Reply::new(200, body.clone())).await;
        invoke(&target(&server.url)).await
    };
    for body in success {
        let result = body_server(body.clone()).await;
        assert_eq!(classified(&result, true), Outcome::Success, "{body:?}");
    }
    for (body, lowest) in partial {
        let result = body_server(body.clone()).await;
        match classified(&result, true) {
            Outcome::PartialFailure {
                first_failed,
                response,
            } => {
                assert_eq!(first_failed, lowest, "{body}");
                assert_eq!(response.function_error, None);
            }
            other => panic!("{body}: {other:?}"),
        }
        // Without the option, the body is ignored.
        assert_eq!(classified(&result, false), Outcome::Success);
    }
    for body in invalid {
        let result = body_server(body.clone()).await;
        assert!(
            matches!(classified(&result, true), Outcome::InvalidResponse { ref response, .. } if response.function_error.is_none()),
            "{body}: {:?}",
            classified(&result, true)
        );
        assert_eq!(classified(&result, false), Outcome::Success, "{body}");
    }
}

const LIMIT: usize = 6_291_556;

fn too_large() -> Vec<u8> {
    br#"{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#.to_vec()
}

#[tokio::test]
async fn a_body_over_6_mb_is_a_function_error_with_lambdas_message() {
    for chunked in [false, true] {
        let server = Server::start("/", move |_| {
            let mut reply = Reply::new(200, vec![b' '; 7 * 1024 * 1024]);
            reply.chunked = chunked;
            reply
        })
        .await;
        let result = invoke(&target(&server.url)).await;
        assert!(
            matches!(
                classified(&result, true),
                Outcome::FunctionError {
                    timed_out: false,
                    ..
                }
            ),
            "chunked {chunked}"
        );
        let r = response(result);
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(r.body, too_large(), "chunked {chunked}");
    }
    // One byte over, streamed: still refused; exactly at the limit: the response.
    for (size, over) in [(LIMIT + 1, true), (LIMIT, false)] {
        let server = Server::start("/", move |_| {
            let mut reply = Reply::new(200, vec![b' '; size]);
            reply.chunked = true;
            reply
        })
        .await;
        let r = response(invoke(&target(&server.url)).await);
        if over {
            assert_eq!(r.body, too_large());
        } else {
            assert_eq!(r.function_error, None);
            assert_eq!(r.body.len(), LIMIT);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Whole engine runs: a simulated Kinesis stream, the http function, a file destination.

/// A function that fails (X-Amz-Function-Error, or a partial batch response) on records
/// whose data contains "poison"; it records every record it saw with the answer given.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

async fn poison_server(partial: bool) -> (Server, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let server = Server::start(
        "/2015-03-31/functions/function/invocations",
        move |request| {
            let event: Value = serde_json::from_slice(&request.body).expect("event JSON");
            let mut failed = Vec::new();
            for record in event["Records"].as_array().expect("Records") {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(record["kinesis"]["data"].as_str().expect("data"))
                    .expect("base64");
                let poison = String::from_utf8_lossy(&data).contains("poison");
                let sequence = record["kinesis"]["sequenceNumber"]
                    .as_str()
                    .expect("sequenceNumber")
                    .to_string();
                sink.lock().unwrap().push((sequence.clone(), poison));
                if poison {
                    failed.push(sequence);
                }
            }
            if failed.is_empty() {
                Reply::new(200, "null")
            } else if partial {
                let items: Vec<Value> = failed
                    .iter()
                    .map(|s| serde_json::json!({"itemIdentifier": s}))
                    .collect();
                Reply::new(
                    200,
                    serde_json::json!({"batchItemFailures": items}).to_string(),
                )
            } else {
                Reply::new(500, r#"{"errorMessage":"poison","errorType":"Error"}"#)
                    .header("X-Amz-Function-Error", "Unhandled")
            }
        },
    )
    .await;
    (server, seen)
}

fn engine_config(dir: &Path, url: &str, extra: &str) -> String {
    format!(
        r#"state_dir = "{state}"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 50.0
records = 6
poison_every = 3

[[functions]]
name = "http-poison"
type = "http"
url = "{url}"
timeout_seconds = 2
headers = {{ x-api-key = "k" }}

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "http-poison"
starting_position = "TRIM_HORIZON"
batch_size = 1
maximum_retry_attempts = 1
destination_config = {{ on_failure = {{ destination = "file://failures.jsonl" }} }}
{extra}
[mappings.pace]
poll_interval_ms = 50
min_read_interval_ms = 20
retry_backoff_initial_ms = 20
retry_backoff_max_ms = 50
throttle_backoff_initial_ms = 20
throttle_backoff_max_ms = 50
discovery_interval_seconds = 1
shutdown_grace_seconds = 1
"#,
        state = dir.join("state").display()
    )
}

/// Runs the daemon until both poison records have a failure record and every record was
/// seen, then stops it; returns the failure records.
async fn run_engine(server: &Server, seen: &Seen, extra: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = engine_config(dir.path(), &server.url, extra);
    let failures_path = dir.path().join("failures.jsonl");
    let daemon = Daemon::start(&text, dir.path(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let distinct: std::collections::BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        if support::jsonl(&failures_path).len() >= 2 && distinct.len() >= 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: seen {:?}, failures {:?}",
            seen.lock().unwrap(),
            support::jsonl(&failures_path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop().await;
    support::jsonl(&failures_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_sends_a_poison_record_to_the_destination_after_its_retries() {
    let (server, seen) = poison_server(false).await;
    let failures = run_engine(&server, &seen, "").await;
    assert_eq!(failures.len(), 2, "{failures:#?}");
    let seen = seen.lock().unwrap().clone();
    for failure in &failures {
        let context = &failure["requestContext"];
        assert_eq!(context["condition"], "RetryAttemptsExhausted");
        assert_eq!(context["approximateInvokeCount"], 2);
        assert_eq!(
            context["functionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:http-poison"
        );
        assert_eq!(
            failure["responseContext"],
            serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        let info = &failure["KinesisBatchInfo"];
        assert_eq!(info["batchSize"], 1);
        let sequence = info["startSequenceNumber"].as_str().unwrap();
        let attempts: Vec<bool> = seen
            .iter()
            .filter(|(s, _)| s == sequence)
            .map(|(_, poison)| *poison)
            .collect();
        assert_eq!(attempts, vec![true, true], "the poison record {sequence}");
    }
    // Every clean record was delivered once and succeeded.
    let clean = seen.iter().filter(|(_, poison)| !poison).count();
    assert_eq!(clean, 4, "{seen:?}");
    let received = server.received();
    assert!(received.iter().all(|r| r.header("x-api-key") == Some("k")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_response_over_http_fails_without_a_function_error() {
    let (server, seen) = poison_server(true).await;
    let failures = run_engine(
        &server,
        &seen,
        "function_response_types = [\"ReportBatchItemFailures\"]\n",
    )
    .await;
    assert_eq!(failures.len(), 2, "{failures:#?}");
    for failure in &failures {
        assert_eq!(
            failure["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
        assert_eq!(
            failure["responseContext"],
            serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": null})
        );
    }
}
