//! The intrinsic functions, parameters and reading of templates: each function in its
//! YAML short and long forms and in JSON, every way it can fail with its exact message.

use super::*;
use crate::config::resolve::parse_toml;

/// The config the templates are resolved against: a simulated Kinesis stream `orders`,
/// a DynamoDB table `orders-table`, a function `order-processor`.
pub(super) const WORLD: &str = r#"
[aws]
region = "eu-west-1"
account_id = "111122223333"

[[streams]]
name = "orders"
kind = "kinesis"
shards = 1

[[streams]]
name = "orders-table"
kind = "dynamodb"
shards = 1

[[functions]]
name = "order-processor"
"#;

pub(super) fn config_file(extra: &str) -> ConfigFile {
    parse_toml(&format!("{WORLD}\n{extra}"), None).expect("a valid config")
}

/// The mappings of `template` (YAML unless it starts with `{`), with `extra` config
/// text and these `--parameter`s.
pub(super) fn entries_with(
    template: &str,
    extra: &str,
    parameters: &[(&str, &str)],
) -> Result<Vec<MappingEntry>, Vec<String>> {
    let options = TemplateOptions {
        path: "t.yaml".into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stack_name: None,
    };
    mappings(template, "t.yaml", false, &config_file(extra), &options)
}

pub(super) fn entries(template: &str) -> Result<Vec<MappingEntry>, Vec<String>> {
    entries_with(template, "", &[])
}

/// A template with `head` (parameters...) before its resources, `resources` added, and
/// one mapping `M` whose `EventSourceArn` is `arn` (YAML, one line).
fn with_arn(head: &str, resources: &str, arn: &str) -> String {
    format!(
        "{head}
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: orders
{resources}
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: order-processor
      StartingPosition: LATEST
      EventSourceArn: {arn}
"
    )
}

/// What `arn` resolves to as M's EventSourceArn.
fn arn(head: &str, arn: &str) -> Result<String, Vec<String>> {
    arn_with(head, "", arn, "", &[])
}

fn arn_with(
    head: &str,
    resources: &str,
    arn: &str,
    extra: &str,
    parameters: &[(&str, &str)],
) -> Result<String, Vec<String>> {
    let found = entries_with(&with_arn(head, resources, arn), extra, parameters)?;
    assert_eq!(found.len(), 1, "{found:?}");
    Ok(found[0]
        .event_source_arn
        .clone()
        .expect("an EventSourceArn"))
}

const ORDERS_ARN: &str = "arn:aws:kinesis:eu-west-1:111122223333:stream/orders";

#[test]
fn ref_and_get_att_in_short_and_long_forms() {
    assert_eq!(arn("", "!Ref Orders"), Ok("orders".to_string()));
    assert_eq!(arn("", "{Ref: Orders}"), Ok("orders".to_string()));
    assert_eq!(arn("", "!GetAtt Orders.Arn"), Ok(ORDERS_ARN.to_string()));
    assert_eq!(arn("", "!GetAtt [Orders, Arn]"), Ok(ORDERS_ARN.to_string()));
    assert_eq!(
        arn("", "{'Fn::GetAtt': [Orders, Arn]}"),
        Ok(ORDERS_ARN.to_string())
    );
    assert_eq!(
        arn("", "{'Fn::GetAtt': Orders.Arn}"),
        Ok(ORDERS_ARN.to_string())
    );
    // The attribute of the list form may itself be a function.
    let head = "Parameters:\n  Attribute:\n    Type: String\n    Default: Arn";
    assert_eq!(
        arn(head, "!GetAtt [Orders, !Ref Attribute]"),
        Ok(ORDERS_ARN.to_string())
    );
}

#[test]
fn sub_in_its_string_and_list_forms_with_pseudo_parameters() {
    assert_eq!(
        arn(
            "",
            "!Sub 'arn:${AWS::Partition}:kinesis:${AWS::Region}:${AWS::AccountId}:stream/${Orders}'"
        ),
        Ok(ORDERS_ARN.to_string())
    );
    assert_eq!(arn("", "!Sub '${Orders.Arn}'"), Ok(ORDERS_ARN.to_string()));
    assert_eq!(
        arn("", "!Sub ['${Base}/${Name}', {Base: !Sub 'arn:aws:kinesis:${AWS::Region}:${AWS::AccountId}:stream', Name: orders}]"),
        Ok(ORDERS_ARN.to_string())
    );
    assert_eq!(
        arn("", "{'Fn::Sub': '${Orders.Arn}'}"),
        Ok(ORDERS_ARN.to_string())
    );
    // `${!Literal}` is written as `${Literal}`; the stack name defaults to esm-sim.
    let found = entries(&with_arn("", "", "orders").replace(
        "StartingPosition: LATEST",
        "StartingPosition: LATEST\n      Tags: [{Key: a, Value: !Sub '${!Literal}-${AWS::StackName}-${AWS::URLSuffix}'}]",
    ));
    assert!(found.is_ok(), "{found:?}");
}

#[test]
fn the_literal_and_stack_name_of_sub() {
    let parameters = &[("Suffix", "x")];
    let head = "Parameters:\n  Suffix:\n    Type: String";
    assert_eq!(
        arn_with(
            head,
            "",
            "!Sub '${!Literal}-${AWS::StackName}-${Suffix}'",
            "",
            parameters
        ),
        Ok("${Literal}-esm-sim-x".to_string())
    );
    let options = TemplateOptions {
        path: "t.yaml".into(),
        parameters: vec![],
        stack_name: Some("prod".into()),
    };
    let text = with_arn("", "", "!Sub '${AWS::StackName}'");
    let found = mappings(&text, "t.yaml", false, &config_file(""), &options).unwrap();
    assert_eq!(found[0].event_source_arn.as_deref(), Some("prod"));
}

#[test]
fn join_with_functions_inside_and_no_value_dropped() {
    assert_eq!(
        arn(
            "",
            "!Join [':', [arn, !Ref 'AWS::Partition', kinesis, !Ref 'AWS::Region', !Ref 'AWS::AccountId', !Sub 'stream/${Orders}', !Ref 'AWS::NoValue']]"
        ),
        Ok(ORDERS_ARN.to_string())
    );
    assert_eq!(
        arn("", "{'Fn::Join': ['', [!GetAtt Orders.Arn]]}"),
        Ok(ORDERS_ARN.to_string())
    );
    let head = "Parameters:\n  Parts:\n    Type: CommaDelimitedList\n    Default: 'a, b,c'";
    assert_eq!(
        arn(head, "!Join ['-', !Ref Parts]"),
        Ok("a-b-c".to_string())
    );
}

#[test]
fn a_no_value_property_is_left_out() {
    let text = with_arn("", "", "orders").replace(
        "StartingPosition: LATEST",
        "StartingPosition: LATEST\n      BatchSize: !Ref AWS::NoValue",
    );
    assert_eq!(entries(&text).unwrap()[0].batch_size, None);
}

#[test]
fn parameters_command_line_over_config_over_default() {
    let head = "Parameters:\n  Stream:\n    Type: String\n    Default: from-default";
    let config = "[template]\nparameters = { Stream = \"from-config\" }";
    assert_eq!(arn(head, "!Ref Stream"), Ok("from-default".to_string()));
    assert_eq!(
        arn_with(head, "", "!Ref Stream", config, &[]),
        Ok("from-config".to_string())
    );
    assert_eq!(
        arn_with(head, "", "!Ref Stream", config, &[("Stream", "from-cli")]),
        Ok("from-cli".to_string())
    );
    // A number default is its text; a numeric string is read as a number where one is due.
    let text = with_arn(
        "Parameters:\n  Size:\n    Type: Number\n    Default: 7",
        "",
        "orders",
    )
    .replace(
        "StartingPosition: LATEST",
        "StartingPosition: LATEST\n      BatchSize: !Ref Size\n      Enabled: 'false'",
    );
    let found = entries(&text).unwrap();
    assert_eq!(found[0].batch_size, Some(7));
    assert_eq!(found[0].enabled, Some(false));
}

#[test]
fn parameter_problems() {
    let head = "Parameters:\n  Stream:\n    Type: String";
    assert_eq!(
        arn(head, "!Ref Stream"),
        Err(vec!["t.yaml: resource M: EventSourceArn: Ref Stream: parameter Stream has no Default; give it with --parameter Stream=VALUE or in [template] parameters".to_string()])
    );
    let head = "Parameters:\n  Stream:\n    Type: String\n    Default: orders\n    AllowedValues: [orders, other]";
    assert_eq!(
        arn_with(head, "", "!Ref Stream", "", &[("Stream", "nope")]),
        Err(vec!["t.yaml: resource M: EventSourceArn: Ref Stream: parameter Stream = \"nope\" is not one of its AllowedValues: orders, other".to_string()])
    );
    let head = "Parameters:\n  Stream:\n    Type: 'AWS::SSM::Parameter::Value<String>'\n    Default: /streams/orders";
    assert_eq!(
        arn(head, "!Ref Stream"),
        Err(vec!["t.yaml: resource M: EventSourceArn: Ref Stream: parameter Stream is read from SSM by CloudFormation; give its value with --parameter Stream=VALUE or in [template] parameters".to_string()])
    );
    assert_eq!(
        arn_with(head, "", "!Ref Stream", "", &[("Stream", "orders")]),
        Ok("orders".to_string())
    );
    assert_eq!(
        arn_with(
            head,
            "",
            "orders",
            "[template]\nparameters = { Strem = \"x\" }",
            &[("Other", "y")]
        ),
        Err(vec![
            "t.yaml: --parameter Other: the template declares no parameter Other (it declares: Stream)".to_string(),
            "t.yaml: [template] parameters: Strem: the template declares no parameter Strem (it declares: Stream)".to_string(),
        ])
    );
}

#[test]
fn every_unresolvable_field_is_reported_at_once() {
    let text = with_arn("", "", "!Ref Missing").replace(
        "FunctionName: order-processor",
        "FunctionName: !GetAtt Nope.Arn\n      Tags: [{Key: k, Value: !Sub '${A}-${B.C}-${AWS::StackId}'}]",
    );
    assert_eq!(
        entries(&text).map(|f| f.len()),
        Err(vec![
            "t.yaml: resource M: EventSourceArn: Ref Missing: no parameter or resource Missing in the template, nor in [template] resources".to_string(),
            "t.yaml: resource M: FunctionName: Fn::GetAtt Nope.Arn: no resource Nope in the template, nor in [template] resources".to_string(),
            "t.yaml: resource M: Tags: Fn::Sub ${A}: no parameter or resource A in the template, nor in [template] resources".to_string(),
            "t.yaml: resource M: Tags: Fn::Sub ${B.C}: no resource B in the template, nor in [template] resources".to_string(),
            "t.yaml: resource M: Tags: Fn::Sub ${AWS::StackId}: AWS::StackId is chosen by CloudFormation; esm-sim does not make one up".to_string(),
        ])
    );
}

#[test]
fn malformed_and_unsupported_functions() {
    let one = |yaml: &str| arn("", yaml).unwrap_err().join("\n");
    assert_eq!(
        one("!If [IsProd, a, b]"),
        "t.yaml: resource M: EventSourceArn: Fn::If: not supported (esm-sim resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join)"
    );
    assert_eq!(
        one("{'Fn::Select': [0, [a]]}"),
        "t.yaml: resource M: EventSourceArn: Fn::Select: not supported (esm-sim resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join)"
    );
    assert_eq!(
        one("!GetAtt Orders"),
        "t.yaml: resource M: EventSourceArn: Fn::GetAtt: takes [RESOURCE, ATTRIBUTE] or \"RESOURCE.ATTRIBUTE\", not [\"Orders\"]"
    );
    assert_eq!(
        one("!Ref [a]"),
        "t.yaml: resource M: EventSourceArn: Ref [\"a\"]: Ref takes the name of a parameter or resource"
    );
    assert_eq!(
        one("!Sub [a, b, c]"),
        "t.yaml: resource M: EventSourceArn: Fn::Sub: takes a string or [STRING, {VARIABLES}], not [\"a\",\"b\",\"c\"]"
    );
    assert_eq!(
        one("!Sub 'x-${Orders'"),
        "t.yaml: resource M: EventSourceArn: Fn::Sub \"x-${Orders\": a ${ is never closed"
    );
    assert_eq!(
        one("!Sub ['${A}', {A: [x]}]"),
        "t.yaml: resource M: EventSourceArn: Fn::Sub variable A: must be a string, not [\"x\"]"
    );
    assert_eq!(
        one("!Join [',']"),
        "t.yaml: resource M: EventSourceArn: Fn::Join: takes [DELIMITER, [VALUES...]], not [\",\"]"
    );
    assert_eq!(
        one("!Join [',', a]"),
        "t.yaml: resource M: EventSourceArn: Fn::Join: its values must be a list, not \"a\""
    );
    assert_eq!(
        one("!Join [',', [[a]]]"),
        "t.yaml: resource M: EventSourceArn: Fn::Join: its values must be strings, not [[\"a\"]]"
    );
    assert_eq!(
        one("!Ref AWS::Nothing"),
        "t.yaml: resource M: EventSourceArn: Ref AWS::Nothing: AWS::Nothing is not a pseudo parameter"
    );
    let head = "Parameters:\n  Parts:\n    Type: CommaDelimitedList\n    Default: a,b";
    assert_eq!(
        arn(head, "!Sub '${Parts}'").unwrap_err(),
        vec!["t.yaml: resource M: EventSourceArn: Fn::Sub ${Parts}: is a list, not a string: [\"a\",\"b\"]"]
    );
}

#[test]
fn a_circle_of_references_is_an_error_naming_it() {
    let resources = "  A:\n    Type: AWS::Kinesis::Stream\n    Properties:\n      Name: !GetAtt B.Arn\n  B:\n    Type: AWS::Kinesis::Stream\n    Properties:\n      Name: !Ref A";
    assert_eq!(
        arn_with("", resources, "!Ref A", "", &[]),
        Err(vec!["t.yaml: resource M: EventSourceArn: Ref A: resource A: Name: Fn::GetAtt B.Arn: resource B: Name: Ref A: the references go round in a circle: A -> B -> A".to_string()])
    );
}

#[test]
fn json_templates_read_like_yaml_ones() {
    let json = r#"{
  "Resources": {
    "Orders": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "orders"}},
    "M": {
      "Type": "AWS::Lambda::EventSourceMapping",
      "Properties": {
        "FunctionName": {"Ref": "Fn"},
        "EventSourceArn": {"Fn::GetAtt": ["Orders", "Arn"]},
        "StartingPosition": "LATEST",
        "BatchSize": {"Fn::Join": ["", ["1", "0"]]}
      }
    },
    "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": {"Fn::Sub": "order-${Kind}"}}}
  },
  "Parameters": {"Kind": {"Type": "String", "Default": "processor"}}
}"#;
    let found = entries(json).unwrap();
    assert_eq!(found[0].event_source_arn.as_deref(), Some(ORDERS_ARN));
    assert_eq!(found[0].function_name.as_deref(), Some("order-processor"));
    assert_eq!(found[0].batch_size, Some(10));
    let options = TemplateOptions::default();
    let file = config_file("");
    // A `.json` file is read as JSON, with JSON's messages.
    assert_eq!(
        mappings("\n[1", "t.json", true, &file, &options).map(|f| f.len()),
        Err(vec![
            "t.json:2:2: JSON syntax error: EOF while parsing a list".to_string()
        ])
    );
}

#[test]
fn reading_errors_have_their_position_and_never_panic() {
    let file = config_file("");
    let options = TemplateOptions::default();
    let read = |text: &str| mappings(text, "t.yaml", false, &file, &options);
    assert_eq!(
        read("Resources:\n  M: [\n").map(|f| f.len()),
        Err(vec!["t.yaml:3:1: YAML syntax error: did not find expected node content, while parsing a flow node".to_string()])
    );
    assert_eq!(
        read("- a\n").map(|f| f.len()),
        Err(vec![
            "t.yaml: expected a template (an object with Resources), not a list".to_string()
        ])
    );
    assert_eq!(
        read("Resources: 5\n").map(|f| f.len()),
        Err(vec![
            "t.yaml: Resources: expected an object, not a number".to_string()
        ])
    );
    assert_eq!(
        read("Resources:\n  ? [a]\n  : 1\n").map(|f| f.len()),
        Err(vec![
            "t.yaml: a mapping key must be a scalar, not [\"a\"]".to_string()
        ])
    );
    assert_eq!(read("Description: nothing\n").map(|f| f.len()), Ok(0));
    for text in [
        "",
        "{",
        "!Ref",
        "Resources: !Ref X",
        "Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: !Sub x",
        "Resources:\n  M:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events: [1]",
        "Resources:\n  M:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: 1",
        "Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties:\n      BatchSize: .nan",
        "Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties:\n      EventSourceArn: !GetAtt [!Ref x, y]",
    ] {
        let _ = read(text);
    }
}

/// A template using every function and resource kind, for the fuzz test below.
const EVERYTHING: &str = "Parameters:
  Size: {Type: Number, Default: 10}
  Parts: {Type: CommaDelimitedList, Default: 'a,b'}
Resources:
  Orders: {Type: AWS::Kinesis::Stream, Properties: {Name: !Sub '${AWS::StackName}-x'}}
  Table: {Type: AWS::DynamoDB::Table, Properties: {TableName: orders-table, StreamSpecification: {}}}
  C: {Type: AWS::Kinesis::StreamConsumer, Properties: {ConsumerName: c, StreamARN: !GetAtt Orders.Arn}}
  Q: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: order-processor
      Events:
        K: {Type: Kinesis, Properties: {Stream: !GetAtt C.ConsumerARN, StartingPosition: LATEST, BatchSize: !Ref Size}}
        D: {Type: DynamoDB, Properties: {Stream: !GetAtt Table.StreamArn, StartingPosition: LATEST, DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Q.Arn}}}}
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Fn
      EventSourceArn: !Join [':', [arn, aws, kinesis, !Ref 'AWS::Region', !Ref 'AWS::AccountId', !Sub ['stream/${N}', {N: !Ref Orders}]]]
      StartingPosition: TRIM_HORIZON
      Tags: !Ref Parts
";

#[test]
fn the_fuzzed_template_is_valid_as_written() {
    let found = entries(EVERYTHING).expect("valid");
    let names: Vec<_> = found.iter().map(|e| e.name.clone().unwrap()).collect();
    assert_eq!(names, ["Fn-D", "Fn-K", "M"]);
    assert_eq!(found[1].consumer_name.as_deref(), Some("c"));
    assert_eq!(
        found[2].event_source_arn.as_deref(),
        Some("arn:aws:kinesis:eu-west-1:111122223333:stream/esm-sim-x")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Random edits of a template never panic, and every problem is one line naming
    /// the file.
    #[test]
    fn random_edits_never_panic_and_every_problem_names_the_file(
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), 0usize..8,
             proptest::sample::select(&["", "!Ref ", "!GetAtt ", "!Sub ", "!Join ", "${", "}", "[", "]", "{", ",", ":", "\n", "  ", ".", "Fn::If", "'", "Orders", "C."][..]),
             proptest::prelude::any::<char>(), proptest::prelude::any::<bool>()),
            1..4,
        )
    ) {
        let text = crate::config::type_error::apply_edits(EVERYTHING, &edits);
        if let Err(problems) = entries(&text) {
            for problem in problems {
                proptest::prop_assert!(problem.starts_with("t.yaml:"), "{}", problem);
                proptest::prop_assert!(!problem.contains('\n'), "{}", problem);
            }
        }
    }
}
