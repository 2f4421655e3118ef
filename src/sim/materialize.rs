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
use super::payload::{DynamodbItem, KinesisData};
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
                let mut digits = itoa::Buffer::new();
                let n_digits = digits.format(n);
                let data = kinesis_data(spec, rec.k, n_digits);
                let partition_key = spec.key(n_digits);
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
    /// `position`, the shard and index), keys and images. Its SizeBytes is the length of
    /// the keys and images as written.
    fn dynamodb_change(
        &self,
        spec: &ProducerSpec,
        rec: Rec,
        prev: Prev,
        n: u64,
        position: (u32, u64),
    ) -> DynamodbChange {
        let mut n_digits = itoa::Buffer::new();
        let item = DynamodbItem {
            key_prefix_json: &spec.key_prefix_json,
            n_digits: n_digits.format(n),
        };
        let event = event_name(rec.meta);
        let poison = spec.is_poison(rec.k);
        let new_image = self.view.has_new_image() && event != DynamodbEventName::Remove;
        // The poison marker belongs to the poison record, not to the item: it shows in the
        // record's NewImage, or in its OldImage when the view or event has no NewImage,
        // and never in the OldImage of the change after it.
        let old_image = if self.view.has_old_image() && event != DynamodbEventName::Insert {
            prev.get()
                .and_then(|p| Some((self.specs.get(p.producer as usize)?, p.k)))
        } else {
            None
        };
        let bound = |spec: &ProducerSpec| item.image_len_bound(spec.payload_bytes);
        let mut text = ChangeTextWriter::with_capacity(
            EVENT_ID_LEN
                + item.keys_len()
                + if new_image { bound(spec) } else { 0 }
                + old_image.map_or(0, |(before, _)| bound(before)),
        );
        push_event_id(text.text(), position.0, position.1);
        text.end_part();
        item.push_keys(text.text());
        text.end_part();
        if new_image {
            let k = rec.k;
            item.push_image(text.text(), k, spec.amount(k), spec.payload_bytes, poison);
        }
        text.end_part();
        if let Some((before, k)) = old_image {
            let marker = poison && !new_image;
            item.push_image(
                text.text(),
                k,
                before.amount(k),
                before.payload_bytes,
                marker,
            );
        }
        text.end_part();
        let text = text.finish();
        DynamodbChange {
            size_bytes: text.maps().len() as u64,
            text,
            event_name: event,
            stream_view_type: self.view,
            ttl_deletion: false,
        }
    }
}

/// Record `k` of `spec`, whose key index is `n_digits`, as Kinesis data (see
/// `KinesisData`).
fn kinesis_data(spec: &ProducerSpec, k: u64, n_digits: &str) -> Vec<u8> {
    KinesisData {
        producer: spec.index,
        k,
        key_prefix_json: &spec.key_prefix_json,
        n_digits,
        amount: spec.amount(k),
        poison: spec.is_poison(k),
        payload_bytes: spec.payload_bytes,
    }
    .write()
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
    let low = crate::rng::Rng::new(index).next_u64();
    let high =
        crate::rng::Rng::new(u64::from(shard) ^ index.rotate_left(32) ^ 0x243F_6A88_85A3_08D3)
            .next_u64();
    let mut hex = [0u8; EVENT_ID_LEN];
    for (digits, half) in hex
        .chunks_exact_mut(8)
        .zip([high >> 32, high, low >> 32, low])
    {
        digits.copy_from_slice(&hex_digits(half as u32));
    }
    // Hex digits are ASCII, so this never falls back to the empty default.
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

/// The 8 lowercase hex digits of `value`, most significant first, computed eight at a
/// time in one word (a byte-by-byte table lookup was 3% of a DynamoDB simulation): each
/// nibble is spread into a byte of its own, then turned into `0`-`9` or `a`-`f` by adding
/// `'0'`, plus `'a' - '0' - 10` where the nibble is above 9.
fn hex_digits(value: u32) -> [u8; 8] {
    let mut v = u64::from(value);
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    // 0x01 in each byte whose nibble is 10 or more (adding 6 carries it into bit 4).
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (v + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::ProducerConfig;
    use serde_json::Value;

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
                let data = kinesis_data(&s, k, &n.to_string());
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
        let data = kinesis_data(&s, 2, "5");
        let v: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["poison"], true);
        assert!(v.get("pad").is_none());
    }

    #[test]
    fn hex_digits_are_the_lowercase_hex_of_the_value() {
        for value in [
            0,
            9,
            10,
            15,
            0x1234_5678,
            0x9abc_def0,
            0xa0b0_c0d0,
            u32::MAX,
        ] {
            let digits = hex_digits(value);
            assert_eq!(
                std::str::from_utf8(&digits),
                Ok(format!("{value:08x}").as_str())
            );
        }
    }

    #[test]
    fn a_change_is_sized_as_its_keys_and_images_with_the_images_its_view_and_event_have() {
        for view in [StreamViewType::NewAndOldImages, StreamViewType::KeysOnly] {
            let specs = [spec(100, "us\"er-"), spec(300, "k")];
            let materializer = Materializer {
                specs: &specs,
                kind: StreamKind::Dynamodb,
                view,
            };
            for (k, meta, prev) in [
                (0, 0, Prev::NONE),
                (5, 1, Prev { k: 1, producer: 1 }),
                (
                    8,
                    2,
                    Prev {
                        k: 123_456,
                        producer: 0,
                    },
                ),
            ] {
                let rec = Rec {
                    k,
                    producer: 0,
                    meta,
                };
                let change = materializer.dynamodb_change(&specs[0], rec, prev, 7, (3, k));
                let maps = change.text.maps();
                assert_eq!(change.size_bytes as usize, maps.len());
                let parts = [Some(change.keys()), change.new_image(), change.old_image()];
                let written: usize = parts.iter().flatten().map(|m| m.as_str().len()).sum();
                assert_eq!(written, maps.len());
                assert_eq!(change.event_id().len(), EVENT_ID_LEN);
                assert_eq!(
                    change.new_image().is_some(),
                    view.has_new_image() && meta != 2
                );
                assert_eq!(
                    change.old_image().is_some(),
                    view.has_old_image() && meta != 0
                );
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
