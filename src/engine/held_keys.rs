//! The ordering keys a shard's lanes hold (ParallelizationFactor > 1): for each key, how
//! many of its records are in flight and not yet resolved. A batch holds its records' keys
//! when it is dispatched; a lane releases each record's key as the record is resolved
//! (succeeded or discarded), so while a batch retries only the keys of its unresolved
//! records wait (with bisect, eventually just the failing record's key), and the shard
//! is woken to cut batches for the keys that came free.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::batcher::{KeyCounts, KeySet};

#[derive(Default)]
pub struct HeldKeys {
    counts: Mutex<KeyCounts>,
    released: Notify,
}

impl HeldKeys {
    fn counts(&self) -> MutexGuard<'_, KeyCounts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A batch with these records' keys was dispatched.
    pub fn hold(&self, keys: &[u64]) {
        let mut counts = self.counts();
        for key in keys {
            *counts.entry(*key).or_default() += 1;
        }
    }

    /// These records are resolved; wakes the shard if a key came free.
    pub fn release(&self, keys: &[u64]) {
        let mut freed = false;
        let mut counts = self.counts();
        for key in keys {
            if let Some(count) = counts.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(key);
                    freed = true;
                }
            }
        }
        drop(counts);
        if freed {
            self.released.notify_one();
        }
    }

    /// The keys held now.
    pub fn set(&self) -> KeySet {
        self.counts().keys().copied().collect()
    }

    /// Forgets every hold (a rewind abandons the lanes' batches).
    pub fn clear(&self) {
        self.counts().clear();
    }

    /// Completes when a key has come free since the last call.
    pub async fn released(&self) {
        self.released.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_until_every_record_of_it_in_flight_is_resolved() {
        let held = HeldKeys::default();
        held.hold(&[1, 2, 1]);
        assert_eq!(held.set(), KeySet::from_iter([1, 2]));
        held.release(&[1]);
        assert_eq!(
            held.set(),
            KeySet::from_iter([1, 2]),
            "one record of key 1 is left"
        );
        held.release(&[2, 1]);
        assert!(held.set().is_empty());
        held.release(&[3]);
        assert!(
            held.set().is_empty(),
            "releasing a key not held is harmless"
        );
    }

    #[tokio::test]
    async fn a_freed_key_wakes_the_shard() {
        let held = HeldKeys::default();
        held.hold(&[7]);
        held.release(&[7]);
        tokio::time::timeout(std::time::Duration::from_secs(1), held.released())
            .await
            .expect("woken");
    }
}
