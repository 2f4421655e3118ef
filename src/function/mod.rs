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
