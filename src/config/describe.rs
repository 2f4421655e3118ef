//! The human summary printed by `esm-sim validate`.
//!
//! It shows the config as the engine will run it, not as it was written: every mapping
//! with every resolved parameter (defaults marked), its stream, its function and its
//! destination, so a reader can check what a default or an AWS JSON file really meant
//! without reading the code. Pure formatting of a validated `Config`; no I/O.

use std::fmt::Write as _;

use super::mapping::{
    Config, Coordination, Mapping, OnDestinationFailure, Pace, Simulation, StartingPosition,
    WorkerAction,
};
use super::schema::{FunctionConfig, RuleAction, SimStreamConfig};
use crate::model::StreamKind;

/// A human summary of `config`, ending with a newline.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_config(&mut out, config);
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_config(out: &mut String, config: &Config) -> std::fmt::Result {
    writeln!(
        out,
        "{}, {}, {}",
        plural(config.mappings.len(), "mapping", "mappings"),
        plural(
            config.streams.len(),
            "simulated stream",
            "simulated streams"
        ),
        plural(config.functions.len(), "function", "functions"),
    )?;
    writeln!(out, "state_dir: {}", config.state_dir.display())?;
    writeln!(
        out,
        "dead_letter_file: {}",
        config.dead_letter_file.display()
    )?;
    writeln!(
        out,
        "checkpoint_flush_ms: {} (a checkpoint is durable at most this long after it is saved)",
        config.checkpoint_flush_ms
    )?;
    write_coordination(out, &config.coordination)?;
    writeln!(
        out,
        "aws: region {}, account {}",
        config.aws.region, config.aws.account_id
    )?;
    let sim = &config.simulation;
    writeln!(
        out,
        "simulation: seed {}, start {}, at most {} s",
        sim.seed,
        format_epoch_ms(sim.start_ms),
        sim.max_duration_ms / 1000
    )?;
    write_workers(out, sim)?;
    writeln!(
        out,
        "log: stats every {} s",
        config.stats_interval_ms / 1000
    )?;

    if config.mappings.is_empty() {
        writeln!(
            out,
            "no mappings yet: `esm-sim run` waits for them to be created through its Lambda API (docs/lambda-api.md)"
        )?;
    }
    for mapping in &config.mappings {
        writeln!(out)?;
        write_mapping(out, config, mapping)?;
    }

    let unused_streams: Vec<&SimStreamConfig> = config
        .streams
        .iter()
        .filter(|s| {
            !config
                .mappings
                .iter()
                .any(|m| m.event_source_arn == s.arn(&config.aws))
        })
        .collect();
    if !unused_streams.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "streams without a mapping (simulated, nobody reads them):"
        )?;
        for stream in unused_streams {
            write_stream(out, config, stream, "  ")?;
        }
    }
    let unused_functions: Vec<&FunctionConfig> = config
        .functions
        .iter()
        .filter(|f| !config.mappings.iter().any(|m| m.function_name == f.name))
        .collect();
    if !unused_functions.is_empty() {
        writeln!(out)?;
        writeln!(out, "functions without a mapping:")?;
        for function in unused_functions {
            write_function(out, function, "  ")?;
        }
    }
    Ok(())
}

/// With several workers or a schedule: how many share the in-memory lease table of
/// `simulate`, and what happens to them when.
fn write_workers(out: &mut String, sim: &Simulation) -> std::fmt::Result {
    if sim.workers == 1 && sim.worker_events.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "simulation workers: {} (worker-1..worker-{}), sharing an in-memory lease table",
        sim.workers, sim.workers
    )?;
    for event in &sim.worker_events {
        let what = match event.action {
            WorkerAction::Crash => "crash (kill -9: no hand-back, in-flight work lost)".to_string(),
            WorkerAction::Pause { for_ms } => {
                format!("pause for {} s (SIGSTOP, then SIGCONT)", for_ms / 1000)
            }
            WorkerAction::Stop => {
                "stop (SIGTERM: checkpoints written, leases handed back)".to_string()
            }
            WorkerAction::Start => "start".to_string(),
        };
        writeln!(
            out,
            "  at {} s: worker {} {what}",
            event.at_ms / 1000,
            event.worker
        )?;
    }
    Ok(())
}

/// `coordination: embedded store (this process alone)`, or the lease table, this worker
/// and the timing KCL's rules derive from the lease duration.
fn write_coordination(out: &mut String, c: &Coordination) -> std::fmt::Result {
    let Some(t) = &c.lease_table else {
        return writeln!(out, "coordination: embedded store (this process alone)");
    };
    writeln!(
        out,
        "coordination: DynamoDB lease table {:?}, worker {:?}; lease {} ms, renew every {} ms, take every {} ms, at most {} steal(s) per pass",
        t.table,
        t.worker_id,
        t.timing.lease_duration_ms,
        t.timing.renew_interval_ms,
        t.timing.take_interval_ms,
        t.max_steals_per_pass
    )
}

fn format_epoch_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => format!("{ms} ms after the epoch"),
    }
}

/// `value`, with ` (default)` when it equals the default.
fn with_default<T: PartialEq + std::fmt::Display>(value: T, default: T) -> String {
    if value == default {
        format!("{value} (default)")
    } else {
        value.to_string()
    }
}

fn write_mapping(out: &mut String, config: &Config, m: &Mapping) -> std::fmt::Result {
    let state = if m.enabled {
        "enabled"
    } else {
        "disabled: no polling"
    };
    writeln!(out, "mapping {:?} ({state})", m.name)?;
    writeln!(out, "  event_source_arn: {}", m.event_source_arn)?;
    match &m.consumer {
        Some(super::mapping::FanOutConsumer::Arn(arn)) => {
            writeln!(out, "  enhanced fan-out: through consumer {arn}")?
        }
        Some(super::mapping::FanOutConsumer::Name(name)) => writeln!(
            out,
            "  enhanced fan-out: through consumer {name:?} (registered at start if missing)"
        )?,
        None => {}
    }
    match config
        .streams
        .iter()
        .find(|s| s.arn(&config.aws) == m.event_source_arn)
    {
        Some(stream) => write_stream(out, config, stream, "  stream: ")?,
        None => writeln!(
            out,
            "  stream: not simulated ({} stream in AWS)",
            kind_name(m.stream_kind)
        )?,
    }
    match config.functions.iter().find(|f| f.name == m.function_name) {
        Some(function) => write_function(out, function, "  function: ")?,
        None => writeln!(out, "  function: {:?} (not defined)", m.function_name)?,
    }
    match &m.on_failure_destination {
        Some(dest) => match dest.strip_prefix("file://") {
            Some(path) => writeln!(
                out,
                "  on-failure destination: {dest} (local JSONL file {path})"
            )?,
            None => writeln!(out, "  on-failure destination: {dest}")?,
        },
        None => writeln!(
            out,
            "  on-failure destination: none (discarded batches go only to the dead-letter file)"
        )?,
    }
    let on_dest_failure = match m.on_destination_failure {
        OnDestinationFailure::DeadLetter => {
            "dead_letter (default): drop after the retries, written to the dead-letter file"
        }
        OnDestinationFailure::Block => "block: the shard waits until the destination takes it",
    };
    writeln!(out, "  on_destination_failure: {on_dest_failure}")?;

    writeln!(out, "  batch_size: {}", with_default(m.batch_size, 100))?;
    writeln!(
        out,
        "  maximum_batching_window_in_seconds: {}",
        with_default(m.maximum_batching_window_ms as f64 / 1000.0, 0.0)
    )?;
    let position = match m.starting_position {
        StartingPosition::TrimHorizon => "TRIM_HORIZON".to_string(),
        StartingPosition::Latest => "LATEST".to_string(),
        StartingPosition::AtTimestamp(ms) => {
            format!("AT_TIMESTAMP {} ({ms} ms)", format_epoch_ms(ms))
        }
    };
    writeln!(out, "  starting_position: {position}")?;
    writeln!(
        out,
        "  parallelization_factor: {}",
        with_default(m.parallelization_factor, 1)
    )?;
    writeln!(
        out,
        "  bisect_batch_on_function_error: {}",
        with_default(m.bisect_batch_on_function_error, false)
    )?;
    let retries = match m.maximum_retry_attempts {
        Some(n) => n.to_string(),
        None => "-1 (default: retry until the records expire)".to_string(),
    };
    writeln!(out, "  maximum_retry_attempts: {retries}")?;
    let age = match m.maximum_record_age_ms {
        Some(ms) => (ms / 1000).to_string(),
        None => "-1 (default: records never expire, retention aside)".to_string(),
    };
    writeln!(out, "  maximum_record_age_in_seconds: {age}")?;
    let response_types = if m.report_batch_item_failures {
        "[\"ReportBatchItemFailures\"]"
    } else {
        "[] (default)"
    };
    writeln!(out, "  function_response_types: {response_types}")?;
    writeln!(
        out,
        "  tumbling_window_in_seconds: {}",
        with_default(m.tumbling_window_in_seconds, 0)
    )?;
    if m.filter_patterns.is_empty() {
        writeln!(out, "  filter_criteria: none (default)")?;
    } else {
        writeln!(
            out,
            "  filter_criteria: {}",
            plural(m.filter_patterns.len(), "filter", "filters")
        )?;
        for pattern in &m.filter_patterns {
            writeln!(out, "    {pattern}")?;
        }
    }
    write_metrics_config(out, &m.metrics)?;
    write_pace(out, &m.pace, m.stream_kind)
}

fn write_metrics_config(out: &mut String, metrics: &[String]) -> std::fmt::Result {
    if metrics.is_empty() {
        writeln!(out, "  metrics_config: none (default)")
    } else {
        writeln!(
            out,
            "  metrics_config: {metrics:?} (AWS CloudWatch metrics: no effect locally)"
        )
    }
}

fn write_pace(out: &mut String, pace: &Pace, kind: StreamKind) -> std::fmt::Result {
    let default = if *pace == Pace::aws_default(kind) {
        " (AWS default)"
    } else {
        ""
    };
    writeln!(out, "  pace{default}:")?;
    writeln!(
        out,
        "    poll every {} ms when caught up, at least {} ms between reads, up to {} records per read",
        pace.poll_interval_ms, pace.min_read_interval_ms, pace.get_records_limit
    )?;
    writeln!(
        out,
        "    shard discovery every {} s",
        pace.discovery_interval_ms as f64 / 1000.0
    )?;
    writeln!(
        out,
        "    retry backoff {}..{} ms, throttle backoff {}..{} ms",
        pace.retry_backoff_initial_ms,
        pace.retry_backoff_max_ms,
        pace.throttle_backoff_initial_ms,
        pace.throttle_backoff_max_ms
    )?;
    writeln!(
        out,
        "    destination retried for {} s, shutdown grace {} s",
        pace.destination_retry_ms as f64 / 1000.0,
        pace.shutdown_grace_ms as f64 / 1000.0
    )
}

fn kind_name(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Kinesis => "Kinesis",
        StreamKind::Dynamodb => "DynamoDB",
    }
}

fn write_stream(
    out: &mut String,
    config: &Config,
    s: &SimStreamConfig,
    lead: &str,
) -> std::fmt::Result {
    let retention = s
        .retention_hours
        .map_or_else(|| "24 h".to_string(), |h| format!("{h} h"));
    let noun = match s.kind {
        StreamKind::Kinesis => "stream",
        StreamKind::Dynamodb => "table",
    };
    write!(
        out,
        "{lead}simulated {} {noun} {:?}, {}, retention {retention}",
        kind_name(s.kind),
        s.name,
        plural(s.shards as usize, "shard", "shards")
    )?;
    if let Some(view) = s.stream_view_type {
        write!(out, ", {}", view.as_str())?;
    }
    if let Some(rollover) = s.rollover_seconds {
        write!(out, ", shards roll over every {rollover} s")?;
    }
    writeln!(out)?;
    if lead.trim().is_empty() {
        writeln!(out, "    arn: {}", s.arn(&config.aws))?;
    }
    if s.producers.is_empty() {
        writeln!(out, "    no producers")?;
    }
    for (i, p) in s.producers.iter().enumerate() {
        write!(
            out,
            "    producer {}: {} records/s from {} s",
            i + 1,
            p.rate_per_second,
            p.start_seconds
        )?;
        match (p.duration_seconds, p.records) {
            (Some(d), Some(r)) => write!(out, " for {d} s or {r} records")?,
            (Some(d), None) => write!(out, " for {d} s")?,
            (None, Some(r)) => write!(out, " for {r} records")?,
            (None, None) => write!(out, ", no end")?,
        }
        write!(
            out,
            ", {} \"{}N\", {} bytes",
            plural(p.keys as usize, "key", "keys"),
            p.key_prefix,
            p.payload_bytes
        )?;
        if let Some(every) = p.poison_every {
            write!(out, ", 1 record in {every} is poison")?;
        }
        writeln!(out)?;
    }
    for (i, r) in s.reshard.iter().enumerate() {
        match (&r.split, &r.merge) {
            (Some(shard), _) => writeln!(
                out,
                "    reshard {}: at {} s split {shard}",
                i + 1,
                r.at_seconds
            )?,
            (None, Some([a, b])) => writeln!(
                out,
                "    reshard {}: at {} s merge {a} and {b}",
                i + 1,
                r.at_seconds
            )?,
            (None, None) => {}
        }
    }
    let f = &s.faults;
    let expiry = f
        .iterator_expiry_seconds
        .map_or_else(String::new, |e| format!(", iterators expire after {e} s"));
    writeln!(
        out,
        "    faults: throttle rate {}, read latency {} ms{expiry}",
        f.throttle_rate, f.read_latency_ms
    )
}

fn write_function(out: &mut String, f: &FunctionConfig, lead: &str) -> std::fmt::Result {
    let latency = match f.latency.p99_ms {
        Some(p99) => format!("latency p50 {} ms, p99 {p99} ms", f.latency.p50_ms),
        None => format!("latency {} ms", f.latency.p50_ms),
    };
    writeln!(
        out,
        "{lead}{:?} ({}), timeout {} s, {latency}",
        f.name, f.function_type, f.timeout_seconds
    )?;
    if f.rules.is_empty() {
        writeln!(out, "    no failure rules: every invocation succeeds")?;
    }
    for (i, rule) in f.rules.iter().enumerate() {
        let mut when = Vec::new();
        if let Some(text) = &rule.when_data_contains {
            when.push(format!("a record's data contains {text:?}"));
        }
        if let Some(fraction) = rule.fraction {
            when.push(format!("for a fraction {fraction} of invocations"));
        }
        let action = match rule.action {
            RuleAction::Error => "function error".to_string(),
            RuleAction::Partial => "partial batch response".to_string(),
            RuleAction::Timeout => format!("times out after {} s", f.timeout_seconds),
            RuleAction::Malformed => format!(
                "malformed response {}",
                rule.body
                    .as_deref()
                    .unwrap_or("{\"batchItemFailures\":\"oops\"}")
            ),
            RuleAction::Throttle => "throttled (TooManyRequests)".to_string(),
        };
        writeln!(
            out,
            "    rule {}: when {} → {action}",
            i + 1,
            when.join(" and ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, EMBEDDED_DEFAULT};
    use std::path::Path;

    #[test]
    fn describes_the_embedded_default() {
        let config = parse(EMBEDDED_DEFAULT, Path::new("")).unwrap();
        let text = describe(&config);
        for expected in [
            "1 mapping, 1 simulated stream, 1 function",
            "mapping \"orders-to-processor\" (enabled)",
            "  event_source_arn: arn:aws:kinesis:us-east-1:123456789012:stream/orders",
            "  stream: simulated Kinesis stream \"orders\", 4 shards, retention 24 h",
            "    producer 1: 20 records/s from 0 s for 600 s, 50 keys \"user-N\", 120 bytes, 1 record in 250 is poison",
            "    reshard 1: at 300 s split shardId-000000000000",
            "  function: \"order-processor\" (simulated), timeout 3 s, latency p50 15 ms, p99 120 ms",
            "    rule 1: when a record's data contains \"\\\"poison\\\":true\" → function error",
            "  on-failure destination: file://.esm-sim/failures.jsonl (local JSONL file .esm-sim/failures.jsonl)",
            "  batch_size: 50\n",
            "  maximum_batching_window_in_seconds: 1\n",
            "  starting_position: TRIM_HORIZON",
            "  parallelization_factor: 1 (default)",
            "  bisect_batch_on_function_error: true\n",
            "  maximum_retry_attempts: 2\n",
            "  maximum_record_age_in_seconds: 3600\n",
            "  function_response_types: [] (default)",
            "  tumbling_window_in_seconds: 0 (default)",
            "  metrics_config: none (default)",
            "  pace (AWS default):",
            "simulation: seed 42, start 2026-01-01T00:00:00Z, at most 3600 s",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(!text.contains("without a mapping"), "{text}");
        assert!(!text.contains("simulation workers"), "{text}");
    }

    #[test]
    fn describes_the_workers_and_their_schedule() {
        let text = format!(
            "{}\n[coordination]\nstore = \"dynamodb\"\n\
             [[simulation.worker_events]]\nworker = 2\nat_seconds = 60\naction = \"pause\"\nfor_seconds = 30\n\
             [[simulation.worker_events]]\nworker = 3\nat_seconds = 90\naction = \"crash\"\n",
            EMBEDDED_DEFAULT.replace("[simulation]\n", "[simulation]\nworkers = 3\n")
        );
        let config = parse(&text, Path::new("")).unwrap();
        let text = describe(&config);
        for expected in [
            "simulation workers: 3 (worker-1..worker-3), sharing an in-memory lease table\n",
            "  at 60 s: worker 2 pause for 30 s (SIGSTOP, then SIGCONT)\n",
            "  at 90 s: worker 3 crash (kill -9: no hand-back, in-flight work lost)\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn describes_unused_streams_and_functions() {
        let text = format!(
            "{EMBEDDED_DEFAULT}\n[[streams]]\nname = \"users\"\nkind = \"dynamodb\"\nshards = 2\n\
             [[functions]]\nname = \"idle\"\n"
        );
        let config = parse(&text, Path::new("")).unwrap();
        let text = describe(&config);
        assert!(text.contains("streams without a mapping"), "{text}");
        assert!(
            text.contains(
                "simulated DynamoDB table \"users\", 2 shards, retention 24 h, NEW_AND_OLD_IMAGES"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "functions without a mapping:\n  \"idle\" (simulated), timeout 3 s, latency 0 ms"
            ),
            "{text}"
        );
    }

    #[test]
    fn names_the_enhanced_fan_out_consumer() {
        let text = "[[functions]]\nname = \"f\"\n\n[[mappings]]\nname = \"m\"\n\
             event_source_arn = \"arn:aws:kinesis:us-east-1:123456789012:stream/s\"\n\
             consumer_name = \"esm\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n";
        let config = parse(text, Path::new("")).unwrap();
        let text = describe(&config);
        assert!(
            text.contains(
                "  enhanced fan-out: through consumer \"esm\" (registered at start if missing)"
            ),
            "{text}"
        );
    }

    #[test]
    fn echoes_the_metrics_config() {
        let text = "[[functions]]\nname = \"f\"\n\n[[mappings]]\nname = \"m\"\n\
             event_source_arn = \"arn:aws:kinesis:us-east-1:123456789012:stream/s\"\n\
             function_name = \"f\"\nstarting_position = \"LATEST\"\n\
             metrics_config = { metrics = [\"EventCount\"] }\n";
        let config = parse(text, Path::new("")).unwrap();
        let text = describe(&config);
        assert!(
            text.contains(
                "  metrics_config: [\"EventCount\"] (AWS CloudWatch metrics: no effect locally)"
            ),
            "{text}"
        );
    }
}
