//! Put -> invoke latency of a mapping against moto's Kinesis, next to a bare GetRecords
//! loop written with the same SDK, alternating in the same run (issue 14's measurement).
//!
//! `scripts/bench-latency.sh` starts the local servers and runs this with
//! `cargo run --release --example latency_bench`. On a fresh 2-shard stream it runs, in
//! ROUNDS rounds (default 2), a bare loop then `esm-sim`'s daemon, each at LATEST. Each run
//! first puts probe records until it has seen one on every shard (so iterators are open
//! and connections warm), then puts RECORDS single records (default 300), one every
//! PACE_MS (default 50 ms) with PutRecord, and notes when each put is acknowledged.
//! Latency is from that acknowledgement to the moment the consumer has the record: for the
//! bare loop, when its GetRecords answer is in hand; for the daemon, when the function
//! (simulated, answers at once) has been invoked with it (the tap sees an invocation as
//! it returns). Records are told apart by their data (`{"run":R,"n":I}`).
//!
//! Both read at the same 10 ms pace: the bare loop sleeps 10 ms when caught up (an empty
//! page, or one whose MillisBehindLatest is 0) and reads again at once while records
//! wait, as Lambda's poller does; the mapping has `pace = { poll_interval_ms = 10,
//! min_read_interval_ms = 0 }`, the same rule.
//! It prints p50, p90, p99 and max of each run, of each way over all rounds, and the
//! esm-sim / bare ratios. A benchmark: it asserts no timing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use esm_sim::function::tap::Observer;
use esm_sim::model::RecordBody;
use tokio_util::sync::CancellationToken;

#[path = "support/stream.rs"]
mod stream;

const SHARDS: usize = 2;
/// The read pace of both ways: the wait after an empty page.
const POLL_MS: u64 = 10;
/// How long a run waits for its last records after the last put.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// What a run's consumer has seen: when each measured record arrived, and which shards
/// have shown a probe.
struct Sightings {
    run: u64,
    seen: Mutex<Vec<Option<Instant>>>,
    probe_shards: Mutex<HashSet<String>>,
}

impl Sightings {
    fn new(run: u64, records: usize) -> Arc<Sightings> {
        Arc::new(Sightings {
            run,
            seen: Mutex::new(vec![None; records]),
            probe_shards: Mutex::new(HashSet::new()),
        })
    }

    /// Notes a record read from `shard` now; other runs' records are passed over.
    fn note(&self, shard: &str, data: &[u8]) {
        let at = Instant::now();
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        if value["run"].as_u64() != Some(self.run) {
            return;
        }
        if value["probe"].as_bool() == Some(true) {
            lock(&self.probe_shards).insert(shard.to_string());
        } else if let Some(n) = value["n"].as_u64() {
            if let Some(slot) = lock(&self.seen).get_mut(n as usize) {
                slot.get_or_insert(at);
            }
        }
    }

    fn shards_probed(&self) -> usize {
        lock(&self.probe_shards).len()
    }

    fn missing(&self) -> usize {
        lock(&self.seen).iter().filter(|s| s.is_none()).count()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The environment variable `name` as a number, or `default`.
fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={text:?}: expected a whole number")),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("ESM_SIM_TEST_MOTO_ENDPOINT").map_err(|_| {
        anyhow::anyhow!("ESM_SIM_TEST_MOTO_ENDPOINT is not set: run scripts/bench-latency.sh")
    })?;
    let records = env_number("RECORDS", 300)? as usize;
    let pace = Duration::from_millis(env_number("PACE_MS", 50)?.max(1));
    let rounds = env_number("ROUNDS", 2)?.max(1);
    let client = stream::client(&endpoint).await;
    let name = format!("latency-bench-{}", std::process::id());
    let arn = stream::active_stream(&client, &name, SHARDS as i32).await?;
    let shard_ids: Vec<String> = client
        .list_shards()
        .stream_arn(&arn)
        .send()
        .await?
        .shards()
        .iter()
        .map(|s| s.shard_id().to_string())
        .collect();
    println!(
        "put -> invoke latency, {SHARDS} shards on moto, {records} records a run, one every {} ms, \
         reads every {POLL_MS} ms when caught up",
        pace.as_millis()
    );
    let (mut bare, mut mapping) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let sightings = Sightings::new(2 * round, records);
        let run = Run {
            client: &client,
            arn: &arn,
            pace,
            sightings,
        };
        let got = run.bare(&shard_ids).await?;
        summary(&format!("round {} bare loop", round + 1), &got);
        bare.extend(got);
        let sightings = Sightings::new(2 * round + 1, records);
        let run = Run { sightings, ..run };
        let got = run.mapping(&endpoint).await?;
        summary(&format!("round {} esm-sim", round + 1), &got);
        mapping.extend(got);
    }
    let b = summary("all rounds, bare loop", &bare);
    let m = summary("all rounds, esm-sim", &mapping);
    println!(
        "esm-sim / bare:            p50 {:.2}x  p90 {:.2}x  p99 {:.2}x  max {:.2}x",
        m[0] / b[0],
        m[1] / b[1],
        m[2] / b[2],
        m[3] / b[3]
    );
    client.delete_stream().stream_arn(&arn).send().await?;
    Ok(())
}

/// One run: a consumer started by the caller, and the puts it is measured on.
struct Run<'a> {
    client: &'a aws_sdk_kinesis::Client,
    arn: &'a str,
    pace: Duration,
    sightings: Arc<Sightings>,
}

impl Run<'_> {
    /// The bare way: one task per shard, an iterator at LATEST, GetRecords at once after a
    /// page with records and `POLL_MS` after an empty one.
    async fn bare(&self, shard_ids: &[String]) -> anyhow::Result<Vec<f64>> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for shard_id in shard_ids {
            let mut iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(self.arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
                .await?
                .shard_iterator()
                .map(str::to_string);
            let (client, arn, shard_id, sightings, stop) = (
                self.client.clone(),
                self.arn.to_string(),
                shard_id.clone(),
                self.sightings.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while let (Some(it), false) = (iterator, stop.is_cancelled()) {
                    let page = client
                        .get_records()
                        .stream_arn(&arn)
                        .shard_iterator(&it)
                        .send()
                        .await?;
                    for record in page.records() {
                        sightings.note(&shard_id, record.data().as_ref());
                    }
                    let caught_up =
                        page.records().is_empty() || page.millis_behind_latest() == Some(0);
                    if caught_up {
                        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
                    }
                    iterator = page.next_shard_iterator().map(str::to_string);
                }
                anyhow::Ok(())
            }));
        }
        let measured = self.puts().await;
        stop.cancel();
        for task in tasks {
            task.await??;
        }
        measured
    }

    /// The esm-sim way: the daemon in this process, a mapping at LATEST with the 10 ms
    /// pace and a function that succeeds at once, tapped; the puts run as the daemon's
    /// shutdown future, so it stops when they are measured.
    async fn mapping(&self, endpoint: &str) -> anyhow::Result<Vec<f64>> {
        let dir = tempfile::tempdir()?;
        let text = format!(
            r#"state_dir = "{}"
[aws]
endpoint_url = "{endpoint}"

[admin]
listen = "127.0.0.1:0"

[[functions]]
name = "ok"

[[mappings]]
name = "latency"
event_source_arn = "{}"
function_name = "ok"
starting_position = "LATEST"
pace = {{ poll_interval_ms = {POLL_MS}, min_read_interval_ms = 0 }}
"#,
            dir.path().join("state").display(),
            self.arn
        );
        let config =
            esm_sim::config::parse(&text, dir.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let sightings = self.sightings.clone();
        let tap: Observer = Arc::new(move |shard, records, _| {
            for record in records {
                if let RecordBody::Kinesis { data, .. } = &record.body {
                    sightings.note(&shard.0, data);
                }
            }
        });
        let measured = Mutex::new(None);
        esm_sim::daemon::run_until(&config, Some(tap), async {
            *lock(&measured) = Some(self.puts().await);
        })
        .await?;
        let measured = lock(&measured).take();
        measured.unwrap_or_else(|| Err(anyhow::anyhow!("the daemon stopped before the puts")))
    }

    /// Probes until the consumer has shown one from every shard, then the measured puts at
    /// the pace; waits for the consumer to see them all. Returns each record's latency in
    /// ms, acknowledgement to sighting (negative if the consumer had it first).
    async fn puts(&self) -> anyhow::Result<Vec<f64>> {
        let run = self.sightings.run;
        let mut tick = tokio::time::interval(self.pace);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut probe = 0;
        while self.sightings.shards_probed() < SHARDS {
            anyhow::ensure!(
                Instant::now() < deadline,
                "run {run}: no probe seen on every shard within 60 s"
            );
            tick.tick().await;
            self.put(
                &format!("probe-{probe}"),
                format!(r#"{{"run":{run},"probe":true}}"#),
            )
            .await?;
            probe += 1;
        }
        let records = lock(&self.sightings.seen).len();
        let mut acked = Vec::with_capacity(records);
        for n in 0..records {
            tick.tick().await;
            self.put(&format!("key-{n}"), format!(r#"{{"run":{run},"n":{n}}}"#))
                .await?;
            acked.push(Instant::now());
        }
        let last_put = Instant::now();
        while self.sightings.missing() > 0 && last_put.elapsed() < DRAIN_WAIT {
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        let seen = lock(&self.sightings.seen).clone();
        let missing = self.sightings.missing();
        anyhow::ensure!(
            missing == 0,
            "run {run}: {missing} of {records} records not seen {DRAIN_WAIT:?} after the last put"
        );
        Ok(seen
            .iter()
            .zip(&acked)
            .filter_map(|(seen, acked)| {
                let seen = (*seen)?;
                Some(match seen.checked_duration_since(*acked) {
                    Some(d) => d.as_secs_f64() * 1e3,
                    None => -(acked.duration_since(seen).as_secs_f64() * 1e3),
                })
            })
            .collect())
    }

    async fn put(&self, key: &str, data: String) -> anyhow::Result<()> {
        self.client
            .put_record()
            .stream_arn(self.arn)
            .partition_key(key)
            .data(Blob::new(data.into_bytes()))
            .send()
            .await?;
        Ok(())
    }
}

/// Prints `label`'s p50, p90, p99 and max and returns them (ms).
fn summary(label: &str, samples: &[f64]) -> [f64; 4] {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let index = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
        sorted.get(index).copied().unwrap_or(f64::NAN)
    };
    let figures = [at(0.50), at(0.90), at(0.99), at(1.0)];
    println!(
        "{label:<26} p50 {:>6.1} ms  p90 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({} records)",
        figures[0],
        figures[1],
        figures[2],
        figures[3],
        sorted.len()
    );
    figures
}
