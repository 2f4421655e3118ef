//! The DynamoDB Streams source against a real server (moto, started by `scripts/test.sh`):
//! tables with streams are written through the DynamoDB API and read back through the
//! source, as the engine reads them.
//!
//! Where moto differs from AWS (checked against moto 5.2's behaviour, not assumed):
//! - a stream has exactly one shard, which never closes, and iterators never expire, so
//!   shard lineage, shard ends, expiry and trimming are tested on the simulated backend and
//!   in the source's unit tests;
//! - records say `eventVersion` "1.0" and `awsRegion` "us-east-1" whatever the region (the
//!   source does not pass either on: the event encoder writes "1.1" and the mapping's region);
//! - `SizeBytes` is the length of moto's JSON of the `dynamodb` part, an overestimate;
//! - TTL deletions never happen, so no record has a `userIdentity`.
//!
//! Which images a record carries for each view type and event is as AWS documents it.
//!
//! The faults moto never produces (TrimmedDataAccessException, ExpiredIteratorException,
//! throttles, 5xx, malformed answers, paginated and split shard lists) are injected by a
//! small HTTP proxy in front of moto (`support::fault_proxy`), so the source's handling of
//! them is tested over the SDK's real wire path too.

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as DdbValue, StreamViewType as DdbViewType};
use aws_sdk_dynamodbstreams::types::AttributeValue;
use aws_smithy_types::Blob;
use esm_sim::aws::AwsFactory;
use esm_sim::event::{assemble_event, encode_record, EventContext};
use esm_sim::model::{
    AttributeMap, AttributeMapRef, DynamodbChange, DynamodbEventName, RecordBody, ShardId,
    StreamRecord, StreamViewType,
};
use esm_sim::source::dynamodb_streams::{attribute_json, DynamodbStreamsSource};
use esm_sim::source::{IteratorPosition, SourceError, StreamSource};
use serde_json::{json, Value};
use support::create_table;

async fn source(stream_arn: &str) -> DynamodbStreamsSource {
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    DynamodbStreamsSource::connect(&factory, stream_arn)
        .await
        .expect("connect")
}

fn s(v: &str) -> DdbValue {
    DdbValue::S(v.into())
}

fn n(v: &str) -> DdbValue {
    DdbValue::N(v.into())
}

/// PutItem {pk: "a", n: 1, keep: "x"}, UpdateItem SET n = 2, DeleteItem.
async fn insert_modify_remove(client: &aws_sdk_dynamodb::Client, table: &str) {
    client
        .put_item()
        .table_name(table)
        .item("pk", s("a"))
        .item("n", n("1"))
        .item("keep", s("x"))
        .send()
        .await
        .expect("PutItem");
    client
        .update_item()
        .table_name(table)
        .key("pk", s("a"))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", n("2"))
        .send()
        .await
        .expect("UpdateItem");
    client
        .delete_item()
        .table_name(table)
        .key("pk", s("a"))
        .send()
        .await
        .expect("DeleteItem");
}

async fn put(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) {
    client
        .put_item()
        .table_name(table)
        .item("pk", s(pk))
        .send()
        .await
        .expect("PutItem");
}

/// The stream's only shard (moto has one per stream).
async fn only_shard(src: &DynamodbStreamsSource) -> ShardId {
    let shards = src.list_shards().await.expect("list_shards");
    assert_eq!(shards.len(), 1, "{shards:?}");
    assert!(shards[0].parent_shard_ids.is_empty());
    shards[0].shard_id.clone()
}

/// Every record from `position` on, reading pages of `limit` until one comes back empty.
async fn read_from(
    src: &DynamodbStreamsSource,
    position: IteratorPosition,
    limit: usize,
) -> Vec<StreamRecord> {
    let shard = only_shard(src).await;
    let mut iterator = src
        .shard_iterator(&shard, &position)
        .await
        .expect("shard_iterator");
    let mut records = Vec::new();
    loop {
        let page = src
            .get_records(&iterator, limit)
            .await
            .expect("get_records");
        assert_eq!(page.millis_behind_latest, None);
        assert!(page.lost_to_retention.is_none());
        assert!(page.child_shards.is_empty());
        if page.records.is_empty() {
            return records;
        }
        records.extend(page.records);
        iterator = page.next_iterator.expect("moto's shard never closes");
    }
}

fn change(record: &StreamRecord) -> &DynamodbChange {
    match &record.body {
        RecordBody::Dynamodb(change) => change,
        other => panic!("not a DynamoDB record: {other:?}"),
    }
}

/// The DynamoDB JSON text the change holds for this map.
fn map(v: Value) -> String {
    match v {
        Value::Object(m) => AttributeMap::from_map(&m).as_str().to_string(),
        other => panic!("not an object: {other}"),
    }
}

/// A change's (NewImage, OldImage) as their text.
fn images(c: &DynamodbChange) -> (Option<String>, Option<String>) {
    let text = |image: Option<AttributeMapRef<'_>>| image.map(|m| m.as_str().to_string());
    (text(c.new_image()), text(c.old_image()))
}

#[tokio::test]
async fn new_and_old_images_give_an_insert_a_new_image_a_modify_both_and_a_remove_the_old_image() {
    let (client, name, arn) = create_table(DdbViewType::NewAndOldImages).await;
    insert_modify_remove(&client, &name).await;
    let src = source(&arn).await;
    assert_eq!(src.stream_arn(), arn);
    assert_eq!(src.kind(), esm_sim::model::StreamKind::Dynamodb);
    assert_eq!(
        src.stream_view_type(),
        Some(StreamViewType::NewAndOldImages)
    );
    let started = support::now_ms();
    let records = read_from(&src, IteratorPosition::TrimHorizon, 1000).await;
    assert_eq!(records.len(), 3);
    let names: Vec<_> = records.iter().map(|r| change(r).event_name).collect();
    assert_eq!(
        names,
        [
            DynamodbEventName::Insert,
            DynamodbEventName::Modify,
            DynamodbEventName::Remove
        ]
    );
    let key = map(json!({"pk": {"S": "a"}}));
    let v1 = map(json!({"pk": {"S": "a"}, "n": {"N": "1"}, "keep": {"S": "x"}}));
    let v2 = map(json!({"pk": {"S": "a"}, "n": {"N": "2"}, "keep": {"S": "x"}}));
    let (insert, modify, remove) = (
        change(&records[0]),
        change(&records[1]),
        change(&records[2]),
    );
    assert_eq!(images(insert), (Some(v1.clone()), None));
    assert_eq!(images(modify), (Some(v2.clone()), Some(v1)));
    assert_eq!(images(remove), (None, Some(v2)));
    for (i, r) in records.iter().enumerate() {
        let c = change(r);
        assert_eq!(c.keys().as_str(), key);
        assert!(!c.event_id().is_empty());
        assert!(c.size_bytes > 0);
        assert_eq!(c.stream_view_type, StreamViewType::NewAndOldImages);
        assert!(!c.ttl_deletion);
        assert!(
            (started - 600_000..=started + 60_000).contains(&r.approximate_arrival_ms),
            "arrival {} is not about now ({started})",
            r.approximate_arrival_ms
        );
        if i > 0 {
            assert!(r.sequence_number > records[i - 1].sequence_number);
        }
    }
    let ids: std::collections::BTreeSet<_> = records.iter().map(|r| change(r).event_id()).collect();
    assert_eq!(ids.len(), 3, "eventIDs are distinct");
    // Pages of one record read the same records.
    let one_by_one = read_from(&src, IteratorPosition::TrimHorizon, 1).await;
    assert_eq!(one_by_one, records);
}

#[tokio::test]
async fn keys_only_new_image_and_old_image_streams_carry_only_what_their_view_type_gives() {
    let a = map(json!({"pk": {"S": "a"}}));
    let v1 = map(json!({"pk": {"S": "a"}, "n": {"N": "1"}, "keep": {"S": "x"}}));
    let v2 = map(json!({"pk": {"S": "a"}, "n": {"N": "2"}, "keep": {"S": "x"}}));
    type Images = (Option<String>, Option<String>);
    // (new, old) for INSERT, MODIFY, REMOVE.
    let cases: [(DdbViewType, StreamViewType, [Images; 3]); 3] = [
        (
            DdbViewType::KeysOnly,
            StreamViewType::KeysOnly,
            [(None, None), (None, None), (None, None)],
        ),
        (
            DdbViewType::NewImage,
            StreamViewType::NewImage,
            [
                (Some(v1.clone()), None),
                (Some(v2.clone()), None),
                (None, None),
            ],
        ),
        (
            DdbViewType::OldImage,
            StreamViewType::OldImage,
            [
                (None, None),
                (None, Some(v1.clone())),
                (None, Some(v2.clone())),
            ],
        ),
    ];
    for (view, model_view, expected) in cases {
        let (client, name, arn) = create_table(view).await;
        insert_modify_remove(&client, &name).await;
        let src = source(&arn).await;
        assert_eq!(src.stream_view_type(), Some(model_view));
        let records = read_from(&src, IteratorPosition::TrimHorizon, 100).await;
        assert_eq!(records.len(), 3, "{model_view:?}");
        for (r, (new_image, old_image)) in records.iter().zip(expected) {
            let c = change(r);
            assert_eq!(c.stream_view_type, model_view);
            assert_eq!(c.keys().as_str(), a, "{model_view:?} {:?}", c.event_name);
            assert_eq!(
                images(c),
                (new_image, old_image),
                "{model_view:?} {:?}",
                c.event_name
            );
        }
    }
}

#[test]
fn every_attribute_type_converts_to_dynamodb_json() {
    let cases = [
        (AttributeValue::S("x".into()), json!({"S": "x"})),
        (AttributeValue::N("-1.5e3".into()), json!({"N": "-1.5e3"})),
        (
            AttributeValue::B(Blob::new(vec![0, 1, 2])),
            json!({"B": "AAEC"}),
        ),
        (
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
            json!({"SS": ["a", "b"]}),
        ),
        (
            AttributeValue::Ns(vec!["1".into(), "2.5".into()]),
            json!({"NS": ["1", "2.5"]}),
        ),
        (
            AttributeValue::Bs(vec![Blob::new(b"hi".to_vec()), Blob::new(Vec::new())]),
            json!({"BS": ["aGk=", ""]}),
        ),
        (AttributeValue::Null(true), json!({"NULL": true})),
        (AttributeValue::Bool(false), json!({"BOOL": false})),
        (AttributeValue::L(Vec::new()), json!({"L": []})),
        (AttributeValue::M(HashMap::new()), json!({"M": {}})),
        (
            AttributeValue::M(HashMap::from([
                ("z".to_string(), AttributeValue::N("1".into())),
                (
                    "a".to_string(),
                    AttributeValue::L(vec![
                        AttributeValue::S("s".into()),
                        AttributeValue::M(HashMap::from([(
                            "deep".to_string(),
                            AttributeValue::Bool(true),
                        )])),
                    ]),
                ),
            ])),
            json!({"M": {"a": {"L": [{"S": "s"}, {"M": {"deep": {"BOOL": true}}}]}, "z": {"N": "1"}}}),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(attribute_json(&value), expected, "{value:?}");
    }
    // Map keys come out sorted, whatever order the map holds them in.
    let many: HashMap<String, AttributeValue> = (0..50)
        .map(|i| (format!("k{i:02}"), AttributeValue::N(i.to_string())))
        .collect();
    let text = attribute_json(&AttributeValue::M(many)).to_string();
    let keys: Vec<usize> = (0..50)
        .map(|i| text.find(&format!("\"k{i:02}\"")).unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
}

/// Sets are unordered in DynamoDB: sort their members before comparing.
fn sort_sets(value: &mut Value) {
    match value {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if let ("SS" | "NS" | "BS", Value::Array(items)) = (k.as_str(), &mut *v) {
                    items.sort_by_key(|i| i.to_string());
                } else {
                    sort_sets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_sets),
        _ => {}
    }
}

#[tokio::test]
async fn an_item_with_every_attribute_type_reads_back_as_dynamodb_json() {
    let (client, name, arn) = create_table(DdbViewType::NewImage).await;
    client
        .put_item()
        .table_name(&name)
        .item("pk", s("all"))
        .item("s", s("text ü \"q\""))
        .item("n", n("19.5"))
        .item("b", DdbValue::B(Blob::new(vec![0, 1, 2, 255])))
        .item("ss", DdbValue::Ss(vec!["gift".into(), "rush".into()]))
        .item("ns", DdbValue::Ns(vec!["1".into(), "2.5".into()]))
        .item(
            "bs",
            DdbValue::Bs(vec![Blob::new(b"hi".to_vec()), Blob::new(vec![7])]),
        )
        .item(
            "m",
            DdbValue::M(HashMap::from([
                ("sku".to_string(), s("A-1")),
                ("qty".to_string(), n("2")),
            ])),
        )
        .item("l", DdbValue::L(vec![s("x"), n("1"), DdbValue::Bool(true)]))
        .item("null", DdbValue::Null(true))
        .item("bool", DdbValue::Bool(false))
        .send()
        .await
        .expect("PutItem");
    let src = source(&arn).await;
    let records = read_from(&src, IteratorPosition::TrimHorizon, 10).await;
    assert_eq!(records.len(), 1);
    let mut got = Value::Object(change(&records[0]).new_image().expect("NewImage").to_map());
    let mut expected = json!({
        "pk": {"S": "all"},
        "s": {"S": "text ü \"q\""},
        "n": {"N": "19.5"},
        "b": {"B": "AAEC/w=="},
        "ss": {"SS": ["gift", "rush"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["aGk=", "Bw=="]},
        "m": {"M": {"sku": {"S": "A-1"}, "qty": {"N": "2"}}},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"BOOL": true}]},
        "null": {"NULL": true},
        "bool": {"BOOL": false}
    });
    sort_sets(&mut got);
    sort_sets(&mut expected);
    assert_eq!(got, expected);
}

#[tokio::test]
async fn after_sequence_number_resumes_after_a_record_and_latest_sees_only_later_writes() {
    let (client, name, arn) = create_table(DdbViewType::KeysOnly).await;
    for pk in ["k1", "k2", "k3"] {
        put(&client, &name, pk).await;
    }
    let src = source(&arn).await;
    let all = read_from(&src, IteratorPosition::TrimHorizon, 1000).await;
    assert_eq!(all.len(), 3);
    let after = read_from(
        &src,
        IteratorPosition::AfterSequence(all[0].sequence_number.clone()),
        1000,
    )
    .await;
    assert_eq!(after, all[1..]);
    let at = read_from(
        &src,
        IteratorPosition::AtSequence(all[1].sequence_number.clone()),
        1000,
    )
    .await;
    assert_eq!(at, all[1..]);
    let after_last = read_from(
        &src,
        IteratorPosition::AfterSequence(all[2].sequence_number.clone()),
        1000,
    )
    .await;
    assert!(after_last.is_empty());

    let shard = only_shard(&src).await;
    let latest = src
        .shard_iterator(&shard, &IteratorPosition::Latest)
        .await
        .unwrap();
    let page = src.get_records(&latest, 1000).await.unwrap();
    assert!(page.records.is_empty());
    put(&client, &name, "k4").await;
    let page = src
        .get_records(page.next_iterator.as_deref().unwrap(), 1000)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(
        change(&page.records[0]).keys().as_str(),
        map(json!({"pk": {"S": "k4"}}))
    );
    assert!(page.records[0].sequence_number > all[2].sequence_number);
}

#[tokio::test]
async fn connect_on_a_missing_stream_fails_with_stream_not_found_and_the_arn() {
    let (_, name, arn) = create_table(DdbViewType::KeysOnly).await;
    // The ARN of a stream of a table that does not exist, in the server's account.
    let missing = arn.replace(
        &format!(":table/{name}/"),
        &format!(":table/{}/", support::unique("no-such-table")),
    );
    assert_ne!(missing, arn);
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    let error = DynamodbStreamsSource::connect(&factory, &missing)
        .await
        .err()
        .expect("a missing stream fails");
    assert_eq!(error.to_string(), format!("Stream not found: {missing}"));
}

#[tokio::test]
async fn at_timestamp_and_iterators_not_made_by_the_source_are_refused() {
    let (_, _, arn) = create_table(DdbViewType::KeysOnly).await;
    let src = source(&arn).await;
    let shard = only_shard(&src).await;
    assert_eq!(
        src.shard_iterator(&shard, &IteratorPosition::AtTimestamp(0))
            .await
            .unwrap_err(),
        SourceError::Other("DynamoDB Streams has no AT_TIMESTAMP iterator".into())
    );
    let service_only = src
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .unwrap();
    let (prefix, service) = service_only.split_once('|').unwrap();
    assert_eq!(prefix, shard.as_str());
    assert!(matches!(
        src.get_records(service.split('|').nth(2).unwrap(), 10)
            .await,
        Err(SourceError::Other(_))
    ));
}

/// moto answers a malformed DynamoDB Streams iterator with HTTP 500 and an HTML page (no
/// error code): like kinesis-local's answer on Kinesis, no throttle but `Other`, so the
/// engine re-opens an iterator refused the same way again and again (issue 10).
#[tokio::test]
async fn a_truncated_iterator_is_a_codeless_http_500_and_not_a_throttle() {
    let (_, _, arn) = create_table(DdbViewType::KeysOnly).await;
    let src = source(&arn).await;
    let shard = only_shard(&src).await;
    let iterator = src
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .expect("GetShardIterator");
    let truncated = &iterator[..iterator.len() - 20];
    match src.get_records(truncated, 10).await {
        Err(SourceError::Other(text)) => assert!(text.ends_with("(HTTP 500)"), "{text}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn records_read_by_the_source_encode_as_the_lambda_dynamodb_event() {
    let (client, name, arn) = create_table(DdbViewType::NewAndOldImages).await;
    insert_modify_remove(&client, &name).await;
    let src = source(&arn).await;
    let shard = only_shard(&src).await;
    let iterator = src
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .unwrap();
    let page = src.get_records(&iterator, 100).await.unwrap();
    assert_eq!(page.records.len(), 3);
    let ctx = EventContext {
        shard_id: shard,
        event_source_arn: arn.as_str().into(),
        aws_region: "us-east-1".into(),
        invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
    };
    let fragments: Vec<Vec<u8>> = page
        .records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            encode_record(&ctx, r, &mut out);
            out
        })
        .collect();
    let mut event = Vec::new();
    assemble_event(fragments.iter().map(Vec::as_slice), &mut event);
    let event: Value = serde_json::from_slice(&event).expect("the event is JSON");
    let records = event["Records"].as_array().expect("Records");
    assert_eq!(records.len(), 3);
    let now_s = support::now_ms() / 1000;
    for (i, (r, source_record)) in records.iter().zip(&page.records).enumerate() {
        let c = change(source_record);
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "awsRegion",
                "dynamodb",
                "eventID",
                "eventName",
                "eventSource",
                "eventSourceARN",
                "eventVersion"
            ]
        );
        assert_eq!(r["eventID"], c.event_id());
        assert_eq!(r["eventName"], ["INSERT", "MODIFY", "REMOVE"][i]);
        assert_eq!(r["eventVersion"], "1.1");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["eventSourceARN"], arn.as_str());
        let d = &r["dynamodb"];
        let created = d["ApproximateCreationDateTime"]
            .as_i64()
            .expect("ApproximateCreationDateTime is a whole number of seconds");
        assert!((now_s - 600..=now_s + 60).contains(&created), "{created}");
        assert_eq!(created, source_record.approximate_arrival_ms / 1000);
        assert_eq!(d["Keys"], json!({"pk": {"S": "a"}}));
        assert_eq!(d["SequenceNumber"], source_record.sequence_number.as_str());
        assert_eq!(d["SizeBytes"].as_u64(), Some(c.size_bytes));
        assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert_eq!(d.get("NewImage").is_some(), i < 2, "{d}");
        assert_eq!(d.get("OldImage").is_some(), i > 0, "{d}");
    }
    assert_eq!(records[1]["dynamodb"]["OldImage"]["n"], json!({"N": "1"}));
    assert_eq!(records[1]["dynamodb"]["NewImage"]["n"], json!({"N": "2"}));
}

// ---------------------------------------------------------------------------------------
// Faults moto never produces (trimmed data, expired iterators, throttles, 5xx, garbage):
// a small HTTP proxy in front of moto answers chosen calls with an injected response and
// forwards everything else.

use support::fault_proxy::{Fault, FaultProxy};

/// A table with records `k1`, `k2` and a source that reads it through a fault proxy.
async fn proxied() -> (
    FaultProxy,
    DynamodbStreamsSource,
    ShardId,
    Vec<StreamRecord>,
) {
    let (client, name, arn) = create_table(DdbViewType::KeysOnly).await;
    put(&client, &name, "k1").await;
    put(&client, &name, "k2").await;
    let proxy = FaultProxy::start(support::moto_endpoint()).await;
    let factory = AwsFactory::new(Some(proxy.endpoint.clone()), "us-east-1".into());
    let src = DynamodbStreamsSource::connect(&factory, &arn)
        .await
        .expect("connect through the proxy");
    let shard = only_shard(&src).await;
    let all = read_from(&src, IteratorPosition::TrimHorizon, 1000).await;
    assert_eq!(all.len(), 2);
    (proxy, src, shard, all)
}

#[tokio::test]
async fn a_trimmed_iterator_is_reopened_at_trim_horizon_and_the_page_reports_records_lost_to_retention(
) {
    let (proxy, src, shard, all) = proxied().await;
    let iterator = src
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .unwrap();
    let first = src.get_records(&iterator, 1).await.unwrap();
    assert_eq!(first.records, all[..1]);
    proxy.inject(Fault::error(
        "GetRecords",
        400,
        "TrimmedDataAccessException",
    ));
    let opened_before = proxy.calls("GetShardIterator").len();
    let page = src
        .get_records(first.next_iterator.as_deref().unwrap(), 1)
        .await
        .unwrap();
    assert!(page.records.is_empty());
    assert_eq!(
        page.lost_to_retention,
        Some(esm_sim::source::LostRecords {
            count: None,
            first: None,
            last: None
        })
    );
    let reopened = proxy.calls("GetShardIterator");
    assert_eq!(reopened.len(), opened_before + 1);
    let request: Value = serde_json::from_str(reopened.last().unwrap()).unwrap();
    assert_eq!(request["ShardIteratorType"], "TRIM_HORIZON");
    assert_eq!(request["ShardId"], shard.as_str());
    // The new iterator reads from the oldest record the stream still holds, without
    // reporting the loss again.
    let next = page.next_iterator.expect("an iterator at TRIM_HORIZON");
    assert!(next.starts_with(&format!("{shard}|")), "{next}");
    let page = src.get_records(&next, 1000).await.unwrap();
    assert_eq!(page.records, all);
    assert_eq!(page.lost_to_retention, None);
}

#[tokio::test]
async fn a_checkpoint_that_is_already_trimmed_opens_at_trim_horizon_and_the_first_page_reports_the_loss(
) {
    let (proxy, src, shard, all) = proxied().await;
    proxy.inject(Fault::error(
        "GetShardIterator",
        400,
        "TrimmedDataAccessException",
    ));
    let iterator = src
        .shard_iterator(
            &shard,
            &IteratorPosition::AfterSequence(all[0].sequence_number.clone()),
        )
        .await
        .unwrap();
    assert!(
        iterator.starts_with(&format!("trimmed:{shard}|")),
        "{iterator}"
    );
    let page = src.get_records(&iterator, 1000).await.unwrap();
    assert_eq!(page.records, all);
    assert!(page.lost_to_retention.is_some());
    let next = page.next_iterator.unwrap();
    let page = src.get_records(&next, 1000).await.unwrap();
    assert!(page.records.is_empty());
    assert_eq!(page.lost_to_retention, None);
    // TRIM_HORIZON itself cannot be trimmed: the error is passed on.
    proxy.inject(Fault::error(
        "GetShardIterator",
        400,
        "TrimmedDataAccessException",
    ));
    assert_eq!(
        src.shard_iterator(&shard, &IteratorPosition::TrimHorizon)
            .await
            .unwrap_err(),
        SourceError::Other("TrimmedDataAccessException: injected".into())
    );
}

#[tokio::test]
async fn expired_iterators_throttles_server_errors_and_garbage_are_classified_for_the_engine() {
    let (proxy, src, shard, _) = proxied().await;
    let iterator = src
        .shard_iterator(&shard, &IteratorPosition::TrimHorizon)
        .await
        .unwrap();
    let cases = [
        (
            Fault::error("GetRecords", 400, "ExpiredIteratorException"),
            SourceError::ExpiredIterator,
        ),
        (
            Fault::error("GetRecords", 400, "LimitExceededException"),
            SourceError::Throttled("LimitExceededException: injected".into()),
        ),
        (
            Fault::error("GetRecords", 500, "InternalServerError"),
            SourceError::Throttled("InternalServerError: injected".into()),
        ),
        (
            Fault::error("GetRecords", 503, "SomethingNew"),
            SourceError::Throttled("SomethingNew: injected".into()),
        ),
        (
            Fault::error("GetRecords", 400, "ResourceNotFoundException"),
            SourceError::NotFound("ResourceNotFoundException: injected".into()),
        ),
        (
            Fault::error("GetRecords", 400, "AccessDeniedException"),
            SourceError::Other("AccessDeniedException: injected".into()),
        ),
    ];
    for (fault, expected) in cases {
        proxy.inject(fault);
        assert_eq!(src.get_records(&iterator, 10).await.unwrap_err(), expected);
    }
    // A 200 whose body is not the API's JSON, and records the model cannot hold: errors,
    // never a panic, never a record skipped in silence.
    proxy.inject(Fault {
        operation: "GetRecords",
        status: 200,
        body: "this is not json".into(),
    });
    assert!(src.get_records(&iterator, 10).await.is_err());
    proxy.inject(Fault {
        operation: "GetRecords",
        status: 200,
        body: r#"{"Records":[{"eventID":"e1","eventName":"INSERT","dynamodb":{"SequenceNumber":"5","StreamViewType":"KEYS_ONLY"}}],"NextShardIterator":"x"}"#.into(),
    });
    assert_eq!(
        src.get_records(&iterator, 10).await.unwrap_err(),
        SourceError::Other(format!(
            "DynamoDB stream record 5 (eventID \"e1\") has no Keys (shard {shard})"
        ))
    );
    // A page without NextShardIterator ends the shard.
    proxy.inject(Fault {
        operation: "GetRecords",
        status: 200,
        body: r#"{"Records":[]}"#.into(),
    });
    let page = src.get_records(&iterator, 10).await.unwrap();
    assert_eq!(page.next_iterator, None);
    // The shard list follows LastEvaluatedShardId, with each shard's parent.
    proxy.inject(Fault {
        operation: "DescribeStream",
        status: 200,
        body: r#"{"StreamDescription":{"Shards":[{"ShardId":"shardId-1"},{"ShardId":"shardId-2","ParentShardId":"shardId-1"}],"LastEvaluatedShardId":"shardId-2"}}"#.into(),
    });
    proxy.inject(Fault {
        operation: "DescribeStream",
        status: 200,
        body: r#"{"StreamDescription":{"Shards":[{"ShardId":"shardId-3","ParentShardId":"shardId-2"}]}}"#.into(),
    });
    let before = proxy.calls("DescribeStream").len();
    let shards = src.list_shards().await.unwrap();
    let lineage: Vec<(&str, Vec<&str>)> = shards
        .iter()
        .map(|s| {
            (
                s.shard_id.as_str(),
                s.parent_shard_ids.iter().map(ShardId::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        lineage,
        [
            ("shardId-1", vec![]),
            ("shardId-2", vec!["shardId-1"]),
            ("shardId-3", vec!["shardId-2"])
        ]
    );
    let calls = proxy.calls("DescribeStream");
    assert_eq!(calls.len(), before + 2);
    let second: Value = serde_json::from_str(&calls[before + 1]).unwrap();
    assert_eq!(second["ExclusiveStartShardId"], "shardId-2");
}
