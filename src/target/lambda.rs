//! (skeleton, being written) The Lambda target.
use async_trait::async_trait;

use super::{Invocation, InvokeResult, Target};
use crate::aws::AwsFactory;
use crate::config::schema::FunctionConfig;

pub struct LambdaTarget {
    arn: String,
}

impl LambdaTarget {
    pub async fn connect(
        _factory: &AwsFactory,
        cfg: &FunctionConfig,
    ) -> anyhow::Result<LambdaTarget> {
        let _ = LambdaTarget { arn: String::new() };
        anyhow::bail!(
            "function {:?}: the lambda target is not built yet",
            cfg.name
        )
    }
}

#[async_trait]
impl Target for LambdaTarget {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, _invocation: Invocation<'_>) -> InvokeResult {
        InvokeResult::NotReached("not built yet".into())
    }
}
