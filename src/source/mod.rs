//! The stream source seam: what the engine needs from Kinesis, DynamoDB Streams or the
//! simulated world, and nothing more.
//!
//! Iterators are opaque strings, as in the AWS APIs. Errors are classified here, at the
//! boundary, into the cases the engine treats differently (throttles back off without
//! counting, an expired iterator is re-opened from the checkpoint, ...), so the engine never
//! looks at a service's error codes.

mod dynamodb_attributes;
pub mod dynamodb_streams;
pub mod kinesis;
pub mod kinesis_efo;
pub(crate) mod paging;
pub(crate) mod sdk_error;
pub mod simulated;
mod simulated_iterator;

use async_trait::async_trait;

use crate::model::{SequenceNumber, ShardId, ShardInfo, StreamKind, StreamRecord};

/// Where an iterator starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IteratorPosition {
    TrimHorizon,
    Latest,
    /// Epoch milliseconds: the first record that arrived at or after it.
    AtTimestamp(i64),
    AtSequence(SequenceNumber),
    AfterSequence(SequenceNumber),
}

/// Records lost to retention: they were trimmed before they could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRecords {
    /// How many, where the source can tell.
    pub count: Option<u64>,
    pub first: Option<SequenceNumber>,
    pub last: Option<SequenceNumber>,
}

/// One GetRecords answer.
#[derive(Clone, Debug, Default)]
pub struct RecordsPage {
    pub records: Vec<StreamRecord>,
    /// `None`: the shard is closed and this page holds its last records.
    pub next_iterator: Option<String>,
    /// How far behind the tip the iterator is (Kinesis MillisBehindLatest).
    pub millis_behind_latest: Option<i64>,
    /// Children of a closed shard, where the service says (Kinesis ChildShards).
    pub child_shards: Vec<ShardInfo>,
    /// Records the iterator skipped because the stream had trimmed them.
    pub lost_to_retention: Option<LostRecords>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// ProvisionedThroughputExceeded, LimitExceeded, a 5xx with an error code, a timeout:
    /// back off, do not count.
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("iterator expired")]
    ExpiredIterator,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait StreamSource: Send + Sync {
    fn stream_arn(&self) -> &str;
    fn kind(&self) -> StreamKind;
    /// Every shard the stream still holds (open and closed), with lineage.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError>;
    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError>;
    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError>;
}
