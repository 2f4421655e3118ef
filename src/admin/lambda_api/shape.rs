//! The `EventSourceMappingConfiguration` Lambda answers with, built from a running
//! mapping: every parameter with AWS's defaults filled in (a mapping given with none shows
//! BatchSize 100, MaximumRetryAttempts -1, ...), its State and LastProcessingResult; and
//! the pages of ListEventSourceMappings. Pure.

use serde_json::{json, Value};

use crate::arn::lambda_function_name;
use crate::config::{FanOutConsumer, StartingPosition};
use crate::engine::status::ShardSnapshot;
use crate::running::refusal::Refusal;
use crate::running::MappingView;

/// AWS's StateTransitionReason for a stream mapping changed by a user (recorded against
/// AWS; SQS mappings say `USER_INITIATED`).
pub const USER_ACTION: &str = "User action";
/// ListEventSourceMappings' page size unless MaxItems says otherwise.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// The largest MaxItems Lambda accepts.
pub const MAX_ITEMS: usize = 10_000;

/// The mapping as GetEventSourceMapping answers it; `mapping_arn` is its
/// EventSourceMappingArn.
pub fn configuration(view: &MappingView, mapping_arn: &str) -> Value {
    let m = &view.mapping;
    let source = match &m.consumer {
        Some(FanOutConsumer::Arn(arn)) => arn.clone(),
        _ => m.event_source_arn.clone(),
    };
    let starting_position = match m.starting_position {
        StartingPosition::TrimHorizon => "TRIM_HORIZON",
        StartingPosition::Latest => "LATEST",
        StartingPosition::AtTimestamp(_) => "AT_TIMESTAMP",
    };
    let mut on_failure = serde_json::Map::new();
    if let Some(destination) = &m.on_failure_destination {
        on_failure.insert("Destination".into(), json!(destination));
    }
    let response_types: Vec<&str> = if m.report_batch_item_failures {
        vec!["ReportBatchItemFailures"]
    } else {
        vec![]
    };
    let mut doc = json!({
        "UUID": view.uuid,
        "StartingPosition": starting_position,
        "BatchSize": m.batch_size,
        "MaximumBatchingWindowInSeconds": m.maximum_batching_window_ms / 1000,
        "ParallelizationFactor": m.parallelization_factor,
        "EventSourceArn": source,
        "FunctionArn": view.function_arn,
        "LastModified": view.last_modified_ms as f64 / 1000.0,
        "LastProcessingResult": last_processing_result(&view.shards),
        "State": view.state.as_str(),
        "StateTransitionReason": USER_ACTION,
        "DestinationConfig": { "OnFailure": on_failure },
        "MaximumRecordAgeInSeconds": m.maximum_record_age_ms.map_or(-1, |ms| ms / 1000),
        "BisectBatchOnFunctionError": m.bisect_batch_on_function_error,
        "MaximumRetryAttempts": m.maximum_retry_attempts.map_or(-1, i64::from),
        "TumblingWindowInSeconds": m.tumbling_window_in_seconds,
        "FunctionResponseTypes": response_types,
        "EventSourceMappingArn": mapping_arn,
    });
    if let StartingPosition::AtTimestamp(ms) = m.starting_position {
        doc["StartingPositionTimestamp"] = json!(ms as f64 / 1000.0);
    }
    if !m.filter_patterns.is_empty() {
        let filters: Vec<Value> = m
            .filter_patterns
            .iter()
            .map(|p| json!({ "Pattern": p }))
            .collect();
        doc["FilterCriteria"] = json!({ "Filters": filters });
    }
    if !m.metrics.is_empty() {
        doc["MetricsConfig"] = json!({ "Metrics": m.metrics });
    }
    doc
}

/// Lambda's LastProcessingResult: `No records processed` before the first invocation,
/// `PROBLEM: Function call failed` while the latest thing that happened to any shard is a
/// failed invocation, else `OK`.
pub fn last_processing_result(shards: &[ShardSnapshot]) -> &'static str {
    if shards
        .iter()
        .all(|s| s.invocations == 0 && s.invoke_throttles == 0)
    {
        return "No records processed";
    }
    let last_failure = shards
        .iter()
        .filter_map(|s| s.last_error.as_ref())
        .filter(|e| e.kind != "read" && e.kind != "destination")
        .map(|e| e.at_ms)
        .max();
    let last_advance = shards.iter().filter_map(|s| s.last_advance_ms).max();
    match (last_failure, last_advance) {
        (Some(failed), Some(advanced)) if failed <= advanced => "OK",
        (Some(_), _) => "PROBLEM: Function call failed",
        (None, _) => "OK",
    }
}

/// ListEventSourceMappings' filters and page: mappings of `function` (a name or an ARN)
/// and of `source`, from `marker` (the UUID the previous page stopped before) on, at most
/// `max_items`; with the marker of the next page when there is one.
pub fn page<'a>(
    views: &'a [MappingView],
    function: Option<&str>,
    source: Option<&str>,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Result<(Vec<&'a MappingView>, Option<String>), Refusal> {
    let max_items = match max_items {
        None => DEFAULT_MAX_ITEMS,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_ITEMS).contains(&n) => n,
            _ => {
                return Err(Refusal::InvalidParameter(format!(
                    "MaxItems = {text}: must be 1..={MAX_ITEMS}"
                )))
            }
        },
    };
    let function = function.map(lambda_function_name);
    let mut selected = views.iter().filter(|v| {
        function.is_none_or(|f| v.mapping.function_name == f)
            && source.is_none_or(|s| {
                v.mapping.event_source_arn == s
                    || matches!(&v.mapping.consumer, Some(FanOutConsumer::Arn(a)) if a == s)
            })
            && marker.is_none_or(|m| v.uuid.as_str() >= m)
    });
    let page: Vec<&MappingView> = selected.by_ref().take(max_items).collect();
    let next = selected.next().map(|v| v.uuid.clone());
    Ok((page, next))
}
