//! `esm-sim inspect` end to end: records put into a Kinesis stream on kinesis-local, read
//! back by the binary for a `--from`/`--to` range, a `--count`, and the default count, in
//! JSON and text; and its argument errors.

mod support;

use serde_json::Value;
use support::binary::{run_async, run_offline, Output};

const SHARD: &str = "shardId-000000000000";

fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn seqs(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|v| {
            v["sequenceNumber"]
                .as_str()
                .expect("sequenceNumber")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_the_records_of_a_range_a_count_and_the_default_count() {
    let client = support::kinesis_client().await;
    let name = support::unique("inspect");
    let stream_arn = support::create_stream(&client, &name, 1).await;
    // Twelve records: JSON, then one plain text and one binary record.
    let mut data: Vec<Vec<u8>> = (0..10)
        .map(|n| format!(r#"{{"n":{n}}}"#).into_bytes())
        .collect();
    data.push(b"plain text".to_vec());
    data.push(vec![0xff, 0xfe, 0x00]);
    let mut put = Vec::new();
    for (n, bytes) in data.iter().enumerate() {
        let key = format!("key-{n}");
        put.push(
            support::put_record(&client, &stream_arn, &key, bytes)
                .await
                .sequence_number,
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = |extra: &[&str]| -> Vec<String> {
        ["inspect", "--stream", stream_arn.as_str(), "--shard", SHARD]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    // --from/--to, inclusive, by ARN.
    let out = run_async(
        dir.path(),
        base(&["--from", &put[2], "--to", &put[5], "--json"]),
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out);
    assert_eq!(seqs(&lines), put[2..=5].to_vec());
    for (i, line) in lines.iter().enumerate() {
        let n = i + 2;
        assert_eq!(line["partitionKey"], format!("key-{n}"));
        assert_eq!(line["data"], serde_json::json!({ "n": n }));
        assert_eq!(line["dataEncoding"], "json");
        assert_eq!(line["shardId"], SHARD);
        let arrival = line["approximateArrival"].as_str().expect("arrival");
        assert!(
            chrono::DateTime::parse_from_rfc3339(arrival).is_ok(),
            "RFC 3339: {arrival}"
        );
    }
    assert!(
        out.stderr.contains("4 record(s); reached --to"),
        "{}",
        out.stderr
    );

    // --count, by name; the last two records are text and base64.
    let out = run_async(dir.path(), {
        let mut args = base(&["--from", &put[8], "--count", "3", "--json"]);
        args[2] = name.clone();
        args
    })
    .await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out);
    assert_eq!(seqs(&lines), put[8..=10].to_vec());
    assert_eq!(lines[2]["data"], "plain text");
    assert_eq!(lines[2]["dataEncoding"], "utf-8");

    // Neither --to nor --count: 10 records; from record 5 there are only 7, and the read
    // stops at the tip instead of waiting.
    let out = run_async(dir.path(), base(&["--from", &put[0], "--json"])).await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(seqs(&json_lines(&out)), put[0..10].to_vec());
    let out = run_async(dir.path(), base(&["--from", &put[5]])).await;
    assert!(out.success, "{}", out.stderr);
    let text: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(text.len(), 7, "{}", out.stdout);
    assert!(text[0].starts_with(&format!("{}  ", put[5])), "{}", text[0]);
    assert!(
        text[0].contains(r#"key="key-5"  json={"n":5}"#),
        "{}",
        text[0]
    );
    assert!(text[6].ends_with(r#"base64="//4A""#), "{}", text[6]);
    assert!(
        out.stderr.contains("reached the newest record"),
        "{}",
        out.stderr
    );

    support::delete_stream(&client, &stream_arn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_of_a_missing_stream_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = support::unique("no-such-stream");
    let out = run_async(
        dir.path(),
        [
            "inspect", "--stream", &missing, "--shard", SHARD, "--from", "1",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(!out.success);
    assert!(
        out.stderr.contains(&format!("Stream not found: {missing}")),
        "{}",
        out.stderr
    );
}

#[test]
fn inspect_refuses_bad_arguments_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = ["inspect", "--stream", "s", "--shard", SHARD];
    let cases: [(&[&str], &str); 5] = [
        (&["--from", "12x"], "not a sequence number"),
        (
            &["--from", "1", "--to", "5", "--count", "2"],
            "cannot be used with",
        ),
        (&["--from", "1", "--count", "0"], "--count"),
        (&["--from", "9", "--to", "5"], "--to 5 is before --from 9"),
        (&["--to", "5"], "--from"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = run_offline(dir.path(), &args);
        assert!(!out.success, "{args:?} must fail");
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_a_dynamodb_streams_changes_with_event_names_keys_and_images() {
    use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
    let (dynamodb, table, stream_arn) =
        support::create_table(StreamViewType::NewAndOldImages).await;
    for (pk, n) in [("a", "1"), ("b", "2"), ("c", "3"), ("a", "4")] {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("n", AttributeValue::N(n.into()))
            .send()
            .await
            .expect("PutItem");
    }
    // The shard and the sequence numbers, read with the SDK directly.
    let streams = support::dynamodb_streams_client().await;
    let read_back = support::read_back::dynamodb_records(&streams, &stream_arn).await;
    let shard = read_back.first().expect("a record").0.clone();
    let seqs_put: Vec<String> = read_back
        .iter()
        .filter_map(|(_, r)| r.dynamodb().and_then(|d| d.sequence_number()))
        .map(str::to_string)
        .collect();
    assert_eq!(seqs_put.len(), 4, "four changes");

    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "inspect",
        "--stream",
        &stream_arn,
        "--shard",
        &shard,
        "--from",
        &seqs_put[1],
        "--to",
        &seqs_put[3],
        "--json",
    ];
    let out = run_async(dir.path(), args.map(String::from).to_vec()).await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out);
    assert_eq!(seqs(&lines), seqs_put[1..=3].to_vec());
    let events: Vec<(&str, &Value, &Value)> = lines
        .iter()
        .map(|l| {
            (
                l["eventName"].as_str().unwrap_or(""),
                &l["keys"],
                &l["newImage"]["n"],
            )
        })
        .collect();
    let s = |v: &str| serde_json::json!({ "S": v });
    let n = |v: &str| serde_json::json!({ "N": v });
    assert_eq!(
        events,
        vec![
            ("INSERT", &serde_json::json!({"pk": s("b")}), &n("2")),
            ("INSERT", &serde_json::json!({"pk": s("c")}), &n("3")),
            ("MODIFY", &serde_json::json!({"pk": s("a")}), &n("4")),
        ]
    );
    assert_eq!(lines[2]["oldImage"]["n"], n("1"));
    assert!(
        lines[0].get("oldImage").is_none(),
        "no old image on an INSERT"
    );

    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("DeleteTable");
}
