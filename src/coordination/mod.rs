//! Several workers sharing the shards of a mapping through a lease table, after the
//! Kinesis Client Library (KCL): one lease row per (mapping, shard) holds its owner, a
//! counter every write bumps, and the checkpoint. Workers take expired leases, renew the
//! ones they hold, steal towards an even split, and fence every checkpoint write on
//! (owner, counter), so a worker that lost a lease can never move its position.
//!
//! Pure decisions (`balance`: which leases to take or steal; `timing`: the intervals a
//! lease duration implies) sit apart from I/O: the table seam (`table`, with the in-memory
//! table of simulations in `memory` and the DynamoDB one in `dynamodb`), the process-wide
//! `keeper` that renews, takes and writes checkpoints, and `store`, the checkpoint store a
//! leased mapping's shard tasks write through.

pub mod balance;
pub mod dynamodb;
pub mod keeper;
pub mod lease;
pub mod memory;
pub mod metrics;
mod seen;
pub mod store;
pub mod table;
pub mod timing;
