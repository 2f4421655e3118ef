//! The on-failure destination record (spec 3.3): the metadata of a discarded batch, as
//! Lambda sends it to SQS / SNS (and S3).
//!
//! The JSON is produced from a private `derive(Serialize)` struct tree, whose field order is
//! the order of the keys in the output, so the document matches Lambda's key order whatever
//! serde_json features are enabled. Quirks that are observed behaviour and must survive:
//! `responseContext` is missing entirely for `RecordAgeExceeded`, `functionError` is JSON
//! `null` (not absent) after a partial batch response, and DynamoDB batch info timestamps
//! have second precision while Kinesis ones have milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::function::FunctionResponse;
use crate::model::{SequenceNumber, ShardId, StreamKind, StreamRecord};

/// Why the batch was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
    /// An operator discarded the batch with `skip` (esm-sim only: AWS has no such action).
    SkippedByOperator,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
            Condition::SkippedByOperator => "SkippedByOperator",
        }
    }
}

/// What the last invocation answered (`responseContext`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    /// `Some("Unhandled")` after a function error, `None` (JSON null) after a partial
    /// batch response.
    pub function_error: Option<String>,
}

impl From<&FunctionResponse> for ResponseContext {
    /// The response context of a function's answer. A timeout without an explicit
    /// FunctionError is reported as `"Unhandled"`, as Lambda reports timeouts.
    fn from(response: &FunctionResponse) -> Self {
        let function_error = match (&response.function_error, response.timed_out) {
            (Some(error), _) => Some(error.clone()),
            (None, true) => Some("Unhandled".to_string()),
            (None, false) => None,
        };
        ResponseContext {
            status_code: response.status_code,
            executed_version: response.executed_version.clone(),
            function_error,
        }
    }
}

/// The discarded batch (`KinesisBatchInfo` / `DDBStreamBatchInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    pub kind: StreamKind,
    pub shard_id: ShardId,
    pub start_sequence_number: SequenceNumber,
    pub end_sequence_number: SequenceNumber,
    /// Epoch milliseconds.
    pub first_arrival_ms: i64,
    /// Epoch milliseconds.
    pub last_arrival_ms: i64,
    pub batch_size: usize,
    pub stream_arn: String,
}

impl BatchInfo {
    /// The batch info of these records (in stream order), `None` when there are none.
    pub fn from_records(
        kind: StreamKind,
        shard_id: &ShardId,
        stream_arn: &str,
        records: &[StreamRecord],
    ) -> Option<BatchInfo> {
        let (first, last) = (records.first()?, records.last()?);
        Some(BatchInfo {
            kind,
            shard_id: shard_id.clone(),
            start_sequence_number: first.sequence_number.clone(),
            end_sequence_number: last.sequence_number.clone(),
            first_arrival_ms: first.approximate_arrival_ms,
            last_arrival_ms: last.approximate_arrival_ms,
            batch_size: records.len(),
            stream_arn: stream_arn.to_string(),
        })
    }
}

/// One on-failure destination record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRecord {
    pub request_id: String,
    pub function_arn: String,
    pub condition: Condition,
    /// Written as given; the caller ensures it is at least 1.
    pub approximate_invoke_count: u32,
    /// `None` for `RecordAgeExceeded`: the whole `responseContext` key is then absent.
    pub response: Option<ResponseContext>,
    /// When the record was made, epoch milliseconds.
    pub timestamp_ms: i64,
    pub batch: BatchInfo,
}

impl FailureRecord {
    /// The JSON document, on one line, without a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let batch = &self.batch;
        let precision = match batch.kind {
            StreamKind::Kinesis => SecondsFormat::Millis,
            StreamKind::Dynamodb => SecondsFormat::Secs,
        };
        let info = BatchInfoJson {
            shard_id: batch.shard_id.as_str(),
            start_sequence_number: batch.start_sequence_number.as_str(),
            end_sequence_number: batch.end_sequence_number.as_str(),
            approximate_arrival_of_first_record: iso8601(batch.first_arrival_ms, precision),
            approximate_arrival_of_last_record: iso8601(batch.last_arrival_ms, precision),
            batch_size: batch.batch_size,
            stream_arn: &batch.stream_arn,
        };
        let (kinesis_batch_info, ddb_stream_batch_info) = match batch.kind {
            StreamKind::Kinesis => (Some(info), None),
            StreamKind::Dynamodb => (None, Some(info)),
        };
        let document = Document {
            request_context: RequestContextJson {
                request_id: &self.request_id,
                function_arn: &self.function_arn,
                condition: self.condition.as_str(),
                approximate_invoke_count: self.approximate_invoke_count,
            },
            response_context: self.response.as_ref().map(|r| ResponseContextJson {
                status_code: r.status_code,
                executed_version: &r.executed_version,
                function_error: r.function_error.as_deref(),
            }),
            version: "1.0",
            timestamp: iso8601(self.timestamp_ms, SecondsFormat::Millis),
            kinesis_batch_info,
            ddb_stream_batch_info,
        };
        // Strings and integers into a Vec: serde_json has no way to fail here.
        serde_json::to_vec(&document).unwrap_or_default()
    }
}

/// Reads the batch info (`KinesisBatchInfo` or `DDBStreamBatchInfo`) back from a failure
/// record document, which is all `esm-sim redrive` needs of it: the rest (request and
/// response context) says why the batch failed, not which records it held. Errors name
/// the missing or malformed field.
pub fn parse_batch_info(document: &[u8]) -> Result<BatchInfo, String> {
    let parsed: ParsedDocument = serde_json::from_slice(document)
        .map_err(|e| format!("not a failure record (spec 3.3): {e}"))?;
    let (kind, key, info) = match (parsed.kinesis_batch_info, parsed.ddb_stream_batch_info) {
        (Some(info), None) => (StreamKind::Kinesis, "KinesisBatchInfo", info),
        (None, Some(info)) => (StreamKind::Dynamodb, "DDBStreamBatchInfo", info),
        (Some(_), Some(_)) => {
            return Err("both KinesisBatchInfo and DDBStreamBatchInfo are present".to_string())
        }
        (None, None) => {
            return Err(
                "not a failure record (spec 3.3): no KinesisBatchInfo or DDBStreamBatchInfo"
                    .to_string(),
            )
        }
    };
    let arrival = |field: &str, value: &str| {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("{key}.{field} = {value:?}: not an ISO-8601 time: {e}"))
    };
    let sequence = |field: &str, value: String| {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(SequenceNumber(value))
        } else {
            Err(format!("{key}.{field} = {value:?}: not a sequence number"))
        }
    };
    let not_empty = |field: &str, value: String| {
        if value.is_empty() {
            Err(format!("{key}.{field} is empty"))
        } else {
            Ok(value)
        }
    };
    Ok(BatchInfo {
        kind,
        shard_id: ShardId(not_empty("shardId", info.shard_id)?),
        first_arrival_ms: arrival(
            "approximateArrivalOfFirstRecord",
            &info.approximate_arrival_of_first_record,
        )?,
        last_arrival_ms: arrival(
            "approximateArrivalOfLastRecord",
            &info.approximate_arrival_of_last_record,
        )?,
        start_sequence_number: sequence("startSequenceNumber", info.start_sequence_number)?,
        end_sequence_number: sequence("endSequenceNumber", info.end_sequence_number)?,
        batch_size: info
            .batch_size
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("{key}.batchSize = {}: not a count", info.batch_size))?,
        stream_arn: not_empty("streamArn", info.stream_arn)?,
    })
}

#[derive(Deserialize)]
struct ParsedDocument {
    #[serde(rename = "KinesisBatchInfo")]
    kinesis_batch_info: Option<ParsedBatchInfo>,
    #[serde(rename = "DDBStreamBatchInfo")]
    ddb_stream_batch_info: Option<ParsedBatchInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParsedBatchInfo {
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
    approximate_arrival_of_first_record: String,
    approximate_arrival_of_last_record: String,
    /// Read as any JSON value so that a bad one is reported by name.
    batch_size: serde_json::Value,
    stream_arn: String,
}

/// ISO-8601 UTC with a `Z`, at the given precision (sub-second digits are truncated, not
/// rounded). Instants outside chrono's range (hundreds of millennia away) are clamped.
pub(crate) fn iso8601(ms: i64, precision: SecondsFormat) -> String {
    let instant = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    instant.to_rfc3339_opts(precision, true)
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "requestContext")]
    request_context: RequestContextJson<'a>,
    #[serde(rename = "responseContext", skip_serializing_if = "Option::is_none")]
    response_context: Option<ResponseContextJson<'a>>,
    version: &'static str,
    timestamp: String,
    #[serde(rename = "KinesisBatchInfo", skip_serializing_if = "Option::is_none")]
    kinesis_batch_info: Option<BatchInfoJson<'a>>,
    #[serde(rename = "DDBStreamBatchInfo", skip_serializing_if = "Option::is_none")]
    ddb_stream_batch_info: Option<BatchInfoJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContextJson<'a> {
    request_id: &'a str,
    function_arn: &'a str,
    condition: &'static str,
    approximate_invoke_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseContextJson<'a> {
    status_code: u16,
    executed_version: &'a str,
    /// Serialized as `null` when absent, never skipped.
    function_error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchInfoJson<'a> {
    shard_id: &'a str,
    start_sequence_number: &'a str,
    end_sequence_number: &'a str,
    approximate_arrival_of_first_record: String,
    approximate_arrival_of_last_record: String,
    batch_size: usize,
    stream_arn: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RecordBody;
    use serde_json::Value;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber(s.into())
    }

    fn kinesis_batch(batch_size: usize) -> BatchInfo {
        BatchInfo {
            kind: StreamKind::Kinesis,
            shard_id: ShardId("shardId-000000000001".into()),
            start_sequence_number: seq("49601189658422359378836298521827638475320189012309704722"),
            end_sequence_number: seq("49601189658422359378836298522902373528957594348623495186"),
            first_arrival_ms: 1_573_691_884_835,
            last_arrival_ms: 1_573_691_885_580,
            batch_size,
            stream_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/mystream".into(),
        }
    }

    fn record(
        condition: Condition,
        count: u32,
        response: Option<ResponseContext>,
        batch: BatchInfo,
    ) -> FailureRecord {
        FailureRecord {
            request_id: "c9b8fa9f-5a7f-4b2e-af9c-0c604cde93a5".into(),
            function_arn: "arn:aws:lambda:us-east-2:123456789012:function:myfunction".into(),
            condition,
            approximate_invoke_count: count,
            response,
            timestamp_ms: 1_573_691_886_021,
            batch,
        }
    }

    /// The document as text, checked to be one line of valid JSON whose numbers are numbers.
    /// The response context of a 200 answer of `$LATEST`.
    fn answered(function_error: Option<&str>) -> ResponseContext {
        ResponseContext {
            status_code: 200,
            executed_version: "$LATEST".into(),
            function_error: function_error.map(str::to_string),
        }
    }

    fn json_of(r: &FailureRecord) -> (String, Value) {
        let bytes = r.to_json();
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_slice(&bytes).expect("valid JSON");
        assert!(v["requestContext"]["approximateInvokeCount"].is_u64());
        let info = v
            .get("KinesisBatchInfo")
            .or_else(|| v.get("DDBStreamBatchInfo"))
            .expect("a batch info");
        assert!(info["batchSize"].is_u64());
        if let Some(response) = v.get("responseContext") {
            assert!(response["statusCode"].is_u64());
        }
        (text, v)
    }

    #[test]
    fn retry_attempts_exhausted_after_a_function_error_reports_unhandled() {
        let r = record(
            Condition::RetryAttemptsExhausted,
            2,
            Some(answered(Some("Unhandled"))),
            kinesis_batch(500),
        );
        let (text, v) = json_of(&r);
        insta::assert_snapshot!("failure_retry_exhausted_unhandled_kinesis", text);
        assert_eq!(v["responseContext"]["functionError"], "Unhandled");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 2);
        assert_eq!(v["KinesisBatchInfo"]["batchSize"], 500);
        assert_eq!(v["timestamp"], "2019-11-14T00:38:06.021Z");
        assert_eq!(
            v["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"],
            "2019-11-14T00:38:04.835Z"
        );
        assert_eq!(
            v["KinesisBatchInfo"]["approximateArrivalOfLastRecord"],
            "2019-11-14T00:38:05.580Z"
        );
        assert!(v.get("DDBStreamBatchInfo").is_none());
    }

    #[test]
    fn retry_attempts_exhausted_after_a_partial_failure_has_a_null_function_error() {
        let mut batch = kinesis_batch(1);
        batch.start_sequence_number = batch.end_sequence_number.clone();
        batch.first_arrival_ms = batch.last_arrival_ms;
        let r = record(
            Condition::RetryAttemptsExhausted,
            4,
            Some(answered(None)),
            batch,
        );
        let (text, v) = json_of(&r);
        insta::assert_snapshot!("failure_retry_exhausted_partial_failure", text);
        let response = v["responseContext"].as_object().expect("responseContext");
        assert!(response.contains_key("functionError"));
        assert!(response["functionError"].is_null());
    }

    #[test]
    fn record_age_exceeded_has_no_response_context_key_at_all() {
        let r = record(Condition::RecordAgeExceeded, 1, None, kinesis_batch(1));
        let (text, v) = json_of(&r);
        insta::assert_snapshot!("failure_record_age_exceeded", text);
        assert!(v.get("responseContext").is_none());
        assert!(!text.contains("responseContext"));
        assert_eq!(v["requestContext"]["condition"], "RecordAgeExceeded");
    }

    #[test]
    fn a_dynamodb_failure_record_has_second_precision_batch_timestamps() {
        let batch = BatchInfo {
            kind: StreamKind::Dynamodb,
            shard_id: ShardId("shardId-00000001573689847184-864758bb".into()),
            start_sequence_number: seq("800000000003126276362"),
            end_sequence_number: seq("800000000003126276362"),
            first_arrival_ms: 1_573_690_399_123,
            last_arrival_ms: 1_573_690_399_987,
            batch_size: 1,
            stream_arn: "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
                .into(),
        };
        let mut r = record(
            Condition::RetryAttemptsExhausted,
            3,
            Some(answered(Some("Unhandled"))),
            batch,
        );
        r.timestamp_ms = 1_573_690_400_001;
        let (text, v) = json_of(&r);
        insta::assert_snapshot!("failure_dynamodb_second_precision", text);
        let info = &v["DDBStreamBatchInfo"];
        assert_eq!(
            info["approximateArrivalOfFirstRecord"],
            "2019-11-14T00:13:19Z"
        );
        assert_eq!(
            info["approximateArrivalOfLastRecord"],
            "2019-11-14T00:13:19Z"
        );
        assert_eq!(v["timestamp"], "2019-11-14T00:13:20.001Z");
        assert!(v.get("KinesisBatchInfo").is_none());
    }

    #[test]
    fn the_keys_appear_in_lambdas_order() {
        let r = record(
            Condition::RetryAttemptsExhausted,
            2,
            Some(answered(Some("Unhandled"))),
            kinesis_batch(500),
        );
        let text = String::from_utf8(r.to_json()).expect("utf-8");
        let order = [
            "requestContext",
            "requestId",
            "functionArn",
            "condition",
            "approximateInvokeCount",
            "responseContext",
            "statusCode",
            "executedVersion",
            "functionError",
            "version",
            "timestamp",
            "KinesisBatchInfo",
            "shardId",
            "startSequenceNumber",
            "endSequenceNumber",
            "approximateArrivalOfFirstRecord",
            "approximateArrivalOfLastRecord",
            "batchSize",
            "streamArn",
        ];
        let positions: Vec<usize> = order
            .iter()
            .filter_map(|k| text.find(&format!("\"{k}\":")))
            .collect();
        assert_eq!(positions.len(), order.len(), "{text}");
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn timestamps_before_1970_and_out_of_range_do_not_panic() {
        let mut r = record(Condition::RecordAgeExceeded, 1, None, kinesis_batch(1));
        r.timestamp_ms = -1;
        r.batch.first_arrival_ms = i64::MIN;
        r.batch.last_arrival_ms = i64::MAX;
        let (_, v) = json_of(&r);
        assert_eq!(v["timestamp"], "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_response_context_of_a_timeout_reports_an_unhandled_error() {
        let response = FunctionResponse {
            status_code: 200,
            function_error: None,
            timed_out: true,
            executed_version: "$LATEST".into(),
            body: Vec::new(),
        };
        let ctx = ResponseContext::from(&response);
        assert_eq!(ctx.function_error.as_deref(), Some("Unhandled"));
        let ok = FunctionResponse {
            timed_out: false,
            ..response
        };
        assert_eq!(ResponseContext::from(&ok).function_error, None);
    }

    #[test]
    fn the_batch_info_reads_back_from_what_to_json_writes() {
        let mut batch = kinesis_batch(500);
        batch.first_arrival_ms = 1_573_691_884_835;
        let r = record(Condition::RecordAgeExceeded, 1, None, batch.clone());
        assert_eq!(parse_batch_info(&r.to_json()), Ok(batch));
        let ddb = BatchInfo {
            kind: StreamKind::Dynamodb,
            shard_id: ShardId("shardId-00000001573689847184-864758bb".into()),
            start_sequence_number: seq("800000000003126276362"),
            end_sequence_number: seq("800000000003126276370"),
            // Second precision in the document: only whole seconds come back.
            first_arrival_ms: 1_573_690_399_000,
            last_arrival_ms: 1_573_690_400_000,
            batch_size: 3,
            stream_arn:
                "arn:aws:dynamodb:us-east-2:123456789012:table/t/stream/2019-11-14T00:04:06.388"
                    .into(),
        };
        let r = record(Condition::RetryAttemptsExhausted, 2, None, ddb.clone());
        assert_eq!(parse_batch_info(&r.to_json()), Ok(ddb));
    }

    #[test]
    fn a_document_that_is_not_a_failure_record_is_refused_naming_the_field() {
        let good = record(Condition::RecordAgeExceeded, 1, None, kinesis_batch(2)).to_json();
        let mut v: Value = serde_json::from_slice(&good).expect("json");
        let cases: [(&str, Value, &str); 4] = [
            (
                "startSequenceNumber",
                Value::from("12a"),
                "KinesisBatchInfo.startSequenceNumber",
            ),
            (
                "approximateArrivalOfLastRecord",
                Value::from("yesterday"),
                "approximateArrivalOfLastRecord",
            ),
            (
                "streamArn",
                Value::from(""),
                "KinesisBatchInfo.streamArn is empty",
            ),
            (
                "batchSize",
                Value::from(-1),
                "KinesisBatchInfo.batchSize = -1",
            ),
        ];
        for (field, value, expected) in cases {
            let mut broken = v.clone();
            broken["KinesisBatchInfo"][field] = value;
            let error =
                parse_batch_info(&serde_json::to_vec(&broken).expect("json")).expect_err(field);
            assert!(error.contains(expected), "{field}: {error}");
        }
        v.as_object_mut()
            .expect("object")
            .remove("KinesisBatchInfo");
        let error = parse_batch_info(&serde_json::to_vec(&v).expect("json")).expect_err("none");
        assert!(
            error.contains("no KinesisBatchInfo or DDBStreamBatchInfo"),
            "{error}"
        );
        assert!(parse_batch_info(b"not json").is_err());
        assert!(parse_batch_info(b"").is_err());
    }

    #[test]
    fn batch_info_from_records_takes_the_first_and_last_record() {
        let records: Vec<StreamRecord> = [("5", 1000), ("7", 2000), ("12", 3000)]
            .iter()
            .map(|(s, ms)| StreamRecord {
                sequence_number: seq(s),
                approximate_arrival_ms: *ms,
                body: RecordBody::Kinesis {
                    partition_key: "k".into(),
                    data: Vec::new(),
                },
            })
            .collect();
        let shard = ShardId("shardId-000000000000".into());
        let info = BatchInfo::from_records(StreamKind::Kinesis, &shard, "arn", &records)
            .expect("non-empty");
        assert_eq!(info.start_sequence_number, seq("5"));
        assert_eq!(info.end_sequence_number, seq("12"));
        assert_eq!((info.first_arrival_ms, info.last_arrival_ms), (1000, 3000));
        assert_eq!(info.batch_size, 3);
        assert!(BatchInfo::from_records(StreamKind::Kinesis, &shard, "arn", &[]).is_none());
    }
}
