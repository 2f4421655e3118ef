//! One failure record's batch redriven: its sequence range read back from the shard,
//! then printed, reported (dry run) or sent to a function as the engine's own event, and
//! what became of it (`Verdict`) said in one report line. Apart from the CLI and from the
//! SQS / JSONL bookkeeping in `mod.rs`, so that it is tested against a fake shard.

use std::sync::Arc;

use crate::arn::Arn;
use crate::assemble::invoke_identity_arn;
use crate::event::{assemble_event, encode_record, BatchInfo, EventContext};
use crate::function::{Function, Invocation};
use crate::model::{SequenceNumber, StreamRecord};
use crate::ops::failure_source::KeptBatch;
use crate::ops::range::{read_range, Pace, Until};
use crate::policy::{classify, Outcome};
use crate::source::StreamSource;

/// What is done with each fetched batch.
pub(super) enum Action {
    Print { json: bool },
    DryRun,
    Invoke(Redriver),
}

/// A function and what its events need.
pub(super) struct Redriver {
    pub(super) function: Arc<dyn Function>,
    pub(super) function_name: String,
    pub(super) account_id: String,
    /// `awsRegion` when a stream ARN has none.
    pub(super) default_region: String,
    pub(super) report_batch_item_failures: bool,
}

impl Redriver {
    /// The event of `records` exactly as the engine builds it for this batch's shard.
    fn event(&self, batch: &BatchInfo, records: &[StreamRecord]) -> Vec<u8> {
        let ctx = EventContext {
            shard_id: batch.shard_id.clone(),
            event_source_arn: batch.stream_arn.as_str().into(),
            aws_region: Arn::parse(&batch.stream_arn)
                .ok()
                .and_then(|arn| arn.region())
                .unwrap_or(&self.default_region)
                .into(),
            invoke_identity_arn: invoke_identity_arn(&self.account_id, &self.function_name).into(),
        };
        let fragments: Vec<Vec<u8>> = records
            .iter()
            .map(|record| {
                let mut fragment = Vec::new();
                encode_record(&ctx, record, &mut fragment);
                fragment
            })
            .collect();
        let mut event = Vec::new();
        assemble_event(fragments.iter().map(Vec::as_slice), &mut event);
        event
    }

    async fn invoke(&self, batch: &BatchInfo, records: &[StreamRecord]) -> Outcome {
        let payload = self.event(batch, records);
        let invoked: Vec<SequenceNumber> =
            records.iter().map(|r| r.sequence_number.clone()).collect();
        self.invoke_event(batch, &payload, records, &invoked).await
    }

    /// Invokes with `event` as it is; `records` are what the function sees besides the
    /// bytes (none for a kept event: only a simulated function looks at them).
    async fn invoke_event(
        &self,
        batch: &BatchInfo,
        event: &[u8],
        records: &[StreamRecord],
        invoked: &[SequenceNumber],
    ) -> Outcome {
        let result = self
            .function
            .invoke(Invocation {
                shard_id: &batch.shard_id,
                payload: event,
                records,
            })
            .await;
        classify(&result, self.report_batch_item_failures, invoked)
    }
}

/// What became of one failure record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The document is not a failure record.
    Invalid(String),
    /// The stream or shard could not be read.
    ReadFailed(String),
    /// No record of the range is left in the stream.
    NothingLeft,
    Printed,
    DryRun,
    Invoked(Outcome),
}

impl Verdict {
    pub(super) fn succeeded(&self) -> bool {
        matches!(
            self,
            Verdict::Printed | Verdict::DryRun | Verdict::Invoked(Outcome::Success)
        )
    }

    fn describe(&self) -> String {
        match self {
            Verdict::Invalid(why) => format!("failed: {why}"),
            Verdict::ReadFailed(why) => format!("failed: {why}"),
            Verdict::NothingLeft => "failed: no record of the batch is left in the stream".into(),
            Verdict::Printed => "printed".into(),
            Verdict::DryRun => "dry run: not invoked".into(),
            Verdict::Invoked(Outcome::Success) => "success".into(),
            Verdict::Invoked(Outcome::NotReached { reason }) => {
                format!("failed: throttled or not reached ({reason})")
            }
            Verdict::Invoked(Outcome::InvalidResponse { reason, .. }) => {
                format!("failed: invalid_response ({reason})")
            }
            Verdict::Invoked(Outcome::PartialFailure { first_failed, .. }) => {
                format!("failed: partial_failure (from record {})", first_failed + 1)
            }
            Verdict::Invoked(other) => format!("failed: {}", other.label()),
        }
    }
}

/// One failure record handled: the report line and the records fetched.
pub(super) struct Handled {
    pub(super) verdict: Verdict,
    pub(super) line: String,
    pub(super) records: Vec<StreamRecord>,
}

impl Handled {
    /// A failure before any record was fetched.
    pub(super) fn failed(batch: Option<&BatchInfo>, verdict: Verdict) -> Handled {
        let line = match batch {
            Some(batch) => format!("{}: {}", range_of(batch), verdict.describe()),
            None => verdict.describe(),
        };
        Handled {
            verdict,
            line,
            records: Vec::new(),
        }
    }
}

/// `shardId start..end`, how a report line names a batch.
fn range_of(batch: &BatchInfo) -> String {
    format!(
        "{} {}..{}",
        batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
    )
}

/// Fetches `batch` from `source` and acts on it.
pub(super) async fn redrive_batch(
    source: &dyn StreamSource,
    batch: &BatchInfo,
    action: &Action,
    pace: Pace,
) -> Handled {
    let until = Until {
        to: Some(batch.end_sequence_number.clone()),
        count: None,
    };
    let records = match read_range(
        source,
        &batch.shard_id,
        &batch.start_sequence_number,
        &until,
        pace,
    )
    .await
    {
        Ok(read) => read.records,
        Err(error) => return Handled::failed(Some(batch), Verdict::ReadFailed(error.to_string())),
    };
    let mut line = format!(
        "{}: fetched {} of {} record(s)",
        range_of(batch),
        records.len(),
        batch.batch_size
    );
    if records.len() < batch.batch_size {
        line.push_str(&format!(
            "; trimmed: {} of {} records no longer in the stream",
            batch.batch_size - records.len(),
            batch.batch_size
        ));
    }
    let verdict = if records.is_empty() {
        Verdict::NothingLeft
    } else {
        match action {
            Action::Print { .. } => Verdict::Printed,
            Action::DryRun => Verdict::DryRun,
            Action::Invoke(redriver) => Verdict::Invoked(redriver.invoke(batch, &records).await),
        }
    };
    line.push_str(": ");
    line.push_str(&verdict.describe());
    Handled {
        verdict,
        line,
        records,
    }
}

/// Acts on a batch whose event was kept (an S3 object's `payload`), without reading the
/// stream: the event is invoked byte for byte as the engine first sent it.
pub(super) async fn redrive_kept(kept: &KeptBatch, action: &Action) -> Handled {
    let verdict = match action {
        Action::Print { .. } => Verdict::Printed,
        Action::DryRun => Verdict::DryRun,
        Action::Invoke(redriver) => Verdict::Invoked(
            redriver
                .invoke_event(&kept.batch, &kept.event, &[], &kept.invoked)
                .await,
        ),
    };
    let line = format!(
        "{}: {} record(s) from the object's payload: {}",
        range_of(&kept.batch),
        kept.invoked.len(),
        verdict.describe()
    );
    Handled {
        verdict,
        line,
        records: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::function::{FunctionResponse, InvokeResult};
    use crate::model::{RecordBody, ShardId, StreamKind};
    use crate::ops::range::tests::{record, seq, FakeShard};

    /// Records every payload; fails when a payload holds `fail_on`; answers `body`.
    struct Recorder {
        payloads: Mutex<Vec<Vec<u8>>>,
        fail_on: &'static str,
        body: String,
    }

    #[async_trait]
    impl Function for Recorder {
        fn function_arn(&self) -> &str {
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        }
        async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
            self.payloads
                .lock()
                .expect("lock")
                .push(invocation.payload.to_vec());
            let text = String::from_utf8_lossy(invocation.payload);
            let failed = !self.fail_on.is_empty() && text.contains(self.fail_on);
            InvokeResult::Response(FunctionResponse::answered(
                failed.then_some("Unhandled"),
                self.body.clone().into_bytes(),
            ))
        }
    }

    fn batch(start: u64, end: u64, size: usize) -> BatchInfo {
        BatchInfo {
            kind: StreamKind::Kinesis,
            shard_id: ShardId("shardId-000000000003".into()),
            start_sequence_number: seq(start),
            end_sequence_number: seq(end),
            first_arrival_ms: 0,
            last_arrival_ms: 0,
            batch_size: size,
            stream_arn: "arn:aws:kinesis:eu-west-1:111122223333:stream/orders".into(),
        }
    }

    fn redriver(fail_on: &'static str) -> (Arc<Recorder>, Action) {
        answering(fail_on, String::new(), false)
    }

    fn answering(
        fail_on: &'static str,
        body: String,
        report_batch_item_failures: bool,
    ) -> (Arc<Recorder>, Action) {
        let recorder = Arc::new(Recorder {
            payloads: Mutex::new(Vec::new()),
            fail_on,
            body,
        });
        let action = Action::Invoke(Redriver {
            function: recorder.clone(),
            function_name: "f".into(),
            account_id: "123456789012".into(),
            default_region: "us-east-1".into(),
            report_batch_item_failures,
        });
        (recorder, action)
    }

    #[tokio::test]
    async fn with_report_batch_item_failures_a_reported_record_fails_the_redrive() {
        let shard = FakeShard::new([1, 2, 3]);
        let body = format!(
            r#"{{"batchItemFailures":[{{"itemIdentifier":"{}"}}]}}"#,
            seq(2)
        );
        let (_, action) = answering("", body.clone(), true);
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert!(!handled.verdict.succeeded());
        assert!(
            handled
                .line
                .ends_with("failed: partial_failure (from record 2)"),
            "{}",
            handled.line
        );
        // Without the flag the body is not read: a success.
        let (_, action) = answering("", body, false);
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::Invoked(Outcome::Success));
    }

    fn fast() -> Pace {
        Pace {
            read_interval: std::time::Duration::ZERO,
            throttle_backoff: std::time::Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn the_event_is_the_engines_event_of_exactly_the_batchs_records() {
        let shard = FakeShard::new([10, 20, 30, 40, 50]);
        let (recorder, action) = redriver("");
        let b = batch(20, 40, 3);
        let handled = redrive_batch(&shard, &b, &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::Invoked(Outcome::Success));
        assert!(
            handled.line.ends_with("fetched 3 of 3 record(s): success"),
            "{}",
            handled.line
        );
        let payloads = recorder.payloads.lock().expect("lock").clone();
        assert_eq!(payloads.len(), 1);
        // What the engine sends for these records (the batcher's encoding of the same
        // fragments), with the engine's context for this stream and function.
        let ctx = EventContext {
            shard_id: b.shard_id.clone(),
            event_source_arn: b.stream_arn.as_str().into(),
            aws_region: "eu-west-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/f-role".into(),
        };
        let fragments: Vec<Vec<u8>> = [20, 30, 40]
            .map(|n| {
                let mut f = Vec::new();
                encode_record(&ctx, &record(n), &mut f);
                f
            })
            .to_vec();
        let mut expected = Vec::new();
        assemble_event(fragments.iter().map(Vec::as_slice), &mut expected);
        assert_eq!(payloads[0], expected);
        let event: serde_json::Value = serde_json::from_slice(&payloads[0]).expect("json");
        assert_eq!(event["Records"][0]["awsRegion"], "eu-west-1");
        assert_eq!(event["Records"][2]["kinesis"]["partitionKey"], "k40");
    }

    #[tokio::test]
    async fn a_trimmed_batch_is_redriven_with_what_is_left_and_says_how_many_are_gone() {
        // The batch was 10..40 (4 records); 10 and 20 have been trimmed since.
        let shard = FakeShard::new([30, 40, 50]);
        let (recorder, action) = redriver("");
        let handled = redrive_batch(&shard, &batch(10, 40, 4), &action, fast()).await;
        assert!(
            handled.line.contains("fetched 2 of 4 record(s); trimmed: 2 of 4 records no longer in the stream: success"),
            "{}",
            handled.line
        );
        let payload = recorder.payloads.lock().expect("lock")[0].clone();
        let event: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let seqs: Vec<&str> = event["Records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["kinesis"]["sequenceNumber"].as_str())
            .collect();
        assert_eq!(seqs, vec![seq(30).0.as_str(), seq(40).0.as_str()]);

        // Nothing left at all: a failure, and nothing is invoked.
        let shard = FakeShard::new([50]);
        let (recorder, action) = redriver("");
        let handled = redrive_batch(&shard, &batch(10, 40, 4), &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::NothingLeft);
        assert!(!handled.verdict.succeeded());
        assert!(handled.line.contains("trimmed: 4 of 4"), "{}", handled.line);
        assert!(recorder.payloads.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_function_error_fails_and_print_and_dry_run_do_not_invoke() {
        let shard = FakeShard::new([1, 2, 3]);
        let (_, action) = redriver("k2");
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert!(!handled.verdict.succeeded());
        assert!(
            handled.line.ends_with("failed: function_error"),
            "{}",
            handled.line
        );
        for action in [Action::DryRun, Action::Print { json: false }] {
            let handled = redrive_batch(&shard, &batch(1, 2, 2), &action, fast()).await;
            assert!(handled.verdict.succeeded());
            assert_eq!(handled.records.len(), 2);
            assert!(matches!(
                handled.records[0].body,
                RecordBody::Kinesis { .. }
            ));
        }
    }
}
