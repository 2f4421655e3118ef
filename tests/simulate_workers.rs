//! `simulate` with several workers sharing an in-memory lease table: an even split, the
//! same report from the same seed, and failover after a crash, a pause past the lease and
//! a clean stop — every record done, replays only where the failover puts them, and no
//! checkpoint ever moving backwards.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use esm_sim::config;
use esm_sim::function::InvokeResult;
use esm_sim::simulate::{simulate, FailoverReport, Report, SimulateOptions, WorkersReport};

/// KCL's intervals for the 10 s lease of `world`.
const LEASE_MS: f64 = 10_000.0;
const TAKE_INTERVAL_MS: f64 = 20_050.0;

/// 8 shards, 3 workers, 40 records/s for 300 s; `events` appended to `[simulation]`.
fn world(latency_ms: f64, events: &str) -> String {
    format!(
        r#"
[simulation]
seed = 3
workers = 3
max_duration_seconds = 900
{events}

[coordination]
store = "dynamodb"
lease_duration_seconds = 10

[[streams]]
name = "s"
kind = "kinesis"
shards = 8

[[streams.producers]]
rate_per_second = 40.0
duration_seconds = 300.0
keys = 40

[[functions]]
name = "ok"
latency = {{ p50_ms = {latency_ms}, p99_ms = {p99} }}

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "ok"
starting_position = "TRIM_HORIZON"
batch_size = 10
"#,
        p99 = latency_ms * 2.0
    )
}

fn event(worker: u32, at: u32, action: &str, extra: &str) -> String {
    format!(
        "[[simulation.worker_events]]\nworker = {worker}\nat_seconds = {at}\naction = \"{action}\"\n{extra}\n"
    )
}

fn run_with(text: &str, options: &SimulateOptions) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config::parse(text, dir.path()).unwrap_or_else(|e| panic!("invalid:\n{e}"));
    simulate(&config, options).expect("simulate")
}

fn run(text: &str) -> Report {
    run_with(text, &SimulateOptions::default())
}

fn workers(report: &Report) -> &WorkersReport {
    report.workers.as_ref().expect("a workers report")
}

/// Every record produced is done and counted once; no checkpoint went backwards.
fn assert_whole(report: &Report) {
    let c = &report.counts;
    assert!(report.drained, "not drained: {c:?}");
    assert_eq!(c.records_pending, 0, "{c:?}");
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
    assert_eq!(
        workers(report).lease_table.checkpoint_regressions,
        Vec::<String>::new()
    );
}

fn only_failover(report: &Report) -> &FailoverReport {
    let failovers = &workers(report).failovers;
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    &failovers[0]
}

#[test]
fn three_workers_split_eight_shards_three_three_two_and_conserve_records() {
    let report = run(&world(50.0, ""));
    assert_whole(&report);
    let w = workers(&report);
    let mut held: Vec<u64> = w.workers.iter().map(|w| w.leases_held_at_end).collect();
    held.sort_unstable();
    assert_eq!(held, vec![2, 3, 3], "{:?}", w.workers);
    assert!(w.lease_table.balanced_since_seconds.is_some());
    assert_eq!(w.lease_table.leases, 8);
    let calls: u64 = w.workers.iter().map(|w| w.table_calls).sum();
    assert_eq!(
        calls, w.lease_table.calls,
        "every table call is some worker's"
    );
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let text = world(300.0, &event(2, 100, "crash", ""));
    let mut first = run(&text);
    let mut second = run(&text);
    first.wall_seconds = 0.0;
    second.wall_seconds = 0.0;
    assert_eq!(first, second);
    let mut other = run(&text.replace("seed = 3", "seed = 4"));
    other.wall_seconds = 0.0;
    assert_ne!(first, other, "another seed, another run");
}

#[test]
fn a_crashed_workers_shards_are_taken_over_and_no_more_than_its_in_flight_records_replayed() {
    let succeeded: Arc<Mutex<BTreeSet<(String, String)>>> = Arc::default();
    let seen = succeeded.clone();
    let options = SimulateOptions {
        tap: Some(Arc::new(move |shard, records, result| {
            if matches!(result, InvokeResult::Response(r) if r.function_error.is_none()) {
                let mut seen = seen.lock().unwrap();
                for r in records {
                    seen.insert((shard.0.clone(), r.sequence_number.0.clone()));
                }
            }
        })),
        ..Default::default()
    };
    let report = run_with(&world(800.0, &event(2, 100, "crash", "")), &options);
    assert_whole(&report);
    assert_eq!(
        succeeded.lock().unwrap().len() as u64,
        report.counts.records_produced,
        "a record never succeeded"
    );
    let crash = only_failover(&report);
    assert!(crash.leases_held > 0, "{crash:?}");
    assert_eq!(crash.taken_over, crash.leases_held, "{crash:?}");
    let max_s = crash.takeover_max_seconds.expect("taken over");
    assert!(
        max_s * 1000.0 <= LEASE_MS + TAKE_INTERVAL_MS,
        "taken over after {max_s} s: {crash:?}"
    );
    assert!(crash.in_flight_records > 0, "{crash:?}");
    assert!(crash.records_replayed > 0, "{crash:?}");
    assert!(
        crash.records_replayed <= crash.in_flight_records,
        "replayed more than was in flight: {crash:?}"
    );
    let crashed = &workers(&report).workers[1];
    assert_eq!(crashed.state_at_end, "crashed");
    // Its other re-invoked records date from the start, when peers stole leases from it
    // and it ran on until its next table call told it so.
    assert!(crashed.records_invoked_again_later >= crash.records_replayed);
}

#[test]
fn a_worker_paused_past_its_lease_loses_it_and_its_late_checkpoints_are_fenced() {
    let report = run(&world(800.0, &event(2, 100, "pause", "for_seconds = 40")));
    assert_whole(&report);
    let paused = &workers(&report).workers[1];
    assert!(paused.lost > 0, "{paused:?}");
    assert!(paused.checkpoints_fenced > 0, "{paused:?}");
    let pause = only_failover(&report);
    assert_eq!(pause.taken_over, pause.leases_held, "{pause:?}");
    assert!(pause.in_flight_records > 0, "{pause:?}");
}

#[test]
fn a_stopped_worker_hands_back_and_peers_take_its_shards_within_one_take_interval() {
    let report = run(&world(800.0, &event(2, 100, "stop", "")));
    assert_whole(&report);
    let stop = only_failover(&report);
    assert!(stop.leases_held > 0, "{stop:?}");
    assert_eq!(stop.taken_over, stop.leases_held, "{stop:?}");
    let max_s = stop.takeover_max_seconds.expect("taken over");
    assert!(
        max_s * 1000.0 <= TAKE_INTERVAL_MS,
        "taken over after {max_s} s: {stop:?}"
    );
    assert_eq!(
        stop.records_replayed, 0,
        "a clean stop replays nothing: {stop:?}"
    );
    let stopped = &workers(&report).workers[1];
    assert_eq!(stopped.state_at_end, "stopped");
    assert_eq!(stopped.leases_held_at_end, 0);
}

#[test]
fn one_worker_on_the_embedded_store_reports_no_workers() {
    let text = world(50.0, "").replace("workers = 3", "").replace(
        "[coordination]\nstore = \"dynamodb\"\nlease_duration_seconds = 10",
        "",
    );
    let config = config::parse(&text, Path::new("")).unwrap();
    let report = simulate(&config, &SimulateOptions::default()).unwrap();
    assert!(report.workers.is_none());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("workers").is_none(), "{json}");
}
