//! End-to-end tests of the `esm-sim` binary: `validate`, `simulate` and `run` as a user
//! runs them, each in its own temporary working directory (the embedded default config
//! writes `.esm-sim/` relative to the working directory).
//!
//! The `run` test starts the daemon as a child process on `fixtures/run/fast.toml`, stops it
//! with SIGINT, restarts it, stops it with SIGTERM, and checks what reached the on-failure
//! destination against `simulate` on the same world: the simulated world is a function of
//! the config and the seed, so `simulate` names every poison record the daemon must have
//! discarded, shard by shard, in order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

const MAPPING: &str = "orders-to-processor";
/// No test command may take longer than this (a `run` that failed to refuse a bad config
/// would otherwise run forever).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
const FAST_SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];

// ---------------------------------------------------------------------------------------
// Helpers

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's config.toml: the text the binary embeds as its default.
fn default_config_text() -> String {
    let path = manifest_dir().join("config.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies `fixtures/run/<name>` into `dir` and returns its name there.
fn copy_fixture(name: &'static str, dir: &Path) -> &'static str {
    let from = manifest_dir().join("fixtures/run").join(name);
    std::fs::copy(&from, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    name
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// `esm-sim` with `dir` as its working directory, plain (uncoloured) logs at info level.
fn esm_sim(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("esm-sim").expect("the esm-sim binary");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ESM_SIM_LOG", "info")
        .timeout(COMMAND_TIMEOUT);
    cmd
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

fn run_cmd(dir: &Path, args: &[&str]) -> Output {
    let output = esm_sim(dir).args(args).output().expect("esm-sim runs");
    Output {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: strip_ansi(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// Removes ANSI escape sequences (CSI: ESC '[' ... final byte), in case logs are coloured.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The JSON lines of a file; empty when it does not exist yet. A last line still being
/// written (no newline yet) is left out.
fn jsonl(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {value}"))
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}

/// Sequence numbers compare as unsigned decimals of any length (spec 2.2).
fn seq_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn has_line(text: &str, wanted: &str) -> bool {
    text.lines().any(|l| l == wanted)
}

fn wait_until(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `esm-sim run`. Its stderr is collected by a thread; dropping the guard kills
/// the child if it is still running, whatever path the test leaves by.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Daemon {
    fn start(dir: &Path, config: &str) -> Daemon {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_esm-sim"))
            .args(["run", "--config", config])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("ESM_SIM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("esm-sim run starts");
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Daemon {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Stderr so far, without colour codes.
    fn stderr(&self) -> String {
        strip_ansi(&self.stderr.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sends a signal (`INT`, `TERM`) to this child only.
    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends the signal, requires exit status 0 within 10 s, and returns the whole stderr.
    fn stop_with(mut self, signal: &str) -> String {
        self.signal(signal);
        let status = self.wait_for_exit(Duration::from_secs(10));
        if let Some(reader) = self.reader.take() {
            if status.is_some() {
                let _ = reader.join();
            }
        }
        let stderr = self.stderr();
        match status {
            Some(status) => assert!(
                status.success(),
                "esm-sim run exited with {status} after SIG{signal}\n{stderr}"
            ),
            None => panic!("esm-sim run did not exit within 10 s of SIG{signal}\n{stderr}"),
        }
        stderr
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The `shard started` lines of a daemon's stderr: shard id → logged position.
fn shard_starts(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter(|l| l.contains("shard started"))
        .map(|l| {
            let field = |name: &str| {
                let start =
                    l.find(name).unwrap_or_else(|| panic!("no {name} in: {l}")) + name.len();
                l[start..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            (field(" shard="), field(" position="))
        })
        .collect()
}

/// `AfterSequence(SequenceNumber("49…"))` → `49…`.
fn after_sequence(position: &str) -> Option<&str> {
    position
        .strip_prefix("AfterSequence(SequenceNumber(\"")?
        .strip_suffix("\"))")
}

/// Start sequence numbers of failure records by shard, sorted.
fn discarded_by_shard(failures: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in failures {
        let info = &f["KinesisBatchInfo"];
        out.entry(str_of(info, "shardId").to_string())
            .or_default()
            .push(str_of(info, "startSequenceNumber").to_string());
    }
    for seqs in out.values_mut() {
        seqs.sort_by(|a, b| seq_cmp(a, b));
    }
    out
}

/// A failure record of a single poison record that used up its (zero) retries.
fn assert_single_record_retry_exhausted(failure: &Value) {
    assert_eq!(
        failure["requestContext"]["condition"], "RetryAttemptsExhausted",
        "{failure}"
    );
    assert_eq!(
        failure["responseContext"]["functionError"], "Unhandled",
        "{failure}"
    );
    let info = &failure["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{failure}");
    assert_eq!(
        info["startSequenceNumber"], info["endSequenceNumber"],
        "{failure}"
    );
    assert_eq!(
        info["streamArn"], "arn:aws:kinesis:us-east-1:123456789012:stream/fast",
        "{failure}"
    );
    assert!(FAST_SHARDS.contains(&str_of(info, "shardId")), "{failure}");
}

// ---------------------------------------------------------------------------------------
// validate

#[test]
fn validate_without_a_config_file_uses_the_embedded_default_and_says_the_config_is_valid() {
    let dir = tempdir();
    let out = run_cmd(dir.path(), &["validate"]);
    assert!(out.success, "validate failed:\n{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("mapping \"{MAPPING}\"")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("config is valid\n"), "{}", out.stdout);
    assert!(
        out.stderr.contains("embedded default"),
        "stderr does not say the embedded default is used:\n{}",
        out.stderr
    );
    assert!(
        !dir.path().join(".esm-sim").exists(),
        "validate created a state directory"
    );
}

/// Runs validate, simulate and run on a broken config and requires each to refuse it before
/// doing anything, with `expected` as one line of stderr.
fn assert_every_command_refuses(
    dir: &Path,
    config_args: &[&str],
    expected: impl Fn(&str) -> bool,
    what: &str,
) {
    for command in ["validate", "simulate", "run"] {
        let mut args = vec![command];
        args.extend_from_slice(config_args);
        let out = run_cmd(dir, &args);
        assert!(
            !out.success,
            "`esm-sim {}` accepted a config with {what}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        assert!(
            expected(&out.stderr),
            "`esm-sim {}`: stderr does not name {what}:\n{}",
            args.join(" "),
            out.stderr
        );
        assert_eq!(
            out.stdout,
            "",
            "`esm-sim {}` printed to stdout",
            args.join(" ")
        );
        for started in ["checkpoint store open", "shard started"] {
            assert!(
                !out.stderr.contains(started),
                "`esm-sim {}` started work: {started}\n{}",
                args.join(" "),
                out.stderr
            );
        }
        assert!(
            !dir.join(".esm-sim").exists(),
            "`esm-sim {}` created .esm-sim before refusing the config",
            args.join(" ")
        );
    }
}

#[test]
fn a_maximum_record_age_of_30_seconds_is_refused_by_validate_simulate_and_run_naming_mapping_field_value_and_range(
) {
    let dir = tempdir();
    let text = default_config_text();
    let broken = text.replace(
        "\nmaximum_record_age_in_seconds = 3600\n",
        "\nmaximum_record_age_in_seconds = 30\n",
    );
    assert_ne!(
        broken, text,
        "config.toml no longer sets maximum_record_age_in_seconds = 3600"
    );
    // As ./config.toml, which every command picks up without --config.
    std::fs::write(dir.path().join("config.toml"), broken).unwrap();
    let wanted = format!(
        "mapping \"{MAPPING}\": maximum_record_age_in_seconds = 30: must be -1 or 60..=604800"
    );
    assert_every_command_refuses(dir.path(), &[], |e| has_line(e, &wanted), &wanted);
}

#[test]
fn a_batch_size_of_zero_is_refused_by_validate_simulate_and_run_naming_mapping_field_value_and_range(
) {
    let dir = tempdir();
    let text = default_config_text();
    let broken = text.replace("\nbatch_size = 50\n", "\nbatch_size = 0\n");
    assert_ne!(broken, text, "config.toml no longer sets batch_size = 50");
    std::fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let wanted = format!("mapping \"{MAPPING}\": batch_size = 0: must be 1..=10000");
    assert_every_command_refuses(
        dir.path(),
        &["--config", "broken.toml"],
        |e| has_line(e, &wanted),
        &wanted,
    );
}

#[test]
fn an_unknown_mapping_key_is_refused_naming_the_key_and_its_line() {
    let dir = tempdir();
    let text = default_config_text();
    let broken = text.replace(
        "\nbatch_size = 50\n",
        "\nbatch_size = 50\nbatch_sizee = 3\n",
    );
    assert_ne!(broken, text, "config.toml no longer sets batch_size = 50");
    let line = broken
        .lines()
        .position(|l| l == "batch_sizee = 3")
        .expect("the inserted line")
        + 1;
    std::fs::write(dir.path().join("typo.toml"), broken).unwrap();
    let wanted = format!(
        "typo.toml:{line}:1: mapping \"{MAPPING}\": batch_sizee: unknown key (did you mean batch_size?); allowed: name, "
    );
    let names_key = |stderr: &str| stderr.lines().any(|l| l.starts_with(&wanted));
    assert_every_command_refuses(
        dir.path(),
        &["--config", "typo.toml"],
        names_key,
        "the unknown key batch_sizee and its line",
    );
}

#[test]
fn validate_names_the_file_position_mapping_key_value_and_expected_type_of_a_wrongly_typed_value() {
    let dir = tempdir();
    let text = default_config_text();
    let broken = text.replace("\nbatch_size = 50\n", "\nbatch_size = \"ten\"\n");
    assert_ne!(broken, text, "config.toml no longer sets batch_size = 50");
    let line = broken
        .lines()
        .position(|l| l == "batch_size = \"ten\"")
        .expect("the edited line")
        + 1;
    std::fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let output = esm_sim(dir.path())
        .args(["validate", "--config", "broken.toml"])
        .output()
        .expect("esm-sim runs");
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let wanted = format!(
        "broken.toml:{line}:14: mapping \"{MAPPING}\": batch_size = \"ten\": expected an integer"
    );
    assert!(
        stderr.ends_with(&format!("error: invalid config:\n{wanted}\n")),
        "stderr:\n{stderr}"
    );
    // simulate and run refuse it the same way, before doing anything.
    assert_every_command_refuses(
        dir.path(),
        &["--config", "broken.toml"],
        |e| has_line(e, &wanted),
        &wanted,
    );
}

// ---------------------------------------------------------------------------------------
// simulate

const REPORT_KEYS: [&str; 10] = [
    "records_produced",
    "records_succeeded",
    "records_filtered",
    "records_discarded",
    "records_trimmed",
    "records_pending",
    "invocations",
    "destination_records",
    "simulated_seconds",
    "wall_seconds",
];
const SHARD_KEYS: [&str; 7] = [
    "shard_id",
    "parent_shard_ids",
    "state",
    "checkpoint",
    "records_succeeded",
    "records_discarded",
    "invocations",
];
const LOG_KEYS: [&str; 8] = [
    "t_ms",
    "shard_id",
    "first_sequence_number",
    "last_sequence_number",
    "records",
    "payload_bytes",
    "attempt",
    "outcome",
];

/// `simulate --report report.json --invocation-log invocations.jsonl [extra]` in `dir`.
fn simulate_to_files(dir: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec![
        "simulate",
        "--report",
        "report.json",
        "--invocation-log",
        "invocations.jsonl",
    ];
    args.extend_from_slice(extra);
    let out = run_cmd(dir, &args);
    assert!(out.success, "simulate failed:\n{}", out.stderr);
    let log = std::fs::read_to_string(dir.join("invocations.jsonl")).expect("the invocation log");
    (read_json(&dir.join("report.json")), log)
}

fn without_wall_seconds(mut report: Value) -> Value {
    report
        .as_object_mut()
        .expect("report object")
        .remove("wall_seconds")
        .expect("wall_seconds");
    report
}

#[test]
fn simulate_writes_a_report_and_an_invocation_log_that_account_for_every_record() {
    let dir = tempdir();
    let out = run_cmd(
        dir.path(),
        &[
            "simulate",
            "--report",
            "report.json",
            "--invocation-log",
            "invocations.jsonl",
        ],
    );
    assert!(out.success, "simulate failed:\n{}", out.stderr);
    let report = read_json(&dir.path().join("report.json"));
    for key in REPORT_KEYS {
        assert!(report.get(key).is_some(), "report has no {key}: {report}");
    }
    let produced = u64_of(&report, "records_produced");
    assert!(produced > 0, "nothing produced: {report}");
    assert_eq!(u64_of(&report, "records_pending"), 0, "{report}");
    assert_eq!(
        produced,
        u64_of(&report, "records_succeeded")
            + u64_of(&report, "records_filtered")
            + u64_of(&report, "records_discarded")
            + u64_of(&report, "records_trimmed"),
        "produced != succeeded + filtered + discarded + trimmed: {report}"
    );
    assert!(
        u64_of(&report, "records_discarded") > 0,
        "the default's poison records were not discarded: {report}"
    );
    assert!(
        out.stdout
            .contains(&format!("records: produced {produced}, ")),
        "the summary on stdout does not match the report:\n{}",
        out.stdout
    );

    let shards = report["shards"].as_array().expect("shards is a list");
    assert!(!shards.is_empty(), "no shards in {report}");
    for shard in shards {
        for key in SHARD_KEYS {
            assert!(shard.get(key).is_some(), "shard has no {key}: {shard}");
        }
        assert!(shard["parent_shard_ids"].is_array(), "{shard}");
    }
    let shard_ids: Vec<&str> = shards.iter().map(|s| str_of(s, "shard_id")).collect();
    // Without --shards the summary counts the shards and has no line per shard.
    assert!(
        out.stdout.contains(&format!(
            "\nshards: {} (one line each: --shards; ",
            shards.len()
        )),
        "{}",
        out.stdout
    );
    assert!(
        !shard_ids.iter().any(|id| out.stdout.contains(id)),
        "a per-shard line without --shards:\n{}",
        out.stdout
    );
    for shard in shards {
        for parent in shard["parent_shard_ids"].as_array().unwrap() {
            let parent = parent.as_str().expect("a parent shard id");
            assert!(
                shard_ids.contains(&parent),
                "unknown parent {parent} of {shard}"
            );
        }
    }
    // The default splits shard 0 at 300 s: some shard has a parent.
    assert!(
        shards
            .iter()
            .any(|s| !s["parent_shard_ids"].as_array().unwrap().is_empty()),
        "no child shard after the default's split: {report}"
    );
    for key in ["records_succeeded", "records_discarded", "invocations"] {
        let sum: u64 = shards.iter().map(|s| u64_of(s, key)).sum();
        assert_eq!(
            sum,
            u64_of(&report, key),
            "shards' {key} do not add up: {report}"
        );
    }

    let lines = jsonl(&dir.path().join("invocations.jsonl"));
    assert!(!lines.is_empty(), "empty invocation log");
    let mut per_shard: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines {
        for key in LOG_KEYS {
            assert!(
                line.get(key).is_some(),
                "invocation log line has no {key}: {line}"
            );
        }
        assert!(u64_of(line, "records") >= 1, "{line}");
        assert!(u64_of(line, "attempt") >= 1, "{line}");
        assert_ne!(
            seq_cmp(
                str_of(line, "first_sequence_number"),
                str_of(line, "last_sequence_number")
            ),
            Ordering::Greater,
            "{line}"
        );
        *per_shard
            .entry(str_of(line, "shard_id").to_string())
            .or_default() += 1;
    }
    // Every attempt is a line; the report's invocations are those that reached the
    // function (none is throttled here, so all of them).
    assert_eq!(lines.len() as u64, u64_of(&report, "invocations"));
    let throttled = lines.iter().filter(|l| l["outcome"] == "throttled").count();
    assert_eq!(
        throttled, 0,
        "the embedded default has no throttling function"
    );
    for shard in shards {
        assert_eq!(
            per_shard
                .get(str_of(shard, "shard_id"))
                .copied()
                .unwrap_or(0),
            u64_of(shard, "invocations"),
            "log lines of {} != its invocations",
            shard["shard_id"]
        );
    }
    let function_errors = lines
        .iter()
        .filter(|l| l["outcome"] == "function_error")
        .count();
    assert!(function_errors > 0, "no function errors on poison records");
}

#[test]
fn simulate_logs_throttled_attempts_but_counts_only_invocations_that_reached_the_function() {
    let dir = tempdir();
    let config = copy_fixture("throttled.toml", dir.path());
    let (report, log) = simulate_to_files(dir.path(), &["--config", config]);
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let throttled = lines.iter().filter(|l| l["outcome"] == "throttled").count() as u64;
    assert!(throttled > 0, "the fixture's function never throttled");
    assert_eq!(u64_of(&report, "records_succeeded"), 400, "{report}");
    assert_eq!(u64_of(&report, "records_discarded"), 0, "{report}");
    // The log has a line per attempt; `invocations` counts those that reached the
    // function (AWS's retries + 1), `invoke_throttles` the others.
    assert_eq!(
        u64_of(&report, "invocations"),
        lines.len() as u64 - throttled,
        "{report}"
    );
    assert_eq!(u64_of(&report, "invoke_throttles"), throttled, "{report}");
}

#[test]
fn simulate_with_the_same_seed_is_reproducible_and_another_seed_changes_the_invocations() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let (report_a, log_a) = simulate_to_files(a.path(), &[]);
    let (report_b, log_b) = simulate_to_files(b.path(), &[]);
    assert!(!log_a.is_empty());
    assert!(
        log_a == log_b,
        "two runs with the same seed logged different invocations"
    );
    assert_eq!(
        without_wall_seconds(report_a.clone()),
        without_wall_seconds(report_b),
        "two runs with the same seed gave different reports"
    );
    assert_eq!(report_a["seed"], 42);

    let (report_c, log_c) = simulate_to_files(c.path(), &["--seed", "7"]);
    assert_eq!(report_c["seed"], 7);
    assert!(
        log_c != log_a,
        "--seed 7 logged the same invocations as seed 42"
    );
}

#[test]
fn simulate_with_report_dash_prints_the_json_report_on_stdout_and_the_summary_on_stderr() {
    let dir = tempdir();
    let out = run_cmd(dir.path(), &["simulate", "--report", "-", "--shards"]);
    assert!(out.success, "simulate failed:\n{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", out.stdout));
    for key in REPORT_KEYS {
        assert!(report.get(key).is_some(), "report has no {key}: {report}");
    }
    let produced = u64_of(&report, "records_produced");
    assert!(
        out.stderr
            .contains(&format!("records: produced {produced}, ")),
        "the summary is not on stderr:\n{}",
        out.stderr
    );
    // --shards: one summary line per shard of the report (the log lines on stderr name
    // shards too, but do not start with "  MAPPING SHARD "), and no count line instead.
    let shards = report["shards"].as_array().expect("shards");
    assert!(!shards.is_empty());
    for shard in shards {
        let id = str_of(shard, "shard_id");
        let mapping = str_of(shard, "mapping");
        let line = format!("  {mapping} {id} ");
        let lines = out.stderr.lines().filter(|l| l.starts_with(&line)).count();
        assert_eq!(lines, 1, "{id}:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("one line each"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// run

/// Every poison record `simulate` discards on the fast world in its first 120 virtual
/// seconds (24,000 records, far more than the daemon sees during the test), by shard.
fn expected_discards_of_the_fast_world() -> BTreeMap<String, Vec<String>> {
    let dir = tempdir();
    let config = copy_fixture("fast.toml", dir.path());
    let out = run_cmd(
        dir.path(),
        &["simulate", "--config", config, "--until", "120"],
    );
    assert!(out.success, "simulate failed:\n{}", out.stderr);
    let failures = jsonl(&dir.path().join("failures.jsonl"));
    assert!(!failures.is_empty(), "simulate discarded nothing");
    for failure in &failures {
        assert_single_record_retry_exhausted(failure);
    }
    discarded_by_shard(&failures)
}

#[test]
fn run_discards_poison_records_stops_on_sigint_and_after_a_restart_resumes_every_shard_from_its_checkpoint(
) {
    let dir = tempdir();
    let config = copy_fixture("fast.toml", dir.path());
    let failures_path = dir.path().join("failures.jsonl");

    // First run: until both shards have discarded a poison record and progress is logged.
    let first = Daemon::start(dir.path(), config);
    wait_until(
        Duration::from_secs(15),
        "a failure record from each shard and a progress line",
        || format!("stderr:\n{}", first.stderr()),
        || {
            discarded_by_shard(&jsonl(&failures_path)).len() == FAST_SHARDS.len()
                && first.stderr().contains(" records/s; ")
        },
    );
    let first_log = first.stop_with("INT");
    let first_failures = jsonl(&failures_path);
    for failure in &first_failures {
        assert_single_record_retry_exhausted(failure);
    }
    let first_starts = shard_starts(&first_log);
    assert_eq!(
        first_starts.len(),
        FAST_SHARDS.len(),
        "first run: expected one `shard started` per shard:\n{first_log}"
    );
    for (shard, position) in &first_starts {
        assert_eq!(position, "TrimHorizon", "first run, {shard}:\n{first_log}");
    }
    // Progress: a throughput line, then one line per shard with its checkpoint.
    let rate_line = first_log
        .lines()
        .find(|l| l.contains(" records/s; succeeded "))
        .unwrap_or_else(|| panic!("no records/s line:\n{first_log}"));
    let rate: f64 = rate_line
        .split(" records/s;")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in: {rate_line}"));
    assert!(rate > 0.0, "no progress: {rate_line}");
    for shard in FAST_SHARDS {
        assert!(
            first_log.lines().any(|l| l.contains(&format!(" {shard} "))
                && l.contains(" checkpoint ")
                && l.contains(" succeeded ")),
            "no progress line for {shard}:\n{first_log}"
        );
    }
    assert!(first_log.contains("stopped cleanly"), "{first_log}");
    let first_discards = discarded_by_shard(&first_failures);

    // Second run: until both shards started and another poison record was discarded.
    let second = Daemon::start(dir.path(), config);
    wait_until(
        Duration::from_secs(15),
        "both shards to start and a new failure record",
        || format!("stderr:\n{}", second.stderr()),
        || {
            shard_starts(&second.stderr()).len() == FAST_SHARDS.len()
                && jsonl(&failures_path).len() > first_failures.len()
        },
    );
    let second_log = second.stop_with("TERM");
    let all_failures = jsonl(&failures_path);
    for failure in &all_failures {
        assert_single_record_retry_exhausted(failure);
    }
    assert!(
        !second_log.contains("position=TrimHorizon"),
        "second run: a shard with a checkpoint started at TrimHorizon:\n{second_log}"
    );

    // What was lost or replayed across the restart, against the same world in `simulate`.
    let expected = expected_discards_of_the_fast_world();
    let resumed: BTreeMap<String, String> = shard_starts(&second_log)
        .into_iter()
        .map(|(shard, position)| {
            let seq = after_sequence(&position)
                .unwrap_or_else(|| panic!("second run, {shard} started at {position}"));
            (shard, seq.to_string())
        })
        .collect();
    assert_eq!(
        resumed.keys().map(String::as_str).collect::<Vec<_>>(),
        FAST_SHARDS,
        "second run: {second_log}"
    );
    for shard in FAST_SHARDS {
        let poison = &expected[shard];
        let last_discarded = first_discards[shard].last().expect("a first-run discard");
        let index = poison
            .iter()
            .position(|s| s == last_discarded)
            .unwrap_or_else(|| panic!("{shard}: {last_discarded} is not a poison record"));
        let next_poison = poison
            .get(index + 1)
            .expect("simulate --until 120 covers the test's records");
        let resume = &resumed[shard];
        // The checkpoint is written after a discard's failure record, so the daemon
        // resumes at or after the last discard (no replay) and before the next poison
        // record it had not discarded (no skip).
        assert_ne!(
            seq_cmp(resume, last_discarded),
            Ordering::Less,
            "{shard}: resumed after {resume}, before its last discard {last_discarded}"
        );
        assert_eq!(
            seq_cmp(resume, next_poison),
            Ordering::Less,
            "{shard}: resumed after {resume}, past poison record {next_poison} that was never discarded"
        );
    }
    // Across both runs every shard discarded exactly the first poison records of the world,
    // in order: none skipped, none twice.
    let all = discarded_by_shard(&all_failures);
    for (shard, discarded) in &all {
        let poison = &expected[shard];
        assert!(
            discarded.len() < poison.len(),
            "simulate --until 120 does not cover {shard}"
        );
        assert_eq!(
            discarded,
            &poison[..discarded.len()],
            "{shard}: discarded records across the restart differ from the world's poison records"
        );
    }
}

// ---------------------------------------------------------------------------------------
// help

#[test]
fn help_lists_the_run_simulate_and_validate_subcommands() {
    let dir = tempdir();
    let out = run_cmd(dir.path(), &["--help"]);
    assert!(out.success, "--help failed:\n{}", out.stderr);
    for command in ["run", "simulate", "validate"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help does not list {command}:\n{}",
            out.stdout
        );
    }
}
