//! Delivering a failure record: the destination with bounded retries, then the spec's
//! `on_destination_failure` decision (section 2.1).
//!
//! AWS drops records whose destination send fails. We retry with backoff for
//! `destination_retry_ms` first; then, by default (`dead_letter`), count the records as
//! dropped like AWS but append the failure record to the local dead-letter file, so no
//! metadata is lost silently. With `block`, the shard waits until the send works. With no
//! destination configured at all, the record goes to the dead-letter file too [decision].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::file::JsonlFile;
use super::FailureDestination;
use crate::config::OnDestinationFailure;
use crate::policy::backoff::backoff_ms;
use crate::rng::Rng;

/// How a failure record ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The on-failure destination took it.
    Delivered,
    /// It is in the dead-letter file; `reason` says why it is not at the destination.
    DeadLettered { reason: String },
    /// Shutdown came while a blocked send was still failing: nothing was written, and the
    /// batch stays before the checkpoint, to be processed again after a restart.
    Abandoned,
}

pub struct FailureDelivery {
    pub destination: Option<Arc<dyn FailureDestination>>,
    pub dead_letter: Arc<JsonlFile>,
    pub on_failure: OnDestinationFailure,
    pub retry_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl FailureDelivery {
    pub async fn deliver(
        &self,
        document: &[u8],
        rng: &mut Rng,
        cancel: &CancellationToken,
    ) -> Delivery {
        let Some(destination) = &self.destination else {
            return self.dead_letter(document, "no on-failure destination is configured".into());
        };
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match destination.send(document).await {
                Ok(()) => return Delivery::Delivered,
                Err(error) => error,
            };
            let waited = started.elapsed().as_millis() as u64;
            tracing::warn!(destination = %destination.describe(), attempt, %error, "on-failure destination send failed");
            if self.on_failure == OnDestinationFailure::DeadLetter && waited >= self.retry_ms {
                return self.dead_letter(
                    document,
                    format!("{} failed for {waited} ms: {error}", destination.describe()),
                );
            }
            let wait = backoff_ms(
                attempt,
                self.backoff_initial_ms,
                self.backoff_max_ms,
                rng.next_f64(),
            );
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Delivery::Abandoned,
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
        }
    }

    fn dead_letter(&self, document: &[u8], reason: String) -> Delivery {
        match self.dead_letter.append(document) {
            Ok(()) => {
                tracing::warn!(file = %self.dead_letter.path().display(), %reason, "failure record written to the dead-letter file")
            }
            Err(error) => {
                tracing::error!(%error, record = %String::from_utf8_lossy(document), %reason,
                "failure record could not be written to the dead-letter file either; it is in this log line only")
            }
        }
        Delivery::DeadLettered { reason }
    }
}
