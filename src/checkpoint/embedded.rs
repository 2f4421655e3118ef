//! The embedded on-disk checkpoint store (redb), the default of `esm-sim run`.
//!
//! One database file under the state directory; one table of checkpoints keyed by
//! `mapping \0 shard`, one of named values. Every save is its own transaction, committed
//! without an fsync (an fsync per batch costs milliseconds and throttled a busy daemon);
//! redb keeps such commits readable at once but drops them on a crash unless a durable
//! commit follows. Durability is bounded in time, not only in traffic: a flusher thread
//! makes every save durable at most `flush_after` after it was made, idle or not, and at
//! once when a shard asks (`flush_soon`: it went idle) or at `flush` (shutdown). So a
//! crash re-delivers at most the batches checkpointed in the last `flush_after`: at least
//! once, never a skip. Named values (simulated world clocks, operator pauses) are rare
//! and made durable as they are written.
//!
//! The flusher is a plain thread, not a tokio task: an fsync blocks, and the store must
//! keep its promise whatever the runtime is doing (a paused test clock included).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::{Checkpoint, CheckpointStore, StoreError};
use crate::model::ShardId;

const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

pub struct EmbeddedStore {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// What the store and its flusher thread share.
struct Shared {
    db: Database,
    /// Longest time a save stays non-durable; zero: every save is durable at once.
    flush_after: Duration,
    state: Mutex<FlushState>,
    wake: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// When the oldest save that is not durable yet was committed.
    dirty_since: Option<Instant>,
    /// A shard went idle: flush now rather than at the deadline.
    urgent: bool,
    /// The store is closing: the flusher ends.
    stop: bool,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn key(mapping: &str, shard: &ShardId) -> String {
    format!("{mapping}\0{shard}")
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory; saves become durable
    /// at most `flush_after` after they are made.
    pub fn open(path: &Path, flush_after: Duration) -> Result<Self, StoreError> {
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
        let shared = Arc::new(Shared {
            db,
            flush_after,
            state: Mutex::new(FlushState::default()),
            wake: Condvar::new(),
        });
        let flusher = if flush_after.is_zero() {
            None
        } else {
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name("checkpoint-flusher".into())
                .spawn(move || shared.run_flusher())
                .map_err(|e| StoreError(format!("cannot start the checkpoint flusher: {e}")))?;
            Some(thread)
        };
        Ok(EmbeddedStore { shared, flusher })
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(
        &self,
        table: TableDefinition<&str, &str>,
        key: &str,
        value: &str,
        durable: bool,
    ) -> Result<(), StoreError> {
        let durable = durable || self.flush_after.is_zero();
        let mut txn = self.db.begin_write().map_err(err)?;
        if !durable {
            txn.set_durability(Durability::None).map_err(err)?;
        }
        txn.open_table(table)
            .map_err(err)?
            .insert(key, value)
            .map_err(err)?;
        txn.commit().map_err(err)?;
        if !durable {
            // Marked after the commit: a flush that starts after this mark covers it.
            let mut state = self.state();
            if state.dirty_since.is_none() {
                state.dirty_since = Some(Instant::now());
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Makes every commit so far durable: an empty durable commit does that in redb.
    fn flush(&self) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            state.dirty_since = None;
            state.urgent = false;
        }
        let result = self
            .db
            .begin_write()
            .map_err(err)
            .and_then(|txn| txn.commit().map_err(err));
        if result.is_err() {
            // Still not durable: try again at the next deadline.
            self.state().dirty_since.get_or_insert_with(Instant::now);
        }
        result
    }

    /// The flusher thread: sleeps until the oldest non-durable save reaches its deadline
    /// (or a shard asks for a flush), then flushes; ends when the store closes.
    fn run_flusher(&self) {
        let mut state = self.state();
        loop {
            if state.stop {
                return;
            }
            let Some(since) = state.dirty_since else {
                state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let now = Instant::now();
            let due = since + self.flush_after;
            if !state.urgent && now < due {
                state = self
                    .wake
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            drop(state);
            if let Err(error) = self.flush() {
                tracing::error!(%error, "checkpoints not made durable; retrying at the next deadline");
            }
            state = self.state();
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        if self.shared.state().dirty_since.is_some() {
            if let Err(error) = self.shared.flush() {
                tracing::error!(%error, "checkpoints not made durable at close");
            }
        }
    }
}

impl CheckpointStore for EmbeddedStore {
    fn load_all(&self, mapping: &str) -> Result<BTreeMap<ShardId, Checkpoint>, StoreError> {
        let txn = self.shared.db.begin_read().map_err(err)?;
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
        self.shared.put(
            CHECKPOINTS,
            &key(mapping, shard),
            &checkpoint.encode(),
            false,
        )
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let txn = self.shared.db.begin_read().map_err(err)?;
        let table = txn.open_table(META).map_err(err)?;
        Ok(table.get(key).map_err(err)?.map(|v| v.value().to_string()))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.shared.put(META, key, value, true)
    }

    fn forget_mapping(&self, mapping: &str) -> Result<(), StoreError> {
        let txn = self.shared.db.begin_write().map_err(err)?;
        for (table, prefix) in [
            (CHECKPOINTS, key(mapping, &ShardId(String::new()))),
            (META, super::paused_prefix(mapping)),
        ] {
            let mut table = txn.open_table(table).map_err(err)?;
            table
                .retain(|key, _| !key.starts_with(prefix.as_str()))
                .map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.shared.flush()
    }

    fn flush_soon(&self) {
        let mut state = self.shared.state();
        if state.dirty_since.is_some() && !state.urgent {
            state.urgent = true;
            self.shared.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    const SECOND: Duration = Duration::from_secs(1);
    /// Set in the child process of the crash tests: what it does before it aborts.
    const CRASH_CHILD: &str = "ESM_SIM_STORE_CRASH_CHILD";

    fn after(n: u32) -> Checkpoint {
        Checkpoint::After(SequenceNumber(n.to_string()))
    }

    /// Runs one test of this binary again as a child process with `CRASH_CHILD=what`
    /// and `path`; the child saves, then aborts (no destructor, no final flush: a crash).
    fn crash_child(test: &str, what: &str, path: &Path) {
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD, what)
            .env("ESM_SIM_STORE_CRASH_PATH", path)
            .status()
            .expect("child runs");
        assert!(!status.success(), "the child crashed (aborted): {status:?}");
    }

    /// In a crash child: saves checkpoints 1..=100 of shard `s` as `what` says, then
    /// aborts. Returns (does nothing) in the parent.
    fn act_as_crash_child() {
        let Ok(what) = std::env::var(CRASH_CHILD) else {
            return;
        };
        let path = std::env::var("ESM_SIM_STORE_CRASH_PATH").expect("path");
        let shard = ShardId("s".into());
        let flush_after = match what.as_str() {
            "idle-past-the-deadline" => Duration::from_millis(200),
            _ => Duration::from_secs(60),
        };
        let store = EmbeddedStore::open(Path::new(&path), flush_after).expect("open");
        for n in 1..=100 {
            store.save("m", &shard, &after(n)).expect("save");
        }
        match what.as_str() {
            "idle-past-the-deadline" => std::thread::sleep(Duration::from_millis(600)),
            "flush-soon" => {
                store.flush_soon();
                std::thread::sleep(Duration::from_millis(300));
            }
            _ => {}
        }
        std::process::abort();
    }

    fn stored(path: &Path) -> Option<Checkpoint> {
        let store = EmbeddedStore::open(path, SECOND).expect("reopen");
        store
            .load_all("m")
            .expect("load")
            .remove(&ShardId("s".into()))
    }

    #[test]
    fn a_save_is_durable_after_the_flush_deadline_even_if_no_save_follows_it() {
        act_as_crash_child();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        crash_child(
            "checkpoint::embedded::tests::a_save_is_durable_after_the_flush_deadline_even_if_no_save_follows_it",
            "idle-past-the-deadline",
            &path,
        );
        assert_eq!(stored(&path), Some(after(100)));
    }

    #[test]
    fn flush_soon_makes_the_saves_durable_long_before_the_deadline() {
        act_as_crash_child();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        crash_child(
            "checkpoint::embedded::tests::flush_soon_makes_the_saves_durable_long_before_the_deadline",
            "flush-soon",
            &path,
        );
        assert_eq!(stored(&path), Some(after(100)));
    }

    #[test]
    fn saves_not_yet_flushed_are_lost_in_a_crash_so_the_flush_tests_can_fail() {
        act_as_crash_child();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        crash_child(
            "checkpoint::embedded::tests::saves_not_yet_flushed_are_lost_in_a_crash_so_the_flush_tests_can_fail",
            "no-wait",
            &path,
        );
        assert_eq!(stored(&path), None, "nothing was durable at the crash");
    }

    #[test]
    fn with_a_zero_flush_time_every_save_is_durable_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        let store = EmbeddedStore::open(&path, Duration::ZERO).expect("open");
        assert!(store.flusher.is_none(), "no flusher thread is needed");
        store
            .save("m", &ShardId("s".into()), &after(1))
            .expect("save");
        assert!(
            store.shared.state().dirty_since.is_none(),
            "nothing left for a flush"
        );
    }

    #[test]
    fn a_forgotten_mapping_stays_forgotten_after_reopening_and_the_others_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoints.redb");
        let shard = ShardId("shardId-000000000001".into());
        let at = Checkpoint::After(SequenceNumber("42".into()));
        {
            let store = EmbeddedStore::open(&path, SECOND).expect("open");
            for mapping in ["a", "ab"] {
                store.save(mapping, &shard, &at).expect("save");
                store.set_paused(mapping, &shard, true).expect("pause");
            }
            store.forget_mapping("a").expect("forget");
        }
        let store = EmbeddedStore::open(&path, SECOND).expect("reopen");
        assert!(store.load_all("a").expect("load").is_empty());
        assert!(!store.is_paused("a", &shard).expect("paused"));
        assert_eq!(store.load_all("ab").expect("load").get(&shard), Some(&at));
        assert!(store.is_paused("ab", &shard).expect("paused"));
    }

    #[test]
    fn checkpoints_survive_reopening_and_stay_separate_per_mapping() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/checkpoints.redb");
        let shard = ShardId("shardId-000000000001".into());
        {
            let store = EmbeddedStore::open(&path, SECOND).expect("open");
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
        let store = EmbeddedStore::open(&path, SECOND).expect("reopen");
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
            let store = EmbeddedStore::open(&path, SECOND).expect("open");
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
        let store = EmbeddedStore::open(&path, SECOND).expect("reopen");
        assert_eq!(
            store.load_all("m").expect("load").get(&shard),
            Some(&Checkpoint::After(SequenceNumber("99".into())))
        );
    }
}
