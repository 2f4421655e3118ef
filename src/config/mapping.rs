//! The engine's view of a mapping: every parameter resolved to a concrete, validated value.

use std::path::PathBuf;

use crate::model::StreamKind;

/// Where a shard without a checkpoint starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    /// Epoch milliseconds.
    AtTimestamp(i64),
}

/// What to do when the on-failure destination keeps failing after its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDestinationFailure {
    /// Like AWS: drop it (counted in DroppedEventCount), but append the record to the
    /// local dead-letter file first.
    DeadLetter,
    /// Keep the shard blocked until the send works.
    Block,
}

/// Polling pace and backoffs, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Pace {
    pub poll_interval_ms: u64,
    pub min_read_interval_ms: u64,
    pub get_records_limit: usize,
    pub discovery_interval_ms: u64,
    pub retry_backoff_initial_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub throttle_backoff_initial_ms: u64,
    pub throttle_backoff_max_ms: u64,
    pub destination_retry_ms: u64,
    pub shutdown_grace_ms: u64,
}

impl Pace {
    /// The AWS pace for a stream kind.
    pub fn aws_default(kind: StreamKind) -> Pace {
        let (poll, min_read, limit) = match kind {
            StreamKind::Kinesis => (1000, 200, crate::limits::KINESIS_GET_RECORDS_MAX_RECORDS),
            StreamKind::Dynamodb => (250, 250, crate::limits::DYNAMODB_GET_RECORDS_MAX_RECORDS),
        };
        Pace {
            poll_interval_ms: poll,
            min_read_interval_ms: min_read,
            get_records_limit: limit,
            discovery_interval_ms: 60_000,
            retry_backoff_initial_ms: 500,
            retry_backoff_max_ms: 30_000,
            throttle_backoff_initial_ms: 200,
            throttle_backoff_max_ms: 10_000,
            destination_retry_ms: 60_000,
            shutdown_grace_ms: 5_000,
        }
    }
}

/// The enhanced fan-out consumer a Kinesis mapping reads through (SubscribeToShard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FanOutConsumer {
    /// `event_source_arn` was this consumer's ARN: it must exist, as AWS requires.
    Arn(String),
    /// `consumer_name`: registered on the stream at start unless it already has it.
    Name(String),
}

/// One event source mapping, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub name: String,
    /// The stream's ARN (also when the mapping names a consumer ARN): what the events'
    /// `eventSourceARN` and the failure records' `streamArn` hold.
    pub event_source_arn: String,
    /// `Some`: read through this enhanced fan-out consumer instead of GetRecords.
    pub consumer: Option<FanOutConsumer>,
    pub stream_kind: StreamKind,
    pub function_name: String,
    pub enabled: bool,
    pub batch_size: usize,
    pub maximum_batching_window_ms: u64,
    pub starting_position: StartingPosition,
    pub parallelization_factor: u32,
    pub bisect_batch_on_function_error: bool,
    /// `None`: retry until the records expire (-1).
    pub maximum_retry_attempts: Option<u32>,
    /// `None`: records never expire (-1).
    pub maximum_record_age_ms: Option<i64>,
    /// On-failure destination: `file://PATH` for a local JSONL file, PATH already resolved
    /// against the config's directory. (SQS/SNS ARNs are refused by `resolve` in this build.)
    pub on_failure_destination: Option<String>,
    pub report_batch_item_failures: bool,
    pub tumbling_window_in_seconds: u32,
    /// The patterns as given (for `describe`); `filter` is them compiled.
    pub filter_patterns: Vec<String>,
    pub filter: crate::filter::FilterCriteria,
    /// `metrics_config.metrics`, validated (`EventCount` or nothing): only echoed, since
    /// it switches CloudWatch metrics that esm-sim does not publish.
    pub metrics: Vec<String>,
    pub on_destination_failure: OnDestinationFailure,
    pub pace: Pace,
}

/// The whole config, validated: what `run`, `simulate` and `validate` work from.
#[derive(Clone, Debug)]
pub struct Config {
    pub state_dir: PathBuf,
    pub dead_letter_file: PathBuf,
    /// Longest time from a checkpoint save to it being durable (see `checkpoint::embedded`).
    pub checkpoint_flush_ms: u64,
    pub aws: super::schema::AwsIdentity,
    pub simulation: Simulation,
    pub stats_interval_ms: u64,
    pub admin: Admin,
    pub coordination: Coordination,
    pub streams: Vec<super::schema::SimStreamConfig>,
    pub functions: Vec<super::schema::FunctionConfig>,
    pub mappings: Vec<Mapping>,
}

/// `[coordination]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coordination {
    /// `None`: the embedded store, one worker. `Some`: a DynamoDB lease table.
    pub lease_table: Option<LeaseTableSettings>,
}

/// A shared DynamoDB lease table and this worker's part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseTableSettings {
    pub table: String,
    pub worker_id: String,
    pub timing: crate::coordination::timing::LeaseTiming,
    pub max_steals_per_pass: usize,
}

/// `[admin]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    /// `None`: disabled.
    pub listen: Option<std::net::SocketAddr>,
    /// `listen` is the default address, not one the config asked for: when it is taken,
    /// the server takes a free port instead (the CLI finds it in `admin.addr`).
    pub listen_is_default: bool,
    /// The bearer token (read from `token_env` when given that way).
    pub token: Option<String>,
    pub stuck_after_ms: i64,
    /// Which shards `/metrics` gives series of their own (every mapping gets its totals).
    pub shard_series: ShardSeries,
}

/// `[admin] metrics_shard_series` (and `metrics_top_shards`): which shards of a mapping
/// get per-shard series in `/metrics`, on top of the per-mapping totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSeries {
    /// None: the per-mapping totals only.
    None,
    /// Up to this many shards per mapping: the stuck ones first, then the highest
    /// iterator ages.
    Top(usize),
    /// Every shard (a scrape grows by ~3.6 KB per shard).
    All,
}

#[derive(Clone, Debug)]
pub struct Simulation {
    pub seed: u64,
    /// Epoch milliseconds at which `simulate` starts.
    pub start_ms: i64,
    pub max_duration_ms: i64,
    /// Workers of `simulate` (1..=64; over 1 only with a lease table).
    pub workers: usize,
    /// What happens to workers when, in time order (ties in file order).
    pub worker_events: Vec<WorkerEvent>,
}

/// One crash, pause, stop or start of a simulated worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerEvent {
    /// 1-based, as in the config and in the worker id `worker-N`.
    pub worker: usize,
    /// Virtual milliseconds from the start of the simulation.
    pub at_ms: i64,
    pub action: WorkerAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerAction {
    /// kill -9: no hand-back, in-flight work lost.
    Crash,
    /// SIGSTOP, then SIGCONT after `for_ms`.
    Pause { for_ms: i64 },
    /// SIGTERM: shard tasks stop, checkpoints are written, leases handed back.
    Stop,
    /// The worker joins (or comes back after a crash or stop).
    Start,
}

impl Mapping {
    /// The event source the mapping reads, as Lambda tells mappings apart (one per event
    /// source and function): the stream, or the consumer, an event source of its own.
    pub fn event_source(&self) -> String {
        match &self.consumer {
            None => self.event_source_arn.clone(),
            Some(FanOutConsumer::Arn(arn)) => arn.clone(),
            Some(FanOutConsumer::Name(name)) => {
                format!("{}/consumer/{name}", self.event_source_arn)
            }
        }
    }
}

impl Config {
    /// The simulated stream a mapping reads (`None` only for a hand-built config).
    pub fn stream_of(&self, mapping: &Mapping) -> Option<&super::schema::SimStreamConfig> {
        self.streams
            .iter()
            .find(|s| s.arn(&self.aws) == mapping.event_source_arn)
    }

    /// The function a mapping invokes (`None` only for a hand-built config).
    pub fn function_of(&self, mapping: &Mapping) -> Option<&super::schema::FunctionConfig> {
        self.functions
            .iter()
            .find(|f| f.name == mapping.function_name)
    }
}
