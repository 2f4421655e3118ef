//! The command function type: a local program run once per invocation, answering like Lambda.
//!
//! The program (argv from the config, no shell) gets the event JSON on its stdin, which is
//! then closed; its stdout is the response body. Exit 0 is a successful invoke; a non-zero
//! exit or a death by signal is a function error ("Unhandled") whose body is stdout when
//! that is JSON, else `{"errorMessage":"<last stderr line>","errorType":"Runtime.ExitError"}`.
//! Past `timeout_seconds` the whole process group (the program runs in its own) is killed
//! and the invocation is a timed-out function error. stdout is read up to Lambda's response
//! limit and the rest is drained, never buffered: a larger response is a function error
//! with `Function.ResponseSizeTooLarge`. stderr goes to the log line by line, tagged with
//! the shard. The child is always waited for; a program that cannot be started is a
//! configuration error at start (`new`).
//!
//! The invocation ends when the program has exited *and* closed its stdout and stderr (a
//! background process still holding them keeps the invocation running, up to the timeout).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{
    error_body, response_too_large_body, Function, FunctionResponse, Invocation, InvokeResult,
};
use crate::config::schema::{AwsIdentity, FunctionConfig};
use crate::model::ShardId;

/// Lambda's limit on a synchronous response, as its error message states it.
pub const MAX_RESPONSE_BYTES: usize = crate::limits::LAMBDA_RESPONSE_PAYLOAD_BYTES;
/// A longer stderr line is cut here (the rest of the line is dropped) so that a program
/// writing without newlines cannot make us buffer without bound.
const MAX_LOG_LINE_BYTES: usize = 16 * 1024;
/// After the process group was killed, how long its pipes may take to close.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// A function of the config's `[[functions]]` with `type = "command"`.
pub struct CommandFunction {
    name: String,
    arn: String,
    /// The program, resolved to the path that is executed.
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<PathBuf>,
    timeout: Duration,
}

impl CommandFunction {
    pub fn new(cfg: &FunctionConfig, aws: &AwsIdentity) -> anyhow::Result<CommandFunction> {
        let argv = cfg.command.as_deref().unwrap_or_default();
        let Some((program, args)) = argv.split_first() else {
            anyhow::bail!("function {:?}: command: must name a program", cfg.name);
        };
        if let Some(dir) = &cfg.working_dir {
            if !dir.is_dir() {
                anyhow::bail!(
                    "function {:?}: working_dir {}: not a directory",
                    cfg.name,
                    dir.display()
                );
            }
        }
        let path_var = cfg
            .env
            .get("PATH")
            .map(OsString::from)
            .or_else(|| std::env::var_os("PATH"));
        let program =
            resolve_program(program, cfg.working_dir.as_deref(), path_var).map_err(|why| {
                anyhow::anyhow!("function {:?}: command {program:?}: {why}", cfg.name)
            })?;
        // Lambda's own variables first, so that the config's `env` may override them.
        let mut env = vec![
            ("AWS_LAMBDA_FUNCTION_NAME".to_string(), cfg.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION".to_string(), "$LATEST".into()),
            ("AWS_REGION".to_string(), aws.region.clone()),
        ];
        env.extend(cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(CommandFunction {
            name: cfg.name.clone(),
            arn: cfg.arn(aws),
            program,
            args: args.to_vec(),
            env,
            working_dir: cfg.working_dir.clone(),
            timeout: Duration::from_secs(cfg.timeout_seconds.max(1)),
        })
    }

    /// The path that is executed.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.working_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    fn timed_out(&self) -> FunctionResponse {
        FunctionResponse::timed_out(self.timeout.as_secs_f64())
    }
}

#[async_trait]
impl Function for CommandFunction {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        let mut child = match self.command().spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(function = %self.name, program = %self.program.display(), "cannot start the command: {e}");
                return InvokeResult::NotReached(format!(
                    "cannot start {}: {e}",
                    self.program.display()
                ));
            }
        };
        // Kills the group if this future is dropped (shutdown) before the child was reaped.
        let mut group = GroupGuard {
            pgid: child.id(),
            armed: true,
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let payload = invocation.payload;
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A program that does not read its input (EPIPE) is not our error.
                let _ = stdin.write_all(payload).await;
                let _ = stdin.shutdown().await;
            }
        };
        let read = async move {
            match stdout {
                Some(stdout) => read_bounded(stdout, MAX_RESPONSE_BYTES).await,
                None => Ok((Vec::new(), false)),
            }
        };
        let log = log_stderr(stderr, invocation.shard_id, &self.name);
        let run = async {
            let ((), out, last_line, status) = tokio::join!(write, read, log, child.wait());
            (out, last_line, status)
        };
        let finished = tokio::time::timeout(self.timeout, run).await;
        let (out, last_line, status) = match finished {
            Ok(done) => done,
            Err(_) => {
                group.kill().await;
                let _ = child.start_kill();
                let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
                tracing::warn!(shard = %invocation.shard_id, function = %self.name, "timed out after {:?}: process group killed", self.timeout);
                return InvokeResult::Response(self.timed_out());
            }
        };
        group.armed = false;
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                return InvokeResult::NotReached(format!("waiting for the command: {e}"));
            }
        };
        let (body, oversize) = match out {
            Ok(out) => out,
            Err(e) => {
                return InvokeResult::Response(exit_error(
                    format!("reading the command's stdout: {e}"),
                    Vec::new(),
                ))
            }
        };
        if oversize {
            return InvokeResult::Response(FunctionResponse::answered(
                Some("Unhandled"),
                response_too_large_body(),
            ));
        }
        if status.success() {
            return InvokeResult::Response(FunctionResponse::answered(None, body));
        }
        let message = last_line.unwrap_or_else(|| describe_status(status));
        InvokeResult::Response(exit_error(message, body))
    }
}

/// A function error after a failed run: stdout when it is JSON, else an error body.
fn exit_error(message: String, stdout: Vec<u8>) -> FunctionResponse {
    let body = if serde_json::from_slice::<serde::de::IgnoredAny>(&stdout).is_ok() {
        stdout
    } else {
        error_body(&message, "Runtime.ExitError")
    };
    FunctionResponse::answered(Some("Unhandled"), body)
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Reads up to `limit` bytes; beyond that, drains the rest without keeping it so that the
/// program can still finish. `true` when the output was larger than `limit`.
async fn read_bounded(
    mut reader: impl AsyncRead + Unpin,
    limit: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .await?;
    if body.len() <= limit {
        return Ok((body, false));
    }
    tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    body.clear();
    body.shrink_to_fit();
    Ok((body, true))
}

/// Logs each stderr line; returns the last non-empty one.
async fn log_stderr(
    stderr: Option<tokio::process::ChildStderr>,
    shard: &ShardId,
    function: &str,
) -> Option<String> {
    let mut stderr = stderr?;
    let mut chunk = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    let mut last: Option<String> = None;
    let mut emit = |line: &mut Vec<u8>, cut: &mut bool| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if *cut {
            tracing::info!(shard = %shard, function, "{text}…");
        } else {
            tracing::info!(shard = %shard, function, "{text}");
        }
        if !text.trim().is_empty() {
            last = Some(text.to_string());
        }
        line.clear();
        *cut = false;
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while let Some(at) = memchr::memchr(b'\n', rest) {
            push_capped(&mut line, &rest[..at], &mut cut);
            emit(&mut line, &mut cut);
            rest = &rest[at + 1..];
        }
        push_capped(&mut line, rest, &mut cut);
    }
    if !line.is_empty() {
        emit(&mut line, &mut cut);
    }
    last
}

fn push_capped(line: &mut Vec<u8>, bytes: &[u8], cut: &mut bool) {
    let room = MAX_LOG_LINE_BYTES.saturating_sub(line.len());
    if bytes.len() > room {
        *cut = true;
    }
    line.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// The child's process group (its pgid is its pid); killed on drop while armed.
struct GroupGuard {
    pgid: Option<u32>,
    armed: bool,
}

impl GroupGuard {
    async fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let status = tokio::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            if let Err(e) = status {
                tracing::warn!("kill -KILL -{pgid}: {e}");
            }
        }
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pgid) = self.pgid.take() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The path to execute: a name with a slash is taken as a path (relative ones against
/// `working_dir`), a bare name is looked up in `path_var`. It must be an executable file.
fn resolve_program(
    program: &str,
    working_dir: Option<&Path>,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    if program.is_empty() {
        return Err("empty program name".into());
    }
    if program.contains('/') {
        let path = Path::new(program);
        let full = match working_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        let full = if full.is_relative() {
            std::env::current_dir()
                .map(|cwd| cwd.join(&full))
                .unwrap_or(full)
        } else {
            full
        };
        return check_executable(&full).map(|()| full);
    }
    let Some(path_var) = path_var else {
        return Err("not found: PATH is not set".into());
    };
    let mut found_not_executable = None;
    for dir in std::env::split_paths(&path_var) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) if candidate.is_file() => found_not_executable = Some(why),
            Err(_) => {}
        }
    }
    Err(found_not_executable.unwrap_or_else(|| "not found in PATH".to_string()))
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{}: not executable", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_found_in_path_and_missing_ones_are_named() {
        let path = std::env::var_os("PATH");
        let sh = resolve_program("sh", None, path.clone()).expect("sh");
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        let err = resolve_program("no-such-program-xyz", None, path).unwrap_err();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_working_dir() {
        let err = resolve_program("./nope.py", Some(Path::new("/tmp")), None).unwrap_err();
        assert!(err.contains("/tmp/./nope.py"), "{err}");
    }

    #[tokio::test]
    async fn output_past_the_limit_is_drained_not_kept() {
        let data = [b'x'; 100];
        let (body, over) = read_bounded(&data[..], 10).await.expect("read");
        assert!(over && body.is_empty());
        let (body, over) = read_bounded(&data[..], 100).await.expect("read");
        assert!(!over && body.len() == 100);
    }
}
