//! Enhanced fan-out against kinesis-local: consumers registered, reused and named by ARN,
//! records read with SubscribeToShard through whole daemon runs (`run_until`) and through
//! `KinesisEfoSource` directly (resubscription, shard end). The daemon's clients find
//! kinesis-local through `AWS_ENDPOINT_URL_KINESIS`, which `scripts/test.sh` exports; the
//! tests set up and read back with their own clients. kinesis-local serves
//! SubscribeToShard on its plain HTTP/1.1 port, the one every other test uses.
//!
//! Every test deletes its stream (and so its consumers) when it ends, passed or failed.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ConsumerStatus;
use esm_sim::aws::AwsFactory;
use esm_sim::config::FanOutConsumer;
use esm_sim::function::tap::Observer;
use esm_sim::function::InvokeResult;
use esm_sim::model::{RecordBody, ShardId, StreamRecord};
use esm_sim::source::kinesis_efo::KinesisEfoSource;
use esm_sim::source::{IteratorPosition, SourceError, StreamSource};
use serde_json::Value;
use support::daemon::{start_error, wait_for, Daemon};
use support::daemon_config::{fails_on_poison, mapping, on_failure};
use support::stream::TestStream;
use support::{put_record, RecordPut};

/// Registers consumer `name` and waits until it is ACTIVE; returns its ARN.
async fn register(client: &aws_sdk_kinesis::Client, stream_arn: &str, name: &str) -> String {
    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
        .expect("RegisterStreamConsumer");
    let arn = out
        .consumer()
        .expect("a consumer")
        .consumer_arn()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        let status = out
            .consumer_description()
            .expect("a description")
            .consumer_status();
        if status == &ConsumerStatus::Active {
            return arn;
        }
        assert!(
            Instant::now() < deadline,
            "consumer {arn} not ACTIVE: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stream's consumers: (name, ARN, status).
async fn consumers(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
) -> Vec<(String, String, ConsumerStatus)> {
    client
        .list_stream_consumers()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("ListStreamConsumers")
        .consumers()
        .iter()
        .map(|c| {
            (
                c.consumer_name().to_string(),
                c.consumer_arn().to_string(),
                c.consumer_status().clone(),
            )
        })
        .collect()
}

/// What the function saw: (shard, sequence number, data), in invocation order; only
/// successful invocations.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

fn recording_tap() -> (Seen, Observer) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let tap: Observer = Arc::new(
        move |shard: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            if !matches!(result, InvokeResult::Response(r) if r.function_error.is_none()) {
                return;
            }
            let mut seen = sink.lock().expect("lock");
            for record in records {
                if let RecordBody::Kinesis { data, .. } = &record.body {
                    seen.push((
                        shard.0.clone(),
                        record.sequence_number.0.clone(),
                        String::from_utf8_lossy(data).into_owned(),
                    ));
                }
            }
        },
    );
    (seen, tap)
}

/// Per shard, the sequence numbers in the order they were put (or seen).
fn by_shard<'a>(
    items: impl Iterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (shard, seq) in items {
        map.entry(shard).or_default().push(seq);
    }
    map
}

/// Puts record `{"n":i}` with key `ki` for each `i`, in order.
async fn put_numbered(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
    numbers: std::ops::Range<u32>,
) -> Vec<RecordPut> {
    let mut puts = Vec::new();
    for i in numbers {
        puts.push(
            put_record(
                client,
                stream_arn,
                &format!("k{i}"),
                format!("{{\"n\":{i}}}"),
            )
            .await,
        );
    }
    puts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_name_registers_the_consumer_and_every_shards_records_arrive_once_in_order() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 2).await;
    let mut put_order = Vec::new();
    put_order.extend(put_numbered(&client, &stream.arn, 0..10).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fails_on_poison(
        dir.path(),
        &mapping(
            "efo",
            &stream.arn,
            "batch_size = 3\nconsumer_name = \"esm-sim\"\n",
        ),
    );
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    wait_for(30, "the first ten records", || {
        seen.lock().expect("lock").len() >= 10
    })
    .await;
    // Records written while subscribed are pushed too.
    put_order.extend(put_numbered(&client, &stream.arn, 10..20).await);
    wait_for(30, "twenty records", || {
        seen.lock().expect("lock").len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    let registered = consumers(&client, &stream.arn).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 20, "each record once: {seen:?}");
    assert_eq!(
        by_shard(
            seen.iter()
                .map(|(shard, seq, _)| (shard.as_str(), seq.as_str()))
        ),
        by_shard(
            put_order
                .iter()
                .map(|put| (put.shard_id.as_str(), put.sequence_number.as_str()))
        ),
        "every shard's records in order"
    );
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(registered[0].0, "esm-sim");
    assert_eq!(registered[0].2, ConsumerStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_consumer_is_reused_by_name_and_a_restart_resumes_from_the_checkpoint() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    let consumer_arn = register(&client, &stream.arn, "shared").await;
    for i in 0..5 {
        put_record(&client, &stream.arn, "k", &format!("{{\"n\":{i}}}")).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fails_on_poison(
        dir.path(),
        &mapping(
            "efo",
            &stream.arn,
            "batch_size = 2\nconsumer_name = \"shared\"\n",
        ),
    );
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap.clone()));
    wait_for(30, "the first five records", || {
        seen.lock().expect("lock").len() >= 5
    })
    .await;
    daemon.stop().await;
    for i in 5..10 {
        put_record(&client, &stream.arn, "k", &format!("{{\"n\":{i}}}")).await;
    }
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    wait_for(30, "the next five records", || {
        seen.lock().expect("lock").len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    let registered = consumers(&client, &stream.arn).await;
    let data: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.2.clone())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("{{\"n\":{i}}}")).collect();
    assert_eq!(
        data, expected,
        "in order, none lost, none replayed after the restart"
    );
    assert_eq!(
        registered,
        vec![("shared".to_string(), consumer_arn, ConsumerStatus::Active)],
        "the existing consumer, not a new one"
    );
}

/// A failure record with the fields that differ between any two runs (a fresh request
/// id, the time it was written) taken out.
fn comparable(line: &str) -> Value {
    let mut record: Value = serde_json::from_str(line).expect("a JSON failure record");
    let context = record["requestContext"]
        .as_object_mut()
        .expect("requestContext");
    assert_eq!(
        context
            .remove("requestId")
            .and_then(|v| v.as_str().map(str::len)),
        Some(36)
    );
    let timestamp = record.as_object_mut().and_then(|r| r.remove("timestamp"));
    assert!(timestamp.is_some_and(|t| t.is_string()), "{line}");
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_read_through_a_consumer_arn_gives_the_failure_record_get_records_gives() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    let consumer_arn = register(&client, &stream.arn, "failures").await;
    put_record(&client, &stream.arn, "user-1", r#"{"n":1}"#).await;
    let poison = put_record(&client, &stream.arn, "user-1", r#"{"n":2,"poison":true}"#)
        .await
        .sequence_number;
    put_record(&client, &stream.arn, "user-1", r#"{"n":3}"#).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = |file: &str| {
        format!(
            "batch_size = 1\nmaximum_retry_attempts = 1\n{}",
            on_failure(&format!("file://{file}"))
        )
    };
    let text = fails_on_poison(
        dir.path(),
        &format!(
            "{}{}",
            mapping("polling", &stream.arn, &settings("polling.jsonl")),
            mapping("efo", &consumer_arn, &settings("efo.jsonl"))
        ),
    );
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(&text, dir.path(), Some(tap));
    let read = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
    wait_for(30, "both mappings past the poison record", || {
        let ok = seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.2.contains("\"n\":3"))
            .count();
        ok == 2 && !read("polling.jsonl").is_empty() && !read("efo.jsonl").is_empty()
    })
    .await;
    daemon.stop().await;
    let (polling, efo) = (read("polling.jsonl"), read("efo.jsonl"));
    assert_eq!(polling.lines().count(), 1, "{polling}");
    assert_eq!(efo.lines().count(), 1, "{efo}");
    let efo_record = comparable(&efo);
    assert_eq!(comparable(&polling), efo_record);
    let info = &efo_record["KinesisBatchInfo"];
    assert_eq!(
        info["streamArn"],
        stream.arn.as_str(),
        "the stream's ARN, not the consumer's"
    );
    assert_eq!(info["startSequenceNumber"], poison.as_str());
    assert_eq!(
        efo_record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(efo_record["requestContext"]["approximateInvokeCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_arn_that_does_not_exist_is_a_clear_error_at_start() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    let missing = format!("{}/consumer/nobody:1767225600", stream.arn);
    let dir = tempfile::tempdir().expect("tempdir");
    let error = start_error(
        &fails_on_poison(dir.path(), &mapping("efo", &missing, "")),
        dir.path(),
    )
    .await;
    assert!(
        error.contains(&format!("Consumer not found: {missing}")),
        "{error}"
    );
}

/// The source under test, built as the daemon builds it.
async fn efo_source(stream_arn: &str, consumer: &str) -> KinesisEfoSource {
    let factory = AwsFactory::new(Some(support::kinesis_endpoint()), "us-east-1".into());
    KinesisEfoSource::connect(
        &factory,
        stream_arn,
        &FanOutConsumer::Name(consumer.into()),
        Duration::from_millis(200),
    )
    .await
    .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_subscriptions_resume_after_the_continuation_without_loss_or_duplicates() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    let source = efo_source(&stream.arn, "renewing")
        .await
        .with_subscription_lifetime(Duration::from_millis(600));
    let shard = ShardId("shardId-000000000000".into());
    let token = source
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .expect("an iterator");
    let writer = {
        let (client, arn) = (client.clone(), stream.arn.clone());
        tokio::spawn(async move {
            let mut put_order = Vec::new();
            for i in 0..30 {
                put_order.push(
                    put_record(&client, &arn, "k", format!("r{i}"))
                        .await
                        .sequence_number,
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            put_order
        })
    };
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while got.len() < 30 && Instant::now() < deadline {
        match source.get_records(&token, 7).await {
            Ok(page) => {
                assert!(page.records.len() <= 7, "the limit holds");
                assert_eq!(page.next_iterator.as_deref(), Some(token.as_str()));
                got.extend(page.records.into_iter().map(|r| r.sequence_number.0));
            }
            // A resubscription too soon after the last one: back off, as the engine does.
            Err(SourceError::Throttled(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("get_records: {other}"),
        }
    }
    let put_order = writer.await.expect("the writer");
    assert_eq!(got, put_order, "every record once, in order");
    assert!(
        source.subscriptions_opened() >= 3,
        "subscriptions were renewed: {} opened",
        source.subscriptions_opened()
    );
    // A newer iterator for the shard makes the old one expire; the new one starts where
    // it is told.
    let newer = source
        .shard_iterator(
            &shard,
            &IteratorPosition::AtSequence(esm_sim::model::SequenceNumber(put_order[29].clone())),
        )
        .await
        .expect("an iterator");
    assert_eq!(
        source.get_records(&token, 10).await.err(),
        Some(SourceError::ExpiredIterator)
    );
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while last.is_empty() && Instant::now() < deadline {
        if let Ok(page) = source.get_records(&newer, 10).await {
            last = page.records;
        }
    }
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].sequence_number.0, put_order[29]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_parent_ends_its_subscription_with_the_children_named() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    // kinesis-local keeps a closed shard's subscription open: the shard's end shows at
    // the next resubscription, brought forward here.
    let source = efo_source(&stream.arn, "splitting")
        .await
        .with_subscription_lifetime(Duration::from_secs(1));
    let RecordPut {
        shard_id: parent,
        sequence_number: before,
    } = put_record(&client, &stream.arn, "k", "before").await;
    let shard = ShardId(parent.clone());
    let token = source
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .expect("an iterator");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.is_empty() && Instant::now() < deadline {
        if let Ok(page) = source.get_records(&token, 100).await {
            got.extend(page.records);
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sequence_number.0, before);
    client
        .split_shard()
        .stream_arn(&stream.arn)
        .shard_to_split(&parent)
        .new_starting_hash_key((u128::MAX / 2).to_string())
        .send()
        .await
        .expect("SplitShard");
    support::wait_active(&client, &stream.arn).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        assert!(Instant::now() < deadline, "the parent never ended");
        match source.get_records(&token, 100).await {
            Ok(page) if page.next_iterator.is_none() => break page,
            Ok(page) => assert!(
                page.records.is_empty(),
                "nothing was written after the split"
            ),
            Err(SourceError::Throttled(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("get_records: {other}"),
        }
    };
    assert!(last.records.is_empty());
    let mut children: Vec<String> = last
        .child_shards
        .iter()
        .map(|c| c.shard_id.0.clone())
        .collect();
    children.sort();
    let listed = source.list_shards().await.expect("ListShards");
    let mut expected: Vec<String> = listed
        .iter()
        .filter(|s| s.parent_shard_ids.contains(&shard))
        .map(|s| s.shard_id.0.clone())
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 2, "{listed:?}");
    assert_eq!(children, expected);
    assert!(last
        .child_shards
        .iter()
        .all(|c| c.parent_shard_ids == vec![shard.clone()]));
    // The finished shard's token is spent.
    assert_eq!(
        source.get_records(&token, 10).await.err(),
        Some(SourceError::ExpiredIterator)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_at_a_timestamp_reads_only_what_arrived_from_then_on() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "efo", 1).await;
    let source = efo_source(&stream.arn, "from-now").await;
    put_record(&client, &stream.arn, "k", "old").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64;
    // The engine's LATEST for Kinesis: AT_TIMESTAMP the time the shard is opened.
    let token = source
        .shard_iterator(
            &ShardId("shardId-000000000000".into()),
            &IteratorPosition::AtTimestamp(now_ms),
        )
        .await
        .expect("an iterator");
    put_record(&client, &stream.arn, "k", "new").await;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && got.is_empty() {
        if let Ok(page) = source.get_records(&token, 100).await {
            got.extend(page.records);
        }
    }
    // Whatever else might still come.
    got.extend(
        source
            .get_records(&token, 100)
            .await
            .expect("records")
            .records,
    );
    let data: Vec<String> = got
        .iter()
        .map(|r| match &r.body {
            RecordBody::Kinesis { data, .. } => String::from_utf8_lossy(data).into_owned(),
            other => panic!("not a Kinesis record: {other:?}"),
        })
        .collect();
    assert_eq!(data, vec!["new".to_string()]);
}
