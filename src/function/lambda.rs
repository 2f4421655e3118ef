//! The Lambda function type: each batch is a synchronous `Invoke` (InvocationType
//! RequestResponse) of a real Lambda function, on AWS or on an emulator such as LocalStack.
//!
//! How Lambda's answer maps (spec 2.1):
//! - a response with `FunctionError` ("Unhandled", "Handled") is a function error, with the
//!   response's StatusCode, its ExecutedVersion (`$LATEST` when absent) and the payload as
//!   the body; it counts as timed out when the payload is Lambda's timeout error
//!   (`Sandbox.Timedout` / "Task timed out after");
//! - a response without it is a success, the payload is the body (read as a partial batch
//!   response by the policy when ReportBatchItemFailures is on);
//! - a payload over Lambda's 6 MB response limit is the function error Lambda itself
//!   answers with (`Function.ResponseSizeTooLarge`), should the endpoint not enforce it;
//! - an Invoke that fails (TooManyRequestsException, a 5xx, a timeout, a connection
//!   failure) never reached the function: `NotReached`, retried by the engine without
//!   counting. [decision] So does an error that will not go away by itself
//!   (ResourceNotFoundException, AccessDeniedException, a KMS or VPC problem of the
//!   function, ...): the shard blocks and retries, as AWS's mapping does, until the cause is
//!   fixed or the records age out; these are logged with `tracing::error!` each time so the
//!   operator sees them. Skipping records because of a configuration error would lose data.
//!
//! `connect` resolves the function with GetFunction, so a missing function is an error at
//! start ("Function not found: <name or ARN>") and `function_arn()` (the failure records'
//! `functionArn`) is the function's real ARN, with the qualifier when one was given.
//!
//! The client has SDK retries off (see `aws::lambda`) and its read, attempt and operation
//! timeouts are the function's timeout plus 10 s.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::{error_body, Function, FunctionResponse, Invocation, InvokeResult};
use crate::aws::{self, AwsFactory, ErrorClass};
use crate::config::schema::FunctionConfig;

/// Lambda's limit on a synchronous response payload, as its error message states it.
pub const MAX_RESPONSE_BYTES: usize = crate::limits::LAMBDA_RESPONSE_PAYLOAD_BYTES;

pub struct LambdaFunction {
    /// The config's function name (for logs).
    name: String,
    /// What Invoke is called with: the config's `lambda_function`, as given.
    function: String,
    /// The function's real ARN (qualified when `function` has a qualifier).
    arn: String,
    client: aws_sdk_lambda::Client,
}

impl LambdaFunction {
    pub async fn connect(
        factory: &AwsFactory,
        cfg: &FunctionConfig,
    ) -> anyhow::Result<LambdaFunction> {
        let function = cfg
            .lambda_function
            .clone()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "function {:?}: type = \"lambda\" needs lambda_function (a name or ARN)",
                    cfg.name
                )
            })?;
        let sdk = factory.config_for(&function).await;
        let base = aws::lambda(&sdk);
        let limit = Duration::from_secs(cfg.timeout_seconds.saturating_add(10));
        let timeouts = aws::lambda_timeouts(limit);
        let client = aws_sdk_lambda::Client::from_conf(
            base.config().to_builder().timeout_config(timeouts).build(),
        );
        let found = client.get_function().function_name(&function).send().await;
        let output = match found {
            Ok(output) => output,
            Err(error) if aws::classify(&error) == ErrorClass::NotFound => {
                anyhow::bail!("Function not found: {function}")
            }
            Err(error) => anyhow::bail!(
                "function {:?}: GetFunction {function}: {}",
                cfg.name,
                aws::describe(&error)
            ),
        };
        let arn = output
            .configuration()
            .and_then(|c| c.function_arn())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "function {:?}: GetFunction {function} returned no FunctionArn",
                    cfg.name
                )
            })?;
        let arn = qualified_arn(arn, qualifier_of(&function));
        tracing::info!(function = %cfg.name, arn = %arn, "lambda function connected");
        Ok(LambdaFunction {
            name: cfg.name.clone(),
            function,
            arn,
            client,
        })
    }
}

#[async_trait]
impl Function for LambdaFunction {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(invocation.payload.to_vec()))
            .send()
            .await;
        match sent {
            Ok(output) => {
                let body = output
                    .payload()
                    .map(|p| p.as_ref().to_vec())
                    .unwrap_or_default();
                InvokeResult::Response(response(
                    output.status_code(),
                    output.function_error(),
                    output.executed_version(),
                    body,
                ))
            }
            Err(error) => {
                let reason = aws::describe(&error);
                match aws::classify(&error) {
                    ErrorClass::Transient => tracing::debug!(
                        function = %self.name, shard = %invocation.shard_id, %reason,
                        "Invoke did not reach the function; the engine retries"
                    ),
                    _ => tracing::error!(
                        function = %self.name, shard = %invocation.shard_id, %reason,
                        "Invoke failed and will not succeed until this is fixed; the shard \
                         retries meanwhile"
                    ),
                }
                InvokeResult::NotReached(reason)
            }
        }
    }
}

/// Lambda's Invoke answer as a `FunctionResponse`.
pub fn response(
    status_code: i32,
    function_error: Option<&str>,
    executed_version: Option<&str>,
    body: Vec<u8>,
) -> FunctionResponse {
    let status_code = u16::try_from(status_code).unwrap_or(200);
    let executed_version = executed_version
        .filter(|v| !v.is_empty())
        .unwrap_or("$LATEST")
        .to_string();
    if body.len() > MAX_RESPONSE_BYTES {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            body.len()
        );
        return FunctionResponse {
            status_code,
            function_error: Some("Unhandled".to_string()),
            timed_out: false,
            executed_version,
            body: error_body(&message, "Function.ResponseSizeTooLarge"),
        };
    }
    let function_error = function_error.map(str::to_string);
    let timed_out = function_error.is_some() && is_timeout(&body);
    FunctionResponse {
        status_code,
        function_error,
        timed_out,
        executed_version,
        body,
    }
}

/// Lambda's error payload for a function that ran out of time.
fn is_timeout(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    value["errorType"] == "Sandbox.Timedout"
        || value["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("Task timed out after"))
}

/// The qualifier (version or alias) of `name:qualifier` or of a qualified function ARN.
pub fn qualifier_of(function: &str) -> Option<&str> {
    let parts: Vec<&str> = function.split(':').collect();
    let qualifier = match parts.as_slice() {
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME:QUALIFIER
        ["arn", _, _, _, _, "function", _, q] => Some(*q),
        // ACCOUNT:function:NAME:QUALIFIER (partial ARN)
        [_, "function", _, q] => Some(*q),
        [_, q] => Some(*q),
        _ => None,
    };
    qualifier.filter(|q| !q.is_empty())
}

/// `arn` with `qualifier` appended, unless it already carries one.
fn qualified_arn(arn: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) if arn.split(':').count() == 7 => format!("{arn}:{q}"),
        _ => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_come_from_names_and_arns() {
        assert_eq!(qualifier_of("orders"), None);
        assert_eq!(qualifier_of("orders:live"), Some("live"));
        assert_eq!(
            qualifier_of("arn:aws:lambda:us-east-1:123456789012:function:orders"),
            None
        );
        assert_eq!(
            qualifier_of("arn:aws:lambda:us-east-1:123456789012:function:orders:7"),
            Some("7")
        );
        assert_eq!(
            qualifier_of("123456789012:function:orders:live"),
            Some("live")
        );
        assert_eq!(qualifier_of("123456789012:function:orders"), None);
    }

    #[test]
    fn a_qualifier_is_added_to_an_unqualified_arn_only() {
        let arn = "arn:aws:lambda:us-east-1:1:function:f";
        assert_eq!(qualified_arn(arn, None), arn);
        assert_eq!(qualified_arn(arn, Some("live")), format!("{arn}:live"));
        assert_eq!(
            qualified_arn(&format!("{arn}:3"), Some("live")),
            format!("{arn}:3")
        );
    }

    #[test]
    fn a_function_error_keeps_its_status_version_and_body() {
        let r = response(
            200,
            Some("Unhandled"),
            Some("7"),
            b"{\"errorMessage\":\"x\"}".to_vec(),
        );
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(r.executed_version, "7");
        assert!(!r.timed_out);
        let r = response(200, None, None, b"null".to_vec());
        assert_eq!(r.function_error, None);
        assert_eq!(r.executed_version, "$LATEST");
        assert_eq!(r.body, b"null");
    }

    #[test]
    fn lambdas_timeout_payload_is_a_timeout() {
        let body =
            br#"{"errorMessage":"2026-01-01T00:00:00.000Z abc Task timed out after 3.00 seconds"}"#;
        assert!(response(200, Some("Unhandled"), None, body.to_vec()).timed_out);
        let body = br#"{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}"#;
        assert!(response(200, Some("Unhandled"), None, body.to_vec()).timed_out);
        let body = br#"{"errorMessage":"Task timed out after 3.00 seconds"}"#;
        assert!(response(200, Some("Unhandled"), None, body.to_vec()).timed_out);
        assert!(!response(200, None, None, body.to_vec()).timed_out);
    }

    #[test]
    fn a_response_over_6_mb_is_lambdas_size_error() {
        let r = response(200, None, None, vec![b' '; MAX_RESPONSE_BYTES + 1]);
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body["errorType"], "Function.ResponseSizeTooLarge");
        let r = response(200, None, None, vec![b' '; MAX_RESPONSE_BYTES]);
        assert_eq!(r.function_error, None);
    }
}
