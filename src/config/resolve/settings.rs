//! The small global sections: `[aws]` (the identity simulated ARNs are built from),
//! `[simulation]` (seed, start time, length; its workers in `workers`) and `[log]` (the stats interval).

use super::problems::Problems;
use super::rules::MAX_SECONDS;
use crate::config::mapping::Simulation;
use crate::config::schema::{AwsIdentity, LogSettings, SimulationSettings};

pub(super) fn check_aws(aws: &AwsIdentity, p: &mut Problems) {
    if aws.region.is_empty()
        || !aws
            .region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        p.add(
            "aws",
            format!(
                "region = {:?}: must be a region name like \"us-east-1\"",
                aws.region
            ),
        );
    }
    if aws.account_id.len() != 12 || !aws.account_id.chars().all(|c| c.is_ascii_digit()) {
        p.add(
            "aws",
            format!("account_id = {:?}: must be 12 digits", aws.account_id),
        );
    }
}

pub(super) fn resolve_simulation(s: &SimulationSettings, p: &mut Problems) -> Simulation {
    let start_ms = match chrono::DateTime::parse_from_rfc3339(&s.start_time) {
        Ok(time) => time.timestamp_millis(),
        Err(e) => {
            p.add(
                "simulation",
                format!(
                    "start_time = {:?}: not an RFC 3339 time ({e})",
                    s.start_time
                ),
            );
            0
        }
    };
    let max_duration_ms = p.seconds_as_ms(
        "simulation",
        "max_duration_seconds",
        s.max_duration_seconds,
        1,
        MAX_SECONDS,
    ) as i64;
    let (workers, worker_events) = super::workers::resolve_workers(s, max_duration_ms, p);
    Simulation {
        seed: s.seed,
        start_ms,
        max_duration_ms,
        workers,
        worker_events,
    }
}

pub(super) fn resolve_log(log: &LogSettings, p: &mut Problems) -> u64 {
    p.seconds_as_ms(
        "log",
        "stats_interval_seconds",
        log.stats_interval_seconds,
        1,
        MAX_SECONDS,
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;
    use crate::config::resolve::test_support::*;

    #[test]
    fn global_settings() {
        let m = mapping_toml("");
        assert_eq!(
            problems(&format!(
                "[simulation]\nmax_duration_seconds = 0\n[log]\nstats_interval_seconds = 0\n{m}"
            )),
            vec![
                "simulation: max_duration_seconds = 0: must be 1..=31536000",
                "log: stats_interval_seconds = 0: must be 1..=31536000",
            ]
        );
        assert_eq!(
            problems(&format!("[aws]\naccount_id = \"12\"\n{m}")),
            vec!["aws: account_id = \"12\": must be 12 digits"]
        );
        let config = parse(
            &format!("[simulation]\nstart_time = \"2026-01-01T01:00:00+01:00\"\n{WORLD}\n{m}"),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(config.simulation.start_ms, 1_767_225_600_000);
    }
}
