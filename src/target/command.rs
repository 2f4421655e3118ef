//! (skeleton, being written) The command target.
use async_trait::async_trait;

use super::{Invocation, InvokeResult, Target};
use crate::config::schema::{AwsIdentity, FunctionConfig};

pub struct CommandTarget {
    arn: String,
}

impl CommandTarget {
    pub fn new(cfg: &FunctionConfig, aws: &AwsIdentity) -> anyhow::Result<CommandTarget> {
        let _ = CommandTarget { arn: cfg.arn(aws) };
        anyhow::bail!(
            "function {:?}: the command target is not built yet",
            cfg.name
        )
    }
}

#[async_trait]
impl Target for CommandTarget {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, _invocation: Invocation<'_>) -> InvokeResult {
        InvokeResult::NotReached("not built yet".into())
    }
}
