//! Where `esm-sim redrive` reads on-failure records from: an SQS queue (the destination
//! itself, or a queue subscribed to the SNS destination topic, with or without raw message
//! delivery), a JSONL file (a `file://` destination or the dead-letter file), or the
//! objects of an S3 destination, which also keep the event invoked (`payload`).
//!
//! The failure record's JSON is read by `event::failure_record::parse_batch_info`, next to
//! its writer; this module only finds the document: an SQS body is the record itself, or
//! an SNS notification whose `Message` is the record. The queue side is the SQS calls
//! redrive needs (receive with a visibility timeout, delete, make visible again), and the
//! bucket side the S3 calls (list under a prefix, read, delete), so that `redrive.rs` holds
//! the decisions and no SDK type.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::arn::Arn;
use crate::aws::{self, AwsFactory};
use crate::destination::sqs::SqsDestination;
use crate::event::failure_record::parse_batch_info;
use crate::event::BatchInfo;
use crate::model::{SequenceNumber, StreamKind};

/// What `--from` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromSpec {
    /// A queue URL (`https://...`) or ARN (`arn:aws:sqs:...`).
    Queue(String),
    /// A JSONL file (`file://` prefix allowed).
    File(PathBuf),
    /// The objects of an S3 destination: `s3://BUCKET[/PREFIX]`, the prefix `aws/lambda/`
    /// when none is given.
    Bucket { bucket: String, prefix: String },
}

impl FromSpec {
    pub fn parse(from: &str) -> Result<FromSpec, String> {
        if let Some(rest) = from.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("--from {from:?}: no bucket (s3://BUCKET/PREFIX)"));
            }
            let prefix = if prefix.is_empty() {
                LAMBDA_PREFIX
            } else {
                prefix
            };
            return Ok(FromSpec::Bucket {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if from.starts_with("http://") || from.starts_with("https://") {
            return Ok(FromSpec::Queue(from.to_string()));
        }
        if from.starts_with("arn:") {
            return if Arn::parse(from).is_ok_and(|arn| arn.service() == "sqs") {
                Ok(FromSpec::Queue(from.to_string()))
            } else {
                Err(format!(
                    "--from {from:?}: an ARN must be an SQS queue's (subscribe a queue to an SNS topic to redrive from it)"
                ))
            };
        }
        let path = from.strip_prefix("file://").unwrap_or(from);
        if path.is_empty() {
            return Err("--from: empty".to_string());
        }
        Ok(FromSpec::File(PathBuf::from(path)))
    }
}

/// Where Lambda writes its S3 failure objects in a bucket.
const LAMBDA_PREFIX: &str = "aws/lambda/";

/// Where one failure record came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An SQS message, by its MessageId.
    Message(String),
    /// A line of the file, 1-based.
    Line(usize),
    /// An S3 object, by its key.
    Object(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Message(id) => write!(f, "message {id}"),
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Object(key) => write!(f, "object {key}"),
        }
    }
}

/// The batch of an SQS message body: the failure record, or an SNS notification (raw
/// message delivery off) whose `Message` is the failure record.
pub fn batch_of_body(body: &str) -> Result<BatchInfo, String> {
    if let Ok(Value::Object(envelope)) = serde_json::from_str::<Value>(body) {
        if envelope.get("Type").and_then(Value::as_str) == Some("Notification") {
            let message = envelope
                .get("Message")
                .and_then(Value::as_str)
                .ok_or("an SNS notification without a Message string")?;
            return parse_batch_info(message.as_bytes());
        }
    }
    parse_batch_info(body.as_bytes())
}

/// What an S3 failure object holds: its batch, and the event the function was invoked
/// with for it (`payload`), with the sequence numbers of that event's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptBatch {
    pub batch: BatchInfo,
    pub event: Vec<u8>,
    pub invoked: Vec<SequenceNumber>,
}

/// The batch and event of an S3 failure object's body.
pub fn kept_batch(body: &[u8]) -> Result<KeptBatch, String> {
    let batch = parse_batch_info(body)?;
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| format!("not a failure object: {e}"))?;
    let event = parsed
        .get("payload")
        .and_then(Value::as_str)
        .ok_or("no payload string: not an S3 failure object")?;
    let records: Value =
        serde_json::from_str(event).map_err(|e| format!("payload: not a JSON event: {e}"))?;
    let (inner, field) = match batch.kind {
        StreamKind::Kinesis => ("kinesis", "sequenceNumber"),
        StreamKind::Dynamodb => ("dynamodb", "SequenceNumber"),
    };
    let invoked = records
        .get("Records")
        .and_then(Value::as_array)
        .ok_or("payload: no Records array")?
        .iter()
        .map(|record| {
            record[inner][field]
                .as_str()
                .map(|s| SequenceNumber(s.to_string()))
                .ok_or_else(|| format!("payload: a record without {inner}.{field}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if invoked.is_empty() {
        return Err("payload: no records".into());
    }
    Ok(KeptBatch {
        batch,
        event: event.as_bytes().to_vec(),
        invoked,
    })
}

/// One line of a failure file that holds a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLine {
    pub number: usize,
    pub text: String,
}

/// The non-blank lines of a JSONL failure file (the file is only read).
pub fn read_lines(path: &Path) -> anyhow::Result<Vec<FileLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the failure file {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| FileLine {
            number: i + 1,
            text: line.to_string(),
        })
        .collect())
}

/// One received SQS message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
}

/// An SQS queue read by redrive.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// From a queue URL, or an ARN (looked up with GetQueueUrl, "Queue not found: <arn>").
    pub async fn connect(factory: &AwsFactory, url_or_arn: &str) -> anyhow::Result<Queue> {
        if url_or_arn.starts_with("arn:") {
            let queue = SqsDestination::connect(factory, url_or_arn).await?;
            return Ok(Queue {
                client: queue.client().clone(),
                url: queue.queue_url().to_string(),
            });
        }
        Ok(Queue {
            client: aws::sqs(&factory.config_for(url_or_arn).await),
            url: url_or_arn.to_string(),
        })
    }

    /// Up to `max` (1..=10) messages, hidden from other readers for `visibility_seconds`.
    /// Waits up to a second for messages (a long poll asks every SQS server, so an empty
    /// answer means the queue has nothing visible).
    pub async fn receive(&self, max: i32, visibility_seconds: i32) -> anyhow::Result<Vec<Message>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, crate::limits::SQS_RECEIVE_MAX_MESSAGES))
            .visibility_timeout(visibility_seconds)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("ReceiveMessage from {}: {}", self.url, aws::describe(&e))
            })?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Message {
                id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    pub async fn delete(&self, message: &Message) -> anyhow::Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                anyhow::anyhow!(
                    "DeleteMessage {} from {}: {}",
                    message.id,
                    self.url,
                    aws::describe(&e)
                )
            })
    }

    /// Makes the message visible again at once (visibility timeout 0), so a rerun sees it.
    pub async fn release(&self, message: &Message) -> anyhow::Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                anyhow::anyhow!(
                    "ChangeMessageVisibility {} on {}: {}",
                    message.id,
                    self.url,
                    aws::describe(&e)
                )
            })
    }
}

/// An S3 bucket read by redrive: the keys under a prefix, each object, deleting one.
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    prefix: String,
}

impl Bucket {
    pub async fn connect(factory: &AwsFactory, name: &str, prefix: &str) -> Bucket {
        let arn = format!("arn:aws:s3:::{name}");
        Bucket {
            client: aws::s3(&factory.config_for(&arn).await),
            name: name.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// Up to `max` keys under the prefix, in key order (ListObjectsV2, page by page).
    pub async fn keys(&self, max: usize) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        while keys.len() < max {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(&self.prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("ListObjectsV2 on {}: {}", self.name, aws::describe(&e))
                })?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            token = output.next_continuation_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        keys.truncate(max);
        Ok(keys)
    }

    pub async fn read(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let output = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("GetObject {key} from {}: {}", self.name, aws::describe(&e))
            })?;
        let body = output
            .body
            .collect()
            .await
            .with_context(|| format!("reading {key} from {}", self.name))?;
        Ok(body.into_bytes().to_vec())
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                anyhow::anyhow!(
                    "DeleteObject {key} from {}: {}",
                    self.name,
                    aws::describe(&e)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::failure_record::{Condition, FailureRecord};
    use crate::model::ShardId;

    fn document() -> String {
        let record = FailureRecord {
            request_id: "r".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            condition: Condition::RecordAgeExceeded,
            approximate_invoke_count: 1,
            response: None,
            timestamp_ms: 0,
            batch: BatchInfo {
                kind: StreamKind::Kinesis,
                shard_id: ShardId("shardId-000000000000".into()),
                start_sequence_number: SequenceNumber("10".into()),
                end_sequence_number: SequenceNumber("20".into()),
                first_arrival_ms: 0,
                last_arrival_ms: 0,
                batch_size: 2,
                stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s".into(),
            },
        };
        String::from_utf8(record.to_json()).expect("utf-8")
    }

    #[test]
    fn a_body_is_the_record_itself_or_an_sns_notification_carrying_it() {
        let raw = document();
        let batch = batch_of_body(&raw).expect("raw");
        assert_eq!(batch.end_sequence_number, SequenceNumber("20".into()));
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": raw,
        })
        .to_string();
        assert_eq!(batch_of_body(&envelope), Ok(batch));
        let empty = serde_json::json!({"Type": "Notification"}).to_string();
        assert!(batch_of_body(&empty)
            .expect_err("no message")
            .contains("Message"));
        let other = serde_json::json!({"Type": "Notification", "Message": "hello"}).to_string();
        assert!(batch_of_body(&other).is_err());
        assert!(batch_of_body("{}")
            .expect_err("not a record")
            .contains("KinesisBatchInfo"));
    }

    #[test]
    fn from_names_a_queue_by_url_or_arn_or_else_a_file() {
        let url = "http://127.0.0.1:5000/123456789012/q";
        assert_eq!(FromSpec::parse(url), Ok(FromSpec::Queue(url.into())));
        let arn = "arn:aws:sqs:us-east-1:123456789012:q";
        assert_eq!(FromSpec::parse(arn), Ok(FromSpec::Queue(arn.into())));
        assert!(FromSpec::parse("arn:aws:sns:us-east-1:123456789012:t")
            .expect_err("sns")
            .contains("SQS"));
        assert_eq!(
            FromSpec::parse("file://.esm-sim/failures.jsonl"),
            Ok(FromSpec::File(".esm-sim/failures.jsonl".into()))
        );
        assert_eq!(
            FromSpec::parse("dead.jsonl"),
            Ok(FromSpec::File("dead.jsonl".into()))
        );
        assert!(FromSpec::parse("file://").is_err());
    }

    #[test]
    fn from_names_a_bucket_with_lambdas_prefix_unless_one_is_given() {
        assert_eq!(
            FromSpec::parse("s3://failures"),
            Ok(FromSpec::Bucket {
                bucket: "failures".into(),
                prefix: "aws/lambda/".into()
            })
        );
        assert_eq!(
            FromSpec::parse("s3://failures/aws/lambda/u-1/"),
            Ok(FromSpec::Bucket {
                bucket: "failures".into(),
                prefix: "aws/lambda/u-1/".into()
            })
        );
        assert!(FromSpec::parse("s3:///x").is_err());
    }

    #[test]
    fn an_s3_object_gives_its_batch_its_event_and_the_events_sequence_numbers() {
        let event = r#"{"Records":[{"kinesis":{"sequenceNumber":"10"}},{"kinesis":{"sequenceNumber":"20"}}]}"#;
        let body = crate::destination::s3::object_body(document().as_bytes(), event.as_bytes())
            .expect("body");
        let kept = kept_batch(&body).expect("kept");
        assert_eq!(kept.batch, batch_of_body(&document()).expect("batch"));
        assert_eq!(kept.event, event.as_bytes());
        assert_eq!(
            kept.invoked,
            vec![SequenceNumber("10".into()), SequenceNumber("20".into())]
        );
        assert!(kept_batch(document().as_bytes())
            .expect_err("no payload")
            .contains("payload"));
        let empty =
            crate::destination::s3::object_body(document().as_bytes(), br#"{"Records":[]}"#)
                .expect("body");
        assert!(kept_batch(&empty).is_err());
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_are_the_files_own() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, "a\n\n  \nb\n").expect("write");
        let lines = read_lines(&path).expect("read");
        assert_eq!(
            lines,
            vec![
                FileLine {
                    number: 1,
                    text: "a".into()
                },
                FileLine {
                    number: 4,
                    text: "b".into()
                }
            ]
        );
        let error = read_lines(&dir.path().join("missing.jsonl")).expect_err("missing");
        assert!(error.to_string().contains("missing.jsonl"), "{error}");
    }
}
