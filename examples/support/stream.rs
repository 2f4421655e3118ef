//! A fresh Kinesis stream for a benchmark: the SDK client for a local server, and the
//! stream created, then waited for until ACTIVE (shared by the drain, load and latency
//! benchmarks).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_kinesis::config::Credentials;

/// The SDK's Kinesis client for a local server at `endpoint` (us-east-1, test keys).
pub async fn client(endpoint: &str) -> aws_sdk_kinesis::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .load()
        .await;
    aws_sdk_kinesis::Client::new(&sdk)
}

/// Creates stream `name` of `shards` shards and returns its ARN once it is ACTIVE.
pub async fn active_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> anyhow::Result<String> {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await?;
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await?;
        let d = summary
            .stream_description_summary()
            .ok_or_else(|| anyhow::anyhow!("no summary"))?;
        if d.stream_status().as_str() == "ACTIVE" {
            return Ok(d.stream_arn().to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
