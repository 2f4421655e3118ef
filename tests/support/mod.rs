//! What the integration tests against real local servers share: where the servers are,
//! SDK configs for them, unique resource names, and the resources the tests make on them
//! (streams, records, tables, queues; `stream` for one that deletes itself). The in-process
//! daemon is in `daemon`, its config text in `daemon_config`, the binary in `binary`, an
//! HTTP server in `http_server`, a fault-injecting proxy in front of moto in
//! `fault_proxy`, reading a stream back with the SDK in `read_back`.
//!
//! The servers (kinesis-local for Kinesis; moto for SQS, SNS, DynamoDB and DynamoDB
//! Streams) are installed, started on 127.0.0.1 and stopped by `scripts/test.sh`, which
//! passes their endpoints in `ESM_SIM_TEST_KINESIS_ENDPOINT` and
//! `ESM_SIM_TEST_MOTO_ENDPOINT`. A test never skips when they are missing: it fails and
//! says how to run it.
#![allow(dead_code)]

pub mod binary;
pub mod boto3;
pub mod daemon;
pub mod daemon_config;
pub mod fault_proxy;
pub mod http_server;
pub mod read_back;
pub mod stream;

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::Credentials;

fn endpoint(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run the tests with scripts/test.sh, which installs and starts the local AWS servers")
    })
}

/// kinesis-local's endpoint (Kinesis).
pub fn kinesis_endpoint() -> String {
    endpoint("ESM_SIM_TEST_KINESIS_ENDPOINT")
}

/// moto's endpoint (SQS, SNS, DynamoDB, DynamoDB Streams, and a second Kinesis).
pub fn moto_endpoint() -> String {
    endpoint("ESM_SIM_TEST_MOTO_ENDPOINT")
}

/// An SDK config for a local server: us-east-1, static test credentials.
pub async fn sdk_config(endpoint_url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "esm-sim-tests",
        ))
        .load()
        .await
}

/// A Kinesis client for kinesis-local.
pub async fn kinesis_client() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(&kinesis_endpoint()).await)
}

/// A DynamoDB Streams client for moto.
pub async fn dynamodb_streams_client() -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&sdk_config(&moto_endpoint()).await)
}

/// The wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The JSON lines of a file (a failure file, the dead-letter file, an invocation log):
/// none when it does not exist; blank lines skipped.
pub fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Polls DescribeStreamSummary until the stream (name or ARN) is ACTIVE; returns its ARN.
pub async fn wait_active(client: &aws_sdk_kinesis::Client, name_or_arn: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let request = client.describe_stream_summary();
        let request = if name_or_arn.starts_with("arn:") {
            request.stream_arn(name_or_arn)
        } else {
            request.stream_name(name_or_arn)
        };
        let out = request.send().await.expect("DescribeStreamSummary");
        let summary = out.stream_description_summary().expect("a summary");
        if summary.stream_status() == &aws_sdk_kinesis::types::StreamStatus::Active {
            return summary.stream_arn().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream {name_or_arn} not ACTIVE after 30 s (status {:?})",
            summary.stream_status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Creates a Kinesis stream of `shards` shards and waits until it is ACTIVE; returns its ARN.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) -> String {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name}: {e:?}"));
    wait_active(client, name).await
}

/// Deletes a Kinesis stream (by ARN). kinesis-local holds at most 50 open shards and has
/// no reset: every test deletes its streams once it has read what it needs.
pub async fn delete_stream(client: &aws_sdk_kinesis::Client, stream_arn: &str) {
    client
        .delete_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("DeleteStream");
}

/// Where PutRecord put a record.
pub struct RecordPut {
    pub shard_id: String,
    pub sequence_number: String,
}

/// Puts one record into a Kinesis stream (by ARN).
pub async fn put_record(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
    key: &str,
    data: impl AsRef<[u8]>,
) -> RecordPut {
    let out = client
        .put_record()
        .stream_arn(stream_arn)
        .partition_key(key)
        .data(aws_sdk_kinesis::primitives::Blob::new(
            data.as_ref().to_vec(),
        ))
        .send()
        .await
        .expect("PutRecord");
    RecordPut {
        shard_id: out.shard_id().to_string(),
        sequence_number: out.sequence_number().to_string(),
    }
}

/// Creates a standard SQS queue on moto named after `prefix`; returns (URL, ARN as the
/// server reports it).
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .expect("a QueueArn")
        .to_string();
    (url, arn)
}

/// Creates a table keyed `pk` (S) on moto with a stream of `view`; returns the DynamoDB
/// client, the table name and the stream ARN.
pub async fn create_table(
    view: aws_sdk_dynamodb::types::StreamViewType,
) -> (aws_sdk_dynamodb::Client, String, String) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        StreamSpecification,
    };
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&moto_endpoint()).await);
    let name = unique("esm-table");
    let output = client
        .create_table()
        .table_name(&name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()
                .expect("stream specification"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    let stream_arn = output
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("the table has a stream")
        .to_string();
    (client, name, stream_arn)
}
