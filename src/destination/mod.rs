//! The on-failure destination seam: where the metadata of a discarded batch is sent.
//!
//! A destination sends one `DiscardedBatch`: the failure record document (all that SQS,
//! SNS and files carry) with the event the function was invoked with, which only S3 keeps
//! (Lambda writes the whole invocation record there). Retrying, the dead-letter fallback and the
//! counting around it live in `delivery.rs`, so every destination gets them alike. The
//! two AWS destinations (SQS, SNS) word their errors alike with the helpers below.

pub mod delivery;
pub mod file;
pub mod s3;
pub mod sns;
pub mod sqs;

use async_trait::async_trait;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DestinationError(pub String);

/// What a destination receives for one discarded batch.
#[derive(Clone, Copy, Debug)]
pub struct DiscardedBatch<'a> {
    /// The failure record (spec 3.3), one JSON document.
    pub document: &'a [u8],
    /// The event of the discarded records, byte for byte as the function got it.
    pub event: &'a [u8],
    pub shard_id: &'a str,
    /// When the failure record was made (its `timestamp`), epoch milliseconds.
    pub timestamp_ms: i64,
}

#[async_trait]
pub trait FailureDestination: Send + Sync {
    /// Where the records go, for logs (an ARN or a file path).
    fn describe(&self) -> String;
    async fn send(&self, batch: &DiscardedBatch<'_>) -> Result<(), DestinationError>;
}

/// A failure record as the text an SQS message or SNS notification carries (`carried_as`:
/// "SQS message bodies are text").
fn as_text<'a>(
    arn: &str,
    document: &'a [u8],
    carried_as: &str,
) -> Result<&'a str, DestinationError> {
    std::str::from_utf8(document).map_err(|e| {
        DestinationError(format!(
            "failure record for {arn} is not UTF-8 ({e}); {carried_as}"
        ))
    })
}

/// A send that failed: "<call> to <arn> failed[ (the <what> no longer exists)]: <error>".
fn send_failed(call: &str, arn: &str, gone: Option<&str>, error: String) -> DestinationError {
    let gone = gone.map_or(String::new(), |what| {
        format!(" (the {what} no longer exists)")
    });
    DestinationError(format!("{call} to {arn} failed{gone}: {error}"))
}

/// The start-up lookup of an AWS destination failed: "<Kind> not found: <arn>" when it is
/// missing, else "cannot look up the <service> <kind> <arn>: <error>".
fn lookup_failed(
    missing: bool,
    service: &str,
    kind: &str,
    arn: &str,
    error: String,
) -> anyhow::Error {
    if missing {
        let mut kind_title = kind.to_string();
        kind_title[..1].make_ascii_uppercase();
        anyhow::anyhow!("{kind_title} not found: {arn}")
    } else {
        anyhow::anyhow!("cannot look up the {service} {kind} {arn}: {error}")
    }
}
