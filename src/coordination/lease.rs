//! One lease row: which worker holds a shard of a mapping, and where the shard stands.
//!
//! The fields follow KCL's lease (`leaseKey`, `leaseOwner`, `leaseCounter`, `checkpoint`,
//! `ownerSwitchesSinceCheckpoint`, `parentShardId`), plus what several mappings sharing
//! one table need (`mapping`, `shardId`) and what operators need (`paused`, and the
//! owner's admin URL so any worker can forward an action to the holder).

use crate::checkpoint::Checkpoint;
use crate::model::ShardId;

/// A lease as read from, or written to, the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub mapping: String,
    pub shard_id: ShardId,
    /// The worker holding it; `None`: free (never taken, or handed back).
    pub owner: Option<String>,
    /// Bumped by every take, renew and hand-back: a lease whose counter has not moved for
    /// a lease duration is expired. Checkpoint writes are conditional on it.
    pub counter: u64,
    /// `None`: nothing processed yet (start from the mapping's starting position).
    pub checkpoint: Option<Checkpoint>,
    /// Owner changes since the checkpoint last moved.
    pub owner_switches_since_checkpoint: u64,
    pub parent_shard_ids: Vec<ShardId>,
    /// Paused by an operator: follows the shard from worker to worker.
    pub paused: bool,
    /// The holder's admin API, where actions on this shard are forwarded.
    pub owner_admin_url: Option<String>,
}

impl Lease {
    /// A free lease for a shard just discovered.
    pub fn new(mapping: &str, shard_id: ShardId, parent_shard_ids: Vec<ShardId>) -> Self {
        Lease {
            mapping: mapping.to_string(),
            shard_id,
            owner: None,
            counter: 0,
            checkpoint: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids,
            paused: false,
            owner_admin_url: None,
        }
    }

    /// The table key: `<mapping>:<shard id>` (shard ids carry no `:`), so several
    /// mappings, of one stream or of many, share one table.
    pub fn key(&self) -> String {
        lease_key(&self.mapping, &self.shard_id)
    }

    /// The shard is finished: nobody takes or renews this lease again.
    pub fn is_ended(&self) -> bool {
        matches!(self.checkpoint, Some(Checkpoint::ShardEnd))
    }
}

/// The table key of a (mapping, shard) lease.
pub fn lease_key(mapping: &str, shard_id: &ShardId) -> String {
    format!("{mapping}:{}", shard_id.0)
}
