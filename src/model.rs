//! Domain types without I/O, shared by every layer: shard ids, sequence numbers, stream
//! records and shard lineage.
//!
//! Sequence numbers stay decimal strings (Kinesis uses up to 128 digits, which no
//! fixed-width integer holds) and compare as unsigned decimals: length first once leading
//! zeros are ignored, then lexicographically. SDK and simulator types are mapped into these
//! at their boundary, so the engine and the policy never see anything else.

use std::cmp::Ordering;
use std::fmt;

mod attribute_map;
mod change_text;

pub use attribute_map::{AttributeMap, AttributeMapRef};
pub use change_text::ChangeText;
pub(crate) use change_text::ChangeTextWriter;

/// A stream's shard id, e.g. `shardId-000000000001`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub String);

impl ShardId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record's sequence number, ordered as an unsigned decimal of any length.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber(pub String);

impl SequenceNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Orders two sequence numbers held as text, as `SequenceNumber` orders, without
    /// copying them into `SequenceNumber`s.
    pub fn compare_text(a: &str, b: &str) -> Ordering {
        // The digits without leading zeros ("" for zero) are what ordering compares.
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        SequenceNumber::compare_text(&self.0, &other.0)
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which service a stream belongs to; decides the event shape and the polling pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Kinesis,
    Dynamodb,
}

/// A shard as discovery sees it: its id and its parents (a split has one parent, a merge
/// two: ParentShardId and AdjacentParentShardId).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: ShardId,
    pub parent_shard_ids: Vec<ShardId>,
}

/// One record read from a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRecord {
    pub sequence_number: SequenceNumber,
    /// When the stream received the record, epoch milliseconds.
    pub approximate_arrival_ms: i64,
    pub body: RecordBody,
}

impl StreamRecord {
    /// The key whose records must stay in order (partition key, or the item key).
    pub fn ordering_key(&self) -> String {
        match &self.body {
            RecordBody::Kinesis { partition_key, .. } => partition_key.clone(),
            RecordBody::Dynamodb(change) => change.keys().as_str().to_string(),
        }
    }

    /// A hash of `ordering_key` (without building it for Kinesis): records with equal keys
    /// have equal hashes; unequal keys that collide are merely kept in order together.
    pub fn ordering_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        match &self.body {
            RecordBody::Kinesis { partition_key, .. } => partition_key.hash(&mut hasher),
            // The same hash as the key's String: `String` hashes as its `str`.
            RecordBody::Dynamodb(change) => change.keys().as_str().hash(&mut hasher),
        }
        hasher.finish()
    }

    /// The bytes a "data contains" rule of the simulated function looks at: the Kinesis
    /// data, or the DynamoDB images as JSON text.
    pub fn data_for_matching(&self) -> &[u8] {
        match &self.body {
            RecordBody::Kinesis { data, .. } => data,
            RecordBody::Dynamodb(change) => change.text.maps().as_bytes(),
        }
    }
}

/// The service-specific part of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordBody {
    Kinesis {
        partition_key: String,
        data: Vec<u8>,
    },
    /// Not boxed: a change is a buffer and a few values (56 bytes, so a record is 88 bytes
    /// instead of 80), and the allocation the box cost per change was dearer than moving
    /// the 8 bytes more.
    Dynamodb(DynamodbChange),
}

/// One item change of a DynamoDB stream: its eventID and attribute maps in one buffer
/// (`ChangeText`, maps as DynamoDB JSON text: `{"pk":{"S":"..."},"n":{"N":"..."}}`), and
/// the rest as values.
#[derive(Clone, Debug, PartialEq)]
pub struct DynamodbChange {
    pub text: ChangeText,
    pub event_name: DynamodbEventName,
    pub size_bytes: u64,
    pub stream_view_type: StreamViewType,
    /// Set for deletions made by TTL: `{"type":"Service","principalId":"dynamodb.amazonaws.com"}`.
    pub ttl_deletion: bool,
}

impl DynamodbChange {
    /// The record's eventID (32 hex digits in AWS).
    pub fn event_id(&self) -> &str {
        self.text.event_id()
    }

    pub fn keys(&self) -> AttributeMapRef<'_> {
        self.text.keys()
    }

    pub fn new_image(&self) -> Option<AttributeMapRef<'_>> {
        self.text.new_image()
    }

    pub fn old_image(&self) -> Option<AttributeMapRef<'_>> {
        self.text.old_image()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamodbEventName {
    Insert,
    Modify,
    Remove,
}

impl DynamodbEventName {
    pub fn as_str(self) -> &'static str {
        match self {
            DynamodbEventName::Insert => "INSERT",
            DynamodbEventName::Modify => "MODIFY",
            DynamodbEventName::Remove => "REMOVE",
        }
    }
}

/// What a DynamoDB stream carries for each change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamViewType {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

impl StreamViewType {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::KeysOnly => "KEYS_ONLY",
            StreamViewType::NewImage => "NEW_IMAGE",
            StreamViewType::OldImage => "OLD_IMAGE",
            StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }

    pub fn has_new_image(self) -> bool {
        matches!(
            self,
            StreamViewType::NewImage | StreamViewType::NewAndOldImages
        )
    }

    pub fn has_old_image(self) -> bool {
        matches!(
            self,
            StreamViewType::OldImage | StreamViewType::NewAndOldImages
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber(s.to_string())
    }

    #[test]
    fn sequence_numbers_compare_as_unsigned_decimals_of_any_length() {
        assert!(seq("9") < seq("10"));
        assert!(seq("2") < seq("10"));
        assert!(seq("0009") < seq("10"));
        assert_eq!(seq("007").cmp(&seq("7")), Ordering::Equal);
        let long_a = format!("4959{}", "1".repeat(120));
        let long_b = format!("4959{}", "2".repeat(120));
        assert!(seq(&long_a) < seq(&long_b));
        assert!(seq("99999999999999999999999999999999999999999") < seq(&long_a));
    }
}
