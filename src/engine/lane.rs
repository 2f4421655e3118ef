//! A lane: takes one batch of a shard from first invoke to the last record resolved,
//! applying the policy's decisions (spec 2.1 steps 2-5).
//!
//! The lane owns the I/O around the pure `BatchRetry`: it assembles payloads, invokes the
//! target, sleeps the backoffs, sends failure records, and checkpoints after every resolved
//! run of records, so a restart mid-batch resumes right after what is done. A shard has one
//! lane today; ParallelizationFactor will run several, each on the batches of its keys,
//! with the shard checkpoint following the lowest record not yet done.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::batcher::Batch;
use super::context::MappingContext;
use super::invocation_log::InvocationLine;
use super::status::{InFlight, ShardState, ShardStatus};
use crate::checkpoint::Checkpoint;
use crate::destination::delivery::Delivery;
use crate::event::{BatchInfo, FailureRecord};
use crate::model::{SequenceNumber, ShardId, StreamRecord};
use crate::policy::backoff::backoff_ms;
use crate::policy::{classify, BatchRetry, Discard, Next, Outcome, RetryLimits, Step};
use crate::rng::Rng;
use crate::target::{Invocation, InvokeResult};

/// How processing a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every record is resolved and checkpointed.
    Finished,
    /// Shutdown: the checkpoint stands after the records resolved so far.
    Interrupted,
}

pub struct Lane {
    ctx: Arc<MappingContext>,
    shard_id: ShardId,
    status: Arc<ShardStatus>,
    rng: Rng,
    /// Where the event of part of a batch is assembled (retries after a partial failure
    /// or a bisect); kept to reuse its allocation.
    scratch: Vec<u8>,
}

impl Lane {
    pub fn new(ctx: Arc<MappingContext>, shard_id: ShardId, status: Arc<ShardStatus>) -> Self {
        let rng = Rng::derived(ctx.seed, &format!("{}/{}/lane", ctx.mapping.name, shard_id));
        Lane {
            ctx,
            shard_id,
            status,
            rng,
            scratch: Vec::new(),
        }
    }

    pub async fn process(&mut self, batch: &Batch) -> BatchEnd {
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
        loop {
            if ctx.cancel.is_cancelled() {
                return BatchEnd::Interrupted;
            }
            let (range, attempt) = match retry.next_step(&arrivals, ctx.clock.now_ms()) {
                Step::Done => {
                    self.status.update().in_flight = None;
                    return BatchEnd::Finished;
                }
                Step::Discard(discard) => {
                    if !self.discard(batch, &discard).await {
                        return BatchEnd::Interrupted;
                    }
                    continue;
                }
                Step::Invoke { range, attempt } => (range, attempt),
            };
            let records = &batch.records[range.clone()];
            let mut scratch = std::mem::take(&mut self.scratch);
            let payload = batch.event(range.clone(), &mut scratch);
            let payload_bytes = payload.len();
            let bisect_depth = retry.current().map_or(0, |s| s.bisect_depth);
            {
                let mut status = self.status.update();
                status.state = ShardState::Invoking;
                status.in_flight = Some(InFlight {
                    first_sequence_number: records[0].sequence_number.0.clone(),
                    last_sequence_number: records[records.len() - 1].sequence_number.0.clone(),
                    records: records.len(),
                    payload_bytes,
                    attempt,
                    bisect_depth,
                });
            }
            let started_ms = ctx.clock.now_ms();
            let result = self.invoke(records, payload).await;
            self.scratch = scratch;
            let Some(result) = result else {
                return BatchEnd::Interrupted;
            };
            let invoked: Vec<SequenceNumber> = if mapping.report_batch_item_failures {
                records.iter().map(|r| r.sequence_number.clone()).collect()
            } else {
                Vec::new()
            };
            let outcome = classify(&result, mapping.report_batch_item_failures, &invoked);
            if !matches!(outcome, Outcome::NotReached { .. }) {
                self.status.update().invocations += 1;
            }
            self.log_invocation(records, started_ms, payload_bytes, attempt, &outcome);
            let resolution = retry.on_outcome(&outcome);
            if let Some(succeeded) = resolution.succeeded {
                let mut status = self.status.update();
                status.records_succeeded += succeeded.len() as u64;
                drop(status);
                self.checkpoint(&batch.records[succeeded.end - 1]);
            }
            if let Some(discard) = &resolution.discarded {
                if !self.discard(batch, discard).await {
                    return BatchEnd::Interrupted;
                }
            }
            let wait_ms = match resolution.next {
                Next::Continue => 0,
                Next::RetryAfterFailure { failed_attempts } => {
                    not_reached_in_a_row = 0;
                    self.note_failure(&outcome, records);
                    self.status.update().state = ShardState::Retrying;
                    backoff_ms(
                        failed_attempts,
                        mapping.pace.retry_backoff_initial_ms,
                        mapping.pace.retry_backoff_max_ms,
                        self.rng.next_f64(),
                    )
                }
                Next::RetryNotCounted => {
                    not_reached_in_a_row += 1;
                    self.note_failure(&outcome, records);
                    let mut status = self.status.update();
                    status.state = ShardState::BackingOff;
                    status.invoke_throttles += 1;
                    drop(status);
                    backoff_ms(
                        not_reached_in_a_row,
                        mapping.pace.throttle_backoff_initial_ms,
                        mapping.pace.throttle_backoff_max_ms,
                        self.rng.next_f64(),
                    )
                }
            };
            if !matches!(resolution.next, Next::RetryNotCounted) {
                not_reached_in_a_row = 0;
            }
            if !ctx.sleep(wait_ms).await {
                return BatchEnd::Interrupted;
            }
        }
    }

    /// Invokes the target; on shutdown the in-flight invoke may still finish within the
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
            result = self.ctx.target.invoke(invocation) => Some(result),
            _ = async {
                cancel.cancelled().await;
                tokio::time::sleep(std::time::Duration::from_millis(grace_ms)).await;
            } => {
                tracing::warn!(shard = %self.shard_id, grace_ms, "shutdown: in-flight invocation abandoned; its records will be delivered again after a restart");
                None
            }
        }
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
            first_sequence_number: &records[0].sequence_number.0,
            last_sequence_number: &records[records.len() - 1].sequence_number.0,
            records: records.len(),
            payload_bytes,
            attempt,
            outcome: outcome.label(),
        });
    }

    fn note_failure(&self, outcome: &Outcome, records: &[StreamRecord]) {
        let detail = match outcome {
            Outcome::FunctionError {
                timed_out: true, ..
            } => "function timed out".to_string(),
            Outcome::FunctionError { response, .. } => {
                format!(
                    "function error {}",
                    response.function_error.as_deref().unwrap_or("Unhandled")
                )
            }
            Outcome::PartialFailure { first_failed, .. } => format!(
                "partial batch response: first failed record {}",
                records
                    .get(*first_failed)
                    .map_or("?", |r| r.sequence_number.as_str())
            ),
            Outcome::InvalidResponse { reason, .. } => format!("invalid batch response: {reason}"),
            Outcome::NotReached { reason } => {
                format!("invocation did not reach the function: {reason}")
            }
            Outcome::Success => return,
        };
        let first = &records[0].sequence_number;
        let last = &records[records.len() - 1].sequence_number;
        // A malformed answer is worth seeing at the default level; ordinary failures and
        // throttles are visible in the discard warnings and the progress lines.
        if matches!(outcome, Outcome::InvalidResponse { .. }) {
            tracing::warn!(shard = %self.shard_id, %first, %last, records = records.len(), "{detail}");
        } else {
            tracing::debug!(shard = %self.shard_id, %first, %last, records = records.len(), "{detail}");
        }
        self.status.update().last_error = Some(format!("{detail} (records {first}..={last})"));
    }

    /// Sends the failure record of a discard, then checkpoints past it; false on shutdown
    /// while a blocked destination was still failing.
    async fn discard(&mut self, batch: &Batch, discard: &Discard) -> bool {
        let ctx = self.ctx.clone();
        let records = &batch.records[discard.range.clone()];
        let (first, last) = (&records[0], &records[records.len() - 1]);
        let document = FailureRecord {
            request_id: self.rng.uuid(),
            function_arn: ctx.target.function_arn().to_string(),
            condition: discard.condition,
            approximate_invoke_count: discard.approximate_invoke_count,
            response: discard.response.clone(),
            timestamp_ms: ctx.clock.now_ms(),
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
        let delivery = ctx
            .delivery
            .deliver(&document, &mut self.rng, &ctx.cancel)
            .await;
        if delivery == Delivery::Abandoned {
            return false;
        }
        {
            let mut status = self.status.update();
            status.records_discarded += records.len() as u64;
            match delivery {
                Delivery::Delivered => status.destination_records += 1,
                _ => status.dead_lettered_records += 1,
            }
        }
        self.checkpoint(&records[records.len() - 1]);
        true
    }

    fn checkpoint(&self, last_done: &StreamRecord) {
        let checkpoint = Checkpoint::After(last_done.sequence_number.clone());
        if let Err(error) = self
            .ctx
            .store
            .save(&self.ctx.mapping.name, &self.shard_id, &checkpoint)
        {
            tracing::error!(shard = %self.shard_id, %error, "checkpoint not saved: a restart will deliver these records again");
        }
        let mut status = self.status.update();
        status.checkpoint = Some(checkpoint.encode());
        status.last_advance_ms = Some(self.ctx.clock.now_ms());
    }
}
