//! Record text at the byte level: decimal digits, JSON string escaping, the layout of a
//! Kinesis record's data and of a DynamoDB item's keys and images.
//!
//! This is the bottom of the simulated world: it knows nothing of producers or shards, so
//! everything above (keys, sequence numbers, rebuilt records) and the load generator
//! (`crate::load`) write text the same way. It formats into byte buffers by hand (numbers
//! two digits at a time with `itoa`, lengths counted arithmetically so each buffer is
//! allocated once), because record text is rebuilt on every read (`materialize.rs`) and
//! that is the hot path of a large simulation.

use crate::event::write_u64;

/// Appends `value` in decimal to text (`itoa`: two digits at a time, no UTF-8 check).
#[inline]
pub(crate) fn push_u64_text(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends `pad` x's, a slice at a time.
#[inline]
fn push_pad(out: &mut String, mut pad: usize) {
    const XS: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    while pad > 0 {
        let n = pad.min(XS.len());
        out.push_str(XS.get(..n).unwrap_or_default());
        pad -= n;
    }
}

/// Appends `text` as the inside of a JSON string, escaped by the event's writer (so as
/// serde_json escapes it: the DynamoDB images must be byte-identical to a serialised map).
pub(crate) fn push_json_escaped(out: &mut String, text: &str) {
    let mut escaped = Vec::with_capacity(text.len());
    crate::event::write_escaped(&mut escaped, text);
    // Escaping keeps UTF-8 valid; lossy is only a way not to panic.
    out.push_str(&String::from_utf8_lossy(&escaped));
}

/// The fields of one Kinesis record's data, for the simulated producers and for the load
/// generator (`crate::load`), which must write the same shape so the same function rules
/// catch its poison records.
pub(crate) struct KinesisData<'a> {
    pub producer: u32,
    pub k: u64,
    /// The key prefix, JSON-escaped (`push_json_escaped`), without quotes.
    pub key_prefix_json: &'a str,
    /// The key index in decimal (the key is `key_prefix + n`), formatted once for the
    /// partition key and the data.
    pub n_digits: &'a str,
    pub amount: u64,
    pub poison: bool,
    pub payload_bytes: usize,
}

impl KinesisData<'_> {
    /// `{"producer":P,"n":K,"key":"KEY","amount":A[,"poison":true],"pad":"xx.."}`, exactly
    /// `payload_bytes` long when that leaves room for the pad field (else without it).
    #[inline]
    pub(crate) fn write(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload_bytes.max(64 + self.key_prefix_json.len()));
        out.extend_from_slice(b"{\"producer\":");
        write_u64(&mut out, u64::from(self.producer));
        out.extend_from_slice(b",\"n\":");
        write_u64(&mut out, self.k);
        out.extend_from_slice(b",\"key\":\"");
        out.extend_from_slice(self.key_prefix_json.as_bytes());
        out.extend_from_slice(self.n_digits.as_bytes());
        out.extend_from_slice(b"\",\"amount\":");
        write_u64(&mut out, self.amount);
        if self.poison {
            out.extend_from_slice(b",\"poison\":true");
        }
        const PAD_OPEN: &[u8] = b",\"pad\":\"";
        const PAD_CLOSE: &[u8] = b"\"}";
        let fixed = out.len() + PAD_OPEN.len() + PAD_CLOSE.len();
        if fixed <= self.payload_bytes {
            out.extend_from_slice(PAD_OPEN);
            out.resize(out.len() + (self.payload_bytes - fixed), b'x');
            out.extend_from_slice(PAD_CLOSE);
        } else {
            out.push(b'}');
        }
        out
    }
}

/// JSON length of an image without its variable parts: `{"pk":{"S":""},"n":{"N":""},
/// "amount":{"N":""},"payload":{"S":""}}`.
const IMAGE_FIXED_LEN: usize = 65;
/// `,"poison":{"BOOL":true}`.
const POISON_ATTRIBUTE_LEN: usize = 23;
/// The `Keys` map without its key: `{"pk":{"S":""}}`.
const KEYS_FIXED_LEN: usize = 15;
/// The most decimal digits a `u64` has.
const MAX_U64_DIGITS: usize = 20;

/// The attributes of one simulated DynamoDB item (see `materialize.rs` for the values).
/// The key's number is held as its digits, formatted once for the keys and both images.
pub(crate) struct DynamodbItem<'a> {
    /// The key prefix, JSON-escaped (`push_json_escaped`), without quotes.
    pub key_prefix_json: &'a str,
    /// The key index in decimal: the key is `key_prefix + n`.
    pub n_digits: &'a str,
}

impl DynamodbItem<'_> {
    /// Appends the `Keys` map: `{"pk":{"S":"KEY"}}`. Written as text (the key prefix is a
    /// `str`, the rest ASCII), so the attribute map needs no UTF-8 check.
    #[inline]
    pub(crate) fn push_keys(&self, out: &mut String) {
        out.push_str("{\"pk\":{\"S\":\"");
        self.push_key(out);
        out.push_str("\"}}");
    }

    /// The length of what `push_keys` appends.
    pub(crate) fn keys_len(&self) -> usize {
        KEYS_FIXED_LEN + self.key_json_len()
    }

    /// The most `push_image` appends for `payload_bytes`: room enough for any `k` and
    /// amount and the poison marker, so a buffer sized with it never grows.
    pub(crate) fn image_len_bound(&self, payload_bytes: usize) -> usize {
        let unpadded = IMAGE_FIXED_LEN + self.key_json_len() + 2 * MAX_U64_DIGITS;
        unpadded.max(payload_bytes) + POISON_ATTRIBUTE_LEN
    }

    /// Appends the item as record `k` wrote it, keys sorted as serde_json writes a map:
    /// `{"amount":{"N":"A"},"n":{"N":"K"},"payload":{"S":"xx.."},"pk":{"S":"KEY"}
    /// [,"poison":{"BOOL":true}]}`, the payload padding the JSON to `payload_bytes` when
    /// there is room (the poison marker comes on top: the pad ignores it, so an item has
    /// the same padding whether or not a record shows the marker).
    #[inline]
    pub(crate) fn push_image(
        &self,
        out: &mut String,
        k: u64,
        amount: u64,
        payload_bytes: usize,
        poison: bool,
    ) {
        let (mut k_digits, mut amount_digits) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (k_text, amount_text) = (k_digits.format(k), amount_digits.format(amount));
        let unpadded = IMAGE_FIXED_LEN + self.key_json_len() + k_text.len() + amount_text.len();
        out.push_str("{\"amount\":{\"N\":\"");
        out.push_str(amount_text);
        out.push_str("\"},\"n\":{\"N\":\"");
        out.push_str(k_text);
        out.push_str("\"},\"payload\":{\"S\":\"");
        push_pad(out, payload_bytes.saturating_sub(unpadded));
        out.push_str("\"},\"pk\":{\"S\":\"");
        self.push_key(out);
        out.push_str("\"}");
        if poison {
            out.push_str(",\"poison\":{\"BOOL\":true}");
        }
        out.push('}');
    }

    fn key_json_len(&self) -> usize {
        self.key_prefix_json.len() + self.n_digits.len()
    }

    fn push_key(&self, out: &mut String) {
        out.push_str(self.key_prefix_json);
        out.push_str(self.n_digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for value in [
            0,
            9,
            10,
            99,
            100,
            1234567890,
            10u64.pow(19) - 1,
            10u64.pow(19),
            u64::MAX,
        ] {
            let mut text = String::from("x");
            push_u64_text(&mut text, value);
            assert_eq!(text, format!("x{value}"));
        }
    }

    #[test]
    fn images_are_the_text_serde_json_writes_padded_to_the_payload_size() {
        let mut prefix_json = String::new();
        push_json_escaped(&mut prefix_json, "us\"er-\u{8}");
        let item = DynamodbItem {
            key_prefix_json: &prefix_json,
            n_digits: "7",
        };
        for (payload_bytes, k, amount) in [(200, 2, 17), (10, 5, 1000), (150, 123_456, 3)] {
            for poison in [false, true] {
                let mut text = String::new();
                item.push_image(&mut text, k, amount, payload_bytes, poison);
                let marker = if poison { POISON_ATTRIBUTE_LEN } else { 0 };
                let unpadded = text.len() - marker - text.matches('x').count();
                // What serde_json writes for the item as a map, byte for byte.
                let mut expected = serde_json::json!({
                    "pk": {"S": "us\"er-\u{8}7"},
                    "n": {"N": k.to_string()},
                    "amount": {"N": amount.to_string()},
                    "payload": {"S": "x".repeat(payload_bytes.saturating_sub(unpadded))},
                });
                if poison {
                    expected["poison"] = serde_json::json!({"BOOL": true});
                }
                assert_eq!(text, expected.to_string());
                assert_eq!(text.len(), unpadded.max(payload_bytes) + marker, "{text}");
                assert!(text.len() <= item.image_len_bound(payload_bytes));
                if payload_bytes == 200 {
                    assert_eq!(text.len(), 200 + marker);
                }
            }
        }
    }
}
