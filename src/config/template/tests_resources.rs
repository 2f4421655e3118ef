//! Each resource kind's Ref and attributes, the CloudFormation and SAM conversions, and
//! the whole path through `load_with_template` (template problems with config ones, the
//! one validation applied to template mappings).

use super::tests::{entries, entries_with};
use crate::config::schema::MappingEntry;

/// One CloudFormation mapping `M` reading `source` (YAML) into `function`, with `more`
/// properties and `resources`.
fn cfn(resources: &str, source: &str, function: &str, more: &str) -> String {
    format!(
        "Resources:
{resources}
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: {function}
      StartingPosition: LATEST
      EventSourceArn: {source}
{more}"
    )
}

fn one(template: &str, extra: &str) -> Result<MappingEntry, Vec<String>> {
    let mut found = entries_with(template, extra, &[])?;
    assert_eq!(found.len(), 1, "{found:?}");
    Ok(found.remove(0))
}

fn destination(entry: &MappingEntry) -> Option<&str> {
    entry
        .destination_config
        .as_ref()?
        .on_failure
        .as_ref()?
        .destination
        .as_deref()
}

const TABLE: &str = "  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: orders-table
      StreamSpecification: {StreamViewType: NEW_IMAGE}";

#[test]
fn kinesis_streams_named_or_by_logical_id() {
    let resources = "  Named:\n    Type: AWS::Kinesis::Stream\n    Properties:\n      Name: !Sub '${AWS::StackName}-orders'\n  Unnamed:\n    Type: AWS::Kinesis::Stream";
    let entry = one(
        &cfn(resources, "!GetAtt Named.Arn", "order-processor", ""),
        "",
    )
    .unwrap();
    assert_eq!(
        entry.event_source_arn.as_deref(),
        Some("arn:aws:kinesis:eu-west-1:111122223333:stream/esm-sim-orders")
    );
    let entry = one(
        &cfn(resources, "!GetAtt Unnamed.Arn", "order-processor", ""),
        "",
    )
    .unwrap();
    assert_eq!(
        entry.event_source_arn.as_deref(),
        Some("arn:aws:kinesis:eu-west-1:111122223333:stream/Unnamed")
    );
    assert_eq!(
        one(&cfn(resources, "!GetAtt Unnamed.StreamArn", "order-processor", ""), "").unwrap_err(),
        vec!["t.yaml: resource M: EventSourceArn: Fn::GetAtt Unnamed.StreamArn: esm-sim does not derive the StreamArn of a AWS::Kinesis::Stream (only Ref, Arn); give it in [template] resources: Unnamed = { StreamArn = \"...\" }"]
    );
}

#[test]
fn a_tables_stream_is_the_simulated_one_or_given_in_the_config() {
    let entry = one(
        &cfn(TABLE, "!GetAtt Table.StreamArn", "order-processor", ""),
        "",
    )
    .unwrap();
    assert_eq!(
        entry.event_source_arn.as_deref(),
        Some("arn:aws:dynamodb:eu-west-1:111122223333:table/orders-table/stream/2026-01-01T00:00:00.000")
    );
    let other = TABLE.replace("orders-table", "other");
    let template = cfn(&other, "!GetAtt Table.StreamArn", "order-processor", "");
    assert_eq!(
        one(&template, "").unwrap_err(),
        vec!["t.yaml: resource M: EventSourceArn: Fn::GetAtt Table.StreamArn: the stream ARN of a DynamoDB table is chosen by AWS; give it in [template] resources: Table = { StreamArn = \"...\" }, or simulate the table's stream ([[streams]] name = \"other\", kind = \"dynamodb\")"]
    );
    let given =
        "arn:aws:dynamodb:eu-west-1:111122223333:table/other/stream/2026-02-03T04:05:06.789";
    let config = format!("[template]\nresources = {{ Table = {{ StreamArn = \"{given}\" }} }}");
    assert_eq!(
        one(&template, &config).unwrap().event_source_arn.as_deref(),
        Some(given)
    );
    let no_stream =
        "  Table:\n    Type: AWS::DynamoDB::GlobalTable\n    Properties:\n      TableName: other";
    assert_eq!(
        one(&cfn(no_stream, "!GetAtt Table.StreamArn", "order-processor", ""), "").unwrap_err(),
        vec!["t.yaml: resource M: EventSourceArn: Fn::GetAtt Table.StreamArn: table other has no StreamSpecification, so it has no stream; add one, or give it in [template] resources: Table = { StreamArn = \"...\" }"]
    );
    let entry = one(
        &cfn(TABLE, "!Sub '${Table.Arn}/stream/x'", "order-processor", ""),
        "",
    )
    .unwrap();
    assert_eq!(
        entry.event_source_arn.as_deref(),
        Some("arn:aws:dynamodb:eu-west-1:111122223333:table/orders-table/stream/x")
    );
}

#[test]
fn functions_by_ref_or_arn_lambda_and_sam() {
    let resources = "  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: order-processor\n  Sam:\n    Type: AWS::Serverless::Function";
    for function in ["!Ref Fn", "!GetAtt Fn.Arn"] {
        let entry = one(&cfn(resources, "orders", function, ""), "").unwrap();
        assert_eq!(entry.function_name.as_deref(), Some("order-processor"));
    }
    let entry = one(&cfn(resources, "orders", "!GetAtt Sam.Arn", ""), "").unwrap();
    assert_eq!(entry.function_name.as_deref(), Some("Sam"));
}

#[test]
fn destinations_sqs_sns_s3_and_resources_of_other_stacks() {
    let resources = "  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: failures\n  T:\n    Type: AWS::SNS::Topic\n  B:\n    Type: AWS::S3::Bucket\n  Other:\n    Type: AWS::IAM::Role";
    let with = |dest: &str, extra: &str| {
        let more = format!("      DestinationConfig: {{OnFailure: {{Destination: {dest}}}}}");
        one(&cfn(resources, "orders", "order-processor", &more), extra)
    };
    let cases = [
        (
            "!GetAtt Q.Arn",
            "arn:aws:sqs:eu-west-1:111122223333:failures",
        ),
        ("!Ref T", "arn:aws:sns:eu-west-1:111122223333:T"),
        ("!GetAtt T.TopicArn", "arn:aws:sns:eu-west-1:111122223333:T"),
        ("!GetAtt B.Arn", "arn:aws:s3:::b"),
        ("!Sub '${Q.QueueName}'", "failures"),
        (
            "!Ref Q",
            "https://sqs.eu-west-1.amazonaws.com/111122223333/failures",
        ),
    ];
    for (dest, expected) in cases {
        assert_eq!(
            destination(&with(dest, "").unwrap()),
            Some(expected),
            "{dest}"
        );
    }
    assert_eq!(
        with("!GetAtt Other.Arn", "").unwrap_err(),
        vec!["t.yaml: resource M: DestinationConfig: Fn::GetAtt Other.Arn: esm-sim derives nothing of a AWS::IAM::Role; give it in [template] resources: Other = { Arn = \"...\" }"]
    );
    let config = "[template]\nresources = { Elsewhere = { Arn = \"arn:aws:sqs:eu-west-1:1:q\" }, Q = { Arn = \"arn:aws:sqs:eu-west-1:1:given\" } }";
    assert_eq!(
        destination(&with("!GetAtt Elsewhere.Arn", config).unwrap()),
        Some("arn:aws:sqs:eu-west-1:1:q")
    );
    assert_eq!(
        destination(&with("!GetAtt Q.Arn", config).unwrap()),
        Some("arn:aws:sqs:eu-west-1:1:given")
    );
}

#[test]
fn a_consumer_arn_reads_through_a_consumer_of_that_name() {
    let resources = "  S:\n    Type: AWS::Kinesis::Stream\n    Properties:\n      Name: orders\n  C:\n    Type: AWS::Kinesis::StreamConsumer\n    Properties:\n      ConsumerName: fan-out\n      StreamARN: !GetAtt S.Arn";
    for source in ["!GetAtt C.ConsumerARN", "!Ref C"] {
        let entry = one(&cfn(resources, source, "order-processor", ""), "").unwrap();
        assert_eq!(
            entry.event_source_arn.as_deref(),
            Some("arn:aws:kinesis:eu-west-1:111122223333:stream/orders")
        );
        assert_eq!(entry.consumer_name.as_deref(), Some("fan-out"));
    }
    assert_eq!(
        one(&cfn(resources, "!Sub '${C.ConsumerARN}'", "order-processor", ""), "").unwrap_err(),
        vec!["t.yaml: resource M: EventSourceArn: Fn::Sub ${C.ConsumerARN}: the ARN of a stream consumer holds its creation time, chosen by AWS; give it in [template] resources: C = { ConsumerARN = \"...\" } (an EventSourceArn that is exactly this reads through the consumer by its name instead)"]
    );
    let given = "arn:aws:kinesis:eu-west-1:111122223333:stream/orders/consumer/fan-out:1700000000";
    let config = format!("[template]\nresources = {{ C = {{ ConsumerARN = \"{given}\" }} }}");
    let entry = one(
        &cfn(resources, "!GetAtt C.ConsumerARN", "order-processor", ""),
        &config,
    )
    .unwrap();
    assert_eq!(entry.event_source_arn.as_deref(), Some(given));
    assert_eq!(entry.consumer_name, None);
}

#[test]
fn cfn_properties_in_the_aws_json_form() {
    let more = "      BatchSize: '50'\n      BisectBatchOnFunctionError: true\n      MaximumRetryAttempts: 2\n      KmsKeyArn: arn:aws:kms:eu-west-1:1:key/k\n      Tags: [{Key: team, Value: a}]\n      FilterCriteria: {Filters: [{Pattern: '{\"data\": {\"a\": [1]}}'}]}\n      FunctionResponseTypes: [ReportBatchItemFailures]";
    let entry = one(&cfn("", "orders", "order-processor", more), "").unwrap();
    assert_eq!(entry.name.as_deref(), Some("M"));
    assert_eq!(entry.batch_size, Some(50));
    assert_eq!(entry.bisect_batch_on_function_error, Some(true));
    assert_eq!(entry.maximum_retry_attempts, Some(2));
    assert_eq!(entry.filter_criteria.unwrap().filters.len(), 1);
    let unknown = one(
        &cfn("", "orders", "order-processor", "      BatchSise: 5"),
        "",
    )
    .unwrap_err();
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].starts_with("t.yaml: resource M: BatchSise: unknown key (did you mean BatchSize?); allowed: FunctionName, "),
        "{unknown:?}"
    );
    assert!(one(
        &cfn(
            "",
            "orders",
            "order-processor",
            "      ScalingConfig: {MaximumConcurrency: 2}"
        ),
        ""
    )
    .unwrap_err()[0]
        .starts_with("t.yaml: resource M: ScalingConfig: unknown key; allowed: "),);
    assert_eq!(
        one(
            &cfn("", "orders", "order-processor", "      BatchSize: ten"),
            ""
        )
        .unwrap_err(),
        vec!["t.yaml: resource M: BatchSize = \"ten\": expected an integer"]
    );
}

#[test]
fn other_sources_are_left_out_and_resource_keys_checked() {
    let sqs = cfn(
        "  Q:\n    Type: AWS::SQS::Queue",
        "!GetAtt Q.Arn",
        "order-processor",
        "",
    );
    assert_eq!(entries(&sqs).map(|f| f.len()), Ok(0));
    let msk = cfn(
        "  Cluster:\n    Type: AWS::MSK::Cluster",
        "!Ref Cluster",
        "order-processor",
        "",
    );
    assert_eq!(entries(&msk).map(|f| f.len()), Ok(0));
    let kafka = "Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties:\n      FunctionName: f\n      Topics: [t]\n      SelfManagedEventSource: {}";
    assert_eq!(entries(kafka).map(|f| f.len()), Ok(0));
    let conditional = cfn("", "orders", "order-processor", "").replace(
        "    Type: AWS::Lambda::EventSourceMapping",
        "    Type: AWS::Lambda::EventSourceMapping\n    Condition: IsProd",
    );
    assert_eq!(
        entries(&conditional).map(|f| f.len()),
        Err(vec!["t.yaml: resource M: Condition \"IsProd\": esm-sim does not evaluate conditions; remove the Condition from the template it reads".to_string()])
    );
    let extra_key = cfn("", "orders", "order-processor", "").replace(
        "    Type: AWS::Lambda::EventSourceMapping",
        "    Type: AWS::Lambda::EventSourceMapping\n    DependsOn: X\n    Propertys: {}",
    );
    assert_eq!(
        entries(&extra_key).map(|f| f.len()),
        Err(vec!["t.yaml: resource M: Propertys: unknown resource key; allowed: Type, Properties, DependsOn, Metadata, DeletionPolicy, UpdateReplacePolicy, UpdatePolicy, CreationPolicy".to_string()])
    );
}

/// A SAM function `Processor` with `events` (YAML under `Events:`).
fn sam(function_name: &str, events: &str) -> String {
    format!(
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
{TABLE}
  Failures:
    Type: AWS::SQS::Queue
  Processor:
    Type: AWS::Serverless::Function
    Properties:
      {function_name}
      Handler: app.handler
      Events:
{events}"
    )
}

#[test]
fn sam_kinesis_and_dynamodb_events() {
    let events = "        Stream:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            KmsKeyArn: arn:aws:kms:eu-west-1:1:key/k
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt Failures.Arn
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
        Api:
          Type: Api
          Properties: {Path: /, Method: get}";
    let found = entries(&sam("FunctionName: order-processor", events)).unwrap();
    let names: Vec<_> = found.iter().map(|e| e.name.clone().unwrap()).collect();
    assert_eq!(names, ["Processor-Changes", "Processor-Stream"]);
    assert!(found
        .iter()
        .all(|e| e.function_name.as_deref() == Some("order-processor")));
    assert_eq!(
        found[1].event_source_arn.as_deref(),
        Some("arn:aws:kinesis:eu-west-1:111122223333:stream/Orders")
    );
    assert_eq!(found[1].batch_size, Some(10));
    assert_eq!(
        destination(&found[1]),
        Some("arn:aws:sqs:eu-west-1:111122223333:Failures")
    );
    assert!(found[0]
        .event_source_arn
        .as_deref()
        .unwrap()
        .contains(":table/orders-table/stream/"));
    // Unnamed: the function is its logical id.
    let found = entries(&sam("MemorySize: 128", events)).unwrap();
    assert_eq!(found[0].function_name.as_deref(), Some("Processor"));
}

#[test]
fn sam_event_problems() {
    let event = |properties: &str, kind: &str, function_name: &str| {
        entries(&sam(
            function_name,
            &format!("        E:\n          Type: {kind}\n          Properties:\n{properties}"),
        ))
        .map(|f| f.len())
    };
    let named = "FunctionName: order-processor";
    assert_eq!(
        event("            StartingPosition: LATEST", "Kinesis", named),
        Err(vec![
            "t.yaml: resource Processor: event E: Stream is required".to_string()
        ])
    );
    let allowed = "allowed: Stream, StartingPosition, StartingPositionTimestamp, BatchSize, BisectBatchOnFunctionError, DestinationConfig, Enabled, FilterCriteria, FunctionResponseTypes, KmsKeyArn, MaximumBatchingWindowInSeconds, MaximumRecordAgeInSeconds, MaximumRetryAttempts, MetricsConfig, ParallelizationFactor, TumblingWindowInSeconds";
    assert_eq!(
        event("            EventSourceArn: x", "DynamoDB", named),
        Err(vec![
            format!("t.yaml: resource Processor: event E: EventSourceArn: unknown key of a SAM DynamoDB event; {allowed}"),
            "t.yaml: resource Processor: event E: Stream is required".to_string(),
        ])
    );
    assert_eq!(
        event("            Stream: orders", "Kinesys", named),
        Err(vec!["t.yaml: resource Processor: event E: Type = \"Kinesys\": not a SAM event type; the stream ones are Kinesis and DynamoDB".to_string()])
    );
    // Every problem of an event at once: keys, values, the function.
    assert_eq!(
        event(
            "            Stream: !Ref Nope\n            StartingPosition: LATEST\n            Batch: 1",
            "Kinesis",
            "FunctionName: !Ref Missing"
        ),
        Err(vec![
            format!("t.yaml: resource Processor: event E: Batch: unknown key of a SAM Kinesis event; {allowed}"),
            "t.yaml: resource Processor: event E: Stream: Ref Nope: no parameter or resource Nope in the template, nor in [template] resources".to_string(),
            "t.yaml: resource Processor: event E: FunctionName: Ref Processor: resource Processor: FunctionName: Ref Missing: no parameter or resource Missing in the template, nor in [template] resources".to_string(),
        ])
    );
}

#[test]
fn template_mappings_go_through_the_one_validation() {
    use crate::config::{load_with_template, TemplateOptions};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, super::tests::WORLD).unwrap();
    let template = dir.path().join("t.yaml");
    let options = TemplateOptions {
        path: template.clone(),
        ..TemplateOptions::default()
    };
    // No [[mappings]] in the config: valid, the template gives one.
    std::fs::write(&template, cfn("", "orders", "order-processor", "")).unwrap();
    let (loaded, _) = load_with_template(Some(&config), Some(&options)).unwrap();
    assert_eq!(loaded.mappings.len(), 1);
    assert_eq!(loaded.mappings[0].name, "M");
    assert_eq!(loaded.mappings[0].batch_size, 100);
    // A range and an unknown function: resolve's messages, under the logical id.
    std::fs::write(&template, cfn("", "orders", "nope", "      BatchSize: 0")).unwrap();
    let err = load_with_template(Some(&config), Some(&options)).unwrap_err();
    assert_eq!(
        err.problems,
        vec![
            "mapping \"M\": function_name = \"nope\": no such function (defined: \"order-processor\")",
            "mapping \"M\": batch_size = 0: must be 1..=10000",
        ]
    );
    // Template problems first, then the config's, without "no [[mappings]]".
    let broken = super::tests::WORLD.replace("[aws]", "checkpoint_flush_ms = 99999999\n[aws]");
    std::fs::write(&config, broken).unwrap();
    std::fs::write(&template, cfn("", "!Ref X", "order-processor", "")).unwrap();
    let err = load_with_template(Some(&config), Some(&options)).unwrap_err();
    let origin = template.display();
    assert_eq!(
        err.problems,
        vec![
            format!("{origin}: resource M: EventSourceArn: Ref X: no parameter or resource X in the template, nor in [template] resources"),
            "top level: checkpoint_flush_ms = 99999999: must be 0..=60000".to_string(),
        ]
    );
    // Nothing to run: the message names both places a mapping could come from.
    std::fs::write(
        &config,
        format!("{}\n[admin]\nenabled = false\n", super::tests::WORLD),
    )
    .unwrap();
    std::fs::write(&template, "Resources: {}\n").unwrap();
    let err = load_with_template(Some(&config), Some(&options)).unwrap_err();
    assert_eq!(
        err.problems,
        vec![format!("no [[mappings]] in the config, no Kinesis or DynamoDB mapping in {origin} and [admin] enabled = false: nothing to run")]
    );
    std::fs::remove_file(&template).unwrap();
    let err = load_with_template(Some(&config), Some(&options)).unwrap_err();
    assert!(
        err.problems[0].starts_with(&format!("cannot read template {origin}: ")),
        "{err}"
    );
}
