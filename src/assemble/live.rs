//! Building one more mapping while the daemon runs (the Lambda API's create and update).
//!
//! `assemble` wires every mapping of the config at start from a borrowed `Environment`;
//! a mapping created later needs the same pieces after start-up is over, so this keeps
//! owned copies of them and the `Shared` half of the parts (the simulated streams, the
//! functions already built, the open failure files), and lends them to `context_of`, the
//! one place a `MappingContext` is made. Creations are serialised by the lock on `Shared`.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{context_of, Environment, Seeds, Shared};
use crate::aws::AwsFactory;
use crate::checkpoint::CheckpointStore;
use crate::clock::Clock;
use crate::config::schema::SimStreamConfig;
use crate::config::{Config, Mapping};
use crate::coordination::keeper::LeaseKeeper;
use crate::destination::file::LineSync;
use crate::engine::context::MappingContext;
use crate::engine::status::MappingStatus;
use crate::function::tap::Observer;

/// When each simulated stream was created (epoch ms), as the daemon keeps it.
pub type CreatedAt = Arc<dyn Fn(&SimStreamConfig) -> anyhow::Result<i64> + Send + Sync>;

/// The owned half of an `Environment`, kept for the daemon's lifetime.
pub struct LiveAssembler {
    pub config: Config,
    pub clock: Clock,
    pub store: Arc<dyn CheckpointStore>,
    pub created_at: CreatedAt,
    pub seeds: Seeds,
    pub tap: Option<Observer>,
    pub aws: Arc<AwsFactory>,
    pub line_sync: LineSync,
    pub leases: Option<Arc<LeaseKeeper>>,
    /// The daemon's stop token: every mapping's is a child of it.
    pub cancel: CancellationToken,
    pub shared: Mutex<Shared>,
}

impl LiveAssembler {
    /// The environment the daemon's start-up assembles with.
    pub fn environment(&self) -> Environment<'_> {
        Environment {
            clock: self.clock,
            store: self.store.clone(),
            stream_created_at_ms: &*self.created_at,
            seeds: self.seeds.clone(),
            invocation_log: None,
            tap: self.tap.clone(),
            aws: Some(&self.aws),
            line_sync: self.line_sync,
            leases: self.leases.clone(),
            cancel: self.cancel.clone(),
        }
    }

    /// `mapping`'s context; with `status`, the shards keep the status they had (an update
    /// restarts a mapping without losing what the operator sees).
    pub async fn context(
        &self,
        mapping: &Mapping,
        status: Option<Arc<MappingStatus>>,
    ) -> anyhow::Result<Arc<MappingContext>> {
        let env = self.environment();
        let mut shared = self.shared.lock().await;
        let ctx = context_of(&self.config, mapping, &env, &mut shared).await?;
        Ok(match status {
            None => ctx,
            Some(status) => Arc::new(MappingContext {
                status,
                ..(*ctx).clone()
            }),
        })
    }
}
