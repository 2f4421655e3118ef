//! `esm-sim redrive` end to end against the local servers: records in a Kinesis stream on
//! kinesis-local, failure records in an SQS queue on moto (made by the daemon itself, a
//! mapping whose function fails on poison records) or in a JSONL file (written with the
//! crate's own `FailureRecord` and the real sequence numbers), and the batches re-invoked
//! on an HTTP target served by the test (`support::http_server`) that fails one batch.
//! What the target received is checked record by record against what was put.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use esm_sim::event::{BatchInfo, Condition, FailureRecord};
use esm_sim::model::{SequenceNumber, ShardId, StreamKind};
use serde_json::Value;
use support::binary::{run_async, run_offline};
use support::daemon::Daemon;
use support::daemon_config;
use support::http_server::{Received, Reply, Server};

const SHARD: &str = "shardId-000000000000";

/// A record put into the stream: (sequence number, partition key, data).
type Put = (String, String, String);

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&support::sdk_config(&support::moto_endpoint()).await)
}

/// Puts `data` in order under one key (one shard); returns what was put.
async fn put_all(client: &aws_sdk_kinesis::Client, stream_arn: &str, data: &[String]) -> Vec<Put> {
    let mut puts = Vec::new();
    for text in data {
        let put = support::put_record(client, stream_arn, "user-1", text).await;
        puts.push((put.sequence_number, "user-1".to_string(), text.clone()));
    }
    puts
}

/// The target: answers 500 (a function error) when a record's data holds
/// `"redrive":"fail"`, else 200.
async fn target() -> Server {
    Server::start("/fn", |request: &Received| {
        let failing = records_of(request)
            .iter()
            .any(|(_, _, data)| data.contains(r#""redrive":"fail""#));
        if failing {
            Reply::new(500, r#"{"errorMessage":"boom"}"#)
        } else {
            Reply::new(200, "")
        }
    })
    .await
}

/// (sequence number, partition key, decoded data) of each record of an event; checks the
/// engine's fixed fields on the way.
fn records_of(request: &Received) -> Vec<Put> {
    let event: Value = serde_json::from_slice(&request.body).expect("the event is JSON");
    event["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|r| {
            let seq = r["kinesis"]["sequenceNumber"].as_str().expect("seq");
            assert_eq!(r["eventID"], format!("{SHARD}:{seq}"), "{r}");
            assert_eq!(r["eventSource"], "aws:kinesis");
            assert_eq!(r["awsRegion"], "us-east-1");
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["kinesis"]["data"].as_str().expect("data"))
                .expect("base64");
            (
                seq.to_string(),
                r["kinesis"]["partitionKey"]
                    .as_str()
                    .expect("key")
                    .to_string(),
                String::from_utf8(data).expect("utf-8"),
            )
        })
        .collect()
}

/// Sequence numbers compare as unsigned decimals.
fn le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

/// The records of `puts` in the batch of a failure record.
fn expected_records(puts: &[Put], info: &Value) -> Vec<Put> {
    let start = info["startSequenceNumber"].as_str().expect("start");
    let end = info["endSequenceNumber"].as_str().expect("end");
    puts.iter()
        .filter(|(seq, _, _)| le(start, seq) && le(seq, end))
        .cloned()
        .collect()
}

/// The bodies of the visible messages, read without hiding them (visibility 0), once
/// `count` distinct messages were seen or `seconds` passed.
async fn peek(client: &aws_sdk_sqs::Client, url: &str, count: usize, seconds: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < count && Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in out.messages() {
            seen.insert(
                message.message_id().unwrap_or_default().to_string(),
                message.body().unwrap_or_default().to_string(),
            );
        }
    }
    seen.into_values().collect()
}

fn batch_info(body: &str) -> Value {
    let record: Value = serde_json::from_str(body).expect("a failure record");
    record["KinesisBatchInfo"].clone()
}

fn daemon_config(dir: &Path, stream_arn: &str, queue_arn: &str) -> String {
    let settings = format!(
        "batch_size = 3\nmaximum_retry_attempts = 0\n{}",
        daemon_config::on_failure(queue_arn)
    );
    daemon_config::fails_on_poison(
        dir,
        &daemon_config::mapping("redrive-e2e", stream_arn, &settings),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_from_a_real_queue_reinvokes_exactly_each_batch_and_deletes_only_the_successes() {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("redrive"), 1).await;
    let sqs = sqs().await;
    let (queue_url, queue_arn) = support::create_queue(&sqs, "redrive").await;
    // Records 1 and 4 are poison: with BatchSize 3 they fail in two different batches.
    // Record 4 also makes the redrive target fail.
    let data: Vec<String> = (0..6)
        .map(|n| match n {
            1 => format!(r#"{{"n":{n},"poison":true}}"#),
            4 => format!(r#"{{"n":{n},"poison":true,"redrive":"fail"}}"#),
            _ => format!(r#"{{"n":{n}}}"#),
        })
        .collect();
    let puts = put_all(&kinesis, &stream_arn, &data).await;

    // The daemon discards both poison batches to the queue.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = daemon_config(dir.path(), &stream_arn, &queue_arn);
    let daemon = Daemon::start(&text, dir.path(), None);
    let bodies = peek(&sqs, &queue_url, 2, 30).await;
    daemon.stop().await;
    assert_eq!(bodies.len(), 2, "two failure records: {bodies:?}");
    let infos: Vec<Value> = bodies.iter().map(|b| batch_info(b)).collect();
    for info in &infos {
        assert_eq!(
            info["batchSize"].as_u64(),
            Some(expected_records(&puts, info).len() as u64),
            "{info}"
        );
    }

    let server = target().await;
    let out = run_async(
        dir.path(),
        vec![
            "redrive".into(),
            "--from".into(),
            queue_url.clone(),
            "--target".into(),
            server.url.clone(),
        ],
    )
    .await;
    assert!(
        !out.success,
        "one redrive failed: exit non-zero\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr
            .contains("1 of 2 failure record(s) were not redriven"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches(": success").count(), 1, "{}", out.stdout);
    assert_eq!(
        out.stdout.matches("failed: function_error").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("2 message(s): 1 redriven and deleted, 1 left in the queue"),
        "{}",
        out.stdout
    );

    // The target got each batch exactly, record by record.
    let received = server.received();
    assert_eq!(received.len(), 2, "one invocation per failure record");
    let mut redriven = BTreeSet::new();
    for request in &received {
        let got = records_of(request);
        let info = infos
            .iter()
            .find(|info| info["startSequenceNumber"].as_str() == got.first().map(|r| r.0.as_str()))
            .unwrap_or_else(|| panic!("no failure record starts at {got:?}"));
        assert_eq!(got, expected_records(&puts, info), "{info}");
        let event: Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(event["Records"][0]["eventSourceARN"], stream_arn);
        assert_eq!(
            event["Records"][0]["invokeIdentityArn"],
            "arn:aws:iam::123456789012:role/esm-sim-redrive-role"
        );
        redriven.insert(info["startSequenceNumber"].to_string());
    }
    assert_eq!(redriven.len(), 2, "both batches were redriven");

    // Only the failed batch (record 4's) is still in the queue, visible at once.
    let left = peek(&sqs, &queue_url, 2, 3).await;
    assert_eq!(left.len(), 1, "{left:?}");
    let kept = expected_records(&puts, &batch_info(&left[0]));
    assert!(
        kept.iter().any(|r| r.2.contains(r#""redrive":"fail""#)),
        "{kept:?}"
    );

    support::delete_stream(&kinesis, &stream_arn).await;
}

/// A failure record document (spec 3.3) for `puts[first..=last]`, claiming `batch_size`.
fn failure_line(
    stream_arn: &str,
    puts: &[Put],
    first: usize,
    last: usize,
    batch_size: usize,
) -> String {
    let record = FailureRecord {
        request_id: "00000000-0000-0000-0000-000000000000".into(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        condition: Condition::RetryAttemptsExhausted,
        approximate_invoke_count: 3,
        response: None,
        timestamp_ms: 1_700_000_000_000,
        batch: BatchInfo {
            kind: StreamKind::Kinesis,
            shard_id: ShardId(SHARD.into()),
            start_sequence_number: SequenceNumber(puts[first].0.clone()),
            end_sequence_number: SequenceNumber(puts[last].0.clone()),
            first_arrival_ms: 1_700_000_000_000,
            last_arrival_ms: 1_700_000_000_000,
            batch_size,
            stream_arn: stream_arn.into(),
        },
    };
    String::from_utf8(record.to_json()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_from_a_jsonl_file_reports_each_line_and_writes_the_failed_ones() {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("redrive-file"), 1).await;
    let data: Vec<String> = (0..5)
        .map(|n| match n {
            3 => format!(r#"{{"n":{n},"redrive":"fail"}}"#),
            _ => format!(r#"{{"n":{n}}}"#),
        })
        .collect();
    let puts = put_all(&kinesis, &stream_arn, &data).await;
    let sns_wrapped = serde_json::json!({
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:failures",
        "Message": failure_line(&stream_arn, &puts, 4, 4, 1),
    })
    .to_string();
    let lines = [
        failure_line(&stream_arn, &puts, 0, 1, 2), // 1: succeeds
        String::new(),                             // 2: blank, skipped
        "not a failure record".to_string(),        // 3: invalid
        failure_line(&stream_arn, &puts, 2, 3, 2), // 4: the target fails it
        sns_wrapped,                               // 5: an SNS notification, succeeds
        // 6: claims 4 records of which only 2 are in the range: as if 2 were trimmed.
        failure_line(&stream_arn, &puts, 0, 1, 4),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("failures.jsonl");
    let text = lines.join("\n") + "\n";
    std::fs::write(&file, &text).expect("write");
    let failed_out = dir.path().join("failed.jsonl");

    let server = target().await;
    let out = run_async(
        dir.path(),
        vec![
            "redrive".into(),
            "--from".into(),
            format!("file://{}", file.display()),
            "--target".into(),
            server.url.clone(),
            "--failed-out".into(),
            failed_out.display().to_string(),
        ],
    )
    .await;
    assert!(!out.success, "{}\n{}", out.stdout, out.stderr);
    let stdout = &out.stdout;
    assert!(
        stdout.contains("lines succeeded: [1, 5, 6]; lines failed: [3, 4]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 3: failed: not a failure record"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 4: ") && stdout.contains("failed: function_error"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "fetched 2 of 4 record(s); trimmed: 2 of 4 records no longer in the stream: success"
        ),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        text,
        "the file is never modified"
    );
    assert_eq!(
        std::fs::read_to_string(&failed_out).expect("failed-out"),
        format!("{}\n{}\n", lines[2], lines[3])
    );
    let got: Vec<Vec<Put>> = server.received().iter().map(records_of).collect();
    assert_eq!(
        got,
        vec![
            puts[0..=1].to_vec(),
            puts[2..=3].to_vec(),
            puts[4..=4].to_vec(),
            puts[0..=1].to_vec()
        ]
    );

    // Without a target the batch is printed (JSON lines on stdout, the report on stderr).
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, format!("{}\n", lines[0])).expect("write");
    let out = run_async(
        dir.path(),
        vec![
            "redrive".into(),
            "--from".into(),
            one.display().to_string(),
            "--json".into(),
        ],
    )
    .await;
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let printed: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let printed: Vec<(&str, &Value)> = printed
        .iter()
        .map(|v| (v["sequenceNumber"].as_str().unwrap_or(""), &v["data"]))
        .collect();
    assert_eq!(
        printed,
        vec![
            (puts[0].0.as_str(), &serde_json::json!({"n": 0})),
            (puts[1].0.as_str(), &serde_json::json!({"n": 1}))
        ]
    );
    assert!(out.stderr.contains("line 1: "), "{}", out.stderr);
    assert_eq!(server.received().len(), 4, "printing invokes nothing");

    // A function of a config file, built as `run` builds it.
    let config = dir.path().join("functions.toml");
    let function = format!(
        r#"[[streams]]
name = "orders"
kind = "kinesis"
shards = 1

[[functions]]
name = "from-config"
type = "http"
url = "{}"

[[mappings]]
name = "orders"
event_source_arn = "orders"
function_name = "from-config"
starting_position = "TRIM_HORIZON"
"#,
        server.url
    );
    std::fs::write(&config, function).expect("write");
    let from_config = |name: &str| -> Vec<String> {
        [
            "redrive",
            "--from",
            &one.display().to_string(),
            "--config",
            &config.display().to_string(),
            "--function",
            name,
        ]
        .map(String::from)
        .to_vec()
    };
    let out = run_async(dir.path(), from_config("from-config")).await;
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let received = server.received();
    assert_eq!(received.len(), 5);
    assert_eq!(records_of(&received[4]), puts[0..=1].to_vec());
    let event: Value = serde_json::from_slice(&received[4].body).expect("json");
    assert_eq!(
        event["Records"][0]["invokeIdentityArn"],
        "arn:aws:iam::123456789012:role/from-config-role"
    );
    let out = run_async(dir.path(), from_config("nope")).await;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("--function \"nope\": no such [[functions]] entry"),
        "{}",
        out.stderr
    );

    support::delete_stream(&kinesis, &stream_arn).await;
}

#[test]
fn redrive_refuses_bad_arguments_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 6] = [
        (
            &["redrive", "--from", "f.jsonl", "--target", "ftp://x"],
            "expected http://URL",
        ),
        (
            &["redrive", "--from", "f.jsonl", "--target", "command:"],
            "needs a program",
        ),
        (
            &[
                "redrive",
                "--from",
                "f.jsonl",
                "--target",
                "http://x",
                "--config",
                "c.toml",
                "--function",
                "f",
            ],
            "cannot be used with",
        ),
        (
            &["redrive", "--from", "f.jsonl", "--function", "f"],
            "--config",
        ),
        (&["redrive", "--from", "missing.jsonl"], "missing.jsonl"),
        (
            &["redrive", "--from", "arn:aws:sns:us-east-1:123456789012:t"],
            "must be an SQS queue",
        ),
    ];
    for (args, expected) in cases {
        let out = run_offline(dir.path(), args);
        assert!(!out.success, "{args:?} must fail");
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
    let out = run_offline(
        dir.path(),
        &["redrive", "--from", "https://q", "--failed-out", "x"],
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("--failed-out is for a JSONL --from"),
        "{}",
        out.stderr
    );
}
