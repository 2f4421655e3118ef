//! Turning a stored `(producer, k)` back into the record a reader sees: the Kinesis JSON
//! data or the DynamoDB change with its keys and images.
//!
//! This is the only place that builds records, and it runs on read, never while the
//! stream advances; that is what keeps advancing cheap and memory per record at a few
//! words. Kinesis data is laid out by `payload.rs` in one buffer of exactly `payload_bytes`
//! (padded through a `"pad"` field). A DynamoDB change's eventID, keys and images are
//! written the same way, straight into the one buffer a `DynamodbChange` holds
//! (`ChangeText`), whose size is computed arithmetically beforehand.

use super::items::event_name;
use super::payload::{digit_count, DynamodbItem, KinesisData};
use super::producer::ProducerSpec;
use super::record::{Prev, Rec};
use crate::model::{
    ChangeTextWriter, DynamodbChange, DynamodbEventName, RecordBody, SequenceNumber, StreamKind,
    StreamRecord, StreamViewType,
};

/// Rebuilds records of one stream.
pub(crate) struct Materializer<'a> {
    pub specs: &'a [ProducerSpec],
    pub kind: StreamKind,
    pub view: StreamViewType,
}

impl Materializer<'_> {
    /// The stored record `rec`, record `index` of shard `shard` (with sequence number
    /// `sequence_number`), and its size as GetRecords counts it (Kinesis: data + partition
    /// key; DynamoDB: SizeBytes).
    pub fn record(
        &self,
        rec: Rec,
        prev: Prev,
        sequence_number: SequenceNumber,
        shard: u32,
        index: u64,
    ) -> Option<(StreamRecord, usize)> {
        let spec = self.specs.get(rec.producer as usize)?;
        let approximate_arrival_ms = spec.arrival_ms(rec.k);
        let n = spec.key_index(rec.k);
        let (body, size) = match self.kind {
            StreamKind::Kinesis => {
                let data = kinesis_data(spec, rec.k, n);
                let partition_key = spec.key(n);
                let size = data.len() + partition_key.len();
                (
                    RecordBody::Kinesis {
                        partition_key,
                        data,
                    },
                    size,
                )
            }
            StreamKind::Dynamodb => {
                let change = self.dynamodb_change(spec, rec, prev, n, (shard, index));
                let size = change.size_bytes as usize;
                (RecordBody::Dynamodb(change), size)
            }
        };
        Some((
            StreamRecord {
                sequence_number,
                approximate_arrival_ms,
                body,
            },
            size,
        ))
    }

    /// The change of `rec`, written into one buffer sized beforehand: its eventID (from
    /// `position`, the shard and index), keys and images.
    fn dynamodb_change(
        &self,
        spec: &ProducerSpec,
        rec: Rec,
        prev: Prev,
        n: u64,
        position: (u32, u64),
    ) -> DynamodbChange {
        let item = DynamodbItem {
            key_prefix_json: &spec.key_prefix_json,
            n,
        };
        let key_json_len = spec.key_prefix_json.len() + digit_count(n);
        let event = event_name(rec.meta);
        let poison = spec.is_poison(rec.k);
        let new_image = (self.view.has_new_image() && event != DynamodbEventName::Remove)
            .then(|| Image::of(spec, rec.k, key_json_len, poison));
        // The poison marker belongs to the poison record, not to the item: it shows in the
        // record's NewImage, or in its OldImage when the view or event has no NewImage,
        // and never in the OldImage of the change after it.
        let old_image = if self.view.has_old_image() && event != DynamodbEventName::Insert {
            prev.get().and_then(|p| {
                let before = self.specs.get(p.producer as usize)?;
                Some(Image::of(
                    before,
                    p.k,
                    key_json_len,
                    poison && new_image.is_none(),
                ))
            })
        } else {
            None
        };
        let keys_json_len = 15 + key_json_len;
        let size_bytes = keys_json_len
            + new_image.as_ref().map_or(0, |image| image.len)
            + old_image.as_ref().map_or(0, |image| image.len);
        let mut text = ChangeTextWriter::with_capacity(EVENT_ID_LEN + size_bytes);
        push_event_id(text.text(), position.0, position.1);
        text.end_part();
        item.push_keys(text.text());
        text.end_part();
        for image in [new_image, old_image] {
            if let Some(image) = image {
                image.push(&item, text.text());
            }
            text.end_part();
        }
        DynamodbChange {
            text: text.finish(),
            event_name: event,
            size_bytes: size_bytes as u64,
            stream_view_type: self.view,
            ttl_deletion: false,
        }
    }
}

/// Record `k` of `spec` as Kinesis data (see `KinesisData`).
fn kinesis_data(spec: &ProducerSpec, k: u64, n: u64) -> Vec<u8> {
    KinesisData {
        producer: spec.index,
        k,
        key_prefix_json: &spec.key_prefix_json,
        n,
        amount: spec.amount(k),
        poison: spec.is_poison(k),
        payload_bytes: spec.payload_bytes,
    }
    .write()
}

/// JSON length of an image without its variable parts: `{"pk":{"S":""},"n":{"N":""},
/// "amount":{"N":""},"payload":{"S":""}}`.
const IMAGE_FIXED_LEN: usize = 65;
/// `,"poison":{"BOOL":true}`.
const POISON_ATTRIBUTE_LEN: usize = 23;

/// The item as record `k` of a producer wrote it: its values, padded so its JSON is about
/// `payload_bytes` (plus the poison marker, if shown), and that JSON's length.
struct Image {
    k: u64,
    amount: u64,
    pad: usize,
    poison: bool,
    len: usize,
}

impl Image {
    fn of(spec: &ProducerSpec, k: u64, key_json_len: usize, poison: bool) -> Image {
        let amount = spec.amount(k);
        // The pad ignores the poison marker, so the same item has the same padding whether
        // or not a record shows the marker.
        let unpadded = IMAGE_FIXED_LEN + key_json_len + digit_count(k) + digit_count(amount);
        let pad = spec.payload_bytes.saturating_sub(unpadded);
        let marker = if poison { POISON_ATTRIBUTE_LEN } else { 0 };
        Image {
            k,
            amount,
            pad,
            poison,
            len: unpadded + pad + marker,
        }
    }

    /// Appends the image's JSON (`len` bytes) for `item`.
    fn push(&self, item: &DynamodbItem<'_>, out: &mut String) {
        item.push_image(out, self.k, self.amount, self.pad, self.poison);
    }
}

/// The length of an eventID: 32 hex digits.
const EVENT_ID_LEN: usize = 32;

/// Appends the eventID of record `index` of shard `shard`: 32 lowercase hex digits (AWS
/// documents the eventID only as a unique identifier; real ones look like this). The two
/// halves are SplitMix64 finalisations (`crate::rng`) of the index and of the shard mixed
/// with the index; each is a bijection, so no two records of a stream share an id, and
/// being independent they are computed side by side. From the numbers rather than the
/// sequence number's text: hashing that text was ~8% of a DynamoDB simulation.
fn push_event_id(out: &mut String, shard: u32, index: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let low = crate::rng::Rng::new(index).next_u64();
    let high =
        crate::rng::Rng::new(u64::from(shard) ^ index.rotate_left(32) ^ 0x243F_6A88_85A3_08D3)
            .next_u64();
    let mut hex = [0u8; EVENT_ID_LEN];
    let value = (u128::from(high) << 64) | u128::from(low);
    for (pair, b) in hex.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    // Hex digits are ASCII, so this never falls back to the empty default.
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::ProducerConfig;
    use serde_json::{json, Value};

    fn spec(payload_bytes: usize, prefix: &str) -> ProducerSpec {
        let cfg = ProducerConfig {
            rate_per_second: 10.0,
            start_seconds: 0.0,
            duration_seconds: None,
            records: None,
            keys: 100,
            key_prefix: prefix.into(),
            payload_bytes,
            poison_every: Some(3),
        };
        ProducerSpec::new(&cfg, 0, "s", 1, 0, 0)
    }

    #[test]
    fn kinesis_data_is_json_of_exactly_the_configured_size() {
        for prefix in ["user-", "we\"ird\\key\n"] {
            let s = spec(120, prefix);
            for k in 0..6 {
                let n = s.key_index(k);
                let data = kinesis_data(&s, k, n);
                assert_eq!(data.len(), 120);
                let v: Value = serde_json::from_slice(&data).unwrap();
                assert_eq!(v["n"], k);
                assert_eq!(v["key"], format!("{prefix}{n}"));
                let poison = memchr::memmem::find(&data, b"poison").is_some();
                assert_eq!(poison, s.is_poison(k));
                assert_eq!(v.get("poison").is_some(), s.is_poison(k));
            }
        }
    }

    #[test]
    fn kinesis_data_too_small_for_padding_is_still_valid_json() {
        let s = spec(10, "user-");
        let data = kinesis_data(&s, 2, 5);
        let v: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["poison"], true);
        assert!(v.get("pad").is_none());
    }

    #[test]
    fn image_lengths_match_their_serialized_json() {
        for (bytes, k) in [(200, 2), (10, 5), (150, 123_456)] {
            let s = spec(bytes, "us\"er-\u{8}");
            let item = DynamodbItem {
                key_prefix_json: &s.key_prefix_json,
                n: 7,
            };
            let key_json_len = s.key_prefix_json.len() + 1;
            for poison in [false, true] {
                let image = Image::of(&s, k, key_json_len, poison);
                let len = image.len;
                let mut text = String::new();
                image.push(&item, &mut text);
                // What serde_json writes for the item as a map, byte for byte.
                let mut expected = json!({
                    "pk": {"S": s.key(7)},
                    "n": {"N": k.to_string()},
                    "amount": {"N": s.amount(k).to_string()},
                    "payload": {"S": "x".repeat(len - key_json_len - IMAGE_FIXED_LEN
                        - digit_count(k) - digit_count(s.amount(k))
                        - if poison { POISON_ATTRIBUTE_LEN } else { 0 })},
                });
                if poison {
                    expected["poison"] = json!({"BOOL": true});
                }
                assert_eq!(text, expected.to_string());
                assert_eq!(text.len(), len, "{text}");
                if bytes == 200 {
                    assert_eq!(
                        len,
                        if poison {
                            200 + POISON_ATTRIBUTE_LEN
                        } else {
                            200
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn event_ids_are_32_hex_digits_stable_and_distinct() {
        let id = |shard, index| {
            let mut text = String::from("x");
            push_event_id(&mut text, shard, index);
            text.split_off(1)
        };
        let first = id(2, 2);
        assert_eq!(first.len(), EVENT_ID_LEN);
        assert!(first
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(first, id(2, 2));
        // Neighbouring records of a shard, the same index in neighbouring shards, and the
        // ends of the index range all get different ids.
        let mut seen = std::collections::HashSet::new();
        for shard in (0..4u32).chain([u32::MAX]) {
            for index in (0..2_000u64).chain([1 << 32, (1 << 32) + 1, u64::MAX - 1, u64::MAX]) {
                assert!(
                    seen.insert(id(shard, index)),
                    "shard {shard}, index {index}"
                );
            }
        }
    }
}
