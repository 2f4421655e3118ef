//! A few emptied batches kept on each thread for whichever shard cuts a batch next.
//!
//! A shard that has caught up gives its batch buffers back (`ShardTask::recycle`), so
//! 10,000 quiet shards do not each hold the buffers of their largest batch. But at 10,000
//! shards nearly every shard has caught up after each invocation, so nearly every batch
//! was cut into fresh buffers: an event buffer faulted in and five vectors allocated and
//! freed per invocation, in memory no other shard would touch again soon. Kept here, a
//! handful of batches stay warm for the next shard, whichever it is. Per thread, so taking
//! and giving take no lock (on `run`'s runtime each worker thread keeps its own); bounded in
//! count and size, so what is kept stays small next to the shards' own memory.

use std::cell::RefCell;

use super::batcher::Batch;

/// Batches kept per thread: one invocation at a time is the common case of a caught-up
/// shard, a few more cover lanes finishing together.
const KEPT: usize = 4;

/// Larger batches (an event of up to 6 MB) are not kept: four of them would hold 24 MB.
const LARGEST_KEPT_BYTES: usize = 256 * 1024;

thread_local! {
    static SPARES: RefCell<Vec<Batch>> = const { RefCell::new(Vec::new()) };
}

/// A kept batch, emptied, if this thread has one.
pub fn take() -> Option<Batch> {
    SPARES.with_borrow_mut(Vec::pop)
}

/// Keeps `batch`'s buffers for the next batch cut on this thread, unless enough are kept
/// or it is too large; then it is freed.
pub fn give(batch: Batch) {
    if batch.buffer_bytes() > LARGEST_KEPT_BYTES {
        return;
    }
    SPARES.with_borrow_mut(|spares| {
        if spares.len() < KEPT {
            spares.push(batch.emptied());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_with_event_room(bytes: usize) -> Batch {
        let mut batch = Batch::default();
        batch.reserve_event(bytes);
        batch
    }

    #[test]
    fn a_given_batch_is_taken_back_emptied_with_its_room() {
        std::thread::spawn(|| {
            assert!(take().is_none());
            give(batch_with_event_room(4096));
            let taken = take().expect("the batch given is kept");
            assert!(taken.is_empty());
            assert!(taken.buffer_bytes() >= 4096);
            assert!(take().is_none());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn at_most_kept_batches_and_none_too_large() {
        std::thread::spawn(|| {
            give(batch_with_event_room(LARGEST_KEPT_BYTES + 1));
            assert!(take().is_none(), "a batch over the size bound is freed");
            for _ in 0..KEPT + 2 {
                give(batch_with_event_room(1024));
            }
            let mut kept = 0;
            while take().is_some() {
                kept += 1;
            }
            assert_eq!(kept, KEPT);
        })
        .join()
        .unwrap();
    }
}
