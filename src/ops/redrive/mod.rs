//! `esm-sim redrive`: reads on-failure records back (from an SQS queue, a JSONL file or
//! an S3 destination's objects), fetches each discarded batch from the stream by its
//! sequence range (an S3 object keeps the event itself: it is used as it is), and prints it or
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
//! - S3 (`s3://BUCKET[/PREFIX]`, prefix `aws/lambda/` by default): objects in key order;
//!   each object's `payload` is invoked as it is, the stream is not read; an object is
//!   deleted only after its redrive succeeded, the others stay.
//! - A JSONL file is never modified; `--failed-out FILE` writes its failed lines verbatim,
//!   a file to redrive from again.
//! - The exit status is non-zero when any failure record was not redriven.
//!
//! Files: `target` (reading `--target`), `batch` (fetching one batch and acting on it);
//! this file holds the CLI arguments and the run over a queue or a file.

mod batch;
mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use self::batch::{redrive_batch, redrive_kept, Action, Handled, Redriver, Verdict};
use self::target::parse_target;
use super::failure_source::{
    batch_of_body, kept_batch, read_lines, Bucket, FromSpec, Message, Origin, Queue,
};
use super::range::Pace;
use super::{block_on, connect_source, show};
use crate::assemble::build_function;
use crate::aws::AwsFactory;
use crate::config::schema::{AwsIdentity, FunctionConfig};
use crate::event::BatchInfo;
use crate::load::commands::AwsArgs;
use crate::policy::Outcome;
use crate::source::StreamSource;

/// `esm-sim redrive`.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// Where the failure records are: an SQS queue URL or ARN, a JSONL file (the file://
    /// destination or the dead-letter file), or s3://BUCKET[/PREFIX] (an S3 destination's
    /// objects, under aws/lambda/ by default; their kept events are redriven)
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
        self.count(handled.verdict)
    }

    /// Handles one S3 failure object: its kept event is invoked (or printed as it is).
    async fn handle_kept(&mut self, origin: &Origin, body: &[u8]) -> Verdict {
        let handled = match kept_batch(body) {
            Err(why) => Handled::failed(None, Verdict::Invalid(why)),
            Ok(kept) => {
                let handled = redrive_kept(&kept, &self.action).await;
                if let Action::Print { .. } = &self.action {
                    println!("{}", String::from_utf8_lossy(&kept.event));
                }
                handled
            }
        };
        self.report(&format!("{origin}: {}", handled.line));
        self.count(handled.verdict)
    }

    fn count(&mut self, verdict: Verdict) -> Verdict {
        if verdict.succeeded() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        verdict
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
                FromSpec::Bucket { bucket, prefix } => {
                    let bucket = Bucket::connect(&run.factory, bucket, prefix).await;
                    redrive_bucket(&mut run, &bucket, max).await?
                }
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
        let mut seen = HashSet::new();
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

/// Redrives the objects of an S3 destination, in key order: each object's kept event is
/// invoked, and the object deleted only after its redrive succeeded.
async fn redrive_bucket(run: &mut Run, bucket: &Bucket, max: usize) -> anyhow::Result<()> {
    let keys = bucket.keys(max).await?;
    let mut deleted = 0usize;
    for key in &keys {
        let origin = Origin::Object(key.clone());
        let verdict = match bucket.read(key).await {
            Ok(body) => run.handle_kept(&origin, &body).await,
            Err(error) => {
                run.report(&format!("{origin}: failed: {error:#}"));
                run.count(Verdict::ReadFailed(format!("{error:#}")))
            }
        };
        if matches!(verdict, Verdict::Invoked(Outcome::Success)) {
            match bucket.delete(key).await {
                Ok(()) => deleted += 1,
                Err(error) => {
                    run.report(&format!("{origin}: redriven but not deleted: {error:#}"));
                    run.succeeded -= 1;
                    run.failed += 1;
                }
            }
        }
    }
    run.report(&format!(
        "{} object(s): {deleted} redriven and deleted, {} left in the bucket",
        keys.len(),
        keys.len() - deleted
    ));
    Ok(())
}
