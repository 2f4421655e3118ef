//! `StreamSource` over a Kinesis enhanced fan-out consumer: records pushed by
//! SubscribeToShard (the SDK's event stream), served to the engine through the same
//! `shard_iterator` / `get_records` seam as GetRecords, so the engine cannot tell them apart.
//!
//! What it owns: the consumer (registered or reused at start, waited for until ACTIVE:
//! `kinesis_efo/consumer.rs`), and one subscription per shard. `list_shards` and the stream's identity are the
//! GetRecords source's (`KinesisSource`), which it wraps.
//!
//! Why it is shaped so:
//! - An "iterator" is an opaque token naming a shard and a generation. `shard_iterator`
//!   only records where to start (no I/O); the first `get_records` subscribes. A token
//!   of an older generation (the shard was re-opened since) or of a finished shard is
//!   `ExpiredIterator`, so the engine re-opens from its own position, as it does for
//!   GetRecords.
//! - `get_records` hands out the records of the events already received: it waits at
//!   most `wait` (the mapping's poll interval) for the first event, then takes what has
//!   already arrived without waiting, and keeps what exceeds `limit` for the next call.
//!   An empty page keeps the token.
//! - Every event's ContinuationSequenceNumber moves the resume position, even without
//!   records. When a subscription ends (AWS ends each after 5 minutes), fails, or is
//!   renewed (`with_subscription_lifetime`), the next read subscribes again
//!   AFTER_SEQUENCE_NUMBER that continuation, never from the original position, so
//!   nothing is lost or read twice. Records received but not yet handed out stay.
//! - An event without a continuation is the shard's end: once its records are handed
//!   out, the page has no next iterator and carries the event's ChildShards. Before each
//!   resubscription one GetRecords call checks whether the shard is closed and read to
//!   its end, because kinesis-local (LocalStack's Kinesis) never sends that event; on AWS
//!   this costs two calls per shard every 5 minutes.
//! - Errors are classified like the GetRecords source's (`sdk_error::source_error`), plus
//!   ResourceInUseException, which SubscribeToShard answers to a resubscription within
//!   5 seconds of the previous one: a throttle (back off, do not count).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::event_stream::RawMessage;
use tokio::time::Instant;

mod consumer;

use self::consumer::{register_or_reuse, wait_until_active};
use super::kinesis::{self, KinesisSource};
use super::sdk_error;
use super::{IteratorPosition, RecordsPage, SourceError, StreamSource};
use crate::aws::{self, AwsFactory};
use crate::config::FanOutConsumer;
use crate::model::{SequenceNumber, ShardId, ShardInfo, StreamKind, StreamRecord};

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    SubscribeToShardEventStreamError,
>;

/// One Kinesis data stream, read through an enhanced fan-out consumer.
pub struct KinesisEfoSource {
    stream: KinesisSource,
    consumer_arn: String,
    /// How long `get_records` waits for an event before it returns an empty page.
    wait: Duration,
    /// Renew each subscription after this long; `None`: when the service ends it.
    subscription_lifetime: Option<Duration>,
    shards: Mutex<BTreeMap<ShardId, Arc<tokio::sync::Mutex<Subscription>>>>,
    generations: AtomicU64,
    subscriptions_opened: AtomicU64,
}

impl KinesisEfoSource {
    /// `stream_arn`: the stream (a missing one is "Stream not found: <arn>"). The consumer
    /// named by ARN must exist ("Consumer not found: <arn>"); one named by name is
    /// registered unless the stream has it. Either is waited for until ACTIVE.
    pub async fn connect(
        factory: &AwsFactory,
        stream_arn: &str,
        consumer: &FanOutConsumer,
        wait: Duration,
    ) -> anyhow::Result<KinesisEfoSource> {
        let stream = KinesisSource::connect(factory, stream_arn).await?;
        let consumer_arn = match consumer {
            FanOutConsumer::Arn(arn) => arn.clone(),
            FanOutConsumer::Name(name) => {
                register_or_reuse(stream.client(), stream.stream_arn(), name).await?
            }
        };
        wait_until_active(stream.client(), &consumer_arn).await?;
        tracing::info!(stream = %stream.stream_arn(), consumer = %consumer_arn, "enhanced fan-out consumer ACTIVE");
        Ok(KinesisEfoSource {
            stream,
            consumer_arn,
            wait,
            subscription_lifetime: None,
            shards: Mutex::new(BTreeMap::new()),
            generations: AtomicU64::new(0),
            subscriptions_opened: AtomicU64::new(0),
        })
    }

    /// Ends and renews every subscription after `lifetime` (AWS ends them after 5
    /// minutes); only worth setting to exercise resubscription quickly.
    pub fn with_subscription_lifetime(mut self, lifetime: Duration) -> Self {
        self.subscription_lifetime = Some(lifetime);
        self
    }

    /// SubscribeToShard calls that succeeded so far.
    pub fn subscriptions_opened(&self) -> u64 {
        self.subscriptions_opened.load(Ordering::Relaxed)
    }

    fn shards(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<ShardId, Arc<tokio::sync::Mutex<Subscription>>>> {
        self.shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn subscribe(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<Events, SourceError> {
        let output = self
            .stream
            .client()
            .subscribe_to_shard()
            .consumer_arn(&self.consumer_arn)
            .shard_id(shard.as_str())
            .starting_position(starting_position(position)?)
            .send()
            .await
            .map_err(|e| subscribe_error(&e))?;
        self.subscriptions_opened.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(shard = %shard, position = ?position, "subscribed");
        Ok(output.event_stream)
    }

    /// Before a resubscription: the children of the shard if GetRecords says it is closed
    /// and nothing is left after `position`. kinesis-local never ends a closed shard's
    /// subscription with ChildShards (AWS does); this lets a mapping on it move on to
    /// the children at the next resubscription. A failed check changes nothing.
    async fn closed_after(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Option<Vec<ShardInfo>> {
        let IteratorPosition::AfterSequence(_) = position else {
            return None;
        };
        let checked = match self.stream.shard_iterator(shard, position).await {
            Ok(iterator) => self.stream.get_records(&iterator, 1).await,
            Err(error) => Err(error),
        };
        match checked {
            Ok(page) if page.records.is_empty() && page.next_iterator.is_none() => {
                Some(page.child_shards)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(shard = %shard, %error, "shard end check failed; subscribing");
                None
            }
        }
    }

    /// Subscribes if needed, then receives events into `sub.pending`: waits up to `wait`
    /// for records, then takes only what has already arrived.
    async fn receive(&self, sub: &mut Subscription, limit: usize) -> Result<(), SourceError> {
        if let (Some(lifetime), Some((_, since))) = (self.subscription_lifetime, &sub.events) {
            if since.elapsed() >= lifetime {
                tracing::debug!(shard = %sub.shard, "renewing the subscription");
                sub.events = None;
            }
        }
        if sub.events.is_none() {
            if let Some(children) = self.closed_after(&sub.shard, &sub.position).await {
                tracing::info!(shard = %sub.shard, "the shard is closed and fully read");
                sub.ended = Some(children);
                return Ok(());
            }
            let events = self.subscribe(&sub.shard, &sub.position).await?;
            sub.events = Some((events, Instant::now()));
        }
        let deadline = Instant::now() + self.wait;
        loop {
            let Some((events, _)) = sub.events.as_mut() else {
                return Ok(());
            };
            // `recv` is cancel-safe: a timeout loses no part of an event.
            let wait = if sub.pending.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match tokio::time::timeout(wait, events.recv()).await {
                Err(_) => return Ok(()),
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)))) => {
                    sub.accept(event, kinesis::now_ms());
                    if sub.ended.is_some() || sub.pending.len() >= limit {
                        return Ok(());
                    }
                }
                // An event type this SDK does not know: nothing to read in it.
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => {
                    tracing::debug!(shard = %sub.shard, "subscription ended; the next read subscribes again");
                    sub.events = None;
                    return Ok(());
                }
                Ok(Err(error)) => {
                    sub.events = None;
                    let error = event_error(&error);
                    if sub.pending.is_empty() {
                        return Err(error);
                    }
                    // Hand out what arrived; the next read subscribes again.
                    tracing::debug!(shard = %sub.shard, %error, "subscription failed after records arrived");
                    return Ok(());
                }
            }
        }
    }
}

/// Where one shard's subscription is: what the engine has not been handed yet, and where
/// the next SubscribeToShard starts.
struct Subscription {
    generation: u64,
    shard: ShardId,
    /// The engine's start position, then AFTER_SEQUENCE_NUMBER the last continuation.
    position: IteratorPosition,
    /// The open event stream and when it was opened.
    events: Option<(Events, Instant)>,
    pending: VecDeque<StreamRecord>,
    millis_behind_latest: Option<i64>,
    /// The shard ended; these are its children.
    ended: Option<Vec<ShardInfo>>,
}

impl Subscription {
    fn new(generation: u64, shard: ShardId, position: IteratorPosition) -> Self {
        Subscription {
            generation,
            shard,
            position,
            events: None,
            pending: VecDeque::new(),
            millis_behind_latest: None,
            ended: None,
        }
    }

    /// Takes one event's records, progress and (at the shard's end) children.
    fn accept(&mut self, event: SubscribeToShardEvent, now_ms: i64) {
        self.pending.extend(
            event
                .records
                .into_iter()
                .map(|record| kinesis::record(record, now_ms)),
        );
        self.millis_behind_latest = Some(event.millis_behind_latest);
        if event.continuation_sequence_number.is_empty() {
            let children = event.child_shards.unwrap_or_default();
            self.ended = Some(children.into_iter().map(kinesis::child_shard).collect());
            self.events = None;
        } else {
            self.position =
                IteratorPosition::AfterSequence(SequenceNumber(event.continuation_sequence_number));
        }
    }

    /// The next page: at most `limit` pending records; no next iterator once the shard
    /// ended and everything was handed out.
    fn page(&mut self, limit: usize, token: &str) -> RecordsPage {
        let take = limit.max(1).min(self.pending.len());
        let records: Vec<StreamRecord> = self.pending.drain(..take).collect();
        let finished = self.pending.is_empty() && self.ended.is_some();
        RecordsPage {
            records,
            next_iterator: (!finished).then(|| token.to_string()),
            millis_behind_latest: self.millis_behind_latest,
            child_shards: if finished {
                self.ended.take().unwrap_or_default()
            } else {
                Vec::new()
            },
            lost_to_retention: None,
        }
    }
}

fn token(shard: &ShardId, generation: u64) -> String {
    format!("efo:{generation}:{shard}")
}

/// `efo:GENERATION:SHARD` → (shard, generation).
fn parse_token(token: &str) -> Option<(ShardId, u64)> {
    let (generation, shard) = token.strip_prefix("efo:")?.split_once(':')?;
    let generation = generation.parse().ok()?;
    (!shard.is_empty()).then(|| (ShardId(shard.to_string()), generation))
}

fn starting_position(position: &IteratorPosition) -> Result<StartingPosition, SourceError> {
    let (kind, timestamp, sequence_number) = kinesis::iterator_type(position);
    StartingPosition::builder()
        .r#type(kind)
        .set_timestamp(timestamp)
        .set_sequence_number(sequence_number)
        .build()
        .map_err(|e| SourceError::Other(format!("SubscribeToShard StartingPosition: {e}")))
}

/// A SubscribeToShard call's error as the engine sees it.
fn subscribe_error<E>(error: &SdkError<E, HttpResponse>) -> SourceError
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    if aws::error_code(error) == Some("ResourceInUseException") {
        return SourceError::Throttled(aws::describe(error));
    }
    sdk_error::source_error(error)
}

/// An error inside an open subscription's event stream.
fn event_error(error: &SdkError<SubscribeToShardEventStreamError, RawMessage>) -> SourceError {
    use SubscribeToShardEventStreamError as E;
    match error {
        // Event stream exceptions carry no error code: the variant names them.
        SdkError::ServiceError(context) => match context.err() {
            err @ E::ResourceNotFoundException(_) => SourceError::NotFound(err.to_string()),
            err @ (E::ResourceInUseException(_)
            | E::InternalFailureException(_)
            | E::KmsThrottlingException(_)) => SourceError::Throttled(err.to_string()),
            err => SourceError::Other(err.to_string()),
        },
        // The connection broke or an event was garbled: subscribe again after a backoff.
        other => SourceError::Throttled(aws::describe(other)),
    }
}

#[async_trait]
impl StreamSource for KinesisEfoSource {
    fn stream_arn(&self) -> &str {
        self.stream.stream_arn()
    }

    fn kind(&self) -> StreamKind {
        StreamKind::Kinesis
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        self.stream.list_shards().await
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let subscription = Subscription::new(generation, shard.clone(), position.clone());
        // A shard is read by one task: a new iterator replaces (and closes) the old one.
        self.shards().insert(
            shard.clone(),
            Arc::new(tokio::sync::Mutex::new(subscription)),
        );
        Ok(token(shard, generation))
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        let (shard, generation) = parse_token(iterator).ok_or_else(|| {
            SourceError::Other(format!("not an enhanced fan-out iterator: {iterator:?}"))
        })?;
        let subscription = self
            .shards()
            .get(&shard)
            .cloned()
            .ok_or(SourceError::ExpiredIterator)?;
        let mut sub = subscription.lock().await;
        // The shard was re-opened since this token was handed out.
        if sub.generation != generation {
            return Err(SourceError::ExpiredIterator);
        }
        if sub.pending.is_empty() && sub.ended.is_none() {
            self.receive(&mut sub, limit).await?;
        }
        let page = sub.page(limit, iterator);
        if page.next_iterator.is_none() {
            drop(sub);
            let mut shards = self.shards();
            if shards
                .get(&shard)
                .is_some_and(|s| Arc::ptr_eq(s, &subscription))
            {
                shards.remove(&shard);
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::{ChildShard, HashKeyRange, Record, ShardIteratorType};
    use aws_smithy_types::Blob;

    fn record(seq: &str) -> Record {
        Record::builder()
            .sequence_number(seq)
            .partition_key("k")
            .data(Blob::new(seq.as_bytes().to_vec()))
            .build()
            .unwrap()
    }

    fn event(seqs: &[&str], continuation: &str, behind: i64) -> SubscribeToShardEvent {
        SubscribeToShardEvent::builder()
            .set_records(Some(seqs.iter().map(|s| record(s)).collect()))
            .continuation_sequence_number(continuation)
            .millis_behind_latest(behind)
            .build()
            .unwrap()
    }

    fn seqs(page: &RecordsPage) -> Vec<&str> {
        page.records
            .iter()
            .map(|r| r.sequence_number.as_str())
            .collect()
    }

    fn shard0() -> ShardId {
        ShardId("shardId-000000000000".into())
    }

    #[test]
    fn tokens_name_the_shard_and_generation_and_nothing_else_parses() {
        let t = token(&shard0(), 7);
        assert_eq!(t, "efo:7:shardId-000000000000");
        assert_eq!(parse_token(&t), Some((shard0(), 7)));
        for bad in ["", "efo:", "efo:x:shard", "efo:1:", "gr:1:shard", "AAAA"] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_continuation_moves_the_resume_position_even_without_records() {
        let mut sub = Subscription::new(1, shard0(), IteratorPosition::TrimHorizon);
        sub.accept(event(&["1", "2"], "2", 500), 0);
        assert_eq!(
            sub.position,
            IteratorPosition::AfterSequence(SequenceNumber("2".into()))
        );
        sub.accept(event(&[], "5", 0), 0);
        assert_eq!(
            sub.position,
            IteratorPosition::AfterSequence(SequenceNumber("5".into()))
        );
        let page = sub.page(10, "t");
        assert_eq!(seqs(&page), vec!["1", "2"]);
        assert_eq!(page.next_iterator.as_deref(), Some("t"));
        assert_eq!(page.millis_behind_latest, Some(0));
        assert!(page.child_shards.is_empty());
    }

    #[test]
    fn records_beyond_the_limit_wait_for_the_next_page() {
        let mut sub = Subscription::new(1, shard0(), IteratorPosition::Latest);
        sub.accept(event(&["1", "2", "3"], "3", 0), 0);
        assert_eq!(seqs(&sub.page(2, "t")), vec!["1", "2"]);
        assert_eq!(seqs(&sub.page(2, "t")), vec!["3"]);
        let empty = sub.page(2, "t");
        assert!(empty.records.is_empty());
        assert_eq!(empty.next_iterator.as_deref(), Some("t"));
    }

    #[test]
    fn an_event_without_continuation_ends_the_shard_once_its_records_are_handed_out() {
        let mut sub = Subscription::new(1, shard0(), IteratorPosition::TrimHorizon);
        let child = ChildShard::builder()
            .shard_id("shardId-000000000002")
            .parent_shards("shardId-000000000000")
            .parent_shards("shardId-000000000001")
            .hash_key_range(
                HashKeyRange::builder()
                    .starting_hash_key("0")
                    .ending_hash_key("1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let last = SubscribeToShardEvent::builder()
            .records(record("8"))
            .records(record("9"))
            .continuation_sequence_number("")
            .millis_behind_latest(0)
            .child_shards(child)
            .build()
            .unwrap();
        sub.accept(last, 0);
        // The resume position stays where the last continuation put it.
        assert_eq!(sub.position, IteratorPosition::TrimHorizon);
        let first = sub.page(1, "t");
        assert_eq!(seqs(&first), vec!["8"]);
        assert_eq!(first.next_iterator.as_deref(), Some("t"));
        assert!(first.child_shards.is_empty());
        let end = sub.page(1, "t");
        assert_eq!(seqs(&end), vec!["9"]);
        assert_eq!(end.next_iterator, None);
        assert_eq!(
            end.child_shards,
            vec![ShardInfo {
                shard_id: ShardId("shardId-000000000002".into()),
                parent_shard_ids: vec![
                    ShardId("shardId-000000000000".into()),
                    ShardId("shardId-000000000001".into())
                ],
            }]
        );
    }

    #[test]
    fn event_stream_errors_are_classified_for_the_engine() {
        use aws_sdk_kinesis::types::error::{
            KmsAccessDeniedException, ResourceInUseException, ResourceNotFoundException,
        };
        let service = |e: SubscribeToShardEventStreamError| {
            event_error(&SdkError::service_error(e, RawMessage::invalid(None)))
        };
        let in_use = ResourceInUseException::builder()
            .message("Another active subscription exists")
            .build();
        assert_eq!(
            service(SubscribeToShardEventStreamError::ResourceInUseException(
                in_use
            )),
            SourceError::Throttled(
                "ResourceInUseException: Another active subscription exists".into()
            )
        );
        let gone = ResourceNotFoundException::builder().build();
        assert!(matches!(
            service(SubscribeToShardEventStreamError::ResourceNotFoundException(
                gone
            )),
            SourceError::NotFound(_)
        ));
        let denied = KmsAccessDeniedException::builder().build();
        assert!(matches!(
            service(SubscribeToShardEventStreamError::KmsAccessDeniedException(
                denied
            )),
            SourceError::Other(_)
        ));
        // A broken connection: subscribe again after a backoff.
        let broken = SdkError::<SubscribeToShardEventStreamError, RawMessage>::timeout_error(
            "connection reset",
        );
        assert!(matches!(event_error(&broken), SourceError::Throttled(_)));
    }

    #[test]
    fn every_engine_position_becomes_a_starting_position() {
        let seq = SequenceNumber("42".into());
        let cases = [
            (
                IteratorPosition::TrimHorizon,
                ShardIteratorType::TrimHorizon,
            ),
            (IteratorPosition::Latest, ShardIteratorType::Latest),
            (
                IteratorPosition::AtTimestamp(1_500),
                ShardIteratorType::AtTimestamp,
            ),
            (
                IteratorPosition::AtSequence(seq.clone()),
                ShardIteratorType::AtSequenceNumber,
            ),
            (
                IteratorPosition::AfterSequence(seq),
                ShardIteratorType::AfterSequenceNumber,
            ),
        ];
        for (position, kind) in cases {
            let got = starting_position(&position).unwrap();
            assert_eq!(got.r#type(), &kind);
            let expect_seq = matches!(
                position,
                IteratorPosition::AtSequence(_) | IteratorPosition::AfterSequence(_)
            );
            assert_eq!(got.sequence_number(), expect_seq.then_some("42"));
            assert_eq!(
                got.timestamp().map(|t| t.to_millis().unwrap()),
                matches!(position, IteratorPosition::AtTimestamp(_)).then_some(1_500)
            );
        }
    }
}
