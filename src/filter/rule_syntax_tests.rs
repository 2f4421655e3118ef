//! Every row of Lambda's filter rule syntax table (docs.aws.amazon.com/lambda/latest/dg/
//! invocation-eventfiltering.html, "Filter rule syntax"), each with a record it keeps and
//! one it drops, on Kinesis `data` and on a DynamoDB `NewImage`; then the edges of the
//! operators issue 15 added (`suffix`, `equals-ignore-case`, `$or`).

use serde_json::{json, Value};

use super::tests::{assert_refused, check_rows, criteria, dynamodb, kinesis, kinesis_json};
use crate::model::{DynamodbEventName, StreamViewType};

/// One row of the table: the pattern below `data` and the data it keeps and drops; the
/// same below `dynamodb.NewImage` in DynamoDB JSON, where the row applies to an image.
struct Row {
    operator: &'static str,
    data_pattern: Value,
    data_kept: Value,
    data_dropped: Value,
    /// (pattern below NewImage, image kept, image dropped)
    image: Option<(Value, Value, Value)>,
}

fn rows() -> Vec<Row> {
    let mut rows = value_rows();
    rows.extend(presence_and_string_rows());
    rows
}

fn s(value: &str) -> Value {
    json!({"S": value})
}

/// Null to Numeric (range): the rows on a value.
fn value_rows() -> Vec<Row> {
    vec![
        Row {
            operator: "Null",
            data_pattern: json!({"UserID": [null]}),
            data_kept: json!({"UserID": null}),
            data_dropped: json!({"UserID": "u-1"}),
            // DynamoDB JSON has no null scalar: a NULL attribute is {"NULL": true}.
            image: None,
        },
        Row {
            operator: "Empty",
            data_pattern: json!({"LastName": [""]}),
            data_kept: json!({"LastName": ""}),
            data_dropped: json!({"LastName": "Doe"}),
            image: Some((
                json!({"LastName": {"S": [""]}}),
                json!({"LastName": s("")}),
                json!({"LastName": s("Doe")}),
            )),
        },
        Row {
            operator: "Equals",
            data_pattern: json!({"Name": ["Alice"]}),
            data_kept: json!({"Name": "Alice"}),
            data_dropped: json!({"Name": "alice"}),
            image: Some((
                json!({"Name": {"S": ["Alice"]}}),
                json!({"Name": s("Alice")}),
                json!({"Name": s("alice")}),
            )),
        },
        Row {
            operator: "Equals (ignore case)",
            data_pattern: json!({"Name": [{"equals-ignore-case": "alice"}]}),
            data_kept: json!({"Name": "ALICE"}),
            data_dropped: json!({"Name": "Alicia"}),
            image: Some((
                json!({"Name": {"S": [{"equals-ignore-case": "alice"}]}}),
                json!({"Name": s("aLiCe")}),
                json!({"Name": s("Bob")}),
            )),
        },
        Row {
            operator: "And",
            data_pattern: json!({"Location": ["New York"], "Day": ["Monday"]}),
            data_kept: json!({"Location": "New York", "Day": "Monday"}),
            data_dropped: json!({"Location": "New York", "Day": "Tuesday"}),
            image: Some((
                json!({"Location": {"S": ["New York"]}, "Day": {"S": ["Monday"]}}),
                json!({"Location": s("New York"), "Day": s("Monday")}),
                json!({"Location": s("Boston"), "Day": s("Monday")}),
            )),
        },
        Row {
            operator: "Or",
            data_pattern: json!({"PaymentType": ["Credit", "Debit"]}),
            data_kept: json!({"PaymentType": "Debit"}),
            data_dropped: json!({"PaymentType": "Cash"}),
            image: Some((
                json!({"PaymentType": {"S": ["Credit", "Debit"]}}),
                json!({"PaymentType": s("Credit")}),
                json!({"PaymentType": s("Cash")}),
            )),
        },
        Row {
            operator: "Or (multiple fields)",
            data_pattern: json!({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}),
            data_kept: json!({"Location": "Boston", "Day": "Monday"}),
            data_dropped: json!({"Location": "Boston", "Day": "Tuesday"}),
            image: Some((
                json!({"$or": [{"Location": {"S": ["New York"]}}, {"Day": {"S": ["Monday"]}}]}),
                json!({"Location": s("New York"), "Day": s("Tuesday")}),
                json!({"Location": s("Boston"), "Day": s("Tuesday")}),
            )),
        },
        Row {
            operator: "Not",
            data_pattern: json!({"Weather": [{"anything-but": ["Raining"]}]}),
            data_kept: json!({"Weather": "Sunny"}),
            data_dropped: json!({"Weather": "Raining"}),
            image: Some((
                json!({"Weather": {"S": [{"anything-but": ["Raining", "Snowing"]}]}}),
                json!({"Weather": s("Sunny")}),
                json!({"Weather": s("Snowing")}),
            )),
        },
        Row {
            operator: "Numeric (equals)",
            data_pattern: json!({"Price": [{"numeric": ["=", 100]}]}),
            data_kept: json!({"Price": 100}),
            data_dropped: json!({"Price": 101}),
            // DynamoDB numbers are strings ({"N": "100"}): numeric never applies to them
            // (tests::dynamodb_patterns).
            image: None,
        },
        Row {
            operator: "Numeric (range)",
            data_pattern: json!({"Price": [{"numeric": [">", 10, "<=", 20]}]}),
            data_kept: json!({"Price": 20}),
            data_dropped: json!({"Price": 10}),
            image: None,
        },
    ]
}

/// Exists to Ends with: the rows on presence and on parts of strings.
fn presence_and_string_rows() -> Vec<Row> {
    vec![
        Row {
            operator: "Exists",
            data_pattern: json!({"ProductName": [{"exists": true}]}),
            data_kept: json!({"ProductName": "kettle"}),
            data_dropped: json!({"Other": "kettle"}),
            image: Some((
                json!({"ProductName": {"S": [{"exists": true}]}}),
                json!({"ProductName": s("kettle")}),
                json!({"Other": s("kettle")}),
            )),
        },
        Row {
            operator: "Does not exist",
            data_pattern: json!({"ProductName": [{"exists": false}]}),
            data_kept: json!({"Other": "kettle"}),
            data_dropped: json!({"ProductName": "kettle"}),
            image: Some((
                json!({"ProductName": {"S": [{"exists": false}]}}),
                json!({"Other": s("kettle")}),
                json!({"ProductName": s("kettle")}),
            )),
        },
        Row {
            operator: "Begins with",
            data_pattern: json!({"Region": [{"prefix": "us-"}]}),
            data_kept: json!({"Region": "us-east-1"}),
            data_dropped: json!({"Region": "eu-west-1"}),
            image: Some((
                json!({"Region": {"S": [{"prefix": "us-"}]}}),
                json!({"Region": s("us-west-2")}),
                json!({"Region": s("ap-south-1")}),
            )),
        },
        Row {
            operator: "Ends with",
            data_pattern: json!({"FileName": [{"suffix": ".png"}]}),
            data_kept: json!({"FileName": "cat.png"}),
            data_dropped: json!({"FileName": "cat.PNG"}),
            image: Some((
                json!({"FileName": {"S": [{"suffix": ".png"}]}}),
                json!({"FileName": s("dog.png")}),
                json!({"FileName": s("dog.jpg")}),
            )),
        },
    ]
}

fn new_image(image: &Value) -> crate::model::StreamRecord {
    let mut full = json!({"pk": {"S": "order#42"}});
    for (key, value) in image.as_object().expect("an image is an object") {
        full[key] = value.clone();
    }
    dynamodb(
        DynamodbEventName::Insert,
        StreamViewType::NewAndOldImages,
        Some(full),
        None,
    )
}

#[test]
fn every_row_of_lambdas_filter_rule_syntax_keeps_and_drops_kinesis_data() {
    for row in rows() {
        let filter = criteria(&[json!({"data": row.data_pattern})]);
        let (pattern, op) = (&row.data_pattern, row.operator);
        assert!(
            filter.keeps(&kinesis_json(row.data_kept.clone())),
            "{op}: {pattern} keeps {}",
            row.data_kept
        );
        assert!(
            !filter.keeps(&kinesis_json(row.data_dropped.clone())),
            "{op}: {pattern} drops {}",
            row.data_dropped
        );
    }
}

#[test]
fn every_row_of_lambdas_filter_rule_syntax_keeps_and_drops_dynamodb_images() {
    let rows = rows();
    assert_eq!(rows.iter().filter(|r| r.image.is_some()).count(), 11);
    for row in rows {
        let Some((pattern, kept, dropped)) = row.image else {
            continue;
        };
        let filter = criteria(&[json!({"dynamodb": {"NewImage": pattern}})]);
        let op = row.operator;
        assert!(
            filter.keeps(&new_image(&kept)),
            "{op}: {pattern} keeps {kept}"
        );
        assert!(
            !filter.keeps(&new_image(&dropped)),
            "{op}: {pattern} drops {dropped}"
        );
    }
}

#[test]
fn suffix() {
    check_rows(&[
        (json!([{"suffix": ".png"}]), Some(json!("a.png")), true),
        (json!([{"suffix": ".png"}]), Some(json!(".png")), true),
        (json!([{"suffix": ".png"}]), Some(json!("a.png.gz")), false),
        (json!([{"suffix": ".png"}]), Some(json!("A.PNG")), false),
        (json!([{"suffix": "5"}]), Some(json!(15)), false),
        (json!([{"suffix": ".png"}]), None, false),
        (json!([{"suffix": ""}]), Some(json!("anything")), true),
        (json!([{"suffix": "é"}]), Some(json!("café")), true),
        (
            json!([{"suffix": ".png"}]),
            Some(json!(["a.jpg", "b.png"])),
            true,
        ),
    ]);
}

#[test]
fn equals_ignore_case() {
    check_rows(&[
        (
            json!([{"equals-ignore-case": "Alice"}]),
            Some(json!("aLICE")),
            true,
        ),
        (
            json!([{"equals-ignore-case": "alice"}]),
            Some(json!("alic")),
            false,
        ),
        (
            json!([{"equals-ignore-case": "alice"}]),
            Some(json!("alices")),
            false,
        ),
        (
            json!([{"equals-ignore-case": "été"}]),
            Some(json!("ÉTÉ")),
            true,
        ),
        (
            json!([{"equals-ignore-case": "ΣΑΣ"}]),
            Some(json!("σας")),
            false,
        ),
        (json!([{"equals-ignore-case": "5"}]), Some(json!(5)), false),
        (
            json!([{"equals-ignore-case": "true"}]),
            Some(json!(true)),
            false,
        ),
        (json!([{"equals-ignore-case": ""}]), Some(json!("")), true),
        (json!([{"equals-ignore-case": "x"}]), None, false),
    ]);
}

#[test]
fn or_across_fields() {
    // $or is ANDed with the keys beside it, may nest, and works at any level.
    let filter = criteria(&[json!({"data": {
        "kind": ["order"],
        "$or": [
            {"amount": [{"numeric": [">", 100]}]},
            {"$or": [{"vip": [true]}, {"tier": [{"prefix": "gold"}]}]}
        ]
    }})]);
    let rows = [
        (json!({"kind": "order", "amount": 150}), true),
        (json!({"kind": "order", "amount": 50, "vip": true}), true),
        (json!({"kind": "order", "tier": "gold-plus"}), true),
        (json!({"kind": "order", "amount": 50}), false),
        (json!({"kind": "refund", "amount": 150}), false),
    ];
    for (data, expected) in rows {
        assert_eq!(
            filter.keeps(&kinesis_json(data.clone())),
            expected,
            "{data}"
        );
    }
    // An array of objects: one element must match the whole object, $or included.
    let items = criteria(&[json!({"data": {"items": {"$or": [{"sku": ["A"]}, {"qty": [0]}]}}})]);
    assert!(items.keeps(&kinesis_json(json!({"items": [{"sku": "B", "qty": 0}]}))));
    assert!(!items.keeps(&kinesis_json(json!({"items": [{"sku": "B", "qty": 1}]}))));
}

#[test]
fn or_at_the_top_reaches_past_data_that_is_not_json() {
    // Data that is not JSON fails the branch on data, not the whole pattern.
    let filter = criteria(&[json!({"$or": [
        {"data": {"kind": [{"exists": false}]}},
        {"partitionKey": [{"suffix": "-17"}]}
    ]})]);
    assert!(filter.keeps(&kinesis(b"not json")));
    assert!(filter.keeps(&kinesis_json(json!({"other": 1}))));
    let on_data_only = criteria(&[json!({"$or": [
        {"data": {"kind": [{"exists": false}]}},
        {"partitionKey": ["someone-else"]}
    ]})]);
    assert!(!on_data_only.keeps(&kinesis(b"not json")));
    assert!(!on_data_only.keeps(&kinesis_json(json!({"kind": "x"}))));
    // A $or branch on data is parsed like a data key beside it: only what it walks.
    assert!(
        criteria(&[json!({"$or": [{"data": {"a": ["x"]}}, {"data": {"b": [1]}}]})])
            .keeps(&kinesis_json(json!({"b": 1, "c": {"big": [1, 2, 3]}})))
    );
}

/// The refusals issue 15 changed: operators Lambda's table does not list, and the new
/// operators malformed.
#[test]
fn other_operators_and_malformed_new_ones_are_refused() {
    assert_refused(&[
        (
            r#"{"a": [{"wildcard": "x*"}]}"#,
            r#""a": operator "wildcard" is not supported (prefix, suffix, equals-ignore-case, anything-but, numeric, exists)"#,
        ),
        (
            r#"{"a": [{"cidr": "10.0.0.0/24"}]}"#,
            r#""a": operator "cidr" is not supported (prefix, suffix, equals-ignore-case, anything-but, numeric, exists)"#,
        ),
        (
            r#"{"$or": [{"a": ["x"]}, {}]}"#,
            r#""$or": $or takes a non-empty list of non-empty objects, got [{"a":["x"]},{}]"#,
        ),
        (
            r#"{"b": {"$or": []}}"#,
            r#""b.$or": $or takes a non-empty list of non-empty objects, got []"#,
        ),
        (
            r#"{"$or": {"a": ["x"]}}"#,
            r#""$or": $or takes a non-empty list of non-empty objects, got {"a":["x"]}"#,
        ),
        (
            r#"{"$or": [{"a": "x"}, {"b": ["y"]}]}"#,
            r#""a": "x" must be in a list (["x"]) or an object"#,
        ),
        (
            r#"{"a": [{"suffix": 5}]}"#,
            r#""a": suffix takes a string, got 5 (suffix with an operator is not supported)"#,
        ),
        (
            r#"{"a": [{"suffix": {"equals-ignore-case": ".png"}}]}"#,
            r#""a": suffix takes a string, got {"equals-ignore-case":".png"} (suffix with an operator is not supported)"#,
        ),
        (
            r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
            r#""a": equals-ignore-case takes a string, got ["x"] (equals-ignore-case with an operator is not supported)"#,
        ),
        (
            r#"{"a": [{"anything-but": {"suffix": ".png"}}]}"#,
            r#""a": anything-but with an operator ({"suffix":".png"}) is not supported"#,
        ),
    ]);
}
