//! The supervisor of a mapping whose shards are shared through a lease table: it runs a
//! shard only while this worker holds the shard's lease.
//!
//! It lists shards as the lone supervisor does (`discovery`) and creates a lease for each
//! shard it finds (parents first); the lease keeper decides what this worker takes. A
//! lease gained starts the shard from the lease's checkpoint; a lease lost stops that
//! shard at once (its own stop token), and whatever it still saves is refused by the
//! keeper. A lease gained again while the shard's previous task is still stopping starts
//! once that task has returned, so two tasks of one shard never run here together.
//! Parents before children holds across workers because the keeper takes a child only
//! when every parent's lease says SHARD_END. Operators see every shard: the ones held
//! elsewhere as `not_held`, with the lease's owner, counter and checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::MappingContext;
use super::discovery::Discovery;
use super::shard::{run_shard, start_position, ShardEnd};
use super::status::ShardState;
use crate::checkpoint::Checkpoint;
use crate::coordination::keeper::{LeaseEvent, LeaseKeeper, Tenure};
use crate::coordination::lease::Lease;
use crate::coordination::store::TenureStore;
use crate::model::{ShardId, ShardInfo};

pub async fn run_leased_mapping(ctx: Arc<MappingContext>, keeper: Arc<LeaseKeeper>) {
    let mut events = keeper.attach(&ctx.mapping.name);
    let mut mapping = LeasedMapping {
        ctx: ctx.clone(),
        keeper: keeper.clone(),
        running: BTreeMap::new(),
        deferred: BTreeMap::new(),
        tracker: TaskTracker::new(),
        done: mpsc::unbounded_channel(),
    };
    let mut discovery = Discovery::new(&ctx);
    let refresh_ms = keeper.timing.renew_interval_ms;
    loop {
        if let Some(listed) = discovery.poll(&ctx).await {
            mapping.discovered(listed).await;
        }
        mapping.show_leases();
        let wait = discovery.wait_ms(ctx.clock.now_ms()).min(refresh_ms);
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => break,
            Some(event) = events.recv() => mapping.apply(event),
            Some((shard_id, end)) = mapping.done.1.recv() => {
                if let ShardEnd::Finished { children } = mapping.ended(shard_id, end) {
                    keeper.create_leases(&ctx.mapping.name, &children).await;
                    discovery.due_now(ctx.clock.now_ms());
                }
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
    mapping.tracker.close();
    mapping.tracker.wait().await;
    tracing::info!(mapping = %ctx.mapping.name, "mapping stopped; checkpoints queued for the lease table");
}

/// What the supervisor tracks between events.
struct LeasedMapping {
    ctx: Arc<MappingContext>,
    keeper: Arc<LeaseKeeper>,
    /// Shards running here, each with its own stop token.
    running: BTreeMap<ShardId, CancellationToken>,
    /// Leases gained again while the shard's previous task was still stopping.
    deferred: BTreeMap<ShardId, (Lease, Tenure)>,
    tracker: TaskTracker,
    /// Where shard tasks report that they returned, and why.
    done: (
        mpsc::UnboundedSender<ShardDone>,
        mpsc::UnboundedReceiver<ShardDone>,
    ),
}

type ShardDone = (ShardId, ShardEnd);

impl LeasedMapping {
    /// New shards get a status (so operators see them) and a lease.
    async fn discovered(&mut self, listed: Vec<ShardInfo>) {
        let new: Vec<ShardInfo> = listed
            .into_iter()
            .filter(|info| self.ctx.status.get(info.shard_id.as_str()).is_none())
            .collect();
        for info in &new {
            self.ctx.shard_status(info).update().state = ShardState::NotHeld;
        }
        self.keeper
            .create_leases(&self.ctx.mapping.name, &new)
            .await;
    }

    fn apply(&mut self, event: LeaseEvent) {
        match event {
            LeaseEvent::Gained(lease, tenure) => {
                if self.running.contains_key(&lease.shard_id) {
                    self.deferred
                        .insert(lease.shard_id.clone(), (lease, tenure));
                } else {
                    self.start(lease, tenure);
                }
            }
            LeaseEvent::Lost(shard_id) => {
                self.deferred.remove(&shard_id);
                if let Some(stop) = self.running.get(&shard_id) {
                    stop.cancel();
                }
            }
            LeaseEvent::Paused { shard_id, paused } => {
                if let Some(status) = self.ctx.status.get(shard_id.as_str()) {
                    if paused {
                        status.pause();
                    } else {
                        status.resume();
                    }
                }
            }
        }
    }

    /// A shard task returned; a deferred lease of the same shard starts now.
    fn ended(&mut self, shard_id: ShardId, end: ShardEnd) -> ShardEnd {
        self.running.remove(&shard_id);
        if let Some(status) = self.ctx.status.get(shard_id.as_str()) {
            let mut s = status.update();
            if s.state == ShardState::Stopped && !self.ctx.cancel.is_cancelled() {
                s.state = ShardState::NotHeld;
            }
        }
        if let Some((lease, tenure)) = self.deferred.remove(&shard_id) {
            self.start(lease, tenure);
        }
        end
    }

    /// Runs a shard whose lease this worker gained, from the lease's checkpoint; its saves
    /// are fenced on `tenure`, this holding of the lease.
    fn start(&mut self, lease: Lease, tenure: Tenure) {
        let ctx = &self.ctx;
        let info = ShardInfo {
            shard_id: lease.shard_id.clone(),
            parent_shard_ids: lease.parent_shard_ids.clone(),
        };
        let status = ctx.shard_status(&info);
        {
            let mut s = status.update();
            s.resumed_from = lease.checkpoint.as_ref().map(Checkpoint::encode);
            s.checkpoint = s.resumed_from.clone();
            s.state = ShardState::Polling;
        }
        if lease.paused != status.control().is_paused() {
            if lease.paused {
                status.pause();
            } else {
                status.resume();
            }
        }
        let is_child = lease
            .parent_shard_ids
            .iter()
            .any(|p| self.keeper.lease(&ctx.mapping.name, p).is_some());
        let position = start_position(
            lease.checkpoint.as_ref(),
            is_child,
            ctx.mapping.starting_position,
            ctx.mapping.stream_kind,
            ctx.clock.now_ms(),
        );
        let shard_ctx = Arc::new(MappingContext {
            store: Arc::new(TenureStore {
                inner: ctx.store.clone(),
                keeper: self.keeper.clone(),
                tenure,
            }),
            ..(*ctx.with_own_cancel()).clone()
        });
        self.running
            .insert(info.shard_id.clone(), shard_ctx.cancel.clone());
        let done = self.done.0.clone();
        self.tracker.spawn(async move {
            let shard_id = info.shard_id.clone();
            let end = run_shard(shard_ctx, info, position, status).await;
            let _ = done.send((shard_id, end));
        });
    }

    /// Publishes every lease's owner and counter; shards not running here show the
    /// lease's checkpoint and `not_held`.
    fn show_leases(&self) {
        for lease in self.keeper.leases(&self.ctx.mapping.name) {
            let Some(status) = self.ctx.status.get(lease.shard_id.as_str()) else {
                continue;
            };
            let mut s = status.update();
            s.lease_owner = lease.owner.clone();
            s.lease_counter = Some(lease.counter);
            if !self.running.contains_key(&lease.shard_id) && s.state != ShardState::Ended {
                s.checkpoint = lease.checkpoint.as_ref().map(Checkpoint::encode);
                s.paused = lease.paused;
                s.state = if lease.is_ended() {
                    ShardState::Ended
                } else {
                    ShardState::NotHeld
                };
            }
        }
    }
}
