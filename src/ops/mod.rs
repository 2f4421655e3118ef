//! Operator commands on real streams: `esm-sim inspect` (print a shard's records by
//! sequence number) and `esm-sim redrive` (read on-failure records back, fetch their
//! batches from the stream and print them or invoke a function with them again).
//!
//! AWS gives users only the sequence numbers of a discarded batch; these commands turn
//! those numbers back into records. They read with the engine's own sources
//! (`source::kinesis`, `source::dynamodb_streams`) and build events with the engine's
//! encoders, so a redriven batch is byte for byte what the mapping would send. Files, pure
//! first: `range` (reading a sequence range through the `StreamSource` trait), `show`
//! (printing records), `failure_source` (finding failure records in SQS messages and JSONL
//! lines), then the two commands. Each command runs on its own Tokio runtime and takes the
//! `--endpoint-url` / `--region` flags of the load commands.

pub mod failure_source;
pub mod inspect;
pub mod lease_import;
pub mod leases;
pub mod range;
pub mod redrive;
pub mod show;

use std::sync::Arc;

pub use inspect::InspectArgs;
pub use redrive::RedriveArgs;

use crate::arn::Arn;
use crate::aws::AwsFactory;
use crate::model::StreamKind;
use crate::source::dynamodb_streams::DynamodbStreamsSource;
use crate::source::kinesis::KinesisSource;
use crate::source::StreamSource;

/// The kind of a stream named by the user: a DynamoDB stream ARN (service `dynamodb`), or
/// else a Kinesis stream (ARN or name).
pub fn kind_of(stream: &str) -> StreamKind {
    if Arn::parse(stream).is_ok_and(|arn| arn.service() == "dynamodb") {
        StreamKind::Dynamodb
    } else {
        StreamKind::Kinesis
    }
}

/// The engine's source for a real stream ("Stream not found: <stream>" when it is missing).
pub async fn connect_source(
    factory: &AwsFactory,
    stream: &str,
    kind: StreamKind,
) -> anyhow::Result<Arc<dyn StreamSource>> {
    Ok(match kind {
        StreamKind::Kinesis => Arc::new(KinesisSource::connect(factory, stream).await?),
        StreamKind::Dynamodb => Arc::new(DynamodbStreamsSource::connect(factory, stream).await?),
    })
}

/// Runs `work` on a new multi-threaded runtime.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamodb_stream_arn_is_dynamodb_and_anything_else_kinesis() {
        let ddb = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000";
        assert_eq!(kind_of(ddb), StreamKind::Dynamodb);
        assert_eq!(
            kind_of("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
            StreamKind::Kinesis
        );
        assert_eq!(kind_of("orders"), StreamKind::Kinesis);
    }
}
