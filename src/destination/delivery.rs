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
use super::{DiscardedBatch, FailureDestination};
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

#[derive(Clone)]
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
        batch: &DiscardedBatch<'_>,
        rng: &mut Rng,
        cancel: &CancellationToken,
    ) -> Delivery {
        let Some(destination) = &self.destination else {
            return self.dead_letter(
                batch.document,
                "no on-failure destination is configured".into(),
            );
        };
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match destination.send(batch).await {
                Ok(()) => return Delivery::Delivered,
                Err(error) => error,
            };
            let waited = started.elapsed().as_millis() as u64;
            tracing::warn!(destination = %destination.describe(), attempt, %error, "on-failure destination send failed");
            if self.on_failure == OnDestinationFailure::DeadLetter && waited >= self.retry_ms {
                return self.dead_letter(
                    batch.document,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::file::LineSync;
    use crate::destination::DestinationError;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A destination that fails its first `failures` sends.
    struct Flaky {
        failures: u32,
        sends: AtomicU32,
    }

    #[async_trait]
    impl FailureDestination for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }

        async fn send(&self, _batch: &DiscardedBatch<'_>) -> Result<(), DestinationError> {
            let n = self.sends.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                Err(DestinationError("503 Service Unavailable".into()))
            } else {
                Ok(())
            }
        }
    }

    fn delivery(
        failures: u32,
        on_failure: OnDestinationFailure,
        dir: &tempfile::TempDir,
    ) -> (FailureDelivery, Arc<Flaky>) {
        let flaky = Arc::new(Flaky {
            failures,
            sends: AtomicU32::new(0),
        });
        let delivery = FailureDelivery {
            destination: Some(flaky.clone()),
            dead_letter: Arc::new(
                JsonlFile::open(&dir.path().join("dead-letter.jsonl"), LineSync::None)
                    .expect("open"),
            ),
            on_failure,
            retry_ms: 10_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
        };
        (delivery, flaky)
    }

    /// A discarded batch whose failure record is `document`.
    fn discarded(document: &[u8]) -> DiscardedBatch<'_> {
        DiscardedBatch {
            document,
            event: b"{}",
            shard_id: "shardId-000000000000",
            timestamp_ms: 0,
        }
    }

    fn dead_letters(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_destination_failure_is_retried_until_the_send_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (delivery, flaky) = delivery(3, OnDestinationFailure::DeadLetter, &dir);
        let outcome = delivery
            .deliver(
                &discarded(b"{}"),
                &mut Rng::new(1),
                &CancellationToken::new(),
            )
            .await;
        assert_eq!(outcome, Delivery::Delivered);
        assert_eq!(flaky.sends.load(Ordering::SeqCst), 4);
        assert_eq!(dead_letters(&dir), "");
    }

    #[tokio::test(start_paused = true)]
    async fn a_destination_that_keeps_failing_sends_the_record_to_the_dead_letter_file_after_the_retry_time(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (delivery, _) = delivery(u32::MAX, OnDestinationFailure::DeadLetter, &dir);
        let started = tokio::time::Instant::now();
        let outcome = delivery
            .deliver(
                &discarded(br#"{"a":1}"#),
                &mut Rng::new(1),
                &CancellationToken::new(),
            )
            .await;
        assert!(
            matches!(outcome, Delivery::DeadLettered { ref reason } if reason.contains("503")),
            "{outcome:?}"
        );
        assert!(
            started.elapsed().as_millis() >= 10_000,
            "retried for the whole retry time"
        );
        assert_eq!(dead_letters(&dir), "{\"a\":1}\n");
    }

    #[tokio::test(start_paused = true)]
    async fn with_block_a_failing_destination_holds_until_shutdown_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (delivery, flaky) = delivery(u32::MAX, OnDestinationFailure::Block, &dir);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
            stop.cancel();
        });
        let outcome = delivery
            .deliver(&discarded(b"{}"), &mut Rng::new(1), &cancel)
            .await;
        assert_eq!(outcome, Delivery::Abandoned);
        assert!(
            flaky.sends.load(Ordering::SeqCst) > 100,
            "kept trying for the hour"
        );
        assert_eq!(dead_letters(&dir), "");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_destination_the_record_goes_to_the_dead_letter_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut delivery, _) = delivery(0, OnDestinationFailure::DeadLetter, &dir);
        delivery.destination = None;
        let outcome = delivery
            .deliver(
                &discarded(b"{}"),
                &mut Rng::new(1),
                &CancellationToken::new(),
            )
            .await;
        assert!(matches!(outcome, Delivery::DeadLettered { .. }));
        assert_eq!(dead_letters(&dir), "{}\n");
    }
}
