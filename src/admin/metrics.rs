//! `GET /metrics`: the shards' status in the Prometheus text format (0.0.4).
//!
//! Pure rendering from snapshots, so the exact text is tested without a server. The AWS
//! metric names of the spec's section 5 become snake_case with an `esm_` prefix, labelled
//! by `mapping` and `shard`; counters end in `_total`. A disabled mapping emits nothing
//! (spec: nothing is emitted while the mapping is disabled). A worker sharing mappings
//! through a lease table adds its lease series (`render_leases`, labelled `worker`);
//! a process alone adds nothing.

use std::fmt::Write as _;

use crate::coordination::metrics::LeaseCounts;
use crate::engine::latency::{LatencyHistogram, BOUNDS_MS};
use crate::engine::status::{ShardSnapshot, ShardState};

/// One mapping's shards, as the renderer needs them.
pub struct MappingShards<'a> {
    pub name: &'a str,
    pub enabled: bool,
    pub shards: &'a [ShardSnapshot],
}

/// A per-shard counter: name, help, and the snapshot field it exposes.
type Counter = (&'static str, &'static str, fn(&ShardSnapshot) -> u64);

const COUNTERS: [Counter; 10] = [
    (
        "esm_polled_event_count_total",
        "PolledEventCount: records read from the stream.",
        |s| s.records_polled,
    ),
    (
        "esm_filtered_out_event_count_total",
        "FilteredOutEventCount: records dropped by the filter criteria.",
        |s| s.records_filtered,
    ),
    (
        "esm_invoked_event_count_total",
        "InvokedEventCount: records in invocations that reached the function, retries included.",
        |s| s.records_invoked,
    ),
    (
        "esm_failed_invoke_event_count_total",
        "FailedInvokeEventCount: records of failed invocations, partial failures included.",
        |s| s.records_failed_invoke,
    ),
    (
        "esm_dropped_event_count_total",
        "DroppedEventCount: discarded records whose failure record did not reach the destination.",
        |s| s.records_dropped,
    ),
    (
        "esm_on_failure_destination_delivered_event_count_total",
        "OnFailureDestinationDeliveredEventCount: discarded records whose failure record reached the destination.",
        |s| s.records_delivered_to_destination,
    ),
    (
        "esm_destination_delivery_failures_total",
        "DestinationDeliveryFailures: failure records the destination did not take.",
        |s| s.destination_delivery_failures,
    ),
    (
        "esm_invocations_total",
        "Invocations that reached the function (retries + 1 per batch).",
        |s| s.invocations,
    ),
    (
        "esm_invoke_throttles_total",
        "Invocations that never reached the function (throttled, service error).",
        |s| s.invoke_throttles,
    ),
    (
        "esm_read_throttles_total",
        "GetRecords calls throttled or failed by the stream.",
        |s| s.read_throttles,
    ),
];

const STATES: [ShardState; 10] = [
    ShardState::WaitingOnParents,
    ShardState::Polling,
    ShardState::Invoking,
    ShardState::Retrying,
    ShardState::BackingOff,
    ShardState::Paused,
    ShardState::Ended,
    ShardState::Disabled,
    ShardState::Stopped,
    ShardState::NotHeld,
];

/// The exposition of every enabled mapping's shards at `now_ms`.
pub fn render(mappings: &[MappingShards<'_>], now_ms: i64, stuck_after_ms: i64) -> String {
    let shards: Vec<(&str, &ShardSnapshot)> = mappings
        .iter()
        .filter(|m| m.enabled)
        .flat_map(|m| m.shards.iter().map(move |s| (m.name, s)))
        .collect();
    let mut out = String::new();

    header(
        &mut out,
        "esm_iterator_age_milliseconds",
        "gauge",
        "IteratorAge: from the stream receiving the last record of the batch to its last invoke.",
    );
    for (mapping, s) in &shards {
        if let Some(age) = s.iterator_age_ms {
            line(
                &mut out,
                "esm_iterator_age_milliseconds",
                &labels(mapping, s, &[]),
                age,
            );
        }
    }
    for (name, help, value) in COUNTERS {
        header(&mut out, name, "counter", help);
        for (mapping, s) in &shards {
            line(&mut out, name, &labels(mapping, s, &[]), value(s));
        }
    }

    let name = "esm_invocation_duration_milliseconds";
    header(
        &mut out,
        name,
        "histogram",
        "Invocation latency of invocations that reached the function.",
    );
    for (mapping, s) in &shards {
        histogram(&mut out, name, &labels(mapping, s, &[]), &s.invoke_latency);
    }

    header(
        &mut out,
        "esm_shard_records_waiting",
        "gauge",
        "Records read and not yet done (waiting for a lane, or in flight).",
    );
    for (mapping, s) in &shards {
        line(
            &mut out,
            "esm_shard_records_waiting",
            &labels(mapping, s, &[]),
            s.records_waiting,
        );
    }
    header(
        &mut out,
        "esm_shard_stuck",
        "gauge",
        "1 when the shard has not advanced for longer than stuck_after_seconds while records wait.",
    );
    for (mapping, s) in &shards {
        let stuck = u8::from(s.stuck(now_ms, stuck_after_ms).is_some());
        line(&mut out, "esm_shard_stuck", &labels(mapping, s, &[]), stuck);
    }
    header(
        &mut out,
        "esm_shard_state",
        "gauge",
        "1 for the state the shard is in, 0 for the others.",
    );
    for (mapping, s) in &shards {
        for state in STATES {
            let label = state_name(state);
            let value = u8::from(s.state == state);
            line(
                &mut out,
                "esm_shard_state",
                &labels(mapping, s, &[("state", &label)]),
                value,
            );
        }
    }
    out
}

/// A worker's lease counter: name, help, and the field it exposes.
type LeaseCounter = (&'static str, &'static str, fn(&LeaseCounts) -> u64);

const LEASE_COUNTERS: [LeaseCounter; 7] = [
    (
        "esm_leases_taken_total",
        "Free or expired leases this worker took.",
        |c| c.taken,
    ),
    (
        "esm_leases_stolen_total",
        "Leases this worker took from a live worker holding more than its share.",
        |c| c.stolen,
    ),
    (
        "esm_leases_lost_total",
        "Leases this worker held and lost (stolen, expired before a renew, refused by the table).",
        |c| c.lost,
    ),
    (
        "esm_lease_checkpoints_fenced_total",
        "Checkpoints refused because this worker no longer held the lease.",
        |c| c.checkpoints_fenced,
    ),
    (
        "esm_lease_conditional_check_failures_total",
        "Conditional writes the lease table refused.",
        |c| c.conditional_check_failures,
    ),
    (
        "esm_lease_table_throttles_total",
        "Lease table calls throttled.",
        |c| c.throttles,
    ),
    (
        "esm_lease_table_calls_total",
        "Calls made to the lease table.",
        |c| c.calls,
    ),
];

/// The lease series of the workers sharing mappings through a lease table (labelled
/// `worker`); empty when there are none, so a single process's text is unchanged.
pub fn render_leases(workers: &[(&str, LeaseCounts)]) -> String {
    let mut out = String::new();
    if workers.is_empty() {
        return out;
    }
    let label = |worker: &str| format!("worker=\"{}\"", escape_label(worker));
    header(
        &mut out,
        "esm_leases_held",
        "gauge",
        "Leases this worker holds now.",
    );
    for (worker, counts) in workers {
        line(&mut out, "esm_leases_held", &label(worker), counts.held);
    }
    for (name, help, value) in LEASE_COUNTERS {
        header(&mut out, name, "counter", help);
        for (worker, counts) in workers {
            line(&mut out, name, &label(worker), value(counts));
        }
    }
    let name = "esm_lease_renew_duration_milliseconds";
    header(
        &mut out,
        name,
        "histogram",
        "Latency of lease renewals (the table's conditional update).",
    );
    for (worker, counts) in workers {
        histogram(&mut out, name, &label(worker), &counts.renew_latency);
    }
    out
}

/// A histogram's `_bucket`, `_sum` and `_count` lines under `labels`.
fn histogram(out: &mut String, name: &str, labels: &str, h: &LatencyHistogram) {
    let bucket = format!("{name}_bucket");
    for (bound, count) in BOUNDS_MS.iter().zip(h.cumulative()) {
        line(out, &bucket, &format!("{labels},le=\"{bound}\""), count);
    }
    line(out, &bucket, &format!("{labels},le=\"+Inf\""), h.count);
    line(out, &format!("{name}_sum"), labels, h.sum_ms);
    line(out, &format!("{name}_count"), labels, h.count);
}

/// The snake_case name the JSON uses for a state.
fn state_name(state: ShardState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

fn labels(mapping: &str, s: &ShardSnapshot, extra: &[(&str, &str)]) -> String {
    let mut text = format!(
        "mapping=\"{}\",shard=\"{}\"",
        escape_label(mapping),
        escape_label(&s.shard_id)
    );
    for (key, value) in extra {
        let _ = write!(text, ",{key}=\"{}\"", escape_label(value));
    }
    text
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes backslash and line feed.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::MappingStatus;
    use crate::model::{ShardId, ShardInfo};

    fn snapshot(id: &str) -> ShardSnapshot {
        let status = MappingStatus::default();
        let info = ShardInfo {
            shard_id: ShardId(id.into()),
            parent_shard_ids: Vec::new(),
        };
        status.shard(&info).snapshot()
    }

    fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect()
    }

    #[test]
    fn one_shard_renders_to_the_golden_text() {
        let mut s = snapshot("shardId-000000000001");
        s.state = ShardState::Retrying;
        s.running_since_ms = Some(0);
        s.last_advance_ms = Some(1_000);
        s.records_waiting = 1;
        s.iterator_age_ms = Some(4_200);
        s.records_polled = 10;
        s.records_filtered = 1;
        s.records_invoked = 12;
        s.records_failed_invoke = 3;
        s.records_dropped = 1;
        s.records_delivered_to_destination = 2;
        s.destination_delivery_failures = 1;
        s.invocations = 4;
        s.invoke_throttles = 5;
        s.read_throttles = 6;
        s.invoke_latency.record(3.0);
        s.invoke_latency.record(40_000.0);
        let shards = [s];
        let text = render(
            &[MappingShards {
                name: "orders",
                enabled: true,
                shards: &shards,
            }],
            10_000,
            5_000,
        );
        let l = "mapping=\"orders\",shard=\"shardId-000000000001\"";
        let mut expected = format!(
            "# HELP esm_iterator_age_milliseconds IteratorAge: from the stream receiving the last record of the batch to its last invoke.\n\
             # TYPE esm_iterator_age_milliseconds gauge\n\
             esm_iterator_age_milliseconds{{{l}}} 4200\n"
        );
        for (name, value) in [
            ("esm_polled_event_count_total", 10),
            ("esm_filtered_out_event_count_total", 1),
            ("esm_invoked_event_count_total", 12),
            ("esm_failed_invoke_event_count_total", 3),
            ("esm_dropped_event_count_total", 1),
            ("esm_on_failure_destination_delivered_event_count_total", 2),
            ("esm_destination_delivery_failures_total", 1),
            ("esm_invocations_total", 4),
            ("esm_invoke_throttles_total", 5),
            ("esm_read_throttles_total", 6),
        ] {
            let help = COUNTERS.iter().find(|c| c.0 == name).expect("a counter").1;
            expected +=
                &format!("# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{l}}} {value}\n");
        }
        expected += "# HELP esm_invocation_duration_milliseconds Invocation latency of invocations that reached the function.\n\
                     # TYPE esm_invocation_duration_milliseconds histogram\n";
        for (le, count) in [
            ("1", 0),
            ("2.5", 0),
            ("5", 1),
            ("10", 1),
            ("25", 1),
            ("50", 1),
            ("100", 1),
            ("250", 1),
            ("500", 1),
            ("1000", 1),
            ("2500", 1),
            ("5000", 1),
            ("10000", 1),
            ("30000", 1),
            ("+Inf", 2),
        ] {
            expected += &format!(
                "esm_invocation_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {count}\n"
            );
        }
        expected += &format!(
            "esm_invocation_duration_milliseconds_sum{{{l}}} 40003\n\
             esm_invocation_duration_milliseconds_count{{{l}}} 2\n\
             # HELP esm_shard_records_waiting Records read and not yet done (waiting for a lane, or in flight).\n\
             # TYPE esm_shard_records_waiting gauge\n\
             esm_shard_records_waiting{{{l}}} 1\n\
             # HELP esm_shard_stuck 1 when the shard has not advanced for longer than stuck_after_seconds while records wait.\n\
             # TYPE esm_shard_stuck gauge\n\
             esm_shard_stuck{{{l}}} 1\n\
             # HELP esm_shard_state 1 for the state the shard is in, 0 for the others.\n\
             # TYPE esm_shard_state gauge\n"
        );
        for state in [
            "waiting_on_parents",
            "polling",
            "invoking",
            "retrying",
            "backing_off",
            "paused",
            "ended",
            "disabled",
            "stopped",
            "not_held",
        ] {
            let value = u8::from(state == "retrying");
            expected += &format!("esm_shard_state{{{l},state=\"{state}\"}} {value}\n");
        }
        assert_eq!(text, expected);
    }

    #[test]
    fn a_disabled_mapping_emits_no_series_and_a_shard_without_an_invoke_no_iterator_age() {
        let disabled = [snapshot("shardId-000000000001")];
        let enabled = [snapshot("shardId-000000000002")];
        let text = render(
            &[
                MappingShards {
                    name: "off",
                    enabled: false,
                    shards: &disabled,
                },
                MappingShards {
                    name: "on",
                    enabled: true,
                    shards: &enabled,
                },
            ],
            0,
            1_000,
        );
        assert!(!text.contains("mapping=\"off\""), "{text}");
        assert_eq!(series(&text, "esm_polled_event_count_total").len(), 1);
        assert!(series(&text, "esm_iterator_age_milliseconds").is_empty());
        assert_eq!(
            series(&text, "esm_shard_stuck"),
            vec!["esm_shard_stuck{mapping=\"on\",shard=\"shardId-000000000002\"} 0"]
        );
    }

    #[test]
    fn a_leased_worker_renders_its_lease_series_and_a_lone_process_none() {
        assert_eq!(render_leases(&[]), "");
        let mut counts = LeaseCounts {
            held: 3,
            taken: 4,
            stolen: 1,
            lost: 2,
            checkpoints_fenced: 5,
            conditional_check_failures: 6,
            throttles: 7,
            calls: 80,
            ..LeaseCounts::default()
        };
        counts.renew_latency.record(3.0);
        counts.renew_latency.record(12.0);
        let text = render_leases(&[("w-\"1", counts)]);
        let l = "worker=\"w-\\\"1\"";
        let mut expected = format!(
            "# HELP esm_leases_held Leases this worker holds now.\n\
             # TYPE esm_leases_held gauge\n\
             esm_leases_held{{{l}}} 3\n"
        );
        for (name, value) in [
            ("esm_leases_taken_total", 4),
            ("esm_leases_stolen_total", 1),
            ("esm_leases_lost_total", 2),
            ("esm_lease_checkpoints_fenced_total", 5),
            ("esm_lease_conditional_check_failures_total", 6),
            ("esm_lease_table_throttles_total", 7),
            ("esm_lease_table_calls_total", 80),
        ] {
            let help = LEASE_COUNTERS
                .iter()
                .find(|c| c.0 == name)
                .expect("a counter")
                .1;
            expected +=
                &format!("# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{l}}} {value}\n");
        }
        let name = "esm_lease_renew_duration_milliseconds";
        expected += &format!(
            "# HELP {name} Latency of lease renewals (the table's conditional update).\n\
             # TYPE {name} histogram\n"
        );
        for (le, count) in [
            ("1", 0),
            ("2.5", 0),
            ("5", 1),
            ("10", 1),
            ("25", 2),
            ("50", 2),
            ("100", 2),
            ("250", 2),
            ("500", 2),
            ("1000", 2),
            ("2500", 2),
            ("5000", 2),
            ("10000", 2),
            ("30000", 2),
            ("+Inf", 2),
        ] {
            expected += &format!("{name}_bucket{{{l},le=\"{le}\"}} {count}\n");
        }
        expected += &format!("{name}_sum{{{l}}} 15\n{name}_count{{{l}}} 2\n");
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_are_escaped() {
        let shards = [snapshot("a\"b\\c\nd")];
        let text = render(
            &[MappingShards {
                name: "m",
                enabled: true,
                shards: &shards,
            }],
            0,
            1_000,
        );
        assert!(
            text.contains(
                "esm_polled_event_count_total{mapping=\"m\",shard=\"a\\\"b\\\\c\\nd\"} 0\n"
            ),
            "{text}"
        );
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }
}
