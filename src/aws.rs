//! The one place that builds AWS SDK clients, and reads SDK errors.
//!
//! Region: the region of the resource's ARN (a stream in eu-west-1 is read with an
//! eu-west-1 client), else `[aws] region`. Credentials: the standard chain (environment,
//! profile, SSO, container, instance). Endpoint: `[aws] endpoint_url` if set, else the
//! standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so pointing
//! esm-sim at LocalStack is one setting. The behaviour version is pinned, every client has
//! connect and operation timeouts, and SDK retries are off for the stream clients because
//! the engine counts and paces its own retries (throttles must never count as attempts);
//! destination clients keep the SDK's standard retries under the engine's own.
//!
//! SDK types stop here and in the modules that call AWS: errors are classified by
//! `classify` into what the engine treats differently.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;

use crate::arn::Arn;

/// Builds (and caches per region) the SDK configuration.
pub struct AwsFactory {
    endpoint_url: Option<String>,
    default_region: String,
    configs: Mutex<BTreeMap<String, SdkConfig>>,
}

impl AwsFactory {
    pub fn new(endpoint_url: Option<String>, default_region: String) -> Self {
        AwsFactory {
            endpoint_url,
            default_region,
            configs: Mutex::new(BTreeMap::new()),
        }
    }

    /// The SDK config for the region of `arn` (or the default region for a name).
    pub async fn config_for(&self, arn: &str) -> SdkConfig {
        let region = Arn::parse(arn)
            .ok()
            .and_then(|arn| arn.region())
            .unwrap_or(&self.default_region)
            .to_string();
        let mut configs = self.configs.lock().await;
        if let Some(config) = configs.get(&region) {
            return config.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
            .region(Region::new(region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        configs.insert(region, config.clone());
        config
    }
}

/// Kinesis client; SDK retries off (the engine paces and counts).
pub fn kinesis(config: &SdkConfig) -> aws_sdk_kinesis::Client {
    let conf = aws_sdk_kinesis::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// DynamoDB Streams client; SDK retries off (the engine paces and counts).
pub fn dynamodb_streams(config: &SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let conf = aws_sdk_dynamodbstreams::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(conf)
}

/// The longest a Lambda function can run (900 s), plus 10 s for the round trip.
pub const LAMBDA_MAX_INVOKE: Duration = Duration::from_secs(910);

/// Lambda client for the `lambda` function; SDK retries off (a throttled or failed Invoke
/// comes back to the engine, which paces it and does not count it). A synchronous Invoke
/// lasts as long as the function runs, so the read, attempt and operation timeouts are
/// long: the longest function timeout plus 10 s here, tightened by `LambdaFunction::connect`
/// to the function's own timeout plus 10 s.
pub fn lambda(config: &SdkConfig) -> aws_sdk_lambda::Client {
    let timeouts = lambda_timeouts(LAMBDA_MAX_INVOKE);
    let conf = aws_sdk_lambda::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// A Lambda client's timeouts: 5 s to connect, `limit` for the read, each attempt and
/// the whole operation (an Invoke lasts as long as the function runs).
pub fn lambda_timeouts(limit: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(limit)
        .operation_attempt_timeout(limit)
        .operation_timeout(limit)
        .build()
}

/// SQS client; the SDK's standard retries.
pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// SNS client; the SDK's standard retries.
pub fn sns(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// S3 client (the S3 destination, and redrive reading it back); SDK retries off (the
/// destination's delivery retries with backoff itself), path-style addressing
/// (`ENDPOINT/BUCKET/KEY`) so that a local endpoint such as moto on 127.0.0.1 works.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// DynamoDB client (the load generator's table writes); the SDK's standard retries.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// DynamoDB client for the lease table; SDK retries off (the lease keeper paces its own
/// renewals: a renewal kept in the SDK's backoff could outlive the lease it renews).
pub fn dynamodb_leases(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// How the engine treats an SDK error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, a 5xx, a timeout or a connection failure: back off, do not count.
    Transient,
    /// The service says the resource does not exist.
    NotFound,
    /// Anything else (bad request, access denied, ...).
    Permanent,
}

const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "KMSThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
];

/// The service's error code (`ExpiredIteratorException`, ...), if it sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(context) => context.err().code(),
        _ => None,
    }
}

/// A one-line description: the code and message, or what went wrong on the way.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or("(no message)")
            )
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

pub fn classify<E: ProvideErrorMetadata>(
    error: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> ErrorClass {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Transient
        }
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("");
            let status = context.raw().status().as_u16();
            if THROTTLE_CODES.contains(&code) || status >= 500 || status == 429 {
                ErrorClass::Transient
            } else if code.contains("NotFound") || code == "AWS.SimpleQueueService.NonExistentQueue"
            {
                ErrorClass::NotFound
            } else {
                ErrorClass::Permanent
            }
        }
        _ => ErrorClass::Permanent,
    }
}
