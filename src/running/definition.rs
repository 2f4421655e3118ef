//! A mapping as the Lambda API receives it: the checks Lambda makes before its parameter
//! ranges (event source type, StartingPosition, OnSuccess, the function), the merge of an
//! UpdateEventSourceMapping into the stored definition, and the conversion to the TOML
//! form through `aws_json`, so that `config::resolve` applies the one set of defaults,
//! ranges and messages. Pure: no I/O, no running state.

use serde_json::{Map, Value};

use super::refusal::Refusal;
use crate::arn::{lambda_function_name, Arn};
use crate::config::schema::MappingEntry;
use crate::config::{aws_json, Config};

/// The fields UpdateEventSourceMapping may change (for a stream source).
const UPDATABLE: [&str; 14] = [
    "FunctionName",
    "Enabled",
    "BatchSize",
    "FilterCriteria",
    "MaximumBatchingWindowInSeconds",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "ParallelizationFactor",
    "FunctionResponseTypes",
    "TumblingWindowInSeconds",
    "MetricsConfig",
    "KMSKeyArn",
];

/// Lambda's own checks of a CreateEventSourceMapping request, before the parameter
/// ranges: a stream source, a StartingPosition it allows, no OnSuccess, a function.
pub fn check_create(request: &Map<String, Value>) -> Result<(), Refusal> {
    let arn = match request.get("EventSourceArn") {
        Some(Value::String(arn)) => arn.as_str(),
        _ => {
            return Err(Refusal::InvalidParameter(
                "Unrecognized event source.".into(),
            ))
        }
    };
    let service = Arn::parse(arn).map(|a| a.service()).unwrap_or("");
    match service {
        "kinesis" | "dynamodb" => {}
        "sqs" | "kafka" | "mq" | "rds" => {
            return Err(Refusal::InvalidParameter(format!(
                "Unsupported event source for esm-sim: {arn} (esm-sim runs stream event sources only: Kinesis and DynamoDB Streams)"
            )))
        }
        _ => return Err(Refusal::InvalidParameter("Unrecognized event source.".into())),
    }
    match request.get("StartingPosition") {
        None | Some(Value::Null) => {
            return Err(Refusal::InvalidParameter(Refusal::missing(
                "startingPosition",
            )))
        }
        Some(Value::String(p)) if ["LATEST", "TRIM_HORIZON"].contains(&p.as_str()) => {}
        Some(Value::String(p)) if p == "AT_TIMESTAMP" => {
            if service == "dynamodb" {
                return Err(Refusal::InvalidParameter(format!(
                    "Unsupported starting position for arn type: {arn}"
                )));
            }
        }
        Some(other) => {
            let shown = other.as_str().map_or(other.to_string(), str::to_string);
            return Err(Refusal::Validation(format!("1 validation error detected: Value '{shown}' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")));
        }
    }
    check_common(request)
}

/// What an update and a create both check: no OnSuccess destination, a function name.
fn check_common(request: &Map<String, Value>) -> Result<(), Refusal> {
    let on_success = request
        .get("DestinationConfig")
        .and_then(|d| d.get("OnSuccess"))
        .and_then(|s| s.get("Destination"));
    if on_success.is_some_and(|d| !d.is_null()) {
        return Err(Refusal::InvalidParameter(
            "Unsupported DestinationConfig parameter for given event source mapping type.".into(),
        ));
    }
    match request.get("FunctionName") {
        Some(Value::String(name)) if !name.is_empty() => Ok(()),
        _ => Err(Refusal::Validation(Refusal::missing("functionName"))),
    }
}

/// The stored definition with an UpdateEventSourceMapping's fields written over it.
pub fn merge_update(
    stored: &Map<String, Value>,
    update: &Map<String, Value>,
) -> Result<Map<String, Value>, Refusal> {
    if let Some(key) = update.keys().find(|k| !UPDATABLE.contains(&k.as_str())) {
        return Err(Refusal::InvalidParameter(format!(
            "{key} cannot be changed by UpdateEventSourceMapping (the fields it takes: {})",
            UPDATABLE.join(", ")
        )));
    }
    let mut merged = stored.clone();
    for (key, value) in update {
        merged.insert(key.clone(), value.clone());
    }
    check_common(&merged)?;
    Ok(merged)
}

/// The function a request names, which must be a `[[functions]]` entry of the config;
/// Lambda's ResourceNotFoundException names it by its ARN.
pub fn check_function(request: &Map<String, Value>, config: &Config) -> Result<(), Refusal> {
    let given = request
        .get("FunctionName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = lambda_function_name(given);
    if config.functions.iter().any(|f| f.name == name) {
        return Ok(());
    }
    Err(Refusal::NotFound(format!(
        "Function not found: {}",
        function_arn(config, name)
    )))
}

/// A function's ARN in the config's account and region.
pub fn function_arn(config: &Config, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        config.aws.region, config.aws.account_id
    )
}

/// The definition in the TOML form, named by `uuid`.
pub fn to_entry(definition: &Map<String, Value>, uuid: &str) -> Result<MappingEntry, Refusal> {
    let mut document = definition.clone();
    document.insert("UUID".into(), Value::String(uuid.into()));
    let text = Value::Object(document).to_string();
    aws_json::from_json(&text, "request").map_err(|e| {
        let message = e.strip_prefix("request:").unwrap_or(&e);
        Refusal::InvalidParameter(
            message
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == ' ')
                .to_string(),
        )
    })
}

/// `config::resolve`'s problems about mapping `uuid` in one message, each without the
/// `mapping "UUID": ` it starts with and naming its key as the API does
/// (`batch_size = 0: must be 1..=10000` becomes `BatchSize = 0: must be 1..=10000`).
pub fn problems_message(problems: &[String], uuid: &str) -> String {
    let subject = format!("mapping {uuid:?}: ");
    problems
        .iter()
        .map(|p| api_key_first(p.strip_prefix(&subject).unwrap_or(p)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A problem whose first word is a snake_case key (`destination_config.on_failure`, ...),
/// with that key in the API's PascalCase; any other text as it is.
fn api_key_first(problem: &str) -> String {
    let end = problem.find([' ', ':']).unwrap_or(problem.len());
    let (key, rest) = problem.split_at(end);
    let is_key = key.contains('_')
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.[]".contains(&b));
    if !is_key {
        return problem.to_string();
    }
    let mut pascal = String::with_capacity(key.len());
    let mut upper = true;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            '.' | '[' | ']' => {
                pascal.push(c);
                upper = true;
            }
            _ if upper => {
                pascal.push(c.to_ascii_uppercase());
                upper = false;
            }
            _ => pascal.push(c),
        }
    }
    pascal + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const STREAM: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
    const TABLE_STREAM: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000";

    #[test]
    fn a_create_needs_a_stream_source_a_starting_position_lambda_allows_and_a_function() {
        let ok =
            json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "LATEST"});
        assert_eq!(check_create(&request(ok)), Ok(()));
        let cases = [
            (json!({"FunctionName": "f", "StartingPosition": "LATEST"}), Refusal::InvalidParameter("Unrecognized event source.".into())),
            (json!({"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q", "FunctionName": "f"}), Refusal::InvalidParameter("Unsupported event source for esm-sim: arn:aws:sqs:us-east-1:123456789012:q (esm-sim runs stream event sources only: Kinesis and DynamoDB Streams)".into())),
            (json!({"EventSourceArn": "arn:aws:s3:::bucket", "FunctionName": "f"}), Refusal::InvalidParameter("Unrecognized event source.".into())),
            (json!({"EventSourceArn": STREAM, "FunctionName": "f"}), Refusal::InvalidParameter("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.".into())),
            (json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "EARLIEST"}), Refusal::Validation("1 validation error detected: Value 'EARLIEST' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]".into())),
            (json!({"EventSourceArn": TABLE_STREAM, "FunctionName": "f", "StartingPosition": "AT_TIMESTAMP"}), Refusal::InvalidParameter(format!("Unsupported starting position for arn type: {TABLE_STREAM}"))),
            (json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "LATEST", "DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:123456789012:q"}}}), Refusal::InvalidParameter("Unsupported DestinationConfig parameter for given event source mapping type.".into())),
            (json!({"EventSourceArn": STREAM, "StartingPosition": "LATEST"}), Refusal::Validation("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null.".into())),
        ];
        for (req, expected) in cases {
            assert_eq!(check_create(&request(req.clone())), Err(expected), "{req}");
        }
    }

    #[test]
    fn an_update_writes_its_fields_over_the_definition_and_refuses_the_others() {
        let stored = request(
            json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "LATEST", "BatchSize": 10}),
        );
        let merged =
            merge_update(&stored, &request(json!({"BatchSize": 5, "Enabled": false}))).unwrap();
        assert_eq!(merged["BatchSize"], 5);
        assert_eq!(merged["Enabled"], false);
        assert_eq!(merged["StartingPosition"], "LATEST");
        let refused = merge_update(
            &stored,
            &request(json!({"StartingPosition": "TRIM_HORIZON"})),
        );
        assert!(
            matches!(refused, Err(Refusal::InvalidParameter(m)) if m.starts_with("StartingPosition cannot be changed by UpdateEventSourceMapping"))
        );
    }

    #[test]
    fn the_definition_becomes_the_toml_form_named_by_its_uuid() {
        let entry = to_entry(&request(json!({"EventSourceArn": STREAM, "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f:live", "StartingPosition": "LATEST", "BatchSize": 7})), "u-1").unwrap();
        assert_eq!(entry.name.as_deref(), Some("u-1"));
        assert_eq!(entry.function_name.as_deref(), Some("f"));
        assert_eq!(entry.batch_size, Some(7));
        let wrong = to_entry(&request(json!({"BatchSize": "ten"})), "u-1");
        assert!(
            matches!(&wrong, Err(Refusal::InvalidParameter(m)) if m.contains("BatchSize") && m.contains("expected an integer")),
            "{wrong:?}"
        );
    }

    #[test]
    fn problems_lose_the_mapping_subject_and_are_joined() {
        let problems = vec![
            "mapping \"u-1\": batch_size = 0: must be 1..=10000".to_string(),
            "mapping \"u-1\": parallelization_factor = 11: must be 1..=10".to_string(),
        ];
        assert_eq!(
            problems_message(&problems, "u-1"),
            "BatchSize = 0: must be 1..=10000; ParallelizationFactor = 11: must be 1..=10"
        );
        let other = vec![
            "mapping \"u-1\": destination_config.on_failure.destination = \"x\": must be an ARN"
                .to_string(),
            "mapping \"u-1\": Stream not found: arn".to_string(),
            "mapping \"u-1\": filter_criteria.filters[0].pattern: not JSON".to_string(),
        ];
        assert_eq!(
            problems_message(&other, "u-1"),
            "DestinationConfig.OnFailure.Destination = \"x\": must be an ARN; Stream not found: arn; FilterCriteria.Filters[0].Pattern: not JSON"
        );
    }
}
