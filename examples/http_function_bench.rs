//! Latency the HTTP target adds to an invocation, against a local server that answers at
//! once: `cargo run --release --example http_function_bench` (N=2000 invocations by
//! default; set N to change it).
//!
//! The event is a realistic 100-record Kinesis event (100-byte JSON payloads, built by the
//! engine's own encoder). The same request is also sent N times by a bare loop that writes
//! the HTTP/1.1 bytes on one kept-alive TcpStream and reads the answer, so the figures show
//! the target's own cost next to the cost of loopback HTTP itself.

use std::time::{Duration, Instant};

use esm_sim::config::schema::{AwsIdentity, FunctionConfig};
use esm_sim::function::http::HttpFunction;
use esm_sim::function::{Function, Invocation, InvokeResult};
use esm_sim::model::ShardId;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/event.rs"]
mod support;

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nnull";

/// Reads requests (Content-Length bodies) on one connection and answers each at once.
async fn serve(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() || write.write_all(ANSWER).await.is_err() {
            return;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn report(name: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    let total: Duration = samples.iter().sum();
    samples.sort_unstable();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!(
        "{name:<28} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs   max {:>8.1} µs   {:>8.0} req/s",
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        samples.len() as f64 / total.as_secs_f64()
    );
    (p50, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    });
    let (records, payload) = support::event();
    println!(
        "{n} invocations, event of {} records, {} bytes, server answering at once on {addr}",
        records.len(),
        payload.len()
    );

    // Bare loopback HTTP: the same request bytes on one kept-alive connection.
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    request.extend_from_slice(&payload);
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut stream = BufReader::new(stream);
    let mut answer = vec![0u8; ANSWER.len()];
    let mut bare = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        stream.get_mut().write_all(&request).await?;
        stream.read_exact(&mut answer).await?;
        if i >= 100 {
            bare.push(t.elapsed());
        }
    }
    let (bare_p50, bare_p99) = report("bare keep-alive socket", bare);

    // The target.
    let cfg = FunctionConfig {
        name: "bench".into(),
        function_type: "http".into(),
        url: Some(format!(
            "http://{addr}/2015-03-31/functions/function/invocations"
        )),
        timeout_seconds: 3,
        ..Default::default()
    };
    let target = HttpFunction::new(&cfg, &AwsIdentity::default())?;
    let shard = ShardId("shardId-000000000000".into());
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        let result = target
            .invoke(Invocation {
                shard_id: &shard,
                payload: &payload,
                records: &records,
            })
            .await;
        let took = t.elapsed();
        match result {
            InvokeResult::Response(r) if r.function_error.is_none() => {}
            other => anyhow::bail!("unexpected answer: {other:?}"),
        }
        if i >= 100 {
            samples.push(took);
        }
    }
    let (p50, p99) = report("HttpFunction::invoke", samples);
    println!(
        "added by the target over bare loopback HTTP: p50 {:.1} µs, p99 {:.1} µs",
        p50 - bare_p50,
        p99 - bare_p99
    );
    Ok(())
}
