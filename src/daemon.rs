//! `esm-sim run`: the mappings in real time until SIGINT or SIGTERM.
//!
//! Checkpoints live in the embedded store under the state directory, so a restart resumes
//! every shard where it stopped. A simulated stream's creation time is kept there too: the
//! simulated world is a function of (config, seed, creation time, now), so a restarted
//! daemon finds the same records under the same sequence numbers, plus whatever the
//! producers wrote while it was down. Every `stats_interval_seconds` it logs throughput and
//! per-shard positions. The mappings run as the running set (`running`): the config's and
//! those created earlier through the Lambda API, which the admin API (`admin::server`,
//! started right after them and serving until they have stopped) can create, update and
//! delete while the daemon runs.
//!
//! With `[coordination] store = "dynamodb"` the process is one worker among several: its
//! lease keeper takes a share of the shards from the lease table, checkpoints live in the
//! lease rows (the local store keeps only this process's own values), and a clean stop
//! hands every lease back once the shards have stopped and their checkpoints are written.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use tokio_util::sync::CancellationToken;

use crate::admin::server::AdminServer;
use crate::admin::state::Mappings;
use crate::assemble::live::{CreatedAt, LiveAssembler};
use crate::assemble::{share, Environment, Seeds};
use crate::aws::AwsFactory;
use crate::checkpoint::embedded::EmbeddedStore;
use crate::checkpoint::CheckpointStore;
use crate::clock::Clock;
use crate::config::{Config, LeaseTableSettings};
use crate::coordination::dynamodb::DynamodbLeaseTable;
use crate::coordination::keeper::LeaseKeeper;
use crate::coordination::store::LeaseCheckpointStore;
use crate::destination::file::LineSync;
use crate::event::request_id::RequestIds;
use crate::function::tap::Observer;
use crate::running::RunningMappings;

/// The daemon until SIGINT or SIGTERM.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    // Signal handlers first: a signal during start-up then still means a clean stop.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signal = async move {
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                if let Err(error) = result {
                    tracing::error!(%error, "cannot wait for Ctrl-C; stopping");
                }
            }
            _ = terminate.recv() => {}
        }
    };
    run_until(config, None, signal).await
}

/// The daemon until `shutdown` completes (tests and embedders), with an optional tap on
/// every invocation.
pub async fn run_until(
    config: &Config,
    tap: Option<Observer>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let clock = Clock::wall();
    let store_path = config.state_dir.join("checkpoints.redb");
    let local: Arc<dyn CheckpointStore> = Arc::new(EmbeddedStore::open(
        &store_path,
        Duration::from_millis(config.checkpoint_flush_ms),
    )?);
    tracing::info!(state = %store_path.display(), "checkpoint store open");
    let aws = Arc::new(AwsFactory::new(
        config.aws.endpoint_url.clone(),
        config.aws.region.clone(),
    ));
    let engine_seed = clock.now_ms() as u64 ^ u64::from(std::process::id());
    let leases = match &config.coordination.lease_table {
        Some(settings) => Some(lease_worker(config, settings, &aws, clock, engine_seed).await?),
        None => None,
    };
    let store: Arc<dyn CheckpointStore> = match &leases {
        Some(keeper) => Arc::new(LeaseCheckpointStore::new(keeper.clone(), local.clone())),
        None => local.clone(),
    };
    let cancel = CancellationToken::new();
    let created_at: CreatedAt = {
        let store = store.clone();
        Arc::new(move |stream| {
            let key = format!("stream/{}/created_at_ms", stream.name);
            if let Some(value) = store.get_meta(&key)? {
                return Ok(value.parse()?);
            }
            let now = clock.now_ms();
            store.set_meta(&key, &now.to_string())?;
            Ok(now)
        })
    };
    let seeds = Seeds {
        world: config.simulation.seed,
        engine: engine_seed,
        request_ids: Arc::new(RequestIds::random()),
    };
    let shared = share(
        config,
        &Environment {
            clock,
            store: store.clone(),
            stream_created_at_ms: &*created_at,
            seeds: seeds.clone(),
            invocation_log: None,
            tap: tap.clone(),
            aws: Some(&aws),
            line_sync: LineSync::EveryLine,
            leases: leases.clone(),
            cancel: cancel.clone(),
        },
    )
    .await?;
    let assembler = LiveAssembler {
        config: config.clone(),
        clock,
        store: store.clone(),
        created_at,
        seeds,
        tap,
        aws,
        line_sync: LineSync::EveryLine,
        leases: leases.clone(),
        cancel: cancel.clone(),
        shared: tokio::sync::Mutex::new(shared),
    };
    let running = RunningMappings::start(assembler, &config.state_dir).await?;
    let admin = AdminServer::start(
        &config.admin,
        &config.state_dir,
        Mappings::Running(running.clone()),
        clock,
    )
    .await?;
    let keeper_task = leases.clone().map(|keeper| {
        if let Some(admin) = &admin {
            keeper.set_admin_url(admin.url().to_string());
        }
        tokio::spawn(keeper.run())
    });
    let stats = tokio::spawn(log_stats(
        running.clone(),
        config.stats_interval_ms,
        clock,
        cancel.clone(),
    ));
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight invocations and writing checkpoints");
    cancel.cancel();
    running.stopped().await;
    if let (Some(keeper), Some(task)) = (&leases, keeper_task) {
        keeper.hand_back().await;
        task.await?;
    }
    stats.await?;
    if let Some(admin) = admin {
        admin.stop().await;
    }
    store.flush()?;
    for ctx in running.contexts() {
        for shard in ctx.status.snapshots() {
            tracing::info!(mapping = %ctx.mapping.name, shard = %shard.shard_id,
                checkpoint = shard.checkpoint.as_deref().unwrap_or("none"), "final checkpoint");
        }
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// This worker's lease keeper on the DynamoDB lease table, the table created or checked.
/// Mappings on simulated streams are refused: each worker would simulate a world of its
/// own (`simulate` models several workers on one world).
async fn lease_worker(
    config: &Config,
    settings: &LeaseTableSettings,
    aws: &AwsFactory,
    clock: Clock,
    seed: u64,
) -> anyhow::Result<Arc<LeaseKeeper>> {
    if let Some(mapping) = config
        .mappings
        .iter()
        .find(|m| config.stream_of(m).is_some())
    {
        anyhow::bail!(
            "mapping {:?} reads a simulated stream: [coordination] store = \"dynamodb\" shares real streams between `esm-sim run` processes (each would simulate a world of its own); use `esm-sim simulate` with [simulation] workers to model several workers",
            mapping.name
        );
    }
    let table = DynamodbLeaseTable::connect(aws, &settings.table).await;
    let keeper = LeaseKeeper::new(Arc::new(table), settings, clock, seed);
    keeper
        .prepare()
        .await
        .with_context(|| format!("lease table {:?}", settings.table))?;
    tracing::info!(table = %settings.table, worker = %settings.worker_id,
        lease_ms = settings.timing.lease_duration_ms, renew_ms = settings.timing.renew_interval_ms,
        take_ms = settings.timing.take_interval_ms, "sharing shards through the lease table");
    Ok(keeper)
}

async fn log_stats(
    running: Arc<RunningMappings>,
    interval_ms: u64,
    clock: Clock,
    cancel: CancellationToken,
) {
    let mut previous: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_ms = clock.now_ms();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
        }
        let now = clock.now_ms();
        let seconds = ((now - last_ms) as f64 / 1000.0).max(0.001);
        last_ms = now;
        for ctx in running.contexts() {
            let shards = ctx.status.snapshots();
            let succeeded: u64 = shards.iter().map(|s| s.records_succeeded).sum();
            let discarded: u64 = shards.iter().map(|s| s.records_discarded).sum();
            let invocations: u64 = shards.iter().map(|s| s.invocations).sum();
            let done = succeeded + discarded;
            let before = previous.insert(ctx.mapping.name.clone(), done);
            let rate = done.saturating_sub(before.unwrap_or(0)) as f64 / seconds;
            tracing::info!(
                mapping = %ctx.mapping.name,
                "{rate:.1} records/s; succeeded {succeeded}, discarded {discarded}, invocations {invocations}"
            );
            for s in shards {
                let checkpoint = s
                    .checkpoint
                    .as_deref()
                    .map_or("-".to_string(), short_sequence);
                tracing::info!(
                    mapping = %ctx.mapping.name,
                    "  {} {:?} checkpoint {} succeeded {} discarded {}{}",
                    s.shard_id,
                    s.state,
                    checkpoint,
                    s.records_succeeded,
                    s.records_discarded,
                    s.last_error.as_ref().map(|e| format!(" last error: {}", e.message)).unwrap_or_default()
                );
            }
        }
    }
}

/// Long sequence numbers shortened for a log line or a table: `4959…000123` (anything
/// not ASCII is left whole).
pub(crate) fn short_sequence(seq: &str) -> String {
    if seq.len() <= 16 || !seq.is_ascii() {
        seq.to_string()
    } else {
        format!("{}…{}", &seq[..4], &seq[seq.len() - 8..])
    }
}
