//! The TOML file as written by people: serde types that mirror it key for key.
//!
//! Every table rejects unknown keys, so a typo is an error rather than a silent default.
//! Mapping parameters are `Option`s here because a mapping may also come from an AWS JSON
//! document (`aws_json = "esm.json"`); `resolve` merges both, applies the AWS defaults and
//! checks the AWS ranges, producing the engine's `Mapping` (see `mapping.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::model::{StreamKind, StreamViewType};

/// The whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Directory for checkpoints and the dead-letter file. Default `.esm-sim`.
    pub state_dir: Option<PathBuf>,
    /// Where discarded-batch records go when the on-failure destination cannot take them
    /// (or none is configured). Default `<state_dir>/dead-letter.jsonl`.
    pub dead_letter_file: Option<PathBuf>,
    /// Longest time from a checkpoint save to it being durable (surviving `kill -9` or a
    /// power loss), idle or not. Default 1000; 0 makes every save durable at once.
    pub checkpoint_flush_ms: Option<u64>,
    /// Region and account used to build ARNs of simulated resources.
    #[serde(default)]
    pub aws: AwsIdentity,
    #[serde(default)]
    pub simulation: SimulationSettings,
    #[serde(default)]
    pub log: LogSettings,
    /// The admin HTTP API and metrics of `run`.
    #[serde(default)]
    pub admin: AdminSettings,
    /// Where leases and checkpoints live: this process alone, or a DynamoDB lease table
    /// shared with other workers.
    #[serde(default)]
    pub coordination: CoordinationSettings,
    /// Simulated streams (the in-memory world).
    #[serde(default)]
    pub streams: Vec<SimStreamConfig>,
    /// Functions that mappings invoke.
    #[serde(default)]
    pub functions: Vec<FunctionConfig>,
    #[serde(default)]
    pub mappings: Vec<MappingEntry>,
    /// Values for the template given with `--template`: parameters, and attributes of
    /// resources the template does not define or whose attributes AWS chooses.
    #[serde(default)]
    pub template: TemplateSettings,
}

/// `[template]`: what a CloudFormation / SAM template's intrinsic functions resolve
/// against besides the template itself (see `config::template`). Unused without
/// `--template`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// Parameter values, over the template's `Default`s (a `--parameter` overrides them).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// By logical id: attribute name (`Arn`, `StreamArn`, ..., or `Ref` for what `Ref`
    /// gives) to value. They win over what esm-sim derives from the template.
    #[serde(default)]
    pub resources: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsIdentity {
    /// Region of simulated resources, and of AWS clients for names without an ARN.
    #[serde(default = "default_region")]
    pub region: String,
    /// Account of simulated resources' ARNs.
    #[serde(default = "default_account")]
    pub account_id: String,
    /// Endpoint of every AWS call (e.g. `http://localhost:4566` for LocalStack). Default:
    /// the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, else AWS.
    pub endpoint_url: Option<String>,
}

impl Default for AwsIdentity {
    fn default() -> Self {
        AwsIdentity {
            region: default_region(),
            account_id: default_account(),
            endpoint_url: None,
        }
    }
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_account() -> String {
    "123456789012".to_string()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSettings {
    /// Seed of every random choice of the simulated world and function. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual wall-clock time at which `simulate` starts (RFC 3339). Default 2026-01-01T00:00:00Z.
    #[serde(default = "default_start_time")]
    pub start_time: String,
    /// `simulate` stops after this much virtual time even if shards are not drained.
    #[serde(default = "default_max_duration")]
    pub max_duration_seconds: u64,
    /// Workers sharing the mappings through an in-memory lease table (needs
    /// `[coordination] store = "dynamodb"` when over 1). Default 1.
    #[serde(default = "default_workers")]
    pub workers: u64,
    /// Crashes, pauses, stops and late starts of workers, by virtual time.
    #[serde(default)]
    pub worker_events: Vec<WorkerEventConfig>,
}

/// One `[[simulation.worker_events]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerEventConfig {
    /// 1..=workers.
    pub worker: u64,
    /// Virtual seconds from the start of the simulation.
    pub at_seconds: u64,
    /// `"crash"` (kill -9), `"pause"` (SIGSTOP, SIGCONT after `for_seconds`), `"stop"`
    /// (SIGTERM: a clean hand-back) or `"start"` (joins, or comes back, now).
    pub action: String,
    /// How long a pause lasts (pause only).
    pub for_seconds: Option<u64>,
}

impl Default for SimulationSettings {
    fn default() -> Self {
        SimulationSettings {
            seed: default_seed(),
            start_time: default_start_time(),
            max_duration_seconds: default_max_duration(),
            workers: default_workers(),
            worker_events: Vec::new(),
        }
    }
}

fn default_seed() -> u64 {
    1
}

fn default_start_time() -> String {
    "2026-01-01T00:00:00Z".to_string()
}

fn default_max_duration() -> u64 {
    86_400
}

fn default_workers() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// How often `run` logs throughput and per-shard positions. Default 5 s.
    #[serde(default = "default_stats_interval")]
    pub stats_interval_seconds: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            stats_interval_seconds: default_stats_interval(),
        }
    }
}

fn default_stats_interval() -> u64 {
    5
}

/// `[coordination]`: one worker with its embedded store, or several sharing a DynamoDB
/// lease table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinationSettings {
    /// `"embedded"` (default) or `"dynamodb"`.
    pub store: Option<String>,
    /// The lease table (dynamodb). Default `esm-sim-leases`.
    pub table: Option<String>,
    /// This worker's name in the lease table. Default `<host name>-<pid>`.
    pub worker_id: Option<String>,
    /// A lease not renewed for this long is expired. 1..=600, default 10.
    pub lease_duration_seconds: Option<u64>,
    /// Most leases stolen in one take pass. 1..=1000, default 1 (KCL's).
    pub max_steals_per_pass: Option<u64>,
}

/// `[admin]`: the admin HTTP API, metrics and dashboard served by `run`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `false`: no admin server. Default true.
    #[serde(default = "default_admin_enabled")]
    pub enabled: bool,
    /// Address to listen on; port 0 picks a free port. A non-loopback address needs a
    /// token. Default `127.0.0.1:9400`, or a free port when that one is taken.
    pub listen: Option<String>,
    /// Bearer token every request must carry (except `GET /healthz`).
    pub token: Option<String>,
    /// ... or the environment variable holding it.
    pub token_env: Option<String>,
    /// A shard is stuck when it has not advanced for this long while records wait. 1..=86400, default 60.
    #[serde(default = "default_stuck_after")]
    pub stuck_after_seconds: u64,
    /// Which shards get per-shard series in `/metrics`: "top" (default), "all" or "none".
    pub metrics_shard_series: Option<String>,
    /// With "top": how many shards per mapping (stuck first, then the highest iterator
    /// ages). 1..=1000, default 20.
    pub metrics_top_shards: Option<u64>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: default_admin_enabled(),
            listen: None,
            token: None,
            token_env: None,
            stuck_after_seconds: default_stuck_after(),
            metrics_shard_series: None,
            metrics_top_shards: None,
        }
    }
}

fn default_admin_enabled() -> bool {
    true
}

fn default_stuck_after() -> u64 {
    60
}

/// One simulated stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimStreamConfig {
    /// Stream name (Kinesis) or table name (DynamoDB); the ARN is built from it.
    pub name: String,
    pub kind: StreamKind,
    /// Open shards at creation. 1..=100000.
    pub shards: u32,
    /// Records older than this are trimmed. Kinesis 24..=8760, DynamoDB always 24.
    /// Always `Some` in a resolved `Config` (the default 24 is written back).
    pub retention_hours: Option<u32>,
    /// DynamoDB only: what each change carries. Default NEW_AND_OLD_IMAGES.
    /// In a resolved `Config`: `Some` for every DynamoDB stream (the default is written
    /// back), `None` for Kinesis.
    pub stream_view_type: Option<StreamViewType>,
    /// DynamoDB only: every open shard closes after this long and gets one child.
    pub rollover_seconds: Option<u64>,
    #[serde(default)]
    pub producers: Vec<ProducerConfig>,
    /// Scheduled splits and merges (Kinesis).
    #[serde(default)]
    pub reshard: Vec<ReshardConfig>,
    #[serde(default)]
    pub faults: FaultConfig,
}

/// A producer writing synthetic records at a steady rate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// Records per second (> 0).
    pub rate_per_second: f64,
    /// When it starts, seconds after the stream was created. Default 0.
    #[serde(default)]
    pub start_seconds: f64,
    /// It stops after this long (seconds) ...
    pub duration_seconds: Option<f64>,
    /// ... or after this many records, whichever comes first. At least one of the two
    /// is required by `simulate`; `run` accepts a producer without either.
    pub records: Option<u64>,
    /// Number of distinct partition keys (`<key_prefix><n>`). Default 100.
    #[serde(default = "default_keys")]
    pub keys: u64,
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Size of each JSON payload in bytes. Default 100.
    #[serde(default = "default_payload_bytes")]
    pub payload_bytes: usize,
    /// Every Nth record is a poison record (its JSON holds `"poison":true`).
    pub poison_every: Option<u64>,
}

fn default_keys() -> u64 {
    100
}

fn default_key_prefix() -> String {
    "user-".to_string()
}

fn default_payload_bytes() -> usize {
    100
}

/// One scheduled reshard: exactly one of `split` and `merge`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshardConfig {
    /// Seconds after the stream was created.
    pub at_seconds: f64,
    /// Split this shard at the middle of its hash key range.
    pub split: Option<String>,
    /// Merge these two adjacent shards.
    pub merge: Option<[String; 2]>,
}

/// Faults injected into GetRecords of a simulated stream.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Fraction of GetRecords calls answered with ProvisionedThroughputExceeded (0..=1).
    #[serde(default)]
    pub throttle_rate: f64,
    /// Iterators older than this expire. Default 300 (Kinesis) or 900 (DynamoDB).
    /// Always `Some` in a resolved `Config` (the default is written back).
    pub iterator_expiry_seconds: Option<u64>,
    /// Every GetRecords call takes this long.
    #[serde(default)]
    pub read_latency_ms: u64,
}

/// A function a mapping invokes. Only `type = "simulated"` exists so far.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    pub name: String,
    #[serde(rename = "type", default = "default_function_type")]
    pub function_type: String,
    /// Invocation latency: log-normal with this median and 99th percentile (ms); a
    /// constant when `p99_ms` is absent.
    #[serde(default)]
    pub latency: LatencyConfig,
    /// Lambda's function timeout, 1..=900 s. Default 3.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Failure rules, tried in order; the first that applies decides the response.
    #[serde(default)]
    pub rules: Vec<FailureRule>,
    /// `type = "http"`: the URL the event is POSTed to.
    pub url: Option<String>,
    /// `type = "http"`: extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `type = "command"`: the program and its arguments, run without a shell.
    pub command: Option<Vec<String>>,
    /// `type = "command"`: environment variables added for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `type = "command"`: the program's working directory (relative to the config file).
    pub working_dir: Option<PathBuf>,
    /// `type = "lambda"`: the Lambda function's name or ARN (`name:qualifier` allowed).
    pub lambda_function: Option<String>,
}

fn default_function_type() -> String {
    "simulated".to_string()
}

fn default_timeout() -> u64 {
    3
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    #[serde(default)]
    pub p50_ms: f64,
    pub p99_ms: Option<f64>,
}

/// When a rule applies and what the function then does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRule {
    /// Applies to an invocation holding a record whose data contains this text.
    pub when_data_contains: Option<String>,
    /// Applies to this fraction of invocations, chosen from the seed (0..=1).
    pub fraction: Option<f64>,
    pub action: RuleAction,
    /// For `action = "malformed"`: the body returned. Default `{"batchItemFailures":"oops"}`.
    pub body: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Function error ("Unhandled").
    Error,
    /// A partial batch response naming the matching records (the first record for a
    /// `fraction` rule).
    Partial,
    /// Runs until the function timeout: a function error.
    Timeout,
    /// Returns `body` (not a valid batch response).
    Malformed,
    /// Lambda answers TooManyRequests: the invocation never reaches the function.
    Throttle,
}

/// A mapping as written: the AWS parameters in snake_case, or `aws_json` naming a file in
/// the AWS JSON form (PascalCase), or both (the TOML keys then override the file's).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingEntry {
    /// Name used in logs, checkpoints and reports. Defaults to the AWS JSON's UUID, else
    /// required.
    pub name: Option<String>,
    /// Path of an AWS JSON mapping (`create-event-source-mapping --cli-input-json` input or
    /// `get-event-source-mapping` output), relative to the config file.
    pub aws_json: Option<PathBuf>,
    pub event_source_arn: Option<String>,
    /// esm-sim's own: with a Kinesis stream ARN, read through this enhanced fan-out
    /// consumer, registered at start unless the stream already has it.
    pub consumer_name: Option<String>,
    pub function_name: Option<String>,
    pub enabled: Option<bool>,
    pub batch_size: Option<i64>,
    pub maximum_batching_window_in_seconds: Option<i64>,
    pub starting_position: Option<String>,
    /// Epoch seconds (fractions allowed) for AT_TIMESTAMP.
    pub starting_position_timestamp: Option<f64>,
    pub parallelization_factor: Option<i64>,
    pub bisect_batch_on_function_error: Option<bool>,
    pub maximum_retry_attempts: Option<i64>,
    pub maximum_record_age_in_seconds: Option<i64>,
    pub destination_config: Option<DestinationConfig>,
    pub function_response_types: Option<Vec<String>>,
    pub tumbling_window_in_seconds: Option<i64>,
    pub filter_criteria: Option<FilterCriteria>,
    /// Which CloudWatch metric groups AWS publishes (`{ metrics = ["EventCount"] }`):
    /// validated and echoed; esm-sim's own Prometheus counters do not depend on it.
    pub metrics_config: Option<MetricsConfig>,
    /// esm-sim's own: what to do when the on-failure destination keeps failing.
    pub on_destination_failure: Option<String>,
    /// esm-sim's own: polling pace and backoffs.
    pub pace: Option<PaceConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub on_failure: Option<OnFailure>,
    /// Accepted only to be rejected with AWS's message: streams have no OnSuccess.
    pub on_success: Option<OnFailure>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailure {
    pub destination: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default)]
    pub metrics: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterCriteria {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub pattern: String,
}

/// Polling pace, backoffs and grace periods. Every key is optional; the defaults follow
/// the AWS pace for the stream's kind.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaceConfig {
    /// Wait between GetRecords calls when the shard is caught up. Kinesis 1000, DynamoDB 250.
    pub poll_interval_ms: Option<u64>,
    /// Least wait between GetRecords calls while records are waiting. Kinesis 200 (5 calls/s), DynamoDB 250.
    pub min_read_interval_ms: Option<u64>,
    /// Records asked of one GetRecords call. Kinesis 10000, DynamoDB 1000.
    pub get_records_limit: Option<u64>,
    /// How often shards are re-listed. Default 60.
    pub discovery_interval_seconds: Option<u64>,
    /// Backoff after a failed invocation: doubles from initial to max, with jitter. 500 / 30000.
    pub retry_backoff_initial_ms: Option<u64>,
    pub retry_backoff_max_ms: Option<u64>,
    /// Backoff after a throttle or service error (not counted as an attempt). 200 / 10000.
    pub throttle_backoff_initial_ms: Option<u64>,
    pub throttle_backoff_max_ms: Option<u64>,
    /// How long a failing destination send is retried before the dead-letter file. Default 60.
    pub destination_retry_seconds: Option<u64>,
    /// On shutdown, how long an in-flight invocation may still finish. Default 5.
    pub shutdown_grace_seconds: Option<u64>,
}

impl SimStreamConfig {
    /// The ARN of this simulated stream, as AWS would spell it.
    pub fn arn(&self, aws: &AwsIdentity) -> String {
        match self.kind {
            StreamKind::Kinesis => format!(
                "arn:aws:kinesis:{}:{}:stream/{}",
                aws.region, aws.account_id, self.name
            ),
            StreamKind::Dynamodb => format!(
                "arn:aws:dynamodb:{}:{}:table/{}/stream/{}",
                aws.region, aws.account_id, self.name, SIMULATED_STREAM_LABEL
            ),
        }
    }
}

/// The stream label (creation time) of every simulated DynamoDB stream.
pub const SIMULATED_STREAM_LABEL: &str = "2026-01-01T00:00:00.000";

impl FunctionConfig {
    pub fn arn(&self, aws: &AwsIdentity) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            aws.region, aws.account_id, self.name
        )
    }
}
