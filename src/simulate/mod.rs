//! `esm-sim simulate`: the config's simulated world in virtual time, to its end, and the
//! JSON report.
//!
//! The engine runs unchanged on a single-threaded tokio runtime whose clock is paused:
//! tokio jumps to the next timer whenever every task waits, so hours of traffic take
//! seconds, and the run is a deterministic function of the config and the seed. The
//! simulation ends when every producer is done and no record is pending (checked once per
//! virtual second), or at `max_duration_seconds`. While it runs, log lines carry the
//! virtual time (`crate::log_time`).
//!
//! Conservation: `records_produced == records_succeeded + records_filtered +
//! records_discarded + records_trimmed + records_before_start + records_pending`, where
//! `records_pending` is measured from the world (records after each shard's checkpoint),
//! not derived from the other counts.

mod gate;
mod lease_report;
mod ledger;
mod watched_table;
mod workers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::assemble::{assemble, Environment, Parts, Seeds};
use crate::checkpoint::embedded::EmbeddedStore;
use crate::checkpoint::{CheckpointStore, MemoryStore, SHARD_END};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::destination::file::LineSync;
use crate::engine::context::MappingContext;
use crate::engine::invocation_log::InvocationLog;
use crate::engine::status::ShardSnapshot;
use crate::engine::supervisor::run_mapping;
use crate::event::request_id::RequestIds;
use crate::function::tap::Observer;
use crate::log_time::VirtualLogTime;
use crate::model::{SequenceNumber, ShardId};
use crate::sim::SimulatedStream;
pub use lease_report::{
    FailoverReport, LeaseTableReport, SteadyState, WorkerReport, WorkersReport,
};
pub use ledger::Duplicates;
pub use watched_table::CallCounts;

#[derive(Default)]
pub struct SimulateOptions {
    pub seed: Option<u64>,
    pub invocation_log: Option<PathBuf>,
    /// Keep checkpoints and the virtual clock here, so a later run with the same directory
    /// continues where this one stopped (an interrupted simulation); memory when `None`.
    pub state_dir: Option<PathBuf>,
    /// Stop after this much virtual time (seconds) instead of `max_duration_seconds`.
    pub until_seconds: Option<u64>,
    /// Sees every invocation's records (tests, tracing).
    pub tap: Option<Observer>,
}

const CLOCK_KEY: &str = "simulate/now_ms";

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counts {
    pub records_produced: u64,
    pub records_succeeded: u64,
    pub records_filtered: u64,
    pub records_discarded: u64,
    pub records_trimmed: u64,
    pub records_before_start: u64,
    pub records_pending: u64,
    pub invocations: u64,
    pub invoke_throttles: u64,
    pub read_throttles: u64,
    pub destination_records: u64,
    pub dead_lettered_records: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.records_produced += other.records_produced;
        self.records_succeeded += other.records_succeeded;
        self.records_filtered += other.records_filtered;
        self.records_discarded += other.records_discarded;
        self.records_trimmed += other.records_trimmed;
        self.records_before_start += other.records_before_start;
        self.records_pending += other.records_pending;
        self.invocations += other.invocations;
        self.invoke_throttles += other.invoke_throttles;
        self.read_throttles += other.read_throttles;
        self.destination_records += other.destination_records;
        self.dead_lettered_records += other.dead_lettered_records;
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ShardReport {
    pub mapping: String,
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub state: crate::engine::status::ShardState,
    pub checkpoint: Option<String>,
    pub records_succeeded: u64,
    pub records_discarded: u64,
    pub records_trimmed: u64,
    pub records_pending: u64,
    pub invocations: u64,
    pub invoke_throttles: u64,
    pub read_throttles: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MappingReport {
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub seed: u64,
    /// Records produced, counted once per mapping that reads them (as are all counts).
    #[serde(flatten)]
    pub counts: Counts,
    pub simulated_seconds: f64,
    pub wall_seconds: f64,
    pub drained: bool,
    pub mappings: Vec<MappingReport>,
    pub shards: Vec<ShardReport>,
    /// With a lease table: every worker, the table, failovers and duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersReport>,
}

/// Runs the simulation on its own paused-clock runtime.
pub fn simulate(config: &Config, options: &SimulateOptions) -> anyhow::Result<Report> {
    if config.mappings.is_empty() {
        anyhow::bail!("no [[mappings]]: nothing to simulate");
    }
    clock::block_on_paused(simulate_on_paused_clock(config, options))?
}

async fn simulate_on_paused_clock(
    config: &Config,
    options: &SimulateOptions,
) -> anyhow::Result<Report> {
    let wall_start = std::time::Instant::now();
    let seed = options.seed.unwrap_or(config.simulation.seed);
    if let Some(settings) = &config.coordination.lease_table {
        let clock = Clock::starting_at(config.simulation.start_ms);
        let _log_time = VirtualLogTime::install(clock, tokio::runtime::Handle::current());
        let invocation_log = match &options.invocation_log {
            Some(path) => Some(Arc::new(InvocationLog::create(path)?)),
            None => None,
        };
        let mut report =
            workers::simulate_workers(config, options, settings, seed, clock, invocation_log)
                .await?;
        report.wall_seconds = wall_start.elapsed().as_secs_f64();
        return Ok(report);
    }
    let store: Arc<dyn CheckpointStore> = match &options.state_dir {
        Some(dir) => Arc::new(EmbeddedStore::open(
            &dir.join("checkpoints.redb"),
            std::time::Duration::from_millis(config.checkpoint_flush_ms),
        )?),
        None => Arc::new(MemoryStore::default()),
    };
    let resumed_at = store
        .get_meta(CLOCK_KEY)?
        .map(|v| v.parse::<i64>())
        .transpose()?;
    let clock = Clock::starting_at(resumed_at.unwrap_or(config.simulation.start_ms));
    let _log_time = VirtualLogTime::install(clock, tokio::runtime::Handle::current());
    let max_duration_ms = options
        .until_seconds
        .map_or(config.simulation.max_duration_ms, |s| s as i64 * 1000);
    let invocation_log = match &options.invocation_log {
        Some(path) => Some(Arc::new(InvocationLog::create(path)?)),
        None => None,
    };
    let cancel = CancellationToken::new();
    let start_ms = config.simulation.start_ms;
    let env = Environment {
        clock,
        store: store.clone(),
        stream_created_at_ms: &|_| Ok(start_ms),
        seeds: Seeds {
            world: seed,
            engine: seed,
            request_ids: Arc::new(RequestIds::derived(seed, &format!("{config:?}"))),
        },
        invocation_log: invocation_log.clone(),
        tap: options.tap.clone(),
        aws: None,
        line_sync: LineSync::None,
        leases: None,
        cancel: cancel.clone(),
    };
    let parts = assemble(config, env).await?;
    let supervisors: Vec<_> = parts
        .contexts
        .iter()
        .map(|ctx| tokio::spawn(run_mapping(ctx.clone())))
        .collect();
    let mut drained = false;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = clock.now_ms();
        if is_drained(&parts, now) {
            drained = true;
            break;
        }
        if clock.elapsed_ms() >= max_duration_ms {
            break;
        }
    }
    let simulated_seconds = clock.elapsed_ms() as f64 / 1000.0;
    cancel.cancel();
    for supervisor in supervisors {
        supervisor.await?;
    }
    if let Some(log) = &invocation_log {
        log.flush()?;
    }
    store.set_meta(CLOCK_KEY, &clock.now_ms().to_string())?;
    store.flush()?;
    let mut report = build_report(&parts, clock.now_ms(), seed, simulated_seconds, drained);
    report.wall_seconds = wall_start.elapsed().as_secs_f64();
    Ok(report)
}

fn is_drained(parts: &Parts, now_ms: i64) -> bool {
    parts.streams.values().all(|s| s.producers_done(now_ms))
        && parts
            .contexts
            .iter()
            .filter(|ctx| ctx.mapping.enabled)
            .all(|ctx| mapping_pending(ctx, stream_of(parts, ctx), now_ms) == 0)
}

/// Records of a mapping's stream still to be processed (`Counts::records_pending`), read
/// from each shard's status in place: the drain check runs every simulated second, and
/// building every shard's snapshot and report for it was ~4% of the instructions of a
/// 10,000-shard simulation.
fn mapping_pending(
    ctx: &MappingContext,
    stream: Option<&Arc<SimulatedStream>>,
    now_ms: i64,
) -> u64 {
    let Some(stream) = stream else {
        return 0;
    };
    let mut pending = 0;
    for shard in stream.shard_ids(now_ms) {
        let (checkpoint, resumed_from, started_at_time_ms) =
            ctx.status
                .get(shard.as_str())
                .map_or((None, None, None), |status| {
                    let s = status.update();
                    (
                        s.checkpoint.clone(),
                        s.resumed_from.clone(),
                        s.started_at_time_ms,
                    )
                });
        pending += shard_pending(
            stream,
            now_ms,
            &shard,
            checkpoint.as_deref(),
            resumed_from.as_deref(),
            started_at_time_ms,
        )
        .0;
    }
    pending
}

fn stream_of<'a>(parts: &'a Parts, ctx: &MappingContext) -> Option<&'a Arc<SimulatedStream>> {
    parts.streams.get(&ctx.mapping.event_source_arn)
}

/// Records of a shard still to be processed after `checkpoint`, and records before where
/// reading it started: before `resumed_from` (done by an earlier run), or before
/// `started_at_time_ms` (a LATEST / AT_TIMESTAMP start).
fn shard_pending(
    stream: &SimulatedStream,
    now_ms: i64,
    shard: &ShardId,
    checkpoint: Option<&str>,
    resumed_from: Option<&str>,
    started_at_time_ms: Option<i64>,
) -> (u64, u64) {
    let after = |checkpoint: &str| match checkpoint {
        SHARD_END => 0,
        seq => stream.count_after(now_ms, shard, Some(&SequenceNumber(seq.to_string()))),
    };
    let total = stream.count_after(now_ms, shard, None);
    let before = match resumed_from {
        Some(resumed_from) => total.saturating_sub(after(resumed_from)),
        None => started_at_time_ms.map_or(0, |t| stream.count_before_time(now_ms, shard, t)),
    };
    let pending = match checkpoint {
        Some(checkpoint) => after(checkpoint),
        None => total.saturating_sub(before),
    };
    (pending, before)
}

fn mapping_counts(
    ctx: &MappingContext,
    stream: Option<&Arc<SimulatedStream>>,
    now_ms: i64,
) -> (Counts, Vec<ShardReport>) {
    let snapshots: BTreeMap<String, ShardSnapshot> = ctx
        .status
        .snapshots()
        .into_iter()
        .map(|s| (s.shard_id.clone(), s))
        .collect();
    counts_of(&ctx.mapping.name, &snapshots, stream, now_ms)
}

/// A mapping's counts and shard reports from its shards' snapshots and the world.
fn counts_of(
    mapping: &str,
    snapshots: &BTreeMap<String, ShardSnapshot>,
    stream: Option<&Arc<SimulatedStream>>,
    now_ms: i64,
) -> (Counts, Vec<ShardReport>) {
    let mut counts = Counts::default();
    let mut shards = Vec::new();
    let shard_ids = stream.map(|s| s.shard_ids(now_ms)).unwrap_or_default();
    for shard in &shard_ids {
        let snapshot = snapshots.get(&shard.0);
        let (pending, before) = stream.map_or((0, 0), |s| {
            shard_pending(
                s,
                now_ms,
                shard,
                snapshot.and_then(|s| s.checkpoint.as_deref()),
                snapshot.and_then(|s| s.resumed_from.as_deref()),
                snapshot.and_then(|s| s.started_at_time_ms),
            )
        });
        counts.records_pending += pending;
        counts.records_before_start += before;
        let Some(s) = snapshot else {
            shards.push(ShardReport {
                mapping: mapping.to_string(),
                shard_id: shard.0.clone(),
                parent_shard_ids: vec![],
                state: crate::engine::status::ShardState::WaitingOnParents,
                checkpoint: None,
                records_succeeded: 0,
                records_discarded: 0,
                records_trimmed: 0,
                records_pending: pending,
                invocations: 0,
                invoke_throttles: 0,
                read_throttles: 0,
            });
            continue;
        };
        counts.records_succeeded += s.records_succeeded;
        counts.records_filtered += s.records_filtered;
        counts.records_discarded += s.records_discarded;
        counts.records_trimmed += s.records_trimmed;
        counts.invocations += s.invocations;
        counts.invoke_throttles += s.invoke_throttles;
        counts.read_throttles += s.read_throttles;
        counts.destination_records += s.destination_records;
        counts.dead_lettered_records += s.dead_lettered_records;
        shards.push(ShardReport {
            mapping: mapping.to_string(),
            shard_id: s.shard_id.clone(),
            parent_shard_ids: s.parent_shard_ids.clone(),
            state: s.state,
            checkpoint: s.checkpoint.clone(),
            records_succeeded: s.records_succeeded,
            records_discarded: s.records_discarded,
            records_trimmed: s.records_trimmed,
            records_pending: pending,
            invocations: s.invocations,
            invoke_throttles: s.invoke_throttles,
            read_throttles: s.read_throttles,
        });
    }
    counts.records_produced = stream.map_or(0, |s| s.records_produced(now_ms));
    (counts, shards)
}

fn build_report(
    parts: &Parts,
    now_ms: i64,
    seed: u64,
    simulated_seconds: f64,
    drained: bool,
) -> Report {
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
    for ctx in &parts.contexts {
        let (counts, shards) = mapping_counts(ctx, stream_of(parts, ctx), now_ms);
        report.counts.add(&counts);
        report.mappings.push(MappingReport {
            name: ctx.mapping.name.clone(),
            counts,
        });
        report.shards.extend(shards);
    }
    report
}

/// The human summary printed after a simulation; one line per shard only when
/// `per_shard` (`simulate --shards`): at 10,000 shards they would bury the totals, and
/// the JSON report has every shard anyway.
pub fn summary(report: &Report, per_shard: bool) -> String {
    let c = &report.counts;
    let rate = if report.wall_seconds > 0.0 {
        c.records_produced as f64 / report.wall_seconds
    } else {
        0.0
    };
    let mut out = format!(
        "simulated {:.1} s in {:.2} s of wall time ({:.0} records/s){}\n\
         records: produced {}, succeeded {}, filtered {}, discarded {}, trimmed {}, before start {}, pending {}\n\
         invocations {} (+ {} throttled, never reaching the function), throttled reads {}, failure records {} (destination {}, dead-letter file {})\n",
        report.simulated_seconds,
        report.wall_seconds,
        rate,
        if report.drained { ", drained" } else { ", stopped at max_duration_seconds" },
        c.records_produced,
        c.records_succeeded,
        c.records_filtered,
        c.records_discarded,
        c.records_trimmed,
        c.records_before_start,
        c.records_pending,
        c.invocations,
        c.invoke_throttles,
        c.read_throttles,
        c.destination_records + c.dead_lettered_records,
        c.destination_records,
        c.dead_lettered_records,
    );
    if let Some(workers) = &report.workers {
        out.push_str(&lease_report::summary_lines(workers));
    }
    if !per_shard {
        out.push_str(&format!(
            "shards: {} (one line each: --shards; every shard is in the JSON report)\n",
            report.shards.len()
        ));
        return out;
    }
    for shard in &report.shards {
        out.push_str(&format!(
            "  {} {:<28} {:<18} succeeded {:>8} discarded {:>5} invocations {:>6} pending {:>6}\n",
            shard.mapping,
            shard.shard_id,
            format!("{:?}", shard.state),
            shard.records_succeeded,
            shard.records_discarded,
            shard.invocations,
            shard.records_pending
        ));
    }
    out
}
