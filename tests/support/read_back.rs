//! Reading a stream back with the SDK directly, not through esm-sim: what a test wrote
//! (or the load generator put), to compare with what esm-sim read or reported.
//!
//! Every shard is read from TRIM_HORIZON until a page comes back empty: the local servers
//! never end an open shard's iterator, so an empty answer means caught up.

/// Every record of the Kinesis stream `arn`, shard by shard (each in sequence order).
pub async fn kinesis_records(
    client: &aws_sdk_kinesis::Client,
    arn: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let shards = client
        .list_shards()
        .stream_arn(arn)
        .send()
        .await
        .expect("ListShards");
    let mut records = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .map(String::from);
        while let Some(it) = iterator {
            // moto needs the stream named besides the iterator.
            let output = client
                .get_records()
                .stream_arn(arn)
                .shard_iterator(it)
                .send()
                .await
                .expect("GetRecords");
            iterator = if output.records().is_empty() {
                None
            } else {
                output.next_shard_iterator().map(String::from)
            };
            records.extend(output.records);
        }
    }
    records
}

/// Every record of the DynamoDB stream `arn` with its shard id, shard by shard (each in
/// sequence order).
pub async fn dynamodb_records(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> Vec<(String, aws_sdk_dynamodbstreams::types::Record)> {
    let description = client
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .expect("DescribeStream");
    let shards = description
        .stream_description()
        .expect("a description")
        .shards();
    let mut records = Vec::new();
    for shard in shards {
        let shard_id = shard.shard_id().expect("a shard id").to_string();
        let mut iterator = client
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(&shard_id)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .map(String::from);
        while let Some(it) = iterator {
            let output = client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .expect("GetRecords");
            iterator = if output.records().is_empty() {
                None
            } else {
                output.next_shard_iterator().map(String::from)
            };
            records.extend(
                output
                    .records
                    .into_iter()
                    .flatten()
                    .map(|r| (shard_id.clone(), r)),
            );
        }
    }
    records
}
