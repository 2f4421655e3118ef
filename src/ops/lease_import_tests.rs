//! The import on the in-memory lease table: every case of a shard's lease (missing, free,
//! held, with a checkpoint, taken or created meanwhile, a table failing mid-way).

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::coordination::memory::MemoryLeaseTable;
use crate::model::SequenceNumber;

fn after(seq: &str) -> Checkpoint {
    Checkpoint::After(SequenceNumber(seq.into()))
}

fn position(shard: &str, seq: &str, paused: bool) -> Position {
    Position {
        shard_id: ShardId(shard.into()),
        checkpoint: after(seq),
        paused,
    }
}

async fn row(table: &dyn LeaseTable, shard: &str) -> Lease {
    table
        .get(&lease_key("m", &ShardId(shard.into())))
        .await
        .expect("get")
        .expect("a lease")
}

/// A lease of `shard` in the table, with `checkpoint`, held by `owner` if given.
async fn existing(
    table: &MemoryLeaseTable,
    shard: &str,
    checkpoint: Option<Checkpoint>,
    owner: Option<&str>,
) {
    let mut lease = Lease::new("m", ShardId(shard.into()), vec![ShardId("parent".into())]);
    lease.checkpoint = checkpoint;
    assert!(table.create(&lease).await.expect("create"));
    if let Some(owner) = owner {
        table
            .take(&lease.key(), 0, owner, Some("http://127.0.0.1:9401"))
            .await
            .expect("take");
    }
}

async fn import_one(table: &dyn LeaseTable, position: Position, overwrite: bool) -> Outcome {
    let reports = import_mapping(table, "m", &[position], overwrite).await;
    reports.into_iter().next().expect("one report").outcome
}

#[tokio::test]
async fn a_missing_lease_is_created_with_the_checkpoint_and_the_pause_and_no_owner() {
    let table = MemoryLeaseTable::default();
    let outcome = import_one(&table, position("s-1", "100", true), false).await;
    assert_eq!(outcome, Outcome::Imported { created: true });
    let lease = row(&table, "s-1").await;
    assert_eq!(lease.checkpoint, Some(after("100")));
    assert_eq!(lease.owner, None);
    assert!(lease.paused);
    assert!(lease.parent_shard_ids.is_empty());
}

#[tokio::test]
async fn a_free_lease_is_taken_as_the_import_written_and_handed_back() {
    let table = MemoryLeaseTable::default();
    existing(&table, "s-1", None, None).await;
    let outcome = import_one(&table, position("s-1", "100", true), false).await;
    assert_eq!(outcome, Outcome::Imported { created: false });
    let lease = row(&table, "s-1").await;
    assert_eq!(lease.checkpoint, Some(after("100")));
    assert_eq!(lease.owner, None, "handed back");
    assert_eq!(lease.counter, 2, "taken, then released");
    assert!(lease.paused);
    assert_eq!(lease.parent_shard_ids, vec![ShardId("parent".into())]);
}

#[tokio::test]
async fn a_lease_a_worker_holds_is_refused_and_left_as_it_was() {
    let table = MemoryLeaseTable::default();
    existing(&table, "s-1", Some(after("7")), Some("w-1")).await;
    let before = row(&table, "s-1").await;
    for overwrite in [false, true] {
        let Outcome::Refused(why) =
            import_one(&table, position("s-1", "100", false), overwrite).await
        else {
            panic!("a held lease is refused");
        };
        assert!(
            why.starts_with("held by worker w-1: its position is live"),
            "{why}"
        );
    }
    assert_eq!(row(&table, "s-1").await, before);
}

#[tokio::test]
async fn a_lease_with_a_checkpoint_is_skipped_unless_overwrite() {
    let table = MemoryLeaseTable::default();
    existing(&table, "s-1", Some(after("7")), None).await;
    let outcome = import_one(&table, position("s-1", "100", false), false).await;
    assert_eq!(
        outcome,
        Outcome::Skipped("the lease has checkpoint 7 already (--overwrite replaces it)".into())
    );
    assert_eq!(row(&table, "s-1").await.checkpoint, Some(after("7")));
    let outcome = import_one(&table, position("s-1", "100", false), true).await;
    assert_eq!(outcome, Outcome::Imported { created: false });
    assert_eq!(row(&table, "s-1").await.checkpoint, Some(after("100")));
    // The same position again: nothing to do, overwrite or not.
    let outcome = import_one(&table, position("s-1", "100", false), true).await;
    assert_eq!(
        outcome,
        Outcome::Skipped("the lease is at 100 already".into())
    );
}

/// What goes wrong, and where.
#[derive(Clone, Copy)]
enum Fault {
    /// A worker takes the lease between the import's read and its take.
    TakenMeanwhile,
    /// A worker creates the lease between the import's read and its create.
    CreatedMeanwhile,
    /// The checkpoint write fails.
    CheckpointUnavailable,
}

/// The in-memory table with one fault.
struct Faulty {
    inner: MemoryLeaseTable,
    fault: Fault,
}

#[async_trait]
impl LeaseTable for Faulty {
    async fn prepare(&self) -> Result<(), TableError> {
        self.inner.prepare().await
    }
    async fn list(&self) -> Result<Vec<Lease>, TableError> {
        self.inner.list().await
    }
    async fn create(&self, lease: &Lease) -> Result<bool, TableError> {
        if let Fault::CreatedMeanwhile = self.fault {
            self.inner.create(lease).await?;
        }
        self.inner.create(lease).await
    }
    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError> {
        if let Fault::TakenMeanwhile = self.fault {
            self.inner.take(key, counter, "w-2", None).await?;
        }
        self.inner.take(key, counter, owner, admin_url).await
    }
    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError> {
        self.inner.renew(key, holder).await
    }
    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError> {
        if let Fault::CheckpointUnavailable = self.fault {
            return Err(TableError::Unavailable("connection reset".into()));
        }
        self.inner.checkpoint(key, holder, checkpoint).await
    }
    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError> {
        self.inner.release(key, holder).await
    }
    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError> {
        self.inner.set_paused(key, paused).await
    }
    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        match self.fault {
            Fault::CreatedMeanwhile => Ok(None),
            _ => self.inner.get(key).await,
        }
    }
}

#[tokio::test]
async fn a_lease_taken_or_created_meanwhile_is_left_to_the_worker() {
    let taken = Faulty {
        inner: MemoryLeaseTable::default(),
        fault: Fault::TakenMeanwhile,
    };
    existing(&taken.inner, "s-1", None, None).await;
    let Outcome::Refused(why) = import_one(&taken, position("s-1", "100", false), false).await
    else {
        panic!("refused");
    };
    assert!(
        why.starts_with("a worker took the lease meanwhile"),
        "{why}"
    );
    let lease = row(&taken.inner, "s-1").await;
    assert_eq!(
        (lease.owner.as_deref(), lease.checkpoint),
        (Some("w-2"), None)
    );

    let created = Faulty {
        inner: MemoryLeaseTable::default(),
        fault: Fault::CreatedMeanwhile,
    };
    let outcome = import_one(&created, position("s-1", "100", false), false).await;
    assert_eq!(
        outcome,
        Outcome::Skipped("a worker created the lease meanwhile: run the import again".into())
    );
}

#[tokio::test]
async fn a_failed_write_is_reported_and_the_lease_still_handed_back() {
    let table = Faulty {
        inner: MemoryLeaseTable::default(),
        fault: Fault::CheckpointUnavailable,
    };
    existing(&table.inner, "s-1", None, None).await;
    let outcome = import_one(&table, position("s-1", "100", false), false).await;
    assert_eq!(
        outcome,
        Outcome::Failed("lease table unavailable: connection reset".into())
    );
    let lease = row(&table.inner, "s-1").await;
    assert_eq!((lease.owner, lease.checkpoint), (None, None));
}

#[tokio::test]
async fn the_report_has_one_line_per_shard_and_a_total() {
    let table = Arc::new(MemoryLeaseTable::default());
    existing(&table, "s-2", Some(after("7")), None).await;
    existing(&table, "s-3", None, Some("w-1")).await;
    existing(&table, "s-4", None, None).await;
    let positions = [
        position("s-1", "100", true),
        position("s-2", "200", false),
        position("s-3", "300", false),
        Position {
            shard_id: ShardId("s-4".into()),
            checkpoint: Checkpoint::ShardEnd,
            paused: false,
        },
    ];
    let reports = import_mapping(table.as_ref(), "m", &positions, false).await;
    let lines: Vec<String> = reports.iter().map(line).collect();
    assert_eq!(lines[0], "m s-1: imported 100 (new lease, paused)");
    assert_eq!(
        lines[1],
        "m s-2: skipped: the lease has checkpoint 7 already (--overwrite replaces it)"
    );
    assert!(
        lines[2].starts_with("m s-3: refused: held by worker w-1"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "m s-4: imported SHARD_END (into the free lease)");
    assert_eq!(
        total(&reports),
        "total: 2 imported, 1 skipped, 1 refused, 0 failed"
    );
    let failed = ShardReport {
        mapping: "m".into(),
        position: position("s-5", "1", false),
        outcome: Outcome::Failed("boom".into()),
    };
    assert_eq!(line(&failed), "m s-5: failed: boom");
}
