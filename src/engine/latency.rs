//! Invocation latency as a fixed-bucket histogram: cheap to record on every invoke,
//! cheap to copy into a snapshot, and exactly the shape Prometheus histograms expose
//! (cumulative counts per upper bound, a sum and a count).

use serde::Serialize;

/// Upper bounds of the buckets, in milliseconds (the last bucket, +Inf, is implicit).
pub const BOUNDS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencyHistogram {
    /// `counts[i]`: invocations that took at most `BOUNDS_MS[i]` and more than the bound
    /// before; `counts[BOUNDS_MS.len()]`: slower than the last bound.
    pub counts: [u64; BOUNDS_MS.len() + 1],
    pub sum_ms: f64,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        let bucket = BOUNDS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(BOUNDS_MS.len());
        self.counts[bucket] += 1;
        self.sum_ms += ms;
        self.count += 1;
    }

    /// Adds `other`'s invocations (a mapping's histogram is the sum of its shards').
    pub fn add(&mut self, other: &LatencyHistogram) {
        for (count, more) in self.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        self.sum_ms += other.sum_ms;
        self.count += other.count;
    }

    /// Cumulative counts per bound, as Prometheus `_bucket{le=...}` wants them; the last
    /// entry is the `+Inf` bucket and equals `count`.
    pub fn cumulative(&self) -> [u64; BOUNDS_MS.len() + 1] {
        let mut total = 0;
        let mut out = [0; BOUNDS_MS.len() + 1];
        for (slot, count) in out.iter_mut().zip(self.counts) {
            total += count;
            *slot = total;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let mut h = LatencyHistogram::default();
        h.record(1.0);
        h.record(1.5);
        h.record(100_000.0);
        h.record(f64::NAN);
        assert_eq!(h.counts[0], 2, "1.0 and NaN (as 0)");
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[BOUNDS_MS.len()], 1);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum_ms, 100_002.5);
        let cumulative = h.cumulative();
        assert_eq!(cumulative[0], 2);
        assert_eq!(cumulative[1], 3);
        assert_eq!(cumulative[BOUNDS_MS.len()], 4);
        let mut total = LatencyHistogram::default();
        total.record(2.0);
        total.add(&h);
        assert_eq!(total.counts[1], 2);
        assert_eq!(total.counts[0], 2);
        assert_eq!((total.count, total.sum_ms), (5, 100_004.5));
    }
}
