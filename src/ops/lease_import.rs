//! Moving a mapping from the embedded store to a lease table with its positions
//! (`esm-sim leases import`, issue 12): each shard's checkpoint is written into the
//! shard's lease, never over a live worker's. An explicit one-shot command rather than an
//! automatic import at start-up: a daemon cannot tell whether the embedded store it finds
//! is newer than the table (another worker may have moved the shard on since), and the
//! operator who runs the command can.
//!
//! Per shard: no lease → it is created with the checkpoint and no owner; a free lease is
//! taken as `esm-sim-import`, given the checkpoint and handed back (so the write is fenced
//! like any worker's); a lease a worker holds is refused (its position is live); a lease
//! that has a checkpoint already is skipped unless `overwrite`. An operator's pause comes
//! along with the checkpoint.
//!
//! Parent shard ids: the embedded store does not keep them, so a lease created here has
//! none. That is safe because only a shard with a checkpoint is imported, and a shard has
//! one only once it started, which the lone supervisor allows only after its parents
//! ended; the children not started yet get their leases, with parents, from the daemon's
//! discovery (which never rewrites a row that exists). Pure over the `LeaseTable` seam,
//! so every case is tested on the in-memory table.

use crate::checkpoint::Checkpoint;
use crate::coordination::lease::{lease_key, Lease};
use crate::coordination::table::{Holder, LeaseTable, TableError};
use crate::model::ShardId;

/// The owner the import writes as: any worker seeing it knows who held the lease.
pub const IMPORT_OWNER: &str = "esm-sim-import";

/// A shard's position in the embedded store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub shard_id: ShardId,
    pub checkpoint: Checkpoint,
    /// Paused by an operator.
    pub paused: bool,
}

/// What became of one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The checkpoint is in the lease now; `created`: the lease did not exist.
    Imported { created: bool },
    /// Left as it was, and why.
    Skipped(String),
    /// A worker holds the lease: not overwritten.
    Refused(String),
    /// The table failed.
    Failed(String),
}

/// One shard's line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardReport {
    pub mapping: String,
    pub position: Position,
    pub outcome: Outcome,
}

/// Imports every position of `mapping` into `table`, one shard at a time.
pub async fn import_mapping(
    table: &dyn LeaseTable,
    mapping: &str,
    positions: &[Position],
    overwrite: bool,
) -> Vec<ShardReport> {
    let mut reports = Vec::with_capacity(positions.len());
    for position in positions {
        let outcome = match import_shard(table, mapping, position, overwrite).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(error.to_string()),
        };
        reports.push(ShardReport {
            mapping: mapping.to_string(),
            position: position.clone(),
            outcome,
        });
    }
    reports
}

async fn import_shard(
    table: &dyn LeaseTable,
    mapping: &str,
    position: &Position,
    overwrite: bool,
) -> Result<Outcome, TableError> {
    let key = lease_key(mapping, &position.shard_id);
    let Some(lease) = table.get(&key).await? else {
        let mut lease = Lease::new(mapping, position.shard_id.clone(), Vec::new());
        lease.checkpoint = Some(position.checkpoint.clone());
        lease.paused = position.paused;
        return Ok(if table.create(&lease).await? {
            Outcome::Imported { created: true }
        } else {
            Outcome::Skipped("a worker created the lease meanwhile: run the import again".into())
        });
    };
    if let Some(owner) = &lease.owner {
        return Ok(Outcome::Refused(format!(
            "held by worker {owner}: its position is live and is not overwritten (stop that worker, or import once its lease is handed back)"
        )));
    }
    match &lease.checkpoint {
        Some(current) if *current == position.checkpoint => {
            return Ok(Outcome::Skipped(format!(
                "the lease is at {} already",
                current.encode()
            )))
        }
        Some(current) if !overwrite => {
            return Ok(Outcome::Skipped(format!(
                "the lease has checkpoint {} already (--overwrite replaces it)",
                current.encode()
            )))
        }
        _ => {}
    }
    let row =
        match table.take(&key, lease.counter, IMPORT_OWNER, None).await {
            Ok(row) => row,
            Err(TableError::Conflict) => return Ok(Outcome::Refused(
                "a worker took the lease meanwhile: its position is live and is not overwritten"
                    .into(),
            )),
            Err(error) => return Err(error),
        };
    let holder = Holder {
        owner: IMPORT_OWNER,
        counter: row.counter,
    };
    let written = write_position(table, &key, holder, position).await;
    // Handed back whatever happened: a lease left to the import would wait a lease
    // duration before any worker took it.
    let released = table.release(&key, holder).await;
    written?;
    released?;
    Ok(Outcome::Imported { created: false })
}

/// The checkpoint, then the pause if the shard was paused.
async fn write_position(
    table: &dyn LeaseTable,
    key: &str,
    holder: Holder<'_>,
    position: &Position,
) -> Result<(), TableError> {
    table.checkpoint(key, holder, &position.checkpoint).await?;
    if position.paused {
        table.set_paused(key, true).await?;
    }
    Ok(())
}

/// One report line: `<mapping> <shard>: imported <checkpoint> (...)`, or skipped,
/// refused or failed with why.
pub fn line(report: &ShardReport) -> String {
    let head = format!("{} {}:", report.mapping, report.position.shard_id);
    let checkpoint = report.position.checkpoint.encode();
    let paused = if report.position.paused {
        ", paused"
    } else {
        ""
    };
    match &report.outcome {
        Outcome::Imported { created: true } => {
            format!("{head} imported {checkpoint} (new lease{paused})")
        }
        Outcome::Imported { created: false } => {
            format!("{head} imported {checkpoint} (into the free lease{paused})")
        }
        Outcome::Skipped(why) => format!("{head} skipped: {why}"),
        Outcome::Refused(why) => format!("{head} refused: {why}"),
        Outcome::Failed(why) => format!("{head} failed: {why}"),
    }
}

/// `total: 3 imported, 1 skipped, 1 refused, 0 failed`.
pub fn total(reports: &[ShardReport]) -> String {
    let count =
        |wanted: fn(&Outcome) -> bool| reports.iter().filter(|r| wanted(&r.outcome)).count();
    format!(
        "total: {} imported, {} skipped, {} refused, {} failed",
        count(|o| matches!(o, Outcome::Imported { .. })),
        count(|o| matches!(o, Outcome::Skipped(_))),
        count(|o| matches!(o, Outcome::Refused(_))),
        count(|o| matches!(o, Outcome::Failed(_))),
    )
}

#[cfg(test)]
#[path = "lease_import_tests.rs"]
mod tests;
