//! Cutting batches (spec 2.1 step 1), as pure functions over encoded records.
//!
//! Each record is encoded once, when it is read, into its fragment of the event's
//! `Records` array; the size of an event is then exact arithmetic over fragment lengths,
//! and an invocation's payload is the fragments joined. A batch closes at BatchSize or
//! before the event would pass the 6 MB payload cap; it always holds at least one record
//! so that no record can block a shard.

use std::collections::VecDeque;

use crate::event::event_size;
use crate::model::StreamRecord;

/// Lambda's synchronous invocation payload limit: 6 MB (6,291,456 bytes).
pub const PAYLOAD_CAP_BYTES: usize = 6 * 1024 * 1024;

/// Records in sequence order, each with its encoded event fragment (same index).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub records: Vec<StreamRecord>,
    pub fragments: Vec<Vec<u8>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Records read but not yet batched.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    records: VecDeque<StreamRecord>,
    fragments: VecDeque<Vec<u8>>,
}

impl ReadBuffer {
    pub fn push(&mut self, record: StreamRecord, fragment: Vec<u8>) {
        self.records.push_back(record);
        self.fragments.push_back(fragment);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many records the next batch takes (see `batch_len`).
    pub fn next_batch_len(&self, batch_size: usize) -> usize {
        batch_len(
            self.fragments.iter().map(Vec::len),
            batch_size,
            PAYLOAD_CAP_BYTES,
        )
    }

    pub fn take(&mut self, n: usize) -> Batch {
        let n = n.min(self.len());
        Batch {
            records: self.records.drain(..n).collect(),
            fragments: self.fragments.drain(..n).collect(),
        }
    }

    /// The last record read, if any is buffered.
    pub fn last(&self) -> Option<&StreamRecord> {
        self.records.back()
    }
}

/// How many records from the front of `fragment_lens` make the next batch.
pub fn batch_len(
    fragment_lens: impl IntoIterator<Item = usize>,
    batch_size: usize,
    cap_bytes: usize,
) -> usize {
    let mut count = 0;
    let mut bytes = 0;
    for len in fragment_lens.into_iter().take(batch_size) {
        if count > 0 && event_size(bytes + len, count + 1) > cap_bytes {
            break;
        }
        count += 1;
        bytes += len;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stops_at_batch_size() {
        assert_eq!(batch_len([10; 50], 20, PAYLOAD_CAP_BYTES), 20);
        assert_eq!(batch_len([10; 5], 20, PAYLOAD_CAP_BYTES), 5);
        assert_eq!(batch_len([], 20, PAYLOAD_CAP_BYTES), 0);
    }

    #[test]
    fn a_batch_stops_before_the_event_would_pass_the_cap() {
        // Envelope 14 bytes + n fragments + (n - 1) commas.
        let cap = 14 + 3 * 100 + 2;
        assert_eq!(batch_len([100; 10], 10, cap), 3);
        assert_eq!(batch_len([100; 10], 10, cap - 1), 2);
        assert_eq!(event_size(300, 3), cap);
    }

    #[test]
    fn a_single_record_larger_than_the_cap_still_makes_a_batch_of_one() {
        assert_eq!(batch_len([10_000_000, 10], 10, PAYLOAD_CAP_BYTES), 1);
    }
}
