//! The DynamoDB lease table against a real server (moto), and proof that it agrees with
//! the in-memory table: each scenario is one async fn over `&dyn LeaseTable`, run against
//! a fresh `MemoryLeaseTable` and a fresh DynamoDB table (a unique name per test). The
//! DynamoDB-only tests cover what memory has no notion of: creating the table, a table of
//! another schema, rows this table cannot read, a table that is not there.
//!
//! Where moto differs from AWS (none of it changes what these tests prove):
//! - moto creates a table ACTIVE at once; AWS takes seconds in CREATING, which `prepare`
//!   waits out by polling DescribeTable. The wait is exercised here only in its first pass.
//! - moto never throttles, so Throttled and Unavailable are covered by the unit tests of
//!   the error classifier (`coordination::dynamodb::error`), not here.
//! - moto accepts any credentials and never answers AccessDenied; a missing table is the
//!   Fatal case tested against the server.
//! - A Scan here fits in one page (AWS pages at 1 MB); the paging rule is unit-tested in
//!   `source::paging`.

mod support;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, StreamViewType, TableStatus};
use esm_sim::aws::AwsFactory;
use esm_sim::checkpoint::Checkpoint;
use esm_sim::coordination::dynamodb::DynamodbLeaseTable;
use esm_sim::coordination::lease::{lease_key, Lease};
use esm_sim::coordination::memory::MemoryLeaseTable;
use esm_sim::coordination::table::{Holder, LeaseTable, TableError};
use esm_sim::model::{SequenceNumber, ShardId};

async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&support::sdk_config(&support::moto_endpoint()).await)
}

/// A prepared lease table of its own on moto, built as `esm-sim run` builds it.
async fn dynamodb_table() -> DynamodbLeaseTable {
    let factory = AwsFactory::new(Some(support::moto_endpoint()), "us-east-1".into());
    let table = DynamodbLeaseTable::connect(&factory, &support::unique("esm-leases")).await;
    table.prepare().await.expect("prepare a new lease table");
    table
}

/// A test running `scenario` on a memory table, then on a DynamoDB table (the output
/// captured with a failure says which one failed).
macro_rules! on_both_tables {
    ($scenario:ident) => {
        #[tokio::test]
        async fn $scenario() {
            println!("on the memory table");
            scenarios::$scenario(&MemoryLeaseTable::default()).await;
            println!("on the DynamoDB table (moto)");
            scenarios::$scenario(&dynamodb_table().await).await;
        }
    };
}

on_both_tables!(every_field_round_trips_through_create_list_and_get);
on_both_tables!(a_take_on_the_right_counter_bumps_it_and_counts_switches);
on_both_tables!(a_take_on_a_stale_counter_or_a_missing_key_conflicts);
on_both_tables!(the_holders_writes_are_fenced_on_owner_and_counter);
on_both_tables!(a_release_frees_the_lease_for_a_peer);
on_both_tables!(pause_needs_the_row_and_leaves_the_counter);
on_both_tables!(of_two_concurrent_takes_exactly_one_wins);

mod scenarios {
    use super::*;

    fn shard(id: &str) -> ShardId {
        ShardId(id.to_string())
    }

    /// Parents in sorted order: DynamoDB stores them as a set, which has none.
    fn held(mapping: &str, id: &str, checkpoint: Option<Checkpoint>) -> Lease {
        Lease {
            owner: Some("worker-a".into()),
            counter: 7,
            checkpoint,
            owner_switches_since_checkpoint: 3,
            paused: true,
            owner_admin_url: Some("http://127.0.0.1:9001".into()),
            ..Lease::new(
                mapping,
                shard(id),
                vec![shard("shardId-000000000001"), shard("shardId-000000000002")],
            )
        }
    }

    /// A free lease, created; its key.
    async fn free(table: &dyn LeaseTable) -> String {
        let lease = Lease::new("orders", shard("shardId-000000000007"), vec![]);
        assert_eq!(table.create(&lease).await, Ok(true));
        lease.key()
    }

    async fn row(table: &dyn LeaseTable, key: &str) -> Lease {
        table.get(key).await.expect("get").expect("the row exists")
    }

    pub async fn every_field_round_trips_through_create_list_and_get(table: &dyn LeaseTable) {
        let mut leases = vec![
            held("orders", "shardId-a", None),
            held("orders", "shardId-b", Some(Checkpoint::ShardEnd)),
            held(
                "orders",
                "shardId-c",
                Some(Checkpoint::After(SequenceNumber("4960".into()))),
            ),
            held(
                "audit",
                "shardId-a",
                Some(Checkpoint::At(SequenceNumber("12".into()))),
            ),
            held(
                "audit",
                "shardId-b",
                Some(Checkpoint::AtTimestamp(1_700_000_000_123)),
            ),
            Lease::new("audit", shard("shardId-c"), vec![]),
        ];
        for lease in &leases {
            assert_eq!(table.create(lease).await, Ok(true), "{}", lease.key());
        }
        // A second create of a key leaves the first row as it was.
        let other = Lease::new("orders", shard("shardId-a"), vec![]);
        assert_eq!(table.create(&other).await, Ok(false));
        for lease in &leases {
            assert_eq!(table.get(&lease.key()).await, Ok(Some(lease.clone())));
        }
        let mut listed = table.list().await.expect("list");
        listed.sort_by_key(Lease::key);
        leases.sort_by_key(Lease::key);
        assert_eq!(listed, leases);
        let missing = lease_key("orders", &shard("shardId-z"));
        assert_eq!(table.get(&missing).await, Ok(None));
    }

    pub async fn a_take_on_the_right_counter_bumps_it_and_counts_switches(table: &dyn LeaseTable) {
        let key = free(table).await;
        let url = "http://127.0.0.1:9001";
        let taken = table
            .take(&key, 0, "worker-a", Some(url))
            .await
            .expect("take");
        assert_eq!(
            (
                taken.owner.as_deref(),
                taken.counter,
                taken.owner_switches_since_checkpoint
            ),
            (Some("worker-a"), 1, 1)
        );
        assert_eq!(taken.owner_admin_url.as_deref(), Some(url));
        assert_eq!(row(table, &key).await, taken);
        // Stolen by a worker without an admin API: its URL is not the old owner's.
        let stolen = table.take(&key, 1, "worker-b", None).await.expect("steal");
        assert_eq!(
            (
                stolen.owner.as_deref(),
                stolen.counter,
                stolen.owner_switches_since_checkpoint
            ),
            (Some("worker-b"), 2, 2)
        );
        assert_eq!(stolen.owner_admin_url, None);
        // Its own expired lease taken back: no switch.
        let back = table
            .take(&key, 2, "worker-b", Some(url))
            .await
            .expect("retake");
        assert_eq!((back.counter, back.owner_switches_since_checkpoint), (3, 2));
        assert_eq!(back.owner_admin_url.as_deref(), Some(url));
        assert_eq!(row(table, &key).await, back);
    }

    pub async fn a_take_on_a_stale_counter_or_a_missing_key_conflicts(table: &dyn LeaseTable) {
        let key = free(table).await;
        let taken = table.take(&key, 0, "worker-a", None).await.expect("take");
        for owner in ["worker-b", "worker-a"] {
            assert_eq!(
                table.take(&key, 0, owner, None).await,
                Err(TableError::Conflict),
                "{owner}"
            );
        }
        assert_eq!(row(table, &key).await, taken);
        let missing = lease_key("orders", &shard("shardId-z"));
        assert_eq!(
            table.take(&missing, 0, "worker-a", None).await,
            Err(TableError::Conflict)
        );
        assert_eq!(table.get(&missing).await, Ok(None));
    }

    pub async fn the_holders_writes_are_fenced_on_owner_and_counter(table: &dyn LeaseTable) {
        let key = free(table).await;
        table.take(&key, 0, "worker-a", None).await.expect("take");
        let taken = table.take(&key, 1, "worker-b", None).await.expect("steal");
        let strangers = [
            Holder {
                owner: "worker-a",
                counter: 2,
            },
            Holder {
                owner: "worker-b",
                counter: 1,
            },
            Holder {
                owner: "worker-b",
                counter: 3,
            },
        ];
        let seq = Checkpoint::After(SequenceNumber("99".into()));
        for holder in strangers {
            assert_eq!(
                table.renew(&key, holder).await,
                Err(TableError::Conflict),
                "{holder:?}"
            );
            assert_eq!(
                table.checkpoint(&key, holder, &seq).await,
                Err(TableError::Conflict),
                "{holder:?}"
            );
            assert_eq!(
                table.release(&key, holder).await,
                Err(TableError::Conflict),
                "{holder:?}"
            );
            assert_eq!(row(table, &key).await, taken, "{holder:?}");
        }
        let holder = Holder {
            owner: "worker-b",
            counter: 2,
        };
        let renewed = table.renew(&key, holder).await.expect("renew");
        assert_eq!(
            renewed,
            Lease {
                counter: 3,
                ..taken
            }
        );
        assert_eq!(row(table, &key).await, renewed);
        // The renewed counter is the one to hold now: the old one is fenced off.
        assert_eq!(
            table.checkpoint(&key, holder, &seq).await,
            Err(TableError::Conflict)
        );
        let holder = Holder {
            owner: "worker-b",
            counter: 3,
        };
        assert_eq!(table.checkpoint(&key, holder, &seq).await, Ok(()));
        assert_eq!(
            row(table, &key).await,
            Lease {
                checkpoint: Some(seq),
                owner_switches_since_checkpoint: 0,
                ..renewed
            }
        );
        let missing = lease_key("orders", &shard("shardId-z"));
        assert_eq!(
            table.renew(&missing, holder).await,
            Err(TableError::Conflict)
        );
    }

    pub async fn a_release_frees_the_lease_for_a_peer(table: &dyn LeaseTable) {
        let key = free(table).await;
        let url = Some("http://127.0.0.1:9001");
        let taken = table.take(&key, 0, "worker-a", url).await.expect("take");
        let holder = Holder {
            owner: "worker-a",
            counter: 1,
        };
        assert_eq!(table.release(&key, holder).await, Ok(()));
        let released = row(table, &key).await;
        assert_eq!(
            released,
            Lease {
                owner: None,
                owner_admin_url: None,
                counter: 2,
                ..taken
            }
        );
        // Released once: the same holder cannot release (or renew) it again.
        assert_eq!(table.release(&key, holder).await, Err(TableError::Conflict));
        let peer = table.take(&key, 2, "worker-b", None).await.expect("take");
        assert_eq!(
            (
                peer.owner.as_deref(),
                peer.counter,
                peer.owner_switches_since_checkpoint
            ),
            (Some("worker-b"), 3, 2)
        );
    }

    pub async fn pause_needs_the_row_and_leaves_the_counter(table: &dyn LeaseTable) {
        let missing = lease_key("orders", &shard("shardId-z"));
        assert_eq!(
            table.set_paused(&missing, true).await,
            Err(TableError::Conflict)
        );
        assert_eq!(table.get(&missing).await, Ok(None));
        let key = free(table).await;
        let taken = table.take(&key, 0, "worker-a", None).await.expect("take");
        assert_eq!(table.set_paused(&key, true).await, Ok(()));
        assert_eq!(
            row(table, &key).await,
            Lease {
                paused: true,
                ..taken.clone()
            }
        );
        // The holder learns of it at its next renew.
        let holder = Holder {
            owner: "worker-a",
            counter: 1,
        };
        let renewed = table.renew(&key, holder).await.expect("renew");
        assert!(renewed.paused);
        assert_eq!(table.set_paused(&key, false).await, Ok(()));
        assert_eq!(
            row(table, &key).await,
            Lease {
                paused: false,
                ..renewed
            }
        );
    }

    pub async fn of_two_concurrent_takes_exactly_one_wins(table: &dyn LeaseTable) {
        for round in 0..5 {
            let lease = Lease::new("orders", shard(&format!("shardId-{round}")), vec![]);
            assert_eq!(table.create(&lease).await, Ok(true));
            let key = lease.key();
            let (a, b) = tokio::join!(
                table.take(&key, 0, "worker-a", None),
                table.take(&key, 0, "worker-b", None)
            );
            let winner = match (a, b) {
                (Ok(row), Err(TableError::Conflict)) | (Err(TableError::Conflict), Ok(row)) => row,
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            };
            assert_eq!(winner.counter, 1);
            assert_eq!(row(table, &key).await, winner, "round {round}");
        }
    }
}

#[tokio::test]
async fn prepare_creates_a_kcl_shaped_table_and_is_idempotent() {
    let client = dynamodb_client().await;
    let name = support::unique("esm-leases");
    let table = DynamodbLeaseTable::new(client.clone(), name.clone());
    table.prepare().await.expect("prepare creates the table");
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .expect("the table exists");
    let description = described.table().expect("a description");
    assert_eq!(description.table_status(), Some(&TableStatus::Active));
    let keys: Vec<(&str, &KeyType)> = description
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(keys, [("leaseKey", &KeyType::Hash)]);
    let lease = Lease::new("orders", ShardId("shardId-1".into()), vec![]);
    assert_eq!(table.create(&lease).await, Ok(true));
    // A second prepare (this worker restarting, or a peer) keeps the table and its rows.
    table.prepare().await.expect("prepare again");
    DynamodbLeaseTable::new(client, name)
        .prepare()
        .await
        .expect("a peer's prepare");
    assert_eq!(table.list().await, Ok(vec![lease]));
}

#[tokio::test]
async fn a_table_with_another_key_schema_is_refused_in_words() {
    let (client, name, _stream) = support::create_table(StreamViewType::NewImage).await;
    let refused = DynamodbLeaseTable::new(client, name.clone())
        .prepare()
        .await;
    assert_eq!(
        refused,
        Err(TableError::Fatal(format!(
            "lease table {name:?} has key schema [pk HASH (S)]; esm-sim needs a table whose \
             only key is leaseKey (S): use another table name ([coordination] table) or \
             delete it"
        )))
    );
}

#[tokio::test]
async fn rows_this_table_cannot_read_are_skipped_not_fatal() {
    let client = dynamodb_client().await;
    let name = support::unique("esm-leases");
    let table = DynamodbLeaseTable::new(client.clone(), name.clone());
    table.prepare().await.expect("prepare");
    let good = Lease::new("orders", ShardId("shardId-1".into()), vec![]);
    assert_eq!(table.create(&good).await, Ok(true));
    let s = |v: &str| AttributeValue::S(v.to_string());
    let unreadable = [
        // A KCL application's lease: keyed by shard id, no mapping.
        vec![
            ("leaseKey", s("shardId-2")),
            ("leaseCounter", AttributeValue::N("4".into())),
        ],
        vec![
            ("leaseKey", s("orders:shardId-3")),
            ("mapping", s("orders")),
            ("shardId", s("shardId-3")),
            ("leaseCounter", s("four")),
        ],
    ];
    for row in unreadable {
        client
            .put_item()
            .table_name(&name)
            .set_item(Some(
                row.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ))
            .send()
            .await
            .expect("put a foreign row");
    }
    assert_eq!(table.list().await, Ok(vec![good]));
    assert_eq!(table.get("orders:shardId-3").await, Ok(None));
}

#[tokio::test]
async fn a_missing_table_after_prepare_is_fatal_naming_table_and_operation() {
    let name = support::unique("esm-leases-never-made");
    let table = DynamodbLeaseTable::new(dynamodb_client().await, name.clone());
    let lease = Lease::new("orders", ShardId("shardId-1".into()), vec![]);
    match table.create(&lease).await {
        Err(TableError::Fatal(text)) => assert!(
            text.starts_with(&format!(
                "lease table {name:?}: PutItem: ResourceNotFoundException"
            )),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    match table.list().await {
        Err(TableError::Fatal(text)) => assert!(text.contains(": Scan: "), "{text}"),
        other => panic!("{other:?}"),
    }
}
