//! `pace`: a mapping's optional overrides of the engine's timing (polling, backoffs,
//! discovery, destination retries, shutdown grace, GetRecords limit).
//!
//! Each override is one row of a table (key, value, least value, unit, target) checked by
//! the same range rule, so a new knob is a new row.

use super::problems::Problems;
use crate::config::mapping::Pace;
use crate::config::schema::PaceConfig;
use crate::limits;
use crate::model::StreamKind;

/// Longest pace interval or backoff: one day.
pub const MAX_PACE_MS: u64 = 86_400_000;
/// Longest pace duration given in seconds: one day.
pub const MAX_PACE_SECONDS: u64 = 86_400;

/// How an override is written: milliseconds, or seconds the engine keeps as milliseconds.
#[derive(Clone, Copy)]
enum Unit {
    Ms,
    Seconds,
}

/// The AWS defaults for `kind`, with the given overrides.
pub(super) fn resolve_pace(
    config: Option<&PaceConfig>,
    kind: StreamKind,
    subject: &str,
    p: &mut Problems,
) -> Pace {
    let mut pace = Pace::aws_default(kind);
    let Some(c) = config else {
        return pace;
    };
    use Unit::{Ms, Seconds};
    let overrides = [
        (
            "poll_interval_ms",
            c.poll_interval_ms,
            1,
            Ms,
            &mut pace.poll_interval_ms,
        ),
        (
            "min_read_interval_ms",
            c.min_read_interval_ms,
            0,
            Ms,
            &mut pace.min_read_interval_ms,
        ),
        (
            "retry_backoff_initial_ms",
            c.retry_backoff_initial_ms,
            1,
            Ms,
            &mut pace.retry_backoff_initial_ms,
        ),
        (
            "retry_backoff_max_ms",
            c.retry_backoff_max_ms,
            1,
            Ms,
            &mut pace.retry_backoff_max_ms,
        ),
        (
            "throttle_backoff_initial_ms",
            c.throttle_backoff_initial_ms,
            1,
            Ms,
            &mut pace.throttle_backoff_initial_ms,
        ),
        (
            "throttle_backoff_max_ms",
            c.throttle_backoff_max_ms,
            1,
            Ms,
            &mut pace.throttle_backoff_max_ms,
        ),
        (
            "discovery_interval_seconds",
            c.discovery_interval_seconds,
            1,
            Seconds,
            &mut pace.discovery_interval_ms,
        ),
        // 0 is meaningful for these two: no destination retries, no shutdown grace.
        (
            "destination_retry_seconds",
            c.destination_retry_seconds,
            0,
            Seconds,
            &mut pace.destination_retry_ms,
        ),
        (
            "shutdown_grace_seconds",
            c.shutdown_grace_seconds,
            0,
            Seconds,
            &mut pace.shutdown_grace_ms,
        ),
    ];
    for (key, value, min, unit, target) in overrides {
        let Some(v) = value else { continue };
        let (max, ms_per_unit) = match unit {
            Ms => (MAX_PACE_MS, 1),
            Seconds => (MAX_PACE_SECONDS, 1000),
        };
        if p.range(subject, &format!("pace.{key}"), v, min, max) {
            *target = v * ms_per_unit;
        }
    }

    if let Some(limit) = c.get_records_limit {
        let max = match kind {
            StreamKind::Kinesis => limits::KINESIS_GET_RECORDS_MAX_RECORDS as u64,
            StreamKind::Dynamodb => limits::DYNAMODB_GET_RECORDS_MAX_RECORDS as u64,
        };
        if p.range(subject, "pace.get_records_limit", limit, 1, max) {
            pace.get_records_limit = limit as usize;
        }
    }

    for (what, initial, max) in [
        (
            "retry",
            pace.retry_backoff_initial_ms,
            pace.retry_backoff_max_ms,
        ),
        (
            "throttle",
            pace.throttle_backoff_initial_ms,
            pace.throttle_backoff_max_ms,
        ),
    ] {
        if max < initial {
            p.add(
                subject,
                format!("pace.{what}_backoff_max_ms = {max}: must be >= {what}_backoff_initial_ms ({initial})"),
            );
        }
    }
    pace
}

#[cfg(test)]
mod tests {
    use crate::config::resolve::test_support::*;

    #[test]
    fn pace_overrides_and_ranges() {
        let m = mapping("pace = { poll_interval_ms = 50, min_read_interval_ms = 0, retry_backoff_initial_ms = 10, retry_backoff_max_ms = 20, discovery_interval_seconds = 5, shutdown_grace_seconds = 0 }");
        assert_eq!(m.pace.poll_interval_ms, 50);
        assert_eq!(m.pace.min_read_interval_ms, 0);
        assert_eq!(m.pace.retry_backoff_initial_ms, 10);
        assert_eq!(m.pace.retry_backoff_max_ms, 20);
        assert_eq!(m.pace.discovery_interval_ms, 5000);
        assert_eq!(m.pace.shutdown_grace_ms, 0);
        assert_eq!(m.pace.throttle_backoff_initial_ms, 200);
        assert_eq!(
            mapping_problems("pace = { poll_interval_ms = 0 }"),
            vec!["mapping \"m\": pace.poll_interval_ms = 0: must be 1..=86400000"]
        );
        assert_eq!(
            mapping_problems("pace = { get_records_limit = 10001 }"),
            vec!["mapping \"m\": pace.get_records_limit = 10001: must be 1..=10000"]
        );
        assert!(mapping_problems("pace = { get_records_limit = 10000 }").is_empty());
        assert_eq!(
            mapping_problems("pace = { retry_backoff_initial_ms = 60000 }"),
            vec!["mapping \"m\": pace.retry_backoff_max_ms = 30000: must be >= retry_backoff_initial_ms (60000)"]
        );
        assert_eq!(
            mapping_problems("pace = { discovery_interval_seconds = 0 }"),
            vec!["mapping \"m\": pace.discovery_interval_seconds = 0: must be 1..=86400"]
        );
        assert!(mapping_problems(
            "pace = { throttle_backoff_initial_ms = 5, throttle_backoff_max_ms = 5 }"
        )
        .is_empty());
        let unknown = mapping_problems("pace = { poll_interval = 5 }");
        assert!(
            unknown[0].contains(
                ": mapping \"m\": pace.poll_interval: unknown key (did you mean poll_interval_ms?); allowed: poll_interval_ms, "
            ),
            "{unknown:?}"
        );
    }
}
