//! DynamoDB Streams `AttributeValue`s -> the DynamoDB JSON text a `DynamodbChange` holds
//! (`AttributeMap`), written with the event's byte writers.
//!
//! The SDK hands GetRecords' attribute values over as a tree; this writes them once, in
//! the form the event carries (compact, map keys sorted, as serde_json writes a map), so
//! the engine copies the text into every event instead of serialising a tree each time.
//! `{"S":..}`, `{"N":..}`, `{"B": base64}`, `{"SS":[..]}`, `{"NS":[..]}`,
//! `{"BS":[base64..]}`, `{"M":{..}}`, `{"L":[..]}`, `{"NULL":b}`, `{"BOOL":b}`. A value of a
//! type this SDK does not know (`AttributeValue::Unknown`, anywhere inside) makes the whole
//! map `None`: the source refuses such a record rather than pass on part of it.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::AttributeValue;
use serde_json::Value;

use crate::event::{write_base64, write_str};
use crate::model::AttributeMap;

/// The map as DynamoDB JSON text; `None` if a value has an unknown type.
pub(crate) fn attribute_map(map: &HashMap<String, AttributeValue>) -> Option<AttributeMap> {
    let mut out = Vec::with_capacity(64 * map.len() + 2);
    write_map(&mut out, map)?;
    // The writers write UTF-8 (escaped strings, base64, literals); lossy only so that a
    // writer's bug cannot panic.
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Some(AttributeMap::from_written(text))
}

/// One attribute value as DynamoDB JSON; JSON `null` for a value of an unknown type.
pub fn attribute_json(value: &AttributeValue) -> Value {
    let mut out = Vec::new();
    match write_value(&mut out, value) {
        Some(()) => serde_json::from_slice(&out).unwrap_or(Value::Null),
        None => Value::Null,
    }
}

fn write_map(out: &mut Vec<u8>, map: &HashMap<String, AttributeValue>) -> Option<()> {
    let mut sorted: Vec<(&String, &AttributeValue)> = map.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, value)?;
    }
    out.push(b'}');
    Some(())
}

fn write_value(out: &mut Vec<u8>, value: &AttributeValue) -> Option<()> {
    match value {
        AttributeValue::S(s) => tagged(out, "S", |out| write_str(out, s)),
        AttributeValue::N(n) => tagged(out, "N", |out| write_str(out, n)),
        AttributeValue::B(b) => tagged(out, "B", |out| write_b64_str(out, b.as_ref())),
        AttributeValue::Ss(ss) => tagged(out, "SS", |out| {
            write_list(out, ss, |out, s| write_str(out, s))
        }),
        AttributeValue::Ns(ns) => tagged(out, "NS", |out| {
            write_list(out, ns, |out, n| write_str(out, n))
        }),
        AttributeValue::Bs(bs) => tagged(out, "BS", |out| {
            write_list(out, bs, |out, b| write_b64_str(out, b.as_ref()))
        }),
        AttributeValue::Null(b) => tagged(out, "NULL", |out| write_bool(out, *b)),
        AttributeValue::Bool(b) => tagged(out, "BOOL", |out| write_bool(out, *b)),
        AttributeValue::M(m) => {
            out.extend_from_slice(b"{\"M\":");
            write_map(out, m)?;
            out.push(b'}');
        }
        AttributeValue::L(items) => {
            out.extend_from_slice(b"{\"L\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.extend_from_slice(b"]}");
        }
        _ => return None,
    }
    Some(())
}

/// `{"TYPE":<what write writes>}`.
fn tagged(out: &mut Vec<u8>, tag: &str, write: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    write(out);
    out.push(b'}');
}

fn write_list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn write_b64_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    write_base64(out, bytes);
    out.push(b'"');
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::Blob;
    use serde_json::json;

    /// What the source wrote before: the values as serde_json trees, keys sorted.
    fn tree(value: &AttributeValue) -> Value {
        let b64 = |bytes: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        match value {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n }),
            AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
            AttributeValue::Ss(ss) => json!({ "SS": ss }),
            AttributeValue::Ns(ns) => json!({ "NS": ns }),
            AttributeValue::Bs(bs) => {
                json!({ "BS": bs.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
            }
            AttributeValue::M(m) => {
                let map: serde_json::Map<String, Value> =
                    m.iter().map(|(k, v)| (k.clone(), tree(v))).collect();
                json!({ "M": map })
            }
            AttributeValue::L(l) => json!({ "L": l.iter().map(tree).collect::<Vec<_>>() }),
            AttributeValue::Null(n) => json!({ "NULL": n }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            _ => Value::Null,
        }
    }

    fn item() -> HashMap<String, AttributeValue> {
        let nested = HashMap::from([
            ("z\"q".to_string(), AttributeValue::N("1".into())),
            ("a\u{1}".to_string(), AttributeValue::Bool(true)),
            ("é".to_string(), AttributeValue::Null(true)),
        ]);
        (0..30)
            .map(|i| {
                let value = match i % 10 {
                    0 => AttributeValue::S(format!("text {i} ü \"q\" \\ \n\u{8}")),
                    1 => AttributeValue::N(format!("-{i}.5e3")),
                    2 => AttributeValue::B(Blob::new(vec![0, 1, 2, 255, i as u8])),
                    3 => AttributeValue::Ss(vec!["gift".into(), format!("r\"{i}")]),
                    4 => AttributeValue::Ns(vec!["1".into(), "2.5".into()]),
                    5 => AttributeValue::Bs(vec![Blob::new(b"hi".to_vec()), Blob::new(Vec::new())]),
                    6 => AttributeValue::M(nested.clone()),
                    7 => AttributeValue::L(vec![
                        AttributeValue::S("x".into()),
                        AttributeValue::M(nested.clone()),
                        AttributeValue::L(Vec::new()),
                    ]),
                    8 => AttributeValue::Null(true),
                    _ => AttributeValue::Bool(i % 2 == 0),
                };
                (format!("k{}", 29 - i), value)
            })
            .collect()
    }

    #[test]
    fn a_map_is_written_byte_for_byte_as_serde_json_writes_its_tree() {
        let item = item();
        let expected: serde_json::Map<String, Value> =
            item.iter().map(|(k, v)| (k.clone(), tree(v))).collect();
        let held = attribute_map(&item).expect("known types");
        assert_eq!(held.as_str(), Value::Object(expected).to_string());
        assert_eq!(
            attribute_map(&HashMap::new()).expect("empty").as_str(),
            "{}"
        );
    }

    #[test]
    fn one_value_reads_back_as_its_dynamodb_json() {
        assert_eq!(
            attribute_json(&AttributeValue::S("s".into())),
            json!({"S": "s"})
        );
        let list = AttributeValue::L(vec![AttributeValue::Bool(false)]);
        assert_eq!(attribute_json(&list), json!({"L": [{"BOOL": false}]}));
    }
}
