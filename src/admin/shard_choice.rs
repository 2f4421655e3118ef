//! Which shards of a mapping get series of their own in `/metrics` ([admin]
//! `metrics_shard_series`): none, all, or the top N: the stuck shards first, then the
//! highest iterator ages.
//!
//! Pure and apart from the rendering so the choice is tested on its own. Ties go to the
//! lower shard id, so a scrape picks the same shards while nothing changes (a series that
//! comes and goes between scrapes is churn for Prometheus). A caught-up shard ranks with
//! age 0: its last invoke's age is history, not lag.

use std::cmp::Reverse;

use crate::config::mapping::ShardSeries;
use crate::engine::status::ShardSnapshot;

/// The indices into `shards` (in their order) of the shards with series of their own;
/// `stuck[i]` says whether `shards[i]` is stuck.
pub fn chosen(shards: &[ShardSnapshot], stuck: &[bool], series: ShardSeries) -> Vec<usize> {
    let bound = match series {
        ShardSeries::None => return Vec::new(),
        ShardSeries::All => return (0..shards.len()).collect(),
        ShardSeries::Top(0) => return Vec::new(),
        ShardSeries::Top(bound) => bound,
    };
    let mut order: Vec<usize> = (0..shards.len()).collect();
    if order.len() > bound {
        let rank = |&i: &usize| {
            let s = &shards[i];
            let age = if s.caught_up {
                0
            } else {
                s.iterator_age_ms.unwrap_or(-1)
            };
            (
                Reverse(stuck.get(i).copied().unwrap_or(false)),
                Reverse(age),
                i,
            )
        };
        order.select_nth_unstable_by_key(bound - 1, rank);
        order.truncate(bound);
        order.sort_unstable();
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::MappingStatus;
    use crate::model::{ShardId, ShardInfo};

    fn shard(id: usize, age: Option<i64>) -> ShardSnapshot {
        let mut s = MappingStatus::default()
            .shard(&ShardInfo {
                shard_id: ShardId(format!("shardId-{id:012}")),
                parent_shard_ids: Vec::new(),
            })
            .snapshot();
        s.iterator_age_ms = age;
        s
    }

    #[test]
    fn top_takes_the_stuck_shards_first_then_the_highest_ages_in_shard_order() {
        let mut shards: Vec<ShardSnapshot> =
            (0..10).map(|i| shard(i, Some(i as i64 * 100))).collect();
        shards[1].iterator_age_ms = None;
        shards[9].caught_up = true;
        let mut stuck = vec![false; 10];
        stuck[1] = true;
        stuck[2] = true;
        // Stuck 1 and 2 (low ages), then 8 and 7 (9 is caught up: age 0).
        assert_eq!(
            chosen(&shards, &stuck, ShardSeries::Top(4)),
            vec![1, 2, 7, 8]
        );
        assert_eq!(chosen(&shards, &stuck, ShardSeries::Top(1)), vec![2]);
        assert_eq!(
            chosen(&shards, &stuck, ShardSeries::Top(10)),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            chosen(&shards, &stuck, ShardSeries::Top(0)),
            Vec::<usize>::new()
        );
        assert_eq!(
            chosen(&shards, &stuck, ShardSeries::None),
            Vec::<usize>::new()
        );
        assert_eq!(chosen(&shards, &stuck, ShardSeries::All).len(), 10);
    }

    #[test]
    fn equal_ranks_go_to_the_lower_shard_id_every_time() {
        let shards: Vec<ShardSnapshot> = (0..1_000).map(|i| shard(i, Some(5))).collect();
        let stuck = vec![false; 1_000];
        for _ in 0..3 {
            assert_eq!(chosen(&shards, &stuck, ShardSeries::Top(3)), vec![0, 1, 2]);
        }
    }
}
