//! The Kinesis record of an invocation event (spec 3.1), field for field as Lambda sends it.
//!
//! This is the simulator's hot path (over a million records a second on one core), so the
//! fragment is written straight into the caller's buffer: constant parts as byte literals,
//! strings through the copy-unless-escaping-is-needed writer, the data base64-encoded in
//! place, numbers by hand. No `serde_json::Value`, no per-record allocation once the
//! buffer has grown.
//!
//! `approximateArrivalTimestamp` is a JSON number of epoch seconds with the milliseconds as
//! the fraction, written as the shortest decimal that a double of that value prints as
//! (what serde_json or any JSON library writes for the f64): `1545084650.987`,
//! `1545084650.98`, and `1545084650.0` for a whole second.

use super::{write_base64, write_escaped, write_str, write_u64, EventContext};
use crate::model::StreamRecord;

/// Appends the Kinesis shape of one element of "Records" for a record with this partition
/// key and data.
pub(crate) fn encode(
    ctx: &EventContext,
    record: &StreamRecord,
    partition_key: &str,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let seq = record.sequence_number.as_str();
    let shard = ctx.shard_id.as_str();
    // One reservation for the whole fragment: constants (~260 bytes), the strings (escaping
    // may add more, which the Vec then handles), and the base64 expansion of the data.
    out.reserve(
        280 + partition_key.len()
            + 2 * seq.len()
            + shard.len()
            + data.len().div_ceil(3) * 4
            + ctx.invoke_identity_arn.len()
            + ctx.aws_region.len()
            + ctx.event_source_arn.len(),
    );

    out.extend_from_slice(b"{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
    write_str(out, partition_key);
    out.extend_from_slice(b",\"sequenceNumber\":");
    write_str(out, seq);
    out.extend_from_slice(b",\"data\":\"");
    write_base64(out, data);
    out.extend_from_slice(b"\",\"approximateArrivalTimestamp\":");
    write_epoch_seconds(out, record.approximate_arrival_ms);
    out.extend_from_slice(
        b"},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":\"",
    );
    write_escaped(out, shard);
    out.push(b':');
    write_escaped(out, seq);
    out.extend_from_slice(b"\",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":");
    write_str(out, &ctx.invoke_identity_arn);
    out.extend_from_slice(b",\"awsRegion\":");
    write_str(out, &ctx.aws_region);
    out.extend_from_slice(b",\"eventSourceARN\":");
    write_str(out, &ctx.event_source_arn);
    out.push(b'}');
}

/// Appends epoch milliseconds as a JSON number of seconds: the millisecond fraction without
/// trailing zeros, `.0` for a whole second, a leading `-` before 1970.
pub(crate) fn write_epoch_seconds(out: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        out.push(b'-');
    }
    let abs = ms.unsigned_abs();
    write_u64(out, abs / 1000);
    out.push(b'.');
    // Each digit is < 10, so the casts cannot truncate.
    let frac = abs % 1000;
    let digits = [
        (frac / 100) as u8,
        ((frac / 10) % 10) as u8,
        (frac % 10) as u8,
    ];
    let keep = if digits[2] != 0 {
        3
    } else if digits[1] != 0 {
        2
    } else {
        1
    };
    for digit in &digits[..keep] {
        out.push(b'0' + digit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{assemble_event, encode_record};
    use crate::model::{RecordBody, SequenceNumber, ShardId};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use proptest::prelude::*;
    use serde_json::Value;

    fn spec_context() -> EventContext {
        EventContext {
            shard_id: ShardId("shardId-000000000006".into()),
            event_source_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/orders".into(),
            aws_region: "us-east-2".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
        }
    }

    fn kinesis_record(seq: &str, arrival_ms: i64, key: &str, data: &[u8]) -> StreamRecord {
        StreamRecord {
            sequence_number: SequenceNumber(seq.into()),
            approximate_arrival_ms: arrival_ms,
            body: RecordBody::Kinesis {
                partition_key: key.into(),
                data: data.to_vec(),
            },
        }
    }

    fn event_of(ctx: &EventContext, records: &[StreamRecord]) -> Vec<u8> {
        let fragments: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut f = Vec::new();
                encode_record(ctx, r, &mut f);
                f
            })
            .collect();
        let mut event = Vec::new();
        assemble_event(fragments.iter().map(Vec::as_slice), &mut event);
        event
    }

    fn seconds(ms: i64) -> String {
        let mut out = Vec::new();
        write_epoch_seconds(&mut out, ms);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn arrival_timestamps_are_seconds_with_the_millisecond_fraction() {
        assert_eq!(seconds(1_545_084_650_987), "1545084650.987");
        assert_eq!(seconds(1_545_084_650_980), "1545084650.98");
        assert_eq!(seconds(1_545_084_650_900), "1545084650.9");
        assert_eq!(seconds(1_545_084_650_000), "1545084650.0");
        assert_eq!(seconds(1_545_084_650_007), "1545084650.007");
        assert_eq!(seconds(0), "0.0");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(seconds(-1_500), "-1.5");
    }

    #[test]
    fn arrival_timestamps_read_back_as_the_same_double_serde_json_would_write() {
        for ms in [
            1_545_084_650_987i64,
            1_545_084_650_980,
            1_545_084_650_000,
            1,
            999,
            4_102_444_800_123,
        ] {
            let text = seconds(ms);
            let parsed: f64 = text.parse().expect("number");
            assert_eq!(serde_json::to_string(&parsed).expect("json"), text);
        }
    }

    #[test]
    fn the_spec_example_event_of_two_records_is_written_exactly() {
        let ctx = spec_context();
        let records = [
            kinesis_record(
                "49590338271490256608559692538361571095921575989136588898",
                1_545_084_650_987,
                "user-17",
                br#"{"order": 42}"#,
            ),
            kinesis_record(
                "49590338271490256608559692540925702759324208523137515618",
                1_545_084_711_000,
                "user-\"18\"\\",
                b"\x00\xffbinary",
            ),
        ];
        let event = event_of(&ctx, &records);
        let text = String::from_utf8(event.clone()).expect("utf-8");
        insta::assert_snapshot!("kinesis_event_of_two_records", text);

        let v: Value = serde_json::from_slice(&event).expect("valid JSON");
        let first = &v["Records"][0];
        assert_eq!(first["kinesis"]["data"], "eyJvcmRlciI6IDQyfQ==");
        assert!(first["kinesis"]["approximateArrivalTimestamp"].is_number());
        assert_eq!(
            first["kinesis"]["approximateArrivalTimestamp"].as_f64(),
            Some(1_545_084_650.987)
        );
        assert!(first.get("encryptionType").is_none());
        assert!(first["kinesis"].get("encryptionType").is_none());
        assert!(v["Records"][1]["kinesis"]["approximateArrivalTimestamp"].is_number());
        assert_eq!(v["Records"][1]["kinesis"]["partitionKey"], "user-\"18\"\\");
    }

    #[test]
    fn the_record_fields_appear_in_the_order_lambda_writes_them() {
        let ctx = spec_context();
        let mut out = Vec::new();
        encode_record(&ctx, &kinesis_record("1", 1000, "k", b"x"), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let order = [
            "\"kinesis\"",
            "\"kinesisSchemaVersion\"",
            "\"partitionKey\"",
            "\"sequenceNumber\"",
            "\"data\"",
            "\"approximateArrivalTimestamp\"",
            "\"eventSource\"",
            "\"eventVersion\"",
            "\"eventID\"",
            "\"eventName\"",
            "\"invokeIdentityArn\"",
            "\"awsRegion\"",
            "\"eventSourceARN\"",
        ];
        let positions: Vec<usize> = order.iter().filter_map(|k| text.find(k)).collect();
        assert_eq!(positions.len(), order.len(), "{text}");
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\"\\\\\\x00-\\x1f\\x7fa-zA-Z0-9é😀:/-]{0,32}",
        ]
    }

    prop_compose! {
        fn arb_record()(
            seq in "[0-9]{1,128}",
            arrival_ms in prop_oneof![0i64..=4_102_444_800_000, -10_000_000i64..=0],
            key in text_strategy(),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) -> StreamRecord {
            kinesis_record(&seq, arrival_ms, &key, &data)
        }
    }

    prop_compose! {
        fn arb_context()(
            shard in text_strategy(),
            arn in text_strategy(),
            region in text_strategy(),
            role in text_strategy(),
        ) -> EventContext {
            EventContext {
                shard_id: ShardId(shard),
                event_source_arn: arn.into(),
                aws_region: region.into(),
                invoke_identity_arn: role.into(),
            }
        }
    }

    proptest! {
        // 1000 cases of one context and 1..=3 records each: well over 1000 records.
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn random_records_round_trip_through_serde_json_field_by_field(
            ctx in arb_context(),
            records in proptest::collection::vec(arb_record(), 1..=3),
        ) {
            let event = event_of(&ctx, &records);
            let v: Value = serde_json::from_slice(&event).expect("valid JSON");
            let list = v["Records"].as_array().expect("Records is a list");
            prop_assert_eq!(list.len(), records.len());
            for (r, json) in records.iter().zip(list) {
                let RecordBody::Kinesis { partition_key, data } = &r.body else {
                    unreachable!("only Kinesis records are generated")
                };
                let k = &json["kinesis"];
                prop_assert_eq!(k.as_object().map(|o| o.len()), Some(5));
                prop_assert_eq!(&k["kinesisSchemaVersion"], "1.0");
                prop_assert_eq!(k["partitionKey"].as_str(), Some(partition_key.as_str()));
                prop_assert_eq!(k["sequenceNumber"].as_str(), Some(r.sequence_number.as_str()));
                let decoded = STANDARD.decode(k["data"].as_str().expect("data is a string"));
                prop_assert_eq!(decoded.ok(), Some(data.clone()));
                let ts = k["approximateArrivalTimestamp"].as_f64().expect("timestamp is a number");
                prop_assert_eq!((ts * 1000.0).round() as i64, r.approximate_arrival_ms);
                prop_assert_eq!(json.as_object().map(|o| o.len()), Some(8));
                prop_assert_eq!(&json["eventSource"], "aws:kinesis");
                prop_assert_eq!(&json["eventVersion"], "1.0");
                let event_id = format!("{}:{}", ctx.shard_id, r.sequence_number);
                prop_assert_eq!(json["eventID"].as_str(), Some(event_id.as_str()));
                prop_assert_eq!(&json["eventName"], "aws:kinesis:record");
                prop_assert_eq!(json["invokeIdentityArn"].as_str(), Some(&*ctx.invoke_identity_arn));
                prop_assert_eq!(json["awsRegion"].as_str(), Some(&*ctx.aws_region));
                prop_assert_eq!(json["eventSourceARN"].as_str(), Some(&*ctx.event_source_arn));
            }
        }
    }
}
