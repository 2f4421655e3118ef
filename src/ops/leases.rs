//! `esm-sim leases import`: the one-shot move of a config's mappings from the embedded
//! store (`<state_dir>/checkpoints.redb`) into the `[coordination]` DynamoDB lease table,
//! keeping every shard's position (the rules per shard are `lease_import`'s).
//!
//! The daemon must be stopped first, so the positions read are final: the embedded store
//! is locked while `esm-sim run` has it open, and the command says so rather than read a
//! store that is still moving. It prints one line per shard and a total, and fails when a
//! shard was refused (a worker holds it) or the table failed, so a script notices an
//! incomplete move; running it again is safe (imported shards are skipped).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};

use super::block_on;
use super::lease_import::{import_mapping, line, total, Outcome, Position};
use crate::aws::AwsFactory;
use crate::checkpoint::embedded::EmbeddedStore;
use crate::checkpoint::CheckpointStore;
use crate::config::{self, Config, LeaseTableSettings};
use crate::coordination::dynamodb::DynamodbLeaseTable;
use crate::coordination::table::LeaseTable;

/// The embedded store's file under the state directory, as `esm-sim run` names it.
pub const STORE_FILE: &str = "checkpoints.redb";

/// `esm-sim leases`.
#[derive(Debug, Args)]
pub struct LeasesArgs {
    #[command(subcommand)]
    command: LeasesCommand,
}

#[derive(Debug, Subcommand)]
enum LeasesCommand {
    /// Copy every shard's checkpoint from the embedded store into the [coordination]
    /// lease table (stop the daemon first).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Config whose state_dir holds the embedded store and whose [coordination] names the
    /// lease table. Default: ./config.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replace the checkpoint of a free lease that has one already.
    #[arg(long)]
    overwrite: bool,
}

/// A mapping's positions in the embedded store.
pub type MappingPositions = (String, Vec<Position>);

impl LeasesArgs {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            LeasesCommand::Import(args) => args.run(),
        }
    }
}

impl ImportArgs {
    fn run(self) -> anyhow::Result<()> {
        let (config, _) =
            config::load(self.config.as_deref()).map_err(|e| anyhow!("invalid config:\n{e}"))?;
        let settings = lease_settings(&config)?;
        let names: Vec<String> = config.mappings.iter().map(|m| m.name.clone()).collect();
        let positions = read_positions(&config.state_dir.join(STORE_FILE), &names)?;
        let factory = AwsFactory::new(config.aws.endpoint_url.clone(), config.aws.region.clone());
        let not_imported = block_on(async {
            let table = DynamodbLeaseTable::connect(&factory, &settings.table).await;
            table
                .prepare()
                .await
                .map_err(|e| anyhow!("lease table {:?}: {e}", settings.table))?;
            import_all(&table, &positions, self.overwrite, &mut std::io::stdout()).await
        })?;
        if not_imported > 0 {
            bail!("{not_imported} shard(s) not imported (see above); run the import again once they can be");
        }
        Ok(())
    }
}

/// The lease table of `[coordination]`; an error when the config keeps the embedded store.
pub fn lease_settings(config: &Config) -> anyhow::Result<&LeaseTableSettings> {
    config.coordination.lease_table.as_ref().ok_or_else(|| {
        anyhow!("[coordination] store is \"embedded\": the import writes into a DynamoDB lease table, so set store = \"dynamodb\" (and table) in the config first")
    })
}

/// Every position of `mappings` in the embedded store at `path`, which no daemon may have
/// open.
pub fn read_positions(path: &Path, mappings: &[String]) -> anyhow::Result<Vec<MappingPositions>> {
    if !path.is_file() {
        bail!(
            "no embedded store at {}: nothing to import (is state_dir the daemon's?)",
            path.display()
        );
    }
    let store = EmbeddedStore::open(path, Duration::ZERO).map_err(|e| {
        if e.0.contains("Cannot acquire lock") {
            anyhow!(
                "the embedded store {} is open in another process: stop the daemon (`esm-sim run`) using it first, so the positions imported are its last",
                path.display()
            )
        } else {
            anyhow!("{e}")
        }
    })?;
    mappings
        .iter()
        .map(|mapping| {
            let positions = store
                .load_all(mapping)?
                .into_iter()
                .map(|(shard_id, checkpoint)| {
                    let paused = store.is_paused(mapping, &shard_id)?;
                    Ok(Position {
                        shard_id,
                        checkpoint,
                        paused,
                    })
                })
                .collect::<anyhow::Result<Vec<Position>>>()?;
            Ok((mapping.clone(), positions))
        })
        .collect()
}

/// Imports every mapping's positions, printing one line per shard (or per mapping
/// without any) and the total to `out`; the number of shards refused or failed.
pub async fn import_all(
    table: &dyn LeaseTable,
    positions: &[MappingPositions],
    overwrite: bool,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut all = Vec::new();
    for (mapping, shards) in positions {
        if shards.is_empty() {
            writeln!(out, "{mapping}: no checkpoints in the embedded store")?;
            continue;
        }
        for report in import_mapping(table, mapping, shards, overwrite).await {
            writeln!(out, "{}", line(&report))?;
            all.push(report);
        }
    }
    writeln!(out, "{}", total(&all))?;
    Ok(all
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Refused(_) | Outcome::Failed(_)))
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::coordination::lease::Lease;
    use crate::coordination::memory::MemoryLeaseTable;
    use crate::model::{SequenceNumber, ShardId};

    fn after(seq: &str) -> Checkpoint {
        Checkpoint::After(SequenceNumber(seq.into()))
    }

    #[tokio::test]
    async fn the_embedded_stores_positions_and_pauses_reach_the_lease_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STORE_FILE);
        {
            let store = EmbeddedStore::open(&path, Duration::ZERO).expect("open");
            let shard = |n: &str| ShardId(format!("shardId-00000000000{n}"));
            store.save("m", &shard("0"), &after("100")).expect("save");
            store
                .save("m", &shard("1"), &Checkpoint::ShardEnd)
                .expect("save");
            store.set_paused("m", &shard("0"), true).expect("pause");
            store.save("other", &shard("0"), &after("9")).expect("save");
            let error = read_positions(&path, &["m".into()])
                .expect_err("the store is open")
                .to_string();
            assert_eq!(
                error,
                format!("the embedded store {} is open in another process: stop the daemon (`esm-sim run`) using it first, so the positions imported are its last", path.display())
            );
        }
        let positions = read_positions(&path, &["m".into(), "idle".into()]).expect("positions");
        let table = MemoryLeaseTable::default();
        let mut held = Lease::new("m", ShardId("shardId-000000000001".into()), vec![]);
        held.checkpoint = Some(after("5"));
        table.create(&held).await.expect("create");
        table.take(&held.key(), 0, "w-1", None).await.expect("take");
        let mut out = Vec::new();
        let not_imported = import_all(&table, &positions, false, &mut out)
            .await
            .expect("import");
        let text = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "m shardId-000000000000: imported 100 (new lease, paused)"
        );
        assert!(
            lines[1].starts_with("m shardId-000000000001: refused: held by worker w-1"),
            "{text}"
        );
        assert_eq!(lines[2], "idle: no checkpoints in the embedded store");
        assert_eq!(
            lines[3],
            "total: 1 imported, 0 skipped, 1 refused, 0 failed"
        );
        assert_eq!(not_imported, 1);
        let row = table
            .get("m:shardId-000000000000")
            .await
            .expect("get")
            .expect("row");
        assert_eq!((row.checkpoint, row.paused), (Some(after("100")), true));
        assert!(table
            .get("other:shardId-000000000000")
            .await
            .expect("get")
            .is_none());
    }

    #[test]
    fn a_missing_store_and_an_embedded_config_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STORE_FILE);
        let error = read_positions(&path, &[])
            .expect_err("no store")
            .to_string();
        assert!(error.starts_with("no embedded store at "), "{error}");
        assert!(!path.exists(), "the import never creates a store");
        const WORLD: &str = "[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n[[functions]]\nname = \"f\"\n\
            [[mappings]]\nname = \"m\"\nevent_source_arn = \"s\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n";
        let config = config::parse(WORLD, dir.path()).expect("config");
        let error = lease_settings(&config).expect_err("embedded").to_string();
        assert!(error.contains("set store = \"dynamodb\""), "{error}");
        let text = format!("[coordination]\nstore = \"dynamodb\"\n{WORLD}");
        let config = config::parse(&text, dir.path()).expect("config");
        assert_eq!(
            lease_settings(&config).expect("dynamodb").table,
            "esm-sim-leases"
        );
    }
}
