//! Shards of a simulated stream: ids, hash key ranges, lineage, the compact record log of
//! each shard, resharding and retention trimming.
//!
//! A shard stores per record only `(producer, k, meta)` (16 bytes, plus 16 for the
//! previous change of a DynamoDB item), never the payload: everything else is a pure
//! function of the producer's config and `k`, and is regenerated when the record is read
//! (`materialize.rs`). A record's index in its shard is encoded in its sequence number
//! (`sequence.rs`), so positions, counts and "after this sequence number" are O(1).
//! Trimming pops records from the front of each shard's log (`record_log.rs`); a min-heap of the shards'
//! oldest arrivals makes a trim cost nothing while nothing is due, however many shards
//! there are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::record::{Prev, Rec};
use super::record_log::RecordLog;
use super::sequence::sequence_number;
use crate::model::{SequenceNumber, ShardId, ShardInfo, StreamKind};
use crate::rng::Rng;

/// Every how many trimmed records one (index, arrival) sample is kept, so that
/// `count_before_time` can still answer (to within this many records) inside the trimmed
/// part of a shard.
const TRIM_SAMPLE_EVERY: u64 = 64;

pub(crate) struct Shard {
    pub id: ShardId,
    pub parents: Vec<u32>,
    pub children: Vec<u32>,
    pub closed_ms: Option<i64>,
    /// Records before this index are gone (trimmed by retention).
    pub trimmed: u64,
    pub recs: RecordLog<Rec>,
    /// DynamoDB only, parallel to `recs`.
    pub prevs: RecordLog<Prev>,
    /// (index, arrival) of every `TRIM_SAMPLE_EVERY`th trimmed record.
    pub trim_samples: Vec<(u64, i64)>,
    pub last_trimmed_arrival: Option<i64>,
}

impl Shard {
    /// Records ever written to this shard, trimmed ones included.
    pub fn total(&self) -> u64 {
        self.trimmed + self.recs.len() as u64
    }
}

/// An open shard's place in the hash key space; the open slots are kept sorted by `start`
/// and always cover the whole u128 space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub start: u128,
    pub end: u128,
    pub shard: u32,
}

pub(crate) struct Shards {
    kind: StreamKind,
    arn: String,
    seed: u64,
    pub list: Vec<Shard>,
    /// Index in `list` by shard id, for every read: a hash map (foldhash), since an
    /// ordered map compared ~14 ids cold in cache per read at 10,000 shards.
    by_id: foldhash::HashMap<String, u32>,
    pub open: Vec<Slot>,
    /// (oldest retained arrival, shard) of every non-empty shard; entries may be stale
    /// (then they are skipped), never missing.
    trim_heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl Shards {
    /// `count` open shards splitting the hash key space evenly, created at `created_ms`.
    pub fn new(kind: StreamKind, arn: &str, seed: u64, count: u32, created_ms: i64) -> Shards {
        let count = count.max(1);
        let mut shards = Shards {
            kind,
            arn: arn.to_string(),
            seed,
            list: Vec::new(),
            by_id: foldhash::HashMap::default(),
            open: Vec::new(),
            trim_heap: BinaryHeap::new(),
        };
        let size = u128::MAX / u128::from(count);
        for i in 0..count {
            let start = size * u128::from(i);
            let end = if i + 1 == count {
                u128::MAX
            } else {
                size * u128::from(i + 1) - 1
            };
            let shard = shards.create(Vec::new(), created_ms);
            shards.open.push(Slot { start, end, shard });
        }
        shards
    }

    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn shard(&self, index: u32) -> Option<&Shard> {
        self.list.get(index as usize)
    }

    /// The shard with this id, if the stream has it.
    pub fn find(&self, id: &str) -> Option<&Shard> {
        self.lookup(id).and_then(|index| self.shard(index))
    }

    /// The open slot whose range holds `hash`.
    pub fn slot_for(open: &[Slot], hash: u128) -> usize {
        open.partition_point(|s| s.start <= hash).saturating_sub(1)
    }

    fn create(&mut self, parents: Vec<u32>, at_ms: i64) -> u32 {
        let index = self.list.len() as u32;
        let id = self.new_id(index, at_ms);
        for &p in &parents {
            if let Some(parent) = self.list.get_mut(p as usize) {
                parent.children.push(index);
            }
        }
        self.by_id.insert(id.clone(), index);
        self.list.push(Shard {
            id: ShardId(id),
            parents,
            children: Vec::new(),
            closed_ms: None,
            trimmed: 0,
            recs: RecordLog::default(),
            prevs: RecordLog::default(),
            trim_samples: Vec::new(),
            last_trimmed_arrival: None,
        });
        index
    }

    /// Kinesis: `shardId-<12 digits>`; DynamoDB: `shardId-<creation ms>-<8 hex>`, the hex
    /// drawn from the seed (and bumped on the unlikely collision, so ids stay unique).
    fn new_id(&self, index: u32, at_ms: i64) -> String {
        match self.kind {
            StreamKind::Kinesis => format!("shardId-{index:012}"),
            StreamKind::Dynamodb => {
                let mut hash = Rng::derived(self.seed, &format!("{}/shard/{index}", self.arn))
                    .next_u64() as u32;
                loop {
                    let id = format!("shardId-{:020}-{hash:08x}", at_ms.max(0));
                    if !self.by_id.contains_key(&id) {
                        return id;
                    }
                    hash = hash.wrapping_add(1);
                }
            }
        }
    }

    fn close(&mut self, shard: u32, at_ms: i64) {
        if let Some(s) = self.list.get_mut(shard as usize) {
            s.closed_ms = Some(at_ms);
        }
    }

    /// Splits an open shard at the middle of its range. Err: why it cannot.
    pub fn split(&mut self, id: &str, at_ms: i64) -> Result<(), String> {
        let shard = self
            .lookup(id)
            .ok_or_else(|| format!("shard {id} does not exist"))?;
        let pos = self
            .open
            .iter()
            .position(|s| s.shard == shard)
            .ok_or_else(|| format!("shard {id} is closed"))?;
        let slot = self.open[pos];
        if slot.start == slot.end {
            return Err(format!(
                "shard {id} holds a single hash key and cannot be split"
            ));
        }
        let mid = slot.start + (slot.end - slot.start) / 2;
        self.close(shard, at_ms);
        let lower = self.create(vec![shard], at_ms);
        let upper = self.create(vec![shard], at_ms);
        self.open.splice(
            pos..=pos,
            [
                Slot {
                    start: slot.start,
                    end: mid,
                    shard: lower,
                },
                Slot {
                    start: mid + 1,
                    end: slot.end,
                    shard: upper,
                },
            ],
        );
        Ok(())
    }

    /// Merges two open shards with adjacent ranges into one child whose parents are
    /// `[a, b]` (ParentShardId, AdjacentParentShardId).
    pub fn merge(&mut self, a: &str, b: &str, at_ms: i64) -> Result<(), String> {
        let sa = self
            .lookup(a)
            .ok_or_else(|| format!("shard {a} does not exist"))?;
        let sb = self
            .lookup(b)
            .ok_or_else(|| format!("shard {b} does not exist"))?;
        let pa = self
            .open
            .iter()
            .position(|s| s.shard == sa)
            .ok_or_else(|| format!("shard {a} is closed"))?;
        let pb = self
            .open
            .iter()
            .position(|s| s.shard == sb)
            .ok_or_else(|| format!("shard {b} is closed"))?;
        let (lo, hi) = if pa < pb { (pa, pb) } else { (pb, pa) };
        if hi != lo + 1 || self.open[lo].end.checked_add(1) != Some(self.open[hi].start) {
            return Err(format!("shards {a} and {b} are not adjacent"));
        }
        let (start, end) = (self.open[lo].start, self.open[hi].end);
        self.close(sa, at_ms);
        self.close(sb, at_ms);
        let child = self.create(vec![sa, sb], at_ms);
        self.open.splice(
            lo..=hi,
            [Slot {
                start,
                end,
                shard: child,
            }],
        );
        Ok(())
    }

    /// DynamoDB rollover: every open shard closes and gets one child with the same range.
    pub fn rollover(&mut self, at_ms: i64) {
        for pos in 0..self.open.len() {
            let slot = self.open[pos];
            self.close(slot.shard, at_ms);
            let child = self.create(vec![slot.shard], at_ms);
            self.open[pos].shard = child;
        }
    }

    /// Appends a record to a shard (`prev` only for DynamoDB streams).
    #[inline]
    pub fn push(&mut self, shard: u32, rec: Rec, prev: Option<Prev>, arrival_ms: i64) {
        let Some(s) = self.list.get_mut(shard as usize) else {
            return;
        };
        if s.recs.is_empty() {
            self.trim_heap.push(Reverse((arrival_ms, shard)));
        }
        s.recs.push_back(rec);
        if let Some(prev) = prev {
            s.prevs.push_back(prev);
        }
    }

    /// Drops every record that arrived before `cutoff_ms`.
    pub fn trim(&mut self, cutoff_ms: i64, arrival_of: impl Fn(&Rec) -> i64) {
        while let Some(&Reverse((oldest, shard))) = self.trim_heap.peek() {
            if oldest >= cutoff_ms {
                return;
            }
            self.trim_heap.pop();
            let Some(s) = self.list.get_mut(shard as usize) else {
                continue;
            };
            while let Some(rec) = s.recs.front() {
                let arrival = arrival_of(rec);
                if arrival >= cutoff_ms {
                    self.trim_heap.push(Reverse((arrival, shard)));
                    break;
                }
                if s.trimmed % TRIM_SAMPLE_EVERY == 0 {
                    s.trim_samples.push((s.trimmed, arrival));
                }
                s.last_trimmed_arrival = Some(arrival);
                s.recs.pop_front();
                s.prevs.pop_front();
                s.trimmed += 1;
            }
        }
    }

    /// Whether a shard is still listed: a closed shard disappears once all its records are
    /// trimmed and it closed more than `retention_ms` ago.
    pub fn listed(&self, shard: &Shard, now_ms: i64, retention_ms: i64) -> bool {
        match shard.closed_ms {
            Some(closed) => {
                !(shard.recs.is_empty() && now_ms.saturating_sub(closed) > retention_ms)
            }
            None => true,
        }
    }

    pub fn info(&self, shard: &Shard) -> ShardInfo {
        ShardInfo {
            shard_id: shard.id.clone(),
            parent_shard_ids: shard
                .parents
                .iter()
                .filter_map(|&p| self.shard(p).map(|s| s.id.clone()))
                .collect(),
        }
    }

    pub fn sequence_number(&self, shard: u32, index: u64) -> SequenceNumber {
        sequence_number(self.kind, shard, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_shards_cover_the_whole_hash_key_space_evenly() {
        let shards = Shards::new(StreamKind::Kinesis, "arn", 1, 3, 0);
        assert_eq!(shards.open.len(), 3);
        assert_eq!(shards.open[0].start, 0);
        assert_eq!(shards.open[2].end, u128::MAX);
        for w in shards.open.windows(2) {
            assert_eq!(w[0].end + 1, w[1].start);
        }
        assert_eq!(Shards::slot_for(&shards.open, 0), 0);
        assert_eq!(Shards::slot_for(&shards.open, u128::MAX), 2);
        assert_eq!(Shards::slot_for(&shards.open, shards.open[1].start), 1);
        assert_eq!(shards.list[1].id.as_str(), "shardId-000000000001");
    }

    #[test]
    fn invalid_splits_and_merges_are_refused_with_a_reason() {
        let mut shards = Shards::new(StreamKind::Kinesis, "arn", 1, 3, 0);
        assert!(shards.split("shardId-000000000009", 5).is_err());
        assert!(shards
            .merge("shardId-000000000000", "shardId-000000000002", 5)
            .is_err());
        shards.split("shardId-000000000000", 5).unwrap();
        assert!(shards.split("shardId-000000000000", 6).is_err());
        assert!(shards
            .merge("shardId-000000000000", "shardId-000000000001", 6)
            .is_err());
        shards
            .merge("shardId-000000000004", "shardId-000000000001", 7)
            .unwrap();
        assert_eq!(shards.open.len(), 3);
        for w in shards.open.windows(2) {
            assert_eq!(w[0].end + 1, w[1].start);
        }
    }

    #[test]
    fn dynamodb_shard_ids_carry_the_creation_time_and_stay_unique() {
        let mut shards = Shards::new(StreamKind::Dynamodb, "arn", 1, 2, 1_000);
        shards.rollover(2_000);
        let ids: Vec<&str> = shards.list.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 4);
        assert!(ids[0].starts_with("shardId-00000000000000001000-"));
        assert!(ids[3].starts_with("shardId-00000000000000002000-"));
        assert_eq!(ids[3].len(), "shardId-".len() + 20 + 1 + 8);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
    }
}
