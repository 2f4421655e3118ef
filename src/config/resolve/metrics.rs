//! `metrics_config` (AWS `MetricsConfig`): which CloudWatch metric groups AWS publishes for
//! the mapping.
//!
//! esm-sim publishes no CloudWatch metrics, so the setting is only validated, as AWS
//! validates it, and echoed (`validate`, the admin API's `/mappings`). For a stream source
//! the one allowed value is `EventCount`; `ErrorCount` and `KafkaMetrics` exist in the API
//! for Kafka sources only, so they get their own message.

use super::problems::Problems;
use crate::config::schema::MetricsConfig;

/// The metric groups a Kinesis or DynamoDB Streams mapping may ask for.
const STREAM_METRICS: &[&str] = &["EventCount"];
/// The ones the API also knows, for Kafka sources only.
const KAFKA_ONLY_METRICS: &[&str] = &["ErrorCount", "KafkaMetrics"];

/// The validated metric names (empty when absent or `[]`).
pub(super) fn resolve_metrics_config(
    config: Option<&MetricsConfig>,
    subject: &str,
    p: &mut Problems,
) -> Vec<String> {
    let Some(config) = config else {
        return Vec::new();
    };
    let before = p.list.len();
    for metric in &config.metrics {
        if KAFKA_ONLY_METRICS.contains(&metric.as_str()) {
            p.add(
                subject,
                format!("metrics_config.metrics = {:?}: {metric} applies only to Kafka event sources; a stream mapping allows {STREAM_METRICS:?}", config.metrics),
            );
        } else if !STREAM_METRICS.contains(&metric.as_str()) {
            p.add(
                subject,
                format!("metrics_config.metrics = {:?}: value '{metric}' at 'metricsConfig.metrics' failed to satisfy constraint: Member must satisfy enum value set: {STREAM_METRICS:?}", config.metrics),
            );
        }
    }
    if p.list.len() == before && config.metrics.len() > STREAM_METRICS.len() {
        p.add(
            subject,
            format!(
                "metrics_config.metrics = {:?}: must have at most {} item",
                config.metrics,
                STREAM_METRICS.len()
            ),
        );
    }
    config.metrics.clone()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mapping, mapping_problems};
    use crate::config::aws_json;

    #[test]
    fn event_count_is_accepted_in_toml_and_kept() {
        assert_eq!(
            mapping("metrics_config = { metrics = [\"EventCount\"] }").metrics,
            vec!["EventCount"]
        );
        assert!(mapping("metrics_config = { metrics = [] }")
            .metrics
            .is_empty());
        assert!(mapping("").metrics.is_empty());
    }

    #[test]
    fn unknown_metrics_are_refused_naming_the_field_value_and_allowed_values() {
        assert_eq!(
            mapping_problems("metrics_config = { metrics = [\"Bogus\"] }"),
            vec!["mapping \"m\": metrics_config.metrics = [\"Bogus\"]: value 'Bogus' at 'metricsConfig.metrics' failed to satisfy constraint: Member must satisfy enum value set: [\"EventCount\"]"]
        );
        assert_eq!(
            mapping_problems("metrics_config = { metrics = [\"KafkaMetrics\"] }"),
            vec!["mapping \"m\": metrics_config.metrics = [\"KafkaMetrics\"]: KafkaMetrics applies only to Kafka event sources; a stream mapping allows [\"EventCount\"]"]
        );
        assert_eq!(
            mapping_problems("metrics_config = { metrics = [\"EventCount\", \"EventCount\"] }"),
            vec!["mapping \"m\": metrics_config.metrics = [\"EventCount\", \"EventCount\"]: must have at most 1 item"]
        );
        assert_eq!(
            mapping_problems("metrics_config = { metric = [\"EventCount\"] }").len(),
            1
        );
    }

    #[test]
    fn aws_json_metrics_config_is_read() {
        let entry = aws_json::from_json(
            r#"{"FunctionName": "f", "MetricsConfig": {"Metrics": ["EventCount"]}}"#,
            "esm.json",
        )
        .expect("valid");
        assert_eq!(
            entry.metrics_config.map(|m| m.metrics),
            Some(vec!["EventCount".to_string()])
        );
    }
}
