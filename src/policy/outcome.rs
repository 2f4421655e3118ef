//! Classifies a function's answer into the outcomes of spec section 2.1 / 2.4.
//!
//! Without ReportBatchItemFailures the body is ignored; with it, the body is read with
//! `event::parse_batch_response`. A body that is not a valid batch response is a complete
//! failure of the batch; the function itself did not error, so its failure record carries
//! `functionError: null` [decision, README].

use crate::event::{parse_batch_response, BatchResponse, ResponseContext};
use crate::function::InvokeResult;
use crate::model::SequenceNumber;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No function error and, with ReportBatchItemFailures, no failures reported.
    Success,
    /// Error result, timeout or crash: the whole invoked range failed.
    FunctionError {
        response: ResponseContext,
        timed_out: bool,
    },
    /// A valid partial batch response: the records from `first_failed` (index within the
    /// invoked range) onwards are retried.
    PartialFailure {
        first_failed: usize,
        response: ResponseContext,
    },
    /// ReportBatchItemFailures is on and the body is not a valid batch response.
    InvalidResponse {
        reason: String,
        response: ResponseContext,
    },
    /// The invocation never reached the function.
    NotReached { reason: String },
}

impl Outcome {
    /// The invocation log's name for it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::FunctionError {
                timed_out: true, ..
            } => "timeout",
            Outcome::FunctionError { .. } => "function_error",
            Outcome::PartialFailure { .. } => "partial_failure",
            Outcome::InvalidResponse { .. } => "invalid_response",
            Outcome::NotReached { .. } => "throttled",
        }
    }
}

/// `invoked` are the sequence numbers of the invoked records, in order; they are only
/// consulted when `report_batch_item_failures` is on.
pub fn classify(
    result: &InvokeResult,
    report_batch_item_failures: bool,
    invoked: &[SequenceNumber],
) -> Outcome {
    let response = match result {
        InvokeResult::NotReached(reason) => {
            return Outcome::NotReached {
                reason: reason.clone(),
            }
        }
        InvokeResult::Response(response) => response,
    };
    let context = ResponseContext {
        status_code: response.status_code,
        executed_version: response.executed_version.clone(),
        function_error: response.function_error.clone(),
    };
    if response.function_error.is_some() {
        return Outcome::FunctionError {
            response: context,
            timed_out: response.timed_out,
        };
    }
    if !report_batch_item_failures {
        return Outcome::Success;
    }
    match parse_batch_response(&response.body, invoked) {
        BatchResponse::Success => Outcome::Success,
        BatchResponse::PartialFailure { first_failed_index } => Outcome::PartialFailure {
            first_failed: first_failed_index,
            response: context,
        },
        BatchResponse::Invalid { reason } => Outcome::InvalidResponse {
            reason,
            response: context,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::function::FunctionResponse;

    fn seqs(n: usize) -> Vec<SequenceNumber> {
        (1..=n).map(|i| SequenceNumber(i.to_string())).collect()
    }

    /// A 200 answer of `$LATEST` with `body`, with or without a function error.
    pub(crate) fn answer(function_error: Option<&str>, body: &str) -> InvokeResult {
        InvokeResult::Response(FunctionResponse::answered(
            function_error,
            body.as_bytes().to_vec(),
        ))
    }

    #[test]
    fn without_report_batch_item_failures_the_body_is_ignored() {
        let outcome = classify(
            &answer(None, r#"{"batchItemFailures":[{"itemIdentifier":"2"}]}"#),
            false,
            &seqs(3),
        );
        assert_eq!(outcome, Outcome::Success);
    }

    #[test]
    fn a_function_error_is_a_function_error_whatever_the_body() {
        let outcome = classify(
            &answer(Some("Unhandled"), r#"{"batchItemFailures":[]}"#),
            true,
            &seqs(3),
        );
        assert!(
            matches!(outcome, Outcome::FunctionError { ref response, timed_out: false }
            if response.function_error.as_deref() == Some("Unhandled"))
        );
    }

    #[test]
    fn a_partial_response_resumes_at_the_lowest_reported_record() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"3"},{"itemIdentifier":"2"}]}"#;
        let outcome = classify(&answer(None, body), true, &seqs(3));
        assert!(
            matches!(outcome, Outcome::PartialFailure { first_failed: 1, ref response }
            if response.function_error.is_none())
        );
    }

    #[test]
    fn a_malformed_batch_response_is_a_complete_failure_without_function_error() {
        let outcome = classify(&answer(None, r#"{"foo":123}"#), true, &seqs(3));
        assert!(
            matches!(outcome, Outcome::InvalidResponse { ref response, .. } if response.function_error.is_none())
        );
    }

    #[test]
    fn a_throttled_invocation_never_reached_the_function() {
        let outcome = classify(
            &InvokeResult::NotReached("TooManyRequests".into()),
            true,
            &seqs(1),
        );
        assert_eq!(outcome.label(), "throttled");
    }
}
