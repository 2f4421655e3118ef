//! Putting records into a Kinesis stream on a schedule: the PutRecords loop shared by
//! `load` and `replay`.
//!
//! A ticker wakes every `pacing::TICK`; each time, everything due and not yet sent goes
//! out in PutRecords calls of up to 500 records and 5 MiB (Kinesis' limits), records
//! waiting for a retry first. The SDK's own retries are off (`aws::kinesis`), because a
//! PutRecords answer can be a partial success: each entry that comes back with an error
//! code (`ProvisionedThroughputExceededException`: throttled; `InternalFailure`) is put
//! again after a backoff, as is every record of a call that failed as a whole with a
//! transient error. A record still failing after `max_retries` retries is given up,
//! counted as failed and named in the summary: records are never dropped silently. A
//! missing stream ends the run with `Stream not found: <name>`, any other permanent error
//! with that error.
//!
//! Which records make the next batch is a pure function (`take_batch`) of the retry list,
//! the fresh records, the schedule and the elapsed time, and the retry rules live in a
//! pure `Ledger`; only `put_paced` (with its `Run`) touches the clock and the network.

use std::iter::Peekable;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::pacing::{retry_delay, Pacing, TICK};
use super::progress::Progress;
use super::stream::{not_found, StreamTarget};
use crate::aws::{self, ErrorClass};

/// PutRecords' limits per call.
pub const MAX_BATCH_RECORDS: usize = crate::limits::KINESIS_PUT_RECORDS_MAX_RECORDS;
pub const MAX_BATCH_BYTES: usize = crate::limits::KINESIS_PUT_RECORDS_MAX_BYTES;

/// The error code of a throttled entry (or call).
pub const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// One record to put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub partition_key: String,
    pub data: Vec<u8>,
}

impl Outgoing {
    /// What it counts for against the 5 MiB call limit.
    fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }
}

/// A record on its way: how many times it failed, and when it may go again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub record: Outgoing,
    pub attempts: u32,
    /// Elapsed time since the start after which it may be sent.
    pub ready_at: Duration,
    pub last_error: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutStats {
    pub put: u64,
    /// Entries that came back throttled (a record throttled twice counts twice).
    pub throttled: u64,
    /// Entries that came back with another retryable error.
    pub retried_errors: u64,
    /// Records given up.
    pub failed: u64,
    pub last_failure: Option<String>,
    pub seconds: f64,
    /// Stopped (Ctrl-C) before every record was put.
    pub interrupted: bool,
}

/// The next batch: ready retries first (oldest first), then fresh records while fewer
/// than `due` have been taken from `fresh` (`taken` counts them), within PutRecords'
/// limits. A single record larger than the byte limit still makes a batch of its own
/// (Kinesis will refuse it and say why).
pub fn take_batch<I: Iterator<Item = Outgoing>>(
    retries: &mut Vec<Pending>,
    fresh: &mut Peekable<I>,
    taken: &mut u64,
    due: u64,
    now: Duration,
) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    let fits = |batch: &Vec<Pending>, bytes: usize, size: usize| {
        batch.is_empty() || (batch.len() < MAX_BATCH_RECORDS && bytes + size <= MAX_BATCH_BYTES)
    };
    let mut i = 0;
    while i < retries.len() {
        let size = retries[i].record.size();
        if retries[i].ready_at <= now && fits(&batch, bytes, size) {
            bytes += size;
            batch.push(retries.remove(i));
        } else {
            i += 1;
        }
    }
    while *taken < due {
        let Some(next) = fresh.peek() else { break };
        let size = next.size();
        if !fits(&batch, bytes, size) {
            break;
        }
        let Some(record) = fresh.next() else { break };
        *taken += 1;
        bytes += size;
        batch.push(Pending {
            record,
            attempts: 0,
            ready_at: Duration::ZERO,
            last_error: None,
        });
    }
    batch
}

/// Where and how to put.
pub struct PutTarget<'a> {
    pub client: &'a aws_sdk_kinesis::Client,
    pub stream: &'a StreamTarget,
    /// Retries of one record before it is given up.
    pub max_retries: u32,
    pub progress: &'a Progress,
    pub stop: &'a CancellationToken,
}

/// The bookkeeping of a run: its counts and the records waiting for a retry. Pure (the
/// caller passes the time), so the retry rules are unit-tested without a server.
#[derive(Debug)]
pub struct Ledger {
    pub stats: PutStats,
    pub retries: Vec<Pending>,
    max_retries: u32,
}

impl Ledger {
    pub fn new(max_retries: u32) -> Ledger {
        Ledger {
            stats: PutStats::default(),
            retries: Vec::new(),
            max_retries,
        }
    }

    /// A record was put.
    pub fn put(&mut self) {
        self.stats.put += 1;
    }

    /// `pending` came back with `error` (`throttled`: ProvisionedThroughputExceeded) at
    /// `now`: it waits for a retry after a backoff, or, past `max_retries` retries, is
    /// given up and counted as failed. True when given up.
    pub fn failed(
        &mut self,
        mut pending: Pending,
        throttled: bool,
        error: String,
        now: Duration,
    ) -> bool {
        if throttled {
            self.stats.throttled += 1;
        } else {
            self.stats.retried_errors += 1;
        }
        pending.attempts += 1;
        if pending.attempts > self.max_retries {
            self.stats.failed += 1;
            self.stats.last_failure = Some(format!(
                "partition key {:?}: {error}",
                pending.record.partition_key
            ));
            return true;
        }
        pending.ready_at = now + retry_delay(pending.attempts);
        pending.last_error = Some(error);
        self.retries.push(pending);
        false
    }

    /// The run stops: records still waiting for a retry are failed.
    pub fn abandon(&mut self) {
        for pending in std::mem::take(&mut self.retries) {
            self.stats.failed += 1;
            self.stats.last_failure = Some(format!(
                "partition key {:?}: interrupted while waiting to retry ({})",
                pending.record.partition_key,
                pending.last_error.unwrap_or_default()
            ));
        }
    }

    /// The progress bar's note.
    fn note(&self) -> Option<String> {
        let stats = &self.stats;
        (stats.throttled + stats.retried_errors + stats.failed > 0).then(|| {
            format!(
                "{} throttled, {} retrying, {} failed",
                stats.throttled + stats.retried_errors,
                self.retries.len(),
                stats.failed
            )
        })
    }
}

struct Run<'a> {
    target: &'a PutTarget<'a>,
    start: Instant,
    ledger: Ledger,
}

impl Run<'_> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn failed(&mut self, pending: Pending, throttled: bool, error: String) {
        let now = self.now();
        if self.ledger.failed(pending, throttled, error, now) {
            self.target.progress.inc(1);
        }
    }

    async fn send(&mut self, batch: Vec<Pending>) -> anyhow::Result<()> {
        let target = self.target;
        let mut entries = Vec::with_capacity(batch.len());
        for pending in &batch {
            entries.push(
                PutRecordsRequestEntry::builder()
                    .partition_key(pending.record.partition_key.clone())
                    .data(Blob::new(pending.record.data.clone()))
                    .build()?,
            );
        }
        let answer = target
            .client
            .put_records()
            .stream_arn(&target.stream.arn)
            .set_records(Some(entries))
            .send()
            .await;
        match answer {
            Ok(output) => {
                let results = output.records();
                for (i, pending) in batch.into_iter().enumerate() {
                    match results.get(i).map(|r| (r.error_code(), r.error_message())) {
                        Some((None, _)) => {
                            self.ledger.put();
                            target.progress.inc(1);
                        }
                        Some((Some(code), message)) => {
                            let error = match message {
                                Some(message) => format!("{code}: {message}"),
                                None => code.to_string(),
                            };
                            self.failed(pending, code == THROTTLED, error);
                        }
                        None => self.failed(
                            pending,
                            false,
                            "PutRecords answered without a result for this record".into(),
                        ),
                    }
                }
            }
            Err(error) => match aws::classify(&error) {
                ErrorClass::NotFound => return Err(not_found(&target.stream.name)),
                ErrorClass::Transient => {
                    let throttled = aws::error_code(&error) == Some(THROTTLED);
                    let text = aws::describe(&error);
                    for pending in batch {
                        self.failed(pending, throttled, text.clone());
                    }
                }
                ErrorClass::Permanent => anyhow::bail!(
                    "PutRecords to {} failed after {} records were put: {}",
                    target.stream.name,
                    self.ledger.stats.put,
                    aws::describe(&error)
                ),
            },
        }
        if let Some(note) = self.ledger.note() {
            target.progress.set_message(note);
        }
        Ok(())
    }
}

/// Puts `records` on `pacing`'s schedule (at most `pacing.total()` of them) and returns
/// what happened. Stops early, counting the records still waiting for a retry as failed,
/// when `target.stop` is cancelled.
pub async fn put_paced<I: Iterator<Item = Outgoing>>(
    target: &PutTarget<'_>,
    pacing: &Pacing,
    records: I,
) -> anyhow::Result<PutStats> {
    let total = pacing.total();
    let mut fresh = records.peekable();
    let mut taken = 0u64;
    let mut run = Run {
        target,
        start: Instant::now(),
        ledger: Ledger::new(target.max_retries),
    };
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let exhausted = taken >= total || fresh.peek().is_none();
        if exhausted && run.ledger.retries.is_empty() {
            break;
        }
        if target.stop.is_cancelled() {
            run.ledger.stats.interrupted = true;
            break;
        }
        tokio::select! {
            biased;
            _ = target.stop.cancelled() => {
                run.ledger.stats.interrupted = true;
                break;
            }
            _ = ticker.tick() => {}
        }
        // Send everything due; the clock is read again after each call, so a slow call
        // makes the next batch bigger rather than the run longer.
        while !target.stop.is_cancelled() {
            let now = run.now();
            let due = pacing.due_by(now).min(total);
            let batch = take_batch(&mut run.ledger.retries, &mut fresh, &mut taken, due, now);
            if batch.is_empty() {
                break;
            }
            run.send(batch).await?;
        }
    }
    run.ledger.abandon();
    run.ledger.stats.seconds = run.now().as_secs_f64();
    Ok(run.ledger.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, bytes: usize) -> Outgoing {
        Outgoing {
            partition_key: key.into(),
            data: vec![b'x'; bytes],
        }
    }

    fn retry(key: &str, ready_ms: u64) -> Pending {
        Pending {
            record: out(key, 10),
            attempts: 1,
            ready_at: Duration::from_millis(ready_ms),
            last_error: Some("throttled".into()),
        }
    }

    fn keys(batch: &[Pending]) -> Vec<&str> {
        batch
            .iter()
            .map(|p| p.record.partition_key.as_str())
            .collect()
    }

    #[test]
    fn a_batch_takes_ready_retries_first_then_what_is_due() {
        let mut retries = vec![retry("r1", 100), retry("r2", 500), retry("r3", 50)];
        let mut fresh = (0..10).map(|i| out(&format!("f{i}"), 10)).peekable();
        let mut taken = 0;
        let now = Duration::from_millis(200);
        let batch = take_batch(&mut retries, &mut fresh, &mut taken, 3, now);
        assert_eq!(keys(&batch), ["r1", "r3", "f0", "f1", "f2"]);
        assert_eq!(taken, 3);
        assert_eq!(keys(&retries), ["r2"]);
        // Nothing more is due and r2 is not ready: an empty batch.
        assert!(take_batch(&mut retries, &mut fresh, &mut taken, 3, now).is_empty());
        let batch = take_batch(
            &mut retries,
            &mut fresh,
            &mut taken,
            4,
            Duration::from_secs(1),
        );
        assert_eq!(keys(&batch), ["r2", "f3"]);
    }

    #[test]
    fn a_batch_holds_at_most_500_records_and_5_mib() {
        let mut retries = Vec::new();
        let mut fresh = (0..1200).map(|i| out(&format!("k{i}"), 10)).peekable();
        let mut taken = 0;
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let batch = take_batch(&mut retries, &mut fresh, &mut taken, 1200, Duration::ZERO);
            (!batch.is_empty()).then_some(batch.len())
        })
        .collect();
        assert_eq!(sizes, [500, 500, 200]);

        // 1 MiB records: five would be 5 MiB plus their keys, so four per call.
        let mut fresh = (0..6).map(|i| out(&format!("{i}"), 1024 * 1024)).peekable();
        let mut taken = 0;
        let batch = take_batch(&mut retries, &mut fresh, &mut taken, 6, Duration::ZERO);
        assert_eq!(batch.len(), 4);
        // A record larger than the call limit still goes, alone.
        let mut fresh = std::iter::once(out("big", 6 * 1024 * 1024)).peekable();
        let mut taken = 0;
        let batch = take_batch(&mut retries, &mut fresh, &mut taken, 1, Duration::ZERO);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_throttled_record_is_retried_with_backoff_and_given_up_only_after_max_retries() {
        let mut ledger = Ledger::new(3);
        let mut pending = Pending {
            record: out("user-1", 5),
            attempts: 0,
            ready_at: Duration::ZERO,
            last_error: None,
        };
        let mut now = Duration::from_secs(1);
        for attempt in 1..=3 {
            let given_up = ledger.failed(pending, true, THROTTLED.into(), now);
            assert!(!given_up, "attempt {attempt}");
            assert_eq!(ledger.retries.len(), 1);
            pending = ledger.retries.pop().unwrap();
            assert_eq!(pending.attempts, attempt);
            assert_eq!(pending.ready_at, now + retry_delay(attempt));
            now = pending.ready_at;
        }
        assert!(ledger.failed(pending, true, THROTTLED.into(), now));
        assert!(ledger.retries.is_empty());
        assert_eq!(ledger.stats.throttled, 4);
        assert_eq!(ledger.stats.failed, 1);
        assert_eq!(
            ledger.stats.last_failure.as_deref(),
            Some("partition key \"user-1\": ProvisionedThroughputExceededException")
        );
        assert_eq!(
            ledger.note().as_deref(),
            Some("4 throttled, 0 retrying, 1 failed")
        );
    }

    #[test]
    fn records_waiting_for_a_retry_when_the_run_stops_count_as_failed() {
        let mut ledger = Ledger::new(10);
        ledger.put();
        ledger.failed(
            retry("user-2", 0),
            false,
            "InternalFailure".into(),
            Duration::ZERO,
        );
        assert_eq!(ledger.stats.retried_errors, 1);
        assert_eq!(ledger.stats.failed, 0);
        ledger.abandon();
        assert_eq!((ledger.stats.put, ledger.stats.failed), (1, 1));
        assert!(ledger
            .stats
            .last_failure
            .unwrap()
            .contains("interrupted while waiting to retry (InternalFailure)"));
    }

    #[test]
    fn fresh_records_stop_at_the_due_count_even_if_more_remain() {
        let mut retries = Vec::new();
        let mut fresh = (0..10).map(|i| out(&format!("f{i}"), 1)).peekable();
        let mut taken = 0;
        assert_eq!(
            take_batch(&mut retries, &mut fresh, &mut taken, 0, Duration::ZERO).len(),
            0
        );
        assert_eq!(
            take_batch(&mut retries, &mut fresh, &mut taken, 2, Duration::ZERO).len(),
            2
        );
        assert_eq!(fresh.peek().map(|o| o.partition_key.as_str()), Some("f2"));
    }
}
