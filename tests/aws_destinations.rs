//! The SQS and SNS on-failure destinations against a real server: moto in server mode,
//! started by `scripts/test.sh` on 127.0.0.1. Queues, topics and subscriptions are made
//! and read back with plain SDK clients; the destinations under test are built the way
//! the daemon builds them (`AwsFactory` + `connect`).
//!
//! ARNs are always read from what the server returns (GetQueueAttributes' QueueArn,
//! CreateTopic's TopicArn), never spelled out, so nothing depends on moto's account id.
//! Every test makes its own uniquely named resources: moto is not reset between tests.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::Message;
use esm_sim::aws::AwsFactory;
use esm_sim::destination::sns::SnsDestination;
use esm_sim::destination::sqs::SqsDestination;
use esm_sim::destination::{DiscardedBatch, FailureDestination};
use esm_sim::event::{BatchInfo, Condition, FailureRecord, ResponseContext};
use esm_sim::model::{SequenceNumber, ShardId, StreamKind};
use support::create_queue;

/// How long a message may take to arrive.
const ARRIVES_WITHIN: Duration = Duration::from_secs(20);

async fn sqs_admin() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&support::sdk_config(&support::moto_endpoint()).await)
}

async fn sns_admin() -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&support::sdk_config(&support::moto_endpoint()).await)
}

/// The factory the destinations under test are built with, as the daemon builds it.
fn factory() -> AwsFactory {
    AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into())
}

/// A new standard topic's ARN, as CreateTopic returns it.
async fn create_topic(sns: &aws_sdk_sns::Client, prefix: &str) -> String {
    sns.create_topic()
        .name(support::unique(prefix))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("a TopicArn")
        .to_string()
}

/// Subscribes the queue to the topic (raw delivery or the JSON notification envelope).
async fn subscribe(sns: &aws_sdk_sns::Client, topic_arn: &str, queue_arn: &str, raw: bool) {
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", if raw { "true" } else { "false" })
        .return_subscription_arn(true)
        .send()
        .await
        .expect("Subscribe");
}

/// Long-polls until `count` messages have arrived, or fails after `ARRIVES_WITHIN`.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, count: usize) -> Vec<Message> {
    let deadline = Instant::now() + ARRIVES_WITHIN;
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived at {url} within {ARRIVES_WITHIN:?}",
            messages.len()
        );
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .expect("ReceiveMessage");
        messages.extend(out.messages().iter().cloned());
    }
    messages
}

/// The failure record of a Kinesis batch that exhausted its retries, as the engine makes it.
fn kinesis_failure_record() -> Vec<u8> {
    FailureRecord {
        request_id: "c9b8fa9f-5a7f-4b2e-af9c-0c604cde93a5".into(),
        function_arn: "arn:aws:lambda:us-east-1:111122223333:function:order-processor".into(),
        condition: Condition::RetryAttemptsExhausted,
        approximate_invoke_count: 3,
        response: Some(ResponseContext {
            status_code: 200,
            executed_version: "$LATEST".into(),
            function_error: Some("Unhandled".into()),
        }),
        timestamp_ms: 1_573_691_886_021,
        batch: BatchInfo {
            kind: StreamKind::Kinesis,
            shard_id: ShardId("shardId-000000000001".into()),
            start_sequence_number: SequenceNumber(
                "49601189658422359378836298521827638475320189012309704722".into(),
            ),
            end_sequence_number: SequenceNumber(
                "49601189658422359378836298522902373528957594348623495186".into(),
            ),
            first_arrival_ms: 1_573_691_884_835,
            last_arrival_ms: 1_573_691_885_580,
            batch_size: 100,
            stream_arn: "arn:aws:kinesis:us-east-1:111122223333:stream/orders".into(),
        },
    }
    .to_json()
}

/// `document` as the engine hands it to a destination (SQS and SNS send only the document).
fn discarded(document: &[u8]) -> DiscardedBatch<'_> {
    DiscardedBatch {
        document,
        event: b"{}",
        shard_id: "shardId-000000000001",
        timestamp_ms: 1_573_691_886_021,
    }
}

/// The ARN of a resource that does not exist, in the same region and account as `arn`.
fn sibling_arn(arn: &str, name: &str) -> String {
    let (prefix, _) = arn.rsplit_once(':').expect("an ARN");
    format!("{prefix}:{name}")
}

#[tokio::test]
async fn a_failure_record_sent_to_an_sqs_destination_is_received_as_the_message_body_byte_for_byte()
{
    let sqs = sqs_admin().await;
    let (url, arn) = create_queue(&sqs, "failures").await;
    let destination = SqsDestination::connect(&factory(), &arn)
        .await
        .expect("connect");
    assert_eq!(destination.describe(), arn);

    let document = kinesis_failure_record();
    destination.send(&discarded(&document)).await.expect("send");

    let messages = receive(&sqs, &url, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].body().expect("a body").as_bytes(),
        document.as_slice()
    );
}

#[tokio::test]
async fn a_failure_record_published_to_an_sns_destination_is_the_notification_message_byte_for_byte(
) {
    let (sqs, sns) = (sqs_admin().await, sns_admin().await);
    let topic_arn = create_topic(&sns, "failures").await;
    let (enveloped_url, enveloped_arn) = create_queue(&sqs, "enveloped").await;
    let (raw_url, raw_arn) = create_queue(&sqs, "raw").await;
    subscribe(&sns, &topic_arn, &enveloped_arn, false).await;
    subscribe(&sns, &topic_arn, &raw_arn, true).await;
    let destination = SnsDestination::connect(&factory(), &topic_arn)
        .await
        .expect("connect");
    assert_eq!(destination.describe(), topic_arn);

    let document = kinesis_failure_record();
    destination.send(&discarded(&document)).await.expect("send");

    let enveloped = receive(&sqs, &enveloped_url, 1).await;
    let notification: serde_json::Value =
        serde_json::from_str(enveloped[0].body().expect("a body")).expect("a JSON notification");
    assert_eq!(notification["Type"], "Notification");
    assert_eq!(notification["TopicArn"], topic_arn.as_str());
    assert_eq!(
        notification["Message"]
            .as_str()
            .expect("a Message string")
            .as_bytes(),
        document.as_slice()
    );

    let raw = receive(&sqs, &raw_url, 1).await;
    assert_eq!(
        raw[0].body().expect("a body").as_bytes(),
        document.as_slice()
    );
}

#[tokio::test]
async fn connecting_to_a_missing_queue_or_topic_fails_with_exactly_not_found_and_the_arn() {
    let (sqs, sns) = (sqs_admin().await, sns_admin().await);
    let (_, existing_queue) = create_queue(&sqs, "existing").await;
    let missing_queue = sibling_arn(&existing_queue, &support::unique("missing"));
    let error = SqsDestination::connect(&factory(), &missing_queue)
        .await
        .err()
        .expect("a missing queue is an error");
    assert_eq!(
        error.to_string(),
        format!("Queue not found: {missing_queue}")
    );

    let existing_topic = create_topic(&sns, "existing").await;
    let missing_topic = sibling_arn(&existing_topic, &support::unique("missing"));
    let error = SnsDestination::connect(&factory(), &missing_topic)
        .await
        .err()
        .expect("a missing topic is an error");
    assert_eq!(
        error.to_string(),
        format!("Topic not found: {missing_topic}")
    );
}

#[tokio::test]
async fn sending_after_the_queue_was_deleted_is_an_error_that_names_the_problem() {
    let sqs = sqs_admin().await;
    let (url, arn) = create_queue(&sqs, "deleted").await;
    let destination = SqsDestination::connect(&factory(), &arn)
        .await
        .expect("connect");
    sqs.delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("DeleteQueue");

    let error = destination
        .send(&discarded(&kinesis_failure_record()))
        .await
        .expect_err("the queue is gone")
        .to_string();
    assert!(error.contains(&arn), "{error}");
    assert!(error.contains("the queue no longer exists"), "{error}");
}

#[tokio::test]
async fn an_sns_document_over_256_kb_is_refused_before_sending_with_both_sizes_named() {
    let (sqs, sns) = (sqs_admin().await, sns_admin().await);
    let topic_arn = create_topic(&sns, "oversize").await;
    let (raw_url, raw_arn) = create_queue(&sqs, "oversize").await;
    subscribe(&sns, &topic_arn, &raw_arn, true).await;
    let destination = SnsDestination::connect(&factory(), &topic_arn)
        .await
        .expect("connect");

    // Valid JSON of an exact size: {"pad":"xxx…"}.
    let json_of_size = |size: usize| format!("{{\"pad\":\"{}\"}}", "x".repeat(size - 10));
    let over = json_of_size(256 * 1024 + 1);
    assert_eq!(over.len(), 262_145);
    let error = destination
        .send(&discarded(over.as_bytes()))
        .await
        .expect_err("over the limit")
        .to_string();
    assert!(error.contains("262145 bytes"), "{error}");
    assert!(error.contains("262144 bytes"), "{error}");

    // Exactly at the limit is sent; it is the only message that arrives.
    let at_limit = json_of_size(256 * 1024);
    destination
        .send(&discarded(at_limit.as_bytes()))
        .await
        .expect("a document of exactly 256 KB is sent");
    let messages = receive(&sqs, &raw_url, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body(), Some(at_limit.as_str()));
    let more = sqs
        .receive_message()
        .queue_url(&raw_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    assert!(more.messages().is_empty(), "the oversize document was sent");
}
