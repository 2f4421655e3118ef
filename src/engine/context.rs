//! Everything a mapping's tasks share: the resolved mapping, its source, target, failure
//! delivery, checkpoint store, clock, status and shutdown token.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::invocation_log::InvocationLog;
use super::status::MappingStatus;
use crate::checkpoint::CheckpointStore;
use crate::clock::Clock;
use crate::config::Mapping;
use crate::destination::delivery::FailureDelivery;
use crate::source::StreamSource;
use crate::target::Target;

pub struct MappingContext {
    pub mapping: Mapping,
    pub source: Arc<dyn StreamSource>,
    pub target: Arc<dyn Target>,
    pub delivery: FailureDelivery,
    pub store: Arc<dyn CheckpointStore>,
    pub clock: Clock,
    /// Seed of jitter and request ids (fixed in simulations, random in `run`).
    pub seed: u64,
    pub aws_region: String,
    /// `invokeIdentityArn` of Kinesis events: the function's execution role.
    pub invoke_identity_arn: String,
    pub invocation_log: Option<Arc<InvocationLog>>,
    pub status: Arc<MappingStatus>,
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
            _ = tokio::time::sleep(std::time::Duration::from_millis(ms)) => true,
        }
    }
}
