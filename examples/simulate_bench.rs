//! The simulator against the encoder's limit, DynamoDB next to Kinesis, in one process:
//! `cargo run --release --example simulate_bench [ROUNDS]` (default 3).
//!
//! Each round runs, one after the other, for DynamoDB (1,000,000 changes,
//! NEW_AND_OLD_IMAGES, 8 shards, fixtures/bench/1m-dynamodb-changes-8-shards.toml) and then
//! Kinesis (1,000,000 records, fixtures/bench/1m-records-8-shards.toml): `simulate`; the
//! bare encode loop, which only encodes events with the engine's own writers (1,000,000
//! records as the batcher does, 100 per event into a reused buffer, from 10,000 records
//! read once from the same simulated stream); and the bare read-and-encode loop, which
//! reads the whole stream, made from scratch, through the simulated source and encodes
//! it the same way, with no engine between. simulate over the first is the ratio
//! (the engine's writers against everything else); over the second, what the engine
//! itself (shard tasks, batching, checkpoints, invocations) costs beyond making and
//! encoding the records. A first round warms the process up and is not counted. Records/s
//! of every run and the ratios are printed per round, then the medians of the rates and
//! of each round's ratios: the machine is shared and its speed varies, so alternating and
//! comparing ratios within a round cancels most noise.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use esm_sim::clock::Clock;
use esm_sim::config::Config;
use esm_sim::event::{encode_record, EventContext, EVENT_PREFIX, EVENT_SUFFIX};
use esm_sim::model::{ShardId, StreamRecord};
use esm_sim::sim::SimulatedStream;
use esm_sim::simulate::{simulate, SimulateOptions};
use esm_sim::source::simulated::SimulatedSource;
use esm_sim::source::{IteratorPosition, StreamSource};

const DYNAMODB: &str = "fixtures/bench/1m-dynamodb-changes-8-shards.toml";
const KINESIS: &str = "fixtures/bench/1m-records-8-shards.toml";
const SAMPLE: usize = 10_000;
const ENCODED: usize = 1_000_000;
/// The records each fixture's producer writes.
const RECORDS: usize = 1_000_000;
const BATCH: usize = 100;

fn load(path: &str) -> Config {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    esm_sim::config::parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Records/s of wall time of one `simulate` run (every record produced, delivered once).
fn simulate_rate(config: &Config) -> f64 {
    let started = Instant::now();
    let report = simulate(config, &SimulateOptions::default()).expect("simulate");
    let wall = started.elapsed().as_secs_f64();
    assert!(report.drained, "the benchmark must drain");
    assert_eq!(
        report.counts.records_succeeded,
        report.counts.records_produced
    );
    report.counts.records_produced as f64 / wall
}

/// The simulated source of the stream of `config` an hour into it (every producer is
/// done), made from scratch: nothing of it is generated until it is first read.
fn source_an_hour_in(config: &Config) -> SimulatedSource {
    let start = config.simulation.start_ms;
    let stream = Arc::new(SimulatedStream::new(
        &config.streams[0],
        &config.aws,
        config.simulation.seed,
        start,
    ));
    let clock = Clock::starting_at(start + 3_600_000);
    SimulatedSource::new(stream, clock, Default::default(), config.simulation.seed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// The event context of `shard` of `source`'s stream.
fn event_context(config: &Config, source: &SimulatedSource, shard: &ShardId) -> EventContext {
    EventContext {
        shard_id: shard.clone(),
        event_source_arn: source.stream_arn().into(),
        aws_region: config.aws.region.as_str().into(),
        invoke_identity_arn: "arn:aws:iam::123456789012:role/bench".into(),
    }
}

/// The first records of the stream's shards (up to SAMPLE), read through the simulated
/// source the engine reads, and the event context of the first shard.
fn sample(config: &Config) -> (EventContext, Vec<StreamRecord>) {
    let source = source_an_hour_in(config);
    runtime().block_on(async {
        let shards = source.list_shards().await.expect("shards");
        let per_shard = SAMPLE.div_ceil(shards.len());
        let mut records = Vec::with_capacity(SAMPLE);
        for shard in &shards {
            let mut iterator = source
                .shard_iterator(&shard.shard_id, &IteratorPosition::TrimHorizon)
                .await
                .ok();
            let mut taken = 0;
            while let Some(it) = iterator.take() {
                let page = source.get_records(&it, 1000).await.expect("records");
                let n = page.records.len().min(per_shard - taken);
                taken += n;
                records.extend(page.records.into_iter().take(n));
                if n > 0 && taken < per_shard {
                    iterator = page.next_iterator;
                }
            }
        }
        (event_context(config, &source, &shards[0].shard_id), records)
    })
}

/// Appends the event of `batch` to `event` (cleared first), as the batcher writes it.
fn encode_event(ctx: &EventContext, batch: &[StreamRecord], event: &mut Vec<u8>) {
    event.clear();
    event.extend_from_slice(EVENT_PREFIX);
    for (i, record) in batch.iter().enumerate() {
        if i > 0 {
            event.push(b',');
        }
        encode_record(ctx, record, event);
    }
    event.extend_from_slice(EVENT_SUFFIX);
}

/// Records/s of the bare read-and-encode loop: the whole stream of `config`, made from
/// scratch, read shard by shard through the simulated source at the mapping's GetRecords
/// limit (every record generated and rebuilt, as `simulate` has them) and encoded into
/// events of the mapping's batch size, with no engine between: no shard tasks, batching,
/// checkpoints or invocations. `simulate` over this is what the engine itself costs.
fn read_and_encode_rate(config: &Config) -> f64 {
    let mapping = &config.mappings[0];
    let (limit, batch_size) = (mapping.pace.get_records_limit, mapping.batch_size);
    let started = Instant::now();
    let source = source_an_hour_in(config);
    let records = runtime().block_on(async {
        let mut event = Vec::new();
        let mut records = 0;
        for shard in source.list_shards().await.expect("shards") {
            let ctx = event_context(config, &source, &shard.shard_id);
            let mut iterator = source
                .shard_iterator(&shard.shard_id, &IteratorPosition::TrimHorizon)
                .await
                .ok();
            while let Some(it) = iterator.take() {
                let page = source.get_records(&it, limit).await.expect("records");
                for batch in page.records.chunks(batch_size) {
                    encode_event(&ctx, batch, &mut event);
                    black_box(&event);
                }
                records += page.records.len();
                if !page.records.is_empty() {
                    iterator = page.next_iterator;
                }
            }
        }
        records
    });
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(records, RECORDS, "the bare loop reads every record once");
    records as f64 / wall
}

/// Records/s of encoding ENCODED records into events of BATCH, as the batcher writes them.
fn bare_rate(ctx: &EventContext, records: &[StreamRecord]) -> f64 {
    let mut event = Vec::new();
    let started = Instant::now();
    let mut encoded = 0;
    while encoded < ENCODED {
        for batch in records.chunks(BATCH) {
            encode_event(ctx, batch, &mut event);
            black_box(&event);
            encoded += batch.len();
        }
    }
    encoded as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(3, |n| n.parse().expect("ROUNDS is a number"));
    let dynamodb = load(DYNAMODB);
    let kinesis = load(KINESIS);
    let (dctx, drecords) = sample(&dynamodb);
    let (kctx, krecords) = sample(&kinesis);
    let round = || {
        [
            simulate_rate(&dynamodb),
            bare_rate(&dctx, &drecords),
            read_and_encode_rate(&dynamodb),
            simulate_rate(&kinesis),
            bare_rate(&kctx, &krecords),
            read_and_encode_rate(&kinesis),
        ]
    };
    // The process's first simulate faults its memory in (a first round ran at two thirds
    // of the speed of the next ones): one round to warm up, not counted.
    round();
    println!("warm-up round done (not counted)");
    let mut rows: Vec<[f64; 6]> = Vec::new();
    for n in 1..=rounds {
        let rates = round();
        print_row(&format!("round {n}"), &rates, &ratios(&rates));
        rows.push(rates);
    }
    let rates: [f64; 6] = std::array::from_fn(|i| median(rows.iter().map(|r| r[i]).collect()));
    // Each round's own ratios: its runs alternate, so a change in the machine's speed
    // between rounds cancels, where a ratio of median rates would mix rounds.
    let ratios: [f64; 5] =
        std::array::from_fn(|i| median(rows.iter().map(|r| ratios(r)[i]).collect()));
    print_row("median", &rates, &ratios);
}

/// simulate over each bare loop, DynamoDB then Kinesis, and Kinesis simulate over DynamoDB
/// simulate.
fn ratios([dsim, dbare, dread, ksim, kbare, kread]: &[f64; 6]) -> [f64; 5] {
    [
        dsim / dbare,
        dsim / dread,
        ksim / kbare,
        ksim / kread,
        ksim / dsim,
    ]
}

/// One line per stream kind: simulate, then each bare loop and simulate's ratio to it.
fn print_row(
    label: &str,
    [dsim, dbare, dread, ksim, kbare, kread]: &[f64; 6],
    [dr_bare, dr_read, kr_bare, kr_read, k_over_d]: &[f64; 5],
) {
    for (kind, sim, bare, read, r_bare, r_read) in [
        ("dynamodb", dsim, dbare, dread, dr_bare, dr_read),
        ("kinesis", ksim, kbare, kread, kr_bare, kr_read),
    ] {
        println!(
            "{label:>8}: {kind:<8} simulate {:.3} M/s | bare encode {:.3} M/s, ratio {r_bare:.3} | \
             bare read+encode {:.3} M/s, ratio {r_read:.3}",
            sim / 1e6,
            bare / 1e6,
            read / 1e6,
        );
    }
    println!("{label:>8}: kinesis/dynamodb simulate {k_over_d:.2}x");
}
