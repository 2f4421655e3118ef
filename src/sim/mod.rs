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
//! The files form a line: each uses only the ones below it.
//!
//! ```text
//!   mod.rs          SimulatedStream: what sources and the report ask of a stream
//!     |
//!   advance.rs      the world moving in time: producers write, reshards, rollovers, trims
//!     |
//!   materialize.rs  a stored record rebuilt as the StreamRecord a reader sees
//!     |
//!   producer.rs     per producer: arrival, key, amount, poison of record k; routing
//!     |
//!   shards.rs       shards: ids, hash key ranges, lineage, record logs, split/merge/trim
//!     |
//!   items.rs        DynamoDB items: INSERT / MODIFY / REMOVE and the previous change
//!     |
//!   sequence.rs     sequence numbers (shard and record index in the digits)
//!     |
//!   record.rs       a record as stored: (producer, k, meta) and its previous change
//!     |
//!   payload.rs      record text: decimal digits, JSON escaping, Kinesis data layout
//! ```

mod advance;
pub(crate) mod items;
mod materialize;
pub(crate) mod payload;
mod producer;
mod record;
mod record_log;
mod sequence;
mod shards;

use std::sync::{Mutex, MutexGuard};

use crate::config::schema::{AwsIdentity, SimStreamConfig};
use crate::limits::KINESIS_DEFAULT_RETENTION_HOURS;
use crate::model::{SequenceNumber, ShardId, ShardInfo, StreamKind, StreamRecord, StreamViewType};
use crate::source::{IteratorPosition, LostRecords};
use advance::StreamState;
use materialize::Materializer;
use producer::{producer_specs, ProducerSpec};
use record::{Prev, Rec};
use sequence::{parse_sequence_number, SequenceCursor};

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
        let (specs, key_spaces) = producer_specs(cfg, seed, created_at_ms);
        let state = StreamState::new(cfg, &arn, seed, created_at_ms, &specs, &key_spaces);
        let retention_hours = i64::from(
            cfg.retention_hours
                .unwrap_or(KINESIS_DEFAULT_RETENTION_HOURS),
        );
        SimulatedStream {
            name: cfg.name.clone(),
            kind: cfg.kind,
            view: cfg
                .stream_view_type
                .unwrap_or(StreamViewType::NewAndOldImages),
            retention_ms: retention_hours.saturating_mul(3_600_000),
            specs,
            state: Mutex::new(state),
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
        self.advanced(now_ms).producers_done()
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
        let Some(s) = state.shards.find(shard.as_str()) else {
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
        let Some(s) = state.shards.find(shard.as_str()) else {
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

    pub(crate) fn has_shard(&self, shard: u32) -> bool {
        self.lock().shards.shard(shard).is_some()
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
    /// record index `from`; None for an unknown shard. Records are rebuilt straight from
    /// the stored ones, under the state's lock (no copy of a page's worth of them first:
    /// at 10,000 records a page that copy was memory traffic for nothing).
    pub(crate) fn read(
        &self,
        now_ms: i64,
        shard: u32,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Option<ReadPage> {
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
        let offset = (start - s.trimmed) as usize;
        let available = (total - start).min(limit as u64) as usize;
        let materializer = Materializer {
            specs: &self.specs,
            kind: self.kind,
            view: self.view,
        };
        let mut records = Vec::with_capacity(available);
        let mut bytes = 0usize;
        let mut sequence_numbers = SequenceCursor::new(self.kind, shard, start);
        for (i, rec) in s.recs.range(offset..offset + available).enumerate() {
            let prev = s.prevs.get(offset + i).copied().unwrap_or(Prev::NONE);
            let seq = sequence_numbers.next_number();
            let index = start + i as u64;
            let Some((record, size)) = materializer.record(rec, prev, seq, shard, index) else {
                break;
            };
            if !records.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            records.push(record);
        }
        let next_index = start + records.len() as u64;
        let millis_behind_latest = match s.recs.get(offset + records.len()) {
            Some(next) if next_index < total => now_ms.saturating_sub(self.arrival(next)).max(0),
            _ => 0,
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
        state.advance(&self.specs, self.retention_ms, &self.name, now_ms);
        state
    }
}

#[cfg(test)]
mod tests;
