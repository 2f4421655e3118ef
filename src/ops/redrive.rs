//! `esm-sim redrive`: reads on-failure records back (from an SQS queue or a JSONL file),
//! fetches each discarded batch from the stream by its sequence range, and prints it or
//! invokes a function with it again, as one batch event built exactly as the engine builds
//! it (`event::encode_record` + `event::assemble_event`, the engine's `EventContext`), its
//! answer classified by `policy::classify`.
//!
//! Decisions (README "Inspecting records and redriving failures"):
//! - The records fetched are those of `[startSequenceNumber, endSequenceNumber]` still in
//!   the shard; when fewer than `batchSize` come back, the rest were trimmed by retention
//!   ("trimmed: N of M records no longer in the stream") and what is left is redriven. A
//!   batch with no record left fails (its message stays, its line is a failed line).
//! - One invocation per failure record, no retries (a rerun is the retry). Only
//!   `success` succeeds; a function error, a partial batch response (with
//!   `--report-batch-item-failures`), an invalid response and a throttle fail.
//! - SQS: messages are received with a visibility timeout (`--visibility-timeout`, 60 s)
//!   and processed one by one; a message is deleted only after its redrive succeeded.
//!   Every other message (failed, printed, dry run) is made visible again (visibility 0)
//!   when the run ends, so a rerun sees it at once; after a crash, when the timeout ends.
//!   A message received twice in a run (its timeout ran out) is handled once.
//! - Without a function the batches are printed and nothing is deleted; `--dry-run` fetches
//!   and reports without invoking or deleting.
//! - A JSONL file is never modified; `--failed-out FILE` writes its failed lines verbatim,
//!   a file to redrive from again.
//! - The exit status is non-zero when any failure record was not redriven.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use super::failure_source::{batch_of_body, read_lines, FromSpec, Message, Origin, Queue};
use super::range::{read_range, Pace, Until};
use super::{block_on, connect_source, show};
use crate::arn::{self, Arn};
use crate::assemble::{build_function, invoke_identity_arn};
use crate::aws::AwsFactory;
use crate::config::schema::{AwsIdentity, FunctionConfig};
use crate::event::{assemble_event, encode_record, BatchInfo, EventContext};
use crate::function::{Function, Invocation};
use crate::load::commands::AwsArgs;
use crate::model::{SequenceNumber, StreamRecord};
use crate::policy::{classify, Outcome};
use crate::source::StreamSource;

/// Function name (for the function ARN and the role in `invokeIdentityArn`) of a `--target`
/// given as a URL or a command.
const ADHOC_FUNCTION_NAME: &str = "esm-sim-redrive";

/// `esm-sim redrive`.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// Where the failure records are: an SQS queue URL or ARN, or a JSONL file (the
    /// file:// destination or the dead-letter file)
    #[arg(long, value_name = "QUEUE_OR_FILE")]
    pub from: String,
    /// What to invoke: http://URL, https://URL, lambda:<function name or ARN>, or
    /// command:<program> [args] (split on spaces, no shell) [default: print the records]
    #[arg(long, value_name = "TARGET", conflicts_with_all = ["config", "function"])]
    pub target: Option<String>,
    /// Config file whose [[functions]] entry --function is invoked
    #[arg(long, value_name = "PATH", requires = "function")]
    pub config: Option<PathBuf>,
    /// Name of the config's function to invoke
    #[arg(long, value_name = "NAME", requires = "config")]
    pub function: Option<String>,
    /// Read the answer as a partial batch response (a reported failure fails the redrive)
    #[arg(long)]
    pub report_batch_item_failures: bool,
    /// Handle at most N failure records
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
    /// Fetch and report, but invoke nothing and delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Function timeout of a --target, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=crate::limits::LAMBDA_MAX_TIMEOUT_SECONDS))]
    pub timeout: u64,
    /// How long a received SQS message stays hidden while it is handled
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(i32).range(1..=43200))]
    pub visibility_timeout: i32,
    /// With a JSONL --from: write the lines that failed to this file
    #[arg(long, value_name = "FILE")]
    pub failed_out: Option<PathBuf>,
    /// Print records as JSON lines (without a function); the report then goes to stderr
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The function a `--target` names, as a `[[functions]]` entry for `assemble::build_function`.
pub fn parse_target(spec: &str, timeout_seconds: u64) -> Result<FunctionConfig, String> {
    let base = FunctionConfig {
        name: ADHOC_FUNCTION_NAME.to_string(),
        timeout_seconds,
        ..FunctionConfig::default()
    };
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(FunctionConfig {
            function_type: "http".into(),
            url: Some(spec.to_string()),
            ..base
        });
    }
    if let Some(function) = spec.strip_prefix("lambda:") {
        let name = lambda_function_name(function)
            .ok_or_else(|| format!("--target {spec:?}: lambda: needs a function name or ARN"))?;
        return Ok(FunctionConfig {
            name: name.to_string(),
            function_type: "lambda".into(),
            lambda_function: Some(function.to_string()),
            ..base
        });
    }
    if let Some(command) = spec.strip_prefix("command:") {
        let argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(format!("--target {spec:?}: command: needs a program"));
        }
        return Ok(FunctionConfig {
            function_type: "command".into(),
            command: Some(argv),
            ..base
        });
    }
    Err(format!(
        "--target {spec:?}: expected http://URL, https://URL, lambda:<function name or ARN> or command:<program> [args]"
    ))
}

/// The function name in `name`, `name:qualifier` or
/// `arn:aws:lambda:REGION:ACCOUNT:function:name[:qualifier]`.
fn lambda_function_name(function: &str) -> Option<&str> {
    Some(arn::lambda_function_name(function)).filter(|n| !n.is_empty())
}

/// What is done with each fetched batch.
enum Action {
    Print { json: bool },
    DryRun,
    Invoke(Redriver),
}

/// A function and what its events need.
struct Redriver {
    function: Arc<dyn Function>,
    function_name: String,
    account_id: String,
    /// `awsRegion` when a stream ARN has none.
    default_region: String,
    report_batch_item_failures: bool,
}

impl Redriver {
    /// The event of `records` exactly as the engine builds it for this batch's shard.
    fn event(&self, batch: &BatchInfo, records: &[StreamRecord]) -> Vec<u8> {
        let ctx = EventContext {
            shard_id: batch.shard_id.clone(),
            event_source_arn: batch.stream_arn.clone(),
            aws_region: Arn::parse(&batch.stream_arn)
                .ok()
                .and_then(|arn| arn.region())
                .unwrap_or(&self.default_region)
                .to_string(),
            invoke_identity_arn: invoke_identity_arn(&self.account_id, &self.function_name),
        };
        let fragments: Vec<Vec<u8>> = records
            .iter()
            .map(|record| {
                let mut fragment = Vec::new();
                encode_record(&ctx, record, &mut fragment);
                fragment
            })
            .collect();
        let mut event = Vec::new();
        assemble_event(fragments.iter().map(Vec::as_slice), &mut event);
        event
    }

    async fn invoke(&self, batch: &BatchInfo, records: &[StreamRecord]) -> Outcome {
        let payload = self.event(batch, records);
        let result = self
            .function
            .invoke(Invocation {
                shard_id: &batch.shard_id,
                payload: &payload,
                records,
            })
            .await;
        let invoked: Vec<SequenceNumber> =
            records.iter().map(|r| r.sequence_number.clone()).collect();
        classify(&result, self.report_batch_item_failures, &invoked)
    }
}

/// What became of one failure record.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// The document is not a failure record.
    Invalid(String),
    /// The stream or shard could not be read.
    ReadFailed(String),
    /// No record of the range is left in the stream.
    NothingLeft,
    Printed,
    DryRun,
    Invoked(Outcome),
}

impl Verdict {
    fn succeeded(&self) -> bool {
        matches!(
            self,
            Verdict::Printed | Verdict::DryRun | Verdict::Invoked(Outcome::Success)
        )
    }

    fn describe(&self) -> String {
        match self {
            Verdict::Invalid(why) => format!("failed: {why}"),
            Verdict::ReadFailed(why) => format!("failed: {why}"),
            Verdict::NothingLeft => "failed: no record of the batch is left in the stream".into(),
            Verdict::Printed => "printed".into(),
            Verdict::DryRun => "dry run: not invoked".into(),
            Verdict::Invoked(Outcome::Success) => "success".into(),
            Verdict::Invoked(Outcome::NotReached { reason }) => {
                format!("failed: throttled or not reached ({reason})")
            }
            Verdict::Invoked(Outcome::InvalidResponse { reason, .. }) => {
                format!("failed: invalid_response ({reason})")
            }
            Verdict::Invoked(Outcome::PartialFailure { first_failed, .. }) => {
                format!("failed: partial_failure (from record {})", first_failed + 1)
            }
            Verdict::Invoked(other) => format!("failed: {}", other.label()),
        }
    }
}

/// One failure record handled: the report line and the records fetched.
struct Handled {
    verdict: Verdict,
    line: String,
    records: Vec<StreamRecord>,
}

impl Handled {
    /// A failure before any record was fetched.
    fn failed(batch: Option<&BatchInfo>, verdict: Verdict) -> Handled {
        let line = match batch {
            Some(batch) => format!("{}: {}", range_of(batch), verdict.describe()),
            None => verdict.describe(),
        };
        Handled {
            verdict,
            line,
            records: Vec::new(),
        }
    }
}

/// `shardId start..end`, how a report line names a batch.
fn range_of(batch: &BatchInfo) -> String {
    format!(
        "{} {}..{}",
        batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
    )
}

/// Fetches `batch` from `source` and acts on it.
async fn redrive_batch(
    source: &dyn StreamSource,
    batch: &BatchInfo,
    action: &Action,
    pace: Pace,
) -> Handled {
    let until = Until {
        to: Some(batch.end_sequence_number.clone()),
        count: None,
    };
    let records = match read_range(
        source,
        &batch.shard_id,
        &batch.start_sequence_number,
        &until,
        pace,
    )
    .await
    {
        Ok(read) => read.records,
        Err(error) => return Handled::failed(Some(batch), Verdict::ReadFailed(error.to_string())),
    };
    let mut line = format!(
        "{}: fetched {} of {} record(s)",
        range_of(batch),
        records.len(),
        batch.batch_size
    );
    if records.len() < batch.batch_size {
        line.push_str(&format!(
            "; trimmed: {} of {} records no longer in the stream",
            batch.batch_size - records.len(),
            batch.batch_size
        ));
    }
    let verdict = if records.is_empty() {
        Verdict::NothingLeft
    } else {
        match action {
            Action::Print { .. } => Verdict::Printed,
            Action::DryRun => Verdict::DryRun,
            Action::Invoke(redriver) => Verdict::Invoked(redriver.invoke(batch, &records).await),
        }
    };
    line.push_str(": ");
    line.push_str(&verdict.describe());
    Handled {
        verdict,
        line,
        records,
    }
}

/// The run: sources by stream ARN, the action, and the counts.
struct Run {
    factory: AwsFactory,
    action: Action,
    sources: HashMap<String, Arc<dyn StreamSource>>,
    succeeded: usize,
    failed: usize,
    /// With --json, the report goes to stderr and stdout carries only records.
    report_to_stderr: bool,
}

impl Run {
    /// Handles one document (an SQS body or a file line): prints its report line, then
    /// the records when printing.
    async fn handle(&mut self, origin: &Origin, document: &str) -> Verdict {
        let (handled, shard) = match batch_of_body(document) {
            Err(why) => (Handled::failed(None, Verdict::Invalid(why)), None),
            Ok(batch) => {
                let handled = match self.source(&batch).await {
                    Err(error) => {
                        Handled::failed(Some(&batch), Verdict::ReadFailed(format!("{error:#}")))
                    }
                    Ok(source) => {
                        let pace = Pace::of(batch.kind);
                        redrive_batch(source.as_ref(), &batch, &self.action, pace).await
                    }
                };
                (handled, Some(batch.shard_id))
            }
        };
        self.report(&format!("{origin}: {}", handled.line));
        if let (Action::Print { json }, Some(shard)) = (&self.action, &shard) {
            for record in &handled.records {
                if *json {
                    println!("{}", show::to_json(shard, record));
                } else {
                    println!("    {}", show::to_text(record));
                }
            }
        }
        if handled.verdict.succeeded() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        handled.verdict
    }

    fn report(&self, line: &str) {
        if self.report_to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    async fn source(&mut self, batch: &BatchInfo) -> anyhow::Result<Arc<dyn StreamSource>> {
        if let Some(source) = self.sources.get(&batch.stream_arn) {
            return Ok(source.clone());
        }
        let source = connect_source(&self.factory, &batch.stream_arn, batch.kind).await?;
        self.sources
            .insert(batch.stream_arn.clone(), source.clone());
        Ok(source)
    }
}

/// What `--target` or `--config`/`--function` resolve to.
struct Resolved {
    factory: AwsFactory,
    function: Option<FunctionConfig>,
    /// Region and account of the function's ARN and execution role.
    identity: AwsIdentity,
    /// The config's seed (a simulated function's random choices).
    seed: u64,
}

impl RedriveArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let from = FromSpec::parse(&self.from).map_err(anyhow::Error::msg)?;
        if self.failed_out.is_some() && !matches!(from, FromSpec::File(_)) {
            anyhow::bail!("--failed-out is for a JSONL --from; a queue keeps its failed messages");
        }
        let adhoc = match &self.target {
            Some(spec) => Some(parse_target(spec, self.timeout).map_err(anyhow::Error::msg)?),
            None => None,
        };
        block_on(async {
            let Resolved {
                factory,
                function,
                identity,
                seed,
            } = self.resolve(adhoc).await?;
            let action = match function {
                None => Action::Print { json: self.json },
                Some(config) => {
                    let function = build_function(&config, &identity, Some(&factory), seed).await?;
                    if self.dry_run {
                        Action::DryRun
                    } else {
                        Action::Invoke(Redriver {
                            function,
                            function_name: config.name.clone(),
                            account_id: identity.account_id.clone(),
                            default_region: identity.region.clone(),
                            report_batch_item_failures: self.report_batch_item_failures,
                        })
                    }
                }
            };
            let mut run = Run {
                factory,
                report_to_stderr: self.json && matches!(action, Action::Print { .. }),
                action,
                sources: HashMap::new(),
                succeeded: 0,
                failed: 0,
            };
            let max = self
                .max
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
            match &from {
                FromSpec::Queue(queue) => self.redrive_queue(&mut run, queue, max).await?,
                FromSpec::File(path) => self.redrive_file(&mut run, path, max).await?,
            }
            let total = run.succeeded + run.failed;
            if run.failed > 0 {
                anyhow::bail!(
                    "{} of {total} failure record(s) were not redriven",
                    run.failed
                );
            }
            Ok(())
        })
    }

    /// How to reach AWS, and the function to invoke (`None`: print).
    async fn resolve(&self, adhoc: Option<FunctionConfig>) -> anyhow::Result<Resolved> {
        let (Some(path), Some(name)) = (&self.config, &self.function) else {
            return Ok(Resolved {
                factory: self.aws.factory().await,
                function: adhoc,
                identity: AwsIdentity::default(),
                seed: 0,
            });
        };
        let (config, _) = crate::config::load(Some(path))
            .map_err(|error| anyhow::anyhow!("invalid config:\n{error}"))?;
        let function = config
            .functions
            .iter()
            .find(|f| &f.name == name)
            .cloned()
            .with_context(|| {
                format!(
                    "--function {name:?}: no such [[functions]] entry in {}",
                    path.display()
                )
            })?;
        let factory = AwsFactory::new(
            self.aws
                .endpoint_url
                .clone()
                .or(config.aws.endpoint_url.clone()),
            self.aws.region.clone().unwrap_or(config.aws.region.clone()),
        );
        Ok(Resolved {
            factory,
            function: Some(function),
            identity: config.aws,
            seed: config.simulation.seed,
        })
    }

    async fn redrive_queue(&self, run: &mut Run, queue: &str, max: usize) -> anyhow::Result<()> {
        let queue = Queue::connect(&run.factory, queue).await?;
        // Messages to make visible again at the end, by id (the latest receipt handle).
        let mut keep: BTreeMap<String, Message> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut handled = 0usize;
        let mut deleted = 0usize;
        let mut errors = Vec::new();
        // A failed ReceiveMessage ends the run, after the kept messages are released.
        let mut received = Ok(());
        while handled < max {
            let ask = i32::try_from((max - handled).min(10)).unwrap_or(10);
            let messages = match queue.receive(ask, self.visibility_timeout).await {
                Ok(messages) => messages,
                Err(error) => {
                    received = Err(error);
                    break;
                }
            };
            let mut new = 0;
            for message in messages {
                if !seen.insert(message.id.clone()) {
                    // Received again (its visibility ran out): keep the newest handle.
                    if let Some(kept) = keep.get_mut(&message.id) {
                        *kept = message;
                    }
                    continue;
                }
                new += 1;
                handled += 1;
                let origin = Origin::Message(message.id.clone());
                let verdict = run.handle(&origin, &message.body).await;
                if matches!(verdict, Verdict::Invoked(Outcome::Success)) {
                    match queue.delete(&message).await {
                        Ok(()) => deleted += 1,
                        Err(error) => {
                            // Redriven, but a rerun would redrive it again: say so, fail.
                            run.report(&format!("{origin}: redriven but not deleted: {error:#}"));
                            run.succeeded -= 1;
                            run.failed += 1;
                        }
                    }
                } else {
                    keep.insert(message.id.clone(), message);
                }
            }
            if new == 0 {
                break;
            }
        }
        for message in keep.values() {
            if let Err(error) = queue.release(message).await {
                errors.push(format!("{error:#}"));
            }
        }
        run.report(&format!(
            "{handled} message(s): {deleted} redriven and deleted, {} left in the queue",
            keep.len()
        ));
        for error in errors {
            run.report(&format!(
                "warning: {error} (the message becomes visible after --visibility-timeout)"
            ));
        }
        received
    }

    async fn redrive_file(
        &self,
        run: &mut Run,
        path: &std::path::Path,
        max: usize,
    ) -> anyhow::Result<()> {
        let lines = read_lines(path)?;
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        for line in lines.into_iter().take(max) {
            let verdict = run.handle(&Origin::Line(line.number), &line.text).await;
            if verdict.succeeded() {
                succeeded.push(line.number);
            } else {
                failed.push(line);
            }
        }
        let numbers = |n: &mut dyn Iterator<Item = usize>| {
            n.map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        };
        run.report(&format!(
            "lines succeeded: [{}]; lines failed: [{}]",
            numbers(&mut succeeded.iter().copied()),
            numbers(&mut failed.iter().map(|l| l.number))
        ));
        if let Some(out) = &self.failed_out {
            let mut file = std::fs::File::create(out)
                .with_context(|| format!("cannot write --failed-out {}", out.display()))?;
            for line in &failed {
                writeln!(file, "{}", line.text)
                    .with_context(|| format!("cannot write --failed-out {}", out.display()))?;
            }
            run.report(&format!(
                "{} failed line(s) written to {}",
                failed.len(),
                out.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::function::{FunctionResponse, InvokeResult};
    use crate::model::{RecordBody, ShardId, StreamKind};
    use crate::ops::range::tests::{record, seq, FakeShard};

    #[test]
    fn a_target_is_a_url_a_lambda_function_or_a_command() {
        let http = parse_target("http://127.0.0.1:9/fn", 5).expect("http");
        assert_eq!(
            (
                http.function_type.as_str(),
                http.url.as_deref(),
                http.timeout_seconds
            ),
            ("http", Some("http://127.0.0.1:9/fn"), 5)
        );
        assert_eq!(
            parse_target("https://x.lambda-url.aws/", 5)
                .expect("https")
                .function_type,
            "http"
        );
        let lambda = parse_target("lambda:orders:live", 5).expect("lambda");
        assert_eq!(
            (lambda.name.as_str(), lambda.lambda_function.as_deref()),
            ("orders", Some("orders:live"))
        );
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:orders:7";
        let lambda = parse_target(&format!("lambda:{arn}"), 5).expect("lambda arn");
        assert_eq!(
            (lambda.name.as_str(), lambda.lambda_function.as_deref()),
            ("orders", Some(arn))
        );
        let command = parse_target("command:python3 handler.py  --fast", 5).expect("command");
        assert_eq!(
            command.command,
            Some(vec!["python3".into(), "handler.py".into(), "--fast".into()])
        );
        assert!(parse_target("command:  ", 5)
            .expect_err("empty")
            .contains("needs a program"));
        assert!(parse_target("lambda:", 5)
            .expect_err("empty")
            .contains("function name"));
        assert!(parse_target("ftp://x", 5)
            .expect_err("unknown")
            .contains("expected http://URL"));
    }

    /// Records every payload; fails when a payload holds `fail_on`; answers `body`.
    struct Recorder {
        payloads: Mutex<Vec<Vec<u8>>>,
        fail_on: &'static str,
        body: String,
    }

    #[async_trait]
    impl Function for Recorder {
        fn function_arn(&self) -> &str {
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        }
        async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
            self.payloads
                .lock()
                .expect("lock")
                .push(invocation.payload.to_vec());
            let text = String::from_utf8_lossy(invocation.payload);
            InvokeResult::Response(FunctionResponse {
                status_code: 200,
                function_error: (!self.fail_on.is_empty() && text.contains(self.fail_on))
                    .then(|| "Unhandled".to_string()),
                timed_out: false,
                executed_version: "$LATEST".into(),
                body: self.body.clone().into_bytes(),
            })
        }
    }

    fn batch(start: u64, end: u64, size: usize) -> BatchInfo {
        BatchInfo {
            kind: StreamKind::Kinesis,
            shard_id: ShardId("shardId-000000000003".into()),
            start_sequence_number: seq(start),
            end_sequence_number: seq(end),
            first_arrival_ms: 0,
            last_arrival_ms: 0,
            batch_size: size,
            stream_arn: "arn:aws:kinesis:eu-west-1:111122223333:stream/orders".into(),
        }
    }

    fn redriver(fail_on: &'static str) -> (Arc<Recorder>, Action) {
        answering(fail_on, String::new(), false)
    }

    fn answering(
        fail_on: &'static str,
        body: String,
        report_batch_item_failures: bool,
    ) -> (Arc<Recorder>, Action) {
        let recorder = Arc::new(Recorder {
            payloads: Mutex::new(Vec::new()),
            fail_on,
            body,
        });
        let action = Action::Invoke(Redriver {
            function: recorder.clone(),
            function_name: "f".into(),
            account_id: "123456789012".into(),
            default_region: "us-east-1".into(),
            report_batch_item_failures,
        });
        (recorder, action)
    }

    #[tokio::test]
    async fn with_report_batch_item_failures_a_reported_record_fails_the_redrive() {
        let shard = FakeShard::new([1, 2, 3]);
        let body = format!(
            r#"{{"batchItemFailures":[{{"itemIdentifier":"{}"}}]}}"#,
            seq(2)
        );
        let (_, action) = answering("", body.clone(), true);
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert!(!handled.verdict.succeeded());
        assert!(
            handled
                .line
                .ends_with("failed: partial_failure (from record 2)"),
            "{}",
            handled.line
        );
        // Without the flag the body is not read: a success.
        let (_, action) = answering("", body, false);
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::Invoked(Outcome::Success));
    }

    fn fast() -> Pace {
        Pace {
            read_interval: std::time::Duration::ZERO,
            throttle_backoff: std::time::Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn the_event_is_the_engines_event_of_exactly_the_batchs_records() {
        let shard = FakeShard::new([10, 20, 30, 40, 50]);
        let (recorder, action) = redriver("");
        let b = batch(20, 40, 3);
        let handled = redrive_batch(&shard, &b, &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::Invoked(Outcome::Success));
        assert!(
            handled.line.ends_with("fetched 3 of 3 record(s): success"),
            "{}",
            handled.line
        );
        let payloads = recorder.payloads.lock().expect("lock").clone();
        assert_eq!(payloads.len(), 1);
        // What the engine sends for these records (the batcher's encoding of the same
        // fragments), with the engine's context for this stream and function.
        let ctx = EventContext {
            shard_id: b.shard_id.clone(),
            event_source_arn: b.stream_arn.clone(),
            aws_region: "eu-west-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/f-role".into(),
        };
        let fragments: Vec<Vec<u8>> = [20, 30, 40]
            .map(|n| {
                let mut f = Vec::new();
                encode_record(&ctx, &record(n), &mut f);
                f
            })
            .to_vec();
        let mut expected = Vec::new();
        assemble_event(fragments.iter().map(Vec::as_slice), &mut expected);
        assert_eq!(payloads[0], expected);
        let event: serde_json::Value = serde_json::from_slice(&payloads[0]).expect("json");
        assert_eq!(event["Records"][0]["awsRegion"], "eu-west-1");
        assert_eq!(event["Records"][2]["kinesis"]["partitionKey"], "k40");
    }

    #[tokio::test]
    async fn a_trimmed_batch_is_redriven_with_what_is_left_and_says_how_many_are_gone() {
        // The batch was 10..40 (4 records); 10 and 20 have been trimmed since.
        let shard = FakeShard::new([30, 40, 50]);
        let (recorder, action) = redriver("");
        let handled = redrive_batch(&shard, &batch(10, 40, 4), &action, fast()).await;
        assert!(
            handled.line.contains("fetched 2 of 4 record(s); trimmed: 2 of 4 records no longer in the stream: success"),
            "{}",
            handled.line
        );
        let payload = recorder.payloads.lock().expect("lock")[0].clone();
        let event: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let seqs: Vec<&str> = event["Records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["kinesis"]["sequenceNumber"].as_str())
            .collect();
        assert_eq!(seqs, vec![seq(30).0.as_str(), seq(40).0.as_str()]);

        // Nothing left at all: a failure, and nothing is invoked.
        let shard = FakeShard::new([50]);
        let (recorder, action) = redriver("");
        let handled = redrive_batch(&shard, &batch(10, 40, 4), &action, fast()).await;
        assert_eq!(handled.verdict, Verdict::NothingLeft);
        assert!(!handled.verdict.succeeded());
        assert!(handled.line.contains("trimmed: 4 of 4"), "{}", handled.line);
        assert!(recorder.payloads.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_function_error_fails_and_print_and_dry_run_do_not_invoke() {
        let shard = FakeShard::new([1, 2, 3]);
        let (_, action) = redriver("k2");
        let handled = redrive_batch(&shard, &batch(1, 3, 3), &action, fast()).await;
        assert!(!handled.verdict.succeeded());
        assert!(
            handled.line.ends_with("failed: function_error"),
            "{}",
            handled.line
        );
        for action in [Action::DryRun, Action::Print { json: false }] {
            let handled = redrive_batch(&shard, &batch(1, 2, 2), &action, fast()).await;
            assert!(handled.verdict.succeeded());
            assert_eq!(handled.records.len(), 2);
            assert!(matches!(
                handled.records[0].body,
                RecordBody::Kinesis { .. }
            ));
        }
    }
}
