//! What `esm-sim shards` and `esm-sim shard` print: the admin API's JSON as a table (one
//! row per shard) or as one shard in full. Pure: JSON and the time in, text out, so the
//! layout is tested without a daemon or a terminal.
//!
//! With a lease table (some shard has a lease owner or counter) the table gains OWNER
//! and COUNTER columns and the full view the lease's owner and counter; without one the
//! output is what a process alone always printed.
//!
//! Rows are cut to the terminal width (the last column, the error, gives way first);
//! long sequence numbers are shortened in the table (`4959…000123`) and shown whole in
//! the full view.

use serde_json::Value;

use crate::daemon::short_sequence;
use crate::ops::show::rfc3339;

const HEADERS: [&str; 8] = [
    "MAPPING",
    "SHARD",
    "STATE",
    "ITER AGE",
    "ADVANCED",
    "ATTEMPT",
    "BLOCKING",
    "LAST ERROR",
];

/// With a lease table: who holds each shard and the lease's counter, after STATE.
const LEASE_HEADERS: [&str; 2] = ["OWNER", "COUNTER"];
const LEASE_AT: usize = 3;

/// Room the last error keeps before long mapping names give way.
const ERROR_ROOM: usize = 20;

/// The `GET /shards` answer as a table no wider than `width` characters. The lease
/// columns appear only when some shard has a lease owner or counter (a shared mapping),
/// so a process alone prints what it always printed. A page with more after it ends with
/// a line naming the cursor of the next page.
pub fn shards_table(answer: &Value, width: usize) -> String {
    let now_ms = answer["now_ms"].as_i64().unwrap_or(0);
    let shards = answer["shards"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if shards.is_empty() {
        return "no shards\n".to_string();
    }
    let leased = shards
        .iter()
        .any(|s| !s["lease_owner"].is_null() || !s["lease_counter"].is_null());
    let mut headers: Vec<String> = HEADERS.map(str::to_string).to_vec();
    let mut rows: Vec<Vec<String>> = shards.iter().map(|s| row(s, now_ms).to_vec()).collect();
    if leased {
        headers.splice(LEASE_AT..LEASE_AT, LEASE_HEADERS.map(str::to_string));
        for (row, s) in rows.iter_mut().zip(shards) {
            row.splice(
                LEASE_AT..LEASE_AT,
                [text(&s["lease_owner"]), text(&s["lease_counter"])],
            );
        }
    }
    let mut widths: Vec<usize> = headers.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Too wide: long mapping names give way first (down to the header's width) while the
    // last error has fewer than ERROR_ROOM characters, then the end of the line.
    let last = widths.len() - 1;
    let total: usize =
        widths[..last].iter().sum::<usize>() + 2 * last + widths[last].min(ERROR_ROOM);
    widths[0] = widths[0]
        .saturating_sub(total.saturating_sub(width))
        .max(HEADERS[0].len());
    let mut out = String::new();
    for cells in std::iter::once(headers).chain(rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{:<w$}", cut(cell, w)))
            .collect();
        out.push_str(&cut(line.join("  ").trim_end(), width));
        out.push('\n');
    }
    // A page of a longer list: how many there are and where the next page starts.
    if let Some(next) = answer["next"].as_str() {
        let total = answer["total"].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "{} of {total} shards; the next ones: --after {next}\n",
            shards.len()
        ));
    }
    out
}

fn row(s: &Value, now_ms: i64) -> [String; 8] {
    let mut state = text(&s["state"]);
    if s["paused"].as_bool() == Some(true) && state != "paused" {
        state.push_str(" (paused)");
    }
    if !s["stuck"].is_null() {
        state.push_str(" STUCK");
    }
    let blocking = if s["stuck"].is_null() {
        &s["in_flight"][0]
    } else {
        &s["stuck"]
    };
    let range = match (
        blocking["first_sequence_number"].as_str(),
        blocking["last_sequence_number"].as_str(),
    ) {
        (Some(first), Some(last)) if first == last => short_sequence(first),
        (Some(first), Some(last)) => format!("{}..{}", short_sequence(first), short_sequence(last)),
        _ => "-".to_string(),
    };
    let attempt = blocking["attempt"]
        .as_u64()
        .map_or("-".to_string(), |a| a.to_string());
    [
        text(&s["mapping"]),
        text(&s["shard_id"]),
        state,
        s["iterator_age_ms"].as_i64().map_or("-".into(), duration),
        ago(s["last_advance_ms"].as_i64(), now_ms, "never"),
        attempt,
        range,
        s["last_error"]["message"]
            .as_str()
            .map_or("-".to_string(), |m| m.replace(['\n', '\r'], " ")),
    ]
}

/// One shard in full, from `GET /shards/{mapping}/{shard}`.
pub fn shard_detail(s: &Value, now_ms: i64) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<34}{value}\n"));
    field("mapping", text(&s["mapping"]));
    field("shard", text(&s["shard_id"]));
    let parents: Vec<String> = s["parent_shard_ids"]
        .as_array()
        .map(|p| p.iter().map(text).collect())
        .unwrap_or_default();
    field(
        "parents",
        if parents.is_empty() {
            "-".into()
        } else {
            parents.join(", ")
        },
    );
    field("state", text(&s["state"]));
    if !s["lease_owner"].is_null() || !s["lease_counter"].is_null() {
        field("lease owner", text(&s["lease_owner"]));
        field("lease counter", text(&s["lease_counter"]));
    }
    field("paused", text(&s["paused"]));
    let stuck = &s["stuck"];
    if stuck.is_null() {
        field("stuck", "no".into());
    } else {
        field(
            "stuck",
            format!(
                "yes, for {}: {}",
                stuck["for_ms"].as_i64().map_or("?".into(), duration),
                text(&stuck["reason"])
            ),
        );
        field("  since", time(stuck["since_ms"].as_i64(), now_ms));
        field(
            "  blocking records",
            format!(
                "{}..{} ({} records, attempt {})",
                text(&stuck["first_sequence_number"]),
                text(&stuck["last_sequence_number"]),
                text(&stuck["records"]),
                text(&stuck["attempt"])
            ),
        );
    }
    field("checkpoint", text(&s["checkpoint"]));
    field("resumed from", text(&s["resumed_from"]));
    field(
        "started at time",
        time(s["started_at_time_ms"].as_i64(), now_ms),
    );
    field(
        "running since",
        time(s["running_since_ms"].as_i64(), now_ms),
    );
    field("last advance", time(s["last_advance_ms"].as_i64(), now_ms));
    field("last data", time(s["last_data_ms"].as_i64(), now_ms));
    field("caught up", text(&s["caught_up"]));
    field(
        "iterator age",
        s["iterator_age_ms"].as_i64().map_or("-".into(), duration),
    );
    field("millis behind latest", text(&s["millis_behind_latest"]));
    let in_flight = s["in_flight"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if in_flight.is_empty() {
        field("in flight", "-".into());
    }
    for batch in in_flight {
        field(
            &format!("in flight (lane {})", text(&batch["lane"])),
            format!(
                "{}..{}: {} records, {} bytes, attempt {}, bisect depth {}, since {}",
                text(&batch["first_sequence_number"]),
                text(&batch["last_sequence_number"]),
                text(&batch["records"]),
                text(&batch["payload_bytes"]),
                text(&batch["attempt"]),
                text(&batch["bisect_depth"]),
                time(batch["since_ms"].as_i64(), now_ms),
            ),
        );
    }
    let error = &s["last_error"];
    if error.is_null() {
        field("last error", "-".into());
    } else {
        field(
            "last error",
            format!("{}: {}", text(&error["kind"]), text(&error["message"])),
        );
        field("  at", time(error["at_ms"].as_i64(), now_ms));
    }
    let latency = &s["invoke_latency"];
    let count = latency["count"].as_u64().unwrap_or(0);
    let mean = latency["sum_ms"]
        .as_f64()
        .filter(|_| count > 0)
        .map(|sum| sum / count as f64);
    field(
        "invocation latency",
        mean.map_or("-".into(), |m| format!("mean {m:.1} ms over {count}")),
    );
    if let Some(fields) = s.as_object() {
        for (key, value) in fields {
            if value.is_u64() && (key.starts_with("records_") || COUNTS.contains(&key.as_str())) {
                field(&key.replace('_', " "), text(value));
            }
        }
    }
    out
}

/// Counters whose names do not start with `records_`.
const COUNTS: [&str; 7] = [
    "invocations",
    "invoke_throttles",
    "read_throttles",
    "retention_gaps",
    "destination_records",
    "dead_lettered_records",
    "destination_delivery_failures",
];

/// A JSON value as plain text: strings without quotes, null as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `850ms`, `12s`, `3m04s`, `2h05m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn ago(at_ms: Option<i64>, now_ms: i64, none: &str) -> String {
    at_ms.map_or(none.to_string(), |t| {
        format!("{} ago", duration(now_ms - t))
    })
}

fn time(at_ms: Option<i64>, now_ms: i64) -> String {
    at_ms.map_or("-".to_string(), |t| {
        format!("{} ({})", rfc3339(t), ago(Some(t), now_ms, ""))
    })
}

/// `line` cut to `width` characters, with `…` when cut.
fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut out: String = line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stuck_shard() -> Value {
        json!({
            "mapping": "orders", "shard_id": "shardId-000000000002", "state": "retrying",
            "paused": false, "iterator_age_ms": 65_000, "last_advance_ms": 40_000,
            "in_flight": [{"first_sequence_number": "49590338271490256608559692538361571095921575989136588898",
                "last_sequence_number": "49590338271490256608559692538361571095921575989136588898", "attempt": 7}],
            "last_error": {"kind": "function_error", "message": "function error Unhandled: boom\nat line 3", "at_ms": 99_000},
            "stuck": {"since_ms": 40_000, "for_ms": 60_000, "attempt": 7, "records": 1, "reason": "boom",
                "first_sequence_number": "49590338271490256608559692538361571095921575989136588898",
                "last_sequence_number": "49590338271490256608559692538361571095921575989136588898"}
        })
    }

    fn healthy_shard() -> Value {
        json!({"mapping": "orders", "shard_id": "shardId-000000000001", "state": "polling",
            "paused": true, "iterator_age_ms": 120, "last_advance_ms": 99_500, "in_flight": [],
            "last_error": null, "stuck": null})
    }

    #[test]
    fn the_table_has_one_aligned_row_per_shard() {
        let answer = json!({"now_ms": 100_000, "shards": [healthy_shard(), stuck_shard()]});
        let expected = [
            "MAPPING  SHARD                 STATE             ITER AGE  ADVANCED   ATTEMPT  BLOCKING       LAST ERROR",
            "orders   shardId-000000000001  polling (paused)  120ms     500ms ago  -        -              -",
            "orders   shardId-000000000002  retrying STUCK    1m05s     1m00s ago  7        4959…36588898  function error Unhandled: boom at line 3",
        ];
        assert_eq!(shards_table(&answer, 200), expected.join("\n") + "\n");
        // A page with more after it says how many there are and where the next page starts.
        let page = json!({"now_ms": 100_000, "shards": [healthy_shard(), stuck_shard()],
            "total": 9_000, "next": "orders/shardId-000000000002"});
        assert_eq!(
            shards_table(&page, 200),
            expected.join("\n")
                + "\n2 of 9000 shards; the next ones: --after orders/shardId-000000000002\n"
        );
    }

    #[test]
    fn a_shared_mapping_shows_each_shards_owner_and_lease_counter() {
        let mut held = healthy_shard();
        held["lease_owner"] = json!("worker-a");
        held["lease_counter"] = json!(12);
        let mut free = stuck_shard();
        free["lease_owner"] = json!(null);
        free["lease_counter"] = json!(3);
        let answer = json!({"now_ms": 100_000, "shards": [held, free]});
        let expected = [
            "MAPPING  SHARD                 STATE             OWNER     COUNTER  ITER AGE  ADVANCED   ATTEMPT  BLOCKING       LAST ERROR",
            "orders   shardId-000000000001  polling (paused)  worker-a  12       120ms     500ms ago  -        -              -",
            "orders   shardId-000000000002  retrying STUCK    -         3        1m05s     1m00s ago  7        4959…36588898  function error Unhandled: boom at line 3",
        ];
        assert_eq!(shards_table(&answer, 200), expected.join("\n") + "\n");
        let mut alone = healthy_shard();
        alone["lease_owner"] = json!(null);
        alone["lease_counter"] = json!(null);
        let table = shards_table(&json!({"now_ms": 100_000, "shards": [alone]}), 200);
        assert!(
            !table.contains("OWNER"),
            "no lease table, no lease columns:\n{table}"
        );
        let text = shard_detail(&answer["shards"][0], 100_000);
        assert!(
            text.contains("lease owner                       worker-a\n"),
            "{text}"
        );
        assert!(
            text.contains("lease counter                     12\n"),
            "{text}"
        );
        assert!(!shard_detail(&healthy_shard(), 100_000).contains("lease owner"));
    }

    #[test]
    fn rows_are_cut_to_the_width() {
        let answer = json!({"now_ms": 100_000, "shards": [stuck_shard()]});
        let table = shards_table(&answer, 80);
        for line in table.lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
        assert!(table.lines().nth(1).expect("a row").ends_with('…'));
        let mut long = stuck_shard();
        long["mapping"] = json!("a-very-long-mapping-name-indeed");
        let table = shards_table(&json!({"now_ms": 100_000, "shards": [long]}), 120);
        assert!(
            table
                .lines()
                .nth(1)
                .expect("a row")
                .starts_with("a-very-long-ma…  shardId-000000000002  retrying STUCK"),
            "the mapping name gives way first:\n{table}"
        );
        assert_eq!(shards_table(&json!({"shards": []}), 80), "no shards\n");
        assert_eq!(shards_table(&json!("garbage"), 80), "no shards\n");
    }

    #[test]
    fn the_full_view_shows_the_blocking_range_whole_and_times_as_dates_and_ages() {
        let mut shard = stuck_shard();
        shard["records_polled"] = json!(12);
        shard["invocations"] = json!(9);
        let text = shard_detail(&shard, 100_000);
        assert!(
            text.contains("state                             retrying\n"),
            "{text}"
        );
        assert!(
            text.contains("stuck                             yes, for 1m00s: boom\n"),
            "{text}"
        );
        assert!(text.contains("49590338271490256608559692538361571095921575989136588898..49590338271490256608559692538361571095921575989136588898 (1 records, attempt 7)"), "{text}");
        assert!(
            text.contains(
                "last advance                      1970-01-01T00:00:40.000Z (1m00s ago)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("records polled                    12\n"),
            "{text}"
        );
        assert!(
            text.contains("invocations                       9\n"),
            "{text}"
        );
        let _ = shard_detail(&json!(null), 0);
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(-5), "0ms");
        assert_eq!(duration(999), "999ms");
        assert_eq!(duration(12_345), "12s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
    }
}
