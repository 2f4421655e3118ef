//! From the file as written (`schema`) to the validated `Config` (`mapping`).
//!
//! This is the one place that knows the AWS defaults and ranges (spec section 1) and
//! esm-sim's own limits: it merges AWS JSON mappings, applies defaults, resolves relative
//! paths against the config's directory, resolves event source ARNs to simulated streams,
//! and refuses features this build does not implement yet instead of ignoring them. Every
//! problem is collected before failing, so one `esm-sim validate` lists them all, worded
//! like AWS's InvalidParameterValueException:
//! `mapping "orders": maximum_record_age_in_seconds = 30: must be -1 or 60..=604800`.
//!
//! Durations that become milliseconds are capped (a day for pace values, a year for the
//! rest) so that no later arithmetic on them can overflow.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::aws_json;
use super::mapping::{
    Admin, Config, FanOutConsumer, Mapping, OnDestinationFailure, Pace, Simulation,
    StartingPosition,
};
use super::schema::{
    AdminSettings, AwsIdentity, ConfigFile, FunctionConfig, LogSettings, MappingEntry, PaceConfig,
    ProducerConfig, ReshardConfig, SimStreamConfig, SimulationSettings,
};
use super::type_error;
use super::ConfigError;
use crate::filter::{FilterCriteria, FilterError};
use crate::limits;
use crate::model::{StreamKind, StreamViewType};

/// Longest duration (seconds) accepted where no AWS limit applies: one year.
pub const MAX_SECONDS: u64 = 31_536_000;
/// Longest pace interval or backoff: one day.
pub const MAX_PACE_MS: u64 = 86_400_000;
/// Longest pace duration given in seconds: one day.
pub const MAX_PACE_SECONDS: u64 = 86_400;
/// Latest accepted starting_position_timestamp: 9999-12-31T23:59:59Z.
pub const MAX_EPOCH_SECONDS: f64 = 253_402_300_799.0;
/// Default `state_dir`, relative to the config's directory.
pub const DEFAULT_STATE_DIR: &str = ".esm-sim";
/// `checkpoint_flush_ms` unless given: a crash re-delivers at most about a second.
pub const DEFAULT_CHECKPOINT_FLUSH_MS: u64 = 1_000;
/// Most `checkpoint_flush_ms`: a minute.
pub const MAX_CHECKPOINT_FLUSH_MS: u64 = 60_000;
/// Default dead-letter file name inside `state_dir`.
pub const DEFAULT_DEAD_LETTER_FILE: &str = "dead-letter.jsonl";

/// The TOML text as written. A syntax error, a value of the wrong type, an unknown or a
/// missing key is one problem naming the position, the entry, the key, the value and what
/// was expected (see `type_error`): `config.toml:14:14: mapping "orders": batch_size =
/// "ten": expected an integer`, prefixed by `origin` (the file) when given.
pub fn parse_toml(text: &str, origin: Option<&str>) -> Result<ConfigFile, ConfigError> {
    type_error::from_toml(text, origin).map_err(ConfigError::single)
}

/// Validate and resolve a parsed file. Relative paths resolve against `base_dir` (an empty
/// path or `.` keeps them relative to the current directory).
///
/// The streams of the returned config have their defaults written back: `retention_hours`,
/// `faults.iterator_expiry_seconds` are always `Some`, and `stream_view_type` is `Some`
/// for every DynamoDB stream (`None` for Kinesis), so the simulator may unwrap them.
pub fn resolve(file: ConfigFile, base_dir: &Path) -> Result<Config, ConfigError> {
    let mut p = Problems::default();
    let ConfigFile {
        state_dir,
        dead_letter_file,
        checkpoint_flush_ms,
        aws,
        simulation,
        log,
        admin,
        mut streams,
        functions,
        mappings,
    } = file;

    check_aws(&aws, &mut p);
    let simulation = resolve_simulation(&simulation, &mut p);
    let stats_interval_ms = resolve_log(&log, &mut p);
    let admin = resolve_admin(&admin, &mut p);
    let checkpoint_flush_ms = checkpoint_flush_ms.unwrap_or(DEFAULT_CHECKPOINT_FLUSH_MS);
    p.range(
        "top level",
        "checkpoint_flush_ms",
        checkpoint_flush_ms,
        0,
        MAX_CHECKPOINT_FLUSH_MS,
    );

    let state_dir = state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if state_dir.as_os_str().is_empty() {
        p.add("state_dir", "must not be empty");
    }
    let state_dir = join(base_dir, &state_dir);
    let dead_letter_file = match dead_letter_file {
        Some(file) if file.as_os_str().is_empty() => {
            p.add("dead_letter_file", "must not be empty");
            state_dir.join(DEFAULT_DEAD_LETTER_FILE)
        }
        Some(file) => join(base_dir, &file),
        None => state_dir.join(DEFAULT_DEAD_LETTER_FILE),
    };

    for (i, stream) in streams.iter_mut().enumerate() {
        resolve_stream(i, stream, &mut p);
    }
    for name in duplicates(streams.iter().map(|s| s.name.as_str())) {
        p.add(
            &format!("stream {name:?}"),
            "name is used by more than one [[streams]] entry",
        );
    }
    for (i, function) in functions.iter().enumerate() {
        check_function(i, function, &mut p);
    }
    for name in duplicates(functions.iter().map(|f| f.name.as_str())) {
        p.add(
            &format!("function {name:?}"),
            "name is used by more than one [[functions]] entry",
        );
    }

    if mappings.is_empty() {
        p.list.push("no [[mappings]]: nothing to run".to_string());
    }
    let world = World {
        aws: &aws,
        streams: &streams,
        functions: &functions,
        base_dir,
    };
    let mut resolved = Vec::new();
    let mut names = Vec::new();
    for (i, entry) in mappings.into_iter().enumerate() {
        let (name, mapping) = resolve_mapping(i, entry, &world, &mut p);
        if let Some(name) = name {
            names.push(name);
        }
        if let Some(mapping) = mapping {
            resolved.push(mapping);
        }
    }
    for name in duplicates(names.iter().map(String::as_str)) {
        p.add(
            &format!("mapping {name:?}"),
            "name is used by more than one [[mappings]] entry",
        );
    }
    // AWS allows one mapping per event source and function (ResourceConflictException).
    // A consumer is an event source of its own, apart from its stream.
    let mut seen: HashMap<(String, &str), &str> = HashMap::new();
    for m in &resolved {
        let source = match &m.consumer {
            None => m.event_source_arn.clone(),
            Some(FanOutConsumer::Arn(arn)) => arn.clone(),
            Some(FanOutConsumer::Name(name)) => format!("{}/consumer/{name}", m.event_source_arn),
        };
        if let Some(first) = seen.insert((source.clone(), &m.function_name), &m.name) {
            if first != m.name {
                p.add(
                    &format!("mapping {:?}", m.name),
                    format!(
                        "mapping {first:?} already maps {source} to function {:?} (AWS allows one mapping per event source and function)",
                        m.function_name
                    ),
                );
            }
        }
    }

    if !p.list.is_empty() {
        return Err(ConfigError { problems: p.list });
    }
    let functions = functions
        .into_iter()
        .map(|mut f| {
            f.working_dir = f.working_dir.map(|dir| join(base_dir, &dir));
            f
        })
        .collect();
    Ok(Config {
        state_dir,
        dead_letter_file,
        checkpoint_flush_ms,
        aws,
        simulation,
        stats_interval_ms,
        admin,
        streams,
        functions,
        mappings: resolved,
    })
}

/// `path` against `base` unless it is absolute or `base` is empty or `.`.
pub fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base.as_os_str().is_empty() || base == Path::new(".") {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Problems found so far, each `subject: message`.
#[derive(Default)]
struct Problems {
    list: Vec<String>,
}

impl Problems {
    fn add(&mut self, subject: &str, message: impl Display) {
        self.list.push(format!("{subject}: {message}"));
    }

    /// `key = value: must be lo..=hi` unless the value is in range.
    fn range<T: PartialOrd + Display>(
        &mut self,
        subject: &str,
        key: &str,
        value: T,
        lo: T,
        hi: T,
    ) -> bool {
        if value >= lo && value <= hi {
            true
        } else {
            self.add(subject, format!("{key} = {value}: must be {lo}..={hi}"));
            false
        }
    }

    /// `key = value: must be >= min` (or `> min` when `strict`); also refuses NaN and infinity.
    fn float_min(&mut self, subject: &str, key: &str, value: f64, min: f64, strict: bool) -> bool {
        let ok = if strict { value > min } else { value >= min };
        if !ok {
            let op = if strict { ">" } else { ">=" };
            self.add(subject, format!("{key} = {value}: must be {op} {min}"));
            false
        } else if !value.is_finite() {
            self.add(subject, format!("{key} = {value}: must be finite"));
            false
        } else {
            true
        }
    }
}

/// Every name that occurs more than once, once, in first-seen order.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(n, _)| n)
        .collect()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn check_aws(aws: &AwsIdentity, p: &mut Problems) {
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

fn resolve_simulation(s: &SimulationSettings, p: &mut Problems) -> Simulation {
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
    let max_duration_ms = if p.range(
        "simulation",
        "max_duration_seconds",
        s.max_duration_seconds,
        1,
        MAX_SECONDS,
    ) {
        (s.max_duration_seconds * 1000) as i64
    } else {
        0
    };
    Simulation {
        seed: s.seed,
        start_ms,
        max_duration_ms,
    }
}

fn resolve_log(log: &LogSettings, p: &mut Problems) -> u64 {
    if p.range(
        "log",
        "stats_interval_seconds",
        log.stats_interval_seconds,
        1,
        MAX_SECONDS,
    ) {
        log.stats_interval_seconds * 1000
    } else {
        0
    }
}

/// `[admin] listen` unless given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9400";
/// Most `stuck_after_seconds`: a day.
pub const MAX_STUCK_AFTER_SECONDS: u64 = 86_400;

/// `[admin]`: the listen address, the token (from `token_env` if so given) and the stuck
/// threshold. A non-loopback address without a token is refused: the API moves shards.
fn resolve_admin(a: &AdminSettings, p: &mut Problems) -> Admin {
    let stuck_after_ms = if p.range(
        "admin",
        "stuck_after_seconds",
        a.stuck_after_seconds,
        1,
        MAX_STUCK_AFTER_SECONDS,
    ) {
        (a.stuck_after_seconds * 1000) as i64
    } else {
        0
    };
    let token = match (&a.token, &a.token_env) {
        (Some(_), Some(_)) => {
            p.add("admin", "token and token_env are exclusive: give one");
            None
        }
        (Some(token), None) if token.is_empty() => {
            p.add("admin", "token = \"\": must not be empty");
            None
        }
        (Some(token), None) => Some(token.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => {
                p.add(
                    "admin",
                    format!("token_env = {var:?}: environment variable {var} is not set or empty"),
                );
                None
            }
        },
        (None, None) => None,
    };
    let listen_text = a.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let listen = if a.enabled {
        match listen_text.parse::<std::net::SocketAddr>() {
            Ok(addr) => {
                if !addr.ip().is_loopback() && token.is_none() && a.token_env.is_none() {
                    p.add(
                        "admin",
                        format!(
                            "listen = {listen_text:?}: a non-loopback address needs a token (set token or token_env)"
                        ),
                    );
                }
                Some(addr)
            }
            Err(_) => {
                p.add(
                    "admin",
                    format!("listen = {listen_text:?}: must be IP:PORT (e.g. \"127.0.0.1:9400\")"),
                );
                None
            }
        }
    } else {
        None
    };
    Admin {
        listen,
        listen_is_default: a.listen.is_none(),
        token,
        stuck_after_ms,
    }
}

/// Check one stream and write its defaults back.
fn resolve_stream(index: usize, s: &mut SimStreamConfig, p: &mut Problems) {
    let subject = if s.name.is_empty() {
        format!("stream #{}", index + 1)
    } else {
        format!("stream {:?}", s.name)
    };
    let subject = subject.as_str();
    let (what, max_len, min_len) = match s.kind {
        StreamKind::Kinesis => ("stream", limits::KINESIS_MAX_STREAM_NAME_CHARS, 1),
        StreamKind::Dynamodb => (
            "table",
            limits::DYNAMODB_MAX_TABLE_NAME_CHARS,
            limits::DYNAMODB_MIN_TABLE_NAME_CHARS,
        ),
    };
    let len = s.name.chars().count();
    if len < min_len || len > max_len || !s.name.chars().all(is_name_char) {
        p.add(
            subject,
            format!("name = {:?}: a {what} name must be {min_len}..={max_len} characters of letters, digits, '-', '_' and '.'", s.name),
        );
    }
    p.range(subject, "shards", s.shards, 1, 100_000);

    match s.kind {
        StreamKind::Kinesis => {
            let hours = s
                .retention_hours
                .unwrap_or(limits::KINESIS_DEFAULT_RETENTION_HOURS);
            p.range(
                subject,
                "retention_hours",
                hours,
                limits::KINESIS_DEFAULT_RETENTION_HOURS,
                limits::KINESIS_MAX_RETENTION_HOURS,
            );
            s.retention_hours = Some(hours);
            if let Some(view) = s.stream_view_type {
                p.add(
                    subject,
                    format!(
                        "stream_view_type = {:?}: only valid for kind = \"dynamodb\"",
                        view.as_str()
                    ),
                );
            }
            if let Some(rollover) = s.rollover_seconds {
                p.add(
                    subject,
                    format!("rollover_seconds = {rollover}: only valid for kind = \"dynamodb\""),
                );
            }
        }
        StreamKind::Dynamodb => {
            match s.retention_hours {
                None | Some(limits::DYNAMODB_STREAMS_RETENTION_HOURS) => {}
                Some(hours) => p.add(
                    subject,
                    format!("retention_hours = {hours}: DynamoDB streams always keep 24 hours (leave it out or set 24)"),
                ),
            }
            s.retention_hours = Some(limits::DYNAMODB_STREAMS_RETENTION_HOURS);
            s.stream_view_type = Some(
                s.stream_view_type
                    .unwrap_or(StreamViewType::NewAndOldImages),
            );
            if let Some(rollover) = s.rollover_seconds {
                p.range(subject, "rollover_seconds", rollover, 60, MAX_SECONDS);
            }
        }
    }

    for (i, producer) in s.producers.iter().enumerate() {
        check_producer(&format!("{subject} producer {}", i + 1), producer, p);
    }
    for (i, reshard) in s.reshard.iter().enumerate() {
        check_reshard(&format!("{subject} reshard {}", i + 1), s.kind, reshard, p);
    }

    let faults = &mut s.faults;
    if !(0.0..=1.0).contains(&faults.throttle_rate) {
        p.add(
            subject,
            format!(
                "faults.throttle_rate = {}: must be 0..=1",
                faults.throttle_rate
            ),
        );
    }
    let expiry = faults.iterator_expiry_seconds.unwrap_or(match s.kind {
        StreamKind::Kinesis => limits::KINESIS_ITERATOR_LIFETIME_SECONDS,
        StreamKind::Dynamodb => limits::DYNAMODB_ITERATOR_LIFETIME_SECONDS,
    });
    p.range(
        subject,
        "faults.iterator_expiry_seconds",
        expiry,
        1,
        MAX_PACE_SECONDS,
    );
    faults.iterator_expiry_seconds = Some(expiry);
    p.range(
        subject,
        "faults.read_latency_ms",
        faults.read_latency_ms,
        0,
        60_000,
    );
}

fn check_producer(subject: &str, producer: &ProducerConfig, p: &mut Problems) {
    p.float_min(
        subject,
        "rate_per_second",
        producer.rate_per_second,
        0.0,
        true,
    );
    p.float_min(subject, "start_seconds", producer.start_seconds, 0.0, false);
    if let Some(duration) = producer.duration_seconds {
        p.float_min(subject, "duration_seconds", duration, 0.0, true);
    }
    if let Some(records) = producer.records {
        if records < 1 {
            p.add(subject, format!("records = {records}: must be >= 1"));
        }
    }
    if producer.keys < 1 {
        p.add(subject, format!("keys = {}: must be >= 1", producer.keys));
    } else {
        // Kinesis partition keys are 1..=256 characters: `<key_prefix><n>`.
        let longest = producer.key_prefix.chars().count() + (producer.keys - 1).to_string().len();
        if longest > 256 {
            p.add(
                subject,
                format!("key_prefix = {:?}: partition keys would be {longest} characters, at most 256 allowed", producer.key_prefix),
            );
        }
    }
    p.range(
        subject,
        "payload_bytes",
        producer.payload_bytes,
        64,
        limits::KINESIS_MAX_RECORD_DATA_BYTES,
    );
    if let Some(every) = producer.poison_every {
        if every < 1 {
            p.add(subject, format!("poison_every = {every}: must be >= 1"));
        }
    }
}

/// `shardId-` and 12 digits, as Kinesis names shards.
pub fn is_shard_id(s: &str) -> bool {
    match s.strip_prefix("shardId-") {
        Some(digits) => digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn check_reshard(subject: &str, kind: StreamKind, r: &ReshardConfig, p: &mut Problems) {
    if kind != StreamKind::Kinesis {
        p.add(
            subject,
            "only Kinesis streams can be resharded (DynamoDB shards roll over: rollover_seconds)",
        );
    }
    p.float_min(subject, "at_seconds", r.at_seconds, 0.0, false);
    match (&r.split, &r.merge) {
        (Some(shard), None) => {
            if !is_shard_id(shard) {
                p.add(
                    subject,
                    format!("split = {shard:?}: not a shard id (shardId-NNNNNNNNNNNN)"),
                );
            }
        }
        (None, Some([a, b])) => {
            for shard in [a, b] {
                if !is_shard_id(shard) {
                    p.add(
                        subject,
                        format!("merge: {shard:?} is not a shard id (shardId-NNNNNNNNNNNN)"),
                    );
                }
            }
            if a == b {
                p.add(
                    subject,
                    format!("merge = [{a:?}, {b:?}]: needs two different shards"),
                );
            }
        }
        _ => p.add(subject, "needs exactly one of split and merge"),
    }
}

fn check_function(index: usize, f: &FunctionConfig, p: &mut Problems) {
    let subject = if f.name.is_empty() {
        format!("function #{}", index + 1)
    } else {
        format!("function {:?}", f.name)
    };
    let subject = subject.as_str();
    let len = f.name.chars().count();
    if !(1..=64).contains(&len)
        || !f
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        p.add(
            subject,
            format!(
                "name = {:?}: must be 1..=64 characters of letters, digits, '-' and '_'",
                f.name
            ),
        );
    }
    check_function_type(subject, f, p);
    p.range(
        subject,
        "timeout_seconds",
        f.timeout_seconds,
        1,
        limits::LAMBDA_MAX_TIMEOUT_SECONDS,
    );
    let p50_ok = p.float_min(subject, "latency.p50_ms", f.latency.p50_ms, 0.0, false);
    if let Some(p99) = f.latency.p99_ms {
        if p50_ok && p99.partial_cmp(&f.latency.p50_ms).is_none_or(|o| o.is_lt()) {
            p.add(
                subject,
                format!(
                    "latency.p99_ms = {p99}: must be >= p50_ms ({})",
                    f.latency.p50_ms
                ),
            );
        } else if !p99.is_finite() {
            p.add(subject, format!("latency.p99_ms = {p99}: must be finite"));
        }
    }
    for (i, rule) in f.rules.iter().enumerate() {
        let subject = format!("{subject} rule {}", i + 1);
        if rule.when_data_contains.is_none() && rule.fraction.is_none() {
            p.add(&subject, "needs when_data_contains or fraction (or both)");
        }
        if let Some(fraction) = rule.fraction {
            if !(0.0..=1.0).contains(&fraction) {
                p.add(&subject, format!("fraction = {fraction}: must be 0..=1"));
            }
        }
        if rule.body.is_some() && rule.action != super::schema::RuleAction::Malformed {
            p.add(&subject, "body is only valid with action = \"malformed\"");
        }
    }
}

/// The keys of each function type: required ones present, others' absent.
fn check_function_type(subject: &str, f: &FunctionConfig, p: &mut Problems) {
    let simulated_keys =
        !f.rules.is_empty() || f.latency.p50_ms != 0.0 || f.latency.p99_ms.is_some();
    let present = [
        ("url", f.url.is_some()),
        ("headers", !f.headers.is_empty()),
        ("command", f.command.is_some()),
        ("env", !f.env.is_empty()),
        ("working_dir", f.working_dir.is_some()),
        ("lambda_function", f.lambda_function.is_some()),
        ("rules / latency", simulated_keys),
    ];
    let (required, allowed): (&[&str], &[&str]) = match f.function_type.as_str() {
        "simulated" => (&[], &["rules / latency"]),
        "http" => (&["url"], &["url", "headers"]),
        "command" => (&["command"], &["command", "env", "working_dir"]),
        "lambda" => (&["lambda_function"], &["lambda_function"]),
        other => {
            p.add(
                subject,
                format!(
                    "type = {other:?}: must be \"simulated\", \"http\", \"command\" or \"lambda\""
                ),
            );
            return;
        }
    };
    for (key, is_set) in present {
        if is_set && !allowed.contains(&key) {
            p.add(
                subject,
                format!("{key}: not a setting of type = {:?}", f.function_type),
            );
        }
        if !is_set && required.contains(&key) {
            p.add(
                subject,
                format!("{key}: required for type = {:?}", f.function_type),
            );
        }
    }
    if let Some(url) = &f.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            p.add(
                subject,
                format!("url = {url:?}: must start with http:// or https://"),
            );
        }
    }
    if f.command
        .as_ref()
        .is_some_and(|c| c.first().is_none_or(|program| program.is_empty()))
    {
        p.add(
            subject,
            "command: must name a program: [\"python3\", \"handler.py\"]",
        );
    }
    if f.lambda_function.as_ref().is_some_and(|l| l.is_empty()) {
        p.add(subject, "lambda_function: must be a function name or ARN");
    }
}

/// What a mapping is checked against.
struct World<'a> {
    aws: &'a AwsIdentity,
    streams: &'a [SimStreamConfig],
    functions: &'a [FunctionConfig],
    base_dir: &'a Path,
}

/// Resolve one `[[mappings]]` entry: its name (for the uniqueness check) and, when it has
/// no problem, the mapping.
fn resolve_mapping(
    index: usize,
    toml_entry: MappingEntry,
    world: &World<'_>,
    p: &mut Problems,
) -> (Option<String>, Option<Mapping>) {
    let before = p.list.len();
    let unnamed = format!("mapping #{}", index + 1);

    let entry = match &toml_entry.aws_json {
        Some(path) => {
            let full = join(world.base_dir, path);
            match aws_json::load(&full) {
                Ok(file_entry) => aws_json::merge(toml_entry, file_entry),
                Err(e) => {
                    let subject = toml_entry
                        .name
                        .as_ref()
                        .map_or(unnamed, |n| format!("mapping {n:?}"));
                    p.add(&subject, format!("aws_json: {e}"));
                    return (toml_entry.name, None);
                }
            }
        }
        None => toml_entry,
    };

    let subject = match &entry.name {
        Some(name) if !name.is_empty() => format!("mapping {name:?}"),
        _ => unnamed,
    };
    let subject = subject.as_str();
    match &entry.name {
        None => p.add(subject, "name is required (or aws_json with a UUID)"),
        Some(name) => {
            let len = name.chars().count();
            if !(1..=128).contains(&len) || !name.chars().all(is_name_char) || name.starts_with('.')
            {
                p.add(
                    subject,
                    format!("name = {name:?}: must be 1..=128 characters of letters, digits, '-', '_' and '.', not starting with '.'"),
                );
            }
        }
    }

    // Event source.
    let stream = match &entry.event_source_arn {
        None => {
            p.add(subject, "event_source_arn is required");
            None
        }
        Some(arn) => match resolve_event_source(arn, world) {
            Ok(found) => Some(found),
            Err(message) => {
                p.add(subject, message);
                None
            }
        },
    };
    let consumer = stream.as_ref().and_then(|source| {
        resolve_consumer(entry.consumer_name.as_deref(), source)
            .map_err(|message| p.add(subject, message))
            .ok()
            .flatten()
    });
    let stream = stream.map(|source| (source.stream_arn, source.kind));
    let kind = stream.as_ref().map(|(_, kind)| *kind);

    // Function.
    let function_name = match &entry.function_name {
        None => {
            p.add(subject, "function_name is required");
            None
        }
        Some(given) => {
            let name = aws_json::function_name_of(given);
            if world.functions.iter().any(|f| f.name == name) {
                Some(name.to_string())
            } else {
                let defined: Vec<String> = world
                    .functions
                    .iter()
                    .map(|f| format!("{:?}", f.name))
                    .collect();
                let defined = if defined.is_empty() {
                    "no [[functions]] are defined".to_string()
                } else {
                    format!("defined: {}", defined.join(", "))
                };
                p.add(
                    subject,
                    format!("function_name = {given:?}: no such function ({defined})"),
                );
                None
            }
        }
    };

    let batch_size = entry.batch_size.unwrap_or(100);
    p.range(
        subject,
        "batch_size",
        batch_size,
        1,
        limits::ESM_MAX_BATCH_SIZE,
    );
    let window = entry.maximum_batching_window_in_seconds.unwrap_or(0);
    p.range(
        subject,
        "maximum_batching_window_in_seconds",
        window,
        0,
        limits::ESM_MAX_BATCHING_WINDOW_SECONDS,
    );

    let starting_position = resolve_starting_position(&entry, kind, subject, p);

    let parallelization_factor = entry.parallelization_factor.unwrap_or(1);
    p.range(
        subject,
        "parallelization_factor",
        parallelization_factor,
        1,
        limits::ESM_MAX_PARALLELIZATION_FACTOR,
    );

    let retries = entry.maximum_retry_attempts.unwrap_or(-1);
    if retries != -1 && !(0..=limits::ESM_MAX_RETRY_ATTEMPTS).contains(&retries) {
        p.add(
            subject,
            format!("maximum_retry_attempts = {retries}: must be -1 or 0..=10000"),
        );
    }
    let age = entry.maximum_record_age_in_seconds.unwrap_or(-1);
    if age != -1
        && !(limits::ESM_MIN_RECORD_AGE_SECONDS..=limits::ESM_MAX_RECORD_AGE_SECONDS).contains(&age)
    {
        p.add(
            subject,
            format!("maximum_record_age_in_seconds = {age}: must be -1 or 60..=604800"),
        );
    }

    let report_batch_item_failures = match entry.function_response_types.as_deref() {
        None | Some([]) => false,
        Some([only]) if only == "ReportBatchItemFailures" => true,
        Some(other) => {
            p.add(
                subject,
                format!("function_response_types = {other:?}: must be [] or [\"ReportBatchItemFailures\"]"),
            );
            false
        }
    };

    let tumbling = entry.tumbling_window_in_seconds.unwrap_or(0);
    if p.range(
        subject,
        "tumbling_window_in_seconds",
        tumbling,
        0,
        limits::ESM_MAX_TUMBLING_WINDOW_SECONDS,
    ) && tumbling > 0
        && parallelization_factor > 1
    {
        // A window's state is per shard, carried from one invocation to the next: it
        // cannot be shared by concurrent batches of the shard.
        p.add(
            subject,
            format!("tumbling_window_in_seconds = {tumbling} with parallelization_factor = {parallelization_factor}: a tumbling window needs parallelization_factor = 1"),
        );
    }

    let (filter_patterns, filter) = resolve_filters(&entry, subject, p);

    let on_failure_destination = resolve_destination_config(&entry, world.base_dir, subject, p);

    let on_destination_failure = match entry.on_destination_failure.as_deref() {
        None | Some("dead_letter") => OnDestinationFailure::DeadLetter,
        Some("block") => OnDestinationFailure::Block,
        Some(other) => {
            p.add(
                subject,
                format!("on_destination_failure = {other:?}: must be \"dead_letter\" or \"block\""),
            );
            OnDestinationFailure::DeadLetter
        }
    };

    let pace = resolve_pace(
        entry.pace.as_ref(),
        kind.unwrap_or(StreamKind::Kinesis),
        subject,
        p,
    );

    let name = entry.name.clone();
    if p.list.len() != before {
        return (name, None);
    }
    let (
        Some(name_value),
        Some((event_source_arn, stream_kind)),
        Some(function_name),
        Some(starting_position),
    ) = (entry.name, stream, function_name, starting_position)
    else {
        return (name, None);
    };
    let mapping = Mapping {
        name: name_value,
        event_source_arn,
        consumer,
        stream_kind,
        function_name,
        enabled: entry.enabled.unwrap_or(true),
        batch_size: batch_size as usize,
        maximum_batching_window_ms: window as u64 * 1000,
        starting_position,
        parallelization_factor: parallelization_factor as u32,
        bisect_batch_on_function_error: entry.bisect_batch_on_function_error.unwrap_or(false),
        maximum_retry_attempts: if retries == -1 {
            None
        } else {
            Some(retries as u32)
        },
        maximum_record_age_ms: if age == -1 { None } else { Some(age * 1000) },
        on_failure_destination,
        report_batch_item_failures,
        tumbling_window_in_seconds: tumbling as u32,
        filter_patterns,
        filter,
        on_destination_failure,
        pace,
    };
    (name, Some(mapping))
}

/// A mapping's event source, resolved.
struct EventSource {
    /// The stream's full ARN (of the consumer's stream for a consumer ARN).
    stream_arn: String,
    kind: StreamKind,
    /// The enhanced fan-out consumer ARN the mapping named instead of the stream.
    consumer_arn: Option<String>,
    /// A `[[streams]]` entry, not a real stream.
    simulated: bool,
}

/// A mapping's event source: a simulated stream's ARN or bare name, or a real stream's
/// or enhanced fan-out consumer's ARN.
fn resolve_event_source(arn: &str, world: &World<'_>) -> Result<EventSource, String> {
    for stream in world.streams {
        let full = stream.arn(world.aws);
        if arn == full || arn == stream.name {
            return Ok(EventSource {
                stream_arn: full,
                kind: stream.kind,
                consumer_arn: None,
                simulated: true,
            });
        }
    }
    let real = |kind| EventSource {
        stream_arn: arn.to_string(),
        kind,
        consumer_arn: None,
        simulated: false,
    };
    // Not a simulated stream: a real one, read through the AWS SDK (its existence is
    // checked when the mapping starts: "Stream not found: <arn>").
    match parse_stream_arn(arn) {
        Some(StreamArn::Kinesis { .. }) => Ok(real(StreamKind::Kinesis)),
        Some(StreamArn::DynamodbStream { .. }) => Ok(real(StreamKind::Dynamodb)),
        Some(StreamArn::KinesisConsumer { stream_arn, .. }) => {
            if world.streams.iter().any(|s| s.arn(world.aws) == stream_arn) {
                return Err(format!(
                    "event_source_arn = {arn:?}: enhanced fan-out reads real Kinesis streams; {stream_arn} is simulated"
                ));
            }
            Ok(EventSource {
                stream_arn: stream_arn.to_string(),
                kind: StreamKind::Kinesis,
                consumer_arn: Some(arn.to_string()),
                simulated: false,
            })
        }
        None => Err(format!(
            "event_source_arn = {arn:?}: not a stream ARN (expected arn:aws:kinesis:REGION:ACCOUNT:stream/NAME, \
             a Kinesis consumer ARN, arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL, \
             or the name of a [[streams]] entry)"
        )),
    }
}

/// The enhanced fan-out consumer of a mapping: the consumer ARN it names, or
/// `consumer_name` on a real Kinesis stream.
fn resolve_consumer(
    name: Option<&str>,
    source: &EventSource,
) -> Result<Option<FanOutConsumer>, String> {
    let Some(name) = name else {
        return Ok(source.consumer_arn.clone().map(FanOutConsumer::Arn));
    };
    if let Some(arn) = &source.consumer_arn {
        return Err(format!(
            "consumer_name = {name:?}: not with a consumer ARN as event_source_arn ({arn} names its consumer)"
        ));
    }
    if source.kind != StreamKind::Kinesis {
        return Err(format!(
            "consumer_name = {name:?}: only Kinesis streams have enhanced fan-out consumers"
        ));
    }
    if source.simulated {
        return Err(format!(
            "consumer_name = {name:?}: enhanced fan-out reads real Kinesis streams; {} is simulated",
            source.stream_arn
        ));
    }
    let len = name.chars().count();
    if !(1..=128).contains(&len) || !name.chars().all(is_name_char) {
        return Err(format!(
            "consumer_name = {name:?}: must be 1..=128 characters of letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(Some(FanOutConsumer::Name(name.to_string())))
}

/// The stream ARN shapes AWS accepts as event sources.
#[derive(Debug, PartialEq, Eq)]
enum StreamArn<'a> {
    Kinesis {
        name: &'a str,
    },
    KinesisConsumer {
        stream_arn: &'a str,
        stream_name: &'a str,
    },
    DynamodbStream {
        table: &'a str,
    },
}

fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let parts = parse_arn(arn)?;
    let segments: Vec<&str> = parts.resource.split('/').collect();
    let ok = |s: &&str| !s.is_empty();
    match (parts.service, segments.as_slice()) {
        ("kinesis", ["stream", name]) if ok(name) => Some(StreamArn::Kinesis { name }),
        ("kinesis", ["stream", name, "consumer", consumer]) if ok(name) && ok(consumer) => {
            let stream_len = arn.len() - parts.resource.len() + "stream/".len() + name.len();
            Some(StreamArn::KinesisConsumer {
                stream_arn: arn.get(..stream_len)?,
                stream_name: name,
            })
        }
        ("dynamodb", ["table", table, "stream", label]) if ok(table) && ok(label) => {
            Some(StreamArn::DynamodbStream { table })
        }
        _ => None,
    }
}

struct ArnParts<'a> {
    service: &'a str,
    resource: &'a str,
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, partition `aws...`.
fn parse_arn(arn: &str) -> Option<ArnParts<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if prefix != "arn" || !partition.starts_with("aws") || service.is_empty() || resource.is_empty()
    {
        return None;
    }
    Some(ArnParts { service, resource })
}

fn resolve_starting_position(
    entry: &MappingEntry,
    kind: Option<StreamKind>,
    subject: &str,
    p: &mut Problems,
) -> Option<StartingPosition> {
    let timestamp = entry.starting_position_timestamp;
    let position = match entry.starting_position.as_deref() {
        None => {
            p.add(
                subject,
                "starting_position is required (TRIM_HORIZON, LATEST or AT_TIMESTAMP)",
            );
            return None;
        }
        Some(position) => position,
    };
    match position {
        "TRIM_HORIZON" | "LATEST" => {
            if let Some(ts) = timestamp {
                p.add(
                    subject,
                    format!("starting_position_timestamp = {ts}: only valid with starting_position = \"AT_TIMESTAMP\""),
                );
            }
            Some(if position == "LATEST" {
                StartingPosition::Latest
            } else {
                StartingPosition::TrimHorizon
            })
        }
        "AT_TIMESTAMP" => {
            if kind == Some(StreamKind::Dynamodb) {
                p.add(
                    subject,
                    "starting_position = \"AT_TIMESTAMP\": DynamoDB streams support only TRIM_HORIZON and LATEST",
                );
            }
            match timestamp {
                None => {
                    p.add(
                        subject,
                        "starting_position = \"AT_TIMESTAMP\" requires starting_position_timestamp",
                    );
                    None
                }
                Some(ts) if !(0.0..=MAX_EPOCH_SECONDS).contains(&ts) => {
                    p.add(
                        subject,
                        format!("starting_position_timestamp = {ts}: must be epoch seconds 0..={MAX_EPOCH_SECONDS}"),
                    );
                    None
                }
                Some(ts) => Some(StartingPosition::AtTimestamp((ts * 1000.0).round() as i64)),
            }
        }
        other => {
            p.add(
                subject,
                format!(
                    "starting_position = {other:?}: must be TRIM_HORIZON, LATEST or AT_TIMESTAMP"
                ),
            );
            None
        }
    }
}

/// The filter patterns as given, and compiled; every invalid one is a problem naming
/// its position, with AWS's "Invalid filter pattern definition.".
fn resolve_filters(
    entry: &MappingEntry,
    subject: &str,
    p: &mut Problems,
) -> (Vec<String>, FilterCriteria) {
    let Some(criteria) = &entry.filter_criteria else {
        return (Vec::new(), FilterCriteria::default());
    };
    let patterns: Vec<String> = criteria.filters.iter().map(|f| f.pattern.clone()).collect();
    match FilterCriteria::parse_all(&patterns) {
        Ok(filter) => (patterns, filter),
        Err(errors) => {
            for e in errors {
                let sep = if matches!(e, FilterError::TooMany { .. }) {
                    ":"
                } else {
                    ""
                };
                p.add(subject, format!("filter_criteria{sep} {e}"));
            }
            (patterns, FilterCriteria::default())
        }
    }
}

/// The on-failure destination, `file://PATH` with PATH resolved against `base_dir`.
fn resolve_destination_config(
    entry: &MappingEntry,
    base_dir: &Path,
    subject: &str,
    p: &mut Problems,
) -> Option<String> {
    let config = entry.destination_config.as_ref()?;
    if config.on_success.is_some() {
        p.add(
            subject,
            "destination_config.on_success: stream event sources support only on_failure",
        );
    }
    let destination = config.on_failure.as_ref()?.destination.as_deref()?;
    let key = "destination_config.on_failure.destination";
    if let Some(path) = destination.strip_prefix("file://") {
        if path.is_empty() {
            p.add(
                subject,
                format!("{key} = {destination:?}: the path is empty (file://PATH)"),
            );
            return None;
        }
        let full = join(base_dir, Path::new(path));
        return match full.to_str() {
            Some(full) => Some(format!("file://{full}")),
            None => {
                p.add(
                    subject,
                    format!("{key} = {destination:?}: the resolved path is not valid UTF-8"),
                );
                None
            }
        };
    }
    match parse_arn(destination).map(|a| a.service) {
        Some("sqs" | "sns") => return Some(destination.to_string()),
        Some("s3") => p.add(
            subject,
            format!("{key} = {destination:?}: is an S3 bucket; S3 destinations are not supported by this build (use an SQS queue, an SNS topic or file://PATH)"),
        ),
        _ => p.add(
            subject,
            format!("{key} = {destination:?}: must be an SQS queue ARN, an SNS topic ARN, or file://PATH (a local JSONL file)"),
        ),
    }
    None
}

fn resolve_pace(
    config: Option<&PaceConfig>,
    kind: StreamKind,
    subject: &str,
    p: &mut Problems,
) -> Pace {
    let mut pace = Pace::aws_default(kind);
    let Some(c) = config else {
        return pace;
    };
    let mut ms = |key: &str, value: Option<u64>, min: u64, target: &mut u64| {
        if let Some(v) = value {
            if p.range(subject, &format!("pace.{key}"), v, min, MAX_PACE_MS) {
                *target = v;
            }
        }
    };
    ms(
        "poll_interval_ms",
        c.poll_interval_ms,
        1,
        &mut pace.poll_interval_ms,
    );
    ms(
        "min_read_interval_ms",
        c.min_read_interval_ms,
        0,
        &mut pace.min_read_interval_ms,
    );
    ms(
        "retry_backoff_initial_ms",
        c.retry_backoff_initial_ms,
        1,
        &mut pace.retry_backoff_initial_ms,
    );
    ms(
        "retry_backoff_max_ms",
        c.retry_backoff_max_ms,
        1,
        &mut pace.retry_backoff_max_ms,
    );
    ms(
        "throttle_backoff_initial_ms",
        c.throttle_backoff_initial_ms,
        1,
        &mut pace.throttle_backoff_initial_ms,
    );
    ms(
        "throttle_backoff_max_ms",
        c.throttle_backoff_max_ms,
        1,
        &mut pace.throttle_backoff_max_ms,
    );

    let mut seconds = |key: &str, value: Option<u64>, min: u64, target: &mut u64| {
        if let Some(v) = value {
            if p.range(subject, &format!("pace.{key}"), v, min, MAX_PACE_SECONDS) {
                *target = v * 1000;
            }
        }
    };
    seconds(
        "discovery_interval_seconds",
        c.discovery_interval_seconds,
        1,
        &mut pace.discovery_interval_ms,
    );
    // 0 is meaningful for these two: no destination retries, no shutdown grace.
    seconds(
        "destination_retry_seconds",
        c.destination_retry_seconds,
        0,
        &mut pace.destination_retry_ms,
    );
    seconds(
        "shutdown_grace_seconds",
        c.shutdown_grace_seconds,
        0,
        &mut pace.shutdown_grace_ms,
    );

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
    use super::*;
    use crate::config::{parse, EMBEDDED_DEFAULT};

    /// A world with a Kinesis stream `orders`, a DynamoDB table `users` and two functions.
    const WORLD: &str = r#"
[[streams]]
name = "orders"
kind = "kinesis"
shards = 2

[[streams]]
name = "users"
kind = "dynamodb"
shards = 1

[[functions]]
name = "order-processor"

[[functions]]
name = "user-processor"
"#;

    const ORDERS_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
    const USERS_ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2026-01-01T00:00:00.000";

    fn manifest_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Problems of WORLD plus `extra` (empty when it resolves).
    fn problems(extra: &str) -> Vec<String> {
        match parse(&format!("{WORLD}\n{extra}"), Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    /// A mapping `m` on `orders` with `params` added.
    fn mapping_toml(params: &str) -> String {
        format!(
            "[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\"\n{params}\n"
        )
    }

    fn mapping_problems(params: &str) -> Vec<String> {
        problems(&mapping_toml(params))
    }

    fn mapping(params: &str) -> Mapping {
        let config = parse(&format!("{WORLD}\n{}", mapping_toml(params)), Path::new("")).unwrap();
        config.mappings.into_iter().next().unwrap()
    }

    /// `inside` values resolve; each `outside` value gives exactly `message` (with `{}` the value).
    fn check_param(key: &str, inside: &[&str], outside: &[&str], message: &str) {
        for v in inside {
            assert_eq!(
                mapping_problems(&format!("{key} = {v}")),
                Vec::<String>::new(),
                "{key} = {v}"
            );
        }
        for v in outside {
            let expected = format!("mapping \"m\": {key} = {v}: {message}");
            assert_eq!(
                mapping_problems(&format!("{key} = {v}")),
                vec![expected],
                "{key} = {v}"
            );
        }
    }

    #[test]
    fn embedded_default_parses() {
        let config = parse(EMBEDDED_DEFAULT, Path::new("")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from(".esm-sim"));
        assert_eq!(
            config.dead_letter_file,
            PathBuf::from(".esm-sim/dead-letter.jsonl")
        );
        assert_eq!(config.stats_interval_ms, 5000);
        assert_eq!(config.simulation.seed, 42);
        assert_eq!(config.simulation.start_ms, 1_767_225_600_000);
        assert_eq!(config.simulation.max_duration_ms, 3_600_000);
        assert_eq!(config.streams.len(), 1);
        assert_eq!(config.streams[0].retention_hours, Some(24));
        assert_eq!(config.streams[0].stream_view_type, None);
        assert_eq!(config.streams[0].faults.iterator_expiry_seconds, Some(300));
        let expected = Mapping {
            name: "orders-to-processor".into(),
            event_source_arn: ORDERS_ARN.into(),
            consumer: None,
            stream_kind: StreamKind::Kinesis,
            function_name: "order-processor".into(),
            enabled: true,
            batch_size: 50,
            maximum_batching_window_ms: 1000,
            starting_position: StartingPosition::TrimHorizon,
            parallelization_factor: 1,
            bisect_batch_on_function_error: true,
            maximum_retry_attempts: Some(2),
            maximum_record_age_ms: Some(3_600_000),
            on_failure_destination: Some("file://.esm-sim/failures.jsonl".into()),
            report_batch_item_failures: false,
            tumbling_window_in_seconds: 0,
            filter_patterns: vec![],
            filter: Default::default(),
            on_destination_failure: OnDestinationFailure::DeadLetter,
            pace: Pace::aws_default(StreamKind::Kinesis),
        };
        assert_eq!(config.mappings, vec![expected]);
    }

    #[test]
    fn relative_paths_resolve_against_the_base_dir() {
        let text = format!(
            "state_dir = \"state\"\n{WORLD}\n{}",
            mapping_toml(
                "destination_config = { on_failure = { destination = \"file://out/f.jsonl\" } }"
            )
        );
        let config = parse(&text, Path::new("/etc/esm")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/etc/esm/state"));
        assert_eq!(
            config.dead_letter_file,
            PathBuf::from("/etc/esm/state/dead-letter.jsonl")
        );
        assert_eq!(
            config.mappings[0].on_failure_destination.as_deref(),
            Some("file:///etc/esm/out/f.jsonl")
        );

        let text = format!(
            "dead_letter_file = \"/var/dl.jsonl\"\n{WORLD}\n{}",
            mapping_toml(
                "destination_config = { on_failure = { destination = \"file:///tmp/f.jsonl\" } }"
            )
        );
        let config = parse(&text, Path::new("/etc/esm")).unwrap();
        assert_eq!(config.dead_letter_file, PathBuf::from("/var/dl.jsonl"));
        assert_eq!(
            config.mappings[0].on_failure_destination.as_deref(),
            Some("file:///tmp/f.jsonl")
        );
    }

    #[test]
    fn defaults_follow_aws() {
        let m = mapping("");
        assert_eq!(m.event_source_arn, ORDERS_ARN);
        assert!(m.enabled);
        assert_eq!(m.batch_size, 100);
        assert_eq!(m.maximum_batching_window_ms, 0);
        assert_eq!(m.starting_position, StartingPosition::Latest);
        assert_eq!(m.parallelization_factor, 1);
        assert!(!m.bisect_batch_on_function_error);
        assert_eq!(m.maximum_retry_attempts, None);
        assert_eq!(m.maximum_record_age_ms, None);
        assert_eq!(m.on_failure_destination, None);
        assert!(!m.report_batch_item_failures);
        assert_eq!(m.tumbling_window_in_seconds, 0);
        assert!(m.filter_patterns.is_empty());
        assert_eq!(m.on_destination_failure, OnDestinationFailure::DeadLetter);
        assert_eq!(m.pace, Pace::aws_default(StreamKind::Kinesis));
    }

    #[test]
    fn batch_size_range() {
        check_param(
            "batch_size",
            &["1", "10000"],
            &["0", "10001", "-1"],
            "must be 1..=10000",
        );
        assert_eq!(mapping("batch_size = 10000").batch_size, 10_000);
    }

    #[test]
    fn batching_window_range() {
        check_param(
            "maximum_batching_window_in_seconds",
            &["0", "300"],
            &["-1", "301"],
            "must be 0..=300",
        );
        assert_eq!(
            mapping("maximum_batching_window_in_seconds = 300").maximum_batching_window_ms,
            300_000
        );
    }

    #[test]
    fn parallelization_factor_range() {
        check_param(
            "parallelization_factor",
            &["1", "2", "10"],
            &["0", "11"],
            "must be 1..=10",
        );
    }

    #[test]
    fn maximum_retry_attempts_range() {
        check_param(
            "maximum_retry_attempts",
            &["-1", "0", "10000"],
            &["-2", "10001"],
            "must be -1 or 0..=10000",
        );
        assert_eq!(
            mapping("maximum_retry_attempts = 0").maximum_retry_attempts,
            Some(0)
        );
        assert_eq!(
            mapping("maximum_retry_attempts = -1").maximum_retry_attempts,
            None
        );
    }

    #[test]
    fn maximum_record_age_range() {
        check_param(
            "maximum_record_age_in_seconds",
            &["-1", "60", "604800"],
            &["30", "59", "0", "-2", "604801"],
            "must be -1 or 60..=604800",
        );
        assert_eq!(
            mapping_problems("maximum_record_age_in_seconds = 30"),
            vec!["mapping \"m\": maximum_record_age_in_seconds = 30: must be -1 or 60..=604800"]
        );
        assert_eq!(
            mapping("maximum_record_age_in_seconds = 60").maximum_record_age_ms,
            Some(60_000)
        );
    }

    #[test]
    fn tumbling_window_range_and_no_parallelization() {
        check_param(
            "tumbling_window_in_seconds",
            &["0", "1", "900"],
            &["-1", "901"],
            "must be 0..=900",
        );
        assert_eq!(
            mapping_problems("tumbling_window_in_seconds = 60\nparallelization_factor = 2"),
            vec!["mapping \"m\": tumbling_window_in_seconds = 60 with parallelization_factor = 2: a tumbling window needs parallelization_factor = 1"]
        );
    }

    #[test]
    fn function_response_types() {
        assert!(
            mapping("function_response_types = [\"ReportBatchItemFailures\"]")
                .report_batch_item_failures
        );
        assert!(!mapping("function_response_types = []").report_batch_item_failures);
        assert_eq!(
            mapping_problems("function_response_types = [\"Report\"]"),
            vec!["mapping \"m\": function_response_types = [\"Report\"]: must be [] or [\"ReportBatchItemFailures\"]"]
        );
        assert_eq!(
            mapping_problems("function_response_types = [\"ReportBatchItemFailures\", \"ReportBatchItemFailures\"]").len(),
            1
        );
    }

    #[test]
    fn starting_positions() {
        let base = "[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nfunction_name = \"order-processor\"\n";
        assert_eq!(
            problems(base),
            vec!["mapping \"m\": starting_position is required (TRIM_HORIZON, LATEST or AT_TIMESTAMP)"]
        );
        assert_eq!(
            problems(&format!("{base}starting_position = \"EARLIEST\"")),
            vec!["mapping \"m\": starting_position = \"EARLIEST\": must be TRIM_HORIZON, LATEST or AT_TIMESTAMP"]
        );
        assert_eq!(
            problems(&format!("{base}starting_position = \"AT_TIMESTAMP\"")),
            vec!["mapping \"m\": starting_position = \"AT_TIMESTAMP\" requires starting_position_timestamp"]
        );
        assert_eq!(
            problems(&format!("{base}starting_position = \"TRIM_HORIZON\"\nstarting_position_timestamp = 5")),
            vec!["mapping \"m\": starting_position_timestamp = 5: only valid with starting_position = \"AT_TIMESTAMP\""]
        );
        assert_eq!(
            problems(&format!("{base}starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = -1")),
            vec!["mapping \"m\": starting_position_timestamp = -1: must be epoch seconds 0..=253402300799"]
        );
        let config = parse(
            &format!("{WORLD}\n{base}starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1767225600.5"),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            config.mappings[0].starting_position,
            StartingPosition::AtTimestamp(1_767_225_600_500)
        );
        // An integer is accepted for the float key.
        let config = parse(
            &format!("{WORLD}\n{base}starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1767225600"),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            config.mappings[0].starting_position,
            StartingPosition::AtTimestamp(1_767_225_600_000)
        );
    }

    #[test]
    fn dynamodb_mappings() {
        let base = "[[mappings]]\nname = \"u\"\nevent_source_arn = \"users\"\nfunction_name = \"user-processor\"\n";
        let config = parse(
            &format!("{WORLD}\n{base}starting_position = \"TRIM_HORIZON\""),
            Path::new(""),
        )
        .unwrap();
        let m = &config.mappings[0];
        assert_eq!(m.event_source_arn, USERS_ARN);
        assert_eq!(m.stream_kind, StreamKind::Dynamodb);
        assert_eq!(m.pace, Pace::aws_default(StreamKind::Dynamodb));
        let users = &config.streams[1];
        assert_eq!(
            users.stream_view_type,
            Some(StreamViewType::NewAndOldImages)
        );
        assert_eq!(users.retention_hours, Some(24));
        assert_eq!(users.faults.iterator_expiry_seconds, Some(900));
        assert_eq!(
            problems(&format!(
                "{base}starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1767225600"
            )),
            vec!["mapping \"u\": starting_position = \"AT_TIMESTAMP\": DynamoDB streams support only TRIM_HORIZON and LATEST"]
        );
        assert_eq!(
            problems(&format!(
                "{base}starting_position = \"LATEST\"\npace = {{ get_records_limit = 1001 }}"
            )),
            vec!["mapping \"u\": pace.get_records_limit = 1001: must be 1..=1000"]
        );
        assert!(problems(&format!(
            "{base}starting_position = \"LATEST\"\npace = {{ get_records_limit = 1000 }}"
        ))
        .is_empty());
        // The full ARN works as well as the name.
        assert!(problems(&format!(
            "[[mappings]]\nname = \"u\"\nevent_source_arn = \"{USERS_ARN}\"\nfunction_name = \"user-processor\"\nstarting_position = \"LATEST\""
        ))
        .is_empty());
    }

    #[test]
    fn event_source_arns() {
        let with_arn = |arn: &str| {
            problems(&format!(
                "[[mappings]]\nname = \"m\"\nevent_source_arn = \"{arn}\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\""
            ))
        };
        assert!(with_arn(ORDERS_ARN).is_empty());
        // Real streams (not simulated) are accepted; their existence is checked at start.
        assert!(with_arn("arn:aws:kinesis:us-east-1:123456789012:stream/payments").is_empty());
        let dynamo =
            "arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/2024-01-01T00:00:00.000";
        assert!(with_arn(dynamo).is_empty());
        // A consumer of a simulated stream: enhanced fan-out needs a real one.
        let consumer = format!("{ORDERS_ARN}/consumer/c1:1767225600");
        assert_eq!(
            with_arn(&consumer),
            vec![format!(
                "mapping \"m\": event_source_arn = \"{consumer}\": enhanced fan-out reads real Kinesis streams; {ORDERS_ARN} is simulated"
            )]
        );
        for garbage in [
            "arn:aws:kinesis:us-east-1:1:stream/a/consumer/",
            "arn:aws:kinesis:us-east-1:1:stream//consumer/c",
        ] {
            assert!(
                with_arn(garbage)[0].contains("not a stream ARN"),
                "{garbage}"
            );
        }
        for garbage in [
            "arn:aws:sqs:us-east-1:123456789012:q",
            "payments",
            "arn:aws:kinesis:us-east-1:1:stream/",
            "",
        ] {
            let got = with_arn(garbage);
            assert_eq!(got.len(), 1, "{garbage}: {got:?}");
            assert!(
                got[0].starts_with(&format!(
                    "mapping \"m\": event_source_arn = {garbage:?}: not a stream ARN"
                )),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_consumer_arn_or_a_consumer_name_reads_through_enhanced_fan_out() {
        let pay = "arn:aws:kinesis:us-east-1:123456789012:stream/pay";
        let parse_mapping = |arn: &str, extra: &str| {
            let text = format!(
                "{WORLD}\n[[mappings]]\nname = \"m\"\nevent_source_arn = \"{arn}\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\"\n{extra}"
            );
            parse(&text, Path::new("")).map(|c| c.mappings.into_iter().next().unwrap())
        };
        // A consumer ARN: the mapping reads the consumer's stream through it, and the
        // stream ARN is what events and failure records carry.
        let consumer_arn = format!("{pay}/consumer/c1:1767225600");
        let m = parse_mapping(&consumer_arn, "").unwrap();
        assert_eq!(m.event_source_arn, pay);
        assert_eq!(m.consumer, Some(FanOutConsumer::Arn(consumer_arn.clone())));
        assert_eq!(m.stream_kind, StreamKind::Kinesis);
        // consumer_name with a stream ARN: register or reuse.
        let m = parse_mapping(pay, "consumer_name = \"esm.sim-1_x\"").unwrap();
        assert_eq!(m.event_source_arn, pay);
        assert_eq!(m.consumer, Some(FanOutConsumer::Name("esm.sim-1_x".into())));
        // Without either: GetRecords.
        assert_eq!(parse_mapping(pay, "").unwrap().consumer, None);
        let problems = |arn: &str, extra: &str| parse_mapping(arn, extra).unwrap_err().problems;
        assert_eq!(
            problems(&consumer_arn, "consumer_name = \"c2\""),
            vec![format!("mapping \"m\": consumer_name = \"c2\": not with a consumer ARN as event_source_arn ({consumer_arn} names its consumer)")]
        );
        assert_eq!(
            problems(ORDERS_ARN, "consumer_name = \"c\""),
            vec![format!("mapping \"m\": consumer_name = \"c\": enhanced fan-out reads real Kinesis streams; {ORDERS_ARN} is simulated")]
        );
        let dynamo =
            "arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/2024-01-01T00:00:00.000";
        assert_eq!(
            problems(dynamo, "consumer_name = \"c\""),
            vec!["mapping \"m\": consumer_name = \"c\": only Kinesis streams have enhanced fan-out consumers"]
        );
        // A consumer is an event source of its own: one mapping per consumer and function.
        let two = |a: &str, b: &str| {
            let m = |name: &str, arn_and_extra: &str| {
                let (arn, extra) = arn_and_extra.split_once('|').unwrap_or((arn_and_extra, ""));
                format!("[[mappings]]\nname = \"{name}\"\nevent_source_arn = \"{arn}\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\"\n{extra}\n")
            };
            match parse(
                &format!("{WORLD}\n{}{}", m("a", a), m("b", b)),
                Path::new(""),
            ) {
                Ok(_) => Vec::new(),
                Err(e) => e.problems,
            }
        };
        assert!(two(pay, &consumer_arn).is_empty());
        assert!(two(
            &format!("{pay}|consumer_name = \"x\""),
            &format!("{pay}|consumer_name = \"y\"")
        )
        .is_empty());
        assert_eq!(
            two(&format!("{pay}|consumer_name = \"x\""), &format!("{pay}|consumer_name = \"x\"")),
            vec![format!("mapping \"b\": mapping \"a\" already maps {pay}/consumer/x to function \"order-processor\" (AWS allows one mapping per event source and function)")]
        );
        assert_eq!(two(&consumer_arn, &consumer_arn).len(), 1);
        let long = "c".repeat(129);
        for bad in ["", "a/b", "a:b", long.as_str()] {
            assert_eq!(
                problems(pay, &format!("consumer_name = \"{bad}\"")),
                vec![format!("mapping \"m\": consumer_name = {bad:?}: must be 1..=128 characters of letters, digits, '-', '_' and '.'")]
            );
        }
    }

    #[test]
    fn destinations() {
        let dest = |d: &str| {
            mapping_problems(&format!(
                "destination_config = {{ on_failure = {{ destination = \"{d}\" }} }}"
            ))
        };
        assert!(dest("file://f.jsonl").is_empty());
        assert!(dest("arn:aws:sqs:us-east-1:123456789012:failures").is_empty());
        assert!(dest("arn:aws:sns:us-east-1:123456789012:t").is_empty());
        assert!(dest("arn:aws:s3:::bucket")[0].contains("S3 destinations are not supported"));
        assert_eq!(
            dest("/tmp/x.jsonl"),
            vec!["mapping \"m\": destination_config.on_failure.destination = \"/tmp/x.jsonl\": must be an SQS queue ARN, \
                  an SNS topic ARN, or file://PATH (a local JSONL file)"]
        );
        assert_eq!(dest("file://").len(), 1);
        assert_eq!(
            mapping_problems("destination_config = { on_success = { destination = \"file://x\" } }"),
            vec!["mapping \"m\": destination_config.on_success: stream event sources support only on_failure"]
        );
        assert_eq!(
            mapping("destination_config = { on_failure = {} }").on_failure_destination,
            None
        );
    }

    #[test]
    fn on_destination_failure_values() {
        assert_eq!(
            mapping("on_destination_failure = \"block\"").on_destination_failure,
            OnDestinationFailure::Block
        );
        assert_eq!(
            mapping("on_destination_failure = \"dead_letter\"").on_destination_failure,
            OnDestinationFailure::DeadLetter
        );
        assert_eq!(
            mapping_problems("on_destination_failure = \"drop\""),
            vec!["mapping \"m\": on_destination_failure = \"drop\": must be \"dead_letter\" or \"block\""]
        );
    }

    #[test]
    fn filters() {
        let m =
            mapping("filter_criteria = { filters = [{ pattern = '{\"data\": {\"x\": [1]}}' }] }");
        assert_eq!(m.filter_patterns, vec![r#"{"data": {"x": [1]}}"#]);
        assert_eq!(
            m.filter,
            crate::filter::FilterCriteria::parse(&m.filter_patterns).expect("valid")
        );
        assert!(!m.filter.is_empty());
        assert!(mapping("batch_size = 10").filter.is_empty());
        assert_eq!(
            mapping_problems("filter_criteria = { filters = [{ pattern = '{}' }, { pattern = '[1]' }] }"),
            vec![
                "mapping \"m\": filter_criteria filter 1: Invalid filter pattern definition. (the pattern is empty ({}))",
                "mapping \"m\": filter_criteria filter 2: Invalid filter pattern definition. (not a JSON object)"
            ]
        );
        assert_eq!(
            mapping_problems("filter_criteria = { filters = [{ pattern = '{\"a\": [{\"suffix\": \"x\"}]}' }] }"),
            vec!["mapping \"m\": filter_criteria filter 1: Invalid filter pattern definition. (\"a\": operator \"suffix\" is not supported (prefix, anything-but, numeric, exists))"]
        );
        let bad = mapping_problems("filter_criteria = { filters = [{ pattern = '{' }] }");
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with(
            "mapping \"m\": filter_criteria filter 1: Invalid filter pattern definition. ("
        ));
        let six = [r#"{ pattern = '{"a": [1]}' }"#; 6].join(", ");
        assert_eq!(
            mapping_problems(&format!("filter_criteria = {{ filters = [{six}] }}")),
            vec!["mapping \"m\": filter_criteria: 6 filters: at most 5 allowed"]
        );
        assert!(mapping_problems("filter_criteria = { filters = [] }").is_empty());
    }

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

    #[test]
    fn mapping_names_and_functions() {
        let no_name = problems(
            "[[mappings]]\nevent_source_arn = \"orders\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\"",
        );
        assert_eq!(
            no_name,
            vec!["mapping #1: name is required (or aws_json with a UUID)"]
        );
        let no_function = problems("[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nstarting_position = \"LATEST\"");
        assert_eq!(
            no_function,
            vec!["mapping \"m\": function_name is required"]
        );
    }

    #[test]
    fn unknown_function_lists_the_defined_ones() {
        let got = problems(
            "[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nfunction_name = \"nope\"\nstarting_position = \"LATEST\"",
        );
        assert_eq!(
            got,
            vec!["mapping \"m\": function_name = \"nope\": no such function (defined: \"order-processor\", \"user-processor\")"]
        );
        // A function ARN with a qualifier names the function.
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:order-processor:live";
        let config = parse(
            &format!("{WORLD}\n[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nfunction_name = \"{arn}\"\nstarting_position = \"LATEST\""),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(config.mappings[0].function_name, "order-processor");
    }

    #[test]
    fn duplicate_names_and_pairs() {
        let a = mapping_toml("").replace("\"m\"", "\"a\"");
        let b = mapping_toml("").replace("\"m\"", "\"a\"");
        assert_eq!(
            problems(&format!("{a}{b}"))[0],
            "mapping \"a\": name is used by more than one [[mappings]] entry"
        );
        let c = mapping_toml("").replace("\"m\"", "\"c\"");
        assert_eq!(
            problems(&format!("{a}{c}")),
            vec![format!(
                "mapping \"c\": mapping \"a\" already maps {ORDERS_ARN} to function \"order-processor\" (AWS allows one mapping per event source and function)"
            )]
        );
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name_and_line() {
        let text = format!("{WORLD}\n{}", mapping_toml("batch_sise = 5"));
        let line = text
            .lines()
            .position(|l| l.starts_with("batch_sise"))
            .unwrap()
            + 1;
        let err = parse(&text, Path::new("")).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let message = &err.problems[0];
        assert!(
            message.starts_with(&format!(
                "{line}:1: mapping \"m\": batch_sise: unknown key (did you mean batch_size?); allowed: name, "
            )),
            "{message}"
        );
        let err = parse("colour = 1\n", Path::new("")).unwrap_err();
        assert!(
            err.problems[0].starts_with("1:1: top level: colour: unknown key; allowed: "),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_keeps_tomls_message() {
        let err = parse("[[mappings]\n", Path::new("")).unwrap_err();
        assert_eq!(
            err.problems,
            vec!["1:12: TOML syntax error: unclosed array table, expected `]`"]
        );
    }

    #[test]
    fn multiple_problems_are_reported_together() {
        let text = r#"
[simulation]
start_time = "tomorrow"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 0

[[functions]]
name = "f"
timeout_seconds = 0

[[mappings]]
name = "m"
event_source_arn = "orders"
starting_position = "LATEST"
batch_size = 0
maximum_record_age_in_seconds = 30
"#;
        let err = parse(text, Path::new("")).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "simulation: start_time = \"tomorrow\": not an RFC 3339 time (premature end of input)",
                "stream \"orders\": shards = 0: must be 1..=100000",
                "function \"f\": timeout_seconds = 0: must be 1..=900",
                "mapping \"m\": function_name is required",
                "mapping \"m\": batch_size = 0: must be 1..=10000",
                "mapping \"m\": maximum_record_age_in_seconds = 30: must be -1 or 60..=604800",
            ]
        );
        let lines = err.to_string();
        assert_eq!(lines.lines().count(), 6);
    }

    #[test]
    fn zero_mappings_is_a_problem() {
        assert_eq!(problems(""), vec!["no [[mappings]]: nothing to run"]);
    }

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

    /// A config with one stream (`stream_toml`, named "s") and a mapping on it.
    fn stream_problems(stream_toml: &str) -> Vec<String> {
        let text = format!(
            "[[streams]]\nname = \"s\"\n{stream_toml}\n[[functions]]\nname = \"f\"\n\
             [[mappings]]\nname = \"m\"\nevent_source_arn = \"s\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n"
        );
        match parse(&text, Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn stream_ranges() {
        let k = "kind = \"kinesis\"\nshards = 1\n";
        assert!(stream_problems(k).is_empty());
        assert!(stream_problems("kind = \"kinesis\"\nshards = 100000").is_empty());
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 100001"),
            vec!["stream \"s\": shards = 100001: must be 1..=100000"]
        );
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 0"),
            vec!["stream \"s\": shards = 0: must be 1..=100000"]
        );
        assert!(stream_problems(&format!("{k}retention_hours = 24")).is_empty());
        assert!(stream_problems(&format!("{k}retention_hours = 8760")).is_empty());
        assert_eq!(
            stream_problems(&format!("{k}retention_hours = 23")),
            vec!["stream \"s\": retention_hours = 23: must be 24..=8760"]
        );
        assert_eq!(
            stream_problems(&format!("{k}retention_hours = 8761")),
            vec!["stream \"s\": retention_hours = 8761: must be 24..=8760"]
        );
        assert_eq!(
            stream_problems(&format!("{k}stream_view_type = \"KEYS_ONLY\"")),
            vec!["stream \"s\": stream_view_type = \"KEYS_ONLY\": only valid for kind = \"dynamodb\""]
        );
        assert_eq!(
            stream_problems(&format!("{k}rollover_seconds = 60")),
            vec!["stream \"s\": rollover_seconds = 60: only valid for kind = \"dynamodb\""]
        );
        let d = "kind = \"dynamodb\"\nshards = 1\n";
        // A DynamoDB table name needs 3 characters.
        assert_eq!(
            stream_problems(d),
            vec!["stream \"s\": name = \"s\": a table name must be 3..=255 characters of letters, digits, '-', '_' and '.'"]
        );
        let d_ok = |extra: &str| {
            stream_problems(&format!("{d}{extra}"))
                .into_iter()
                .skip(1)
                .collect::<Vec<_>>()
        };
        assert!(d_ok(
            "retention_hours = 24\nrollover_seconds = 60\nstream_view_type = \"KEYS_ONLY\""
        )
        .is_empty());
        assert_eq!(
            d_ok("retention_hours = 48"),
            vec!["stream \"s\": retention_hours = 48: DynamoDB streams always keep 24 hours (leave it out or set 24)"]
        );
        assert_eq!(
            d_ok("rollover_seconds = 59"),
            vec!["stream \"s\": rollover_seconds = 59: must be 60..=31536000"]
        );
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 1\nfaults = { throttle_rate = 1.5, iterator_expiry_seconds = 0, read_latency_ms = 60001 }"),
            vec![
                "stream \"s\": faults.throttle_rate = 1.5: must be 0..=1",
                "stream \"s\": faults.iterator_expiry_seconds = 0: must be 1..=86400",
                "stream \"s\": faults.read_latency_ms = 60001: must be 0..=60000",
            ]
        );
        assert!(stream_problems("kind = \"kinesis\"\nshards = 1\nfaults = { throttle_rate = 1.0, iterator_expiry_seconds = 1, read_latency_ms = 60000 }").is_empty());
        let dup = "[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n";
        assert_eq!(
            stream_problems(&format!("{k}{dup}"))[0],
            "stream \"s\": name is used by more than one [[streams]] entry"
        );
    }

    #[test]
    fn producer_ranges() {
        let p = |producer: &str| {
            stream_problems(&format!(
                "kind = \"kinesis\"\nshards = 1\n[[streams.producers]]\n{producer}"
            ))
        };
        assert!(p("rate_per_second = 0.001\nduration_seconds = 0.5\nrecords = 1\nkeys = 1\npayload_bytes = 64\npoison_every = 1").is_empty());
        assert!(p("rate_per_second = 5\npayload_bytes = 1048576").is_empty());
        assert_eq!(
            p("rate_per_second = 0"),
            vec!["stream \"s\" producer 1: rate_per_second = 0: must be > 0"]
        );
        assert_eq!(
            p("rate_per_second = inf"),
            vec!["stream \"s\" producer 1: rate_per_second = inf: must be finite"]
        );
        assert_eq!(
            p("rate_per_second = nan"),
            vec!["stream \"s\" producer 1: rate_per_second = NaN: must be > 0"]
        );
        assert_eq!(
            p("rate_per_second = 1\nstart_seconds = -1\nduration_seconds = 0\nrecords = 0\nkeys = 0\npayload_bytes = 63\npoison_every = 0"),
            vec![
                "stream \"s\" producer 1: start_seconds = -1: must be >= 0",
                "stream \"s\" producer 1: duration_seconds = 0: must be > 0",
                "stream \"s\" producer 1: records = 0: must be >= 1",
                "stream \"s\" producer 1: keys = 0: must be >= 1",
                "stream \"s\" producer 1: payload_bytes = 63: must be 64..=1048576",
                "stream \"s\" producer 1: poison_every = 0: must be >= 1",
            ]
        );
        assert_eq!(
            p("rate_per_second = 1\npayload_bytes = 1048577"),
            vec!["stream \"s\" producer 1: payload_bytes = 1048577: must be 64..=1048576"]
        );
    }

    #[test]
    fn reshard_rules() {
        let r = |reshard: &str| {
            stream_problems(&format!(
                "kind = \"kinesis\"\nshards = 2\n[[streams.reshard]]\n{reshard}"
            ))
        };
        assert!(r("at_seconds = 0\nsplit = \"shardId-000000000000\"").is_empty());
        assert!(
            r("at_seconds = 1\nmerge = [\"shardId-000000000000\", \"shardId-000000000001\"]")
                .is_empty()
        );
        assert_eq!(
            r("at_seconds = 1\nsplit = \"shardId-000000000000\"\nmerge = [\"shardId-000000000000\", \"shardId-000000000001\"]"),
            vec!["stream \"s\" reshard 1: needs exactly one of split and merge"]
        );
        assert_eq!(
            r("at_seconds = 1"),
            vec!["stream \"s\" reshard 1: needs exactly one of split and merge"]
        );
        assert_eq!(
            r("at_seconds = -1\nsplit = \"shard-0\""),
            vec![
                "stream \"s\" reshard 1: at_seconds = -1: must be >= 0",
                "stream \"s\" reshard 1: split = \"shard-0\": not a shard id (shardId-NNNNNNNNNNNN)",
            ]
        );
        assert_eq!(
            r("at_seconds = 1\nmerge = [\"shardId-000000000001\", \"shardId-000000000001\"]"),
            vec!["stream \"s\" reshard 1: merge = [\"shardId-000000000001\", \"shardId-000000000001\"]: needs two different shards"]
        );
        let dynamo = stream_problems(
            "kind = \"dynamodb\"\nshards = 1\n[[streams.reshard]]\nat_seconds = 1\nsplit = \"shardId-000000000000\"",
        );
        assert!(dynamo.contains(&"stream \"s\" reshard 1: only Kinesis streams can be resharded (DynamoDB shards roll over: rollover_seconds)".to_string()), "{dynamo:?}");
    }

    /// Problems of a config whose only function is `function_toml` (named "f").
    fn function_problems(function_toml: &str) -> Vec<String> {
        let text = format!(
            "[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n[[functions]]\nname = \"f\"\n{function_toml}\n\
             [[mappings]]\nname = \"m\"\nevent_source_arn = \"s\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n"
        );
        match parse(&text, Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn function_rules() {
        assert!(
            function_problems("timeout_seconds = 1\nlatency = { p50_ms = 0.0, p99_ms = 0.0 }")
                .is_empty()
        );
        assert!(function_problems("timeout_seconds = 900").is_empty());
        assert_eq!(
            function_problems("timeout_seconds = 901"),
            vec!["function \"f\": timeout_seconds = 901: must be 1..=900"]
        );
        assert_eq!(
            function_problems("type = \"http\""),
            vec!["function \"f\": url: required for type = \"http\""]
        );
        assert!(function_problems(
            "type = \"http\"\nurl = \"http://127.0.0.1:9000/\"\nheaders = { x-api-key = \"k\" }"
        )
        .is_empty());
        assert!(function_problems(
            "type = \"command\"\ncommand = [\"python3\", \"h.py\"]\nenv = { A = \"1\" }"
        )
        .is_empty());
        assert!(function_problems("type = \"lambda\"\nlambda_function = \"orders\"").is_empty());
        assert_eq!(
            function_problems("type = \"ftp\""),
            vec!["function \"f\": type = \"ftp\": must be \"simulated\", \"http\", \"command\" or \"lambda\""]
        );
        assert_eq!(
            function_problems("type = \"command\"\ncommand = []\nurl = \"ftp://x\""),
            vec![
                "function \"f\": url: not a setting of type = \"command\"",
                "function \"f\": url = \"ftp://x\": must start with http:// or https://",
                "function \"f\": command: must name a program: [\"python3\", \"handler.py\"]",
            ]
        );
        assert_eq!(
            function_problems(
                "type = \"lambda\"\nlambda_function = \"f\"\nlatency = { p50_ms = 5.0 }"
            ),
            vec!["function \"f\": rules / latency: not a setting of type = \"lambda\""]
        );
        assert_eq!(
            function_problems("latency = { p50_ms = -1.0 }"),
            vec!["function \"f\": latency.p50_ms = -1: must be >= 0"]
        );
        assert_eq!(
            function_problems("latency = { p50_ms = 10.0, p99_ms = 5.0 }"),
            vec!["function \"f\": latency.p99_ms = 5: must be >= p50_ms (10)"]
        );
        let rules = "[[functions.rules]]\naction = \"error\"\n\
                     [[functions.rules]]\nfraction = 1.5\naction = \"partial\"\n\
                     [[functions.rules]]\nfraction = 1.0\naction = \"error\"\nbody = \"x\"\n\
                     [[functions.rules]]\nfraction = 0.0\naction = \"malformed\"\nbody = \"x\"\n\
                     [[functions.rules]]\nwhen_data_contains = \"poison\"\naction = \"throttle\"\n";
        assert_eq!(
            function_problems(rules),
            vec![
                "function \"f\" rule 1: needs when_data_contains or fraction (or both)",
                "function \"f\" rule 2: fraction = 1.5: must be 0..=1",
                "function \"f\" rule 3: body is only valid with action = \"malformed\"",
            ]
        );
        let text = format!(
            "{WORLD}[[functions]]\nname = \"order-processor\"\n{}",
            mapping_toml("")
        );
        assert!(parse(&text, Path::new("")).unwrap_err().problems.contains(
            &"function \"order-processor\": name is used by more than one [[functions]] entry"
                .to_string()
        ));
    }

    fn fixture_config(mapping: &str) -> Result<Config, ConfigError> {
        parse(&format!("{WORLD}\n[[mappings]]\n{mapping}"), manifest_dir())
    }

    #[test]
    fn aws_create_input_fixture_resolves() {
        // The fixture's on-failure destination is an SQS queue (as a real create input would
        // have); this build needs a local file, so the TOML entry overrides it.
        let config = fixture_config(
            "name = \"orders-from-json\"\naws_json = \"fixtures/aws/create-kinesis.json\"\n\
             destination_config = { on_failure = { destination = \"file://failures.jsonl\" } }",
        )
        .unwrap();
        let expected = Mapping {
            name: "orders-from-json".into(),
            event_source_arn: ORDERS_ARN.into(),
            consumer: None,
            stream_kind: StreamKind::Kinesis,
            function_name: "order-processor".into(),
            enabled: true,
            batch_size: 50,
            maximum_batching_window_ms: 1000,
            starting_position: StartingPosition::TrimHorizon,
            parallelization_factor: 1,
            bisect_batch_on_function_error: true,
            maximum_retry_attempts: Some(2),
            maximum_record_age_ms: Some(3_600_000),
            on_failure_destination: Some(format!(
                "file://{}",
                manifest_dir().join("failures.jsonl").display()
            )),
            report_batch_item_failures: true,
            tumbling_window_in_seconds: 0,
            filter_patterns: vec![],
            filter: Default::default(),
            on_destination_failure: OnDestinationFailure::DeadLetter,
            pace: Pace::aws_default(StreamKind::Kinesis),
        };
        assert_eq!(config.mappings, vec![expected]);
    }

    #[test]
    fn aws_create_input_fixture_without_override_keeps_its_sqs_queue() {
        let config =
            fixture_config("name = \"j\"\naws_json = \"fixtures/aws/create-kinesis.json\"")
                .unwrap();
        assert_eq!(
            config.mappings[0].on_failure_destination.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:order-processor-failures")
        );
    }

    #[test]
    fn aws_get_output_fixture_resolves_with_the_uuid_as_name() {
        let config = fixture_config("aws_json = \"fixtures/aws/get-kinesis-output.json\"").unwrap();
        let expected = Mapping {
            name: "6d9bce8e-836b-442c-8070-74e77903c815".into(),
            event_source_arn: ORDERS_ARN.into(),
            consumer: None,
            stream_kind: StreamKind::Kinesis,
            function_name: "order-processor".into(),
            enabled: true,
            batch_size: 100,
            maximum_batching_window_ms: 0,
            starting_position: StartingPosition::AtTimestamp(1_767_225_600_000),
            parallelization_factor: 1,
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: None,
            maximum_record_age_ms: None,
            on_failure_destination: None,
            report_batch_item_failures: false,
            tumbling_window_in_seconds: 0,
            filter_patterns: vec![],
            filter: Default::default(),
            on_destination_failure: OnDestinationFailure::DeadLetter,
            pace: Pace::aws_default(StreamKind::Kinesis),
        };
        assert_eq!(config.mappings, vec![expected]);
        // TOML keys override the file's, the name included.
        let config = fixture_config(
            "name = \"n\"\naws_json = \"fixtures/aws/get-kinesis-output.json\"\nbatch_size = 7\nenabled = false",
        )
        .unwrap();
        assert_eq!(config.mappings[0].name, "n");
        assert_eq!(config.mappings[0].batch_size, 7);
        assert!(!config.mappings[0].enabled);
    }

    #[test]
    fn aws_json_unknown_key_missing_file_and_missing_function() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.json"),
            "{\n  \"FunctionName\": \"order-processor\",\n  \"BatchSise\": 10\n}\n",
        )
        .unwrap();
        let run = |mapping: &str| {
            parse(&format!("{WORLD}\n[[mappings]]\n{mapping}"), dir.path())
                .unwrap_err()
                .problems
        };
        let got = run("name = \"m\"\naws_json = \"bad.json\"");
        assert_eq!(got.len(), 1);
        let file = dir.path().join("bad.json");
        assert!(
            got[0].starts_with(&format!(
                "mapping \"m\": aws_json: {}:3:3: BatchSise: unknown key (did you mean BatchSize?); allowed: FunctionName, ",
                file.display()
            )),
            "{got:?}"
        );

        let got = run("aws_json = \"missing.json\"");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("mapping #1: aws_json: cannot read "),
            "{got:?}"
        );

        std::fs::write(
            dir.path().join("nofn.json"),
            r#"{"EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders", "StartingPosition": "LATEST", "UUID": "u-1"}"#,
        )
        .unwrap();
        assert_eq!(
            run("aws_json = \"nofn.json\""),
            vec!["mapping \"u-1\": function_name is required"]
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for text in [
            "",
            "[[mappings]]",
            "[[mappings]]\nname = \"\"",
            "[[streams]]\nname = \"\"\nkind = \"kinesis\"\nshards = 4294967295",
            "[[mappings]]\nname = \"x\"\nstarting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = 1e300",
            "[[mappings]]\nname = \"x\"\nstarting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = nan",
            "[[mappings]]\nname = \"x\"\nbatch_size = 9223372036854775807\nmaximum_record_age_in_seconds = -9223372036854775808",
            "[[mappings]]\nname = \"x\"\nevent_source_arn = \"arn:aws:kinesis:::stream/a/consumer/b\"",
            "[[mappings]]\nname = \"x\"\naws_json = \"\"",
            "[[mappings]]\nname = \"x\"\npace = { poll_interval_ms = 18446744073709551615 }",
        ] {
            let _ = parse(&format!("{WORLD}{text}"), Path::new(""));
            let _ = parse(text, Path::new(""));
        }
    }

    #[test]
    fn admin_defaults_ranges_and_the_token_rule_for_non_loopback_addresses() {
        let config = parse(&format!("{WORLD}\n{}", mapping_toml("")), Path::new("")).unwrap();
        assert_eq!(
            config.admin,
            Admin {
                listen: Some("127.0.0.1:9400".parse().unwrap()),
                listen_is_default: true,
                token: None,
                stuck_after_ms: 60_000,
            }
        );
        let with = |admin: &str| problems(&format!("[admin]\n{admin}\n{}", mapping_toml("")));
        assert_eq!(with("stuck_after_seconds = 1"), Vec::<String>::new());
        assert_eq!(
            with("stuck_after_seconds = 0"),
            vec!["admin: stuck_after_seconds = 0: must be 1..=86400"]
        );
        assert_eq!(
            with("listen = \"0.0.0.0:9400\""),
            vec!["admin: listen = \"0.0.0.0:9400\": a non-loopback address needs a token (set token or token_env)"]
        );
        assert_eq!(
            with("listen = \"0.0.0.0:9400\"\ntoken = \"s3cret\""),
            Vec::<String>::new()
        );
        assert_eq!(
            with("listen = \"localhost\""),
            vec!["admin: listen = \"localhost\": must be IP:PORT (e.g. \"127.0.0.1:9400\")"]
        );
        assert_eq!(
            with("token_env = \"ESM_SIM_TEST_SURELY_UNSET_VARIABLE\""),
            vec!["admin: token_env = \"ESM_SIM_TEST_SURELY_UNSET_VARIABLE\": environment variable ESM_SIM_TEST_SURELY_UNSET_VARIABLE is not set or empty"]
        );
        assert_eq!(
            with("token = \"a\"\ntoken_env = \"B\""),
            vec!["admin: token and token_env are exclusive: give one"]
        );
        let off = parse(
            &format!(
                "{WORLD}\n[admin]\nenabled = false\nlisten = \"0.0.0.0:1\"\n{}",
                mapping_toml("")
            ),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            off.admin.listen, None,
            "disabled: no address, no token needed"
        );
    }
}
