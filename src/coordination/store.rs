//! The checkpoint store of a worker that shares its mappings through a lease table.
//!
//! Checkpoints and pauses live in the lease rows, so they follow a shard from worker to
//! worker: a save goes to the keeper, which refuses it unless this worker still holds the
//! lease (the fence) and writes it conditionally; a pause is written into the row. The
//! named values that belong to this process alone (a simulated stream's creation time)
//! stay in the local store.
//!
//! A shard task saves through `TenureStore`, which fences its saves on the holding of the
//! lease it was started in (`keeper::Tenure`), not just on this worker holding the lease.
//!
//! The seam is synchronous (see `checkpoint`); the one call here that waits on the table,
//! an operator's pause, blocks its thread in place on `run`'s multi-threaded runtime, and
//! on a single-threaded one (simulate, with the in-memory table, which never waits) must
//! complete at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;

use super::keeper::{LeaseKeeper, Tenure};
use crate::checkpoint::{Checkpoint, CheckpointStore, StoreError};
use crate::model::ShardId;

pub struct LeaseCheckpointStore {
    keeper: Arc<LeaseKeeper>,
    local: Arc<dyn CheckpointStore>,
}

impl LeaseCheckpointStore {
    pub fn new(keeper: Arc<LeaseKeeper>, local: Arc<dyn CheckpointStore>) -> Self {
        LeaseCheckpointStore { keeper, local }
    }
}

impl CheckpointStore for LeaseCheckpointStore {
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError> {
        Ok(self
            .keeper
            .leases(mapping)
            .into_iter()
            .filter_map(|lease| Some((lease.shard_id, lease.checkpoint?)))
            .collect())
    }

    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        self.keeper
            .queue_checkpoint(mapping, shard, checkpoint, None)
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.local.get_meta(key)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.local.set_meta(key, value)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.local.flush()
    }

    /// The local values only: the lease rows are the workers' (mappings are not created
    /// or deleted at runtime with a lease table).
    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError> {
        self.local.forget_mapping(mapping)
    }

    fn is_paused(&self, mapping: &str, shard: &ShardId) -> Result<bool, StoreError> {
        Ok(self
            .keeper
            .lease(mapping, shard)
            .is_some_and(|lease| lease.paused))
    }

    fn set_paused(&self, mapping: &str, shard: &ShardId, paused: bool) -> Result<(), StoreError> {
        block_on(self.keeper.set_paused(mapping, shard, paused))?
            .map_err(|error| StoreError(format!("lease of shard {shard}: {error}")))
    }
}

/// A shard task's store: its saves are fenced on the tenure it was started in; everything
/// else is its mapping's store.
pub struct TenureStore {
    pub inner: Arc<dyn CheckpointStore>,
    pub keeper: Arc<LeaseKeeper>,
    pub tenure: Tenure,
}

impl CheckpointStore for TenureStore {
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError> {
        self.inner.load_all(mapping)
    }

    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        self.keeper
            .queue_checkpoint(mapping, shard, checkpoint, Some(self.tenure))
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_meta(key, value)
    }

    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError> {
        self.inner.forget_mapping(mapping)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn flush_soon(&self) {
        self.inner.flush_soon()
    }

    fn is_paused(&self, mapping: &str, shard: &ShardId) -> Result<bool, StoreError> {
        self.inner.is_paused(mapping, shard)
    }

    fn set_paused(&self, mapping: &str, shard: &ShardId, paused: bool) -> Result<(), StoreError> {
        self.inner.set_paused(mapping, shard, paused)
    }
}

/// Waits for `work` from synchronous code (see the module comment).
fn block_on<T>(work: impl Future<Output = T>) -> Result<T, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(work)))
        }
        _ => work.now_or_never().ok_or_else(|| {
            StoreError("the lease table cannot be waited for on this runtime".to_string())
        }),
    }
}
