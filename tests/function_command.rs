//! The command target with real child processes: the handler scripts of fixtures/handlers.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esm_sim::config::schema::{AwsIdentity, FunctionConfig};
use esm_sim::function::command::CommandFunction;
use esm_sim::function::tap::Observer;
use esm_sim::function::{Function, FunctionResponse, Invocation, InvokeResult};
use esm_sim::model::{RecordBody, SequenceNumber, ShardId, StreamRecord};
use esm_sim::policy::outcome::{classify, Outcome};
use serde_json::Value;

fn handlers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handlers")
}

fn function(argv: &[&str], timeout_seconds: u64) -> FunctionConfig {
    FunctionConfig {
        name: "cmd".into(),
        function_type: "command".into(),
        timeout_seconds,
        command: Some(argv.iter().map(|s| s.to_string()).collect()),
        working_dir: Some(handlers()),
        ..FunctionConfig::default()
    }
}

fn target(argv: &[&str], timeout_seconds: u64) -> CommandFunction {
    CommandFunction::new(&function(argv, timeout_seconds), &AwsIdentity::default())
        .unwrap_or_else(|e| panic!("new: {e:#}"))
}

async fn invoke(target: &CommandFunction, payload: &[u8]) -> FunctionResponse {
    let shard = ShardId("shardId-000000000000".into());
    let result = target
        .invoke(Invocation {
            shard_id: &shard,
            payload,
            records: &[],
        })
        .await;
    match result {
        InvokeResult::Response(response) => response,
        other => panic!("not a response: {other:?}"),
    }
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

#[tokio::test]
async fn a_successful_run_answers_with_stdout_and_receives_exactly_the_payload() {
    // 1 MB, more than a pipe holds: stdin is written while stdout is read.
    let mut payload = br#"{"Records":[{"data":""#.to_vec();
    payload.extend(std::iter::repeat_n(b'a', 1 << 20));
    payload.extend_from_slice(b"\xc3\xa9\"}]}");
    for argv in [&["python3", "echo.py"][..], &["cat"][..]] {
        let response = invoke(&target(argv, 10), &payload).await;
        assert_eq!(response.status_code, 200, "{argv:?}");
        assert_eq!(response.function_error, None, "{argv:?}");
        assert!(!response.timed_out);
        assert_eq!(response.executed_version, "$LATEST");
        assert!(response.body == payload, "{argv:?}: the body differs");
    }
}

#[tokio::test]
async fn a_non_zero_exit_is_a_function_error_with_the_last_stderr_line() {
    let response = invoke(&target(&["python3", "fail.py"], 10), b"{}").await;
    assert_eq!(response.status_code, 200);
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert!(!response.timed_out);
    assert_eq!(
        json(&response.body),
        serde_json::json!({"errorMessage": "boom: cannot process the batch", "errorType": "Runtime.ExitError"})
    );
}

#[tokio::test]
async fn a_failing_program_with_json_on_stdout_answers_with_it() {
    let t = target(
        &[
            "python3",
            "-c",
            "import sys; print('{\"errorMessage\":\"mine\",\"errorType\":\"E\"}'); sys.exit(3)",
        ],
        10,
    );
    let response = invoke(&t, b"{}").await;
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&response.body)["errorMessage"], "mine");
    // Silent and killed by a signal: the message says so.
    let t = target(&["sh", "-c", "kill -TERM $$"], 10);
    let response = invoke(&t, b"{}").await;
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&response.body)["errorMessage"], "signal: 15");
    let t = target(&["sh", "-c", "exit 7"], 10);
    assert_eq!(
        json(&invoke(&t, b"{}").await.body)["errorMessage"],
        "exit status 7"
    );
}

/// Gone, or a zombie waiting for a reaper that is not us (an orphan reparented to pid 1).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let t = target(&["python3", "sleepy.py", pids.to_str().expect("utf-8")], 1);
    let started = Instant::now();
    let response = invoke(&t, b"{}").await;
    let took = started.elapsed();
    assert!(response.timed_out);
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&response.body)["errorType"], "Sandbox.Timedout");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let text = std::fs::read_to_string(&pids).expect("the handler wrote its pids");
    let (grandchild, handler) = text.split_once(' ').expect("two pids");
    let grandchild: u32 = grandchild.parse().expect("pid");
    let handler: u32 = handler.parse().expect("pid");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !is_dead(grandchild) {
        assert!(
            Instant::now() < deadline,
            "the grandchild {grandchild} is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Our own child was waited for: not even a zombie is left.
    assert!(
        !Path::new(&format!("/proc/{handler}")).exists(),
        "the handler {handler} was not reaped"
    );
}

#[tokio::test]
async fn a_response_larger_than_lambda_allows_is_a_function_error() {
    let response = invoke(&target(&["python3", "big.py"], 20), b"{}").await;
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));
    assert!(!response.timed_out);
    assert_eq!(
        json(&response.body)["errorType"],
        "Function.ResponseSizeTooLarge"
    );
}

#[tokio::test]
async fn each_row_of_the_batch_response_table_is_classified_as_the_spec_says() {
    let invoked: Vec<SequenceNumber> = ["11", "12", "13"]
        .iter()
        .map(|s| SequenceNumber(s.to_string()))
        .collect();
    let success = [
        "",
        "\"\"",
        "null",
        "{}",
        "[]",
        r#"{"batchItemFailures":[]}"#,
        r#"{"batchItemFailures":null}"#,
    ];
    let partial = [
        r#"{"batchItemFailures":[{"itemIdentifier":"13"},{"itemIdentifier":"12"}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":"12"}]}"#,
    ];
    let invalid = [
        r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":12}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#,
        r#"{"foo":123}"#,
        r#"{"batchItemFailures":"oops"}"#,
        "not json",
    ];
    let invoked = &invoked;
    let run = |body: &'static str| async move {
        let response = invoke(&target(&["python3", "respond.py", body], 10), b"{}").await;
        classify(&InvokeResult::Response(response), true, invoked)
    };
    for body in success {
        assert_eq!(run(body).await, Outcome::Success, "{body:?}");
    }
    for body in partial {
        let outcome = run(body).await;
        assert!(
            matches!(outcome, Outcome::PartialFailure { first_failed: 1, ref response } if response.function_error.is_none()),
            "{body:?}: {outcome:?}"
        );
    }
    for body in invalid {
        let outcome = run(body).await;
        assert!(
            matches!(outcome, Outcome::InvalidResponse { ref response, .. } if response.function_error.is_none()),
            "{body:?}: {outcome:?}"
        );
    }
    // A function error, whatever the body.
    let response = invoke(&target(&["python3", "fail.py"], 10), b"{}").await;
    let outcome = classify(&InvokeResult::Response(response), true, invoked);
    assert!(
        matches!(outcome, Outcome::FunctionError { timed_out: false, ref response } if response.function_error.as_deref() == Some("Unhandled")),
        "{outcome:?}"
    );
}

#[test]
fn a_program_that_cannot_be_started_fails_at_start_naming_it() {
    let aws = AwsIdentity::default();
    let err = CommandFunction::new(&function(&["no-such-handler-xyz", "a"], 3), &aws)
        .err()
        .expect("a missing program is an error");
    let text = format!("{err:#}");
    assert!(
        text.contains("no-such-handler-xyz") && text.contains("\"cmd\""),
        "{text}"
    );
    let err = CommandFunction::new(&function(&["./missing.py"], 3), &aws)
        .err()
        .expect("a missing relative program is an error");
    let text = format!("{err:#}");
    assert!(
        text.contains("missing.py") && text.contains("fixtures/handlers"),
        "{text}"
    );
    // A file that is not executable.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("plain.py"), "print(1)\n").expect("write");
    let mut cfg = function(&["./plain.py"], 3);
    cfg.working_dir = Some(dir.path().to_path_buf());
    let err = CommandFunction::new(&cfg, &aws)
        .err()
        .expect("not executable");
    assert!(format!("{err:#}").contains("not executable"), "{err:#}");
    // A relative path with a working dir resolves against it, and runs.
    let t = target(&["./echo.py"], 3);
    assert_eq!(t.program(), handlers().join("./echo.py"));
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn stderr_lines_are_logged_with_the_shard() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let _ = invoke(&target(&["python3", "fail.py"], 10), b"{}").await;
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    for line in ["starting", "boom: cannot process the batch"] {
        assert!(
            logs.lines().any(|l| l.contains(line)
                && l.contains("shard=shardId-000000000000")
                && l.contains("function=\"cmd\"")),
            "{line:?} not logged in:\n{logs}"
        );
    }
}

/// The README's example: a simulated stream, the Python handler failing on the poison
/// record, bisect, one retry, a file destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_the_readme_handler_and_discards_the_poison_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"state_dir = "state"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 4.0
records = 4
poison_every = 3

[[functions]]
name = "orders-handler"
type = "command"
command = ["python3", "handler.py"]
working_dir = "{handlers}"
timeout_seconds = 10

[[mappings]]
name = "orders-to-handler"
event_source_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
function_name = "orders-handler"
starting_position = "TRIM_HORIZON"
batch_size = 10
bisect_batch_on_function_error = true
maximum_retry_attempts = 1
destination_config = {{ on_failure = {{ destination = "file://failures.jsonl" }} }}

[mappings.pace]
poll_interval_ms = 100
min_read_interval_ms = 50
retry_backoff_initial_ms = 20
retry_backoff_max_ms = 100
shutdown_grace_seconds = 2
"#,
        handlers = handlers().display()
    );
    // (sequence numbers, data, succeeded) of every invocation.
    type Seen = Arc<Mutex<Vec<(Vec<String>, Vec<String>, bool)>>>;
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let tap: Observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let ok = matches!(result, InvokeResult::Response(r) if r.function_error.is_none());
            let seqs = records
                .iter()
                .map(|r| r.sequence_number.0.clone())
                .collect();
            let data = records
                .iter()
                .map(|r| match &r.body {
                    RecordBody::Kinesis { data, .. } => String::from_utf8_lossy(data).into_owned(),
                    RecordBody::Dynamodb(_) => String::new(),
                })
                .collect();
            sink.lock().expect("lock").push((seqs, data, ok));
        },
    );
    let daemon = support::daemon::Daemon::start(&text, dir.path(), Some(tap));
    let failures = dir.path().join("failures.jsonl");
    let delivered = || {
        let seen = seen.lock().expect("lock");
        let mut ok: Vec<&String> = seen
            .iter()
            .filter(|s| s.2)
            .flat_map(|s| s.0.iter())
            .collect();
        ok.sort();
        ok.dedup();
        ok.len()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(failures.exists() && delivered() == 3) {
        assert!(
            Instant::now() < deadline,
            "timed out: {:?}",
            seen.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop().await;

    let text = std::fs::read_to_string(&failures).expect("failures.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let record = json(lines[0].as_bytes());
    eprintln!("failure record: {}", lines[0]);
    let seen = seen.lock().expect("lock");
    let (poison_seq, _) = seen
        .iter()
        .flat_map(|(seqs, data, _)| seqs.iter().zip(data))
        .find(|(_, data)| data.contains("\"poison\":true"))
        .expect("the poison record was invoked");
    let invoked_with_poison = seen.iter().filter(|s| s.0.contains(poison_seq)).count();
    let alone = seen.iter().filter(|s| s.0 == [poison_seq.clone()]).count();
    assert_eq!(alone, 2, "the poison record alone: first try and one retry");
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:orders-handler"
    );
    // Every invocation whose payload held the discarded record counts (spec 2.1): 2 when
    // the poison record arrived alone, more when it was bisected out of a larger batch.
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"],
        invoked_with_poison
    );
    assert_eq!(
        record["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], poison_seq.as_str());
    assert_eq!(info["endSequenceNumber"], poison_seq.as_str());
}
