//! The admin side of a running daemon: the HTTP API people and `esm-sim shards` use to see
//! and move stuck shards, the Prometheus metrics, and the dashboard page.
//!
//! Everything here reads the engine's published shard status and calls the engine's
//! shard controls; nothing here decides ESM behaviour.

pub mod auth;
pub mod client;
pub mod commands;
pub mod dashboard;
pub mod forward;
pub mod history;
pub mod lambda_api;
pub mod metrics;
pub mod metrics_leases;
pub mod prometheus;
pub mod routes;
pub mod server;
pub mod shard_choice;
pub mod shard_page;
pub mod state;
pub mod table;
