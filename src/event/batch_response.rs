//! Reading a function's partial batch response (ReportBatchItemFailures, spec 2.4).
//!
//! The outcome is one of three: complete success, a partial failure that resumes at the
//! lowest reported record, or an invalid response that fails the whole batch. The table of
//! spec 2.4 is implemented row by row in [`parse_batch_response`]; only `batchItemFailures`
//! is read from an object that has it (as AWS does). The body is arbitrary bytes from the
//! function, so every path returns a verdict and nothing panics. Identifiers are looked up
//! in the batch by binary search with [`SequenceNumber`]'s ordering (the batch is in stream
//! order), confirmed by exact string equality, so a 10,000-record batch with 10,000
//! reported failures costs O(m log n), never O(n·m).

use std::collections::HashMap;

use serde_json::Value;

use crate::model::SequenceNumber;

/// What a function's response says about its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchResponse {
    /// Every record succeeded.
    Success,
    /// The records from this index of the batch onwards are to be retried; the ones before
    /// it succeeded.
    PartialFailure { first_failed_index: usize },
    /// The response is not a usable partial batch response: the whole batch failed.
    Invalid { reason: String },
}

/// How long a piece of the response may be when quoted in a reason.
const QUOTE_LIMIT: usize = 64;

/// Reads `body` as a partial batch response for `batch` (the batch's sequence numbers in
/// stream order).
pub fn parse_batch_response(body: &[u8], batch: &[SequenceNumber]) -> BatchResponse {
    match verdict(body, batch) {
        Ok(None) => BatchResponse::Success,
        Ok(Some(first_failed_index)) => BatchResponse::PartialFailure { first_failed_index },
        Err(reason) => BatchResponse::Invalid { reason },
    }
}

/// `Ok(None)` for success, `Ok(Some(i))` for a partial failure from index `i`, `Err` with
/// the reason for an invalid response.
fn verdict(body: &[u8], batch: &[SequenceNumber]) -> Result<Option<usize>, String> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the response is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the response is not JSON ({e})"))?;
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::Array(items) if items.is_empty() => Ok(None),
        Value::Object(mut object) => match object.remove("batchItemFailures") {
            Some(Value::Null) => Ok(None),
            Some(Value::Array(failures)) => first_failed_index(&failures, batch),
            Some(other) => Err(format!(
                "batchItemFailures is {}, not a list",
                describe(&other)
            )),
            None if object.is_empty() => Ok(None),
            None => {
                let keys: Vec<&str> = object.keys().map(String::as_str).take(5).collect();
                Err(format!(
                    "the response object has no batchItemFailures key (it has {})",
                    quote(&keys.join(", "))
                ))
            }
        },
        other => Err(format!(
            "the response is {}, not an object with batchItemFailures",
            describe(&other)
        )),
    }
}

/// The lowest batch index among the reported identifiers (`None` when the list is empty),
/// or why one of them is not a valid identifier.
fn first_failed_index(
    failures: &[Value],
    batch: &[SequenceNumber],
) -> Result<Option<usize>, String> {
    let mut lookup = Lookup::new(batch);
    let mut lowest: Option<usize> = None;
    for (position, failure) in failures.iter().enumerate() {
        let identifier = match failure.as_object().and_then(|o| o.get("itemIdentifier")) {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(format!(
                    "batchItemFailures[{position}].itemIdentifier is an empty string"
                ))
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(format!(
                    "batchItemFailures[{position}].itemIdentifier is {}, not a string",
                    describe(other)
                ))
            }
            None => {
                return Err(format!(
                    "batchItemFailures[{position}] is {}, not an object with itemIdentifier",
                    describe(failure)
                ))
            }
        };
        let index = lookup.index_of(identifier).ok_or_else(|| {
            format!(
                "itemIdentifier \"{}\" is not a sequence number of this batch",
                quote(identifier)
            )
        })?;
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    Ok(lowest)
}

/// Finds an identifier's index in the batch. A batch in stream order (the normal case) is
/// binary-searched; a batch that is not gets a hash map, built on first use.
enum Lookup<'a> {
    Sorted(&'a [SequenceNumber]),
    Unsorted(&'a [SequenceNumber], Option<HashMap<&'a str, usize>>),
}

impl<'a> Lookup<'a> {
    fn new(batch: &'a [SequenceNumber]) -> Self {
        if batch.windows(2).all(|w| w[0] <= w[1]) {
            Lookup::Sorted(batch)
        } else {
            Lookup::Unsorted(batch, None)
        }
    }

    fn index_of(&mut self, identifier: &str) -> Option<usize> {
        match self {
            Lookup::Sorted(batch) => {
                let key = SequenceNumber(identifier.to_string());
                let start = batch.partition_point(|s| *s < key);
                // Numbers equal as decimals may differ in leading zeros: the identifier
                // must be the exact text of a sequence number of the batch.
                batch
                    .get(start..)?
                    .iter()
                    .take_while(|s| (*s).cmp(&key).is_eq())
                    .position(|s| s.as_str() == identifier)
                    .map(|offset| start + offset)
            }
            Lookup::Unsorted(batch, map) => {
                let map = map.get_or_insert_with(|| {
                    let mut m = HashMap::with_capacity(batch.len());
                    for (i, s) in batch.iter().enumerate() {
                        m.entry(s.as_str()).or_insert(i);
                    }
                    m
                });
                map.get(identifier).copied()
            }
        }
    }
}

/// A short description of a JSON value for a reason: its type, and its text when short.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(b) => return b.to_string(),
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let text = value.to_string();
    if text.len() <= QUOTE_LIMIT {
        format!("{kind} ({text})")
    } else {
        kind.to_string()
    }
}

/// `s` cut to at most [`QUOTE_LIMIT`] bytes (on a character boundary), with `...` when cut.
fn quote(s: &str) -> String {
    if s.len() <= QUOTE_LIMIT {
        return s.to_string();
    }
    let mut end = QUOTE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(seqs: &[&str]) -> Vec<SequenceNumber> {
        seqs.iter().map(|s| SequenceNumber(s.to_string())).collect()
    }

    fn five() -> Vec<SequenceNumber> {
        batch(&["101", "102", "103", "104", "105"])
    }

    fn parse(body: &str) -> BatchResponse {
        parse_batch_response(body.as_bytes(), &five())
    }

    fn assert_invalid(response: BatchResponse, mentions: &str) {
        match response {
            BatchResponse::Invalid { reason } => {
                assert!(
                    reason.contains(mentions),
                    "reason {reason:?} should mention {mentions:?}"
                )
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // Row 1: complete success.

    #[test]
    fn an_empty_body_is_a_complete_success() {
        assert_eq!(parse(""), BatchResponse::Success);
    }

    #[test]
    fn a_body_of_only_whitespace_is_a_complete_success() {
        assert_eq!(parse(" \r\n\t "), BatchResponse::Success);
    }

    #[test]
    fn an_empty_json_string_is_a_complete_success() {
        assert_eq!(parse("\"\""), BatchResponse::Success);
    }

    #[test]
    fn json_null_is_a_complete_success() {
        assert_eq!(parse("null"), BatchResponse::Success);
    }

    #[test]
    fn an_empty_object_is_a_complete_success() {
        assert_eq!(parse("{}"), BatchResponse::Success);
    }

    #[test]
    fn an_empty_list_is_a_complete_success() {
        assert_eq!(parse("[]"), BatchResponse::Success);
    }

    #[test]
    fn an_empty_batch_item_failures_list_is_a_complete_success() {
        assert_eq!(parse(r#"{"batchItemFailures":[]}"#), BatchResponse::Success);
    }

    #[test]
    fn a_null_batch_item_failures_is_a_complete_success() {
        assert_eq!(
            parse(r#"{"batchItemFailures":null}"#),
            BatchResponse::Success
        );
    }

    // Row 2: partial failure from the lowest valid identifier.

    #[test]
    fn one_valid_identifier_is_a_partial_failure_from_that_record() {
        assert_eq!(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":"103"}]}"#),
            BatchResponse::PartialFailure {
                first_failed_index: 2
            }
        );
    }

    #[test]
    fn several_valid_identifiers_resume_from_the_lowest_whatever_their_order_and_duplicates() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"105"},{"itemIdentifier":"102"},
            {"itemIdentifier":"104"},{"itemIdentifier":"102"}]}"#;
        assert_eq!(
            parse(body),
            BatchResponse::PartialFailure {
                first_failed_index: 1
            }
        );
    }

    #[test]
    fn the_first_record_reported_failed_is_a_partial_failure_at_index_zero() {
        assert_eq!(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":"101"}]}"#),
            BatchResponse::PartialFailure {
                first_failed_index: 0
            }
        );
    }

    #[test]
    fn sequence_numbers_of_different_lengths_are_found_by_their_decimal_order() {
        let b = batch(&["9", "10", "99", "100", &"7".repeat(128)]);
        let body = format!(
            r#"{{"batchItemFailures":[{{"itemIdentifier":"{}"}},{{"itemIdentifier":"99"}}]}}"#,
            "7".repeat(128)
        );
        assert_eq!(
            parse_batch_response(body.as_bytes(), &b),
            BatchResponse::PartialFailure {
                first_failed_index: 2
            }
        );
    }

    // Row 3: an invalid identifier fails the whole batch.

    #[test]
    fn an_empty_string_identifier_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#),
            "empty string",
        );
    }

    #[test]
    fn a_null_identifier_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#),
            "null",
        );
    }

    #[test]
    fn a_numeric_identifier_is_a_complete_failure_even_when_it_names_a_record() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":103}]}"#),
            "not a string",
        );
    }

    #[test]
    fn an_identifier_that_is_not_in_the_batch_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":"123"}]}"#),
            r#"itemIdentifier "123" is not a sequence number of this batch"#,
        );
    }

    #[test]
    fn one_invalid_identifier_among_valid_ones_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":"102"},{"itemIdentifier":"999"}]}"#),
            "\"999\"",
        );
    }

    #[test]
    fn an_identifier_with_extra_leading_zeros_is_not_the_same_sequence_number_text() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifier":"0103"}]}"#),
            "\"0103\"",
        );
    }

    #[test]
    fn an_element_that_is_not_an_object_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":["103"]}"#),
            "batchItemFailures[0]",
        );
    }

    #[test]
    fn an_element_without_item_identifier_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":[{"itemIdentifer":"103"}]}"#),
            "not an object with itemIdentifier",
        );
    }

    // Row 4: an object with other keys only.

    #[test]
    fn an_object_with_other_keys_only_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"foo":123}"#),
            "no batchItemFailures key (it has foo)",
        );
    }

    #[test]
    fn an_object_with_batch_item_failures_and_other_keys_is_decided_by_batch_item_failures() {
        assert_eq!(
            parse(r#"{"foo":1,"batchItemFailures":[{"itemIdentifier":"104"}],"bar":[]}"#),
            BatchResponse::PartialFailure {
                first_failed_index: 3
            }
        );
        assert_eq!(
            parse(r#"{"batchItemFailures":[],"foo":1}"#),
            BatchResponse::Success
        );
    }

    // Row 5 (a function error) is decided by the caller from the invoke result, before
    // the body is read; it has no body-level test here.

    // Row 6: batchItemFailures not a list, or a body that is not JSON.

    #[test]
    fn batch_item_failures_that_is_an_object_is_a_complete_failure() {
        assert_invalid(
            parse(r#"{"batchItemFailures":{"itemIdentifier":"103"}}"#),
            "not a list",
        );
    }

    #[test]
    fn batch_item_failures_that_is_a_string_is_a_complete_failure() {
        assert_invalid(parse(r#"{"batchItemFailures":"103"}"#), "not a list");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_complete_failure() {
        assert_invalid(parse("{\"batchItemFailures\":["), "not JSON");
        assert_invalid(parse("OK"), "not JSON");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_a_complete_failure() {
        assert_invalid(parse_batch_response(b"\"\xff\xfe\"", &five()), "not UTF-8");
    }

    // Any other JSON.

    #[test]
    fn a_number_is_a_complete_failure() {
        assert_invalid(parse("42"), "a number");
    }

    #[test]
    fn a_non_empty_string_is_a_complete_failure() {
        assert_invalid(parse("\"ok\""), "a string");
    }

    #[test]
    fn true_is_a_complete_failure() {
        assert_invalid(parse("true"), "true");
    }

    #[test]
    fn a_non_empty_list_is_a_complete_failure() {
        assert_invalid(parse(r#"[{"itemIdentifier":"103"}]"#), "a list");
    }

    #[test]
    fn reasons_quote_long_identifiers_only_in_part() {
        let long = "é".repeat(200);
        let body = format!(r#"{{"batchItemFailures":[{{"itemIdentifier":"{long}"}}]}}"#);
        match parse(&body) {
            BatchResponse::Invalid { reason } => assert!(reason.len() < 150, "{reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_that_is_not_in_order_is_still_searched_correctly() {
        let b = batch(&["5", "3", "9", "1"]);
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"1"},{"itemIdentifier":"9"}]}"#;
        assert_eq!(
            parse_batch_response(body.as_bytes(), &b),
            BatchResponse::PartialFailure {
                first_failed_index: 2
            }
        );
    }

    #[test]
    fn ten_thousand_failures_in_a_batch_of_ten_thousand_are_resolved_quickly() {
        let seqs: Vec<String> = (0..10_000u64)
            .map(|i| {
                format!(
                    "4959033827149025660855969253836157109592157598913{:07}",
                    i * 3
                )
            })
            .collect();
        let b: Vec<SequenceNumber> = seqs.iter().map(|s| SequenceNumber(s.clone())).collect();
        let items: Vec<String> = seqs
            .iter()
            .rev()
            .map(|s| format!(r#"{{"itemIdentifier":"{s}"}}"#))
            .collect();
        let body = format!(r#"{{"batchItemFailures":[{}]}}"#, items.join(","));
        let start = std::time::Instant::now();
        assert_eq!(
            parse_batch_response(body.as_bytes(), &b),
            BatchResponse::PartialFailure {
                first_failed_index: 0
            }
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_batch_response(&body, &five());
        }

        #[test]
        fn arbitrary_json_shaped_text_never_panics_and_partial_failures_point_into_the_batch(
            body in r#"[\[\]{}:, "0-9a-zA-Z\\]{0,80}|\{"batchItemFailures":\[(\{"itemIdentifier":("10[0-9]"|[0-9]+|null|"")\},?){0,4}\]\}"#
        ) {
            let b = five();
            if let BatchResponse::PartialFailure { first_failed_index } = parse_batch_response(body.as_bytes(), &b) {
                prop_assert!(first_failed_index < b.len());
            }
        }
    }
}
