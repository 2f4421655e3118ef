//! The load generator's records: which key each one carries, its amount, whether it is
//! poison, and its Kinesis data. Pure and deterministic: the same seed gives the same
//! records on every machine.
//!
//! The data is the simulated producer's JSON, written by the simulator's own writer
//! (`crate::sim::payload::KinesisData`), so a function rule such as
//! `when_data_contains = "\"poison\":true"` catches the load generator's poison records
//! exactly as it catches the simulated ones. Keys are `user-<n>`, `n` drawn uniformly from
//! `0..keys` with `crate::rng::Rng` seeded from the seed (amounts from an independent
//! generator of the same seed); record `k` is poison when `k % poison_every ==
//! poison_every - 1`, the simulator's rule, so `--poison-every 10` makes records 9, 19,
//! 29, ... poison: every tenth.

use crate::rng::Rng;
use crate::sim::payload::{push_json_escaped, KinesisData};

/// The partition key (and DynamoDB `pk`) prefix.
pub const KEY_PREFIX: &str = "user-";

/// What the generator is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Distinct keys (at least 1).
    pub keys: u64,
    /// Size of each Kinesis record's JSON (and about that of each DynamoDB item).
    pub payload_bytes: usize,
    /// Every Nth record is poison (N >= 1); None: none is.
    pub poison_every: Option<u64>,
    pub seed: u64,
}

/// One generated record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Its index in the run, from 0.
    pub k: u64,
    /// Its key index: the key is `user-<n>`.
    pub n: u64,
    pub partition_key: String,
    /// 1..=1000.
    pub amount: u64,
    pub poison: bool,
}

/// Whether record `k` is poison with one record in `every` poison.
pub fn is_poison(k: u64, every: Option<u64>) -> bool {
    every.is_some_and(|n| n > 0 && k % n == n - 1)
}

/// The endless sequence of records of a spec.
pub struct Generator {
    spec: GeneratorSpec,
    key_prefix_json: String,
    keys: Rng,
    amounts: Rng,
    next_k: u64,
}

impl Generator {
    pub fn new(spec: GeneratorSpec) -> Generator {
        let mut key_prefix_json = String::new();
        push_json_escaped(&mut key_prefix_json, KEY_PREFIX);
        Generator {
            keys: Rng::derived(spec.seed, "load/keys"),
            amounts: Rng::derived(spec.seed, "load/amounts"),
            spec,
            key_prefix_json,
            next_k: 0,
        }
    }

    pub fn spec(&self) -> &GeneratorSpec {
        &self.spec
    }

    /// The simulated producer's JSON for `record` (producer 0).
    pub fn kinesis_data(&self, record: &Generated) -> Vec<u8> {
        let mut digits = itoa::Buffer::new();
        KinesisData {
            producer: 0,
            k: record.k,
            key_prefix_json: &self.key_prefix_json,
            n_digits: digits.format(record.n),
            amount: record.amount,
            poison: record.poison,
            payload_bytes: self.spec.payload_bytes,
        }
        .write()
    }
}

impl Iterator for Generator {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        let k = self.next_k;
        self.next_k += 1;
        let n = self.keys.below(self.spec.keys.max(1));
        Some(Generated {
            k,
            n,
            partition_key: format!("{KEY_PREFIX}{n}"),
            amount: self.amounts.below(1000) + 1,
            poison: is_poison(k, self.spec.poison_every),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec(seed: u64) -> GeneratorSpec {
        GeneratorSpec {
            keys: 5,
            payload_bytes: 120,
            poison_every: Some(10),
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_records_and_another_seed_other_keys() {
        let a: Vec<Generated> = Generator::new(spec(7)).take(50).collect();
        let b: Vec<Generated> = Generator::new(spec(7)).take(50).collect();
        let c: Vec<Generated> = Generator::new(spec(8)).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(
            a.iter().map(|g| g.n).collect::<Vec<_>>(),
            c.iter().map(|g| g.n).collect::<Vec<_>>()
        );
        assert!(a
            .iter()
            .all(|g| g.n < 5 && g.partition_key == format!("user-{}", g.n)));
        assert!(a.iter().all(|g| (1..=1000).contains(&g.amount)));
        // Every key of a small key space shows up.
        let mut seen: Vec<u64> = a.iter().map(|g| g.n).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn every_tenth_record_is_poison_with_poison_every_10() {
        let records: Vec<Generated> = Generator::new(spec(1)).take(40).collect();
        let poison: Vec<u64> = records.iter().filter(|g| g.poison).map(|g| g.k).collect();
        assert_eq!(poison, vec![9, 19, 29, 39]);
        assert!(!is_poison(5, None));
        assert!(is_poison(0, Some(1)) && is_poison(1, Some(1)));
        assert!(!is_poison(3, Some(0)));
    }

    #[test]
    fn the_data_is_the_simulated_producers_json_of_the_configured_size() {
        let mut generator = Generator::new(spec(3));
        for _ in 0..20 {
            let record = generator.next().unwrap();
            let data = generator.kinesis_data(&record);
            assert_eq!(data.len(), 120);
            let v: Value = serde_json::from_slice(&data).unwrap();
            assert_eq!(v["producer"], 0);
            assert_eq!(v["n"], record.k);
            assert_eq!(v["key"], record.partition_key);
            assert_eq!(v["amount"], record.amount);
            assert_eq!(v.get("poison").is_some(), record.poison);
            let text = String::from_utf8(data).unwrap();
            assert_eq!(text.contains("\"poison\":true"), record.poison);
        }
    }
}
