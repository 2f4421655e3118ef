//! `RecordLog`: a shard's stored records (or their previous changes), appended at the
//! back, trimmed at the front, read by index.
//!
//! A `VecDeque` did this, but it grows by doubling: a shard of 125,000 DynamoDB records
//! reallocated and copied its 4 MB deques a dozen times, onto fresh pages the kernel had
//! to clear, and held up to twice the room it used (a 1M-change simulation peaked at 74 MB,
//! 66 MB with chunks).
//! Here the log is a deque of chunks of `CHUNK` values: only the newest chunk grows (so a
//! shard holding a few records still costs a few bytes, which 10,000 idle shards need),
//! a full chunk never moves again, and trimming frees whole chunks. Every chunk but the
//! newest is exactly `CHUNK` long and the first starts at value 0 of the log's current
//! front chunk, so a value is found by one division. The newest chunk (`tail`) is held
//! next to the deque, not in it: appending then touches the log itself and the tail's end,
//! not the deque's buffer too (at 10,000 shards every append is to a shard not touched for
//! a while, and that third cold line was a tenth of generating the stream).

use std::collections::VecDeque;
use std::ops::Range;

/// Values per chunk (64 KiB of 16-byte records).
const CHUNK: usize = 4096;

/// Values in order, appended at the back and removed at the front.
#[derive(Debug)]
pub(crate) struct RecordLog<T> {
    /// The chunks before the newest, each exactly `CHUNK` long.
    full: VecDeque<Vec<T>>,
    /// The newest chunk: at most `CHUNK` long, empty (and holding nothing) when the log is.
    tail: Vec<T>,
    /// Values already removed from the front chunk (the first full one, else the tail).
    head: usize,
}

impl<T> Default for RecordLog<T> {
    fn default() -> Self {
        RecordLog {
            full: VecDeque::new(),
            tail: Vec::new(),
            head: 0,
        }
    }
}

impl<T: Copy> RecordLog<T> {
    pub fn len(&self) -> usize {
        self.full.len() * CHUNK + self.tail.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push_back(&mut self, value: T) {
        if self.tail.len() == CHUNK {
            // The first chunk grows like a Vec (a quiet shard keeps a small one); once a
            // shard has filled a chunk, the next ones are allocated whole.
            let filled = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
            self.full.push_back(filled);
        }
        self.tail.push(value);
    }

    /// The chunk the front value is in.
    fn front_chunk(&self) -> &Vec<T> {
        self.full.front().unwrap_or(&self.tail)
    }

    pub fn front(&self) -> Option<&T> {
        self.front_chunk().get(self.head)
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let value = *self.front()?;
        self.head += 1;
        if self.full.is_empty() {
            if self.head == self.tail.len() {
                // Emptied: the log starts again from small.
                self.tail = Vec::new();
                self.head = 0;
            }
        } else if self.head == CHUNK {
            self.full.pop_front();
            self.head = 0;
        }
        Some(value)
    }

    /// Chunk `i` in order (the full ones, then the tail).
    fn chunk(&self, i: usize) -> Option<&Vec<T>> {
        match i.cmp(&self.full.len()) {
            std::cmp::Ordering::Less => self.full.get(i),
            std::cmp::Ordering::Equal => Some(&self.tail),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The value `index` places from the front.
    pub fn get(&self, index: usize) -> Option<&T> {
        let at = self.head.checked_add(index)?;
        self.chunk(at / CHUNK)?.get(at % CHUNK)
    }

    /// The values in `range` (indices from the front, clamped to the log), in order.
    pub fn range(&self, range: Range<usize>) -> impl Iterator<Item = T> + '_ {
        let end = range.end.min(self.len());
        let (from, to) = (self.head + range.start.min(end), self.head + end);
        let first = from / CHUNK;
        self.full
            .iter()
            .chain(std::iter::once(&self.tail))
            .enumerate()
            .skip(first)
            .take_while(move |(i, _)| i * CHUNK < to)
            .flat_map(move |(i, chunk)| {
                let start = from.saturating_sub(i * CHUNK).min(chunk.len());
                let stop = (to - i * CHUNK).min(chunk.len());
                chunk.get(start..stop).unwrap_or_default().iter().copied()
            })
    }

    /// The number of values before the first one for which `pred` is false (the values
    /// must be partitioned by `pred`, as `slice::partition_point` requires).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid) {
                Some(value) if pred(value) => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => Just(Op::Push), 1 => Just(Op::Pop)]
    }

    proptest! {
        /// Pushed and popped in any order (runs of pushes crossing chunk boundaries), the
        /// log answers every question as a `VecDeque` fed the same way does.
        #[test]
        fn the_log_answers_as_a_vecdeque_does(
            ops in prop::collection::vec((op(), 1usize..3000), 0..40),
            start in 0usize..20_000,
            span in 0usize..20_000,
        ) {
            let mut log = RecordLog::default();
            let mut deque = VecDeque::new();
            let mut next = 0u32;
            for (op, times) in ops {
                for _ in 0..times {
                    match op {
                        Op::Push => {
                            log.push_back(next);
                            deque.push_back(next);
                            next += 1;
                        }
                        Op::Pop => prop_assert_eq!(log.pop_front(), deque.pop_front()),
                    }
                }
                prop_assert_eq!(log.len(), deque.len());
                prop_assert_eq!(log.is_empty(), deque.is_empty());
                prop_assert_eq!(log.front(), deque.front());
            }
            for index in [0, start, deque.len().saturating_sub(1), deque.len()] {
                prop_assert_eq!(log.get(index), deque.get(index));
            }
            let end = (start + span).min(deque.len());
            let expected: Vec<u32> = deque.range(start.min(end)..end).copied().collect();
            prop_assert_eq!(log.range(start..start + span).collect::<Vec<_>>(), expected);
            // The values increase, so "below a cut" partitions them.
            let cut = deque.get(start.min(deque.len().saturating_sub(1))).copied().unwrap_or(0);
            prop_assert_eq!(
                log.partition_point(|v| *v < cut),
                deque.partition_point(|v| *v < cut)
            );
        }
    }

    #[test]
    fn full_chunks_are_allocated_whole_and_freed_when_trimmed_away() {
        let mut log = RecordLog::default();
        for i in 0..(2 * CHUNK + 10) {
            log.push_back(i);
        }
        assert_eq!((log.full.len(), log.tail.len()), (2, 10));
        assert_eq!(log.full[1].capacity(), CHUNK, "a later chunk never grows");
        assert_eq!(log.tail.capacity(), CHUNK, "and is allocated whole");
        for i in 0..CHUNK {
            assert_eq!(log.pop_front(), Some(i));
        }
        assert_eq!(log.full.len(), 1, "the trimmed chunk is gone");
        assert_eq!(
            (log.front(), log.get(CHUNK + 9)),
            (Some(&CHUNK), Some(&(2 * CHUNK + 9)))
        );
        while log.pop_front().is_some() {}
        assert!(log.full.is_empty() && log.tail.capacity() == 0 && log.is_empty());
        log.push_back(7);
        assert_eq!(
            (log.len(), log.tail.capacity() < CHUNK),
            (1, true),
            "a log emptied and started again grows from small"
        );
    }
}
