//! Sequence numbers of simulated records: the text AWS would show, with the shard's index
//! and the record's index in its shard encoded in the digits.
//!
//! Because the record index is in the number, positions, counts and "after this sequence
//! number" are O(1) lookups in a shard, with no index of numbers kept. Numbers of one
//! shard order like the records (same length, zero-padded), as AWS promises; consecutive
//! numbers are produced by incrementing text (`SequenceCursor`) because a page of a
//! thousand records would otherwise format a thousand 56-digit numbers.

use crate::model::{SequenceNumber, StreamKind};

/// Kinesis: `49` + 14-digit shard index + 40-digit record index (56 digits); DynamoDB:
/// 7-digit shard index + 1, then the 21-digit record index.
pub(crate) fn sequence_number(kind: StreamKind, shard: u32, index: u64) -> SequenceNumber {
    let mut out = Vec::with_capacity(56);
    match kind {
        StreamKind::Kinesis => {
            out.extend_from_slice(b"49");
            push_padded(&mut out, u64::from(shard), 14);
            push_padded(&mut out, index, 40);
        }
        StreamKind::Dynamodb => {
            push_padded(&mut out, u64::from(shard) + 1, 7);
            push_padded(&mut out, index, 21);
        }
    }
    // Only ASCII digits were written.
    SequenceNumber(String::from_utf8(out).unwrap_or_default())
}

/// The sequence numbers of consecutive records of one shard: each one is the previous
/// plus one, computed on the text (usually one digit changes), which is cheaper than
/// formatting every number afresh. The first is formatted only when asked for: most reads
/// of a quiet shard return nothing, and at 10,000 shards formatting it anyway was 3% of
/// an idle simulation.
pub(crate) struct SequenceCursor {
    kind: StreamKind,
    shard: u32,
    index: u64,
    current: Option<String>,
}

impl SequenceCursor {
    pub fn new(kind: StreamKind, shard: u32, index: u64) -> SequenceCursor {
        SequenceCursor {
            kind,
            shard,
            index,
            current: None,
        }
    }

    /// The current number; the cursor moves to the next record.
    pub fn next_number(&mut self) -> SequenceNumber {
        let current = self
            .current
            .get_or_insert_with(|| sequence_number(self.kind, self.shard, self.index).0);
        let out = SequenceNumber(current.clone());
        increment_decimal(current);
        out
    }
}

/// Adds one to a string of ASCII digits (the record index is the tail of the number and
/// never carries into the shard part: a u64 has at most 20 of its 21 or 40 digits).
fn increment_decimal(text: &mut String) {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    const ZEROS: &str = "0000000000000000000000000000000000000000";
    let bytes = text.as_bytes();
    let Some(pos) = bytes.iter().rposition(|&b| b != b'9') else {
        return;
    };
    let Some(next) = DIGITS.get(usize::from(bytes[pos].wrapping_sub(b'0')) + 1) else {
        return;
    };
    let carried = text.len() - pos - 1;
    text.truncate(pos);
    text.push_str(next);
    text.push_str(&ZEROS[..carried.min(ZEROS.len())]);
}

/// `(shard index, record index)` of one of our sequence numbers; None when it is not one.
pub(crate) fn parse_sequence_number(kind: StreamKind, seq: &str) -> Option<(u64, u64)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = |s: &str| -> Option<u64> {
        let t = s.trim_start_matches('0');
        if t.is_empty() {
            Some(0)
        } else {
            t.parse().ok()
        }
    };
    if !digits(seq) {
        return None;
    }
    let (shard_part, index_part) = match kind {
        StreamKind::Kinesis => {
            let rest = seq.strip_prefix("49")?;
            let split = rest.len().checked_sub(40)?;
            (&rest[..split], &rest[split..])
        }
        StreamKind::Dynamodb => {
            let split = seq.len().checked_sub(21)?;
            (&seq[..split], &seq[split..])
        }
    };
    if !digits(shard_part) {
        return None;
    }
    let shard = number(shard_part)?;
    let shard = match kind {
        StreamKind::Kinesis => shard,
        StreamKind::Dynamodb => shard.checked_sub(1)?,
    };
    Some((shard, number(index_part)?))
}

/// Appends `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value).as_bytes();
    out.resize(out.len() + width.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_and_order_by_record_index() {
        for kind in [StreamKind::Kinesis, StreamKind::Dynamodb] {
            let a = sequence_number(kind, 3, 9);
            let b = sequence_number(kind, 3, 10);
            assert!(a < b);
            assert_eq!(parse_sequence_number(kind, a.as_str()), Some((3, 9)));
            assert_eq!(parse_sequence_number(kind, b.as_str()), Some((3, 10)));
            let max = sequence_number(kind, 0, u64::MAX);
            assert_eq!(
                parse_sequence_number(kind, max.as_str()),
                Some((0, u64::MAX))
            );
        }
        assert_eq!(
            sequence_number(StreamKind::Kinesis, 1, 2).as_str().len(),
            56
        );
        assert_eq!(
            sequence_number(StreamKind::Dynamodb, 1, 2).as_str(),
            "0000002000000000000000000002"
        );
    }

    #[test]
    fn a_sequence_cursor_counts_up_like_fresh_formatting() {
        for kind in [StreamKind::Kinesis, StreamKind::Dynamodb] {
            for start in [0, 7, 98, 999, 1_000, u64::MAX - 3] {
                let mut cursor = SequenceCursor::new(kind, 5, start);
                for i in 0..3 {
                    assert_eq!(cursor.next_number(), sequence_number(kind, 5, start + i));
                }
            }
        }
    }

    #[test]
    fn malformed_sequence_numbers_are_rejected_without_panicking() {
        for bad in [
            "",
            "abc",
            "49",
            "4912",
            "SHARD_END",
            "49x0000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(
                parse_sequence_number(StreamKind::Kinesis, bad),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            parse_sequence_number(StreamKind::Dynamodb, "0000000000000000000000000002"),
            None
        );
        assert_eq!(parse_sequence_number(StreamKind::Dynamodb, "12"), None);
    }
}
