//! `StreamSource` over a real Kinesis data stream (AWS, LocalStack, kinesis-local, moto):
//! the four read calls the engine needs (ListShards, GetShardIterator, GetRecords, and
//! DescribeStreamSummary once at start), mapped into the crate's model types.
//!
//! What it owns: the stream's identity (the ARN resolved at start, and the name) and one
//! SDK client built by `aws::kinesis` from `AwsFactory::config_for(arn)`, so the client's
//! region is the ARN's region and the endpoint is whatever the configuration points at.
//! The load generator reuses that client through `client()`.
//!
//! Why it is shaped so:
//! - SDK retries are off (see `aws`): a throttle or a 5xx comes back here at once and
//!   becomes `SourceError::Throttled`, and the engine backs off with jitter without
//!   counting it as a retry attempt. SDK retries would hide throttles and double the pace.
//!   A 5xx without an error code (the local servers' answer to a malformed iterator) is
//!   `Other` instead: no throttle, so the engine may re-open the iterator it keeps failing.
//! - Errors are classified only by `aws::classify` (plus the one code the engine treats
//!   specially, `ExpiredIteratorException`), so the engine never sees an SDK type.
//! - Calls name the stream by StreamARN, which AWS recommends and which kinesis-local and
//!   moto accept; a name given to `connect` is resolved to the ARN once. ListShards sends
//!   the ARN only on its first page: with NextToken the API forbids naming the stream.
//! - Nothing a server returns can panic here: a missing partition key is "", a missing
//!   arrival time is now, a missing iterator from GetShardIterator is an `Other` error,
//!   and an empty NextShardIterator means the shard is closed, as a missing one does.
//! - Kinesis says nothing about records trimmed before they were read, so
//!   `lost_to_retention` is always `None`.

use async_trait::async_trait;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_smithy_types::DateTime;

use super::paging::all_pages;
use super::sdk_error::{connect_error, source_error};
use super::{IteratorPosition, RecordsPage, SourceError, StreamSource};
use crate::arn::StreamArn;
use crate::aws::{self, AwsFactory};
use crate::model::{RecordBody, SequenceNumber, ShardId, ShardInfo, StreamKind, StreamRecord};

/// GetRecords returns at most 10,000 records per call (and at least 1 must be asked for).
const MAX_RECORDS_PER_CALL: usize = crate::limits::KINESIS_GET_RECORDS_MAX_RECORDS;

/// One Kinesis data stream, read through the Kinesis API.
pub struct KinesisSource {
    client: aws_sdk_kinesis::Client,
    stream_arn: String,
    stream_name: String,
    /// ListShards MaxResults; `None`: the service's default (1,000 on AWS).
    list_shards_page_size: Option<i32>,
}

impl KinesisSource {
    /// `name_or_arn`: a stream ARN or name. DescribeStreamSummary resolves it (ARN in
    /// hand), at start. A missing stream is the error "Stream not found: <name_or_arn>".
    pub async fn connect(factory: &AwsFactory, name_or_arn: &str) -> anyhow::Result<KinesisSource> {
        let config = factory.config_for(name_or_arn).await;
        let client = aws::kinesis(&config);
        let request = describe_stream_summary(&client, name_or_arn);
        let output = request.send().await.map_err(|error| {
            connect_error(
                &error,
                "DescribeStreamSummary of Kinesis stream",
                name_or_arn,
            )
        })?;
        let summary = output.stream_description_summary().ok_or_else(|| {
            anyhow::anyhow!(
                "DescribeStreamSummary of Kinesis stream {name_or_arn} returned no StreamDescriptionSummary"
            )
        })?;
        let stream_arn = summary.stream_arn().to_string();
        if stream_arn.is_empty() {
            anyhow::bail!(
                "DescribeStreamSummary of Kinesis stream {name_or_arn} returned no StreamARN"
            );
        }
        let stream_name = match summary.stream_name() {
            "" => name_from_arn(&stream_arn).to_string(),
            name => name.to_string(),
        };
        Ok(KinesisSource {
            client,
            stream_arn,
            stream_name,
            list_shards_page_size: None,
        })
    }

    /// Asks ListShards for at most `max_results` shards per page (AWS allows 1..=10,000).
    /// Only worth setting to exercise pagination; the default is the service's.
    pub fn with_list_shards_page_size(mut self, max_results: i32) -> Self {
        self.list_shards_page_size = Some(max_results);
        self
    }

    /// The SDK client this source reads with (SDK retries off).
    pub fn client(&self) -> &aws_sdk_kinesis::Client {
        &self.client
    }

    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → `NAME` (the whole string otherwise).
fn name_from_arn(arn: &str) -> &str {
    match StreamArn::parse(arn) {
        Ok(StreamArn::Kinesis { name, .. }) => name,
        _ => arn,
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn shard_info(shard: &aws_sdk_kinesis::types::Shard) -> ShardInfo {
    let parent_shard_ids = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
        .into_iter()
        .flatten()
        .filter(|id| !id.is_empty())
        .map(|id| ShardId(id.to_string()))
        .collect();
    ShardInfo {
        shard_id: ShardId(shard.shard_id().to_string()),
        parent_shard_ids,
    }
}

/// A closed shard's child (GetRecords and SubscribeToShard ChildShards).
pub(crate) fn child_shard(child: aws_sdk_kinesis::types::ChildShard) -> ShardInfo {
    ShardInfo {
        shard_id: ShardId(child.shard_id),
        parent_shard_ids: child.parent_shards.into_iter().map(ShardId).collect(),
    }
}

/// A Kinesis record as the engine sees it (`now_ms` stands in for a missing arrival time).
pub(crate) fn record(record: aws_sdk_kinesis::types::Record, now_ms: i64) -> StreamRecord {
    let approximate_arrival_ms = record
        .approximate_arrival_timestamp
        .and_then(|t| t.to_millis().ok())
        .unwrap_or(now_ms);
    StreamRecord {
        sequence_number: SequenceNumber(record.sequence_number),
        approximate_arrival_ms,
        body: RecordBody::Kinesis {
            partition_key: record.partition_key.unwrap_or_default(),
            data: record.data.into_inner(),
        },
    }
}

/// A DescribeStreamSummary request for a stream named by ARN or by name.
pub fn describe_stream_summary(
    client: &aws_sdk_kinesis::Client,
    name_or_arn: &str,
) -> aws_sdk_kinesis::operation::describe_stream_summary::builders::DescribeStreamSummaryFluentBuilder
{
    let request = client.describe_stream_summary();
    if name_or_arn.starts_with("arn:") {
        request.stream_arn(name_or_arn)
    } else {
        request.stream_name(name_or_arn)
    }
}

/// An engine position as Kinesis says it, for GetShardIterator and SubscribeToShard
/// alike: the iterator type and its timestamp or sequence number.
pub(super) fn iterator_type(
    position: &IteratorPosition,
) -> (ShardIteratorType, Option<DateTime>, Option<String>) {
    match position {
        IteratorPosition::TrimHorizon => (ShardIteratorType::TrimHorizon, None, None),
        IteratorPosition::Latest => (ShardIteratorType::Latest, None, None),
        IteratorPosition::AtTimestamp(ms) => (
            ShardIteratorType::AtTimestamp,
            Some(DateTime::from_millis(*ms)),
            None,
        ),
        IteratorPosition::AtSequence(seq) => (
            ShardIteratorType::AtSequenceNumber,
            None,
            Some(seq.as_str().to_string()),
        ),
        IteratorPosition::AfterSequence(seq) => (
            ShardIteratorType::AfterSequenceNumber,
            None,
            Some(seq.as_str().to_string()),
        ),
    }
}

#[async_trait]
impl StreamSource for KinesisSource {
    fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    fn kind(&self) -> StreamKind {
        StreamKind::Kinesis
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        all_pages(|next_token| async move {
            let request = self
                .client
                .list_shards()
                .set_max_results(self.list_shards_page_size);
            // With NextToken the stream must not be named again (the token identifies it).
            let request = match next_token {
                Some(token) => request.next_token(token),
                None => request.stream_arn(&self.stream_arn),
            };
            let output = request.send().await.map_err(|e| source_error(&e))?;
            let shards = output.shards().iter().map(shard_info).collect();
            Ok((shards, output.next_token))
        })
        .await
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard.as_str());
        let (kind, timestamp, sequence_number) = iterator_type(position);
        let request = request
            .shard_iterator_type(kind)
            .set_timestamp(timestamp)
            .set_starting_sequence_number(sequence_number);
        let output = request.send().await.map_err(|e| source_error(&e))?;
        match output.shard_iterator {
            Some(iterator) if !iterator.is_empty() => Ok(iterator),
            _ => Err(SourceError::Other(format!(
                "GetShardIterator returned no ShardIterator for {shard} of {}",
                self.stream_arn
            ))),
        }
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        let limit = limit.clamp(1, MAX_RECORDS_PER_CALL);
        let output = self
            .client
            .get_records()
            .stream_arn(&self.stream_arn)
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        let now = now_ms();
        let child_shards = output
            .child_shards
            .unwrap_or_default()
            .into_iter()
            .map(child_shard)
            .collect();
        Ok(RecordsPage {
            records: output.records.into_iter().map(|r| record(r, now)).collect(),
            next_iterator: output.next_shard_iterator.filter(|it| !it.is_empty()),
            millis_behind_latest: output.millis_behind_latest,
            child_shards,
            lost_to_retention: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_name_is_the_part_of_the_arn_after_stream_slash() {
        assert_eq!(
            name_from_arn("arn:aws:kinesis:eu-west-1:111122223333:stream/orders"),
            "orders"
        );
        assert_eq!(name_from_arn("orders"), "orders");
    }

    #[test]
    fn shard_parents_are_the_parent_then_the_adjacent_parent_where_present() {
        let shard = aws_sdk_kinesis::types::Shard::builder()
            .shard_id("shardId-000000000004")
            .parent_shard_id("shardId-000000000001")
            .adjacent_parent_shard_id("shardId-000000000002")
            .build()
            .unwrap();
        assert_eq!(
            shard_info(&shard).parent_shard_ids,
            vec![
                ShardId("shardId-000000000001".into()),
                ShardId("shardId-000000000002".into())
            ]
        );
        let root = aws_sdk_kinesis::types::Shard::builder()
            .shard_id("shardId-000000000000")
            .build()
            .unwrap();
        assert!(shard_info(&root).parent_shard_ids.is_empty());
    }

    #[test]
    fn a_record_without_arrival_time_or_partition_key_gets_now_and_an_empty_key() {
        let r = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("1")
            .data(aws_smithy_types::Blob::new(b"x".to_vec()))
            .build()
            .unwrap();
        let got = record(r, 42);
        assert_eq!(got.approximate_arrival_ms, 42);
        assert_eq!(
            got.body,
            RecordBody::Kinesis {
                partition_key: String::new(),
                data: b"x".to_vec()
            }
        );
        let r = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("2")
            .approximate_arrival_timestamp(DateTime::from_millis(1_545_084_650_987))
            .data(aws_smithy_types::Blob::new(Vec::new()))
            .partition_key("user-17")
            .build()
            .unwrap();
        assert_eq!(record(r, 42).approximate_arrival_ms, 1_545_084_650_987);
    }
}
