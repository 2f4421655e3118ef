//! A lane: takes one batch of a shard from first invoke to the last record resolved,
//! applying the policy's decisions (spec 2.1 steps 2-5).
//!
//! The lane owns the I/O around the pure `BatchRetry`: it assembles payloads, invokes the
//! function, sleeps the backoffs, sends failure records, and marks resolved records done in
//! the shard's `Progress`, saving the checkpoint whenever the lowest record not yet done
//! moves; so a restart mid-batch resumes right after what is done. A shard runs up to
//! ParallelizationFactor lanes at once, each on batches of keys no other lane holds.
//! Between attempts a lane obeys the operator: it waits while the shard is paused, and a
//! skip discards the records it is failing on (`SkippedByOperator`). With tumbling windows
//! every invocation carries the open window's fields and state (spec 2.6): a state the
//! function returns is kept for the next invocation, a missing one fails the attempt, and
//! `final_invoke` delivers the window's final state.

use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::batcher::Batch;
use super::checkpointer::Checkpointer;
use super::context::MappingContext;
use super::control::PauseWatch;
use super::held_keys::HeldKeys;
use super::invocation_log::InvocationLine;
use super::status::{InFlight, ShardState, ShardStatus};
use crate::clock;
use crate::destination::delivery::Delivery;
use crate::destination::DiscardedBatch;
use crate::event::request_id::FailureIdentity;
use crate::event::window::{add_window_fields, assemble_window_event};
use crate::event::{BatchInfo, EventContext, FailureRecord};
use crate::function::{Invocation, InvokeResult};
use crate::model::{SequenceNumber, ShardId, StreamRecord};
use crate::policy::backoff::backoff_ms;
use crate::policy::window::{classify_window, WindowTracker};
use crate::policy::{classify, BatchRetry, Discard, Next, Outcome, RetryLimits, Step};
use crate::rng::Rng;

/// How processing a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every record is resolved and checkpointed.
    Finished,
    /// Shutdown: the checkpoint stands before the records not resolved.
    Interrupted,
}

/// What the shard task tells a busy lane between its attempts.
#[derive(Default)]
pub struct LaneSignal {
    /// A pending operator skip, and where its answer goes.
    skip: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    wake: Notify,
}

impl LaneSignal {
    /// Asks the lane to skip the records it is failing on; it answers on `reply`.
    pub fn request_skip(&self, reply: oneshot::Sender<Result<(), String>>) {
        *self.skip.lock().unwrap_or_else(|p| p.into_inner()) = Some(reply);
        self.wake.notify_one();
    }

    fn take_skip(&self) -> Option<oneshot::Sender<Result<(), String>>> {
        self.skip.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

pub struct Lane {
    ctx: Arc<MappingContext>,
    shard_id: ShardId,
    /// Which of the shard's lanes (0-based).
    index: usize,
    status: Arc<ShardStatus>,
    checkpointer: Arc<Checkpointer>,
    signal: Arc<LaneSignal>,
    paused: PauseWatch,
    rng: Rng,
    /// Where the event of part of a batch is assembled (retries after a partial failure
    /// or a bisect); kept to reuse its allocation.
    scratch: Vec<u8>,
    /// The shard's tumbling window, when the mapping has one.
    window: Option<SharedWindow>,
    event_ctx: EventContext,
    /// Where a windowed event is assembled.
    windowed: Vec<u8>,
    /// The shard's held ordering keys: released record by record as they are resolved.
    held: Arc<HeldKeys>,
}

impl Lane {
    pub fn new(
        ctx: Arc<MappingContext>,
        shard_id: ShardId,
        index: usize,
        status: Arc<ShardStatus>,
        checkpointer: Arc<Checkpointer>,
        window: Option<SharedWindow>,
        held: Arc<HeldKeys>,
    ) -> Self {
        let name = if index == 0 {
            format!("{}/{}/lane", ctx.mapping.name, shard_id)
        } else {
            format!("{}/{}/lane{index}", ctx.mapping.name, shard_id)
        };
        let rng = Rng::derived(ctx.seed, &name);
        let paused = status.control().watch_paused();
        let event_ctx = ctx.event_context(&shard_id);
        Lane {
            ctx,
            shard_id,
            index,
            status,
            checkpointer,
            signal: Arc::new(LaneSignal::default()),
            paused,
            rng,
            scratch: Vec::new(),
            window,
            event_ctx,
            windowed: Vec::new(),
            held,
        }
    }

    pub fn signal(&self) -> Arc<LaneSignal> {
        self.signal.clone()
    }

    pub async fn process(&mut self, batch: &Batch) -> BatchEnd {
        let end = self.run(batch).await;
        self.status.update().set_lane(self.index, None);
        if let Some(reply) = self.signal.take_skip() {
            let _ = reply.send(Err(
                "nothing to skip: the batch was resolved before the skip took effect".into(),
            ));
        }
        // The skip's wake-up, if no wait consumed it, must not cut the next batch's first
        // backoff short.
        let _ = self.signal.wake.notified().now_or_never();
        end
    }

    async fn run(&mut self, batch: &Batch) -> BatchEnd {
        let ctx = self.ctx.clone();
        let mapping = &ctx.mapping;
        let limits = RetryLimits {
            maximum_retry_attempts: mapping.maximum_retry_attempts,
            maximum_record_age_ms: mapping.maximum_record_age_ms,
            bisect_on_function_error: mapping.bisect_batch_on_function_error,
        };
        let arrivals: Vec<i64> = batch
            .records
            .iter()
            .map(|r| r.approximate_arrival_ms)
            .collect();
        let mut retry = BatchRetry::new(batch.len(), limits);
        let mut not_reached_in_a_row = 0u32;
        let since_ms = ctx.clock.now_ms();
        loop {
            if ctx.cancel.is_cancelled() || !self.obey_operator(batch, &mut retry).await {
                return BatchEnd::Interrupted;
            }
            let (range, attempt) = match retry.next_step(&arrivals, ctx.clock.now_ms()) {
                Step::Done => return BatchEnd::Finished,
                Step::Discard(discard) => {
                    if !self.discard(batch, &discard).await {
                        return BatchEnd::Interrupted;
                    }
                    continue;
                }
                Step::Invoke { range, attempt } => (range, attempt),
            };
            let records = &batch.records[range.clone()];
            let bisect_depth = retry.current().map_or(0, |s| s.bisect_depth);
            let answer = self.attempt(batch, range, attempt, bisect_depth, since_ms);
            let Some((result, outcome)) = answer.await else {
                return BatchEnd::Interrupted;
            };
            let resolution = retry.on_outcome(&outcome);
            if let Some(succeeded) = resolution.succeeded {
                self.status.update().records_succeeded += succeeded.len() as u64;
                self.resolved(batch, succeeded);
            }
            if let Some(discard) = &resolution.discarded {
                if !self.discard(batch, discard).await {
                    return BatchEnd::Interrupted;
                }
            }
            let (wait_ms, state) = match resolution.next {
                Next::Continue => {
                    not_reached_in_a_row = 0;
                    (0, ShardState::Invoking)
                }
                Next::RetryAfterFailure { failed_attempts } => {
                    not_reached_in_a_row = 0;
                    self.note_failure(&outcome, &result, records);
                    (self.retry_backoff(failed_attempts), ShardState::Retrying)
                }
                Next::RetryNotCounted => {
                    not_reached_in_a_row += 1;
                    self.note_failure(&outcome, &result, records);
                    self.status.update().invoke_throttles += 1;
                    let wait = self.throttle_backoff(not_reached_in_a_row);
                    (wait, ShardState::BackingOff)
                }
            };
            if wait_ms > 0 {
                self.status.update().set_lane_state(self.index, state);
                if !self.sleep_unless_signalled(wait_ms).await {
                    return BatchEnd::Interrupted;
                }
            }
        }
    }

    /// One attempt at `batch[range]`: its event assembled (with the open window's fields),
    /// published as in flight (`attempt`, `bisect_depth`, batch started `since_ms`),
    /// invoked, classified, counted and logged; `None` on shutdown.
    async fn attempt(
        &mut self,
        batch: &Batch,
        range: std::ops::Range<usize>,
        attempt: u32,
        bisect_depth: u32,
        since_ms: i64,
    ) -> Option<(InvokeResult, Outcome)> {
        let records = &batch.records[range.clone()];
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut windowed = std::mem::take(&mut self.windowed);
        let mut payload = batch.event(range, &mut scratch);
        if let Some(window) = &self.window {
            windowed.clear();
            windowed.extend_from_slice(payload);
            let tracker = lock(window);
            if let Some(fields) = tracker.fields(&self.event_ctx, false) {
                add_window_fields(&mut windowed, &fields);
            }
            drop(tracker);
            payload = &windowed;
        }
        let payload_bytes = payload.len();
        let started_ms = self.ctx.clock.now_ms();
        self.status.update().set_lane(
            self.index,
            Some(InFlight {
                lane: self.index,
                state: ShardState::Invoking,
                first_sequence_number: records[0].sequence_number.0.clone(),
                last_sequence_number: records[records.len() - 1].sequence_number.0.clone(),
                records: records.len(),
                payload_bytes,
                attempt,
                bisect_depth,
                since_ms,
            }),
        );
        let result = self.invoke(records, payload).await;
        self.scratch = scratch;
        self.windowed = windowed;
        let result = result?;
        let finished_ms = self.ctx.clock.now_ms();
        let outcome = self.outcome_of(&result, records);
        self.count_invocation(records, &outcome, started_ms, finished_ms);
        self.log_invocation(records, started_ms, payload_bytes, attempt, &outcome);
        Some((result, outcome))
    }

    /// What the function's answer means for the batch; with a tumbling window the state
    /// it returns is kept for the next invocation (spec 2.6).
    fn outcome_of(&self, result: &InvokeResult, records: &[StreamRecord]) -> Outcome {
        let report = self.ctx.mapping.report_batch_item_failures;
        let invoked: Vec<SequenceNumber> = if report {
            records.iter().map(|r| r.sequence_number.clone()).collect()
        } else {
            Vec::new()
        };
        let Some(window) = &self.window else {
            return classify(result, report, &invoked);
        };
        let answer = classify_window(result, report, &invoked);
        if let Some(state) = answer.state {
            if lock(window).accept_state(state) {
                tracing::info!(shard = %self.shard_id, "tumbling window: the state passed 1 MB; the window ends early");
            }
        }
        answer.outcome
    }

    /// The jittered wait after `failures` failed attempts in a row.
    fn retry_backoff(&mut self, failures: u32) -> u64 {
        let pace = &self.ctx.mapping.pace;
        let (initial, max) = (pace.retry_backoff_initial_ms, pace.retry_backoff_max_ms);
        backoff_ms(failures, initial, max, self.rng.next_f64())
    }

    /// The jittered wait after `throttles` invocations in a row that did not reach the
    /// function (never counted as attempts).
    fn throttle_backoff(&mut self, throttles: u32) -> u64 {
        let pace = &self.ctx.mapping.pace;
        let (initial, max) = (
            pace.throttle_backoff_initial_ms,
            pace.throttle_backoff_max_ms,
        );
        backoff_ms(throttles, initial, max, self.rng.next_f64())
    }

    /// The open window's final invoke: no records, `isFinalInvokeForWindow: true`, retried
    /// with backoff until it succeeds (it has no records to discard, so retry limits do
    /// not apply); then the checkpoint held during the window is written.
    pub async fn final_invoke(&mut self) -> BatchEnd {
        let Some(window) = self.window.clone() else {
            return BatchEnd::Finished;
        };
        let ctx = self.ctx.clone();
        let mapping = &ctx.mapping;
        let (mut failures, mut not_reached) = (0u32, 0u32);
        loop {
            if ctx.cancel.is_cancelled() {
                return BatchEnd::Interrupted;
            }
            while self.paused.borrow_and_update(self.status.control()) {
                self.status.update().state = ShardState::Paused;
                tokio::select! {
                    biased;
                    _ = ctx.cancel.cancelled() => return BatchEnd::Interrupted,
                    _ = self.paused.changed() => {}
                }
            }
            let mut event = std::mem::take(&mut self.windowed);
            {
                let tracker = lock(&window);
                let Some(fields) = tracker.fields(&self.event_ctx, true) else {
                    return BatchEnd::Finished;
                };
                assemble_window_event(std::iter::empty(), &fields, &mut event);
            }
            self.status.update().state = ShardState::Invoking;
            let started_ms = ctx.clock.now_ms();
            let result = self.invoke(&[], &event).await;
            let payload_bytes = event.len();
            self.windowed = event;
            let Some(result) = result else {
                return BatchEnd::Interrupted;
            };
            let answer = classify_window(&result, mapping.report_batch_item_failures, &[]);
            self.count_invocation(&[], &answer.outcome, started_ms, ctx.clock.now_ms());
            self.log_invocation(
                &[],
                started_ms,
                payload_bytes,
                failures + 1,
                &answer.outcome,
            );
            let wait_ms = match &answer.outcome {
                Outcome::Success => {
                    lock(&window).final_succeeded();
                    self.checkpointer.release();
                    return BatchEnd::Finished;
                }
                Outcome::NotReached { .. } => {
                    not_reached += 1;
                    self.status.update().invoke_throttles += 1;
                    self.throttle_backoff(not_reached)
                }
                _ => {
                    failures += 1;
                    self.retry_backoff(failures)
                }
            };
            self.note_failure(&answer.outcome, &result, &[]);
            self.status.update().state = ShardState::Retrying;
            if !ctx.sleep(wait_ms).await {
                return BatchEnd::Interrupted;
            }
        }
    }

    /// Between attempts: carries out a pending skip, and waits while the shard is paused.
    /// False on shutdown.
    async fn obey_operator(&mut self, batch: &Batch, retry: &mut BatchRetry) -> bool {
        loop {
            if let Some(reply) = self.signal.take_skip() {
                let Some(discard) = retry.skip_current() else {
                    let _ = reply.send(Err("nothing to skip: the batch is resolved".into()));
                    continue;
                };
                tracing::info!(
                    mapping = %self.ctx.mapping.name, shard = %self.shard_id,
                    first = %batch.records[discard.range.start].sequence_number,
                    last = %batch.records[discard.range.end - 1].sequence_number,
                    records = discard.range.len(), "operator skip: discarding the blocking records"
                );
                let delivered = self.discard(batch, &discard).await;
                let _ = reply.send(Ok(()));
                if !delivered {
                    return false;
                }
                continue;
            }
            if !self.paused.borrow_and_update(self.status.control()) {
                return true;
            }
            self.status
                .update()
                .set_lane_state(self.index, ShardState::Paused);
            tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => return false,
                _ = self.paused.changed() => {}
                _ = self.signal.wake.notified() => {}
            }
        }
    }

    /// Sleeps `ms`, or less if the operator pauses or skips; false on shutdown.
    async fn sleep_unless_signalled(&mut self, ms: u64) -> bool {
        // A pause and resume during the invoke are past: only a change from now wakes.
        self.paused.borrow_and_update(self.status.control());
        tokio::select! {
            biased;
            _ = self.ctx.cancel.cancelled() => false,
            _ = self.signal.wake.notified() => true,
            _ = self.paused.changed() => true,
            _ = clock::sleep_ms(ms) => true,
        }
    }

    /// Invokes the function; on shutdown the in-flight invoke may still finish within the
    /// grace period, after which it is abandoned (`None`) and its records stay before the
    /// checkpoint.
    async fn invoke(&self, records: &[StreamRecord], payload: &[u8]) -> Option<InvokeResult> {
        let invocation = Invocation {
            shard_id: &self.shard_id,
            payload,
            records,
        };
        let grace_ms = self.ctx.mapping.pace.shutdown_grace_ms;
        let cancel: &CancellationToken = &self.ctx.cancel;
        tokio::select! {
            biased;
            result = self.ctx.function.invoke(invocation) => Some(result),
            _ = async {
                cancel.cancelled().await;
                tokio::time::sleep(std::time::Duration::from_millis(grace_ms)).await;
            } => {
                tracing::warn!(shard = %self.shard_id, grace_ms, "shutdown: in-flight invocation abandoned; its records will be delivered again after a restart");
                None
            }
        }
    }

    /// The metrics of one invocation (spec section 5).
    fn count_invocation(
        &self,
        records: &[StreamRecord],
        outcome: &Outcome,
        started_ms: i64,
        finished_ms: i64,
    ) {
        if matches!(outcome, Outcome::NotReached { .. }) {
            return;
        }
        let mut status = self.status.update();
        status.invocations += 1;
        status.records_invoked += records.len() as u64;
        if !matches!(outcome, Outcome::Success) {
            status.records_failed_invoke += records.len() as u64;
        }
        if let Some(last) = records.last() {
            let age = started_ms
                .saturating_sub(last.approximate_arrival_ms)
                .max(0);
            status.iterator_age_ms = Some(age);
        }
        status
            .invoke_latency
            .record(finished_ms.saturating_sub(started_ms) as f64);
    }

    fn log_invocation(
        &self,
        records: &[StreamRecord],
        t_ms: i64,
        payload_bytes: usize,
        attempt: u32,
        outcome: &Outcome,
    ) {
        let Some(log) = &self.ctx.invocation_log else {
            return;
        };
        log.write(&InvocationLine {
            t_ms,
            mapping: &self.ctx.mapping.name,
            shard_id: &self.shard_id.0,
            first_sequence_number: records.first().map_or("", |r| r.sequence_number.as_str()),
            last_sequence_number: records.last().map_or("", |r| r.sequence_number.as_str()),
            records: records.len(),
            payload_bytes,
            attempt,
            outcome: outcome.label(),
        });
    }

    fn note_failure(&self, outcome: &Outcome, result: &InvokeResult, records: &[StreamRecord]) {
        let (kind, detail) = match outcome {
            Outcome::FunctionError {
                timed_out: true, ..
            } => ("function_timeout", "function timed out".to_string()),
            Outcome::FunctionError { response, .. } => {
                let error = response.function_error.as_deref().unwrap_or("Unhandled");
                let detail = match function_error_message(result) {
                    Some(message) => format!("function error {error}: {message}"),
                    None => format!("function error {error}"),
                };
                ("function_error", detail)
            }
            Outcome::PartialFailure { first_failed, .. } => (
                "partial_failure",
                format!(
                    "partial batch response: first failed record {}",
                    records
                        .get(*first_failed)
                        .map_or("?", |r| r.sequence_number.as_str())
                ),
            ),
            Outcome::InvalidResponse { reason, .. } => (
                "invalid_response",
                format!("invalid batch response: {reason}"),
            ),
            Outcome::NotReached { reason } => (
                "not_reached",
                format!("invocation did not reach the function: {reason}"),
            ),
            Outcome::Success => return,
        };
        let (first, last) = match (records.first(), records.last()) {
            (Some(first), Some(last)) => (
                first.sequence_number.as_str(),
                last.sequence_number.as_str(),
            ),
            _ => ("final invoke", "of the window"),
        };
        // A malformed answer is worth seeing at the default level; ordinary failures and
        // throttles are visible in the discard warnings and the progress lines.
        if matches!(outcome, Outcome::InvalidResponse { .. }) {
            tracing::warn!(shard = %self.shard_id, %first, %last, records = records.len(), "{detail}");
        } else {
            tracing::debug!(shard = %self.shard_id, %first, %last, records = records.len(), "{detail}");
        }
        let now = self.ctx.clock.now_ms();
        self.status
            .update()
            .set_error(kind, format!("{detail} (records {first}..={last})"), now);
    }

    /// Sends the failure record of a discard, then marks its records done; false on
    /// shutdown while a blocked destination was still failing.
    async fn discard(&mut self, batch: &Batch, discard: &Discard) -> bool {
        let ctx = self.ctx.clone();
        let records = &batch.records[discard.range.clone()];
        let (first, last) = (&records[0], &records[records.len() - 1]);
        let timestamp_ms = ctx.clock.now_ms();
        let document = FailureRecord {
            request_id: ctx.request_ids.next(&FailureIdentity {
                mapping: &ctx.mapping.name,
                shard_id: self.shard_id.as_str(),
                first_sequence_number: first.sequence_number.as_str(),
                last_sequence_number: last.sequence_number.as_str(),
                approximate_invoke_count: discard.approximate_invoke_count,
                condition: discard.condition.as_str(),
            }),
            function_arn: ctx.function.function_arn().to_string(),
            condition: discard.condition,
            approximate_invoke_count: discard.approximate_invoke_count,
            response: discard.response.clone(),
            timestamp_ms,
            batch: BatchInfo {
                kind: ctx.mapping.stream_kind,
                shard_id: self.shard_id.clone(),
                start_sequence_number: first.sequence_number.clone(),
                end_sequence_number: last.sequence_number.clone(),
                first_arrival_ms: first.approximate_arrival_ms,
                last_arrival_ms: last.approximate_arrival_ms,
                batch_size: records.len(),
                stream_arn: ctx.mapping.event_source_arn.clone(),
            },
        }
        .to_json();
        tracing::warn!(
            shard = %self.shard_id, condition = discard.condition.as_str(), first = %first.sequence_number,
            last = %last.sequence_number, records = records.len(), invocations = discard.approximate_invoke_count,
            "batch discarded"
        );
        let mut scratch = std::mem::take(&mut self.scratch);
        let discarded = DiscardedBatch {
            document: &document,
            event: batch.event(discard.range.clone(), &mut scratch),
            shard_id: self.shard_id.as_str(),
            timestamp_ms,
        };
        let delivery = ctx
            .delivery
            .deliver(&discarded, &mut self.rng, &ctx.cancel)
            .await;
        self.scratch = scratch;
        if delivery == Delivery::Abandoned {
            return false;
        }
        {
            let mut status = self.status.update();
            status.records_discarded += records.len() as u64;
            match &delivery {
                Delivery::Delivered => {
                    status.destination_records += 1;
                    status.records_delivered_to_destination += records.len() as u64;
                }
                _ => {
                    status.dead_lettered_records += 1;
                    status.records_dropped += records.len() as u64;
                    if ctx.mapping.on_failure_destination.is_some() {
                        status.destination_delivery_failures += 1;
                    }
                }
            }
        }
        self.resolved(batch, discard.range.clone());
        true
    }

    /// Records succeeded or discarded: done for the checkpoint, their keys free for the
    /// other lanes.
    fn resolved(&self, batch: &Batch, range: std::ops::Range<usize>) {
        self.checkpointer.done(
            &batch.ordinals[range.clone()],
            &batch.records[range.clone()],
        );
        if !batch.keys.is_empty() {
            self.held.release(&batch.keys[range]);
        }
    }
}

/// The `errorMessage` of a function error's body, shortened for a status line.
fn function_error_message(result: &InvokeResult) -> Option<String> {
    let InvokeResult::Response(response) = result else {
        return None;
    };
    let body: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    let message = body.get("errorMessage")?.as_str()?;
    const MAX_CHARS: usize = 300;
    Some(if message.chars().count() > MAX_CHARS {
        let short: String = message.chars().take(MAX_CHARS).collect();
        format!("{short}…")
    } else {
        message.to_string()
    })
}

/// A shard's tumbling window, shared by the shard task (which decides the next step) and
/// its lane (which carries the state).
pub type SharedWindow = Arc<Mutex<WindowTracker>>;

pub fn lock(window: &Mutex<WindowTracker>) -> std::sync::MutexGuard<'_, WindowTracker> {
    window.lock().unwrap_or_else(|p| p.into_inner())
}
