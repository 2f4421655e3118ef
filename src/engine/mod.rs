//! The engine: per-mapping supervisors (`supervisor`) running one task per shard
//! (`shard`), which reads, cuts batches (`batcher`) and hands them to up to
//! ParallelizationFactor lanes (`lane`) that apply the pure policy; the shard checkpoint
//! follows the lowest record not yet done (`progress`); a few emptied batches stay warm
//! for the next shard that cuts one (`spare_batches`). Everything a mapping's tasks
//! share is in `context`; what they do is published in `status`, and operators act on a
//! shard through `control`.

pub mod batcher;
pub mod checkpointer;
pub mod context;
pub mod control;
pub mod discovery;
pub mod held_keys;
pub mod invocation_log;
pub mod lane;
pub mod latency;
pub mod leased_supervisor;
pub mod progress;
pub mod shard;
pub mod spare_batches;
pub mod status;
pub mod supervisor;
