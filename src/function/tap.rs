//! A tap on a function: passes every invocation through unchanged and shows its records to
//! an observer first. Tests use it to check order and delivery record by record; it is
//! also the hook for tracing what a function received.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Function, Invocation, InvokeResult};
use crate::model::{ShardId, StreamRecord};

/// Sees the records of every invocation, with its result.
pub type Observer = Arc<dyn Fn(&ShardId, &[StreamRecord], &InvokeResult) + Send + Sync>;

pub struct Tapped {
    pub inner: Arc<dyn Function>,
    pub observer: Observer,
}

#[async_trait]
impl Function for Tapped {
    fn function_arn(&self) -> &str {
        self.inner.function_arn()
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        let (shard_id, records) = (invocation.shard_id, invocation.records);
        let result = self.inner.invoke(invocation).await;
        (self.observer)(shard_id, records, &result);
        result
    }
}
