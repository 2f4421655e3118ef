//! The report of a simulation with a lease table: the usual counts, taken from the table
//! and from every worker process, plus the workers' part (`WorkersReport`).
//!
//! Counts: each shard's checkpoint is the lease's, so pending records are measured from
//! the table; the other counts are summed over every process that ran the shard (a
//! crashed one as it was when it died), less the successes the `Ledger` saw a record have
//! beyond its first — a replay after a failover counts once — so conservation holds as
//! with one worker.
//!
//! Failover, per crash, pause or stop: the leases the worker owned in the table at that
//! moment, and for each the time until another worker took it (median and max); records
//! in the function on that worker then, and records it had invoked that were invoked
//! again afterwards. Balance: sampled once a virtual second, the table is balanced when
//! every unfinished lease is owned by a running worker and their counts differ by at most
//! one; `balanced_since_seconds` is when it became so for good. Steady state: table calls
//! from the last lease move or worker event (whichever is later) to the end, per
//! unfinished lease per minute; reported only over a window of a minute or more.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::ledger::{Duplicates, Ledger};
use super::watched_table::{CallCounts, WatchedTable};
use super::{counts_of, shard_pending, Counts, MappingReport, Report};
use crate::assemble::Shared;
use crate::checkpoint::Checkpoint;
use crate::config::{Config, WorkerAction, WorkerEvent};
use crate::coordination::keeper::LeaseKeeper;
use crate::coordination::lease::lease_key;
use crate::coordination::metrics::LeaseCounts;
use crate::engine::context::MappingContext;
use crate::engine::status::{ShardSnapshot, ShardState};

/// One process of a worker, as the report sees it.
pub(super) struct WorkerRun {
    pub worker: usize,
    pub keeper: Arc<LeaseKeeper>,
    pub contexts: Vec<Arc<MappingContext>>,
    /// Crashed: its counters as they were at the crash.
    pub frozen: Option<Frozen>,
    pub stopped: bool,
}

pub(super) struct Frozen {
    metrics: LeaseCounts,
    snapshots: BTreeMap<String, Vec<ShardSnapshot>>,
}

impl Frozen {
    pub fn now(run: &WorkerRun) -> Frozen {
        Frozen {
            metrics: run.keeper.metrics.snapshot(),
            snapshots: live_snapshots(run),
        }
    }
}

fn live_snapshots(run: &WorkerRun) -> BTreeMap<String, Vec<ShardSnapshot>> {
    run.contexts
        .iter()
        .map(|ctx| (ctx.mapping.name.clone(), ctx.status.snapshots()))
        .collect()
}

impl WorkerRun {
    fn metrics(&self) -> LeaseCounts {
        match &self.frozen {
            Some(frozen) => frozen.metrics.clone(),
            None => self.keeper.metrics.snapshot(),
        }
    }

    fn snapshots(&self) -> BTreeMap<String, Vec<ShardSnapshot>> {
        match &self.frozen {
            Some(frozen) => frozen.snapshots.clone(),
            None => live_snapshots(self),
        }
    }
}

/// One once-a-second look at the table.
pub(super) struct Sample {
    /// Virtual ms since the start.
    at_ms: i64,
    calls: CallCounts,
    balanced: bool,
}

/// A crash, pause or stop, with the leases the worker owned then.
pub(super) struct EventSeen {
    worker: usize,
    action: &'static str,
    at_ms: i64,
    held: Vec<String>,
}

pub(super) fn event_seen(event: &WorkerEvent, table: &WatchedTable) -> Option<EventSeen> {
    let action = match event.action {
        WorkerAction::Crash => "crash",
        WorkerAction::Pause { .. } => "pause",
        WorkerAction::Stop => "stop",
        WorkerAction::Start => return None,
    };
    let id = format!("worker-{}", event.worker);
    let ended = table.ended();
    let held = table
        .owners()
        .into_iter()
        .filter(|(key, owner)| owner.as_deref() == Some(id.as_str()) && !ended.contains(key))
        .map(|(key, _)| key)
        .collect();
    Some(EventSeen {
        worker: event.worker,
        action,
        at_ms: event.at_ms,
        held,
    })
}

pub(super) fn sample(table: &WatchedTable, at_ms: i64, running: &[String]) -> Sample {
    let ended = table.ended();
    let mut per_worker: BTreeMap<&str, u64> = running.iter().map(|id| (id.as_str(), 0)).collect();
    let owners = table.owners();
    let mut all_running = true;
    for (key, owner) in &owners {
        if ended.contains(key) {
            continue;
        }
        match owner.as_deref().and_then(|o| per_worker.get_mut(o)) {
            Some(count) => *count += 1,
            None => all_running = false,
        }
    }
    let (lo, hi) = (
        per_worker.values().min().copied(),
        per_worker.values().max().copied(),
    );
    let balanced = all_running && matches!((lo, hi), (Some(lo), Some(hi)) if hi - lo <= 1);
    Sample {
        at_ms,
        calls: table.calls(),
        balanced,
    }
}

/// Every shard's snapshots from every process merged into one per shard: counters summed
/// (successes replayed taken out), the table's checkpoint, read from the first start.
fn merged(
    mapping: &str,
    runs: &[&WorkerRun],
    table: &WatchedTable,
    again: &BTreeMap<(String, String), u64>,
) -> BTreeMap<String, ShardSnapshot> {
    let mut out: BTreeMap<String, ShardSnapshot> = BTreeMap::new();
    for run in runs {
        for s in run.snapshots().remove(mapping).unwrap_or_default() {
            let first_start = if s.resumed_from.is_none() {
                s.started_at_time_ms
            } else {
                None
            };
            let Some(m) = out.get_mut(&s.shard_id) else {
                let mut m = s.clone();
                m.started_at_time_ms = first_start;
                out.insert(s.shard_id.clone(), m);
                continue;
            };
            m.records_succeeded += s.records_succeeded;
            m.records_filtered += s.records_filtered;
            m.records_discarded += s.records_discarded;
            m.records_trimmed += s.records_trimmed;
            m.invocations += s.invocations;
            m.invoke_throttles += s.invoke_throttles;
            m.read_throttles += s.read_throttles;
            m.destination_records += s.destination_records;
            m.dead_lettered_records += s.dead_lettered_records;
            m.started_at_time_ms = match (m.started_at_time_ms, first_start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if s.state != ShardState::NotHeld {
                m.state = s.state;
            }
        }
    }
    for (shard, m) in out.iter_mut() {
        let key = (mapping.to_string(), shard.clone());
        m.records_succeeded = m
            .records_succeeded
            .saturating_sub(again.get(&key).copied().unwrap_or(0));
        m.checkpoint = table
            .checkpoint(&lease_key(mapping, &crate::model::ShardId(shard.clone())))
            .as_ref()
            .map(Checkpoint::encode);
        m.resumed_from = None;
    }
    out
}

/// Every producer done and no record pending after the table's checkpoints.
pub(super) fn is_drained(
    config: &Config,
    shared: &Shared,
    table: &WatchedTable,
    runs: &[&WorkerRun],
    now_ms: i64,
) -> bool {
    if !shared.streams.values().all(|s| s.producers_done(now_ms)) {
        return false;
    }
    config.mappings.iter().filter(|m| m.enabled).all(|m| {
        let Some(stream) = shared.streams.get(&m.event_source_arn) else {
            return true;
        };
        let snapshots = merged(&m.name, runs, table, &BTreeMap::new());
        stream.shard_ids(now_ms).iter().all(|shard| {
            let s = snapshots.get(&shard.0);
            let checkpoint = table.checkpoint(&lease_key(&m.name, shard));
            let encoded = checkpoint.as_ref().map(Checkpoint::encode);
            let started = s.and_then(|s| s.started_at_time_ms);
            shard_pending(stream, now_ms, shard, encoded.as_deref(), None, started).0 == 0
        })
    })
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkersReport {
    pub workers: Vec<WorkerReport>,
    pub lease_table: LeaseTableReport,
    /// Records the function received more than once.
    pub duplicates: Duplicates,
    /// Successes of records beyond their first (replays), left out of `records_succeeded`.
    pub records_succeeded_again: u64,
    pub failovers: Vec<FailoverReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerReport {
    pub worker: usize,
    pub worker_id: String,
    /// Processes started (a restart after a crash or stop is one more).
    pub starts: usize,
    /// `running`, `crashed`, `stopped` or `never started`.
    pub state_at_end: &'static str,
    /// Unfinished leases the table says it owns at the end.
    pub leases_held_at_end: u64,
    pub taken: u64,
    pub stolen: u64,
    pub lost: u64,
    pub checkpoints_fenced: u64,
    pub conditional_check_failures: u64,
    pub table_calls: u64,
    /// Records it invoked the function with (each invocation counted).
    pub records_invoked: u64,
    /// Of those, records some worker invoked again later.
    pub records_invoked_again_later: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeaseTableReport {
    pub leases: u64,
    pub leases_ended: u64,
    pub calls: u64,
    pub calls_by_kind: CallCounts,
    pub steady_state: Option<SteadyState>,
    /// When the leases became evenly spread over the running workers for good.
    pub balanced_since_seconds: Option<f64>,
    /// Checkpoint writes that moved a lease backwards (fencing makes this empty).
    pub checkpoint_regressions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SteadyState {
    pub from_seconds: f64,
    pub seconds: f64,
    pub calls: CallCounts,
    pub calls_per_shard_per_minute: f64,
    /// Renews and take-pass lists alone: what holding the leases costs without traffic.
    pub renew_and_list_calls_per_shard_per_minute: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailoverReport {
    pub worker: usize,
    pub action: &'static str,
    pub at_seconds: f64,
    pub leases_held: u64,
    pub taken_over: u64,
    pub not_taken_over: u64,
    pub takeover_median_seconds: Option<f64>,
    pub takeover_max_seconds: Option<f64>,
    /// Records in the function for this worker at the event.
    pub in_flight_records: u64,
    /// Records this worker had invoked by the event that were invoked again after it.
    pub records_replayed: u64,
}

pub(super) struct Inputs<'a> {
    pub config: &'a Config,
    pub shared: &'a Shared,
    pub table: &'a WatchedTable,
    pub ledger: &'a Ledger,
    pub runs: &'a [&'a WorkerRun],
    pub samples: &'a [Sample],
    pub events: &'a [EventSeen],
    pub start_ms: i64,
    pub now_ms: i64,
}

pub(super) fn build(
    inputs: &Inputs<'_>,
    seed: u64,
    simulated_seconds: f64,
    drained: bool,
) -> Report {
    let again = inputs.ledger.succeeded_again();
    let mut report = Report {
        seed,
        counts: Counts::default(),
        simulated_seconds,
        wall_seconds: 0.0,
        drained,
        mappings: Vec::new(),
        shards: Vec::new(),
        workers: None,
    };
    for mapping in &inputs.config.mappings {
        let snapshots = merged(&mapping.name, inputs.runs, inputs.table, &again);
        let stream = inputs.shared.streams.get(&mapping.event_source_arn);
        let (counts, shards) = counts_of(&mapping.name, &snapshots, stream, inputs.now_ms);
        report.counts.add(&counts);
        report.mappings.push(MappingReport {
            name: mapping.name.clone(),
            counts,
        });
        report.shards.extend(shards);
    }
    report.workers = Some(WorkersReport {
        workers: worker_reports(inputs),
        lease_table: table_report(inputs),
        duplicates: inputs.ledger.duplicates(),
        records_succeeded_again: again.values().sum(),
        failovers: inputs.events.iter().map(|e| failover(inputs, e)).collect(),
    });
    report
}

fn worker_reports(inputs: &Inputs<'_>) -> Vec<WorkerReport> {
    let owners = inputs.table.owners();
    let ended = inputs.table.ended();
    (1..=inputs.config.simulation.workers)
        .map(|worker| {
            let id = format!("worker-{worker}");
            let runs: Vec<&&WorkerRun> =
                inputs.runs.iter().filter(|r| r.worker == worker).collect();
            let state_at_end = match runs.last() {
                None => "never started",
                Some(r) if r.frozen.is_some() => "crashed",
                Some(r) if r.stopped => "stopped",
                Some(_) => "running",
            };
            let mut m = LeaseCounts::default();
            for run in &runs {
                let c = run.metrics();
                m.taken += c.taken;
                m.stolen += c.stolen;
                m.lost += c.lost;
                m.checkpoints_fenced += c.checkpoints_fenced;
                m.conditional_check_failures += c.conditional_check_failures;
                m.calls += c.calls;
            }
            let (records_invoked, records_invoked_again_later) = inputs.ledger.delivered_by(worker);
            WorkerReport {
                worker,
                leases_held_at_end: owners
                    .iter()
                    .filter(|(k, o)| o.as_deref() == Some(id.as_str()) && !ended.contains(k))
                    .count() as u64,
                worker_id: id,
                starts: runs.len(),
                state_at_end,
                taken: m.taken,
                stolen: m.stolen,
                lost: m.lost,
                checkpoints_fenced: m.checkpoints_fenced,
                conditional_check_failures: m.conditional_check_failures,
                table_calls: m.calls,
                records_invoked,
                records_invoked_again_later,
            }
        })
        .collect()
}

fn table_report(inputs: &Inputs<'_>) -> LeaseTableReport {
    let table = inputs.table;
    let leases = table.owners().len() as u64;
    let ended = table.ended().len() as u64;
    let last_move = table
        .moves()
        .last()
        .map_or(0, |m| m.at_ms - inputs.start_ms);
    let last_event = inputs
        .config
        .simulation
        .worker_events
        .last()
        .map_or(0, |e| e.at_ms);
    let from = last_move.max(last_event);
    let samples = inputs.samples;
    let steady = samples.iter().find(|s| s.at_ms >= from).zip(samples.last());
    let steady_state = steady.and_then(|(first, last)| {
        let ms = last.at_ms - first.at_ms;
        let active = leases.saturating_sub(ended);
        (ms >= 60_000 && active > 0).then(|| {
            let calls = last.calls.since(&first.calls);
            let per_shard_minute = |n: u64| n as f64 / active as f64 / (ms as f64 / 60_000.0);
            SteadyState {
                from_seconds: first.at_ms as f64 / 1000.0,
                seconds: ms as f64 / 1000.0,
                calls,
                calls_per_shard_per_minute: per_shard_minute(calls.total()),
                renew_and_list_calls_per_shard_per_minute: per_shard_minute(
                    calls.renew + calls.list,
                ),
            }
        })
    });
    let unbalanced_last = samples.iter().rposition(|s| !s.balanced);
    let balanced_since = match unbalanced_last {
        None => samples.first(),
        Some(i) => samples.get(i + 1),
    };
    LeaseTableReport {
        leases,
        leases_ended: ended,
        calls: table.calls().total(),
        calls_by_kind: table.calls(),
        steady_state,
        balanced_since_seconds: balanced_since.map(|s| s.at_ms as f64 / 1000.0),
        checkpoint_regressions: table.regressions(),
    }
}

fn failover(inputs: &Inputs<'_>, event: &EventSeen) -> FailoverReport {
    let id = format!("worker-{}", event.worker);
    let at = inputs.start_ms + event.at_ms;
    let moves = inputs.table.moves();
    let mut times: Vec<i64> = event
        .held
        .iter()
        .filter_map(|key| {
            moves
                .iter()
                .find(|m| {
                    m.at_ms >= at && &m.key == key && m.owner.as_deref().is_some_and(|o| o != id)
                })
                .map(|m| m.at_ms - at)
        })
        .collect();
    times.sort_unstable();
    let (in_flight_records, records_replayed) = inputs
        .ledger
        .at_event(event.worker, event.at_ms + inputs.start_ms);
    FailoverReport {
        worker: event.worker,
        action: event.action,
        at_seconds: event.at_ms as f64 / 1000.0,
        leases_held: event.held.len() as u64,
        taken_over: times.len() as u64,
        not_taken_over: (event.held.len() - times.len()) as u64,
        takeover_median_seconds: median_ms(&times).map(|ms| ms / 1000.0),
        takeover_max_seconds: times.last().map(|ms| *ms as f64 / 1000.0),
        in_flight_records,
        records_replayed,
    }
}

/// The median of sorted `values` (the mean of the middle two when their count is even).
fn median_ms(values: &[i64]) -> Option<f64> {
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2] as f64),
        _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
    }
}

/// The summary's lines about workers, the table, failovers and duplicates.
pub(super) fn summary_lines(w: &WorkersReport) -> String {
    let mut out = String::new();
    for worker in &w.workers {
        out.push_str(&format!(
            "{} {}: {} leases at the end (taken {}, stolen {}, lost {}, checkpoints fenced {}), {} table calls\n",
            worker.worker_id,
            worker.state_at_end,
            worker.leases_held_at_end,
            worker.taken,
            worker.stolen,
            worker.lost,
            worker.checkpoints_fenced,
            worker.table_calls,
        ));
    }
    let t = &w.lease_table;
    let seconds = |s: Option<f64>| s.map_or("never".to_string(), |s| format!("{s:.1} s"));
    out.push_str(&format!(
        "lease table: {} leases, {} calls, balanced since {}",
        t.leases,
        t.calls,
        seconds(t.balanced_since_seconds)
    ));
    match &t.steady_state {
        Some(s) => out.push_str(&format!(
            "; steady state from {:.0} s for {:.0} s: {:.1} calls per shard per minute ({:.1} renew + list)\n",
            s.from_seconds,
            s.seconds,
            s.calls_per_shard_per_minute,
            s.renew_and_list_calls_per_shard_per_minute
        )),
        None => out.push_str("; no steady minute to measure calls per shard\n"),
    }
    for f in &w.failovers {
        out.push_str(&format!(
            "failover: worker {} {} at {:.0} s: {} of {} leases taken over (median {}, max {}), {} records in flight, {} replayed\n",
            f.worker,
            f.action,
            f.at_seconds,
            f.taken_over,
            f.leases_held,
            seconds(f.takeover_median_seconds),
            seconds(f.takeover_max_seconds),
            f.in_flight_records,
            f.records_replayed
        ));
    }
    out.push_str(&format!(
        "duplicates: {} records invoked more than once ({} extra invocations); checkpoints moved backwards: {}\n",
        w.duplicates.records,
        w.duplicates.extra_deliveries,
        t.checkpoint_regressions.len()
    ));
    out
}
