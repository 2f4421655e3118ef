//! Which leases a worker takes or steals in one take pass: KCL's `LeaseTaker` as a pure
//! function of what the worker sees.
//!
//! Each worker aims at its fair share, `ceil(leases / workers)`, where the workers are the
//! owners of unexpired leases plus itself. Below it, it first takes expired (or free)
//! leases; with none, it steals from the most loaded worker, but only what that worker
//! holds over the share (and at most `max_steals` per pass), plus KCL's one exception: a
//! worker two or more short steals one from a worker exactly at the share, so 10 leases
//! on 4 workers end 3,3,2,2 rather than 3,3,3,1. Nobody steals from a worker at or below
//! the share otherwise, so an even split is stable: no flapping.

use std::collections::BTreeMap;

use super::lease::Lease;

/// A lease as the taker sees it in one pass.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub lease: &'a Lease,
    /// Free, or its counter has stood still for a lease duration.
    pub expired: bool,
    /// Every parent has ended (or is gone): the lease may be taken.
    pub ready: bool,
}

/// How a lease is to be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Free or expired.
    Take,
    /// Held by a live worker over its share.
    Steal { from: String },
}

/// The leases `me` should try to take in this pass (keys in the order given), at most
/// `max_steals` of them stolen.
pub fn plan(seen: &[Seen<'_>], me: &str, max_steals: usize) -> Vec<(String, Pick)> {
    let open: Vec<&Seen> = seen
        .iter()
        .filter(|s| !s.lease.is_ended() && (s.ready || owner_of(s) == Some(me)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &open {
        if let Some(owner) = owner_of(s) {
            if !s.expired || owner == me {
                *counts.entry(owner).or_default() += 1;
            }
        }
    }
    counts.entry(me).or_default();
    let target = open.len().div_ceil(counts.len());
    let mine = counts[me];
    if mine >= target {
        return Vec::new();
    }
    let needed = target - mine;
    let expired: Vec<(String, Pick)> = open
        .iter()
        .filter(|s| s.expired && owner_of(s) != Some(me))
        .take(needed)
        .map(|s| (s.lease.key(), Pick::Take))
        .collect();
    if !expired.is_empty() {
        return expired;
    }
    let Some((victim, &held)) = counts
        .iter()
        .filter(|(owner, _)| **owner != me)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
    else {
        return Vec::new();
    };
    let over = held.saturating_sub(target);
    let steals = if over > 0 {
        needed.min(over)
    } else if needed > 1 && held == target {
        1
    } else {
        0
    };
    open.iter()
        .filter(|s| owner_of(s) == Some(victim) && !s.expired)
        .take(steals.min(max_steals))
        .map(|s| {
            (
                s.lease.key(),
                Pick::Steal {
                    from: victim.to_string(),
                },
            )
        })
        .collect()
}

fn owner_of<'a>(seen: &Seen<'a>) -> Option<&'a str> {
    seen.lease.owner.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::model::ShardId;

    fn lease(shard: usize, owner: Option<&str>) -> Lease {
        let mut lease = Lease::new("m", ShardId(format!("shard-{shard:02}")), vec![]);
        lease.owner = owner.map(str::to_string);
        lease
    }

    fn seen(leases: &[Lease]) -> Vec<Seen<'_>> {
        leases
            .iter()
            .map(|lease| Seen {
                lease,
                expired: lease.owner.is_none(),
                ready: true,
            })
            .collect()
    }

    /// Runs take passes, worker after worker, applying each plan, until nobody moves.
    fn settle(leases: &mut [Lease], workers: &[&str], max_steals: usize) -> usize {
        for pass in 0..1000 {
            let mut moved = false;
            for worker in workers {
                let picks = plan(&seen(leases), worker, max_steals);
                for (key, _) in picks {
                    let lease = leases.iter_mut().find(|l| l.key() == key).unwrap();
                    lease.owner = Some(worker.to_string());
                    moved = true;
                }
            }
            if !moved {
                return pass;
            }
        }
        panic!("no fixed point");
    }

    fn counts(leases: &[Lease]) -> Vec<usize> {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for lease in leases {
            *by.entry(lease.owner.as_deref().unwrap_or("-")).or_default() += 1;
        }
        let mut counts: Vec<usize> = by.into_values().collect();
        counts.sort_unstable();
        counts
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let leases: Vec<Lease> = (0..8).map(|i| lease(i, None)).collect();
        let picks = plan(&seen(&leases), "a", 1);
        assert_eq!(picks.len(), 8);
        assert!(picks.iter().all(|(_, pick)| *pick == Pick::Take));
    }

    #[test]
    fn three_workers_converge_to_an_even_split_and_stay() {
        let mut leases: Vec<Lease> = (0..8).map(|i| lease(i, Some("a"))).collect();
        let passes = settle(&mut leases, &["a", "b", "c"], 1);
        assert_eq!(counts(&leases), vec![2, 3, 3]);
        assert!(passes <= 4, "{passes} passes");
        // A settled table stays settled.
        for worker in ["a", "b", "c"] {
            assert!(plan(&seen(&leases), worker, 1).is_empty());
        }
    }

    #[test]
    fn kcls_exception_turns_3_3_3_1_into_3_3_2_2() {
        let owners = ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d"];
        let mut leases: Vec<Lease> = owners
            .iter()
            .enumerate()
            .map(|(i, o)| lease(i, Some(o)))
            .collect();
        settle(&mut leases, &["a", "b", "c", "d"], 1);
        assert_eq!(counts(&leases), vec![2, 2, 3, 3]);
    }

    #[test]
    fn steals_are_bounded_per_pass() {
        let leases: Vec<Lease> = (0..100).map(|i| lease(i, Some("a"))).collect();
        let picks = plan(&seen(&leases), "b", 5);
        assert_eq!(picks.len(), 5);
        assert!(picks
            .iter()
            .all(|(_, p)| *p == Pick::Steal { from: "a".into() }));
    }

    #[test]
    fn expired_leases_are_taken_before_anything_is_stolen() {
        let mut leases: Vec<Lease> = (0..4).map(|i| lease(i, Some("a"))).collect();
        leases.push(lease(4, Some("dead")));
        let mut view = seen(&leases);
        view[4].expired = true;
        let picks = plan(&view, "b", 1);
        assert_eq!(picks, vec![(leases[4].key(), Pick::Take)]);
    }

    #[test]
    fn the_owner_of_an_expired_lease_is_not_counted_as_a_worker() {
        // "dead" holds 6 expired leases: b alone is live, so its share is all 6.
        let leases: Vec<Lease> = (0..6).map(|i| lease(i, Some("dead"))).collect();
        let mut view = seen(&leases);
        for s in &mut view {
            s.expired = true;
        }
        assert_eq!(plan(&view, "b", 1).len(), 6);
    }

    #[test]
    fn children_wait_for_their_parents_and_ended_leases_do_not_count() {
        let mut parent = lease(0, Some("a"));
        parent.checkpoint = Some(Checkpoint::ShardEnd);
        let child = lease(1, None);
        let leases = vec![parent, child];
        let mut view = seen(&leases);
        view[1].ready = false;
        assert!(plan(&view, "b", 1).is_empty());
        view[1].ready = true;
        assert_eq!(plan(&view, "b", 1), vec![(leases[1].key(), Pick::Take)]);
    }
}
