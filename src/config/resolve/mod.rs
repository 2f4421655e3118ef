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
//! This file checks the top level (paths, checkpoint flush, names used twice, one mapping
//! per event source and function) and hands each section to its own file: `settings`
//! (`[aws]`, `[simulation]`, `[log]`), `workers`, `admin`, `coordination`, `streams`, `functions`, `mappings` (with
//! `event_source`, `starting_position`, `destination`, `pace`). All of them write into one
//! `problems::Problems`.
//!
//! Durations that become milliseconds are capped (a day for pace values, a year for the
//! rest) so that no later arithmetic on them can overflow.

mod admin;
mod coordination;
mod destination;
mod event_source;
mod functions;
mod mappings;
mod metrics;
mod pace;
mod problems;
mod rules;
mod settings;
mod starting_position;
mod streams;
#[cfg(test)]
mod test_support;
mod workers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::mappings::{resolve_mapping, World};
use self::problems::Problems;
use super::mapping::{Config, Mapping};
use super::schema::{ConfigFile, FunctionConfig, MappingEntry};
use super::type_error;
use super::ConfigError;

pub use self::admin::{DEFAULT_ADMIN_LISTEN, MAX_STUCK_AFTER_SECONDS};
pub use self::coordination::DEFAULT_LEASE_TABLE;
pub use self::pace::{MAX_PACE_MS, MAX_PACE_SECONDS};
pub use self::rules::{join, MAX_SECONDS};
pub use self::starting_position::MAX_EPOCH_SECONDS;
pub use self::streams::is_shard_id;

/// Default `state_dir`, relative to the config's directory.
pub const DEFAULT_STATE_DIR: &str = ".esm-sim";
/// `checkpoint_flush_ms` unless given: a crash re-delivers at most about a second.
pub const DEFAULT_CHECKPOINT_FLUSH_MS: u64 = 1_000;
/// Most `checkpoint_flush_ms`: a minute.
pub const MAX_CHECKPOINT_FLUSH_MS: u64 = 60_000;
/// The problem of a config (and template) without any mapping and without the admin API
/// through which mappings could be created.
pub const NO_MAPPINGS: &str = "no [[mappings]] and [admin] enabled = false: nothing to run (with the admin API on, mappings can be created through its Lambda API)";
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
        coordination,
        mut streams,
        functions,
        mappings,
        template: _,
    } = file;

    settings::check_aws(&aws, &mut p);
    let simulation = settings::resolve_simulation(&simulation, &mut p);
    let stats_interval_ms = settings::resolve_log(&log, &mut p);
    let admin = admin::resolve_admin(&admin, &mut p);
    let coordination = coordination::resolve_coordination(&coordination, &mut p);
    workers::check_lease_table(&simulation, &coordination, &mut p);
    let checkpoint_flush_ms = checkpoint_flush_ms.unwrap_or(DEFAULT_CHECKPOINT_FLUSH_MS);
    p.range(
        "top level",
        "checkpoint_flush_ms",
        checkpoint_flush_ms,
        0,
        MAX_CHECKPOINT_FLUSH_MS,
    );
    let (state_dir, dead_letter_file) =
        resolve_paths(state_dir, dead_letter_file, base_dir, &mut p);

    for (i, stream) in streams.iter_mut().enumerate() {
        streams::resolve_stream(i, stream, &mut p);
    }
    p.duplicate_names("stream", "streams", streams.iter().map(|s| s.name.as_str()));
    for (i, function) in functions.iter().enumerate() {
        functions::check_function(i, function, &mut p);
    }
    p.duplicate_names(
        "function",
        "functions",
        functions.iter().map(|f| f.name.as_str()),
    );

    if mappings.is_empty() && admin.listen.is_none() {
        p.list.push(NO_MAPPINGS.to_string());
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
        names.extend(name);
        resolved.extend(mapping);
    }
    p.duplicate_names("mapping", "mappings", names.iter().map(String::as_str));
    check_one_mapping_per_source(&resolved, &mut p);

    if !p.list.is_empty() {
        return Err(ConfigError { problems: p.list });
    }
    Ok(Config {
        state_dir,
        dead_letter_file,
        checkpoint_flush_ms,
        aws,
        simulation,
        stats_interval_ms,
        admin,
        coordination,
        streams,
        functions: with_working_dirs_resolved(functions, base_dir),
        mappings: resolved,
    })
}

/// One mapping added to a running config (the Lambda API's CreateEventSourceMapping and
/// UpdateEventSourceMapping), resolved exactly as a `[[mappings]]` entry of the file is:
/// the same defaults, ranges and messages. Relative paths resolve against `base_dir`.
/// Conflicts with the mappings already running are the caller's to check.
pub fn resolve_added(
    entry: MappingEntry,
    config: &Config,
    base_dir: &Path,
) -> Result<Mapping, ConfigError> {
    let mut p = Problems::default();
    let world = World {
        aws: &config.aws,
        streams: &config.streams,
        functions: &config.functions,
        base_dir,
    };
    match resolve_mapping(0, entry, &world, &mut p) {
        (_, Some(mapping)) if p.list.is_empty() => Ok(mapping),
        _ => Err(ConfigError { problems: p.list }),
    }
}

/// `state_dir` and `dead_letter_file`, defaulted and resolved against `base_dir`.
fn resolve_paths(
    state_dir: Option<PathBuf>,
    dead_letter_file: Option<PathBuf>,
    base_dir: &Path,
    p: &mut Problems,
) -> (PathBuf, PathBuf) {
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
    (state_dir, dead_letter_file)
}

/// AWS allows one mapping per event source and function (ResourceConflictException).
/// A consumer is an event source of its own, apart from its stream.
fn check_one_mapping_per_source(resolved: &[Mapping], p: &mut Problems) {
    let mut seen: HashMap<(String, &str), &str> = HashMap::new();
    for m in resolved {
        let source = m.event_source();
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
}

/// The functions with `working_dir` resolved against `base_dir`.
fn with_working_dirs_resolved(
    functions: Vec<FunctionConfig>,
    base_dir: &Path,
) -> Vec<FunctionConfig> {
    functions
        .into_iter()
        .map(|mut f| {
            f.working_dir = f.working_dir.map(|dir| join(base_dir, &dir));
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{Mapping, OnDestinationFailure, Pace, StartingPosition, EMBEDDED_DEFAULT};
    use crate::model::StreamKind;
    use std::path::Path;

    use crate::config::parse;
    use crate::config::resolve::test_support::*;

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
            metrics: vec![],
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
    fn zero_mappings_is_a_problem_only_without_the_admin_api_that_can_create_them() {
        assert_eq!(
            problems("[admin]\nenabled = false\n"),
            vec![super::NO_MAPPINGS]
        );
        assert!(crate::config::parse("", Path::new("")).is_ok());
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
}
