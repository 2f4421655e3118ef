//! `ChangeText`: the text of one DynamoDB change, its eventID and its `Keys`, `NewImage`
//! and `OldImage` maps, held back to back in one buffer and read as slices.
//!
//! Why one buffer: a simulated DynamoDB read builds a change for every record, and holding
//! the four strings apart (plus the box around the change) cost five allocations and five
//! frees per change, the largest part of reading a change after its hashing
//! (docs/performance.md, "fifth"). Parts are told apart by where they end; an absent image
//! is an empty part, which no map is (its JSON is at least `{}`).
//!
//! The maps keep the form `AttributeMap` promises (compact DynamoDB JSON, keys sorted):
//! `new` takes them as `AttributeMap`s, and the crate's own writers (the simulated world)
//! append them in place through `ChangeTextWriter`, which trusts them as
//! `AttributeMap::from_written` does.

use std::fmt;

use super::attribute_map::{AttributeMap, AttributeMapRef};

/// Indexes of the parts, in the order they are held.
const EVENT_ID: usize = 0;
const KEYS: usize = 1;
const NEW_IMAGE: usize = 2;
const OLD_IMAGE: usize = 3;
const PARTS: usize = 4;

/// The eventID and attribute maps of one change, in one buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct ChangeText {
    text: String,
    /// Where each part ends in `text` (each starts where the one before ends).
    ends: [u32; PARTS],
}

impl ChangeText {
    /// The parts copied into one buffer of exactly their length.
    pub fn new(
        event_id: &str,
        keys: &AttributeMap,
        new_image: Option<&AttributeMap>,
        old_image: Option<&AttributeMap>,
    ) -> ChangeText {
        let parts = [
            event_id,
            keys.as_str(),
            new_image.map_or("", AttributeMap::as_str),
            old_image.map_or("", AttributeMap::as_str),
        ];
        let mut writer = ChangeTextWriter::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            writer.text().push_str(part);
            writer.end_part();
        }
        writer.finish()
    }

    /// The record's eventID (32 hex digits in AWS).
    pub fn event_id(&self) -> &str {
        self.part(EVENT_ID)
    }

    pub fn keys(&self) -> AttributeMapRef<'_> {
        AttributeMapRef::trusted(self.part(KEYS))
    }

    pub fn new_image(&self) -> Option<AttributeMapRef<'_>> {
        self.map(NEW_IMAGE)
    }

    pub fn old_image(&self) -> Option<AttributeMapRef<'_>> {
        self.map(OLD_IMAGE)
    }

    /// The keys and images back to back (no eventID), for the readers that only search
    /// their bytes.
    pub fn maps(&self) -> &str {
        let start = self.ends.get(EVENT_ID).map_or(0, |&end| end as usize);
        self.text.get(start..).unwrap_or_default()
    }

    fn map(&self, index: usize) -> Option<AttributeMapRef<'_>> {
        let text = self.part(index);
        (!text.is_empty()).then(|| AttributeMapRef::trusted(text))
    }

    fn part(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .and_then(|before| self.ends.get(before))
            .map_or(0, |&end| end as usize);
        let end = self.ends.get(index).map_or(start, |&end| end as usize);
        // The writer only ends parts at char boundaries it was given; empty otherwise.
        self.text.get(start..end).unwrap_or_default()
    }
}

impl fmt::Debug for ChangeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeText")
            .field("event_id", &self.event_id())
            .field("keys", &self.keys())
            .field("new_image", &self.new_image())
            .field("old_image", &self.old_image())
            .finish()
    }
}

/// Builds a `ChangeText` in place: append each part to `text()` in order (eventID, Keys,
/// NewImage, OldImage), calling `end_part` after each; append nothing for an absent image.
pub(crate) struct ChangeTextWriter {
    text: String,
    ends: [u32; PARTS],
    parts: usize,
}

impl ChangeTextWriter {
    /// A writer whose buffer holds `bytes` without growing (the sum of the parts' lengths).
    #[inline]
    pub fn with_capacity(bytes: usize) -> ChangeTextWriter {
        ChangeTextWriter {
            text: String::with_capacity(bytes),
            ends: [0; PARTS],
            parts: 0,
        }
    }

    /// The buffer the current part is appended to.
    #[inline]
    pub fn text(&mut self) -> &mut String {
        &mut self.text
    }

    /// Ends the current part where the buffer ends now.
    #[inline]
    pub fn end_part(&mut self) {
        // A change's text is far below 4 GiB (an item is at most 400 KB); past that, ends
        // are clamped, so parts would read back cut short or empty, never out of bounds.
        let end = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        if let Some(slot) = self.ends.get_mut(self.parts) {
            *slot = end;
            self.parts += 1;
        }
    }

    /// The text, every part ended.
    #[inline]
    pub fn finish(self) -> ChangeText {
        debug_assert_eq!(self.parts, PARTS, "every part of a change is ended");
        let text = ChangeText {
            text: self.text,
            ends: self.ends,
        };
        debug_assert!(
            [Some(text.keys()), text.new_image(), text.old_image()]
                .into_iter()
                .flatten()
                .all(|map| map.is_well_formed()),
            "{text:?}"
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn map(v: Value) -> AttributeMap {
        match v {
            Value::Object(m) => AttributeMap::from_map(&m),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn parts_read_back_as_given_and_absent_images_as_none() {
        let keys = map(json!({"pk": {"S": "a\"é"}}));
        let new_image = map(json!({"pk": {"S": "a\"é"}, "n": {"N": "1"}}));
        let old_image = map(json!({"pk": {"S": "a\"é"}, "n": {"N": "0"}}));
        for (new, old) in [
            (Some(&new_image), Some(&old_image)),
            (Some(&new_image), None),
            (None, Some(&old_image)),
            (None, None),
        ] {
            for event_id in ["", "0123456789abcdef0123456789abcdef"] {
                let text = ChangeText::new(event_id, &keys, new, old);
                assert_eq!(text.event_id(), event_id);
                assert_eq!(text.keys().as_str(), keys.as_str());
                assert_eq!(
                    text.new_image().map(|m| m.as_str()),
                    new.map(|m| m.as_str())
                );
                assert_eq!(
                    text.old_image().map(|m| m.as_str()),
                    old.map(|m| m.as_str())
                );
                let maps = [Some(&keys), new, old]
                    .into_iter()
                    .flatten()
                    .map(AttributeMap::as_str)
                    .collect::<String>();
                assert_eq!(text.maps(), maps);
            }
        }
    }

    #[test]
    fn a_writer_fills_the_parts_in_place_without_growing() {
        let mut writer = ChangeTextWriter::with_capacity(40);
        writer.text().push_str("id");
        writer.end_part();
        writer.text().push_str(r#"{"k":{"N":"1"}}"#);
        writer.end_part();
        writer.end_part();
        writer.text().push_str(r#"{"k":{"N":"2"}}"#);
        writer.end_part();
        let capacity = writer.text.capacity();
        let text = writer.finish();
        assert_eq!(text.text.capacity(), capacity);
        assert_eq!(text.event_id(), "id");
        assert_eq!(text.keys().as_str(), r#"{"k":{"N":"1"}}"#);
        assert_eq!(text.new_image(), None);
        assert_eq!(
            text.old_image().map(|m| m.to_map()),
            Some(
                json!({"k": {"N": "2"}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            )
        );
    }
}
