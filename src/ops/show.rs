//! How `inspect` and `redrive` (without a function) print a record: one line of text, or one
//! JSON object per line with `--json`. Pure: records in, text out.
//!
//! Kinesis data is shown as JSON when it parses as JSON, else as text when it is UTF-8,
//! else as base64; the JSON form says which in `dataEncoding` (`json`, `utf-8`, `base64`).
//! A DynamoDB change is shown as its eventName, Keys and images (DynamoDB JSON).

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::model::{RecordBody, ShardId, StreamRecord};

/// Approximate arrival time, RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || format!("{ms}ms"),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Kinesis data as (encoding, value): parsed JSON, UTF-8 text or base64.
fn decode(data: &[u8]) -> (&'static str, Value) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        return ("json", value);
    }
    match std::str::from_utf8(data) {
        Ok(text) => ("utf-8", Value::from(text)),
        Err(_) => (
            "base64",
            Value::from(base64::engine::general_purpose::STANDARD.encode(data)),
        ),
    }
}

/// The record as one JSON object (one line of `--json` output).
pub fn to_json(shard: &ShardId, record: &StreamRecord) -> Value {
    let mut out = Map::new();
    out.insert("shardId".into(), Value::from(shard.as_str()));
    out.insert(
        "sequenceNumber".into(),
        Value::from(record.sequence_number.as_str()),
    );
    out.insert(
        "approximateArrival".into(),
        Value::from(rfc3339(record.approximate_arrival_ms)),
    );
    match &record.body {
        RecordBody::Kinesis {
            partition_key,
            data,
        } => {
            let (encoding, value) = decode(data);
            out.insert("partitionKey".into(), Value::from(partition_key.as_str()));
            out.insert("data".into(), value);
            out.insert("dataEncoding".into(), Value::from(encoding));
        }
        RecordBody::Dynamodb(change) => {
            out.insert("eventName".into(), Value::from(change.event_name.as_str()));
            out.insert("keys".into(), Value::Object(change.keys().to_map()));
            if let Some(image) = change.new_image() {
                out.insert("newImage".into(), Value::Object(image.to_map()));
            }
            if let Some(image) = change.old_image() {
                out.insert("oldImage".into(), Value::Object(image.to_map()));
            }
        }
    }
    Value::Object(out)
}

/// The record as one line of text (without the newline).
pub fn to_text(record: &StreamRecord) -> String {
    let head = format!(
        "{}  {}",
        record.sequence_number,
        rfc3339(record.approximate_arrival_ms)
    );
    match &record.body {
        RecordBody::Kinesis {
            partition_key,
            data,
        } => {
            let (encoding, value) = decode(data);
            let shown = match (encoding, &value) {
                ("json", value) => value.to_string(),
                (_, Value::String(text)) => json!(text).to_string(),
                (_, other) => other.to_string(),
            };
            format!("{head}  key={}  {encoding}={shown}", json!(partition_key))
        }
        RecordBody::Dynamodb(change) => {
            let mut line = format!(
                "{head}  {}  keys={}",
                change.event_name.as_str(),
                change.keys()
            );
            if let Some(image) = change.new_image() {
                line.push_str(&format!("  new={image}"));
            }
            if let Some(image) = change.old_image() {
                line.push_str(&format!("  old={image}"));
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AttributeMap, ChangeText, DynamodbChange, DynamodbEventName, SequenceNumber, StreamViewType,
    };

    fn kinesis(data: &[u8]) -> StreamRecord {
        StreamRecord {
            sequence_number: SequenceNumber("4960".into()),
            approximate_arrival_ms: 1_545_084_650_987,
            body: RecordBody::Kinesis {
                partition_key: "user-3".into(),
                data: data.to_vec(),
            },
        }
    }

    #[test]
    fn data_is_json_when_it_parses_else_text_else_base64() {
        let shard = ShardId("shardId-000000000000".into());
        let v = to_json(&shard, &kinesis(br#"{"n":1}"#));
        assert_eq!(v["data"], json!({"n": 1}));
        assert_eq!(v["dataEncoding"], "json");
        assert_eq!(v["approximateArrival"], "2018-12-17T22:10:50.987Z");
        assert_eq!(v["partitionKey"], "user-3");
        assert_eq!(v["sequenceNumber"], "4960");
        let v = to_json(&shard, &kinesis(b"hello \"you\""));
        assert_eq!(
            (v["dataEncoding"].as_str(), v["data"].as_str()),
            (Some("utf-8"), Some("hello \"you\""))
        );
        let v = to_json(&shard, &kinesis(&[0xff, 0x00, 0x10]));
        assert_eq!(
            (v["dataEncoding"].as_str(), v["data"].as_str()),
            (Some("base64"), Some("/wAQ"))
        );

        assert_eq!(
            to_text(&kinesis(br#"{"n":1}"#)),
            r#"4960  2018-12-17T22:10:50.987Z  key="user-3"  json={"n":1}"#
        );
        assert_eq!(
            to_text(&kinesis(b"a\nb")),
            r#"4960  2018-12-17T22:10:50.987Z  key="user-3"  utf-8="a\nb""#
        );
        assert_eq!(
            to_text(&kinesis(&[0xff])),
            r#"4960  2018-12-17T22:10:50.987Z  key="user-3"  base64="/w==""#
        );
    }

    #[test]
    fn a_dynamodb_change_shows_its_event_name_keys_and_images() {
        let keys: Map<String, Value> =
            serde_json::from_value(json!({"pk": {"S": "a"}})).expect("map");
        let image: Map<String, Value> =
            serde_json::from_value(json!({"n": {"N": "1"}})).expect("map");
        let record = StreamRecord {
            sequence_number: SequenceNumber("100".into()),
            approximate_arrival_ms: 0,
            body: RecordBody::Dynamodb(DynamodbChange {
                text: ChangeText::new(
                    "e",
                    &AttributeMap::from_map(&keys),
                    Some(&AttributeMap::from_map(&image)),
                    None,
                ),
                event_name: DynamodbEventName::Insert,
                size_bytes: 10,
                stream_view_type: StreamViewType::NewAndOldImages,
                ttl_deletion: false,
            }),
        };
        let v = to_json(&ShardId("s".into()), &record);
        assert_eq!(v["eventName"], "INSERT");
        assert_eq!(v["keys"], json!({"pk": {"S": "a"}}));
        assert_eq!(v["newImage"]["n"], json!({"N": "1"}));
        assert!(v.get("oldImage").is_none());
        assert_eq!(
            to_text(&record),
            r#"100  1970-01-01T00:00:00.000Z  INSERT  keys={"pk":{"S":"a"}}  new={"n":{"N":"1"}}"#
        );
    }
}
