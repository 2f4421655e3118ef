//! `esm-sim load --stream`: generated records put into a Kinesis stream at a steady rate.
//!
//! The records come from `generate` (the simulated producer's JSON, `user-<n>` keys from
//! the seed, every Nth one poison) and go out through `kinesis_put` on a `Pacing::rate`
//! schedule; this file only wires the two to a resolved stream.

use super::generate::Generator;
use super::kinesis_put::{put_paced, Outgoing, PutTarget};
use super::progress::Progress;
use super::stream::resolve_stream;
use super::{Controls, LoadSpec, Summary};
use crate::aws::{self, AwsFactory};

/// Puts `spec.rate × spec.duration_seconds` generated records into `stream` (a name or an
/// ARN) at `spec.rate` records per second.
pub async fn load_stream(
    factory: &AwsFactory,
    stream: &str,
    spec: &LoadSpec,
    controls: &Controls,
) -> anyhow::Result<Summary> {
    spec.validate()?;
    let client = aws::kinesis(&factory.config_for(stream).await);
    let target = resolve_stream(&client, stream).await?;
    let pacing = spec.pacing();
    let progress = Progress::new(controls.show_progress, Some(pacing.total()), "records");
    let mut generator = Generator::new(spec.generator_spec());
    let records = std::iter::from_fn(move || {
        let record = generator.next()?;
        let data = generator.kinesis_data(&record);
        Some(Outgoing {
            partition_key: record.partition_key,
            data,
        })
    });
    let put = PutTarget {
        client: &client,
        stream: &target,
        max_retries: spec.max_retries,
        progress: &progress,
        stop: &controls.stop,
    };
    let stats = put_paced(&put, &pacing, records).await?;
    progress.finish();
    Ok(Summary::from_put(stats, Some(spec.rate), spec.max_retries))
}
