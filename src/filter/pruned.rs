//! Parsing Kinesis data into only the parts the filters address.
//!
//! Building a whole `serde_json::Value` of every record's data (a map and a string per
//! field) was most of the cost of a filter on `data`. [`Wanted`] is the union of the keys
//! the filters walk below `data`; the parse keeps those and skips the rest without
//! allocating, while still checking that the whole data is JSON (a record whose data is
//! not JSON matches no pattern on `data`). What is kept answers every pattern exactly as
//! the full value would: arrays keep their elements (so "any element" still holds), a
//! scalar where only keys are walked becomes `null` (neither has keys), an object where
//! only values are compared becomes `{}` (neither holds a value).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::pattern::FieldPattern;

/// What the filters need at one position of the data.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Wanted {
    /// A leaf list is matched here: keep scalars.
    leaf: bool,
    /// Keys walked below this position.
    children: Vec<(String, Wanted)>,
}

impl Wanted {
    /// Adds what a pattern field needs at this position.
    pub(crate) fn add(&mut self, field: &FieldPattern) {
        match field {
            FieldPattern::Leaf(_) => self.leaf = true,
            FieldPattern::Object(object) => object.each_field(&mut |key, inner| match self
                .children
                .iter_mut()
                .find(|(k, _)| k == key)
            {
                Some((_, wanted)) => wanted.add(inner),
                None => {
                    let mut wanted = Wanted::default();
                    wanted.add(inner);
                    self.children.push((key.to_string(), wanted));
                }
            }),
        }
    }

    /// The wanted parts of `data`; `None` when `data` is not JSON (UTF-8 included).
    pub(crate) fn parse(&self, data: &[u8]) -> Option<Value> {
        let text = std::str::from_utf8(data).ok()?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = Seed(self).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(value)
    }
}

struct Seed<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(if self.0.leaf {
            Value::String(v.to_owned())
        } else {
            Value::Null
        })
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(index) = map.next_key_seed(KeySeed(&self.0.children))? {
            match index {
                Some(i) => {
                    let (key, wanted) = &self.0.children[i];
                    let value = map.next_value_seed(Seed(wanted))?;
                    kept.insert(key.clone(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// Reads a key without keeping it: its index among the wanted keys, if it is one.
struct KeySeed<'w>(&'w [(String, Wanted)]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|(key, _)| key == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::pattern;
    use serde_json::json;

    fn wanted(patterns: &[Value]) -> Wanted {
        let mut wanted = Wanted::default();
        for p in patterns {
            let compiled = pattern::parse(&p.to_string()).expect("valid");
            compiled.each_field(&mut |key, field| {
                if key == "data" {
                    wanted.add(field);
                }
            });
        }
        wanted
    }

    #[test]
    fn keeps_only_what_the_filters_walk() {
        let w = wanted(&[
            json!({"data": {"a": ["x"], "b": {"c": [1]}}}),
            json!({"data": {"b": [{"exists": true}], "d": {"e": [true]}}}),
        ]);
        let data = json!({
            "a": ["x", {"deep": "gone"}, "y"],
            "b": {"c": 1, "skip": "me", "other": [1, 2]},
            "d": [{"e": true, "f": "gone"}, "scalar"],
            "unwanted": {"big": "object", "list": [1, 2, 3]}
        });
        assert_eq!(
            w.parse(data.to_string().as_bytes()),
            Some(json!({
                "a": ["x", {}, "y"],
                "b": {"c": 1},
                "d": [{"e": true}, null]
            }))
        );
    }

    #[test]
    fn a_leaf_on_data_itself_keeps_scalars() {
        let w = wanted(&[json!({"data": [5]})]);
        assert_eq!(w.parse(b"5"), Some(json!(5)));
        assert_eq!(w.parse(b"\"s\""), Some(json!("s")));
        assert_eq!(w.parse(b"{\"k\": 1}"), Some(json!({})));
    }

    #[test]
    fn anything_that_is_not_json_is_none_even_in_skipped_parts() {
        let w = wanted(&[json!({"data": {"a": ["x"]}})]);
        for bad in [
            &b"not json"[..],
            b"{\"a\": \"x\"",
            b"{\"a\": \"x\"} trailing",
            b"{\"skipped\": \"\xff\", \"a\": \"x\"}",
            b"{\"skipped\": [1, }, \"a\": \"x\"}",
            b"{\"skipped\": \"bad \\q escape\", \"a\": \"x\"}",
            b"",
        ] {
            assert_eq!(w.parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            w.parse(b" {\"a\": \"x\", \"skipped\": \"\\u00e9\"} "),
            Some(json!({"a": "x"}))
        );
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let w = wanted(&[json!({"data": {"é": ["x"]}})]);
        assert_eq!(w.parse(br#"{"\u00e9": "x"}"#), Some(json!({"é": "x"})));
    }
}
