//! (skeleton, being written) The HTTP target.
use async_trait::async_trait;

use super::{Invocation, InvokeResult, Target};
use crate::config::schema::{AwsIdentity, FunctionConfig};

pub struct HttpTarget {
    arn: String,
}

impl HttpTarget {
    pub fn new(cfg: &FunctionConfig, aws: &AwsIdentity) -> anyhow::Result<HttpTarget> {
        let _ = HttpTarget { arn: cfg.arn(aws) };
        anyhow::bail!("function {:?}: the http target is not built yet", cfg.name)
    }
}

#[async_trait]
impl Target for HttpTarget {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, _invocation: Invocation<'_>) -> InvokeResult {
        InvokeResult::NotReached("not built yet".into())
    }
}
