//! A shard's lanes as the shard task sees them: the idle ones (lane 0 taken first), the
//! busy ones as futures that hand the lane back with its batch, and how to signal each
//! (an operator skip). The lanes share the shard's tumbling window and held keys, made
//! fresh with them (a new shard, or a rewind).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::stream::FuturesUnordered;

use crate::engine::batcher::Batch;
use crate::engine::checkpointer::Checkpointer;
use crate::engine::context::MappingContext;
use crate::engine::held_keys::HeldKeys;
use crate::engine::lane::{BatchEnd, Lane, LaneSignal, SharedWindow};
use crate::engine::status::ShardStatus;
use crate::model::ShardId;
use crate::policy::window::{WindowTracker, AWS_CLOSE_GRACE_MS};

/// A lane's batch, done: the lane (idle again) and the batch (for its buffer).
type LaneDone = (Lane, Batch, BatchEnd);
type LaneFuture = Pin<Box<dyn Future<Output = LaneDone> + Send>>;

pub(super) struct Lanes {
    /// Idle lanes; `pop` takes from the back: lane 0 first.
    pub(super) idle: Vec<Lane>,
    pub(super) busy: FuturesUnordered<LaneFuture>,
    /// Each lane's signal, by lane index.
    pub(super) signals: Vec<Arc<LaneSignal>>,
}

impl Lanes {
    /// ParallelizationFactor lanes, all idle.
    pub(super) fn new(
        ctx: &Arc<MappingContext>,
        shard_id: &ShardId,
        status: &Arc<ShardStatus>,
        checkpointer: &Arc<Checkpointer>,
        window: &Option<SharedWindow>,
        held: &Arc<HeldKeys>,
    ) -> Self {
        let factor = ctx.mapping.parallelization_factor.max(1) as usize;
        let lanes: Vec<Lane> = (0..factor)
            .map(|index| {
                Lane::new(
                    ctx.clone(),
                    shard_id.clone(),
                    index,
                    status.clone(),
                    checkpointer.clone(),
                    window.clone(),
                    held.clone(),
                )
            })
            .collect();
        let signals = lanes.iter().map(Lane::signal).collect();
        Lanes {
            idle: lanes.into_iter().rev().collect(),
            busy: FuturesUnordered::new(),
            signals,
        }
    }

    /// Sets `lane` to work on `batch`.
    pub(super) fn dispatch(&mut self, mut lane: Lane, batch: Batch) {
        self.busy.push(Box::pin(async move {
            let end = lane.process(&batch).await;
            (lane, batch, end)
        }));
    }

    /// Sets `lane` to the open tumbling window's final invoke.
    pub(super) fn dispatch_final_invoke(&mut self, mut lane: Lane) {
        self.busy.push(Box::pin(async move {
            let end = lane.final_invoke().await;
            (lane, Batch::default(), end)
        }));
    }
}

/// The shard's tumbling window, when the mapping has one (a fresh state: a new shard, or a
/// rewind).
pub(super) fn new_window(ctx: &MappingContext) -> Option<SharedWindow> {
    let seconds = ctx.mapping.tumbling_window_in_seconds;
    (seconds > 0).then(|| Arc::new(Mutex::new(WindowTracker::new(seconds, AWS_CLOSE_GRACE_MS))))
}
