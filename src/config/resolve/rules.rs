//! The few rules several sections share: which characters a name may have, the longest
//! duration where AWS sets no limit, and how a relative path in the config resolves.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// Longest duration (seconds) accepted where no AWS limit applies: one year.
pub const MAX_SECONDS: u64 = 31_536_000;

/// Letters, digits, '-', '_' and '.': the characters of stream, table, mapping and
/// consumer names.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Whether `name` has `lengths` characters (not bytes), each `allowed`: the shape of every
/// name AWS checks (each check words its own message).
pub(super) fn is_name(
    name: &str,
    lengths: RangeInclusive<usize>,
    allowed: impl Fn(char) -> bool,
) -> bool {
    lengths.contains(&name.chars().count()) && name.chars().all(allowed)
}

/// `path` against `base` unless it is absolute or `base` is empty or `.`.
pub fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base.as_os_str().is_empty() || base == Path::new(".") {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
