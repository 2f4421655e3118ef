//! FilterCriteria end to end against real local servers: a Kinesis stream on kinesis-local
//! and a DynamoDB table stream on moto, read by the daemon with filters. Only matching
//! records reach the function, the others are counted as filtered (FilteredOutEventCount,
//! read from the admin API) and the checkpoint moves past them, trailing ones included.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esm_sim::admin::client::AdminClient;
use esm_sim::checkpoint::embedded::EmbeddedStore;
use esm_sim::checkpoint::{Checkpoint, CheckpointStore};
use esm_sim::function::tap::Observer;
use esm_sim::function::InvokeResult;
use esm_sim::model::{RecordBody, SequenceNumber, ShardId, StreamRecord};
use serde_json::Value;
use support::daemon::Daemon;

const MAPPING: &str = "filtered";

/// What reached the function: (sequence number, data or event name).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn recording_tap() -> (Seen, Observer) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let tap: Observer = Arc::new(
        move |_: &ShardId, records: &[StreamRecord], _: &InvokeResult| {
            let mut seen = sink.lock().expect("lock");
            for record in records {
                let what = match &record.body {
                    RecordBody::Kinesis { data, .. } => String::from_utf8_lossy(data).into_owned(),
                    RecordBody::Dynamodb(change) => change.event_name.as_str().to_string(),
                };
                seen.push((record.sequence_number.0.clone(), what));
            }
        },
    );
    (seen, tap)
}

/// A config with one mapping of `stream_arn` to a function that always succeeds, the
/// given filters (TOML literal strings), an admin API on a free port, and a fast pace.
fn filtered_config(dir: &std::path::Path, stream_arn: &str, patterns: &[&str]) -> String {
    let filters: Vec<String> = patterns
        .iter()
        .map(|p| format!("{{ pattern = '{p}' }}"))
        .collect();
    format!(
        r#"state_dir = "{state}"

[admin]
listen = "127.0.0.1:0"

[[functions]]
name = "succeeds"

[[mappings]]
name = "{MAPPING}"
event_source_arn = "{stream_arn}"
function_name = "succeeds"
starting_position = "TRIM_HORIZON"
batch_size = 100
filter_criteria = {{ filters = [{filters}] }}

[mappings.pace]
poll_interval_ms = 100
min_read_interval_ms = 50
discovery_interval_seconds = 1
shutdown_grace_seconds = 2
"#,
        state = dir.join("state").display(),
        filters = filters.join(", ")
    )
}

/// Runs the daemon on `config_text` until `done` holds for the mapping's only shard as the
/// admin API shows it, then stops it cleanly; returns that shard and the checkpoint stored.
async fn run_daemon_until(
    config_text: &str,
    dir: &tempfile::TempDir,
    tap: Observer,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> (Value, Checkpoint) {
    let daemon = Daemon::start(config_text, dir.path(), Some(tap));
    let state = dir.path().join("state");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the shard was: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(url) = std::fs::read_to_string(state.join("admin.addr")) else {
            continue;
        };
        let client = AdminClient::new(&url, None).expect("admin URL");
        let Ok(answer) = client.get(&format!("/shards?mapping={MAPPING}")).await else {
            continue;
        };
        let shards = answer["shards"].as_array().cloned().unwrap_or_default();
        assert!(shards.len() <= 1, "one shard: {answer}");
        if let Some(shard) = shards.first() {
            last = shard.clone();
            if done(shard) {
                break;
            }
        }
    }
    daemon.stop().await;
    let store = EmbeddedStore::open(
        &state.join("checkpoints.redb"),
        std::time::Duration::from_secs(1),
    )
    .expect("checkpoint store");
    let checkpoints = store.load_all(MAPPING).expect("checkpoints");
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    let checkpoint = checkpoints.into_values().next().expect("one checkpoint");
    (last, checkpoint)
}

fn count(shard: &Value, field: &str) -> u64 {
    shard[field].as_u64().unwrap_or(0)
}

/// Puts `records` (partition key, data, whether a filter keeps it) on a new one-shard
/// stream, runs the daemon with `patterns` until the checkpoint passes the last record,
/// and checks that exactly the kept records reached the function, in order, the others
/// counted as filtered, and the checkpoint moved past the trailing filtered ones.
async fn kinesis_filter_case(records: &[(&str, &str, bool)], patterns: &[&str]) {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("filter"), 1).await;
    let mut sequence_numbers = Vec::new();
    for (key, data, _) in records {
        let put = support::put_record(&kinesis, &stream_arn, key, data).await;
        sequence_numbers.push(put.sequence_number);
    }
    let expected: Vec<(String, String)> = records
        .iter()
        .zip(&sequence_numbers)
        .filter(|((_, _, kept), _)| *kept)
        .map(|((_, data, _), seq)| (seq.clone(), data.to_string()))
        .collect();
    let filtered = (records.len() - expected.len()) as u64;
    let last = sequence_numbers.last().expect("records").clone();

    let dir = tempfile::tempdir().expect("tempdir");
    let text = filtered_config(dir.path(), &stream_arn, patterns);
    let (seen, tap) = recording_tap();
    let (shard, checkpoint) = run_daemon_until(&text, &dir, tap, "every record done", |shard| {
        shard["checkpoint"].as_str() == Some(last.as_str())
    })
    .await;
    support::delete_stream(&kinesis, &stream_arn).await;

    assert_eq!(
        *seen.lock().expect("lock"),
        expected,
        "only the matching records, in order"
    );
    assert_eq!(count(&shard, "records_filtered"), filtered, "{shard}");
    assert_eq!(
        count(&shard, "records_succeeded"),
        expected.len() as u64,
        "{shard}"
    );
    assert_eq!(
        checkpoint,
        Checkpoint::After(SequenceNumber(last)),
        "the checkpoint moved past the trailing filtered records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_records_that_match_no_filter_are_skipped_counted_and_checkpointed_past() {
    kinesis_filter_case(
        &[
            ("k", r#"{"kind":"order","amount":5}"#, true),
            ("k", "not json", false),
            ("k", r#"{"kind":"order","amount":0}"#, false),
            ("k", r#"{"kind":"Order","amount":3}"#, false),
            ("k", r#"{"kind":"refund","amount":7}"#, false),
            ("vip", "plain text from a vip", true),
            ("k", r#"{"kind":"order","amount":12.5}"#, true),
            ("k", r#"{"kind":"order","amount":"9"}"#, false),
            ("k", "trailing non-JSON", false),
            ("k", r#"{"kind":"audit"}"#, false),
        ],
        &[
            r#"{"data": {"kind": ["order"], "amount": [{"numeric": [">", 0]}]}}"#,
            r#"{"partitionKey": ["vip"]}"#,
        ],
    )
    .await;
}

/// The operators issue 15 added, end to end: `$or` across fields (one branch on `data`,
/// one on `partitionKey`, so data that is not JSON can still match), `suffix`,
/// `equals-ignore-case` and `anything-but` with a list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_records_are_filtered_with_or_suffix_and_equals_ignore_case() {
    kinesis_filter_case(
        &[
            ("k", r#"{"file":"cat.png","state":"READY"}"#, true),
            ("k", r#"{"file":"cat.png","state":"failed"}"#, false),
            ("k", r#"{"file":"cat.jpg","state":"ready"}"#, false),
            ("k", r#"{"file":"cat.PNG","state":"Ready"}"#, false),
            ("user-17", "not json but the key ends with -17", true),
            ("user-18", "not json", false),
            ("k", r#"{"file":"dog.png","state":"ready"}"#, true),
            ("k", r#"{"region":"eu-west-1"}"#, true),
            ("k", r#"{"region":"us-east-1"}"#, false),
            ("k", r#"{"region":"us-west-2"}"#, false),
        ],
        &[
            r#"{"$or": [{"data": {"file": [{"suffix": ".png"}], "state": [{"equals-ignore-case": "ready"}]}}, {"partitionKey": [{"suffix": "-17"}]}]}"#,
            r#"{"data": {"region": [{"anything-but": ["us-east-1", "us-west-2"]}]}}"#,
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_changes_are_filtered_on_event_name_and_a_new_image_attribute() {
    use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
    let (dynamodb, table, stream_arn) =
        support::create_table(StreamViewType::NewAndOldImages).await;
    let s = |v: &str| AttributeValue::S(v.to_string());
    let put = |pk: &'static str, status: &'static str| {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", s(pk))
            .item("status", s(status))
            .send()
    };
    let set_status = |pk: &'static str, status: &'static str| {
        dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", s(pk))
            .update_expression("SET #s = :s")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status))
            .send()
    };
    put("a", "active").await.expect("PutItem a"); // INSERT active: kept
    put("b", "pending").await.expect("PutItem b"); // INSERT pending: filtered
    set_status("b", "shipped").await.expect("UpdateItem b"); // MODIFY to shipped: kept
    set_status("a", "closed").await.expect("UpdateItem a"); // MODIFY to closed: filtered
    dynamodb
        .delete_item()
        .table_name(&table)
        .key("pk", s("b"))
        .send()
        .await
        .expect("DeleteItem b"); // REMOVE: filtered, the last record

    let dir = tempfile::tempdir().expect("tempdir");
    let text = filtered_config(
        dir.path(),
        &stream_arn,
        &[
            r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["active"]}}}}"#,
            r#"{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": [{"prefix": "ship"}]}}}}"#,
        ],
    );
    let (seen, tap) = recording_tap();
    let (shard, checkpoint) = run_daemon_until(&text, &dir, tap, "five changes done", |shard| {
        count(shard, "records_succeeded") + count(shard, "records_filtered") >= 5
            && count(shard, "records_waiting") == 0
    })
    .await;

    let seen = seen.lock().expect("lock");
    let names: Vec<&str> = seen.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, vec!["INSERT", "MODIFY"], "{seen:?}");
    assert_eq!(count(&shard, "records_filtered"), 3, "{shard}");
    assert_eq!(count(&shard, "records_succeeded"), 2, "{shard}");
    let last_delivered = SequenceNumber(seen[1].0.clone());
    match checkpoint {
        Checkpoint::After(seq) => assert!(
            seq > last_delivered,
            "the checkpoint {seq} moved past the trailing filtered records (last delivered {last_delivered})"
        ),
        other => panic!("checkpoint {other:?}"),
    }
}
