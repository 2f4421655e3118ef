//! The supervisor of one mapping: discovers shards and runs one task per shard, parents
//! first (spec section 4).
//!
//! Shards are listed at start, every `discovery_interval_ms`, and at once when a shard
//! ends. A shard starts only when every parent the stream still lists is finished
//! (SHARD_END), which keeps per-key order across splits and merges; a parent the stream no
//! longer lists (trimmed away) counts as finished. A shard whose checkpoint is SHARD_END
//! is never started again. On shutdown every task stops at its next step and the
//! supervisor returns once all have checkpointed.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::context::MappingContext;
use super::discovery::Discovery;
use super::leased_supervisor::run_leased_mapping;
use super::shard::{run_shard, start_position, ShardEnd};
use super::status::ShardState;
use crate::checkpoint::Checkpoint;
use crate::model::{ShardId, ShardInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Finished,
}

pub async fn run_mapping(ctx: Arc<MappingContext>) {
    let name = ctx.mapping.name.clone();
    if !ctx.mapping.enabled {
        tracing::info!(mapping = %name, "mapping disabled: not polling; positions are kept");
        show_disabled_shards(&ctx).await;
        ctx.cancel.cancelled().await;
        return;
    }
    if let Some(keeper) = ctx.leases.clone() {
        return run_leased_mapping(ctx, keeper).await;
    }
    let mut checkpoints = match ctx.store.load_all(&name) {
        Ok(checkpoints) => checkpoints,
        Err(error) => {
            tracing::error!(mapping = %name, %error, "cannot read checkpoints; mapping not started");
            return;
        }
    };
    let mut shards: BTreeMap<ShardId, (ShardInfo, Slot)> = BTreeMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(ShardId, ShardEnd)>();
    let tracker = TaskTracker::new();
    let mut discovery = Discovery::new(&ctx);
    loop {
        if let Some(listed) = discovery.poll(&ctx).await {
            for info in listed {
                if shards.contains_key(&info.shard_id) {
                    continue;
                }
                let checkpoint = checkpoints.get(&info.shard_id);
                let finished = matches!(checkpoint, Some(Checkpoint::ShardEnd));
                let status = ctx.shard_status(&info);
                if let Some(checkpoint) = checkpoint {
                    let mut s = status.update();
                    s.resumed_from = Some(checkpoint.encode());
                    s.checkpoint = Some(checkpoint.encode());
                    if finished {
                        s.state = ShardState::Ended;
                    }
                }
                let slot = if finished {
                    Slot::Finished
                } else {
                    Slot::Waiting
                };
                shards.insert(info.shard_id.clone(), (info, slot));
            }
        }
        start_ready_shards(&ctx, &mut shards, &checkpoints, &tracker, &done_tx);
        let wait = discovery.wait_ms(ctx.clock.now_ms());
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => break,
            Some((shard_id, end)) = done_rx.recv() => {
                if let ShardEnd::Finished { children } = end {
                    checkpoints.insert(shard_id.clone(), Checkpoint::ShardEnd);
                    if let Some(entry) = shards.get_mut(&shard_id) {
                        entry.1 = Slot::Finished;
                    }
                    // The children the stream named (Kinesis ChildShards) are known at
                    // once, even if a listing would not show them yet; list again anyway.
                    for child in children {
                        if !shards.contains_key(&child.shard_id) {
                            ctx.shard_status(&child);
                            shards.insert(child.shard_id.clone(), (child, Slot::Waiting));
                        }
                    }
                    discovery.due_now(ctx.clock.now_ms());
                } else if let Some(entry) = shards.get_mut(&shard_id) {
                    entry.1 = Slot::Waiting;
                }
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
    tracker.close();
    tracker.wait().await;
    tracing::info!(mapping = %name, "mapping stopped; checkpoints written");
}

fn start_ready_shards(
    ctx: &Arc<MappingContext>,
    shards: &mut BTreeMap<ShardId, (ShardInfo, Slot)>,
    checkpoints: &BTreeMap<ShardId, Checkpoint>,
    tracker: &TaskTracker,
    done_tx: &mpsc::UnboundedSender<(ShardId, ShardEnd)>,
) {
    let ready: Vec<ShardInfo> = shards
        .values()
        .filter(|(_, slot)| *slot == Slot::Waiting)
        .filter(|(info, _)| {
            info.parent_shard_ids.iter().all(|parent| {
                shards
                    .get(parent)
                    .is_none_or(|(_, slot)| *slot == Slot::Finished)
            })
        })
        .map(|(info, _)| info.clone())
        .collect();
    for info in ready {
        let is_child = info.parent_shard_ids.iter().any(|p| shards.contains_key(p));
        let position = start_position(
            checkpoints.get(&info.shard_id),
            is_child,
            ctx.mapping.starting_position,
            ctx.mapping.stream_kind,
            ctx.clock.now_ms(),
        );
        if let Some(entry) = shards.get_mut(&info.shard_id) {
            entry.1 = Slot::Running;
        }
        let status = ctx.status.shard(&info);
        let (ctx, done_tx) = (ctx.clone(), done_tx.clone());
        tracker.spawn(async move {
            let shard_id = info.shard_id.clone();
            let end = run_shard(ctx, info, position, status).await;
            let _ = done_tx.send((shard_id, end));
        });
    }
}

/// A disabled mapping reads nothing, but its shards are listed once so operators see them
/// (state `disabled`, with the position they will resume from).
async fn show_disabled_shards(ctx: &MappingContext) {
    let checkpoints = ctx.store.load_all(&ctx.mapping.name).unwrap_or_default();
    match ctx.source.list_shards().await {
        Ok(listed) => {
            for info in listed {
                let status = ctx.shard_status(&info);
                let mut s = status.update();
                s.state = ShardState::Disabled;
                s.checkpoint = checkpoints.get(&info.shard_id).map(Checkpoint::encode);
            }
        }
        Err(error) => {
            tracing::warn!(mapping = %ctx.mapping.name, %error, "cannot list the shards of the disabled mapping");
        }
    }
}
