//! `StreamSource` over a real DynamoDB stream (AWS, moto): DescribeStream once at start and
//! for shard discovery, GetShardIterator and GetRecords, mapped into the crate's model types
//! (a `DynamodbChange` per record, attribute maps held as their DynamoDB JSON text, written
//! once by `dynamodb_attributes`).
//!
//! What it owns: the stream ARN, the stream's view type (from DescribeStream, the fallback
//! for a record that does not say) and one SDK client built by `aws::dynamodb_streams` from
//! `AwsFactory::config_for(arn)`, so the client's region is the ARN's region and the
//! endpoint is whatever the configuration points at.
//!
//! Why it is shaped so:
//! - **Iterators carry their shard.** A TrimmedDataAccessException from GetRecords (the
//!   iterator points at records the 24 h retention has already removed) is answered by
//!   re-opening the shard at TRIM_HORIZON, and only the shard id is needed for that, but a
//!   service iterator does not name its shard. So every iterator this source hands out is
//!   `<shard id>|<service iterator>` (split back at the first `|`: shard ids have none,
//!   service iterators do). An iterator that must first report records lost to retention
//!   is `trimmed:<shard id>|<service iterator>`: GetShardIterator AT/AFTER a sequence number
//!   that is already trimmed fails with TrimmedDataAccessException too, and there the
//!   source re-opens at TRIM_HORIZON and hands out such an iterator, so the engine's
//!   re-open from its checkpoint does not fail forever and the loss is reported once, by
//!   the first page read with it. DynamoDB does not say how many records were lost or which,
//!   so `LostRecords` is all `None`; the engine logs it loudly and counts it.
//! - SDK retries are off (see `aws`): a throttle or a 5xx comes back here at once and
//!   becomes `SourceError::Throttled`, and the engine backs off without counting it as a
//!   retry attempt. Errors are classified only by `aws::classify`, plus the two codes the
//!   engine treats specially (ExpiredIteratorException, TrimmedDataAccessException).
//! - Nothing a server returns can panic here. A record that cannot become a
//!   `DynamodbChange` (no `dynamodb` part, no sequence number, no keys, an unknown event
//!   name or view type, an attribute type this SDK does not know) is never skipped silently:
//!   the page fails with `SourceError::Other` naming the record. A missing creation time is
//!   "now" (as in the Kinesis source), a missing eventID is "" and a missing SizeBytes 0.
//! - GetRecords asks for `min(limit, 1000)` records, the most DynamoDB Streams returns;
//!   the service has no MillisBehindLatest, and shard lineage comes from DescribeStream
//!   (ParentShardId), not from GetRecords.

use std::collections::HashMap;

pub use super::dynamodb_attributes::attribute_json;
use super::dynamodb_attributes::attribute_map;
use super::paging::all_pages;
use super::sdk_error::{connect_error, source_error};
use super::{IteratorPosition, LostRecords, RecordsPage, SourceError, StreamSource};
use crate::aws::{self, AwsFactory};
use crate::model::{
    ChangeText, DynamodbChange, DynamodbEventName, RecordBody, SequenceNumber, ShardId, ShardInfo,
    StreamKind, StreamRecord, StreamViewType,
};
use async_trait::async_trait;
use aws_sdk_dynamodbstreams::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, ShardIteratorType, StreamViewType as SdkStreamViewType,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// GetRecords returns at most 1,000 records per call (and at least 1 must be asked for).
const MAX_RECORDS_PER_CALL: usize = crate::limits::DYNAMODB_GET_RECORDS_MAX_RECORDS;

/// Marks an iterator whose first page must report records lost to retention.
const TRIMMED_MARK: &str = "trimmed:";

/// One DynamoDB stream, read through the DynamoDB Streams API.
pub struct DynamodbStreamsSource {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// The stream's view type as DescribeStream gave it at start.
    stream_view_type: Option<StreamViewType>,
}

impl DynamodbStreamsSource {
    /// DescribeStream at start; a missing stream is the error "Stream not found: <arn>".
    pub async fn connect(
        factory: &AwsFactory,
        stream_arn: &str,
    ) -> anyhow::Result<DynamodbStreamsSource> {
        let config = factory.config_for(stream_arn).await;
        let client = aws::dynamodb_streams(&config);
        let output = client
            .describe_stream()
            .stream_arn(stream_arn)
            .limit(1)
            .send()
            .await
            .map_err(|error| {
                connect_error(&error, "DescribeStream of DynamoDB stream", stream_arn)
            })?;
        let description = output.stream_description().ok_or_else(|| {
            anyhow::anyhow!(
                "DescribeStream of DynamoDB stream {stream_arn} returned no StreamDescription"
            )
        })?;
        Ok(DynamodbStreamsSource {
            client,
            stream_arn: stream_arn.to_string(),
            stream_view_type: description.stream_view_type().and_then(view_type),
        })
    }

    /// The SDK client this source reads with (SDK retries off).
    pub fn client(&self) -> &aws_sdk_dynamodbstreams::Client {
        &self.client
    }

    /// The stream's view type as DescribeStream reported it at start.
    pub fn stream_view_type(&self) -> Option<StreamViewType> {
        self.stream_view_type
    }

    /// GetShardIterator, the service iterator only.
    async fn service_iterator(
        &self,
        shard: &ShardId,
        kind: ShardIteratorType,
        sequence_number: Option<&SequenceNumber>,
    ) -> Result<String, SdkError<GetShardIteratorError, HttpResponse>> {
        let output = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard.as_str())
            .shard_iterator_type(kind)
            .set_sequence_number(sequence_number.map(|s| s.as_str().to_string()))
            .send()
            .await?;
        Ok(output.shard_iterator.unwrap_or_default())
    }

    /// A TRIM_HORIZON iterator of `shard`, in this source's form, marked as reporting lost
    /// records if `trimmed`.
    async fn trim_horizon(&self, shard: &ShardId, trimmed: bool) -> Result<String, SourceError> {
        let iterator = self
            .service_iterator(shard, ShardIteratorType::TrimHorizon, None)
            .await
            .map_err(|e| source_error(&e))?;
        self.wrap(shard, iterator, trimmed)
    }

    fn wrap(
        &self,
        shard: &ShardId,
        iterator: String,
        trimmed: bool,
    ) -> Result<String, SourceError> {
        if iterator.is_empty() {
            return Err(SourceError::Other(format!(
                "GetShardIterator returned no ShardIterator for {shard} of {}",
                self.stream_arn
            )));
        }
        Ok(join_iterator(shard, &iterator, trimmed))
    }
}

type GetShardIteratorError =
    aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;

/// `<shard id>|<service iterator>`, with the `trimmed:` mark in front if `trimmed`.
fn join_iterator(shard: &ShardId, service_iterator: &str, trimmed: bool) -> String {
    let mark = if trimmed { TRIMMED_MARK } else { "" };
    format!("{mark}{shard}|{service_iterator}")
}

/// What an iterator of this source says: (shard, service iterator, must report trimmed).
fn split_iterator(iterator: &str) -> Result<(ShardId, &str, bool), SourceError> {
    let invalid = || {
        SourceError::Other(format!(
            "invalid shard iterator {iterator:?}: a DynamoDB Streams source iterator is <shard id>|<service iterator>"
        ))
    };
    let (head, service) = iterator.split_once('|').ok_or_else(invalid)?;
    let (shard, trimmed) = match head.strip_prefix(TRIMMED_MARK) {
        Some(shard) => (shard, true),
        None => (head, false),
    };
    if shard.is_empty() || service.is_empty() {
        return Err(invalid());
    }
    Ok((ShardId(shard.to_string()), service, trimmed))
}

fn is_trimmed<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    aws::error_code(error) == Some("TrimmedDataAccessException")
}

fn view_type(view: &SdkStreamViewType) -> Option<StreamViewType> {
    match view {
        SdkStreamViewType::KeysOnly => Some(StreamViewType::KeysOnly),
        SdkStreamViewType::NewImage => Some(StreamViewType::NewImage),
        SdkStreamViewType::OldImage => Some(StreamViewType::OldImage),
        SdkStreamViewType::NewAndOldImages => Some(StreamViewType::NewAndOldImages),
        _ => None,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One GetRecords record as the model's change, or why it cannot be one.
fn change_record(
    record: &Record,
    stream_view_type: Option<StreamViewType>,
    now_ms: i64,
) -> Result<StreamRecord, String> {
    let event_id = record.event_id().unwrap_or_default();
    let bad = |why: &str| format!("DynamoDB stream record (eventID {event_id:?}) {why}");
    let event_name = match record.event_name() {
        Some(OperationType::Insert) => DynamodbEventName::Insert,
        Some(OperationType::Modify) => DynamodbEventName::Modify,
        Some(OperationType::Remove) => DynamodbEventName::Remove,
        Some(other) => return Err(bad(&format!("has unknown eventName {:?}", other.as_str()))),
        None => return Err(bad("has no eventName")),
    };
    let data = record
        .dynamodb()
        .ok_or_else(|| bad("has no dynamodb part"))?;
    let sequence_number = match data.sequence_number() {
        Some(seq) if !seq.is_empty() => SequenceNumber(seq.to_string()),
        _ => return Err(bad("has no SequenceNumber")),
    };
    let bad = |why: &str| {
        format!("DynamoDB stream record {sequence_number} (eventID {event_id:?}) {why}")
    };
    let image = |name: &str, map: Option<&HashMap<String, AttributeValue>>| {
        map.map(|m| {
            attribute_map(m)
                .ok_or_else(|| bad(&format!("has an attribute of unknown type in {name}")))
        })
        .transpose()
    };
    let keys = image("Keys", data.keys())?.ok_or_else(|| bad("has no Keys"))?;
    let new_image = image("NewImage", data.new_image())?;
    let old_image = image("OldImage", data.old_image())?;
    let stream_view_type = match data.stream_view_type() {
        Some(view) => view_type(view)
            .ok_or_else(|| bad(&format!("has unknown StreamViewType {:?}", view.as_str())))?,
        None => stream_view_type.ok_or_else(|| bad("has no StreamViewType"))?,
    };
    let approximate_arrival_ms = data
        .approximate_creation_date_time()
        .and_then(|t| t.to_millis().ok())
        .unwrap_or(now_ms);
    let ttl_deletion = record.user_identity().is_some_and(|identity| {
        identity.r#type() == Some("Service")
            && identity.principal_id() == Some("dynamodb.amazonaws.com")
    });
    Ok(StreamRecord {
        sequence_number,
        approximate_arrival_ms,
        body: RecordBody::Dynamodb(DynamodbChange {
            text: ChangeText::new(event_id, &keys, new_image.as_ref(), old_image.as_ref()),
            event_name,
            size_bytes: data
                .size_bytes()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            stream_view_type,
            ttl_deletion,
        }),
    })
}

fn shard_info(shard: &aws_sdk_dynamodbstreams::types::Shard) -> Option<ShardInfo> {
    let shard_id = shard.shard_id().filter(|id| !id.is_empty())?;
    Some(ShardInfo {
        shard_id: ShardId(shard_id.to_string()),
        parent_shard_ids: shard
            .parent_shard_id()
            .filter(|id| !id.is_empty())
            .map(|id| ShardId(id.to_string()))
            .into_iter()
            .collect(),
    })
}

#[async_trait]
impl StreamSource for DynamodbStreamsSource {
    fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    fn kind(&self) -> StreamKind {
        StreamKind::Dynamodb
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let listed = all_pages(|start| async move {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| source_error(&e))?;
            let Some(description) = output.stream_description else {
                return Err(SourceError::Other(format!(
                    "DescribeStream of {} returned no StreamDescription",
                    self.stream_arn
                )));
            };
            let shards = description
                .shards()
                .iter()
                .map(|shard| {
                    shard_info(shard).ok_or_else(|| {
                        SourceError::Other(format!(
                            "DescribeStream of {} returned a shard without ShardId",
                            self.stream_arn
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((shards, description.last_evaluated_shard_id))
        })
        .await?;
        // A shard listed on two pages is one shard.
        let mut shards: Vec<ShardInfo> = Vec::new();
        for info in listed {
            if !shards.iter().any(|s| s.shard_id == info.shard_id) {
                shards.push(info);
            }
        }
        Ok(shards)
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let (kind, sequence_number) = match position {
            IteratorPosition::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
            IteratorPosition::Latest => (ShardIteratorType::Latest, None),
            IteratorPosition::AtSequence(seq) => (ShardIteratorType::AtSequenceNumber, Some(seq)),
            IteratorPosition::AfterSequence(seq) => {
                (ShardIteratorType::AfterSequenceNumber, Some(seq))
            }
            IteratorPosition::AtTimestamp(_) => {
                return Err(SourceError::Other(
                    "DynamoDB Streams has no AT_TIMESTAMP iterator".into(),
                ))
            }
        };
        match self.service_iterator(shard, kind, sequence_number).await {
            Ok(iterator) => self.wrap(shard, iterator, false),
            // The position is already trimmed: read from the oldest record still held, and
            // report the loss with the first page.
            Err(error) if sequence_number.is_some() && is_trimmed(&error) => {
                self.trim_horizon(shard, true).await
            }
            Err(error) => Err(source_error(&error)),
        }
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        let (shard, service_iterator, trimmed) = split_iterator(iterator)?;
        let limit = limit.clamp(1, MAX_RECORDS_PER_CALL);
        let lost = || LostRecords {
            count: None,
            first: None,
            last: None,
        };
        let output = match self
            .client
            .get_records()
            .shard_iterator(service_iterator)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if is_trimmed(&error) => {
                return Ok(RecordsPage {
                    next_iterator: Some(self.trim_horizon(&shard, false).await?),
                    lost_to_retention: Some(lost()),
                    ..RecordsPage::default()
                });
            }
            Err(error) => return Err(source_error(&error)),
        };
        let now = now_ms();
        let records = output
            .records()
            .iter()
            .map(|r| change_record(r, self.stream_view_type, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| SourceError::Other(format!("{why} (shard {shard})")))?;
        Ok(RecordsPage {
            records,
            next_iterator: output
                .next_shard_iterator()
                .filter(|it| !it.is_empty())
                .map(|it| join_iterator(&shard, it, false)),
            millis_behind_latest: None,
            child_shards: Vec::new(),
            lost_to_retention: trimmed.then(lost),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{Identity, StreamRecord as SdkStreamRecord};
    use aws_smithy_types::DateTime;

    #[test]
    fn iterators_carry_their_shard_and_split_back_at_the_first_bar() {
        let shard = ShardId("shardId-00000001414576573621-f55eea83".into());
        let service =
            "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2025-01-01T00:00:00.000|1|AAAA";
        let joined = join_iterator(&shard, service, false);
        assert_eq!(
            split_iterator(&joined).unwrap(),
            (shard.clone(), service, false)
        );
        let marked = join_iterator(&shard, service, true);
        assert!(marked.starts_with("trimmed:shardId-"));
        assert_eq!(split_iterator(&marked).unwrap(), (shard, service, true));
        for bad in ["", "no-bar", "|x", "shardId-1|", "trimmed:|x"] {
            assert!(
                matches!(split_iterator(bad), Err(SourceError::Other(_))),
                "{bad}"
            );
        }
    }

    fn record(seq: Option<&str>, keys: bool) -> Record {
        let mut data = SdkStreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_732_550_881))
            .size_bytes(70)
            .set_sequence_number(seq.map(str::to_string));
        if keys {
            data = data.keys("pk", AttributeValue::S("a".into()));
        }
        Record::builder()
            .event_id("e1")
            .event_name(OperationType::Remove)
            .dynamodb(data.build())
            .user_identity(
                Identity::builder()
                    .r#type("Service")
                    .principal_id("dynamodb.amazonaws.com")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_record_becomes_a_change_and_a_ttl_removal_is_marked_as_such() {
        let r = change_record(&record(Some("7"), true), Some(StreamViewType::KeysOnly), 5).unwrap();
        assert_eq!(r.sequence_number, SequenceNumber("7".into()));
        assert_eq!(r.approximate_arrival_ms, 1_732_550_881_000);
        let RecordBody::Dynamodb(change) = r.body else {
            panic!("not a DynamoDB record")
        };
        assert_eq!(change.event_name, DynamodbEventName::Remove);
        assert_eq!(change.keys().as_str(), r#"{"pk":{"S":"a"}}"#);
        assert_eq!(change.stream_view_type, StreamViewType::KeysOnly);
        assert_eq!((change.new_image(), change.old_image()), (None, None));
        assert_eq!(change.size_bytes, 70);
        assert!(change.ttl_deletion);
    }

    #[test]
    fn a_record_without_sequence_number_keys_or_view_type_is_an_error_naming_it() {
        let no_seq = change_record(&record(None, true), Some(StreamViewType::KeysOnly), 0);
        assert_eq!(
            no_seq.unwrap_err(),
            "DynamoDB stream record (eventID \"e1\") has no SequenceNumber"
        );
        let no_keys = change_record(&record(Some("7"), false), Some(StreamViewType::KeysOnly), 0);
        assert_eq!(
            no_keys.unwrap_err(),
            "DynamoDB stream record 7 (eventID \"e1\") has no Keys"
        );
        let no_view = change_record(&record(Some("7"), true), None, 0);
        assert_eq!(
            no_view.unwrap_err(),
            "DynamoDB stream record 7 (eventID \"e1\") has no StreamViewType"
        );
    }

    #[test]
    fn an_unknown_event_name_or_view_type_is_an_error_naming_the_record() {
        let data = |view: &str| {
            SdkStreamRecord::builder()
                .sequence_number("9")
                .keys("pk", AttributeValue::S("a".into()))
                .stream_view_type(SdkStreamViewType::from(view))
                .build()
        };
        let r = Record::builder()
            .event_id("e9")
            .event_name(OperationType::from("TRUNCATE"))
            .dynamodb(data("NEW_IMAGE"))
            .build();
        assert_eq!(
            change_record(&r, None, 0).unwrap_err(),
            "DynamoDB stream record (eventID \"e9\") has unknown eventName \"TRUNCATE\""
        );
        let r = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(data("EVERYTHING"))
            .build();
        assert_eq!(
            change_record(&r, Some(StreamViewType::NewImage), 0).unwrap_err(),
            "DynamoDB stream record 9 (eventID \"\") has unknown StreamViewType \"EVERYTHING\""
        );
        let r = Record::builder().event_name(OperationType::Insert).build();
        assert_eq!(
            change_record(&r, None, 0).unwrap_err(),
            "DynamoDB stream record (eventID \"\") has no dynamodb part"
        );
    }
}
