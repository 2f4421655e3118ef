//! Several `esm-sim run` workers sharing a kinesis-local stream through a lease table on
//! moto's DynamoDB (issue 12), checked from outside: the real binary as child processes,
//! an HTTP function per worker that logs every record it receives, and a watcher that
//! reads the lease table every 100 ms.
//!
//! What it proves (docs/coordination.md):
//! - three workers split 8 shards evenly (3, 3, 2) within a few take intervals;
//! - kill -9 of one: its shards are held by the others within lease duration + one take
//!   interval (+ slack), no record is lost, and every record delivered twice was first
//!   delivered by the killed worker (its in-flight batches) or by the stopped one below;
//! - SIGSTOP of one past its lease, then SIGCONT: its leases are taken, it logs each
//!   loss, and no lease's checkpoint ever moves backwards (its late results are fenced);
//! - SIGTERM of one: its leases are handed back and held by the others within one take
//!   interval (+ slack), and it exits cleanly;
//! - a split while leases move: each key's records are first delivered in the order they
//!   were put, and every parent record before any record of its children.
//!
//! Timing runs on `lease_duration_seconds = 2` (renew every 641 ms, take every 4,050 ms),
//! so each phase takes seconds. The slack (1.5 s) covers one table scan by the test and
//! scheduling on this 2-core machine; a worker that never gave up or took a lease misses
//! the bounds by whole take intervals. The tests of this file run one at a time (a lock).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use base64::Engine as _;
use esm_sim::aws::AwsFactory;
use esm_sim::checkpoint::Checkpoint;
use esm_sim::coordination::dynamodb::DynamodbLeaseTable;
use esm_sim::coordination::lease::Lease;
use esm_sim::coordination::table::LeaseTable;
use esm_sim::coordination::timing::LeaseTiming;
use serde_json::Value;
use support::daemon_config::FAST_PACE;
use support::http_server::{Reply, Server};
use support::stream::TestStream;

const LEASE_SECONDS: u64 = 2;
const SLACK: Duration = Duration::from_millis(1500);
/// An invocation a worker wrote to its socket just before a signal can reach the test's
/// function just after it: it still counts as the signalled worker's.
const SENT_BEFORE: i64 = 500;

fn timing() -> LeaseTiming {
    LeaseTiming::from_lease_duration_ms(LEASE_SECONDS * 1000)
}

fn take_interval() -> Duration {
    Duration::from_millis(timing().take_interval_ms)
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------
// What the functions saw.

#[derive(Clone, Debug)]
struct Delivery {
    worker: usize,
    shard: String,
    n: u64,
    key: u64,
    at: Instant,
    wall_ms: i64,
}

type Log = Arc<Mutex<Vec<Delivery>>>;

/// A function for worker `worker`: logs each record (its `n` and key from the data) and
/// answers success after `delay`, so every worker has batches in flight most of the time.
async fn start_function(worker: usize, log: Log, delay: Duration) -> Server {
    Server::start("/", move |request| {
        let at = Instant::now();
        let event: Value = serde_json::from_slice(&request.body).expect("an event");
        let mut log = lock(&log);
        for r in event["Records"].as_array().expect("Records") {
            let shard = r["eventID"].as_str().expect("eventID");
            let shard = shard.split_once(':').expect("shard:seq").0.to_string();
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["kinesis"]["data"].as_str().expect("data"))
                .expect("base64");
            let data: Value = serde_json::from_slice(&data).expect("JSON data");
            log.push(Delivery {
                worker,
                shard,
                n: data["n"].as_u64().expect("n"),
                key: data["key"].as_u64().expect("key"),
                at,
                wall_ms: support::now_ms(),
            });
        }
        let mut reply = Reply::new(200, "{}");
        reply.delay = delay;
        reply
    })
    .await
}

// ---------------------------------------------------------------------------------------
// The workers: child processes, each with its own state directory and log.

struct Worker {
    id: String,
    config: PathBuf,
    log_file: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl Worker {
    fn new(root: &Path, index: usize, table: &str, stream_arn: &str, url: &str) -> Worker {
        let id = format!("w{index}");
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir).expect("worker dir");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "{state}"

[coordination]
store = "dynamodb"
table = "{table}"
worker_id = "{id}"
lease_duration_seconds = {LEASE_SECONDS}

[admin]
listen = "127.0.0.1:0"

[[functions]]
name = "recorder"
type = "http"
url = "{url}"
timeout_seconds = 10

[[mappings]]
name = "orders"
event_source_arn = "{stream_arn}"
function_name = "recorder"
starting_position = "TRIM_HORIZON"
batch_size = 20
{FAST_PACE}"#,
                state = dir.join("state").display(),
            ),
        )
        .expect("write the config");
        Worker {
            log_file: dir.join("run.log"),
            id,
            config,
            dir,
            child: None,
        }
    }

    fn start(&mut self) {
        let runs = std::fs::read_dir(&self.dir).map_or(0, |d| d.count());
        self.log_file = self.dir.join(format!("run-{runs}.log"));
        let child = Command::new(assert_cmd::cargo::cargo_bin("esm-sim"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .env("ESM_SIM_LOG", "info")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_ENDPOINT_URL")
            .envs(support::binary::local_servers())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&self.log_file).expect("log file"))
            .spawn()
            .expect("start esm-sim run");
        self.child = Some(child);
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// SIGTERM, then the exit status (within 20 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not stop within 20 s of SIGTERM", self.id);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The lease table, as the test reads it.

/// Every lease's checkpoint as seen by each scan, in order; and the leases of the last.
#[derive(Default)]
struct Watch {
    history: BTreeMap<String, Vec<String>>,
    last: Vec<Lease>,
}

async fn lease_table(table: &str) -> Arc<DynamodbLeaseTable> {
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    Arc::new(DynamodbLeaseTable::connect(&factory, table).await)
}

/// Scans the table every 100 ms until the test ends, recording every checkpoint.
fn watch(table: Arc<DynamodbLeaseTable>) -> Arc<Mutex<Watch>> {
    let watch: Arc<Mutex<Watch>> = Arc::default();
    let sink = Arc::downgrade(&watch);
    tokio::spawn(async move {
        loop {
            let leases = table.list().await.unwrap_or_default();
            let Some(watch) = sink.upgrade() else {
                return;
            };
            {
                let mut w = lock(&watch);
                for lease in &leases {
                    if let Some(Checkpoint::After(seq)) = &lease.checkpoint {
                        let seen = w.history.entry(lease.shard_id.0.clone()).or_default();
                        if seen.last() != Some(&seq.0) {
                            seen.push(seq.0.clone());
                        }
                    }
                }
                if !leases.is_empty() {
                    w.last = leases;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    watch
}

/// Open (not ended) leases held per worker.
fn held(watch: &Mutex<Watch>) -> BTreeMap<String, usize> {
    let mut held = BTreeMap::new();
    for lease in &lock(watch).last {
        if !lease.is_ended() {
            *held
                .entry(lease.owner.clone().unwrap_or_else(|| "-".into()))
                .or_insert(0) += 1;
        }
    }
    held
}

/// Waits until `done` holds for the table as last scanned; returns how long it took.
async fn wait_leases(
    watch: &Mutex<Watch>,
    seconds: u64,
    what: &str,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = held(watch);
        if done(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "timed out after {seconds} s waiting for {what}; leases held: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kinesis sequence numbers are decimal strings: longer is later, then by text.
fn seq_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

fn never_backwards(watch: &Mutex<Watch>) -> usize {
    let w = lock(watch);
    for (shard, seqs) in &w.history {
        for pair in seqs.windows(2) {
            assert!(
                seq_le(&pair[0], &pair[1]),
                "the checkpoint of {shard} moved backwards: {} then {}",
                pair[0],
                pair[1]
            );
        }
    }
    w.history.values().map(Vec::len).sum()
}

/// Every lease a worker stopped holding, from the workers' logs: (epoch ms, shard, the
/// worker that lost it), from `lease lost` lines (the loser's) and `lease stolen from X`
/// lines (the taker's, which may come first).
fn logged_moves(workers: &[Worker]) -> Vec<(i64, String, String)> {
    let mut moves = Vec::new();
    for w in workers {
        for run in std::fs::read_dir(&w.dir).expect("worker dir").flatten() {
            let text = std::fs::read_to_string(run.path()).unwrap_or_default();
            if !run.file_name().to_string_lossy().ends_with(".log") {
                continue;
            }
            for line in text.lines() {
                let from = if line.contains("lease lost") {
                    w.id.clone()
                } else if let Some(rest) = line.split("lease stolen from ").nth(1) {
                    rest.split_whitespace().next().unwrap_or("").to_string()
                } else {
                    continue;
                };
                let Some(at) = line
                    .split_whitespace()
                    .next()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                else {
                    continue;
                };
                let Some(shard) = line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("shard="))
                else {
                    continue;
                };
                moves.push((at.timestamp_millis(), shard.to_string(), from));
            }
        }
    }
    moves
}

// ---------------------------------------------------------------------------------------
// Producing, and judging what was delivered.

/// Puts records `ns` (data `{"n":N,"key":K}`, partition key `key-K`, K = N % keys).
async fn put(client: &aws_sdk_kinesis::Client, arn: &str, ns: std::ops::Range<u64>, keys: u64) {
    let all: Vec<u64> = ns.collect();
    for chunk in all.chunks(100) {
        let mut pending = chunk.to_vec();
        for _ in 0..20 {
            if pending.is_empty() {
                break;
            }
            let entries = pending
                .iter()
                .map(|n| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(format!("key-{}", n % keys))
                        .data(Blob::new(format!("{{\"n\":{n},\"key\":{}}}", n % keys)))
                        .build()
                        .expect("entry")
                })
                .collect();
            let out = client
                .put_records()
                .stream_arn(arn)
                .set_records(Some(entries))
                .send()
                .await
                .expect("PutRecords");
            pending = pending
                .iter()
                .zip(out.records())
                .filter(|(_, r)| r.error_code().is_some())
                .map(|(n, _)| *n)
                .collect();
        }
        assert!(pending.is_empty(), "records not put: {pending:?}");
    }
}

async fn wait_delivered(log: &Log, produced: u64, seconds: u64) {
    support::daemon::wait_for(seconds, "every record to be delivered", || {
        let log = lock(log);
        let distinct: BTreeSet<u64> = log.iter().map(|d| d.n).collect();
        distinct.len() as u64 >= produced
    })
    .await;
}

/// Each key's records, by their first delivery, come in the order they were put (a
/// record's `n` grows with its put order within a key).
fn first_deliveries_in_order(log: &[Delivery]) {
    let mut first: HashMap<u64, &Delivery> = HashMap::new();
    for d in log {
        first.entry(d.n).or_insert(d);
    }
    let mut by_key: BTreeMap<u64, Vec<&Delivery>> = BTreeMap::new();
    for d in first.values() {
        by_key.entry(d.key).or_default().push(d);
    }
    for (key, mut ds) in by_key {
        ds.sort_by_key(|d| d.n);
        for pair in ds.windows(2) {
            assert!(
                pair[0].at <= pair[1].at,
                "key {key}: record {} (first delivered by w{} from {}) came after record {} (w{} from {})",
                pair[0].n,
                pair[0].worker,
                pair[0].shard,
                pair[1].n,
                pair[1].worker,
                pair[1].shard
            );
        }
    }
}

/// Records delivered more than once, each with the worker of its first delivery.
fn duplicates(log: &[Delivery]) -> BTreeMap<u64, usize> {
    let mut count: HashMap<u64, (usize, usize)> = HashMap::new();
    for d in log {
        count.entry(d.n).or_insert((d.worker, 0)).1 += 1;
    }
    count
        .into_iter()
        .filter(|(_, (_, c))| *c > 1)
        .map(|(n, (worker, _))| (n, worker))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

// ---------------------------------------------------------------------------------------

#[test]
fn three_workers_split_eight_shards_fail_over_after_kill_9_fence_a_stopped_worker_and_hand_back_on_sigterm(
) {
    let _serial = serial();
    runtime().block_on(async {
        let kinesis = support::kinesis_client().await;
        let stream = TestStream::create(&kinesis, "leases", 8).await;
        let table_name = support::unique("esm-leases");
        let table = lease_table(&table_name).await;
        let root = tempfile::tempdir().expect("tempdir");
        let log: Log = Arc::default();
        let mut functions = Vec::new();
        let mut workers = Vec::new();
        for i in 1..=3 {
            let function = start_function(i, log.clone(), Duration::from_millis(100)).await;
            workers.push(Worker::new(root.path(), i, &table_name, &stream.arn, &function.url));
            functions.push(function);
        }
        put(&kinesis, &stream.arn, 0..800, 64).await;
        let mut produced = 800;

        // 1. An even split.
        for w in &mut workers {
            w.start();
        }
        let started = Instant::now();
        let started_ms = support::now_ms();
        let watch = watch(table.clone());
        let split = wait_leases(&watch, 60, "a 3/3/2 split", |h| {
            let mut counts: Vec<usize> = h
                .iter()
                .filter(|(o, _)| o.as_str() != "-")
                .map(|(_, c)| *c)
                .collect();
            counts.sort_unstable();
            counts == [2, 3, 3]
        })
        .await;
        let split = split.max(started.elapsed());
        wait_delivered(&log, produced, 60).await;

        // A producer keeps writing while leases move.
        let producing = Arc::new(std::sync::atomic::AtomicU64::new(produced));
        let stop_producing = tokio_util::sync::CancellationToken::new();
        let producer = {
            let (kinesis, arn) = (kinesis.clone(), stream.arn.clone());
            let (next, stop) = (producing.clone(), stop_producing.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let from = next.load(std::sync::atomic::Ordering::SeqCst);
                    put(&kinesis, &arn, from..from + 20, 64).await;
                    next.store(from + 20, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };

        // 2. kill -9 of w3: the others hold its shards within a lease and a take interval.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let killed_ms = support::now_ms();
        workers[2].kill9();
        let failover = wait_leases(&watch, 30, "w3's shards held by w1 and w2", |h| {
            !h.contains_key("w3") && !h.contains_key("-") && h.values().sum::<usize>() == 8
        })
        .await;
        let failover_bound = Duration::from_millis(timing().lease_duration_ms) + take_interval() + SLACK;
        assert!(
            failover <= failover_bound,
            "failover took {failover:?}, more than lease + take interval + slack = {failover_bound:?}"
        );

        // w3 comes back; the split evens out again.
        workers[2].start();
        wait_leases(&watch, 60, "w3 back in a 3/3/2 split", |h| {
            let mut counts: Vec<usize> = h.values().copied().collect();
            counts.sort_unstable();
            counts == [2, 3, 3] && !h.contains_key("-")
        })
        .await;

        // 3. SIGSTOP w2 past its lease, then SIGCONT: it loses every lease it held.
        let stopped_ms = support::now_ms();
        let held_by_w2 = held(&watch).get("w2").copied().unwrap_or(0);
        workers[1].signal("STOP");
        wait_leases(&watch, 30, "w2's shards held by w1 and w3", |h| {
            !h.contains_key("w2") && !h.contains_key("-")
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        workers[1].signal("CONT");
        let continued_ms = support::now_ms();
        support::daemon::wait_for(20, "w2 to log its lost leases", || {
            workers[1].log().matches("lease lost").count() >= held_by_w2
        })
        .await;

        // 4. SIGTERM w1: its leases are handed back and taken within a take interval.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let terminated_at = Instant::now();
        let status = workers[0].terminate();
        assert!(status.success(), "w1 exited with {status}");
        let exited = terminated_at.elapsed();
        wait_leases(&watch, 30, "w1's shards held by w2 and w3", |h| {
            !h.contains_key("w1") && !h.contains_key("-") && h.values().sum::<usize>() == 8
        })
        .await;
        let hand_back = terminated_at.elapsed();
        let hand_back_bound = take_interval() + SLACK;
        assert!(
            hand_back - exited <= hand_back_bound,
            "after SIGTERM w1 exited in {exited:?} and its shards were held again {:?} later (bound {hand_back_bound:?})",
            hand_back - exited
        );
        assert!(
            workers[0].log().contains("handed back on shutdown"),
            "w1 did not log its hand-back"
        );

        // Drain, stop.
        stop_producing.cancel();
        producer.await.expect("producer");
        produced = producing.load(std::sync::atomic::Ordering::SeqCst);
        wait_delivered(&log, produced, 60).await;
        for w in &mut workers[1..] {
            let status = w.terminate();
            assert!(status.success(), "{} exited with {status}", w.id);
        }

        let log = lock(&log).clone();
        let checkpoints = never_backwards(&watch);
        let dups = duplicates(&log);
        let moves = logged_moves(&workers);
        let in_flight = 2_000;
        let near = |d: &Delivery, t: i64| (d.wall_ms - t).abs() <= in_flight;
        let (mut of_killed, mut of_stopped, mut of_moved) = (0, 0, 0);
        for n in dups.keys() {
            let all: Vec<&Delivery> = log.iter().filter(|d| d.n == *n).collect();
            if all
                .iter()
                .any(|d| d.worker == 3 && d.wall_ms <= killed_ms + SENT_BEFORE && near(d, killed_ms))
            {
                of_killed += 1;
            } else if all.iter().any(|d| {
                d.worker == 2
                    && d.wall_ms <= continued_ms + SENT_BEFORE
                    && d.wall_ms + in_flight >= stopped_ms
            }) {
                of_stopped += 1;
            } else if all.iter().any(|d| {
                moves.iter().any(|(t, shard, from)| {
                    *shard == d.shard && *from == format!("w{}", d.worker) && near(d, *t)
                })
            }) {
                of_moved += 1;
            } else {
                let shard = &all[0].shard;
                panic!(
                    "record {n} of {shard} delivered {} times ({:?}), none in flight when its worker was killed, stopped or lost the shard's lease; moves of the shard: {:?}",
                    all.len(),
                    all.iter().map(|d| (d.worker, d.wall_ms - started_ms)).collect::<Vec<_>>(),
                    moves
                        .iter()
                        .filter(|(_, s, _)| s == shard)
                        .map(|(t, _, from)| (t - started_ms, from.clone()))
                        .collect::<Vec<_>>()
                );
            }
        }
        let w2_fenced = workers[1].log().matches("checkpoint not saved").count();
        eprintln!(
            "leases: {produced} records, split in {split:?}, kill -9 failover {failover:?} (bound {failover_bound:?}), \
             SIGTERM: exit {exited:?}, shards held again {hand_back:?} after it (bound exit + {hand_back_bound:?}), \
             {} duplicates ({of_killed} in flight at the kill, {of_stopped} at the stop, {of_moved} at another lease move), {} lease moves, \
             w2 lost {} leases and had {w2_fenced} checkpoints fenced, {checkpoints} checkpoint moves watched",
            dups.len(),
            moves.len(),
            workers[1].log().matches("lease lost").count()
        );
        first_deliveries_in_order(&log);
        drop(functions);
    });
}

#[test]
fn a_split_while_leases_move_between_workers_keeps_every_keys_records_in_order() {
    let _serial = serial();
    runtime().block_on(async {
        let kinesis = support::kinesis_client().await;
        let stream = TestStream::create(&kinesis, "leases-split", 2).await;
        let table_name = support::unique("esm-leases-split");
        let table = lease_table(&table_name).await;
        let root = tempfile::tempdir().expect("tempdir");
        let log: Log = Arc::default();
        let mut functions = Vec::new();
        let mut workers = Vec::new();
        for i in 1..=3 {
            let function = start_function(i, log.clone(), Duration::from_millis(50)).await;
            workers.push(Worker::new(root.path(), i, &table_name, &stream.arn, &function.url));
            functions.push(function);
        }
        let keys = 16;
        put(&kinesis, &stream.arn, 0..400, keys).await;
        workers[0].start();
        workers[1].start();
        let watch = watch(table.clone());
        wait_leases(&watch, 30, "a 1/1 split", |h| {
            h.get("w1") == Some(&1) && h.get("w2") == Some(&1)
        })
        .await;
        put(&kinesis, &stream.arn, 400..600, keys).await;

        // Split the first shard while a third worker joins and steals.
        let shards = kinesis
            .list_shards()
            .stream_arn(&stream.arn)
            .send()
            .await
            .expect("ListShards");
        let parent = shards.shards()[0].clone();
        let range = parent.hash_key_range().expect("range");
        let (lo, hi): (u128, u128) = (
            range.starting_hash_key().parse().expect("hash key"),
            range.ending_hash_key().parse().expect("hash key"),
        );
        kinesis
            .split_shard()
            .stream_arn(&stream.arn)
            .shard_to_split(parent.shard_id())
            .new_starting_hash_key((lo + (hi - lo) / 2).to_string())
            .send()
            .await
            .expect("SplitShard");
        workers[2].start();
        support::wait_active(&kinesis, &stream.arn).await;
        put(&kinesis, &stream.arn, 600..1000, keys).await;
        wait_delivered(&log, 1000, 90).await;
        let held = wait_leases(&watch, 30, "three open shards held", |h| {
            !h.contains_key("-") && h.values().sum::<usize>() == 3
        })
        .await;
        let parent_lease = lock(&watch)
            .last
            .iter()
            .find(|l| l.shard_id.0 == parent.shard_id())
            .cloned()
            .expect("the parent's lease");
        assert!(parent_lease.is_ended(), "the parent ends: {parent_lease:?}");
        for w in &mut workers {
            let status = w.terminate();
            assert!(status.success(), "{} exited with {status}", w.id);
        }
        let log = lock(&log).clone();
        first_deliveries_in_order(&log);
        let never = never_backwards(&watch);
        let by_worker: BTreeMap<usize, usize> = log.iter().fold(BTreeMap::new(), |mut m, d| {
            *m.entry(d.worker).or_insert(0) += 1;
            m
        });
        let moves = logged_moves(&workers);
        eprintln!(
            "split: 1,000 records over 16 keys in order, deliveries per worker {by_worker:?}, {} lease moves, {never} checkpoint moves watched, settled {held:?} after the drain",
            moves.len()
        );
        drop(functions);
    });
}
