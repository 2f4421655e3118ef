//! boto3's Lambda client, driven from a test: one Python process (the test venv's, with
//! boto3, in `ESM_SIM_TEST_PYTHON`) that reads one call per line on stdin
//! (`{"op": "create_event_source_mapping", "params": {...}}`) and answers one JSON line:
//! `{"ok": response}` or `{"error": {"code", "message", "status"}}` as botocore parsed
//! them. So the Lambda API is tested with the client people use, not hand-made requests.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const DRIVER: &str = r#"
import json, sys, boto3, botocore.exceptions
endpoint, key = sys.argv[1], sys.argv[2]
client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=key, aws_secret_access_key="anything")
for line in sys.stdin:
    call = json.loads(line)
    try:
        response = getattr(client, call["op"])(**call["params"])
        status = response.pop("ResponseMetadata")["HTTPStatusCode"]
        out = {"ok": response, "status": status}
    except botocore.exceptions.ClientError as e:
        out = {"error": {"code": e.response["Error"]["Code"],
                         "message": e.response["Error"]["Message"],
                         "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}}
    except botocore.exceptions.ParamValidationError as e:
        out = {"error": {"code": "ParamValidationError", "message": str(e), "status": 0}}
    print(json.dumps(out, default=str), flush=True)
"#;

/// A boto3 Lambda client on `endpoint`.
pub struct Lambda {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// A Lambda error as botocore reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct LambdaError {
    pub code: String,
    pub message: String,
    pub status: u64,
}

impl Lambda {
    /// A client whose access key id is `access_key` (the admin token, when one is set).
    pub fn new(endpoint: &str, access_key: &str) -> Lambda {
        let python = std::env::var("ESM_SIM_TEST_PYTHON").unwrap_or_else(|_| {
            panic!("ESM_SIM_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs the test venv (boto3)")
        });
        let mut child = Command::new(python)
            .args(["-c", DRIVER, endpoint, access_key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python with boto3");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Lambda {
            _child: child,
            stdin,
            stdout,
        }
    }

    /// `op` (boto3's method name) with `params`: the response without its metadata, or
    /// the error.
    pub async fn call(&mut self, op: &str, params: Value) -> Result<Value, LambdaError> {
        let line = json!({"op": op, "params": params}).to_string() + "\n";
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to boto3");
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .await
            .expect("read from boto3");
        let answer: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("boto3 driver answered {answer:?}: {e}"));
        if let Some(error) = answer.get("error") {
            return Err(LambdaError {
                code: error["code"].as_str().unwrap_or_default().into(),
                message: error["message"].as_str().unwrap_or_default().into(),
                status: error["status"].as_u64().unwrap_or_default(),
            });
        }
        let mut ok = answer["ok"].clone();
        ok["HTTPStatusCode"] = answer["status"].clone();
        Ok(ok)
    }

    /// `call` that must succeed.
    pub async fn ok(&mut self, op: &str, params: Value) -> Value {
        self.call(op, params.clone())
            .await
            .unwrap_or_else(|e| panic!("{op}({params}) failed: {e:?}"))
    }

    /// `call` that must fail: the error.
    pub async fn err(&mut self, op: &str, params: Value) -> LambdaError {
        match self.call(op, params.clone()).await {
            Err(e) => e,
            Ok(answer) => panic!("{op}({params}) should have failed, answered {answer}"),
        }
    }
}
