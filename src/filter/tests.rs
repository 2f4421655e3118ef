//! Table-driven tests of FilterCriteria: each operator matching and not, the record views
//! of both kinds, and every rejection with its message.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::model::{DynamodbChange, DynamodbEventName, RecordBody, SequenceNumber, StreamViewType};

pub(super) fn kinesis(data: &[u8]) -> StreamRecord {
    StreamRecord {
        sequence_number: SequenceNumber(
            "49590338271490256608559692538361571095921575989136588898".into(),
        ),
        approximate_arrival_ms: 1_545_084_650_987,
        body: RecordBody::Kinesis {
            partition_key: "user-17".into(),
            data: data.to_vec(),
        },
    }
}

pub(super) fn kinesis_json(data: Value) -> StreamRecord {
    kinesis(data.to_string().as_bytes())
}

fn map(v: Value) -> crate::model::AttributeMap {
    match v {
        Value::Object(m) => crate::model::AttributeMap::from_map(&m),
        _ => panic!("not an object: {v}"),
    }
}

pub(super) fn dynamodb(
    event_name: DynamodbEventName,
    view: StreamViewType,
    new_image: Option<Value>,
    old_image: Option<Value>,
) -> StreamRecord {
    StreamRecord {
        sequence_number: SequenceNumber("4421584500000000017450439091".into()),
        approximate_arrival_ms: 1_732_550_881_500,
        body: RecordBody::Dynamodb(DynamodbChange {
            text: crate::model::ChangeText::new(
                "c81e728d9d4c2f636f067f89cc14862c",
                &map(json!({"pk": {"S": "order#42"}})),
                new_image.map(map).as_ref(),
                old_image.map(map).as_ref(),
            ),
            event_name,
            size_bytes: 70,
            stream_view_type: view,
            ttl_deletion: false,
        }),
    }
}

pub(super) fn criteria(patterns: &[Value]) -> FilterCriteria {
    let texts: Vec<String> = patterns.iter().map(Value::to_string).collect();
    FilterCriteria::parse(&texts).unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

fn one(pattern: &Value) -> FilterCriteria {
    criteria(std::slice::from_ref(pattern))
}

/// Rows of (pattern on `data`'s field `x`, value of `x` or None for absent, expected).
pub(super) fn check_rows(rows: &[(Value, Option<Value>, bool)]) {
    for (leaf, x, expected) in rows {
        let filter = criteria(&[json!({"data": {"x": leaf}})]);
        let data = match x {
            Some(x) => json!({"x": x, "other": 1}),
            None => json!({"other": 1}),
        };
        assert_eq!(
            filter.keeps(&kinesis_json(data.clone())),
            *expected,
            "pattern {leaf} against data {data}"
        );
    }
}

#[test]
fn no_filters_keep_everything() {
    let none = FilterCriteria::default();
    assert!(none.is_empty());
    assert!(none.keeps(&kinesis(b"not json")));
    let parsed = FilterCriteria::parse(&[]).expect("no filters is valid");
    assert_eq!(parsed, none);
    assert!(!criteria(&[json!({"data": {"x": [1]}})]).is_empty());
}

#[test]
fn exact_values() {
    check_rows(&[
        (json!(["buy"]), Some(json!("buy")), true),
        (json!(["buy"]), Some(json!("Buy")), false),
        (json!(["buy"]), Some(json!("buyer")), false),
        (json!(["buy"]), None, false),
        (json!([true]), Some(json!(true)), true),
        (json!([true]), Some(json!("true")), false),
        (json!([false]), Some(json!(true)), false),
        // Numbers compare as JSON numbers of the same text, never as strings.
        (json!([5]), Some(json!(5)), true),
        (json!([5]), Some(json!("5")), false),
        (json!(["5"]), Some(json!(5)), false),
        (json!(["5"]), Some(json!("5")), true),
        (json!([5]), Some(json!(5.0)), false),
        (json!([5.5]), Some(json!(5.5)), true),
        (json!([-3]), Some(json!(-3)), true),
        // An object holds no value to compare.
        (json!(["buy"]), Some(json!({"S": "buy"})), false),
    ]);
}

#[test]
fn null_and_empty_string() {
    check_rows(&[
        (json!([null]), Some(Value::Null), true),
        (json!([null]), None, false),
        (json!([null]), Some(json!("")), false),
        (json!([null]), Some(json!("null")), false),
        (json!([""]), Some(json!("")), true),
        (json!([""]), Some(Value::Null), false),
        (json!([""]), None, false),
        (json!([""]), Some(json!(" ")), false),
    ]);
}

#[test]
fn prefix() {
    check_rows(&[
        (json!([{"prefix": "ord"}]), Some(json!("order")), true),
        (json!([{"prefix": "ord"}]), Some(json!("ord")), true),
        (json!([{"prefix": "ord"}]), Some(json!("Order")), false),
        (json!([{"prefix": "ord"}]), Some(json!("or")), false),
        (json!([{"prefix": "12"}]), Some(json!(123)), false),
        (json!([{"prefix": "ord"}]), None, false),
        (json!([{"prefix": ""}]), Some(json!("anything")), true),
    ]);
}

#[test]
fn anything_but() {
    check_rows(&[
        (json!([{"anything-but": "sell"}]), Some(json!("buy")), true),
        (
            json!([{"anything-but": "sell"}]),
            Some(json!("sell")),
            false,
        ),
        (
            json!([{"anything-but": ["a", "b"]}]),
            Some(json!("c")),
            true,
        ),
        (
            json!([{"anything-but": ["a", "b"]}]),
            Some(json!("b")),
            false,
        ),
        (json!([{"anything-but": 5}]), Some(json!(5)), false),
        (json!([{"anything-but": 5}]), Some(json!(6)), true),
        (json!([{"anything-but": 5}]), Some(json!("5")), true),
        (json!([{"anything-but": [1, "x"]}]), Some(json!(1)), false),
        (json!([{"anything-but": "sell"}]), Some(Value::Null), true),
        // A missing key is not "anything": nothing is there.
        (json!([{"anything-but": "sell"}]), None, false),
    ]);
}

#[test]
fn numeric_comparisons_and_ranges() {
    check_rows(&[
        (json!([{"numeric": ["=", 100]}]), Some(json!(100)), true),
        (json!([{"numeric": ["=", 100]}]), Some(json!(100.0)), true),
        (json!([{"numeric": ["=", 100]}]), Some(json!(101)), false),
        (json!([{"numeric": [">", 0]}]), Some(json!(0)), false),
        (json!([{"numeric": [">", 0]}]), Some(json!(0.001)), true),
        (json!([{"numeric": [">=", 0]}]), Some(json!(0)), true),
        (json!([{"numeric": ["<", 0]}]), Some(json!(0)), false),
        (json!([{"numeric": ["<", 0]}]), Some(json!(-1)), true),
        (json!([{"numeric": ["<=", 0]}]), Some(json!(0)), true),
        (
            json!([{"numeric": [">", 0, "<=", 5]}]),
            Some(json!(0)),
            false,
        ),
        (
            json!([{"numeric": [">", 0, "<=", 5]}]),
            Some(json!(1)),
            true,
        ),
        (
            json!([{"numeric": [">", 0, "<=", 5]}]),
            Some(json!(5)),
            true,
        ),
        (
            json!([{"numeric": [">", 0, "<=", 5]}]),
            Some(json!(5.0001)),
            false,
        ),
        (
            json!([{"numeric": [">=", 10, "<", 20]}]),
            Some(json!(10)),
            true,
        ),
        (
            json!([{"numeric": [">=", 10, "<", 20]}]),
            Some(json!(20)),
            false,
        ),
        // Only JSON numbers: a string of digits is not a number.
        (json!([{"numeric": [">", 0]}]), Some(json!("5")), false),
        (json!([{"numeric": [">", 0]}]), Some(json!(true)), false),
        (json!([{"numeric": [">", 0]}]), None, false),
    ]);
}

#[test]
fn exists() {
    check_rows(&[
        (json!([{"exists": true}]), Some(json!("x")), true),
        (json!([{"exists": true}]), Some(Value::Null), true),
        (json!([{"exists": true}]), Some(json!(0)), true),
        (json!([{"exists": true}]), None, false),
        // Only values count: an object or an empty list holds none.
        (json!([{"exists": true}]), Some(json!({"a": 1})), false),
        (json!([{"exists": true}]), Some(json!([])), false),
        (json!([{"exists": false}]), None, true),
        (json!([{"exists": false}]), Some(json!("x")), false),
        (json!([{"exists": false}]), Some(Value::Null), false),
        (json!([{"exists": false}]), Some(json!({"a": 1})), true),
    ]);
    // exists: false below a missing parent matches.
    let filter = criteria(&[json!({"data": {"a": {"b": [{"exists": false}]}}})]);
    assert!(filter.keeps(&kinesis_json(json!({"other": 1}))));
    assert!(filter.keeps(&kinesis_json(json!({"a": {"c": 1}}))));
    assert!(!filter.keeps(&kinesis_json(json!({"a": {"b": 1}}))));
}

#[test]
fn lists_are_or() {
    check_rows(&[
        (json!(["buy", "sell"]), Some(json!("sell")), true),
        (json!(["buy", "sell"]), Some(json!("hold")), false),
        (json!(["buy", {"prefix": "ho"}]), Some(json!("hold")), true),
        (
            json!([{"numeric": ["<", 0]}, {"numeric": [">", 10]}]),
            Some(json!(5)),
            false,
        ),
        (
            json!([{"numeric": ["<", 0]}, {"numeric": [">", 10]}]),
            Some(json!(11)),
            true,
        ),
        (json!([{"exists": false}, "x"]), None, true),
        (json!([{"exists": false}, "x"]), Some(json!("x")), true),
        (json!([{"exists": false}, "x"]), Some(json!("y")), false),
    ]);
}

#[test]
fn arrays_in_the_record_match_if_any_element_does() {
    check_rows(&[
        (json!(["b"]), Some(json!(["a", "b"])), true),
        (json!(["c"]), Some(json!(["a", "b"])), false),
        (json!([{"numeric": [">", 2]}]), Some(json!([1, 3])), true),
        (
            json!([{"anything-but": "a"}]),
            Some(json!(["a", "b"])),
            true,
        ),
        (json!([{"anything-but": "a"}]), Some(json!(["a"])), false),
        (json!(["b"]), Some(json!([["a"], ["b"]])), true),
    ]);
    // A nested pattern matches an array of objects if one element matches all its keys.
    let filter = criteria(&[json!({"data": {"items": {"sku": ["A"], "qty": [2]}}})]);
    assert!(filter.keeps(&kinesis_json(
        json!({"items": [{"sku": "B", "qty": 2}, {"sku": "A", "qty": 2}]})
    )));
    assert!(!filter.keeps(&kinesis_json(
        json!({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]})
    )));
}

#[test]
fn nested_keys_are_and() {
    let filter = criteria(&[json!({
        "data": {"order": {"type": ["buy"], "quantity": [{"numeric": [">=", 100]}]}}
    })]);
    let rows = [
        (json!({"order": {"type": "buy", "quantity": 100}}), true),
        (json!({"order": {"type": "buy", "quantity": 99}}), false),
        (json!({"order": {"type": "sell", "quantity": 1000}}), false),
        (json!({"order": {"type": "buy"}}), false),
        (json!({"type": "buy", "quantity": 100}), false),
    ];
    for (data, expected) in rows {
        assert_eq!(
            filter.keeps(&kinesis_json(data.clone())),
            expected,
            "{data}"
        );
    }
}

#[test]
fn filters_are_ored() {
    let filter = criteria(&[
        json!({"data": {"kind": ["a"]}}),
        json!({"data": {"kind": ["b"]}}),
    ]);
    assert!(filter.keeps(&kinesis_json(json!({"kind": "a"}))));
    assert!(filter.keeps(&kinesis_json(json!({"kind": "b"}))));
    assert!(!filter.keeps(&kinesis_json(json!({"kind": "c"}))));
}

#[test]
fn kinesis_data_that_is_not_json_matches_no_pattern_on_data() {
    for data in [&b"plain text"[..], b"{\"x\": 1", b"\xff\xfe", b""] {
        let record = kinesis(data);
        for pattern in [
            json!({"data": {"x": [{"exists": false}]}}),
            json!({"data": [{"exists": false}]}),
            json!({"data": {"x": [1]}}),
        ] {
            assert!(!one(&pattern).keeps(&record), "{pattern} {data:?}");
        }
        // A pattern on the metadata alone still applies; OR with it keeps the record.
        let on_key = json!({"partitionKey": ["user-17"]});
        assert!(one(&on_key).keeps(&record));
        assert!(criteria(&[json!({"data": {"x": [1]}}), on_key]).keeps(&record));
    }
    // Any JSON text is data, a scalar too.
    assert!(criteria(&[json!({"data": [5]})]).keeps(&kinesis(b" 5 ")));
}

#[test]
fn kinesis_metadata_fields() {
    let record = kinesis_json(json!({"x": 1}));
    let rows = [
        (json!({"partitionKey": ["user-17"]}), true),
        (json!({"partitionKey": [{"prefix": "user-"}]}), true),
        (json!({"partitionKey": ["user-1"]}), false),
        (
            json!({"sequenceNumber": ["49590338271490256608559692538361571095921575989136588898"]}),
            true,
        ),
        (json!({"kinesisSchemaVersion": ["1.0"]}), true),
        (
            json!({"approximateArrivalTimestamp": [{"numeric": [">", 1_545_084_650]}]}),
            true,
        ),
        (
            json!({"approximateArrivalTimestamp": [1_545_084_650.987]}),
            true,
        ),
        // The record's fields are at the top, not under "kinesis"; the mapping's fields
        // (eventSourceARN, awsRegion, ...) are not shown.
        (json!({"kinesis": {"partitionKey": ["user-17"]}}), false),
        (json!({"eventSourceARN": [{"exists": true}]}), false),
    ];
    for (pattern, expected) in rows {
        assert_eq!(one(&pattern).keeps(&record), expected, "{pattern}");
    }
}

#[test]
fn dynamodb_patterns() {
    use DynamodbEventName::*;
    use StreamViewType::*;
    let active =
        Some(json!({"pk": {"S": "order#42"}, "status": {"S": "active"}, "total": {"N": "19.5"}}));
    let closed = Some(json!({"pk": {"S": "order#42"}, "status": {"S": "closed"}}));
    let insert = dynamodb(Insert, NewAndOldImages, active.clone(), None);
    let modify = dynamodb(Modify, NewAndOldImages, closed.clone(), active.clone());
    let remove = dynamodb(Remove, NewAndOldImages, None, closed.clone());
    // A source that filled in a NewImage the view type does not carry: not shown.
    let keys_only = dynamodb(Insert, KeysOnly, active.clone(), None);

    let status_active = json!({"dynamodb": {"NewImage": {"status": {"S": ["active"]}}}});
    let rows = [
        (json!({"eventName": ["INSERT"]}), [true, false, false, true]),
        (
            json!({"eventName": ["INSERT", "MODIFY"]}),
            [true, true, false, true],
        ),
        (
            json!({"eventName": [{"anything-but": "REMOVE"}]}),
            [true, true, false, true],
        ),
        (status_active.clone(), [true, false, false, false]),
        (
            json!({"dynamodb": {"OldImage": {"status": {"S": ["active"]}}}}),
            [false, true, false, false],
        ),
        (
            json!({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "order#"}]}}}}),
            [true, true, true, true],
        ),
        (
            json!({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["closed"]}}}}),
            [false, true, false, false],
        ),
        (
            json!({"dynamodb": {"NewImage": {"total": {"N": ["19.5"]}}}}),
            [true, false, false, false],
        ),
        // DynamoDB numbers are strings in DynamoDB JSON: numeric does not apply to them.
        (
            json!({"dynamodb": {"NewImage": {"total": {"N": [{"numeric": [">", 0]}]}}}}),
            [false, false, false, false],
        ),
        // The attribute value is an object: only its type key holds a value.
        (
            json!({"dynamodb": {"NewImage": {"status": [{"exists": true}]}}}),
            [false, false, false, false],
        ),
        (
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"exists": true}]}}}}),
            [true, true, false, false],
        ),
        (
            json!({"dynamodb": {"OldImage": {"status": {"S": [{"exists": false}]}}}}),
            [true, false, false, true],
        ),
        (
            json!({"dynamodb": {"SizeBytes": [70]}}),
            [true, true, true, true],
        ),
        (
            json!({"dynamodb": {"StreamViewType": ["KEYS_ONLY"]}}),
            [false, false, false, true],
        ),
        (
            json!({"dynamodb": {"ApproximateCreationDateTime": [{"numeric": ["=", 1_732_550_881]}]}}),
            [true, true, true, true],
        ),
        (
            json!({"dynamodb": {"SequenceNumber": ["4421584500000000017450439091"]}}),
            [true, true, true, true],
        ),
        (
            json!({"eventSource": ["aws:dynamodb"], "eventVersion": ["1.1"]}),
            [true; 4],
        ),
        (json!({"eventID": [{"prefix": "c81e"}]}), [true; 4]),
        // A Kinesis-style pattern on data never matches a DynamoDB record.
        (json!({"data": {"status": ["active"]}}), [false; 4]),
        (json!({"userIdentity": {"type": ["Service"]}}), [false; 4]),
    ];
    let records = [&insert, &modify, &remove, &keys_only];
    for (pattern, expected) in rows {
        let filter = one(&pattern);
        let got: Vec<bool> = records.iter().map(|r| filter.keeps(r)).collect();
        assert_eq!(
            got, expected,
            "{pattern} (insert, modify, remove, keys_only)"
        );
    }

    let mut ttl = dynamodb(Remove, NewAndOldImages, None, closed);
    if let RecordBody::Dynamodb(change) = &mut ttl.body {
        change.ttl_deletion = true;
    }
    let by_ttl = criteria(&[
        json!({"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}),
    ]);
    assert!(by_ttl.keeps(&ttl));
    assert!(!by_ttl.keeps(&remove));
}

/// Each rejection, with the position of the filter and the reason.
#[test]
fn invalid_patterns_are_refused_with_the_reason() {
    let rows: &[(&str, &str)] = &[
        ("", "not JSON: EOF while parsing a value at line 1 column 0"),
        (
            "{",
            "not JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("[1]", "not a JSON object"),
        ("\"x\"", "not a JSON object"),
        ("{}", "the pattern is empty ({})"),
        (
            r#"{"a": "x"}"#,
            r#""a": "x" must be in a list (["x"]) or an object"#,
        ),
        (
            r#"{"a": 5}"#,
            r#""a": 5 must be in a list ([5]) or an object"#,
        ),
        (r#"{"a": {}}"#, r#""a": an empty object matches nothing"#),
        (
            r#"{"a": {"b": []}}"#,
            r#""a.b": an empty list matches nothing"#,
        ),
        (
            r#"{"a": [["x"]]}"#,
            r#""a": a list inside a list is not allowed"#,
        ),
        (
            r#"{"a": [{"prefix": "x", "exists": true}]}"#,
            r#""a": an operator object must have exactly one key, got {"exists":true,"prefix":"x"}"#,
        ),
        (
            r#"{"a": [{}]}"#,
            r#""a": an operator object must have exactly one key, got {}"#,
        ),
        (
            r#"{"a": [{"prefix": 5}]}"#,
            r#""a": prefix takes a string, got 5 (prefix with an operator is not supported)"#,
        ),
        (
            r#"{"a": [{"exists": "yes"}]}"#,
            r#""a": exists takes true or false, got "yes""#,
        ),
        (
            r#"{"a": [{"anything-but": {"prefix": "x"}}]}"#,
            r#""a": anything-but with an operator ({"prefix":"x"}) is not supported"#,
        ),
        (
            r#"{"a": [{"anything-but": []}]}"#,
            r#""a": anything-but takes a non-empty list"#,
        ),
        (
            r#"{"a": [{"anything-but": [true]}]}"#,
            r#""a": anything-but lists only strings and numbers, got true"#,
        ),
        (
            r#"{"a": [{"anything-but": null}]}"#,
            r#""a": anything-but takes a string, a number or a list of them, got null"#,
        ),
        (
            r#"{"a": [{"numeric": [">", 5, "<"]}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got [">",5,"<"]"#,
        ),
        (
            r#"{"a": [{"numeric": ["==", 5]}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got ["==",5]"#,
        ),
        (
            r#"{"a": [{"numeric": [">", "5"]}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got [">","5"]"#,
        ),
        (
            r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got ["<",5,">",1]"#,
        ),
        (
            r#"{"a": [{"numeric": ["=", 5, "<", 9]}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got ["=",5,"<",9]"#,
        ),
        (
            r#"{"a": [{"numeric": 5}]}"#,
            r#""a": numeric takes ["=", n], [op, n] or [">"|">=", low, "<"|"<=", high], got 5"#,
        ),
        (
            r#"{"a": [{"numeric": [">", 5, "<", 5]}]}"#,
            r#""a": numeric range: the lower bound 5 must be below the upper bound 5"#,
        ),
    ];
    assert_refused(rows);
}

/// Each pattern, given as the second filter, is refused with the reason.
pub(super) fn assert_refused(rows: &[(&str, &str)]) {
    for (text, reason) in rows {
        let err = FilterCriteria::parse(&[r#"{"ok": ["x"]}"#.to_string(), text.to_string()])
            .expect_err(text);
        assert_eq!(
            err.to_string(),
            format!("filter 2: Invalid filter pattern definition. ({reason})"),
            "{text}"
        );
    }
}

#[test]
fn limits() {
    let ok = r#"{"a": ["x"]}"#.to_string();
    let five = vec![ok.clone(); MAX_FILTERS];
    assert!(FilterCriteria::parse(&five).is_ok());
    let six = vec![ok.clone(); MAX_FILTERS + 1];
    assert_eq!(
        FilterCriteria::parse(&six).expect_err("six").to_string(),
        "6 filters: at most 5 allowed"
    );
    // 4096 characters (not bytes) is the longest.
    let padded = |chars: usize| {
        let head = r#"{"a": [""#;
        let tail = r#""]}"#;
        let fill = chars - head.len() - tail.len();
        format!("{head}{}{tail}", "é".repeat(fill))
    };
    assert_eq!(padded(MAX_FILTER_PATTERN_CHARS).chars().count(), 4096);
    assert!(FilterCriteria::parse(&[padded(MAX_FILTER_PATTERN_CHARS)]).is_ok());
    assert_eq!(
        FilterCriteria::parse(&[padded(MAX_FILTER_PATTERN_CHARS + 1)])
            .expect_err("too long")
            .to_string(),
        "filter 1: Invalid filter pattern definition. (longer than 4096 characters)"
    );
}

#[test]
fn parse_all_reports_every_problem() {
    let patterns: Vec<String> = ["{}", r#"{"a": ["x"]}"#, "nope", "{}", "{}", "{}"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let errors = FilterCriteria::parse_all(&patterns).expect_err("invalid");
    let positions: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(positions.len(), 6, "{positions:?}");
    assert_eq!(positions[0], "6 filters: at most 5 allowed");
    assert!(positions[1].starts_with("filter 1: "), "{positions:?}");
    assert!(positions[2].starts_with("filter 3: "), "{positions:?}");
    assert!(positions[5].starts_with("filter 6: "), "{positions:?}");
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = FilterCriteria::parse(&[text]);
    }

    #[test]
    fn parse_never_panics_on_pattern_like_text(
        text in r#"[{}\[\]":, 0-9a-z<>=.\-]{0,120}"#,
        data in r#"[{}\[\]":, 0-9a-z.\-]{0,60}"#,
    ) {
        if let Ok(filter) = FilterCriteria::parse(&[text]) {
            let _ = filter.keeps(&kinesis(data.as_bytes()));
        }
    }
}
