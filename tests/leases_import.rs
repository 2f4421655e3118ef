//! `esm-sim leases import` (the binary) against a DynamoDB lease table on moto: the
//! embedded store's positions and pauses land in new leases, a lease a worker holds is
//! refused (and the command fails), a second run skips what is done and imports what was
//! refused once it is free, and a store the daemon has open is not read.

mod support;

use std::time::Duration;

use esm_sim::aws::AwsFactory;
use esm_sim::checkpoint::embedded::EmbeddedStore;
use esm_sim::checkpoint::{Checkpoint, CheckpointStore};
use esm_sim::coordination::dynamodb::DynamodbLeaseTable;
use esm_sim::coordination::lease::Lease;
use esm_sim::coordination::table::{Holder, LeaseTable};
use esm_sim::model::{SequenceNumber, ShardId};

fn config(table: &str) -> String {
    format!(
        r#"state_dir = "state"

[coordination]
store = "dynamodb"
table = "{table}"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 3

[[functions]]
name = "f"

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "f"
starting_position = "TRIM_HORIZON"
"#
    )
}

fn shard(n: u32) -> ShardId {
    ShardId(format!("shardId-00000000000{n}"))
}

fn after(seq: &str) -> Checkpoint {
    Checkpoint::After(SequenceNumber(seq.into()))
}

async fn row(table: &DynamodbLeaseTable, n: u32) -> Lease {
    table
        .get(&format!("m:{}", shard(n)))
        .await
        .expect("get")
        .expect("a lease")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_positions_move_into_the_lease_table_and_a_live_workers_lease_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = support::unique("esm-import");
    std::fs::write(dir.path().join("config.toml"), config(&name)).expect("config");
    let store_path = dir.path().join("state/checkpoints.redb");
    {
        let store = EmbeddedStore::open(&store_path, Duration::ZERO).expect("store");
        store.save("m", &shard(0), &after("100")).expect("save");
        store.set_paused("m", &shard(0), true).expect("pause");
        store
            .save("m", &shard(1), &Checkpoint::ShardEnd)
            .expect("save");
        store.save("m", &shard(2), &after("300")).expect("save");
    }
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    let table = DynamodbLeaseTable::connect(&factory, &name).await;
    table.prepare().await.expect("prepare");
    let mut live = Lease::new("m", shard(2), vec![]);
    live.checkpoint = Some(after("250"));
    table.create(&live).await.expect("create");
    let held = table
        .take(&live.key(), 0, "w-1", Some("http://127.0.0.1:9401"))
        .await
        .expect("take");

    let args = vec![
        "leases".into(),
        "import".into(),
        "--config".into(),
        "config.toml".into(),
    ];
    let run = support::binary::run_async(dir.path(), args.clone()).await;
    assert!(
        !run.success,
        "a refused shard fails the command: {}",
        run.stdout
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "m shardId-000000000000: imported 100 (new lease, paused)",
            "m shardId-000000000001: imported SHARD_END (new lease)",
        ],
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("m shardId-000000000002: refused: held by worker w-1"),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[3],
        "total: 2 imported, 0 skipped, 1 refused, 0 failed"
    );
    assert!(
        run.stderr.contains("1 shard(s) not imported"),
        "{}",
        run.stderr
    );
    let first = row(&table, 0).await;
    assert_eq!(
        (first.checkpoint, first.paused, first.owner),
        (Some(after("100")), true, None)
    );
    assert_eq!(row(&table, 1).await.checkpoint, Some(Checkpoint::ShardEnd));
    assert_eq!(
        row(&table, 2).await.checkpoint,
        Some(after("250")),
        "the live position stays"
    );

    // The worker hands its lease back; the checkpoint it wrote stays, so only --overwrite
    // moves it, and what was imported is skipped.
    let holder = Holder {
        owner: "w-1",
        counter: held.counter,
    };
    table.release(&live.key(), holder).await.expect("release");
    let run = support::binary::run_async(dir.path(), args.clone()).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("m shardId-000000000002: skipped: the lease has checkpoint 250 already (--overwrite replaces it)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("total: 0 imported, 3 skipped, 0 refused, 0 failed\n"),
        "{}",
        run.stdout
    );
    let mut overwrite = args.clone();
    overwrite.push("--overwrite".into());
    let run = support::binary::run_async(dir.path(), overwrite).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("m shardId-000000000002: imported 300 (into the free lease)"),
        "{}",
        run.stdout
    );
    let moved = row(&table, 2).await;
    assert_eq!((moved.checkpoint, moved.owner), (Some(after("300")), None));

    // A store the daemon has open is not read.
    let _open = EmbeddedStore::open(&store_path, Duration::ZERO).expect("store");
    let run = support::binary::run_async(dir.path(), args).await;
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("is open in another process: stop the daemon (`esm-sim run`) using it first"),
        "{}",
        run.stderr
    );
}
