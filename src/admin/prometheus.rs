//! The Prometheus text format (0.0.4) as `/metrics` writes it: `# HELP`/`# TYPE` headers,
//! sample lines, histograms and the escaping of label values and help text.
//!
//! Apart from what the series are (`metrics`, `metrics_leases`) so both write the format
//! one way; every writer appends to one `String` so a large scrape is not a pile of small
//! allocations.

use std::fmt::Write as _;

use crate::engine::latency::{LatencyHistogram, BOUNDS_MS};

/// `# HELP` and `# TYPE` of a family.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample: `name{labels} value`; `labels` is already escaped (`labels`, `label`).
pub fn line(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

/// A histogram's `_bucket`, `_sum` and `_count` lines under `labels`.
pub fn histogram(out: &mut String, name: &str, labels: &str, h: &LatencyHistogram) {
    for (bound, count) in BOUNDS_MS.iter().zip(h.cumulative()) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_ms);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// `key="value"`, the value escaped.
pub fn label(key: &str, value: &str) -> String {
    format!("{key}=\"{}\"", escape_label(value))
}

/// Label values escape backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes backslash and line feed.
pub fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(label("shard", "a\"b\\c\nd"), "shard=\"a\\\"b\\\\c\\nd\"");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_then_sum_and_count() {
        let mut h = LatencyHistogram::default();
        h.record(3.0);
        h.record(40_000.0);
        let mut out = String::new();
        histogram(&mut out, "x", "m=\"a\"", &h);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), BOUNDS_MS.len() + 3);
        assert_eq!(lines[1], "x_bucket{m=\"a\",le=\"2.5\"} 0");
        assert_eq!(lines[2], "x_bucket{m=\"a\",le=\"5\"} 1");
        assert_eq!(lines[BOUNDS_MS.len()], "x_bucket{m=\"a\",le=\"+Inf\"} 2");
        assert_eq!(lines[BOUNDS_MS.len() + 1], "x_sum{m=\"a\"} 40003");
        assert_eq!(lines[BOUNDS_MS.len() + 2], "x_count{m=\"a\"} 2");
    }
}
