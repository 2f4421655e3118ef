//! The simulator against the encoder's limit, DynamoDB next to Kinesis, in one process:
//! `cargo run --release --example simulate_bench [ROUNDS]` (default 3).
//!
//! Each round runs, one after the other: `simulate` of 1,000,000 DynamoDB changes
//! (NEW_AND_OLD_IMAGES, 8 shards, fixtures/bench/1m-dynamodb-changes-8-shards.toml), a bare
//! loop that only encodes DynamoDB events with the engine's own writers, `simulate` of
//! 1,000,000 Kinesis records (fixtures/bench/1m-records-8-shards.toml) and the bare Kinesis
//! loop. The bare loops encode 1,000,000 records as the batcher does (100 per event, into a
//! reused buffer) from 10,000 records read once from the same simulated stream. Records/s
//! of every run and the ratios are printed per round, then the medians: the machine is
//! shared and its speed varies, so alternating and comparing ratios cancels most noise.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use esm_sim::clock::Clock;
use esm_sim::config::Config;
use esm_sim::event::{encode_record, EventContext, EVENT_PREFIX, EVENT_SUFFIX};
use esm_sim::model::StreamRecord;
use esm_sim::sim::SimulatedStream;
use esm_sim::simulate::{simulate, SimulateOptions};
use esm_sim::source::simulated::SimulatedSource;
use esm_sim::source::{IteratorPosition, StreamSource};

const DYNAMODB: &str = "fixtures/bench/1m-dynamodb-changes-8-shards.toml";
const KINESIS: &str = "fixtures/bench/1m-records-8-shards.toml";
const SAMPLE: usize = 10_000;
const ENCODED: usize = 1_000_000;
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

/// The first records of the stream's shards (up to SAMPLE), read through the simulated
/// source the engine reads, and the event context of the first shard.
fn sample(config: &Config) -> (EventContext, Vec<StreamRecord>) {
    let start = config.simulation.start_ms;
    let stream = Arc::new(SimulatedStream::new(
        &config.streams[0],
        &config.aws,
        config.simulation.seed,
        start,
    ));
    // An hour in: every producer is done.
    let clock = Clock::starting_at(start + 3_600_000);
    let source = SimulatedSource::new(stream, clock, Default::default(), config.simulation.seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
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
        let ctx = EventContext {
            shard_id: shards[0].shard_id.clone(),
            event_source_arn: source.stream_arn().into(),
            aws_region: config.aws.region.as_str().into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/bench".into(),
        };
        (ctx, records)
    })
}

/// Records/s of encoding ENCODED records into events of BATCH, as the batcher writes them.
fn bare_rate(ctx: &EventContext, records: &[StreamRecord]) -> f64 {
    let mut event = Vec::new();
    let started = Instant::now();
    let mut encoded = 0;
    while encoded < ENCODED {
        for batch in records.chunks(BATCH) {
            event.clear();
            event.extend_from_slice(EVENT_PREFIX);
            for (i, record) in batch.iter().enumerate() {
                if i > 0 {
                    event.push(b',');
                }
                encode_record(ctx, record, &mut event);
            }
            event.extend_from_slice(EVENT_SUFFIX);
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
    let mut rows: Vec<[f64; 4]> = Vec::new();
    for round in 1..=rounds {
        let row = [
            simulate_rate(&dynamodb),
            bare_rate(&dctx, &drecords),
            simulate_rate(&kinesis),
            bare_rate(&kctx, &krecords),
        ];
        print_row(&format!("round {round}"), &row);
        rows.push(row);
    }
    let medians: [f64; 4] = std::array::from_fn(|i| median(rows.iter().map(|r| r[i]).collect()));
    print_row("median", &medians);
}

fn print_row(label: &str, [dsim, dbare, ksim, kbare]: &[f64; 4]) {
    println!(
        "{label:>8}: dynamodb simulate {:.3} M/s, bare {:.3} M/s, ratio {:.3} | \
         kinesis simulate {:.3} M/s, bare {:.3} M/s, ratio {:.3} | kinesis/dynamodb simulate {:.2}x",
        dsim / 1e6,
        dbare / 1e6,
        dsim / dbare,
        ksim / 1e6,
        kbare / 1e6,
        ksim / kbare,
        ksim / dsim,
    );
}
