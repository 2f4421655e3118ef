//! `[[streams]]`: each simulated stream's name, shards, retention, producers, reshards and
//! faults, checked and with its defaults written back (the simulator unwraps them).

use super::pace::MAX_PACE_SECONDS;
use super::problems::Problems;
use super::rules::{is_name, is_name_char, MAX_SECONDS};
use crate::config::schema::{ProducerConfig, ReshardConfig, SimStreamConfig};
use crate::limits;
use crate::model::{StreamKind, StreamViewType};

/// Check one stream and write its defaults back.
pub(super) fn resolve_stream(index: usize, s: &mut SimStreamConfig, p: &mut Problems) {
    let subject = if s.name.is_empty() {
        format!("stream #{}", index + 1)
    } else {
        format!("stream {:?}", s.name)
    };
    let subject = subject.as_str();
    let (what, max_len, min_len) = match s.kind {
        StreamKind::Kinesis => ("stream", limits::KINESIS_MAX_STREAM_NAME_CHARS, 1),
        StreamKind::Dynamodb => (
            "table",
            limits::DYNAMODB_MAX_TABLE_NAME_CHARS,
            limits::DYNAMODB_MIN_TABLE_NAME_CHARS,
        ),
    };
    if !is_name(&s.name, min_len..=max_len, is_name_char) {
        p.add(
            subject,
            format!("name = {:?}: a {what} name must be {min_len}..={max_len} characters of letters, digits, '-', '_' and '.'", s.name),
        );
    }
    p.range(subject, "shards", s.shards, 1, 100_000);

    match s.kind {
        StreamKind::Kinesis => {
            let hours = s
                .retention_hours
                .unwrap_or(limits::KINESIS_DEFAULT_RETENTION_HOURS);
            p.range(
                subject,
                "retention_hours",
                hours,
                limits::KINESIS_DEFAULT_RETENTION_HOURS,
                limits::KINESIS_MAX_RETENTION_HOURS,
            );
            s.retention_hours = Some(hours);
            if let Some(view) = s.stream_view_type {
                p.add(
                    subject,
                    format!(
                        "stream_view_type = {:?}: only valid for kind = \"dynamodb\"",
                        view.as_str()
                    ),
                );
            }
            if let Some(rollover) = s.rollover_seconds {
                p.add(
                    subject,
                    format!("rollover_seconds = {rollover}: only valid for kind = \"dynamodb\""),
                );
            }
        }
        StreamKind::Dynamodb => {
            match s.retention_hours {
                None | Some(limits::DYNAMODB_STREAMS_RETENTION_HOURS) => {}
                Some(hours) => p.add(
                    subject,
                    format!("retention_hours = {hours}: DynamoDB streams always keep 24 hours (leave it out or set 24)"),
                ),
            }
            s.retention_hours = Some(limits::DYNAMODB_STREAMS_RETENTION_HOURS);
            s.stream_view_type = Some(
                s.stream_view_type
                    .unwrap_or(StreamViewType::NewAndOldImages),
            );
            if let Some(rollover) = s.rollover_seconds {
                p.range(subject, "rollover_seconds", rollover, 60, MAX_SECONDS);
            }
        }
    }

    for (i, producer) in s.producers.iter().enumerate() {
        check_producer(&format!("{subject} producer {}", i + 1), producer, p);
    }
    for (i, reshard) in s.reshard.iter().enumerate() {
        check_reshard(&format!("{subject} reshard {}", i + 1), s.kind, reshard, p);
    }

    let faults = &mut s.faults;
    p.range(
        subject,
        "faults.throttle_rate",
        faults.throttle_rate,
        0.0,
        1.0,
    );
    let expiry = faults.iterator_expiry_seconds.unwrap_or(match s.kind {
        StreamKind::Kinesis => limits::KINESIS_ITERATOR_LIFETIME_SECONDS,
        StreamKind::Dynamodb => limits::DYNAMODB_ITERATOR_LIFETIME_SECONDS,
    });
    p.range(
        subject,
        "faults.iterator_expiry_seconds",
        expiry,
        1,
        MAX_PACE_SECONDS,
    );
    faults.iterator_expiry_seconds = Some(expiry);
    p.range(
        subject,
        "faults.read_latency_ms",
        faults.read_latency_ms,
        0,
        60_000,
    );
}

fn check_producer(subject: &str, producer: &ProducerConfig, p: &mut Problems) {
    p.float_min(
        subject,
        "rate_per_second",
        producer.rate_per_second,
        0.0,
        true,
    );
    p.float_min(subject, "start_seconds", producer.start_seconds, 0.0, false);
    if let Some(duration) = producer.duration_seconds {
        p.float_min(subject, "duration_seconds", duration, 0.0, true);
    }
    if let Some(records) = producer.records {
        p.at_least(subject, "records", records, 1);
    }
    if p.at_least(subject, "keys", producer.keys, 1) {
        // Kinesis partition keys are 1..=256 characters: `<key_prefix><n>`.
        let longest = producer.key_prefix.chars().count() + (producer.keys - 1).to_string().len();
        if longest > 256 {
            p.add(
                subject,
                format!("key_prefix = {:?}: partition keys would be {longest} characters, at most 256 allowed", producer.key_prefix),
            );
        }
    }
    p.range(
        subject,
        "payload_bytes",
        producer.payload_bytes,
        64,
        limits::KINESIS_MAX_RECORD_DATA_BYTES,
    );
    if let Some(every) = producer.poison_every {
        p.at_least(subject, "poison_every", every, 1);
    }
}

/// `shardId-` and 12 digits, as Kinesis names shards.
pub fn is_shard_id(s: &str) -> bool {
    match s.strip_prefix("shardId-") {
        Some(digits) => digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn check_reshard(subject: &str, kind: StreamKind, r: &ReshardConfig, p: &mut Problems) {
    if kind != StreamKind::Kinesis {
        p.add(
            subject,
            "only Kinesis streams can be resharded (DynamoDB shards roll over: rollover_seconds)",
        );
    }
    p.float_min(subject, "at_seconds", r.at_seconds, 0.0, false);
    match (&r.split, &r.merge) {
        (Some(shard), None) => {
            if !is_shard_id(shard) {
                p.add(
                    subject,
                    format!("split = {shard:?}: not a shard id (shardId-NNNNNNNNNNNN)"),
                );
            }
        }
        (None, Some([a, b])) => {
            for shard in [a, b] {
                if !is_shard_id(shard) {
                    p.add(
                        subject,
                        format!("merge: {shard:?} is not a shard id (shardId-NNNNNNNNNNNN)"),
                    );
                }
            }
            if a == b {
                p.add(
                    subject,
                    format!("merge = [{a:?}, {b:?}]: needs two different shards"),
                );
            }
        }
        _ => p.add(subject, "needs exactly one of split and merge"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    /// A config with one stream (`stream_toml`, named "s") and a mapping on it.
    fn stream_problems(stream_toml: &str) -> Vec<String> {
        let text = format!(
            "[[streams]]\nname = \"s\"\n{stream_toml}\n[[functions]]\nname = \"f\"\n\
             [[mappings]]\nname = \"m\"\nevent_source_arn = \"s\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n"
        );
        match parse(&text, Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn stream_ranges() {
        let k = "kind = \"kinesis\"\nshards = 1\n";
        assert!(stream_problems(k).is_empty());
        assert!(stream_problems("kind = \"kinesis\"\nshards = 100000").is_empty());
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 100001"),
            vec!["stream \"s\": shards = 100001: must be 1..=100000"]
        );
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 0"),
            vec!["stream \"s\": shards = 0: must be 1..=100000"]
        );
        assert!(stream_problems(&format!("{k}retention_hours = 24")).is_empty());
        assert!(stream_problems(&format!("{k}retention_hours = 8760")).is_empty());
        assert_eq!(
            stream_problems(&format!("{k}retention_hours = 23")),
            vec!["stream \"s\": retention_hours = 23: must be 24..=8760"]
        );
        assert_eq!(
            stream_problems(&format!("{k}retention_hours = 8761")),
            vec!["stream \"s\": retention_hours = 8761: must be 24..=8760"]
        );
        assert_eq!(
            stream_problems(&format!("{k}stream_view_type = \"KEYS_ONLY\"")),
            vec!["stream \"s\": stream_view_type = \"KEYS_ONLY\": only valid for kind = \"dynamodb\""]
        );
        assert_eq!(
            stream_problems(&format!("{k}rollover_seconds = 60")),
            vec!["stream \"s\": rollover_seconds = 60: only valid for kind = \"dynamodb\""]
        );
        let d = "kind = \"dynamodb\"\nshards = 1\n";
        // A DynamoDB table name needs 3 characters.
        assert_eq!(
            stream_problems(d),
            vec!["stream \"s\": name = \"s\": a table name must be 3..=255 characters of letters, digits, '-', '_' and '.'"]
        );
        let d_ok = |extra: &str| {
            stream_problems(&format!("{d}{extra}"))
                .into_iter()
                .skip(1)
                .collect::<Vec<_>>()
        };
        assert!(d_ok(
            "retention_hours = 24\nrollover_seconds = 60\nstream_view_type = \"KEYS_ONLY\""
        )
        .is_empty());
        assert_eq!(
            d_ok("retention_hours = 48"),
            vec!["stream \"s\": retention_hours = 48: DynamoDB streams always keep 24 hours (leave it out or set 24)"]
        );
        assert_eq!(
            d_ok("rollover_seconds = 59"),
            vec!["stream \"s\": rollover_seconds = 59: must be 60..=31536000"]
        );
        assert_eq!(
            stream_problems("kind = \"kinesis\"\nshards = 1\nfaults = { throttle_rate = 1.5, iterator_expiry_seconds = 0, read_latency_ms = 60001 }"),
            vec![
                "stream \"s\": faults.throttle_rate = 1.5: must be 0..=1",
                "stream \"s\": faults.iterator_expiry_seconds = 0: must be 1..=86400",
                "stream \"s\": faults.read_latency_ms = 60001: must be 0..=60000",
            ]
        );
        assert!(stream_problems("kind = \"kinesis\"\nshards = 1\nfaults = { throttle_rate = 1.0, iterator_expiry_seconds = 1, read_latency_ms = 60000 }").is_empty());
        let dup = "[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n";
        assert_eq!(
            stream_problems(&format!("{k}{dup}"))[0],
            "stream \"s\": name is used by more than one [[streams]] entry"
        );
    }

    #[test]
    fn producer_ranges() {
        let p = |producer: &str| {
            stream_problems(&format!(
                "kind = \"kinesis\"\nshards = 1\n[[streams.producers]]\n{producer}"
            ))
        };
        assert!(p("rate_per_second = 0.001\nduration_seconds = 0.5\nrecords = 1\nkeys = 1\npayload_bytes = 64\npoison_every = 1").is_empty());
        assert!(p("rate_per_second = 5\npayload_bytes = 1048576").is_empty());
        assert_eq!(
            p("rate_per_second = 0"),
            vec!["stream \"s\" producer 1: rate_per_second = 0: must be > 0"]
        );
        assert_eq!(
            p("rate_per_second = inf"),
            vec!["stream \"s\" producer 1: rate_per_second = inf: must be finite"]
        );
        assert_eq!(
            p("rate_per_second = nan"),
            vec!["stream \"s\" producer 1: rate_per_second = NaN: must be > 0"]
        );
        assert_eq!(
            p("rate_per_second = 1\nstart_seconds = -1\nduration_seconds = 0\nrecords = 0\nkeys = 0\npayload_bytes = 63\npoison_every = 0"),
            vec![
                "stream \"s\" producer 1: start_seconds = -1: must be >= 0",
                "stream \"s\" producer 1: duration_seconds = 0: must be > 0",
                "stream \"s\" producer 1: records = 0: must be >= 1",
                "stream \"s\" producer 1: keys = 0: must be >= 1",
                "stream \"s\" producer 1: payload_bytes = 63: must be 64..=1048576",
                "stream \"s\" producer 1: poison_every = 0: must be >= 1",
            ]
        );
        assert_eq!(
            p("rate_per_second = 1\npayload_bytes = 1048577"),
            vec!["stream \"s\" producer 1: payload_bytes = 1048577: must be 64..=1048576"]
        );
    }

    #[test]
    fn reshard_rules() {
        let r = |reshard: &str| {
            stream_problems(&format!(
                "kind = \"kinesis\"\nshards = 2\n[[streams.reshard]]\n{reshard}"
            ))
        };
        assert!(r("at_seconds = 0\nsplit = \"shardId-000000000000\"").is_empty());
        assert!(
            r("at_seconds = 1\nmerge = [\"shardId-000000000000\", \"shardId-000000000001\"]")
                .is_empty()
        );
        assert_eq!(
            r("at_seconds = 1\nsplit = \"shardId-000000000000\"\nmerge = [\"shardId-000000000000\", \"shardId-000000000001\"]"),
            vec!["stream \"s\" reshard 1: needs exactly one of split and merge"]
        );
        assert_eq!(
            r("at_seconds = 1"),
            vec!["stream \"s\" reshard 1: needs exactly one of split and merge"]
        );
        assert_eq!(
            r("at_seconds = -1\nsplit = \"shard-0\""),
            vec![
                "stream \"s\" reshard 1: at_seconds = -1: must be >= 0",
                "stream \"s\" reshard 1: split = \"shard-0\": not a shard id (shardId-NNNNNNNNNNNN)",
            ]
        );
        assert_eq!(
            r("at_seconds = 1\nmerge = [\"shardId-000000000001\", \"shardId-000000000001\"]"),
            vec!["stream \"s\" reshard 1: merge = [\"shardId-000000000001\", \"shardId-000000000001\"]: needs two different shards"]
        );
        let dynamo = stream_problems(
            "kind = \"dynamodb\"\nshards = 1\n[[streams.reshard]]\nat_seconds = 1\nsplit = \"shardId-000000000000\"",
        );
        assert!(dynamo.contains(&"stream \"s\" reshard 1: only Kinesis streams can be resharded (DynamoDB shards roll over: rollover_seconds)".to_string()), "{dynamo:?}");
    }
}
