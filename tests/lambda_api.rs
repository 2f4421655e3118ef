//! Lambda's event-source-mapping API of a running daemon, driven with boto3 (the client
//! people script with) against a daemon whose source is a kinesis-local stream and whose
//! functions are HTTP servers of the test: each call is checked against what the engine
//! then does (records delivered, stopped, resumed from where they were), and each error
//! against Lambda's code, status and message.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use esm_sim::checkpoint::embedded::EmbeddedStore;
use esm_sim::checkpoint::CheckpointStore;
use serde_json::{json, Value};
use support::boto3::Lambda;
use support::daemon::{wait_for, Daemon};
use support::http_server::{Received, Reply, Server};
use support::stream::TestStream;

const ACCOUNT: &str = "123456789012";

/// The records' data (`r<n>`) of each invocation a function received, in order.
type Batches = Arc<Mutex<Vec<Vec<u64>>>>;

/// An HTTP function that records each batch and answers `{}` after `delay`.
async fn function(delay: Duration) -> (Server, Batches) {
    let batches: Batches = Arc::default();
    let sink = batches.clone();
    let server = Server::start("/", move |request: &Received| {
        let event: Value = serde_json::from_slice(&request.body).expect("the event is JSON");
        let numbers = event["Records"]
            .as_array()
            .expect("Records")
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["kinesis"]["data"].as_str().expect("data"))
                    .expect("base64");
                let text = String::from_utf8(data).expect("utf-8");
                text.trim_start_matches('r').parse::<u64>().expect("r<n>")
            })
            .collect();
        sink.lock().expect("lock").push(numbers);
        let mut reply = Reply::new(200, "{}");
        reply.delay = delay;
        reply
    })
    .await;
    (server, batches)
}

/// How many times each record reached the function.
fn delivered(batches: &Batches) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for n in batches.lock().expect("lock").iter().flatten() {
        *counts.entry(*n).or_default() += 1;
    }
    counts
}

fn got_all(batches: &Batches, numbers: std::ops::Range<u64>) -> bool {
    let counts = delivered(batches);
    numbers.into_iter().all(|n| counts.contains_key(&n))
}

/// Puts records `r<n>` for `numbers` in one PutRecords call.
async fn put(client: &aws_sdk_kinesis::Client, stream: &TestStream, numbers: std::ops::Range<u64>) {
    let entries = numbers
        .map(|n| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .data(aws_smithy_types::Blob::new(format!("r{n}")))
                .partition_key(format!("k{n}"))
                .build()
                .expect("entry")
        })
        .collect();
    let out = client
        .put_records()
        .stream_arn(&stream.arn)
        .set_records(Some(entries))
        .send()
        .await
        .expect("put_records");
    assert_eq!(out.failed_record_count(), Some(0));
}

fn config_text(dir: &Path, a: &str, b: &str, extra: &str) -> String {
    format!(
        r#"state_dir = "{state}"

[admin]
listen = "127.0.0.1:0"
{extra}
[[functions]]
name = "f-a"
type = "http"
url = "{a}"
timeout_seconds = 5

[[functions]]
name = "f-b"
type = "http"
url = "{b}"
timeout_seconds = 5
"#,
        state = dir.join("state").display()
    )
}

/// The admin API's URL once the daemon wrote it.
async fn admin_url(dir: &Path) -> String {
    let file = dir.join("state/admin.addr");
    wait_for(20, "admin.addr", || file.exists()).await;
    std::fs::read_to_string(file)
        .expect("admin.addr")
        .trim()
        .to_string()
}

async fn wait_state(lambda: &mut Lambda, uuid: &str, state: &str) {
    for _ in 0..100 {
        let got = lambda
            .ok("get_event_source_mapping", json!({"UUID": uuid}))
            .await;
        if got["State"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mapping {uuid} never reached {state}");
}

async fn wait_delivered(batches: &Batches, numbers: std::ops::Range<u64>, what: &str) {
    wait_for(30, what, || got_all(batches, numbers.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_creates_lists_updates_and_deletes_mappings_and_the_engine_follows() {
    let kinesis = support::kinesis_client().await;
    let stream = TestStream::create(&kinesis, "lambda-api", 2).await;
    let (a, to_a) = function(Duration::ZERO).await;
    let (b, to_b) = function(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &config_text(dir.path(), &a.url, &b.url, ""),
        dir.path(),
        None,
    );
    let mut lambda = Lambda::new(&admin_url(dir.path()).await, "test");

    put(&kinesis, &stream, 0..10).await;
    let created = lambda
        .ok(
            "create_event_source_mapping",
            json!({"FunctionName": "f-a", "EventSourceArn": stream.arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 2}),
        )
        .await;
    let uuid = created["UUID"].as_str().expect("UUID").to_string();
    for (key, expected) in [
        ("HTTPStatusCode", json!(202)),
        ("State", json!("Creating")),
        ("StateTransitionReason", json!("User action")),
        ("LastProcessingResult", json!("No records processed")),
        ("BatchSize", json!(2)),
        ("StartingPosition", json!("TRIM_HORIZON")),
        ("EventSourceArn", json!(stream.arn)),
        (
            "FunctionArn",
            json!(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:f-a")),
        ),
        (
            "EventSourceMappingArn",
            json!(format!(
                "arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:{uuid}"
            )),
        ),
        ("MaximumBatchingWindowInSeconds", json!(0)),
        ("ParallelizationFactor", json!(1)),
        ("MaximumRetryAttempts", json!(-1)),
        ("MaximumRecordAgeInSeconds", json!(-1)),
        ("BisectBatchOnFunctionError", json!(false)),
        ("TumblingWindowInSeconds", json!(0)),
        ("FunctionResponseTypes", json!([])),
        ("DestinationConfig", json!({"OnFailure": {}})),
    ] {
        assert_eq!(created[key], expected, "{key} in {created}");
    }
    assert!(
        created["LastModified"].is_string(),
        "botocore parsed LastModified as a time: {created}"
    );
    wait_delivered(&to_a, 0..10, "the records before the mapping was created").await;
    assert!(
        to_a.lock().unwrap().iter().all(|batch| batch.len() <= 2),
        "BatchSize 2"
    );
    wait_state(&mut lambda, &uuid, "Enabled").await;
    let got = lambda
        .ok("get_event_source_mapping", json!({"UUID": uuid}))
        .await;
    assert_eq!(got["LastProcessingResult"], "OK");
    assert_eq!(got["HTTPStatusCode"], 200);

    // Lambda's errors, word for word.
    let table_stream =
        format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t/stream/2026-01-01T00:00:00.000");
    let queue = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:q");
    for (params, code, status, message) in [
        (json!({"FunctionName": "f-a", "EventSourceArn": stream.arn, "StartingPosition": "LATEST"}), "ResourceConflictException", 409,
            format!("The event source arn (\" {} \") and function (\" f-a \") provided mapping already exists. Please update or delete the existing mapping with UUID {uuid}", stream.arn)),
        (json!({"FunctionName": "nope", "EventSourceArn": stream.arn, "StartingPosition": "LATEST"}), "ResourceNotFoundException", 404,
            format!("Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope")),
        (json!({"FunctionName": "f-b", "EventSourceArn": stream.arn, "StartingPosition": "LATEST", "BatchSize": 20000}), "InvalidParameterValueException", 400,
            "BatchSize = 20000: must be 1..=10000".to_string()),
        (json!({"FunctionName": "f-b", "EventSourceArn": stream.arn, "StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 30}), "InvalidParameterValueException", 400,
            "MaximumRecordAgeInSeconds = 30: must be -1 or 60..=604800".to_string()),
        (json!({"FunctionName": "f-b", "EventSourceArn": queue, "StartingPosition": "LATEST"}), "InvalidParameterValueException", 400,
            format!("Unsupported event source for esm-sim: {queue} (esm-sim runs stream event sources only: Kinesis and DynamoDB Streams)")),
        (json!({"FunctionName": "f-b", "EventSourceArn": table_stream, "StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1}), "InvalidParameterValueException", 400,
            format!("Unsupported starting position for arn type: {table_stream}")),
        (json!({"FunctionName": "f-b", "EventSourceArn": format!("{}-gone", stream.arn), "StartingPosition": "LATEST"}), "InvalidParameterValueException", 400,
            format!("Stream not found: {}-gone", stream.arn)),
    ] {
        let error = lambda.err("create_event_source_mapping", params.clone()).await;
        assert_eq!((error.code.as_str(), error.status, error.message.as_str()), (code, status, message.as_str()), "{params}");
    }
    let unknown = lambda
        .err(
            "get_event_source_mapping",
            json!({"UUID": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(
        (
            unknown.code.as_str(),
            unknown.status,
            unknown.message.as_str()
        ),
        (
            "ResourceNotFoundException",
            404,
            "The resource you requested does not exist."
        )
    );

    // A second mapping of the stream; list with its filters and pages.
    let second = lambda
        .ok(
            "create_event_source_mapping",
            json!({"FunctionName": f_b_arn(), "EventSourceArn": stream.arn, "StartingPosition": "LATEST"}),
        )
        .await;
    let uuid_b = second["UUID"].as_str().expect("UUID").to_string();
    assert_eq!(second["BatchSize"], 100, "AWS's default");
    wait_state(&mut lambda, &uuid_b, "Enabled").await;
    let uuids = |list: &Value| -> Vec<String> {
        list["EventSourceMappings"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m["UUID"].as_str().unwrap().to_string())
            .collect()
    };
    let mut both = vec![uuid.clone(), uuid_b.clone()];
    both.sort();
    assert_eq!(
        uuids(&lambda.ok("list_event_source_mappings", json!({})).await),
        both
    );
    assert_eq!(
        uuids(
            &lambda
                .ok("list_event_source_mappings", json!({"FunctionName": "f-b"}))
                .await
        ),
        vec![uuid_b.clone()]
    );
    assert_eq!(
        uuids(
            &lambda
                .ok(
                    "list_event_source_mappings",
                    json!({"EventSourceArn": stream.arn})
                )
                .await
        ),
        both
    );
    assert!(uuids(
        &lambda
            .ok(
                "list_event_source_mappings",
                json!({"EventSourceArn": queue})
            )
            .await
    )
    .is_empty());
    let first_page = lambda
        .ok("list_event_source_mappings", json!({"MaxItems": 1}))
        .await;
    assert_eq!(uuids(&first_page), [both[0].clone()]);
    let marker = first_page["NextMarker"]
        .as_str()
        .expect("NextMarker")
        .to_string();
    let last_page = lambda
        .ok(
            "list_event_source_mappings",
            json!({"MaxItems": 1, "Marker": marker}),
        )
        .await;
    assert_eq!(uuids(&last_page), [both[1].clone()]);
    assert!(last_page.get("NextMarker").is_none(), "{last_page}");

    // An update applies from the next batch, from the position reached.
    let updated = lambda
        .ok(
            "update_event_source_mapping",
            json!({"UUID": uuid, "BatchSize": 5}),
        )
        .await;
    assert_eq!(
        (
            updated["State"].as_str(),
            updated["BatchSize"].as_u64(),
            updated["HTTPStatusCode"].as_u64()
        ),
        (Some("Updating"), Some(5), Some(202))
    );
    wait_state(&mut lambda, &uuid, "Enabled").await;
    let before = to_a.lock().unwrap().len();
    put(&kinesis, &stream, 10..20).await;
    wait_delivered(&to_a, 10..20, "the records after the update").await;
    let after: Vec<Vec<u64>> = to_a.lock().unwrap()[before..].to_vec();
    assert!(
        after.iter().all(|batch| batch.len() <= 5),
        "BatchSize 5: {after:?}"
    );
    assert!(
        after.iter().any(|batch| batch.len() > 2),
        "batches bigger than the old 2: {after:?}"
    );

    // Disabled: nothing delivered; enabled again: delivered from where it stopped.
    let disabling = lambda
        .ok(
            "update_event_source_mapping",
            json!({"UUID": uuid, "Enabled": false}),
        )
        .await;
    assert_eq!(disabling["State"], "Disabling");
    wait_state(&mut lambda, &uuid, "Disabled").await;
    put(&kinesis, &stream, 20..25).await;
    wait_delivered(&to_b, 20..25, "f-b's mapping, still enabled").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !delivered(&to_a).keys().any(|n| *n >= 20),
        "a disabled mapping delivered"
    );
    let enabling = lambda
        .ok(
            "update_event_source_mapping",
            json!({"UUID": uuid, "Enabled": true}),
        )
        .await;
    assert_eq!(enabling["State"], "Enabling");
    wait_delivered(&to_a, 20..25, "the records put while disabled").await;
    wait_state(&mut lambda, &uuid, "Enabled").await;

    // A change while another is under way is refused (f-b answers after 1.5 s, so its old
    // supervisor takes that long to stop).
    let calls_b = to_b.lock().unwrap().len();
    put(&kinesis, &stream, 25..26).await;
    wait_for(20, "f-b invoked", || to_b.lock().unwrap().len() > calls_b).await;
    let updating = lambda
        .ok(
            "update_event_source_mapping",
            json!({"UUID": uuid_b, "BatchSize": 3}),
        )
        .await;
    assert_eq!(updating["State"], "Updating");
    let busy = format!("The operation cannot be performed at this time. The event source mapping arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:{uuid_b} is Updating: try again once it is Enabled or Disabled.");
    for (op, params) in [
        (
            "update_event_source_mapping",
            json!({"UUID": uuid_b, "BatchSize": 4}),
        ),
        ("delete_event_source_mapping", json!({"UUID": uuid_b})),
    ] {
        let error = lambda.err(op, params).await;
        assert_eq!(
            (error.code.as_str(), error.status, error.message.as_str()),
            ("ResourceConflictException", 409, busy.as_str()),
            "{op}"
        );
    }
    wait_state(&mut lambda, &uuid_b, "Enabled").await;

    // Delete: stopped, gone from the API, its positions forgotten.
    let deleting = lambda
        .ok("delete_event_source_mapping", json!({"UUID": uuid}))
        .await;
    assert_eq!(
        (
            deleting["State"].as_str(),
            deleting["HTTPStatusCode"].as_u64()
        ),
        (Some("Deleting"), Some(202))
    );
    for _ in 0..100 {
        if lambda
            .call("get_event_source_mapping", json!({"UUID": uuid}))
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = lambda
        .err("get_event_source_mapping", json!({"UUID": uuid}))
        .await;
    assert_eq!(gone.code, "ResourceNotFoundException");
    put(&kinesis, &stream, 30..35).await;
    wait_delivered(&to_b, 30..35, "f-b's mapping after the delete").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !delivered(&to_a).keys().any(|n| *n >= 30),
        "a deleted mapping delivered"
    );
    assert!(
        delivered(&to_a).values().all(|count| *count == 1),
        "no record twice to f-a across update, disable, enable: {:?}",
        delivered(&to_a)
    );
    // Filters and retry limits change the same way.
    let filtered = lambda
        .ok(
            "update_event_source_mapping",
            json!({"UUID": uuid_b, "FilterCriteria": {"Filters": [{"Pattern": "{\"partitionKey\": [\"k41\"]}"}]}, "MaximumRetryAttempts": 0}),
        )
        .await;
    assert_eq!(
        (
            filtered["FilterCriteria"].clone(),
            filtered["MaximumRetryAttempts"].clone()
        ),
        (
            json!({"Filters": [{"Pattern": "{\"partitionKey\": [\"k41\"]}"}]}),
            json!(0)
        )
    );
    wait_state(&mut lambda, &uuid_b, "Enabled").await;
    put(&kinesis, &stream, 40..45).await;
    wait_delivered(&to_b, 41..42, "the one record the new filter lets through").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let to_b_now = delivered(&to_b);
    assert!(
        [40, 42, 43, 44].iter().all(|n| !to_b_now.contains_key(n)),
        "filtered out: {to_b_now:?}"
    );
    daemon.stop().await;

    let store = EmbeddedStore::open(&dir.path().join("state/checkpoints.redb"), Duration::ZERO)
        .expect("store");
    assert!(
        store.load_all(&uuid).expect("load").is_empty(),
        "the deleted mapping's positions are forgotten"
    );
    assert_eq!(
        store.load_all(&uuid_b).expect("load").len(),
        2,
        "the other mapping's are kept"
    );
    assert!(!dir
        .path()
        .join(format!("state/api-mappings/{uuid}.json"))
        .exists());
    assert!(dir
        .path()
        .join(format!("state/api-mappings/{uuid_b}.json"))
        .exists());
}

fn f_b_arn() -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:f-b")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_api_mappings_and_their_positions_and_validate_reads_them_as_toml_does()
{
    let kinesis = support::kinesis_client().await;
    let stream = TestStream::create(&kinesis, "lambda-api-restart", 2).await;
    let (a, to_a) = function(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(dir.path(), &a.url, &a.url, "");
    let daemon = Daemon::start(&text, dir.path(), None);
    let mut lambda = Lambda::new(&admin_url(dir.path()).await, "test");
    put(&kinesis, &stream, 0..10).await;
    let created = lambda
        .ok(
            "create_event_source_mapping",
            json!({"FunctionName": "f-a", "EventSourceArn": stream.arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 3, "MaximumRetryAttempts": 2, "BisectBatchOnFunctionError": true}),
        )
        .await;
    let uuid = created["UUID"].as_str().expect("UUID").to_string();
    wait_delivered(&to_a, 0..10, "the first records").await;
    let mut got = lambda
        .ok("get_event_source_mapping", json!({"UUID": uuid}))
        .await;
    daemon.stop().await;
    drop(lambda);

    put(&kinesis, &stream, 10..15).await;
    let daemon = Daemon::start(&text, dir.path(), None);
    let mut lambda = Lambda::new(&admin_url(dir.path()).await, "test");
    let listed = lambda.ok("list_event_source_mappings", json!({})).await;
    let mappings = listed["EventSourceMappings"].as_array().expect("list");
    assert_eq!(mappings.len(), 1, "{listed}");
    assert_eq!(
        (
            mappings[0]["UUID"].as_str(),
            mappings[0]["BatchSize"].as_u64()
        ),
        (Some(uuid.as_str()), Some(3))
    );
    wait_delivered(&to_a, 10..15, "the records put while stopped").await;
    assert!(
        delivered(&to_a).values().all(|count| *count == 1),
        "resumed from its positions: {:?}",
        delivered(&to_a)
    );
    daemon.stop().await;

    // The get output as `aws lambda get-event-source-mapping` prints it, read back by
    // `validate` as an AWS JSON file, says what the same mapping in TOML says.
    got.as_object_mut()
        .expect("object")
        .remove("HTTPStatusCode");
    std::fs::write(dir.path().join("get.json"), got.to_string()).expect("write");
    let functions = format!(
        "[[functions]]\nname = \"f-a\"\ntype = \"http\"\nurl = \"{}\"\ntimeout_seconds = 5\n",
        a.url
    );
    let as_json = format!("{functions}\n[[mappings]]\naws_json = \"get.json\"\n");
    let as_toml = format!("{functions}\n[[mappings]]\nname = \"{uuid}\"\nevent_source_arn = \"{}\"\nfunction_name = \"f-a\"\nstarting_position = \"TRIM_HORIZON\"\nbatch_size = 3\nmaximum_retry_attempts = 2\nbisect_batch_on_function_error = true\n", stream.arn);
    let validate = |text: &str, file: &str| {
        std::fs::write(dir.path().join(file), text).expect("write");
        let out = support::binary::run_offline(dir.path(), &["validate", "--config", file]);
        assert!(out.success, "{}", out.stderr);
        out.stdout
    };
    assert_eq!(
        validate(&as_json, "json.toml"),
        validate(&as_toml, "toml.toml")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_sdk_passes_it_as_its_access_key_and_config_mappings_are_listed_not_changed(
) {
    let kinesis = support::kinesis_client().await;
    let stream = TestStream::create(&kinesis, "lambda-api-token", 1).await;
    let (a, _) = function(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mapping = format!("\n[[mappings]]\nname = \"from-config\"\nevent_source_arn = \"{}\"\nfunction_name = \"f-a\"\nstarting_position = \"LATEST\"\n", stream.arn);
    let text = config_text(dir.path(), &a.url, &a.url, "token = \"s3cret\"\n") + &mapping;
    let daemon = Daemon::start(&text, dir.path(), None);
    let url = admin_url(dir.path()).await;

    let denied = Lambda::new(&url, "test")
        .err("list_event_source_mappings", json!({}))
        .await;
    assert_eq!(
        (denied.code.as_str(), denied.status),
        ("UnrecognizedClientException", 403),
        "{denied:?}"
    );
    let mut lambda = Lambda::new(&url, "s3cret");
    let listed = lambda.ok("list_event_source_mappings", json!({})).await;
    let config_mapping = &listed["EventSourceMappings"][0];
    let uuid = config_mapping["UUID"].as_str().expect("UUID").to_string();
    assert_eq!(config_mapping["State"], "Enabled");
    assert_eq!(config_mapping["EventSourceArn"], json!(stream.arn));
    for (op, params) in [
        (
            "update_event_source_mapping",
            json!({"UUID": uuid, "BatchSize": 4}),
        ),
        ("delete_event_source_mapping", json!({"UUID": uuid})),
    ] {
        let refused = lambda.err(op, params).await;
        assert_eq!(
            (refused.code.as_str(), refused.status),
            ("ResourceConflictException", 409),
            "{op}"
        );
        assert_eq!(refused.message, format!("The event source mapping {uuid} is mapping \"from-config\" of esm-sim's config file: change it there (and restart esm-sim), not through the Lambda API."));
    }
    daemon.stop().await;
    // The same UUID on every start: it is derived from the name.
    let daemon = Daemon::start(&text, dir.path(), None);
    let mut lambda = Lambda::new(&admin_url(dir.path()).await, "s3cret");
    let again = lambda
        .ok("get_event_source_mapping", json!({"UUID": uuid}))
        .await;
    assert_eq!(again["UUID"], json!(uuid));
    daemon.stop().await;
}

/// The fenced blocks of `lang` in the "## Try it" section of docs/lambda-api.md.
fn try_it_blocks(lang: &str) -> Vec<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lambda-api.md"))
        .expect("docs/lambda-api.md");
    let section = page
        .split("\n## ")
        .find(|s| s.starts_with("Try it"))
        .expect("a \"Try it\" section");
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|rest| {
            rest.split("```")
                .next()
                .expect("a closed block")
                .to_string()
        })
        .collect()
}

#[test]
fn the_docs_aws_cli_session_runs_as_written_against_the_daemon() {
    let aws = std::env::var("ESM_SIM_TEST_AWS_CLI").unwrap_or_else(|_| {
        panic!("ESM_SIM_TEST_AWS_CLI is not set: run the tests with scripts/test.sh, which installs the aws CLI")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = &try_it_blocks("toml")[0];
    std::fs::write(dir.path().join("api.toml"), config).expect("api.toml");
    let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_esm-sim"))
        .args(["run", "--config", "api.toml"])
        .current_dir(dir.path())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("esm-sim run");
    let addr = dir.path().join(".esm-sim/admin.addr");
    let started = std::time::Instant::now();
    while !addr.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = &try_it_blocks("sh")[0];
    let aws_dir = Path::new(&aws).parent().expect("the aws CLI's directory");
    let path = format!(
        "{}:{}",
        aws_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", session])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let stopped = daemon.wait().expect("wait");
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the session failed:\n{stdout}\n{stderr}\ndaemon:\n{log}"
    );
    assert!(stopped.success(), "the daemon did not stop cleanly:\n{log}");
    // get and list printed the mapping; the update disabled it; the daemon did each step.
    assert!(stdout.contains("\"BatchSize\": 25"), "{stdout}");
    assert!(
        stdout
            .contains("\"FunctionArn\": \"arn:aws:lambda:us-east-1:123456789012:function:audit\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"State\": \"Disabling\""), "{stdout}");
    assert!(stdout.contains("\"State\": \"Deleting\""), "{stdout}");
    for step in [
        "mapping created through the Lambda API",
        "mapping updated through the Lambda API",
        "mapping deleted",
    ] {
        assert!(log.contains(step), "{step} not in the daemon's log:\n{log}");
    }
}
