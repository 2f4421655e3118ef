//! The shard reader against kinesis-local when the stream refuses its iterator (issue 10).
//! The mapping is assembled as the daemon assembles it (a real `KinesisSource`), then
//! reads through `Faulty`, a thin fault-injecting wrapper of that source that, like a
//! proxy mangling one answer, cuts the first iterator GetShardIterator hands out in half.
//! kinesis-local answers every read of it with HTTP 500 and no error code (see
//! `tests/aws_kinesis_source.rs`); the shard must re-open its iterator after
//! `SAME_FAILURES_BEFORE_REOPEN` of them and deliver every record, none skipped.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use esm_sim::assemble::{assemble, Environment, Seeds};
use esm_sim::aws::AwsFactory;
use esm_sim::checkpoint::MemoryStore;
use esm_sim::clock::Clock;
use esm_sim::destination::file::LineSync;
use esm_sim::engine::context::MappingContext;
use esm_sim::engine::shard::SAME_FAILURES_BEFORE_REOPEN;
use esm_sim::function::tap::Observer;
use esm_sim::function::InvokeResult;
use esm_sim::model::{ShardId, ShardInfo, StreamKind, StreamRecord};
use esm_sim::source::{IteratorPosition, RecordsPage, SourceError, StreamSource};
use support::daemon::wait_for;
use support::stream::TestStream;
use support::{daemon_config, put_record};

/// What `Faulty` saw.
#[derive(Default)]
struct FaultLog {
    /// Every GetShardIterator position, in order.
    opened: Vec<IteratorPosition>,
    /// The iterator it spoiled.
    corrupted: Option<String>,
    /// The answers to reads of the spoiled iterator.
    refused: Vec<Result<usize, SourceError>>,
}

/// The real source, with its first iterator cut in half.
struct Faulty {
    inner: Arc<dyn StreamSource>,
    log: Arc<Mutex<FaultLog>>,
}

#[async_trait]
impl StreamSource for Faulty {
    fn stream_arn(&self) -> &str {
        self.inner.stream_arn()
    }

    fn kind(&self) -> StreamKind {
        self.inner.kind()
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        self.inner.list_shards().await
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let iterator = self.inner.shard_iterator(shard, position).await?;
        let mut log = self.log.lock().expect("log");
        log.opened.push(position.clone());
        if log.corrupted.is_some() {
            return Ok(iterator);
        }
        let spoiled = iterator[..iterator.len() / 2].to_string();
        log.corrupted = Some(spoiled.clone());
        Ok(spoiled)
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        let answer = self.inner.get_records(iterator, limit).await;
        let mut log = self.log.lock().expect("log");
        if log.corrupted.as_deref() == Some(iterator) {
            let seen = answer
                .as_ref()
                .map(|page| page.records.len())
                .map_err(Clone::clone);
            log.refused.push(seen);
        }
        answer
    }
}

/// The sequence numbers of the records of successful invocations, in invocation order.
fn recording_tap() -> (Arc<Mutex<Vec<String>>>, Observer) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    let tap: Observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            if matches!(result, InvokeResult::Response(r) if r.function_error.is_none()) {
                let mut seen = sink.lock().expect("lock");
                seen.extend(records.iter().map(|r| r.sequence_number.0.clone()));
            }
        },
    );
    (seen, tap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_shard_whose_first_iterator_is_refused_re_opens_it_and_delivers_every_record() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "reader-faults", 1).await;
    let mut put = Vec::new();
    for n in 0..6 {
        let record = put_record(&client, &stream.arn, "user-1", format!(r#"{{"n":{n}}}"#)).await;
        put.push(record.sequence_number);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let text = daemon_config::fails_on_poison(
        dir.path(),
        &daemon_config::mapping("faults", &stream.arn, "batch_size = 2\n"),
    );
    let config = esm_sim::config::parse(&text, dir.path()).expect("config");
    let factory = AwsFactory::new(Some(support::kinesis_endpoint()), "us-east-1".into());
    let (seen, tap) = recording_tap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let env = Environment {
        clock: Clock::wall(),
        store: Arc::new(MemoryStore::default()),
        stream_created_at_ms: &|_| Ok(0),
        seeds: Seeds {
            world: 1,
            engine: 1,
            request_ids: Arc::new(esm_sim::event::request_id::RequestIds::derived(1, "")),
        },
        invocation_log: None,
        tap: Some(tap),
        aws: Some(&factory),
        line_sync: LineSync::None,
        leases: None,
        cancel: cancel.clone(),
    };
    let parts = assemble(&config, env).await.expect("assemble");
    let ctx = parts.contexts.into_iter().next().expect("a mapping");
    let ctx = Arc::try_unwrap(ctx).unwrap_or_else(|_| panic!("the context is shared"));
    let log = Arc::new(Mutex::new(FaultLog::default()));
    let ctx = Arc::new(MappingContext {
        source: Arc::new(Faulty {
            inner: ctx.source.clone(),
            log: log.clone(),
        }),
        ..ctx
    });
    let supervisor = tokio::spawn(esm_sim::engine::supervisor::run_mapping(ctx.clone()));

    wait_for(30, "every record to be delivered", || {
        seen.lock().expect("lock").len() >= put.len()
    })
    .await;
    let shard = ctx
        .status
        .get("shardId-000000000000")
        .expect("the shard's status")
        .snapshot();
    cancel.cancel();
    supervisor.await.expect("the supervisor");

    assert_eq!(
        *seen.lock().expect("lock"),
        put,
        "every record once, in order"
    );
    let log = log.lock().expect("log");
    let refusal = SourceError::Other("response error: unhandled error: Error (HTTP 500)".into());
    assert_eq!(
        log.refused,
        vec![Err(refusal); SAME_FAILURES_BEFORE_REOPEN as usize],
        "the spoiled iterator is read until the re-open, and refused each time"
    );
    // Nothing was read before the re-open: the new iterator starts where the first did.
    assert_eq!(
        log.opened,
        [IteratorPosition::TrimHorizon, IteratorPosition::TrimHorizon]
    );
    assert_eq!(shard.iterator_reopens, 1);
    assert_eq!(shard.records_polled, put.len() as u64, "{shard:?}");
}
