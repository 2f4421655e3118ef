//! Cutting batches for idle lanes: when a batch is cut, and what it may hold.
//!
//! Each rule is one function a test calls directly:
//! - the batching window (spec 1, MaximumBatchingWindowInSeconds): buffered records wait
//!   for a full batch until the window ends, and for streams the next window starts when
//!   the previous invocation completes (`BatchingWindow`);
//! - ParallelizationFactor > 1: a batch is cut from the buffered records whose ordering
//!   keys no busy lane holds (and no earlier passed-over record has), so each key's
//!   records are invoked in order, and it takes a fair share of the free keys, so the keys
//!   spread over the lanes (`fair_share`);
//! - tumbling windows (spec 2.6): one lane at a time invokes the open window's records,
//!   with room left in the payload for the window's fields, then its final invoke
//!   (`window_move`; the window itself is `policy::window::WindowTracker`).
//!
//! `ShardTask::cut_batches` applies them to the shard's buffer and idle lanes.

use super::ShardTask;
use crate::engine::batcher::{Batch, KeySet, PAYLOAD_CAP_BYTES};
use crate::engine::lane::{lock, Lane};
use crate::engine::spare_batches;
use crate::event::window::window_fields_len;
use crate::policy::window::Step;

/// Spec 1: how long buffered records may wait for a full batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchingWindow {
    start_ms: i64,
    /// MaximumBatchingWindowInSeconds, in ms.
    length_ms: i64,
}

impl BatchingWindow {
    pub(super) fn starting_at(now_ms: i64, length_ms: i64) -> Self {
        BatchingWindow {
            start_ms: now_ms,
            length_ms,
        }
    }

    /// An invocation completed: for streams the next window starts now.
    pub(super) fn invocation_completed(&mut self, now_ms: i64) {
        self.start_ms = now_ms;
    }

    pub(super) fn end_ms(&self) -> i64 {
        self.start_ms + self.length_ms
    }

    /// Whether the buffered records make a batch now: they fill one (`full`), or the
    /// window is over and the stream has no more waiting (`more_waiting`: the last page
    /// was full, so the next read comes first).
    pub(super) fn ready(&self, full: bool, more_waiting: bool, now_ms: i64) -> bool {
        full || (now_ms >= self.end_ms() && !more_waiting)
    }

    /// When the clock makes a batch of `waiting` records (some buffered, of free keys,
    /// and a lane idle to take them): at the end of the window, unless the stream has
    /// more waiting (the read that brings them wakes the shard).
    pub(super) fn due_ms(&self, waiting: bool, more_waiting: bool) -> Option<i64> {
        (waiting && !more_waiting).then(|| self.end_ms())
    }
}

/// ParallelizationFactor > 1: how many of the `free_keys` the next batch may take, with
/// `idle_lanes` (the one it is for among them) to share them; at least one.
pub(super) fn fair_share(free_keys: usize, idle_lanes: usize) -> usize {
    free_keys.div_ceil(idle_lanes.max(1)).max(1)
}

/// What an idle lane does at a step of the open tumbling window.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WindowMove {
    /// Invoke a batch of at most this many records.
    Cut { max_records: usize },
    /// The window's final invoke.
    FinalInvoke,
    /// Nothing now; the clock matters at `until_ms` (the window's close), if set.
    Wait { until_ms: Option<i64> },
}

/// Spec 2.6: the window's records are cut at most BatchSize at a time, when the batching
/// window says a batch is `ready` or no further record can join them (`cut_now`); then the
/// window's final invoke.
pub(super) fn window_move(step: Step, batch_size: usize, ready: bool) -> WindowMove {
    match step {
        Step::Invoke { records, cut_now } if ready || cut_now => WindowMove::Cut {
            max_records: batch_size.min(records.max(1)),
        },
        Step::Invoke { .. } => WindowMove::Wait { until_ms: None },
        Step::Final => WindowMove::FinalInvoke,
        Step::Wait { until_ms } => WindowMove::Wait { until_ms },
    }
}

/// What cutting leaves for the wait.
#[derive(Default)]
pub(super) struct Cut {
    /// Every buffered record's key is held by a busy lane: nothing to cut until a lane
    /// finishes or more records are read.
    pub(super) all_held: bool,
    /// With a tumbling window: when the open window next needs an invoke by the clock.
    pub(super) window_wake: Option<i64>,
}

impl ShardTask {
    /// Cuts what the rules allow now for idle lanes, and sets them to work. `held`: the
    /// keys busy lanes hold, grown by the batches cut.
    pub(super) fn cut_batches(&mut self, held: &mut KeySet) -> Cut {
        if self.window.is_some() {
            Cut {
                all_held: false,
                window_wake: self.cut_in_window(held),
            }
        } else {
            Cut {
                all_held: self.cut_fair_shares(held),
                window_wake: None,
            }
        }
    }

    /// When the batching window next makes a batch by the clock.
    pub(super) fn batching_due_ms(&self) -> Option<i64> {
        let waiting = !self.lanes.idle.is_empty() && !self.buffer.is_empty();
        self.batching.due_ms(waiting, self.reader.more_waiting)
    }

    /// The next batch from the buffer (at most `max_records` records, `cap_bytes` of
    /// event and `max_keys` keys, none of `held`), cut into a spare batch's buffers.
    fn take_batch(
        &mut self,
        max_records: usize,
        cap_bytes: usize,
        held: &KeySet,
        max_keys: usize,
    ) -> Batch {
        let spare = self
            .spares
            .pop()
            .or_else(spare_batches::take)
            .unwrap_or_default();
        let ctx = &self.event_ctx;
        self.buffer
            .take_batch(max_records, cap_bytes, ctx, spare, held, max_keys)
    }

    /// Keeps a finished batch's buffers for the next batch while records wait. A shard
    /// with nothing buffered and nothing more waiting to be read gives them back to the
    /// thread's few spares (`spare_batches`), and the read buffer's room too: 10,000 quiet
    /// shards would otherwise each hold the buffers of their largest batch (12 KB a shard,
    /// most of a 10,000-shard simulation's memory).
    pub(super) fn recycle(&mut self, batch: Batch) {
        if self.buffer.is_empty() && !self.reader.more_waiting {
            self.spares
                .drain(..)
                .chain([batch])
                .for_each(spare_batches::give);
            self.buffer.release_if_empty();
        } else {
            self.spares.push(batch.emptied());
        }
    }

    /// Sets `lane` to work on `batch`: the shard is no longer caught up.
    fn dispatch(&mut self, lane: Lane, batch: Batch) {
        self.status.update().caught_up = false;
        self.lanes.dispatch(lane, batch);
    }

    /// Without a tumbling window: a batch for each idle lane while the batching window
    /// allows one; true when every buffered record's key is held.
    fn cut_fair_shares(&mut self, held: &mut KeySet) -> bool {
        let batch_size = self.ctx.mapping.batch_size;
        while !self.buffer.is_empty() {
            let full = self.buffer.holds_full_batch(batch_size);
            let now = self.ctx.clock.now_ms();
            if !(self.reader.has_ended()
                || self.batching.ready(full, self.reader.more_waiting, now))
            {
                break;
            }
            let Some(lane) = self.lanes.idle.pop() else {
                break;
            };
            let max_keys = if self.factor > 1 {
                fair_share(self.buffer.free(held).1, self.lanes.idle.len() + 1)
            } else {
                usize::MAX
            };
            let batch = self.take_batch(batch_size, PAYLOAD_CAP_BYTES, held, max_keys);
            if batch.is_empty() {
                self.recycle(batch);
                self.lanes.idle.push(lane);
                return true;
            }
            self.held_keys.hold(&batch.keys);
            held.extend(batch.keys.iter().copied());
            self.dispatch(lane, batch);
        }
        false
    }

    /// With a tumbling window: the open window's next move, for one idle lane (one batch
    /// of the window at a time); when the window next needs an invoke by the clock.
    fn cut_in_window(&mut self, held: &KeySet) -> Option<i64> {
        let tracker = self.window.as_ref()?;
        let lane = self.lanes.idle.pop()?;
        let now = self.ctx.clock.now_ms();
        let step = lock(tracker).next_step(self.buffer.arrivals(), self.reader.has_ended(), now);
        let batch_size = self.ctx.mapping.batch_size;
        let full = self.buffer.holds_full_batch(batch_size);
        let ready = self.batching.ready(full, self.reader.more_waiting, now);
        match window_move(step, batch_size, ready) {
            WindowMove::Cut { max_records } => {
                self.checkpointer.hold();
                let cap = {
                    let tracker = lock(tracker);
                    let fields = tracker.fields(&self.event_ctx, false);
                    PAYLOAD_CAP_BYTES - fields.map_or(0, |f| window_fields_len(&f))
                };
                let batch = self.take_batch(max_records, cap, held, usize::MAX);
                self.dispatch(lane, batch);
                None
            }
            WindowMove::FinalInvoke => {
                self.checkpointer.hold();
                self.lanes.dispatch_final_invoke(lane);
                None
            }
            WindowMove::Wait { until_ms } => {
                self.lanes.idle.push(lane);
                until_ms
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_batch_waits_until_the_batching_window_ends() {
        let window = BatchingWindow::starting_at(1_000, 500);
        assert!(!window.ready(false, false, 1_499));
        assert!(window.ready(false, false, 1_500));
    }

    #[test]
    fn a_full_batch_is_cut_before_the_batching_window_ends() {
        let window = BatchingWindow::starting_at(1_000, 500);
        assert!(window.ready(true, false, 1_000));
        assert!(window.ready(true, true, 1_000));
    }

    #[test]
    fn a_partial_batch_waits_past_the_window_while_the_stream_has_a_full_page_waiting() {
        let window = BatchingWindow::starting_at(1_000, 500);
        assert!(!window.ready(false, true, 9_999));
        assert_eq!(window.due_ms(true, true), None);
    }

    #[test]
    fn with_no_batching_window_a_partial_batch_is_cut_at_once() {
        let window = BatchingWindow::starting_at(1_000, 0);
        assert!(window.ready(false, false, 1_000));
    }

    #[test]
    fn the_next_batching_window_starts_when_the_previous_invocation_completes() {
        let mut window = BatchingWindow::starting_at(1_000, 500);
        window.invocation_completed(4_000);
        assert_eq!(window.end_ms(), 4_500);
        assert!(!window.ready(false, false, 4_499));
        assert!(window.ready(false, false, 4_500));
    }

    #[test]
    fn the_clock_wakes_the_shard_at_the_window_end_only_when_records_wait_for_it() {
        let window = BatchingWindow::starting_at(1_000, 500);
        assert_eq!(window.due_ms(true, false), Some(1_500));
        assert_eq!(window.due_ms(false, false), None);
    }

    #[test]
    fn each_idle_lane_takes_a_fair_share_of_the_free_keys_rounded_up() {
        assert_eq!(fair_share(10, 4), 3);
        assert_eq!(fair_share(8, 4), 2);
        assert_eq!(fair_share(3, 10), 1);
        assert_eq!(fair_share(10, 1), 10);
    }

    #[test]
    fn a_batch_may_always_take_at_least_one_key() {
        assert_eq!(fair_share(0, 3), 1);
    }

    #[test]
    fn a_tumbling_window_s_batch_holds_at_most_its_records_and_at_most_batch_size() {
        let step = |records| Step::Invoke {
            records,
            cut_now: true,
        };
        assert_eq!(
            window_move(step(3), 100, false),
            WindowMove::Cut { max_records: 3 }
        );
        assert_eq!(
            window_move(step(300), 100, false),
            WindowMove::Cut { max_records: 100 }
        );
        assert_eq!(
            window_move(step(0), 100, false),
            WindowMove::Cut { max_records: 1 }
        );
    }

    #[test]
    fn a_tumbling_window_s_batch_waits_for_the_batching_window_unless_its_records_end_here() {
        let running = Step::Invoke {
            records: 5,
            cut_now: false,
        };
        assert_eq!(
            window_move(running.clone(), 100, false),
            WindowMove::Wait { until_ms: None }
        );
        assert_eq!(
            window_move(running, 100, true),
            WindowMove::Cut { max_records: 5 }
        );
    }

    #[test]
    fn a_closing_tumbling_window_gets_its_final_invoke_and_an_idle_one_waits_for_its_close() {
        assert_eq!(
            window_move(Step::Final, 100, false),
            WindowMove::FinalInvoke
        );
        let until_ms = Some(7_000);
        assert_eq!(
            window_move(Step::Wait { until_ms }, 100, true),
            WindowMove::Wait { until_ms }
        );
    }
}
