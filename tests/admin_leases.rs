//! The admin API of workers sharing a mapping through one lease table (issue 12), in one
//! process: each worker has its own keeper over a shared in-memory table, its own mapping
//! context and its own admin server on 127.0.0.1:0. An action sent to a worker that does
//! not hold the shard reaches the holder and comes back as the holder answered; a
//! forwarded request is never forwarded again; a silent owner is a 502; a shard nobody
//! holds takes a pause in its lease row and refuses a skip. `/metrics`, `/mappings` and
//! `/shards` show the leases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use esm_sim::admin::client::{AdminClient, Exchange};
use esm_sim::admin::server::AdminServer;
use esm_sim::admin::state::Mappings;
use esm_sim::assemble::{assemble, Environment, Seeds};
use esm_sim::checkpoint::MemoryStore;
use esm_sim::clock::Clock;
use esm_sim::config::LeaseTableSettings;
use esm_sim::coordination::keeper::LeaseKeeper;
use esm_sim::coordination::lease::lease_key;
use esm_sim::coordination::memory::MemoryLeaseTable;
use esm_sim::coordination::store::LeaseCheckpointStore;
use esm_sim::coordination::table::LeaseTable;
use esm_sim::coordination::timing::LeaseTiming;
use esm_sim::engine::context::MappingContext;
use esm_sim::model::ShardId;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "s3cret";
const LEASE_MS: u64 = 2_000;

const CONFIG: &str = r#"
state_dir = "state"

[admin]
listen = "127.0.0.1:0"
token = "s3cret"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 2

[[streams.producers]]
rate_per_second = 10.0
duration_seconds = 600.0
keys = 20

[[functions]]
name = "f"
latency = { p50_ms = 2.0 }

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "f"
starting_position = "TRIM_HORIZON"
pace = { poll_interval_ms = 200 }
"#;

/// One worker: its keeper, its mapping's context, its admin server.
struct Worker {
    keeper: Arc<LeaseKeeper>,
    ctx: Arc<MappingContext>,
    admin: Option<AdminServer>,
    url: String,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Worker {
    /// Starts worker `id` on `table`; `run`: whether it runs the mapping (and so takes
    /// leases) or only watches the table.
    async fn start(table: &Arc<MemoryLeaseTable>, id: &str, created_ms: i64, run: bool) -> Worker {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = esm_sim::config::parse(CONFIG, dir.path()).expect("config");
        let settings = LeaseTableSettings {
            table: "leases".into(),
            worker_id: id.into(),
            timing: LeaseTiming::from_lease_duration_ms(LEASE_MS),
            max_steals_per_pass: 1,
        };
        let clock = Clock::wall();
        let keeper = LeaseKeeper::new(table.clone(), &settings, clock, 7);
        let cancel = CancellationToken::new();
        let env = Environment {
            clock,
            store: Arc::new(LeaseCheckpointStore::new(
                keeper.clone(),
                Arc::new(MemoryStore::default()),
            )),
            stream_created_at_ms: &|_| Ok(created_ms),
            seeds: Seeds {
                world: 1,
                engine: 1,
                request_ids: Arc::new(esm_sim::event::request_id::RequestIds::derived(1, id)),
            },
            invocation_log: None,
            tap: None,
            aws: None,
            line_sync: esm_sim::destination::file::LineSync::None,
            leases: Some(keeper.clone()),
            cancel: cancel.clone(),
        };
        let parts = assemble(&config, env).await.expect("assemble");
        let ctx = parts.contexts[0].clone();
        let admin = AdminServer::start(
            &config.admin,
            &config.state_dir,
            Mappings::Fixed(parts.contexts),
            clock,
        )
        .await
        .expect("admin server")
        .expect("admin enabled");
        let url = admin.url().to_string();
        keeper.set_admin_url(url.clone());
        tokio::spawn(keeper.clone().run());
        if run {
            tokio::spawn(esm_sim::engine::supervisor::run_mapping(ctx.clone()));
        }
        Worker {
            keeper,
            ctx,
            admin: Some(admin),
            url,
            cancel,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, headers: HeaderMap, body: &str) -> Exchange {
        AdminClient::new(&self.url, None)
            .expect("client")
            .exchange(method.clone(), path, headers, Bytes::from(body.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{method} {path} at {}: {e}", self.url))
    }

    async fn post(&self, path: &str, body: &str) -> Exchange {
        self.call(Method::POST, path, with_token(), body).await
    }

    async fn get(&self, path: &str) -> String {
        let answer = self.call(Method::GET, path, with_token(), "").await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}");
        String::from_utf8(answer.body.to_vec()).expect("UTF-8")
    }

    /// The owner of `shard`'s lease as this worker sees it.
    fn owner_seen(&self, shard: &str) -> Option<String> {
        self.keeper
            .lease("m", &ShardId(shard.into()))
            .and_then(|l| l.owner)
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        self.keeper.hand_back().await;
    }
}

fn with_token() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header"),
    );
    headers
}

fn json(answer: &Exchange) -> Value {
    serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", answer.body))
}

fn forwarded_to(answer: &Exchange) -> Option<&str> {
    answer
        .headers
        .get("x-esm-sim-forwarded-to")
        .and_then(|v| v.to_str().ok())
}

/// Every lease's owner in the table, by shard.
async fn owners(table: &MemoryLeaseTable) -> BTreeMap<String, Option<String>> {
    table
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.shard_id.0, l.owner))
        .collect()
}

async fn wait_for(seconds: u64, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> i64 {
    Clock::wall().now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_on_a_shard_another_worker_holds_is_carried_out_by_the_holder() {
    let table = Arc::new(MemoryLeaseTable::default());
    let created = now_ms();
    let a = Worker::start(&table, "a", created, true).await;
    wait_for(10, "a to hold both shards", async || {
        let owners = owners(&table).await;
        owners.len() == 2 && owners.values().all(|o| o.as_deref() == Some("a"))
    })
    .await;
    let b = Worker::start(&table, "b", created, true).await;
    // b steals one at its first take pass; each sees the other's lease by its next one.
    let mut held_by = BTreeMap::new();
    wait_for(15, "one shard each, seen so by both", async || {
        held_by = owners(&table).await;
        let split = held_by
            .values()
            .filter(|o| o.as_deref() == Some("b"))
            .count()
            == 1;
        split
            && held_by.iter().all(|(shard, owner)| {
                a.owner_seen(shard) == *owner && b.owner_seen(shard) == *owner
            })
    })
    .await;
    let of = |worker: &str| -> String {
        held_by
            .iter()
            .find(|(_, o)| o.as_deref() == Some(worker))
            .map(|(s, _)| s.clone())
            .expect("a shard")
    };
    let (shard_a, shard_b) = (of("a"), of("b"));

    // b is asked to pause a's shard: a pauses it, and says so.
    let answer = b.post(&format!("/shards/m/{shard_a}/pause"), "").await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(forwarded_to(&answer), Some("a"));
    let shard = json(&answer);
    assert_eq!(shard["shard_id"], shard_a.as_str());
    assert_eq!(shard["paused"], true);
    assert_eq!(shard["lease_owner"], "a");
    let key = lease_key("m", &ShardId(shard_a.clone()));
    assert!(table.get(&key).await.expect("get").expect("row").paused);
    assert!(a
        .ctx
        .status
        .get(&shard_a)
        .expect("status")
        .control()
        .is_paused());

    // The holder's refusals come back as they are: a rewind without a body is a's 400.
    let answer = b.post(&format!("/shards/m/{shard_a}/rewind"), "").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(forwarded_to(&answer), Some("a"));
    assert!(json(&answer)["error"]
        .as_str()
        .expect("error")
        .starts_with("body is not JSON"));

    // The other way round: b's shard, asked at a.
    let answer = a.post(&format!("/shards/m/{shard_b}/pause"), "").await;
    assert_eq!(forwarded_to(&answer), Some("b"));
    assert_eq!(json(&answer)["paused"], true);
    // Asked at the holder itself: no forwarding.
    let answer = a.post(&format!("/shards/m/{shard_a}/resume"), "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(forwarded_to(&answer), None);
    assert_eq!(json(&answer)["paused"], false);

    // A request already forwarded is not forwarded again.
    let mut headers = with_token();
    headers.insert("x-esm-sim-forwarded", HeaderValue::from_static("1"));
    let answer = b
        .call(
            Method::POST,
            &format!("/shards/m/{shard_a}/skip"),
            headers,
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(
        json(&answer)["error"],
        format!("shard {shard_a} is not held by worker b (lease owner: a)").as_str()
    );
    // Without the token nothing is forwarded.
    let answer = b
        .call(
            Method::POST,
            &format!("/shards/m/{shard_a}/pause"),
            HeaderMap::new(),
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forwarded_to(&answer), None);

    // What the ops surfaces show.
    let shards: Value = serde_json::from_str(&b.get("/shards").await).expect("JSON");
    let shown: BTreeMap<String, (String, u64)> = shards["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            let owner = s["lease_owner"].as_str().unwrap_or("-").to_string();
            (
                s["shard_id"].as_str().unwrap_or("").to_string(),
                (owner, s["lease_counter"].as_u64().unwrap_or(0)),
            )
        })
        .collect();
    assert_eq!(shown[&shard_a].0, "a");
    assert_eq!(shown[&shard_b].0, "b");
    assert!(shown.values().all(|(_, counter)| *counter > 0), "{shown:?}");
    let table_text = esm_sim::admin::table::shards_table(&shards, 200);
    assert!(table_text.starts_with("MAPPING  SHARD"), "{table_text}");
    assert!(table_text.contains("OWNER"), "{table_text}");
    let mappings: Value = serde_json::from_str(&a.get("/mappings").await).expect("JSON");
    assert_eq!(mappings["mappings"][0]["worker_id"], "a");
    let metrics = b.get("/metrics").await;
    assert!(
        metrics.contains("esm_leases_held{worker=\"b\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("esm_leases_stolen_total{worker=\"b\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("esm_lease_renew_duration_milliseconds_count{worker=\"b\"} "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("worker=\"a\""),
        "each worker shows its own leases"
    );
    let metrics = a.get("/metrics").await;
    assert!(
        metrics.contains("esm_leases_lost_total{worker=\"a\"} 1\n"),
        "{metrics}"
    );

    // a's admin API goes away while a still holds its lease: b answers 502, naming a.
    let a_url = a.url.clone();
    let mut a = a;
    a.admin.take().expect("running").stop().await;
    let answer = b.post(&format!("/shards/m/{shard_a}/skip"), "").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let error = json(&answer)["error"].as_str().expect("error").to_string();
    assert!(
        error.starts_with(&format!(
            "the lease owner, worker a, did not answer at {a_url}: "
        )),
        "{error}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_nobody_holds_takes_a_pause_in_its_lease_row_and_refuses_a_skip() {
    let table = Arc::new(MemoryLeaseTable::default());
    // A worker that watches the table and runs no shard: every lease stays free.
    let c = Worker::start(&table, "c", now_ms(), false).await;
    let shards = c.ctx.source.list_shards().await.expect("shards");
    c.keeper.create_leases("m", &shards).await;
    for info in &shards {
        c.ctx.shard_status(info);
    }
    let shard = shards[0].shard_id.0.clone();
    c.keeper.take_soon();
    wait_for(5, "c to read the free leases", async || {
        c.keeper.lease("m", &ShardId(shard.clone())).is_some()
    })
    .await;

    let answer = c.post(&format!("/shards/m/{shard}/pause"), "").await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(forwarded_to(&answer), None);
    assert_eq!(json(&answer)["paused"], true);
    let key = lease_key("m", &ShardId(shard.clone()));
    let row = table.get(&key).await.expect("get").expect("row");
    assert!(row.paused && row.owner.is_none(), "{row:?}");

    for action in ["skip", "rewind"] {
        let answer = c
            .post(
                &format!("/shards/m/{shard}/{action}"),
                r#"{"sequence_number":"1"}"#,
            )
            .await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{action}");
        assert_eq!(
            json(&answer)["error"],
            format!("no worker holds shard {shard}'s lease now: try again once one does").as_str()
        );
    }
    let answer = c.post(&format!("/shards/m/{shard}/resume"), "").await;
    assert_eq!(json(&answer)["paused"], false);
    assert!(!table.get(&key).await.expect("get").expect("row").paused);
    c.stop().await;
}
