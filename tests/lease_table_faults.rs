//! The lease keeper on moto's DynamoDB behind a fault-injecting proxy (`support::
//! fault_proxy`): what a worker does when the lease table refuses it (missing
//! permissions: a clear error at start) or throttles it (counted; a worker that cannot
//! renew for a lease duration gives its leases up before any peer may take them, so two
//! workers never both hold one).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use esm_sim::aws::AwsFactory;
use esm_sim::clock::Clock;
use esm_sim::config::LeaseTableSettings;
use esm_sim::coordination::dynamodb::DynamodbLeaseTable;
use esm_sim::coordination::keeper::LeaseKeeper;
use esm_sim::coordination::timing::LeaseTiming;
use esm_sim::model::{ShardId, ShardInfo};
use support::fault_proxy::{Fault, FaultProxy};

const LEASE_MS: u64 = 1_000;

async fn table(endpoint: &str, name: &str) -> Arc<DynamodbLeaseTable> {
    let factory = AwsFactory::new(Some(endpoint.to_string()), "us-east-1".into());
    Arc::new(DynamodbLeaseTable::connect(&factory, name).await)
}

fn keeper(table: Arc<DynamodbLeaseTable>, worker: &str) -> Arc<LeaseKeeper> {
    let settings = LeaseTableSettings {
        table: "unused".into(),
        worker_id: worker.into(),
        timing: LeaseTiming::from_lease_duration_ms(LEASE_MS),
        max_steals_per_pass: 1,
    };
    LeaseKeeper::new(table, &settings, Clock::wall(), 1)
}

#[tokio::test]
async fn a_worker_the_table_denies_stops_at_start_with_the_tables_words() {
    let proxy = FaultProxy::start(support::moto_endpoint()).await;
    proxy.inject(Fault::error("DescribeTable", 400, "AccessDeniedException"));
    let name = support::unique("denied");
    let keeper = keeper(table(&proxy.endpoint, &name).await, "w1");
    let error = keeper
        .prepare()
        .await
        .expect_err("access denied")
        .to_string();
    assert!(error.contains("AccessDeniedException"), "{error}");
    assert!(error.contains(&name), "the table is named: {error}");
    assert_eq!(proxy.calls("CreateTable").len(), 0, "nothing was created");
}

#[tokio::test]
async fn a_worker_throttled_for_longer_than_its_lease_gives_the_lease_up_before_a_peer_takes_it() {
    let name = support::unique("throttled");
    let proxy = FaultProxy::start(support::moto_endpoint()).await;
    let a = keeper(table(&proxy.endpoint, &name).await, "a");
    let b = keeper(table(&support::moto_endpoint(), &name).await, "b");
    a.prepare().await.expect("the table");
    let shard = ShardId("shardId-000000000000".into());
    let _a_events = a.attach("m");
    a.create_leases(
        "m",
        &[ShardInfo {
            shard_id: shard.clone(),
            parent_shard_ids: vec![],
        }],
    )
    .await;
    let a_run = tokio::spawn(a.clone().run());
    support::daemon::wait_for(10, "a to take the lease", || a.holds("m", &shard)).await;

    // Every renew of a's is throttled from now on; b joins.
    for _ in 0..200 {
        proxy.inject(Fault::error("UpdateItem", 400, "ThrottlingException"));
    }
    let _b_events = b.attach("m");
    let b_run = tokio::spawn(b.clone().run());
    let started = Instant::now();
    let mut a_gave_up = None;
    while !b.holds("m", &shard) {
        assert!(
            !(a.holds("m", &shard) && b.holds("m", &shard)),
            "two owners at once"
        );
        if a_gave_up.is_none() && !a.holds("m", &shard) {
            a_gave_up = Some(started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "b never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b_took = started.elapsed();
    let a_gave_up = a_gave_up.expect("a gave the lease up first");
    assert!(
        a_gave_up <= b_took,
        "a gave up at {a_gave_up:?}, b took at {b_took:?}"
    );
    let counts = a.metrics.snapshot();
    assert!(counts.throttles >= 2, "throttles counted: {counts:?}");
    assert_eq!(counts.lost, 1, "{counts:?}");
    eprintln!("throttled: a gave up after {a_gave_up:?}, b took over after {b_took:?}, a counted {} throttles", counts.throttles);
    a_run.abort();
    b_run.abort();
}
