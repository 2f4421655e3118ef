//! The whole engine against real local servers: Kinesis on kinesis-local, SQS, SNS,
//! DynamoDB and DynamoDB Streams on moto. The daemon's own AWS clients find them through
//! the standard `AWS_ENDPOINT_URL_<SERVICE>` variables that `scripts/test.sh` exports;
//! the tests set up and read back resources with their own clients.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esm_sim::function::tap::Observer;
use esm_sim::function::InvokeResult;
use esm_sim::model::{RecordBody, ShardId, StreamRecord};
use serde_json::Value;
use support::daemon::{start_error, wait_for, Daemon};
use support::{daemon_config, put_record};

/// What the function saw: (shard, sequence number, partition key or item key, data or
/// event name, succeeded).
type Seen = Arc<Mutex<Vec<(String, String, String, String, bool)>>>;

fn recording_tap() -> (Seen, Observer) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let tap: Observer = Arc::new(
        move |shard: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let ok = matches!(result, InvokeResult::Response(r) if r.function_error.is_none());
            let mut seen = sink.lock().expect("lock");
            for record in records {
                let (key, what) = match &record.body {
                    RecordBody::Kinesis {
                        partition_key,
                        data,
                    } => (
                        partition_key.clone(),
                        String::from_utf8_lossy(data).into_owned(),
                    ),
                    RecordBody::Dynamodb(change) => {
                        let key = change.keys().as_str().to_string();
                        let images = serde_json::json!({
                            "eventName": change.event_name.as_str(),
                            "NewImage": change.new_image().as_ref().map(|m| Value::Object(m.to_map())),
                            "OldImage": change.old_image().as_ref().map(|m| Value::Object(m.to_map())),
                        });
                        (key, images.to_string())
                    }
                };
                seen.push((
                    shard.0.clone(),
                    record.sequence_number.0.clone(),
                    key,
                    what,
                    ok,
                ));
            }
        },
    );
    (seen, tap)
}

fn mapping_config(
    dir: &std::path::Path,
    stream_arn: &str,
    destination: Option<&str>,
    extra: &str,
) -> String {
    let destination = destination
        .map(daemon_config::on_failure)
        .unwrap_or_default();
    daemon_config::fails_on_poison(
        dir,
        &daemon_config::mapping("e2e", stream_arn, &format!("{destination}{extra}")),
    )
}

async fn create_stream(client: &aws_sdk_kinesis::Client, shards: i32) -> String {
    support::create_stream(client, &support::unique("e2e"), shards).await
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&support::sdk_config(&support::moto_endpoint()).await)
}

/// Receives at least `count` messages within `seconds`; returns their bodies.
async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
    count: usize,
    seconds: u64,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut bodies = Vec::new();
    while bodies.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived: {bodies:?}",
            bodies.len()
        );
        let out = client
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(1)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in out.messages() {
            bodies.push(message.body().unwrap_or_default().to_string());
            if let Some(handle) = message.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
    }
    bodies
}

/// The acceptance check of a failure record for "MaximumRetryAttempts 1, function always
/// fails, BatchSize 1".
fn assert_failure_record(record: &Value, stream_arn: &str, poison_seq: &str) {
    let context = &record["requestContext"];
    assert_eq!(context["condition"], "RetryAttemptsExhausted", "{record}");
    assert_eq!(context["approximateInvokeCount"], 2, "{record}");
    assert_eq!(
        context["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:fails-on-poison"
    );
    assert_eq!(context["requestId"].as_str().map(str::len), Some(36));
    assert_eq!(
        record["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    assert_eq!(record["version"], "1.0");
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], poison_seq);
    assert_eq!(info["endSequenceNumber"], poison_seq);
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], stream_arn);
    assert_eq!(info["shardId"], "shardId-000000000000");
    let first = info["approximateArrivalOfFirstRecord"]
        .as_str()
        .unwrap_or("");
    assert_eq!(
        first.len(),
        "2026-01-01T00:00:00.000Z".len(),
        "millisecond precision: {first}"
    );
    assert_eq!(
        record.as_object().map(|o| o.len()),
        Some(5),
        "no extra keys: {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_mapping_retries_a_poison_record_once_and_sends_its_failure_record_to_a_real_sqs_queue(
) {
    let kinesis = support::kinesis_client().await;
    let stream_arn = create_stream(&kinesis, 1).await;
    let sqs = sqs().await;
    let (queue_url, queue_arn) = support::create_queue(&sqs, "failures").await;
    put_record(&kinesis, &stream_arn, "user-1", r#"{"n":1}"#).await;
    let poison = put_record(&kinesis, &stream_arn, "user-1", r#"{"n":2,"poison":true}"#)
        .await
        .sequence_number;
    put_record(&kinesis, &stream_arn, "user-1", r#"{"n":3}"#).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = mapping_config(
        dir.path(),
        &stream_arn,
        Some(&queue_arn),
        "batch_size = 1\nmaximum_retry_attempts = 1\n",
    );
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    let bodies = receive(&sqs, &queue_url, 1, 30).await;
    wait_for(20, "the third record to succeed", || {
        seen.lock()
            .expect("lock")
            .iter()
            .any(|s| s.3.contains("\"n\":3") && s.4)
    })
    .await;
    daemon.stop().await;
    support::delete_stream(&kinesis, &stream_arn).await;
    let record: Value = serde_json::from_str(&bodies[0]).expect("the message body is JSON");
    assert_failure_record(&record, &stream_arn, &poison);
    let seen = seen.lock().expect("lock");
    let poison_invocations = seen.iter().filter(|s| s.1 == poison).count();
    assert_eq!(
        poison_invocations, 2,
        "MaximumRetryAttempts 1: two invocations"
    );
    let order: Vec<&str> = seen.iter().filter(|s| s.4).map(|s| s.3.as_str()).collect();
    assert_eq!(order, vec![r#"{"n":1}"#, r#"{"n":3}"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_record_published_to_a_real_sns_topic_reaches_a_subscribed_queue_as_the_message()
{
    let kinesis = support::kinesis_client().await;
    let stream_arn = create_stream(&kinesis, 1).await;
    let sqs = sqs().await;
    let (queue_url, queue_arn) = support::create_queue(&sqs, "failures").await;
    let sns = aws_sdk_sns::Client::new(&support::sdk_config(&support::moto_endpoint()).await);
    let topic = sns
        .create_topic()
        .name(support::unique("failures"))
        .send()
        .await
        .expect("CreateTopic");
    let topic_arn = topic.topic_arn().expect("TopicArn").to_string();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("Subscribe");
    let poison = put_record(&kinesis, &stream_arn, "user-7", r#"{"poison":true}"#)
        .await
        .sequence_number;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = mapping_config(
        dir.path(),
        &stream_arn,
        Some(&topic_arn),
        "batch_size = 1\nmaximum_retry_attempts = 1\n",
    );
    let (_, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    let bodies = receive(&sqs, &queue_url, 1, 30).await;
    daemon.stop().await;
    support::delete_stream(&kinesis, &stream_arn).await;
    let notification: Value = serde_json::from_str(&bodies[0]).expect("an SNS notification");
    assert_eq!(notification["TopicArn"], topic_arn.as_str());
    let message = notification["Message"]
        .as_str()
        .expect("the Message string");
    let record: Value = serde_json::from_str(message).expect("the Message is the failure record");
    assert_failure_record(&record, &stream_arn, &poison);
}

/// The middle of a shard's hash key range.
fn middle(range: &aws_sdk_kinesis::types::HashKeyRange) -> String {
    let start: u128 = range.starting_hash_key().parse().expect("hash key");
    let end: u128 = range.ending_hash_key().parse().expect("hash key");
    (start + (end - start) / 2).to_string()
}

async fn open_shards(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
) -> Vec<aws_sdk_kinesis::types::Shard> {
    let out = client
        .list_shards()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("ListShards");
    out.shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_none()
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_split_and_a_merge_on_kinesis_local_parents_finish_first_and_every_keys_order_holds(
) {
    let kinesis = support::kinesis_client().await;
    let stream_arn = create_stream(&kinesis, 2).await;
    let keys = ["a", "b", "c", "d", "e", "f"];
    let put_round = |round: usize| {
        let (kinesis, stream_arn) = (kinesis.clone(), stream_arn.clone());
        async move {
            for i in 0..12 {
                let key = keys[i % keys.len()];
                put_record(
                    &kinesis,
                    &stream_arn,
                    key,
                    &format!("{{\"key\":\"{key}\",\"n\":{}}}", round * 100 + i),
                )
                .await;
            }
        }
    };
    put_round(0).await;
    let parent = open_shards(&kinesis, &stream_arn).await.remove(0);
    let at = middle(parent.hash_key_range().expect("range"));
    kinesis
        .split_shard()
        .stream_arn(&stream_arn)
        .shard_to_split(parent.shard_id())
        .new_starting_hash_key(at)
        .send()
        .await
        .expect("SplitShard");
    support::wait_active(&kinesis, &stream_arn).await;
    put_round(1).await;
    let children: Vec<_> = open_shards(&kinesis, &stream_arn)
        .await
        .into_iter()
        .filter(|s| s.parent_shard_id() == Some(parent.shard_id()))
        .collect();
    assert_eq!(children.len(), 2);
    kinesis
        .merge_shards()
        .stream_arn(&stream_arn)
        .shard_to_merge(children[0].shard_id())
        .adjacent_shard_to_merge(children[1].shard_id())
        .send()
        .await
        .expect("MergeShards");
    support::wait_active(&kinesis, &stream_arn).await;
    put_round(2).await;
    let n = 36;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = mapping_config(dir.path(), &stream_arn, None, "batch_size = 5\n");
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    wait_for(60, "every record", || seen.lock().expect("lock").len() >= n).await;
    daemon.stop().await;
    let list = kinesis
        .list_shards()
        .stream_arn(&stream_arn)
        .send()
        .await
        .expect("ListShards");
    support::delete_stream(&kinesis, &stream_arn).await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), n, "each record delivered once");
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, _, key, data, _) in seen.iter() {
        let value: Value = serde_json::from_str(data).expect("data");
        let n = value["n"].as_i64().expect("n");
        if let Some(previous) = last.insert(key, n) {
            assert!(n > previous, "key {key}: {n} after {previous}");
        }
    }
    let position = |shard: &str, last: bool| {
        let mut it = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| s.0 == shard)
            .map(|(i, _)| i);
        if last {
            it.next_back()
        } else {
            it.next()
        }
    };
    let mut checked = 0;
    for shard in list.shards() {
        let Some(first) = position(shard.shard_id(), false) else {
            continue;
        };
        for parent in shard
            .parent_shard_id()
            .into_iter()
            .chain(shard.adjacent_parent_shard_id())
        {
            if let Some(last_of_parent) = position(parent, true) {
                assert!(
                    last_of_parent < first,
                    "{} read before its parent {parent} finished",
                    shard.shard_id()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "two children of the split and the merged shard were checked: {checked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_resumes_from_its_checkpoints_without_losing_or_replaying_records() {
    let kinesis = support::kinesis_client().await;
    let stream_arn = create_stream(&kinesis, 1).await;
    for i in 0..10 {
        put_record(&kinesis, &stream_arn, "k", &format!("{{\"n\":{i}}}")).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let text = mapping_config(dir.path(), &stream_arn, None, "batch_size = 2\n");
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap.clone()));
    wait_for(30, "the first ten records", || {
        seen.lock().expect("lock").len() >= 10
    })
    .await;
    daemon.stop().await;
    for i in 10..20 {
        put_record(&kinesis, &stream_arn, "k", &format!("{{\"n\":{i}}}")).await;
    }
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    wait_for(30, "the next ten records", || {
        seen.lock().expect("lock").len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    support::delete_stream(&kinesis, &stream_arn).await;
    let seen = seen.lock().expect("lock");
    let ns: Vec<i64> = seen
        .iter()
        .map(|s| {
            serde_json::from_str::<Value>(&s.3).expect("data")["n"]
                .as_i64()
                .expect("n")
        })
        .collect();
    assert_eq!(
        ns,
        (0..20).collect::<Vec<_>>(),
        "in order, none lost, none replayed after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_table_stream_on_moto_delivers_insert_modify_and_remove_with_their_images() {
    use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
    let (dynamodb, table, stream_arn) =
        support::create_table(StreamViewType::NewAndOldImages).await;
    let s = |v: &str| AttributeValue::S(v.to_string());
    dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", s("order#1"))
        .item("total", AttributeValue::N("10".into()))
        .send()
        .await
        .expect("PutItem");
    dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", s("order#1"))
        .update_expression("SET #t = :t")
        .expression_attribute_names("#t", "total")
        .expression_attribute_values(":t", AttributeValue::N("12.5".into()))
        .send()
        .await
        .expect("UpdateItem");
    dynamodb
        .delete_item()
        .table_name(&table)
        .key("pk", s("order#1"))
        .send()
        .await
        .expect("DeleteItem");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = mapping_config(dir.path(), &stream_arn, None, "batch_size = 10\n");
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    wait_for(30, "three changes", || {
        seen.lock().expect("lock").len() >= 3
    })
    .await;
    daemon.stop().await;
    let seen = seen.lock().expect("lock");
    let events: Vec<Value> = seen
        .iter()
        .map(|s| serde_json::from_str(&s.3).expect("json"))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["eventName"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(
        events[0]["NewImage"]["total"],
        serde_json::json!({"N": "10"})
    );
    assert!(events[0]["OldImage"].is_null(), "an INSERT has no OldImage");
    assert_eq!(
        events[1]["OldImage"]["total"],
        serde_json::json!({"N": "10"})
    );
    assert_eq!(
        events[1]["NewImage"]["total"],
        serde_json::json!({"N": "12.5"})
    );
    assert!(events[2]["NewImage"].is_null(), "a REMOVE has no NewImage");
    assert_eq!(
        events[2]["OldImage"]["pk"],
        serde_json::json!({"S": "order#1"})
    );
    assert!(seen.iter().all(|s| s.2 == r#"{"pk":{"S":"order#1"}}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_and_a_missing_queue_are_clear_errors_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing_stream = format!(
        "arn:aws:kinesis:us-east-1:000000000000:stream/{}",
        support::unique("missing")
    );
    let error = start_error(
        &mapping_config(dir.path(), &missing_stream, None, ""),
        dir.path(),
    )
    .await;
    assert!(
        error.contains(&format!("Stream not found: {missing_stream}")),
        "{error}"
    );
    let kinesis = support::kinesis_client().await;
    let stream_arn = create_stream(&kinesis, 1).await;
    let missing_queue = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        support::unique("missing")
    );
    let error = start_error(
        &mapping_config(dir.path(), &stream_arn, Some(&missing_queue), ""),
        dir.path(),
    )
    .await;
    support::delete_stream(&kinesis, &stream_arn).await;
    assert!(
        error.contains(&format!("Queue not found: {missing_queue}")),
        "{error}"
    );
}
