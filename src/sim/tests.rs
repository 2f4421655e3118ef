//! Tests of the simulated world as its readers see it: producers' rates and limits,
//! determinism per seed, poison records, key routing, resharding, DynamoDB rollover and
//! item changes, retention. They drive `SimulatedStream` only through its API.

use super::*;
use crate::config::schema::{FaultConfig, ProducerConfig, ReshardConfig};
use crate::model::{DynamodbEventName, RecordBody};

pub(crate) const T0: i64 = 1_767_225_600_000;

pub(crate) fn producer(rate: f64, records: Option<u64>, duration: Option<f64>) -> ProducerConfig {
    ProducerConfig {
        rate_per_second: rate,
        start_seconds: 0.0,
        duration_seconds: duration,
        records,
        keys: 50,
        key_prefix: "user-".into(),
        payload_bytes: 100,
        poison_every: None,
    }
}

pub(crate) fn stream_cfg(
    kind: StreamKind,
    shards: u32,
    producers: Vec<ProducerConfig>,
) -> SimStreamConfig {
    SimStreamConfig {
        name: "orders".into(),
        kind,
        shards,
        retention_hours: None,
        stream_view_type: None,
        rollover_seconds: None,
        producers,
        reshard: Vec::new(),
        faults: FaultConfig::default(),
    }
}

fn stream(cfg: &SimStreamConfig, seed: u64) -> SimulatedStream {
    SimulatedStream::new(cfg, &AwsIdentity::default(), seed, T0)
}

/// Every retained record of a shard, from the trim horizon.
fn all_records(s: &SimulatedStream, now: i64, shard: &ShardId) -> Vec<StreamRecord> {
    let index = s.shard_index(now, shard).unwrap();
    let mut from = s
        .position(now, index, &IteratorPosition::TrimHorizon)
        .unwrap();
    let mut out = Vec::new();
    loop {
        let page = s.read(now, index, from, 1000, usize::MAX).unwrap();
        if page.records.is_empty() {
            return out;
        }
        from = page.next_index;
        out.extend(page.records);
    }
}

fn kinesis_json(record: &StreamRecord) -> serde_json::Value {
    match &record.body {
        RecordBody::Kinesis { data, .. } => serde_json::from_slice(data).unwrap(),
        RecordBody::Dynamodb(_) => panic!("not a Kinesis record"),
    }
}

#[test]
fn a_producer_writes_at_its_rate_from_its_start_and_stops_after_its_duration() {
    let mut p = producer(10.0, None, Some(10.0));
    p.start_seconds = 5.0;
    let s = stream(&stream_cfg(StreamKind::Kinesis, 2, vec![p]), 1);
    assert_eq!(s.records_produced(T0 + 4_999), 0);
    assert_eq!(s.records_produced(T0 + 5_000), 1);
    assert_eq!(s.records_produced(T0 + 5_999), 10);
    assert!(!s.producers_done(T0 + 10_000));
    assert_eq!(s.records_produced(T0 + 14_900), 100);
    assert!(s.producers_done(T0 + 14_900));
    assert_eq!(s.records_produced(T0 + 60_000), 100);
    let ids = s.shard_ids(T0 + 60_000);
    let per_shard: u64 = ids
        .iter()
        .map(|id| s.count_after(T0 + 60_000, id, None))
        .sum();
    assert_eq!(per_shard, 100);
}

#[test]
fn a_producer_stops_after_its_record_count_when_that_comes_first() {
    let s = stream(
        &stream_cfg(
            StreamKind::Kinesis,
            1,
            vec![producer(100.0, Some(250), Some(60.0))],
        ),
        1,
    );
    assert!(!s.producers_done(T0 + 2_480));
    assert!(s.producers_done(T0 + 2_490));
    assert_eq!(s.records_produced(T0 + 60_000), 250);
}

#[test]
fn a_producer_without_a_limit_never_finishes() {
    let s = stream(
        &stream_cfg(StreamKind::Kinesis, 1, vec![producer(1.0, None, None)]),
        1,
    );
    assert_eq!(s.records_produced(T0 + 3_600_000), 3_601);
    assert!(!s.producers_done(T0 + 3_600_000));
}

#[test]
fn advancing_in_many_small_steps_gives_the_same_world_as_one_jump() {
    let mut cfg = stream_cfg(
        StreamKind::Kinesis,
        2,
        vec![producer(50.0, None, Some(20.0)), producer(7.0, None, None)],
    );
    cfg.reshard.push(ReshardConfig {
        at_seconds: 5.0,
        split: Some("shardId-000000000001".into()),
        merge: None,
    });
    let a = stream(&cfg, 9);
    let b = stream(&cfg, 9);
    for t in (0..30_000).step_by(333) {
        b.advance_to(T0 + t);
    }
    let now = T0 + 30_000;
    assert_eq!(a.shard_ids(now), b.shard_ids(now));
    for id in a.shard_ids(now) {
        assert_eq!(all_records(&a, now, &id), all_records(&b, now, &id));
    }
}

#[test]
fn streams_with_the_same_seed_hold_identical_records_and_another_seed_differs() {
    let cfg = stream_cfg(
        StreamKind::Kinesis,
        3,
        vec![producer(20.0, Some(200), None)],
    );
    let (a, b, c) = (stream(&cfg, 5), stream(&cfg, 5), stream(&cfg, 6));
    let now = T0 + 60_000;
    let records = |s: &SimulatedStream| -> Vec<StreamRecord> {
        s.shard_ids(now)
            .iter()
            .flat_map(|id| all_records(s, now, id))
            .collect()
    };
    let (ra, rb, rc) = (records(&a), records(&b), records(&c));
    assert_eq!(ra.len(), 200);
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
}

#[test]
fn every_nth_record_of_a_producer_is_poison_and_no_other_mentions_poison() {
    let mut p = producer(10.0, Some(100), None);
    p.poison_every = Some(7);
    let s = stream(&stream_cfg(StreamKind::Kinesis, 2, vec![p]), 3);
    let now = T0 + 60_000;
    let mut poison = Vec::new();
    for id in s.shard_ids(now) {
        for r in all_records(&s, now, &id) {
            let v = kinesis_json(&r);
            let RecordBody::Kinesis { data, .. } = &r.body else {
                unreachable!()
            };
            assert_eq!(data.len(), 100);
            if memchr::memmem::find(data, b"poison").is_some() {
                assert_eq!(v["poison"], true);
                poison.push(v["n"].as_u64().unwrap());
            }
        }
    }
    poison.sort();
    assert_eq!(
        poison,
        vec![6, 13, 20, 27, 34, 41, 48, 55, 62, 69, 76, 83, 90, 97]
    );
}

#[test]
fn records_of_one_key_always_land_in_the_shard_whose_range_holds_its_md5() {
    let s = stream(
        &stream_cfg(
            StreamKind::Kinesis,
            4,
            vec![producer(100.0, Some(1000), None)],
        ),
        2,
    );
    let now = T0 + 60_000;
    let mut shard_of_key = std::collections::BTreeMap::new();
    for (i, id) in s.shard_ids(now).iter().enumerate() {
        for r in all_records(&s, now, id) {
            let key = r.ordering_key();
            assert_eq!(*shard_of_key.entry(key.clone()).or_insert(i), i, "{key}");
            let hash =
                u128::from_be_bytes(<md5::Md5 as md5::Digest>::digest(key.as_bytes()).into());
            assert_eq!((hash / (u128::MAX / 4)).min(3) as usize, i);
        }
    }
    assert!(shard_of_key.len() > 40);
}

#[test]
fn sequence_numbers_increase_within_a_shard_and_arrivals_never_go_back() {
    let cfg = stream_cfg(
        StreamKind::Kinesis,
        2,
        vec![
            producer(30.0, None, Some(10.0)),
            producer(13.0, None, Some(10.0)),
        ],
    );
    let s = stream(&cfg, 4);
    let now = T0 + 20_000;
    for id in s.shard_ids(now) {
        let records = all_records(&s, now, &id);
        for w in records.windows(2) {
            assert!(w[0].sequence_number < w[1].sequence_number);
            assert!(w[0].approximate_arrival_ms <= w[1].approximate_arrival_ms);
        }
    }
}

#[test]
fn after_a_split_new_records_land_in_the_two_children_and_the_parent_is_closed() {
    let mut cfg = stream_cfg(
        StreamKind::Kinesis,
        2,
        vec![producer(100.0, None, Some(20.0))],
    );
    cfg.reshard.push(ReshardConfig {
        at_seconds: 10.0,
        split: Some("shardId-000000000000".into()),
        merge: None,
    });
    let s = stream(&cfg, 1);
    let now = T0 + 30_000;
    let shards = s.list_shards(now);
    let ids: Vec<&str> = shards.iter().map(|i| i.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003"
        ]
    );
    assert_eq!(
        shards[2].parent_shard_ids,
        vec![ShardId("shardId-000000000000".into())]
    );
    assert_eq!(
        shards[3].parent_shard_ids,
        vec![ShardId("shardId-000000000000".into())]
    );
    let parent = all_records(&s, now, &shards[0].shard_id);
    assert!(parent
        .iter()
        .all(|r| r.approximate_arrival_ms < T0 + 10_000));
    let mut parent_keys: Vec<String> = parent.iter().map(|r| r.ordering_key()).collect();
    parent_keys.sort();
    parent_keys.dedup();
    let mut child_keys = Vec::new();
    for child in &shards[2..] {
        let records = all_records(&s, now, &child.shard_id);
        assert!(!records.is_empty());
        assert!(records
            .iter()
            .all(|r| r.approximate_arrival_ms >= T0 + 10_000));
        child_keys.extend(records.iter().map(|r| r.ordering_key()));
    }
    child_keys.sort();
    child_keys.dedup();
    assert_eq!(
        parent_keys, child_keys,
        "the children split the parent's keys"
    );
    assert_eq!(s.records_produced(now), 2_000);
}

#[test]
fn a_merge_closes_both_parents_and_one_child_takes_their_keys() {
    let mut cfg = stream_cfg(
        StreamKind::Kinesis,
        3,
        vec![producer(100.0, None, Some(20.0))],
    );
    cfg.reshard.push(ReshardConfig {
        at_seconds: 10.0,
        split: None,
        merge: Some(["shardId-000000000002".into(), "shardId-000000000001".into()]),
    });
    let s = stream(&cfg, 1);
    let now = T0 + 30_000;
    let shards = s.list_shards(now);
    assert_eq!(shards.len(), 4);
    assert_eq!(
        shards[3].parent_shard_ids,
        vec![
            ShardId("shardId-000000000002".into()),
            ShardId("shardId-000000000001".into())
        ]
    );
    let late = |id: &ShardId| {
        all_records(&s, now, id)
            .iter()
            .filter(|r| r.approximate_arrival_ms >= T0 + 10_000)
            .count()
    };
    assert_eq!(late(&shards[1].shard_id), 0);
    assert_eq!(late(&shards[2].shard_id), 0);
    assert!(late(&shards[0].shard_id) > 0);
    assert!(late(&shards[3].shard_id) > 0);
}

#[test]
fn invalid_reshards_are_skipped_without_a_panic() {
    let mut cfg = stream_cfg(
        StreamKind::Kinesis,
        3,
        vec![producer(10.0, Some(100), None)],
    );
    for (at, split, merge) in [
        (1.0, Some("shardId-000000000099"), None),
        (
            2.0,
            None,
            Some(["shardId-000000000000", "shardId-000000000002"]),
        ),
        (
            3.0,
            Some("shardId-000000000000"),
            Some(["shardId-000000000000", "shardId-000000000001"]),
        ),
        (f64::NAN, Some("shardId-000000000000"), None),
        (4.0, Some("shardId-000000000001"), None),
        (5.0, Some("shardId-000000000001"), None),
    ] {
        cfg.reshard.push(ReshardConfig {
            at_seconds: at,
            split: split.map(String::from),
            merge: merge.map(|[a, b]| [a.to_string(), b.to_string()]),
        });
    }
    let s = stream(&cfg, 1);
    assert_eq!(
        s.shard_ids(T0 + 60_000).len(),
        5,
        "only the first split of shard 1 applies"
    );
    assert_eq!(s.records_produced(T0 + 60_000), 100);
}

fn dynamodb_changes(
    view: Option<StreamViewType>,
) -> Vec<(StreamRecord, crate::model::DynamodbChange)> {
    let mut p = producer(10.0, Some(60), None);
    p.keys = 2;
    p.poison_every = Some(5);
    let mut cfg = stream_cfg(StreamKind::Dynamodb, 1, vec![p]);
    cfg.stream_view_type = view;
    cfg.rollover_seconds = Some(2);
    let s = stream(&cfg, 1);
    let now = T0 + 60_000;
    let mut out = Vec::new();
    for id in s.shard_ids(now) {
        for r in all_records(&s, now, &id) {
            let RecordBody::Dynamodb(change) = &r.body else {
                panic!("not a DynamoDB record")
            };
            out.push((r.clone(), change.clone()));
        }
    }
    out.sort_by_key(|(r, _)| r.approximate_arrival_ms);
    out
}

#[test]
fn dynamodb_shards_roll_over_into_one_child_each() {
    let mut cfg = stream_cfg(
        StreamKind::Dynamodb,
        2,
        vec![producer(10.0, Some(60), None)],
    );
    cfg.rollover_seconds = Some(2);
    let s = stream(&cfg, 1);
    let shards = s.list_shards(T0 + 5_000);
    assert_eq!(shards.len(), 6);
    assert!(shards[0]
        .shard_id
        .as_str()
        .starts_with(&format!("shardId-{T0:020}-")));
    assert!(shards[4]
        .shard_id
        .as_str()
        .starts_with(&format!("shardId-{:020}-", T0 + 4_000)));
    assert_eq!(shards[2].parent_shard_ids, vec![shards[0].shard_id.clone()]);
    assert_eq!(shards[5].parent_shard_ids, vec![shards[3].shard_id.clone()]);
    let total: u64 = s
        .shard_ids(T0 + 60_000)
        .iter()
        .map(|id| s.count_after(T0 + 60_000, id, None))
        .sum();
    assert_eq!(total, 60);
    let first = all_records(&s, T0 + 60_000, &shards[0].shard_id);
    assert!(first.iter().all(|r| r.approximate_arrival_ms < T0 + 2_000));
}

#[test]
fn dynamodb_changes_cycle_through_insert_modify_and_remove_per_item() {
    let changes = dynamodb_changes(None);
    assert_eq!(changes.len(), 60);
    let mut per_key: std::collections::BTreeMap<String, Vec<DynamodbEventName>> =
        Default::default();
    for (r, c) in &changes {
        per_key
            .entry(r.ordering_key())
            .or_default()
            .push(c.event_name);
        assert_eq!(c.event_id().len(), 32);
        assert!(c
            .event_id()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!c.ttl_deletion);
        assert_eq!(c.stream_view_type, StreamViewType::NewAndOldImages);
    }
    for events in per_key.values() {
        assert!(events.len() > 10);
        for (i, e) in events.iter().enumerate() {
            let expected = match i % 10 {
                0 => DynamodbEventName::Insert,
                9 => DynamodbEventName::Remove,
                _ => DynamodbEventName::Modify,
            };
            assert_eq!(*e, expected, "change {i}");
        }
    }
}

#[test]
fn dynamodb_old_images_are_the_item_as_the_previous_change_wrote_it() {
    let changes = dynamodb_changes(None);
    let mut last_new: std::collections::BTreeMap<
        String,
        serde_json::Map<String, serde_json::Value>,
    > = Default::default();
    for (r, c) in &changes {
        let key = r.ordering_key();
        assert_eq!(c.keys().as_str(), key);
        match c.event_name {
            DynamodbEventName::Insert => {
                assert!(c.old_image().is_none());
                assert!(c.new_image().is_some());
            }
            DynamodbEventName::Modify | DynamodbEventName::Remove => {
                let mut old = c.old_image().unwrap().to_map();
                let mut before = last_new[&key].clone();
                // The poison marker belongs to the poison record, not to the item.
                old.remove("poison");
                before.remove("poison");
                assert_eq!(old, before);
                assert_eq!(
                    c.new_image().is_some(),
                    c.event_name == DynamodbEventName::Modify
                );
            }
        }
        if let Some(new) = c.new_image() {
            let text = new.as_str();
            let new = new.to_map();
            let marker = if new.contains_key("poison") { 23 } else { 0 };
            assert_eq!(text.len(), 100 + marker, "{text}");
            assert!(c.size_bytes as usize > text.len());
            last_new.insert(key, new.clone());
        }
        let poison = memchr::memmem::find(r.data_for_matching(), b"poison").is_some();
        let n: u64 = match (c.new_image(), c.old_image()) {
            (Some(img), _) => img.to_map()["n"]["N"].as_str().unwrap().parse().unwrap(),
            _ => u64::MAX,
        };
        if n != u64::MAX {
            assert_eq!(poison, (n + 1) % 5 == 0, "record n={n}");
        }
    }
}

#[test]
fn dynamodb_images_follow_the_stream_view_type() {
    for view in [
        StreamViewType::KeysOnly,
        StreamViewType::NewImage,
        StreamViewType::OldImage,
    ] {
        for (_, c) in dynamodb_changes(Some(view)) {
            assert_eq!(c.stream_view_type, view);
            let new_expected = view.has_new_image() && c.event_name != DynamodbEventName::Remove;
            let old_expected = view.has_old_image() && c.event_name != DynamodbEventName::Insert;
            assert_eq!(
                c.new_image().is_some(),
                new_expected,
                "{view:?} {:?}",
                c.event_name
            );
            assert_eq!(
                c.old_image().is_some(),
                old_expected,
                "{view:?} {:?}",
                c.event_name
            );
            assert!(c.size_bytes > 0);
        }
    }
}

#[test]
fn retention_trims_old_records_and_drops_closed_shards_once_empty() {
    let mut cfg = stream_cfg(
        StreamKind::Kinesis,
        1,
        vec![producer(1.0, None, Some(7_200.0))],
    );
    cfg.retention_hours = Some(1);
    cfg.reshard.push(ReshardConfig {
        at_seconds: 600.0,
        split: Some("shardId-000000000000".into()),
        merge: None,
    });
    let s = stream(&cfg, 1);
    let parent = ShardId("shardId-000000000000".into());
    let now = T0 + 3_600_000 + 300_000;
    assert_eq!(s.list_shards(now).len(), 3);
    let index = s.shard_index(now, &parent).unwrap();
    assert_eq!(
        s.position(now, index, &IteratorPosition::TrimHorizon)
            .unwrap(),
        0,
        "TRIM_HORIZON starts at the first record ever written, so its reader hears of the 300 trimmed"
    );
    let page = s.read(now, index, 0, 10, usize::MAX).unwrap();
    let lost = page.lost.unwrap();
    assert_eq!(lost.count, Some(300));
    assert_eq!(
        lost.first,
        Some(sequence::sequence_number(StreamKind::Kinesis, 0, 0))
    );
    assert_eq!(
        lost.last,
        Some(sequence::sequence_number(StreamKind::Kinesis, 0, 299))
    );
    assert_eq!(
        page.records[0].sequence_number,
        sequence::sequence_number(StreamKind::Kinesis, 0, 300)
    );
    assert_eq!(
        s.count_after(now, &parent, None),
        600,
        "trimmed records still count as produced"
    );
    assert_eq!(s.count_before_time(now, &parent, T0 + 450_000), 450);
    let approx = s.count_before_time(now, &parent, T0 + 100_000);
    assert!((100..=164).contains(&approx), "{approx}");
    // Once everything of the parent is gone and it closed over an hour ago, it is unlisted.
    let later = T0 + 600_000 + 3_600_001;
    let listed: Vec<ShardId> = s
        .list_shards(later)
        .into_iter()
        .map(|i| i.shard_id)
        .collect();
    assert!(!listed.contains(&parent));
    assert_eq!(s.shard_ids(later).len(), 3);
}

#[test]
fn count_after_counts_the_records_behind_a_sequence_number() {
    let s = stream(
        &stream_cfg(StreamKind::Kinesis, 1, vec![producer(10.0, Some(50), None)]),
        1,
    );
    let now = T0 + 60_000;
    let id = ShardId("shardId-000000000000".into());
    let seq = sequence::sequence_number(StreamKind::Kinesis, 0, 9);
    assert_eq!(s.count_after(now, &id, Some(&seq)), 40);
    assert_eq!(s.count_after(now, &id, None), 50);
    assert_eq!(s.count_after(now, &ShardId("nope".into()), None), 0);
    assert_eq!(s.count_before_time(now, &id, T0 + 1_000), 10);
}
