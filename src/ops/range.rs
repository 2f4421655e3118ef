//! Reading one shard's records from a sequence number on, through the engine's
//! `StreamSource` (Kinesis or DynamoDB Streams), until a last sequence number, a count, the
//! shard's end or the tip. Shared by `inspect` (a user's range) and `redrive` (a failed
//! batch's range).
//!
//! Why it is shaped so: it talks only to the `StreamSource` trait, so the stopping rules,
//! which are the whole difficulty, are unit-tested with an in-memory source. It never hangs:
//! it stops at the tip (an empty page with MillisBehindLatest 0; DynamoDB Streams has no
//! MillisBehindLatest, so there after `EMPTY_PAGES_AT_TIP` empty pages in a row), and gives
//! up on a sparse shard after `MAX_EMPTY_PAGES` empty pages in a row. Throttles are retried
//! with a doubling wait, at most `MAX_THROTTLES` in a row; an expired iterator is re-opened
//! after the last record read. Records before `from` (none should come, AT_SEQUENCE_NUMBER)
//! are dropped; records after `to` end the read.

use std::time::Duration;

use crate::model::{SequenceNumber, ShardId, StreamKind, StreamRecord};
use crate::source::{IteratorPosition, SourceError, StreamSource};

/// Empty pages in a row that mean the tip when the service gives no MillisBehindLatest.
const EMPTY_PAGES_AT_TIP: u32 = 3;
/// Empty pages in a row (MillisBehindLatest > 0: a sparse shard) before giving up.
const MAX_EMPTY_PAGES: u32 = 100;
/// Throttled or failed reads in a row before giving up.
const MAX_THROTTLES: u32 = 10;
/// The most records one GetRecords asks for (the source clamps to the service's limit).
const PAGE_LIMIT: usize = crate::limits::KINESIS_GET_RECORDS_MAX_RECORDS;

/// Where a read stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Until {
    /// The last sequence number wanted (inclusive).
    pub to: Option<SequenceNumber>,
    /// The most records wanted.
    pub count: Option<usize>,
}

/// Why a read stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeEnd {
    /// A record after `to` was seen (or `to` itself was the last record read).
    PastTo,
    /// `count` records were read.
    Count,
    /// The shard is closed and all of it was read.
    ShardEnd,
    /// Caught up with the stream's newest record.
    Tip,
    /// `MAX_EMPTY_PAGES` empty pages in a row while the stream said records were behind.
    GaveUp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RangeRead {
    pub records: Vec<StreamRecord>,
    pub end: RangeEnd,
}

/// How fast reads go: at least `read_interval` between two GetRecords of the shard, and
/// `throttle_backoff` (doubled each time) after a throttle.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub read_interval: Duration,
    pub throttle_backoff: Duration,
}

impl Pace {
    /// The AWS pace of the stream's kind: 5 reads/s per Kinesis shard, 4 for DynamoDB.
    pub fn of(kind: StreamKind) -> Pace {
        Pace {
            read_interval: Duration::from_millis(match kind {
                StreamKind::Kinesis => 200,
                StreamKind::Dynamodb => 250,
            }),
            throttle_backoff: Duration::from_millis(200),
        }
    }
}

/// Reads `shard` from `from` (inclusive) until `until`, the shard's end or the tip.
pub async fn read_range(
    source: &dyn StreamSource,
    shard: &ShardId,
    from: &SequenceNumber,
    until: &Until,
    pace: Pace,
) -> Result<RangeRead, SourceError> {
    let mut records: Vec<StreamRecord> = Vec::new();
    let mut throttles = 0u32;
    let mut empty_pages = 0u32;
    let mut iterator = open(
        source,
        shard,
        IteratorPosition::AtSequence(from.clone()),
        pace,
    )
    .await?;
    let mut first_read = true;
    loop {
        if until.count.is_some_and(|n| records.len() >= n) {
            return Ok(RangeRead {
                records,
                end: RangeEnd::Count,
            });
        }
        if !first_read {
            tokio::time::sleep(pace.read_interval).await;
        }
        first_read = false;
        let limit = until
            .count
            .map_or(PAGE_LIMIT, |n| (n - records.len()).clamp(1, PAGE_LIMIT));
        let page = match source.get_records(&iterator, limit).await {
            Ok(page) => page,
            Err(SourceError::Throttled(why)) => {
                throttles += 1;
                if throttles > MAX_THROTTLES {
                    return Err(SourceError::Throttled(format!(
                        "{why} ({MAX_THROTTLES} reads in a row throttled; giving up)"
                    )));
                }
                tokio::time::sleep(pace.throttle_backoff * 2u32.pow(throttles.min(5) - 1)).await;
                continue;
            }
            Err(SourceError::ExpiredIterator) => {
                let position = match records.last() {
                    Some(last) => IteratorPosition::AfterSequence(last.sequence_number.clone()),
                    None => IteratorPosition::AtSequence(from.clone()),
                };
                iterator = open(source, shard, position, pace).await?;
                continue;
            }
            Err(other) => return Err(other),
        };
        throttles = 0;
        if page.records.is_empty() {
            empty_pages += 1;
        } else {
            empty_pages = 0;
        }
        for record in page.records {
            if record.sequence_number < *from {
                continue;
            }
            if until
                .to
                .as_ref()
                .is_some_and(|to| record.sequence_number > *to)
            {
                return Ok(RangeRead {
                    records,
                    end: RangeEnd::PastTo,
                });
            }
            let last = until.to.as_ref() == Some(&record.sequence_number);
            records.push(record);
            if last {
                return Ok(RangeRead {
                    records,
                    end: RangeEnd::PastTo,
                });
            }
            if until.count.is_some_and(|n| records.len() >= n) {
                return Ok(RangeRead {
                    records,
                    end: RangeEnd::Count,
                });
            }
        }
        let Some(next) = page.next_iterator else {
            return Ok(RangeRead {
                records,
                end: RangeEnd::ShardEnd,
            });
        };
        iterator = next;
        if empty_pages > 0 {
            let at_tip = match page.millis_behind_latest {
                Some(behind) => behind <= 0,
                None => empty_pages >= EMPTY_PAGES_AT_TIP,
            };
            if at_tip {
                return Ok(RangeRead {
                    records,
                    end: RangeEnd::Tip,
                });
            }
            if empty_pages >= MAX_EMPTY_PAGES {
                return Ok(RangeRead {
                    records,
                    end: RangeEnd::GaveUp,
                });
            }
        }
    }
}

/// GetShardIterator, retrying throttles like reads.
async fn open(
    source: &dyn StreamSource,
    shard: &ShardId,
    position: IteratorPosition,
    pace: Pace,
) -> Result<String, SourceError> {
    let mut throttles = 0u32;
    loop {
        match source.shard_iterator(shard, &position).await {
            Err(SourceError::Throttled(why)) => {
                throttles += 1;
                if throttles > MAX_THROTTLES {
                    return Err(SourceError::Throttled(why));
                }
                tokio::time::sleep(pace.throttle_backoff * 2u32.pow(throttles.min(5) - 1)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::model::{RecordBody, ShardInfo};
    use crate::source::RecordsPage;

    /// One shard in memory. Iterators are `<index>`; the shard holds `records` (already
    /// trimmed ones left out), answers `page_size` records per read, and a read at the end
    /// is empty with MillisBehindLatest 0, unless `closed`. `throttle_first` reads are
    /// throttled; `expire_at_read` makes that read (1-based) fail with an expired iterator.
    pub(crate) struct FakeShard {
        pub records: Vec<StreamRecord>,
        pub page_size: usize,
        pub closed: bool,
        pub millis_behind: Option<i64>,
        pub throttle_first: u32,
        pub expire_at_read: Option<u32>,
        pub reads: Mutex<u32>,
    }

    impl FakeShard {
        pub(crate) fn new(seqs: impl IntoIterator<Item = u64>) -> FakeShard {
            FakeShard {
                records: seqs.into_iter().map(record).collect(),
                page_size: 2,
                closed: false,
                millis_behind: Some(0),
                throttle_first: 0,
                expire_at_read: None,
                reads: Mutex::new(0),
            }
        }
    }

    pub(crate) fn seq(n: u64) -> SequenceNumber {
        SequenceNumber(format!("{n:056}"))
    }

    pub(crate) fn record(n: u64) -> StreamRecord {
        StreamRecord {
            sequence_number: seq(n),
            approximate_arrival_ms: 1_700_000_000_000 + n as i64,
            body: RecordBody::Kinesis {
                partition_key: format!("k{n}"),
                data: format!("{{\"n\":{n}}}").into_bytes(),
            },
        }
    }

    #[async_trait]
    impl StreamSource for FakeShard {
        fn stream_arn(&self) -> &str {
            "arn:aws:kinesis:us-east-1:123456789012:stream/fake"
        }
        fn kind(&self) -> StreamKind {
            StreamKind::Kinesis
        }
        async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
            Ok(Vec::new())
        }
        async fn shard_iterator(
            &self,
            _shard: &ShardId,
            position: &IteratorPosition,
        ) -> Result<String, SourceError> {
            let index = match position {
                IteratorPosition::AtSequence(s) => {
                    self.records.iter().position(|r| r.sequence_number >= *s)
                }
                IteratorPosition::AfterSequence(s) => {
                    self.records.iter().position(|r| r.sequence_number > *s)
                }
                _ => Some(0),
            };
            Ok(index.unwrap_or(self.records.len()).to_string())
        }
        async fn get_records(
            &self,
            iterator: &str,
            limit: usize,
        ) -> Result<RecordsPage, SourceError> {
            let read = {
                let mut reads = self.reads.lock().expect("lock");
                *reads += 1;
                *reads
            };
            if read <= self.throttle_first {
                return Err(SourceError::Throttled("slow down".into()));
            }
            if self.expire_at_read == Some(read) {
                return Err(SourceError::ExpiredIterator);
            }
            let start: usize = iterator.parse().expect("fake iterator");
            let end = (start + self.page_size.min(limit)).min(self.records.len());
            let next = (!(self.closed && end == self.records.len())).then(|| end.to_string());
            Ok(RecordsPage {
                records: self.records[start..end].to_vec(),
                next_iterator: next,
                millis_behind_latest: self.millis_behind,
                ..RecordsPage::default()
            })
        }
    }

    fn fast() -> Pace {
        Pace {
            read_interval: Duration::ZERO,
            throttle_backoff: Duration::from_millis(1),
        }
    }

    fn seqs(read: &RangeRead) -> Vec<SequenceNumber> {
        read.records
            .iter()
            .map(|r| r.sequence_number.clone())
            .collect()
    }

    async fn read(
        shard: &FakeShard,
        from: u64,
        to: Option<u64>,
        count: Option<usize>,
    ) -> RangeRead {
        let until = Until {
            to: to.map(seq),
            count,
        };
        read_range(shard, &ShardId("s".into()), &seq(from), &until, fast())
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn a_range_is_read_across_pages_from_and_to_inclusive() {
        let shard = FakeShard::new([10, 20, 30, 40, 50, 60]);
        let got = read(&shard, 20, Some(50), None).await;
        assert_eq!(seqs(&got), vec![seq(20), seq(30), seq(40), seq(50)]);
        assert_eq!(got.end, RangeEnd::PastTo);
        // `to` between two records: the first record after it ends the read.
        let got = read(&shard, 15, Some(45), None).await;
        assert_eq!(seqs(&got), vec![seq(20), seq(30), seq(40)]);
        assert_eq!(got.end, RangeEnd::PastTo);
    }

    #[tokio::test]
    async fn a_count_stops_the_read_and_the_tip_ends_it_early() {
        let shard = FakeShard::new([1, 2, 3, 4, 5]);
        let got = read(&shard, 2, None, Some(3)).await;
        assert_eq!(seqs(&got), vec![seq(2), seq(3), seq(4)]);
        assert_eq!(got.end, RangeEnd::Count);
        let got = read(&shard, 4, None, Some(10)).await;
        assert_eq!(seqs(&got), vec![seq(4), seq(5)]);
        assert_eq!(got.end, RangeEnd::Tip);
        let got = read(&shard, 3, Some(99), None).await;
        assert_eq!((got.records.len(), got.end), (3, RangeEnd::Tip));
    }

    #[tokio::test]
    async fn a_closed_shard_ends_and_a_source_without_millis_behind_stops_after_empty_pages() {
        let mut shard = FakeShard::new([1, 2, 3]);
        shard.closed = true;
        let got = read(&shard, 1, None, Some(10)).await;
        assert_eq!((got.records.len(), got.end), (3, RangeEnd::ShardEnd));

        let mut shard = FakeShard::new([1, 2, 3]);
        shard.millis_behind = None;
        let got = read(&shard, 2, Some(9), None).await;
        assert_eq!((got.records.len(), got.end), (2, RangeEnd::Tip));
        // 2 pages hold the records (page size 2), then EMPTY_PAGES_AT_TIP empty ones.
        assert_eq!(*shard.reads.lock().expect("lock"), 1 + EMPTY_PAGES_AT_TIP);

        let mut shard = FakeShard::new([1]);
        shard.millis_behind = Some(5_000);
        let got = read(&shard, 1, Some(9), None).await;
        assert_eq!((got.records.len(), got.end), (1, RangeEnd::GaveUp));
        assert_eq!(*shard.reads.lock().expect("lock"), 1 + MAX_EMPTY_PAGES);
    }

    #[tokio::test]
    async fn records_trimmed_from_the_range_are_simply_not_there() {
        // 10 and 20 were trimmed: the iterator AT 10 starts at the first record left.
        let shard = FakeShard::new([30, 40, 50]);
        let got = read(&shard, 10, Some(40), None).await;
        assert_eq!(seqs(&got), vec![seq(30), seq(40)]);
    }

    #[tokio::test]
    async fn throttles_are_waited_out_and_an_expired_iterator_resumes_after_the_last_record() {
        let mut shard = FakeShard::new([1, 2, 3, 4, 5]);
        shard.throttle_first = 3;
        shard.expire_at_read = Some(5);
        let got = read(&shard, 1, Some(5), None).await;
        assert_eq!(seqs(&got), (1..=5).map(seq).collect::<Vec<_>>());

        let mut shard = FakeShard::new([1]);
        shard.throttle_first = MAX_THROTTLES + 1;
        let error = read_range(
            &shard,
            &ShardId("s".into()),
            &seq(1),
            &Until::default(),
            fast(),
        )
        .await
        .expect_err("gives up");
        assert!(matches!(error, SourceError::Throttled(_)), "{error:?}");
    }
}
