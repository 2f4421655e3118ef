//! `esm-sim simulate` stamps its log lines with the simulated clock: a run of minutes of
//! virtual time takes well under a second of wall time, and its log lines must read
//! alongside its invocation log and report, so they carry the virtual time of the run,
//! not the moment the machine ran it.

use std::time::Duration;

use assert_cmd::Command;
use chrono::{DateTime, Utc};

/// A world far from today: it starts on 2020-02-02 and has a poison record, so the run
/// logs at several moments (shard starts, a failed batch, its bisection).
const CONFIG: &str = r#"
[simulation]
start_time = "2020-02-02T02:02:02Z"

[[streams]]
name = "s"
kind = "kinesis"
shards = 2

[[streams.producers]]
rate_per_second = 10.0
start_seconds = 30.0
records = 200
poison_every = 60

[[functions]]
name = "fails-on-poison"

[[functions.rules]]
when_data_contains = "\"poison\":true"
action = "error"

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "fails-on-poison"
starting_position = "TRIM_HORIZON"
batch_size = 10
bisect_batch_on_function_error = true
maximum_retry_attempts = 1
destination_config = { on_failure = { destination = "file://failures.jsonl" } }
"#;

fn timestamp_of(line: &str) -> DateTime<Utc> {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("no timestamp at the start of {line:?}: {e}"))
        .with_timezone(&Utc)
}

#[test]
fn simulate_log_lines_carry_the_virtual_time_of_the_run_not_the_wall_clock() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("world.toml"), CONFIG).expect("the config is written");
    let output = Command::cargo_bin("esm-sim")
        .expect("the esm-sim binary")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("ESM_SIM_LOG", "info")
        .args([
            "simulate",
            "--config",
            "world.toml",
            "--report",
            "report.json",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("esm-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "simulate failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("the report"),
    )
    .expect("the report is JSON");
    let simulated_ms = (report["simulated_seconds"]
        .as_f64()
        .expect("simulated_seconds")
        * 1000.0) as i64;
    let start: DateTime<Utc> = "2020-02-02T02:02:02Z".parse().unwrap();
    let end = start + chrono::Duration::milliseconds(simulated_ms);

    // The config is read before the simulated world, and its clock, exist: that one line
    // carries the wall clock; every line after it the virtual time.
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().expect("a log line");
    assert!(first.contains("config loaded"), "{first}");
    let during_run: Vec<&str> = lines.collect();
    assert!(
        during_run.len() >= 3,
        "the run logs shard starts and the poison batch:\n{stderr}"
    );
    for line in &during_run {
        let at = timestamp_of(line);
        assert!(
            start <= at && at <= end,
            "{at} is outside the simulated period {start} .. {end}: {line}"
        );
    }
    let later = during_run.iter().map(|l| timestamp_of(l)).max().unwrap();
    assert!(
        later >= start + chrono::Duration::seconds(30),
        "lines logged after the producers start at +30 s carry that virtual time:\n{stderr}"
    );
}
