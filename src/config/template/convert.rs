//! From a template's resources to mapping entries: each `AWS::Lambda::EventSourceMapping`
//! and each Kinesis / DynamoDB event of an `AWS::Serverless::Function`.
//!
//! The properties are resolved (`intrinsics`), put in the AWS JSON form (CloudFormation's
//! property names are the API's but for `KmsKeyArn`; SAM's `Stream` is `EventSourceArn`,
//! its `DestinationConfig.OnFailure.Type` is dropped: it only chooses IAM permissions) and
//! read by `aws_json` like an `aws_json` file, so unknown keys and wrong types get that
//! module's messages and `resolve` applies the one set of defaults and ranges. Strings
//! that spell a number or a boolean are read as one, as CloudFormation does
//! (`BatchSize: "10"`, a `Ref` to a parameter). Mappings of other sources (SQS, Kafka,
//! MQ, DocumentDB) and SAM events of other types are left out, as not stream mappings.
//! An `EventSourceArn` (or SAM `Stream`) that is exactly the ARN of a template's
//! `AWS::Kinesis::StreamConsumer` (AWS chooses it) reads the consumer's stream through a
//! consumer of that name (`consumer_name`) instead.

use serde_json::{Map, Value};

use super::intrinsics::Resolver;
use crate::config::aws_json::AwsEventSourceMapping;
use crate::config::schema::MappingEntry;
use crate::config::type_error;

/// SAM event types read as mappings.
const SAM_STREAM_TYPES: &[&str] = &["Kinesis", "DynamoDB"];
/// The other SAM event types: not stream mappings, left out.
const SAM_OTHER_TYPES: &[&str] = &[
    "S3",
    "SNS",
    "SQS",
    "Api",
    "HttpApi",
    "Schedule",
    "ScheduleV2",
    "CloudWatchEvent",
    "EventBridgeRule",
    "CloudWatchLogs",
    "IoTRule",
    "AlexaSkill",
    "Cognito",
    "MSK",
    "MQ",
    "SelfManagedKafka",
    "DocumentDB",
];
/// The properties of a SAM Kinesis or DynamoDB event.
const SAM_PROPERTIES: &[&str] = &[
    "Stream",
    "StartingPosition",
    "StartingPositionTimestamp",
    "BatchSize",
    "BisectBatchOnFunctionError",
    "DestinationConfig",
    "Enabled",
    "FilterCriteria",
    "FunctionResponseTypes",
    "KmsKeyArn",
    "MaximumBatchingWindowInSeconds",
    "MaximumRecordAgeInSeconds",
    "MaximumRetryAttempts",
    "MetricsConfig",
    "ParallelizationFactor",
    "TumblingWindowInSeconds",
];
/// Resource keys besides `Type` and `Properties` that change nothing locally.
const RESOURCE_KEYS: &[&str] = &[
    "DependsOn",
    "Metadata",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
];
const INTEGER_KEYS: &[&str] = &[
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "TumblingWindowInSeconds",
];
const BOOLEAN_KEYS: &[&str] = &["Enabled", "BisectBatchOnFunctionError"];

/// The mapping entries of `resources`, in the order of their logical ids, and every
/// problem (each starting `resource <id>: `).
pub(super) fn mapping_entries(
    resources: &Map<String, Value>,
    resolver: &Resolver<'_>,
) -> (Vec<MappingEntry>, Vec<String>) {
    let mut ids: Vec<&String> = resources.keys().collect();
    ids.sort();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for id in ids {
        let resource = &resources[id];
        let kind = resource.get("Type").and_then(Value::as_str);
        if !matches!(
            kind,
            Some("AWS::Lambda::EventSourceMapping" | "AWS::Serverless::Function")
        ) {
            continue;
        }
        let subject = format!("resource {id}");
        if let Err(problem) = check_resource_keys(resource, &subject) {
            problems.push(problem);
            continue;
        }
        let properties = match resource.get("Properties") {
            None => Map::new(),
            Some(Value::Object(properties)) => properties.clone(),
            Some(other) => {
                problems.push(format!(
                    "{subject}: Properties = {other}: expected an object"
                ));
                continue;
            }
        };
        let found = match kind {
            Some("AWS::Lambda::EventSourceMapping") => {
                cfn_mapping(id, properties, resolver).map(|e| e.into_iter().collect())
            }
            _ => sam_mappings(id, &properties, resolver),
        };
        match found {
            Ok(found) => entries.extend(found),
            Err(more) => problems.extend(more),
        }
    }
    (entries, problems)
}

/// `Condition` is refused (not evaluated); other keys but the known ones are unknown.
fn check_resource_keys(resource: &Value, subject: &str) -> Result<(), String> {
    let Some(object) = resource.as_object() else {
        return Err(format!("{subject}: expected an object"));
    };
    for key in object.keys() {
        match key.as_str() {
            "Type" | "Properties" => {}
            "Condition" => {
                return Err(format!(
                    "{subject}: Condition {}: esm-sim does not evaluate conditions; remove the Condition from the template it reads",
                    object[key]
                ))
            }
            key if RESOURCE_KEYS.contains(&key) => {}
            key => {
                return Err(format!(
                    "{subject}: {key}: unknown resource key; allowed: Type, Properties, {}",
                    RESOURCE_KEYS.join(", ")
                ))
            }
        }
    }
    Ok(())
}

/// An `AWS::Lambda::EventSourceMapping`; `None` when its source is not a stream.
fn cfn_mapping(
    id: &str,
    mut properties: Map<String, Value>,
    resolver: &Resolver<'_>,
) -> Result<Option<MappingEntry>, Vec<String>> {
    let subject = format!("resource {id}");
    if let Some(kind) = source_of_another_kind(&properties, resolver) {
        tracing::info!(
            resource = id,
            source = kind,
            "not a stream mapping: left out"
        );
        return Ok(None);
    }
    let consumer = consumer_source(&mut properties, "EventSourceArn", resolver);
    // What could not be resolved is left out, so that the keys and types of the rest
    // are checked too: every problem at once.
    let (mut resolved, mut problems) = resolve_all(&properties, resolver, &subject);
    if !is_stream_source(&resolved) {
        tracing::info!(
            resource = id,
            "not a Kinesis or DynamoDB Streams mapping: left out"
        );
        return Ok(None);
    }
    rename(&mut resolved, "KmsKeyArn", "KMSKeyArn");
    let entry = to_entry(resolved, id, &subject).map_err(|e| problems.push(e));
    let consumer_name = consumer_name(consumer, resolver, &subject).map_err(|e| problems.extend(e));
    match (entry, consumer_name) {
        (Ok(mut entry), Ok(consumer_name)) if problems.is_empty() => {
            entry.consumer_name = consumer_name;
            Ok(Some(entry))
        }
        _ => Err(problems),
    }
}

/// The Kinesis and DynamoDB events of an `AWS::Serverless::Function`.
fn sam_mappings(
    id: &str,
    properties: &Map<String, Value>,
    resolver: &Resolver<'_>,
) -> Result<Vec<MappingEntry>, Vec<String>> {
    let events = match properties.get("Events") {
        None => return Ok(Vec::new()),
        Some(Value::Object(events)) => events,
        Some(other) => {
            return Err(vec![format!(
                "resource {id}: Events = {other}: expected an object"
            )])
        }
    };
    let mut names: Vec<&String> = events.keys().collect();
    names.sort();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let subject = format!("resource {id}: event {name}");
        match sam_event(id, name, &events[name], resolver, &subject) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(more) => problems.extend(more),
        }
    }
    match problems.is_empty() {
        true => Ok(entries),
        false => Err(problems),
    }
}

/// One SAM event; `None` when it is not a Kinesis or DynamoDB event.
fn sam_event(
    function_id: &str,
    event_name: &str,
    event: &Value,
    resolver: &Resolver<'_>,
    subject: &str,
) -> Result<Option<MappingEntry>, Vec<String>> {
    let one = |problem: String| Err(vec![problem]);
    let kind = match event.get("Type") {
        Some(Value::String(kind)) if SAM_STREAM_TYPES.contains(&kind.as_str()) => kind,
        Some(Value::String(kind)) if SAM_OTHER_TYPES.contains(&kind.as_str()) => {
            return Ok(None)
        }
        Some(other) => {
            return one(format!(
                "{subject}: Type = {other}: not a SAM event type; the stream ones are Kinesis and DynamoDB"
            ))
        }
        None => return one(format!("{subject}: Type is required")),
    };
    let mut properties = match event.get("Properties") {
        Some(Value::Object(properties)) => properties.clone(),
        _ => return one(format!("{subject}: Properties is required (an object)")),
    };
    // The keys first (all unknown ones, and Stream), then the values: all at once.
    let mut problems: Vec<String> = properties
        .keys()
        .filter(|k| !SAM_PROPERTIES.contains(&k.as_str()))
        .map(|key| {
            format!(
                "{subject}: {key}: unknown key of a SAM {kind} event; allowed: {}",
                SAM_PROPERTIES.join(", ")
            )
        })
        .collect();
    properties.retain(|k, _| SAM_PROPERTIES.contains(&k.as_str()));
    if !properties.contains_key("Stream") {
        problems.push(format!("{subject}: Stream is required"));
    }
    let consumer = consumer_source(&mut properties, "Stream", resolver);
    let function = resolver
        .reference(function_id)
        .map_err(|why| format!("{subject}: FunctionName: Ref {function_id}: {why}"));
    let (mut resolved, unresolved) = resolve_all(&properties, resolver, subject);
    problems.extend(unresolved);
    match function {
        Ok(function) if problems.is_empty() => {
            resolved.insert("FunctionName".to_string(), function);
        }
        function => {
            problems.extend(function.err());
            return Err(problems);
        }
    }
    rename(&mut resolved, "Stream", "EventSourceArn");
    rename(&mut resolved, "KmsKeyArn", "KMSKeyArn");
    if let Some(Value::Object(on_failure)) = resolved
        .get_mut("DestinationConfig")
        .and_then(|d| d.get_mut("OnFailure"))
    {
        on_failure.remove("Type");
    }
    let name = format!("{function_id}-{event_name}");
    let mut entry = to_entry(resolved, &name, subject).map_err(|e| vec![e])?;
    entry.consumer_name = consumer_name(consumer, resolver, subject)?;
    Ok(Some(entry))
}

/// Every property that resolves, and every failure as `subject: key: what: why`.
fn resolve_all(
    properties: &Map<String, Value>,
    resolver: &Resolver<'_>,
    subject: &str,
) -> (Map<String, Value>, Vec<String>) {
    let mut resolved = Map::new();
    let mut problems = Vec::new();
    for (key, value) in properties {
        match resolver.resolve(value) {
            Ok(Some(value)) => {
                resolved.insert(key.clone(), value);
            }
            Ok(None) => {}
            Err(failures) => problems.extend(
                failures
                    .into_iter()
                    .map(|failure| format!("{subject}: {key}: {failure}")),
            ),
        }
    }
    (resolved, problems)
}

/// The template's consumer whose ARN `key` is exactly (`Fn::GetAtt C.ConsumerARN` or
/// `Ref C`), unless `[template] resources` gives that ARN: `key` then becomes the
/// consumer's `StreamARN`, and the consumer's id is returned.
fn consumer_source(
    properties: &mut Map<String, Value>,
    key: &str,
    resolver: &Resolver<'_>,
) -> Option<String> {
    let (id, attribute) = reference_in(properties.get(key)?)?;
    let is_consumer = resolver.resource_type(id) == Some("AWS::Kinesis::StreamConsumer");
    let is_arn = attribute == "Ref" || attribute == "ConsumerARN";
    if !is_arn || !is_consumer || resolver.is_given(id, attribute) {
        return None;
    }
    let id = id.to_string();
    let stream = serde_json::json!({ "Fn::GetAtt": [id, "StreamARN"] });
    properties.insert(key.to_string(), stream);
    Some(id)
}

/// The `ConsumerName` of the consumer `consumer_source` found.
fn consumer_name(
    consumer: Option<String>,
    resolver: &Resolver<'_>,
    subject: &str,
) -> Result<Option<String>, Vec<String>> {
    let Some(id) = consumer else {
        return Ok(None);
    };
    let name = serde_json::json!({ "Fn::GetAtt": [id, "ConsumerName"] });
    match resolver.resolve(&name) {
        Ok(Some(Value::String(name))) => Ok(Some(name)),
        Ok(other) => Err(vec![format!(
            "{subject}: ConsumerName of {id} = {}: expected a string",
            other.unwrap_or(Value::Null)
        )]),
        Err(failures) => Err(failures
            .into_iter()
            .map(|failure| format!("{subject}: EventSourceArn: {failure}"))
            .collect()),
    }
}

/// The type of the template resource `EventSourceArn` refers to (`Ref X`,
/// `Fn::GetAtt X.Arn`) when it is no stream, table or consumer (a queue, a Kafka
/// cluster, a broker...) and `[template] resources` does not give it: such a mapping is
/// not a stream mapping, even when its ARN cannot be derived.
fn source_of_another_kind<'a>(
    properties: &Map<String, Value>,
    resolver: &Resolver<'a>,
) -> Option<&'a str> {
    let (id, attribute) = reference_in(properties.get("EventSourceArn")?)?;
    let kind = resolver.resource_type(id)?;
    let streams = [
        "AWS::Kinesis::Stream",
        "AWS::Kinesis::StreamConsumer",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
    ];
    (!streams.contains(&kind) && !resolver.is_given(id, attribute)).then_some(kind)
}

/// The resource and attribute (`Ref` for a `Ref`) a value is exactly a reference to.
fn reference_in(value: &Value) -> Option<(&str, &str)> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    match object.iter().next()? {
        (name, Value::String(id)) if name == "Ref" => Some((id.as_str(), "Ref")),
        (name, Value::Array(parts)) if name == "Fn::GetAtt" => match parts.as_slice() {
            [Value::String(id), Value::String(attribute)] => Some((id, attribute)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a resolved mapping reads a stream: an EventSourceArn that is not the ARN of
/// another service (an unresolved name is a simulated stream's) and no Kafka or MQ key.
fn is_stream_source(properties: &Map<String, Value>) -> bool {
    let other_source = ["Queues", "Topics", "SelfManagedEventSource"]
        .iter()
        .any(|k| properties.contains_key(*k));
    let service = properties
        .get("EventSourceArn")
        .and_then(Value::as_str)
        .and_then(|arn| {
            crate::arn::Arn::parse(arn)
                .ok()
                .map(|a| a.service().to_string())
        });
    let other_service = service.is_some_and(|s| s != "kinesis" && s != "dynamodb");
    !other_source && !other_service
}

fn rename(properties: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = properties.remove(from) {
        properties.insert(to.to_string(), value);
    }
}

/// The resolved properties read as an AWS JSON mapping named `name`.
fn to_entry(
    mut properties: Map<String, Value>,
    name: &str,
    subject: &str,
) -> Result<MappingEntry, String> {
    for (key, value) in properties.iter_mut() {
        let Value::String(text) = value else { continue };
        if INTEGER_KEYS.contains(&key.as_str()) {
            if let Ok(number) = text.trim().parse::<i64>() {
                *value = Value::from(number);
            }
        } else if BOOLEAN_KEYS.contains(&key.as_str()) {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" => *value = Value::Bool(true),
                "false" => *value = Value::Bool(false),
                _ => {}
            }
        }
    }
    let document: AwsEventSourceMapping = type_error::from_json_value(&Value::Object(properties))
        .map_err(|e| format!("{subject}: {e}"))?;
    let mut entry = document
        .into_entry()
        .map_err(|e| format!("{subject}: {e}"))?;
    entry.name = Some(name.to_string());
    Ok(entry)
}
