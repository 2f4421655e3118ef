//! `load`, `replay` and `record` against real local servers (tests/support): moto's
//! Kinesis for volume (fast PutRecords), kinesis-local only for small counts (about 265
//! PutRecords a second), moto's DynamoDB and DynamoDB Streams for the table flavour.
//!
//! The library functions are driven directly, with one exception that runs the binary and
//! reads its summary line. What reached a stream is always read back with the SDK
//! (ListShards + GetShardIterator + GetRecords), never taken from the commands' own
//! reports. Every stream and table name is unique, so the tests share the servers and run
//! in parallel.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use aws_sdk_dynamodb::types::StreamViewType;
use esm_sim::aws::AwsFactory;
use esm_sim::load::dynamodb_load::{Op, Planner};
use esm_sim::load::generate::Generator;
use esm_sim::load::traffic_file::{self, TrafficRecord};
use esm_sim::load::{self, Controls, LoadSpec, RecordLimit, StartFrom};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Helpers

fn factory(endpoint: &str) -> AwsFactory {
    AwsFactory::new(Some(endpoint.to_string()), "us-east-1".to_string())
}

fn quiet() -> Controls {
    Controls::default()
}

async fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&support::sdk_config(endpoint).await)
}

/// A record read back from a stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Got {
    partition_key: String,
    data: Vec<u8>,
    arrival_ms: i64,
}

/// Everything the stream holds, shard by shard (each in sequence order).
async fn read_stream(client: &aws_sdk_kinesis::Client, arn: &str) -> Vec<Got> {
    support::read_back::kinesis_records(client, arn)
        .await
        .iter()
        .map(|r| {
            let t = r.approximate_arrival_timestamp().expect("an arrival time");
            Got {
                partition_key: r.partition_key().unwrap_or_default().to_string(),
                data: r.data().as_ref().to_vec(),
                arrival_ms: t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000),
            }
        })
        .collect()
}

fn key_and_data(records: impl IntoIterator<Item = (String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = records.into_iter().collect();
    all.sort();
    all
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/traffic")
        .join(name)
}

// ---------------------------------------------------------------------------------------
// load --stream

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_puts_exactly_the_asked_records_of_producer_json_with_every_tenth_poison_at_the_target_rate(
) {
    let endpoint = support::moto_endpoint();
    let client = kinesis(&endpoint).await;
    let name = support::unique("load-200");
    let arn = support::create_stream(&client, &name, 2).await;

    let spec = LoadSpec {
        poison_every: Some(10),
        keys: 20,
        payload_bytes: 150,
        seed: 7,
        ..LoadSpec::new(100.0, 2.0)
    };
    let summary = load::load_stream(&factory(&endpoint), &name, &spec, &quiet())
        .await
        .expect("load");
    assert_eq!(summary.count, 200, "{summary}");
    assert_eq!(summary.failed, 0, "{summary}");
    let rate = summary.rate();
    assert!((80.0..=120.0).contains(&rate), "rate {rate}: {summary}");

    let got = read_stream(&client, &arn).await;
    assert_eq!(got.len(), 200);
    let mut seen_n = Vec::new();
    for record in &got {
        let json: Value = serde_json::from_slice(&record.data).expect("producer JSON");
        assert_eq!(json["producer"], 0);
        assert_eq!(json["key"], record.partition_key.as_str());
        assert!(record.partition_key.starts_with("user-"));
        assert!(json["amount"]
            .as_u64()
            .is_some_and(|a| (1..=1000).contains(&a)));
        assert_eq!(record.data.len(), 150);
        let n = json["n"].as_u64().expect("n");
        let poison = String::from_utf8_lossy(&record.data).contains("\"poison\":true");
        assert_eq!(poison, n % 10 == 9, "record {n}");
        seen_n.push(n);
    }
    seen_n.sort();
    assert_eq!(seen_n, (0..200).collect::<Vec<u64>>());
    // The records carry the generator's keys: the same seed, the same keys.
    let expected: BTreeMap<u64, String> = Generator::new(spec.generator_spec())
        .take(200)
        .map(|g| (g.k, g.partition_key))
        .collect();
    for record in &got {
        let json: Value = serde_json::from_slice(&record.data).unwrap();
        assert_eq!(expected[&json["n"].as_u64().unwrap()], record.partition_key);
    }
}

#[test]
fn the_load_binary_prints_a_summary_line_with_the_count_the_rate_and_no_failures() {
    let endpoint = support::moto_endpoint();
    let name = support::unique("load-cli");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let arn = runtime
        .block_on(async { support::create_stream(&kinesis(&endpoint).await, &name, 1).await });

    let output = Command::cargo_bin("esm-sim")
        .expect("the esm-sim binary")
        .args(["load", "--stream", &arn, "--rate", "50", "--duration", "1"])
        .args(["--poison-every", "5", "--keys", "3"])
        .args(["--endpoint-url", &endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("ESM_SIM_LOG", "warn")
        .timeout(Duration::from_secs(25))
        .output()
        .expect("esm-sim runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // No progress bar when stderr is not a terminal.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let line = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let rest = line
        .strip_prefix("put 50 records in ")
        .unwrap_or_else(|| panic!("{line}"));
    let (seconds, rest) = rest.split_once(" s: ").unwrap();
    let (rate, rest) = rest.split_once(" records/s ").unwrap();
    assert_eq!(
        rest,
        "(target 50/s); 0 throttled (retried), 0 other errors (retried), 0 failed"
    );
    let seconds: f64 = seconds.parse().unwrap();
    let rate: f64 = rate.parse().unwrap();
    assert!((0.9..=1.5).contains(&seconds), "{line}");
    assert!((40.0..=60.0).contains(&rate), "{line}");

    let got = runtime.block_on(async { read_stream(&kinesis(&endpoint).await, &arn).await });
    assert_eq!(got.len(), 50);
    let poison = got
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.data).contains("\"poison\":true"))
        .count();
    assert_eq!(poison, 10);
}

// ---------------------------------------------------------------------------------------
// replay

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_at_speed_0_puts_every_lines_partition_key_and_data_in_file_order() {
    let endpoint = support::moto_endpoint();
    let client = kinesis(&endpoint).await;
    let name = support::unique("replay-sample");
    let arn = support::create_stream(&client, &name, 1).await;
    let file = fixture("orders-sample.jsonl");
    let lines = traffic_file::read(&file).expect("the fixture parses");
    assert_eq!(lines.len(), 50);

    let started = Instant::now();
    let summary = load::replay(&factory(&endpoint), &file, &name, 0.0, &quiet())
        .await
        .expect("replay");
    assert_eq!(summary.count, 50, "{summary}");
    assert_eq!(summary.failed, 0);
    // The file spans about 6 s; at speed 0 it takes a fraction of that.
    assert!(started.elapsed() < Duration::from_secs(3), "{summary}");

    let got = read_stream(&client, &arn).await;
    let got: Vec<(String, Vec<u8>)> = got.into_iter().map(|g| (g.partition_key, g.data)).collect();
    let want: Vec<(String, Vec<u8>)> = lines
        .into_iter()
        .map(|l| (l.partition_key, l.data))
        .collect();
    // One shard: the stream holds them in the file's order, binary line included.
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_at_speed_1_spreads_arrivals_as_the_recorded_offsets_do() {
    let endpoint = support::kinesis_endpoint();
    let client = kinesis(&endpoint).await;
    let name = support::unique("replay-paced");
    let arn = support::create_stream(&client, &name, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.jsonl");
    let records: Vec<TrafficRecord> = [0, 500, 1000]
        .into_iter()
        .enumerate()
        .map(|(i, offset_ms)| TrafficRecord {
            partition_key: format!("user-{i}"),
            data: format!("{{\"n\":{i}}}").into_bytes(),
            offset_ms,
        })
        .collect();
    std::fs::write(&file, traffic_file::format(&records)).unwrap();

    let summary = load::replay(&factory(&endpoint), &file, &name, 1.0, &quiet())
        .await
        .expect("replay");
    assert_eq!(summary.count, 3, "{summary}");
    assert!((0.95..=1.5).contains(&summary.seconds), "{summary}");

    let got = read_stream(&client, &arn).await;
    assert_eq!(got.len(), 3);
    let keys: Vec<&str> = got.iter().map(|g| g.partition_key.as_str()).collect();
    assert_eq!(keys, ["user-0", "user-1", "user-2"]);
    let first_to_second = got[1].arrival_ms - got[0].arrival_ms;
    let first_to_last = got[2].arrival_ms - got[0].arrival_ms;
    assert!((400..=700).contains(&first_to_second), "{got:?}");
    assert!((900..=1300).contains(&first_to_last), "{got:?}");
}

// ---------------------------------------------------------------------------------------
// record

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_then_replay_into_a_second_stream_round_trips_partition_keys_and_data() {
    let endpoint = support::moto_endpoint();
    let client = kinesis(&endpoint).await;
    let source = support::unique("record-source");
    let copy = support::unique("record-copy");
    let source_arn = support::create_stream(&client, &source, 2).await;
    let copy_arn = support::create_stream(&client, &copy, 1).await;
    let aws = factory(&endpoint);

    let spec = LoadSpec {
        poison_every: Some(4),
        keys: 10,
        ..LoadSpec::new(200.0, 0.3)
    };
    let loaded = load::load_stream(&aws, &source, &spec, &quiet())
        .await
        .unwrap();
    assert_eq!(loaded.count, 60);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.jsonl");
    let recorded = load::record(
        &aws,
        &source_arn,
        &out,
        StartFrom::TrimHorizon,
        RecordLimit::Count(60),
        &quiet(),
    )
    .await
    .expect("record");
    assert_eq!(recorded.records, 60, "{recorded}");
    assert_eq!(recorded.shards, 2);
    let file = traffic_file::read(&out).expect("record writes a valid traffic file");
    assert_eq!(file.len(), 60);
    assert_eq!(file[0].offset_ms, 0);
    assert!(file.windows(2).all(|w| w[0].offset_ms <= w[1].offset_ms));
    // 60 records at 200/s were recorded about 0.3 s apart, first to last.
    assert!(file[59].offset_ms <= 2000, "{:?}", file[59]);

    let replayed = load::replay(&aws, &out, &copy, 0.0, &quiet())
        .await
        .unwrap();
    assert_eq!(replayed.count, 60);

    let original = read_stream(&client, &source_arn).await;
    let copied = read_stream(&client, &copy_arn).await;
    assert_eq!(
        key_and_data(copied.into_iter().map(|g| (g.partition_key, g.data))),
        key_and_data(original.into_iter().map(|g| (g.partition_key, g.data)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_from_latest_holds_only_what_arrives_while_it_runs() {
    let endpoint = support::moto_endpoint();
    let client = kinesis(&endpoint).await;
    let name = support::unique("record-latest");
    support::create_stream(&client, &name, 2).await;
    let aws = factory(&endpoint);
    let before = LoadSpec {
        seed: 1,
        ..LoadSpec::new(100.0, 0.05)
    };
    assert_eq!(
        load::load_stream(&aws, &name, &before, &quiet())
            .await
            .unwrap()
            .count,
        5
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("latest.jsonl");
    let recording = {
        let (aws, name, out) = (factory(&endpoint), name.clone(), out.clone());
        tokio::spawn(async move {
            let limit = RecordLimit::Duration(Duration::from_millis(2500));
            load::record(&aws, &name, &out, StartFrom::Latest, limit, &quiet()).await
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let during = LoadSpec {
        seed: 2,
        ..LoadSpec::new(50.0, 0.4)
    };
    assert_eq!(
        load::load_stream(&aws, &name, &during, &quiet())
            .await
            .unwrap()
            .count,
        20
    );
    let summary = recording.await.unwrap().expect("record");
    assert_eq!(summary.records, 20, "{summary}");
    let file = traffic_file::read(&out).unwrap();
    let expected: Vec<String> = Generator::new(during.generator_spec())
        .take(20)
        .map(|g| g.partition_key)
        .collect();
    let mut got: Vec<String> = file.iter().map(|r| r.partition_key.clone()).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// load --table

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_into_a_table_makes_its_stream_carry_each_items_insert_modify_and_remove_records_in_order(
) {
    let endpoint = support::moto_endpoint();
    let streams = aws_sdk_dynamodbstreams::Client::new(&support::sdk_config(&endpoint).await);
    let (_, table, stream_arn) = support::create_table(StreamViewType::NewAndOldImages).await;

    // Two keys, 30 changes: each item is put, updated, deleted on its 10th change, put again.
    let spec = LoadSpec {
        keys: 2,
        poison_every: Some(7),
        payload_bytes: 120,
        seed: 3,
        ..LoadSpec::new(60.0, 0.5)
    };
    let summary = load::load_table(&factory(&endpoint), &table, &spec, &quiet())
        .await
        .expect("load --table");
    assert_eq!(summary.count, 30, "{summary}");
    assert_eq!(summary.failed, 0, "{summary}");

    let mut planner = Planner::new(spec.keys);
    let plan: Vec<(String, String, bool)> = Generator::new(spec.generator_spec())
        .take(30)
        .map(|g| {
            let change = planner.plan(g);
            let event = match change.op {
                Op::Put => "INSERT",
                Op::Update => "MODIFY",
                Op::Delete => "REMOVE",
            };
            (
                event.to_string(),
                change.record.partition_key,
                change.record.poison,
            )
        })
        .collect();
    assert!(plan.iter().any(|p| p.0 == "REMOVE"), "{plan:?}");

    let mut got = Vec::new();
    for (_, record) in support::read_back::dynamodb_records(&streams, &stream_arn).await {
        let change = record.dynamodb().expect("a change");
        let key = match change.keys().and_then(|k| k.get("pk")) {
            Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(s)) => s.clone(),
            other => panic!("key {other:?}"),
        };
        let poison_in_new_image = change.new_image().and_then(|i| i.get("poison")).is_some();
        got.push((
            record
                .event_name()
                .expect("an event name")
                .as_str()
                .to_string(),
            key,
            poison_in_new_image,
        ));
    }
    // A poison DeleteItem has no new image, so it cannot show the marker there.
    let expected: Vec<(String, String, bool)> = plan
        .into_iter()
        .map(|(event, key, poison)| {
            let shown = poison && event != "REMOVE";
            (event, key, shown)
        })
        .collect();
    // Changes of different items may be in flight together: the order that holds is each
    // item's own.
    let per_item = |changes: &[(String, String, bool)]| {
        let mut items: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for (event, key, poison) in changes {
            items
                .entry(key.clone())
                .or_default()
                .push((event.clone(), *poison));
        }
        items
    };
    assert_eq!(got.len(), expected.len(), "{got:?}");
    assert_eq!(per_item(&got), per_item(&expected));
}

// ---------------------------------------------------------------------------------------
// errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_or_table_is_an_error_naming_it() {
    let endpoint = support::moto_endpoint();
    let aws = factory(&endpoint);
    let name = support::unique("no-such-stream");
    let spec = LoadSpec::new(10.0, 1.0);

    let error = load::load_stream(&aws, &name, &spec, &quiet())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), format!("Stream not found: {name}"));

    let error = load::replay(&aws, &fixture("orders-sample.jsonl"), &name, 0.0, &quiet())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), format!("Stream not found: {name}"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.jsonl");
    let limit = RecordLimit::Count(1);
    let error = load::record(&aws, &name, &out, StartFrom::TrimHorizon, limit, &quiet())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), format!("Stream not found: {name}"));
    assert!(!out.exists());

    let arn = format!("arn:aws:kinesis:us-east-1:123456789012:stream/{name}");
    let error = load::load_stream(&aws, &arn, &spec, &quiet())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), format!("Stream not found: {arn}"));

    let error = load::load_table(&aws, &name, &spec, &quiet())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), format!("Table not found: {name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traffic_file_stops_replay_before_anything_is_put() {
    let endpoint = support::moto_endpoint();
    let client = kinesis(&endpoint).await;
    let name = support::unique("replay-bad");
    let arn = support::create_stream(&client, &name, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"partition_key\":\"a\",\"data\":\"x\"}\n{\"partition_key\":\"b\"}\n",
    )
    .unwrap();
    let error = load::replay(&factory(&endpoint), &file, &name, 0.0, &quiet())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("{}:2: has neither data nor data_base64", file.display())
    );
    assert!(read_stream(&client, &arn).await.is_empty());
}
