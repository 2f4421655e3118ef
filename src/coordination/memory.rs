//! The lease table in memory: for `simulate` (several workers in virtual time) and for
//! tests of the keeper. It applies the same conditions as the DynamoDB table, and counts
//! calls by kind so a simulation can report what a real table would be asked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lease::Lease;
use super::table::{Holder, LeaseTable, TableError};
use crate::checkpoint::Checkpoint;

#[derive(Default)]
pub struct MemoryLeaseTable {
    rows: Mutex<BTreeMap<String, Lease>>,
    calls: AtomicU64,
}

impl MemoryLeaseTable {
    /// Calls made so far (reads and writes).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Applies `change` to the row at `key` if `holds` accepts it.
    fn update(
        &self,
        key: &str,
        holds: impl Fn(&Lease) -> bool,
        change: impl FnOnce(&mut Lease),
    ) -> Result<Lease, TableError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        match rows.get_mut(key) {
            Some(row) if holds(row) => {
                change(row);
                Ok(row.clone())
            }
            _ => Err(TableError::Conflict),
        }
    }
}

fn held_by(row: &Lease, holder: Holder<'_>) -> bool {
    row.owner.as_deref() == Some(holder.owner) && row.counter == holder.counter
}

#[async_trait]
impl LeaseTable for MemoryLeaseTable {
    async fn prepare(&self) -> Result<(), TableError> {
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Lease>, TableError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        Ok(rows.values().cloned().collect())
    }

    async fn create(&self, lease: &Lease) -> Result<bool, TableError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.contains_key(&lease.key()) {
            return Ok(false);
        }
        let mut row = lease.clone();
        // DynamoDB keeps parents as a string set: sorted, each once.
        row.parent_shard_ids.sort();
        row.parent_shard_ids.dedup();
        rows.insert(lease.key(), row);
        Ok(true)
    }

    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError> {
        self.update(
            key,
            |row| row.counter == counter,
            |row| {
                if row.owner.as_deref() != Some(owner) {
                    row.owner_switches_since_checkpoint += 1;
                }
                row.owner = Some(owner.to_string());
                row.owner_admin_url = admin_url.map(str::to_string);
                row.counter += 1;
            },
        )
    }

    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError> {
        self.update(key, |row| held_by(row, holder), |row| row.counter += 1)
    }

    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError> {
        self.update(
            key,
            |row| held_by(row, holder),
            |row| {
                row.checkpoint = Some(checkpoint.clone());
                row.owner_switches_since_checkpoint = 0;
            },
        )
        .map(drop)
    }

    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError> {
        self.update(
            key,
            |row| held_by(row, holder),
            |row| {
                row.owner = None;
                row.owner_admin_url = None;
                row.counter += 1;
            },
        )
        .map(drop)
    }

    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError> {
        self.update(key, |_| true, |row| row.paused = paused)
            .map(drop)
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        Ok(rows.get(key).cloned())
    }
}
