//! `StreamSource` over a `SimulatedStream`: the Kinesis / DynamoDB Streams read API as
//! the engine sees it, with the faults a real stream has (throttles, expiring iterators,
//! slow reads, retention).
//!
//! The source keeps almost no state: iterators are self-describing strings (stream tag,
//! shard index, record index, issue time), so any number of shard tasks can hold them and
//! an expired or forged one is recognised without a lookup. The only mutable state is one
//! throttle generator per shard, named after the shard, so throttles fall the same way
//! whatever order the shard tasks run in.
//!
//! Choices where AWS is vague: `limit` is clamped to the service's page size (1..=10,000
//! Kinesis, 1..=1,000 DynamoDB) instead of rejected; a closed shard that retention has
//! emptied and dropped from `list_shards` still answers an iterator (lost records, then
//! its children), so a checkpoint on it can always be finished; checks run in the order
//! read latency, malformed iterator, expiry, throttle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::simulated_iterator::{Iter, IteratorText};
use super::{IteratorPosition, RecordsPage, SourceError, StreamSource};
use crate::clock::Clock;
use crate::config::schema::FaultConfig;
use crate::model::{ShardId, ShardInfo, StreamKind};
use crate::rng::Rng;
use crate::sim::SimulatedStream;

/// Kinesis GetRecords returns at most 10,000 records and 10 MiB; DynamoDB Streams 1,000
/// records and 1 MB.
const KINESIS_MAX_RECORDS: usize = crate::limits::KINESIS_GET_RECORDS_MAX_RECORDS;
const KINESIS_MAX_BYTES: usize = crate::limits::KINESIS_GET_RECORDS_MAX_BYTES;
const DYNAMODB_MAX_RECORDS: usize = crate::limits::DYNAMODB_GET_RECORDS_MAX_RECORDS;
const DYNAMODB_MAX_BYTES: usize = crate::limits::DYNAMODB_GET_RECORDS_MAX_BYTES;

/// The read API of one simulated stream, as one mapping sees it.
pub struct SimulatedSource {
    stream: Arc<SimulatedStream>,
    clock: Clock,
    seed: u64,
    arn: String,
    kind: StreamKind,
    faults: FaultConfig,
    expiry_ms: i64,
    /// Writes and reads this stream's iterators.
    iterators: IteratorText,
    throttles: Mutex<BTreeMap<u32, Rng>>,
}

impl SimulatedSource {
    pub fn new(stream: Arc<SimulatedStream>, clock: Clock, faults: FaultConfig, seed: u64) -> Self {
        let arn = stream.arn();
        let kind = stream.kind();
        let default_expiry = match kind {
            StreamKind::Kinesis => crate::limits::KINESIS_ITERATOR_LIFETIME_SECONDS,
            StreamKind::Dynamodb => crate::limits::DYNAMODB_ITERATOR_LIFETIME_SECONDS,
        };
        let expiry_seconds = faults.iterator_expiry_seconds.unwrap_or(default_expiry);
        SimulatedSource {
            stream,
            clock,
            seed,
            iterators: IteratorText::new(&arn),
            arn,
            kind,
            expiry_ms: i64::try_from(expiry_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
            faults,
            throttles: Mutex::new(BTreeMap::new()),
        }
    }

    /// The id of shard `shard`, for messages (its index, should it be unknown).
    fn shard_name(&self, shard: u32) -> String {
        self.stream
            .shard_id(shard)
            .map_or_else(|| format!("index {shard}"), |id| id.0)
    }

    /// Whether this call is throttled (drawn from the shard's own generator).
    fn throttled(&self, shard: u32) -> bool {
        if self.faults.throttle_rate.is_nan() || self.faults.throttle_rate <= 0.0 {
            return false;
        }
        let mut throttles = self.throttles.lock().unwrap_or_else(|p| p.into_inner());
        let rng = throttles.entry(shard).or_insert_with(|| {
            let shard_id = self.shard_name(shard);
            Rng::derived(self.seed, &format!("{}/{}/throttle", self.arn, shard_id))
        });
        rng.next_f64() < self.faults.throttle_rate
    }
}

#[async_trait]
impl StreamSource for SimulatedSource {
    fn stream_arn(&self) -> &str {
        &self.arn
    }

    fn kind(&self) -> StreamKind {
        self.kind
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        Ok(self.stream.list_shards(self.clock.now_ms()))
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let now = self.clock.now_ms();
        let index = self.stream.shard_index(now, shard).ok_or_else(|| {
            SourceError::NotFound(format!("Shard {shard} not found in stream {}", self.arn))
        })?;
        let start = self
            .stream
            .position(now, index, position)
            .map_err(|why| SourceError::Other(format!("InvalidArgumentException: {why}")))?;
        Ok(self.iterators.encode(Iter {
            shard: index,
            index: start,
            issued_at_ms: now,
        }))
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        if self.faults.read_latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.faults.read_latency_ms)).await;
        }
        let now = self.clock.now_ms();
        self.stream.advance_to(now);
        let it = self.iterators.decode(iterator)?;
        // The shard's id is only needed for messages: checking that it exists copies nothing.
        if !self.stream.has_shard(it.shard) {
            return Err(SourceError::Other(format!(
                "InvalidArgumentException: shard iterator names no shard of {}",
                self.arn
            )));
        }
        if now.saturating_sub(it.issued_at_ms) > self.expiry_ms {
            return Err(SourceError::ExpiredIterator);
        }
        if self.throttled(it.shard) {
            return Err(SourceError::Throttled(format!(
                "ProvisionedThroughputExceededException: Rate exceeded for shard {}",
                self.shard_name(it.shard)
            )));
        }
        let (max_records, max_bytes) = match self.kind {
            StreamKind::Kinesis => (KINESIS_MAX_RECORDS, KINESIS_MAX_BYTES),
            StreamKind::Dynamodb => (DYNAMODB_MAX_RECORDS, DYNAMODB_MAX_BYTES),
        };
        let page = self
            .stream
            .read(
                now,
                it.shard,
                it.index,
                limit.clamp(1, max_records),
                max_bytes,
            )
            .ok_or_else(|| {
                SourceError::Other(format!(
                    "InvalidArgumentException: shard {} is gone",
                    self.shard_name(it.shard)
                ))
            })?;
        let next_iterator = (!page.shard_ended).then(|| {
            self.iterators.encode(Iter {
                shard: it.shard,
                index: page.next_index,
                issued_at_ms: now,
            })
        });
        Ok(RecordsPage {
            records: page.records,
            next_iterator,
            millis_behind_latest: Some(page.millis_behind_latest),
            child_shards: if page.shard_ended {
                page.children
            } else {
                Vec::new()
            },
            lost_to_retention: page.lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{AwsIdentity, ProducerConfig, ReshardConfig, SimStreamConfig};
    use crate::model::SequenceNumber;

    const T0: i64 = 1_767_225_600_000;

    fn cfg(shards: u32, rate: f64, duration: f64) -> SimStreamConfig {
        SimStreamConfig {
            name: "orders".into(),
            kind: StreamKind::Kinesis,
            shards,
            retention_hours: None,
            stream_view_type: None,
            rollover_seconds: None,
            producers: vec![ProducerConfig {
                rate_per_second: rate,
                start_seconds: 0.0,
                duration_seconds: Some(duration),
                records: None,
                keys: 20,
                key_prefix: "user-".into(),
                payload_bytes: 100,
                poison_every: None,
            }],
            reshard: Vec::new(),
            faults: FaultConfig::default(),
        }
    }

    /// A source whose clock reads `T0 + elapsed_ms` now.
    fn source(cfg: &SimStreamConfig, faults: FaultConfig, elapsed_ms: i64) -> SimulatedSource {
        let stream = Arc::new(SimulatedStream::new(cfg, &AwsIdentity::default(), 7, T0));
        SimulatedSource::new(stream, Clock::starting_at(T0 + elapsed_ms), faults, 7)
    }

    fn shard(n: u32) -> ShardId {
        ShardId(format!("shardId-{n:012}"))
    }

    #[tokio::test(start_paused = true)]
    async fn pages_follow_each_other_to_the_tip_with_millis_behind_latest() {
        let src = source(&cfg(1, 10.0, 60.0), FaultConfig::default(), 10_000);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let page = src.get_records(&it, 40).await.unwrap();
        assert_eq!(page.records.len(), 40);
        // The 41st record arrived at +4 s; now is +10 s.
        assert_eq!(page.millis_behind_latest, Some(6_000));
        assert!(page.lost_to_retention.is_none());
        let page2 = src
            .get_records(page.next_iterator.as_deref().unwrap(), 1000)
            .await
            .unwrap();
        assert_eq!(page2.records.len(), 61);
        assert!(page.records.last().unwrap().sequence_number < page2.records[0].sequence_number);
        assert_eq!(page2.millis_behind_latest, Some(0));
        let page3 = src
            .get_records(page2.next_iterator.as_deref().unwrap(), 1000)
            .await
            .unwrap();
        assert!(page3.records.is_empty());
        assert!(
            page3.next_iterator.is_some(),
            "an open shard always has a next iterator"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_latest_iterator_reads_the_records_arriving_from_its_creation_on() {
        let src = source(&cfg(1, 10.0, 60.0), FaultConfig::default(), 10_000);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::Latest)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let page = src.get_records(&it, 1000).await.unwrap();
        let arrivals: Vec<i64> = page
            .records
            .iter()
            .map(|r| r.approximate_arrival_ms - T0)
            .collect();
        assert_eq!(
            arrivals,
            (0..=10).map(|i| 10_000 + i * 100).collect::<Vec<_>>()
        );
        let before = src
            .stream
            .count_before_time(T0 + 11_000, &shard(0), T0 + 10_000);
        assert_eq!(
            before, 100,
            "records before the LATEST iterator are exactly those not read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_split_parent_ends_with_no_next_iterator_and_names_its_children() {
        let mut c = cfg(1, 10.0, 60.0);
        c.reshard.push(ReshardConfig {
            at_seconds: 5.0,
            split: Some("shardId-000000000000".into()),
            merge: None,
        });
        let src = source(&c, FaultConfig::default(), 20_000);
        let shards = src.list_shards().await.unwrap();
        assert_eq!(shards.len(), 3);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let page = src.get_records(&it, 30).await.unwrap();
        assert_eq!(page.records.len(), 30);
        assert!(page.next_iterator.is_some());
        assert!(page.child_shards.is_empty());
        let last = src
            .get_records(page.next_iterator.as_deref().unwrap(), 30)
            .await
            .unwrap();
        assert_eq!(last.records.len(), 20);
        assert_eq!(last.next_iterator, None);
        assert_eq!(last.millis_behind_latest, Some(0));
        let children: Vec<ShardInfo> = shards[1..].to_vec();
        assert_eq!(last.child_shards, children);
        assert!(children
            .iter()
            .all(|c| c.parent_shard_ids == vec![shard(0)]));
    }

    #[tokio::test(start_paused = true)]
    async fn records_trimmed_before_they_are_read_are_reported_as_lost_to_retention() {
        let mut c = cfg(1, 2.0, 7_200.0);
        c.retention_hours = Some(1);
        let src = source(&c, FaultConfig::default(), 0);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let page = src.get_records(&it, 10).await.unwrap();
        assert_eq!(page.records.len(), 1);
        let next = page.next_iterator.unwrap();
        // 100 s past the retention: records 1..200 (arrived in the first 100 s) are gone.
        tokio::time::sleep(Duration::from_secs(3_700)).await;
        let fresh = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let page = src.get_records(&fresh, 5).await.unwrap();
        // A TRIM_HORIZON reader is told about the records trimmed before it started too.
        assert_eq!(
            page.lost_to_retention.as_ref().and_then(|l| l.count),
            Some(200)
        );
        assert_eq!(page.records[0].approximate_arrival_ms, T0 + 100_000);
        // The old iterator is expired by now; re-open after the first record as the engine would.
        assert_eq!(
            src.get_records(&next, 5).await.unwrap_err(),
            SourceError::ExpiredIterator
        );
        let seq = SequenceNumber(format!("49{:014}{:040}", 0, 0));
        let resumed = src
            .shard_iterator(&shard(0), &IteratorPosition::AfterSequence(seq))
            .await
            .unwrap();
        let page = src.get_records(&resumed, 5).await.unwrap();
        let lost = page.lost_to_retention.unwrap();
        assert_eq!(lost.count, Some(199));
        assert_eq!(
            lost.first,
            Some(SequenceNumber(format!("49{:014}{:040}", 0, 1)))
        );
        assert_eq!(
            lost.last,
            Some(SequenceNumber(format!("49{:014}{:040}", 0, 199)))
        );
        assert_eq!(
            page.records[0].sequence_number,
            SequenceNumber(format!("49{:014}{:040}", 0, 200))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_iterator_older_than_the_expiry_fails_with_expired_iterator() {
        let faults = FaultConfig {
            iterator_expiry_seconds: Some(2),
            ..FaultConfig::default()
        };
        let src = source(&cfg(1, 10.0, 60.0), faults, 1_000);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let page = src.get_records(&it, 5).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2_001)).await;
        assert_eq!(
            src.get_records(&it, 5).await.unwrap_err(),
            SourceError::ExpiredIterator
        );
        // The iterator a page hands out is issued at that call.
        assert!(src
            .get_records(page.next_iterator.as_deref().unwrap(), 5)
            .await
            .is_err());
        let defaults = source(&cfg(1, 10.0, 60.0), FaultConfig::default(), 0);
        assert_eq!(defaults.expiry_ms, 300_000);
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_follow_the_configured_rate_and_repeat_for_the_same_seed() {
        let faults = FaultConfig {
            throttle_rate: 0.3,
            ..FaultConfig::default()
        };
        let outcomes = |src: SimulatedSource| async move {
            let it = src
                .shard_iterator(&shard(1), &IteratorPosition::TrimHorizon)
                .await
                .unwrap();
            let mut out = Vec::new();
            for _ in 0..1000 {
                match src.get_records(&it, 1).await {
                    Ok(_) => out.push(false),
                    Err(SourceError::Throttled(message)) => {
                        assert_eq!(message, "ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001");
                        out.push(true);
                    }
                    Err(other) => panic!("{other}"),
                }
            }
            out
        };
        let a = outcomes(source(&cfg(2, 10.0, 60.0), faults.clone(), 5_000)).await;
        let b = outcomes(source(&cfg(2, 10.0, 60.0), faults.clone(), 5_000)).await;
        assert_eq!(a, b);
        let throttled = a.iter().filter(|&&t| t).count();
        assert!((240..=360).contains(&throttled), "{throttled} of 1000");
        let none = outcomes(source(&cfg(2, 10.0, 60.0), FaultConfig::default(), 5_000)).await;
        assert!(none.iter().all(|&t| !t));
    }

    #[tokio::test(start_paused = true)]
    async fn at_timestamp_and_sequence_iterators_start_at_the_right_record() {
        let src = source(&cfg(1, 10.0, 60.0), FaultConfig::default(), 30_000);
        let first = |it: String| {
            let src = &src;
            async move { src.get_records(&it, 1).await.unwrap().records[0].clone() }
        };
        let at = src
            .shard_iterator(&shard(0), &IteratorPosition::AtTimestamp(T0 + 2_050))
            .await
            .unwrap();
        let r = first(at).await;
        assert_eq!(r.approximate_arrival_ms, T0 + 2_100);
        let exact = src
            .shard_iterator(&shard(0), &IteratorPosition::AtTimestamp(T0 + 2_000))
            .await
            .unwrap();
        assert_eq!(first(exact).await.approximate_arrival_ms, T0 + 2_000);
        let early = src
            .shard_iterator(&shard(0), &IteratorPosition::AtTimestamp(0))
            .await
            .unwrap();
        assert_eq!(first(early).await.approximate_arrival_ms, T0);
        let seq = r.sequence_number.clone();
        let at_seq = src
            .shard_iterator(&shard(0), &IteratorPosition::AtSequence(seq.clone()))
            .await
            .unwrap();
        assert_eq!(first(at_seq).await.sequence_number, seq);
        let after = src
            .shard_iterator(&shard(0), &IteratorPosition::AfterSequence(seq.clone()))
            .await
            .unwrap();
        let next = first(after).await;
        assert!(next.sequence_number > seq);
        assert_eq!(next.approximate_arrival_ms, T0 + 2_200);
        let future = src
            .shard_iterator(&shard(0), &IteratorPosition::AtTimestamp(T0 + 99_000))
            .await
            .unwrap();
        assert!(src
            .get_records(&future, 10)
            .await
            .unwrap()
            .records
            .is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn bad_iterators_bad_sequence_numbers_and_unknown_shards_are_reported_as_such() {
        let src = source(&cfg(2, 10.0, 60.0), FaultConfig::default(), 5_000);
        for bad in [
            "",
            "garbage",
            "simit:zz:0:0:0",
            "simit:0000000000000000:0:0:0",
            "simit:1:2:3:4:5",
        ] {
            match src.get_records(bad, 10).await {
                Err(SourceError::Other(message)) => assert!(
                    message.starts_with("InvalidArgumentException: "),
                    "{message}"
                ),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let forged = format!("{}99:0:{}", src.iterators.prefix(), T0);
        assert!(matches!(
            src.get_records(&forged, 10).await,
            Err(SourceError::Other(_))
        ));
        let missing = src
            .shard_iterator(&shard(9), &IteratorPosition::TrimHorizon)
            .await
            .unwrap_err();
        assert_eq!(
            missing,
            SourceError::NotFound(
                "Shard shardId-000000000009 not found in stream arn:aws:kinesis:us-east-1:123456789012:stream/orders".into()
            )
        );
        let other_shard = SequenceNumber(format!("49{:014}{:040}", 1, 3));
        let wrong = src
            .shard_iterator(&shard(0), &IteratorPosition::AtSequence(other_shard))
            .await
            .unwrap_err();
        assert!(
            matches!(wrong, SourceError::Other(m) if m.starts_with("InvalidArgumentException: "))
        );
        let junk = SequenceNumber("SHARD_END".into());
        assert!(src
            .shard_iterator(&shard(0), &IteratorPosition::AfterSequence(junk))
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn read_latency_delays_every_get_records_call() {
        let faults = FaultConfig {
            read_latency_ms: 250,
            ..FaultConfig::default()
        };
        let src = source(&cfg(1, 10.0, 60.0), faults, 5_000);
        let it = src
            .shard_iterator(&shard(0), &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        src.get_records(&it, 10).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn dynamodb_reads_return_at_most_1000_records_and_iterators_live_15_minutes() {
        let mut c = cfg(1, 1000.0, 5.0);
        c.kind = StreamKind::Dynamodb;
        let src = source(&c, FaultConfig::default(), 10_000);
        assert_eq!(src.expiry_ms, 900_000);
        let id = src.list_shards().await.unwrap()[0].shard_id.clone();
        let it = src
            .shard_iterator(&id, &IteratorPosition::TrimHorizon)
            .await
            .unwrap();
        let page = src.get_records(&it, 10_000).await.unwrap();
        assert_eq!(page.records.len(), 1000);
        assert!(page.millis_behind_latest.unwrap() > 0);
        tokio::time::sleep(Duration::from_secs(600)).await;
        let next = page.next_iterator.unwrap();
        assert_eq!(
            src.get_records(&next, 10_000).await.unwrap().records.len(),
            1000
        );
    }
}
