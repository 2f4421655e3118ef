//! The S3 on-failure destination against moto's S3 (started by `scripts/test.sh`; the
//! daemon finds it through `AWS_ENDPOINT_URL_S3`): a discarded batch becomes one object
//! under Lambda's key layout whose body is the failure record plus the invoked event as
//! `payload`, and a missing bucket stops the start. Every test makes its own bucket.

mod support;

use base64::Engine as _;
use esm_sim::destination::s3::esm_uuid;
use serde_json::Value;
use support::binary::run_async;
use support::daemon::{start_error, Daemon};
use support::daemon_config;

async fn s3() -> aws_sdk_s3::Client {
    let config = support::sdk_config(&support::moto_endpoint()).await;
    let conf = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn create_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = support::unique("esm-failures").to_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    bucket
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("ListObjectsV2");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Records put in the stream; the second is poison, so the one batch of three is discarded.
const DATA: [&str; 3] = [r#"{"n":0}"#, r#"{"n":1,"poison":true}"#, r#"{"n":2}"#];

/// What the daemon left in S3 after discarding the one batch of `DATA`.
struct Discarded {
    stream_arn: String,
    shard: String,
    bucket: String,
    keys: Vec<String>,
}

/// Runs the daemon (mapping `mapping`) on a new stream holding `DATA` until the discarded
/// batch is in a new bucket.
async fn discard_to_bucket(s3: &aws_sdk_s3::Client, mapping: &str) -> Discarded {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("s3dest"), 1).await;
    let bucket = create_bucket(s3).await;
    let mut shard = String::new();
    for text in DATA {
        shard = support::put_record(&kinesis, &stream_arn, "user-1", text)
            .await
            .shard_id;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = format!(
        "batch_size = 3\nmaximum_retry_attempts = 0\n{}",
        daemon_config::on_failure(&format!("arn:aws:s3:::{bucket}"))
    );
    let text = daemon_config::fails_on_poison(
        dir.path(),
        &daemon_config::mapping(mapping, &stream_arn, &settings),
    );
    let daemon = Daemon::start(&text, dir.path(), None);
    let mut found = Vec::new();
    for _ in 0..300 {
        found = keys(s3, &bucket).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    daemon.stop().await;
    Discarded {
        stream_arn,
        shard,
        bucket,
        keys: found,
    }
}

/// The data of each record of a Kinesis event, decoded.
fn data_of(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|r| {
            let data = r["kinesis"]["data"].as_str().expect("data");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64");
            String::from_utf8(bytes).expect("utf-8")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_batch_is_one_object_under_lambdas_key_with_the_record_and_its_event() {
    let s3 = s3().await;
    let Discarded {
        stream_arn,
        shard,
        bucket,
        keys: found,
    } = discard_to_bucket(&s3, "s3-e2e").await;
    assert_eq!(found.len(), 1, "one object per discarded batch: {found:?}");

    let key = &found[0];
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 8, "{key}");
    assert_eq!(&parts[..4], ["aws", "lambda", &esm_uuid("s3-e2e"), &shard]);
    let day = format!("{}-{}-{}T", parts[4], parts[5], parts[6]);
    assert!(parts[7].starts_with(&day), "{key}");

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("GetObject");
    let body = object.body.collect().await.expect("body").into_bytes();
    let body: Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(
        body["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(body["KinesisBatchInfo"]["shardId"], shard.as_str());
    assert_eq!(body["KinesisBatchInfo"]["batchSize"], 3);
    assert_eq!(body["KinesisBatchInfo"]["streamArn"], stream_arn.as_str());
    let payload: Value =
        serde_json::from_str(body["payload"].as_str().expect("payload is a string"))
            .expect("the payload is an event");
    assert_eq!(data_of(&payload), DATA);
    support::delete_stream(&support::kinesis_client().await, &stream_arn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_stops_the_start() {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("s3miss"), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let arn = format!(
        "arn:aws:s3:::{}",
        support::unique("no-such-bucket").to_lowercase()
    );
    let text = daemon_config::fails_on_poison(
        dir.path(),
        &daemon_config::mapping("s3-missing", &stream_arn, &daemon_config::on_failure(&arn)),
    );
    let error = start_error(&text, dir.path()).await;
    assert!(
        error.contains(&format!("Bucket not found: {arn}")),
        "{error}"
    );
    support::delete_stream(&kinesis, &stream_arn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_from_the_bucket_invokes_the_kept_event_without_the_stream_and_deletes_the_object()
{
    let s3 = s3().await;
    let discarded = discard_to_bucket(&s3, "s3-redrive").await;
    assert_eq!(discarded.keys.len(), 1, "{:?}", discarded.keys);
    // The stream is gone: the redrive can only use the object's payload.
    support::delete_stream(&support::kinesis_client().await, &discarded.stream_arn).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let handler = dir.path().join("handler.sh");
    let received = dir.path().join("received.json");
    std::fs::write(&handler, "cat > \"$1\"\necho null\n").expect("handler");
    let target = format!(
        "command:/bin/sh {} {}",
        handler.display(),
        received.display()
    );
    let out = run_async(
        dir.path(),
        vec![
            "redrive".into(),
            "--from".into(),
            format!("s3://{}", discarded.bucket),
            "--target".into(),
            target,
        ],
    )
    .await;
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("1 object(s): 1 redriven and deleted, 0 left in the bucket"),
        "{}",
        out.stdout
    );
    let event: Value = serde_json::from_slice(&std::fs::read(&received).expect("the function ran"))
        .expect("an event");
    assert_eq!(data_of(&event), DATA);
    assert_eq!(event["Records"][0]["kinesis"]["partitionKey"], "user-1");
    assert_eq!(
        event["Records"][0]["eventID"]
            .as_str()
            .map(|id| id.starts_with(&discarded.shard)),
        Some(true)
    );
    assert!(
        keys(&s3, &discarded.bucket).await.is_empty(),
        "deleted after success"
    );
}
