//! The lease series of `/metrics`: what each worker sharing mappings through a lease
//! table did with its leases (labelled `worker`). A process alone has no lease table and
//! adds nothing, so its scrape is what it always was.

use super::prometheus::{header, histogram, label, line};
use crate::coordination::metrics::LeaseCounts;

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
    let worker_label = |worker: &str| label("worker", worker);
    header(
        &mut out,
        "esm_leases_held",
        "gauge",
        "Leases this worker holds now.",
    );
    for (worker, counts) in workers {
        line(
            &mut out,
            "esm_leases_held",
            &worker_label(worker),
            counts.held,
        );
    }
    for (name, help, value) in LEASE_COUNTERS {
        header(&mut out, name, "counter", help);
        for (worker, counts) in workers {
            line(&mut out, name, &worker_label(worker), value(counts));
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
        histogram(&mut out, name, &worker_label(worker), &counts.renew_latency);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
