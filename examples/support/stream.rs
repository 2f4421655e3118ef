//! A fresh Kinesis stream for a benchmark: created, then waited for until ACTIVE (shared
//! by the drain and load benchmarks).

use std::time::Duration;

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
