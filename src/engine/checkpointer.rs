//! The checkpoint of one shard, shared by its reader and its lanes: records are admitted
//! as read, marked done as lanes resolve them (or at once when filtered out), and the
//! checkpoint is saved whenever the lowest record not yet done moves (`Progress`).
//!
//! With tumbling windows the checkpoint is held while a window is open and written when
//! its final invoke succeeds (spec 2.6), so a restart replays an unfinished window from
//! its start with a fresh state.
//!
//! Saving goes to the store (durable within `checkpoint_flush_ms`, see
//! `checkpoint::embedded`) and to the shard's published status, so what operators see is
//! what a restart would resume from. When the shard goes idle (caught up with the stream
//! and every record read done) or ends, it asks the store to make its last checkpoint
//! durable at once rather than at the flush deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::progress::Progress;
use super::status::ShardStatus;
use crate::checkpoint::{lock_slot, Checkpoint, CheckpointSlot, CheckpointStore};
use crate::clock::Clock;
use crate::model::{SequenceNumber, ShardId, StreamRecord};

pub struct Checkpointer {
    mapping: String,
    shard_id: ShardId,
    store: Arc<dyn CheckpointStore>,
    /// The shard's checkpoint in the store, when the store hands it out (memory); asked
    /// for at the first save, so a shard that never saves costs the store nothing.
    slot: OnceLock<Option<CheckpointSlot>>,
    clock: Clock,
    status: Arc<ShardStatus>,
    progress: Mutex<Progress>,
    /// While a tumbling window is open: `Some`, holding the checkpoint not yet written.
    held: Mutex<Option<Option<SequenceNumber>>>,
    /// A checkpoint was saved since the shard last asked for a flush.
    unflushed: AtomicBool,
}

impl Checkpointer {
    pub fn new(
        mapping: String,
        shard_id: ShardId,
        store: Arc<dyn CheckpointStore>,
        clock: Clock,
        status: Arc<ShardStatus>,
    ) -> Self {
        Checkpointer {
            slot: OnceLock::new(),
            mapping,
            shard_id,
            store,
            clock,
            status,
            progress: Mutex::new(Progress::default()),
            held: Mutex::new(None),
            unflushed: AtomicBool::new(false),
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits the records of a page just read, in order: open (`None`), or done with its
    /// sequence number (filtered out); returns the first one's ordinal (the others follow).
    pub fn admit_page(&self, records: impl Iterator<Item = Option<SequenceNumber>>) -> u64 {
        let mut progress = self.progress();
        let first = progress.next_ordinal();
        for done in records {
            progress.admit(done);
        }
        first
    }

    /// Admits the `n` records of a page nothing was filtered from, all open; returns the
    /// first one's ordinal (the others follow).
    pub fn admit_open(&self, n: usize) -> u64 {
        self.progress().admit_open(n)
    }

    /// Marks records done (`ordinals[i]` is `records[i]`'s) and saves the checkpoint if it
    /// moved; with no records, passes records admitted done (filtered).
    pub fn done(&self, ordinals: &[u64], records: &[StreamRecord]) {
        let (moved, waiting) = {
            let mut progress = self.progress();
            let done = ordinals
                .iter()
                .copied()
                .zip(records.iter().map(|r| &r.sequence_number));
            (progress.complete(done), progress.waiting())
        };
        self.status.update().records_waiting = waiting as u64;
        let Some(last_done) = moved else {
            return;
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(pending) => *pending = Some(last_done),
            None => {
                drop(held);
                self.save(Checkpoint::After(last_done));
                self.flush_if_idle(waiting);
            }
        }
    }

    /// From now on, checkpoints are held (a tumbling window opened).
    pub fn hold(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none() {
            *held = Some(None);
        }
    }

    /// Writes the held checkpoint and stops holding (the window's final invoke succeeded).
    pub fn release(&self) {
        let pending = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .flatten();
        if let Some(last_done) = pending {
            self.save(Checkpoint::After(last_done));
        }
    }

    /// Publishes how many records wait, after records were admitted.
    /// (A page was just read: when it was empty and nothing waits, the shard is idle.)
    pub fn publish_waiting(&self) {
        let waiting = self.progress().waiting();
        self.status.update().records_waiting = waiting as u64;
        self.flush_if_idle(waiting);
    }

    /// Asks the store to make the last checkpoint durable now if the shard is idle (caught
    /// up, nothing waiting) and saved one since it last asked.
    fn flush_if_idle(&self, waiting: usize) {
        if waiting == 0 && self.status.update().caught_up {
            self.flush_soon();
        }
    }

    /// Asks the store to make the last checkpoint durable now (once per save).
    pub fn flush_soon(&self) {
        if self.unflushed.swap(false, Ordering::Relaxed) {
            self.store.flush_soon();
        }
    }

    /// Forgets every admitted record and sets the checkpoint (a rewind).
    pub fn reset(&self, checkpoint: Checkpoint) {
        self.progress().clear();
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.status.update().records_waiting = 0;
        self.save(checkpoint);
        self.flush_soon();
    }

    pub fn save(&self, checkpoint: Checkpoint) {
        self.unflushed.store(true, Ordering::Relaxed);
        let slot = self
            .slot
            .get_or_init(|| self.store.slot(&self.mapping, &self.shard_id));
        let saved = match slot {
            Some(slot) => {
                checkpoint.store_in(&mut lock_slot(slot));
                Ok(())
            }
            None => self.store.save(&self.mapping, &self.shard_id, &checkpoint),
        };
        if let Err(error) = saved {
            tracing::error!(shard = %self.shard_id, %error, "checkpoint not saved: a restart will deliver these records again");
        }
        let mut status = self.status.update();
        checkpoint.encode_into(status.checkpoint.get_or_insert_default());
        status.last_advance_ms = Some(self.clock.now_ms());
    }
}
