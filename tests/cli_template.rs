//! `--template` on the real binary: one mapping written as TOML, as an AWS JSON file, in a
//! SAM template and in a CloudFormation template gives the same `esm-sim validate`
//! output; problems of a template are listed with those of the config and stop
//! `validate`, `simulate` and `run`; `simulate --template` runs the template's mapping.

mod support;

use std::path::Path;

use support::binary::{run_offline, Output};

/// The functions and the simulated stream; no mapping.
const WORLD: &str = r#"
[[streams]]
name = "orders"
kind = "kinesis"
shards = 2

[[streams.producers]]
rate_per_second = 10.0
records = 40
poison_every = 20

[[functions]]
name = "order-processor"

[[functions.rules]]
when_data_contains = "\"poison\":true"
action = "error"
"#;

/// The mapping as TOML.
const TOML_MAPPING: &str = r#"
[[mappings]]
name = "Processor-Orders"
event_source_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
function_name = "order-processor"
starting_position = "TRIM_HORIZON"
batch_size = 25
maximum_batching_window_in_seconds = 2
bisect_batch_on_function_error = true
maximum_retry_attempts = 1
maximum_record_age_in_seconds = 3600
function_response_types = ["ReportBatchItemFailures"]
filter_criteria = { filters = [{ pattern = '{"data": {"amount": [{"numeric": [">", 0]}]}}' }] }
destination_config = { on_failure = { destination = "arn:aws:sqs:us-east-1:123456789012:order-failures" } }
"#;

/// The same mapping as an AWS JSON file (create-event-source-mapping input).
const AWS_JSON: &str = r#"{
    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:order-processor",
    "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
    "StartingPosition": "TRIM_HORIZON",
    "BatchSize": 25,
    "MaximumBatchingWindowInSeconds": 2,
    "BisectBatchOnFunctionError": true,
    "MaximumRetryAttempts": 1,
    "MaximumRecordAgeInSeconds": 3600,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "FilterCriteria": {"Filters": [{"Pattern": "{\"data\": {\"amount\": [{\"numeric\": [\">\", 0]}]}}"}]},
    "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:order-failures"}}
}
"#;

/// The same mapping as a SAM function's Kinesis event (named `<function>-<event>`).
const SAM: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  BatchSize:
    Type: Number
    Default: 10
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: orders
      ShardCount: 2
  OrderFailures:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: order-failures
  Processor:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: order-processor
      Runtime: python3.12
      Handler: app.handler
      Events:
        Orders:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: !Ref BatchSize
            MaximumBatchingWindowInSeconds: 2
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            MaximumRecordAgeInSeconds: 3600
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"data": {"amount": [{"numeric": [">", 0]}]}}'
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt OrderFailures.Arn
"#;

/// The same mapping as a CloudFormation resource, in JSON, named by its logical id.
const CFN_JSON: &str = r#"{
  "Resources": {
    "ProcessorOrders": {
      "Type": "AWS::Lambda::EventSourceMapping",
      "Properties": {
        "FunctionName": {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:order-processor"},
        "EventSourceArn": {"Fn::Join": [":", ["arn:aws:kinesis", {"Ref": "AWS::Region"}, {"Ref": "AWS::AccountId"}, "stream/orders"]]},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": "25",
        "MaximumBatchingWindowInSeconds": 2,
        "BisectBatchOnFunctionError": "true",
        "MaximumRetryAttempts": 1,
        "MaximumRecordAgeInSeconds": 3600,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "FilterCriteria": {"Filters": [{"Pattern": "{\"data\": {\"amount\": [{\"numeric\": [\">\", 0]}]}}"}]},
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Failures", "Arn"]}}},
        "Tags": [{"Key": "team", "Value": "orders"}]
      }
    }
  }
}
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn validate(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["validate"];
    all.extend(args);
    run_offline(dir, &all)
}

#[test]
fn one_mapping_as_toml_aws_json_sam_and_cloudformation_validates_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "toml.toml", &format!("{WORLD}{TOML_MAPPING}"));
    write(
        dir,
        "json.toml",
        &format!("{WORLD}\n[[mappings]]\nname = \"Processor-Orders\"\naws_json = \"esm.json\"\n"),
    );
    write(dir, "esm.json", AWS_JSON);
    write(dir, "world.toml", WORLD);
    write(dir, "template.yaml", SAM);
    write(
        dir,
        "cfn.toml",
        &format!("{WORLD}\n[template]\nresources = {{ Failures = {{ Arn = \"arn:aws:sqs:us-east-1:123456789012:order-failures\" }} }}\n"),
    );
    write(dir, "template.json", CFN_JSON);

    let toml = validate(dir, &["--config", "toml.toml"]);
    assert!(toml.success, "{}", toml.stderr);
    assert!(
        toml.stdout.contains("mapping \"Processor-Orders\""),
        "{}",
        toml.stdout
    );
    assert!(toml.stdout.contains("batch_size: 25"), "{}", toml.stdout);
    let json = validate(dir, &["--config", "json.toml"]);
    assert!(json.success, "{}", json.stderr);
    assert_eq!(json.stdout, toml.stdout, "AWS JSON against TOML");
    let sam = validate(
        dir,
        &[
            "--config",
            "world.toml",
            "--template",
            "template.yaml",
            "--parameter",
            "BatchSize=25",
        ],
    );
    assert!(sam.success, "{}", sam.stderr);
    assert_eq!(sam.stdout, toml.stdout, "SAM against TOML");
    let cfn = validate(
        dir,
        &["--config", "cfn.toml", "--template", "template.json"],
    );
    assert!(cfn.success, "{}", cfn.stderr);
    assert_eq!(
        cfn.stdout
            .replace("\"ProcessorOrders\"", "\"Processor-Orders\""),
        toml.stdout,
        "CloudFormation against TOML"
    );
    // The parameter's default (10) is not the TOML's 25: the outputs differ there only.
    let default = validate(
        dir,
        &["--config", "world.toml", "--template", "template.yaml"],
    );
    assert!(default.success, "{}", default.stderr);
    assert_eq!(
        default
            .stdout
            .replace("batch_size: 10\n", "batch_size: 25\n"),
        toml.stdout
    );
    assert_ne!(default.stdout, toml.stdout);
}

#[test]
fn template_problems_stop_validate_simulate_and_run_with_the_configs() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let broken = SAM
        .replace("!GetAtt Orders.Arn", "!GetAtt OrdersTable.StreamArn")
        .replace(
            "MaximumRetryAttempts: 1",
            "MaximumRetryAttempts: 1\n            BatchSise: 3",
        );
    write(dir, "template.yaml", &broken);
    let world = format!("checkpoint_flush_ms = 99999999\n{WORLD}");
    write(dir, "world.toml", &world);
    for command in ["validate", "simulate", "run"] {
        let out = run_offline(
            dir,
            &[
                command,
                "--config",
                "world.toml",
                "--template",
                "template.yaml",
            ],
        );
        assert!(!out.success, "{command} accepted a broken template");
        for line in [
            "template.yaml: resource Processor: event Orders: BatchSise: unknown key of a SAM Kinesis event; allowed: Stream, ",
            "template.yaml: resource Processor: event Orders: Stream: Fn::GetAtt OrdersTable.StreamArn: no resource OrdersTable in the template, nor in [template] resources",
            "top level: checkpoint_flush_ms = 99999999: must be 0..=60000",
        ] {
            assert!(out.stderr.contains(line), "{command}: no {line:?} in:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains("no [[mappings]]"), "{}", out.stderr);
    }
    let out = run_offline(
        dir,
        &["validate", "--config", "world.toml", "--parameter", "A=b"],
    );
    assert!(!out.success);
    assert!(out.stderr.contains("--template"), "{}", out.stderr);
    let out = run_offline(
        dir,
        &[
            "validate",
            "--config",
            "world.toml",
            "--template",
            "template.yaml",
            "--parameter",
            "novalue",
        ],
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("\"novalue\": expected KEY=VALUE"),
        "{}",
        out.stderr
    );
}

#[test]
fn simulate_runs_the_templates_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "world.toml", WORLD);
    write(
        dir,
        "template.yaml",
        &SAM.replace("Destination: !GetAtt OrderFailures.Arn", "Destination: !Sub 'file://${AWS::StackName}-failures.jsonl'")
            .replace("FunctionResponseTypes: [ReportBatchItemFailures]", "")
            .replace("            FilterCriteria:\n              Filters:\n                - Pattern: '{\"data\": {\"amount\": [{\"numeric\": [\">\", 0]}]}}'\n", ""),
    );
    let out = run_offline(
        dir,
        &[
            "simulate",
            "--config",
            "world.toml",
            "--template",
            "template.yaml",
            "--stack-name",
            "orders",
            "--report",
            "report.json",
        ],
    );
    assert!(out.success, "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let text = report.to_string();
    assert!(text.contains("Processor-Orders"), "{text}");
    // The two poison records (every 20th of 40) end in the destination the stack names.
    let failures = std::fs::read_to_string(dir.join("orders-failures.jsonl")).unwrap();
    assert_eq!(failures.lines().count(), 2, "{failures}");
}
