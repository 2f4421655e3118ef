//! The checkpoint seam: where each shard of each mapping stands, kept across restarts.
//!
//! A checkpoint is "after this sequence number" or "shard finished" (SHARD_END). The
//! calls are synchronous: the embedded store answers in microseconds, and keeping them off
//! the async path keeps simulations deterministic (tokio's paused clock would advance while
//! a blocking task ran). `memory` is for simulations and tests, `embedded` (redb on disk)
//! is the default of `run`; its saves are durable within `checkpoint_flush_ms`. The store
//! also keeps a few named values (`meta`), such as when a simulated world was created, so
//! a restarted daemon finds the same world, and which shards an operator paused.

pub mod embedded;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::model::{SequenceNumber, ShardId};

/// Where a shard stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// Every record up to and including this one is done.
    After(SequenceNumber),
    /// The shard is closed and all its records are done.
    ShardEnd,
    /// Set by an operator's rewind: resume at this record (it is delivered again).
    At(SequenceNumber),
    /// Set by an operator's rewind: resume at the first record that arrived at or after
    /// this time (epoch ms).
    AtTimestamp(i64),
}

impl Checkpoint {
    /// The stored form: the sequence number, `SHARD_END`, or a rewind target
    /// (`AT_SEQUENCE_NUMBER:<seq>`, `AT_TIMESTAMP:<epoch ms>`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        self.encode_into(&mut text);
        text
    }

    /// `encode` into `text`, replacing what it held and reusing its room (every
    /// invocation publishes its shard's checkpoint).
    pub fn encode_into(&self, text: &mut String) {
        match self {
            Checkpoint::After(seq) => text.clone_from(&seq.0),
            Checkpoint::ShardEnd => {
                text.clear();
                text.push_str(SHARD_END);
            }
            Checkpoint::At(seq) => {
                text.clear();
                text.push_str(AT_SEQUENCE);
                text.push_str(&seq.0);
            }
            Checkpoint::AtTimestamp(ms) => {
                text.clear();
                text.push_str(AT_TIMESTAMP);
                text.push_str(&ms.to_string());
            }
        }
    }

    /// Sets `held` to this checkpoint; the usual save (after a sequence number, over one)
    /// copies the sequence number's text into the held one's room.
    pub fn store_in(&self, held: &mut Option<Checkpoint>) {
        match (held.as_mut(), self) {
            (Some(Checkpoint::After(held)), Checkpoint::After(next)) => held.0.clone_from(&next.0),
            _ => *held = Some(self.clone()),
        }
    }

    pub fn decode(text: &str) -> Checkpoint {
        if text == SHARD_END {
            return Checkpoint::ShardEnd;
        }
        if let Some(seq) = text.strip_prefix(AT_SEQUENCE) {
            return Checkpoint::At(SequenceNumber(seq.to_string()));
        }
        if let Some(ms) = text
            .strip_prefix(AT_TIMESTAMP)
            .and_then(|ms| ms.parse().ok())
        {
            return Checkpoint::AtTimestamp(ms);
        }
        Checkpoint::After(SequenceNumber(text.to_string()))
    }
}

pub const SHARD_END: &str = "SHARD_END";
const AT_SEQUENCE: &str = "AT_SEQUENCE_NUMBER:";
const AT_TIMESTAMP: &str = "AT_TIMESTAMP:";

#[derive(Debug, thiserror::Error)]
#[error("checkpoint store: {0}")]
pub struct StoreError(pub String);

/// One shard's checkpoint as a store that keeps it in memory hands it out: saved through
/// it, a checkpoint needs no lookup by mapping and shard (`CheckpointStore::slot`).
pub type CheckpointSlot = Arc<Mutex<Option<Checkpoint>>>;

pub trait CheckpointStore: Send + Sync {
    /// Every checkpoint of a mapping.
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError>;
    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError>;
    /// The shard's checkpoint itself, when the store is memory and a checkpoint written
    /// into it is saved (`Checkpoint::store_in`) as `save` would save it; `None` (the
    /// default) when saving must go through `save`: a durable store, or one that checks
    /// something first (a lease).
    fn slot(&self, _mapping: &str, _shard: &ShardId) -> Option<CheckpointSlot> {
        None
    }
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Forgets, durably, every checkpoint and pause of a mapping (deleted through the
    /// Lambda API: a mapping created later starts afresh, as on AWS).
    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError>;
    /// Makes every save so far durable now (shutdown, an operator's action).
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Asks for every save so far to be made durable soon, without waiting for it (a
    /// shard went idle: its last checkpoint should not wait for the flush deadline).
    fn flush_soon(&self) {}
    /// Whether an operator paused the shard (kept across restarts and crashes).
    fn is_paused(&self, mapping: &str, shard: &ShardId) -> Result<bool, StoreError> {
        Ok(self.get_meta(&paused_key(mapping, shard))?.as_deref() == Some("true"))
    }
    /// Stores an operator's pause or resume durably.
    fn set_paused(&self, mapping: &str, shard: &ShardId, paused: bool) -> Result<(), StoreError> {
        self.set_meta(
            &paused_key(mapping, shard),
            if paused { "true" } else { "false" },
        )
    }
}

/// The meta key of a shard's pause.
fn paused_key(mapping: &str, shard: &ShardId) -> String {
    format!("{}{}", paused_prefix(mapping), shard.0)
}

/// The start of the meta keys of a mapping's pauses.
fn paused_prefix(mapping: &str) -> String {
    format!("paused/{mapping}\0")
}

/// Checkpoints in memory: for `simulate` and tests. Per mapping, then per shard in a hash
/// map, each shard's checkpoint in its own slot that its shard task holds and saves into
/// (`slot`): every invocation saves one, and at 10,000 shards hashing the shard id and
/// comparing it with the stored (cold) one was 4% of a simulation. Before, a map keyed by
/// freshly allocated `(mapping, shard)` pairs was 6%. Hashed with foldhash: SipHash of the
/// shard id was most of what was left of a save.
#[derive(Default)]
pub struct MemoryStore {
    checkpoints: Mutex<foldhash::HashMap<String, foldhash::HashMap<ShardId, CheckpointSlot>>>,
    meta: Mutex<BTreeMap<String, String>>,
}

/// The slot's checkpoint, locked (a poisoned lock still holds the last checkpoint saved).
pub fn lock_slot(slot: &CheckpointSlot) -> std::sync::MutexGuard<'_, Option<Checkpoint>> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    /// The shard's slot, made empty when the shard has none yet.
    fn slot_of(&self, mapping: &str, shard: &ShardId) -> Result<CheckpointSlot, StoreError> {
        let mut checkpoints = self
            .checkpoints
            .lock()
            .map_err(|e| StoreError(e.to_string()))?;
        let shards = match checkpoints.get_mut(mapping) {
            Some(shards) => shards,
            None => checkpoints.entry(mapping.to_string()).or_default(),
        };
        Ok(match shards.get(shard) {
            Some(slot) => slot.clone(),
            None => shards.entry(shard.clone()).or_default().clone(),
        })
    }
}

impl CheckpointStore for MemoryStore {
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError> {
        let checkpoints = self
            .checkpoints
            .lock()
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(checkpoints
            .get(mapping)
            .into_iter()
            .flatten()
            .filter_map(|(shard, slot)| Some((shard.clone(), lock_slot(slot).clone()?)))
            .collect())
    }

    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        checkpoint.store_in(&mut lock_slot(&self.slot_of(mapping, shard)?));
        Ok(())
    }

    fn slot(&self, mapping: &str, shard: &ShardId) -> Option<CheckpointSlot> {
        self.slot_of(mapping, shard).ok()
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .lock()
            .map_err(|e| StoreError(e.to_string()))?
            .get(key)
            .cloned())
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.meta
            .lock()
            .map_err(|e| StoreError(e.to_string()))?
            .insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// A shard task still holding a slot of the mapping saves into a slot the store no
    /// longer has: nothing of the mapping comes back.
    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError> {
        let forgotten = self
            .checkpoints
            .lock()
            .map_err(|e| StoreError(e.to_string()))?
            .remove(mapping);
        for slot in forgotten.iter().flat_map(|shards| shards.values()) {
            *lock_slot(slot) = None;
        }
        let prefix = paused_prefix(mapping);
        self.meta
            .lock()
            .map_err(|e| StoreError(e.to_string()))?
            .retain(|key, _| !key.starts_with(&prefix));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_a_mapping_drops_its_checkpoints_and_pauses_and_keeps_the_others() {
        let store = MemoryStore::default();
        let shard = ShardId("shardId-000000000000".into());
        let at = Checkpoint::After(SequenceNumber("5".into()));
        for mapping in ["a", "ab"] {
            store.save(mapping, &shard, &at).unwrap();
            store.set_paused(mapping, &shard, true).unwrap();
        }
        store.forget_mapping("a").unwrap();
        assert!(store.load_all("a").unwrap().is_empty());
        assert!(!store.is_paused("a", &shard).unwrap());
        assert_eq!(store.load_all("ab").unwrap().get(&shard), Some(&at));
        assert!(store.is_paused("ab", &shard).unwrap());
    }

    #[test]
    fn a_checkpoint_saved_through_its_slot_is_the_one_the_store_loads() {
        let store = MemoryStore::default();
        let shard = ShardId("shardId-000000000001".into());
        let slot = store.slot("m", &shard).expect("memory hands out slots");
        assert!(store.load_all("m").unwrap().is_empty(), "no checkpoint yet");
        let after = |seq: &str| Checkpoint::After(SequenceNumber(seq.into()));
        after("41").store_in(&mut slot.lock().unwrap());
        assert_eq!(store.load_all("m").unwrap().get(&shard), Some(&after("41")));
        // `save` and the slot are the same checkpoint, whichever writes last.
        store.save("m", &shard, &after("42")).unwrap();
        assert_eq!(*slot.lock().unwrap(), Some(after("42")));
        Checkpoint::ShardEnd.store_in(&mut slot.lock().unwrap());
        assert_eq!(
            store.load_all("m").unwrap().get(&shard),
            Some(&Checkpoint::ShardEnd)
        );
        // Forgotten, the mapping's slots are emptied and no longer the store's.
        store.forget_mapping("m").unwrap();
        assert_eq!(*slot.lock().unwrap(), None);
        after("43").store_in(&mut slot.lock().unwrap());
        assert!(store.load_all("m").unwrap().is_empty());
    }

    #[test]
    fn every_checkpoint_survives_its_stored_form() {
        for checkpoint in [
            Checkpoint::After(SequenceNumber(
                "49590338271490256608559692538361571095921575989136588898".into(),
            )),
            Checkpoint::ShardEnd,
            Checkpoint::At(SequenceNumber("7".into())),
            Checkpoint::AtTimestamp(1_700_000_000_000),
        ] {
            assert_eq!(Checkpoint::decode(&checkpoint.encode()), checkpoint);
        }
    }
}
