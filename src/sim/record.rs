//! A record as a shard stores it: which producer wrote it and its index `k` in that
//! producer's output, plus, for DynamoDB, which earlier record holds the item as it was
//! before.
//!
//! These two small `Copy` types are all the state a record costs (16 bytes, plus 16 for
//! a DynamoDB record's previous change); everything else about a record is a pure function
//! of its producer's config and `k`, rebuilt on read (`materialize.rs`). They sit at the
//! bottom of the simulated world because the item table writes them, the shards keep them
//! and the materializer reads them.

/// One record as stored: which producer wrote it, its index `k` in that producer's
/// output, and a kind-specific tag (the DynamoDB event name code; 0 for Kinesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    pub k: u64,
    pub producer: u32,
    pub meta: u32,
}

/// The change of the same DynamoDB item that preceded a record (its OldImage source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prev {
    pub k: u64,
    pub producer: u32,
}

impl Prev {
    pub const NONE: Prev = Prev {
        k: 0,
        producer: u32::MAX,
    };

    pub fn get(self) -> Option<Prev> {
        (self.producer != u32::MAX).then_some(self)
    }
}
