//! The JSON a filter sees for a record, navigated in place instead of built.
//!
//! A pattern walks a few keys, so the record is not turned into a `serde_json::Value`:
//! [`Node`] borrows the record's own strings and answers `get(key)` for the virtual
//! objects (the Kinesis record, the DynamoDB record and its `dynamodb` part). Only what is
//! held as JSON text costs anything: Kinesis `data` (the bytes the event base64-encodes)
//! is parsed once per record, only when a filter addresses `data`, and only into the
//! parts the filters walk (see `pruned`); a DynamoDB `Keys`, `NewImage` or `OldImage`
//! (held as its DynamoDB JSON, `AttributeMap`) is parsed once per record, only when a
//! filter addresses it.
//!
//! What each kind shows (field names as in the event, spec 3.1 / 3.2):
//! - Kinesis: the `kinesis` object of the record, flattened to the top as Lambda does:
//!   `data` (the record data parsed as JSON), `partitionKey`, `sequenceNumber`,
//!   `approximateArrivalTimestamp`, `kinesisSchemaVersion`.
//! - DynamoDB: the record: `eventID`, `eventName`, `eventVersion`, `eventSource`,
//!   `userIdentity` (TTL deletions), and `dynamodb` with `ApproximateCreationDateTime`,
//!   `Keys`, `NewImage` / `OldImage` (as the event carries them), `SequenceNumber`,
//!   `SizeBytes`, `StreamViewType`. `awsRegion` and `eventSourceARN` are the mapping's,
//!   the same for every record, and are not shown.

use std::cell::OnceCell;

use serde_json::{Number, Value};

use super::pruned::Wanted;
use crate::model::{AttributeMapRef, DynamodbChange, DynamodbEventName, RecordBody, StreamRecord};

/// One record as filters see it; holds what of it is parsed lazily.
pub(crate) struct RecordView<'a> {
    record: &'a StreamRecord,
    /// What the filters walk below `data`.
    wanted: &'a Wanted,
    /// Kinesis data parsed as JSON (its wanted parts): `None` inside when it is not JSON.
    data: OnceCell<Option<Value>>,
    /// DynamoDB `Keys`, `NewImage`, `OldImage` parsed (in that order).
    maps: [OnceCell<Value>; 3],
}

/// A position in the record's JSON.
#[derive(Clone)]
pub(crate) enum Node<'a> {
    Json(&'a Value),
    Str(&'a str),
    Num(Number),
    KinesisRecord(&'a RecordView<'a>),
    DynamodbRecord(&'a RecordView<'a>, &'a DynamodbChange),
    DynamodbPart(&'a RecordView<'a>, &'a DynamodbChange),
    TtlUserIdentity,
    /// Kinesis `data` that is not JSON: present, but no pattern on it matches.
    NotJson,
}

/// A scalar of the record's JSON, what leaf matchers compare against.
pub(crate) enum Leaf<'a> {
    Str(&'a str),
    Num(Number),
    Bool(bool),
    Null,
}

impl<'a> RecordView<'a> {
    pub(crate) fn new(record: &'a StreamRecord, wanted: &'a Wanted) -> RecordView<'a> {
        RecordView {
            record,
            wanted,
            data: OnceCell::new(),
            maps: Default::default(),
        }
    }

    /// The top of the record.
    pub(crate) fn root(&'a self) -> Node<'a> {
        match &self.record.body {
            RecordBody::Kinesis { .. } => Node::KinesisRecord(self),
            RecordBody::Dynamodb(change) => Node::DynamodbRecord(self, change),
        }
    }

    /// The attribute map in slot `slot` of `maps`, parsed on first use.
    fn attribute_map(&self, slot: usize, map: AttributeMapRef<'_>) -> Option<&Value> {
        let cell = self.maps.get(slot)?;
        Some(cell.get_or_init(|| Value::Object(map.to_map())))
    }

    fn kinesis_data(&self) -> Option<&Value> {
        let RecordBody::Kinesis { data, .. } = &self.record.body else {
            return None;
        };
        self.data.get_or_init(|| self.wanted.parse(data)).as_ref()
    }
}

impl<'a> Node<'a> {
    /// The value at `key` of this node when it is an object; `None` when absent or when
    /// this node is not an object.
    pub(crate) fn get(&self, key: &str) -> Option<Node<'a>> {
        match *self {
            Node::Json(Value::Object(map)) => map.get(key).map(Node::Json),
            Node::Json(_) | Node::Str(_) | Node::Num(_) | Node::NotJson => None,
            Node::KinesisRecord(view) => kinesis_get(view, key),
            Node::DynamodbRecord(view, change) => match key {
                "eventID" => Some(Node::Str(change.event_id())),
                "eventName" => Some(Node::Str(change.event_name.as_str())),
                "eventVersion" => Some(Node::Str("1.1")),
                "eventSource" => Some(Node::Str("aws:dynamodb")),
                "dynamodb" => Some(Node::DynamodbPart(view, change)),
                "userIdentity" if change.ttl_deletion => Some(Node::TtlUserIdentity),
                _ => None,
            },
            Node::DynamodbPart(view, change) => dynamodb_part_get(view, change, key),
            Node::TtlUserIdentity => match key {
                "type" => Some(Node::Str("Service")),
                "principalId" => Some(Node::Str("dynamodb.amazonaws.com")),
                _ => None,
            },
        }
    }

    /// The elements when this node is a JSON array.
    pub(crate) fn as_array(&self) -> Option<&'a [Value]> {
        match self {
            Node::Json(Value::Array(items)) => Some(items),
            _ => None,
        }
    }

    /// Calls `f` on every scalar at this position (the elements of arrays, nested arrays
    /// flattened; objects hold none) until it returns true; returns whether it did.
    pub(crate) fn any_leaf(&self, f: &mut impl FnMut(Leaf<'_>) -> bool) -> bool {
        match self {
            Node::Json(value) => any_json_leaf(value, f),
            Node::Str(s) => f(Leaf::Str(s)),
            Node::Num(n) => f(Leaf::Num(n.clone())),
            Node::KinesisRecord(_)
            | Node::DynamodbRecord(..)
            | Node::DynamodbPart(..)
            | Node::TtlUserIdentity
            | Node::NotJson => false,
        }
    }
}

fn any_json_leaf(value: &Value, f: &mut impl FnMut(Leaf<'_>) -> bool) -> bool {
    match value {
        Value::String(s) => f(Leaf::Str(s)),
        Value::Number(n) => f(Leaf::Num(n.clone())),
        Value::Bool(b) => f(Leaf::Bool(*b)),
        Value::Null => f(Leaf::Null),
        Value::Array(items) => items.iter().any(|item| any_json_leaf(item, f)),
        Value::Object(_) => false,
    }
}

fn kinesis_get<'a>(view: &'a RecordView<'a>, key: &str) -> Option<Node<'a>> {
    let RecordBody::Kinesis { partition_key, .. } = &view.record.body else {
        return None;
    };
    match key {
        "data" => Some(view.kinesis_data().map_or(Node::NotJson, Node::Json)),
        "partitionKey" => Some(Node::Str(partition_key)),
        "sequenceNumber" => Some(Node::Str(view.record.sequence_number.as_str())),
        "kinesisSchemaVersion" => Some(Node::Str("1.0")),
        // The event's number: epoch seconds with the milliseconds as the fraction.
        "approximateArrivalTimestamp" => {
            Number::from_f64(view.record.approximate_arrival_ms as f64 / 1000.0).map(Node::Num)
        }
        _ => None,
    }
}

/// The `dynamodb` object, with the images exactly when the event carries them
/// (see `event::dynamodb::encode`).
fn dynamodb_part_get<'a>(
    record_view: &'a RecordView<'a>,
    change: &'a DynamodbChange,
    key: &str,
) -> Option<Node<'a>> {
    let record = record_view.record;
    let view = change.stream_view_type;
    let map = |slot, map| record_view.attribute_map(slot, map).map(Node::Json);
    match key {
        "ApproximateCreationDateTime" => Some(Node::Num(Number::from(
            record.approximate_arrival_ms.div_euclid(1000),
        ))),
        "Keys" => map(0, change.keys()),
        "NewImage" if view.has_new_image() && change.event_name != DynamodbEventName::Remove => {
            change.new_image().and_then(|image| map(1, image))
        }
        "OldImage" if view.has_old_image() && change.event_name != DynamodbEventName::Insert => {
            change.old_image().and_then(|image| map(2, image))
        }
        "SequenceNumber" => Some(Node::Str(record.sequence_number.as_str())),
        "SizeBytes" => Some(Node::Num(Number::from(change.size_bytes))),
        "StreamViewType" => Some(Node::Str(view.as_str())),
        _ => None,
    }
}
