//! The engine: per-mapping supervisors (`supervisor`) running one task per shard
//! (`shard`), each feeding batches (`batcher`) to a lane (`lane`) that applies the pure
//! policy. Everything a mapping's tasks share is in `context`; what they do is published
//! in `status`.

pub mod batcher;
pub mod context;
pub mod invocation_log;
pub mod lane;
pub mod shard;
pub mod status;
pub mod supervisor;
