//! What the shard tests share: a mapping started on a simulated world (optionally reading
//! through a fault-injecting source, `Faulty`), and waiting for a shard's status.

use std::sync::Arc;

use crate::assemble::{assemble, Environment, Seeds};
use crate::checkpoint::MemoryStore;
use crate::clock::Clock;
use crate::engine::context::MappingContext;
use crate::engine::status::{ShardSnapshot, ShardStatus};
use crate::source::{SourceError, StreamSource};

/// Starts the first mapping of `config` (a simulated world) on the test's paused clock
/// and returns it once its first shard runs, with that shard's status.
pub(super) async fn start(
    config: &str,
    dir: &std::path::Path,
) -> (Arc<MappingContext>, Arc<ShardStatus>) {
    start_with(config, dir, |source| source).await
}

/// `start`, with the mapping reading its stream through `wrap(source)`.
pub(super) async fn start_with(
    config: &str,
    dir: &std::path::Path,
    wrap: impl FnOnce(Arc<dyn StreamSource>) -> Arc<dyn StreamSource>,
) -> (Arc<MappingContext>, Arc<ShardStatus>) {
    let config =
        crate::config::parse(config, dir).unwrap_or_else(|e| panic!("invalid config:\n{e}"));
    let start_ms = config.simulation.start_ms;
    let env = Environment {
        clock: Clock::starting_at(start_ms),
        store: Arc::new(MemoryStore::default()),
        stream_created_at_ms: &|_| Ok(start_ms),
        seeds: Seeds {
            world: 1,
            engine: 1,
            request_ids: Arc::new(crate::event::request_id::RequestIds::derived(1, "")),
        },
        invocation_log: None,
        tap: None,
        aws: None,
        line_sync: crate::destination::file::LineSync::None,
        leases: None,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let parts = assemble(&config, env).await.expect("assemble");
    let ctx = parts.contexts.into_iter().next().expect("a mapping");
    let ctx = Arc::try_unwrap(ctx).unwrap_or_else(|_| panic!("the context is shared"));
    let ctx = Arc::new(MappingContext {
        source: wrap(ctx.source.clone()),
        ..ctx
    });
    tokio::spawn(crate::engine::supervisor::run_mapping(ctx.clone()));
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Some(status) = ctx
            .status
            .snapshots()
            .first()
            .and_then(|s| ctx.status.get(&s.shard_id))
        {
            if status.snapshot().running_since_ms.is_some() {
                return (ctx, status);
            }
        }
    }
    panic!("no shard started");
}

pub(super) async fn wait_until(shard: &ShardStatus, what: impl Fn(&ShardSnapshot) -> bool) {
    for _ in 0..10_000 {
        if what(&shard.snapshot()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never happened: {:?}", shard.snapshot());
}

/// Which answers `Faulty` spoils.
#[derive(Clone, Copy)]
pub(super) enum Fault {
    /// The first iterator GetShardIterator hands out is cut in half.
    FirstIterator,
    /// Every iterator GetShardIterator hands out is cut in half.
    EveryIterator,
    /// The NextShardIterator of the first page with records is cut in half.
    NextIteratorOfFirstPage,
    /// The first reads are throttled.
    ThrottleFirstReads(u32),
}

/// What `Faulty` saw.
#[derive(Default)]
pub(super) struct FaultLog {
    /// Every GetShardIterator position, in order.
    pub(super) opened: Vec<crate::source::IteratorPosition>,
    /// The iterators it spoiled.
    corrupted: Vec<String>,
    /// When each read of a spoiled iterator came.
    pub(super) refused_at: Vec<tokio::time::Instant>,
    pub(super) throttled: u32,
    /// The last record of the page whose next iterator it spoiled.
    pub(super) spoiled_after: Option<crate::model::SequenceNumber>,
}

/// A stream source that spoils some of the answers of the one under it, as a
/// fault-injecting proxy would: an iterator cut in half is one the stream refuses.
pub(super) struct Faulty {
    inner: Arc<dyn StreamSource>,
    fault: Fault,
    log: SharedLog,
}

pub(super) type SharedLog = Arc<std::sync::Mutex<FaultLog>>;

impl Faulty {
    /// What `Faulty` will see, and how to put it over a source (for `start_with`).
    pub(super) fn wrap(
        fault: Fault,
    ) -> (
        SharedLog,
        impl FnOnce(Arc<dyn StreamSource>) -> Arc<dyn StreamSource>,
    ) {
        let log = SharedLog::default();
        let shared = log.clone();
        let wrap = move |inner| -> Arc<dyn StreamSource> {
            Arc::new(Faulty {
                inner,
                fault,
                log: shared,
            })
        };
        (log, wrap)
    }

    fn spoil(log: &mut FaultLog, iterator: &str) -> String {
        let spoiled = iterator[..iterator.len() / 2].to_string();
        log.corrupted.push(spoiled.clone());
        spoiled
    }
}

#[async_trait::async_trait]
impl StreamSource for Faulty {
    fn stream_arn(&self) -> &str {
        self.inner.stream_arn()
    }

    fn kind(&self) -> crate::model::StreamKind {
        self.inner.kind()
    }

    async fn list_shards(&self) -> Result<Vec<crate::model::ShardInfo>, SourceError> {
        self.inner.list_shards().await
    }

    async fn shard_iterator(
        &self,
        shard: &crate::model::ShardId,
        position: &crate::source::IteratorPosition,
    ) -> Result<String, SourceError> {
        let iterator = self.inner.shard_iterator(shard, position).await?;
        let mut log = self.log.lock().expect("log");
        log.opened.push(position.clone());
        let spoil = match self.fault {
            Fault::FirstIterator => log.opened.len() == 1,
            Fault::EveryIterator => true,
            _ => false,
        };
        Ok(if spoil {
            Faulty::spoil(&mut log, &iterator)
        } else {
            iterator
        })
    }

    async fn get_records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> Result<crate::source::RecordsPage, SourceError> {
        {
            let mut log = self.log.lock().expect("log");
            if log.corrupted.iter().any(|c| c == iterator) {
                log.refused_at.push(tokio::time::Instant::now());
            }
            if let Fault::ThrottleFirstReads(n) = self.fault {
                if log.throttled < n {
                    log.throttled += 1;
                    return Err(SourceError::Throttled(
                        "ProvisionedThroughputExceededException: injected".into(),
                    ));
                }
            }
        }
        let mut page = self.inner.get_records(iterator, limit).await?;
        let mut log = self.log.lock().expect("log");
        if matches!(self.fault, Fault::NextIteratorOfFirstPage) && log.spoiled_after.is_none() {
            if let (Some(last), Some(next)) = (page.records.last(), &page.next_iterator) {
                log.spoiled_after = Some(last.sequence_number.clone());
                page.next_iterator = Some(Faulty::spoil(&mut log, next));
            }
        }
        Ok(page)
    }
}
