//! The few rules several sections share: which characters a name may have, the longest
//! duration where AWS sets no limit, and how a relative path in the config resolves.

use std::path::{Path, PathBuf};

/// Longest duration (seconds) accepted where no AWS limit applies: one year.
pub const MAX_SECONDS: u64 = 31_536_000;

/// Letters, digits, '-', '_' and '.': the characters of stream, table, mapping and
/// consumer names.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// `path` against `base` unless it is absolute or `base` is empty or `.`.
pub fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base.as_os_str().is_empty() || base == Path::new(".") {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
