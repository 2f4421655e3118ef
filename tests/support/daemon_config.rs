//! Daemon config text for the tests that run a real stream through the engine: one
//! function, `fails-on-poison` (an error for any record whose data holds "poison"), and
//! mappings of it with a fast pace, so a test waits milliseconds, not seconds.
//!
//! Built as TOML text, not as `Config` values, so the tests go through the same parsing
//! and validation a user's file does.

use std::path::Path;

/// A config with its state under `dir`, the function `fails-on-poison`, and `mappings`
/// (TOML, e.g. from `mapping`).
pub fn fails_on_poison(dir: &Path, mappings: &str) -> String {
    format!(
        r#"state_dir = "{state}"

[[functions]]
name = "fails-on-poison"

[[functions.rules]]
when_data_contains = "poison"
action = "error"
{mappings}"#,
        state = dir.join("state").display()
    )
}

/// One mapping `name` of `fails-on-poison`, from TRIM_HORIZON, with `extra` settings (TOML
/// lines, each ending in a newline) and a fast pace.
pub fn mapping(name: &str, event_source_arn: &str, extra: &str) -> String {
    format!(
        r#"
[[mappings]]
name = "{name}"
event_source_arn = "{event_source_arn}"
function_name = "fails-on-poison"
starting_position = "TRIM_HORIZON"
{extra}{FAST_PACE}"#
    )
}

/// The `[mappings.pace]` table of a test mapping (after its other settings): reads every
/// 50-100 ms, backoffs of tens of ms, shards listed every second.
pub const FAST_PACE: &str = "[mappings.pace]
poll_interval_ms = 100
min_read_interval_ms = 50
retry_backoff_initial_ms = 50
retry_backoff_max_ms = 200
throttle_backoff_initial_ms = 50
throttle_backoff_max_ms = 500
discovery_interval_seconds = 1
shutdown_grace_seconds = 2
";

/// A mapping's on-failure destination setting (a TOML line).
pub fn on_failure(destination: &str) -> String {
    format!("destination_config = {{ on_failure = {{ destination = \"{destination}\" }} }}\n")
}
