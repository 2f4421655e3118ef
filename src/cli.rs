//! The command line: subcommands and their flags (clap derive). Each subcommand's work
//! lives in its own module; this file only parses and dispatches.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, ConfigSource};
use crate::simulate::{simulate, summary, SimulateOptions};

#[derive(Debug, Parser)]
#[command(
    name = "esm-sim",
    version,
    about = "AWS Lambda event source mapping for Kinesis and DynamoDB Streams: a daemon and a deterministic simulator"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mappings in real time until SIGINT/SIGTERM; resumes from checkpoints.
    Run {
        /// Config file. Default: ./config.toml, else the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Run the config's simulated world in virtual time to its end; print a summary and a JSON report.
    Simulate {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides [simulation] seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the JSON report ("-" for stdout).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Where to write one JSON line per invocation attempt ("-" for stdout).
        #[arg(long)]
        invocation_log: Option<PathBuf>,
        /// Keep checkpoints and the virtual clock in this directory: a later run with the
        /// same directory continues where this one stopped.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Stop after this many virtual seconds (default: [simulation] max_duration_seconds).
        #[arg(long)]
        until: Option<u64>,
        /// Print one summary line per shard (the JSON report always has them).
        #[arg(long)]
        shards: bool,
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Check a config and print what it would run.
    Validate {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Put generated records into a Kinesis stream (--stream), or write items to a
    /// DynamoDB table (--table), at a steady rate; print a summary.
    Load(crate::load::LoadArgs),
    /// Put the records of a traffic file into a Kinesis stream at their recorded pace.
    Replay(crate::load::ReplayArgs),
    /// Read a Kinesis stream's records into a traffic file (for `replay`).
    Record(crate::load::RecordArgs),
    /// Print a shard's records from a sequence number (Kinesis or DynamoDB stream).
    Inspect(crate::ops::InspectArgs),
    /// Fetch the batches of on-failure records (SQS queue or JSONL file) back from the
    /// stream; print them or invoke a function with them again.
    Redrive(crate::ops::RedriveArgs),
    /// A running daemon's shards as a table (state, iterator age, last advance, attempt,
    /// blocking records, last error), from its admin API.
    Shards(crate::admin::commands::ShardsArgs),
    /// One shard of a running daemon, in full.
    Shard(crate::admin::commands::ShardArgs),
    /// Pause a shard: the invocation in flight finishes, then it waits.
    Pause(crate::admin::commands::ShardArgs),
    /// Resume a paused shard.
    Resume(crate::admin::commands::ShardArgs),
    /// Discard the batch blocking a shard (failure record with condition SkippedByOperator) and move on.
    Skip(crate::admin::commands::ShardArgs),
    /// Move a paused shard's position to a sequence number or a time.
    Rewind(crate::admin::commands::RewindArgs),
    /// The DynamoDB lease table: `import` moves the embedded store's positions into it.
    Leases(crate::ops::leases::LeasesArgs),
}

/// A CloudFormation / SAM template whose stream mappings are added to the config's.
#[derive(Debug, Default, clap::Args)]
pub struct TemplateArgs {
    /// A CloudFormation or SAM template (YAML or JSON): its AWS::Lambda::EventSourceMapping
    /// resources and the Kinesis / DynamoDB events of its functions become mappings.
    #[arg(long)]
    template: Option<PathBuf>,
    /// A template parameter's value (repeatable); over [template] parameters and Default.
    #[arg(long = "parameter", value_name = "KEY=VALUE", requires = "template", value_parser = parse_parameter)]
    parameters: Vec<(String, String)>,
    /// AWS::StackName of the template. Default: esm-sim.
    #[arg(long, requires = "template")]
    stack_name: Option<String>,
}

impl TemplateArgs {
    fn options(self) -> Option<config::TemplateOptions> {
        Some(config::TemplateOptions {
            path: self.template?,
            parameters: self.parameters,
            stack_name: self.stack_name,
        })
    }
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

fn load(path: Option<&PathBuf>, template: TemplateArgs) -> anyhow::Result<config::Config> {
    let template = template.options();
    match config::load_with_template(path.map(PathBuf::as_path), template.as_ref()) {
        Ok((config, source)) => {
            match source {
                ConfigSource::File(path) => {
                    tracing::info!(config = %path.display(), "config loaded")
                }
                ConfigSource::Embedded => {
                    tracing::info!("no ./config.toml: using the embedded default")
                }
            }
            Ok(config)
        }
        Err(error) => Err(anyhow::anyhow!("invalid config:\n{error}")),
    }
}

pub fn main_with(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config, template } => {
            let config = load(config.as_ref(), template)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::daemon::run(&config))
        }
        Command::Simulate {
            config,
            seed,
            report,
            invocation_log,
            state_dir,
            until,
            shards,
            template,
        } => {
            let config = load(config.as_ref(), template)?;
            let options = SimulateOptions {
                seed,
                invocation_log,
                state_dir,
                until_seconds: until,
                tap: None,
            };
            let dash = Some(Path::new("-"));
            if report.as_deref() == dash && options.invocation_log.as_deref() == dash {
                anyhow::bail!("--report - and --invocation-log - cannot both use stdout");
            }
            let result = simulate(&config, &options)?;
            let json = serde_json::to_string_pretty(&result)?;
            match report.as_deref() {
                Some(path) if Some(path) == dash => println!("{json}"),
                Some(path) => std::fs::write(path, json + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => {}
            }
            // The summary goes to stdout unless stdout carries the report or the log.
            if report.as_deref() == dash || options.invocation_log.as_deref() == dash {
                std::io::stderr().write_all(summary(&result, shards).as_bytes())?;
            } else {
                std::io::stdout().write_all(summary(&result, shards).as_bytes())?;
            }
            Ok(())
        }
        Command::Validate { config, template } => {
            let config = load(config.as_ref(), template)?;
            print!("{}", config::describe::describe(&config));
            println!("config is valid");
            Ok(())
        }
        Command::Load(args) => args.run(),
        Command::Replay(args) => args.run(),
        Command::Record(args) => args.run(),
        Command::Inspect(args) => args.run(),
        Command::Redrive(args) => args.run(),
        Command::Shards(args) => args.run(),
        Command::Shard(args) => args.run(),
        Command::Pause(args) => args.act(crate::admin::commands::Action::Pause),
        Command::Resume(args) => args.act(crate::admin::commands::Action::Resume),
        Command::Skip(args) => args.act(crate::admin::commands::Action::Skip),
        Command::Rewind(args) => args.run(),
        Command::Leases(args) => args.run(),
    }
}
