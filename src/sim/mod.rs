//! The simulated world's streams: a `SimulatedStream` is a deterministic function of
//! (config, seed, creation time, now).
//!
//! Nothing runs in the background: whoever reads the stream first advances it to `now`,
//! generating every record, split, merge and rollover up to then in time order, and trims
//! what retention has expired. So shard tasks reading in any order, at any pace, see the
//! same world, and a stream no one reads costs nothing. The state sits behind one mutex
//! that is never held across an await; records are stored compactly and formatted on
//! read, after the lock is released.
//!
//! Files: `producer.rs` (arrival, keys, routing), `stream.rs` (shards, sequence numbers,
//! resharding, trimming), `items.rs` (DynamoDB item lifecycle), `payload.rs` (record text).
//! At equal times a reshard applies before a rollover, both before the records arriving at
//! that millisecond, and producers with records at the same millisecond go in config order.

pub(crate) mod items;
pub(crate) mod payload;
pub(crate) mod producer;
pub(crate) mod stream;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard};

use crate::config::schema::{AwsIdentity, SimStreamConfig};
use crate::model::{SequenceNumber, ShardId, ShardInfo, StreamKind, StreamRecord, StreamViewType};
use crate::source::{IteratorPosition, LostRecords};
use items::Items;
use payload::Materializer;
use producer::{ProducerRun, ProducerSpec};
use stream::{parse_sequence_number, Prev, Rec, SequenceCursor, Shards};

/// One simulated Kinesis stream or DynamoDB stream; share it behind an `Arc` between the
/// sources of every mapping that reads it and the `simulate` report.
pub struct SimulatedStream {
    arn: String,
    name: String,
    kind: StreamKind,
    view: StreamViewType,
    retention_ms: i64,
    specs: Vec<ProducerSpec>,
    state: Mutex<StreamState>,
}

/// A scheduled split or merge.
enum Reshard {
    Split(String),
    Merge(String, String),
}

struct StreamState {
    /// The `now` the stream has been advanced to.
    advanced_to: Option<i64>,
    shards: Shards,
    runs: Vec<ProducerRun>,
    /// (next arrival, producer) of every producer that will still write.
    pending: BinaryHeap<Reverse<(i64, u32)>>,
    reshards: Vec<(i64, Reshard)>,
    next_reshard: usize,
    rollover_ms: Option<i64>,
    next_rollover: Option<i64>,
    /// DynamoDB only.
    items: Option<Items>,
    produced: u64,
}

/// One page read from a shard (the source turns it into a `RecordsPage`).
pub(crate) struct ReadPage {
    pub records: Vec<StreamRecord>,
    /// Index of the first record not returned.
    pub next_index: u64,
    /// The shard is closed and this page reached its end.
    pub shard_ended: bool,
    pub children: Vec<ShardInfo>,
    pub lost: Option<LostRecords>,
    pub millis_behind_latest: i64,
}

impl SimulatedStream {
    pub fn new(cfg: &SimStreamConfig, aws: &AwsIdentity, seed: u64, created_at_ms: i64) -> Self {
        let arn = cfg.arn(aws);
        let kind = cfg.kind;
        let mut prefixes: Vec<(String, u64)> = Vec::new();
        let specs: Vec<ProducerSpec> = cfg
            .producers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let prefix_id = match prefixes
                    .iter()
                    .position(|(prefix, _)| *prefix == p.key_prefix)
                {
                    Some(id) => {
                        prefixes[id].1 = prefixes[id].1.max(p.keys.max(1));
                        id
                    }
                    None => {
                        prefixes.push((p.key_prefix.clone(), p.keys.max(1)));
                        prefixes.len() - 1
                    }
                };
                ProducerSpec::new(
                    p,
                    i as u32,
                    &cfg.name,
                    seed,
                    created_at_ms,
                    prefix_id as u32,
                )
            })
            .collect();
        let runs: Vec<ProducerRun> = specs.iter().map(ProducerRun::new).collect();
        let pending = runs
            .iter()
            .zip(&specs)
            .filter_map(|(run, spec)| run.next_arrival.map(|a| Reverse((a, spec.index))))
            .collect();

        let mut reshards = Vec::new();
        for (i, r) in cfg.reshard.iter().enumerate() {
            if !r.at_seconds.is_finite() {
                tracing::warn!(stream = %cfg.name, reshard = i, "reshard skipped: at_seconds is not a number");
                continue;
            }
            let at = created_at_ms.saturating_add((r.at_seconds * 1000.0).round().max(0.0) as i64);
            match (&r.split, &r.merge) {
                (Some(shard), None) => reshards.push((at, Reshard::Split(shard.clone()))),
                (None, Some([a, b])) => reshards.push((at, Reshard::Merge(a.clone(), b.clone()))),
                _ => tracing::warn!(
                    stream = %cfg.name,
                    reshard = i,
                    "reshard skipped: it needs exactly one of split and merge"
                ),
            }
        }
        reshards.sort_by_key(|(at, _)| *at);

        let rollover_ms = match (kind, cfg.rollover_seconds) {
            (StreamKind::Dynamodb, Some(s)) if s > 0 => {
                Some(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
            }
            (StreamKind::Kinesis, Some(_)) => {
                tracing::warn!(stream = %cfg.name, "rollover_seconds ignored: Kinesis shards do not roll over");
                None
            }
            _ => None,
        };
        let items = (kind == StreamKind::Dynamodb)
            .then(|| Items::new(&prefixes.iter().map(|(_, keys)| *keys).collect::<Vec<_>>()));
        let retention_hours = i64::from(cfg.retention_hours.unwrap_or(24));
        SimulatedStream {
            name: cfg.name.clone(),
            kind,
            view: cfg
                .stream_view_type
                .unwrap_or(StreamViewType::NewAndOldImages),
            retention_ms: retention_hours.saturating_mul(3_600_000),
            specs,
            state: Mutex::new(StreamState {
                advanced_to: None,
                shards: Shards::new(kind, &arn, seed, cfg.shards, created_at_ms),
                runs,
                pending,
                reshards,
                next_reshard: 0,
                rollover_ms,
                next_rollover: rollover_ms.map(|r| created_at_ms.saturating_add(r)),
                items,
                produced: 0,
            }),
            arn,
        }
    }

    pub fn arn(&self) -> String {
        self.arn.clone()
    }

    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Generates everything up to `now_ms` and trims by retention.
    pub fn advance_to(&self, now_ms: i64) {
        drop(self.advanced(now_ms));
    }

    /// True when, as of `now_ms`, no producer will ever write again.
    pub fn producers_done(&self, now_ms: i64) -> bool {
        self.advanced(now_ms)
            .runs
            .iter()
            .all(|r| r.next_arrival.is_none())
    }

    /// Records produced so far on all shards, trimmed ones included.
    pub fn records_produced(&self, now_ms: i64) -> u64 {
        self.advanced(now_ms).produced
    }

    /// Records of `shard` produced after `after` (all of them for None), trimmed ones
    /// included; 0 for an unknown shard. A sequence number that is not one of this stream's
    /// counts as "nothing read yet".
    pub fn count_after(&self, now_ms: i64, shard: &ShardId, after: Option<&SequenceNumber>) -> u64 {
        let state = self.advanced(now_ms);
        let Some(s) = state
            .shards
            .lookup(shard.as_str())
            .and_then(|i| state.shards.shard(i))
        else {
            return 0;
        };
        let total = s.total();
        match after.and_then(|seq| parse_sequence_number(self.kind, seq.as_str())) {
            Some((_, index)) => total.saturating_sub(index.saturating_add(1)),
            None => total,
        }
    }

    /// Records of `shard` that arrived before `arrival_ms`. Exact unless `arrival_ms` falls
    /// among already-trimmed records, whose arrival times are only sampled (then it is
    /// within 64 records, rounded up).
    pub fn count_before_time(&self, now_ms: i64, shard: &ShardId, arrival_ms: i64) -> u64 {
        let state = self.advanced(now_ms);
        let Some(s) = state
            .shards
            .lookup(shard.as_str())
            .and_then(|i| state.shards.shard(i))
        else {
            return 0;
        };
        match s.last_trimmed_arrival {
            Some(last) if arrival_ms <= last => {
                let j = s.trim_samples.partition_point(|&(_, a)| a < arrival_ms);
                s.trim_samples.get(j).map_or(s.trimmed, |&(index, _)| index)
            }
            _ => s.trimmed + s.recs.partition_point(|r| self.arrival(r) < arrival_ms) as u64,
        }
    }

    /// Every shard ever created, in creation order.
    pub fn shard_ids(&self, now_ms: i64) -> Vec<ShardId> {
        self.advanced(now_ms)
            .shards
            .list
            .iter()
            .map(|s| s.id.clone())
            .collect()
    }

    /// Every shard still listed (open, or closed with records left or closed recently).
    pub(crate) fn list_shards(&self, now_ms: i64) -> Vec<ShardInfo> {
        let state = self.advanced(now_ms);
        let shards = &state.shards;
        shards
            .list
            .iter()
            .filter(|s| shards.listed(s, now_ms, self.retention_ms))
            .map(|s| shards.info(s))
            .collect()
    }

    /// The index of a shard by id (listed or not).
    pub(crate) fn shard_index(&self, now_ms: i64, shard: &ShardId) -> Option<u32> {
        self.advanced(now_ms).shards.lookup(shard.as_str())
    }

    pub(crate) fn shard_id(&self, shard: u32) -> Option<ShardId> {
        self.lock().shards.shard(shard).map(|s| s.id.clone())
    }

    /// The record index an iterator at `position` starts from. Err: why the position is
    /// invalid (an InvalidArgumentException message).
    pub(crate) fn position(
        &self,
        now_ms: i64,
        shard: u32,
        position: &IteratorPosition,
    ) -> Result<u64, String> {
        let state = self.advanced(now_ms);
        let Some(s) = state.shards.shard(shard) else {
            return Err(format!("shard index {shard} does not exist"));
        };
        let total = s.total();
        let by_sequence = |seq: &SequenceNumber, after: bool| -> Result<u64, String> {
            let invalid = || {
                format!(
                    "StartingSequenceNumber {} used in GetShardIterator on shard {} in stream {} is invalid.",
                    seq, s.id, self.name
                )
            };
            let (seq_shard, index) =
                parse_sequence_number(self.kind, seq.as_str()).ok_or_else(invalid)?;
            if seq_shard != u64::from(shard) {
                return Err(invalid());
            }
            let index = if after {
                index.saturating_add(1)
            } else {
                index
            };
            if index > total {
                tracing::warn!(
                    stream = %self.name,
                    shard = %s.id,
                    sequence_number = %seq,
                    "sequence number is past the shard's tip (the stream was recreated?): starting at the tip"
                );
            }
            Ok(index.min(total))
        };
        match position {
            // The oldest record ever written: a reader that starts after retention has
            // trimmed records is told they are lost, so the report can count every record
            // (AWS gives no such signal; the simulator can).
            IteratorPosition::TrimHorizon => Ok(0),
            // LATEST is "from now on": records arriving at this very millisecond are
            // read, so it agrees with `count_before_time(now)`.
            IteratorPosition::Latest => {
                Ok(s.trimmed + s.recs.partition_point(|r| self.arrival(r) < now_ms) as u64)
            }
            IteratorPosition::AtTimestamp(ms) => {
                Ok(s.trimmed + s.recs.partition_point(|r| self.arrival(r) < *ms) as u64)
            }
            IteratorPosition::AtSequence(seq) => by_sequence(seq, false),
            IteratorPosition::AfterSequence(seq) => by_sequence(seq, true),
        }
    }

    /// Up to `limit` records (and about `max_bytes`, at least one record) of `shard` from
    /// record index `from`; None for an unknown shard.
    pub(crate) fn read(
        &self,
        now_ms: i64,
        shard: u32,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Option<ReadPage> {
        let (start, total, closed, children, lost, stored, prevs) = {
            let state = self.advanced(now_ms);
            let shards = &state.shards;
            let s = shards.shard(shard)?;
            let total = s.total();
            let start = from.max(s.trimmed).min(total);
            let lost = (from < s.trimmed).then(|| LostRecords {
                count: Some(s.trimmed - from),
                first: Some(shards.sequence_number(shard, from)),
                last: Some(shards.sequence_number(shard, s.trimmed - 1)),
            });
            // One record more than the page, for millis_behind_latest.
            let want = (total - start).min((limit as u64).saturating_add(1)) as usize;
            let offset = (start - s.trimmed) as usize;
            let stored: Vec<Rec> = s.recs.range(offset..offset + want).copied().collect();
            let prevs: Vec<Prev> = if s.prevs.is_empty() {
                Vec::new()
            } else {
                s.prevs.range(offset..offset + want).copied().collect()
            };
            let closed = s.closed_ms.is_some();
            let children = if closed {
                s.children
                    .iter()
                    .filter_map(|&c| shards.shard(c))
                    .map(|c| shards.info(c))
                    .collect()
            } else {
                Vec::new()
            };
            (start, total, closed, children, lost, stored, prevs)
        };
        let materializer = Materializer {
            specs: &self.specs,
            kind: self.kind,
            view: self.view,
        };
        let mut records = Vec::with_capacity(stored.len().min(limit));
        let mut bytes = 0usize;
        let mut sequence_numbers = SequenceCursor::new(self.kind, shard, start);
        for (i, &rec) in stored.iter().take(limit).enumerate() {
            let prev = prevs.get(i).copied().unwrap_or(Prev::NONE);
            let seq = sequence_numbers.next_number();
            let Some((record, size)) = materializer.record(rec, prev, seq) else {
                break;
            };
            if !records.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            records.push(record);
        }
        let next_index = start + records.len() as u64;
        let millis_behind_latest = match stored.get(records.len()) {
            Some(next) if next_index < total => now_ms.saturating_sub(self.arrival(next)).max(0),
            _ => 0,
        };
        Some(ReadPage {
            records,
            next_index,
            shard_ended: closed && next_index >= total,
            children,
            lost,
            millis_behind_latest,
        })
    }

    fn arrival(&self, rec: &Rec) -> i64 {
        self.specs
            .get(rec.producer as usize)
            .map_or(0, |s| s.arrival_ms(rec.k))
    }

    fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, advanced to `now_ms`.
    fn advanced(&self, now_ms: i64) -> MutexGuard<'_, StreamState> {
        let mut state = self.lock();
        state.advance(self, now_ms);
        state
    }
}

impl StreamState {
    fn advance(&mut self, stream: &SimulatedStream, now_ms: i64) {
        if self.advanced_to.is_some_and(|t| now_ms <= t) {
            return;
        }
        loop {
            let reshard_at = self.reshards.get(self.next_reshard).map(|(at, _)| *at);
            let (at, is_reshard) = match (reshard_at, self.next_rollover) {
                (Some(r), Some(o)) if r <= o => (r, true),
                (Some(r), None) => (r, true),
                (_, Some(o)) => (o, false),
                (None, None) => break,
            };
            if at > now_ms {
                break;
            }
            self.generate(&stream.specs, at);
            if is_reshard {
                self.apply_reshard(stream, at);
            } else {
                self.shards.rollover(at);
                self.next_rollover = self.rollover_ms.and_then(|r| at.checked_add(r));
            }
        }
        self.generate(&stream.specs, now_ms.saturating_add(1));
        self.advanced_to = Some(now_ms);
        let specs = &stream.specs;
        self.shards
            .trim(now_ms.saturating_sub(stream.retention_ms), |r| {
                specs
                    .get(r.producer as usize)
                    .map_or(i64::MIN, |s| s.arrival_ms(r.k))
            });
    }

    fn apply_reshard(&mut self, stream: &SimulatedStream, at: i64) {
        let Some((_, reshard)) = self.reshards.get(self.next_reshard) else {
            return;
        };
        self.next_reshard += 1;
        let (what, result) = match reshard {
            Reshard::Split(shard) => (format!("split of {shard}"), self.shards.split(shard, at)),
            Reshard::Merge(a, b) => (format!("merge of {a} and {b}"), self.shards.merge(a, b, at)),
        };
        match result {
            Ok(()) => self
                .runs
                .iter_mut()
                .for_each(ProducerRun::invalidate_routes),
            Err(reason) => {
                tracing::warn!(stream = %stream.name, at_ms = at, "{what} skipped: {reason}")
            }
        }
    }

    /// Writes every record that arrives before `limit_ms`, in arrival order.
    fn generate(&mut self, specs: &[ProducerSpec], limit_ms: i64) {
        let StreamState {
            shards,
            runs,
            pending,
            items,
            produced,
            ..
        } = self;
        while let Some(&Reverse((first_arrival, p))) = pending.peek() {
            if first_arrival >= limit_ms {
                break;
            }
            pending.pop();
            // This producer writes until another one is due first.
            let bound = pending.peek().map_or((i64::MAX, u32::MAX), |r| r.0);
            let (Some(spec), Some(run)) = (specs.get(p as usize), runs.get_mut(p as usize)) else {
                continue;
            };
            let mut arrival = first_arrival;
            loop {
                let k = run.next_k;
                let n = run.rng.below(spec.keys);
                let slot = run.route(spec, n, &shards.open);
                if let Some(shard) = shards.open.get(slot).map(|s| s.shard) {
                    let (meta, prev) = match items.as_mut() {
                        Some(items) => {
                            let (event, prev) = items.change(spec.prefix_id, n, p, k);
                            (event, Some(prev))
                        }
                        None => (0, None),
                    };
                    shards.push(
                        shard,
                        Rec {
                            k,
                            producer: p,
                            meta,
                        },
                        prev,
                        arrival,
                    );
                    *produced += 1;
                }
                run.next_k = k.saturating_add(1);
                run.next_arrival = if k == u64::MAX {
                    None
                } else {
                    spec.arrival_of(k + 1)
                };
                match run.next_arrival {
                    Some(a) if a < limit_ms && (a, p) < bound => arrival = a,
                    _ => break,
                }
            }
            if let Some(a) = run.next_arrival {
                pending.push(Reverse((a, p)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{FaultConfig, ProducerConfig, ReshardConfig};
    use crate::model::{DynamodbEventName, RecordBody};

    pub(crate) const T0: i64 = 1_767_225_600_000;

    pub(crate) fn producer(
        rate: f64,
        records: Option<u64>,
        duration: Option<f64>,
    ) -> ProducerConfig {
        ProducerConfig {
            rate_per_second: rate,
            start_seconds: 0.0,
            duration_seconds: duration,
            records,
            keys: 50,
            key_prefix: "user-".into(),
            payload_bytes: 100,
            poison_every: None,
        }
    }

    pub(crate) fn stream_cfg(
        kind: StreamKind,
        shards: u32,
        producers: Vec<ProducerConfig>,
    ) -> SimStreamConfig {
        SimStreamConfig {
            name: "orders".into(),
            kind,
            shards,
            retention_hours: None,
            stream_view_type: None,
            rollover_seconds: None,
            producers,
            reshard: Vec::new(),
            faults: FaultConfig::default(),
        }
    }

    fn stream(cfg: &SimStreamConfig, seed: u64) -> SimulatedStream {
        SimulatedStream::new(cfg, &AwsIdentity::default(), seed, T0)
    }

    /// Every retained record of a shard, from the trim horizon.
    fn all_records(s: &SimulatedStream, now: i64, shard: &ShardId) -> Vec<StreamRecord> {
        let index = s.shard_index(now, shard).unwrap();
        let mut from = s
            .position(now, index, &IteratorPosition::TrimHorizon)
            .unwrap();
        let mut out = Vec::new();
        loop {
            let page = s.read(now, index, from, 1000, usize::MAX).unwrap();
            if page.records.is_empty() {
                return out;
            }
            from = page.next_index;
            out.extend(page.records);
        }
    }

    fn kinesis_json(record: &StreamRecord) -> serde_json::Value {
        match &record.body {
            RecordBody::Kinesis { data, .. } => serde_json::from_slice(data).unwrap(),
            RecordBody::Dynamodb(_) => panic!("not a Kinesis record"),
        }
    }

    #[test]
    fn a_producer_writes_at_its_rate_from_its_start_and_stops_after_its_duration() {
        let mut p = producer(10.0, None, Some(10.0));
        p.start_seconds = 5.0;
        let s = stream(&stream_cfg(StreamKind::Kinesis, 2, vec![p]), 1);
        assert_eq!(s.records_produced(T0 + 4_999), 0);
        assert_eq!(s.records_produced(T0 + 5_000), 1);
        assert_eq!(s.records_produced(T0 + 5_999), 10);
        assert!(!s.producers_done(T0 + 10_000));
        assert_eq!(s.records_produced(T0 + 14_900), 100);
        assert!(s.producers_done(T0 + 14_900));
        assert_eq!(s.records_produced(T0 + 60_000), 100);
        let ids = s.shard_ids(T0 + 60_000);
        let per_shard: u64 = ids
            .iter()
            .map(|id| s.count_after(T0 + 60_000, id, None))
            .sum();
        assert_eq!(per_shard, 100);
    }

    #[test]
    fn a_producer_stops_after_its_record_count_when_that_comes_first() {
        let s = stream(
            &stream_cfg(
                StreamKind::Kinesis,
                1,
                vec![producer(100.0, Some(250), Some(60.0))],
            ),
            1,
        );
        assert!(!s.producers_done(T0 + 2_480));
        assert!(s.producers_done(T0 + 2_490));
        assert_eq!(s.records_produced(T0 + 60_000), 250);
    }

    #[test]
    fn a_producer_without_a_limit_never_finishes() {
        let s = stream(
            &stream_cfg(StreamKind::Kinesis, 1, vec![producer(1.0, None, None)]),
            1,
        );
        assert_eq!(s.records_produced(T0 + 3_600_000), 3_601);
        assert!(!s.producers_done(T0 + 3_600_000));
    }

    #[test]
    fn advancing_in_many_small_steps_gives_the_same_world_as_one_jump() {
        let mut cfg = stream_cfg(
            StreamKind::Kinesis,
            2,
            vec![producer(50.0, None, Some(20.0)), producer(7.0, None, None)],
        );
        cfg.reshard.push(ReshardConfig {
            at_seconds: 5.0,
            split: Some("shardId-000000000001".into()),
            merge: None,
        });
        let a = stream(&cfg, 9);
        let b = stream(&cfg, 9);
        for t in (0..30_000).step_by(333) {
            b.advance_to(T0 + t);
        }
        let now = T0 + 30_000;
        assert_eq!(a.shard_ids(now), b.shard_ids(now));
        for id in a.shard_ids(now) {
            assert_eq!(all_records(&a, now, &id), all_records(&b, now, &id));
        }
    }

    #[test]
    fn streams_with_the_same_seed_hold_identical_records_and_another_seed_differs() {
        let cfg = stream_cfg(
            StreamKind::Kinesis,
            3,
            vec![producer(20.0, Some(200), None)],
        );
        let (a, b, c) = (stream(&cfg, 5), stream(&cfg, 5), stream(&cfg, 6));
        let now = T0 + 60_000;
        let records = |s: &SimulatedStream| -> Vec<StreamRecord> {
            s.shard_ids(now)
                .iter()
                .flat_map(|id| all_records(s, now, id))
                .collect()
        };
        let (ra, rb, rc) = (records(&a), records(&b), records(&c));
        assert_eq!(ra.len(), 200);
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
    }

    #[test]
    fn every_nth_record_of_a_producer_is_poison_and_no_other_mentions_poison() {
        let mut p = producer(10.0, Some(100), None);
        p.poison_every = Some(7);
        let s = stream(&stream_cfg(StreamKind::Kinesis, 2, vec![p]), 3);
        let now = T0 + 60_000;
        let mut poison = Vec::new();
        for id in s.shard_ids(now) {
            for r in all_records(&s, now, &id) {
                let v = kinesis_json(&r);
                let RecordBody::Kinesis { data, .. } = &r.body else {
                    unreachable!()
                };
                assert_eq!(data.len(), 100);
                if memchr::memmem::find(data, b"poison").is_some() {
                    assert_eq!(v["poison"], true);
                    poison.push(v["n"].as_u64().unwrap());
                }
            }
        }
        poison.sort();
        assert_eq!(
            poison,
            vec![6, 13, 20, 27, 34, 41, 48, 55, 62, 69, 76, 83, 90, 97]
        );
    }

    #[test]
    fn records_of_one_key_always_land_in_the_shard_whose_range_holds_its_md5() {
        let s = stream(
            &stream_cfg(
                StreamKind::Kinesis,
                4,
                vec![producer(100.0, Some(1000), None)],
            ),
            2,
        );
        let now = T0 + 60_000;
        let mut shard_of_key = std::collections::BTreeMap::new();
        for (i, id) in s.shard_ids(now).iter().enumerate() {
            for r in all_records(&s, now, id) {
                let key = r.ordering_key();
                assert_eq!(*shard_of_key.entry(key.clone()).or_insert(i), i, "{key}");
                let hash =
                    u128::from_be_bytes(<md5::Md5 as md5::Digest>::digest(key.as_bytes()).into());
                assert_eq!((hash / (u128::MAX / 4)).min(3) as usize, i);
            }
        }
        assert!(shard_of_key.len() > 40);
    }

    #[test]
    fn sequence_numbers_increase_within_a_shard_and_arrivals_never_go_back() {
        let cfg = stream_cfg(
            StreamKind::Kinesis,
            2,
            vec![
                producer(30.0, None, Some(10.0)),
                producer(13.0, None, Some(10.0)),
            ],
        );
        let s = stream(&cfg, 4);
        let now = T0 + 20_000;
        for id in s.shard_ids(now) {
            let records = all_records(&s, now, &id);
            for w in records.windows(2) {
                assert!(w[0].sequence_number < w[1].sequence_number);
                assert!(w[0].approximate_arrival_ms <= w[1].approximate_arrival_ms);
            }
        }
    }

    #[test]
    fn after_a_split_new_records_land_in_the_two_children_and_the_parent_is_closed() {
        let mut cfg = stream_cfg(
            StreamKind::Kinesis,
            2,
            vec![producer(100.0, None, Some(20.0))],
        );
        cfg.reshard.push(ReshardConfig {
            at_seconds: 10.0,
            split: Some("shardId-000000000000".into()),
            merge: None,
        });
        let s = stream(&cfg, 1);
        let now = T0 + 30_000;
        let shards = s.list_shards(now);
        let ids: Vec<&str> = shards.iter().map(|i| i.shard_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "shardId-000000000000",
                "shardId-000000000001",
                "shardId-000000000002",
                "shardId-000000000003"
            ]
        );
        assert_eq!(
            shards[2].parent_shard_ids,
            vec![ShardId("shardId-000000000000".into())]
        );
        assert_eq!(
            shards[3].parent_shard_ids,
            vec![ShardId("shardId-000000000000".into())]
        );
        let parent = all_records(&s, now, &shards[0].shard_id);
        assert!(parent
            .iter()
            .all(|r| r.approximate_arrival_ms < T0 + 10_000));
        let mut parent_keys: Vec<String> = parent.iter().map(|r| r.ordering_key()).collect();
        parent_keys.sort();
        parent_keys.dedup();
        let mut child_keys = Vec::new();
        for child in &shards[2..] {
            let records = all_records(&s, now, &child.shard_id);
            assert!(!records.is_empty());
            assert!(records
                .iter()
                .all(|r| r.approximate_arrival_ms >= T0 + 10_000));
            child_keys.extend(records.iter().map(|r| r.ordering_key()));
        }
        child_keys.sort();
        child_keys.dedup();
        assert_eq!(
            parent_keys, child_keys,
            "the children split the parent's keys"
        );
        assert_eq!(s.records_produced(now), 2_000);
    }

    #[test]
    fn a_merge_closes_both_parents_and_one_child_takes_their_keys() {
        let mut cfg = stream_cfg(
            StreamKind::Kinesis,
            3,
            vec![producer(100.0, None, Some(20.0))],
        );
        cfg.reshard.push(ReshardConfig {
            at_seconds: 10.0,
            split: None,
            merge: Some(["shardId-000000000002".into(), "shardId-000000000001".into()]),
        });
        let s = stream(&cfg, 1);
        let now = T0 + 30_000;
        let shards = s.list_shards(now);
        assert_eq!(shards.len(), 4);
        assert_eq!(
            shards[3].parent_shard_ids,
            vec![
                ShardId("shardId-000000000002".into()),
                ShardId("shardId-000000000001".into())
            ]
        );
        let late = |id: &ShardId| {
            all_records(&s, now, id)
                .iter()
                .filter(|r| r.approximate_arrival_ms >= T0 + 10_000)
                .count()
        };
        assert_eq!(late(&shards[1].shard_id), 0);
        assert_eq!(late(&shards[2].shard_id), 0);
        assert!(late(&shards[0].shard_id) > 0);
        assert!(late(&shards[3].shard_id) > 0);
    }

    #[test]
    fn invalid_reshards_are_skipped_without_a_panic() {
        let mut cfg = stream_cfg(
            StreamKind::Kinesis,
            3,
            vec![producer(10.0, Some(100), None)],
        );
        for (at, split, merge) in [
            (1.0, Some("shardId-000000000099"), None),
            (
                2.0,
                None,
                Some(["shardId-000000000000", "shardId-000000000002"]),
            ),
            (
                3.0,
                Some("shardId-000000000000"),
                Some(["shardId-000000000000", "shardId-000000000001"]),
            ),
            (f64::NAN, Some("shardId-000000000000"), None),
            (4.0, Some("shardId-000000000001"), None),
            (5.0, Some("shardId-000000000001"), None),
        ] {
            cfg.reshard.push(ReshardConfig {
                at_seconds: at,
                split: split.map(String::from),
                merge: merge.map(|[a, b]| [a.to_string(), b.to_string()]),
            });
        }
        let s = stream(&cfg, 1);
        assert_eq!(
            s.shard_ids(T0 + 60_000).len(),
            5,
            "only the first split of shard 1 applies"
        );
        assert_eq!(s.records_produced(T0 + 60_000), 100);
    }

    fn dynamodb_changes(
        view: Option<StreamViewType>,
    ) -> Vec<(StreamRecord, crate::model::DynamodbChange)> {
        let mut p = producer(10.0, Some(60), None);
        p.keys = 2;
        p.poison_every = Some(5);
        let mut cfg = stream_cfg(StreamKind::Dynamodb, 1, vec![p]);
        cfg.stream_view_type = view;
        cfg.rollover_seconds = Some(2);
        let s = stream(&cfg, 1);
        let now = T0 + 60_000;
        let mut out = Vec::new();
        for id in s.shard_ids(now) {
            for r in all_records(&s, now, &id) {
                let RecordBody::Dynamodb(change) = &r.body else {
                    panic!("not a DynamoDB record")
                };
                out.push((r.clone(), (**change).clone()));
            }
        }
        out.sort_by_key(|(r, _)| r.approximate_arrival_ms);
        out
    }

    #[test]
    fn dynamodb_shards_roll_over_into_one_child_each() {
        let mut cfg = stream_cfg(
            StreamKind::Dynamodb,
            2,
            vec![producer(10.0, Some(60), None)],
        );
        cfg.rollover_seconds = Some(2);
        let s = stream(&cfg, 1);
        let shards = s.list_shards(T0 + 5_000);
        assert_eq!(shards.len(), 6);
        assert!(shards[0]
            .shard_id
            .as_str()
            .starts_with(&format!("shardId-{T0:020}-")));
        assert!(shards[4]
            .shard_id
            .as_str()
            .starts_with(&format!("shardId-{:020}-", T0 + 4_000)));
        assert_eq!(shards[2].parent_shard_ids, vec![shards[0].shard_id.clone()]);
        assert_eq!(shards[5].parent_shard_ids, vec![shards[3].shard_id.clone()]);
        let total: u64 = s
            .shard_ids(T0 + 60_000)
            .iter()
            .map(|id| s.count_after(T0 + 60_000, id, None))
            .sum();
        assert_eq!(total, 60);
        let first = all_records(&s, T0 + 60_000, &shards[0].shard_id);
        assert!(first.iter().all(|r| r.approximate_arrival_ms < T0 + 2_000));
    }

    #[test]
    fn dynamodb_changes_cycle_through_insert_modify_and_remove_per_item() {
        let changes = dynamodb_changes(None);
        assert_eq!(changes.len(), 60);
        let mut per_key: std::collections::BTreeMap<String, Vec<DynamodbEventName>> =
            Default::default();
        for (r, c) in &changes {
            per_key
                .entry(r.ordering_key())
                .or_default()
                .push(c.event_name);
            assert_eq!(c.event_id.len(), 32);
            assert!(c
                .event_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(!c.ttl_deletion);
            assert_eq!(c.stream_view_type, StreamViewType::NewAndOldImages);
        }
        for events in per_key.values() {
            assert!(events.len() > 10);
            for (i, e) in events.iter().enumerate() {
                let expected = match i % 10 {
                    0 => DynamodbEventName::Insert,
                    9 => DynamodbEventName::Remove,
                    _ => DynamodbEventName::Modify,
                };
                assert_eq!(*e, expected, "change {i}");
            }
        }
    }

    #[test]
    fn dynamodb_old_images_are_the_item_as_the_previous_change_wrote_it() {
        let changes = dynamodb_changes(None);
        let mut last_new: std::collections::BTreeMap<
            String,
            serde_json::Map<String, serde_json::Value>,
        > = Default::default();
        for (r, c) in &changes {
            let key = r.ordering_key();
            assert_eq!(serde_json::Value::Object(c.keys.clone()).to_string(), key);
            match c.event_name {
                DynamodbEventName::Insert => {
                    assert!(c.old_image.is_none());
                    assert!(c.new_image.is_some());
                }
                DynamodbEventName::Modify | DynamodbEventName::Remove => {
                    let mut old = c.old_image.clone().unwrap();
                    let mut before = last_new[&key].clone();
                    // The poison marker belongs to the poison record, not to the item.
                    old.remove("poison");
                    before.remove("poison");
                    assert_eq!(old, before);
                    assert_eq!(
                        c.new_image.is_some(),
                        c.event_name == DynamodbEventName::Modify
                    );
                }
            }
            if let Some(new) = &c.new_image {
                let text = serde_json::Value::Object(new.clone()).to_string();
                let marker = if new.contains_key("poison") { 23 } else { 0 };
                assert_eq!(text.len(), 100 + marker, "{text}");
                assert!(c.size_bytes as usize > text.len());
                last_new.insert(key, new.clone());
            }
            let poison = memchr::memmem::find(&r.data_for_matching(), b"poison").is_some();
            let n: u64 = match (&c.new_image, &c.old_image) {
                (Some(img), _) => img["n"]["N"].as_str().unwrap().parse().unwrap(),
                _ => u64::MAX,
            };
            if n != u64::MAX {
                assert_eq!(poison, (n + 1) % 5 == 0, "record n={n}");
            }
        }
    }

    #[test]
    fn dynamodb_images_follow_the_stream_view_type() {
        for view in [
            StreamViewType::KeysOnly,
            StreamViewType::NewImage,
            StreamViewType::OldImage,
        ] {
            for (_, c) in dynamodb_changes(Some(view)) {
                assert_eq!(c.stream_view_type, view);
                let new_expected =
                    view.has_new_image() && c.event_name != DynamodbEventName::Remove;
                let old_expected =
                    view.has_old_image() && c.event_name != DynamodbEventName::Insert;
                assert_eq!(
                    c.new_image.is_some(),
                    new_expected,
                    "{view:?} {:?}",
                    c.event_name
                );
                assert_eq!(
                    c.old_image.is_some(),
                    old_expected,
                    "{view:?} {:?}",
                    c.event_name
                );
                assert!(c.size_bytes > 0);
            }
        }
    }

    #[test]
    fn retention_trims_old_records_and_drops_closed_shards_once_empty() {
        let mut cfg = stream_cfg(
            StreamKind::Kinesis,
            1,
            vec![producer(1.0, None, Some(7_200.0))],
        );
        cfg.retention_hours = Some(1);
        cfg.reshard.push(ReshardConfig {
            at_seconds: 600.0,
            split: Some("shardId-000000000000".into()),
            merge: None,
        });
        let s = stream(&cfg, 1);
        let parent = ShardId("shardId-000000000000".into());
        let now = T0 + 3_600_000 + 300_000;
        assert_eq!(s.list_shards(now).len(), 3);
        let index = s.shard_index(now, &parent).unwrap();
        assert_eq!(
            s.position(now, index, &IteratorPosition::TrimHorizon)
                .unwrap(),
            0,
            "TRIM_HORIZON starts at the first record ever written, so its reader hears of the 300 trimmed"
        );
        let page = s.read(now, index, 0, 10, usize::MAX).unwrap();
        let lost = page.lost.unwrap();
        assert_eq!(lost.count, Some(300));
        assert_eq!(
            lost.first,
            Some(stream::sequence_number(StreamKind::Kinesis, 0, 0))
        );
        assert_eq!(
            lost.last,
            Some(stream::sequence_number(StreamKind::Kinesis, 0, 299))
        );
        assert_eq!(
            page.records[0].sequence_number,
            stream::sequence_number(StreamKind::Kinesis, 0, 300)
        );
        assert_eq!(
            s.count_after(now, &parent, None),
            600,
            "trimmed records still count as produced"
        );
        assert_eq!(s.count_before_time(now, &parent, T0 + 450_000), 450);
        let approx = s.count_before_time(now, &parent, T0 + 100_000);
        assert!((100..=164).contains(&approx), "{approx}");
        // Once everything of the parent is gone and it closed over an hour ago, it is unlisted.
        let later = T0 + 600_000 + 3_600_001;
        let listed: Vec<ShardId> = s
            .list_shards(later)
            .into_iter()
            .map(|i| i.shard_id)
            .collect();
        assert!(!listed.contains(&parent));
        assert_eq!(s.shard_ids(later).len(), 3);
    }

    #[test]
    fn count_after_counts_the_records_behind_a_sequence_number() {
        let s = stream(
            &stream_cfg(StreamKind::Kinesis, 1, vec![producer(10.0, Some(50), None)]),
            1,
        );
        let now = T0 + 60_000;
        let id = ShardId("shardId-000000000000".into());
        let seq = stream::sequence_number(StreamKind::Kinesis, 0, 9);
        assert_eq!(s.count_after(now, &id, Some(&seq)), 40);
        assert_eq!(s.count_after(now, &id, None), 50);
        assert_eq!(s.count_after(now, &ShardId("nope".into()), None), 0);
        assert_eq!(s.count_before_time(now, &id, T0 + 1_000), 10);
    }
}
