//! A mapping's event source: a simulated stream (by ARN or name), a real Kinesis or
//! DynamoDB stream, or an enhanced fan-out consumer (by its ARN, or `consumer_name` on a
//! real Kinesis stream). The ARN shapes themselves are `crate::arn`'s.

use super::problems::Problems;
use super::rules::{is_name, is_name_char};
use crate::arn::StreamArn;
use crate::config::mapping::FanOutConsumer;
use crate::config::schema::{AwsIdentity, MappingEntry, SimStreamConfig};
use crate::model::StreamKind;

/// What a mapping reads: the stream's ARN and kind, and the consumer if it reads through
/// enhanced fan-out. Each is None when it has a problem (already added).
pub(super) struct Source {
    pub(super) stream: Option<(String, StreamKind)>,
    pub(super) consumer: Option<FanOutConsumer>,
}

/// `event_source_arn` and `consumer_name` of a mapping, checked against the streams.
pub(super) fn resolve_source(
    entry: &MappingEntry,
    streams: &[SimStreamConfig],
    aws: &AwsIdentity,
    subject: &str,
    p: &mut Problems,
) -> Source {
    let stream = match &entry.event_source_arn {
        None => {
            p.add(subject, "event_source_arn is required");
            None
        }
        Some(arn) => match resolve_event_source(arn, streams, aws) {
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
    Source {
        stream: stream.map(|source| (source.stream_arn, source.kind)),
        consumer,
    }
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
fn resolve_event_source(
    arn: &str,
    streams: &[SimStreamConfig],
    aws: &AwsIdentity,
) -> Result<EventSource, String> {
    for stream in streams {
        let full = stream.arn(aws);
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
    match StreamArn::parse(arn).ok() {
        Some(StreamArn::Kinesis { .. }) => Ok(real(StreamKind::Kinesis)),
        Some(StreamArn::DynamodbStream { .. }) => Ok(real(StreamKind::Dynamodb)),
        Some(StreamArn::KinesisConsumer { stream_arn, .. }) => {
            if streams.iter().any(|s| s.arn(aws) == stream_arn) {
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
    if !is_name(name, 1..=128, is_name_char) {
        return Err(format!(
            "consumer_name = {name:?}: must be 1..=128 characters of letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(Some(FanOutConsumer::Name(name.to_string())))
}

#[cfg(test)]
mod tests {
    use crate::config::FanOutConsumer;
    use crate::model::StreamKind;
    use std::path::Path;

    use crate::config::parse;
    use crate::config::resolve::test_support::*;

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
}
