//! Amazon Resource Names, taken apart in one place.
//!
//! Config validation, the sources, the ops commands and assembly all need a piece of an
//! ARN (its service, its region, a stream's name, a function's name). They ask this module
//! instead of splitting on ':' themselves, so every caller agrees on what an ARN is:
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, partition `aws…`, service and resource
//! not empty (region and account may be, as in S3's `arn:aws:s3:::bucket`). The resource
//! keeps any further ':' (`function:NAME:QUALIFIER`, `…/consumer/NAME:TS`).
//! Parsing never panics: a malformed ARN is an `ArnError` naming the text and what is wrong.

use std::fmt;

/// An ARN's fields, borrowed from the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    text: &'a str,
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// Why a text is not the ARN asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {expected}: {why}")]
pub struct ArnError {
    pub text: String,
    pub expected: &'static str,
    pub why: &'static str,
}

impl ArnError {
    fn new(text: &str, expected: &'static str, why: &'static str) -> ArnError {
        ArnError {
            text: text.to_string(),
            expected,
            why,
        }
    }
}

const AN_ARN: &str = "an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)";

impl<'a> Arn<'a> {
    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, partition `aws…`.
    pub fn parse(text: &'a str) -> Result<Arn<'a>, ArnError> {
        let fail = |why| ArnError::new(text, AN_ARN, why);
        let mut fields = text.splitn(6, ':');
        if fields.next() != Some("arn") {
            return Err(fail("it does not start with \"arn:\""));
        }
        let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(fail("it has fewer than six ':'-separated fields"));
        };
        if !partition.starts_with("aws") {
            return Err(fail("the partition does not start with \"aws\""));
        }
        if service.is_empty() {
            return Err(fail("the service is empty"));
        }
        if resource.is_empty() {
            return Err(fail("the resource is empty"));
        }
        Ok(Arn {
            text,
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The whole ARN as given.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    pub fn partition(&self) -> &'a str {
        self.partition
    }

    /// `kinesis`, `dynamodb`, `sqs`, `sns`, `lambda`, ...
    pub fn service(&self) -> &'a str {
        self.service
    }

    /// The region, None when the ARN leaves it empty.
    pub fn region(&self) -> Option<&'a str> {
        Some(self.region).filter(|r| !r.is_empty())
    }

    /// The account id, None when the ARN leaves it empty.
    pub fn account(&self) -> Option<&'a str> {
        Some(self.account).filter(|a| !a.is_empty())
    }

    /// Everything after the account: `stream/NAME`, `function:NAME:QUALIFIER`, a queue name.
    pub fn resource(&self) -> &'a str {
        self.resource
    }

    /// The ARN of a resource named directly after the account
    /// (`arn:PARTITION:SERVICE:REGION:ACCOUNT:NAME`, an SQS queue or SNS topic), with every
    /// field present; `None` for anything else.
    pub fn of_named(text: &'a str, service: &str) -> Option<Arn<'a>> {
        Arn::parse(text).ok().filter(|arn| {
            arn.service == service
                && arn.region().is_some()
                && arn.account().is_some()
                && !arn.resource.is_empty()
                && !arn.resource.contains(':')
        })
    }
}

/// The bucket of an S3 bucket ARN (`arn:PARTITION:s3:::BUCKET`: no region, no account, no
/// key); `None` for anything else.
pub fn s3_bucket(text: &str) -> Option<&str> {
    Arn::parse(text)
        .ok()
        .filter(|arn| {
            arn.service == "s3"
                && arn.region().is_none()
                && arn.account().is_none()
                && !arn.resource.is_empty()
                && !arn.resource.contains(['/', ':'])
        })
        .map(|arn| arn.resource)
}

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// The stream ARN shapes AWS accepts as event sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamArn<'a> {
    /// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`
    Kinesis { arn: Arn<'a>, name: &'a str },
    /// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:TIMESTAMP`
    KinesisConsumer {
        arn: Arn<'a>,
        /// The consumer's stream's ARN (`…:stream/NAME`).
        stream_arn: &'a str,
        stream_name: &'a str,
        /// `CONSUMER:TIMESTAMP` as written.
        consumer: &'a str,
    },
    /// `arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL`
    DynamodbStream {
        arn: Arn<'a>,
        table: &'a str,
        label: &'a str,
    },
}

const A_STREAM_ARN: &str = "a stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME, \
    …:stream/NAME/consumer/CONSUMER:TIMESTAMP or \
    arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL)";

impl<'a> StreamArn<'a> {
    pub fn parse(text: &'a str) -> Result<StreamArn<'a>, ArnError> {
        let arn = Arn::parse(text).map_err(|e| ArnError::new(text, A_STREAM_ARN, e.why))?;
        let segments: Vec<&str> = arn.resource().split('/').collect();
        let named = |s: &&str| !s.is_empty();
        match (arn.service(), segments.as_slice()) {
            ("kinesis", ["stream", name]) if named(name) => Ok(StreamArn::Kinesis { arn, name }),
            ("kinesis", ["stream", name, "consumer", consumer])
                if named(name) && named(consumer) =>
            {
                let stream_len = text.len() - arn.resource().len() + "stream/".len() + name.len();
                Ok(StreamArn::KinesisConsumer {
                    arn,
                    stream_arn: &text[..stream_len],
                    stream_name: name,
                    consumer,
                })
            }
            ("dynamodb", ["table", table, "stream", label]) if named(table) && named(label) => {
                Ok(StreamArn::DynamodbStream { arn, table, label })
            }
            _ => Err(ArnError::new(
                text,
                A_STREAM_ARN,
                "the service and resource are of no stream",
            )),
        }
    }

    /// The ARN's fields.
    pub fn arn(&self) -> Arn<'a> {
        match self {
            StreamArn::Kinesis { arn, .. }
            | StreamArn::KinesisConsumer { arn, .. }
            | StreamArn::DynamodbStream { arn, .. } => *arn,
        }
    }
}

/// The function's name out of a name, partial ARN or ARN, without a `:qualifier`
/// (version or alias): `arn:aws:lambda:us-east-1:123456789012:function:f:live` → `f`.
pub fn lambda_function_name(s: &str) -> &str {
    let rest = match s.rfind("function:") {
        Some(at) => &s[at + "function:".len()..],
        None => s,
    };
    rest.split(':').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_or_topic_arn_has_every_field_and_a_plain_name() {
        let queue = Arn::of_named("arn:aws:sqs:us-east-1:111122223333:orders-dlq", "sqs");
        assert_eq!(
            queue.map(|a| (a.account(), a.resource())),
            Some((Some("111122223333"), "orders-dlq"))
        );
        assert!(Arn::of_named("arn:aws:sqs:us-east-1:111122223333:orders", "sns").is_none());
        assert!(Arn::of_named("arn:aws:sqs::111122223333:orders", "sqs").is_none());
        assert!(Arn::of_named("arn:aws:sqs:us-east-1::orders", "sqs").is_none());
        assert!(Arn::of_named("arn:aws:sqs:us-east-1:111122223333:", "sqs").is_none());
        assert!(Arn::of_named("arn:aws:sns:us-east-1:111122223333:a:b", "sns").is_none());
        assert!(Arn::of_named("orders", "sqs").is_none());
    }

    #[test]
    fn a_bucket_arn_has_only_the_bucket() {
        assert_eq!(s3_bucket("arn:aws:s3:::esm-failures"), Some("esm-failures"));
        assert_eq!(s3_bucket("arn:aws:s3:::b/key"), None);
        assert_eq!(s3_bucket("arn:aws:s3:us-east-1::b"), None);
        assert_eq!(s3_bucket("arn:aws:s3:::"), None);
        assert_eq!(s3_bucket("arn:aws:sqs:::b"), None);
    }

    #[test]
    fn an_arn_has_named_fields() {
        let arn = Arn::parse("arn:aws:kinesis:eu-west-1:111122223333:stream/orders").unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.service(), "kinesis");
        assert_eq!(arn.region(), Some("eu-west-1"));
        assert_eq!(arn.account(), Some("111122223333"));
        assert_eq!(arn.resource(), "stream/orders");
        assert_eq!(arn.to_string(), arn.as_str());

        let lambda = Arn::parse("arn:aws-cn:lambda:cn-north-1:1:function:f:live").unwrap();
        assert_eq!(lambda.partition(), "aws-cn");
        assert_eq!(lambda.resource(), "function:f:live");

        let bucket = Arn::parse("arn:aws:s3:::bucket").unwrap();
        assert_eq!((bucket.region(), bucket.account()), (None, None));
        assert_eq!(Arn::parse("arn:aws:sqs::1:q").unwrap().region(), None);
    }

    #[test]
    fn malformed_arns_are_errors_that_say_why() {
        for (text, why) in [
            ("", "it does not start with \"arn:\""),
            ("orders", "it does not start with \"arn:\""),
            ("ARN:aws:sqs:r:1:q", "it does not start with \"arn:\""),
            (
                "arn:aws:sqs:r:1",
                "it has fewer than six ':'-separated fields",
            ),
            ("arn:", "it has fewer than six ':'-separated fields"),
            (
                "arn:gcp:sqs:r:1:q",
                "the partition does not start with \"aws\"",
            ),
            ("arn:aws::r:1:q", "the service is empty"),
            ("arn:aws:sqs:r:1:", "the resource is empty"),
        ] {
            let error = Arn::parse(text).unwrap_err();
            assert_eq!(error.why, why, "{text:?}");
            assert_eq!(error.text, text);
            assert!(error
                .to_string()
                .starts_with(&format!("{text:?} is not an ARN")));
        }
    }

    #[test]
    fn stream_arns() {
        let kinesis = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
        assert!(matches!(
            StreamArn::parse(kinesis),
            Ok(StreamArn::Kinesis { name: "orders", .. })
        ));
        let consumer = format!("{kinesis}/consumer/c1:1700000000");
        match StreamArn::parse(&consumer).unwrap() {
            StreamArn::KinesisConsumer {
                stream_arn,
                stream_name,
                consumer,
                arn,
            } => {
                assert_eq!(stream_arn, kinesis);
                assert_eq!(stream_name, "orders");
                assert_eq!(consumer, "c1:1700000000");
                assert_eq!(arn.region(), Some("us-east-1"));
            }
            other => panic!("{other:?}"),
        }
        let ddb =
            "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2026-01-01T00:00:00.000";
        let parsed = StreamArn::parse(ddb).unwrap();
        assert!(matches!(
            parsed,
            StreamArn::DynamodbStream {
                table: "users",
                label: "2026-01-01T00:00:00.000",
                ..
            }
        ));
        assert_eq!(parsed.arn().as_str(), ddb);
    }

    #[test]
    fn malformed_stream_arns_are_errors() {
        for text in [
            "orders",
            "arn:aws:kinesis:us-east-1:1:stream/",
            "arn:aws:kinesis:us-east-1:1:stream/a/b",
            "arn:aws:kinesis:us-east-1:1:stream/a/consumer/",
            "arn:aws:kinesis:us-east-1:1:table/t/stream/l",
            "arn:aws:dynamodb:us-east-1:1:table/t",
            "arn:aws:dynamodb:us-east-1:1:table//stream/l",
            "arn:aws:sqs:us-east-1:1:stream/q",
            "arn:aws:kinesis",
        ] {
            let error = StreamArn::parse(text).unwrap_err();
            assert!(
                error.to_string().contains("is not a stream ARN"),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn function_names_lose_arn_prefix_and_qualifier() {
        assert_eq!(lambda_function_name("order-processor"), "order-processor");
        assert_eq!(
            lambda_function_name("order-processor:live"),
            "order-processor"
        );
        assert_eq!(
            lambda_function_name("123456789012:function:order-processor"),
            "order-processor"
        );
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:123456789012:function:order-processor"),
            "order-processor"
        );
        assert_eq!(
            lambda_function_name(
                "arn:aws:lambda:us-east-1:123456789012:function:order-processor:7"
            ),
            "order-processor"
        );
        assert_eq!(lambda_function_name(""), "");
    }
}
