//! `esm-sim load` next to a bare PutRecords loop written with the same SDK, against the
//! same server, at the same batch size (500), alternating in one run (issue 14's load
//! measurement): records per second, CPU microseconds per record (this process's user +
//! system time), and the TCP connections each opened (counted by a relay in front of the
//! server that accepts every connection the client makes).
//!
//! `scripts/bench-load.sh` starts the local servers and runs this with
//! `cargo run --release --example load_bench` against kinesis-local and moto. RECORDS
//! (default 50,000) records per run, or KINESIS_LOCAL_RECORDS and MOTO_RECORDS per server;
//! ROUNDS (default 3) rounds of bare-then-load. A run of `load` also resolves the stream
//! (one DescribeStreamSummary: 11 calls against the bare loop's 10 for 5,000 records): on
//! moto, where every call costs a new connection, that one call weighs 10-20% of a
//! 5,000-record run (~0.2 s), so the benchmark sizes moto's runs separately.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use esm_sim::aws::AwsFactory;
use esm_sim::load::generate::Generator;
use esm_sim::load::{load_stream, Controls, LoadSpec};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/stream.rs"]
mod stream;

const BATCH: usize = 500;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let default_records: usize = env_or("RECORDS", 50_000);
    let rounds: usize = env_or("ROUNDS", 3);
    for (server, variable, records_variable) in [
        (
            "kinesis-local",
            "ESM_SIM_TEST_KINESIS_ENDPOINT",
            "KINESIS_LOCAL_RECORDS",
        ),
        ("moto", "ESM_SIM_TEST_MOTO_ENDPOINT", "MOTO_RECORDS"),
    ] {
        let endpoint = std::env::var(variable)
            .map_err(|_| anyhow::anyhow!("{variable} is not set: run scripts/bench-load.sh"))?;
        let records = env_or(records_variable, default_records);
        bench_server(server, &endpoint, records, rounds).await?;
    }
    Ok(())
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run's figures.
struct Run {
    seconds: f64,
    cpu_us: f64,
    connections: u64,
}

async fn bench_server(
    server: &str,
    endpoint: &str,
    records: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let relay = Relay::start(endpoint).await?;
    let client = stream::client(&relay.url).await;
    println!("{server}: {records} records per run, batches of {BATCH}, {rounds} rounds");
    let (mut bare_total, mut load_total) = (0.0, 0.0);
    for round in 1..=rounds {
        // A fresh stream for each run: kinesis-local slows down as a stream grows, which
        // would favour whichever runs first.
        let arn = fresh_stream(&client, &format!("load-bench-{server}-{round}-bare")).await?;
        let bare = measure(&relay, || bare_loop(&client, &arn, records)).await?;
        client.delete_stream().stream_arn(&arn).send().await?;
        let arn = fresh_stream(&client, &format!("load-bench-{server}-{round}-load")).await?;
        let load = measure(&relay, || esm_sim_load(&relay.url, &arn, records)).await?;
        client.delete_stream().stream_arn(&arn).send().await?;
        bare_total += bare.seconds;
        load_total += load.seconds;
        for (what, run) in [
            ("bare PutRecords loop", &bare),
            ("esm-sim load       ", &load),
        ] {
            println!(
                "  round {round} {what}: {:>8.0} records/s, {:>5.1} µs CPU per record, {} TCP connections",
                records as f64 / run.seconds,
                run.cpu_us / records as f64,
                run.connections
            );
        }
    }
    println!(
        "  {server}: esm-sim load / bare loop = {:.2} (records/s over all rounds)",
        bare_total / load_total
    );
    Ok(())
}

async fn measure<F, Fut>(relay: &Relay, run: F) -> anyhow::Result<Run>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let connections = relay.accepted.load(Ordering::Relaxed);
    let cpu = cpu_us()?;
    let started = Instant::now();
    run().await?;
    Ok(Run {
        seconds: started.elapsed().as_secs_f64(),
        cpu_us: cpu_us()? - cpu,
        connections: relay.accepted.load(Ordering::Relaxed) - connections,
    })
}

/// PutRecords of BATCH records, one call after the other: the very records `load` puts
/// (its generator, same seed), so both send the same bytes.
async fn bare_loop(
    client: &aws_sdk_kinesis::Client,
    arn: &str,
    records: usize,
) -> anyhow::Result<()> {
    let mut generator = Generator::new(spec(records).generator_spec());
    let mut entries = Vec::with_capacity(BATCH);
    for _ in 0..records {
        let record = generator
            .next()
            .ok_or_else(|| anyhow::anyhow!("generator ended"))?;
        entries.push(
            PutRecordsRequestEntry::builder()
                .data(Blob::new(generator.kinesis_data(&record)))
                .partition_key(record.partition_key)
                .build()?,
        );
        if entries.len() == BATCH {
            put(client, arn, std::mem::take(&mut entries)).await?;
        }
    }
    if !entries.is_empty() {
        put(client, arn, entries).await?;
    }
    Ok(())
}

async fn put(
    client: &aws_sdk_kinesis::Client,
    arn: &str,
    entries: Vec<PutRecordsRequestEntry>,
) -> anyhow::Result<()> {
    let out = client
        .put_records()
        .stream_arn(arn)
        .set_records(Some(entries))
        .send()
        .await?;
    anyhow::ensure!(
        out.failed_record_count().unwrap_or(0) == 0,
        "records failed"
    );
    Ok(())
}

/// `records` at a rate no server here reaches, so every batch `load` sends is full (500).
fn spec(records: usize) -> LoadSpec {
    let rate = 1_000_000.0;
    LoadSpec::new(rate, records as f64 / rate)
}

/// `esm-sim load` of `spec(records)`.
async fn esm_sim_load(endpoint: &str, arn: &str, records: usize) -> anyhow::Result<()> {
    let factory = AwsFactory::new(Some(endpoint.to_string()), "us-east-1".into());
    let summary = load_stream(&factory, arn, &spec(records), &Controls::default()).await?;
    anyhow::ensure!(
        summary.count as usize == records && summary.failed == 0,
        "load put {} of {records} records ({} failed)",
        summary.count,
        summary.failed
    );
    Ok(())
}

/// A new 4-shard stream named after `name` and the process, once ACTIVE.
async fn fresh_stream(client: &aws_sdk_kinesis::Client, name: &str) -> anyhow::Result<String> {
    stream::active_stream(client, &format!("{name}-{}", std::process::id()), 4).await
}

/// This process's user + system CPU time in microseconds (/proc/self/stat, in clock ticks
/// of 10 ms: runs last seconds, so that is precise enough).
fn cpu_us() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat
        .rsplit_once(") ")
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks * 10_000.0)
}

/// A TCP relay on 127.0.0.1 in front of the server, counting the connections clients open.
struct Relay {
    url: String,
    accepted: Arc<AtomicU64>,
}

impl Relay {
    async fn start(endpoint: &str) -> anyhow::Result<Relay> {
        let upstream = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(Relay { url, accepted })
    }
}
