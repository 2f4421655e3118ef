//! The DynamoDB Streams record of an invocation event (spec 3.2), field for field as Lambda
//! sends it.
//!
//! The envelope is written by hand in Lambda's key order with the writers the Kinesis record
//! uses; the attribute maps (`Keys`, `NewImage`, `OldImage`) are held in the model as their
//! DynamoDB JSON text (`ChangeText`), so they are copied, not serialised. Images are
//! written only when the stream view type carries them
//! and the event has them (no `NewImage` on a REMOVE, no `OldImage` on an INSERT), so a
//! source that fills in more than the stream would deliver cannot leak it into the event.

use super::{write_i64, write_str, write_u64, EventContext};
use crate::model::{AttributeMapRef, DynamodbChange, DynamodbEventName, StreamRecord};

const TTL_USER_IDENTITY: &[u8] =
    b",\"userIdentity\":{\"type\":\"Service\",\"principalId\":\"dynamodb.amazonaws.com\"}";

/// Appends the DynamoDB shape of one element of "Records" for this item change.
pub(crate) fn encode(
    ctx: &EventContext,
    record: &StreamRecord,
    change: &DynamodbChange,
    out: &mut Vec<u8>,
) {
    // One reservation for the whole fragment: constants (~300 bytes with the TTL identity),
    // the strings (escaping may add more), the eventID and the maps.
    out.reserve(
        300 + change.event_id().len()
            + change.text.maps().len()
            + ctx.aws_region.len()
            + record.sequence_number.as_str().len()
            + ctx.event_source_arn.len(),
    );
    out.extend_from_slice(b"{\"eventID\":");
    write_str(out, change.event_id());
    out.extend_from_slice(b",\"eventName\":\"");
    out.extend_from_slice(change.event_name.as_str().as_bytes());
    out.extend_from_slice(
        b"\",\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\",\"awsRegion\":",
    );
    write_str(out, &ctx.aws_region);
    out.extend_from_slice(b",\"dynamodb\":{\"ApproximateCreationDateTime\":");
    write_i64(out, record.approximate_arrival_ms.div_euclid(1000));
    out.extend_from_slice(b",\"Keys\":");
    write_map(out, change.keys());
    let view = change.stream_view_type;
    if let Some(image) = change.new_image() {
        if view.has_new_image() && change.event_name != DynamodbEventName::Remove {
            out.extend_from_slice(b",\"NewImage\":");
            write_map(out, image);
        }
    }
    if let Some(image) = change.old_image() {
        if view.has_old_image() && change.event_name != DynamodbEventName::Insert {
            out.extend_from_slice(b",\"OldImage\":");
            write_map(out, image);
        }
    }
    out.extend_from_slice(b",\"SequenceNumber\":");
    write_str(out, record.sequence_number.as_str());
    out.extend_from_slice(b",\"SizeBytes\":");
    write_u64(out, change.size_bytes);
    out.extend_from_slice(b",\"StreamViewType\":\"");
    out.extend_from_slice(view.as_str().as_bytes());
    out.extend_from_slice(b"\"},\"eventSourceARN\":");
    write_str(out, &ctx.event_source_arn);
    if change.ttl_deletion {
        out.extend_from_slice(TTL_USER_IDENTITY);
    }
    out.push(b'}');
}

/// Appends an attribute map's JSON.
fn write_map(out: &mut Vec<u8>, map: AttributeMapRef<'_>) {
    out.extend_from_slice(map.as_str().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{assemble_event, encode_record};
    use crate::model::{
        AttributeMap, ChangeText, RecordBody, SequenceNumber, ShardId, StreamViewType,
    };
    use serde_json::{json, Value};

    fn ctx() -> EventContext {
        EventContext {
            shard_id: ShardId("shardId-00000001732550880000-a1b2c3d4".into()),
            event_source_arn:
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2025-11-25T16:35:32.123"
                    .into(),
            aws_region: "us-east-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
        }
    }

    fn map(v: Value) -> AttributeMap {
        match v {
            Value::Object(m) => AttributeMap::from_map(&m),
            other => panic!("not an object: {other}"),
        }
    }

    struct Change {
        event_id: &'static str,
        name: DynamodbEventName,
        view: StreamViewType,
        new_image: Option<Value>,
        old_image: Option<Value>,
        size: u64,
        ttl: bool,
    }

    fn record(seq: &str, arrival_ms: i64, c: Change) -> StreamRecord {
        StreamRecord {
            sequence_number: SequenceNumber(seq.into()),
            approximate_arrival_ms: arrival_ms,
            body: RecordBody::Dynamodb(DynamodbChange {
                text: ChangeText::new(
                    c.event_id,
                    &map(json!({"pk": {"S": "order#42"}})),
                    c.new_image.map(map).as_ref(),
                    c.old_image.map(map).as_ref(),
                ),
                event_name: c.name,
                size_bytes: c.size,
                stream_view_type: c.view,
                ttl_deletion: c.ttl,
            }),
        }
    }

    /// The one-record event, checked for valid JSON and for numbers being numbers.
    fn event(r: &StreamRecord) -> (String, Value) {
        let mut fragment = Vec::new();
        encode_record(&ctx(), r, &mut fragment);
        let mut out = Vec::new();
        assemble_event([fragment.as_slice()], &mut out);
        let v: Value = serde_json::from_slice(&out).expect("valid JSON");
        let d = &v["Records"][0]["dynamodb"];
        assert!(d["ApproximateCreationDateTime"].is_i64(), "{v}");
        assert!(d["SizeBytes"].is_u64(), "{v}");
        assert!(v["Records"][0].get("invokeIdentityArn").is_none());
        (String::from_utf8(out).expect("utf-8"), v)
    }

    #[test]
    fn an_insert_has_a_new_image_and_no_old_image() {
        let r = record(
            "4421584500000000017450439091",
            1_732_550_881_456,
            Change {
                event_id: "c81e728d9d4c2f636f067f89cc14862c",
                name: DynamodbEventName::Insert,
                view: StreamViewType::NewAndOldImages,
                new_image: Some(json!({"pk": {"S": "order#42"}, "total": {"N": "19.5"}})),
                old_image: None,
                size: 70,
                ttl: false,
            },
        );
        let (text, v) = event(&r);
        insta::assert_snapshot!("dynamodb_insert", text);
        let d = &v["Records"][0]["dynamodb"];
        assert_eq!(d["ApproximateCreationDateTime"], 1_732_550_881);
        assert!(d.get("OldImage").is_none());
        assert!(v["Records"][0].get("userIdentity").is_none());
    }

    #[test]
    fn a_modify_with_new_and_old_images_carries_both() {
        let r = record(
            "4421584600000000017450439092",
            1_732_550_945_002,
            Change {
                event_id: "eccbc87e4b5ce2fe28308fd9f2a7baf3",
                name: DynamodbEventName::Modify,
                view: StreamViewType::NewAndOldImages,
                new_image: Some(json!({
                    "pk": {"S": "order#42"}, "total": {"N": "21"},
                    "tags": {"SS": ["gift", "rush"]}, "paid": {"BOOL": true},
                    "lines": {"L": [{"M": {"sku": {"S": "A-1"}, "qty": {"N": "2"}}}]},
                    "blob": {"B": "AAEC"}, "note": {"NULL": true}
                })),
                old_image: Some(json!({"pk": {"S": "order#42"}, "total": {"N": "19.5"}})),
                size: 187,
                ttl: false,
            },
        );
        let (text, v) = event(&r);
        insta::assert_snapshot!("dynamodb_modify_new_and_old_images", text);
        let d = &v["Records"][0]["dynamodb"];
        assert_eq!(d["NewImage"]["total"]["N"], "21");
        assert_eq!(d["OldImage"]["total"]["N"], "19.5");
    }

    #[test]
    fn a_ttl_removal_carries_the_dynamodb_service_identity() {
        let r = record(
            "4421584700000000017450439093",
            1_732_554_000_999,
            Change {
                event_id: "a87ff679a2f3e71d9181a67b7542122c",
                name: DynamodbEventName::Remove,
                view: StreamViewType::NewAndOldImages,
                new_image: None,
                old_image: Some(json!({"pk": {"S": "order#42"}, "expires": {"N": "1732553999"}})),
                size: 64,
                ttl: true,
            },
        );
        let (text, v) = event(&r);
        insta::assert_snapshot!("dynamodb_ttl_remove", text);
        let rec = &v["Records"][0];
        assert_eq!(rec["eventName"], "REMOVE");
        assert_eq!(
            rec["userIdentity"],
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
        );
        assert!(rec["dynamodb"].get("NewImage").is_none());
    }

    #[test]
    fn a_keys_only_change_has_no_images_even_when_the_source_supplied_them() {
        let r = record(
            "4421584800000000017450439094",
            1_732_555_000_000,
            Change {
                event_id: "e4da3b7fbbce2345d7772b0674a318d5",
                name: DynamodbEventName::Modify,
                view: StreamViewType::KeysOnly,
                new_image: Some(json!({"pk": {"S": "order#42"}, "total": {"N": "22"}})),
                old_image: Some(json!({"pk": {"S": "order#42"}, "total": {"N": "21"}})),
                size: 30,
                ttl: false,
            },
        );
        let (text, v) = event(&r);
        insta::assert_snapshot!("dynamodb_keys_only", text);
        let d = &v["Records"][0]["dynamodb"];
        assert!(d.get("NewImage").is_none());
        assert!(d.get("OldImage").is_none());
        assert_eq!(d["StreamViewType"], "KEYS_ONLY");
    }

    #[test]
    fn an_insert_never_shows_an_old_image_and_a_remove_never_shows_a_new_image() {
        let insert = record(
            "1",
            1000,
            Change {
                event_id: "x",
                name: DynamodbEventName::Insert,
                view: StreamViewType::NewAndOldImages,
                new_image: Some(json!({"pk": {"S": "a"}})),
                old_image: Some(json!({})),
                size: 1,
                ttl: false,
            },
        );
        let (_, v) = event(&insert);
        assert!(v["Records"][0]["dynamodb"].get("OldImage").is_none());
        assert!(v["Records"][0]["dynamodb"].get("NewImage").is_some());

        let remove = record(
            "2",
            1000,
            Change {
                event_id: "y",
                name: DynamodbEventName::Remove,
                view: StreamViewType::NewImage,
                new_image: Some(json!({"pk": {"S": "a"}})),
                old_image: Some(json!({"pk": {"S": "a"}})),
                size: 1,
                ttl: false,
            },
        );
        let (_, v) = event(&remove);
        assert!(v["Records"][0]["dynamodb"].get("OldImage").is_none());
        assert!(v["Records"][0]["dynamodb"].get("NewImage").is_none());
    }

    #[test]
    fn creation_time_is_whole_seconds_rounded_down_and_strings_are_escaped() {
        let mut r = record(
            "9",
            -1,
            Change {
                event_id: "quote\"back\\slash\n",
                name: DynamodbEventName::Insert,
                view: StreamViewType::NewImage,
                new_image: Some(json!({"pk": {"S": "ü\u{1}"}})),
                old_image: None,
                size: 5,
                ttl: false,
            },
        );
        let (_, v) = event(&r);
        assert_eq!(
            v["Records"][0]["dynamodb"]["ApproximateCreationDateTime"],
            -1
        );
        assert_eq!(v["Records"][0]["eventID"], "quote\"back\\slash\n");
        assert_eq!(v["Records"][0]["dynamodb"]["NewImage"]["pk"]["S"], "ü\u{1}");
        r.approximate_arrival_ms = 1_573_690_399_999;
        let (_, v) = event(&r);
        assert_eq!(
            v["Records"][0]["dynamodb"]["ApproximateCreationDateTime"],
            1_573_690_399
        );
    }
}
