//! Where a shard's checkpoint may stand: after the last record of the longest run of done
//! records from the front. With ParallelizationFactor > 1 lanes finish out of order; the
//! checkpoint follows the lowest record not yet done, so a restart never skips anything
//! (records after it that were already done may be delivered again: at-least-once).
//!
//! Every record read is admitted in order and gets an ordinal; lanes mark ordinals done
//! (filtered records are admitted done). Pure and O(1) per record.

use std::collections::VecDeque;

use crate::model::SequenceNumber;

#[derive(Debug, Default)]
pub struct Progress {
    /// Ordinal of `entries[0]`.
    base: u64,
    entries: VecDeque<(SequenceNumber, bool)>,
    /// Entries not done.
    open: usize,
}

impl Progress {
    /// The ordinal the next record admitted gets.
    pub fn next_ordinal(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Admits the next record read; returns its ordinal.
    pub fn admit(&mut self, sequence_number: SequenceNumber, done: bool) -> u64 {
        let ordinal = self.next_ordinal();
        self.entries.push_back((sequence_number, done));
        if !done {
            self.open += 1;
        }
        ordinal
    }

    /// Marks a record done (again is harmless; an ordinal already passed is ignored).
    pub fn mark_done(&mut self, ordinal: u64) {
        let Some(index) = ordinal.checked_sub(self.base) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(index as usize) {
            if !entry.1 {
                entry.1 = true;
                self.open -= 1;
            }
        }
    }

    /// Drops the done records at the front; the last of them is the new checkpoint
    /// (`None`: the checkpoint did not move).
    pub fn advance(&mut self) -> Option<SequenceNumber> {
        let mut last = None;
        while self.entries.front().is_some_and(|(_, done)| *done) {
            last = self.entries.pop_front().map(|(seq, _)| seq);
            self.base += 1;
        }
        last
    }

    /// Records admitted and not done.
    pub fn waiting(&self) -> usize {
        self.open
    }

    /// Forgets every record (a rewind: they will be read again).
    pub fn clear(&mut self) {
        self.base += self.entries.len() as u64;
        self.entries.clear();
        self.open = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber(n.to_string())
    }

    #[test]
    fn the_checkpoint_waits_for_the_lowest_record_not_done() {
        let mut p = Progress::default();
        let ordinals: Vec<u64> = (1..=4).map(|n| p.admit(seq(n), false)).collect();
        p.mark_done(ordinals[1]);
        p.mark_done(ordinals[2]);
        assert_eq!(p.advance(), None, "record 1 is not done");
        assert_eq!(p.waiting(), 2);
        p.mark_done(ordinals[0]);
        assert_eq!(p.advance(), Some(seq(3)));
        assert_eq!(p.advance(), None);
        p.mark_done(ordinals[3]);
        p.mark_done(ordinals[3]);
        assert_eq!(p.advance(), Some(seq(4)));
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn filtered_records_are_admitted_done_and_passed_at_once() {
        let mut p = Progress::default();
        p.admit(seq(1), true);
        p.admit(seq(2), true);
        assert_eq!(p.advance(), Some(seq(2)));
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn after_a_clear_old_ordinals_are_ignored() {
        let mut p = Progress::default();
        let old = p.admit(seq(1), false);
        p.clear();
        let new = p.admit(seq(1), false);
        assert_ne!(old, new);
        p.mark_done(old);
        assert_eq!(p.advance(), None);
        assert_eq!(p.waiting(), 1);
        p.mark_done(new);
        assert_eq!(p.advance(), Some(seq(1)));
    }

    proptest! {
        /// Whatever order records finish in, the checkpoint only moves forward and never
        /// passes a record that is not done; once all are done it is the last record.
        #[test]
        fn never_passes_an_open_record(order in Just((0u64..40).collect::<Vec<_>>()).prop_shuffle()) {
            let mut p = Progress::default();
            for n in 0..40 {
                p.admit(seq(n), false);
            }
            let mut done = [false; 40];
            let mut checkpoint: Option<u64> = None;
            for ordinal in order {
                p.mark_done(ordinal);
                done[ordinal as usize] = true;
                if let Some(moved) = p.advance() {
                    let at: u64 = moved.0.parse().unwrap();
                    prop_assert!(checkpoint.is_none_or(|c| at > c));
                    prop_assert!(done[..=at as usize].iter().all(|d| *d));
                    checkpoint = Some(at);
                }
            }
            prop_assert_eq!(checkpoint, Some(39));
        }
    }
}
