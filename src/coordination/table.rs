//! The lease table seam: the few conditional operations KCL's lease management needs.
//!
//! Every write that changes who holds a lease or where it stands is conditional on what
//! the writer believes (the owner and the counter): a `Conflict` means someone else wrote
//! first, and the writer must treat the lease as not (or no longer) its own. That is the
//! whole of the fencing. `Throttled` and `Unavailable` are worth retrying; `Fatal` (a
//! foreign schema, missing permissions) stops the worker with the table's own words.

use async_trait::async_trait;

use super::lease::Lease;
use crate::checkpoint::Checkpoint;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A conditional write failed: the lease is not as the writer believed.
    #[error("the lease changed under us (conditional check failed)")]
    Conflict,
    /// The table asked us to slow down.
    #[error("lease table throttled: {0}")]
    Throttled(String),
    /// A transient failure (network, 5xx): retry.
    #[error("lease table unavailable: {0}")]
    Unavailable(String),
    /// Retrying cannot help: wrong schema, no permission, no such table.
    #[error("{0}")]
    Fatal(String),
}

/// Who writes, and the counter they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder<'a> {
    pub owner: &'a str,
    pub counter: u64,
}

#[async_trait]
pub trait LeaseTable: Send + Sync {
    /// Creates the table if it is missing and checks that it is a lease table.
    async fn prepare(&self) -> Result<(), TableError>;
    /// Every lease in the table, of every mapping.
    async fn list(&self) -> Result<Vec<Lease>, TableError>;
    /// Writes `lease` unless a lease with its key exists; `Ok(false)` if one does.
    async fn create(&self, lease: &Lease) -> Result<bool, TableError>;
    /// Makes `owner` the holder of a lease whose counter is `counter` (free, expired or
    /// stolen): owner set, counter bumped, owner switches counted. Returns the new row.
    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError>;
    /// Bumps the counter of a lease `holder` holds. Returns the new row (an operator's
    /// pause shows there).
    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError>;
    /// Writes the checkpoint of a lease `holder` holds (the counter is not bumped).
    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError>;
    /// Hands a lease back: owner cleared, counter bumped, so a peer takes it at once.
    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError>;
    /// An operator's pause or resume (whoever holds the lease applies it at its next
    /// renew); `Conflict` if there is no such lease.
    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError>;
    /// One lease, if it exists.
    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError>;
}
