//! Every record's deliveries to the function in a simulation of several workers: which
//! worker invoked it, when, and whether the answer came back to that worker as a success.
//!
//! The report reads failover from it: records invoked more than once (duplicates), what
//! was in flight on a worker when it crashed or paused, and what was replayed after. The
//! count of successes a record had beyond its first is what the workers' summed
//! `records_succeeded` counts twice, so simulate subtracts it to keep conservation (a
//! response without a function error counts as a success of all its records: exact
//! unless a partial batch response is replayed across workers).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::function::InvokeResult;
use crate::model::{ShardId, StreamRecord};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Not back at the worker (still running, or the worker is paused or dead).
    Pending,
    Succeeded,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Delivery {
    worker: usize,
    at_ms: i64,
    answered_at_ms: Option<i64>,
    answer: Answer,
}

#[derive(Default)]
struct Inner {
    /// By (mapping, shard, sequence number).
    index: HashMap<(String, String, String), usize>,
    /// Per record, in the order records were first delivered.
    records: Vec<Vec<Delivery>>,
    /// Per record, its (mapping, shard).
    shards: Vec<(String, String)>,
}

/// Where one invocation's deliveries sit: (record, delivery) indexes.
pub type DeliveryIds = Vec<(usize, usize)>;

#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

/// Duplicates in the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Duplicates {
    /// Records invoked more than once.
    pub records: u64,
    /// Invocations of a record beyond its first.
    pub extra_deliveries: u64,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `records` reached the function from `worker` at `at_ms`.
    pub fn delivered(
        &self,
        mapping: &str,
        shard: &ShardId,
        records: &[StreamRecord],
        worker: usize,
        at_ms: i64,
    ) -> DeliveryIds {
        let mut inner = self.lock();
        let inner = &mut *inner;
        records
            .iter()
            .map(|r| {
                let key = (
                    mapping.to_string(),
                    shard.0.clone(),
                    r.sequence_number.0.clone(),
                );
                let next = inner.records.len();
                let at = *inner.index.entry(key).or_insert(next);
                if at == next {
                    inner.records.push(Vec::new());
                    inner.shards.push((mapping.to_string(), shard.0.clone()));
                }
                let deliveries = &mut inner.records[at];
                deliveries.push(Delivery {
                    worker,
                    at_ms,
                    answered_at_ms: None,
                    answer: Answer::Pending,
                });
                (at, deliveries.len() - 1)
            })
            .collect()
    }

    /// The answer to the deliveries `ids` reached their worker at `at_ms`.
    pub fn returned(&self, ids: &DeliveryIds, result: &InvokeResult, at_ms: i64) {
        let answer = match result {
            InvokeResult::Response(r) if r.function_error.is_none() => Answer::Succeeded,
            _ => Answer::Failed,
        };
        let mut inner = self.lock();
        for &(record, delivery) in ids {
            if let Some(d) = inner
                .records
                .get_mut(record)
                .and_then(|r| r.get_mut(delivery))
            {
                d.answer = answer;
                d.answered_at_ms = Some(at_ms);
            }
        }
    }

    pub fn duplicates(&self) -> Duplicates {
        let inner = self.lock();
        let mut out = Duplicates::default();
        for deliveries in inner.records.iter().filter(|d| d.len() > 1) {
            out.records += 1;
            out.extra_deliveries += deliveries.len() as u64 - 1;
        }
        out
    }

    /// Successes of a record beyond its first, summed by (mapping, shard): what the
    /// workers counted twice.
    pub fn succeeded_again(&self) -> BTreeMap<(String, String), u64> {
        let inner = self.lock();
        let mut out = BTreeMap::new();
        for (deliveries, shard) in inner.records.iter().zip(&inner.shards) {
            let ok = deliveries
                .iter()
                .filter(|d| d.answer == Answer::Succeeded)
                .count() as u64;
            if ok > 1 {
                *out.entry(shard.clone()).or_default() += ok - 1;
            }
        }
        out
    }

    /// Invocations of records by `worker`, and how many of them someone invoked again later.
    pub fn delivered_by(&self, worker: usize) -> (u64, u64) {
        let inner = self.lock();
        let mut delivered = 0;
        let mut again = 0;
        for deliveries in &inner.records {
            for (i, d) in deliveries.iter().enumerate() {
                if d.worker == worker {
                    delivered += 1;
                    again += u64::from(i + 1 < deliveries.len());
                }
            }
        }
        (delivered, again)
    }

    /// Records in the function for `worker` at `at_ms` (invoked, answer not back), and
    /// records `worker` invoked by then that any worker invoked again after it.
    pub fn at_event(&self, worker: usize, at_ms: i64) -> (u64, u64) {
        let inner = self.lock();
        let mut in_flight = 0;
        let mut replayed = 0;
        for deliveries in &inner.records {
            let mine = |d: &&Delivery| d.worker == worker && d.at_ms <= at_ms;
            in_flight += u64::from(
                deliveries
                    .iter()
                    .filter(mine)
                    .any(|d| d.answered_at_ms.is_none_or(|t| t > at_ms)),
            );
            let invoked_here = deliveries.iter().filter(mine).count() > 0;
            replayed += u64::from(invoked_here && deliveries.iter().any(|d| d.at_ms > at_ms));
        }
        (in_flight, replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionResponse;
    use crate::model::{RecordBody, SequenceNumber};

    fn records(seqs: &[&str]) -> Vec<StreamRecord> {
        seqs.iter()
            .map(|s| StreamRecord {
                sequence_number: SequenceNumber(s.to_string()),
                approximate_arrival_ms: 0,
                body: RecordBody::Kinesis {
                    partition_key: "k".into(),
                    data: vec![],
                },
            })
            .collect()
    }

    #[test]
    fn counts_duplicates_successes_twice_in_flight_and_replays() {
        let ledger = Ledger::default();
        let shard = ShardId("s".into());
        let ok = InvokeResult::Response(FunctionResponse::answered(None, vec![]));
        let first = ledger.delivered("m", &shard, &records(&["1", "2"]), 1, 100);
        ledger.returned(&first, &ok, 150);
        ledger.delivered("m", &shard, &records(&["3", "4"]), 1, 200);
        // worker 1 crashes at 250 with 3 and 4 in flight; worker 2 replays from 2.
        let again = ledger.delivered("m", &shard, &records(&["2", "3", "4"]), 2, 300);
        ledger.returned(&again, &ok, 350);
        assert_eq!(
            ledger.duplicates(),
            Duplicates {
                records: 3,
                extra_deliveries: 3
            }
        );
        assert_eq!(
            ledger.succeeded_again(),
            BTreeMap::from([(("m".to_string(), "s".to_string()), 1)]),
            "record 2 succeeded twice"
        );
        assert_eq!(ledger.at_event(1, 250), (2, 3));
        assert_eq!(ledger.delivered_by(1), (4, 3));
        assert_eq!(ledger.delivered_by(2), (3, 0));
    }
}
