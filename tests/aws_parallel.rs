//! ParallelizationFactor and tumbling windows end to end: the daemon reads a one-shard
//! stream on kinesis-local and invokes an HTTP function served by the test itself
//! (tests/support/http_server.rs), which records every event it receives with the time
//! it arrived. So concurrency, per-key order and window states are checked on what the
//! function really saw, and checkpoints on what the daemon stored after a clean stop.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use base64::Engine as _;
use esm_sim::checkpoint::embedded::EmbeddedStore;
use esm_sim::checkpoint::{Checkpoint, CheckpointStore};
use esm_sim::model::{SequenceNumber, ShardId};
use serde_json::{json, Value};
use support::daemon::{wait_for, Daemon};
use support::http_server::{Received, Reply, Server};

const MAPPING: &str = "lanes";
const SHARD: &str = "shardId-000000000000";

/// The function's answer time in the parallelization tests.
const SLOW: Duration = Duration::from_millis(100);

/// One record of an event as the function saw it.
#[derive(Clone, Debug)]
struct Seen {
    key: String,
    seq: SequenceNumber,
    data: Value,
    arrival_ms: i64,
}

/// One invocation as the function saw it: when it arrived and what it carried.
#[derive(Clone, Debug)]
struct Call {
    at: Instant,
    records: Vec<Seen>,
    event: Value,
    failed: bool,
}

type Calls = Arc<Mutex<Vec<Call>>>;

fn records_of(event: &Value) -> Vec<Seen> {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    records
        .iter()
        .map(|r| {
            let k = &r["kinesis"];
            let data = base64::engine::general_purpose::STANDARD
                .decode(k["data"].as_str().expect("data"))
                .expect("base64 data");
            let arrival = k["approximateArrivalTimestamp"]
                .as_f64()
                .expect("approximateArrivalTimestamp");
            Seen {
                key: k["partitionKey"].as_str().expect("partitionKey").into(),
                seq: SequenceNumber(k["sequenceNumber"].as_str().expect("seq").into()),
                data: serde_json::from_slice(&data).unwrap_or(Value::Null),
                arrival_ms: (arrival * 1000.0).round() as i64,
            }
        })
        .collect()
}

/// Serves the function: `answer` gets the event and its records and returns
/// (HTTP status, body); every call is recorded, and answered after `delay`.
async fn function(
    delay: Duration,
    answer: impl Fn(&Value, &[Seen]) -> (u16, String) + Send + Sync + 'static,
) -> (Server, Calls) {
    let calls: Calls = Arc::default();
    let sink = calls.clone();
    let server = Server::start("/", move |request: &Received| {
        let at = Instant::now();
        let event: Value = serde_json::from_slice(&request.body).expect("the event is JSON");
        let records = records_of(&event);
        let (status, body) = answer(&event, &records);
        sink.lock().expect("lock").push(Call {
            at,
            records,
            event,
            failed: status != 200,
        });
        let mut reply = Reply::new(status, body);
        reply.delay = delay;
        reply
    })
    .await;
    (server, calls)
}

fn config_text(state: &std::path::Path, stream_arn: &str, url: &str, extra: &str) -> String {
    format!(
        r#"state_dir = "{state}"

[admin]
enabled = false

[[functions]]
name = "handler"
type = "http"
url = "{url}"
timeout_seconds = 5

[[mappings]]
name = "{MAPPING}"
event_source_arn = "{stream_arn}"
function_name = "handler"
starting_position = "TRIM_HORIZON"
{extra}{pace}"#,
        state = state.display(),
        pace = support::daemon_config::FAST_PACE,
    )
}

/// The checkpoint a stopped daemon stored for the shard.
fn stored_checkpoint(state: &std::path::Path) -> Option<Checkpoint> {
    let store = EmbeddedStore::open(
        &state.join("checkpoints.redb"),
        std::time::Duration::from_secs(1),
    )
    .expect("checkpoint store");
    let mut checkpoints = store.load_all(MAPPING).expect("checkpoints");
    checkpoints.remove(&ShardId(SHARD.into()))
}

/// Puts (partition key, data) records with one PutRecords call each 500; returns their
/// sequence numbers in put order.
async fn put_all(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
    records: &[(String, Value)],
) -> Vec<SequenceNumber> {
    let mut seqs = Vec::new();
    for chunk in records.chunks(500) {
        let entries = chunk
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.to_string().into_bytes()))
                    .build()
                    .expect("entry")
            })
            .collect::<Vec<_>>();
        let out = client
            .put_records()
            .stream_arn(stream_arn)
            .set_records(Some(entries))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(out.failed_record_count(), Some(0), "{out:?}");
        seqs.extend(
            out.records()
                .iter()
                .map(|r| SequenceNumber(r.sequence_number().expect("sequence number").to_string())),
        );
    }
    seqs
}

/// Every key's sequence numbers, in the order given.
fn by_key<'a>(records: impl Iterator<Item = &'a Seen>) -> BTreeMap<String, Vec<SequenceNumber>> {
    let mut keys: BTreeMap<String, Vec<SequenceNumber>> = BTreeMap::new();
    for r in records {
        keys.entry(r.key.clone()).or_default().push(r.seq.clone());
    }
    keys
}

/// The records put (key, sequence number), per key in sequence order.
fn expected_by_key(
    records: &[(String, Value)],
    seqs: &[SequenceNumber],
) -> BTreeMap<String, Vec<SequenceNumber>> {
    let mut keys: BTreeMap<String, Vec<SequenceNumber>> = BTreeMap::new();
    for ((key, _), seq) in records.iter().zip(seqs) {
        keys.entry(key.clone()).or_default().push(seq.clone());
    }
    for list in keys.values_mut() {
        list.sort();
    }
    keys
}

fn keys_of(call: &Call) -> BTreeSet<&str> {
    call.records.iter().map(|r| r.key.as_str()).collect()
}

/// The most calls in flight at once, each taken as `[arrival, arrival + SLOW)` (the
/// function answers no earlier than that, so the mapping cannot have finished it sooner).
fn max_overlap(calls: &[Call]) -> usize {
    let mut edges: Vec<(Instant, i32)> = calls
        .iter()
        .flat_map(|c| [(c.at, 1), (c.at + SLOW, -1)])
        .collect();
    // Ends before starts at the same instant: touching intervals do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factor_4_on_one_kinesis_local_shard_runs_4_batches_at_once_never_two_of_a_key_and_keeps_each_keys_order(
) {
    let kinesis = support::kinesis_client().await;
    let stream = support::stream::TestStream::create(&kinesis, "lanes", 1).await;
    let stream_arn = stream.arn.clone();
    let records: Vec<(String, Value)> = (0..144)
        .map(|n| (format!("key-{}", n % 12), json!({ "n": n })))
        .collect();
    let seqs = put_all(&kinesis, &stream_arn, &records).await;
    let (server, calls) = function(SLOW, |_, _| (200, String::new())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        &stream_arn,
        &server.url,
        "batch_size = 6\nparallelization_factor = 4\n",
    );
    let started = Instant::now();
    let daemon = Daemon::start(&text, dir.path(), None);
    wait_for(40, "every record delivered", || {
        let n: usize = calls
            .lock()
            .expect("lock")
            .iter()
            .map(|c| c.records.len())
            .sum();
        n >= records.len()
    })
    .await;
    let elapsed = started.elapsed();
    daemon.stop().await;
    let checkpoint = stored_checkpoint(dir.path());
    let mut calls = calls.lock().expect("lock").clone();
    calls.sort_by_key(|c| c.at);
    // Each key's records arrived in order, each once.
    let seen = by_key(calls.iter().flat_map(|c| c.records.iter()));
    assert_eq!(seen, expected_by_key(&records, &seqs), "per-key order");
    // Never two calls with a shared key in flight at once.
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            if b.at < a.at + SLOW {
                let shared: Vec<_> = keys_of(a).intersection(&keys_of(b)).copied().collect();
                assert!(shared.is_empty(), "keys {shared:?} in two calls at once");
            }
        }
    }
    assert_eq!(max_overlap(&calls), 4, "up to 4 batches in flight at once");
    // 4 lanes: the calls take well under half the time they would one after the other.
    let span = calls.last().expect("calls").at + SLOW - calls[0].at;
    let serial = SLOW * calls.len() as u32;
    assert!(
        span * 2 < serial,
        "{} calls took {span:?} (serially {serial:?})",
        calls.len()
    );
    eprintln!(
        "factor 4: {} records, {} calls in {span:?} (serially {serial:?}); run {elapsed:?}",
        records.len(),
        calls.len()
    );
    assert_eq!(
        checkpoint,
        Some(Checkpoint::After(seqs.iter().max().expect("seq").clone())),
        "after a clean stop the checkpoint is the last record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_holds_back_only_its_keys_and_the_checkpoint_and_a_restart_resumes_there() {
    let kinesis = support::kinesis_client().await;
    let stream = support::stream::TestStream::create(&kinesis, "lanes", 1).await;
    let stream_arn = stream.arn.clone();
    let records: Vec<(String, Value)> = (0..60)
        .map(|n| {
            let poison = n == 20;
            (
                format!("key-{}", n % 6),
                json!({ "n": n, "poison": poison }),
            )
        })
        .collect();
    let seqs = put_all(&kinesis, &stream_arn, &records).await;
    let healthy = Arc::new(Mutex::new(false));
    let fixed = healthy.clone();
    let (server, calls) = function(Duration::ZERO, move |_, seen| {
        let poisoned = seen.iter().any(|r| r.data["poison"] == true);
        if poisoned && !*fixed.lock().expect("lock") {
            (500, "boom".into())
        } else {
            (200, String::new())
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        &stream_arn,
        &server.url,
        "batch_size = 4\nparallelization_factor = 3\n",
    );
    // The records the failing batch holds back: its own, and every later one of its keys.
    let failing = |calls: &[Call]| calls.iter().find(|c| c.failed).cloned();
    let blocked = |failing: &Call| -> BTreeSet<SequenceNumber> {
        let first: HashMap<&str, &SequenceNumber> = failing
            .records
            .iter()
            .rev()
            .map(|r| (r.key.as_str(), &r.seq))
            .collect();
        records
            .iter()
            .zip(&seqs)
            .filter(|((key, _), seq)| first.get(key.as_str()).is_some_and(|f| *seq >= *f))
            .map(|(_, seq)| seq.clone())
            .collect()
    };
    let done_ok = |calls: &[Call]| -> BTreeSet<SequenceNumber> {
        calls
            .iter()
            .filter(|c| !c.failed)
            .flat_map(|c| c.records.iter().map(|r| r.seq.clone()))
            .collect()
    };
    let daemon = Daemon::start(&text, dir.path(), None);
    wait_for(30, "every other key done", || {
        let calls = calls.lock().expect("lock");
        let Some(failing) = failing(&calls) else {
            return false;
        };
        let retries = calls.iter().filter(|c| c.failed).count();
        let blocked = blocked(&failing);
        let ok = done_ok(&calls);
        retries >= 3 && seqs.iter().all(|s| blocked.contains(s) || ok.contains(s))
    })
    .await;
    daemon.stop().await;
    let checkpoint = stored_checkpoint(dir.path());
    let first_run = calls.lock().expect("lock").clone();
    let failing = failing(&first_run).expect("a failing batch");
    let blocked = blocked(&failing);
    let held_keys = keys_of(&failing);
    // Only the failing batch's keys are held: no record of theirs after it was invoked,
    // and the failing batch was retried as it was.
    for call in &first_run {
        for r in &call.records {
            assert!(
                !blocked.contains(&r.seq) || failing.records.iter().any(|f| f.seq == r.seq),
                "{} of held key {} was invoked",
                r.data,
                r.key
            );
        }
        if call.failed {
            assert_eq!(keys_of(call), held_keys, "the same batch is retried");
        }
    }
    let other_keys = records
        .iter()
        .filter(|(k, _)| !held_keys.contains(k.as_str()));
    assert!(other_keys.count() > 0, "some keys are not held");
    // The checkpoint stops before the lowest held record.
    let lowest = blocked.iter().min().expect("held records").clone();
    let before = seqs.iter().filter(|s| **s < lowest).max().cloned();
    assert_eq!(checkpoint, before.map(Checkpoint::After), "held checkpoint");

    // Fixed: a restart resumes at the checkpoint; the held keys go on in order.
    *healthy.lock().expect("lock") = true;
    calls.lock().expect("lock").clear();
    let daemon = Daemon::start(&text, dir.path(), None);
    wait_for(30, "the held records", || {
        let ok = done_ok(&calls.lock().expect("lock"));
        blocked.iter().all(|s| ok.contains(s))
    })
    .await;
    daemon.stop().await;
    let checkpoint = stored_checkpoint(dir.path());
    let second_run = calls.lock().expect("lock").clone();
    assert!(second_run.iter().all(|c| !c.failed));
    let resumed = by_key(second_run.iter().flat_map(|c| c.records.iter()));
    let expected = expected_by_key(&records, &seqs);
    for key in &held_keys {
        let tail: Vec<_> = expected[*key]
            .iter()
            .filter(|s| blocked.contains(s))
            .cloned()
            .collect();
        assert_eq!(resumed[*key], tail, "key {key} resumes at its held record");
    }
    for list in resumed.values() {
        assert!(
            list.iter().all(|s| *s >= lowest),
            "nothing before the checkpoint"
        );
        assert!(list.windows(2).all(|w| w[0] < w[1]), "in order: {list:?}");
    }
    assert_eq!(
        checkpoint,
        Some(Checkpoint::After(seqs.iter().max().expect("seq").clone()))
    );
}

/// Window length in the tumbling-window test.
const WINDOW_MS: i64 = 2000;

fn parse_time_ms(text: &Value) -> i64 {
    let text = text.as_str().unwrap_or_else(|| panic!("a time: {text}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_closed_tumbling_window_ends_with_a_final_invoke_whose_state_sums_its_records_across_a_retry(
) {
    let kinesis = support::kinesis_client().await;
    let stream = support::stream::TestStream::create(&kinesis, "window", 1).await;
    let stream_arn = stream.arn.clone();
    let (server, calls) = function(Duration::ZERO, |event, seen| {
        // The first call holding n = 5 fails: the retry must start from the same state.
        static FAILED_ONCE: std::sync::atomic::AtomicBool =
            std::sync::atomic::AtomicBool::new(false);
        if seen.iter().any(|r| r.data["n"] == 5)
            && !FAILED_ONCE.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return (500, "boom".into());
        }
        let state = &event["state"];
        let count = state["count"].as_i64().unwrap_or(0) + seen.len() as i64;
        let sum = state["sum"].as_i64().unwrap_or(0)
            + seen
                .iter()
                .map(|r| r.data["amount"].as_i64().unwrap_or(0))
                .sum::<i64>();
        (
            200,
            json!({ "state": { "count": count, "sum": sum } }).to_string(),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        &stream_arn,
        &server.url,
        &format!("tumbling_window_in_seconds = {}\n", WINDOW_MS / 1000),
    );
    let daemon = Daemon::start(&text, dir.path(), None);
    // Records over a little more than three windows, while the daemon reads.
    let mut amounts: Vec<i64> = Vec::new();
    for n in 0..26i64 {
        let amount = n * 10 + 1;
        let data = json!({ "n": n, "amount": amount });
        put_all(&kinesis, &stream_arn, &[("k".into(), data)]).await;
        amounts.push(amount);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The arrival times as the stream stamped them, read back independently.
    let iterator = kinesis
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(SHARD)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator");
    let page = kinesis
        .get_records()
        .shard_iterator(iterator.shard_iterator().expect("iterator"))
        .send()
        .await
        .expect("GetRecords");
    assert_eq!(
        page.records().len(),
        amounts.len(),
        "every record read back"
    );
    let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new(); // start -> (count, sum)
    let mut last_of_window: BTreeMap<i64, SequenceNumber> = BTreeMap::new();
    for (record, amount) in page.records().iter().zip(&amounts) {
        let data: Value = serde_json::from_slice(record.data().as_ref()).expect("json");
        assert_eq!(data["amount"], *amount, "read back in put order");
        let at = record
            .approximate_arrival_timestamp()
            .expect("arrival")
            .to_millis()
            .expect("ms");
        let start = at - at.rem_euclid(WINDOW_MS);
        let entry = expected.entry(start).or_default();
        *entry = (entry.0 + 1, entry.1 + amount);
        last_of_window.insert(start, SequenceNumber(record.sequence_number().into()));
    }
    let (&open_start, _) = expected.last_key_value().expect("windows");
    let closed: Vec<i64> = expected
        .keys()
        .copied()
        .filter(|s| *s != open_start)
        .collect();
    assert!(
        closed.len() >= 2,
        "records in at least 3 windows: {expected:?}"
    );
    let finals = |calls: &[Call]| -> Vec<Call> {
        calls
            .iter()
            .filter(|c| c.event["isFinalInvokeForWindow"] == true && !c.failed)
            .cloned()
            .collect()
    };
    wait_for(20, "the final invokes", || {
        finals(&calls.lock().expect("lock")).len() >= closed.len()
    })
    .await;
    daemon.stop().await;
    let checkpoint = stored_checkpoint(dir.path());
    let calls = calls.lock().expect("lock").clone();
    assert_eq!(
        calls.iter().filter(|c| c.failed).count(),
        1,
        "one failed call"
    );
    let failed = calls.iter().find(|c| c.failed).expect("the failed call");
    let retry = calls
        .iter()
        .find(|c| !c.failed && c.records.iter().any(|r| r.data["n"] == 5))
        .expect("the retry");
    assert_eq!(
        retry.event["state"], failed.event["state"],
        "same state retried"
    );
    for call in &calls {
        let event = &call.event;
        let start = parse_time_ms(&event["window"]["start"]);
        let end = parse_time_ms(&event["window"]["end"]);
        assert_eq!(
            (start.rem_euclid(WINDOW_MS), end - start),
            (0, WINDOW_MS),
            "{event}"
        );
        assert_eq!(event["shardId"], SHARD);
        assert_eq!(event["eventSourceARN"], stream_arn.as_str());
        assert_eq!(event["isWindowTerminatedEarly"], false);
        assert!(event["state"].is_object(), "{event}");
        for r in &call.records {
            assert!(
                (start..end).contains(&r.arrival_ms),
                "record {} arrived at {} outside its window {event}",
                r.data,
                r.arrival_ms
            );
        }
    }
    let finals = finals(&calls);
    let got: Vec<(i64, Value)> = finals
        .iter()
        .map(|c| {
            assert_eq!(
                c.event["Records"],
                json!([]),
                "a final invoke has no records"
            );
            (
                parse_time_ms(&c.event["window"]["start"]),
                c.event["state"].clone(),
            )
        })
        .collect();
    let want: Vec<(i64, Value)> = closed
        .iter()
        .map(|s| (*s, json!({ "count": expected[s].0, "sum": expected[s].1 })))
        .collect();
    assert_eq!(got, want, "final states of the closed windows");
    eprintln!(
        "windows: {} records in {} windows, {} closed, {} calls",
        amounts.len(),
        expected.len(),
        closed.len(),
        calls.len()
    );
    // The last window is still open: the checkpoint is held after the last closed one.
    let last_closed = closed.last().expect("a closed window");
    assert_eq!(
        checkpoint,
        Some(Checkpoint::After(last_of_window[last_closed].clone())),
        "the open window's records are not checkpointed"
    );
}
