//! Scenario tests: each runs a small simulated world from `fixtures/scenarios/` through the
//! whole engine in virtual time and checks the AWS-observed behaviour of the spec against
//! what the function received (invocation log, tap) and what reached the destination.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use esm_sim::config;
use esm_sim::function::InvokeResult;
use esm_sim::model::{RecordBody, ShardId, StreamRecord};
use esm_sim::simulate::{simulate, Report, SimulateOptions};
use serde_json::Value;

const PAYLOAD_CAP: u64 = 6 * 1024 * 1024;

struct Run {
    report: Report,
    invocations: Vec<Value>,
    failures: Vec<Value>,
    _dir: tempfile::TempDir,
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_text(text: &str, tap: Option<esm_sim::function::tap::Observer>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        config::parse(text, dir.path()).unwrap_or_else(|e| panic!("invalid fixture:\n{e}"));
    let log = dir.path().join("invocations.jsonl");
    let options = SimulateOptions {
        invocation_log: Some(log.clone()),
        tap,
        ..Default::default()
    };
    let report = simulate(&config, &options).expect("simulate");
    Run {
        report,
        invocations: support::jsonl(&log),
        failures: support::jsonl(&dir.path().join("failures.jsonl")),
        _dir: dir,
    }
}

fn run(name: &str) -> Run {
    run_text(&fixture(name), None)
}

fn assert_conserved(report: &Report) {
    let c = &report.counts;
    assert_eq!(
        c.records_produced,
        c.records_succeeded
            + c.records_filtered
            + c.records_discarded
            + c.records_trimmed
            + c.records_before_start
            + c.records_pending,
        "conservation: {c:?}"
    );
}

fn seq_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
        .to_string()
}

/// Unsigned decimal comparison, as the spec requires (never parse into an integer).
fn seq_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

#[test]
fn maximum_retry_attempts_1_and_2_give_2_and_3_invocations_and_the_same_approximate_invoke_count() {
    for (retries, expected) in [(1, 2), (2, 3)] {
        let run = run_text(
            &fixture("retry-limit.toml").replace("RETRIES", &retries.to_string()),
            None,
        );
        assert_eq!(
            run.invocations.len(),
            expected,
            "invocations with MaximumRetryAttempts {retries}"
        );
        let attempts: Vec<u64> = run
            .invocations
            .iter()
            .map(|i| i["attempt"].as_u64().unwrap_or(0))
            .collect();
        assert_eq!(attempts, (1..=expected as u64).collect::<Vec<_>>());
        assert!(run
            .invocations
            .iter()
            .all(|i| i["outcome"] == "function_error"));
        assert_eq!(run.failures.len(), 1);
        let failure = &run.failures[0];
        assert_eq!(
            failure["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(
            failure["requestContext"]["approximateInvokeCount"],
            expected
        );
        assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
        assert_eq!(failure["KinesisBatchInfo"]["batchSize"], 3);
        assert_eq!(run.report.counts.records_discarded, 3);
        assert_eq!(run.report.counts.records_pending, 0);
        assert_conserved(&run.report);
    }
}

#[test]
fn a_partial_failure_of_the_sixth_record_retries_only_it_and_reports_count_4_with_null_function_error(
) {
    let run = run("partial-failure.toml");
    let sizes: Vec<u64> = run
        .invocations
        .iter()
        .map(|i| i["records"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        sizes,
        vec![3, 3, 1, 1, 1],
        "two batches of 3, then only the 6th record three more times"
    );
    assert_eq!(run.failures.len(), 1);
    let failure = &run.failures[0];
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 4);
    assert_eq!(failure["KinesisBatchInfo"]["batchSize"], 1);
    assert!(failure["responseContext"]["functionError"].is_null());
    assert_eq!(failure["responseContext"]["statusCode"], 200);
    let sixth = seq_of(&run.invocations[1], "last_sequence_number");
    assert_eq!(
        seq_of(&failure["KinesisBatchInfo"], "startSequenceNumber"),
        sixth
    );
    assert_eq!(
        seq_of(&failure["KinesisBatchInfo"], "endSequenceNumber"),
        sixth
    );
    assert_eq!(
        (
            run.report.counts.records_succeeded,
            run.report.counts.records_discarded
        ),
        (5, 1)
    );
    assert_conserved(&run.report);
}

#[test]
fn an_expired_record_in_front_of_five_fresh_ones_is_discarded_alone_and_the_fresh_ones_are_invoked()
{
    let run = run("expired-plus-fresh.toml");
    assert_eq!(run.failures.len(), 1);
    let failure = &run.failures[0];
    assert_eq!(failure["requestContext"]["condition"], "RecordAgeExceeded");
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 1);
    assert!(
        failure.get("responseContext").is_none(),
        "RecordAgeExceeded has no responseContext key: {failure}"
    );
    assert_eq!(failure["KinesisBatchInfo"]["batchSize"], 1);
    assert_eq!(run.invocations.len(), 1);
    assert_eq!(run.invocations[0]["records"], 5);
    assert_eq!(run.invocations[0]["outcome"], "success");
    assert_eq!(
        (
            run.report.counts.records_succeeded,
            run.report.counts.records_discarded
        ),
        (5, 1)
    );
    assert_conserved(&run.report);
}

#[test]
fn bisect_isolates_one_poison_record_in_a_batch_of_100_and_the_other_99_succeed() {
    let run = run("bisect-100.toml");
    assert_eq!(run.invocations[0]["records"], 100);
    assert_eq!(run.failures.len(), 1);
    let info = &run.failures[0]["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    let poison = seq_of(info, "startSequenceNumber");
    let holding = run
        .invocations
        .iter()
        .filter(|i| {
            seq_le(&seq_of(i, "first_sequence_number"), &poison)
                && seq_le(&poison, &seq_of(i, "last_sequence_number"))
        })
        .count();
    assert!(
        holding > 1,
        "the poison record was bisected down from larger batches"
    );
    assert_eq!(
        run.failures[0]["requestContext"]["approximateInvokeCount"],
        holding as u64
    );
    assert_eq!(run.report.counts.records_succeeded, 99);
    assert_eq!(run.report.counts.records_discarded, 1);
    assert_conserved(&run.report);
}

#[test]
fn throttled_invocations_and_reads_do_not_count_as_attempts() {
    let run = run("throttles.toml");
    let throttled = run
        .invocations
        .iter()
        .filter(|i| i["outcome"] == "throttled")
        .count();
    let counted = run
        .invocations
        .iter()
        .filter(|i| i["outcome"] == "function_error")
        .count();
    assert!(throttled > 0, "the scenario throttles some invocations");
    assert_eq!(counted, 3, "MaximumRetryAttempts 2: three counted attempts");
    assert_eq!(
        run.failures[0]["requestContext"]["approximateInvokeCount"],
        3
    );
    assert_eq!(run.report.counts.invoke_throttles as usize, throttled);
    assert_eq!(
        run.report.counts.invocations as usize, counted,
        "invocations count only those that reached the function"
    );
    assert!(
        run.report.counts.read_throttles > 0,
        "the stream throttled some reads"
    );
    assert_conserved(&run.report);
}

#[test]
fn every_event_stays_within_the_6_mb_payload_cap() {
    let run = run("payload-cap.toml");
    let records: u64 = run
        .invocations
        .iter()
        .map(|i| i["records"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(records, 20);
    for invocation in &run.invocations {
        let bytes = invocation["payload_bytes"].as_u64().unwrap_or(u64::MAX);
        assert!(bytes <= PAYLOAD_CAP, "{bytes} bytes > 6 MB");
        assert!(invocation["records"].as_u64() < Some(20));
    }
    let first = &run.invocations[0];
    let per_record =
        first["payload_bytes"].as_u64().unwrap_or(0) / first["records"].as_u64().unwrap_or(1);
    assert!(
        first["payload_bytes"].as_u64().unwrap_or(0) + per_record > PAYLOAD_CAP,
        "the cap, not BatchSize, closed the batch"
    );
    assert_conserved(&run.report);
}

type Seen = Arc<Mutex<Vec<(String, String, u64, u64, bool)>>>;

/// A tap that records (shard, key, producer, n, succeeded) for every record invoked.
fn recording_tap() -> (Seen, esm_sim::function::tap::Observer) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let observer = Arc::new(
        move |shard: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let ok = matches!(result, InvokeResult::Response(r) if r.function_error.is_none());
            let mut seen = sink.lock().expect("lock");
            for record in records {
                let RecordBody::Kinesis {
                    partition_key,
                    data,
                } = &record.body
                else {
                    panic!("kinesis only")
                };
                let json: Value = serde_json::from_slice(data).expect("JSON data");
                let (producer, n) = (
                    json["producer"].as_u64().unwrap_or(0),
                    json["n"].as_u64().unwrap_or(0),
                );
                seen.push((shard.0.clone(), partition_key.clone(), producer, n, ok));
            }
        },
    );
    (seen, observer)
}

#[test]
fn splits_and_merges_keep_every_keys_records_in_order_and_children_wait_for_their_parents() {
    let (seen, tap) = recording_tap();
    let run = run_text(&fixture("reshard.toml"), Some(tap));
    assert!(run.report.drained, "the simulation drained");
    assert_eq!(run.report.counts.records_pending, 0);
    assert_eq!(
        run.report.counts.records_succeeded,
        run.report.counts.records_produced
    );
    let seen = seen.lock().expect("lock");
    let mut last_n: std::collections::BTreeMap<&str, u64> = Default::default();
    for (_, key, _, n, _) in seen.iter() {
        if let Some(previous) = last_n.insert(key, *n) {
            assert!(
                *n > previous,
                "key {key}: record {n} invoked after {previous}"
            );
        }
    }
    assert_eq!(
        seen.len() as u64,
        run.report.counts.records_produced,
        "each record invoked once"
    );
    let position = |shard: &str, last: bool| {
        let mut it = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| s.0 == shard)
            .map(|(i, _)| i);
        if last {
            it.next_back()
        } else {
            it.next()
        }
    };
    let shards = &run.report.shards;
    assert!(
        shards.len() >= 6,
        "2 shards, two splits, one merge: {}",
        shards.len()
    );
    for shard in shards {
        let Some(first_child) = position(&shard.shard_id, false) else {
            continue;
        };
        for parent in &shard.parent_shard_ids {
            if let Some(last_parent) = position(parent, true) {
                assert!(
                    last_parent < first_child,
                    "{} invoked before its parent {parent} finished",
                    shard.shard_id
                );
            }
        }
    }
    assert!(
        shards.iter().any(|s| s.parent_shard_ids.len() == 2),
        "the merge produced a shard with two parents"
    );
    assert_conserved(&run.report);
}

#[test]
fn a_simulation_interrupted_in_the_middle_resumes_from_its_checkpoints_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state: PathBuf = dir.path().join("state");
    let config = config::parse(&fixture("restart.toml"), dir.path()).expect("fixture");
    let (seen, tap) = recording_tap();
    let first = SimulateOptions {
        state_dir: Some(state.clone()),
        until_seconds: Some(60),
        tap: Some(tap.clone()),
        ..Default::default()
    };
    let interrupted = simulate(&config, &first).expect("first run");
    assert!(!interrupted.drained);
    assert!(
        interrupted.counts.records_pending > 0,
        "stopped in the middle"
    );
    let delivered_before = seen.lock().expect("lock").len();
    assert!(delivered_before > 0);
    let second = SimulateOptions {
        state_dir: Some(state),
        tap: Some(tap),
        ..Default::default()
    };
    let resumed = simulate(&config, &second).expect("second run");
    assert!(resumed.drained);
    assert_eq!(resumed.counts.records_pending, 0);
    assert_conserved(&interrupted);
    assert_conserved(&resumed);
    assert!(
        resumed.counts.records_before_start > 0,
        "records done by the first run"
    );
    let seen = seen.lock().expect("lock");
    let distinct: std::collections::BTreeSet<(u64, u64)> =
        seen.iter().map(|s| (s.2, s.3)).collect();
    assert_eq!(
        distinct.len() as u64,
        resumed.counts.records_produced,
        "every record delivered at least once"
    );
    let again = seen.len() - distinct.len();
    assert!(
        again <= 3 * 20,
        "at most the in-flight batch of each shard is delivered again, not {again}"
    );
}

#[test]
fn the_same_seed_gives_the_same_report_and_invocation_log_and_another_seed_does_not() {
    let text = config::EMBEDDED_DEFAULT;
    let a = run_text(text, None);
    let b = run_text(text, None);
    let strip = |r: &Report| Report {
        wall_seconds: 0.0,
        ..r.clone()
    };
    assert_eq!(strip(&a.report), strip(&b.report));
    assert_eq!(a.invocations, b.invocations);
    let c = run_text(&text.replace("seed = 42", "seed = 43"), None);
    assert_ne!(a.invocations, c.invocations);
}

#[test]
fn the_embedded_default_drains_with_nothing_pending_and_every_record_accounted_for() {
    let run = run_text(config::EMBEDDED_DEFAULT, None);
    let c = &run.report.counts;
    assert!(run.report.drained);
    assert_eq!(c.records_pending, 0);
    assert_eq!(
        c.records_produced,
        c.records_succeeded + c.records_filtered + c.records_discarded + c.records_trimmed
    );
    assert!(c.records_discarded > 0, "the poison records were discarded");
    let failures = support::jsonl(&run._dir.path().join(".esm-sim/failures.jsonl"));
    assert_eq!(c.destination_records as usize, failures.len());
    let discarded: u64 = failures
        .iter()
        .map(|f| f["KinesisBatchInfo"]["batchSize"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(discarded, c.records_discarded);
    assert!(
        failures
            .iter()
            .all(|f| f["KinesisBatchInfo"]["batchSize"] == 1),
        "bisect isolated each poison record"
    );
}

#[test]
fn a_dynamodb_stream_with_rollovers_delivers_item_changes_in_order_and_reports_ddb_batch_info() {
    type Changes = Arc<Mutex<Vec<(String, String, bool, bool, String)>>>;
    let changes: Changes = Arc::default();
    let sink = changes.clone();
    let tap: esm_sim::function::tap::Observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], _: &InvokeResult| {
            let mut changes = sink.lock().expect("lock");
            for record in records {
                let RecordBody::Dynamodb(change) = &record.body else {
                    panic!("dynamodb only")
                };
                let key = change.keys().as_str().to_string();
                let name = change.event_name.as_str().to_string();
                changes.push((
                    key,
                    name,
                    change.new_image().is_some(),
                    change.old_image().is_some(),
                    record.sequence_number.0.clone(),
                ));
            }
        },
    );
    let run = run_text(&fixture("dynamodb-rollover.toml"), Some(tap));
    assert!(run.report.drained);
    assert_conserved(&run.report);
    assert!(
        run.report.shards.len() > 2,
        "shards rolled over: {}",
        run.report.shards.len()
    );
    let changes = changes.lock().expect("lock");
    let names: std::collections::BTreeSet<&str> = changes.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"].into_iter().collect());
    for (_, name, new_image, old_image, _) in changes.iter() {
        match name.as_str() {
            "INSERT" => assert!(*new_image && !*old_image),
            "MODIFY" => assert!(*new_image && *old_image),
            _ => assert!(!*new_image && *old_image),
        }
    }
    // Per item, in the order first delivered (retries deliver a change again): INSERT
    // only when the item does not exist, MODIFY and REMOVE only when it does.
    let mut exists: std::collections::BTreeMap<&str, bool> = Default::default();
    let mut delivered: std::collections::BTreeSet<&str> = Default::default();
    for (key, name, _, _, seq) in changes.iter() {
        if !delivered.insert(seq.as_str()) {
            continue;
        }
        let existed = exists.get(key.as_str()).copied().unwrap_or(false);
        assert_eq!(
            existed,
            name != "INSERT",
            "{name} of {key} (existed: {existed})"
        );
        exists.insert(key, name != "REMOVE");
    }
    assert!(!run.failures.is_empty(), "poison changes were discarded");
    for failure in &run.failures {
        let info = &failure["DDBStreamBatchInfo"];
        assert!(failure.get("KinesisBatchInfo").is_none());
        assert_eq!(info["batchSize"], 1);
        let first = info["approximateArrivalOfFirstRecord"]
            .as_str()
            .unwrap_or("");
        assert_eq!(
            first.len(),
            "2026-01-01T00:00:00Z".len(),
            "second precision: {first}"
        );
        assert!(seq_of(info, "streamArn").contains(":table/orders/stream/"));
    }
}

#[test]
fn at_timestamp_starts_each_shard_at_the_first_record_that_arrived_at_or_after_it() {
    // The world runs 60 s with the mapping disabled, then the mapping starts AT_TIMESTAMP
    // 30 s into the stream (a timestamp in the future is refused, as AWS does).
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let text = fixture("at-timestamp.toml");
    let idle_text = text.replace(
        "starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1767225630\nenabled = true",
        "starting_position = \"TRIM_HORIZON\"\nenabled = false",
    );
    assert_ne!(idle_text, text);
    let idle = config::parse(&idle_text, dir.path()).expect("fixture");
    let first = SimulateOptions {
        state_dir: Some(state.clone()),
        until_seconds: Some(60),
        ..Default::default()
    };
    simulate(&idle, &first).expect("the idle minute");
    let (seen, tap) = recording_tap();
    let config = config::parse(&text, dir.path()).expect("fixture");
    let report = simulate(
        &config,
        &SimulateOptions {
            state_dir: Some(state),
            tap: Some(tap),
            ..Default::default()
        },
    )
    .expect("run");
    assert!(report.drained);
    assert_conserved(&report);
    // 10 records/s from t=0: record n arrives at n * 100 ms; t=30 s is record 300.
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.iter().map(|s| s.3).min(), Some(300));
    assert_eq!(report.counts.records_before_start, 300);
    assert_eq!(report.counts.records_succeeded, 300);
}

#[test]
fn a_starting_position_timestamp_in_the_future_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config::parse(&fixture("at-timestamp.toml"), dir.path()).expect("fixture");
    let error = simulate(&config, &SimulateOptions::default()).expect_err("a future timestamp");
    assert!(
        error
            .to_string()
            .contains("starting_position_timestamp = 1767225630: cannot be in the future"),
        "{error}"
    );
}

#[test]
fn expired_iterators_slow_and_throttled_reads_lose_nothing_and_deliver_nothing_twice() {
    let (seen, tap) = recording_tap();
    let run = run_text(&fixture("faults.toml"), Some(tap));
    assert!(run.report.drained, "{:?}", run.report.counts);
    assert_conserved(&run.report);
    assert!(run.report.counts.read_throttles > 0);
    let seen = seen.lock().expect("lock");
    let distinct: std::collections::BTreeSet<u64> = seen.iter().map(|s| s.3).collect();
    assert_eq!(seen.len(), distinct.len(), "a record was delivered twice");
    assert_eq!(distinct.len() as u64, run.report.counts.records_produced);
}

#[test]
fn a_disabled_mapping_never_invokes_and_leaves_every_record_pending() {
    let run = run("disabled.toml");
    assert!(run.invocations.is_empty());
    let c = &run.report.counts;
    assert_eq!(c.records_produced, 300);
    assert_eq!(c.records_pending, 300);
    assert_eq!(c.invocations, 0);
    assert_conserved(&run.report);
    assert!(!run.report.shards.is_empty(), "the shards are listed");
    assert!(
        run.report
            .shards
            .iter()
            .all(|s| s.state == esm_sim::engine::status::ShardState::Disabled),
        "every shard shows it is disabled: {:?}",
        run.report.shards
    );
}

type Keys = Arc<Mutex<Vec<(String, String)>>>;

/// A tap that records (key, sequence number) of every record invoked.
fn recording_keys_tap() -> (Keys, esm_sim::function::tap::Observer) {
    let seen: Keys = Arc::default();
    let sink = seen.clone();
    let observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], _: &InvokeResult| {
            let mut seen = sink.lock().expect("lock");
            for record in records {
                seen.push((record.ordering_key(), record.sequence_number.0.clone()));
            }
        },
    );
    (seen, observer)
}

fn parallel_fixture(factor: u32, poison_every: Option<u64>) -> String {
    let poison = poison_every.map_or(String::new(), |n| format!("poison_every = {n}"));
    fixture("parallelization.toml")
        .replace("FACTOR", &factor.to_string())
        .replace("POISON", &poison)
}

/// Virtual ms at which each invocation started, in log order.
fn invocation_times(run: &Run) -> Vec<i64> {
    run.invocations
        .iter()
        .map(|i| i["t_ms"].as_i64().expect("t_ms"))
        .collect()
}

/// Virtual ms from the first invocation's start to the last one's.
fn invocation_span_ms(run: &Run) -> i64 {
    let times = invocation_times(run);
    times.iter().max().expect("invocations") - times.iter().min().expect("invocations")
}

#[test]
fn parallelization_factor_10_multiplies_a_slow_shard_s_throughput_and_keeps_every_key_in_order() {
    let single = run_text(&parallel_fixture(1, None), None);
    let (seen, tap) = recording_tap();
    let parallel = run_text(&parallel_fixture(10, None), Some(tap));
    for run in [&single, &parallel] {
        assert!(run.report.drained, "drained: {:?}", run.report.counts);
        assert_eq!(run.report.counts.records_succeeded, 1000);
        assert_conserved(&run.report);
    }
    let (one, ten) = (invocation_span_ms(&single), invocation_span_ms(&parallel));
    let speedup = one as f64 / ten as f64;
    assert!(
        (7.0..=11.0).contains(&speedup),
        "factor 1 took {one} ms, factor 10 {ten} ms: {speedup:.1}x, expected about 10x"
    );
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1000, "every record invoked exactly once");
    let mut last_n: std::collections::BTreeMap<&str, u64> = Default::default();
    for (_, key, _, n, ok) in seen.iter() {
        assert!(ok);
        if let Some(previous) = last_n.insert(key, *n) {
            assert!(
                *n > previous,
                "key {key}: record {n} invoked after {previous}"
            );
        }
    }
    assert_eq!(last_n.len(), 20, "all 20 keys seen");
}

#[test]
fn with_parallelization_a_poison_record_holds_back_only_its_batch_s_keys_and_the_checkpoint() {
    let whole_batches = poison_holds_back_only_its_keys(false);
    let with_bisect = poison_holds_back_only_its_keys(true);
    assert!(
        with_bisect <= whole_batches,
        "with bisect, resolved records free their keys: {with_bisect} keys held, {whole_batches} without"
    );
}

/// Runs the poison world with factor 10; checks what is held back; returns how many keys.
fn poison_holds_back_only_its_keys(bisect: bool) -> usize {
    type Invoked = Arc<Mutex<Vec<(String, String, bool, bool)>>>;
    let invoked: Invoked = Arc::default();
    let sink = invoked.clone();
    let tap: esm_sim::function::tap::Observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let ok = matches!(result, InvokeResult::Response(r) if r.function_error.is_none());
            let mut invoked = sink.lock().expect("lock");
            for record in records {
                let RecordBody::Kinesis {
                    partition_key,
                    data,
                } = &record.body
                else {
                    panic!("kinesis only")
                };
                let poison = String::from_utf8_lossy(data).contains("\"poison\":true");
                invoked.push((
                    partition_key.clone(),
                    record.sequence_number.0.clone(),
                    poison,
                    ok,
                ));
            }
        },
    );
    // Every 300th record is poison: 3 of the 1,000, retried forever.
    let mut text = parallel_fixture(10, Some(300));
    if bisect {
        text = text.replace(
            "maximum_retry_attempts = -1",
            "maximum_retry_attempts = -1\nbisect_batch_on_function_error = true",
        );
    }
    let run = run_text(&text, Some(tap));
    assert!(
        !run.report.drained,
        "poison records retried forever block their keys"
    );
    let invoked = invoked.lock().expect("lock");
    let poison: Vec<&(String, String, bool, bool)> = invoked.iter().filter(|r| r.2).collect();
    assert!(
        poison.iter().all(|r| !r.3),
        "a poison record never succeeds"
    );
    // A failing batch holds the keys of its records that are never resolved: for each of
    // them, nothing after its first such record goes through.
    let succeeded: std::collections::BTreeSet<&str> = invoked
        .iter()
        .filter(|r| r.3)
        .map(|r| r.1.as_str())
        .collect();
    let mut blocked_from: std::collections::BTreeMap<&str, &str> = Default::default();
    for (key, seq, _, _) in invoked.iter() {
        if succeeded.contains(seq.as_str()) {
            continue;
        }
        let first = blocked_from.entry(key.as_str()).or_insert(seq.as_str());
        if seq_le(seq, first) {
            *first = seq.as_str();
        }
    }
    for (key, _, _, _) in &poison {
        assert!(blocked_from.contains_key(key.as_str()));
    }
    assert!(
        blocked_from.len() <= 3 * 2,
        "3 poison batches of at most 2 keys each (20 keys over 10 lanes) hold few keys: {blocked_from:?}"
    );
    for (key, seq, _, ok) in invoked.iter() {
        if let Some(from) = blocked_from.get(key.as_str()) {
            assert!(
                !ok || seq_le(seq, from),
                "key {key}: record {seq} went through after its failing record {from}"
            );
        }
    }
    // Every record of every other key went through.
    let succeeded_other: std::collections::BTreeSet<&str> = invoked
        .iter()
        .filter(|r| r.3 && !blocked_from.contains_key(r.0.as_str()))
        .map(|r| r.1.as_str())
        .collect();
    // The same world with a function that takes poison too: every record's key.
    let (all, all_tap) = recording_keys_tap();
    let reference = parallel_fixture(10, Some(300)).replace("\"poison\":true", "never in the data");
    run_text(&reference, Some(all_tap));
    let all = all.lock().expect("lock");
    assert_eq!(all.len(), 1000);
    let produced_other: std::collections::BTreeSet<&str> = all
        .iter()
        .filter(|(key, _)| !blocked_from.contains_key(key.as_str()))
        .map(|(_, seq)| seq.as_str())
        .collect();
    assert!(
        produced_other.len() >= 600,
        "most keys are free: {}",
        produced_other.len()
    );
    assert_eq!(
        succeeded_other, produced_other,
        "other keys' records all succeeded"
    );
    let lowest_poison = poison
        .iter()
        .map(|r| r.1.as_str())
        .min_by(|a, b| (a.len(), *a).cmp(&(b.len(), *b)))
        .expect("a poison record");
    // The checkpoint stands right before the lowest poison record.
    let before_poison = invoked
        .iter()
        .map(|r| r.1.as_str())
        .filter(|seq| !seq_le(lowest_poison, seq))
        .max_by(|a, b| (a.len(), *a).cmp(&(b.len(), *b)))
        .expect("records before the poison record");
    assert_eq!(
        run.report.shards[0].checkpoint.as_deref(),
        Some(before_poison),
        "checkpoint held just before the lowest poison record {lowest_poison}"
    );
    blocked_from.len()
}

#[test]
fn every_tumbling_window_s_final_state_is_the_sum_of_its_records_across_retries() {
    type Calls = Arc<Mutex<Vec<(String, Vec<(i64, u64)>, Option<Value>)>>>;
    let calls: Calls = Arc::default();
    let sink = calls.clone();
    let tap: esm_sim::function::tap::Observer = Arc::new(
        move |shard: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let InvokeResult::Response(response) = result else {
                return;
            };
            let state = (response.function_error.is_none())
                .then(|| serde_json::from_slice::<Value>(&response.body).ok())
                .flatten()
                .map(|body| body["state"].clone());
            let records = records
                .iter()
                .map(|record| {
                    let RecordBody::Kinesis { data, .. } = &record.body else {
                        panic!("kinesis only")
                    };
                    let data: Value = serde_json::from_slice(data).expect("JSON data");
                    (
                        record.approximate_arrival_ms,
                        data["amount"].as_u64().expect("amount"),
                    )
                })
                .collect();
            sink.lock()
                .expect("lock")
                .push((shard.0.clone(), records, state));
        },
    );
    let run = run_text(&fixture("tumbling-window.toml"), Some(tap));
    assert!(run.report.drained, "drained: {:?}", run.report.counts);
    assert_eq!(
        run.report.counts.records_succeeded,
        run.report.counts.records_produced
    );
    let calls = calls.lock().expect("lock");
    assert!(
        calls.iter().any(|(_, _, state)| state.is_none()),
        "some invocations failed and were retried"
    );
    let window_of = |arrival_ms: i64| arrival_ms - arrival_ms.rem_euclid(10_000);
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        // Expected: per window (in order), the records that succeeded.
        let mut expected: Vec<(i64, u64, u64)> = Vec::new();
        let mut finals: Vec<Value> = Vec::new();
        for (_, records, state) in calls.iter().filter(|(s, _, _)| s == shard) {
            let Some(state) = state else { continue };
            if records.is_empty() {
                finals.push(state.clone());
                continue;
            }
            for (arrival, amount) in records {
                let window = window_of(*arrival);
                match expected.last_mut() {
                    Some((w, count, sum)) if *w == window => {
                        *count += 1;
                        *sum += amount;
                    }
                    _ => expected.push((window, 1, *amount)),
                }
            }
        }
        assert!(
            expected.len() >= 6,
            "{shard}: 60 s of traffic in 10 s windows"
        );
        let expected: Vec<Value> = expected
            .iter()
            .map(|(_, count, sum)| serde_json::json!({"count": count, "sum": sum}))
            .collect();
        assert_eq!(finals, expected, "{shard}: each window's final state");
    }
}

/// The request ids of the failure records a simulation of `text` in `dir` appends.
fn request_ids_of_a_simulation(text: &str, dir: &Path) -> Vec<String> {
    let failures = dir.join("failures.jsonl");
    let before = support::jsonl(&failures).len();
    let config = config::parse(text, dir).unwrap_or_else(|e| panic!("invalid:\n{e}"));
    simulate(&config, &SimulateOptions::default()).expect("simulate");
    support::jsonl(&failures)[before..]
        .iter()
        .map(|f| {
            f["requestContext"]["requestId"]
                .as_str()
                .expect("a requestId")
                .to_string()
        })
        .collect()
}

#[test]
fn failure_request_ids_repeat_with_the_seed_and_config_and_differ_with_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fixture("bisect-100.toml");
    let first = request_ids_of_a_simulation(&text, dir.path());
    assert!(!first.is_empty(), "the fixture discards a batch");
    assert_eq!(first, request_ids_of_a_simulation(&text, dir.path()));
    for id in &first {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "3", "a name-based (v3) UUID: {id}");
    }
    let other_config = format!("{text}\n[log]\nstats_interval_seconds = 7\n");
    let other = request_ids_of_a_simulation(&other_config, dir.path());
    assert_eq!(other.len(), first.len(), "the same discards");
    assert!(
        other.iter().all(|id| !first.contains(id)),
        "{first:?} / {other:?}"
    );
}

/// Spec section 1: a caught-up Kinesis shard is polled about once per second. A page that
/// reaches the tip (MillisBehindLatest 0) leaves the shard caught up even when it brought
/// records, so a trickle of 10 records a second arrives in about one invocation a second,
/// not one per 200 ms read.
#[test]
fn a_trickle_is_read_about_once_a_second_as_aws_polls_a_caught_up_shard() {
    let run = run("trickle.toml");
    assert!(run.report.drained, "drained: {:?}", run.report.counts);
    assert_eq!(run.report.counts.records_succeeded, 50);
    assert_conserved(&run.report);
    let times = invocation_times(&run);
    assert!(
        (5..=7).contains(&times.len()),
        "50 records over 5 s in {} invocations at {times:?}: expected about one a second",
        times.len()
    );
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 900,
            "invocations closer than the caught-up pace: {times:?}"
        );
    }
}
