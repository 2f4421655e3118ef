//! The shard task: read → batch → lane → checkpoint, until the shard ends or shutdown.
//!
//! Shaped after KCL's shard consumer: explicit states published in `ShardStatus`
//! (polling, invoking, retrying, backing off, ended), and an end reason returned to the
//! supervisor (shard end with children, or shutdown). Reading keeps the AWS pace: about once
//! per `poll_interval_ms` when caught up, every `min_read_interval_ms` while records wait.
//! Throttles and service errors back off with jitter and are never counted as attempts; an
//! expired iterator is re-opened after the last record read (never from StartingPosition);
//! records the stream trimmed before they were read are counted and logged as lost.

use std::sync::Arc;

use super::batcher::{ReadBuffer, PAYLOAD_CAP_BYTES};
use super::context::MappingContext;
use super::lane::{BatchEnd, Lane};
use super::status::{ShardState, ShardStatus};
use crate::checkpoint::Checkpoint;
use crate::config::StartingPosition;
use crate::event::EventContext;
use crate::model::{ShardId, ShardInfo, StreamKind};
use crate::policy::backoff::backoff_ms;
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
    match position {
        IteratorPosition::AtTimestamp(ms) => status.update().started_at_time_ms = Some(ms),
        IteratorPosition::Latest => status.update().started_at_time_ms = Some(ctx.clock.now_ms()),
        _ => {}
    }
    let mut reader = Reader {
        iterator: None,
        resume: position,
        ended: false,
        children: Vec::new(),
        more_waiting: false,
        next_read_ms: ctx.clock.now_ms(),
        errors_in_a_row: 0,
    };
    let mut rng = Rng::derived(ctx.seed, &format!("{}/{}/reader", mapping.name, shard_id));
    let mut lane = Lane::new(ctx.clone(), shard_id.clone(), status.clone());
    let mut buffer = ReadBuffer::default();
    // The last batch's event buffer, reused for the next one.
    let mut spare: Option<Vec<u8>> = None;
    let mut window_start_ms = ctx.clock.now_ms();
    tracing::info!(mapping = %mapping.name, shard = %shard_id, position = ?reader.resume, "shard started");
    loop {
        if ctx.cancel.is_cancelled() {
            status.update().state = ShardState::Stopped;
            return ShardEnd::Stopped;
        }
        let now = ctx.clock.now_ms();
        if !buffer.is_empty() {
            let full = buffer.holds_full_batch(mapping.batch_size);
            let window_over = now >= window_start_ms + mapping.maximum_batching_window_ms as i64;
            if full || reader.ended || (window_over && !reader.more_waiting) {
                let empty = spare.take().unwrap_or_default();
                let batch =
                    buffer.take_batch(mapping.batch_size, PAYLOAD_CAP_BYTES, &event_ctx, empty);
                status.update().caught_up = false;
                if lane.process(&batch).await == BatchEnd::Interrupted {
                    status.update().state = ShardState::Stopped;
                    return ShardEnd::Stopped;
                }
                spare = Some(batch.into_buffer());
                window_start_ms = ctx.clock.now_ms();
                continue;
            }
        } else if reader.ended {
            if let Err(error) = ctx
                .store
                .save(&mapping.name, &shard_id, &Checkpoint::ShardEnd)
            {
                tracing::error!(shard = %shard_id, %error, "SHARD_END checkpoint not saved");
            }
            let mut s = status.update();
            s.state = ShardState::Ended;
            s.checkpoint = Some(Checkpoint::ShardEnd.encode());
            s.caught_up = true;
            drop(s);
            tracing::info!(mapping = %mapping.name, shard = %shard_id, "shard ended: every record is done");
            return ShardEnd::Finished {
                children: reader.children,
            };
        }
        status.update().state = ShardState::Polling;
        let mut wake = reader.next_read_ms;
        if !buffer.is_empty() && !reader.more_waiting {
            wake = wake.min(window_start_ms + mapping.maximum_batching_window_ms as i64);
        }
        if !ctx.sleep(wake.saturating_sub(now).max(0) as u64).await {
            continue;
        }
        if ctx.clock.now_ms() < reader.next_read_ms {
            continue;
        }
        read_once(&ctx, &shard_id, &status, &mut reader, &mut buffer, &mut rng).await;
    }
}

async fn read_once(
    ctx: &MappingContext,
    shard_id: &ShardId,
    status: &ShardStatus,
    reader: &mut Reader,
    buffer: &mut ReadBuffer,
    rng: &mut Rng,
) {
    let pace = &ctx.mapping.pace;
    let started = ctx.clock.now_ms();
    let result = match reader.iterator.clone() {
        Some(iterator) => {
            ctx.source
                .get_records(&iterator, pace.get_records_limit)
                .await
        }
        None => match ctx.source.shard_iterator(shard_id, &reader.resume).await {
            Ok(iterator) => {
                reader.iterator = Some(iterator.clone());
                ctx.source
                    .get_records(&iterator, pace.get_records_limit)
                    .await
            }
            Err(error) => Err(error),
        },
    };
    let now = ctx.clock.now_ms();
    match result {
        Ok(page) => {
            reader.errors_in_a_row = 0;
            accept_page(ctx, shard_id, status, reader, buffer, page);
            // While records wait, reads are spaced from the start of the previous one (the
            // per-shard limit is on calls per second), so a slow read is not followed by a
            // needless pause; a caught-up shard waits the poll interval after the answer.
            let busy = reader.more_waiting || !buffer.is_empty();
            reader.next_read_ms = if busy {
                started + pace.min_read_interval_ms as i64
            } else {
                now + pace.poll_interval_ms as i64
            };
        }
        Err(SourceError::ExpiredIterator) => {
            tracing::info!(shard = %shard_id, resume = ?reader.resume, "iterator expired; re-opening after the last record read");
            reader.iterator = None;
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
            s.state = ShardState::BackingOff;
            s.last_error = Some(format!("GetRecords: {error}"));
            if throttled {
                s.read_throttles += 1;
                tracing::debug!(shard = %shard_id, %error, wait_ms = wait, "read throttled; backing off");
            } else {
                tracing::warn!(shard = %shard_id, %error, wait_ms = wait, "read failed; backing off");
            }
            if matches!(error, SourceError::NotFound(_)) {
                reader.iterator = None;
            }
            reader.next_read_ms = now + wait as i64;
        }
    }
}

fn accept_page(
    ctx: &MappingContext,
    shard_id: &ShardId,
    status: &ShardStatus,
    reader: &mut Reader,
    buffer: &mut ReadBuffer,
    page: RecordsPage,
) {
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
    s.caught_up =
        page.records.is_empty() && page.millis_behind_latest.unwrap_or(0) == 0 && buffer.is_empty();
    drop(s);
    reader.more_waiting = page.records.len() >= ctx.mapping.pace.get_records_limit;
    for record in page.records {
        buffer.push(record);
    }
    if let Some(last) = buffer.last() {
        reader.resume = IteratorPosition::AfterSequence(last.sequence_number.clone());
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
