//! AWS credentials are never printed, at any log level: the binary runs at
//! `ESM_SIM_LOG=trace` against kinesis-local with a distinctive access key id, secret key
//! and session token (the AWS SDK logs the key id at TRACE), really logs the SDK's TRACE
//! lines, and none of the three appears in its stdout or stderr.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::stream::TestStream;

/// AKIA and 16 capitals or digits, as a real access key id; found nowhere else.
const KEY_ID: &str = "AKIAESMSIMREDACT7Q2X";
const SECRET_KEY: &str = "esmSimRedactionTestSecretKey/0123456789ab";
const SESSION_TOKEN: &str = "EsmSimRedactionTestSessionToken0123456789";

/// `esm-sim args...` in `dir` at TRACE, with the distinctive credentials and the local
/// servers' endpoints.
fn esm_sim(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esm-sim"));
    cmd.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("ESM_SIM_LOG", "trace")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(support::binary::local_servers());
    cmd
}

/// The run logged the SDK at TRACE (so the lines that used to hold the key id were
/// written), redacted them, and printed no credential anywhere.
fn assert_traced_and_redacted(what: &str, stdout: &str, stderr: &str) {
    for (name, secret) in [
        ("access key id", KEY_ID),
        ("secret access key", SECRET_KEY),
        ("session token", SESSION_TOKEN),
    ] {
        for (stream, text) in [("stdout", stdout), ("stderr", stderr)] {
            if let Some(at) = text.find(secret) {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!(
                    "{what}: the {name} is on {stream}:\n{}",
                    &text[line_start..line_end]
                );
            }
        }
    }
    let tail = || {
        stderr
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(" TRACE ") && l.contains("aws_sigv4")),
        "{what}: no TRACE line of the SDK's signing:\n{}",
        tail()
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("resolved identity") && l.contains("access_key_id: \"<redacted>\"")),
        "{what}: no redacted `resolved identity` line:\n{}",
        tail()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn load_at_trace_level_never_prints_the_access_key_id() {
    let kinesis = support::kinesis_client().await;
    let stream = TestStream::create(&kinesis, "esm-redact-load", 1).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = esm_sim(
        dir.path(),
        &[
            "load",
            "--stream",
            &stream.name,
            "--rate",
            "5",
            "--duration",
            "1",
        ],
    );
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("esm-sim runs"))
        .await
        .expect("the command ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "esm-sim load failed:\n{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert_traced_and_redacted("esm-sim load", &stdout, &stderr);
    assert!(
        stderr.contains("Kinesis.PutRecords"),
        "esm-sim load made no PutRecords call"
    );
}

#[test]
fn run_at_trace_level_never_prints_the_access_key_id() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let kinesis = runtime.block_on(async { support::kinesis_client().await });
    let stream = runtime.block_on(TestStream::create(&kinesis, "esm-redact-run", 1));
    runtime.block_on(support::put_record(
        &kinesis,
        &stream.arn,
        "k",
        b"{\"n\":1}",
    ));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = format!(
        "[admin]\nenabled = false\n\n[log]\nstats_interval_seconds = 1\n\n[[functions]]\nname = \"f\"\n\n[[mappings]]\nname = \"m\"\n\
         event_source_arn = \"{}\"\nfunction_name = \"f\"\nstarting_position = \"TRIM_HORIZON\"\n",
        stream.arn
    );
    std::fs::write(dir.path().join("config.toml"), config).expect("config written");

    let mut child = esm_sim(dir.path(), &["run", "--config", "config.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("esm-sim run starts");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (text, reader)
    };
    let (stdout, stdout_reader) = collect(Box::new(child.stdout.take().expect("stdout")));
    let (stderr, stderr_reader) = collect(Box::new(child.stderr.take().expect("stderr")));
    let text = |t: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&t.lock().unwrap()).into_owned();

    // Running: it has read the record (GetRecords) and the function has taken it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text(&stderr).contains("Kinesis.GetRecords")
        || !text(&stderr).contains("succeeded 1, discarded 0, invocations 1")
    {
        if Instant::now() > deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = text(&stderr);
            panic!(
                "esm-sim run did not read the stream and invoke:\n{}",
                &stderr[stderr.len().saturating_sub(3000)..]
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = stdout_reader.join();
    let _ = stderr_reader.join();
    let (stdout, stderr) = (text(&stdout), text(&stderr));
    assert!(
        status.success(),
        "esm-sim run exited with {status} after SIGINT:\n{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert_traced_and_redacted("esm-sim run", &stdout, &stderr);
}
