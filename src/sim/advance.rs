//! A simulated stream's world moving forward in time: producers writing records into the
//! open shards, scheduled splits and merges, DynamoDB shard rollovers, retention trimming.
//!
//! This is the only mutable state of a stream (`SimulatedStream` holds it behind its
//! mutex). It moves only forward and only when someone asks for a `now` past the last one,
//! and it always replays events in one order, so the same config and seed give the same
//! world whatever the readers do: at equal times a reshard applies before a rollover, both
//! before the records arriving at that millisecond, and producers with records at the same
//! millisecond go in config order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::items::Items;
use super::producer::{ProducerRun, ProducerSpec};
use super::record::Rec;
use super::shards::Shards;
use crate::config::schema::SimStreamConfig;
use crate::model::StreamKind;

/// A scheduled split or merge.
enum Reshard {
    Split(String),
    Merge(String, String),
}

pub(crate) struct StreamState {
    /// The `now` the stream has been advanced to.
    advanced_to: Option<i64>,
    pub shards: Shards,
    runs: Vec<ProducerRun>,
    /// (next arrival, producer) of every producer that will still write.
    pending: BinaryHeap<Reverse<(i64, u32)>>,
    reshards: Vec<(i64, Reshard)>,
    next_reshard: usize,
    rollover_ms: Option<i64>,
    next_rollover: Option<i64>,
    /// DynamoDB only.
    items: Option<Items>,
    /// Records produced so far on all shards, trimmed ones included.
    pub produced: u64,
}

impl StreamState {
    /// The world of `cfg` at its creation: its initial shards, every producer before its
    /// first record, the reshard schedule. `key_spaces[p]` is the key count of key prefix
    /// `p` (see `producer_specs`).
    pub fn new(
        cfg: &SimStreamConfig,
        arn: &str,
        seed: u64,
        created_at_ms: i64,
        specs: &[ProducerSpec],
        key_spaces: &[u64],
    ) -> StreamState {
        let kind = cfg.kind;
        let runs: Vec<ProducerRun> = specs.iter().map(ProducerRun::new).collect();
        let pending = runs
            .iter()
            .zip(specs)
            .filter_map(|(run, spec)| run.next_arrival.map(|a| Reverse((a, spec.index))))
            .collect();

        let mut reshards = Vec::new();
        for (i, r) in cfg.reshard.iter().enumerate() {
            if !r.at_seconds.is_finite() {
                tracing::warn!(stream = %cfg.name, reshard = i, "reshard skipped: at_seconds is not a number");
                continue;
            }
            let at = created_at_ms.saturating_add((r.at_seconds * 1000.0).round().max(0.0) as i64);
            match (&r.split, &r.merge) {
                (Some(shard), None) => reshards.push((at, Reshard::Split(shard.clone()))),
                (None, Some([a, b])) => reshards.push((at, Reshard::Merge(a.clone(), b.clone()))),
                _ => tracing::warn!(
                    stream = %cfg.name,
                    reshard = i,
                    "reshard skipped: it needs exactly one of split and merge"
                ),
            }
        }
        reshards.sort_by_key(|(at, _)| *at);

        let rollover_ms = match (kind, cfg.rollover_seconds) {
            (StreamKind::Dynamodb, Some(s)) if s > 0 => {
                Some(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
            }
            (StreamKind::Kinesis, Some(_)) => {
                tracing::warn!(stream = %cfg.name, "rollover_seconds ignored: Kinesis shards do not roll over");
                None
            }
            _ => None,
        };
        StreamState {
            advanced_to: None,
            shards: Shards::new(kind, arn, seed, cfg.shards, created_at_ms),
            runs,
            pending,
            reshards,
            next_reshard: 0,
            rollover_ms,
            next_rollover: rollover_ms.map(|r| created_at_ms.saturating_add(r)),
            items: (kind == StreamKind::Dynamodb).then(|| Items::new(key_spaces)),
            produced: 0,
        }
    }

    /// True when no producer will ever write again.
    pub fn producers_done(&self) -> bool {
        self.runs.iter().all(|r| r.next_arrival.is_none())
    }

    /// Generates everything up to `now_ms`, applies the reshards and rollovers due by then
    /// (each after the records arriving before it) and trims what `retention_ms` expired.
    pub fn advance(
        &mut self,
        specs: &[ProducerSpec],
        retention_ms: i64,
        stream_name: &str,
        now_ms: i64,
    ) {
        if self.advanced_to.is_some_and(|t| now_ms <= t) {
            return;
        }
        loop {
            let reshard_at = self.reshards.get(self.next_reshard).map(|(at, _)| *at);
            let (at, is_reshard) = match (reshard_at, self.next_rollover) {
                (Some(r), Some(o)) if r <= o => (r, true),
                (Some(r), None) => (r, true),
                (_, Some(o)) => (o, false),
                (None, None) => break,
            };
            if at > now_ms {
                break;
            }
            self.generate(specs, at);
            if is_reshard {
                self.apply_reshard(stream_name, at);
            } else {
                self.shards.rollover(at);
                // Every open slot now has a child shard: routes name the old ones.
                self.runs
                    .iter_mut()
                    .for_each(ProducerRun::invalidate_routes);
                self.next_rollover = self.rollover_ms.and_then(|r| at.checked_add(r));
            }
        }
        self.generate(specs, now_ms.saturating_add(1));
        self.advanced_to = Some(now_ms);
        self.shards.trim(now_ms.saturating_sub(retention_ms), |r| {
            specs
                .get(r.producer as usize)
                .map_or(i64::MIN, |s| s.arrival_ms(r.k))
        });
    }

    fn apply_reshard(&mut self, stream_name: &str, at: i64) {
        let Some((_, reshard)) = self.reshards.get(self.next_reshard) else {
            return;
        };
        self.next_reshard += 1;
        let (what, result) = match reshard {
            Reshard::Split(shard) => (format!("split of {shard}"), self.shards.split(shard, at)),
            Reshard::Merge(a, b) => (format!("merge of {a} and {b}"), self.shards.merge(a, b, at)),
        };
        match result {
            Ok(()) => self
                .runs
                .iter_mut()
                .for_each(ProducerRun::invalidate_routes),
            Err(reason) => {
                tracing::warn!(stream = %stream_name, at_ms = at, "{what} skipped: {reason}")
            }
        }
    }

    /// Writes every record that arrives before `limit_ms`, in arrival order.
    fn generate(&mut self, specs: &[ProducerSpec], limit_ms: i64) {
        let StreamState {
            shards,
            runs,
            pending,
            items,
            produced,
            ..
        } = self;
        while let Some(&Reverse((first_arrival, p))) = pending.peek() {
            if first_arrival >= limit_ms {
                break;
            }
            pending.pop();
            // This producer writes until another one is due first.
            let bound = pending.peek().map_or((i64::MAX, u32::MAX), |r| r.0);
            let (Some(spec), Some(run)) = (specs.get(p as usize), runs.get_mut(p as usize)) else {
                continue;
            };
            let mut arrival = first_arrival;
            loop {
                let k = run.next_k;
                let n = run.rng.below(spec.keys);
                if let Some(shard) = run.route(spec, n, &shards.open) {
                    let (meta, prev) = match items.as_mut() {
                        Some(items) => {
                            let (event, prev) = items.change(spec.prefix_id, n, p, k);
                            (event, Some(prev))
                        }
                        None => (0, None),
                    };
                    shards.push(
                        shard,
                        Rec {
                            k,
                            producer: p,
                            meta,
                        },
                        prev,
                        arrival,
                    );
                    *produced += 1;
                }
                run.next_k = k.saturating_add(1);
                run.next_arrival = if k == u64::MAX {
                    None
                } else {
                    spec.arrival_of(k + 1)
                };
                match run.next_arrival {
                    Some(a) if a < limit_ms && (a, p) < bound => arrival = a,
                    _ => break,
                }
            }
            if let Some(a) = run.next_arrival {
                pending.push(Reverse((a, p)));
            }
        }
    }
}
