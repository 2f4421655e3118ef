//! The text of a simulated stream's shard iterators: `simit:<tag>:<shard>:<index>:<issued
//! at>`, self-describing (see `simulated.rs`), written and read on every GetRecords.
//!
//! Both directions run once per read, which at 10,000 shards is ~110,000 times in an
//! 11-second simulation, so both are hand-written: numbers digit by digit, and the
//! iterators this stream made read in one pass after their known prefix. Anything else
//! (another stream's iterator, a forged or malformed one) goes through the general
//! reading, which says what is wrong with it.

use super::SourceError;
use crate::rng::stable_hash;
use crate::sim::payload::push_u64_text;

/// What an iterator string says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Iter {
    pub shard: u32,
    pub index: u64,
    pub issued_at_ms: i64,
}

/// Writes and reads the iterators of one stream.
pub(super) struct IteratorText {
    arn: String,
    /// Marks this stream's iterators: a hash of its ARN.
    tag: u64,
    /// `simit:<tag in 16 hex digits>:`, the start of every iterator of this stream.
    prefix: String,
}

impl IteratorText {
    pub(super) fn new(arn: &str) -> Self {
        let tag = stable_hash(arn);
        IteratorText {
            arn: arn.to_string(),
            tag,
            prefix: format!("simit:{tag:016x}:"),
        }
    }

    /// The start of every iterator of this stream.
    #[cfg(test)]
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `simit:<tag>:<shard>:<index>:<issued at>`, written digit by digit: every page
    /// makes one, and `format!` was 3% of a 10,000-shard simulation's instructions.
    pub(super) fn encode(&self, it: Iter) -> String {
        let mut text = String::with_capacity(self.prefix.len() + 48);
        text.push_str(&self.prefix);
        push_u64_text(&mut text, u64::from(it.shard));
        text.push(':');
        push_u64_text(&mut text, it.index);
        text.push(':');
        if it.issued_at_ms < 0 {
            text.push('-');
        }
        push_u64_text(&mut text, it.issued_at_ms.unsigned_abs());
        text
    }

    /// The iterator `encode` made: its fields read in one pass after this stream's prefix
    /// (split and `parse` were 10% of an idle 10,000-shard simulation); anything else
    /// takes the general path, which says what is wrong with it.
    pub(super) fn decode(&self, iterator: &str) -> Result<Iter, SourceError> {
        match iterator.strip_prefix(self.prefix.as_str()) {
            Some(fields) => match decode_fields(fields) {
                Some(it) => Ok(it),
                None => self.decode_any(iterator),
            },
            None => self.decode_any(iterator),
        }
    }

    fn decode_any(&self, iterator: &str) -> Result<Iter, SourceError> {
        let invalid = |why: &str| {
            SourceError::Other(format!("InvalidArgumentException: shard iterator {why}"))
        };
        let rest = iterator
            .strip_prefix("simit:")
            .ok_or_else(|| invalid("is malformed"))?;
        let mut parts = rest.split(':');
        let (Some(tag), Some(shard), Some(index), Some(issued), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid("is malformed"));
        };
        let tag = u64::from_str_radix(tag, 16).map_err(|_| invalid("is malformed"))?;
        if tag != self.tag {
            return Err(invalid(&format!("does not belong to stream {}", self.arn)));
        }
        match (shard.parse(), index.parse(), issued.parse()) {
            (Ok(shard), Ok(index), Ok(issued_at_ms)) => Ok(Iter {
                shard,
                index,
                issued_at_ms,
            }),
            _ => Err(invalid("is malformed")),
        }
    }
}

/// `<shard>:<index>:<issued at>` as `encode` writes them (decimal; the time may be
/// negative); None for anything else.
fn decode_fields(fields: &str) -> Option<Iter> {
    fn number(digits: &[u8]) -> Option<u64> {
        if digits.is_empty() || digits.len() > 20 {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
        })
    }
    let mut parts = fields.as_bytes().splitn(3, |&b| b == b':');
    let shard = u32::try_from(number(parts.next()?)?).ok()?;
    let index = number(parts.next()?)?;
    let issued = parts.next()?;
    let issued_at_ms = match issued.strip_prefix(b"-") {
        Some(magnitude) => 0i64.checked_sub_unsigned(number(magnitude)?)?,
        None => i64::try_from(number(issued)?).ok()?,
    };
    Some(Iter {
        shard,
        index,
        issued_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";

    #[test]
    fn an_iterator_reads_back_as_written_and_names_its_stream() {
        let src = IteratorText::new(ARN);
        for it in [
            Iter {
                shard: 0,
                index: 0,
                issued_at_ms: 0,
            },
            Iter {
                shard: 7,
                index: 123_456_789,
                issued_at_ms: 1_767_225_600_000,
            },
            Iter {
                shard: u32::MAX,
                index: u64::MAX,
                issued_at_ms: -86_400_000,
            },
        ] {
            let text = src.encode(it);
            assert_eq!(
                text,
                format!(
                    "simit:{:016x}:{}:{}:{}",
                    src.tag, it.shard, it.index, it.issued_at_ms
                )
            );
            assert_eq!(src.decode(&text), Ok(it));
        }
    }

    #[test]
    fn the_quick_decoding_reads_what_the_general_one_reads_and_leaves_it_the_rest() {
        let src = IteratorText::new(ARN);
        let prefix = format!("simit:{:016x}:", src.tag);
        for fields in [
            "0:0:0",
            "1:007:-5",
            "4294967295:18446744073709551615:-9223372036854775808",
            "4294967296:0:0",
            "1:18446744073709551616:0",
            "1:2:9223372036854775808",
            "+1:2:3",
            "1:2",
            "1:2:3:4",
            "1::3",
            "1:2:-",
            "a:2:3",
            "00000000000000000000001:2:3",
        ] {
            let text = format!("{prefix}{fields}");
            assert_eq!(src.decode(&text), src.decode_any(&text), "{text}");
        }
        assert!(decode_fields("1:2:3").is_some());
        assert!(decode_fields("+1:2:3").is_none());
    }
}
