//! The in-memory lease table of a simulation, watched: it passes every call to
//! `MemoryLeaseTable` and keeps what the report needs without asking the table (asking
//! would count as calls): each lease's owner and checkpoint as written, every owner
//! change with its time, and any checkpoint write that moved a lease backwards — which
//! fencing must make impossible, so the report shows the count and tests require 0.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::checkpoint::Checkpoint;
use crate::clock::Clock;
use crate::coordination::lease::Lease;
use crate::coordination::memory::MemoryLeaseTable;
use crate::coordination::table::{Holder, LeaseTable, TableError};

/// A lease changing hands: taken by `owner`, or handed back (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub at_ms: i64,
    pub key: String,
    pub owner: Option<String>,
}

/// Table calls by kind (refused ones too), as a DynamoDB table would bill them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCounts {
    pub list: u64,
    pub create: u64,
    pub take: u64,
    pub renew: u64,
    pub checkpoint: u64,
    pub release: u64,
    /// Operator pauses and single reads.
    pub other: u64,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.list
            + self.create
            + self.take
            + self.renew
            + self.checkpoint
            + self.release
            + self.other
    }

    /// `self - earlier`, kind by kind.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            list: self.list - earlier.list,
            create: self.create - earlier.create,
            take: self.take - earlier.take,
            renew: self.renew - earlier.renew,
            checkpoint: self.checkpoint - earlier.checkpoint,
            release: self.release - earlier.release,
            other: self.other - earlier.other,
        }
    }
}

#[derive(Default)]
struct Watched {
    calls: CallCounts,
    owners: BTreeMap<String, Option<String>>,
    checkpoints: BTreeMap<String, Checkpoint>,
    moves: Vec<Move>,
    regressions: Vec<String>,
}

pub struct WatchedTable {
    inner: MemoryLeaseTable,
    clock: Clock,
    watched: Mutex<Watched>,
}

impl WatchedTable {
    pub fn new(clock: Clock) -> Self {
        WatchedTable {
            inner: MemoryLeaseTable::default(),
            clock,
            watched: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls made to the table so far, by kind.
    pub fn calls(&self) -> CallCounts {
        self.lock().calls
    }

    fn count(&self, kind: impl FnOnce(&mut CallCounts) -> &mut u64) {
        *kind(&mut self.lock().calls) += 1;
    }

    /// Every lease's owner (`None`: free), by key.
    pub fn owners(&self) -> BTreeMap<String, Option<String>> {
        self.lock().owners.clone()
    }

    /// Leases whose checkpoint says SHARD_END.
    pub fn ended(&self) -> Vec<String> {
        let w = self.lock();
        w.checkpoints
            .iter()
            .filter(|(_, c)| **c == Checkpoint::ShardEnd)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The checkpoint written for the lease of `key`.
    pub fn checkpoint(&self, key: &str) -> Option<Checkpoint> {
        self.lock().checkpoints.get(key).cloned()
    }

    pub fn moves(&self) -> Vec<Move> {
        self.lock().moves.clone()
    }

    /// Checkpoint writes that moved a lease backwards, described.
    pub fn regressions(&self) -> Vec<String> {
        self.lock().regressions.clone()
    }

    fn moved(&self, key: &str, owner: Option<String>) {
        let at_ms = self.clock.now_ms();
        let mut w = self.lock();
        w.owners.insert(key.to_string(), owner.clone());
        w.moves.push(Move {
            at_ms,
            key: key.to_string(),
            owner,
        });
    }
}

/// Whether `next` lies before `previous` (sequence numbers compare as unsigned decimals;
/// an operator's rewind, `At`/`AtTimestamp`, is not a checkpoint the engine writes).
fn backwards(previous: &Checkpoint, next: &Checkpoint) -> bool {
    let order = |c: &Checkpoint| match c {
        Checkpoint::After(seq) => Some((1, seq.0.len(), seq.0.clone())),
        Checkpoint::ShardEnd => Some((2, 0, String::new())),
        Checkpoint::At(_) | Checkpoint::AtTimestamp(_) => None,
    };
    matches!((order(previous), order(next)), (Some(p), Some(n)) if n < p)
}

#[async_trait]
impl LeaseTable for WatchedTable {
    async fn prepare(&self) -> Result<(), TableError> {
        self.inner.prepare().await
    }

    async fn list(&self) -> Result<Vec<Lease>, TableError> {
        self.count(|c| &mut c.list);
        self.inner.list().await
    }

    async fn create(&self, lease: &Lease) -> Result<bool, TableError> {
        self.count(|c| &mut c.create);
        let created = self.inner.create(lease).await?;
        if created {
            self.lock().owners.insert(lease.key(), lease.owner.clone());
        }
        Ok(created)
    }

    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError> {
        self.count(|c| &mut c.take);
        let row = self.inner.take(key, counter, owner, admin_url).await?;
        self.moved(key, Some(owner.to_string()));
        Ok(row)
    }

    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError> {
        self.count(|c| &mut c.renew);
        self.inner.renew(key, holder).await
    }

    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError> {
        self.count(|c| &mut c.checkpoint);
        self.inner.checkpoint(key, holder, checkpoint).await?;
        let mut w = self.lock();
        if let Some(previous) = w.checkpoints.get(key) {
            if backwards(previous, checkpoint) {
                let what = format!(
                    "{key}: {} after {} (by {})",
                    checkpoint.encode(),
                    previous.encode(),
                    holder.owner
                );
                w.regressions.push(what);
            }
        }
        w.checkpoints.insert(key.to_string(), checkpoint.clone());
        Ok(())
    }

    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError> {
        self.count(|c| &mut c.release);
        self.inner.release(key, holder).await?;
        self.moved(key, None);
        Ok(())
    }

    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError> {
        self.count(|c| &mut c.other);
        self.inner.set_paused(key, paused).await
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        self.count(|c| &mut c.other);
        self.inner.get(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn after(seq: &str) -> Checkpoint {
        Checkpoint::After(SequenceNumber(seq.to_string()))
    }

    #[test]
    fn backwards_compares_sequence_numbers_as_unsigned_decimals() {
        assert!(backwards(&after("100"), &after("99")));
        assert!(!backwards(&after("99"), &after("100")));
        assert!(backwards(&Checkpoint::ShardEnd, &after("5")));
        assert!(!backwards(&after("5"), &Checkpoint::ShardEnd));
        assert!(!backwards(
            &after("5"),
            &Checkpoint::At(SequenceNumber("1".into()))
        ));
    }
}
