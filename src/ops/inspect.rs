//! `esm-sim inspect`: prints a shard's records from a sequence number on, so the sequence
//! numbers of an on-failure record (or of a log line) can be looked at.
//!
//! Reads a real Kinesis or DynamoDB stream with the engine's source, AT_SEQUENCE_NUMBER
//! `--from`, until `--to` (inclusive), `--count` records (default 10), the shard's end or
//! the tip (`range::read_range`: it never waits for new records). Records go to stdout, one
//! a line (text, or JSON with `--json`); how the read ended goes to stderr. Simulated
//! streams of a config are not readable here: they exist only inside `run` / `simulate`.

use std::io::Write as _;

use clap::{ArgGroup, Args};

use super::range::{read_range, Pace, RangeEnd, Until};
use super::{block_on, connect_source, kind_of, show};
use crate::load::commands::AwsArgs;
use crate::model::{SequenceNumber, ShardId};

/// Records printed when neither `--to` nor `--count` is given.
pub const DEFAULT_COUNT: usize = 10;

/// `esm-sim inspect`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("end").args(["to", "count"])))]
pub struct InspectArgs {
    /// Kinesis stream (name or ARN) or DynamoDB stream (ARN)
    #[arg(long, value_name = "ARN_OR_NAME")]
    pub stream: String,
    /// Shard to read, e.g. shardId-000000000000
    #[arg(long, value_name = "SHARD_ID")]
    pub shard: String,
    /// First sequence number (inclusive)
    #[arg(long, value_name = "SEQ", value_parser = parse_sequence)]
    pub from: SequenceNumber,
    /// Last sequence number (inclusive)
    #[arg(long, value_name = "SEQ", value_parser = parse_sequence)]
    pub to: Option<SequenceNumber>,
    /// How many records [default: 10 when --to is not given]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// One JSON object per record and line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// A sequence number: decimal digits.
pub fn parse_sequence(text: &str) -> Result<SequenceNumber, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(SequenceNumber(text.to_string()))
    } else {
        Err(format!(
            "{text:?} is not a sequence number (decimal digits)"
        ))
    }
}

impl InspectArgs {
    /// Where the read stops: `--to`, else `--count`, else `DEFAULT_COUNT` records.
    fn until(&self) -> anyhow::Result<Until> {
        if let Some(to) = &self.to {
            if *to < self.from {
                anyhow::bail!("--to {to} is before --from {}", self.from);
            }
        }
        let count = match (&self.to, self.count) {
            (_, Some(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            (Some(_), None) => None,
            (None, None) => Some(DEFAULT_COUNT),
        };
        Ok(Until {
            to: self.to.clone(),
            count,
        })
    }

    pub fn run(self) -> anyhow::Result<()> {
        let until = self.until()?;
        block_on(async {
            let factory = self.aws.factory().await;
            let kind = kind_of(&self.stream);
            let source = connect_source(&factory, &self.stream, kind).await?;
            let shard = ShardId(self.shard.clone());
            let read = read_range(source.as_ref(), &shard, &self.from, &until, Pace::of(kind))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("reading {} of {}: {e}", self.shard, source.stream_arn())
                })?;
            let mut out = std::io::stdout().lock();
            for record in &read.records {
                let line = if self.json {
                    show::to_json(&shard, record).to_string()
                } else {
                    show::to_text(record)
                };
                writeln!(out, "{line}")?;
            }
            out.flush()?;
            let end = match read.end {
                RangeEnd::PastTo => "reached --to",
                RangeEnd::Count => "reached --count",
                RangeEnd::ShardEnd => "the shard is closed and was read to its end",
                RangeEnd::Tip => "reached the newest record of the shard",
                RangeEnd::GaveUp => "gave up after many empty reads",
            };
            eprintln!("{} record(s); {end}", read.records.len());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: InspectArgs,
    }

    fn parse(args: &str) -> Result<InspectArgs, clap::Error> {
        Cli::try_parse_from(["x"].into_iter().chain(args.split_whitespace())).map(|c| c.args)
    }

    #[test]
    fn the_count_defaults_to_10_without_to_and_to_and_count_exclude_each_other() {
        let args = parse("--stream s --shard sh --from 5").expect("parse");
        assert_eq!(args.until().expect("until").count, Some(DEFAULT_COUNT));
        let args = parse("--stream s --shard sh --from 5 --to 9").expect("parse");
        assert_eq!(
            args.until().expect("until"),
            Until {
                to: Some(SequenceNumber("9".into())),
                count: None
            }
        );
        let args = parse("--stream s --shard sh --from 5 --count 3").expect("parse");
        assert_eq!(args.until().expect("until").count, Some(3));
        assert!(parse("--stream s --shard sh --from 5 --to 9 --count 3").is_err());
        assert!(parse("--stream s --shard sh --from 5 --count 0").is_err());
        assert!(parse("--stream s --shard sh --from 5x").is_err());
        let args = parse("--stream s --shard sh --from 50 --to 9").expect("parse");
        assert!(args
            .until()
            .expect_err("reversed")
            .to_string()
            .contains("before --from"));
    }
}
