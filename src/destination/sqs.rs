//! The SQS on-failure destination (spec 3.3): the failure record is the body of one
//! message, byte for byte, sent with SendMessage to a standard queue named by its ARN.
//!
//! The queue URL is looked up once, in `connect` (GetQueueUrl with the name and owner
//! account of the ARN, with a client for the ARN's region), so a mistyped or missing queue
//! stops the start with "Queue not found: <arn>" instead of dead-lettering every record
//! later. FIFO queues are refused there too: Lambda does not take them as destinations, and
//! every send would fail for want of a MessageGroupId. `send` makes one attempt (the SDK's
//! standard retries under it); retrying and the dead-letter fallback are `delivery.rs`'s.
//! SDK errors end here, as one line of text in a `DestinationError`.

use anyhow::{anyhow, bail};
use async_trait::async_trait;

use super::{
    as_text, lookup_failed, send_failed, DestinationError, DiscardedBatch, FailureDestination,
};
use crate::arn::Arn;
use crate::aws::{self, AwsFactory, ErrorClass};

pub struct SqsDestination {
    arn: String,
    queue_url: String,
    client: aws_sdk_sqs::Client,
}

/// The parts of `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
#[derive(Debug, PartialEq, Eq)]
struct QueueArn<'a> {
    account: &'a str,
    name: &'a str,
}

fn parse_queue_arn(arn: &str) -> anyhow::Result<QueueArn<'_>> {
    match Arn::of_named(arn, "sqs") {
        Some(queue) => Ok(QueueArn {
            account: queue.account().unwrap_or_default(),
            name: queue.resource(),
        }),
        None => bail!(
            "not an SQS queue ARN: {arn:?} (expected arn:aws:sqs:REGION:ACCOUNT_ID:QUEUE_NAME)"
        ),
    }
}

/// Whether an SQS error says the queue does not exist. The SDK knows the query-compatible
/// code (`AWS.SimpleQueueService.NonExistentQueue`, which `classify` covers); servers that
/// send only the JSON `__type` give the bare `QueueDoesNotExist`.
fn queue_missing<E: aws_sdk_sqs::error::ProvideErrorMetadata>(
    error: &aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    aws::classify(error) == ErrorClass::NotFound
        || aws::error_code(error) == Some("QueueDoesNotExist")
}

impl SqsDestination {
    /// From a queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`): GetQueueUrl(QueueName,
    /// QueueOwnerAWSAccountId) at start. A queue that does not exist is the error
    /// "Queue not found: <arn>"; a malformed ARN names the expected form.
    pub async fn connect(factory: &AwsFactory, queue_arn: &str) -> anyhow::Result<SqsDestination> {
        let parsed = parse_queue_arn(queue_arn)?;
        if parsed.name.ends_with(".fifo") {
            bail!(
                "{queue_arn} is a FIFO queue: an on-failure destination must be a standard queue"
            );
        }
        let client = aws::sqs(&factory.config_for(queue_arn).await);
        let output = client
            .get_queue_url()
            .queue_name(parsed.name)
            .queue_owner_aws_account_id(parsed.account)
            .send()
            .await
            .map_err(|error| {
                let missing = queue_missing(&error);
                lookup_failed(missing, "SQS", "queue", queue_arn, aws::describe(&error))
            })?;
        let queue_url = output
            .queue_url()
            .filter(|url| !url.is_empty())
            .ok_or_else(|| anyhow!("GetQueueUrl for {queue_arn} returned no QueueUrl"))?
            .to_string();
        Ok(SqsDestination {
            arn: queue_arn.to_string(),
            queue_url,
            client,
        })
    }

    /// The queue's URL, as GetQueueUrl gave it (`esm-sim redrive` reads the queue back).
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The SDK client for the queue's region.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

#[async_trait]
impl FailureDestination for SqsDestination {
    fn describe(&self) -> String {
        self.arn.clone()
    }

    async fn send(&self, batch: &DiscardedBatch<'_>) -> Result<(), DestinationError> {
        let body = as_text(&self.arn, batch.document, "SQS message bodies are text")?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                let gone = queue_missing(&error).then_some("queue");
                send_failed("SendMessage", &self.arn, gone, aws::describe(&error))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_arn_gives_its_account_and_name_and_anything_else_names_the_expected_form() {
        assert_eq!(
            parse_queue_arn("arn:aws:sqs:eu-west-1:111122223333:failures").expect("valid"),
            QueueArn {
                account: "111122223333",
                name: "failures"
            }
        );
        for bad in [
            "failures",
            "arn:aws:sns:eu-west-1:111122223333:failures",
            "arn:aws:sqs:eu-west-1::failures",
            "arn:aws:sqs:eu-west-1:111122223333:",
            "arn:aws:sqs:eu-west-1:111122223333:a:b",
            "https://sqs.eu-west-1.amazonaws.com/111122223333/failures",
        ] {
            let error = parse_queue_arn(bad).expect_err(bad).to_string();
            assert!(
                error.contains("arn:aws:sqs:REGION:ACCOUNT_ID:QUEUE_NAME"),
                "{error}"
            );
        }
    }
}
