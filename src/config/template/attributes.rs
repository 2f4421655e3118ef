//! What `Ref` and `Fn::GetAtt` give for the resources of a template, derived as
//! CloudFormation would from the resource's type, its name property and the account.
//!
//! Only the kinds a mapping's fields point at are known: Kinesis streams and consumers,
//! DynamoDB tables, Lambda and SAM functions, SQS queues, SNS topics and S3 buckets. A
//! resource without its name property is named by its logical id (CloudFormation would
//! generate `<stack>-<LogicalId>-<random>`; a bucket's is lowercased as bucket names are).
//! Values AWS chooses at creation (a table's stream label, a consumer's creation time)
//! cannot be derived; the error says where to give them. This file reads properties
//! through the `Properties` trait, so it knows nothing of intrinsic functions.

use crate::config::schema::{AwsIdentity, SimStreamConfig};
use crate::model::StreamKind;

/// A resource's properties, each resolved to text on demand.
pub(super) trait Properties {
    /// `Ok(None)`: the property is absent. `Err`: why it cannot be resolved.
    fn string(&self, key: &str) -> Result<Option<String>, String>;
    /// Whether the property is written at all.
    fn has(&self, key: &str) -> bool;
}

/// The account a template is resolved in: pseudo parameters and ARNs come from it.
pub(super) struct Env<'a> {
    pub(super) aws: &'a AwsIdentity,
    pub(super) streams: &'a [SimStreamConfig],
    pub(super) stack_name: &'a str,
}

impl Env<'_> {
    /// `aws`, `aws-cn` or `aws-us-gov`, from the region as AWS::Partition.
    pub(super) fn partition(&self) -> &'static str {
        if self.aws.region.starts_with("cn-") {
            "aws-cn"
        } else if self.aws.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// AWS::URLSuffix.
    pub(super) fn url_suffix(&self) -> &'static str {
        match self.partition() {
            "aws-cn" => "amazonaws.com.cn",
            _ => "amazonaws.com",
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition(),
            self.aws.region,
            self.aws.account_id
        )
    }
}

/// The types whose attributes are derived, and those attributes (`Ref` for `Ref`).
const DERIVED: &[(&str, &[&str])] = &[
    ("AWS::Kinesis::Stream", &["Ref", "Arn"]),
    (
        "AWS::Kinesis::StreamConsumer",
        &["ConsumerName", "StreamARN"],
    ),
    ("AWS::DynamoDB::Table", &["Ref", "Arn", "StreamArn"]),
    ("AWS::DynamoDB::GlobalTable", &["Ref", "Arn", "StreamArn"]),
    ("AWS::Lambda::Function", &["Ref", "Arn"]),
    ("AWS::Serverless::Function", &["Ref", "Arn"]),
    ("AWS::SQS::Queue", &["Ref", "Arn", "QueueName", "QueueUrl"]),
    ("AWS::SNS::Topic", &["Ref", "TopicArn", "TopicName"]),
    ("AWS::S3::Bucket", &["Ref", "Arn"]),
];

/// What `Ref` (`attribute` None) or `Fn::GetAtt id.attribute` gives for resource `id` of
/// type `kind`. `Err` says why not, and where to give the value instead.
pub(super) fn attribute(
    kind: &str,
    id: &str,
    attribute: Option<&str>,
    properties: &dyn Properties,
    env: &Env<'_>,
) -> Result<String, String> {
    let wanted = attribute.unwrap_or("Ref");
    let give = format!("give it in [template] resources: {id} = {{ {wanted} = \"...\" }}");
    let named = |key: &str| -> Result<String, String> {
        Ok(properties.string(key)?.unwrap_or_else(|| id.to_string()))
    };
    let required = |key: &str| -> Result<String, String> {
        properties
            .string(key)?
            .ok_or_else(|| format!("resource {id} has no {key} property; {give}"))
    };
    match (kind, wanted) {
        ("AWS::Kinesis::Stream", "Ref") => named("Name"),
        ("AWS::Kinesis::Stream", "Arn") => Ok(env.arn("kinesis", &format!("stream/{}", named("Name")?))),
        ("AWS::Kinesis::StreamConsumer", "ConsumerName" | "StreamARN") => required(wanted),
        ("AWS::Kinesis::StreamConsumer", "Ref" | "ConsumerARN") => Err(format!(
            "the ARN of a stream consumer holds its creation time, chosen by AWS; {give} (an EventSourceArn that is exactly this reads through the consumer by its name instead)"
        )),
        ("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable", "Ref") => named("TableName"),
        ("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable", "Arn") => {
            Ok(env.arn("dynamodb", &format!("table/{}", named("TableName")?)))
        }
        ("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable", "StreamArn") => {
            table_stream(&named("TableName")?, properties, env, &give)
        }
        ("AWS::Lambda::Function" | "AWS::Serverless::Function", "Ref") => named("FunctionName"),
        ("AWS::Lambda::Function" | "AWS::Serverless::Function", "Arn") => Ok(env.arn(
            "lambda",
            &format!("function:{}", named("FunctionName")?),
        )),
        ("AWS::SQS::Queue", "Arn") => Ok(env.arn("sqs", &named("QueueName")?)),
        ("AWS::SQS::Queue", "QueueName") => named("QueueName"),
        ("AWS::SQS::Queue", "Ref" | "QueueUrl") => Ok(format!(
            "https://sqs.{}.{}/{}/{}",
            env.aws.region,
            env.url_suffix(),
            env.aws.account_id,
            named("QueueName")?
        )),
        ("AWS::SNS::Topic", "Ref" | "TopicArn") => Ok(env.arn("sns", &named("TopicName")?)),
        ("AWS::SNS::Topic", "TopicName") => named("TopicName"),
        ("AWS::S3::Bucket", "Ref") => bucket_name(id, properties),
        ("AWS::S3::Bucket", "Arn") => Ok(format!(
            "arn:{}:s3:::{}",
            env.partition(),
            bucket_name(id, properties)?
        )),
        _ => Err(match DERIVED.iter().find(|(k, _)| *k == kind) {
            Some((_, derived)) => format!(
                "esm-sim does not derive the {wanted} of a {kind} (only {}); {give}",
                derived.join(", ")
            ),
            None => format!("esm-sim derives nothing of a {kind}; {give}"),
        }),
    }
}

/// A table's stream ARN: known only from a simulated DynamoDB stream of that table.
fn table_stream(
    table: &str,
    properties: &dyn Properties,
    env: &Env<'_>,
    give: &str,
) -> Result<String, String> {
    let simulated = env
        .streams
        .iter()
        .find(|s| s.kind == StreamKind::Dynamodb && s.name == table);
    if let Some(stream) = simulated {
        return Ok(stream.arn(env.aws));
    }
    if !properties.has("StreamSpecification") {
        return Err(format!(
            "table {table} has no StreamSpecification, so it has no stream; add one, or {give}"
        ));
    }
    Err(format!(
        "the stream ARN of a DynamoDB table is chosen by AWS; {give}, or simulate the table's stream ([[streams]] name = \"{table}\", kind = \"dynamodb\")"
    ))
}

fn bucket_name(id: &str, properties: &dyn Properties) -> Result<String, String> {
    Ok(properties
        .string("BucketName")?
        .unwrap_or_else(|| id.to_lowercase()))
}
