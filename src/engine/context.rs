//! Everything a mapping's tasks share: the resolved mapping, its source, function, failure
//! delivery, checkpoint store, clock, status and shutdown token; and the operator state
//! that must outlive the process (a paused shard stays paused after a restart or a crash),
//! kept in the checkpoint store next to the checkpoints.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::invocation_log::InvocationLog;
use super::status::{MappingStatus, ShardSnapshot, ShardStatus};
use crate::checkpoint::{CheckpointStore, StoreError};
use crate::clock::{self, Clock};
use crate::config::Mapping;
use crate::coordination::keeper::LeaseKeeper;
use crate::destination::delivery::FailureDelivery;
use crate::event::request_id::RequestIds;
use crate::event::EventContext;
use crate::function::Function;
use crate::model::{ShardId, ShardInfo};
use crate::source::StreamSource;

#[derive(Clone)]
pub struct MappingContext {
    pub mapping: Mapping,
    pub source: Arc<dyn StreamSource>,
    pub function: Arc<dyn Function>,
    pub delivery: FailureDelivery,
    pub store: Arc<dyn CheckpointStore>,
    pub clock: Clock,
    /// Seed of jitter (fixed in simulations, random in `run`).
    pub seed: u64,
    /// Where the request ids of failure records come from.
    pub request_ids: Arc<RequestIds>,
    /// The mapping's event source ARN, region and (`invokeIdentityArn` of Kinesis
    /// events) the function's execution role, as every event of its shards carries them:
    /// one copy each for all the shards (see `EventContext`).
    pub event_source_arn: Arc<str>,
    pub aws_region: Arc<str>,
    pub invoke_identity_arn: Arc<str>,
    pub invocation_log: Option<Arc<InvocationLog>>,
    pub status: Arc<MappingStatus>,
    /// The worker's lease keeper when the mapping's shards are shared through a lease
    /// table (`None`: this process runs every shard).
    pub leases: Option<Arc<LeaseKeeper>>,
    /// Stops the mapping's tasks (a shard's own token, a child of the mapping's, when
    /// leased: losing its lease stops that shard alone).
    pub cancel: CancellationToken,
}

impl MappingContext {
    /// Sleeps `ms`, or less if shutdown comes first; false when shut down.
    pub async fn sleep(&self, ms: u64) -> bool {
        if ms == 0 {
            return !self.cancel.is_cancelled();
        }
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => false,
            _ = clock::sleep_ms(ms) => true,
        }
    }

    /// The same context with its own stop token, a child of the mapping's: for one shard
    /// whose lease can be lost.
    pub fn with_own_cancel(&self) -> Arc<MappingContext> {
        Arc::new(MappingContext {
            cancel: self.cancel.child_token(),
            ..self.clone()
        })
    }

    /// The fields every event of `shard_id` carries.
    pub fn event_context(&self, shard_id: &ShardId) -> EventContext {
        EventContext {
            shard_id: shard_id.clone(),
            event_source_arn: self.event_source_arn.clone(),
            aws_region: self.aws_region.clone(),
            invoke_identity_arn: self.invoke_identity_arn.clone(),
        }
    }

    /// A shard's status, created when the shard is first seen; a shard an operator paused
    /// before a restart or a crash is paused again.
    pub fn shard_status(&self, info: &ShardInfo) -> Arc<ShardStatus> {
        let status = self.status.shard(info);
        match self.store.is_paused(&self.mapping.name, &info.shard_id) {
            Ok(true) => {
                if !status.control().is_paused() {
                    tracing::info!(mapping = %self.mapping.name, shard = %info.shard_id, "shard paused by an operator before the restart: it stays paused until resumed");
                    status.pause();
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(mapping = %self.mapping.name, shard = %info.shard_id, %error, "cannot read whether the shard was paused; it runs")
            }
        }
        status
    }

    /// Pauses or resumes a shard, stored durably first so it holds across restarts.
    pub fn set_paused(
        &self,
        status: &ShardStatus,
        shard_id: &str,
        paused: bool,
    ) -> Result<ShardSnapshot, StoreError> {
        self.store
            .set_paused(&self.mapping.name, &ShardId(shard_id.to_string()), paused)?;
        Ok(if paused {
            status.pause()
        } else {
            status.resume()
        })
    }
}
