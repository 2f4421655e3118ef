//! The Lambda target against a small local server that speaks the two Lambda API calls it
//! uses: GetFunction (`GET /2015-03-31/functions/{name}`) and Invoke
//! (`POST /2015-03-31/functions/{name}/invocations`). Credentials come from the
//! environment (`scripts/test.sh` exports test ones).
//!
//! The server's one function, `processor`, answers by what the event (or its records'
//! base64 data) contains: "poison" → an Unhandled function error; "throttle-me" → 429
//! TooManyRequestsException; "fail-500" → 500 ServiceException; "partial:SEQ" → a partial
//! batch response for SEQ; anything else → `{"received":<event bytes>}`. Once `down` is
//! set, it drops every connection without an answer.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use esm_sim::aws::AwsFactory;
use esm_sim::config::schema::FunctionConfig;
use esm_sim::function::lambda::LambdaFunction;
use esm_sim::function::{Function, Invocation, InvokeResult};
use esm_sim::model::{SequenceNumber, ShardId};
use esm_sim::policy::{classify, Outcome};
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use support::http_server::read_request;

const FUNCTION: &str = "processor";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:processor";

/// A running fake Lambda endpoint.
struct FakeLambda {
    url: String,
    invocations: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

async fn start_server() -> FakeLambda {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let invocations = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let (counter, is_down) = (invocations.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, counter.clone(), is_down.clone()));
        }
    });
    FakeLambda {
        url,
        invocations,
        down,
    }
}

/// One connection, HTTP/1.1 keep-alive, requests with a Content-Length body.
async fn serve(socket: TcpStream, invocations: Arc<AtomicUsize>, down: Arc<AtomicBool>) {
    let mut reader = BufReader::new(socket);
    while let Some(request) = read_request(&mut reader).await {
        if down.load(Ordering::SeqCst) {
            return;
        }
        let (status, extra, reply) =
            answer(&request.method, &request.path, &request.body, &invocations);
        let mut head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reply.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let socket = reader.get_mut();
        if socket.write_all(head.as_bytes()).await.is_err()
            || socket.write_all(reply.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// The function name of a path segment: percent-decoded, ARN or qualifier stripped.
fn function_name(segment: &str) -> String {
    let decoded = segment.replace("%3A", ":").replace("%3a", ":");
    let name = match decoded.split_once(":function:") {
        Some((_, rest)) => rest.to_string(),
        None => decoded,
    };
    name.split(':').next().unwrap_or("").to_string()
}

fn answer(
    method: &str,
    path: &str,
    body: &[u8],
    invocations: &AtomicUsize,
) -> (&'static str, Vec<(&'static str, String)>, String) {
    let path = path.split('?').next().unwrap_or("");
    let rest = path.strip_prefix("/2015-03-31/functions/").unwrap_or("");
    let (segment, invoke) = match rest.strip_suffix("/invocations") {
        Some(segment) => (segment, true),
        None => (rest.trim_end_matches('/'), false),
    };
    let name = function_name(segment);
    if name != FUNCTION {
        return (
            "404 Not Found",
            vec![("x-amzn-errortype", "ResourceNotFoundException".into())],
            serde_json::json!({"Type": "User", "Message": format!("Function not found: {segment}")})
                .to_string(),
        );
    }
    match (method, invoke) {
        ("GET", false) => (
            "200 OK",
            vec![],
            serde_json::json!({
                "Configuration": {
                    "FunctionName": FUNCTION,
                    "FunctionArn": ARN,
                    "Runtime": "nodejs22.x",
                    "Timeout": 3,
                    "Version": "$LATEST"
                },
                "Code": {"RepositoryType": "S3", "Location": "https://example.invalid/code"}
            })
            .to_string(),
        ),
        ("POST", true) => {
            let event = String::from_utf8_lossy(body);
            if event.contains("throttle-me") {
                return (
                    "429 Too Many Requests",
                    vec![("x-amzn-errortype", "TooManyRequestsException".into())],
                    r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#.into(),
                );
            }
            if event.contains("fail-500") {
                return (
                    "500 Internal Server Error",
                    vec![("x-amzn-errortype", "ServiceException".into())],
                    r#"{"Type":"Service","message":"boom"}"#.into(),
                );
            }
            invocations.fetch_add(1, Ordering::SeqCst);
            let version = ("x-amz-executed-version", "$LATEST".to_string());
            if event.contains("poison") || decoded_data(body).contains("poison") {
                return (
                    "200 OK",
                    vec![version, ("X-Amz-Function-Error", "Unhandled".into())],
                    r#"{"errorMessage":"poison","errorType":"Error"}"#.into(),
                );
            }
            if let Some(at) = event.find("partial:") {
                let seq: String = event[at + "partial:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return (
                    "200 OK",
                    vec![version],
                    serde_json::json!({"batchItemFailures": [{"itemIdentifier": seq}]}).to_string(),
                );
            }
            (
                "200 OK",
                vec![version],
                format!(r#"{{"received":{}}}"#, body.len()),
            )
        }
        _ => (
            "400 Bad Request",
            vec![("x-amzn-errortype", "InvalidRequestContentException".into())],
            r#"{"Type":"User","message":"unexpected request"}"#.into(),
        ),
    }
}

/// The Kinesis records' data of an event, base64-decoded and joined.
fn decoded_data(event: &[u8]) -> String {
    use base64::Engine;
    let Ok(event) = serde_json::from_slice::<Value>(event) else {
        return String::new();
    };
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    records
        .iter()
        .filter_map(|r| r["kinesis"]["data"].as_str())
        .filter_map(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .collect()
}

fn function_config(lambda_function: &str) -> FunctionConfig {
    let text = format!(
        "[[functions]]\nname = \"f\"\ntype = \"lambda\"\nlambda_function = \"{lambda_function}\"\n"
    );
    #[derive(serde::Deserialize)]
    struct Functions {
        functions: Vec<FunctionConfig>,
    }
    let mut parsed: Functions = toml::from_str(&text).expect("function config");
    parsed.functions.remove(0)
}

async fn connect(server: &FakeLambda, lambda_function: &str) -> anyhow::Result<LambdaFunction> {
    let factory = AwsFactory::new(Some(server.url.clone()), "us-east-1".into());
    LambdaFunction::connect(&factory, &function_config(lambda_function)).await
}

async fn invoke(target: &LambdaFunction, payload: &str) -> InvokeResult {
    let shard = ShardId("shardId-000000000000".into());
    target
        .invoke(Invocation {
            shard_id: &shard,
            payload: payload.as_bytes(),
            records: &[],
        })
        .await
}

#[tokio::test]
async fn a_successful_invoke_returns_the_functions_payload() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    let event = r#"{"Records":[{"n":1}]}"#;
    let InvokeResult::Response(response) = invoke(&target, event).await else {
        panic!("the invoke reached the function");
    };
    assert_eq!(response.status_code, 200);
    assert_eq!(response.function_error, None);
    assert!(!response.timed_out);
    assert_eq!(response.executed_version, "$LATEST");
    assert_eq!(
        response.body,
        format!(r#"{{"received":{}}}"#, event.len()).into_bytes()
    );
    assert_eq!(server.invocations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_function_error_is_reported_with_its_kind_and_body() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    let result = invoke(&target, r#"{"Records":[{"poison":true}]}"#).await;
    let InvokeResult::Response(response) = &result else {
        panic!("the invoke reached the function: {result:?}");
    };
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(response.status_code, 200);
    assert_eq!(response.executed_version, "$LATEST");
    assert_eq!(
        response.body,
        br#"{"errorMessage":"poison","errorType":"Error"}"#
    );
    assert!(matches!(
        classify(&result, true, &[]),
        Outcome::FunctionError {
            timed_out: false,
            ..
        }
    ));
}

#[tokio::test]
async fn a_partial_batch_response_is_a_partial_failure_with_report_batch_item_failures() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    let result = invoke(&target, r#"{"Records":[1,2,3],"note":"partial:2"}"#).await;
    let invoked: Vec<SequenceNumber> = ["1", "2", "3"]
        .iter()
        .map(|s| SequenceNumber(s.to_string()))
        .collect();
    match classify(&result, true, &invoked) {
        Outcome::PartialFailure {
            first_failed,
            response,
        } => {
            assert_eq!(first_failed, 1);
            assert_eq!(response.function_error, None);
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    assert_eq!(classify(&result, false, &invoked), Outcome::Success);
}

#[tokio::test]
async fn a_throttled_invoke_never_reached_the_function() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    let started = Instant::now();
    let result = invoke(&target, r#"{"Records":[],"x":"throttle-me"}"#).await;
    match &result {
        InvokeResult::NotReached(reason) => {
            assert!(reason.contains("TooManyRequestsException"), "{reason}")
        }
        other => panic!("expected NotReached, got {other:?}"),
    }
    assert_eq!(classify(&result, false, &[]).label(), "throttled");
    assert_eq!(server.invocations.load(Ordering::SeqCst), 0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SDK retries are off"
    );
}

#[tokio::test]
async fn a_service_error_or_a_dropped_connection_is_not_reached() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    match invoke(&target, r#"{"x":"fail-500"}"#).await {
        InvokeResult::NotReached(reason) => {
            assert!(reason.contains("ServiceException"), "{reason}")
        }
        other => panic!("expected NotReached, got {other:?}"),
    }
    server.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        invoke(&target, "{}").await,
        InvokeResult::NotReached(_)
    ));
    assert_eq!(server.invocations.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connect_fails_when_the_endpoint_is_unreachable() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let factory = AwsFactory::new(Some(dead), "us-east-1".into());
    let error = LambdaFunction::connect(&factory, &function_config(FUNCTION))
        .await
        .err()
        .expect("connect fails without a server");
    assert!(error.to_string().contains("GetFunction"), "{error}");
}

#[tokio::test]
async fn a_missing_function_is_an_error_at_connect() {
    let server = start_server().await;
    let error = connect(&server, "x").await.err().expect("x does not exist");
    assert_eq!(error.to_string(), "Function not found: x");
}

#[tokio::test]
async fn the_function_arn_is_the_one_lambda_reports() {
    let server = start_server().await;
    let target = connect(&server, FUNCTION).await.expect("connect");
    assert_eq!(target.function_arn(), ARN);
    let by_arn = connect(&server, ARN).await.expect("connect by ARN");
    assert_eq!(by_arn.function_arn(), ARN);
    let aliased = connect(&server, "processor:live")
        .await
        .expect("connect with a qualifier");
    assert_eq!(aliased.function_arn(), format!("{ARN}:live"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_retries_a_poison_record_once_and_writes_the_real_function_arn() {
    let server = start_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"state_dir = "{state}"

[aws]
region = "us-east-1"
endpoint_url = "{url}"

[[streams]]
name = "s"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 100.0
records = 3
keys = 1
poison_every = 2

[[functions]]
name = "remote"
type = "lambda"
lambda_function = "{FUNCTION}"

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "remote"
starting_position = "TRIM_HORIZON"
batch_size = 1
maximum_retry_attempts = 1
destination_config = {{ on_failure = {{ destination = "file://failures.jsonl" }} }}

[mappings.pace]
poll_interval_ms = 50
min_read_interval_ms = 20
retry_backoff_initial_ms = 20
retry_backoff_max_ms = 100
throttle_backoff_initial_ms = 20
throttle_backoff_max_ms = 100
discovery_interval_seconds = 1
shutdown_grace_seconds = 2
"#,
        state = dir.path().join("state").display(),
        url = server.url,
    );
    let daemon = support::daemon::Daemon::start(&text, dir.path(), None);
    let failures = dir.path().join("failures.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    // 3 records, the 2nd poison: 1 + 2 + 1 invocations.
    loop {
        let written = std::fs::read_to_string(&failures).unwrap_or_default();
        if !written.trim().is_empty() && server.invocations.load(Ordering::SeqCst) >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failure record within 30 s (invocations: {}, file: {written:?})",
            server.invocations.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.stop().await;
    let written = std::fs::read_to_string(&failures).expect("failures.jsonl");
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 1, "{written}");
    let record: Value = serde_json::from_str(lines[0]).expect("a JSON failure record");
    let context = &record["requestContext"];
    assert_eq!(context["condition"], "RetryAttemptsExhausted", "{record}");
    assert_eq!(context["approximateInvokeCount"], 2, "{record}");
    assert_eq!(context["functionArn"], ARN, "{record}");
    assert_eq!(
        record["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    assert_eq!(record["KinesisBatchInfo"]["batchSize"], 1, "{record}");
    assert_eq!(server.invocations.load(Ordering::SeqCst), 4);
}
