//! The retry state machine of one batch (spec section 2.1), as pure data.
//!
//! A batch is a run of records `0..len` in sequence order. Its unresolved part is a queue of
//! segments; the front segment is the one being invoked. Every record is resolved exactly
//! once, as succeeded or discarded, and always in order, so the resolved records form a
//! growing prefix of the batch and the checkpoint can follow it. The caller drives it:
//!
//! ```text
//! loop { match next_step(arrivals, now) {
//!     Invoke{range}  => invoke the function, then on_outcome(outcome) -> Resolution
//!     Discard(d)     => send d's failure record, checkpoint after d.range
//!     Done           => the batch is finished } }
//! ```
//!
//! Rules, in the order they apply:
//! - before every invoke, retries included, records at the front whose age is at or past
//!   MaximumRecordAgeInSeconds are split off and discarded as `RecordAgeExceeded` (this runs
//!   before the retry-limit check);
//! - an invocation that never reached the function is retried without counting;
//! - success resolves the segment; a partial failure resolves the records before the lowest
//!   reported one and counts a failed attempt for the rest;
//! - a function error (or an invalid batch response) with BisectBatchOnFunctionError on a
//!   segment of more than one record splits it: first half `ceil(n/2)`, both halves start
//!   again at 0 failed attempts [decision];
//! - otherwise, more failed attempts than MaximumRetryAttempts discards the segment as
//!   `RetryAttemptsExhausted`; else it is retried.
//!
//! `invocations` counts every invocation whose payload held the segment's records (splits
//! inherit it), which is what `approximateInvokeCount` reports (at least 1).

use std::collections::VecDeque;
use std::ops::Range;

use crate::event::{Condition, ResponseContext};

use super::outcome::Outcome;

/// The mapping parameters the decisions depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryLimits {
    /// `None` is -1: retry until the records expire.
    pub maximum_retry_attempts: Option<u32>,
    /// `None` is -1: records never expire.
    pub maximum_record_age_ms: Option<i64>,
    pub bisect_on_function_error: bool,
}

/// An unresolved run of records of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    /// Failed attempts since this segment was last split off.
    pub failed_attempts: u32,
    /// Invocations whose payload held these records.
    pub invocations: u32,
    /// How many bisections led to this segment.
    pub bisect_depth: u32,
    /// The last failed invocation's response, for the failure record.
    pub last_response: Option<ResponseContext>,
}

impl Segment {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// What the caller does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Invoke the function with these records; `attempt` is 1 for the first try of the segment.
    Invoke { range: Range<usize>, attempt: u32 },
    /// Send these records' failure record and checkpoint past them.
    Discard(Discard),
    /// Every record is resolved.
    Done,
}

/// Records discarded, with what their failure record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discard {
    pub range: Range<usize>,
    pub condition: Condition,
    pub approximate_invoke_count: u32,
    /// `None` for RecordAgeExceeded: that record has no `responseContext`.
    pub response: Option<ResponseContext>,
}

/// What to do before the next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Go on at once (success, discard, split).
    Continue,
    /// A counted failure: back off (this is the `failed_attempts`-th failure), then retry.
    RetryAfterFailure { failed_attempts: u32 },
    /// The function was not reached: back off without counting, then retry.
    RetryNotCounted,
}

/// The effect of one outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub succeeded: Option<Range<usize>>,
    pub discarded: Option<Discard>,
    /// The segment was split in two.
    pub bisected: bool,
    pub next: Next,
}

#[derive(Clone, Debug)]
pub struct BatchRetry {
    limits: RetryLimits,
    segments: VecDeque<Segment>,
}

impl BatchRetry {
    pub fn new(len: usize, limits: RetryLimits) -> Self {
        let mut segments = VecDeque::new();
        if len > 0 {
            segments.push_back(Segment {
                start: 0,
                end: len,
                failed_attempts: 0,
                invocations: 0,
                bisect_depth: 0,
                last_response: None,
            });
        }
        BatchRetry { limits, segments }
    }

    /// The segment being worked on.
    pub fn current(&self) -> Option<&Segment> {
        self.segments.front()
    }

    /// The next step; `arrivals_ms[i]` is record i's approximate arrival time.
    pub fn next_step(&mut self, arrivals_ms: &[i64], now_ms: i64) -> Step {
        let Some(front) = self.segments.front_mut() else {
            return Step::Done;
        };
        if let Some(max_age) = self.limits.maximum_record_age_ms {
            let expired = arrivals_ms[front.start..front.end]
                .iter()
                .take_while(|&&arrival| now_ms.saturating_sub(arrival) >= max_age)
                .count();
            if expired > 0 {
                let range = front.start..front.start + expired;
                let discard = Discard {
                    range: range.clone(),
                    condition: Condition::RecordAgeExceeded,
                    approximate_invoke_count: front.invocations.max(1),
                    response: None,
                };
                front.start = range.end;
                if front.start == front.end {
                    self.segments.pop_front();
                }
                return Step::Discard(discard);
            }
        }
        Step::Invoke {
            range: front.start..front.end,
            attempt: front.failed_attempts + 1,
        }
    }

    /// Applies the outcome of invoking the current segment.
    pub fn on_outcome(&mut self, outcome: &Outcome) -> Resolution {
        let mut resolution = Resolution {
            succeeded: None,
            discarded: None,
            bisected: false,
            next: Next::Continue,
        };
        let Some(front) = self.segments.front_mut() else {
            return resolution;
        };
        let response = match outcome {
            Outcome::NotReached { .. } => {
                resolution.next = Next::RetryNotCounted;
                return resolution;
            }
            Outcome::Success => {
                front.invocations += 1;
                resolution.succeeded = Some(front.start..front.end);
                self.segments.pop_front();
                return resolution;
            }
            Outcome::PartialFailure {
                first_failed,
                response,
            } => {
                front.invocations += 1;
                front.failed_attempts += 1;
                let cut = (front.start + first_failed).min(front.end);
                if cut > front.start {
                    resolution.succeeded = Some(front.start..cut);
                    front.start = cut;
                }
                front.last_response = Some(response.clone());
                return self.retry_or_discard(resolution);
            }
            Outcome::FunctionError { response, .. } | Outcome::InvalidResponse { response, .. } => {
                response
            }
        };
        front.invocations += 1;
        front.failed_attempts += 1;
        front.last_response = Some(response.clone());
        if self.limits.bisect_on_function_error && front.len() > 1 {
            let mid = front.start + front.len().div_ceil(2);
            let second = Segment {
                start: mid,
                end: front.end,
                failed_attempts: 0,
                invocations: front.invocations,
                bisect_depth: front.bisect_depth + 1,
                last_response: front.last_response.clone(),
            };
            front.end = mid;
            front.failed_attempts = 0;
            front.bisect_depth += 1;
            self.segments.insert(1, second);
            resolution.bisected = true;
            return resolution;
        }
        self.retry_or_discard(resolution)
    }

    /// An operator's skip: the segment being worked on (the records that block the
    /// shard) is discarded now, with what its failures so far say. Later segments of a
    /// bisected batch are still processed.
    pub fn skip_current(&mut self) -> Option<Discard> {
        let front = self.segments.pop_front()?;
        Some(Discard {
            range: front.start..front.end,
            condition: Condition::SkippedByOperator,
            approximate_invoke_count: front.invocations,
            response: front.last_response,
        })
    }

    fn retry_or_discard(&mut self, mut resolution: Resolution) -> Resolution {
        let Some(front) = self.segments.front() else {
            return resolution;
        };
        let exhausted = self
            .limits
            .maximum_retry_attempts
            .is_some_and(|max| front.failed_attempts > max);
        if exhausted {
            resolution.discarded = Some(Discard {
                range: front.start..front.end,
                condition: Condition::RetryAttemptsExhausted,
                approximate_invoke_count: front.invocations.max(1),
                response: front.last_response.clone(),
            });
            self.segments.pop_front();
        } else {
            resolution.next = Next::RetryAfterFailure {
                failed_attempts: front.failed_attempts,
            };
        }
        resolution
    }
}

#[cfg(test)]
mod tests;
