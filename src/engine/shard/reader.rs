//! Reading a shard: when to call GetRecords, and what to do with the answer.
//!
//! Reading keeps the AWS pace: about once per `poll_interval_ms` when caught up, every
//! `min_read_interval_ms` while records wait, and never more than the lanes can take
//! (about `batch_size × factor` records buffered: `room_to_read`). Throttles and service
//! errors back off with jitter and are never counted as attempts; an expired iterator is
//! re-opened after the last record read (never from StartingPosition), and so is an
//! iterator the stream refuses the same way `SAME_FAILURES_BEFORE_REOPEN` times in a row
//! (a malformed one: `Reader::refused`). The read runs as a future the shard task owns
//! (`fetch`), so lanes go on while it runs; the shard takes in its answer with
//! `apply_read`, and a page with `accept_page`: records the stream trimmed before they
//! were read are counted and logged as lost, and filtered-out records are counted
//! (`admission` admits the page and buffers what the filter keeps).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{admission, ShardTask};
use crate::config::Pace;
use crate::engine::batcher::{KeySet, ReadBuffer};
use crate::engine::context::MappingContext;
use crate::model::{ShardId, ShardInfo};
use crate::policy::backoff::backoff_ms;
use crate::source::{IteratorPosition, RecordsPage, SourceError};

/// How many identical failures of GetRecords on one iterator (the same error text, not a
/// throttle) make the reader drop that iterator and open a new one at its position. A
/// malformed or otherwise refused iterator fails the same way forever (kinesis-local and
/// moto answer HTTP 500, AWS InvalidArgumentException), while a passing service fault
/// rarely repeats five times word for word; and five backed-off failures take about 3 s
/// at the default pace (200, 400, 800, 1,600 ms nominal), so a stuck shard recovers soon,
/// with at most one GetShardIterator per five reads (AWS allows 5 per second per shard).
pub const SAME_FAILURES_BEFORE_REOPEN: u32 = 5;

/// The most records a shard buffers while some keys are held (about 100 MB of 1 KB
/// records at worst).
const MAX_BUFFERED_RECORDS: usize = 100_000;

/// A run of identical GetRecords failures on one iterator.
struct Refusals {
    iterator: String,
    error: String,
    count: u32,
}

pub(super) type ReadFuture = Pin<Box<dyn Future<Output = ReadAnswer> + Send>>;

/// Where a shard's reading stands.
pub(super) struct Reader {
    iterator: Option<String>,
    /// Where a new iterator starts: the start position, then after the last record read.
    pub(super) resume: IteratorPosition,
    ended: bool,
    /// The children the service named when the shard ended.
    pub(super) children: Vec<ShardInfo>,
    /// The last page was full: more records are waiting.
    pub(super) more_waiting: bool,
    next_read_ms: i64,
    pub(super) errors_in_a_row: u32,
    /// The current iterator's run of identical failures (throttles neither count nor end
    /// it; any other answer ends it).
    refusals: Option<Refusals>,
    /// The GetRecords under way, if any.
    pub(super) in_flight: Option<ReadFuture>,
}

impl Reader {
    pub(super) fn at(position: IteratorPosition, now_ms: i64) -> Self {
        Reader {
            iterator: None,
            resume: position,
            ended: false,
            children: Vec::new(),
            more_waiting: false,
            next_read_ms: now_ms,
            errors_in_a_row: 0,
            refusals: None,
            in_flight: None,
        }
    }

    /// The shard is closed and its last page taken in: nothing more will be read.
    pub(super) fn has_ended(&self) -> bool {
        self.ended && self.in_flight.is_none()
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

    /// Drops the iterator: the next read opens a new one at `resume`.
    fn reopen(&mut self) {
        self.iterator = None;
        self.refusals = None;
    }

    /// When to read after a page: while records wait (`records_may_wait`), reads are
    /// spaced from the start of the previous one (the per-shard limit is on calls per
    /// second), so a slow read is not followed by a needless pause; a caught-up shard waits
    /// the poll interval after the answer. An empty page means caught up even while
    /// buffered records wait for a busy lane: re-reading at once would spin (no time
    /// passes with `min_read_interval_ms = 0`).
    fn pace_after_page(
        &mut self,
        records_waiting: bool,
        started_ms: i64,
        now_ms: i64,
        pace: &Pace,
    ) {
        let busy = self.more_waiting || records_waiting;
        self.next_read_ms = if busy {
            started_ms + pace.min_read_interval_ms as i64
        } else {
            now_ms + pace.poll_interval_ms as i64
        };
    }
}

/// Whether records may still wait in the stream after `page`: it brought some, and the
/// stream did not say it reached the tip. A Kinesis page with `MillisBehindLatest` 0 read
/// everything there was, so the shard is caught up and polled at the caught-up pace, as
/// AWS polls a caught-up shard about once per second (spec section 1); a trickle of
/// records then arrives in batches of about a poll interval's worth rather than in one
/// invocation per `min_read_interval_ms`. DynamoDB Streams report no lag, so any
/// records there mean more may wait.
fn records_may_wait(page: &RecordsPage) -> bool {
    !page.records.is_empty() && page.millis_behind_latest != Some(0)
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

/// One GetRecords call (opening an iterator first if there is none), as a future that
/// owns what it needs, so lanes go on while it runs.
pub(super) struct ReadAnswer {
    started_ms: i64,
    /// The iterator the read used (the reader's, handed back, or one opened for it).
    iterator: Option<String>,
    result: Result<RecordsPage, SourceError>,
}

/// What a read starts from: the reader's iterator, moved into the read (not copied: at
/// 10,000 shards every read's copies were a measurable share), or where to open one.
enum ReadFrom {
    Iterator(String),
    Open(ShardId, IteratorPosition),
}

async fn fetch(ctx: Arc<MappingContext>, from: ReadFrom) -> ReadAnswer {
    let started_ms = ctx.clock.now_ms();
    let limit = ctx.mapping.pace.get_records_limit;
    let iterator = match from {
        ReadFrom::Iterator(iterator) => Ok(iterator),
        ReadFrom::Open(shard_id, resume) => ctx.source.shard_iterator(&shard_id, &resume).await,
    };
    let (iterator, result) = match iterator {
        Ok(iterator) => {
            let result = ctx.source.get_records(&iterator, limit).await;
            (Some(iterator), result)
        }
        Err(error) => (None, Err(error)),
    };
    ReadAnswer {
        started_ms,
        iterator,
        result,
    }
}

/// The answer of the read under way (never, when there is none).
pub(super) async fn answer(read: &mut Option<ReadFuture>) -> ReadAnswer {
    match read {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

impl ShardTask {
    /// Starts a read if one is wanted and due; when one is wanted but not yet due, the
    /// time it is.
    pub(super) fn read_if_due(&mut self, held: &KeySet, now_ms: i64) -> Option<i64> {
        let reader = &self.reader;
        let wanted = !reader.ended
            && reader.in_flight.is_none()
            && room_to_read(&self.buffer, held, self.ctx.mapping.batch_size, self.factor);
        if !wanted {
            return None;
        }
        if now_ms < reader.next_read_ms {
            return Some(reader.next_read_ms);
        }
        let from = match self.reader.iterator.take() {
            Some(iterator) => ReadFrom::Iterator(iterator),
            None => ReadFrom::Open(self.shard_id.clone(), self.reader.resume.clone()),
        };
        self.reader.in_flight = Some(Box::pin(fetch(self.ctx.clone(), from)));
        None
    }

    /// Takes in a read's answer: a page, or a failure to back off from.
    pub(super) fn apply_read(&mut self, answer: ReadAnswer) {
        self.reader.iterator = answer.iterator;
        let now = self.ctx.clock.now_ms();
        match answer.result {
            Ok(page) => {
                self.reader.errors_in_a_row = 0;
                self.reader.refusals = None;
                let records_waiting = records_may_wait(&page);
                self.accept_page(page);
                let pace = &self.ctx.mapping.pace;
                self.reader
                    .pace_after_page(records_waiting, answer.started_ms, now, pace);
            }
            Err(SourceError::ExpiredIterator) => {
                tracing::info!(shard = %self.shard_id, resume = ?self.reader.resume, "iterator expired; re-opening after the last record read");
                self.reader.reopen();
                self.reader.next_read_ms = now;
            }
            Err(error) => self.back_off(error, now),
        }
    }

    /// A failed read: publishes the error, waits a backoff before the next one, and
    /// drops an iterator that is gone or that the stream refuses.
    fn back_off(&mut self, error: SourceError, now_ms: i64) {
        let pace = &self.ctx.mapping.pace;
        let reader = &mut self.reader;
        reader.errors_in_a_row += 1;
        let throttled = matches!(error, SourceError::Throttled(_));
        let (initial, max) = (
            pace.throttle_backoff_initial_ms,
            pace.throttle_backoff_max_ms,
        );
        let wait = backoff_ms(
            reader.errors_in_a_row,
            initial,
            max,
            self.read_jitter.next_f64(),
        );
        let shard_id = &self.shard_id;
        let mut s = self.status.update();
        s.set_error("read", format!("GetRecords: {error}"), now_ms);
        if throttled {
            s.read_throttles += 1;
            tracing::debug!(shard = %shard_id, %error, wait_ms = wait, "read throttled; backing off");
        } else {
            tracing::warn!(shard = %shard_id, %error, wait_ms = wait, "read failed; backing off");
        }
        if matches!(error, SourceError::NotFound(_)) {
            reader.reopen();
        } else if !throttled {
            // The same answer again and again: the stream refuses this iterator (it
            // is malformed, or the server lost it). A new one at the same position
            // skips nothing; the backoff still applies, so this never spins.
            let count = reader.refused(&error.to_string());
            if count >= SAME_FAILURES_BEFORE_REOPEN {
                s.iterator_reopens += 1;
                tracing::warn!(
                    mapping = %self.ctx.mapping.name, shard = %shard_id, count, %error, resume = ?reader.resume, wait_ms = wait,
                    "GetRecords refused the iterator the same way {count} times in a row; opening a new one at the resume position (after the last record read, else where the shard started)"
                );
                reader.reopen();
            }
        }
        reader.next_read_ms = now_ms + wait as i64;
    }

    /// Takes in a page: its counts published, its kept records buffered, its filtered ones
    /// done at once, and where the next read starts.
    fn accept_page(&mut self, page: RecordsPage) {
        let now = self.ctx.clock.now_ms();
        let mapping = &self.ctx.mapping;
        {
            let mut s = self.status.update();
            if let Some(lost) = &page.lost_to_retention {
                s.records_trimmed += lost.count.unwrap_or(0);
                s.retention_gaps += 1;
                let count = lost.count.map_or("unknown".to_string(), |c| c.to_string());
                tracing::error!(
                    mapping = %mapping.name, shard = %self.shard_id, %count, first = ?lost.first.as_ref().map(|q| q.as_str()),
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
                && self.buffer.is_empty();
        }
        let reader = &mut self.reader;
        reader.more_waiting = page.records.len() >= mapping.pace.get_records_limit;
        if let Some(last) = page.records.last() {
            reader.resume = IteratorPosition::AfterSequence(last.sequence_number.clone());
        }
        let filtered = admission::admit_page(
            page.records,
            &mapping.filter,
            &self.checkpointer,
            &mut self.buffer,
        );
        if filtered > 0 {
            self.status.update().records_filtered += filtered;
            // Filtered records at the front move the checkpoint without an invocation.
            self.checkpointer.done(&[], &[]);
        } else {
            self.checkpointer.publish_waiting();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::shard::test_support::{start_with, wait_until, Fault, Faulty};
    use crate::engine::status::ShardState;
    use crate::model::{RecordBody, SequenceNumber, StreamKind, StreamRecord};
    use crate::simulate::{simulate, Report, SimulateOptions};

    fn reader_on(iterator: &str) -> Reader {
        let mut reader = Reader::at(IteratorPosition::TrimHorizon, 0);
        reader.iterator = Some(iterator.to_string());
        reader
    }

    #[test]
    fn the_same_error_on_the_same_iterator_counts_up_and_anything_else_starts_over() {
        let mut reader = reader_on("a");
        assert_eq!(reader.refused("HTTP 500"), 1);
        assert_eq!(reader.refused("HTTP 500"), 2);
        assert_eq!(reader.refused("HTTP 503"), 1, "another error");
        reader.iterator = Some("b".into());
        assert_eq!(reader.refused("HTTP 503"), 1, "another iterator");
        reader.iterator = None;
        assert_eq!(
            reader.refused("HTTP 503"),
            0,
            "no iterator: GetShardIterator failed"
        );
    }

    #[test]
    fn the_fifth_identical_refusal_reopens_the_iterator_at_the_resume_position() {
        let mut reader = reader_on("a");
        let counts: Vec<u32> = (0..SAME_FAILURES_BEFORE_REOPEN)
            .map(|_| reader.refused("refused"))
            .collect();
        assert_eq!(counts, [1, 2, 3, 4, 5]);
        reader.reopen();
        assert_eq!(
            (reader.iterator.as_deref(), reader.refusals.is_none()),
            (None, true)
        );
        assert_eq!(reader.resume, IteratorPosition::TrimHorizon);
    }

    fn pace() -> Pace {
        Pace {
            min_read_interval_ms: 200,
            poll_interval_ms: 1_000,
            ..Pace::aws_default(StreamKind::Kinesis)
        }
    }

    #[test]
    fn while_records_come_reads_are_spaced_from_the_start_of_the_previous_read() {
        let mut reader = reader_on("a");
        reader.pace_after_page(true, 10_000, 10_150, &pace());
        assert_eq!(reader.next_read_ms, 10_200);
        reader.more_waiting = true;
        reader.pace_after_page(false, 20_000, 20_300, &pace());
        assert_eq!(
            reader.next_read_ms, 20_200,
            "a slow read is not followed by a pause"
        );
    }

    #[test]
    fn a_caught_up_shard_reads_again_a_poll_interval_after_the_answer() {
        let mut reader = reader_on("a");
        reader.pace_after_page(false, 10_000, 10_150, &pace());
        assert_eq!(reader.next_read_ms, 11_150);
    }

    fn page_of(records: usize, millis_behind_latest: Option<i64>) -> RecordsPage {
        RecordsPage {
            records: (0..records).map(|i| record_keyed(i, "k")).collect(),
            next_iterator: Some("next".into()),
            millis_behind_latest,
            child_shards: Vec::new(),
            lost_to_retention: None,
        }
    }

    #[test]
    fn a_page_that_reached_the_tip_leaves_nothing_waiting() {
        assert!(
            !records_may_wait(&page_of(3, Some(0))),
            "at the tip: caught up"
        );
        assert!(
            records_may_wait(&page_of(3, Some(1_500))),
            "behind: more wait"
        );
        assert!(
            records_may_wait(&page_of(3, None)),
            "no lag reported (DynamoDB Streams): more may wait"
        );
        assert!(!records_may_wait(&page_of(0, Some(1_500))), "an empty page");
    }

    fn buffer_of(keys: &[&str], keyed: bool) -> ReadBuffer {
        let mut buffer = if keyed {
            ReadBuffer::keyed()
        } else {
            ReadBuffer::default()
        };
        for (i, key) in keys.iter().enumerate() {
            buffer.push(i as u64, record_keyed(i, key));
        }
        buffer
    }

    /// The `i`th record of a test page, under partition key `key`.
    fn record_keyed(i: usize, key: &str) -> StreamRecord {
        StreamRecord {
            sequence_number: SequenceNumber(format!("{}", 1000 + i)),
            approximate_arrival_ms: 0,
            body: RecordBody::Kinesis {
                partition_key: key.to_string(),
                data: b"x".to_vec(),
            },
        }
    }

    #[test]
    fn one_lane_reads_until_a_full_batch_is_buffered() {
        let nothing_held = KeySet::default();
        assert!(room_to_read(
            &buffer_of(&["k"; 9], false),
            &nothing_held,
            10,
            1
        ));
        assert!(!room_to_read(
            &buffer_of(&["k"; 10], false),
            &nothing_held,
            10,
            1
        ));
    }

    #[test]
    fn records_of_held_keys_do_not_stop_several_lanes_from_reading_the_other_keys() {
        let buffer = buffer_of(&["stuck"; 30], true);
        assert!(!room_to_read(&buffer, &KeySet::default(), 10, 2));
        let held: KeySet =
            std::iter::once(buffer.last().expect("a record").ordering_hash()).collect();
        assert!(room_to_read(&buffer, &held, 10, 2));
        let free = buffer_of(&[["stuck"; 10], ["free"; 10], ["also"; 10]].concat(), true);
        assert!(
            !room_to_read(&free, &held, 10, 2),
            "20 records of free keys fill both lanes"
        );
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
        assert_eq!(s.state, ShardState::BackingOff);
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
