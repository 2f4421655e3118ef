//! Invocations per second through the command target, one process per invocation:
//! `cargo run --release --example command_function_bench` (N=500 invocations per handler by
//! default; set N to change it, and PYTHON to pick the interpreter, default `python3`).
//!
//! The event is a realistic 100-record Kinesis event (100-byte JSON payloads, built by the
//! engine's own encoder). Handlers: `cat` (echoes the event back), a tiny Python script
//! that reads stdin and answers `null`, and the README's handler (parses the event and
//! decodes every record). A bare loop spawning `cat` with tokio (no target) shows what the
//! process spawn itself costs; `cat` is also run from 4 concurrent callers (4 shards).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esm_sim::config::schema::{AwsIdentity, FunctionConfig};
use esm_sim::function::command::CommandFunction;
use esm_sim::function::{Function, Invocation, InvokeResult};
use esm_sim::model::{ShardId, StreamRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/event.rs"]
mod support;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort_unstable();
    println!(
        "{name:<34} p50 {:>6.2} ms   p99 {:>6.2} ms   {:>7.0} invocations/s",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

async fn run_target(
    name: &str,
    target: Arc<CommandFunction>,
    payload: Arc<Vec<u8>>,
    records: Arc<Vec<StreamRecord>>,
    n: usize,
    callers: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (target, payload, records) = (target.clone(), payload.clone(), records.clone());
        let count = n / callers + usize::from(c < n % callers);
        tasks.push(tokio::spawn(async move {
            let shard = ShardId(format!("shardId-{c:012}"));
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                let t = Instant::now();
                let result = target
                    .invoke(Invocation {
                        shard_id: &shard,
                        payload: &payload,
                        records: &records,
                    })
                    .await;
                samples.push(t.elapsed());
                match result {
                    InvokeResult::Response(r) if r.function_error.is_none() => {}
                    other => anyhow::bail!("unexpected answer: {other:?}"),
                }
            }
            Ok(samples)
        }));
    }
    let mut samples = Vec::with_capacity(n);
    for task in tasks {
        samples.extend(task.await??);
    }
    report(name, samples, started.elapsed());
    Ok(())
}

fn target(argv: &[&str]) -> anyhow::Result<Arc<CommandFunction>> {
    let cfg = FunctionConfig {
        name: "bench".into(),
        function_type: "command".into(),
        command: Some(argv.iter().map(|s| s.to_string()).collect()),
        working_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handlers")),
        timeout_seconds: 10,
        ..Default::default()
    };
    Ok(Arc::new(CommandFunction::new(
        &cfg,
        &AwsIdentity::default(),
    )?))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let (records, payload) = support::event();
    println!(
        "{n} invocations per handler, event of {} records, {} bytes",
        records.len(),
        payload.len()
    );
    let (records, payload) = (Arc::new(records), Arc::new(payload));

    // Bare: spawn `cat`, write the event, read it back, wait.
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(payload.len());
    for _ in 0..n {
        let t = Instant::now();
        let mut child = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        out.clear();
        let write = async {
            stdin.write_all(&payload).await?;
            drop(stdin);
            Ok::<_, std::io::Error>(())
        };
        let (w, r) = tokio::join!(write, stdout.read_to_end(&mut out));
        w?;
        r?;
        child.wait().await?;
        samples.push(t.elapsed());
    }
    report("bare tokio spawn of cat", samples, started.elapsed());

    let cat = target(&["cat"])?;
    run_target(
        "CommandFunction cat",
        cat.clone(),
        payload.clone(),
        records.clone(),
        n,
        1,
    )
    .await?;
    run_target(
        "CommandFunction cat, 4 callers",
        cat,
        payload.clone(),
        records.clone(),
        n,
        4,
    )
    .await?;
    let tiny = target(&[&python, "respond.py", "null"])?;
    run_target(
        &format!("CommandFunction {python} respond.py"),
        tiny,
        payload.clone(),
        records.clone(),
        n,
        1,
    )
    .await?;
    let handler = target(&[&python, "handler.py"])?;
    run_target(
        &format!("CommandFunction {python} handler.py"),
        handler,
        payload,
        records,
        n,
        1,
    )
    .await?;
    Ok(())
}
