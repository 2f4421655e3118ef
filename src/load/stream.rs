//! Finding the Kinesis stream a command writes to or reads from, by name or ARN.
//!
//! One DescribeStreamSummary, with `StreamARN` when given an ARN and `StreamName`
//! otherwise, answers both whether the stream exists and its ARN; every later call uses
//! the ARN, so a stream in another account or region is addressed exactly. A stream still
//! being created is waited for (a test or script that has just called CreateStream can run
//! a load right away). Kept here rather than shared with the engine's source so that the
//! load commands depend only on `crate::aws`.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::StreamStatus;

use crate::aws::{self, ErrorClass};
use crate::source::kinesis::describe_stream_summary;

/// How long a stream in CREATING is waited for.
const ACTIVE_WAIT: Duration = Duration::from_secs(60);
const ACTIVE_POLL: Duration = Duration::from_millis(250);

/// A resolved stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTarget {
    pub name: String,
    pub arn: String,
}

/// The error for a stream that does not exist: `Stream not found: <what the user gave>`.
pub fn not_found(name_or_arn: &str) -> anyhow::Error {
    anyhow::anyhow!("Stream not found: {name_or_arn}")
}

/// Resolves `name_or_arn` with DescribeStreamSummary, waiting while it is created.
/// A missing or deleting stream is `Stream not found: <name_or_arn>`.
pub async fn resolve_stream(
    client: &aws_sdk_kinesis::Client,
    name_or_arn: &str,
) -> anyhow::Result<StreamTarget> {
    let deadline = Instant::now() + ACTIVE_WAIT;
    loop {
        let output = match describe_stream_summary(client, name_or_arn).send().await {
            Ok(output) => output,
            Err(error) => {
                return Err(match aws::classify(&error) {
                    ErrorClass::NotFound => not_found(name_or_arn),
                    _ => anyhow::anyhow!(
                        "DescribeStreamSummary {name_or_arn}: {}",
                        aws::describe(&error)
                    ),
                })
            }
        };
        let Some(summary) = output.stream_description_summary() else {
            anyhow::bail!("DescribeStreamSummary {name_or_arn}: the answer has no stream");
        };
        match summary.stream_status() {
            // An updating stream (a reshard, a retention change) takes reads and writes.
            StreamStatus::Active | StreamStatus::Updating => {
                return Ok(StreamTarget {
                    name: summary.stream_name().to_string(),
                    arn: summary.stream_arn().to_string(),
                })
            }
            StreamStatus::Deleting => return Err(not_found(name_or_arn)),
            status if Instant::now() >= deadline => anyhow::bail!(
                "stream {name_or_arn} is still {} after {} s",
                status.as_str(),
                ACTIVE_WAIT.as_secs()
            ),
            _ => tokio::time::sleep(ACTIVE_POLL).await,
        }
    }
}
