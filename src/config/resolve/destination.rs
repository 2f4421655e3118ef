//! A mapping's on-failure destination (`destination_config`) and what happens when
//! delivering to it fails (`on_destination_failure`).
//!
//! A destination is an SQS queue, SNS topic or S3 bucket ARN, or `file://PATH` resolved against the
//! config's directory.

use std::path::Path;

use super::join;
use super::problems::Problems;
use crate::arn::{s3_bucket, Arn};
use crate::config::mapping::OnDestinationFailure;
use crate::config::schema::MappingEntry;
/// The on-failure destination, `file://PATH` with PATH resolved against `base_dir`.
pub(super) fn resolve_destination_config(
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
    match Arn::parse(destination).ok().map(|a| a.service()) {
        Some("sqs" | "sns") => return Some(destination.to_string()),
        Some("s3") if s3_bucket(destination).is_some() => return Some(destination.to_string()),
        Some("s3") => p.add(
            subject,
            format!("{key} = {destination:?}: an S3 destination is a bucket ARN, arn:aws:s3:::BUCKET (no region, account or key)"),
        ),
        _ => p.add(
            subject,
            format!("{key} = {destination:?}: must be an SQS queue ARN, an SNS topic ARN, an S3 bucket ARN, or file://PATH (a local JSONL file)"),
        ),
    }
    None
}

/// `on_destination_failure`: `dead_letter` (the default) or `block`.
pub(super) fn resolve_on_destination_failure(
    entry: &MappingEntry,
    subject: &str,
    p: &mut Problems,
) -> OnDestinationFailure {
    match entry.on_destination_failure.as_deref() {
        None | Some("dead_letter") => OnDestinationFailure::DeadLetter,
        Some("block") => OnDestinationFailure::Block,
        Some(other) => {
            p.add(
                subject,
                format!("on_destination_failure = {other:?}: must be \"dead_letter\" or \"block\""),
            );
            OnDestinationFailure::DeadLetter
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::resolve::test_support::*;
    use crate::config::OnDestinationFailure;

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
        assert!(dest("arn:aws:s3:::bucket").is_empty());
        assert!(dest("arn:aws:s3:::bucket/key")[0].contains("arn:aws:s3:::BUCKET"));
        assert_eq!(
            dest("/tmp/x.jsonl"),
            vec!["mapping \"m\": destination_config.on_failure.destination = \"/tmp/x.jsonl\": must be an SQS queue ARN, \
                  an SNS topic ARN, an S3 bucket ARN, or file://PATH (a local JSONL file)"]
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
}
