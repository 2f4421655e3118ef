//! What a worker has seen of the lease table, and the small pure steps the keeper takes
//! on it: noting when each lease's counter last moved (expiry is judged from that, not
//! from anyone's clock), shuffling the leases before a take pass, and ordering new shards
//! parents first.

use std::collections::{BTreeMap, BTreeSet};

use super::lease::Lease;
use crate::model::{ShardId, ShardInfo};
use crate::rng::Rng;

/// A lease as last read, and since when its counter (and owner) has stood still.
pub(super) struct Observed {
    pub(super) lease: Lease,
    pub(super) since_ms: i64,
}

/// Records what a table read showed: a lease whose counter moved (or that is new) is
/// live as of `now`.
pub(super) fn observe(seen: &mut BTreeMap<String, Observed>, rows: Vec<Lease>, now: i64) {
    for lease in rows {
        let key = lease.key();
        match seen.get_mut(&key) {
            Some(o) if o.lease.counter == lease.counter && o.lease.owner == lease.owner => {
                o.lease = lease;
            }
            _ => {
                seen.insert(
                    key,
                    Observed {
                        lease,
                        since_ms: now,
                    },
                );
            }
        }
    }
}

/// Fisher-Yates with the keeper's seeded generator: peers starting together do not all
/// reach for the same leases first, and a simulation stays reproducible.
pub(super) fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// `shards` ordered so every shard comes after its parents among them.
pub(super) fn parents_first(shards: &[ShardInfo]) -> Vec<&ShardInfo> {
    let listed: BTreeSet<&ShardId> = shards.iter().map(|s| &s.shard_id).collect();
    let mut placed: BTreeSet<&ShardId> = BTreeSet::new();
    let mut out = Vec::with_capacity(shards.len());
    while out.len() < shards.len() {
        let before = out.len();
        for info in shards {
            if placed.contains(&info.shard_id) {
                continue;
            }
            let ready = info
                .parent_shard_ids
                .iter()
                .all(|p| !listed.contains(p) || placed.contains(p));
            if ready {
                placed.insert(&info.shard_id);
                out.push(info);
            }
        }
        if out.len() == before {
            // A cycle (a malformed listing): the rest in the order given.
            out.extend(shards.iter().filter(|s| !placed.contains(&s.shard_id)));
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, parents: &[&str]) -> ShardInfo {
        ShardInfo {
            shard_id: ShardId(id.into()),
            parent_shard_ids: parents.iter().map(|p| ShardId(p.to_string())).collect(),
        }
    }

    #[test]
    fn children_come_after_their_listed_parents() {
        let listed = vec![
            info("c", &["a", "b"]),
            info("b", &[]),
            info("d", &["gone"]),
            info("a", &[]),
        ];
        let order: Vec<&str> = parents_first(&listed)
            .iter()
            .map(|s| s.shard_id.as_str())
            .collect();
        assert_eq!(order, vec!["b", "d", "a", "c"]);
    }

    #[test]
    fn a_counter_that_moved_restarts_the_expiry_clock() {
        let mut seen = BTreeMap::new();
        let mut lease = Lease::new("m", ShardId("s".into()), vec![]);
        observe(&mut seen, vec![lease.clone()], 100);
        observe(&mut seen, vec![lease.clone()], 900);
        assert_eq!(seen["m:s"].since_ms, 100, "unchanged: still since 100");
        lease.counter = 1;
        observe(&mut seen, vec![lease], 1_000);
        assert_eq!(seen["m:s"].since_ms, 1_000);
    }
}
