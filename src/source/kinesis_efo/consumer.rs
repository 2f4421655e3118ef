//! The enhanced fan-out consumer's lifecycle at start: find the stream's consumer by
//! name or register it (taking over one registered meanwhile by someone else), then wait
//! until it is ACTIVE. Apart from the subscriptions because it runs once, before any
//! shard is read, and speaks only the control-plane calls.

use std::time::Duration;

use aws_sdk_kinesis::types::ConsumerStatus;
use tokio::time::Instant;

use crate::aws::{self, ErrorClass};

/// How long a consumer may stay CREATING at start before it is an error.
const CONSUMER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between DescribeStreamConsumer calls while waiting for ACTIVE.
const CONSUMER_POLL: Duration = Duration::from_millis(250);

/// The ARN of the stream's consumer `name`, registering it if the stream has none.
pub(super) async fn register_or_reuse(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
    name: &str,
) -> anyhow::Result<String> {
    let describe = || {
        client
            .describe_stream_consumer()
            .stream_arn(stream_arn)
            .consumer_name(name)
            .send()
    };
    match describe().await {
        Ok(output) => {
            if let Some(found) = output.consumer_description() {
                tracing::info!(consumer = %found.consumer_arn(), "reusing the enhanced fan-out consumer");
                return Ok(found.consumer_arn().to_string());
            }
        }
        Err(error) if aws::classify(&error) == ErrorClass::NotFound => {}
        Err(error) => anyhow::bail!(
            "DescribeStreamConsumer {name:?} of {stream_arn} failed: {}",
            aws::describe(&error)
        ),
    }
    match client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
    {
        Ok(output) => match output.consumer() {
            Some(consumer) if !consumer.consumer_arn().is_empty() => {
                tracing::info!(consumer = %consumer.consumer_arn(), "registered the enhanced fan-out consumer");
                Ok(consumer.consumer_arn().to_string())
            }
            _ => anyhow::bail!(
                "RegisterStreamConsumer {name:?} of {stream_arn} returned no ConsumerARN"
            ),
        },
        // Registered meanwhile by someone else: use theirs.
        Err(error) if aws::error_code(&error) == Some("ResourceInUseException") => {
            match describe().await.map(|o| o.consumer_description) {
                Ok(Some(found)) => Ok(found.consumer_arn),
                Ok(None) => anyhow::bail!(
                    "DescribeStreamConsumer {name:?} of {stream_arn} returned no ConsumerDescription"
                ),
                Err(error) => anyhow::bail!(
                    "DescribeStreamConsumer {name:?} of {stream_arn} failed: {}",
                    aws::describe(&error)
                ),
            }
        }
        Err(error) => anyhow::bail!(
            "RegisterStreamConsumer {name:?} of {stream_arn} failed: {}",
            aws::describe(&error)
        ),
    }
}

/// Polls DescribeStreamConsumer until the consumer is ACTIVE.
pub(super) async fn wait_until_active(
    client: &aws_sdk_kinesis::Client,
    consumer_arn: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONSUMER_ACTIVE_TIMEOUT;
    loop {
        let status = match client
            .describe_stream_consumer()
            .consumer_arn(consumer_arn)
            .send()
            .await
        {
            Ok(output) => output
                .consumer_description()
                .map(|d| d.consumer_status().clone()),
            Err(error) => match aws::classify(&error) {
                ErrorClass::NotFound => anyhow::bail!("Consumer not found: {consumer_arn}"),
                ErrorClass::Transient => None,
                ErrorClass::Permanent => anyhow::bail!(
                    "DescribeStreamConsumer {consumer_arn} failed: {}",
                    aws::describe(&error)
                ),
            },
        };
        match status {
            Some(ConsumerStatus::Active) => return Ok(()),
            Some(ConsumerStatus::Deleting) => {
                anyhow::bail!("consumer {consumer_arn} is being deleted")
            }
            _ if Instant::now() >= deadline => anyhow::bail!(
                "consumer {consumer_arn} not ACTIVE after {} s (status {status:?})",
                CONSUMER_ACTIVE_TIMEOUT.as_secs()
            ),
            _ => tokio::time::sleep(CONSUMER_POLL).await,
        }
    }
}
