//! `esm-sim replay FILE --stream S [--speed X]`: a traffic file's records put back into a
//! stream at their recorded pace.
//!
//! Record `i` is due at `offset_ms / speed` after the start (`--speed 0`: all at once),
//! never before the line above it (`Pacing::offsets`), and goes out through the same
//! PutRecords loop as `load`, with its retries and summary. The whole file is read and
//! checked before the first put, so a malformed line stops the replay before it writes
//! anything.

use std::path::Path;

use super::kinesis_put::{put_paced, Outgoing, PutTarget};
use super::pacing::Pacing;
use super::progress::Progress;
use super::stream::resolve_stream;
use super::traffic_file;
use super::{Controls, Summary, DEFAULT_MAX_RETRIES};
use crate::aws::{self, AwsFactory};

/// Puts the records of the traffic file `file` into `stream` at `speed` times their
/// recorded pace (0: as fast as possible).
pub async fn replay(
    factory: &AwsFactory,
    file: &Path,
    stream: &str,
    speed: f64,
    controls: &Controls,
) -> anyhow::Result<Summary> {
    if !(speed.is_finite() && speed >= 0.0) {
        anyhow::bail!("--speed {speed}: must be a number >= 0 (0: as fast as possible)");
    }
    let records = traffic_file::read(file)?;
    let client = aws::kinesis(&factory.config_for(stream).await);
    let target = resolve_stream(&client, stream).await?;
    let pacing = Pacing::offsets(records.iter().map(|r| r.offset_ms), speed);
    let progress = Progress::new(controls.show_progress, Some(pacing.total()), "records");
    let outgoing = records.into_iter().map(|r| Outgoing {
        partition_key: r.partition_key,
        data: r.data,
    });
    let put = PutTarget {
        client: &client,
        stream: &target,
        max_retries: DEFAULT_MAX_RETRIES,
        progress: &progress,
        stop: &controls.stop,
    };
    let stats = put_paced(&put, &pacing, outgoing).await?;
    progress.finish();
    Ok(Summary::from_put(stats, None, DEFAULT_MAX_RETRIES))
}
