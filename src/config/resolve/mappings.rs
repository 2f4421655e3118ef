//! `[[mappings]]`: one event source mapping, from its entry (TOML, or merged with an AWS
//! JSON file) to the validated `Mapping`.
//!
//! This file owns the mapping's name, function and the scalar keys AWS defines with their
//! defaults and ranges (batching, parallelization, retries, record age, response types,
//! tumbling window) and the filters; the event source, starting position, destination and
//! pace each have their own file. Problems are added in the order of the keys above.

use crate::limits;
use std::path::Path;

use super::destination::{resolve_destination_config, resolve_on_destination_failure};
use super::event_source::resolve_source;
use super::metrics::resolve_metrics_config;
use super::pace::resolve_pace;
use super::problems::Problems;
use super::rules::{is_name, is_name_char, join};
use super::starting_position::resolve_starting_position;
use crate::arn::lambda_function_name;
use crate::config::aws_json;
use crate::config::mapping::Mapping;
use crate::config::schema::{AwsIdentity, FunctionConfig, MappingEntry, SimStreamConfig};
use crate::filter::{FilterCriteria, FilterError};
use crate::model::StreamKind;

/// What a mapping is checked against.
pub(super) struct World<'a> {
    pub(super) aws: &'a AwsIdentity,
    pub(super) streams: &'a [SimStreamConfig],
    pub(super) functions: &'a [FunctionConfig],
    pub(super) base_dir: &'a Path,
}

/// Resolve one `[[mappings]]` entry: its name (for the uniqueness check) and, when it has
/// no problem, the mapping.
pub(super) fn resolve_mapping(
    index: usize,
    toml_entry: MappingEntry,
    world: &World<'_>,
    p: &mut Problems,
) -> (Option<String>, Option<Mapping>) {
    let before = p.list.len();
    let unnamed = format!("mapping #{}", index + 1);
    let entry = match with_aws_json(toml_entry, world.base_dir, &unnamed, p) {
        Ok(entry) => entry,
        Err(name) => return (name, None),
    };
    let subject = match &entry.name {
        Some(name) if !name.is_empty() => format!("mapping {name:?}"),
        _ => unnamed,
    };
    let subject = subject.as_str();
    check_name(entry.name.as_deref(), subject, p);

    let source = resolve_source(&entry, world.streams, world.aws, subject, p);
    let kind = source.stream.as_ref().map(|(_, kind)| *kind);
    let function_name =
        resolve_function_name(entry.function_name.as_deref(), world.functions, subject, p);
    let (batch_size, window) = resolve_batching(&entry, subject, p);
    let starting_position = resolve_starting_position(&entry, kind, subject, p);
    let processing = resolve_processing(&entry, subject, p);
    let (filter_patterns, filter) = resolve_filters(&entry, subject, p);
    let metrics = resolve_metrics_config(entry.metrics_config.as_ref(), subject, p);
    let on_failure_destination = resolve_destination_config(&entry, world.base_dir, subject, p);
    let on_destination_failure = resolve_on_destination_failure(&entry, subject, p);
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
    ) = (entry.name, source.stream, function_name, starting_position)
    else {
        return (name, None);
    };
    let mapping = Mapping {
        name: name_value,
        event_source_arn,
        consumer: source.consumer,
        stream_kind,
        function_name,
        enabled: entry.enabled.unwrap_or(true),
        batch_size: batch_size as usize,
        maximum_batching_window_ms: window as u64 * 1000,
        starting_position,
        parallelization_factor: processing.parallelization_factor as u32,
        bisect_batch_on_function_error: entry.bisect_batch_on_function_error.unwrap_or(false),
        maximum_retry_attempts: match processing.maximum_retry_attempts {
            -1 => None,
            retries => Some(retries as u32),
        },
        maximum_record_age_ms: match processing.maximum_record_age_in_seconds {
            -1 => None,
            age => Some(age * 1000),
        },
        on_failure_destination,
        report_batch_item_failures: processing.report_batch_item_failures,
        tumbling_window_in_seconds: processing.tumbling_window_in_seconds,
        filter_patterns,
        filter,
        metrics,
        on_destination_failure,
        pace,
    };
    (name, Some(mapping))
}

/// The entry merged with its `aws_json` file if it names one; Err(its name) when the file
/// cannot be read (a problem is added).
fn with_aws_json(
    toml_entry: MappingEntry,
    base_dir: &Path,
    unnamed: &str,
    p: &mut Problems,
) -> Result<MappingEntry, Option<String>> {
    let Some(path) = &toml_entry.aws_json else {
        return Ok(toml_entry);
    };
    match aws_json::load(&join(base_dir, path)) {
        Ok(file_entry) => Ok(aws_json::merge(toml_entry, file_entry)),
        Err(e) => {
            let subject = toml_entry
                .name
                .as_ref()
                .map_or(unnamed.to_string(), |n| format!("mapping {n:?}"));
            p.add(&subject, format!("aws_json: {e}"));
            Err(toml_entry.name)
        }
    }
}

fn check_name(name: Option<&str>, subject: &str, p: &mut Problems) {
    match name {
        None => p.add(subject, "name is required (or aws_json with a UUID)"),
        Some(name) => {
            if !is_name(name, 1..=128, is_name_char) || name.starts_with('.') {
                p.add(
                    subject,
                    format!("name = {name:?}: must be 1..=128 characters of letters, digits, '-', '_' and '.', not starting with '.'"),
                );
            }
        }
    }
}

/// The `[[functions]]` entry `function_name` names (a name or an ARN, with a qualifier or not).
fn resolve_function_name(
    given: Option<&str>,
    functions: &[FunctionConfig],
    subject: &str,
    p: &mut Problems,
) -> Option<String> {
    let Some(given) = given else {
        p.add(subject, "function_name is required");
        return None;
    };
    let name = lambda_function_name(given);
    if functions.iter().any(|f| f.name == name) {
        return Some(name.to_string());
    }
    let defined: Vec<String> = functions.iter().map(|f| format!("{:?}", f.name)).collect();
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

/// `batch_size` and `maximum_batching_window_in_seconds`, defaulted.
fn resolve_batching(entry: &MappingEntry, subject: &str, p: &mut Problems) -> (i64, i64) {
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
    (batch_size, window)
}

/// How batches are processed and retried, as the engine reads it.
struct Processing {
    parallelization_factor: i64,
    /// -1: unlimited.
    maximum_retry_attempts: i64,
    /// -1: unlimited.
    maximum_record_age_in_seconds: i64,
    report_batch_item_failures: bool,
    tumbling_window_in_seconds: u32,
}

/// `parallelization_factor`, `maximum_retry_attempts`, `maximum_record_age_in_seconds`
/// (-1: unlimited), `function_response_types` and `tumbling_window_in_seconds`.
fn resolve_processing(entry: &MappingEntry, subject: &str, p: &mut Problems) -> Processing {
    let parallelization_factor = entry.parallelization_factor.unwrap_or(1);
    p.range(
        subject,
        "parallelization_factor",
        parallelization_factor,
        1,
        limits::ESM_MAX_PARALLELIZATION_FACTOR,
    );
    let retries = entry.maximum_retry_attempts.unwrap_or(-1);
    p.range_or_minus_one(
        subject,
        "maximum_retry_attempts",
        retries,
        0,
        limits::ESM_MAX_RETRY_ATTEMPTS,
    );
    let age = entry.maximum_record_age_in_seconds.unwrap_or(-1);
    p.range_or_minus_one(
        subject,
        "maximum_record_age_in_seconds",
        age,
        limits::ESM_MIN_RECORD_AGE_SECONDS,
        limits::ESM_MAX_RECORD_AGE_SECONDS,
    );

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
    Processing {
        parallelization_factor,
        maximum_retry_attempts: retries,
        maximum_record_age_in_seconds: age,
        report_batch_item_failures,
        tumbling_window_in_seconds: tumbling as u32,
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

#[cfg(test)]
mod tests {
    use crate::config::{OnDestinationFailure, Pace};
    use crate::model::{StreamKind, StreamViewType};
    use std::path::Path;

    use crate::config::resolve::test_support::*;
    use crate::config::{parse, Config, ConfigError, Mapping, StartingPosition};

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
            mapping_problems("filter_criteria = { filters = [{ pattern = '{\"a\": [{\"wildcard\": \"x*\"}]}' }] }"),
            vec!["mapping \"m\": filter_criteria filter 1: Invalid filter pattern definition. (\"a\": operator \"wildcard\" is not supported (prefix, suffix, equals-ignore-case, anything-but, numeric, exists))"]
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
            metrics: vec![],
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
            metrics: vec!["EventCount".into()],
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
}
