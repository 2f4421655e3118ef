//! esm-sim: AWS Lambda's event source mapping for Kinesis and DynamoDB Streams, as a
//! daemon and as a deterministic simulator.
//!
//! Layers, from pure to I/O: `model` (domain types), `policy` (the pure retry / bisect /
//! expiry decisions), `event` (the exact Lambda JSON), `engine` (supervisor and shard
//! tasks), and the seams `source`, `function`, `destination`, `checkpoint`, with the
//! simulated world in `sim`.

pub mod admin;
pub mod arn;
pub mod assemble;
pub mod aws;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod config;
pub mod coordination;
pub mod daemon;
pub mod destination;
pub mod engine;
pub mod event;
pub mod filter;
pub mod function;
pub mod limits;
pub mod load;
pub mod log_redaction;
pub mod log_time;
pub mod model;
pub mod ops;
pub mod policy;
pub mod rng;
pub mod running;
pub mod sim;
pub mod simulate;
pub mod source;

/// mimalloc instead of the system allocator, for every binary, test and example that links
/// the crate: a simulation allocates and frees a few small buffers per record (data, keys,
/// images, sequence numbers) and glibc's malloc spent a fifth of a run on them
/// (`docs/performance.md`, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
