//! The admin API, metrics and terminal commands against a real daemon (`run_until`, in
//! real time) on a simulated Kinesis stream: a poison record blocks one shard of four, the
//! API names it as stuck with the record and the function's error, `skip` unblocks it;
//! pause, resume and rewind act on a shard; errors are JSON with the right status; the
//! token and the non-loopback rule hold. HTTP is spoken by hand (one request per
//! connection), so the tests see exactly what a client sees.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use esm_sim::function::tap::Observer;
use esm_sim::function::InvokeResult;
use esm_sim::model::{ShardId, StreamRecord};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Four shards; one producer writes 40 records under one key whose 40th is poison, the
/// other writes 40 records/s over 200 keys (every shard) with no poison.
const WORLD: &str = r#"
[[streams]]
name = "orders"
kind = "kinesis"
shards = 4

[[streams.producers]]
rate_per_second = 20.0
records = 40
keys = 1
key_prefix = "poison-"
poison_every = 40

[[streams.producers]]
rate_per_second = 40.0
duration_seconds = 600.0
keys = 200

[[functions]]
name = "f"
latency = { p50_ms = 2.0 }

[[functions.rules]]
when_data_contains = "\"poison\":true"
action = "error"

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "f"
starting_position = "TRIM_HORIZON"
batch_size = 10
bisect_batch_on_function_error = true
maximum_retry_attempts = -1
destination_config = { on_failure = { destination = "file://failures.jsonl" } }
metrics_config = { metrics = ["EventCount"] }
pace = { poll_interval_ms = 200, retry_backoff_initial_ms = 50, retry_backoff_max_ms = 200 }
"#;

const STUCK_AFTER_MS: i64 = 2_000;

fn config_text(admin: &str) -> String {
    format!("state_dir = \"state\"\n[admin]\n{admin}\n{WORLD}")
}

/// A daemon running in this process until `stop`, and its admin API's URL.
struct Daemon {
    url: String,
    dir: tempfile::TempDir,
    daemon: support::daemon::Daemon,
}

impl Daemon {
    async fn start(config_text: &str, tap: Option<Observer>) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = support::daemon::Daemon::start(config_text, dir.path(), tap);
        let addr_file = dir.path().join("state").join("admin.addr");
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file) {
                if text.ends_with('\n') {
                    break text.trim().to_string();
                }
            }
            assert!(!daemon.is_finished(), "the daemon stopped before serving");
            assert!(
                Instant::now() < deadline,
                "no {} after 20 s",
                addr_file.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Daemon { url, dir, daemon }
    }

    async fn stop(self) {
        self.daemon.stop().await;
        assert!(
            !self.dir.path().join("state/admin.addr").exists(),
            "admin.addr is removed on a clean stop"
        );
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        http(&self.url, method, path, None, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let reply = self.call("GET", path, None).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    }

    async fn post(&self, path: &str, body: Option<&str>) -> Reply {
        self.call("POST", path, body).await
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "content-type {:?}: {}",
            self.content_type,
            self.body
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// An error answer: the status and `{"error": ...}` holding `wanted`.
    fn assert_error(&self, status: u16, wanted: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let message = self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(wanted), "{message:?} lacks {wanted:?}");
    }
}

/// One HTTP/1.1 request on its own connection.
async fn http(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let host = url.strip_prefix("http://").expect("an http URL");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let body = body.unwrap_or("");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this helper reads whole bodies only:\n{head}"
    );
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

fn shards_by_id(answer: &Value) -> BTreeMap<String, Value> {
    answer["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            (
                s["shard_id"].as_str().expect("shard_id").to_string(),
                s.clone(),
            )
        })
        .collect()
}

/// Sequence numbers order by length, then text.
fn seq_key(seq: &str) -> (usize, &str) {
    (seq.len(), seq)
}

/// `esm_iterator_age_milliseconds` per shard from a scrape.
fn iterator_ages(metrics: &str) -> BTreeMap<String, i64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("esm_iterator_age_milliseconds{mapping=\"m\",shard=\""))
        .filter_map(|rest| {
            let (shard, value) = rest.split_once("\"} ")?;
            Some((shard.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `esm-sim ARGS` (the binary) in a blocking thread; (success, stdout, stderr).
async fn esm_sim(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = Command::cargo_bin("esm-sim")
            .expect("the binary")
            .args(&args)
            .env_remove("ESM_SIM_ADMIN_URL")
            .env_remove("ESM_SIM_ADMIN_TOKEN")
            .timeout(Duration::from_secs(30))
            .output()
            .expect("esm-sim runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("the command thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_record_makes_exactly_its_shard_stuck_on_it_and_skip_moves_it_on() {
    let daemon = Daemon::start(
        &config_text("listen = \"127.0.0.1:0\"\nstuck_after_seconds = 2"),
        None,
    )
    .await;

    // Stuck past the threshold: exactly one shard, blocked on one record, with the
    // function's error.
    let stuck = wait_for("a stuck shard", Duration::from_secs(30), async || {
        let answer = daemon.get("/shards?stuck=true").await;
        let list = answer["shards"].as_array()?;
        (!list.is_empty()).then(|| answer.clone())
    })
    .await;
    assert_eq!(stuck["stuck_after_ms"], STUCK_AFTER_MS);
    let list = stuck["shards"].as_array().expect("shards");
    assert_eq!(list.len(), 1, "exactly one shard is stuck: {list:#?}");
    let shard = &list[0];
    let shard_id = shard["shard_id"].as_str().expect("shard_id").to_string();
    let info = &shard["stuck"];
    let poison = info["first_sequence_number"]
        .as_str()
        .expect("a blocking record")
        .to_string();
    assert_eq!(
        info["last_sequence_number"],
        json!(poison),
        "bisect narrowed it to one record"
    );
    assert_eq!(info["records"], 1);
    assert!(info["for_ms"].as_i64().expect("for_ms") > STUCK_AFTER_MS);
    let function_error = format!("poison record {poison}");
    let message = shard["last_error"]["message"]
        .as_str()
        .expect("a last error");
    assert!(message.contains(&function_error), "{message:?}");
    assert!(
        info["reason"]
            .as_str()
            .expect("reason")
            .contains(&function_error),
        "{info}"
    );
    assert_eq!(shard["mapping"], "m");

    let mappings = daemon.get("/mappings").await;
    let m = &mappings["mappings"][0];
    assert_eq!(m["name"], "m");
    assert_eq!(
        m["event_source_arn"],
        "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
    );
    assert_eq!(m["function_name"], "f");
    assert_eq!(m["maximum_retry_attempts"], -1);
    assert_eq!(
        m["metrics_config"]["metrics"],
        serde_json::json!(["EventCount"])
    );
    assert_eq!(m["shards"]["total"], 4);
    assert_eq!(m["stuck"], 1);

    // The other three keep advancing, the stuck one does not; its IteratorAge rises, the
    // others' stays low.
    let before = shards_by_id(&daemon.get("/shards").await);
    let ages_before = iterator_ages(&daemon.call("GET", "/metrics", None).await.body);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let metrics = daemon.call("GET", "/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .content_type
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        metrics.content_type
    );
    let ages_after = iterator_ages(&metrics.body);
    let after = shards_by_id(&daemon.get("/shards").await);
    assert_eq!(after.len(), 4);
    for (id, now) in &after {
        let then = &before[id];
        let (c0, c1) = (then["checkpoint"].as_str(), now["checkpoint"].as_str());
        if *id == shard_id {
            assert_eq!(c0, c1, "the stuck shard's checkpoint holds");
            assert!(
                ages_after[id] > ages_before[id],
                "{id}: {} then {}",
                ages_before[id],
                ages_after[id]
            );
            assert!(ages_after[id] > STUCK_AFTER_MS, "{id}: {}", ages_after[id]);
            assert!(metrics.body.contains(&format!(
                "esm_shard_stuck{{mapping=\"m\",shard=\"{id}\"}} 1\n"
            )));
        } else {
            let (c0, c1) = (c0.expect("a checkpoint"), c1.expect("a checkpoint"));
            assert!(seq_key(c1) > seq_key(c0), "{id} advanced: {c0} then {c1}");
            assert!(now["stuck"].is_null(), "{id} is not stuck");
            assert!(ages_after[id] < STUCK_AFTER_MS, "{id}: {}", ages_after[id]);
            assert!(metrics.body.contains(&format!(
                "esm_shard_stuck{{mapping=\"m\",shard=\"{id}\"}} 0\n"
            )));
        }
    }
    assert!(
        metrics
            .body
            .contains("\nesm_mapping_shards_stuck{mapping=\"m\"} 1\n"),
        "the mapping counts its stuck shard"
    );
    let oldest = ages_after.values().max().expect("ages");
    assert!(
        metrics.body.contains(&format!(
            "\nesm_mapping_iterator_age_milliseconds{{mapping=\"m\"}} {oldest}\n"
        )),
        "the mapping's iterator age is its highest shard's ({oldest})"
    );
    for name in [
        "esm_polled_event_count_total",
        "esm_invoked_event_count_total",
        "esm_failed_invoke_event_count_total",
        "esm_invocation_duration_milliseconds_bucket",
    ] {
        assert!(
            metrics
                .body
                .contains(&format!("\n{name}{{mapping=\"m\",shard=\"{shard_id}\"")),
            "{name}"
        );
    }

    // The terminal sees the same.
    let (ok, stdout, stderr) = esm_sim(vec![
        "shards".into(),
        "--stuck".into(),
        "--admin".into(),
        daemon.url.clone(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2, "a header and the stuck shard:\n{stdout}");
    assert!(rows[0].starts_with("MAPPING  SHARD"), "{stdout}");
    assert!(
        rows[1].starts_with(&format!("m        {shard_id}")),
        "{stdout}"
    );
    assert!(rows[1].contains("STUCK"), "{stdout}");
    let (ok, stdout, stderr) = esm_sim(vec![
        "shard".into(),
        "m".into(),
        shard_id.clone(),
        "--admin".into(),
        daemon.url.clone(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("{poison}..{poison} (1 records")),
        "{stdout}"
    );

    // Skip: the poison record goes to the destination as SkippedByOperator, the shard moves on.
    let reply = daemon
        .post(&format!("/shards/m/{shard_id}/skip"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["shard_id"], json!(shard_id));
    wait_for(
        "the shard to move past the poison record",
        Duration::from_secs(15),
        async || {
            let shard = daemon.get(&format!("/shards/m/{shard_id}")).await;
            let checkpoint = shard["checkpoint"].as_str()?.to_string();
            (shard["stuck"].is_null() && seq_key(&checkpoint) >= seq_key(&poison)).then_some(())
        },
    )
    .await;
    assert_eq!(daemon.get("/shards?stuck=true").await["shards"], json!([]));
    let failures = support::jsonl(&daemon.dir.path().join("failures.jsonl"));
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let failure = &failures[0];
    assert_eq!(failure["requestContext"]["condition"], "SkippedByOperator");
    let batch = &failure["KinesisBatchInfo"];
    assert_eq!(batch["shardId"], json!(shard_id));
    assert_eq!(batch["startSequenceNumber"], json!(poison));
    assert_eq!(batch["endSequenceNumber"], json!(poison));
    daemon.stop().await;
}

type Invoked = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A tap that records (shard, sequence number, succeeded) of every record invoked.
fn recording_tap() -> (Invoked, Observer) {
    let seen: Invoked = Arc::default();
    let sink = seen.clone();
    let observer: Observer = Arc::new(
        move |shard: &ShardId, records: &[StreamRecord], result: &InvokeResult| {
            let ok = matches!(result, InvokeResult::Response(r) if r.function_error.is_none());
            let mut seen = sink.lock().unwrap_or_else(|p| p.into_inner());
            for record in records {
                seen.push((shard.0.clone(), record.sequence_number.0.clone(), ok));
            }
        },
    );
    (seen, observer)
}

/// The records invoked on `shard` from the `from`-th tap entry on: (sequence number, succeeded).
fn invoked_on(seen: &Invoked, shard: &str, from: usize) -> Vec<(String, bool)> {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.iter()
        .skip(from)
        .filter(|(s, _, _)| s == shard)
        .map(|(_, seq, ok)| (seq.clone(), *ok))
        .collect()
}

fn tap_len(seen: &Invoked) -> usize {
    seen.lock().unwrap_or_else(|p| p.into_inner()).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_stops_invocations_rewind_needs_a_pause_and_redelivers_and_errors_are_json() {
    let (seen, tap) = recording_tap();
    let daemon = Daemon::start(
        &config_text("listen = \"127.0.0.1:0\"\nmetrics_top_shards = 2"),
        Some(tap),
    )
    .await;
    // The API answers as soon as it listens; the shards are listed a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shards = loop {
        let shards = daemon.get("/shards").await;
        if shards_by_id(&shards).len() == 4 || Instant::now() > deadline {
            break shards;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: Vec<String> = shards_by_id(&shards).into_keys().collect();
    assert_eq!(ids.len(), 4, "{shards}");
    let shard = ids[0].clone();
    let target = wait_for(
        "five records done on the shard",
        Duration::from_secs(20),
        async || {
            let done: Vec<String> = invoked_on(&seen, &shard, 0)
                .into_iter()
                .filter_map(|(seq, ok)| ok.then_some(seq))
                .collect();
            done.get(4).cloned()
        },
    )
    .await;

    // Rewind is refused while running.
    let rewind_body = json!({ "sequence_number": target }).to_string();
    daemon
        .post(&format!("/shards/m/{shard}/rewind"), Some(&rewind_body))
        .await
        .assert_error(409, "pause it first");

    // Pause through the terminal command: no invocations while paused.
    let (ok, stdout, stderr) = esm_sim(vec![
        "pause".into(),
        "m".into(),
        shard.clone(),
        "--json".into(),
        "--admin".into(),
        daemon.url.clone(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let paused: Value = serde_json::from_str(&stdout).expect("the shard as JSON");
    assert_eq!(paused["paused"], true);
    wait_for(
        "the shard's state to be paused",
        Duration::from_secs(10),
        async || {
            (daemon.get(&format!("/shards/m/{shard}")).await["state"] == "paused").then_some(())
        },
    )
    .await;
    let mark = tap_len(&seen);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        invoked_on(&seen, &shard, mark),
        Vec::new(),
        "nothing invoked while paused"
    );
    assert!(
        tap_len(&seen) > mark,
        "the other shards were invoked meanwhile"
    );

    // Rewind a paused shard to a record already done: it is delivered again after resume.
    daemon
        .post(
            &format!("/shards/m/{shard}/rewind"),
            Some("{\"sequence_number\": 12}"),
        )
        .await
        .assert_error(400, "must be a string of digits");
    let mark = tap_len(&seen);
    let reply = daemon
        .post(&format!("/shards/m/{shard}/rewind"), Some(&rewind_body))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["paused"], true);
    let reply = daemon
        .post(&format!("/shards/m/{shard}/resume"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["paused"], false);
    wait_for(
        "the rewound record to be delivered again",
        Duration::from_secs(20),
        async || {
            let again = invoked_on(&seen, &shard, mark);
            again.iter().any(|(seq, _)| *seq == target).then_some(())
        },
    )
    .await;

    // Errors: JSON with the right status.
    daemon
        .call("GET", "/shards/nope/x", None)
        .await
        .assert_error(404, "no mapping named \"nope\"");
    daemon
        .call("GET", "/shards/m/shardId-999", None)
        .await
        .assert_error(404, "has no shard \"shardId-999\"");
    daemon
        .post(&format!("/shards/m/{shard}/explode"), None)
        .await
        .assert_error(404, "unknown action \"explode\"");
    daemon
        .call("GET", "/shards?mapping=nope", None)
        .await
        .assert_error(404, "no mapping named");
    daemon
        .call("GET", "/shards?stuck=maybe", None)
        .await
        .assert_error(400, "stuck=\"maybe\"");
    daemon
        .call("GET", "/nowhere", None)
        .await
        .assert_error(404, "no such route");
    let only_m = daemon.get("/shards?mapping=m").await;
    assert_eq!(only_m["shards"].as_array().map(Vec::len), Some(4));
    daemon
        .call("GET", "/shards?limit=0", None)
        .await
        .assert_error(400, "limit=\"0\": must be 1..=10000");
    daemon
        .call("GET", "/shards?after=m", None)
        .await
        .assert_error(400, "after=\"m\": must be <mapping>/<shard>");

    // Pages: 3, then the last one; each shard once, in shard order, with the total.
    let first = daemon.get("/shards?limit=3").await;
    assert_eq!(first["total"], 4);
    assert_eq!(first["next"], json!(format!("m/{}", ids[2])));
    let second = daemon
        .get(&format!("/shards?limit=3&after=m/{}", ids[2]))
        .await;
    assert_eq!(second["next"], Value::Null);
    let paged: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|page| shards_by_id(page).into_keys())
        .collect();
    assert_eq!(paged, ids);
    let (ok, stdout, stderr) = esm_sim(vec![
        "shards".into(),
        "--limit".into(),
        "3".into(),
        "--admin".into(),
        daemon.url.clone(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "a header, 3 shards, the next page:\n{stdout}"
    );
    assert_eq!(
        lines[4],
        format!("3 of 4 shards; the next ones: --after m/{}", ids[2])
    );

    // metrics_top_shards = 2: two shards have series of their own, the mapping's series
    // count all four.
    let metrics = daemon.call("GET", "/metrics", None).await.body;
    let with_series = metrics
        .lines()
        .filter(|l| l.starts_with("esm_shard_stuck{mapping=\"m\",shard="))
        .count();
    assert_eq!(with_series, 2, "{metrics}");
    assert!(
        metrics.starts_with(
            "# esm-sim: mapping \"m\": per-shard series for 2 of 4 shards, 2 left out"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("esm_mapping_shards_left_out{mapping=\"m\"} 2\n"));
    let in_states: u64 = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("esm_mapping_shards{mapping=\"m\",state="))
        .filter_map(|rest| rest.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert_eq!(in_states, 4, "{metrics}");

    // The dashboard page and its history are served.
    let page = daemon.call("GET", "/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert_eq!(page.body, esm_sim::admin::dashboard::PAGE);
    // The sampler takes every shard's iterator age every 5 s.
    let history = wait_for("a history sample", Duration::from_secs(12), async || {
        let history = daemon.get("/history").await;
        let series = history["series"].as_array()?;
        (series.len() == 4).then(|| history.clone())
    })
    .await;
    assert_eq!(history["series"][0]["mapping"], "m");
    // With /shards' query, the series of that page's shards only, in its order.
    let all: Vec<&Value> = history["series"].as_array().into_iter().flatten().collect();
    let first = daemon.get("/history?limit=3").await;
    assert_eq!(first["total"], 4, "{first}");
    let page: Vec<&Value> = first["series"].as_array().into_iter().flatten().collect();
    assert_eq!(page.len(), 3, "{first}");
    assert_eq!(
        page.iter().map(|s| &s["shard_id"]).collect::<Vec<_>>(),
        all[..3].iter().map(|s| &s["shard_id"]).collect::<Vec<_>>()
    );
    let cursor = first["next"].as_str().expect("a next page").to_string();
    let rest = daemon
        .get(&format!("/history?limit=3&after={cursor}"))
        .await;
    assert_eq!(rest["series"].as_array().map(Vec::len), Some(1), "{rest}");
    assert_eq!(rest["series"][0]["shard_id"], all[3]["shard_id"]);
    assert_eq!(rest["next"], Value::Null);
    daemon
        .call("GET", "/history?limit=0", None)
        .await
        .assert_error(400, "limit");
    daemon
        .call("GET", "/history?mapping=nope", None)
        .await
        .assert_error(404, "no mapping named");
    assert_eq!(daemon.get("/healthz").await["status"], "ok");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_but_healthz_and_the_page_answers_401_without_it_and_200_with_it()
{
    // Loopback with a token: the same guard a non-loopback bind must have, without
    // listening beyond this machine in a test.
    let daemon = Daemon::start(
        &config_text("listen = \"127.0.0.1:0\"\ntoken = \"s3cret\""),
        None,
    )
    .await;
    let page = http(&daemon.url, "GET", "/", None, None).await;
    assert_eq!(
        page.status, 200,
        "the page holds no data and asks for the token"
    );
    for path in [
        "/shards",
        "/mappings",
        "/metrics",
        "/history",
        "/shards/m/x",
    ] {
        let reply = http(&daemon.url, "GET", path, None, None).await;
        reply.assert_error(401, "bearer token");
        http(&daemon.url, "GET", path, Some("wrong"), None)
            .await
            .assert_error(401, "bearer token");
    }
    http(&daemon.url, "POST", "/shards/m/x/skip", None, None)
        .await
        .assert_error(401, "bearer token");
    let reply = http(&daemon.url, "GET", "/shards", Some("s3cret"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        http(&daemon.url, "GET", "/healthz", None, None)
            .await
            .status,
        200
    );

    let url = daemon.url.clone();
    let (ok, _, stderr) = esm_sim(vec!["shards".into(), "--admin".into(), url.clone()]).await;
    assert!(!ok);
    assert!(
        stderr.contains("401 Unauthorized") && stderr.contains("--token"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = esm_sim(vec![
        "shards".into(),
        "--admin".into(),
        url,
        "--token".into(),
        "s3cret".into(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        5,
        "a header and four shards:\n{stdout}"
    );
    daemon.stop().await;
}

#[test]
fn run_refuses_a_non_loopback_address_without_a_token_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        config_text("listen = \"0.0.0.0:0\""),
    )
    .expect("write");
    let output = Command::cargo_bin("esm-sim")
        .expect("the binary")
        .args(["run", "--config", "config.toml"])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(30))
        .output()
        .expect("esm-sim runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("admin: listen = \"0.0.0.0:0\": a non-loopback address needs a token (set token or token_env)"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "refused before doing anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_default_address_is_taken_a_free_port_is_used_and_the_cli_finds_it() {
    // Hold 127.0.0.1:9400 (or find it already held by someone else: the same case).
    let _held = std::net::TcpListener::bind("127.0.0.1:9400");
    let daemon = Daemon::start(&config_text(""), None).await;
    assert_ne!(daemon.url, "http://127.0.0.1:9400");
    assert_eq!(daemon.get("/healthz").await["status"], "ok");
    let config = daemon.dir.path().join("config.toml");
    std::fs::write(&config, config_text("")).expect("write");
    let (ok, stdout, stderr) = esm_sim(vec![
        "shards".into(),
        "--config".into(),
        config.display().to_string(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("MAPPING"), "{stdout}");
    daemon.stop().await;

    let (ok, _, stderr) = esm_sim(vec!["shards".into(), "--admin".into(), daemon_gone_url()]).await;
    assert!(!ok);
    assert!(
        stderr.contains("cannot reach the admin API at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("is `esm-sim run` running?"), "{stderr}");
}

/// A URL where nothing listens.
fn daemon_gone_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
