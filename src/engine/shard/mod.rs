//! The shard task: read → filter → batch → lanes → checkpoint, until the shard ends or
//! shutdown.
//!
//! Shaped after KCL's shard consumer: explicit states published in `ShardStatus`
//! (polling, invoking, retrying, backing off, paused, ended), and an end reason returned
//! to the supervisor (shard end with children, or shutdown). One task per shard runs the
//! reader and up to ParallelizationFactor lanes as concurrent futures, so a read never
//! waits for an invocation nor an invocation for a read. With factor 1 this is the plain
//! in-order loop, with the next batch read while the current one is invoked; the
//! checkpoint follows the lowest record not yet done (`Checkpointer`).
//!
//! `ShardTask` holds what the steps share; its loop (`ShardTask::run`) is the sequence of
//! steps, each in the file that owns its rules:
//! - stop: on shutdown, wait for the lanes and return (here);
//! - cut batches for idle lanes (`cutting`: the batching window, the fair share of free
//!   keys, tumbling windows);
//! - end: SHARD_END once every record is done (here);
//! - read: start a GetRecords at the AWS pace and take in its answer (`reader`: pace,
//!   backoff, iterator re-opening; `admission`: the page's records admitted to the
//!   checkpoint's progress, filtered, buffered);
//! - await work: a lane finishing, a read's answer, an operator request (`controls`:
//!   pause, skip, rewind), released keys, or the clock (here).
//!
//! `lanes` owns the lanes themselves (idle, busy, their signals).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::StreamExt;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::batcher::{Batch, KeySet, ReadBuffer};
use super::checkpointer::Checkpointer;
use super::context::MappingContext;
use super::control::Inbox;
use super::held_keys::HeldKeys;
use super::lane::{lock, SharedWindow};
use super::status::{ShardState, ShardStatus};
use crate::checkpoint::Checkpoint;
use crate::clock;
use crate::config::StartingPosition;
use crate::event::EventContext;
use crate::model::{ShardId, ShardInfo, StreamKind};
use crate::rng::Rng;
use crate::source::IteratorPosition;
use cutting::{BatchingWindow, Cut};
use lanes::{new_window, Lanes};
use reader::Reader;

mod admission;
mod controls;
mod cutting;
mod lanes;
mod reader;
#[cfg(test)]
mod test_support;

pub use reader::SAME_FAILURES_BEFORE_REOPEN;

/// Why a shard task returned.
#[derive(Debug, PartialEq, Eq)]
pub enum ShardEnd {
    /// Closed and fully processed; the service named these children (may be empty).
    Finished { children: Vec<ShardInfo> },
    /// Shutdown (or the shard vanished): the checkpoint holds the position.
    Stopped,
}

/// Where to start a shard: its checkpoint, else TRIM_HORIZON for a child (so nothing
/// written after a reshard is missed), else the mapping's StartingPosition.
pub fn start_position(
    checkpoint: Option<&Checkpoint>,
    is_child: bool,
    starting: StartingPosition,
    kind: StreamKind,
    now_ms: i64,
) -> IteratorPosition {
    match checkpoint {
        Some(Checkpoint::After(seq)) => IteratorPosition::AfterSequence(seq.clone()),
        Some(Checkpoint::At(seq)) => IteratorPosition::AtSequence(seq.clone()),
        Some(Checkpoint::AtTimestamp(ms)) => IteratorPosition::AtTimestamp(*ms),
        Some(Checkpoint::ShardEnd) | None if is_child => IteratorPosition::TrimHorizon,
        _ => match starting {
            StartingPosition::TrimHorizon => IteratorPosition::TrimHorizon,
            // Kinesis: LATEST is pinned to the time the shard was opened, so re-opening an
            // expired iterator before anything was read cannot skip records. DynamoDB
            // Streams has no AT_TIMESTAMP: there it stays LATEST.
            StartingPosition::Latest if kind == StreamKind::Kinesis => {
                IteratorPosition::AtTimestamp(now_ms)
            }
            StartingPosition::Latest => IteratorPosition::Latest,
            StartingPosition::AtTimestamp(ms) => IteratorPosition::AtTimestamp(ms),
        },
    }
}

/// Runs one shard from `position` until it ends or the mapping shuts down. The task
/// starts when this is called and the future returned owns it and runs its loop. Every
/// shard's future is a tokio task's memory, so it is shaped to hold the `ShardTask` once:
/// an `async fn` taking the task (or these arguments) by value keeps a second copy of
/// them next to the body's (2.6 KB a shard before, 1.1 KB now).
pub fn run_shard(
    ctx: Arc<MappingContext>,
    info: ShardInfo,
    position: IteratorPosition,
    status: Arc<ShardStatus>,
) -> impl std::future::Future<Output = ShardEnd> {
    let mut task = ShardTask::start(ctx, info.shard_id, position, status);
    async move { task.run().await }
}

/// What the steps of one shard's loop share.
struct ShardTask {
    ctx: Arc<MappingContext>,
    shard_id: ShardId,
    status: Arc<ShardStatus>,
    /// The fields every event of this shard carries.
    event_ctx: EventContext,
    checkpointer: Arc<Checkpointer>,
    /// ParallelizationFactor (at least 1).
    factor: usize,
    /// The shard's tumbling window, when the mapping has one.
    window: Option<SharedWindow>,
    /// Ordering keys of the records in flight (only with factor > 1).
    held_keys: Arc<HeldKeys>,
    lanes: Lanes,
    reader: Reader,
    /// The jitter of the read backoff.
    read_jitter: Rng,
    /// Records read and not yet batched.
    buffer: ReadBuffer,
    /// Finished batches, emptied: their buffers are reused for the next ones.
    spares: Vec<Batch>,
    batching: BatchingWindow,
    /// Operator requests (skip, rewind), announced through the shard's controls.
    requests: Inbox,
    /// How many requests the controls had announced when the inbox was last emptied.
    requests_seen: u64,
    /// The controls' change count when they were last read (`u64::MAX`: never).
    controls_seen: u64,
    /// Whether the operator held the shard paused when the controls were last read.
    operator_paused: bool,
    /// Shutdown and the loop's timer, kept across passes (see `Waits`).
    waits: Waits,
}

/// What the loop waits on that outlives a pass. Made anew on every pass, the shutdown
/// wait registered and unregistered a waiter on the cancellation token and the timer an
/// entry in the timer wheel, each under a lock (a 10,000-shard simulation makes ~570,000
/// passes). Kept here, a pass only moves the timer when its deadline changes.
struct Waits {
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    timer: Pin<Box<Sleep>>,
    /// Where `timer` is set: `None` before the first use and after it fired.
    timer_at: Option<Instant>,
}

impl Waits {
    fn new(ctx: &MappingContext) -> Self {
        Waits {
            shutdown: Box::pin(ctx.cancel.clone().cancelled_owned()),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            timer_at: None,
        }
    }

    /// Sets the timer `sleep_ms` from now (moved only if that changes its deadline).
    fn set_timer(&mut self, sleep_ms: u64) {
        let at = clock::tokio_now() + std::time::Duration::from_millis(sleep_ms);
        if self.timer_at != Some(at) {
            self.timer.as_mut().reset(at);
            self.timer_at = Some(at);
        }
    }
}

impl ShardTask {
    /// The task of a shard starting at `position`, its start published.
    fn start(
        ctx: Arc<MappingContext>,
        shard_id: ShardId,
        position: IteratorPosition,
        status: Arc<ShardStatus>,
    ) -> Self {
        let now = ctx.clock.now_ms();
        {
            let mut s = status.update();
            s.running_since_ms = Some(now);
            match position {
                IteratorPosition::AtTimestamp(ms) => s.started_at_time_ms = Some(ms),
                IteratorPosition::Latest => s.started_at_time_ms = Some(now),
                _ => {}
            }
        }
        let mapping = &ctx.mapping;
        let checkpointer = Arc::new(Checkpointer::new(
            mapping.name.clone(),
            shard_id.clone(),
            ctx.store.clone(),
            ctx.clock,
            status.clone(),
        ));
        let factor = mapping.parallelization_factor.max(1) as usize;
        let window = new_window(&ctx);
        let held_keys = Arc::new(HeldKeys::default());
        let lanes = Lanes::new(&ctx, &shard_id, &status, &checkpointer, &window, &held_keys);
        let reader = Reader::at(position, now);
        tracing::info!(mapping = %mapping.name, shard = %shard_id, position = ?reader.resume, lanes = factor, "shard started");
        ShardTask {
            event_ctx: ctx.event_context(&shard_id),
            buffer: if factor > 1 {
                ReadBuffer::keyed()
            } else {
                ReadBuffer::default()
            },
            batching: BatchingWindow::starting_at(now, mapping.maximum_batching_window_ms as i64),
            requests: status.control().attach(),
            requests_seen: 0,
            controls_seen: u64::MAX,
            operator_paused: false,
            waits: Waits::new(&ctx),
            spares: Vec::new(),
            read_jitter: Rng::derived(ctx.seed, &format!("{}/{}/reader", mapping.name, shard_id)),
            ctx,
            shard_id,
            status,
            checkpointer,
            factor,
            window,
            held_keys,
            lanes,
            reader,
        }
    }

    /// The loop: one pass per event, each pass the same steps. Nothing but `self` lives
    /// across the wait (a pass's values stay in `pass`), which keeps the future small.
    async fn run(&mut self) -> ShardEnd {
        loop {
            if self.ctx.cancel.is_cancelled() {
                return self.stop().await;
            }
            match self.pass() {
                Ok(sleep_ms) => self.await_work(sleep_ms).await,
                Err(end) => return end,
            }
        }
    }

    /// One pass's steps up to the wait: how long to sleep at most (`None`: until woken),
    /// or how the shard ended.
    fn pass(&mut self) -> Result<Option<u64>, ShardEnd> {
        let pass = controls::obey_pause(self.obey_operator(), self.reader.errors_in_a_row);
        let mut held = self.held_now();
        let cut = if pass.starts_work {
            self.cut_batches(&mut held)
        } else {
            Cut::default()
        };
        if let Some(end) = self.end_if_done() {
            return Err(end);
        }
        if self.lanes.busy.is_empty() {
            self.status.update().state = pass.idle_state;
        }
        let now = self.ctx.clock.now_ms();
        let mut wake = None;
        if pass.starts_work {
            wake = self.read_if_due(&held, now);
            if !cut.all_held {
                wake = earliest(wake, self.batching_due_ms());
            }
        }
        wake = earliest(wake, cut.window_wake);
        Ok(wake.map(|at| at.saturating_sub(now).max(0) as u64))
    }

    /// Shutdown: the lanes watch the token; each finishes or abandons its invocation, then
    /// stops.
    async fn stop(&mut self) -> ShardEnd {
        drop(self.reader.in_flight.take());
        while self.lanes.busy.next().await.is_some() {}
        self.status.update().state = ShardState::Stopped;
        ShardEnd::Stopped
    }

    /// The ordering keys busy lanes hold now (none are tracked with factor 1).
    fn held_now(&self) -> KeySet {
        if self.factor > 1 {
            self.held_keys.set()
        } else {
            KeySet::default()
        }
    }

    /// SHARD_END, once the shard is closed and every record read is done (and the last
    /// tumbling window has had its final invoke).
    fn end_if_done(&mut self) -> Option<ShardEnd> {
        let window_open = self
            .window
            .as_ref()
            .is_some_and(|w| lock(w).window().is_some());
        let done = self.reader.has_ended()
            && self.buffer.is_empty()
            && self.lanes.busy.is_empty()
            && !window_open;
        if !done {
            return None;
        }
        self.checkpointer.save(Checkpoint::ShardEnd);
        self.checkpointer.flush_soon();
        let mut s = self.status.update();
        s.state = ShardState::Ended;
        s.caught_up = true;
        drop(s);
        tracing::info!(mapping = %self.ctx.mapping.name, shard = %self.shard_id, "shard ended: every record is done");
        Some(ShardEnd::Finished {
            children: std::mem::take(&mut self.reader.children),
        })
    }

    /// Waits for the next thing that can change what the loop does: a lane done, a read's
    /// answer, an operator request, a pause or resume, keys released, `sleep_ms` passed,
    /// or shutdown. Shutdown is polled last: polling it locks the token twice, and it was
    /// 3% of a 10,000-shard simulation when polled first on every wake; a shutdown that
    /// comes with other work is seen by the check at the top of the loop, one pass later.
    async fn await_work(&mut self, sleep_ms: Option<u64>) {
        if let Some(ms) = sleep_ms {
            self.waits.set_timer(ms);
        }
        let (control, controls_seen) = (self.status.control(), self.controls_seen);
        tokio::select! {
            biased;
            Some((lane, batch, _)) = self.lanes.busy.next(), if !self.lanes.busy.is_empty() => {
                self.lanes.idle.push(lane);
                self.recycle(batch);
                self.batching.invocation_completed(self.ctx.clock.now_ms());
            }
            answer = reader::answer(&mut self.reader.in_flight), if self.reader.in_flight.is_some() => {
                self.reader.in_flight = None;
                self.apply_read(answer);
            }
            _ = std::future::poll_fn(|cx| control.poll_change(cx, controls_seen)) => {}
            _ = self.held_keys.released(), if self.factor > 1 => {}
            _ = self.waits.timer.as_mut(), if sleep_ms.is_some() => {
                self.waits.timer_at = None;
            }
            _ = self.waits.shutdown.as_mut() => {}
        }
    }
}

/// The earlier of two optional times.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
