//! The `requestContext.requestId` of failure records: a UUID that no other failure record
//! shares, whichever mapping, shard, run or config it comes from.
//!
//! Two sources, picked once per process by the command: `run` draws each id at random from
//! keys the OS seeds (std's `RandomState`), so two daemons or two runs cannot collide the
//! way ids drawn from a clock-seeded generator could; `simulate` must be reproducible, so
//! each id is a name-based (version 3, MD5) UUID over what identifies the failure (mapping,
//! shard, first and last sequence number, attempt, condition) within a namespace made of
//! the seed and the config, so two simulations of different configs never share an id.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};

/// What tells one failure record apart from every other one of the same simulation.
#[derive(Clone, Copy, Debug)]
pub struct FailureIdentity<'a> {
    pub mapping: &'a str,
    pub shard_id: &'a str,
    pub first_sequence_number: &'a str,
    pub last_sequence_number: &'a str,
    pub approximate_invoke_count: u32,
    pub condition: &'a str,
}

/// Where a process's failure-record request ids come from.
#[derive(Debug)]
pub enum RequestIds {
    /// `run`: random version-4 UUIDs from OS-seeded keys and a counter.
    Random {
        keys: std::collections::hash_map::RandomState,
        drawn: AtomicU64,
    },
    /// `simulate`: version-3 UUIDs within a namespace of the seed and the config.
    Derived { namespace: [u8; 16] },
}

impl RequestIds {
    pub fn random() -> RequestIds {
        RequestIds::Random {
            keys: std::collections::hash_map::RandomState::new(),
            drawn: AtomicU64::new(0),
        }
    }

    /// Ids that depend only on `seed`, the config (`config_fingerprint`: any text that
    /// changes with it) and each failure's identity.
    pub fn derived(seed: u64, config_fingerprint: &str) -> RequestIds {
        let mut md5 = Md5::new();
        md5.update(seed.to_be_bytes());
        md5.update(config_fingerprint.as_bytes());
        RequestIds::Derived {
            namespace: md5.finalize().into(),
        }
    }

    /// The request id of the failure record of `failure`.
    pub fn next(&self, failure: &FailureIdentity) -> String {
        match self {
            RequestIds::Random { keys, drawn } => {
                let n = drawn.fetch_add(1, Ordering::Relaxed);
                let high = keys.hash_one((n, 0u8));
                let low = keys.hash_one((n, 1u8));
                format_uuid((u128::from(high) << 64) | u128::from(low), 4)
            }
            RequestIds::Derived { namespace } => {
                let mut md5 = Md5::new();
                md5.update(namespace);
                for field in [
                    failure.mapping,
                    failure.shard_id,
                    failure.first_sequence_number,
                    failure.last_sequence_number,
                    &failure.approximate_invoke_count.to_string(),
                    failure.condition,
                ] {
                    // Length-prefixed, so no two different field lists hash the same text.
                    md5.update((field.len() as u64).to_be_bytes());
                    md5.update(field.as_bytes());
                }
                format_uuid(u128::from_be_bytes(md5.finalize().into()), 3)
            }
        }
    }
}

/// `bits` as an RFC 4122 UUID of `version` (variant 10xx).
pub fn format_uuid(bits: u128, version: u8) -> String {
    let bits = (bits & !(0xF << 76) & !(0x3 << 62)) | (u128::from(version) << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn many(ids: &RequestIds) -> Vec<String> {
        let mut out = Vec::new();
        for shard_id in ["shardId-000000000000", "shardId-000000000001"] {
            for first_sequence_number in ["100", "200", "300"] {
                for approximate_invoke_count in 1..4 {
                    out.push(ids.next(&FailureIdentity {
                        mapping: "orders",
                        shard_id,
                        first_sequence_number,
                        last_sequence_number: "900",
                        approximate_invoke_count,
                        condition: "RetryAttemptsExhausted",
                    }));
                }
            }
        }
        out
    }

    fn assert_well_formed(id: &str, version: char) {
        let groups: Vec<&str> = id.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
        assert!(id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(groups[2].chars().next(), Some(version), "{id}");
        assert!(
            matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')),
            "{id}"
        );
    }

    #[test]
    fn simulations_with_the_same_seed_and_config_give_the_same_ids() {
        let a = many(&RequestIds::derived(7, "config A"));
        let b = many(&RequestIds::derived(7, "config A"));
        assert_eq!(a, b);
    }

    #[test]
    fn simulations_with_the_same_seed_and_different_configs_share_no_id() {
        let a: BTreeSet<String> = many(&RequestIds::derived(7, "config A"))
            .into_iter()
            .collect();
        let b: BTreeSet<String> = many(&RequestIds::derived(7, "config B"))
            .into_iter()
            .collect();
        assert!(a.is_disjoint(&b));
        let other_seed: BTreeSet<String> = many(&RequestIds::derived(8, "config A"))
            .into_iter()
            .collect();
        assert!(a.is_disjoint(&other_seed));
    }

    #[test]
    fn ids_within_one_simulation_or_one_run_are_all_different() {
        for ids in [RequestIds::derived(7, "config A"), RequestIds::random()] {
            let all = many(&ids);
            let distinct: BTreeSet<&String> = all.iter().collect();
            assert_eq!(distinct.len(), all.len());
        }
    }

    #[test]
    fn two_runs_do_not_share_ids_even_for_the_same_failure() {
        let a: BTreeSet<String> = many(&RequestIds::random()).into_iter().collect();
        let b: BTreeSet<String> = many(&RequestIds::random()).into_iter().collect();
        assert!(a.is_disjoint(&b));
    }

    #[test]
    fn ids_are_well_formed_uuids_of_their_version() {
        for id in many(&RequestIds::derived(7, "config A")) {
            assert_well_formed(&id, '3');
        }
        for id in many(&RequestIds::random()) {
            assert_well_formed(&id, '4');
        }
    }
}
