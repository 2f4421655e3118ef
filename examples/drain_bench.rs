//! Drain throughput of a mapping against moto's Kinesis, next to a bare GetRecords loop
//! written with the same SDK, in the same run (issue 3's measurement).
//!
//! `scripts/bench-drain.sh` starts the local servers and runs this with
//! `cargo run --release --example drain_bench`. It loads RECORDS (default 100,000) records
//! into a fresh 4-shard stream on moto, then drains it twice: once with one task per shard
//! looping GetShardIterator/GetRecords as fast as the server answers, once with
//! `esm-sim`'s daemon (a mapping with BatchSize 100 and a function that always succeeds),
//! and prints both rates and their ratio.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use esm_sim::function::tap::Observer;

#[path = "support/stream.rs"]
mod stream;

const SHARDS: i32 = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("ESM_SIM_TEST_MOTO_ENDPOINT").map_err(|_| {
        anyhow::anyhow!("ESM_SIM_TEST_MOTO_ENDPOINT is not set: run scripts/bench-drain.sh")
    })?;
    let records: usize = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let client = stream::client(&endpoint).await;
    let name = format!("drain-bench-{}", std::process::id());
    let arn = stream::active_stream(&client, &name, SHARDS).await?;
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(500) {
        let entries = chunk
            .iter()
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("user-{}", i % 1000))
                    .data(Blob::new(
                        format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(80)).into_bytes(),
                    ))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .put_records()
            .stream_arn(&arn)
            .set_records(Some(entries))
            .send()
            .await?;
        anyhow::ensure!(
            out.failed_record_count().unwrap_or(0) == 0,
            "PutRecords failed some records"
        );
    }
    eprintln!(
        "loaded {records} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let bare = bare_loop(&client, &arn, records).await?;
    let mapping = mapping_drain(&endpoint, &arn, records).await?;
    println!(
        "bare GetRecords loop: {records} records in {:.2} s = {:.0} records/s",
        bare,
        records as f64 / bare
    );
    println!(
        "esm-sim mapping:      {records} records in {:.2} s = {:.0} records/s",
        mapping,
        records as f64 / mapping
    );
    println!("mapping / bare loop:  {:.0}%", 100.0 * bare / mapping);
    client.delete_stream().stream_arn(&arn).send().await?;
    Ok(())
}

/// One task per shard: GetShardIterator(TRIM_HORIZON), then GetRecords (10,000 per call)
/// until the iterator is caught up. Returns the seconds taken.
async fn bare_loop(
    client: &aws_sdk_kinesis::Client,
    arn: &str,
    expected: usize,
) -> anyhow::Result<f64> {
    let shards = client.list_shards().stream_arn(arn).send().await?;
    let started = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for shard in shards.shards() {
        let (client, arn, shard_id, count) = (
            client.clone(),
            arn.to_string(),
            shard.shard_id().to_string(),
            count.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut iterator = client
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await?
                .shard_iterator()
                .map(str::to_string);
            while let Some(it) = iterator {
                let page = client
                    .get_records()
                    .stream_arn(&arn)
                    .shard_iterator(&it)
                    .limit(10_000)
                    .send()
                    .await?;
                count.fetch_add(page.records().len() as u64, Ordering::Relaxed);
                if page.records().is_empty() && page.millis_behind_latest().unwrap_or(0) == 0 {
                    break;
                }
                iterator = page.next_shard_iterator().map(str::to_string);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let read = count.load(Ordering::Relaxed) as usize;
    anyhow::ensure!(
        read == expected,
        "the bare loop read {read} of {expected} records"
    );
    Ok(started.elapsed().as_secs_f64())
}

/// `esm-sim`'s daemon on the same stream until the function has seen every record.
async fn mapping_drain(endpoint: &str, arn: &str, expected: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let text = format!(
        r#"state_dir = "{}"
[aws]
endpoint_url = "{endpoint}"

[[functions]]
name = "ok"

[[mappings]]
name = "drain"
event_source_arn = "{arn}"
function_name = "ok"
starting_position = "TRIM_HORIZON"
batch_size = 100
"#,
        dir.path().join("state").display()
    );
    let config = esm_sim::config::parse(&text, dir.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let tap: Observer = Arc::new(move |_, records, _| {
        counter.fetch_add(records.len() as u64, Ordering::Relaxed);
    });
    let started = Instant::now();
    let done = seen.clone();
    let finished = Arc::new(tokio::sync::Notify::new());
    let notify = finished.clone();
    let watcher = tokio::spawn(async move {
        while (done.load(Ordering::Relaxed) as usize) < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        notify.notify_one();
    });
    let elapsed = Arc::new(std::sync::Mutex::new(0.0));
    let when = elapsed.clone();
    esm_sim::daemon::run_until(&config, Some(tap), async move {
        finished.notified().await;
        *when.lock().unwrap_or_else(|p| p.into_inner()) = started.elapsed().as_secs_f64();
    })
    .await?;
    watcher.await?;
    let seconds = *elapsed.lock().unwrap_or_else(|p| p.into_inner());
    Ok(seconds)
}
