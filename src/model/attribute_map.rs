//! `AttributeMap`: a DynamoDB attribute map (a change's `Keys`, `NewImage`, `OldImage`)
//! held as its DynamoDB JSON text, exactly as the event carries it; `AttributeMapRef`: the
//! same text borrowed from the change that holds it (`ChangeText`).
//!
//! Why text and not a `serde_json::Map`: encoding an event is the simulator's hot path, and
//! an image held as a tree costs a dozen allocations to build and a full serialisation on
//! every event; held as text, building it is one buffer written by the byte writers and
//! encoding it is a copy. The few readers that walk an image (filters, `show`, tests)
//! parse it on demand.
//!
//! The text is always one compact JSON object with its keys sorted at every level (what
//! serde_json writes for a `Map`, so events are byte-identical to a tree's serialisation).
//! Outside this crate it can only be made from a `Map` (`from_map`); the
//! crate's own writers (the simulated world, the DynamoDB Streams source) build it with
//! `from_written`, which trusts them to produce that form. An owned map is what a change
//! is built from; a change hands its maps out as `AttributeMapRef`s, which only it makes.

use std::fmt;

use serde_json::{Map, Value};

/// A DynamoDB attribute map as compact DynamoDB JSON, keys sorted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AttributeMap(String);

impl AttributeMap {
    /// The map's JSON (serde_json sorts a `Map`'s keys, so it is in the held form).
    pub fn from_map(map: &Map<String, Value>) -> AttributeMap {
        AttributeMap(Value::Object(map.clone()).to_string())
    }

    /// JSON one of the crate's writers produced in the held form (compact, keys sorted).
    pub(crate) fn from_written(text: String) -> AttributeMap {
        debug_assert!(AttributeMapRef(&text).is_well_formed(), "{text}");
        AttributeMap(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AttributeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An attribute map's JSON borrowed from the change holding it, in `AttributeMap`'s form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeMapRef<'a>(&'a str);

impl<'a> AttributeMapRef<'a> {
    /// Text the change's writer holds in the map form (see `ChangeText`).
    pub(super) fn trusted(text: &'a str) -> AttributeMapRef<'a> {
        AttributeMapRef(text)
    }

    pub fn as_str(self) -> &'a str {
        self.0
    }

    /// The map as a tree, for the readers that walk it.
    pub fn to_map(self) -> Map<String, Value> {
        // Always an object by construction; an empty map if that were ever not so.
        serde_json::from_str(self.0).unwrap_or_default()
    }

    /// Whether the text parses as a JSON object (for the writers' debug checks).
    pub(super) fn is_well_formed(self) -> bool {
        serde_json::from_str::<Map<String, Value>>(self.0).is_ok()
    }
}

impl fmt::Debug for AttributeMapRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for AttributeMapRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_map_is_held_as_compact_json_with_sorted_keys() {
        let Value::Object(map) =
            json!({"z": {"N": "1"}, "a": {"M": {"y": {"S": "q\""}, "b": {"NULL": true}}}})
        else {
            unreachable!("an object literal")
        };
        let held = AttributeMap::from_map(&map);
        assert_eq!(
            held.as_str(),
            r#"{"a":{"M":{"b":{"NULL":true},"y":{"S":"q\""}}},"z":{"N":"1"}}"#
        );
        assert_eq!(AttributeMapRef::trusted(held.as_str()).to_map(), map);
    }
}
