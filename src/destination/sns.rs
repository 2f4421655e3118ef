//! The SNS on-failure destination (spec 3.3): the failure record is the `Message` string
//! of one notification, published with Publish to a standard topic named by its ARN.
//!
//! The topic is checked once, in `connect` (GetTopicAttributes, with a client for the ARN's
//! region), so a missing topic stops the start with "Topic not found: <arn>" instead of
//! dead-lettering every record later. FIFO topics are refused there too: Lambda does not
//! take them as destinations, and every publish would fail for want of a MessageGroupId.
//! SNS takes at most 256 KB (262,144 bytes) per message: a larger document is refused
//! before anything is sent, with both sizes in the error, so that `delivery.rs` puts it in
//! the dead-letter file whole (AWS would drop it). `send` makes one attempt (the SDK's
//! standard retries under it); retrying and the dead-letter fallback are `delivery.rs`'s.

use anyhow::bail;
use async_trait::async_trait;

use super::{
    as_text, lookup_failed, send_failed, DestinationError, DiscardedBatch, FailureDestination,
};
use crate::arn::Arn;
use crate::aws::{self, AwsFactory, ErrorClass};

/// SNS's maximum message size: 256 KB.
pub const SNS_MAX_MESSAGE_BYTES: usize = crate::limits::SNS_MAX_MESSAGE_BYTES;

pub struct SnsDestination {
    arn: String,
    client: aws_sdk_sns::Client,
}

/// Checks the form `arn:PARTITION:sns:REGION:ACCOUNT:NAME`; returns the topic name.
fn parse_topic_arn(arn: &str) -> anyhow::Result<&str> {
    match Arn::of_named(arn, "sns") {
        Some(topic) => Ok(topic.resource()),
        None => bail!(
            "not an SNS topic ARN: {arn:?} (expected arn:aws:sns:REGION:ACCOUNT_ID:TOPIC_NAME)"
        ),
    }
}

/// The error for a document SNS would refuse, if it is one.
fn check_size(arn: &str, document: &[u8]) -> Result<(), DestinationError> {
    if document.len() > SNS_MAX_MESSAGE_BYTES {
        return Err(DestinationError(format!(
            "failure record for {arn} not sent: it is {} bytes, over the SNS message limit of \
             {SNS_MAX_MESSAGE_BYTES} bytes (256 KB)",
            document.len()
        )));
    }
    Ok(())
}

impl SnsDestination {
    /// GetTopicAttributes at start; a missing topic is "Topic not found: <arn>"; a
    /// malformed ARN names the expected form.
    pub async fn connect(factory: &AwsFactory, topic_arn: &str) -> anyhow::Result<SnsDestination> {
        let name = parse_topic_arn(topic_arn)?;
        if name.ends_with(".fifo") {
            bail!(
                "{topic_arn} is a FIFO topic: an on-failure destination must be a standard topic"
            );
        }
        let client = aws::sns(&factory.config_for(topic_arn).await);
        client
            .get_topic_attributes()
            .topic_arn(topic_arn)
            .send()
            .await
            .map_err(|error| {
                let missing = aws::classify(&error) == ErrorClass::NotFound;
                lookup_failed(missing, "SNS", "topic", topic_arn, aws::describe(&error))
            })?;
        Ok(SnsDestination {
            arn: topic_arn.to_string(),
            client,
        })
    }
}

#[async_trait]
impl FailureDestination for SnsDestination {
    fn describe(&self) -> String {
        self.arn.clone()
    }

    async fn send(&self, batch: &DiscardedBatch<'_>) -> Result<(), DestinationError> {
        check_size(&self.arn, batch.document)?;
        let message = as_text(&self.arn, batch.document, "SNS messages are text")?;
        self.client
            .publish()
            .topic_arn(&self.arn)
            .message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                let gone = (aws::classify(&error) == ErrorClass::NotFound).then_some("topic");
                send_failed("Publish", &self.arn, gone, aws::describe(&error))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_arn_gives_its_name_and_anything_else_names_the_expected_form() {
        assert_eq!(
            parse_topic_arn("arn:aws:sns:eu-west-1:111122223333:failures").expect("valid"),
            "failures"
        );
        for bad in [
            "failures",
            "arn:aws:sqs:eu-west-1:111122223333:failures",
            "arn:aws:sns:eu-west-1::failures",
            "arn:aws:sns:eu-west-1:111122223333:",
            "arn:aws:sns:eu-west-1:111122223333:failures:8d3c-subscription",
        ] {
            let error = parse_topic_arn(bad).expect_err(bad).to_string();
            assert!(
                error.contains("arn:aws:sns:REGION:ACCOUNT_ID:TOPIC_NAME"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_size_limit_is_256_kb_inclusive() {
        assert!(check_size("t", &vec![b'x'; SNS_MAX_MESSAGE_BYTES]).is_ok());
        let error = check_size("t", &vec![b'x'; SNS_MAX_MESSAGE_BYTES + 1])
            .expect_err("over")
            .to_string();
        assert!(error.contains("262145 bytes"), "{error}");
        assert!(error.contains("262144 bytes"), "{error}");
    }
}
