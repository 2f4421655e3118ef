//! A mapping in the AWS JSON form: the input of `aws lambda create-event-source-mapping
//! --cli-input-json` or the output of `aws lambda get-event-source-mapping`.
//!
//! It lets people reuse what they already have (or check what they would deploy) without
//! translating it to TOML. This module only reads and converts: the PascalCase document
//! becomes a `MappingEntry` (the TOML form), so `resolve` applies one set of defaults and
//! range checks whatever the source. Keys that AWS prints but that do not configure the
//! mapping (State, LastModified, ...) are accepted and ignored; any other unknown key is an
//! error naming the key, the file and the position, exactly like an unknown TOML key.

use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::arn::lambda_function_name;

use super::schema::{
    DestinationConfig, Filter, FilterCriteria, MappingEntry, MetricsConfig, OnFailure,
};

/// The document, key for key. Read-only output fields are kept only so that they are not
/// rejected as unknown.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsEventSourceMapping {
    /// A name, a partial ARN (`123456789012:function:name`) or a full ARN, with an optional
    /// `:qualifier` (create input).
    pub function_name: Option<String>,
    /// The full function ARN (get output).
    pub function_arn: Option<String>,
    pub event_source_arn: Option<String>,
    pub enabled: Option<bool>,
    pub batch_size: Option<i64>,
    pub maximum_batching_window_in_seconds: Option<i64>,
    pub starting_position: Option<String>,
    /// Epoch seconds (a number), or an ISO-8601 time as the CLI prints it.
    pub starting_position_timestamp: Option<serde_json::Value>,
    pub parallelization_factor: Option<i64>,
    pub bisect_batch_on_function_error: Option<bool>,
    pub maximum_retry_attempts: Option<i64>,
    pub maximum_record_age_in_seconds: Option<i64>,
    pub destination_config: Option<AwsDestinationConfig>,
    pub function_response_types: Option<Vec<String>>,
    pub tumbling_window_in_seconds: Option<i64>,
    pub filter_criteria: Option<AwsFilterCriteria>,
    pub metrics_config: Option<AwsMetricsConfig>,
    /// The mapping's id (get output); the default name of the mapping.
    #[serde(rename = "UUID")]
    pub uuid: Option<String>,
    /// `Enabled`, `Disabled`, `Creating`, ... (get output). Used only when `Enabled` is
    /// absent: `Disabled` / `Disabling` mean a disabled mapping.
    pub state: Option<String>,
    pub state_transition_reason: Option<IgnoredAny>,
    pub last_modified: Option<IgnoredAny>,
    pub last_processing_result: Option<IgnoredAny>,
    pub event_source_mapping_arn: Option<IgnoredAny>,
    pub filter_criteria_error: Option<IgnoredAny>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<IgnoredAny>,
    /// Create input: resource tags. Accepted and ignored (they do not change behaviour).
    pub tags: Option<IgnoredAny>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsDestinationConfig {
    pub on_failure: Option<AwsDestination>,
    pub on_success: Option<AwsDestination>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsDestination {
    pub destination: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsMetricsConfig {
    #[serde(default)]
    pub metrics: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsFilterCriteria {
    #[serde(default)]
    pub filters: Vec<AwsFilter>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AwsFilter {
    pub pattern: String,
}

/// Read `path` and convert it. The error names the file.
pub fn load(path: &Path) -> Result<MappingEntry, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    from_json(&text, &path.display().to_string())
}

/// Convert a document; `origin` (the file) is named in errors, with the line and column
/// of a wrong value or unknown key (`esm.json:3:16: BatchSize = "ten": expected an integer`).
pub fn from_json(text: &str, origin: &str) -> Result<MappingEntry, String> {
    let doc: AwsEventSourceMapping = super::type_error::from_json(text, origin)?;
    doc.into_entry().map_err(|e| format!("{origin}: {e}"))
}

impl AwsEventSourceMapping {
    /// The same mapping in the TOML form. `name` is the UUID; `aws_json`, `pace` and
    /// `on_destination_failure` (esm-sim's own keys) are left unset.
    pub fn into_entry(self) -> Result<MappingEntry, String> {
        for (key, present, why) in [
            (
                "KMSKeyArn",
                self.kms_key_arn.is_some(),
                "it encrypts the filter criteria AWS stores",
            ),
            ("Tags", self.tags.is_some(), "they tag the AWS resource"),
        ] {
            if present {
                tracing::info!("{key} accepted with no effect locally: {why}");
            }
        }
        let starting_position_timestamp = match &self.starting_position_timestamp {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(timestamp_seconds(value)?),
        };
        let function_name = self
            .function_name
            .or(self.function_arn)
            .map(|f| lambda_function_name(&f).to_string());
        let enabled = self.enabled.or(match self.state.as_deref() {
            Some("Disabled") | Some("Disabling") => Some(false),
            _ => None,
        });
        let destination_config = self.destination_config.map(|d| DestinationConfig {
            on_failure: d.on_failure.map(|f| OnFailure {
                destination: f.destination,
            }),
            // The CLI prints `"OnSuccess": {}` for mappings without one: only a destination
            // that is really set is kept (and then rejected by `resolve`).
            on_success: d
                .on_success
                .filter(|s| s.destination.is_some())
                .map(|s| OnFailure {
                    destination: s.destination,
                }),
        });
        let filter_criteria = self.filter_criteria.map(|c| FilterCriteria {
            filters: c
                .filters
                .into_iter()
                .map(|f| Filter { pattern: f.pattern })
                .collect(),
        });
        Ok(MappingEntry {
            name: self.uuid,
            aws_json: None,
            event_source_arn: self.event_source_arn,
            consumer_name: None,
            function_name,
            enabled,
            batch_size: self.batch_size,
            maximum_batching_window_in_seconds: self.maximum_batching_window_in_seconds,
            starting_position: self.starting_position,
            starting_position_timestamp,
            parallelization_factor: self.parallelization_factor,
            bisect_batch_on_function_error: self.bisect_batch_on_function_error,
            maximum_retry_attempts: self.maximum_retry_attempts,
            maximum_record_age_in_seconds: self.maximum_record_age_in_seconds,
            destination_config,
            function_response_types: self.function_response_types,
            tumbling_window_in_seconds: self.tumbling_window_in_seconds,
            filter_criteria,
            metrics_config: self
                .metrics_config
                .map(|m| MetricsConfig { metrics: m.metrics }),
            on_destination_failure: None,
            pace: None,
        })
    }
}

/// StartingPositionTimestamp as epoch seconds: a JSON number, or a string holding a number
/// or an ISO-8601 time (`2026-01-01T00:00:00+00:00`, `...Z`, fractions; without an offset
/// it is UTC).
pub fn timestamp_seconds(value: &serde_json::Value) -> Result<f64, String> {
    let bad = || {
        format!("StartingPositionTimestamp = {value}: must be epoch seconds or an ISO-8601 time")
    };
    match value {
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(bad),
        serde_json::Value::String(s) => {
            let s = s.trim();
            if let Ok(seconds) = s.parse::<f64>() {
                return Ok(seconds);
            }
            if let Ok(time) = chrono::DateTime::parse_from_rfc3339(s) {
                return Ok(time.timestamp_millis() as f64 / 1000.0);
            }
            for format in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%.f%:z",
            ] {
                if let Ok(time) = chrono::DateTime::parse_from_str(s, format) {
                    return Ok(time.timestamp_millis() as f64 / 1000.0);
                }
                if let Ok(time) = chrono::NaiveDateTime::parse_from_str(s, format) {
                    return Ok(time.and_utc().timestamp_millis() as f64 / 1000.0);
                }
            }
            Err(bad())
        }
        _ => Err(bad()),
    }
}

/// `file` with every key that `toml` sets replaced by the TOML's value.
pub fn merge(toml: MappingEntry, file: MappingEntry) -> MappingEntry {
    MappingEntry {
        name: toml.name.or(file.name),
        aws_json: toml.aws_json.or(file.aws_json),
        event_source_arn: toml.event_source_arn.or(file.event_source_arn),
        consumer_name: toml.consumer_name.or(file.consumer_name),
        function_name: toml.function_name.or(file.function_name),
        enabled: toml.enabled.or(file.enabled),
        batch_size: toml.batch_size.or(file.batch_size),
        maximum_batching_window_in_seconds: toml
            .maximum_batching_window_in_seconds
            .or(file.maximum_batching_window_in_seconds),
        starting_position: toml.starting_position.or(file.starting_position),
        starting_position_timestamp: toml
            .starting_position_timestamp
            .or(file.starting_position_timestamp),
        parallelization_factor: toml.parallelization_factor.or(file.parallelization_factor),
        bisect_batch_on_function_error: toml
            .bisect_batch_on_function_error
            .or(file.bisect_batch_on_function_error),
        maximum_retry_attempts: toml.maximum_retry_attempts.or(file.maximum_retry_attempts),
        maximum_record_age_in_seconds: toml
            .maximum_record_age_in_seconds
            .or(file.maximum_record_age_in_seconds),
        destination_config: toml.destination_config.or(file.destination_config),
        function_response_types: toml
            .function_response_types
            .or(file.function_response_types),
        tumbling_window_in_seconds: toml
            .tumbling_window_in_seconds
            .or(file.tumbling_window_in_seconds),
        filter_criteria: toml.filter_criteria.or(file.filter_criteria),
        metrics_config: toml.metrics_config.or(file.metrics_config),
        on_destination_failure: toml.on_destination_failure.or(file.on_destination_failure),
        pace: toml.pace.or(file.pace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_numbers_or_iso_8601() {
        assert_eq!(timestamp_seconds(&json!(1767225600)), Ok(1767225600.0));
        assert_eq!(timestamp_seconds(&json!(1767225600.5)), Ok(1767225600.5));
        assert_eq!(timestamp_seconds(&json!("1767225600")), Ok(1767225600.0));
        assert_eq!(
            timestamp_seconds(&json!("2026-01-01T00:00:00Z")),
            Ok(1767225600.0)
        );
        assert_eq!(
            timestamp_seconds(&json!("2026-01-01T00:00:00+00:00")),
            Ok(1767225600.0)
        );
        assert_eq!(
            timestamp_seconds(&json!("2026-01-01T01:00:00.250000+01:00")),
            Ok(1767225600.25)
        );
        assert_eq!(
            timestamp_seconds(&json!("2026-01-01T00:00:00")),
            Ok(1767225600.0)
        );
        assert_eq!(
            timestamp_seconds(&json!("2026-01-01 00:00:00")),
            Ok(1767225600.0)
        );
        assert_eq!(
            timestamp_seconds(&json!("yesterday")),
            Err("StartingPositionTimestamp = \"yesterday\": must be epoch seconds or an ISO-8601 time".to_string())
        );
        assert!(timestamp_seconds(&json!(true)).is_err());
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name_and_the_file() {
        let err = from_json(r#"{"FunctionName": "f", "BatchSise": 10}"#, "esm.json").unwrap_err();
        assert!(
            err.starts_with("esm.json:1:23: BatchSise: unknown key (did you mean BatchSize?); allowed: FunctionName, FunctionArn, EventSourceArn, "),
            "{err}"
        );
    }

    #[test]
    fn keys_of_other_event_sources_are_rejected() {
        let err = from_json(r#"{"FunctionName": "f", "Queues": ["q"]}"#, "esm.json").unwrap_err();
        assert!(
            err.starts_with("esm.json:1:23: Queues: unknown key; allowed: "),
            "{err}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_key_the_value_and_the_position() {
        let err = from_json(
            "{\n  \"FunctionName\": \"f\",\n  \"BatchSize\": \"ten\"\n}",
            "esm.json",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "esm.json:3:16: BatchSize = \"ten\": expected an integer"
        );
        let err = from_json(
            r#"{"DestinationConfig": {"OnFailure": {"Destination": 5}}}"#,
            "esm.json",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:53: DestinationConfig.OnFailure.Destination = 5: expected a string"
        );
        let err = from_json(
            r#"{"FilterCriteria": {"Filters": [{"Pattern": "{}"}, {}]}}"#,
            "esm.json",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:52: FilterCriteria.Filters[1].Pattern is required"
        );
        let err = from_json(r#"{"Enabled": "yes"}"#, "esm.json").unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:13: Enabled = \"yes\": expected a boolean (true or false)"
        );
        let err = from_json(r#"{"BatchSize": {"a": 1}}"#, "esm.json").unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:15: BatchSize = {\"a\": 1}: expected an integer"
        );
        let err = from_json(r#"{"BatchSize":[1]}"#, "esm.json").unwrap_err();
        assert_eq!(err, "esm.json:1:14: BatchSize = [1]: expected an integer");
        let err = from_json("{\"État\": 1,\n \"Enabled\": \"é\"}", "esm.json").unwrap_err();
        assert!(
            err.starts_with("esm.json:1:2: État: unknown key (did you mean State?); allowed: "),
            "{err}"
        );
        let err = from_json("{\"Enabled\": \"é\"}", "esm.json").unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:13: Enabled = \"é\": expected a boolean (true or false)"
        );
        let err = from_json("[1, 2]", "esm.json").unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:1: expected a JSON object (the mapping's parameters)"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random edits of an AWS JSON mapping never panic, and every error has a position.
        #[test]
        fn random_edits_never_panic_and_every_error_has_a_position(
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), 0usize..8,
                 proptest::sample::select(&["", "\"", "{", "}", "[", "]", ",", ":", "1", "\"x\"", "\\", "é", "\n", "null", "true"][..]),
                 proptest::prelude::any::<char>(), proptest::prelude::any::<bool>()),
                1..4,
            )
        ) {
            let original = include_str!("../../fixtures/aws/get-kinesis-output.json");
            let text = crate::config::type_error::apply_edits(original, &edits);
            if let Err(err) = from_json(&text, "x.json") {
                let rest = err.strip_prefix("x.json:").unwrap_or("");
                let mut parts = rest.splitn(3, ':');
                let number = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p != "0" && p.bytes().all(|b| b.is_ascii_digit()));
                // Errors of the conversion (after reading) have no position: `x.json: ...`.
                proptest::prop_assert!(
                    rest.starts_with(' ') || (number(parts.next()) && number(parts.next())),
                    "{}", err
                );
                proptest::prop_assert!(!err.contains('\n'), "{}", err);
            }
        }
    }

    #[test]
    fn a_syntax_error_has_its_position() {
        let err = from_json("{\n  \"Enabled\": tru\n}", "esm.json").unwrap_err();
        assert_eq!(err, "esm.json:3:1: JSON syntax error: expected ident");
        let err = from_json("", "esm.json").unwrap_err();
        assert_eq!(
            err,
            "esm.json:1:1: JSON syntax error: EOF while parsing a value"
        );
    }

    #[test]
    fn read_only_output_keys_are_ignored() {
        let entry = from_json(
            r#"{"UUID": "u-1", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "State": "Enabled",
                "StateTransitionReason": "User action", "LastModified": 1767225600.0,
                "LastProcessingResult": "No records processed", "EventSourceMappingArn": "arn:x",
                "MetricsConfig": {"Metrics": ["EventCount"]}, "FilterCriteriaError": {"ErrorCode": "x"},
                "KMSKeyArn": "arn:aws:kms:x", "Tags": {"team": "a"}}"#,
            "get.json",
        )
        .unwrap();
        assert_eq!(entry.name.as_deref(), Some("u-1"));
        assert_eq!(entry.function_name.as_deref(), Some("f"));
        assert_eq!(entry.enabled, None);
    }

    #[test]
    fn a_disabled_state_means_a_disabled_mapping_unless_enabled_is_given() {
        let entry = from_json(r#"{"State": "Disabled"}"#, "get.json").unwrap();
        assert_eq!(entry.enabled, Some(false));
        let entry = from_json(r#"{"State": "Disabled", "Enabled": true}"#, "get.json").unwrap();
        assert_eq!(entry.enabled, Some(true));
    }

    #[test]
    fn an_empty_on_success_is_dropped_and_a_set_one_kept() {
        let entry = from_json(
            r#"{"DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}}"#,
            "x.json",
        )
        .unwrap();
        let dest = entry.destination_config.unwrap();
        assert!(dest.on_success.is_none());
        assert!(dest.on_failure.unwrap().destination.is_none());
        let entry = from_json(
            r#"{"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:1:q"}}}"#,
            "x.json",
        )
        .unwrap();
        assert!(entry.destination_config.unwrap().on_success.is_some());
    }

    #[test]
    fn not_an_object_is_an_error_not_a_panic() {
        assert!(from_json("[1, 2]", "x.json").is_err());
        assert!(from_json("", "x.json").is_err());
        assert!(from_json(r#"{"StartingPositionTimestamp": [1]}"#, "x.json").is_err());
    }

    #[test]
    fn toml_keys_override_the_file() {
        let file = MappingEntry {
            name: Some("uuid".into()),
            batch_size: Some(10),
            function_name: Some("f".into()),
            ..MappingEntry::default()
        };
        let toml = MappingEntry {
            batch_size: Some(20),
            ..MappingEntry::default()
        };
        let merged = merge(toml, file);
        assert_eq!(merged.batch_size, Some(20));
        assert_eq!(merged.name.as_deref(), Some("uuid"));
        assert_eq!(merged.function_name.as_deref(), Some("f"));
    }

    #[test]
    fn kms_key_and_tags_are_accepted_and_ignored() {
        let entry = from_json(
            r#"{"FunctionName": "f", "KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k", "Tags": {"team": "a"}}"#,
            "esm.json",
        )
        .expect("accepted");
        assert_eq!(entry.function_name.as_deref(), Some("f"));
    }
}
