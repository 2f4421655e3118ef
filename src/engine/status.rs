//! What every shard is doing, always known: the state the shard task publishes for logs,
//! reports and (later) the admin API.
//!
//! Each shard task owns one `ShardStatus` and updates it at each step (never per record);
//! readers take a snapshot. Counters follow the spec's conservation rule: every record read
//! ends as succeeded, filtered, discarded or lost to retention, or is still pending.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::model::{ShardId, ShardInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    WaitingOnParents,
    Polling,
    Invoking,
    Retrying,
    BackingOff,
    Ended,
    Disabled,
    Stopped,
}

/// The batch being processed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub first_sequence_number: String,
    pub last_sequence_number: String,
    pub records: usize,
    pub payload_bytes: usize,
    pub attempt: u32,
    pub bisect_depth: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardSnapshot {
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub state: ShardState,
    pub checkpoint: Option<String>,
    /// For a shard started at LATEST or AT_TIMESTAMP without a checkpoint: records that
    /// arrived before this time (epoch ms) were never the mapping's to read.
    pub started_at_time_ms: Option<i64>,
    /// The checkpoint this shard had when the mapping started (a restart): the records up
    /// to it were done by an earlier run.
    pub resumed_from: Option<String>,
    pub records_polled: u64,
    pub records_succeeded: u64,
    pub records_filtered: u64,
    pub records_discarded: u64,
    pub records_trimmed: u64,
    /// Times the stream said records were trimmed before they were read, whether or not
    /// it could say how many (DynamoDB Streams cannot).
    pub retention_gaps: u64,
    /// Invocations that reached the function (AWS's count: retries + 1 per batch).
    pub invocations: u64,
    /// Invocations that never reached the function (throttled, service error).
    pub invoke_throttles: u64,
    /// GetRecords calls throttled or failed by the stream.
    pub read_throttles: u64,
    pub destination_records: u64,
    pub dead_lettered_records: u64,
    pub caught_up: bool,
    pub in_flight: Option<InFlight>,
    pub last_error: Option<String>,
    /// Clock time when the checkpoint last moved.
    pub last_advance_ms: Option<i64>,
}

pub struct ShardStatus {
    snapshot: Mutex<ShardSnapshot>,
}

impl ShardStatus {
    pub fn new(info: &ShardInfo) -> Self {
        ShardStatus {
            snapshot: Mutex::new(ShardSnapshot {
                shard_id: info.shard_id.0.clone(),
                parent_shard_ids: info.parent_shard_ids.iter().map(|p| p.0.clone()).collect(),
                state: ShardState::WaitingOnParents,
                checkpoint: None,
                started_at_time_ms: None,
                resumed_from: None,
                records_polled: 0,
                records_succeeded: 0,
                records_filtered: 0,
                records_discarded: 0,
                records_trimmed: 0,
                retention_gaps: 0,
                invocations: 0,
                invoke_throttles: 0,
                read_throttles: 0,
                destination_records: 0,
                dead_lettered_records: 0,
                caught_up: false,
                in_flight: None,
                last_error: None,
                last_advance_ms: None,
            }),
        }
    }

    /// Changes the snapshot in place.
    pub fn update(&self) -> MutexGuard<'_, ShardSnapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> ShardSnapshot {
        self.update().clone()
    }
}

/// Every shard of one mapping, by id.
#[derive(Default)]
pub struct MappingStatus {
    shards: Mutex<BTreeMap<ShardId, Arc<ShardStatus>>>,
}

impl MappingStatus {
    /// The status of a shard, created on first sight.
    pub fn shard(&self, info: &ShardInfo) -> Arc<ShardStatus> {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards
            .entry(info.shard_id.clone())
            .or_insert_with(|| Arc::new(ShardStatus::new(info)))
            .clone()
    }

    pub fn snapshots(&self) -> Vec<ShardSnapshot> {
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards.values().map(|s| s.snapshot()).collect()
    }
}
