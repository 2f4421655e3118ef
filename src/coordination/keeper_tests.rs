//! The keeper against the in-memory table, in tokio's paused time: taking, splitting,
//! expiry of a silent peer, stealing, fencing and hand-back.

use std::sync::Arc;

use super::*;
use crate::coordination::memory::MemoryLeaseTable;

const LEASE_MS: u64 = 3_000;

fn settings(worker: &str) -> LeaseTableSettings {
    LeaseTableSettings {
        table: "t".into(),
        worker_id: worker.into(),
        timing: LeaseTiming::from_lease_duration_ms(LEASE_MS),
        max_steals_per_pass: 1,
    }
}

fn shards(n: usize) -> Vec<ShardInfo> {
    (0..n)
        .map(|i| ShardInfo {
            shard_id: ShardId(format!("shard-{i}")),
            parent_shard_ids: vec![],
        })
        .collect()
}

fn keeper(table: &Arc<MemoryLeaseTable>, worker: &str) -> Arc<LeaseKeeper> {
    LeaseKeeper::new(table.clone(), &settings(worker), Clock::starting_at(0), 7)
}

async fn owners(table: &MemoryLeaseTable) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    for lease in table.list().await.unwrap() {
        *owners.entry(lease.owner.unwrap_or_default()).or_insert(0) += 1;
    }
    owners
}

fn gained(rx: &mut mpsc::UnboundedReceiver<LeaseEvent>) -> Vec<LeaseEvent> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn two_workers_split_the_shards_and_a_silent_one_is_taken_over_after_its_lease() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let b = keeper(&table, "b");
    let mut a_events = a.attach("m");
    let _b_events = b.attach("m");
    a.create_leases("m", &shards(6)).await;
    let a_run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    assert_eq!(owners(&table).await, BTreeMap::from([("a".into(), 6)]));
    assert_eq!(gained(&mut a_events).len(), 6);

    let b_run = tokio::spawn(b.clone().run());
    // b steals one per take pass until 3/3.
    sleep_ms(4 * a.timing.take_interval_ms).await;
    assert_eq!(
        owners(&table).await,
        BTreeMap::from([("a".into(), 3), ("b".into(), 3)])
    );
    let lost = gained(&mut a_events)
        .into_iter()
        .filter(|e| matches!(e, LeaseEvent::Lost(_)))
        .count();
    assert_eq!(lost, 3, "a is told of each stolen lease");
    assert_eq!(a.metrics.snapshot().lost, 3);
    assert_eq!(b.metrics.snapshot().stolen, 3);

    // a falls silent (a crash): b holds everything within a lease and a take interval.
    a_run.abort();
    let silent = tokio::time::Instant::now();
    while owners(&table).await != BTreeMap::from([("b".into(), 6)]) {
        sleep_ms(100).await;
        assert!(silent.elapsed() < Duration::from_secs(20), "no takeover");
    }
    let took = silent.elapsed().as_millis() as u64;
    assert!(
        took <= LEASE_MS + b.timing.take_interval_ms + b.timing.renew_interval_ms,
        "takeover after {took} ms"
    );
    assert!(
        took >= LEASE_MS,
        "taken over before the lease expired: {took} ms"
    );
    b_run.abort();
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_of_a_lost_lease_is_refused_and_never_written() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let _events = a.attach("m");
    a.create_leases("m", &shards(1)).await;
    let run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    let shard = ShardId("shard-0".into());
    let seq = |s: &str| Checkpoint::After(crate::model::SequenceNumber(s.into()));
    a.queue_checkpoint("m", &shard, &seq("10"), None).unwrap();
    sleep_ms(50).await;
    assert_eq!(
        table.get("m:shard-0").await.unwrap().unwrap().checkpoint,
        Some(seq("10"))
    );

    // Another worker takes the lease behind a's back: a's next write is refused by the
    // table, a loses the lease, and every later save is refused before the table.
    let counter = table.get("m:shard-0").await.unwrap().unwrap().counter;
    table
        .take("m:shard-0", counter, "thief", None)
        .await
        .unwrap();
    a.queue_checkpoint("m", &shard, &seq("20"), None).unwrap();
    sleep_ms(50).await;
    assert!(!a.holds("m", &shard));
    assert!(a.queue_checkpoint("m", &shard, &seq("30"), None).is_err());
    let row = table.get("m:shard-0").await.unwrap().unwrap();
    assert_eq!(
        row.checkpoint,
        Some(seq("10")),
        "the thief's position stands"
    );
    assert_eq!(row.owner.as_deref(), Some("thief"));
    let counts = a.metrics.snapshot();
    assert_eq!((counts.lost, counts.checkpoints_fenced), (1, 2));
    run.abort();
}

#[tokio::test(start_paused = true)]
async fn a_keeper_that_could_not_renew_for_a_lease_duration_stops_holding_at_once() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let _events = a.attach("m");
    a.create_leases("m", &shards(1)).await;
    let run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    let shard = ShardId("shard-0".into());
    assert!(a.holds("m", &shard));
    // A stopped process: nothing of it runs, but the clock goes on.
    run.abort();
    sleep_ms(LEASE_MS).await;
    assert!(!a.holds("m", &shard), "held past its lease");
    assert!(a
        .queue_checkpoint("m", &shard, &Checkpoint::ShardEnd, None)
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn hand_back_writes_queued_checkpoints_then_frees_every_lease() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let _events = a.attach("m");
    a.create_leases("m", &shards(3)).await;
    let run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    let shard = ShardId("shard-2".into());
    let done = Checkpoint::After(crate::model::SequenceNumber("99".into()));
    a.queue_checkpoint("m", &shard, &done, None).unwrap();
    a.hand_back().await;
    run.await.unwrap();
    for lease in table.list().await.unwrap() {
        assert_eq!(lease.owner, None, "{} still owned", lease.key());
    }
    assert_eq!(
        table.get("m:shard-2").await.unwrap().unwrap().checkpoint,
        Some(done)
    );
    assert_eq!(a.metrics.snapshot().held, 0);
}

#[tokio::test(start_paused = true)]
async fn an_ended_shard_hands_its_lease_back_and_its_child_is_taken_then() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let mut events = a.attach("m");
    let parent = ShardId("parent".into());
    let child = ShardInfo {
        shard_id: ShardId("child".into()),
        parent_shard_ids: vec![parent.clone()],
    };
    let listed = vec![
        child.clone(),
        ShardInfo {
            shard_id: parent.clone(),
            parent_shard_ids: vec![],
        },
    ];
    a.create_leases("m", &listed).await;
    let run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    assert_eq!(
        gained(&mut events)
            .iter()
            .map(|e| match e {
                LeaseEvent::Gained(l, _) => l.shard_id.0.clone(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        vec!["parent".to_string()],
        "the child waits for its parent"
    );
    a.queue_checkpoint("m", &parent, &Checkpoint::ShardEnd, None)
        .unwrap();
    sleep_ms(100).await;
    let parent_row = table.get("m:parent").await.unwrap().unwrap();
    assert_eq!(parent_row.owner, None, "an ended lease is handed back");
    assert!(matches!(
        gained(&mut events).as_slice(),
        [LeaseEvent::Gained(l, _)] if l.shard_id == child.shard_id
    ));
    run.abort();
}

#[tokio::test(start_paused = true)]
async fn a_task_of_an_earlier_holding_cannot_write_into_the_lease_taken_again() {
    let table = Arc::new(MemoryLeaseTable::default());
    let a = keeper(&table, "a");
    let mut events = a.attach("m");
    a.create_leases("m", &shards(1)).await;
    let run = tokio::spawn(a.clone().run());
    sleep_ms(100).await;
    let shard = ShardId("shard-0".into());
    let seq = |s: &str| Checkpoint::After(crate::model::SequenceNumber(s.into()));
    let first = match gained(&mut events).as_slice() {
        [LeaseEvent::Gained(_, tenure)] => *tenure,
        other => panic!("expected one gain, got {} events", other.len()),
    };
    a.queue_checkpoint("m", &shard, &seq("10"), Some(first))
        .unwrap();
    sleep_ms(50).await;

    // A thief takes the lease and moves it on; a loses it, then takes it back (the thief
    // hands it back) while its old shard task is still finishing a batch.
    let counter = table.get("m:shard-0").await.unwrap().unwrap().counter;
    let stolen = table
        .take("m:shard-0", counter, "thief", None)
        .await
        .unwrap();
    let thief = Holder {
        owner: "thief",
        counter: stolen.counter,
    };
    table
        .checkpoint("m:shard-0", thief, &seq("50"))
        .await
        .unwrap();
    table.release("m:shard-0", thief).await.unwrap();
    while a.holds("m", &shard) {
        sleep_ms(100).await;
    }
    let mut second = None;
    while second.is_none() {
        sleep_ms(100).await;
        second = gained(&mut events).into_iter().find_map(|e| match e {
            LeaseEvent::Gained(lease, tenure) => Some((lease, tenure)),
            _ => None,
        });
    }
    let (lease, second) = second.unwrap();
    assert_ne!(second, first);
    assert_eq!(
        lease.checkpoint,
        Some(seq("50")),
        "taken back at the thief's position"
    );

    // The old task's late save (an older position) is refused; the new task's is written.
    assert!(a
        .queue_checkpoint("m", &shard, &seq("20"), Some(first))
        .is_err());
    sleep_ms(50).await;
    assert_eq!(
        table.get("m:shard-0").await.unwrap().unwrap().checkpoint,
        Some(seq("50"))
    );
    a.queue_checkpoint("m", &shard, &seq("60"), Some(second))
        .unwrap();
    sleep_ms(50).await;
    assert_eq!(
        table.get("m:shard-0").await.unwrap().unwrap().checkpoint,
        Some(seq("60"))
    );
    run.abort();
}
