//! A lease as a DynamoDB item, both ways, in KCL's attribute names: pure, so every rule
//! about what a row may hold is tested without a server.
//!
//! Writing: `leaseKey`, `mapping`, `shardId`, `leaseCounter`, `ownerSwitchesSinceCheckpoint`
//! and `paused` always; `leaseOwner`, `checkpoint` (`Checkpoint::encode`), `ownerAdminUrl`
//! only when set, and `parentShardId` (a string set) only when there are parents, because
//! DynamoDB refuses an empty set.
//!
//! Reading: a row this table cannot use (written by KCL or by hand: no `mapping`, a key that
//! is not `<mapping>:<shard id>`, a counter that is not a number, an attribute of the wrong
//! type) is an `Err` naming the row's key and what is wrong, for the caller to skip with a
//! warning. Optional attributes may be absent (their defaults are a new lease's); an
//! attribute that is present must have its type. A string set has no order, so parents come
//! back sorted.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::checkpoint::Checkpoint;
use crate::coordination::lease::{lease_key, Lease};
use crate::model::ShardId;

pub(super) const LEASE_KEY: &str = "leaseKey";
pub(super) const OWNER: &str = "leaseOwner";
pub(super) const COUNTER: &str = "leaseCounter";
pub(super) const CHECKPOINT: &str = "checkpoint";
pub(super) const SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
pub(super) const PARENTS: &str = "parentShardId";
pub(super) const MAPPING: &str = "mapping";
pub(super) const SHARD_ID: &str = "shardId";
pub(super) const PAUSED: &str = "paused";
pub(super) const ADMIN_URL: &str = "ownerAdminUrl";

/// One DynamoDB item, as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The item that stores `lease`.
pub(super) fn encode(lease: &Lease) -> Item {
    let mut item = Item::new();
    item.insert(LEASE_KEY.into(), AttributeValue::S(lease.key()));
    item.insert(MAPPING.into(), AttributeValue::S(lease.mapping.clone()));
    item.insert(SHARD_ID.into(), AttributeValue::S(lease.shard_id.0.clone()));
    item.insert(COUNTER.into(), number(lease.counter));
    item.insert(
        SWITCHES.into(),
        number(lease.owner_switches_since_checkpoint),
    );
    item.insert(PAUSED.into(), AttributeValue::Bool(lease.paused));
    if let Some(owner) = &lease.owner {
        item.insert(OWNER.into(), AttributeValue::S(owner.clone()));
    }
    if let Some(checkpoint) = &lease.checkpoint {
        item.insert(CHECKPOINT.into(), AttributeValue::S(checkpoint.encode()));
    }
    if let Some(url) = &lease.owner_admin_url {
        item.insert(ADMIN_URL.into(), AttributeValue::S(url.clone()));
    }
    if !lease.parent_shard_ids.is_empty() {
        let parents = lease.parent_shard_ids.iter().map(|p| p.0.clone()).collect();
        item.insert(PARENTS.into(), AttributeValue::Ss(parents));
    }
    item
}

/// A number attribute.
pub(super) fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The lease `item` stores, or why it cannot be one (naming its key).
pub(super) fn decode(item: &Item) -> Result<Lease, String> {
    let key = match text(item, LEASE_KEY) {
        Ok(Some(key)) => key,
        _ => {
            let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Err(format!(
                "a lease row without {LEASE_KEY} (S) (attributes: {names:?})"
            ));
        }
    };
    decode_keyed(item, &key).map_err(|reason| format!("lease row {key:?}: {reason}"))
}

fn decode_keyed(item: &Item, key: &str) -> Result<Lease, String> {
    let mapping = text(item, MAPPING)?.ok_or(format!("no {MAPPING} (S)"))?;
    let shard_id = ShardId(text(item, SHARD_ID)?.ok_or(format!("no {SHARD_ID} (S)"))?);
    let expected = lease_key(&mapping, &shard_id);
    if key != expected {
        return Err(format!(
            "{LEASE_KEY} is not {MAPPING}:{SHARD_ID} ({expected:?})"
        ));
    }
    let mut parents = match item.get(PARENTS) {
        None => Vec::new(),
        Some(AttributeValue::Ss(set)) => set.iter().cloned().map(ShardId).collect(),
        Some(_) => return Err(format!("{PARENTS} is not a string set (SS)")),
    };
    parents.sort();
    parents.dedup();
    let paused = match item.get(PAUSED) {
        None => false,
        Some(AttributeValue::Bool(paused)) => *paused,
        Some(_) => return Err(format!("{PAUSED} is not a boolean (BOOL)")),
    };
    Ok(Lease {
        mapping,
        shard_id,
        owner: text(item, OWNER)?,
        counter: count(item, COUNTER)?.ok_or(format!("no {COUNTER} (N)"))?,
        checkpoint: text(item, CHECKPOINT)?.map(|c| Checkpoint::decode(&c)),
        owner_switches_since_checkpoint: count(item, SWITCHES)?.unwrap_or(0),
        parent_shard_ids: parents,
        paused,
        owner_admin_url: text(item, ADMIN_URL)?,
    })
}

/// A string attribute: `None` when absent, `Err` when of another type.
fn text(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name} is not a string (S)")),
    }
}

/// A whole, non-negative number attribute: `None` when absent, `Err` otherwise.
fn count(item: &Item, name: &str) -> Result<Option<u64>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} {n:?} is not a whole number of at most 20 digits")),
        Some(_) => Err(format!("{name} is not a number (N)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn full() -> Lease {
        Lease {
            mapping: "orders".into(),
            shard_id: ShardId("shardId-000000000003".into()),
            owner: Some("worker-a".into()),
            counter: 41,
            checkpoint: Some(Checkpoint::After(SequenceNumber("4959".into()))),
            owner_switches_since_checkpoint: 2,
            parent_shard_ids: vec![
                ShardId("shardId-000000000001".into()),
                ShardId("shardId-000000000002".into()),
            ],
            paused: true,
            owner_admin_url: Some("http://10.0.0.7:9000".into()),
        }
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let checkpoints = [
            None,
            Some(Checkpoint::ShardEnd),
            Some(Checkpoint::At(SequenceNumber("17".into()))),
            Some(Checkpoint::AtTimestamp(1_700_000_000_000)),
            Some(Checkpoint::After(SequenceNumber("18".into()))),
        ];
        for checkpoint in checkpoints {
            let lease = Lease {
                checkpoint,
                ..full()
            };
            assert_eq!(decode(&encode(&lease)), Ok(lease));
        }
        let free = Lease::new("orders", ShardId("shardId-1".into()), vec![]);
        assert_eq!(decode(&encode(&free)), Ok(free));
    }

    #[test]
    fn unset_fields_are_absent_and_kcl_names_are_used() {
        let item = encode(&Lease::new("m", ShardId("s".into()), vec![]));
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "leaseCounter",
                "leaseKey",
                "mapping",
                "ownerSwitchesSinceCheckpoint",
                "paused",
                "shardId"
            ]
        );
        assert_eq!(item[LEASE_KEY], AttributeValue::S("m:s".into()));
        assert_eq!(item[COUNTER], AttributeValue::N("0".into()));
        let item = encode(&full());
        assert_eq!(
            item[PARENTS],
            AttributeValue::Ss(vec![
                "shardId-000000000001".into(),
                "shardId-000000000002".into()
            ])
        );
        assert_eq!(item[CHECKPOINT], AttributeValue::S("4959".into()));
    }

    #[test]
    fn parents_come_back_sorted_and_once() {
        let mut item = encode(&full());
        item.insert(
            PARENTS.into(),
            AttributeValue::Ss(vec!["b".into(), "a".into(), "b".into()]),
        );
        let lease = decode(&item).expect("a lease");
        assert_eq!(
            lease.parent_shard_ids,
            vec![ShardId("a".into()), ShardId("b".into())]
        );
    }

    #[test]
    fn optional_attributes_default_when_absent() {
        let mut item = encode(&full());
        for name in [OWNER, CHECKPOINT, SWITCHES, PARENTS, PAUSED, ADMIN_URL] {
            item.remove(name);
        }
        let lease = decode(&item).expect("a lease");
        assert_eq!(
            lease,
            Lease {
                counter: 41,
                ..Lease::new("orders", ShardId("shardId-000000000003".into()), vec![])
            }
        );
    }

    /// `full()` with `name` set to `value` (`None`: removed), decoded: the error.
    fn refused(name: &str, value: Option<AttributeValue>) -> String {
        let mut item = encode(&full());
        match value {
            Some(value) => item.insert(name.into(), value),
            None => item.remove(name),
        };
        decode(&item).expect_err("refused")
    }

    #[test]
    fn unusable_rows_are_refused_naming_the_key_and_the_fault() {
        use AttributeValue::{Bool, N, S};
        let key = "lease row \"orders:shardId-000000000003\"";
        let cases = [
            (MAPPING, None, "no mapping (S)"),
            (SHARD_ID, None, "no shardId (S)"),
            (COUNTER, None, "no leaseCounter (N)"),
            (
                COUNTER,
                Some(N("x1".into())),
                "leaseCounter \"x1\" is not a whole number",
            ),
            (
                COUNTER,
                Some(N("-1".into())),
                "leaseCounter \"-1\" is not a whole number",
            ),
            (
                COUNTER,
                Some(S("1".into())),
                "leaseCounter is not a number (N)",
            ),
            (OWNER, Some(Bool(true)), "leaseOwner is not a string (S)"),
            (
                PARENTS,
                Some(S("p".into())),
                "parentShardId is not a string set (SS)",
            ),
            (
                PAUSED,
                Some(S("yes".into())),
                "paused is not a boolean (BOOL)",
            ),
            (
                MAPPING,
                Some(S("other".into())),
                "leaseKey is not mapping:shardId (\"other:shardId-000000000003\")",
            ),
        ];
        for (name, value, fault) in cases {
            let error = refused(name, value);
            assert!(
                error.starts_with(key) && error.contains(fault),
                "{error:?} should name {key} and {fault:?}"
            );
        }
    }

    #[test]
    fn a_row_without_a_key_is_refused_listing_what_it_has() {
        let error = refused(LEASE_KEY, None);
        assert!(
            error.starts_with("a lease row without leaseKey (S)"),
            "{error}"
        );
        assert!(error.contains("\"mapping\""), "{error}");
        let error = refused(LEASE_KEY, Some(AttributeValue::N("1".into())));
        assert!(
            error.starts_with("a lease row without leaseKey (S)"),
            "{error}"
        );
    }
}
