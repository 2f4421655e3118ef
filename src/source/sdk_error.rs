//! An AWS SDK error as the engine sees it, for both GetRecords sources (Kinesis and
//! DynamoDB Streams): one classification, so the two services' throttles, expired
//! iterators and refused iterators mean the same to the shard task.
//!
//! Errors are classified only by `aws::classify`, plus the one code the engine treats
//! specially (`ExpiredIteratorException`). A 5xx without an error code (the local servers'
//! answer to a malformed iterator: kinesis-local a bare HTTP 500, moto an HTML page) is
//! `Other`, not a throttle: the service did not say "slow down" (AWS's throttles carry a
//! code), it failed on this very request, where AWS answers InvalidArgumentException.
//! `Other` still backs off without counting, and lets the engine re-open an iterator that
//! is refused the same way again and again.
//!
//! `connect_error` is the other end: the one call a source makes at start to find its
//! stream, where a missing stream is an error that names it, for the user.

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::SourceError;
use crate::aws::{self, ErrorClass};

pub(crate) fn source_error<E>(error: &SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if aws::error_code(error) == Some("ExpiredIteratorException") {
        return SourceError::ExpiredIterator;
    }
    let mut text = aws::describe(error);
    // Without an error code the status is the only clue left.
    let mut codeless_5xx = false;
    if aws::error_code(error).is_none() {
        if let Some(raw) = error.raw_response() {
            let status = raw.status().as_u16();
            text.push_str(&format!(" (HTTP {status})"));
            codeless_5xx = status >= 500;
        }
    }
    match aws::classify(error) {
        ErrorClass::Transient if codeless_5xx => SourceError::Other(text),
        ErrorClass::Transient => SourceError::Throttled(text),
        ErrorClass::NotFound => SourceError::NotFound(text),
        ErrorClass::Permanent => SourceError::Other(text),
    }
}

/// A failed start-up call (`call`, e.g. "DescribeStream of DynamoDB stream") on `stream`:
/// "Stream not found: <stream>" when the service says it is missing, else
/// "<call> <stream> failed: <error>".
pub(crate) fn connect_error<E>(
    error: &SdkError<E, HttpResponse>,
    call: &str,
    stream: &str,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if aws::classify(error) == ErrorClass::NotFound {
        return anyhow::anyhow!("Stream not found: {stream}");
    }
    anyhow::anyhow!("{call} {stream} failed: {}", aws::describe(error))
}
