//! `simulate` with a lease table: several workers in one virtual-time world, each a
//! process of its own as far as the engine can tell — its own lease keeper (worker id
//! `worker-N`), its own checkpoint store over the keeper, its own mapping contexts and
//! tasks — sharing one `WatchedTable` (in memory) and one `Shared` world, so every record
//! is produced once whoever reads it.
//!
//! The schedule of `[[simulation.worker_events]]` is carried out as the real signals would
//! be: `start` builds and starts a worker (a restart after a crash or stop is a new
//! process with the same id); `crash` kills its gate and aborts its supervisors and
//! keeper (no hand-back; what it had in flight never comes back), and freezes its
//! counters as they were; `pause` closes its gate until the resume; `stop` cancels its
//! mappings, and once their tasks have stopped the keeper writes what they saved and
//! hands the leases back. Once a virtual second (and at each event) the driver samples
//! the table for the report (`lease_report`), and ends as the lone `simulate` does: when
//! the world is drained — judged by the checkpoints in the table — or at the deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::gate::{Gate, GatedFunction, GatedSource, GatedTable};
use super::lease_report::{self, EventSeen, Frozen, Sample, WorkerRun};
use super::ledger::Ledger;
use super::watched_table::WatchedTable;
use super::{Report, SimulateOptions};
use crate::assemble::{assemble_with, share, Environment, Seeds, Shared};
use crate::checkpoint::{CheckpointStore, MemoryStore};
use crate::clock::Clock;
use crate::config::schema::SimStreamConfig;
use crate::config::{Config, LeaseTableSettings, WorkerAction, WorkerEvent};
use crate::coordination::keeper::LeaseKeeper;
use crate::coordination::store::LeaseCheckpointStore;
use crate::destination::file::LineSync;
use crate::engine::context::MappingContext;
use crate::engine::invocation_log::InvocationLog;
use crate::engine::supervisor::run_mapping;
use crate::event::request_id::RequestIds;
use crate::rng::Rng;

/// What every worker is built from.
struct World<'a> {
    config: &'a Config,
    options: &'a SimulateOptions,
    settings: &'a LeaseTableSettings,
    seed: u64,
    clock: Clock,
    table: Arc<WatchedTable>,
    ledger: Arc<Ledger>,
    request_ids: Arc<RequestIds>,
    invocation_log: Option<Arc<InvocationLog>>,
    /// Every simulated stream exists from the start of the simulation.
    created_at: Box<StreamCreatedAt>,
}

type StreamCreatedAt = dyn Fn(&SimStreamConfig) -> anyhow::Result<i64> + Sync;

/// One process of a worker, from its start to its crash or stop (or the end).
struct Process {
    run: WorkerRun,
    gate: Arc<Gate>,
    cancel: CancellationToken,
    supervisors: Vec<JoinHandle<()>>,
    keeper_task: Option<JoinHandle<()>>,
    paused_until_ms: Option<i64>,
    /// A stop in progress: supervisors finishing, then the hand-back.
    stopping: Option<JoinHandle<()>>,
}

/// Runs the config's workers to the end and reports.
pub(super) async fn simulate_workers(
    config: &Config,
    options: &SimulateOptions,
    settings: &LeaseTableSettings,
    seed: u64,
    clock: Clock,
    invocation_log: Option<Arc<InvocationLog>>,
) -> anyhow::Result<Report> {
    if options.state_dir.is_some() {
        anyhow::bail!(
            "simulate --state-dir keeps the embedded store's checkpoints; with [coordination] store = \"dynamodb\" the lease table of simulate is in memory and a run cannot be resumed"
        );
    }
    let start_ms = config.simulation.start_ms;
    let world = World {
        config,
        options,
        settings,
        seed,
        clock,
        table: Arc::new(WatchedTable::new(clock)),
        ledger: Arc::new(Ledger::default()),
        request_ids: Arc::new(RequestIds::derived(seed, &format!("{config:?}"))),
        invocation_log: invocation_log.clone(),
        created_at: Box::new(move |_: &SimStreamConfig| Ok(start_ms)),
    };
    let max_duration_ms = options
        .until_seconds
        .map_or(config.simulation.max_duration_ms, |s| s as i64 * 1000);
    let events = &config.simulation.worker_events;
    let mut shared = share(config, &world.environment(None, CancellationToken::new())).await?;
    let mut processes: Vec<Process> = Vec::new();
    for worker in 1..=config.simulation.workers {
        let first = events.iter().find(|e| e.worker == worker);
        if first.is_none_or(|e| e.action != WorkerAction::Start) {
            processes.push(world.start(worker, 0, &mut shared).await?);
        }
    }
    let mut seen: Vec<EventSeen> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_event = 0;
    let drained = loop {
        let elapsed = clock.elapsed_ms();
        for process in processes.iter_mut() {
            if process
                .paused_until_ms
                .is_some_and(|until| until <= elapsed)
            {
                process.paused_until_ms = None;
                process.gate.resume();
                tracing::info!(worker = process.run.worker, "worker resumed (SIGCONT)");
            }
        }
        while let Some(event) = events.get(next_event).filter(|e| e.at_ms <= elapsed) {
            next_event += 1;
            seen.extend(lease_report::event_seen(event, &world.table));
            world.apply(event, &mut processes, &mut shared).await?;
        }
        samples.push(lease_report::sample(
            &world.table,
            elapsed,
            &running_ids(&processes),
        ));
        let settled =
            next_event == events.len() && processes.iter().all(|p| p.paused_until_ms.is_none());
        if settled
            && lease_report::is_drained(
                config,
                &shared,
                &world.table,
                &runs(&processes),
                clock.now_ms(),
            )
        {
            break true;
        }
        if elapsed >= max_duration_ms {
            break false;
        }
        let mut wake = (elapsed / 1000 + 1) * 1000;
        wake = wake.min(
            events
                .get(next_event)
                .map_or(wake, |e| e.at_ms.max(elapsed + 1)),
        );
        for until in processes.iter().filter_map(|p| p.paused_until_ms) {
            wake = wake.min(until.max(elapsed + 1));
        }
        tokio::time::sleep(Duration::from_millis((wake - elapsed) as u64)).await;
    };
    let simulated_seconds = clock.elapsed_ms() as f64 / 1000.0;
    let now_ms = clock.now_ms();
    let report = lease_report::build(
        &lease_report::Inputs {
            config,
            shared: &shared,
            table: &world.table,
            ledger: &world.ledger,
            runs: &runs(&processes),
            samples: &samples,
            events: &seen,
            start_ms: config.simulation.start_ms,
            now_ms,
        },
        seed,
        simulated_seconds,
        drained,
    );
    // The report shows the workers as the simulation stopped, before their hand-back.
    shut_down(&mut processes).await;
    if let Some(log) = &invocation_log {
        log.flush()?;
    }
    Ok(report)
}

fn runs(processes: &[Process]) -> Vec<&WorkerRun> {
    processes.iter().map(|p| &p.run).collect()
}

/// Worker ids of the processes running now (not paused, crashed or stopped).
fn running_ids(processes: &[Process]) -> Vec<String> {
    processes
        .iter()
        .filter(|p| p.run.frozen.is_none() && !p.run.stopped && p.paused_until_ms.is_none())
        .map(|p| p.run.keeper.worker_id.clone())
        .collect()
}

/// The end of the simulation: paused workers resume, running ones stop cleanly (their
/// leases handed back), stops in progress finish; crashed ones stay dead.
async fn shut_down(processes: &mut [Process]) {
    for process in processes.iter_mut() {
        process.gate.resume();
        if process.run.frozen.is_none() && !process.run.stopped {
            process.cancel.cancel();
            process.stopping = Some(stop(process));
        }
    }
    for process in processes.iter_mut() {
        if let Some(stopping) = process.stopping.take() {
            let _ = stopping.await;
        }
    }
}

/// Stops a process cleanly in the background: its mappings' tasks stop (their
/// checkpoints queued), then the keeper writes them and hands every lease back.
fn stop(process: &mut Process) -> JoinHandle<()> {
    process.cancel.cancel();
    let supervisors = std::mem::take(&mut process.supervisors);
    let keeper_task = process.keeper_task.take();
    let keeper = process.run.keeper.clone();
    tokio::spawn(async move {
        for supervisor in supervisors {
            let _ = supervisor.await;
        }
        keeper.hand_back().await;
        if let Some(task) = keeper_task {
            let _ = task.await;
        }
    })
}

impl World<'_> {
    fn environment(
        &self,
        leases: Option<(Arc<LeaseKeeper>, Arc<LeaseCheckpointStore>)>,
        cancel: CancellationToken,
    ) -> Environment<'_> {
        let (keeper, store): (_, Arc<dyn CheckpointStore>) = match leases {
            Some((keeper, store)) => (Some(keeper), store),
            None => (None, Arc::new(MemoryStore::default())),
        };
        Environment {
            clock: self.clock,
            store,
            stream_created_at_ms: &*self.created_at,
            seeds: Seeds {
                world: self.seed,
                engine: self.seed,
                request_ids: self.request_ids.clone(),
            },
            invocation_log: self.invocation_log.clone(),
            tap: self.options.tap.clone(),
            aws: None,
            line_sync: LineSync::None,
            leases: keeper,
            cancel,
        }
    }

    /// Starts a process of `worker` (at virtual `at_ms`): keeper, store, contexts behind
    /// its gate, supervisors.
    async fn start(
        &self,
        worker: usize,
        at_ms: i64,
        shared: &mut Shared,
    ) -> anyhow::Result<Process> {
        let gate = Arc::new(Gate::default());
        let settings = LeaseTableSettings {
            worker_id: format!("worker-{worker}"),
            ..self.settings.clone()
        };
        let keeper_seed =
            Rng::derived(self.seed, &format!("simulate/worker-{worker}/{at_ms}")).next_u64();
        let table = Arc::new(GatedTable {
            inner: self.table.clone(),
            gate: gate.clone(),
        });
        let keeper = LeaseKeeper::new(table, &settings, self.clock, keeper_seed);
        let store = Arc::new(LeaseCheckpointStore::new(
            keeper.clone(),
            Arc::new(MemoryStore::default()),
        ));
        let cancel = CancellationToken::new();
        let env = self.environment(Some((keeper.clone(), store)), cancel.clone());
        let parts = assemble_with(self.config, env, shared).await?;
        let contexts: Vec<Arc<MappingContext>> = parts
            .contexts
            .iter()
            .map(|ctx| {
                Arc::new(MappingContext {
                    source: Arc::new(GatedSource {
                        inner: ctx.source.clone(),
                        gate: gate.clone(),
                    }),
                    function: Arc::new(GatedFunction {
                        inner: ctx.function.clone(),
                        gate: gate.clone(),
                        ledger: self.ledger.clone(),
                        mapping: ctx.mapping.name.clone(),
                        worker,
                        clock: self.clock,
                    }),
                    ..(**ctx).clone()
                })
            })
            .collect();
        tracing::info!(worker, worker_id = %settings.worker_id, "worker started");
        let keeper_task = tokio::spawn(keeper.clone().run());
        let supervisors = contexts
            .iter()
            .map(|ctx| tokio::spawn(run_mapping(ctx.clone())))
            .collect();
        Ok(Process {
            run: WorkerRun {
                worker,
                keeper,
                contexts,
                frozen: None,
                stopped: false,
            },
            gate,
            cancel,
            supervisors,
            keeper_task: Some(keeper_task),
            paused_until_ms: None,
            stopping: None,
        })
    }

    async fn apply(
        &self,
        event: &WorkerEvent,
        processes: &mut Vec<Process>,
        shared: &mut Shared,
    ) -> anyhow::Result<()> {
        let worker = event.worker;
        if event.action == WorkerAction::Start {
            processes.push(self.start(worker, event.at_ms, shared).await?);
            return Ok(());
        }
        // The schedule was checked: the worker has a live process.
        let Some(process) = processes
            .iter_mut()
            .rev()
            .find(|p| p.run.worker == worker && p.run.frozen.is_none() && !p.run.stopped)
        else {
            return Ok(());
        };
        match event.action {
            WorkerAction::Crash => {
                tracing::warn!(
                    worker,
                    "worker crashed (kill -9): no hand-back, in-flight work lost"
                );
                process.run.frozen = Some(Frozen::now(&process.run));
                process.gate.kill();
                for task in process
                    .supervisors
                    .drain(..)
                    .chain(process.keeper_task.take())
                {
                    task.abort();
                }
            }
            WorkerAction::Pause { for_ms } => {
                tracing::warn!(worker, for_ms, "worker paused (SIGSTOP)");
                process.gate.pause();
                process.paused_until_ms = Some(event.at_ms + for_ms);
            }
            WorkerAction::Stop => {
                tracing::info!(worker, "worker stopping (SIGTERM): leases handed back");
                process.run.stopped = true;
                process.stopping = Some(stop(process));
            }
            WorkerAction::Start => {}
        }
        Ok(())
    }
}
