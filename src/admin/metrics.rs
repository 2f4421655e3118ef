//! `GET /metrics`: the shards' status in the Prometheus text format (0.0.4).
//!
//! Pure rendering from snapshots, so the exact text is tested without a server. The AWS
//! metric names of the spec's section 5 become snake_case with an `esm_` prefix; counters
//! end in `_total`. A disabled mapping emits nothing (spec: nothing is emitted while the
//! mapping is disabled). The lease series are `metrics_leases`'.
//!
//! Two kinds of series, so a scrape stays small at 10,000 shards:
//! - per mapping, always: `esm_mapping_*{mapping}`, each the sum over the mapping's shards
//!   (the iterator age: the highest), plus shards per state and stuck;
//! - per shard, under the historical names `esm_*{mapping,shard}`, only for the shards
//!   `[admin] metrics_shard_series` chooses (`shard_choice`; by default the 20 that matter
//!   most). A `#` comment line and `esm_mapping_shards_left_out` say how many were left out.
//!
//! The two never share a name, so `sum()` over any one family counts each shard once.

use std::fmt::Write as _;

use super::prometheus::{header, histogram, label, line};
use super::shard_choice::chosen;
use crate::config::mapping::ShardSeries;
use crate::engine::latency::LatencyHistogram;
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

/// What the renderer knows of one enabled mapping: its totals and its chosen shards.
struct View<'a> {
    name: &'a str,
    /// `mapping="..."`.
    label: String,
    total: Totals,
    chosen: Vec<Chosen<'a>>,
    shards: usize,
}

/// A shard with series of its own.
struct Chosen<'a> {
    shard: &'a ShardSnapshot,
    /// `mapping="...",shard="..."`.
    labels: String,
    stuck: bool,
}

/// A mapping's sums (iterator age: the highest) over its shards.
#[derive(Default)]
struct Totals {
    counters: [u64; COUNTERS.len()],
    iterator_age_ms: Option<i64>,
    latency: LatencyHistogram,
    records_waiting: u64,
    stuck: u64,
    states: [u64; STATES.len()],
}

impl<'a> View<'a> {
    fn new(m: &MappingShards<'a>, now_ms: i64, stuck_after_ms: i64, series: ShardSeries) -> Self {
        let stuck: Vec<bool> = m
            .shards
            .iter()
            .map(|s| s.stuck(now_ms, stuck_after_ms).is_some())
            .collect();
        let mut total = Totals::default();
        for (s, &is_stuck) in m.shards.iter().zip(&stuck) {
            for (sum, (_, _, value)) in total.counters.iter_mut().zip(COUNTERS) {
                *sum = sum.saturating_add(value(s));
            }
            total.iterator_age_ms = total.iterator_age_ms.max(s.iterator_age_ms);
            total.latency.add(&s.invoke_latency);
            total.records_waiting = total.records_waiting.saturating_add(s.records_waiting);
            total.stuck += u64::from(is_stuck);
            if let Some(i) = STATES.iter().position(|&state| state == s.state) {
                total.states[i] += 1;
            }
        }
        let mapping = label("mapping", m.name);
        let chosen = chosen(m.shards, &stuck, series)
            .into_iter()
            .map(|i| Chosen {
                shard: &m.shards[i],
                labels: format!("{mapping},{}", label("shard", &m.shards[i].shard_id)),
                stuck: stuck[i],
            })
            .collect();
        View {
            name: m.name,
            label: mapping,
            total,
            chosen,
            shards: m.shards.len(),
        }
    }

    fn left_out(&self) -> usize {
        self.shards - self.chosen.len()
    }
}

/// The exposition of every enabled mapping's shards at `now_ms`: the per-mapping series,
/// then the per-shard series of the shards `series` chooses.
pub fn render(
    mappings: &[MappingShards<'_>],
    now_ms: i64,
    stuck_after_ms: i64,
    series: ShardSeries,
) -> String {
    let views: Vec<View<'_>> = mappings
        .iter()
        .filter(|m| m.enabled)
        .map(|m| View::new(m, now_ms, stuck_after_ms, series))
        .collect();
    let mut out =
        String::with_capacity(4_096 + views.iter().map(|v| v.chosen.len() * 3_600).sum::<usize>());
    for v in views.iter().filter(|v| v.left_out() > 0) {
        let _ = writeln!(
            out,
            "# esm-sim: mapping {:?}: per-shard series for {} of {} shards, {} left out ([admin] metrics_shard_series = {}); the esm_mapping_* series count every shard.",
            v.name,
            v.chosen.len(),
            v.shards,
            v.left_out(),
            series_setting(series),
        );
    }
    render_mappings(&mut out, &views);
    if series != ShardSeries::None {
        render_shards(&mut out, &views);
    }
    out
}

/// How the comment line names the setting.
fn series_setting(series: ShardSeries) -> String {
    match series {
        ShardSeries::None => "\"none\"".into(),
        ShardSeries::All => "\"all\"".into(),
        ShardSeries::Top(n) => format!("\"top\", metrics_top_shards = {n}"),
    }
}

/// A per-mapping gauge: name, help, and its value.
type MappingGauge = (&'static str, &'static str, fn(&Totals) -> u64);

/// `esm_mapping_*`: one series per mapping (per state for the shard counts).
fn render_mappings(out: &mut String, views: &[View<'_>]) {
    let name = "esm_mapping_iterator_age_milliseconds";
    header(
        out,
        name,
        "gauge",
        "IteratorAge of the mapping: the highest of its shards' (none before the first invoke).",
    );
    for v in views {
        if let Some(age) = v.total.iterator_age_ms {
            line(out, name, &v.label, age);
        }
    }
    let gauges: [MappingGauge; 2] = [
        (
            "esm_mapping_records_waiting",
            "Records read and not yet done, summed over the mapping's shards.",
            |t| t.records_waiting,
        ),
        (
            "esm_mapping_shards_stuck",
            "Shards of the mapping that have not advanced for longer than stuck_after_seconds while records wait.",
            |t| t.stuck,
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        for v in views {
            line(out, name, &v.label, value(&v.total));
        }
    }
    for (i, (name, help, _)) in COUNTERS.iter().enumerate() {
        let name = format!("esm_mapping_{}", &name["esm_".len()..]);
        header(
            out,
            &name,
            "counter",
            &format!("{help} Summed over the mapping's shards."),
        );
        for v in views {
            line(out, &name, &v.label, v.total.counters[i]);
        }
    }
    let name = "esm_mapping_invocation_duration_milliseconds";
    header(
        out,
        name,
        "histogram",
        "Invocation latency of invocations that reached the function, over the mapping's shards.",
    );
    for v in views {
        histogram(out, name, &v.label, &v.total.latency);
    }
    header(
        out,
        "esm_mapping_shards",
        "gauge",
        "Shards of the mapping in each state.",
    );
    let names = state_names();
    for v in views {
        for (state, count) in names.iter().zip(v.total.states) {
            let labels = format!("{},{}", v.label, label("state", state));
            line(out, "esm_mapping_shards", &labels, count);
        }
    }
    header(
        out,
        "esm_mapping_shards_left_out",
        "gauge",
        "Shards of the mapping without per-shard series in this scrape ([admin] metrics_shard_series, metrics_top_shards).",
    );
    for v in views {
        line(out, "esm_mapping_shards_left_out", &v.label, v.left_out());
    }
}

/// The historical per-shard families, for the chosen shards only.
fn render_shards(out: &mut String, views: &[View<'_>]) {
    let shards = || views.iter().flat_map(|v| &v.chosen);
    header(
        out,
        "esm_iterator_age_milliseconds",
        "gauge",
        "IteratorAge: from the stream receiving the last record of the batch to its last invoke.",
    );
    for c in shards() {
        if let Some(age) = c.shard.iterator_age_ms {
            line(out, "esm_iterator_age_milliseconds", &c.labels, age);
        }
    }
    for (name, help, value) in COUNTERS {
        header(out, name, "counter", help);
        for c in shards() {
            line(out, name, &c.labels, value(c.shard));
        }
    }
    let name = "esm_invocation_duration_milliseconds";
    header(
        out,
        name,
        "histogram",
        "Invocation latency of invocations that reached the function.",
    );
    for c in shards() {
        histogram(out, name, &c.labels, &c.shard.invoke_latency);
    }
    header(
        out,
        "esm_shard_records_waiting",
        "gauge",
        "Records read and not yet done (waiting for a lane, or in flight).",
    );
    for c in shards() {
        line(
            out,
            "esm_shard_records_waiting",
            &c.labels,
            c.shard.records_waiting,
        );
    }
    header(
        out,
        "esm_shard_stuck",
        "gauge",
        "1 when the shard has not advanced for longer than stuck_after_seconds while records wait.",
    );
    for c in shards() {
        line(out, "esm_shard_stuck", &c.labels, u8::from(c.stuck));
    }
    header(
        out,
        "esm_shard_state",
        "gauge",
        "1 for the state the shard is in, 0 for the others.",
    );
    let names = state_names();
    for c in shards() {
        let labels = &c.labels;
        for (state, name) in STATES.iter().zip(&names) {
            let value = u8::from(c.shard.state == *state);
            let _ = writeln!(out, "esm_shard_state{{{labels},state=\"{name}\"}} {value}");
        }
    }
}

/// The snake_case names the JSON uses for the states, in `STATES`' order.
fn state_names() -> [String; STATES.len()] {
    STATES.map(|state| {
        serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    })
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
            ShardSeries::Top(20),
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
        // The per-shard families are the historical text, after the per-mapping ones,
        // which carry no shard label; no shard is left out, so no comment line.
        let (mapping_part, shard_part) = text.split_at(text.len() - expected.len());
        assert_eq!(shard_part, expected);
        assert!(
            mapping_part.starts_with("# HELP esm_mapping_"),
            "{mapping_part}"
        );
        assert!(!mapping_part.contains("shard=\""), "{mapping_part}");
        assert!(mapping_part.contains("esm_mapping_shards_left_out{mapping=\"orders\"} 0\n"));
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
            ShardSeries::Top(20),
        );
        assert!(!text.contains("mapping=\"off\""), "{text}");
        assert_eq!(series(&text, "esm_polled_event_count_total").len(), 1);
        assert!(series(&text, "esm_iterator_age_milliseconds").is_empty());
        assert!(series(&text, "esm_mapping_iterator_age_milliseconds").is_empty());
        assert_eq!(
            series(&text, "esm_shard_stuck"),
            vec!["esm_shard_stuck{mapping=\"on\",shard=\"shardId-000000000002\"} 0"]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let shards = [snapshot("a\"b\\c\nd")];
        let text = render(
            &[MappingShards {
                name: "m\"",
                enabled: true,
                shards: &shards,
            }],
            0,
            1_000,
            ShardSeries::All,
        );
        assert!(
            text.contains(
                "esm_polled_event_count_total{mapping=\"m\\\"\",shard=\"a\\\"b\\\\c\\nd\"} 0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn mapping_series_sum_the_shards_and_take_the_highest_iterator_age() {
        let mut shards: Vec<ShardSnapshot> = (1..=3)
            .map(|i| {
                let mut s = snapshot(&format!("shardId-{i}"));
                s.state = ShardState::Polling;
                s.records_polled = 10 * i;
                s.invocations = i;
                s.records_waiting = i;
                s.iterator_age_ms = Some(100 * i as i64);
                s.invoke_latency.record(i as f64);
                s
            })
            .collect();
        shards[0].state = ShardState::Ended;
        shards[2].iterator_age_ms = None;
        shards[1].running_since_ms = Some(0);
        let text = render(
            &[MappingShards {
                name: "m",
                enabled: true,
                shards: &shards,
            }],
            100_000,
            1_000,
            ShardSeries::None,
        );
        for wanted in [
            "esm_mapping_polled_event_count_total{mapping=\"m\"} 60",
            "esm_mapping_invocations_total{mapping=\"m\"} 6",
            "esm_mapping_records_waiting{mapping=\"m\"} 6",
            "esm_mapping_iterator_age_milliseconds{mapping=\"m\"} 200",
            "esm_mapping_shards_stuck{mapping=\"m\"} 1",
            "esm_mapping_shards{mapping=\"m\",state=\"polling\"} 2",
            "esm_mapping_shards{mapping=\"m\",state=\"ended\"} 1",
            "esm_mapping_shards{mapping=\"m\",state=\"paused\"} 0",
            "esm_mapping_invocation_duration_milliseconds_bucket{mapping=\"m\",le=\"1\"} 1",
            "esm_mapping_invocation_duration_milliseconds_bucket{mapping=\"m\",le=\"2.5\"} 2",
            "esm_mapping_invocation_duration_milliseconds_count{mapping=\"m\"} 3",
            "esm_mapping_invocation_duration_milliseconds_sum{mapping=\"m\"} 6",
            "esm_mapping_shards_left_out{mapping=\"m\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == wanted),
                "no {wanted:?} in\n{text}"
            );
        }
        // Every per-shard counter has its per-mapping sum.
        for (name, _, _) in COUNTERS {
            let total = format!("esm_mapping_{}{{mapping=\"m\"}} ", &name[4..]);
            assert!(text.contains(&total), "{total}");
        }
        // "none": no per-shard family at all, and the comment says all 3 are left out.
        assert!(!text.contains("shard=\""), "{text}");
        assert!(
            !text.contains("# TYPE esm_polled_event_count_total"),
            "{text}"
        );
        assert!(
            text.starts_with(
                "# esm-sim: mapping \"m\": per-shard series for 0 of 3 shards, 3 left out"
            ),
            "{text}"
        );
    }
}
