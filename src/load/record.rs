//! `esm-sim record --stream S --out FILE`: what a stream holds, written as a traffic file
//! that `replay` can put back.
//!
//! Every shard the stream lists (ListShards, open and closed) is read from TRIM_HORIZON
//! or LATEST with plain GetRecords polling, one shard after the other, until the duration
//! has passed, the count is reached, every shard has ended, or Ctrl-C. Simple sequential
//! polling is enough for the few thousand records a recording holds, and keeps the call
//! rate per shard well under Kinesis' five GetRecords a second. The records are then
//! ordered by arrival time (`ApproximateArrivalTimestamp`; records of equal time keep
//! their shard's order) and their offsets made relative to the first: that part is pure
//! (`to_traffic`). With `--count N` reading stops at N records, which are the first N of
//! each shard rather than the globally earliest N when several shards hold more.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;

use super::progress::Progress;
use super::stream::{not_found, resolve_stream, StreamTarget};
use super::traffic_file::{self, TrafficRecord};
use super::Controls;
use crate::aws::{self, AwsFactory, ErrorClass};

/// Records asked of one GetRecords call (Kinesis' maximum).
const GET_RECORDS_LIMIT: u64 = crate::limits::KINESIS_GET_RECORDS_MAX_RECORDS as u64;
/// The pause after a round in which no shard had anything new.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// The pause after a throttled or failed GetRecords.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// Where reading starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The oldest record each shard still holds.
    TrimHorizon,
    /// Only records that arrive after the recording starts.
    Latest,
}

impl StartFrom {
    fn iterator_type(self) -> ShardIteratorType {
        match self {
            StartFrom::TrimHorizon => ShardIteratorType::TrimHorizon,
            StartFrom::Latest => ShardIteratorType::Latest,
        }
    }
}

/// When reading stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RecordLimit {
    Duration(Duration),
    Count(u64),
}

/// A record as read, before ordering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Epoch milliseconds.
    pub arrival_ms: i64,
}

/// What a recording did.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSummary {
    pub records: u64,
    pub shards: usize,
    pub seconds: f64,
    pub file: PathBuf,
    pub interrupted: bool,
}

impl std::fmt::Display for RecordSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recorded {} records from {} shard{} in {:.2} s to {}",
            self.records,
            self.shards,
            if self.shards == 1 { "" } else { "s" },
            self.seconds,
            self.file.display()
        )?;
        if self.interrupted {
            write!(f, " (interrupted)")?;
        }
        Ok(())
    }
}

/// Records read from any number of shards, in arrival order, with offsets from the first.
pub fn to_traffic(mut records: Vec<ReadRecord>) -> Vec<TrafficRecord> {
    records.sort_by_key(|r| r.arrival_ms);
    let first = records.first().map_or(0, |r| r.arrival_ms);
    records
        .into_iter()
        .map(|r| TrafficRecord {
            partition_key: r.partition_key,
            data: r.data,
            offset_ms: u64::try_from(r.arrival_ms - first).unwrap_or(0),
        })
        .collect()
}

fn epoch_ms(time: &aws_smithy_types::DateTime) -> i64 {
    time.secs()
        .saturating_mul(1000)
        .saturating_add(i64::from(time.subsec_nanos() / 1_000_000))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &StreamTarget,
) -> anyhow::Result<Vec<String>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // With a NextToken, ListShards takes nothing that names the stream.
        let request = match &token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_arn(&stream.arn),
        };
        let output = request.send().await.map_err(|e| match aws::classify(&e) {
            ErrorClass::NotFound => not_found(&stream.name),
            _ => anyhow::anyhow!("ListShards {}: {}", stream.name, aws::describe(&e)),
        })?;
        shards.extend(output.shards().iter().map(|s| s.shard_id().to_string()));
        match output.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(shards),
        }
    }
}

struct ShardReader {
    shard_id: String,
    iterator: Option<String>,
    last_sequence: Option<String>,
}

async fn shard_iterator(
    client: &aws_sdk_kinesis::Client,
    stream: &StreamTarget,
    reader: &ShardReader,
    from: StartFrom,
) -> anyhow::Result<Option<String>> {
    let request = client
        .get_shard_iterator()
        .stream_arn(&stream.arn)
        .shard_id(&reader.shard_id);
    // After an expired iterator, go on after the last record read.
    let request = match &reader.last_sequence {
        Some(sequence) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(sequence),
        None => request.shard_iterator_type(from.iterator_type()),
    };
    let output = request.send().await.map_err(|e| match aws::classify(&e) {
        ErrorClass::NotFound => not_found(&stream.name),
        _ => anyhow::anyhow!(
            "GetShardIterator {} {}: {}",
            stream.name,
            reader.shard_id,
            aws::describe(&e)
        ),
    })?;
    Ok(output.shard_iterator().map(String::from))
}

/// Reads `stream` (a name or an ARN) from `from` until `limit` and writes the records to
/// `out` as a traffic file.
pub async fn record(
    factory: &AwsFactory,
    stream: &str,
    out: &Path,
    from: StartFrom,
    limit: RecordLimit,
    controls: &Controls,
) -> anyhow::Result<RecordSummary> {
    let client = aws::kinesis(&factory.config_for(stream).await);
    let target = resolve_stream(&client, stream).await?;
    let mut readers = open_readers(&client, &target, from).await?;
    let wanted = match limit {
        RecordLimit::Count(n) => Some(n),
        RecordLimit::Duration(_) => None,
    };
    let progress = Progress::new(controls.show_progress, wanted, "records");
    let start = Instant::now();
    let deadline = match limit {
        RecordLimit::Duration(d) => Some(start + d),
        RecordLimit::Count(_) => None,
    };
    let mut read: Vec<ReadRecord> = Vec::new();
    let mut interrupted = false;
    let remaining = |read: &Vec<ReadRecord>| wanted.map(|n| n.saturating_sub(read.len() as u64));
    'polling: loop {
        if remaining(&read) == Some(0)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || readers.iter().all(|r| r.iterator.is_none())
        {
            break;
        }
        let mut pause = IDLE_POLL;
        for reader in readers.iter_mut() {
            if controls.stop.is_cancelled() {
                interrupted = true;
                break 'polling;
            }
            if reader.iterator.is_none() {
                continue;
            }
            let ask = remaining(&read).map_or(GET_RECORDS_LIMIT, |n| n.min(GET_RECORDS_LIMIT));
            if ask == 0 {
                break;
            }
            let shard = Shard {
                client: &client,
                target: &target,
                stream,
                from,
            };
            match poll_shard(shard, reader, ask, &mut read).await? {
                Polled::Reopened => {}
                Polled::Transient => pause = ERROR_BACKOFF,
                Polled::Read(count) => {
                    progress.inc(count as u64);
                    if count > 0 {
                        pause = Duration::ZERO;
                    }
                }
            }
        }
        if !pause.is_zero() && stopped_during(controls, pause, deadline).await {
            interrupted = true;
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    progress.finish();
    let traffic = to_traffic(read);
    std::fs::write(out, traffic_file::format(&traffic))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    Ok(RecordSummary {
        records: traffic.len() as u64,
        shards: readers.len(),
        seconds,
        file: out.to_path_buf(),
        interrupted,
    })
}

/// One reader per shard of the stream, its iterator opened at `from`.
async fn open_readers(
    client: &aws_sdk_kinesis::Client,
    target: &StreamTarget,
    from: StartFrom,
) -> anyhow::Result<Vec<ShardReader>> {
    let shard_ids = list_shards(client, target).await?;
    let mut readers = Vec::with_capacity(shard_ids.len());
    for shard_id in shard_ids {
        let mut reader = ShardReader {
            shard_id,
            iterator: None,
            last_sequence: None,
        };
        reader.iterator = shard_iterator(client, target, &reader, from).await?;
        readers.push(reader);
    }
    Ok(readers)
}

/// What one shard's reads need: the client, the stream, the name the user gave it (for
/// "Stream not found") and where its iterators start.
#[derive(Clone, Copy)]
struct Shard<'a> {
    client: &'a aws_sdk_kinesis::Client,
    target: &'a StreamTarget,
    stream: &'a str,
    from: StartFrom,
}

/// What one GetRecords call came to.
enum Polled {
    /// `n` records were read (and appended).
    Read(usize),
    /// The iterator had expired and was opened again after the last record read.
    Reopened,
    /// A throttle or a passing error: back off before the next round.
    Transient,
}

/// Reads at most `ask` records of `reader`'s shard into `read` and moves its iterator on.
async fn poll_shard(
    shard: Shard<'_>,
    reader: &mut ShardReader,
    ask: u64,
    read: &mut Vec<ReadRecord>,
) -> anyhow::Result<Polled> {
    let Shard {
        client,
        target,
        stream,
        from,
    } = shard;
    let Some(iterator) = reader.iterator.clone() else {
        return Ok(Polled::Read(0));
    };
    let answer = client
        .get_records()
        // The iterator names the stream, but moto reads the stream from here.
        .stream_arn(&target.arn)
        .shard_iterator(iterator)
        .limit(ask as i32)
        .send()
        .await;
    let output = match answer {
        Ok(output) => output,
        Err(error) if aws::error_code(&error) == Some("ExpiredIteratorException") => {
            reader.iterator = shard_iterator(client, target, reader, from).await?;
            return Ok(Polled::Reopened);
        }
        Err(error) => match aws::classify(&error) {
            ErrorClass::NotFound => return Err(not_found(stream)),
            ErrorClass::Transient => return Ok(Polled::Transient),
            ErrorClass::Permanent => anyhow::bail!(
                "GetRecords {} {}: {}",
                target.name,
                reader.shard_id,
                aws::describe(&error)
            ),
        },
    };
    for record in output.records() {
        read.push(ReadRecord {
            partition_key: record.partition_key().unwrap_or_default().to_string(),
            data: record.data().as_ref().to_vec(),
            arrival_ms: record
                .approximate_arrival_timestamp()
                .map_or_else(now_ms, epoch_ms),
        });
        reader.last_sequence = Some(record.sequence_number().to_string());
    }
    reader.iterator = output.next_shard_iterator().map(String::from);
    Ok(Polled::Read(output.records().len()))
}

/// Waits `pause` (at most until `deadline`); true when the user stopped the recording
/// meanwhile.
async fn stopped_during(controls: &Controls, pause: Duration, deadline: Option<Instant>) -> bool {
    let pause = match deadline {
        Some(d) => pause.min(d.saturating_duration_since(Instant::now())),
        None => pause,
    };
    tokio::select! {
        biased;
        _ = controls.stop.cancelled() => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(key: &str, arrival_ms: i64) -> ReadRecord {
        ReadRecord {
            partition_key: key.into(),
            data: key.as_bytes().to_vec(),
            arrival_ms,
        }
    }

    #[test]
    fn records_of_several_shards_are_ordered_by_arrival_with_offsets_from_the_first() {
        // Shard 0 read first, then shard 1; equal times keep the order they were read in.
        let records = vec![
            read("a", 1_000_300),
            read("b", 1_000_900),
            read("c", 1_000_100),
            read("d", 1_000_300),
        ];
        let traffic = to_traffic(records);
        let shown: Vec<(&str, u64)> = traffic
            .iter()
            .map(|r| (r.partition_key.as_str(), r.offset_ms))
            .collect();
        assert_eq!(shown, [("c", 0), ("a", 200), ("d", 200), ("b", 800)]);
        assert!(to_traffic(Vec::new()).is_empty());
    }

    #[test]
    fn arrival_timestamps_become_epoch_milliseconds() {
        let t = aws_smithy_types::DateTime::from_secs_and_nanos(1_700_000_000, 123_999_999);
        assert_eq!(epoch_ms(&t), 1_700_000_000_123);
    }
}
