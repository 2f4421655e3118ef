//! A mapping's `starting_position` (and `starting_position_timestamp`): where a shard with
//! no checkpoint starts reading.

use super::problems::Problems;
use crate::config::mapping::StartingPosition;
use crate::config::schema::MappingEntry;
use crate::model::StreamKind;

/// Latest accepted starting_position_timestamp: 9999-12-31T23:59:59Z.
pub const MAX_EPOCH_SECONDS: f64 = 253_402_300_799.0;

pub(super) fn resolve_starting_position(
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

#[cfg(test)]
mod tests {
    use crate::config::StartingPosition;
    use std::path::Path;

    use crate::config::parse;
    use crate::config::resolve::test_support::*;

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
}
