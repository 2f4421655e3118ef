//! Traffic for real streams: `esm-sim load` (generated records into a Kinesis stream, or
//! writes into a DynamoDB table whose stream the mapping reads), `esm-sim replay` (a
//! traffic file put back at its recorded pace) and `esm-sim record` (a stream's records
//! written as a traffic file).
//!
//! These commands exist to drive the daemon (`esm-sim run`) against Kinesis, LocalStack or
//! a local emulator with the same records the simulator produces, so the generated data is
//! the simulated producer's JSON with its `"poison":true` marker and the same function
//! rules apply to both.
//!
//! Files, pure first: `pacing` (when each record is due), `generate` (keys, amounts,
//! poison, payloads), `traffic_file` (the JSONL format); then the I/O: `stream` (resolving
//! a stream by name or ARN), `kinesis_put` (the paced PutRecords loop with its retries),
//! `kinesis_load`, `dynamodb_load`, `replay`, `record`, `progress` (the stderr bar) and
//! `commands` (the clap arguments and what each subcommand runs). Clients come only from
//! `crate::aws`.

pub mod commands;
pub mod dynamodb_load;
pub mod generate;
pub mod kinesis_load;
pub mod kinesis_put;
pub mod pacing;
pub mod progress;
pub mod record;
pub mod replay;
pub mod stream;
pub mod traffic_file;

use std::fmt;

use tokio_util::sync::CancellationToken;

pub use commands::{LoadArgs, RecordArgs, ReplayArgs};
pub use dynamodb_load::load_table;
pub use kinesis_load::load_stream;
pub use record::{record, RecordLimit, RecordSummary, StartFrom};
pub use replay::replay;

use generate::GeneratorSpec;
use kinesis_put::PutStats;
use pacing::Pacing;

/// Retries of one record (or change) before it is given up and counted as failed.
pub const DEFAULT_MAX_RETRIES: u32 = 10;

/// How a command runs: whether it may draw a progress bar (it still does only on a
/// terminal), and the token that stops it early (Ctrl-C in the CLI).
#[derive(Clone, Debug, Default)]
pub struct Controls {
    pub show_progress: bool,
    pub stop: CancellationToken,
}

/// What `load` generates, for a stream or a table.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    /// Records (changes) per second.
    pub rate: f64,
    pub duration_seconds: f64,
    /// Distinct keys `user-0` .. `user-<keys - 1>`.
    pub keys: u64,
    pub payload_bytes: usize,
    /// Every Nth record is poison.
    pub poison_every: Option<u64>,
    pub seed: u64,
    pub max_retries: u32,
}

impl LoadSpec {
    /// `rate` records a second for `duration_seconds`, with the CLI's defaults: 100 keys,
    /// 100-byte payloads, no poison, seed 1.
    pub fn new(rate: f64, duration_seconds: f64) -> LoadSpec {
        LoadSpec {
            rate,
            duration_seconds,
            keys: 100,
            payload_bytes: 100,
            poison_every: None,
            seed: 1,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Every problem, one per line.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if !(self.rate.is_finite() && self.rate > 0.0) {
            problems.push(format!("--rate {}: must be a number > 0", self.rate));
        }
        if !(self.duration_seconds.is_finite() && self.duration_seconds > 0.0) {
            problems.push(format!(
                "--duration {}: must be a number of seconds > 0",
                self.duration_seconds
            ));
        }
        if problems.is_empty() && self.pacing().total() == 0 {
            problems.push(format!(
                "--rate {} for --duration {} s is less than one record",
                self.rate, self.duration_seconds
            ));
        }
        if self.keys == 0 {
            problems.push("--keys 0: must be at least 1".to_string());
        }
        if self.payload_bytes > traffic_file::MAX_DATA_BYTES {
            problems.push(format!(
                "--payload-bytes {}: a Kinesis record holds at most {} bytes",
                self.payload_bytes,
                traffic_file::MAX_DATA_BYTES
            ));
        }
        if self.poison_every == Some(0) {
            problems.push("--poison-every 0: must be at least 1".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(problems.join("\n")))
        }
    }

    pub fn pacing(&self) -> Pacing {
        Pacing::rate(self.rate, self.duration_seconds)
    }

    pub fn generator_spec(&self) -> GeneratorSpec {
        GeneratorSpec {
            keys: self.keys,
            payload_bytes: self.payload_bytes,
            poison_every: self.poison_every,
            seed: self.seed,
        }
    }
}

/// What `load` or `replay` did; its `Display` is the summary line printed on stdout.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// "put" (records) or "wrote" (changes).
    pub verb: &'static str,
    pub unit: &'static str,
    /// Records put (changes written).
    pub count: u64,
    pub seconds: f64,
    /// The rate asked for (`load`).
    pub target_rate: Option<f64>,
    /// Entries (calls) that came back throttled, and were retried.
    pub throttled: u64,
    /// Entries that came back with another retryable error, and were retried.
    pub retried_errors: u64,
    /// Records given up after `max_retries` retries.
    pub failed: u64,
    pub max_retries: u32,
    pub last_failure: Option<String>,
    /// How the count splits (`load --table`: per call).
    pub detail: Option<String>,
    pub interrupted: bool,
}

impl Summary {
    pub(crate) fn from_put(stats: PutStats, target_rate: Option<f64>, max_retries: u32) -> Self {
        Summary {
            verb: "put",
            unit: "records",
            count: stats.put,
            seconds: stats.seconds,
            target_rate,
            throttled: stats.throttled,
            retried_errors: stats.retried_errors,
            failed: stats.failed,
            max_retries,
            last_failure: stats.last_failure,
            detail: None,
            interrupted: stats.interrupted,
        }
    }

    /// Records (changes) per second over the run.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.count as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// An error when records were given up, for the exit status.
    pub fn failure(&self) -> Option<anyhow::Error> {
        (self.failed > 0).then(|| {
            anyhow::anyhow!(
                "{} {} failed after {} retries; last: {}",
                self.failed,
                self.unit,
                self.max_retries,
                self.last_failure
                    .as_deref()
                    .unwrap_or("(no error recorded)")
            )
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.verb, self.count, self.unit)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        write!(
            f,
            " in {:.2} s: {:.1} {}/s",
            self.seconds,
            self.rate(),
            self.unit
        )?;
        if let Some(target) = self.target_rate {
            write!(f, " (target {target}/s)")?;
        }
        write!(
            f,
            "; {} throttled (retried), {} other errors (retried), {} failed",
            self.throttled, self.retried_errors, self.failed
        )?;
        if self.failed > 0 {
            write!(f, " (given up after {} retries)", self.max_retries)?;
        }
        if self.interrupted {
            write!(f, "; interrupted")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_count_time_rate_throttles_and_failures() {
        let mut summary = Summary::from_put(
            PutStats {
                put: 200,
                throttled: 3,
                seconds: 2.0,
                ..PutStats::default()
            },
            Some(100.0),
            10,
        );
        assert_eq!(
            summary.to_string(),
            "put 200 records in 2.00 s: 100.0 records/s (target 100/s); 3 throttled (retried), 0 other errors (retried), 0 failed"
        );
        assert!(summary.failure().is_none());
        summary.failed = 2;
        summary.last_failure = Some("ProvisionedThroughputExceededException".into());
        summary.interrupted = true;
        assert!(summary
            .to_string()
            .ends_with("2 failed (given up after 10 retries); interrupted"));
        let error = summary.failure().unwrap().to_string();
        assert_eq!(
            error,
            "2 records failed after 10 retries; last: ProvisionedThroughputExceededException"
        );
    }

    #[test]
    fn a_load_spec_refuses_what_cannot_run() {
        assert!(LoadSpec::new(100.0, 2.0).validate().is_ok());
        let error = |spec: LoadSpec| spec.validate().unwrap_err().to_string();
        assert!(error(LoadSpec::new(0.0, 2.0)).contains("--rate 0"));
        assert!(error(LoadSpec::new(1.0, f64::NAN)).contains("--duration NaN"));
        assert!(error(LoadSpec::new(1.0, 0.5)).contains("less than one record"));
        let mut spec = LoadSpec::new(10.0, 1.0);
        spec.keys = 0;
        spec.poison_every = Some(0);
        spec.payload_bytes = 2 << 20;
        assert_eq!(error(spec).lines().count(), 3);
    }
}
