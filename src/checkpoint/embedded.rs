//! The embedded on-disk checkpoint store (redb), the default of `esm-sim run`.
//!
//! One database file under the state directory; one table of checkpoints keyed by
//! `mapping \0 shard`, one of named values. Every save is its own transaction, but only
//! one commit per `DURABLE_EVERY` is made durable (fsync), plus one at `flush` on shutdown:
//! an fsync per batch costs milliseconds and throttled a busy daemon. A crash (not a clean
//! stop) can so lose up to that much of checkpoint progress, which delivers those batches
//! again after the restart: at-least-once, never a skip.

use std::collections::BTreeMap;
use std::path::Path;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::{Checkpoint, CheckpointStore, StoreError};
use crate::model::ShardId;

const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

pub struct EmbeddedStore {
    db: Database,
    /// When the last durable commit was made.
    last_durable: Mutex<Instant>,
}

/// At most this long between durable commits.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn key(mapping: &str, shard: &ShardId) -> String {
    format!("{mapping}\0{shard}")
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = Database::create(path)
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(CHECKPOINTS).map_err(err)?;
        txn.open_table(META).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(EmbeddedStore {
            db,
            last_durable: Mutex::new(Instant::now()),
        })
    }

    fn put(
        &self,
        table: TableDefinition<&str, &str>,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        let mut last_durable = self.last_durable.lock().unwrap_or_else(|p| p.into_inner());
        let durable = last_durable.elapsed() >= DURABLE_EVERY;
        if !durable {
            txn.set_durability(Durability::None).map_err(err)?;
        }
        txn.open_table(table)
            .map_err(err)?
            .insert(key, value)
            .map_err(err)?;
        txn.commit().map_err(err)?;
        if durable {
            *last_durable = Instant::now();
        }
        Ok(())
    }
}

impl CheckpointStore for EmbeddedStore {
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(CHECKPOINTS).map_err(err)?;
        let prefix = format!("{mapping}\0");
        let mut out = BTreeMap::new();
        for entry in table.range(prefix.as_str()..).map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let Some(shard) = k.value().strip_prefix(&prefix) else {
                break;
            };
            out.insert(ShardId(shard.to_string()), Checkpoint::decode(v.value()));
        }
        Ok(out)
    }

    fn save(
        &self,
        mapping: &str,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        self.put(CHECKPOINTS, &key(mapping, shard), &checkpoint.encode())
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(META).map_err(err)?;
        Ok(table.get(key).map_err(err)?.map(|v| v.value().to_string()))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.put(META, key, value)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // An empty durable commit makes every earlier commit durable.
        let txn = self.db.begin_write().map_err(err)?;
        txn.commit().map_err(err)?;
        *self.last_durable.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    #[test]
    fn checkpoints_survive_reopening_and_stay_separate_per_mapping() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/checkpoints.redb");
        let shard = ShardId("shardId-000000000001".into());
        {
            let store = EmbeddedStore::open(&path).expect("open");
            store
                .save("a", &shard, &Checkpoint::After(SequenceNumber("42".into())))
                .expect("save");
            store
                .save("b", &shard, &Checkpoint::ShardEnd)
                .expect("save");
            store
                .save("a", &shard, &Checkpoint::After(SequenceNumber("43".into())))
                .expect("save");
            store.set_meta("world", "1").expect("meta");
        }
        let store = EmbeddedStore::open(&path).expect("reopen");
        let a = store.load_all("a").expect("load");
        assert_eq!(
            a.get(&shard),
            Some(&Checkpoint::After(SequenceNumber("43".into())))
        );
        assert_eq!(a.len(), 1);
        assert_eq!(
            store.load_all("b").expect("load").get(&shard),
            Some(&Checkpoint::ShardEnd)
        );
        assert!(store.load_all("c").expect("load").is_empty());
        assert_eq!(store.get_meta("world").expect("meta").as_deref(), Some("1"));
        assert_eq!(store.get_meta("other").expect("meta"), None);
    }

    #[test]
    fn saves_between_durable_commits_are_readable_at_once_and_durable_after_a_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        let shard = ShardId("shardId-000000000000".into());
        {
            let store = EmbeddedStore::open(&path).expect("open");
            for n in 0..100 {
                store
                    .save(
                        "m",
                        &shard,
                        &Checkpoint::After(SequenceNumber(n.to_string())),
                    )
                    .expect("save");
                let read = store.load_all("m").expect("load");
                assert_eq!(
                    read.get(&shard),
                    Some(&Checkpoint::After(SequenceNumber(n.to_string())))
                );
            }
            store.flush().expect("flush");
        }
        let store = EmbeddedStore::open(&path).expect("reopen");
        assert_eq!(
            store.load_all("m").expect("load").get(&shard),
            Some(&Checkpoint::After(SequenceNumber("99".into())))
        );
    }
}
