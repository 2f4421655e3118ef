//! Where a shard's checkpoint may stand: after the last record of the longest run of done
//! records from the front. With ParallelizationFactor > 1 lanes finish out of order; the
//! checkpoint follows the lowest record not yet done, so a restart never skips anything
//! (records after it that were already done may be delivered again: at-least-once).
//!
//! Every record read is admitted in order and gets an ordinal; lanes complete ordinals
//! (filtered records are admitted done). Pure and O(1) per record. A record's sequence
//! number is copied only when it is done but cannot be passed yet (a record before it is
//! still open): in order (ParallelizationFactor 1) that never happens, so the only copy
//! is the new checkpoint's.

use std::collections::VecDeque;

use crate::model::SequenceNumber;

#[derive(Debug, Default)]
pub struct Progress {
    /// Ordinal of `entries[0]`.
    base: u64,
    /// Done or not; the sequence number where it may be needed later (a done record that
    /// could not be passed when it was completed, or a filtered one).
    entries: VecDeque<(Option<SequenceNumber>, bool)>,
    /// Entries not done.
    open: usize,
}

impl Progress {
    /// The ordinal the next record admitted gets.
    pub fn next_ordinal(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Admits the next record read: done (filtered out) with its sequence number, or open.
    pub fn admit(&mut self, done: Option<SequenceNumber>) -> u64 {
        let ordinal = self.next_ordinal();
        let is_done = done.is_some();
        self.entries.push_back((done, is_done));
        if !is_done {
            self.open += 1;
        }
        ordinal
    }

    /// Admits the next `n` records read, all open (a page nothing was filtered from);
    /// returns the first one's ordinal, the others follow.
    pub fn admit_open(&mut self, n: usize) -> u64 {
        let first = self.next_ordinal();
        self.entries.extend(std::iter::repeat_n((None, false), n));
        self.open += n;
        first
    }

    /// Marks records done (ordinal and sequence number each; again is harmless, an
    /// ordinal already passed is ignored), then passes every done record at the front.
    /// Returns the new checkpoint: the last record passed (`None`: it did not move).
    /// `done` is walked more than once rather than collected (a batch's worth of pairs
    /// allocated per invocation).
    pub fn complete<'a, I>(&mut self, done: I) -> Option<SequenceNumber>
    where
        I: IntoIterator<Item = (u64, &'a SequenceNumber)>,
        I::IntoIter: Clone,
    {
        let mut done = done.into_iter();
        // The highest ordinal completed now, with its number: in order, where the
        // checkpoint moves to.
        let mut highest: Option<(u64, &SequenceNumber)> = None;
        for (ordinal, seq) in done.clone() {
            if highest.is_none_or(|(h, _)| ordinal > h) {
                highest = Some((ordinal, seq));
            }
            let Some(index) = ordinal.checked_sub(self.base) else {
                continue;
            };
            if let Some(entry) = self.entries.get_mut(index as usize) {
                if !entry.1 {
                    entry.1 = true;
                    self.open -= 1;
                }
            }
        }
        let mut last: Option<(u64, Option<SequenceNumber>)> = None;
        while self.entries.front().is_some_and(|(_, done)| *done) {
            if let Some((seq, _)) = self.entries.pop_front() {
                last = Some((self.base, seq));
                self.base += 1;
            }
        }
        // Records completed now that must wait for an earlier one keep their number (in
        // order, every one was passed).
        if highest.is_some_and(|(h, _)| h >= self.base) {
            for (ordinal, seq) in done.clone() {
                if let Some(index) = ordinal.checked_sub(self.base) {
                    if let Some(entry) = self.entries.get_mut(index as usize) {
                        if entry.0.is_none() {
                            entry.0 = Some(seq.clone());
                        }
                    }
                }
            }
        }
        let (ordinal, seq) = last?;
        seq.or_else(|| match highest {
            Some((h, seq)) if h == ordinal => Some(seq.clone()),
            _ => done
                .find(|(o, _)| *o == ordinal)
                .map(|(_, seq)| seq.clone()),
        })
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

    fn admit_open(p: &mut Progress, n: u64) -> Vec<u64> {
        (0..n).map(|_| p.admit(None)).collect()
    }

    #[test]
    fn the_checkpoint_waits_for_the_lowest_record_not_done() {
        let mut p = Progress::default();
        let o = admit_open(&mut p, 4);
        let (s2, s3, s1, s4) = (seq(2), seq(3), seq(1), seq(4));
        assert_eq!(
            p.complete([(o[1], &s2), (o[2], &s3)]),
            None,
            "record 1 is not done"
        );
        assert_eq!(p.waiting(), 2);
        assert_eq!(p.complete([(o[0], &s1)]), Some(seq(3)), "3 kept its number");
        assert_eq!(p.complete([]), None);
        assert_eq!(p.complete([(o[3], &s4), (o[3], &s4)]), Some(seq(4)));
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn filtered_records_are_admitted_done_and_passed_at_once() {
        let mut p = Progress::default();
        p.admit(Some(seq(1)));
        p.admit(Some(seq(2)));
        assert_eq!(p.complete([]), Some(seq(2)));
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn a_page_admitted_at_once_waits_as_its_records_would_one_by_one() {
        let mut p = Progress::default();
        p.admit(Some(seq(1)));
        assert_eq!(
            p.admit_open(3),
            1,
            "the page's first ordinal follows the filtered record"
        );
        assert_eq!(p.waiting(), 3);
        let (s2, s3, s4) = (seq(2), seq(3), seq(4));
        assert_eq!(
            p.complete([(2, &s3)]),
            Some(seq(1)),
            "the filtered record passes; s3 waits for s2"
        );
        assert_eq!(p.complete([(1, &s2), (3, &s4)]), Some(seq(4)));
        assert_eq!(p.waiting(), 0);
        assert_eq!(p.next_ordinal(), 4);
    }

    #[test]
    fn after_a_clear_old_ordinals_are_ignored() {
        let mut p = Progress::default();
        let old = p.admit(None);
        p.clear();
        let new = p.admit(None);
        assert_ne!(old, new);
        let one = seq(1);
        assert_eq!(p.complete([(old, &one)]), None);
        assert_eq!(p.waiting(), 1);
        assert_eq!(p.complete([(new, &one)]), Some(seq(1)));
    }

    proptest! {
        /// Whatever order and grouping records finish in, the checkpoint only moves
        /// forward, never passes a record that is not done, names the record it passed
        /// last, and ends at the last record.
        #[test]
        fn never_passes_an_open_record(
            order in Just((0u64..40).collect::<Vec<_>>()).prop_shuffle(),
            group in 1usize..5,
            admitted_at_once in 0u64..=40,
        ) {
            let mut p = Progress::default();
            let seqs: Vec<SequenceNumber> = (0..40).map(seq).collect();
            // A page's worth admitted in one go, the rest one by one: the same ordinals.
            prop_assert_eq!(p.admit_open(admitted_at_once as usize), 0);
            prop_assert_eq!(admit_open(&mut p, 40 - admitted_at_once), (admitted_at_once..40).collect::<Vec<_>>());
            let mut done = [false; 40];
            let mut checkpoint: Option<u64> = None;
            for chunk in order.chunks(group) {
                for &o in chunk {
                    done[o as usize] = true;
                }
                if let Some(moved) = p.complete(chunk.iter().map(|&o| (o, &seqs[o as usize]))) {
                    let at: u64 = moved.0.parse().unwrap();
                    prop_assert!(checkpoint.is_none_or(|c| at > c));
                    prop_assert!(done[..=at as usize].iter().all(|d| *d));
                    prop_assert!(at == 39 || !done[at as usize + 1], "stopped at the first open record");
                    checkpoint = Some(at);
                }
            }
            prop_assert_eq!(checkpoint, Some(39));
        }
    }
}
