//! The shard task: read → filter → batch → lanes → checkpoint, until the shard ends or
//! shutdown.
//!
//! Shaped after KCL's shard consumer: explicit states published in `ShardStatus`
//! (polling, invoking, retrying, backing off, paused, ended), and an end reason returned
//! to the supervisor (shard end with children, or shutdown). One task per shard runs the
//! reader and up to ParallelizationFactor lanes as concurrent futures, so a read never
//! waits for an invocation nor an invocation for a read. A batch is cut for an idle lane
//! from the buffered records whose ordering keys no busy lane holds (and no earlier
//! passed-over record has), so each key's records are invoked in order; the checkpoint
//! follows the lowest record not yet done (`Checkpointer`). With factor 1 this is the
//! plain in-order loop, with the next batch read while the current one is invoked.
//!
//! Reading keeps the AWS pace: about once per `poll_interval_ms` when caught up, every
//! `min_read_interval_ms` while records wait, and never more than the lanes can take
//! (about `batch_size × factor` records buffered). Throttles and service errors back off
//! with jitter and are never counted as attempts; an expired iterator is re-opened after
//! the last record read (never from StartingPosition), and so is an iterator the stream
//! refuses the same way `SAME_FAILURES_BEFORE_REOPEN` times in a row (a malformed one);
//! records the stream trimmed before they were read are counted and logged as lost.
//! Filtered-out records are counted and marked done as read, so the checkpoint passes them
//! without an invocation.
//!
//! Operator requests arrive here: a skip goes to the lane holding the lowest in-flight
//! batch; a rewind (paused only) abandons the lanes' work and the buffer and re-opens the
//! shard at the new position.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::batcher::{Batch, KeySet, ReadBuffer, PAYLOAD_CAP_BYTES};
use super::checkpointer::Checkpointer;
use super::context::MappingContext;
use super::control::{Request, RewindTo, ShardRequest};
use super::held_keys::HeldKeys;
use super::lane::{lock, BatchEnd, Lane, LaneSignal, SharedWindow};
use super::status::{ShardState, ShardStatus};
use crate::checkpoint::Checkpoint;
use crate::config::StartingPosition;
use crate::event::window::window_fields_len;
use crate::event::EventContext;
use crate::model::{ShardId, ShardInfo, StreamKind};
use crate::policy::backoff::backoff_ms;
use crate::policy::window::{self, WindowTracker, AWS_CLOSE_GRACE_MS};
use crate::rng::Rng;
use crate::source::{IteratorPosition, RecordsPage, SourceError};

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

/// How many identical failures of GetRecords on one iterator (the same error text, not a
/// throttle) make the reader drop that iterator and open a new one at its position. A
/// malformed or otherwise refused iterator fails the same way forever (kinesis-local and
/// moto answer HTTP 500, AWS InvalidArgumentException), while a passing service fault
/// rarely repeats five times word for word; and five backed-off failures take about 3 s
/// at the default pace (200, 400, 800, 1,600 ms nominal), so a stuck shard recovers soon,
/// with at most one GetShardIterator per five reads (AWS allows 5 per second per shard).
pub const SAME_FAILURES_BEFORE_REOPEN: u32 = 5;

/// A run of identical GetRecords failures on one iterator.
struct Refusals {
    iterator: String,
    error: String,
    count: u32,
}

struct Reader {
    iterator: Option<String>,
    /// Where a new iterator starts: the start position, then after the last record read.
    resume: IteratorPosition,
    ended: bool,
    children: Vec<ShardInfo>,
    /// The last page was full: more records are waiting.
    more_waiting: bool,
    next_read_ms: i64,
    errors_in_a_row: u32,
    /// The current iterator's run of identical failures (throttles neither count nor end
    /// it; any other answer ends it).
    refusals: Option<Refusals>,
}

impl Reader {
    fn at(position: IteratorPosition, now_ms: i64) -> Self {
        Reader {
            iterator: None,
            resume: position,
            ended: false,
            children: Vec::new(),
            more_waiting: false,
            next_read_ms: now_ms,
            errors_in_a_row: 0,
            refusals: None,
        }
    }

    /// Counts a failure of GetRecords on the current iterator; how many identical ones
    /// came back in a row on it (0: there was no iterator, GetShardIterator failed).
    fn refused(&mut self, error: &str) -> u32 {
        let Some(iterator) = &self.iterator else {
            self.refusals = None;
            return 0;
        };
        match &mut self.refusals {
            Some(run) if run.iterator == *iterator && run.error == error => run.count += 1,
            _ => {
                self.refusals = Some(Refusals {
                    iterator: iterator.clone(),
                    error: error.to_string(),
                    count: 1,
                })
            }
        }
        self.refusals.as_ref().map_or(0, |run| run.count)
    }
}

/// A lane's batch, done: the lane (idle again) and the batch (for its buffer).
type LaneDone = (Lane, Batch, BatchEnd);
type LaneFuture = Pin<Box<dyn Future<Output = LaneDone> + Send>>;
type ReadFuture = Pin<Box<dyn Future<Output = ReadAnswer> + Send>>;

/// The shard's tumbling window, when the mapping has one (a fresh state: a new shard, or a
/// rewind).
fn new_window(ctx: &MappingContext) -> Option<SharedWindow> {
    let seconds = ctx.mapping.tumbling_window_in_seconds;
    (seconds > 0).then(|| Arc::new(Mutex::new(WindowTracker::new(seconds, AWS_CLOSE_GRACE_MS))))
}

/// The shard's lanes, idle ones first to be taken, and how to signal each.
fn new_lanes(
    ctx: &Arc<MappingContext>,
    shard_id: &ShardId,
    status: &Arc<ShardStatus>,
    checkpointer: &Arc<Checkpointer>,
    window: &Option<SharedWindow>,
    held: &Arc<HeldKeys>,
) -> (Vec<Lane>, Vec<Arc<LaneSignal>>) {
    let factor = ctx.mapping.parallelization_factor.max(1) as usize;
    let lanes: Vec<Lane> = (0..factor)
        .map(|index| {
            Lane::new(
                ctx.clone(),
                shard_id.clone(),
                index,
                status.clone(),
                checkpointer.clone(),
                window.clone(),
                held.clone(),
            )
        })
        .collect();
    let signals = lanes.iter().map(Lane::signal).collect();
    // `pop` takes from the back: lane 0 first.
    (lanes.into_iter().rev().collect(), signals)
}

pub async fn run_shard(
    ctx: Arc<MappingContext>,
    info: ShardInfo,
    position: IteratorPosition,
    status: Arc<ShardStatus>,
) -> ShardEnd {
    let shard_id = info.shard_id.clone();
    let mapping = &ctx.mapping;
    let event_ctx = EventContext {
        shard_id: shard_id.clone(),
        event_source_arn: mapping.event_source_arn.clone(),
        aws_region: ctx.aws_region.clone(),
        invoke_identity_arn: ctx.invoke_identity_arn.clone(),
    };
    {
        let now = ctx.clock.now_ms();
        let mut s = status.update();
        s.running_since_ms = Some(now);
        match position {
            IteratorPosition::AtTimestamp(ms) => s.started_at_time_ms = Some(ms),
            IteratorPosition::Latest => s.started_at_time_ms = Some(now),
            _ => {}
        }
    }
    let mut requests = status.control().attach();
    let mut paused = status.control().watch_paused();
    let checkpointer = Arc::new(Checkpointer::new(
        mapping.name.clone(),
        shard_id.clone(),
        ctx.store.clone(),
        ctx.clock,
        status.clone(),
    ));
    let factor = mapping.parallelization_factor.max(1) as usize;
    let mut window = new_window(&ctx);
    // Ordering keys of the records in flight (only with factor > 1).
    let held_keys = Arc::new(HeldKeys::default());
    let (mut idle, mut signals) =
        new_lanes(&ctx, &shard_id, &status, &checkpointer, &window, &held_keys);
    let mut running: FuturesUnordered<LaneFuture> = FuturesUnordered::new();
    let mut reader = Reader::at(position, ctx.clock.now_ms());
    let mut read: Option<ReadFuture> = None;
    let mut rng = Rng::derived(ctx.seed, &format!("{}/{}/reader", mapping.name, shard_id));
    let mut buffer = if factor > 1 {
        ReadBuffer::keyed()
    } else {
        ReadBuffer::default()
    };
    // Event buffers of finished batches, reused for the next ones.
    let mut spares: Vec<Vec<u8>> = Vec::new();
    let mut window_start_ms = ctx.clock.now_ms();
    let window_ms = mapping.maximum_batching_window_ms as i64;
    tracing::info!(mapping = %mapping.name, shard = %shard_id, position = ?reader.resume, lanes = factor, "shard started");
    loop {
        if ctx.cancel.is_cancelled() {
            // Lanes watch the token: each finishes or abandons its invocation, then stops.
            drop(read.take());
            while running.next().await.is_some() {}
            status.update().state = ShardState::Stopped;
            return ShardEnd::Stopped;
        }
        let is_paused = *paused.borrow_and_update();
        let mut held = if factor > 1 {
            held_keys.set()
        } else {
            KeySet::default()
        };
        // Every buffered record's key is held by a busy lane: nothing to cut until a lane
        // finishes or more records are read.
        let mut all_held = false;
        // With a tumbling window: when the open window next needs an invoke by the clock.
        let mut window_wake: Option<i64> = None;
        let idle_lane = if window.is_some() && !is_paused {
            idle.pop()
        } else {
            None
        };
        if let (Some(tracker), Some(mut lane)) = (&window, idle_lane) {
            let shard_ended = reader.ended && read.is_none();
            let step = lock(tracker).next_step(buffer.arrivals(), shard_ended, ctx.clock.now_ms());
            match step {
                window::Step::Invoke { records, cut_now } => {
                    let full = buffer.holds_full_batch(mapping.batch_size);
                    let window_over = ctx.clock.now_ms() >= window_start_ms + window_ms;
                    if full || cut_now || (window_over && !reader.more_waiting) {
                        checkpointer.hold();
                        let cap = {
                            let tracker = lock(tracker);
                            let fields = tracker.fields(&event_ctx, false);
                            PAYLOAD_CAP_BYTES - fields.map_or(0, |f| window_fields_len(&f))
                        };
                        let spare = spares.pop().unwrap_or_default();
                        let batch = buffer.take_batch(
                            mapping.batch_size.min(records.max(1)),
                            cap,
                            &event_ctx,
                            spare,
                            &held,
                            usize::MAX,
                        );
                        status.update().caught_up = false;
                        running.push(Box::pin(async move {
                            let end = lane.process(&batch).await;
                            (lane, batch, end)
                        }));
                    } else {
                        idle.push(lane);
                    }
                }
                window::Step::Final => {
                    checkpointer.hold();
                    running.push(Box::pin(async move {
                        let end = lane.final_invoke().await;
                        (lane, Batch::default(), end)
                    }));
                }
                window::Step::Wait { until_ms } => {
                    window_wake = until_ms;
                    idle.push(lane);
                }
            }
        }
        while window.is_none() && !is_paused && !buffer.is_empty() {
            let full = buffer.holds_full_batch(mapping.batch_size);
            let window_over = ctx.clock.now_ms() >= window_start_ms + window_ms;
            if !(full || reader.ended || (window_over && !reader.more_waiting)) {
                break;
            }
            let Some(mut lane) = idle.pop() else {
                break;
            };
            // With several lanes, each batch takes a fair share of the free keys, so the
            // keys spread over the lanes instead of the first lane taking them all.
            let max_keys = if factor > 1 {
                buffer.free(&held).1.div_ceil(idle.len() + 1).max(1)
            } else {
                usize::MAX
            };
            let spare = spares.pop().unwrap_or_default();
            let batch = buffer.take_batch(
                mapping.batch_size,
                PAYLOAD_CAP_BYTES,
                &event_ctx,
                spare,
                &held,
                max_keys,
            );
            if batch.is_empty() {
                all_held = true;
                spares.push(batch.into_buffer());
                idle.push(lane);
                break;
            }
            held_keys.hold(&batch.keys);
            held.extend(batch.keys.iter().copied());
            status.update().caught_up = false;
            running.push(Box::pin(async move {
                let end = lane.process(&batch).await;
                (lane, batch, end)
            }));
        }
        let window_open = window.as_ref().is_some_and(|w| lock(w).window().is_some());
        if reader.ended && buffer.is_empty() && running.is_empty() && read.is_none() && !window_open
        {
            checkpointer.save(Checkpoint::ShardEnd);
            checkpointer.flush_soon();
            let mut s = status.update();
            s.state = ShardState::Ended;
            s.caught_up = true;
            drop(s);
            tracing::info!(mapping = %mapping.name, shard = %shard_id, "shard ended: every record is done");
            return ShardEnd::Finished {
                children: reader.children,
            };
        }
        if running.is_empty() {
            let mut s = status.update();
            s.state = if is_paused {
                ShardState::Paused
            } else if reader.errors_in_a_row > 0 {
                ShardState::BackingOff
            } else {
                ShardState::Polling
            };
        }
        let now = ctx.clock.now_ms();
        let wants_read = !is_paused
            && !reader.ended
            && read.is_none()
            && room_to_read(&buffer, &held, mapping.batch_size, factor);
        if wants_read && now >= reader.next_read_ms {
            read = Some(Box::pin(fetch(
                ctx.clone(),
                shard_id.clone(),
                reader.iterator.clone(),
                reader.resume.clone(),
            )));
        }
        let mut wake: Option<i64> = None;
        if wants_read && read.is_none() {
            wake = Some(reader.next_read_ms);
        }
        if !is_paused && !all_held && !idle.is_empty() && !buffer.is_empty() && !reader.more_waiting
        {
            let window_end = window_start_ms + window_ms;
            wake = Some(wake.map_or(window_end, |w| w.min(window_end)));
        }
        if let Some(at) = window_wake {
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        let sleep_ms = wake.map(|w| w.saturating_sub(now).max(0) as u64);
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {}
            Some((lane, batch, _)) = running.next(), if !running.is_empty() => {
                idle.push(lane);
                spares.push(batch.into_buffer());
                window_start_ms = ctx.clock.now_ms();
            }
            answer = next_read(&mut read), if read.is_some() => {
                read = None;
                apply_read(&ctx, &shard_id, &status, &checkpointer, &mut reader, &mut buffer, &mut rng, answer);
            }
            Some(request) = requests.recv() => {
                let Request { what, reply } = request;
                match what {
                    ShardRequest::Skip => {
                        let blocking = status.update().blocking().map(|b| b.lane);
                        match blocking.and_then(|lane| signals.get(lane)) {
                            Some(signal) => signal.request_skip(reply),
                            None => {
                                let _ = reply.send(Err("nothing to skip: no batch is in flight".into()));
                            }
                        }
                    }
                    ShardRequest::Rewind(to) => {
                        if !*paused.borrow() {
                            let _ = reply.send(Err("rewind needs a paused shard: pause it first".into()));
                            continue;
                        }
                        // DynamoDB Streams cannot open an iterator at a time: such a checkpoint
                        // would fail every read, after a restart too.
                        if matches!(to, RewindTo::TimestampMs(_)) && mapping.stream_kind == StreamKind::Dynamodb {
                            let _ = reply.send(Err("DynamoDB Streams has no AT_TIMESTAMP position: rewind to a sequence number".into()));
                            continue;
                        }
                        // Abandon the lanes' work and everything read: it is read again.
                        running.clear();
                        held_keys.clear();
                        window = new_window(&ctx);
                        (idle, signals) = new_lanes(&ctx, &shard_id, &status, &checkpointer, &window, &held_keys);
                        read = None;
                        buffer.clear();
                        let (checkpoint, position) = match to {
                            RewindTo::Sequence(seq) => {
                                (Checkpoint::At(seq.clone()), IteratorPosition::AtSequence(seq))
                            }
                            RewindTo::TimestampMs(ms) => {
                                (Checkpoint::AtTimestamp(ms), IteratorPosition::AtTimestamp(ms))
                            }
                        };
                        tracing::info!(mapping = %mapping.name, shard = %shard_id, checkpoint = %checkpoint.encode(), "operator rewind: in-flight batches abandoned; the shard resumes there");
                        checkpointer.reset(checkpoint);
                        reader = Reader::at(position, ctx.clock.now_ms());
                        {
                            let mut s = status.update();
                            s.in_flight.clear();
                            s.state = ShardState::Paused;
                            s.caught_up = false;
                        }
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Ok(()) = paused.changed() => {}
            _ = held_keys.released(), if factor > 1 => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(sleep_ms.unwrap_or(0))), if sleep_ms.is_some() => {}
        }
    }
}

/// Whether to read more: not while the buffer holds a batch for every lane. With
/// several lanes, records of keys held by a failing lane do not count (they may wait a
/// long time, and the other keys behind them must still be read), up to a hard bound.
fn room_to_read(buffer: &ReadBuffer, held: &KeySet, batch_size: usize, factor: usize) -> bool {
    let enough = batch_size * factor;
    if factor == 1 || held.is_empty() {
        return !buffer.holds_full_batch(enough);
    }
    buffer.len() < MAX_BUFFERED_RECORDS.max(10 * enough) && buffer.free(held).0 < enough
}

/// The most records a shard buffers while some keys are held (about 100 MB of 1 KB
/// records at worst).
const MAX_BUFFERED_RECORDS: usize = 100_000;

/// One GetRecords call (opening an iterator first if there is none), as a future that
/// owns what it needs, so lanes go on while it runs.
struct ReadAnswer {
    started_ms: i64,
    /// An iterator opened for this read.
    opened: Option<String>,
    result: Result<RecordsPage, SourceError>,
}

async fn fetch(
    ctx: Arc<MappingContext>,
    shard_id: ShardId,
    iterator: Option<String>,
    resume: IteratorPosition,
) -> ReadAnswer {
    let started_ms = ctx.clock.now_ms();
    let limit = ctx.mapping.pace.get_records_limit;
    let (opened, result) = match iterator {
        Some(iterator) => (None, ctx.source.get_records(&iterator, limit).await),
        None => match ctx.source.shard_iterator(&shard_id, &resume).await {
            Ok(iterator) => {
                let result = ctx.source.get_records(&iterator, limit).await;
                (Some(iterator), result)
            }
            Err(error) => (None, Err(error)),
        },
    };
    ReadAnswer {
        started_ms,
        opened,
        result,
    }
}

async fn next_read(read: &mut Option<ReadFuture>) -> ReadAnswer {
    match read {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_read(
    ctx: &MappingContext,
    shard_id: &ShardId,
    status: &ShardStatus,
    checkpointer: &Checkpointer,
    reader: &mut Reader,
    buffer: &mut ReadBuffer,
    rng: &mut Rng,
    answer: ReadAnswer,
) {
    let pace = &ctx.mapping.pace;
    if let Some(opened) = answer.opened {
        reader.iterator = Some(opened);
    }
    let now = ctx.clock.now_ms();
    match answer.result {
        Ok(page) => {
            reader.errors_in_a_row = 0;
            reader.refusals = None;
            let got_records = !page.records.is_empty();
            accept_page(ctx, shard_id, status, checkpointer, reader, buffer, page);
            // While records wait, reads are spaced from the start of the previous one (the
            // per-shard limit is on calls per second), so a slow read is not followed by a
            // needless pause; a caught-up shard waits the poll interval after the answer.
            // An empty page means caught up even while buffered records wait for a busy
            // lane: re-reading at once would spin (no time passes with
            // `min_read_interval_ms = 0`).
            let busy = reader.more_waiting || got_records;
            reader.next_read_ms = if busy {
                answer.started_ms + pace.min_read_interval_ms as i64
            } else {
                now + pace.poll_interval_ms as i64
            };
        }
        Err(SourceError::ExpiredIterator) => {
            tracing::info!(shard = %shard_id, resume = ?reader.resume, "iterator expired; re-opening after the last record read");
            reader.iterator = None;
            reader.refusals = None;
            reader.next_read_ms = now;
        }
        Err(error) => {
            reader.errors_in_a_row += 1;
            let throttled = matches!(error, SourceError::Throttled(_));
            let (initial, max) = (
                pace.throttle_backoff_initial_ms,
                pace.throttle_backoff_max_ms,
            );
            let wait = backoff_ms(reader.errors_in_a_row, initial, max, rng.next_f64());
            let mut s = status.update();
            s.set_error("read", format!("GetRecords: {error}"), now);
            if throttled {
                s.read_throttles += 1;
                tracing::debug!(shard = %shard_id, %error, wait_ms = wait, "read throttled; backing off");
            } else {
                tracing::warn!(shard = %shard_id, %error, wait_ms = wait, "read failed; backing off");
            }
            if matches!(error, SourceError::NotFound(_)) {
                reader.iterator = None;
                reader.refusals = None;
            } else if !throttled {
                // The same answer again and again: the stream refuses this iterator (it
                // is malformed, or the server lost it). A new one at the same position
                // skips nothing; the backoff still applies, so this never spins.
                let count = reader.refused(&error.to_string());
                if count >= SAME_FAILURES_BEFORE_REOPEN {
                    s.iterator_reopens += 1;
                    tracing::warn!(
                        mapping = %ctx.mapping.name, shard = %shard_id, count, %error, resume = ?reader.resume, wait_ms = wait,
                        "GetRecords refused the iterator the same way {count} times in a row; opening a new one at the resume position (after the last record read, else where the shard started)"
                    );
                    reader.iterator = None;
                    reader.refusals = None;
                }
            }
            reader.next_read_ms = now + wait as i64;
        }
    }
}

fn accept_page(
    ctx: &MappingContext,
    shard_id: &ShardId,
    status: &ShardStatus,
    checkpointer: &Checkpointer,
    reader: &mut Reader,
    buffer: &mut ReadBuffer,
    page: RecordsPage,
) {
    let now = ctx.clock.now_ms();
    {
        let mut s = status.update();
        if let Some(lost) = &page.lost_to_retention {
            s.records_trimmed += lost.count.unwrap_or(0);
            s.retention_gaps += 1;
            let count = lost.count.map_or("unknown".to_string(), |c| c.to_string());
            tracing::error!(
                mapping = %ctx.mapping.name, shard = %shard_id, %count, first = ?lost.first.as_ref().map(|q| q.as_str()),
                last = ?lost.last.as_ref().map(|q| q.as_str()),
                "records lost to stream retention: they were trimmed before they could be read"
            );
        }
        s.records_polled += page.records.len() as u64;
        s.millis_behind_latest = page.millis_behind_latest;
        if !page.records.is_empty() {
            s.last_data_ms = Some(now);
        }
        s.caught_up = page.records.is_empty()
            && page.millis_behind_latest.unwrap_or(0) == 0
            && buffer.is_empty();
    }
    reader.more_waiting = page.records.len() >= ctx.mapping.pace.get_records_limit;
    if let Some(last) = page.records.last() {
        reader.resume = IteratorPosition::AfterSequence(last.sequence_number.clone());
    }
    let filter = &ctx.mapping.filter;
    let kept: Vec<bool> = page
        .records
        .iter()
        .map(|record| filter.is_empty() || filter.keeps(record))
        .collect();
    let filtered = kept.iter().filter(|keep| !**keep).count() as u64;
    let first = checkpointer.admit_page(
        page.records
            .iter()
            .zip(&kept)
            .map(|(record, keep)| (!keep).then(|| record.sequence_number.clone())),
    );
    for ((ordinal, record), keep) in (first..).zip(page.records).zip(kept) {
        if keep {
            buffer.push(ordinal, record);
        }
    }
    if filtered > 0 {
        status.update().records_filtered += filtered;
        // Filtered records at the front move the checkpoint without an invocation.
        checkpointer.done(&[], &[]);
    } else {
        checkpointer.publish_waiting();
    }
    match page.next_iterator {
        Some(next) => reader.iterator = Some(next),
        None => {
            reader.iterator = None;
            reader.ended = true;
            reader.more_waiting = false;
            reader.children = page.child_shards;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::assemble::{assemble, Environment, Seeds};
    use crate::checkpoint::MemoryStore;
    use crate::clock::Clock;
    use crate::engine::context::MappingContext;
    use crate::engine::control::{ControlError, RewindTo};
    use crate::engine::status::{ShardSnapshot, ShardStatus};
    use crate::simulate::{simulate, Report, SimulateOptions};
    use crate::source::{SourceError, StreamSource};

    /// Starts the first mapping of `config` (a simulated world) on the test's paused clock
    /// and returns it once its first shard runs, with that shard's status.
    async fn start(config: &str, dir: &std::path::Path) -> (Arc<MappingContext>, Arc<ShardStatus>) {
        start_with(config, dir, |source| source).await
    }

    /// `start`, with the mapping reading its stream through `wrap(source)`.
    async fn start_with(
        config: &str,
        dir: &std::path::Path,
        wrap: impl FnOnce(Arc<dyn StreamSource>) -> Arc<dyn StreamSource>,
    ) -> (Arc<MappingContext>, Arc<ShardStatus>) {
        let config =
            crate::config::parse(config, dir).unwrap_or_else(|e| panic!("invalid config:\n{e}"));
        let start_ms = config.simulation.start_ms;
        let env = Environment {
            clock: Clock::starting_at(start_ms),
            store: Arc::new(MemoryStore::default()),
            stream_created_at_ms: &|_| Ok(start_ms),
            seeds: Seeds {
                world: 1,
                engine: 1,
            },
            invocation_log: None,
            tap: None,
            aws: None,
            line_sync: crate::destination::file::LineSync::None,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        let parts = assemble(&config, env).await.expect("assemble");
        let ctx = parts.contexts.into_iter().next().expect("a mapping");
        let ctx = Arc::try_unwrap(ctx).unwrap_or_else(|_| panic!("the context is shared"));
        let ctx = Arc::new(MappingContext {
            source: wrap(ctx.source.clone()),
            ..ctx
        });
        tokio::spawn(super::super::supervisor::run_mapping(ctx.clone()));
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Some(status) = ctx
                .status
                .snapshots()
                .first()
                .and_then(|s| ctx.status.get(&s.shard_id))
            {
                if status.snapshot().running_since_ms.is_some() {
                    return (ctx, status);
                }
            }
        }
        panic!("no shard started");
    }

    async fn wait_until(shard: &ShardStatus, what: impl Fn(&ShardSnapshot) -> bool) {
        for _ in 0..10_000 {
            if what(&shard.snapshot()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never happened: {:?}", shard.snapshot());
    }

    #[tokio::test(start_paused = true)]
    async fn a_skip_that_came_too_late_does_not_cut_the_next_batch_s_backoff_short() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctx, shard) = start(
            r#"
[[streams]]
name = "s"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 1.0
records = 1

[[streams.producers]]
rate_per_second = 1.0
start_seconds = 5.0
records = 1
poison_every = 1

[[functions]]
name = "f"
latency = { p50_ms = 1000.0, p99_ms = 1000.0 }

[[functions.rules]]
when_data_contains = '"poison":true'
action = "error"

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "f"
starting_position = "TRIM_HORIZON"
maximum_retry_attempts = -1
pace = { retry_backoff_initial_ms = 10000, retry_backoff_max_ms = 10000 }
"#,
            dir.path(),
        )
        .await;
        // A skip while the healthy first batch is being invoked: it resolves first.
        wait_until(&shard, |s| !s.in_flight.is_empty()).await;
        let skipping = shard.clone();
        let skip = tokio::spawn(async move { skipping.skip().await });
        let answer = skip.await.expect("skip task");
        assert!(answer.is_err(), "nothing was left to skip: {answer:?}");
        // The poison batch fails once: its retry waits at least 5 s (half the backoff).
        wait_until(&shard, |s| s.last_error.is_some()).await;
        let invocations = shard.snapshot().invocations;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(
            shard.snapshot().invocations,
            invocations,
            "retried without its backoff"
        );
        ctx.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dynamodb_shard_refuses_a_rewind_to_a_time_and_keeps_its_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctx, shard) = start(
            r#"
[[streams]]
name = "orders"
kind = "dynamodb"
shards = 1

[[streams.producers]]
rate_per_second = 10.0
records = 5
keys = 2

[[functions]]
name = "f"

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "f"
starting_position = "TRIM_HORIZON"
"#,
            dir.path(),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        shard.pause();
        let before = shard.snapshot().checkpoint;
        assert!(before.is_some(), "the shard has checkpointed");
        let result = shard.rewind(RewindTo::TimestampMs(0)).await;
        let Err(ControlError::Conflict(message)) = result else {
            panic!("a rewind to a time was accepted on DynamoDB Streams: {result:?}");
        };
        assert!(message.contains("AT_TIMESTAMP"), "{message}");
        assert_eq!(shard.snapshot().checkpoint, before);
        ctx.cancel.cancel();
    }

    /// Runs a simulation of `config` (TOML text); fails instead of hanging when the
    /// engine spins without letting the virtual clock advance.
    fn simulate_within_10_s(config: &str) -> Report {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::config::parse(config, dir.path())
            .unwrap_or_else(|e| panic!("invalid config:\n{e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ =
                tx.send(simulate(&config, &SimulateOptions::default()).map_err(|e| e.to_string()));
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the simulation hung: the shard loop spins without virtual time advancing")
            .expect("simulate")
    }

    #[test]
    fn reads_with_no_minimum_interval_while_a_lane_is_busy_do_not_spin() {
        let report = simulate_within_10_s(
            r#"
[simulation]
seed = 3
max_duration_seconds = 60

[[streams]]
name = "s"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 1000.0
records = 15
keys = 3

[[functions]]
name = "slow"
latency = { p50_ms = 500.0, p99_ms = 500.0 }

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "slow"
starting_position = "TRIM_HORIZON"
batch_size = 10
pace = { min_read_interval_ms = 0 }
"#,
        );
        assert_eq!(report.counts.records_succeeded, 15, "{:?}", report.counts);
    }

    /// Which answers `Faulty` spoils.
    #[derive(Clone, Copy)]
    enum Fault {
        /// The first iterator GetShardIterator hands out is cut in half.
        FirstIterator,
        /// Every iterator GetShardIterator hands out is cut in half.
        EveryIterator,
        /// The NextShardIterator of the first page with records is cut in half.
        NextIteratorOfFirstPage,
        /// The first reads are throttled.
        ThrottleFirstReads(u32),
    }

    /// What `Faulty` saw.
    #[derive(Default)]
    struct FaultLog {
        /// Every GetShardIterator position, in order.
        opened: Vec<crate::source::IteratorPosition>,
        /// The iterators it spoiled.
        corrupted: Vec<String>,
        /// When each read of a spoiled iterator came.
        refused_at: Vec<tokio::time::Instant>,
        throttled: u32,
        /// The last record of the page whose next iterator it spoiled.
        spoiled_after: Option<crate::model::SequenceNumber>,
    }

    /// A stream source that spoils some of the answers of the one under it, as a
    /// fault-injecting proxy would: an iterator cut in half is one the stream refuses.
    struct Faulty {
        inner: Arc<dyn StreamSource>,
        fault: Fault,
        log: SharedLog,
    }

    type SharedLog = Arc<std::sync::Mutex<FaultLog>>;

    impl Faulty {
        /// What `Faulty` will see, and how to put it over a source (for `start_with`).
        fn wrap(
            fault: Fault,
        ) -> (
            SharedLog,
            impl FnOnce(Arc<dyn StreamSource>) -> Arc<dyn StreamSource>,
        ) {
            let log = SharedLog::default();
            let shared = log.clone();
            let wrap = move |inner| -> Arc<dyn StreamSource> {
                Arc::new(Faulty {
                    inner,
                    fault,
                    log: shared,
                })
            };
            (log, wrap)
        }

        fn spoil(log: &mut FaultLog, iterator: &str) -> String {
            let spoiled = iterator[..iterator.len() / 2].to_string();
            log.corrupted.push(spoiled.clone());
            spoiled
        }
    }

    #[async_trait::async_trait]
    impl StreamSource for Faulty {
        fn stream_arn(&self) -> &str {
            self.inner.stream_arn()
        }

        fn kind(&self) -> crate::model::StreamKind {
            self.inner.kind()
        }

        async fn list_shards(&self) -> Result<Vec<crate::model::ShardInfo>, SourceError> {
            self.inner.list_shards().await
        }

        async fn shard_iterator(
            &self,
            shard: &crate::model::ShardId,
            position: &crate::source::IteratorPosition,
        ) -> Result<String, SourceError> {
            let iterator = self.inner.shard_iterator(shard, position).await?;
            let mut log = self.log.lock().expect("log");
            log.opened.push(position.clone());
            let spoil = match self.fault {
                Fault::FirstIterator => log.opened.len() == 1,
                Fault::EveryIterator => true,
                _ => false,
            };
            Ok(if spoil {
                Faulty::spoil(&mut log, &iterator)
            } else {
                iterator
            })
        }

        async fn get_records(
            &self,
            iterator: &str,
            limit: usize,
        ) -> Result<crate::source::RecordsPage, SourceError> {
            {
                let mut log = self.log.lock().expect("log");
                if log.corrupted.iter().any(|c| c == iterator) {
                    log.refused_at.push(tokio::time::Instant::now());
                }
                if let Fault::ThrottleFirstReads(n) = self.fault {
                    if log.throttled < n {
                        log.throttled += 1;
                        return Err(SourceError::Throttled(
                            "ProvisionedThroughputExceededException: injected".into(),
                        ));
                    }
                }
            }
            let mut page = self.inner.get_records(iterator, limit).await?;
            let mut log = self.log.lock().expect("log");
            if matches!(self.fault, Fault::NextIteratorOfFirstPage) && log.spoiled_after.is_none() {
                if let (Some(last), Some(next)) = (page.records.last(), &page.next_iterator) {
                    log.spoiled_after = Some(last.sequence_number.clone());
                    page.next_iterator = Some(Faulty::spoil(&mut log, next));
                }
            }
            Ok(page)
        }
    }

    /// 20 records on one simulated Kinesis shard, read from TRIM_HORIZON at the AWS pace
    /// (throttle backoff 200 ms doubling to 10 s).
    const TWENTY_RECORDS: &str = r#"
[[streams]]
name = "s"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 10.0
records = 20

[[functions]]
name = "f"

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "f"
starting_position = "TRIM_HORIZON"
batch_size = 5
"#;

    /// The reads of a refused iterator came no faster than the backoff allows (its
    /// fixed half), from the first failure of the shard on.
    fn assert_backed_off(refused_at: &[tokio::time::Instant]) {
        for (gap, attempt) in refused_at.windows(2).map(|w| w[1] - w[0]).zip(1u32..) {
            let least = super::backoff_ms(attempt, 200, 10_000, 0.0);
            assert!(
                gap.as_millis() as u64 >= least,
                "read {} came {gap:?} after the one before: less than {least} ms",
                attempt + 1
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_first_iterator_is_reopened_at_the_start_after_five_identical_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, wrap) = Faulty::wrap(Fault::FirstIterator);
        let (ctx, shard) = start_with(TWENTY_RECORDS, dir.path(), wrap).await;
        wait_until(&shard, |s| s.records_succeeded == 20).await;
        let s = shard.snapshot();
        ctx.cancel.cancel();
        let log = log.lock().expect("log");
        assert_eq!(
            log.refused_at.len(),
            super::SAME_FAILURES_BEFORE_REOPEN as usize,
            "reads of the refused iterator before the re-open"
        );
        assert_eq!(super::SAME_FAILURES_BEFORE_REOPEN, 5);
        assert_backed_off(&log.refused_at);
        // Nothing was read before: the new iterator starts where the first one did.
        use crate::source::IteratorPosition::TrimHorizon;
        assert_eq!(log.opened, [TrimHorizon, TrimHorizon]);
        assert_eq!(s.iterator_reopens, 1);
        assert_eq!((s.records_polled, s.records_invoked), (20, 20), "{s:?}");
        let error = s.last_error.expect("the failures were published");
        assert_eq!(
            (error.kind, error.message.as_str()),
            (
                "read",
                "GetRecords: InvalidArgumentException: shard iterator is malformed"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_next_iterator_is_reopened_after_the_last_record_read_and_nothing_is_read_twice(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, wrap) = Faulty::wrap(Fault::NextIteratorOfFirstPage);
        let (ctx, shard) = start_with(TWENTY_RECORDS, dir.path(), wrap).await;
        wait_until(&shard, |s| s.records_succeeded == 20).await;
        let s = shard.snapshot();
        ctx.cancel.cancel();
        let log = log.lock().expect("log");
        assert_eq!(log.refused_at.len(), 5);
        let after = log.spoiled_after.clone().expect("a page was spoiled");
        use crate::source::IteratorPosition::{AfterSequence, TrimHorizon};
        assert_eq!(log.opened, [TrimHorizon, AfterSequence(after)]);
        assert_eq!(s.iterator_reopens, 1);
        assert_eq!((s.records_polled, s.records_invoked), (20, 20), "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_refuses_every_iterator_is_re_opened_every_five_failures_with_the_backoff_kept(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, wrap) = Faulty::wrap(Fault::EveryIterator);
        let (ctx, shard) = start_with(TWENTY_RECORDS, dir.path(), wrap).await;
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        let s = shard.snapshot();
        ctx.cancel.cancel();
        let log = log.lock().expect("log");
        let refused = log.refused_at.len();
        // 200 ms doubling to 10 s, at least half of it each time: about 20 reads in 2 min.
        assert!((10..=30).contains(&refused), "{refused} reads");
        assert_backed_off(&log.refused_at);
        assert_eq!(log.opened.len(), refused.div_ceil(5), "{refused} reads");
        assert_eq!(s.iterator_reopens as usize, refused / 5);
        use crate::source::IteratorPosition::TrimHorizon;
        assert!(
            log.opened.iter().all(|p| *p == TrimHorizon),
            "{:?}",
            log.opened
        );
        assert_eq!(
            (s.records_polled, s.checkpoint),
            (0, None),
            "nothing read, nothing skipped"
        );
        assert_eq!(s.state, super::ShardState::BackingOff);
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_never_reopen_the_iterator() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, wrap) = Faulty::wrap(Fault::ThrottleFirstReads(8));
        let (ctx, shard) = start_with(TWENTY_RECORDS, dir.path(), wrap).await;
        wait_until(&shard, |s| s.records_succeeded == 20).await;
        let s = shard.snapshot();
        ctx.cancel.cancel();
        let log = log.lock().expect("log");
        assert_eq!(log.throttled, 8);
        assert_eq!(log.opened.len(), 1, "{:?}", log.opened);
        assert_eq!(s.iterator_reopens, 0);
        assert!(s.read_throttles >= 8, "{s:?}");
        assert_eq!((s.records_polled, s.records_invoked), (20, 20), "{s:?}");
    }
}
