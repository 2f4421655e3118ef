//! The UUIDs the Lambda API names mappings by: a random one for each mapping created
//! through the API, and a stable one for each mapping of the config file, so that its UUID
//! is the same on every start and on every worker (a name that already is a UUID is kept).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};

use crate::event::request_id::format_uuid;

/// The namespace of the name-based UUIDs of config mappings.
const NAMESPACE: &str = "esm-sim event source mapping";

/// A config mapping's UUID: its name when the name is a UUID (lowercased), else a version-3
/// (MD5) UUID of the name.
pub fn config_mapping_uuid(name: &str) -> String {
    if is_uuid(name) {
        return name.to_ascii_lowercase();
    }
    let mut md5 = Md5::new();
    md5.update(NAMESPACE.as_bytes());
    md5.update([0]);
    md5.update(name.as_bytes());
    format_uuid(u128::from_be_bytes(md5.finalize().into()), 3)
}

/// A new random (version 4) UUID, from OS-seeded keys and a counter.
pub fn new_mapping_uuid() -> String {
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    let keys = std::collections::hash_map::RandomState::new();
    let n = DRAWN.fetch_add(1, Ordering::Relaxed);
    let high = keys.hash_one((n, 0u8));
    let low = keys.hash_one((n, 1u8));
    format_uuid((u128::from(high) << 64) | u128::from(low), 4)
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_mapping_keeps_its_uuid_across_starts_and_a_uuid_name_is_kept() {
        let a = config_mapping_uuid("orders-to-processor");
        assert_eq!(a, config_mapping_uuid("orders-to-processor"));
        assert_ne!(a, config_mapping_uuid("orders-to-processor-2"));
        assert!(is_uuid(&a));
        assert_eq!(&a[14..15], "3");
        let named = "14E0DB71-5D35-4EB5-B481-8945CF9D10C2";
        assert_eq!(config_mapping_uuid(named), named.to_ascii_lowercase());
    }

    #[test]
    fn new_uuids_are_version_4_and_all_different() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| new_mapping_uuid()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| is_uuid(id) && &id[14..15] == "4"));
    }

    #[test]
    fn only_the_8_4_4_4_12_hex_shape_is_a_uuid() {
        assert!(is_uuid("a1b2c3d4-0000-4000-8000-00000000000f"));
        for not in [
            "",
            "orders",
            "a1b2c3d4-0000-4000-8000-00000000000",
            "g1b2c3d4-0000-4000-8000-00000000000f",
            "a1b2c3d4-0000-4000-8000-00000000000f-1",
        ] {
            assert!(!is_uuid(not), "{not}");
        }
    }
}
