//! What the admin server's handlers share: where the mappings are (a fixed list, or the
//! daemon's running set that the Lambda API changes), the clock, the stuck threshold, the
//! token and the dashboard's history. Apart from the routes so that both route files
//! (`routes`, `lambda_api`) read it without depending on each other.

use std::sync::{Arc, Mutex};

use super::history::IteratorAgeHistory;
use crate::clock::Clock;
use crate::config::mapping::ShardSeries;
use crate::engine::context::MappingContext;
use crate::running::RunningMappings;

/// Where the admin API finds the mappings.
#[derive(Clone)]
pub enum Mappings {
    /// A fixed list (an embedder's or a test's).
    Fixed(Vec<Arc<MappingContext>>),
    /// The daemon's running set, which the Lambda API changes.
    Running(Arc<RunningMappings>),
}

impl Mappings {
    /// Every mapping's context now.
    pub fn contexts(&self) -> Vec<Arc<MappingContext>> {
        match self {
            Mappings::Fixed(contexts) => contexts.clone(),
            Mappings::Running(set) => set.contexts(),
        }
    }

    /// The running set, which the Lambda API needs.
    pub fn running(&self) -> Option<&Arc<RunningMappings>> {
        match self {
            Mappings::Fixed(_) => None,
            Mappings::Running(set) => Some(set),
        }
    }
}

/// What every handler reads.
pub struct AdminState {
    pub mappings: Mappings,
    pub clock: Clock,
    pub stuck_after_ms: i64,
    /// Which shards get per-shard series in `/metrics`.
    pub shard_series: ShardSeries,
    pub token: Option<String>,
    pub history: Arc<Mutex<IteratorAgeHistory>>,
}
