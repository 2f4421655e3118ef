//! Producers: when each record arrives, which key it carries, and which shard it goes to.
//!
//! Everything about record `k` of a producer is a pure function of the config, the seed
//! and `k` (arrival time, key, amount, poison), so a shard stores only `(producer, k)` and
//! the payload is rebuilt on read. The key of record `k` is the `k`th draw of the
//! producer's SplitMix64 stream: `advance` draws sequentially, readers jump straight to draw
//! `k` (SplitMix64's state after `k` draws is `start + k * gamma`; a test pins the two
//! together). Routing hashes `key_prefix + n` with MD5; for key spaces up to a million keys
//! the resulting open slot is cached per key until the next split or merge, so steady-state
//! routing costs one array read instead of an MD5.

use md5::{Digest, Md5};

use super::payload::push_json_escaped;
use super::shards::{Shards, Slot};
use crate::config::schema::{ProducerConfig, SimStreamConfig};
use crate::rng::{stable_hash, Rng};

/// Key spaces up to this size get their routing cached (4 bytes per key).
const KEY_CACHE_LIMIT: u64 = 1_000_000;
const NO_SHARD: u32 = u32::MAX;
/// SplitMix64's increment (see `crate::rng`).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A producer's config, made total: every value usable as is.
pub(crate) struct ProducerSpec {
    pub index: u32,
    /// Records per second; `None` when the configured rate cannot produce anything.
    rate: Option<f64>,
    /// Absolute epoch ms of record 0.
    start_ms: i64,
    max_records: u64,
    duration_ms: Option<f64>,
    pub keys: u64,
    pub key_prefix: String,
    /// The prefix, JSON-escaped (without quotes).
    pub key_prefix_json: String,
    /// Producers sharing a key prefix write the same DynamoDB items.
    pub prefix_id: u32,
    pub payload_bytes: usize,
    poison_every: Option<u64>,
    key_seed: u64,
    amount_seed: u64,
}

impl ProducerSpec {
    pub fn new(
        cfg: &ProducerConfig,
        index: u32,
        stream_name: &str,
        seed: u64,
        created_at_ms: i64,
        prefix_id: u32,
    ) -> ProducerSpec {
        let rate = (cfg.rate_per_second.is_finite() && cfg.rate_per_second > 0.0)
            .then_some(cfg.rate_per_second);
        let start_offset = if cfg.start_seconds.is_finite() {
            (cfg.start_seconds * 1000.0).round().max(0.0)
        } else {
            0.0
        };
        let name = format!("{stream_name}/producer/{index}");
        let mut key_prefix_json = String::new();
        push_json_escaped(&mut key_prefix_json, &cfg.key_prefix);
        ProducerSpec {
            index,
            rate,
            start_ms: created_at_ms.saturating_add(start_offset as i64),
            max_records: cfg.records.unwrap_or(u64::MAX),
            duration_ms: cfg
                .duration_seconds
                .map(|d| if d.is_nan() { 0.0 } else { d * 1000.0 }),
            keys: cfg.keys.max(1),
            key_prefix: cfg.key_prefix.clone(),
            key_prefix_json,
            prefix_id,
            payload_bytes: cfg.payload_bytes,
            poison_every: cfg.poison_every.filter(|&n| n > 0),
            key_seed: seed ^ stable_hash(&name),
            amount_seed: seed ^ stable_hash(&format!("{name}/amount")),
        }
    }

    /// Arrival (epoch ms) of record `k`, or None when the producer stops before it.
    #[inline]
    pub fn arrival_of(&self, k: u64) -> Option<i64> {
        let rate = self.rate?;
        if k >= self.max_records {
            return None;
        }
        let offset = k as f64 * 1000.0 / rate;
        if let Some(duration) = self.duration_ms {
            if floor_ms(offset) as f64 >= duration {
                return None;
            }
        }
        Some(self.start_ms.saturating_add(floor_ms(offset)))
    }

    /// Arrival of a record that was produced (so exists).
    #[inline]
    pub fn arrival_ms(&self, k: u64) -> i64 {
        let offset = match self.rate {
            Some(rate) => floor_ms(k as f64 * 1000.0 / rate),
            None => 0,
        };
        self.start_ms.saturating_add(offset)
    }

    /// The generator whose `k`th `below(keys)` is the key of record `k`.
    pub fn key_rng(&self) -> Rng {
        Rng::new(self.key_seed)
    }

    /// The key index of record `k`, without drawing the `k` before it.
    #[inline]
    pub fn key_index(&self, k: u64) -> u64 {
        Rng::new(self.key_seed.wrapping_add(k.wrapping_mul(SPLITMIX_GAMMA))).below(self.keys)
    }

    /// The record's "amount" field, 1..=1000.
    #[inline]
    pub fn amount(&self, k: u64) -> u64 {
        Rng::new(self.amount_seed ^ k).below(1000) + 1
    }

    #[inline]
    pub fn is_poison(&self, k: u64) -> bool {
        self.poison_every.is_some_and(|n| (k % n) == n - 1)
    }

    /// `key_prefix + n`, from the digits of `n` (formatted once for the key and the data).
    pub fn key(&self, n_digits: &str) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + n_digits.len());
        key.push_str(&self.key_prefix);
        key.push_str(n_digits);
        key
    }

    /// MD5 of `key_prefix + n` as a big-endian u128 (the Kinesis hash key).
    pub fn key_hash(&self, n: u64) -> u128 {
        let mut md5 = Md5::new();
        md5.update(self.key_prefix.as_bytes());
        md5.update(itoa::Buffer::new().format(n));
        u128::from_be_bytes(md5.finalize().into())
    }
}

/// The producers of a stream, in config order, and the key space of each key prefix:
/// producers sharing a prefix write the same items, so a prefix's key space is the largest
/// key count among its producers.
pub(crate) fn producer_specs(
    cfg: &SimStreamConfig,
    seed: u64,
    created_at_ms: i64,
) -> (Vec<ProducerSpec>, Vec<u64>) {
    let mut prefixes: Vec<(String, u64)> = Vec::new();
    let specs = cfg
        .producers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let prefix_id = match prefixes
                .iter()
                .position(|(prefix, _)| *prefix == p.key_prefix)
            {
                Some(id) => {
                    prefixes[id].1 = prefixes[id].1.max(p.keys.max(1));
                    id
                }
                None => {
                    prefixes.push((p.key_prefix.clone(), p.keys.max(1)));
                    prefixes.len() - 1
                }
            };
            ProducerSpec::new(
                p,
                i as u32,
                &cfg.name,
                seed,
                created_at_ms,
                prefix_id as u32,
            )
        })
        .collect();
    let key_spaces = prefixes.into_iter().map(|(_, keys)| keys).collect();
    (specs, key_spaces)
}

/// `floor` of a non-negative offset: a truncating cast, which (unlike `f64::floor`
/// without SSE4.1) is not a libm call, and saturates instead of overflowing.
#[inline]
fn floor_ms(offset: f64) -> i64 {
    offset as i64
}

/// A producer's progress while the stream advances.
pub(crate) struct ProducerRun {
    pub next_k: u64,
    /// Arrival of `next_k`; None once the producer is done.
    pub next_arrival: Option<i64>,
    pub rng: Rng,
    /// Each key's shard (index), once routed: the shard itself rather than its open slot,
    /// so a record costs no look into the slots (48 bytes each, 480 KB at 10,000 shards).
    shard_cache: Option<Vec<u32>>,
}

impl ProducerRun {
    pub fn new(spec: &ProducerSpec) -> ProducerRun {
        let shard_cache =
            (spec.keys <= KEY_CACHE_LIMIT).then(|| vec![NO_SHARD; spec.keys as usize]);
        ProducerRun {
            next_k: 0,
            next_arrival: spec.arrival_of(0),
            rng: spec.key_rng(),
            shard_cache,
        }
    }

    /// The shard (index) of the open slot for key `n`; `None` with no open slot.
    #[inline]
    pub fn route(&mut self, spec: &ProducerSpec, n: u64, open: &[Slot]) -> Option<u32> {
        let shard_of = |open: &[Slot]| {
            open.get(Shards::slot_for(open, spec.key_hash(n)))
                .map(|slot| slot.shard)
        };
        match self
            .shard_cache
            .as_mut()
            .and_then(|c| c.get_mut(n as usize))
        {
            Some(cached) if *cached != NO_SHARD => Some(*cached),
            Some(cached) => {
                let shard = shard_of(open)?;
                *cached = shard;
                Some(shard)
            }
            None => shard_of(open),
        }
    }

    /// Forget cached routes (the open slots, or the shards in them, changed).
    pub fn invalidate_routes(&mut self) {
        if let Some(cache) = self.shard_cache.as_mut() {
            cache.fill(NO_SHARD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ProducerConfig {
        ProducerConfig {
            rate_per_second: 3.0,
            start_seconds: 2.0,
            duration_seconds: Some(10.0),
            records: None,
            keys: 7,
            key_prefix: "user-".into(),
            payload_bytes: 100,
            poison_every: Some(4),
        }
    }

    #[test]
    fn key_index_of_record_k_is_the_kth_sequential_draw() {
        let spec = ProducerSpec::new(&cfg(), 0, "s", 42, 0, 0);
        let mut rng = spec.key_rng();
        for k in 0..1000 {
            assert_eq!(spec.key_index(k), rng.below(spec.keys), "record {k}");
        }
        let mut named = Rng::derived(42, "s/producer/0");
        assert_eq!(spec.key_index(0), named.below(7));
    }

    #[test]
    fn arrivals_follow_the_rate_from_the_start_and_stop_at_the_duration() {
        let spec = ProducerSpec::new(&cfg(), 0, "s", 1, 1_000_000, 0);
        assert_eq!(spec.arrival_of(0), Some(1_002_000));
        assert_eq!(spec.arrival_of(1), Some(1_002_333));
        assert_eq!(spec.arrival_of(2), Some(1_002_666));
        assert_eq!(spec.arrival_of(29), Some(1_011_666));
        assert_eq!(spec.arrival_of(30), None);
        let mut limited = cfg();
        limited.records = Some(5);
        let spec = ProducerSpec::new(&limited, 0, "s", 1, 0, 0);
        assert!(spec.arrival_of(4).is_some());
        assert_eq!(spec.arrival_of(5), None);
    }

    #[test]
    fn a_producer_with_an_unusable_rate_produces_nothing() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut c = cfg();
            c.rate_per_second = rate;
            assert_eq!(ProducerSpec::new(&c, 0, "s", 1, 0, 0).arrival_of(0), None);
        }
    }

    #[test]
    fn every_nth_record_is_poison() {
        let spec = ProducerSpec::new(&cfg(), 0, "s", 1, 0, 0);
        let poison: Vec<u64> = (0..12).filter(|&k| spec.is_poison(k)).collect();
        assert_eq!(poison, vec![3, 7, 11]);
    }

    #[test]
    fn key_hash_is_the_md5_of_the_key_text() {
        let spec = ProducerSpec::new(&cfg(), 0, "s", 1, 0, 0);
        let digest: [u8; 16] = Md5::digest(b"user-42").into();
        assert_eq!(spec.key_hash(42), u128::from_be_bytes(digest));
        assert_eq!(spec.key("42"), "user-42");
    }
}
