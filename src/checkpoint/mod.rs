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
use std::sync::Mutex;

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
        match self {
            Checkpoint::After(seq) => seq.0.clone(),
            Checkpoint::ShardEnd => SHARD_END.to_string(),
            Checkpoint::At(seq) => format!("{AT_SEQUENCE}{}", seq.0),
            Checkpoint::AtTimestamp(ms) => format!("{AT_TIMESTAMP}{ms}"),
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

pub trait CheckpointStore: Send + Sync {
    /// Every checkpoint of a mapping.
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError>;
    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError>;
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
/// map updated in place, because every invocation saves one: at 10,000 shards a map keyed
/// by freshly allocated `(mapping, shard)` pairs was 6% of a simulation. Hashed with
/// foldhash: SipHash of the shard id was most of what was left of a save.
#[derive(Default)]
pub struct MemoryStore {
    checkpoints: Mutex<foldhash::HashMap<String, foldhash::HashMap<ShardId, Checkpoint>>>,
    meta: Mutex<BTreeMap<String, String>>,
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
            .map(|(shard, checkpoint)| (shard.clone(), checkpoint.clone()))
            .collect())
    }

    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let mut checkpoints = self
            .checkpoints
            .lock()
            .map_err(|e| StoreError(e.to_string()))?;
        let shards = match checkpoints.get_mut(mapping) {
            Some(shards) => shards,
            None => checkpoints.entry(mapping.to_string()).or_default(),
        };
        match (shards.get_mut(shard), checkpoint) {
            // The usual save: the sequence number's text is copied into the held one.
            (Some(Checkpoint::After(held)), Checkpoint::After(next)) => held.0.clone_from(&next.0),
            (Some(held), _) => *held = checkpoint.clone(),
            (None, _) => {
                shards.insert(shard.clone(), checkpoint.clone());
            }
        }
        Ok(())
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

    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError> {
        self.checkpoints
            .lock()
            .map_err(|e| StoreError(e.to_string()))?
            .remove(mapping);
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
