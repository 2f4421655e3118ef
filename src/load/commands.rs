//! The `load`, `replay` and `record` subcommands: their clap arguments and what each one
//! runs. `crate::cli` only names them and dispatches here, so the flags live next to the
//! code they configure.
//!
//! Every subcommand takes `--endpoint-url` and `--region`; without them the standard AWS
//! environment applies (`AWS_ENDPOINT_URL*` through the SDK; `AWS_REGION`,
//! `AWS_DEFAULT_REGION` or the profile's region), else us-east-1, as the daemon's
//! `[aws]` defaults. Each runs on its own Tokio runtime, stops cleanly on Ctrl-C (what was
//! done is still summarised), prints its summary on stdout and fails when records were
//! given up.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use clap::{ArgGroup, Args};

use super::record::{RecordLimit, StartFrom};
use super::{Controls, LoadSpec};
use crate::aws::AwsFactory;

/// Where the AWS calls go.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Endpoint of every AWS call, e.g. http://localhost:4566 for LocalStack [default: the
    /// AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, else AWS]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Region of the clients (a resource's ARN names its own) [default: AWS_REGION,
    /// AWS_DEFAULT_REGION or the profile's region, else us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl AwsArgs {
    pub async fn factory(&self) -> AwsFactory {
        let region = match &self.region {
            Some(region) => region.clone(),
            None => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(ProfileFileRegionProvider::new())
                .region()
                .await
                .map_or_else(|| "us-east-1".to_string(), |r| r.to_string()),
        };
        AwsFactory::new(self.endpoint_url.clone(), region)
    }
}

/// `esm-sim load`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["stream", "table"])))]
pub struct LoadArgs {
    /// Kinesis stream to put records into (name or ARN)
    #[arg(long, value_name = "ARN_OR_NAME")]
    pub stream: Option<String>,
    /// DynamoDB table to write items to (key `pk`, a string); its stream carries the changes
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Records (or item changes) per second
    #[arg(long, value_name = "N")]
    pub rate: f64,
    /// How long to run, in seconds: rate × duration records in all
    #[arg(long, value_name = "SECONDS")]
    pub duration: f64,
    /// Number of distinct partition keys (user-0 .. user-<K-1>)
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub keys: u64,
    /// Size of each record's JSON payload (about that of each item)
    #[arg(long, value_name = "B", default_value_t = 100)]
    pub payload_bytes: usize,
    /// Every Mth record is poison (its JSON holds "poison":true)
    #[arg(long, value_name = "M")]
    pub poison_every: Option<u64>,
    /// Seed of the key and amount draws
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `esm-sim replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Traffic file (JSON Lines: partition_key, data or data_base64, offset_ms)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Kinesis stream to put the records into (name or ARN)
    #[arg(long, value_name = "ARN_OR_NAME")]
    pub stream: String,
    /// Multiplies the recorded pace (2: twice as fast); 0: as fast as possible
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `esm-sim record`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("until").required(true).args(["duration", "count"])))]
pub struct RecordArgs {
    /// Kinesis stream to read (name or ARN)
    #[arg(long, value_name = "ARN_OR_NAME")]
    pub stream: String,
    /// Traffic file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where each shard is read from
    #[arg(long, value_enum, default_value_t = StartFrom::TrimHorizon)]
    pub from: StartFrom,
    /// Read for this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop after this many records
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Runs `work` on a new runtime with a Ctrl-C handler that cancels `controls.stop`.
fn run<T>(work: impl AsyncFnOnce(Controls) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let controls = Controls {
            show_progress: true,
            ..Controls::default()
        };
        let stop = controls.stop.clone();
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
        let result = work(controls).await;
        watcher.abort();
        result
    })
}

impl LoadArgs {
    pub fn spec(&self) -> LoadSpec {
        LoadSpec {
            keys: self.keys,
            payload_bytes: self.payload_bytes,
            poison_every: self.poison_every,
            seed: self.seed,
            ..LoadSpec::new(self.rate, self.duration)
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let spec = self.spec();
        spec.validate()?;
        let summary = run(async |controls| {
            let factory = self.aws.factory().await;
            match (&self.stream, &self.table) {
                (Some(stream), _) => super::load_stream(&factory, stream, &spec, &controls).await,
                (None, Some(table)) => super::load_table(&factory, table, &spec, &controls).await,
                (None, None) => anyhow::bail!("give --stream or --table"),
            }
        })?;
        println!("{summary}");
        summary.failure().map_or(Ok(()), Err)
    }
}

impl ReplayArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let summary = run(async |controls| {
            let factory = self.aws.factory().await;
            super::replay(&factory, &self.file, &self.stream, self.speed, &controls).await
        })?;
        println!("{summary}");
        summary.failure().map_or(Ok(()), Err)
    }
}

impl RecordArgs {
    pub fn limit(&self) -> anyhow::Result<RecordLimit> {
        match (self.duration, self.count) {
            (Some(seconds), None) if seconds.is_finite() && seconds > 0.0 => {
                Ok(RecordLimit::Duration(Duration::from_secs_f64(seconds)))
            }
            (Some(seconds), None) => {
                anyhow::bail!("--duration {seconds}: must be a number of seconds > 0")
            }
            (None, Some(0)) => anyhow::bail!("--count 0: must be at least 1"),
            (None, Some(count)) => Ok(RecordLimit::Count(count)),
            _ => anyhow::bail!("give --duration or --count"),
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let limit = self.limit()?;
        let summary = run(async |controls| {
            let factory = self.aws.factory().await;
            super::record(
                &factory,
                &self.stream,
                &self.out,
                self.from,
                limit,
                &controls,
            )
            .await
        })?;
        println!("{summary}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Load(LoadArgs),
        Replay(ReplayArgs),
        Record(RecordArgs),
    }

    fn parse(args: &str) -> Result<Sub, clap::Error> {
        Test::try_parse_from(std::iter::once("t").chain(args.split_whitespace())).map(|t| t.command)
    }

    #[test]
    fn the_command_line_with_these_subcommands_is_well_formed() {
        use clap::CommandFactory;
        Test::command().debug_assert();
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn load_takes_a_stream_or_a_table_but_not_both() {
        let Ok(Sub::Load(args)) = parse("load --stream s --rate 10 --duration 2 --poison-every 5")
        else {
            panic!()
        };
        assert_eq!(args.spec().poison_every, Some(5));
        assert_eq!(args.spec().keys, 100);
        assert!(parse("load --table t --rate 10 --duration 2").is_ok());
        assert!(parse("load --rate 10 --duration 2").is_err());
        assert!(parse("load --stream s --table t --rate 10 --duration 2").is_err());
    }

    #[test]
    fn record_takes_a_duration_or_a_count_and_a_start() {
        let Ok(Sub::Record(args)) = parse("record --stream s --out f --from latest --count 5")
        else {
            panic!()
        };
        assert_eq!(args.from, StartFrom::Latest);
        assert_eq!(args.limit().unwrap(), RecordLimit::Count(5));
        let Ok(Sub::Record(args)) = parse("record --stream s --out f --duration 1.5") else {
            panic!()
        };
        assert_eq!(args.from, StartFrom::TrimHorizon);
        assert_eq!(
            args.limit().unwrap(),
            RecordLimit::Duration(Duration::from_millis(1500))
        );
        assert!(parse("record --stream s --out f").is_err());
        assert!(parse("record --stream s --out f --duration 1 --count 2").is_err());
        assert!(parse("record --stream s --out f --count 1 --from trim-horizon").is_ok());
    }

    #[test]
    fn replay_defaults_to_the_recorded_pace() {
        let Ok(Sub::Replay(args)) = parse("replay t.jsonl --stream s --endpoint-url http://x")
        else {
            panic!()
        };
        assert_eq!(args.speed, 1.0);
        assert_eq!(args.aws.endpoint_url.as_deref(), Some("http://x"));
    }
}
