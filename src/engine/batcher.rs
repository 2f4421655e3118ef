//! Cutting batches (spec 2.1 step 1) and encoding each batch's event once.
//!
//! Records wait in a `ReadBuffer` as read. A batch is cut by encoding records one by one
//! straight into the batch's event (`{"Records":[...]}`) until BatchSize, or until the
//! next record would take the event past the 6 MB payload cap; so the cap is measured on
//! the exact bytes sent, each record is encoded once, and the first invocation sends the
//! event as built, with no copy. Retries of part of a batch (partial failure, bisect)
//! join the byte spans of their records. A batch always holds at least one record, so no
//! record can block a shard.
//!
//! With ParallelizationFactor > 1 the buffer also keeps each record's ordering-key hash
//! and a count of buffered records per key, so the shard can ask how many records and keys
//! are free (not held by a busy lane) without hashing the buffer again.
//!
//! To decide whether a batch is ready before cutting it (BatchSize reached, or the cap),
//! the buffer keeps a lower bound of its records' encoded size: data in base64 plus key
//! and sequence number. It never overstates, so a batch is never cut early; at worst a
//! batch that would pass the cap waits for its batching window.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use crate::event::{assemble_event, encode_record, EventContext, EVENT_PREFIX, EVENT_SUFFIX};
use crate::model::{RecordBody, StreamRecord};

/// Ordering-key hashes are already hashes: sets and maps of them use them as they are.
#[derive(Default)]
pub struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    // Only `write_u64` is used (keys are u64); this keeps other input well-defined.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
pub type KeySet = HashSet<u64, BuildHasherDefault<KeyHasher>>;
pub type KeyCounts = HashMap<u64, usize, BuildHasherDefault<KeyHasher>>;

/// Lambda's synchronous invocation payload limit: 6 MB (6,291,456 bytes).
pub const PAYLOAD_CAP_BYTES: usize = crate::limits::LAMBDA_INVOCATION_PAYLOAD_BYTES;

/// Records in sequence order and their event.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<StreamRecord>,
    /// Each record's ordinal in the shard's `Progress`.
    pub ordinals: Vec<u64>,
    /// Each record's ordering-key hash (only when cut with ParallelizationFactor > 1).
    pub keys: Vec<u64>,
    /// The event of the whole batch.
    event: Vec<u8>,
    /// Where each record's fragment lies in `event`.
    spans: Vec<Range<usize>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The event of `range`: the batch's own when it is the whole batch, else assembled
    /// into `scratch`.
    pub fn event<'a>(&'a self, range: Range<usize>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        if range == (0..self.len()) {
            return &self.event;
        }
        assemble_event(
            self.spans[range]
                .iter()
                .map(|span| &self.event[span.clone()]),
            scratch,
        );
        scratch
    }

    /// The bytes its buffers hold (their capacity, used or not).
    pub fn buffer_bytes(&self) -> usize {
        self.event.capacity()
            + self.records.capacity() * std::mem::size_of::<StreamRecord>()
            + (self.ordinals.capacity() + self.keys.capacity()) * std::mem::size_of::<u64>()
            + self.spans.capacity() * std::mem::size_of::<Range<usize>>()
    }

    #[cfg(test)]
    pub fn reserve_event(&mut self, bytes: usize) {
        self.event.reserve(bytes);
    }

    /// The batch emptied, its buffers kept, to cut the next batch into without allocating
    /// (allocating a fresh records vector per batch made glibc consolidate its fast bins
    /// over and over: 6% of a simulation).
    pub fn emptied(mut self) -> Batch {
        self.records.clear();
        self.ordinals.clear();
        self.keys.clear();
        self.event.clear();
        self.spans.clear();
        self
    }
}

/// Once the first record of a batch is encoded (its fragment starts at `start`), room for
/// `expected` records like it, an eighth more for records a little longer, at most
/// `cap_bytes` of event: one allocation where growing by doubling would copy the event
/// several times (a recycled batch usually has the room already).
fn reserve_like_first(event: &mut Vec<u8>, start: usize, expected: usize, cap_bytes: usize) {
    let first = event.len() - start;
    let rest = first.saturating_mul(expected.saturating_sub(1));
    let wanted = rest
        .saturating_add(rest / 8)
        .saturating_add(EVENT_SUFFIX.len() + expected);
    event.reserve(wanted.min(cap_bytes.saturating_sub(event.len())));
}

/// What one batch is cut to, and the context its records are encoded with.
struct Cut<'a> {
    ctx: &'a EventContext,
    batch_size: usize,
    cap_bytes: usize,
    /// How many records the batch is expected to hold (for the first reservation).
    expected: usize,
}

impl Cut<'_> {
    /// Encodes `record` as the batch's record number `index` (its span recorded), unless
    /// the event would pass the cap with records already in it: then the event is left as
    /// it was and false returned. The record itself is the caller's to move in.
    fn append(&self, batch: &mut Batch, index: usize, record: &StreamRecord) -> bool {
        let before = batch.event.len();
        if index > 0 {
            batch.event.push(b',');
        }
        let start = batch.event.len();
        encode_record(self.ctx, record, &mut batch.event);
        if index > 0 && batch.event.len() + EVENT_SUFFIX.len() > self.cap_bytes {
            batch.event.truncate(before);
            return false;
        }
        if index == 0 {
            reserve_like_first(&mut batch.event, start, self.expected, self.cap_bytes);
        }
        batch.spans.push(start..batch.event.len());
        true
    }
}

/// Records read but not yet batched, with their `Progress` ordinals.
///
/// The records and their tags (ordinal, key hash) sit in two parallel deques so that a
/// page read into an empty buffer is adopted as it is (`VecDeque::from` a `Vec` keeps its
/// allocation): a page of 10,000 records (about 700 KB) is not copied into a second,
/// freshly allocated buffer while it waits; only the 16-byte tags are written.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    records: VecDeque<StreamRecord>,
    /// (ordinal, ordering-key hash, 0 unless keyed) of each record in `records`.
    tags: VecDeque<(u64, u64)>,
    /// Lower bound of the encoded size of `records`.
    min_bytes: usize,
    /// Buffered records per ordering-key hash.
    key_counts: KeyCounts,
    /// Whether keys are counted (ParallelizationFactor > 1).
    keyed: bool,
}

/// A lower bound of a record's encoded fragment size.
fn min_encoded_bytes(record: &StreamRecord) -> usize {
    let body = match &record.body {
        RecordBody::Kinesis {
            partition_key,
            data,
        } => partition_key.len() + data.len().div_ceil(3) * 4,
        RecordBody::Dynamodb(change) => change.size_bytes as usize,
    };
    body + 2 * record.sequence_number.0.len()
}

impl ReadBuffer {
    /// Appends one record (tests build buffers this way; the shard pushes whole pages).
    #[cfg(test)]
    pub fn push(&mut self, ordinal: u64, record: StreamRecord) {
        self.tag(ordinal, &record);
        self.records.push_back(record);
    }

    /// Appends the records of a page, `ordinals` giving each one's ordinal in turn; into
    /// an empty buffer the page's vector itself becomes the buffer.
    pub fn push_page(&mut self, ordinals: impl IntoIterator<Item = u64>, page: Vec<StreamRecord>) {
        self.tags.reserve(page.len());
        for (ordinal, record) in ordinals.into_iter().zip(&page) {
            self.tag(ordinal, record);
        }
        if self.records.is_empty() {
            self.records = VecDeque::from(page);
        } else {
            self.records.extend(page);
        }
    }

    /// Counts a record about to be buffered and queues its tag.
    fn tag(&mut self, ordinal: u64, record: &StreamRecord) {
        self.min_bytes += min_encoded_bytes(record);
        let key = if self.keyed {
            let key = record.ordering_hash();
            *self.key_counts.entry(key).or_default() += 1;
            key
        } else {
            0
        };
        self.tags.push_back((ordinal, key));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Gives the memory of an empty buffer back (a quiet shard should not keep the room
    /// its largest page needed); a buffer holding records is left as it is.
    pub fn release_if_empty(&mut self) {
        if self.records.is_empty() {
            self.records = VecDeque::new();
            self.tags = VecDeque::new();
            self.key_counts = KeyCounts::default();
        }
    }

    pub fn keyed() -> Self {
        ReadBuffer {
            keyed: true,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The last record read, if any is buffered.
    pub fn last(&self) -> Option<&StreamRecord> {
        self.records.back()
    }

    /// The buffered records' arrival times, in order.
    pub fn arrivals(&self) -> impl Iterator<Item = i64> + '_ {
        self.records.iter().map(|r| r.approximate_arrival_ms)
    }

    /// Forgets every buffered record (a rewind: they will be read again).
    pub fn clear(&mut self) {
        self.records.clear();
        self.tags.clear();
        self.min_bytes = 0;
        self.key_counts.clear();
    }

    /// A batch can be cut now without waiting: BatchSize is reached, or the buffered
    /// records certainly fill the payload cap.
    pub fn holds_full_batch(&self, batch_size: usize) -> bool {
        self.records.len() >= batch_size
            || self.min_bytes + EVENT_PREFIX.len() + EVENT_SUFFIX.len() > PAYLOAD_CAP_BYTES
    }

    /// The buffered records whose key is not `held`: how many, and how many distinct keys.
    pub fn free(&self, held: &KeySet) -> (usize, usize) {
        let (mut held_records, mut held_keys) = (0, 0);
        for key in held {
            if let Some(count) = self.key_counts.get(key) {
                held_records += count;
                held_keys += 1;
            }
        }
        (
            self.records.len() - held_records,
            self.key_counts.len() - held_keys,
        )
    }

    /// Cuts the next batch (at most `batch_size` records, at most `cap_bytes` of event,
    /// at least one record unless every buffered record is held), encoding its event as
    /// it goes. Records whose ordering key is in `held` (in flight in another lane) are
    /// passed over, and so is every later record of the same key, so per-key order holds;
    /// passed-over records stay buffered in order. A batch takes records of at most
    /// `max_keys` keys (so one lane does not take every key and starve the others).
    /// With nothing held, no key limit and no keys counted, the batch is simply the front
    /// of the buffer. `spare` is an emptied batch (`Batch::emptied`) whose buffers are reused.
    pub fn take_batch(
        &mut self,
        batch_size: usize,
        cap_bytes: usize,
        ctx: &EventContext,
        spare: Batch,
        held: &KeySet,
        max_keys: usize,
    ) -> Batch {
        let mut batch = spare.emptied();
        let expected = batch_size.min(self.len());
        batch.records.reserve(expected);
        batch.ordinals.reserve(expected);
        batch.spans.reserve(expected);
        batch.event.extend_from_slice(EVENT_PREFIX);
        // A buffer that counts keys keeps its counts through the keyed cut even when
        // nothing is held, so `free` stays right.
        let keyed = self.keyed || !held.is_empty() || max_keys != usize::MAX;
        let cut = Cut {
            ctx,
            batch_size,
            cap_bytes,
            expected,
        };
        if keyed {
            self.take_keyed(&cut, &mut batch, held, max_keys);
        } else {
            self.take_front(&cut, &mut batch);
        }
        batch.event.extend_from_slice(EVENT_SUFFIX);
        batch
    }

    /// The batch as the front of the buffer: records are encoded where they lie, then the
    /// ones taken move into the batch in one go (not popped and pushed one by one, which
    /// was a tenth of batching).
    fn take_front(&mut self, cut: &Cut<'_>, batch: &mut Batch) {
        let mut taken = 0;
        for record in self.records.iter().take(cut.batch_size) {
            if !cut.append(batch, taken, record) {
                break;
            }
            self.min_bytes -= min_encoded_bytes(record);
            taken += 1;
        }
        batch.records.extend(self.records.drain(..taken));
        // From an iterator of known length (a drain's is not): one reservation, no
        // per-element check.
        batch
            .ordinals
            .extend(self.tags.iter().take(taken).map(|&(ordinal, _)| ordinal));
        self.tags.drain(..taken);
    }

    /// The batch when keys are held or limited: records of held keys, and every later
    /// record of the same key, are passed over and stay buffered in order.
    fn take_keyed(&mut self, cut: &Cut<'_>, batch: &mut Batch, held: &KeySet, max_keys: usize) {
        let mut passed_over: Vec<(u64, u64, StreamRecord)> = Vec::new();
        let mut remaining_taken = 0usize;
        let mut passed_keys = KeySet::default();
        let mut taken_keys = KeySet::default();
        while batch.records.len() < cut.batch_size {
            if taken_keys.len() >= max_keys && remaining_taken == 0 {
                break;
            }
            let (Some(record), Some((ordinal, key))) =
                (self.records.pop_front(), self.tags.pop_front())
            else {
                break;
            };
            let over_limit = !taken_keys.contains(&key) && taken_keys.len() >= max_keys;
            if held.contains(&key) || passed_keys.contains(&key) || over_limit {
                passed_keys.insert(key);
                passed_over.push((ordinal, key, record));
                continue;
            }
            if !cut.append(batch, batch.records.len(), &record) {
                self.push_front(ordinal, key, record);
                break;
            }
            if taken_keys.insert(key) {
                remaining_taken += self.key_counts.get(&key).copied().unwrap_or(0);
            }
            self.min_bytes -= min_encoded_bytes(&record);
            remaining_taken = remaining_taken.saturating_sub(1);
            if let Some(count) = self.key_counts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.key_counts.remove(&key);
                }
            }
            batch.records.push(record);
            batch.ordinals.push(ordinal);
            batch.keys.push(key);
        }
        for (ordinal, key, record) in passed_over.into_iter().rev() {
            self.push_front(ordinal, key, record);
        }
    }

    /// Puts back a record taken off the front (already counted: only its place returns).
    fn push_front(&mut self, ordinal: u64, key: u64, record: StreamRecord) {
        self.records.push_front(record);
        self.tags.push_front((ordinal, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn ctx() -> EventContext {
        EventContext::sample()
    }

    impl ReadBuffer {
        /// A batch of at most `n` records cut as with ParallelizationFactor 1: the cap of
        /// a Lambda payload, nothing held, no key limit, fresh buffers.
        fn take_plain(&mut self, n: usize) -> Batch {
            self.take_batch(
                n,
                PAYLOAD_CAP_BYTES,
                &ctx(),
                Batch::default(),
                &KeySet::default(),
                usize::MAX,
            )
        }
    }

    fn buffer_of(n: usize, data_bytes: usize) -> ReadBuffer {
        let mut buffer = ReadBuffer::default();
        for i in 0..n {
            buffer.push(
                i as u64,
                StreamRecord {
                    sequence_number: SequenceNumber(format!("{}", 1000 + i)),
                    approximate_arrival_ms: 1_700_000_000_000 + i as i64,
                    body: RecordBody::Kinesis {
                        partition_key: format!("k{i}"),
                        data: vec![b'x'; data_bytes],
                    },
                },
            );
        }
        buffer
    }

    fn records_of(event: &[u8]) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(event).expect("the event is JSON");
        v["Records"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn a_batch_stops_at_batch_size_and_its_event_holds_exactly_its_records() {
        let mut buffer = buffer_of(50, 10);
        assert!(buffer.holds_full_batch(20));
        let batch = buffer.take_plain(20);
        assert_eq!(batch.len(), 20);
        assert_eq!(buffer.len(), 30);
        let mut scratch = Vec::new();
        let records = records_of(batch.event(0..20, &mut scratch));
        assert_eq!(records.len(), 20);
        assert_eq!(records[0]["kinesis"]["sequenceNumber"], "1000");
        assert_eq!(records[19]["kinesis"]["sequenceNumber"], "1019");
        assert!(!buffer_of(5, 10).holds_full_batch(20));
    }

    #[test]
    fn a_reused_batch_holds_only_the_new_records_and_keeps_its_buffers() {
        let first = buffer_of(30, 40).take_plain(30);
        let (records_capacity, event_capacity) = (first.records.capacity(), first.event.capacity());
        let mut buffer = buffer_of(3, 5);
        let batch = buffer.take_batch(
            10,
            PAYLOAD_CAP_BYTES,
            &ctx(),
            first.emptied(),
            &KeySet::default(),
            usize::MAX,
        );
        assert_eq!((batch.len(), batch.ordinals.clone()), (3, vec![0, 1, 2]));
        assert_eq!(batch.records.capacity(), records_capacity);
        assert_eq!(batch.event.capacity(), event_capacity);
        let mut scratch = Vec::new();
        let whole = records_of(batch.event(0..3, &mut scratch));
        assert_eq!(whole.len(), 3);
        let part = records_of(batch.event(1..3, &mut scratch));
        let seqs: Vec<_> = part
            .iter()
            .map(|r| r["kinesis"]["sequenceNumber"].clone())
            .collect();
        assert_eq!(seqs, vec!["1001", "1002"]);
    }

    #[test]
    fn an_emptied_read_buffer_gives_its_room_back_and_a_full_one_keeps_its_records() {
        let mut buffer = buffer_of(40, 5);
        buffer.release_if_empty();
        assert_eq!(buffer.len(), 40);
        let batch = buffer.take_plain(40);
        assert_eq!(batch.len(), 40);
        assert!(buffer.records.capacity() >= 40);
        buffer.release_if_empty();
        assert_eq!(buffer.records.capacity(), 0);
    }

    #[test]
    fn a_batch_of_like_records_is_encoded_without_growing_its_event() {
        let mut buffer = buffer_of(50, 300);
        let batch = buffer.take_plain(50);
        // The room reserved after the first record held all fifty (keys "k0" to "k49"
        // differ in length): no doubling happened, so the capacity is at most an eighth
        // over the event's length, not up to twice it.
        assert!(
            batch.event.capacity() <= batch.event.len() * 9 / 8,
            "{} {}",
            batch.event.capacity(),
            batch.event.len()
        );
    }

    #[test]
    fn part_of_a_batch_gets_an_event_of_just_those_records() {
        let batch = buffer_of(5, 10).take_plain(5);
        let mut scratch = Vec::new();
        let records = records_of(batch.event(2..4, &mut scratch));
        let seqs: Vec<_> = records
            .iter()
            .map(|r| r["kinesis"]["sequenceNumber"].clone())
            .collect();
        assert_eq!(seqs, vec!["1002", "1003"]);
        let whole = batch.event(0..5, &mut scratch).to_vec();
        assert_eq!(records_of(&whole).len(), 5);
    }

    #[test]
    fn a_batch_stops_before_its_event_would_pass_the_cap_and_the_rest_stays_buffered() {
        let one = buffer_of(1, 1000).take_plain(1).event.len();
        let cap = one * 2; // room for two records in one envelope, not three
        let mut buffer = buffer_of(10, 1000);
        let batch = buffer.take_batch(
            10,
            cap,
            &ctx(),
            Batch::default(),
            &KeySet::default(),
            usize::MAX,
        );
        assert_eq!(batch.len(), 2);
        assert!(batch.event(0..2, &mut Vec::new()).len() <= cap);
        assert_eq!(buffer.len(), 8);
        assert_eq!(
            buffer.records.front().map(|r| r.sequence_number.0.as_str()),
            Some("1002")
        );
    }

    #[test]
    fn the_size_lower_bound_never_overstates_and_a_large_buffer_is_a_full_batch() {
        let mut buffer = buffer_of(8, 1_000_000);
        assert!(
            buffer.holds_full_batch(100),
            "8 MB of base64 cannot wait for more records"
        );
        let min = buffer.min_bytes;
        let batch = buffer.take_batch(
            100,
            usize::MAX,
            &ctx(),
            Batch::default(),
            &KeySet::default(),
            usize::MAX,
        );
        assert!(batch.event(0..8, &mut Vec::new()).len() >= min);
        assert_eq!(buffer.min_bytes, 0);
    }

    fn keyed(keys: &[&str]) -> ReadBuffer {
        let mut buffer = ReadBuffer::keyed();
        for (i, key) in keys.iter().enumerate() {
            buffer.push(
                i as u64,
                StreamRecord {
                    sequence_number: SequenceNumber(format!("{}", 1000 + i)),
                    approximate_arrival_ms: 0,
                    body: RecordBody::Kinesis {
                        partition_key: key.to_string(),
                        data: vec![b'x'],
                    },
                },
            );
        }
        buffer
    }

    fn keys_of(batch: &Batch) -> Vec<String> {
        batch
            .records
            .iter()
            .map(StreamRecord::ordering_key)
            .collect()
    }

    #[test]
    fn held_keys_and_every_later_record_of_them_are_passed_over_and_stay_in_order() {
        let mut buffer = keyed(&["a", "b", "a", "c", "b", "d"]);
        let held = KeySet::from_iter([keyed(&["a"]).records[0].ordering_hash()]);
        let batch = buffer.take_batch(
            10,
            PAYLOAD_CAP_BYTES,
            &ctx(),
            Batch::default(),
            &held,
            usize::MAX,
        );
        assert_eq!(keys_of(&batch), vec!["b", "c", "b", "d"]);
        assert_eq!(batch.ordinals, vec![1, 3, 4, 5]);
        let rest: Vec<u64> = buffer.tags.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            rest,
            vec![0, 2],
            "both records of the held key wait, in order"
        );
        let later = buffer.take_plain(10);
        assert_eq!(keys_of(&later), vec!["a", "a"]);
        assert_eq!(buffer.min_bytes, 0);
        assert!(buffer.key_counts.is_empty(), "no key is counted once taken");
        assert_eq!(buffer.free(&held), (0, 0));
    }

    #[test]
    fn a_batch_size_limit_leaves_the_passed_over_records_before_the_rest() {
        let mut buffer = keyed(&["a", "b", "c", "a", "d"]);
        let held = KeySet::from_iter([keyed(&["a"]).records[0].ordering_hash()]);
        let batch = buffer.take_batch(
            2,
            PAYLOAD_CAP_BYTES,
            &ctx(),
            Batch::default(),
            &held,
            usize::MAX,
        );
        assert_eq!(keys_of(&batch), vec!["b", "c"]);
        let rest: Vec<u64> = buffer.tags.iter().map(|(o, _)| *o).collect();
        assert_eq!(rest, vec![0, 3, 4]);
        assert_eq!(batch.keys.iter().copied().collect::<KeySet>().len(), 2);
    }

    #[test]
    fn a_key_limit_leaves_the_other_keys_for_other_lanes_in_order() {
        let mut buffer = keyed(&["a", "b", "c", "a", "b", "c"]);
        assert_eq!(buffer.free(&KeySet::default()), (6, 3));
        let batch = buffer.take_batch(
            10,
            PAYLOAD_CAP_BYTES,
            &ctx(),
            Batch::default(),
            &KeySet::default(),
            2,
        );
        assert_eq!(keys_of(&batch), vec!["a", "b", "a", "b"]);
        let rest = buffer.take_batch(
            10,
            PAYLOAD_CAP_BYTES,
            &ctx(),
            Batch::default(),
            &batch.keys.iter().copied().collect(),
            1,
        );
        assert_eq!(keys_of(&rest), vec!["c", "c"]);
    }

    #[test]
    fn a_single_record_larger_than_the_cap_still_makes_a_batch_of_one() {
        let mut buffer = buffer_of(2, 100);
        let batch = buffer.take_batch(
            10,
            10,
            &ctx(),
            Batch::default(),
            &KeySet::default(),
            usize::MAX,
        );
        assert_eq!(batch.len(), 1);
        assert_eq!(buffer.len(), 1);
    }
}
