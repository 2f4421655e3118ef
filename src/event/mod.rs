//! The exact JSON that Lambda's event source mapping produces and consumes: the invocation
//! event (`{"Records":[...]}`, spec 3.1 / 3.2), the on-failure destination record (spec
//! 3.3), the reading of a partial batch response (spec 2.4), and the tumbling window event
//! and response (`window`, spec 2.6).
//!
//! Events are built from per-record fragments between [`EVENT_PREFIX`] and
//! [`EVENT_SUFFIX`], so the engine can measure a batch against the 6 MB payload cap as it
//! encodes it, and join the fragments of part of a batch with [`assemble_event`]. Record
//! encoding is the simulator's hot path, so
//! fragments are written byte by byte into a caller-owned buffer with the small JSON
//! writers below, never through `serde_json::Value`.

pub mod batch_response;
pub mod dynamodb;
pub mod failure_record;
pub mod kinesis;
pub mod request_id;
pub mod window;

pub use batch_response::{parse_batch_response, BatchResponse};
pub use failure_record::{BatchInfo, Condition, FailureRecord, ResponseContext};

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::model::{RecordBody, ShardId, StreamRecord};

/// What every record of one shard's events shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventContext {
    pub shard_id: ShardId,
    /// The mapping's, shared by its shards (`Arc`, like the two below): at 10,000 shards
    /// each shard's own copies were read cold from memory at every invocation.
    pub event_source_arn: Arc<str>,
    pub aws_region: Arc<str>,
    pub invoke_identity_arn: Arc<str>,
}

impl EventContext {
    /// Shard 0 of a Kinesis stream `s` in us-east-1: the context tests use when its values
    /// do not matter.
    #[cfg(test)]
    pub(crate) fn sample() -> EventContext {
        EventContext {
            shard_id: ShardId("shardId-000000000000".into()),
            event_source_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s".into(),
            aws_region: "us-east-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/r".into(),
        }
    }
}

/// Appends the JSON of one element of the event's "Records" array for `record` (Kinesis
/// shape for RecordBody::Kinesis, DynamoDB shape for RecordBody::Dynamodb) to `out`.
pub fn encode_record(ctx: &EventContext, record: &StreamRecord, out: &mut Vec<u8>) {
    match &record.body {
        RecordBody::Kinesis {
            partition_key,
            data,
        } => kinesis::encode(ctx, record, partition_key, data, out),
        RecordBody::Dynamodb(change) => dynamodb::encode(ctx, record, change, out),
    }
}

/// What an event starts with, before the first record's fragment.
pub const EVENT_PREFIX: &[u8] = b"{\"Records\":[";
/// What an event ends with, after the last record's fragment.
pub const EVENT_SUFFIX: &[u8] = b"]}";

/// Writes `{"Records":[f1,f2,...]}` into `out` (cleared first).
pub fn assemble_event<'a>(fragments: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(EVENT_PREFIX);
    for (i, fragment) in fragments.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(fragment);
    }
    out.extend_from_slice(EVENT_SUFFIX);
}

// ---------------------------------------------------------------------------------------
// Small JSON writers shared by the encoders. They produce exactly what serde_json writes
// for the same values (same escapes, lowercase `\u00xx`), which the tests check.

/// For each byte: 0 when it is copied as is, else the character after the backslash
/// (`u` for `\u00XX`). Only `"`, `\` and the C0 controls need escaping in JSON; bytes of
/// multi-byte UTF-8 characters are all >= 0x80 and pass through unchanged.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends the JSON-escaped contents of `s` (without the surrounding quotes). Runs of
/// bytes that need no escape (almost always the whole string) are copied in one piece.
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = first_escape(bytes, 0);
    while let Some(&b) = bytes.get(i) {
        out.extend_from_slice(&bytes[start..i]);
        let escape = ESCAPE[usize::from(b)];
        if escape == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX_DIGITS[usize::from(b >> 4)]);
            out.push(HEX_DIGITS[usize::from(b & 0x0f)]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        start = i + 1;
        i = first_escape(bytes, start);
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The index of the first byte at or after `from` that needs escaping, `bytes.len()` if
/// none does. Eight bytes at a time: a word is looked at byte by byte only when it holds a
/// control character, a quote or a backslash.
fn first_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// Non-zero exactly when some byte of `v` is zero.
    fn has_zero_byte(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGHS
    }
    let rest = bytes.get(from..).unwrap_or_default();
    let mut words = rest.chunks_exact(8);
    let mut offset = from;
    for word in words.by_ref() {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(word);
        let x = u64::from_le_bytes(lanes);
        // A byte below 0x20: (x - 0x20 per byte) borrows into the high bit of a byte that
        // had it clear. Quote and backslash: XOR makes the matching byte zero.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let quote = has_zero_byte(x ^ (ONES * u64::from(b'"')));
        let backslash = has_zero_byte(x ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            break;
        }
        offset += 8;
    }
    // The word that flagged (its flags may include false positives above a true match,
    // never a false negative), then the tail shorter than a word.
    bytes
        .get(offset..)
        .unwrap_or_default()
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map_or(bytes.len(), |p| offset + p)
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends standard base64 (with padding) of `data`, encoded directly into `out`.
#[inline]
pub(crate) fn write_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    if let Some(len) = base64::encoded_len(data.len(), true) {
        out.resize(start + len, 0);
        if let Ok(written) = STANDARD.encode_slice(data, &mut out[start..]) {
            out.truncate(start + written);
            return;
        }
        out.truncate(start);
    }
    // Unreachable in practice (the slice is sized by encoded_len); stay correct anyway.
    out.extend_from_slice(STANDARD.encode(data).as_bytes());
}

/// Appends the decimal digits of `n` (`itoa`: two digits at a time).
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends the decimal form of `n` (with a leading `-` when negative).
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_event_without_records_is_the_prefix_and_the_suffix() {
        let mut out = Vec::new();
        assemble_event(std::iter::empty(), &mut out);
        assert_eq!(out, b"{\"Records\":[]}");
        assert_eq!(out, [EVENT_PREFIX, EVENT_SUFFIX].concat());
    }

    #[test]
    fn assembling_joins_fragments_with_commas_and_clears_the_buffer_first() {
        let mut out = b"left over".to_vec();
        let fragments: [&[u8]; 3] = [b"{\"a\":1}", b"{}", b"[2]"];
        assemble_event(fragments, &mut out);
        assert_eq!(out, b"{\"Records\":[{\"a\":1},{},[2]]}");
    }

    #[test]
    fn integers_are_written_in_decimal_including_the_extremes() {
        for n in [0u64, 7, 10, 1_545_084_650, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for n in [0i64, -1, 42, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped_like_serde_json() {
        let s = "a\"b\\c\u{0}\u{1f}\u{8}\u{c}\n\r\té\u{7f}😀/";
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            serde_json::to_string(s).expect("json")
        );
    }

    #[test]
    fn every_special_character_is_found_at_every_position_of_a_word() {
        let specials = [
            '\u{0}', '\u{1f}', '"', '\\', ' ', '!', '#', '[', ']', '\u{7f}', 'é', '😀',
        ];
        for len in 0..20 {
            for pos in 0..=len {
                for c in specials {
                    let mut s: String = "a".repeat(len);
                    s.insert(pos, c);
                    let mut out = Vec::new();
                    write_str(&mut out, &s);
                    assert_eq!(out, serde_json::to_vec(&s).expect("json"), "{s:?}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_string_is_written_exactly_as_serde_json_writes_it(
            s in prop_oneof![
                any::<String>(),
                "[\"\\\\\\x00-\\x1f\\x7fa-zé]{0,24}",
                "[a-z]{0,40}[\"\\\\\\x00-\\x1f]?[a-zé ]{0,40}[\"\\\\\\x00-\\x1f]?[a-z]{0,20}",
            ]
        ) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let expected = serde_json::to_vec(&s).expect("json");
            prop_assert_eq!(out, expected);
        }
    }
}
