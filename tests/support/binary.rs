//! The `esm-sim` binary as a test runs it against the local servers: its AWS clients find
//! kinesis-local (Kinesis) and moto (SQS, SNS, DynamoDB, DynamoDB Streams) through the
//! standard `AWS_ENDPOINT_URL_<SERVICE>` variables, with static test credentials.

use std::path::Path;
use std::time::Duration;

/// What a run of the binary left.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `esm-sim args...` in `dir` (at most 120 s). Blocking: an async test calls
/// `run_async`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("esm-sim").expect("the esm-sim binary");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ESM_SIM_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(local_servers())
        .timeout(Duration::from_secs(120))
        .args(args);
    output(cmd)
}

/// The region, no instance metadata, and the per-service endpoints through which the
/// binary's AWS clients find the local servers (kinesis-local for Kinesis, moto for the
/// rest), as a user's `AWS_ENDPOINT_URL_<SERVICE>` would; the caller sets the credentials
/// and removes any `AWS_ENDPOINT_URL`.
pub fn local_servers() -> Vec<(&'static str, String)> {
    let moto = super::moto_endpoint();
    vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_KINESIS", super::kinesis_endpoint()),
        ("AWS_ENDPOINT_URL_SQS", moto.clone()),
        ("AWS_ENDPOINT_URL_SNS", moto.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", moto),
    ]
}

/// `run` from an async test: on a blocking thread, so the test's runtime keeps going.
pub async fn run_async(dir: &Path, args: Vec<String>) -> Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&dir, &args)
    })
    .await
    .expect("the command ran")
}

/// Runs `esm-sim args...` without any server (argument errors): no AWS variables needed.
pub fn run_offline(dir: &Path, args: &[&str]) -> Output {
    run_offline_with_env(dir, args, &[])
}

/// `run_offline` with these environment variables set too.
pub fn run_offline_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("esm-sim").expect("the esm-sim binary");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .timeout(Duration::from_secs(60))
        .args(args);
    output(cmd)
}

fn output(mut cmd: assert_cmd::Command) -> Output {
    let output = cmd.output().expect("esm-sim runs");
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
