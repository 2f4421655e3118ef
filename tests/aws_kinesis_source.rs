//! `KinesisSource` against a real Kinesis server: kinesis-local (the kinesis-mock build that
//! LocalStack runs), started by `scripts/test.sh` on 127.0.0.1. Streams are created, fed
//! and resharded with a plain SDK client; the source under test is built the way the
//! daemon builds it (`AwsFactory` + `KinesisSource::connect`), with the credentials the
//! test script exports.
//!
//! kinesis-local writes slowly (a few hundred records per second), so each test uses tens
//! of records. It has no reset: every test makes its own uniquely named streams, and
//! deletes them when it ends, passed or failed, because kinesis-local allows only 50 open
//! shards per account (LimitExceededException on CreateStream past that), shared by every
//! test file that runs against the same server.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_types::Blob;
use esm_sim::aws::AwsFactory;
use esm_sim::model::{RecordBody, SequenceNumber, ShardId, ShardInfo, StreamRecord};
use esm_sim::source::kinesis::KinesisSource;
use esm_sim::source::{IteratorPosition, RecordsPage, SourceError, StreamSource};
use support::stream::TestStream;

/// How long a stream may take to become ACTIVE after a create, split or merge.
const ACTIVE_WITHIN: Duration = Duration::from_secs(15);

/// The source under test, built as the daemon builds it.
async fn connect(name_or_arn: &str) -> anyhow::Result<KinesisSource> {
    let factory = AwsFactory::new(Some(support::kinesis_endpoint()), "us-east-1".into());
    KinesisSource::connect(&factory, name_or_arn).await
}

/// Puts one record; returns its sequence number.
async fn put(client: &aws_sdk_kinesis::Client, arn: &str, key: &str, data: &[u8]) -> String {
    client
        .put_record()
        .stream_arn(arn)
        .partition_key(key)
        .data(Blob::new(data.to_vec()))
        .send()
        .await
        .expect("PutRecord")
        .sequence_number()
        .to_string()
}

/// Puts records in one PutRecords call; returns their sequence numbers in order.
async fn put_batch(
    client: &aws_sdk_kinesis::Client,
    arn: &str,
    records: &[(String, Vec<u8>)],
) -> Vec<String> {
    let entries = records
        .iter()
        .map(|(key, data)| {
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data.clone()))
                .build()
                .unwrap()
        })
        .collect();
    let out = client
        .put_records()
        .stream_arn(arn)
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(out.failed_record_count().unwrap_or(0), 0, "{out:?}");
    out.records()
        .iter()
        .map(|r| r.sequence_number().expect("a sequence number").to_string())
        .collect()
}

fn shard(id: &str) -> ShardId {
    ShardId(id.to_string())
}

fn shard_ids(shards: &[ShardInfo]) -> Vec<&str> {
    shards.iter().map(|s| s.shard_id.as_str()).collect()
}

fn seqs(records: &[StreamRecord]) -> Vec<&str> {
    records.iter().map(|r| r.sequence_number.as_str()).collect()
}

fn key_and_data(record: &StreamRecord) -> (&str, &[u8]) {
    match &record.body {
        RecordBody::Kinesis {
            partition_key,
            data,
        } => (partition_key, data),
        other => panic!("not a Kinesis record: {other:?}"),
    }
}

/// Reads from `position` until a page comes back empty (an open shard at its tip) or the
/// shard ends; returns every record and the last page.
async fn read(
    source: &KinesisSource,
    shard: &ShardId,
    position: IteratorPosition,
) -> (Vec<StreamRecord>, RecordsPage) {
    let mut iterator = source
        .shard_iterator(shard, &position)
        .await
        .expect("GetShardIterator");
    let mut records = Vec::new();
    for _ in 0..50 {
        let page = source
            .get_records(&iterator, 1000)
            .await
            .expect("GetRecords");
        records.extend(page.records.iter().cloned());
        match &page.next_iterator {
            Some(next) if !page.records.is_empty() => iterator = next.clone(),
            _ => return (records, page),
        }
    }
    panic!("{shard} did not reach its tip in 50 pages");
}

/// The hash key in the middle of a shard's range: the new starting hash key of a split.
async fn middle_hash_key(client: &aws_sdk_kinesis::Client, arn: &str, shard_id: &str) -> String {
    let out = client
        .list_shards()
        .stream_arn(arn)
        .send()
        .await
        .expect("ListShards");
    let shard = out
        .shards()
        .iter()
        .find(|s| s.shard_id() == shard_id)
        .expect("the shard to split");
    let range = shard.hash_key_range().expect("a hash key range");
    let start: u128 = range.starting_hash_key().parse().unwrap();
    let end: u128 = range.ending_hash_key().parse().unwrap();
    (start + (end - start) / 2 + 1).to_string()
}

#[tokio::test]
async fn list_shards_of_a_two_shard_stream_lists_both_without_parents_and_a_name_or_the_arn_connect_to_the_same_stream(
) {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 2).await;
    let (name, arn) = (stream.name.clone(), stream.arn.clone());

    let by_name = connect(&name).await.expect("connect by name");
    let by_arn = connect(&arn).await.expect("connect by ARN");
    assert_eq!(by_name.stream_arn(), arn);
    assert_eq!(by_arn.stream_arn(), arn);
    assert_eq!(by_name.stream_name(), name);
    assert_eq!(by_arn.stream_name(), name);
    assert_eq!(by_arn.kind(), esm_sim::model::StreamKind::Kinesis);

    let shards = by_arn.list_shards().await.expect("list_shards");
    assert_eq!(
        shards,
        vec![
            ShardInfo {
                shard_id: shard("shardId-000000000000"),
                parent_shard_ids: vec![],
            },
            ShardInfo {
                shard_id: shard("shardId-000000000001"),
                parent_shard_ids: vec![],
            },
        ]
    );
    assert_eq!(by_name.list_shards().await.expect("list_shards"), shards);
    // One shard per page: the pages follow NextToken (which must not name the stream again).
    let paged = by_arn.with_list_shards_page_size(1);
    assert_eq!(
        paged.list_shards().await.expect("paged list_shards"),
        shards
    );
}

#[tokio::test]
async fn every_starting_position_starts_where_kinesis_says_and_records_arrive_whole_and_in_order() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 1).await;
    let arn = stream.arn.clone();
    let source = connect(&arn).await.expect("connect");
    let shard0 = shard("shardId-000000000000");

    // Ten records: six in one PutRecords, four one by one, some sharing a key.
    let sent: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            (
                format!("user-{}", i % 3),
                format!("{{\"n\":{i}}}").into_bytes(),
            )
        })
        .collect();
    let before = support::now_ms();
    let mut sent_seqs = put_batch(&client, &arn, &sent[..6]).await;
    for (key, data) in &sent[6..] {
        sent_seqs.push(put(&client, &arn, key, data).await);
    }
    let after = support::now_ms();

    // TRIM_HORIZON: all ten, in order, whole.
    let (records, last) = read(&source, &shard0, IteratorPosition::TrimHorizon).await;
    assert_eq!(seqs(&records), sent_seqs);
    for (record, (key, data)) in records.iter().zip(&sent) {
        assert_eq!(key_and_data(record), (key.as_str(), data.as_slice()));
        // Same machine clock; ApproximateArrivalTimestamp has millisecond precision.
        assert!(
            (before - 1000..=after + 1000).contains(&record.approximate_arrival_ms),
            "arrival {} not within [{before}, {after}]",
            record.approximate_arrival_ms
        );
    }
    assert!(
        records
            .windows(2)
            .all(|w| w[0].sequence_number < w[1].sequence_number),
        "sequence numbers increase as unsigned decimals: {:?}",
        seqs(&records)
    );
    assert!(
        last.next_iterator.is_some(),
        "an open shard always has a next iterator"
    );
    assert!(last.child_shards.is_empty());
    assert_eq!(last.lost_to_retention, None);
    assert_eq!(last.millis_behind_latest, Some(0));

    // The limit is honoured, and the next iterator continues where the page stopped.
    let iterator = source
        .shard_iterator(&shard0, &IteratorPosition::TrimHorizon)
        .await
        .unwrap();
    let page = source.get_records(&iterator, 3).await.unwrap();
    assert_eq!(seqs(&page.records), sent_seqs[..3]);
    let page = source
        .get_records(page.next_iterator.as_deref().unwrap(), 2)
        .await
        .unwrap();
    assert_eq!(seqs(&page.records), sent_seqs[3..5]);

    // AFTER_SEQUENCE_NUMBER of the 3rd resumes at the 4th; AT_SEQUENCE_NUMBER at the 3rd.
    let third = SequenceNumber(sent_seqs[2].clone());
    let (after_third, _) = read(
        &source,
        &shard0,
        IteratorPosition::AfterSequence(third.clone()),
    )
    .await;
    assert_eq!(seqs(&after_third), sent_seqs[3..]);
    let (at_third, _) = read(&source, &shard0, IteratorPosition::AtSequence(third)).await;
    assert_eq!(seqs(&at_third), sent_seqs[2..]);

    // LATEST sees only what is put after the iterator was taken.
    let latest = source
        .shard_iterator(&shard0, &IteratorPosition::Latest)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let split_ms = support::now_ms();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = vec![
        put(&client, &arn, "late-a", b"late 1").await,
        put(&client, &arn, "late-b", b"late 2").await,
    ];
    let page = source.get_records(&latest, 1000).await.unwrap();
    assert_eq!(seqs(&page.records), late);
    assert_eq!(key_and_data(&page.records[1]), ("late-b", &b"late 2"[..]));

    // AT_TIMESTAMP: the first record that arrived at or after the timestamp.
    let (since, _) = read(&source, &shard0, IteratorPosition::AtTimestamp(split_ms)).await;
    assert_eq!(seqs(&since), late);
    let (since_start, _) = read(
        &source,
        &shard0,
        IteratorPosition::AtTimestamp(before - 1000),
    )
    .await;
    assert_eq!(since_start.len(), 12);
}

#[tokio::test]
async fn a_split_parent_ends_with_no_next_iterator_and_names_both_children_which_then_get_the_new_records(
) {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 1).await;
    let (name, arn) = (stream.name.clone(), stream.arn.clone());
    let source = connect(&arn).await.expect("connect");
    let parent = shard("shardId-000000000000");
    let before: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("k{i}"), format!("before {i}").into_bytes()))
        .collect();
    let before_seqs = put_batch(&client, &arn, &before).await;

    let middle = middle_hash_key(&client, &arn, parent.as_str()).await;
    client
        .split_shard()
        .stream_arn(&arn)
        .shard_to_split(parent.as_str())
        .new_starting_hash_key(&middle)
        .send()
        .await
        .expect("SplitShard");
    support::wait_active(&client, &name).await;

    // list_shards: the closed parent and its two children.
    let shards = source.list_shards().await.expect("list_shards");
    assert_eq!(shards.len(), 3, "{shards:?}");
    assert_eq!(
        shards[0],
        ShardInfo {
            shard_id: parent.clone(),
            parent_shard_ids: vec![],
        }
    );
    let children = shards[1..].to_vec();
    assert!(
        children
            .iter()
            .all(|c| c.parent_shard_ids == vec![parent.clone()]),
        "{children:?}"
    );

    // A record put after the split lands in a child, not in the parent.
    let after_seq = put(&client, &arn, "after-split", b"after").await;

    let (records, last) = read(&source, &parent, IteratorPosition::TrimHorizon).await;
    assert_eq!(seqs(&records), before_seqs);
    assert_eq!(last.next_iterator, None, "the closed parent ends");
    assert_eq!(last.child_shards, children);

    let mut found = Vec::new();
    for child in &children {
        let (records, page) = read(&source, &child.shard_id, IteratorPosition::TrimHorizon).await;
        assert!(page.next_iterator.is_some(), "{} is open", child.shard_id);
        found.extend(records.iter().map(|r| (child.shard_id.clone(), r.clone())));
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1.sequence_number.as_str(), after_seq);
    assert_eq!(key_and_data(&found[0].1), ("after-split", &b"after"[..]));
    assert!(shard_ids(&children).contains(&found[0].0.as_str()));
}

#[tokio::test]
async fn merging_two_shards_gives_a_child_with_both_as_parents() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 2).await;
    let (name, arn) = (stream.name.clone(), stream.arn.clone());
    let source = connect(&name).await.expect("connect");
    let (left, right) = (shard("shardId-000000000000"), shard("shardId-000000000001"));
    put(&client, &arn, "k", b"before the merge").await;

    client
        .merge_shards()
        .stream_arn(&arn)
        .shard_to_merge(left.as_str())
        .adjacent_shard_to_merge(right.as_str())
        .send()
        .await
        .expect("MergeShards");
    support::wait_active(&client, &name).await;

    let shards = source.list_shards().await.expect("list_shards");
    assert_eq!(shard_ids(&shards[..2]), [left.as_str(), right.as_str()]);
    assert!(shards[..2].iter().all(|s| s.parent_shard_ids.is_empty()));
    assert_eq!(shards.len(), 3, "{shards:?}");
    let child = shards[2].clone();
    assert_eq!(child.parent_shard_ids, vec![left.clone(), right.clone()]);

    // Both parents end and name the same child.
    for parent in [&left, &right] {
        let (_, last) = read(&source, parent, IteratorPosition::TrimHorizon).await;
        assert_eq!(last.next_iterator, None, "{parent} ends");
        assert_eq!(last.child_shards, vec![child.clone()], "{parent}");
    }
    let seq = put(&client, &arn, "k", b"after the merge").await;
    let (records, _) = read(&source, &child.shard_id, IteratorPosition::TrimHorizon).await;
    assert_eq!(seqs(&records), [seq.as_str()]);
}

#[tokio::test]
async fn connecting_to_a_missing_stream_fails_with_stream_not_found_and_what_was_given() {
    let client = support::kinesis_client().await;
    // A real ARN of this server (its account and region), for a stream that does not exist.
    let stream = TestStream::create(&client, "kinesis-source", 1).await;
    let arn = stream.arn.clone();
    let missing_name = support::unique("missing");
    let missing_arn = format!("{}/{missing_name}", arn.rsplit_once('/').unwrap().0);

    for given in [missing_name.as_str(), missing_arn.as_str()] {
        let error = match connect(given).await {
            Ok(_) => panic!("connect({given}) succeeded"),
            Err(error) => error,
        };
        assert_eq!(error.to_string(), format!("Stream not found: {given}"));
        assert_eq!(format!("{error:#}"), format!("Stream not found: {given}"));
    }
}

#[tokio::test]
async fn a_garbage_iterator_or_one_of_a_deleted_stream_is_an_error_not_a_panic() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 1).await;
    let (name, arn) = (stream.name.clone(), stream.arn.clone());
    let source = connect(&arn).await.expect("connect");
    let shard0 = shard("shardId-000000000000");
    put(&client, &arn, "k", b"x").await;

    // kinesis-local answers a malformed iterator with an HTTP 500 and an empty body (it
    // fails to decrypt it): no error code, so not a throttle but `Other`, as real AWS's
    // InvalidArgumentException (400) is.
    let garbage = source.get_records("garbage", 10).await;
    match &garbage {
        Err(SourceError::Other(text)) => assert!(text.contains("HTTP 500"), "{text}"),
        other => panic!("{other:?}"),
    }
    let garbage = source.get_records("", 10).await;
    assert!(garbage.is_err(), "{garbage:?}");

    // Reading a shard the stream does not have.
    let missing = source
        .shard_iterator(
            &shard("shardId-000000000099"),
            &IteratorPosition::TrimHorizon,
        )
        .await;
    assert!(
        matches!(missing, Err(SourceError::NotFound(_))),
        "{missing:?}"
    );

    // An iterator of a stream deleted since.
    let iterator = source
        .shard_iterator(&shard0, &IteratorPosition::TrimHorizon)
        .await
        .expect("GetShardIterator");
    client
        .delete_stream()
        .stream_name(&name)
        .send()
        .await
        .expect("DeleteStream");
    let deadline = Instant::now() + ACTIVE_WITHIN;
    while client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "{name} still there after {ACTIVE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone = source.get_records(&iterator, 10).await;
    assert!(matches!(gone, Err(SourceError::NotFound(_))), "{gone:?}");
    let listed = source.list_shards().await;
    assert!(
        matches!(listed, Err(SourceError::NotFound(_))),
        "{listed:?}"
    );
}

/// What a corrupted iterator comes back as (issue 10), as the engine sees it: kinesis-local
/// cannot decrypt it and answers HTTP 500 with an empty body, which the SDK cannot parse
/// (a response error, no error code), every time word for word. A 5xx without an error
/// code is no throttle: the source says `Other` (as for AWS's InvalidArgumentException),
/// so the engine backs off and, after a run of identical answers, re-opens the iterator
/// at its position (see `engine::shard`). A real iterator still reads afterwards: the
/// server holds no broken state. moto (the second Kinesis) answers HTTP 500 too, with an
/// HTML page: the same classification, another text.
#[tokio::test]
async fn a_truncated_iterator_is_an_http_500_with_no_error_code_the_same_on_every_call() {
    let client = support::kinesis_client().await;
    let stream = TestStream::create(&client, "kinesis-source", 1).await;
    let source = connect(&stream.arn).await.expect("connect");
    let shard0 = shard("shardId-000000000000");
    let seq = put(&client, &stream.arn, "k", b"x").await;
    let iterator = source
        .shard_iterator(&shard0, &IteratorPosition::TrimHorizon)
        .await
        .expect("GetShardIterator");
    let truncated = &iterator[..iterator.len() / 2];

    let expected = SourceError::Other("response error: unhandled error: Error (HTTP 500)".into());
    for call in 1..=3 {
        let answer = source.get_records(truncated, 10).await;
        assert_eq!(
            answer.as_ref().err(),
            Some(&expected),
            "call {call}: {answer:?}"
        );
    }
    let page = source.get_records(&iterator, 10).await.expect("GetRecords");
    assert_eq!(seqs(&page.records), [seq.as_str()]);

    // moto.
    let moto = aws_sdk_kinesis::Client::new(&support::sdk_config(&support::moto_endpoint()).await);
    let name = support::unique("kinesis-source");
    let arn = support::create_stream(&moto, &name, 1).await;
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    let source = KinesisSource::connect(&factory, &arn)
        .await
        .expect("connect to moto");
    let iterator = source
        .shard_iterator(&shard0, &IteratorPosition::TrimHorizon)
        .await
        .expect("GetShardIterator");
    let answer = source
        .get_records(&iterator[..iterator.len() / 2], 10)
        .await;
    moto.delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DeleteStream");
    match answer {
        Err(SourceError::Other(text)) => assert!(
            text.starts_with("response error: ") && text.ends_with("(HTTP 500)"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
}
