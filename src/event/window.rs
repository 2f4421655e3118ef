//! The tumbling window event and response (spec 2.6): the event is the usual
//! `{"Records":[...]}` followed by `window`, `state`, `shardId`, `eventSourceARN`,
//! `isFinalInvokeForWindow` and `isWindowTerminatedEarly`, in that order and with those
//! names, as in AWS's KinesisTimeWindowEvent and DynamodbTimeWindowEvent samples (window
//! bounds as `2020-12-09T07:04:00Z`); the response is a TimeWindowEventResponse,
//! `{"state":{...},"batchItemFailures":[...]}`.
//!
//! The event is built from the batch's already-encoded record fragments (or from its
//! already-assembled plain event) by appending the window fields, so windowed batches cost
//! no re-encoding. The state travels as JSON text, never re-serialized through a map, so the
//! function gets back its keys in its own order; it is compacted (whitespace outside strings
//! dropped), which is also the size measured against the 1 MB limit. The response is
//! arbitrary bytes from the function: every path returns a verdict, nothing panics.

use std::collections::HashMap;

use chrono::SecondsFormat;
use serde_json::value::RawValue;

use crate::event::batch_response::{parse_batch_response, BatchResponse};
use crate::event::failure_record::iso8601;
use crate::event::{assemble_event, write_str};
use crate::model::SequenceNumber;

/// What a windowed invocation carries besides its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowFields<'a> {
    /// The window's start and end, epoch ms (written as ISO-8601 UTC, whole seconds unless
    /// the bound has milliseconds).
    pub start_ms: i64,
    pub end_ms: i64,
    /// The compact JSON text of the state object (`{}` at the window's start).
    pub state: &'a str,
    pub shard_id: &'a str,
    pub event_source_arn: &'a str,
    pub is_final_invoke: bool,
    pub is_terminated_early: bool,
}

/// Writes the window event `{"Records":[f1,f2,...],"window":{...},...}` into `out`
/// (cleared first). The final invoke passes no fragments.
pub fn assemble_window_event<'a>(
    fragments: impl IntoIterator<Item = &'a [u8]>,
    fields: &WindowFields<'_>,
    out: &mut Vec<u8>,
) {
    assemble_event(fragments, out);
    add_window_fields(out, fields);
}

/// Turns the plain event `{"Records":[...]}` in `event` into the window event, by writing
/// the window fields before its closing brace.
pub fn add_window_fields(event: &mut Vec<u8>, fields: &WindowFields<'_>) {
    if event.last() == Some(&b'}') {
        event.pop();
    }
    event.extend_from_slice(b",\"window\":{\"start\":");
    write_str(event, &iso8601(fields.start_ms, SecondsFormat::AutoSi));
    event.extend_from_slice(b",\"end\":");
    write_str(event, &iso8601(fields.end_ms, SecondsFormat::AutoSi));
    event.extend_from_slice(b"},\"state\":");
    event.extend_from_slice(fields.state.as_bytes());
    event.extend_from_slice(b",\"shardId\":");
    write_str(event, fields.shard_id);
    event.extend_from_slice(b",\"eventSourceARN\":");
    write_str(event, fields.event_source_arn);
    event.extend_from_slice(b",\"isFinalInvokeForWindow\":");
    event.extend_from_slice(bool_text(fields.is_final_invoke));
    event.extend_from_slice(b",\"isWindowTerminatedEarly\":");
    event.extend_from_slice(bool_text(fields.is_terminated_early));
    event.push(b'}');
}

/// How many bytes the window fields add to a plain event: what to take off the payload
/// cap when cutting a windowed batch.
pub fn window_fields_len(fields: &WindowFields<'_>) -> usize {
    let mut plain = Vec::with_capacity(64 + fields.state.len());
    assemble_event(std::iter::empty(), &mut plain);
    let before = plain.len();
    add_window_fields(&mut plain, fields);
    plain.len() - before
}

fn bool_text(b: bool) -> &'static [u8] {
    if b {
        b"true"
    } else {
        b"false"
    }
}

/// What a function's answer to a windowed invocation says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowResponse {
    /// Every record succeeded; `state` is the new state (compact JSON object text).
    Success { state: String },
    /// A valid partial batch response (ReportBatchItemFailures): the records from this
    /// index onwards are retried; `state` is the new state, kept [decision].
    PartialFailure {
        state: String,
        first_failed_index: usize,
    },
    /// No usable state (missing, not an object, a body that is not a JSON object), or an
    /// invalid partial batch response: the invocation failed.
    Invalid { reason: String },
}

/// How long a piece of the response may be when quoted in a reason.
const QUOTE_LIMIT: usize = 64;

/// Reads `body` as a TimeWindowEventResponse. `state` must be an object; with
/// `report_batch_item_failures`, `batchItemFailures` is read by the spec 2.4 rules
/// ([`parse_batch_response`], against `batch`, the invoked sequence numbers in stream
/// order), a response without it being a complete success. Without the option
/// `batchItemFailures` is ignored, and so are other keys.
pub fn parse_window_response(
    body: &[u8],
    report_batch_item_failures: bool,
    batch: &[SequenceNumber],
) -> WindowResponse {
    let object: HashMap<String, &RawValue> = match serde_json::from_slice(body) {
        Ok(object) => object,
        Err(e) => {
            return WindowResponse::Invalid {
                reason: not_an_object(body, &e),
            }
        }
    };
    let state = match object.get("state") {
        None => {
            return WindowResponse::Invalid {
                reason: "the response has no state property (a tumbling window function must \
                         return one)"
                    .to_string(),
            }
        }
        Some(raw) if !raw.get().starts_with('{') => {
            return WindowResponse::Invalid {
                reason: format!("state is {}, not an object", describe(raw.get())),
            }
        }
        Some(raw) => compact(raw.get()),
    };
    let failures = match object.get("batchItemFailures") {
        Some(raw) if report_batch_item_failures => raw,
        _ => return WindowResponse::Success { state },
    };
    let only_failures = format!("{{\"batchItemFailures\":{}}}", failures.get());
    match parse_batch_response(only_failures.as_bytes(), batch) {
        BatchResponse::Success => WindowResponse::Success { state },
        BatchResponse::PartialFailure { first_failed_index } => WindowResponse::PartialFailure {
            state,
            first_failed_index,
        },
        BatchResponse::Invalid { reason } => WindowResponse::Invalid { reason },
    }
}

/// Why a body that did not parse as a JSON object is not a window response.
fn not_an_object(body: &[u8], error: &serde_json::Error) -> String {
    let text = body.trim_ascii();
    if text.is_empty() {
        return "the response is empty; a tumbling window function must return an object \
                with a state property"
            .to_string();
    }
    match error.classify() {
        serde_json::error::Category::Data => match std::str::from_utf8(text) {
            Ok(text) => format!(
                "the response is {}, not an object with a state property",
                describe(text)
            ),
            Err(_) => format!("the response is not a JSON object ({error})"),
        },
        _ => format!("the response is not JSON ({error})"),
    }
}

/// A short description of a JSON value given as text: its type, and the text when short.
fn describe(json: &str) -> String {
    let kind = match json.as_bytes().first() {
        Some(b'n') => return "null".to_string(),
        Some(b't') => return "true".to_string(),
        Some(b'f') => return "false".to_string(),
        Some(b'"') => "a string",
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        _ => "a number",
    };
    if json.len() <= QUOTE_LIMIT {
        format!("{kind} ({json})")
    } else {
        kind.to_string()
    }
}

/// `json` (valid JSON text) without the whitespace outside its strings.
fn compact(json: &str) -> String {
    if !json
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{encode_record, EventContext};
    use crate::model::{
        DynamodbChange, DynamodbEventName, RecordBody, ShardId, StreamRecord, StreamViewType,
    };
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// 2020-12-09T07:04:00Z and 07:06:00Z, the bounds of AWS's Kinesis sample.
    const START: i64 = 1_607_497_440_000;
    const END: i64 = 1_607_497_560_000;

    fn kinesis_ctx() -> EventContext {
        EventContext {
            shard_id: ShardId("shardId-000000000006".into()),
            event_source_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream".into(),
            aws_region: "us-east-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-kinesis-role".into(),
        }
    }

    fn dynamodb_ctx() -> EventContext {
        EventContext {
            shard_id: ShardId("shardId-00000001607497440000-a1b2c3d4".into()),
            event_source_arn:
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2020-12-09T07:00:00.000"
                    .into(),
            aws_region: "us-east-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
        }
    }

    fn fields<'a>(ctx: &'a EventContext, state: &'a str, is_final: bool) -> WindowFields<'a> {
        WindowFields {
            start_ms: START,
            end_ms: END,
            state,
            shard_id: ctx.shard_id.as_str(),
            event_source_arn: &ctx.event_source_arn,
            is_final_invoke: is_final,
            is_terminated_early: false,
        }
    }

    fn kinesis_record() -> StreamRecord {
        StreamRecord {
            sequence_number: SequenceNumber(
                "49590338271490256608559692538361571095921575989136588898".into(),
            ),
            approximate_arrival_ms: 1_607_497_475_000,
            body: RecordBody::Kinesis {
                partition_key: "1".into(),
                data: b"Hello, this is a test.".to_vec(),
            },
        }
    }

    fn dynamodb_record() -> StreamRecord {
        let map = |v: Value| match v {
            Value::Object(m) => crate::model::AttributeMap::from_map(&m),
            _ => crate::model::AttributeMap::from_map(&serde_json::Map::new()),
        };
        StreamRecord {
            sequence_number: SequenceNumber("111".into()),
            approximate_arrival_ms: 1_607_497_475_000,
            body: RecordBody::Dynamodb(DynamodbChange {
                text: crate::model::ChangeText::new(
                    "c81e728d9d4c2f636f067f89cc14862c",
                    &map(json!({"Id": {"N": "101"}})),
                    Some(&map(
                        json!({"Message": {"S": "New item!"}, "Id": {"N": "101"}}),
                    )),
                    None,
                ),
                event_name: DynamodbEventName::Insert,
                size_bytes: 26,
                stream_view_type: StreamViewType::NewAndOldImages,
                ttl_deletion: false,
            }),
        }
    }

    /// The window event of `records` (none for a final invoke), checked to be JSON.
    fn event(ctx: &EventContext, records: &[StreamRecord], f: &WindowFields) -> (String, Value) {
        let fragments: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut fragment = Vec::new();
                encode_record(ctx, r, &mut fragment);
                fragment
            })
            .collect();
        let mut out = b"left over".to_vec();
        assemble_window_event(fragments.iter().map(Vec::as_slice), f, &mut out);
        let v: Value = serde_json::from_slice(&out).expect("valid JSON");
        (String::from_utf8(out).expect("utf-8"), v)
    }

    // The event.

    #[test]
    fn a_kinesis_window_event_has_the_aws_sample_fields_in_order() {
        let ctx = kinesis_ctx();
        let f = fields(&ctx, r#"{"1":282,"2":715}"#, false);
        let (text, v) = event(&ctx, &[kinesis_record()], &f);
        insta::assert_snapshot!("kinesis_window_event", text);
        assert_eq!(
            v["window"],
            json!({"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"})
        );
        assert_eq!(v["state"], json!({"1": 282, "2": 715}));
        assert_eq!(v["shardId"], "shardId-000000000006");
        assert_eq!(v["isFinalInvokeForWindow"], false);
        assert_eq!(v["isWindowTerminatedEarly"], false);
        let mut keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        let mut expected = vec![
            "Records",
            "window",
            "state",
            "shardId",
            "eventSourceARN",
            "isFinalInvokeForWindow",
            "isWindowTerminatedEarly",
        ];
        expected.sort_unstable(); // the order is checked by the snapshot
        assert_eq!(keys, expected);
    }

    #[test]
    fn a_kinesis_final_invoke_has_no_records() {
        let ctx = kinesis_ctx();
        let f = fields(&ctx, r#"{"1":283}"#, true);
        let (text, v) = event(&ctx, &[], &f);
        insta::assert_snapshot!("kinesis_window_final_event", text);
        assert_eq!(v["Records"], json!([]));
        assert_eq!(v["isFinalInvokeForWindow"], true);
    }

    #[test]
    fn a_dynamodb_window_event_and_its_final_invoke() {
        let ctx = dynamodb_ctx();
        let (text, v) = event(&ctx, &[dynamodb_record()], &fields(&ctx, "{}", false));
        insta::assert_snapshot!("dynamodb_window_event", text);
        assert_eq!(v["Records"][0]["eventSource"], "aws:dynamodb");
        assert_eq!(v["state"], json!({}));
        let mut terminated = fields(&ctx, r#"{"big":"x"}"#, true);
        terminated.is_terminated_early = true;
        let (text, v) = event(&ctx, &[], &terminated);
        insta::assert_snapshot!("dynamodb_window_final_terminated_early_event", text);
        assert_eq!(v["isWindowTerminatedEarly"], true);
    }

    #[test]
    fn window_fields_can_be_added_to_an_assembled_plain_event() {
        let ctx = kinesis_ctx();
        let f = fields(&ctx, "{}", false);
        let (expected, _) = event(&ctx, &[kinesis_record()], &f);
        let mut fragment = Vec::new();
        encode_record(&ctx, &kinesis_record(), &mut fragment);
        let mut plain = Vec::new();
        assemble_event([fragment.as_slice()], &mut plain);
        let plain_len = plain.len();
        add_window_fields(&mut plain, &f);
        assert_eq!(String::from_utf8(plain).expect("utf-8"), expected);
        assert_eq!(plain_len + window_fields_len(&f), expected.len());
    }

    #[test]
    fn bounds_with_milliseconds_keep_them_and_strings_are_escaped() {
        let f = WindowFields {
            start_ms: 1_500,
            end_ms: 2_000,
            state: "{}",
            shard_id: "s\"1",
            event_source_arn: "a\\b",
            is_final_invoke: false,
            is_terminated_early: false,
        };
        let mut out = Vec::new();
        assemble_window_event(std::iter::empty(), &f, &mut out);
        let v: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["window"]["start"], "1970-01-01T00:00:01.500Z");
        assert_eq!(v["window"]["end"], "1970-01-01T00:00:02Z");
        assert_eq!(v["shardId"], "s\"1");
        assert_eq!(v["eventSourceARN"], "a\\b");
    }

    // The response.

    fn five() -> Vec<SequenceNumber> {
        ["101", "102", "103", "104", "105"]
            .iter()
            .map(|s| SequenceNumber(s.to_string()))
            .collect()
    }

    fn parse(body: &str, rbif: bool) -> WindowResponse {
        parse_window_response(body.as_bytes(), rbif, &five())
    }

    fn assert_invalid(response: WindowResponse, mentions: &str) {
        match response {
            WindowResponse::Invalid { reason } => assert!(
                reason.contains(mentions),
                "reason {reason:?} should mention {mentions:?}"
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn success(state: &str) -> WindowResponse {
        WindowResponse::Success {
            state: state.to_string(),
        }
    }

    #[test]
    fn a_state_object_is_kept_as_compact_text_in_the_functions_key_order() {
        assert_eq!(
            parse(
                "{ \"state\" : { \"b\" : 1,\n \"a\" : [ \"x y\", \"\\\" z\" ] } }",
                false
            ),
            success(r#"{"b":1,"a":["x y","\" z"]}"#)
        );
        assert_eq!(parse(r#"{"state":{}}"#, true), success("{}"));
    }

    #[test]
    fn a_missing_state_fails_the_invocation() {
        assert_invalid(parse("{}", false), "no state property");
        assert_invalid(
            parse(r#"{"batchItemFailures":[]}"#, true),
            "no state property",
        );
        assert_invalid(parse(r#"{"State":{}}"#, false), "no state property");
    }

    #[test]
    fn a_state_that_is_null_or_not_an_object_fails_the_invocation() {
        assert_invalid(parse(r#"{"state":null}"#, false), "state is null");
        assert_invalid(parse(r#"{"state":[1]}"#, false), "state is a list ([1])");
        assert_invalid(parse(r#"{"state":"{}"}"#, false), "state is a string");
        assert_invalid(parse(r#"{"state":42}"#, false), "state is a number (42)");
        assert_invalid(parse(r#"{"state":true}"#, false), "state is true");
    }

    #[test]
    fn a_body_that_is_empty_not_json_or_not_an_object_fails_the_invocation() {
        assert_invalid(parse("", false), "empty");
        assert_invalid(parse(" \n", false), "empty");
        assert_invalid(parse("null", false), "the response is null");
        assert_invalid(parse("[]", false), "the response is a list");
        assert_invalid(parse("{\"state\":{", false), "not JSON");
        assert_invalid(parse("OK", false), "not JSON");
        assert_invalid(
            parse_window_response(b"{\"state\":{\"a\":\"\xff\"}}", false, &five()),
            "not",
        );
    }

    #[test]
    fn batch_item_failures_are_read_only_with_report_batch_item_failures() {
        let body = r#"{"state":{"n":3},"batchItemFailures":[{"itemIdentifier":"104"},{"itemIdentifier":"102"}]}"#;
        assert_eq!(
            parse(body, true),
            WindowResponse::PartialFailure {
                state: r#"{"n":3}"#.into(),
                first_failed_index: 1
            }
        );
        assert_eq!(parse(body, false), success(r#"{"n":3}"#));
        let invalid = r#"{"state":{},"batchItemFailures":[{"itemIdentifier":"999"}]}"#;
        assert_eq!(parse(invalid, false), success("{}"));
    }

    #[test]
    fn batch_item_failures_follow_the_partial_batch_response_table() {
        for ok in [
            r#"{"state":{},"batchItemFailures":[]}"#,
            r#"{"state":{},"batchItemFailures":null}"#,
            r#"{"state":{},"other":1}"#,
        ] {
            assert_eq!(parse(ok, true), success("{}"), "{ok}");
        }
        assert_invalid(
            parse(
                r#"{"state":{},"batchItemFailures":[{"itemIdentifier":""}]}"#,
                true,
            ),
            "empty string",
        );
        assert_invalid(
            parse(
                r#"{"state":{},"batchItemFailures":[{"itemIdentifier":"999"}]}"#,
                true,
            ),
            "\"999\" is not a sequence number of this batch",
        );
        assert_invalid(
            parse(
                r#"{"state":{},"batchItemFailures":{"itemIdentifier":"101"}}"#,
                true,
            ),
            "not a list",
        );
    }

    #[test]
    fn a_final_invoke_reporting_any_failure_is_invalid() {
        let body = r#"{"state":{},"batchItemFailures":[{"itemIdentifier":"101"}]}"#;
        assert_invalid(
            parse_window_response(body.as_bytes(), true, &[]),
            "not a sequence number",
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256), rbif in any::<bool>()) {
            let _ = parse_window_response(&body, rbif, &five());
        }

        #[test]
        fn json_shaped_text_never_panics_and_a_kept_state_is_the_same_object_compacted(
            body in r#"\{ ?"state" ?: ?(\{( ?"[a-z \\"]{0,6}" ?: ?([0-9]{1,3}|"[ a-z]{0,4}"|\[ ?\]|null) ?,?){0,3}\}|null|\[\]|"x"|1)( ?, ?"batchItemFailures" ?: ?\[(\{"itemIdentifier":("10[0-9]"|[0-9]+|null|"")\},?){0,3}\])? ?\}|[\[\]{}:, "0-9a-z\\]{0,60}"#,
            rbif in any::<bool>(),
        ) {
            let b = five();
            let (state, index) = match parse_window_response(body.as_bytes(), rbif, &b) {
                WindowResponse::Success { state } => (state, None),
                WindowResponse::PartialFailure { state, first_failed_index } => (state, Some(first_failed_index)),
                WindowResponse::Invalid { .. } => return Ok(()),
            };
            let kept: Value = serde_json::from_str(&state).expect("the kept state is JSON");
            prop_assert!(kept.is_object());
            let original: Value = serde_json::from_str(&body).expect("the body was JSON");
            prop_assert_eq!(&kept, &original["state"]);
            prop_assert!(!state.contains(": ") && !state.contains(", "));
            if let Some(i) = index {
                prop_assert!(i < b.len());
            }
        }

        #[test]
        fn the_window_event_is_json_for_any_fields(
            start in any::<i64>(),
            end in any::<i64>(),
            shard in any::<String>(),
            arn in any::<String>(),
            key in any::<String>(),
            is_final in any::<bool>(),
            early in any::<bool>(),
        ) {
            let state = serde_json::to_string(&json!({ key.clone(): 1 })).expect("json");
            let f = WindowFields {
                start_ms: start,
                end_ms: end,
                state: &state,
                shard_id: &shard,
                event_source_arn: &arn,
                is_final_invoke: is_final,
                is_terminated_early: early,
            };
            let mut out = Vec::new();
            assemble_window_event([b"{\"a\":1}".as_slice()], &f, &mut out);
            let v: Value = serde_json::from_slice(&out).expect("valid JSON");
            prop_assert_eq!(&v["shardId"], &json!(shard));
            prop_assert_eq!(&v["eventSourceARN"], &json!(arn));
            prop_assert_eq!(&v["state"][&key], &json!(1));
            prop_assert_eq!(&v["isFinalInvokeForWindow"], &json!(is_final));
            prop_assert_eq!(&v["isWindowTerminatedEarly"], &json!(early));
            prop_assert_eq!(out.len(), {
                let mut plain = Vec::new();
                assemble_event([b"{\"a\":1}".as_slice()], &mut plain);
                plain.len()
            } + window_fields_len(&f));
        }
    }
}
