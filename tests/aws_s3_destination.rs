//! The S3 on-failure destination against moto's S3 (started by `scripts/test.sh`; the
//! daemon finds it through `AWS_ENDPOINT_URL_S3`): a discarded batch becomes one object
//! under Lambda's key layout whose body is the failure record plus the invoked event as
//! `payload`, and a missing bucket stops the start. Every test makes its own bucket.

mod support;

use base64::Engine as _;
use esm_sim::destination::s3::esm_uuid;
use serde_json::Value;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_batch_is_one_object_under_lambdas_key_with_the_record_and_its_event() {
    let kinesis = support::kinesis_client().await;
    let stream_arn = support::create_stream(&kinesis, &support::unique("s3dest"), 1).await;
    let s3 = s3().await;
    let bucket = create_bucket(&s3).await;
    let data = [r#"{"n":0}"#, r#"{"n":1,"poison":true}"#, r#"{"n":2}"#];
    let mut shard = String::new();
    for text in data {
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
        &daemon_config::mapping("s3-e2e", &stream_arn, &settings),
    );
    let daemon = Daemon::start(&text, dir.path(), None);
    let mut found = Vec::new();
    for _ in 0..300 {
        found = keys(&s3, &bucket).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    daemon.stop().await;
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
    let decoded: Vec<String> = payload["Records"]
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
        .collect();
    assert_eq!(decoded, data);

    support::delete_stream(&kinesis, &stream_arn).await;
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
