//! The function seam (the `[[functions]]` of the config, the AWS term): something that receives an invocation event and answers like Lambda.
//!
//! A function reports what happened in Lambda's terms (a response with or without a function
//! error, or an invocation that never reached the function); deciding what that means for
//! the batch is the policy's job, not the function's.

pub mod command;
pub mod http;
pub mod lambda;
pub mod simulated;
pub mod tap;

use async_trait::async_trait;

use crate::model::{ShardId, StreamRecord};

/// One invocation: the exact JSON event, and the records it carries (which the simulated
/// function inspects directly).
pub struct Invocation<'a> {
    pub shard_id: &'a ShardId,
    pub payload: &'a [u8],
    pub records: &'a [StreamRecord],
}

/// What the function answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionResponse {
    /// Lambda's StatusCode (200 for a synchronous invoke that ran).
    pub status_code: u16,
    /// Lambda's FunctionError ("Unhandled", "Handled"), `None` when the function succeeded.
    pub function_error: Option<String>,
    /// The function ran out of time (reported as a function error).
    pub timed_out: bool,
    pub executed_version: String,
    pub body: Vec<u8>,
}

impl FunctionResponse {
    /// A 200 answer of `$LATEST`: `body`, with `function_error` when the function failed.
    pub fn answered(function_error: Option<&str>, body: Vec<u8>) -> FunctionResponse {
        FunctionResponse {
            status_code: 200,
            function_error: function_error.map(str::to_string),
            timed_out: false,
            executed_version: "$LATEST".to_string(),
            body,
        }
    }

    /// Lambda's answer when a function runs past its timeout of `timeout_seconds`.
    pub fn timed_out(timeout_seconds: f64) -> FunctionResponse {
        let message = format!("Task timed out after {timeout_seconds:.2} seconds");
        FunctionResponse {
            timed_out: true,
            ..FunctionResponse::answered(
                Some("Unhandled"),
                error_body(&message, "Sandbox.Timedout"),
            )
        }
    }
}

/// Lambda's error payload: `{"errorMessage": ..., "errorType": ...}`.
/// Lambda's answer to a response over its limit, as the http and command functions give it.
pub fn response_too_large_body() -> Vec<u8> {
    error_body(
        &format!(
            "Response payload size exceeded maximum allowed payload size ({} bytes).",
            crate::limits::LAMBDA_RESPONSE_PAYLOAD_BYTES
        ),
        "Function.ResponseSizeTooLarge",
    )
}

pub fn error_body(message: &str, error_type: &str) -> Vec<u8> {
    serde_json::json!({"errorMessage": message, "errorType": error_type})
        .to_string()
        .into_bytes()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvokeResult {
    Response(FunctionResponse),
    /// Throttled, service error, unreachable: the function never saw the batch.
    NotReached(String),
}

#[async_trait]
pub trait Function: Send + Sync {
    /// The ARN written into failure records (`requestContext.functionArn`).
    fn function_arn(&self) -> &str;
    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult;
}
