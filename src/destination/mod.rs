//! The on-failure destination seam: where the metadata of a discarded batch is sent.
//!
//! A destination only sends one JSON document; retrying, the dead-letter fallback and the
//! counting around it live in `delivery.rs`, so every destination gets them alike.

pub mod delivery;
pub mod file;
pub mod sns;
pub mod sqs;

use async_trait::async_trait;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DestinationError(pub String);

#[async_trait]
pub trait FailureDestination: Send + Sync {
    /// Where the records go, for logs (an ARN or a file path).
    fn describe(&self) -> String;
    async fn send(&self, document: &[u8]) -> Result<(), DestinationError>;
}
