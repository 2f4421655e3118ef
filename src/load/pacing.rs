//! When each record is due: the pure schedule behind `load` (a steady rate) and `replay`
//! (recorded offsets times a speed), and the delay before a retry.
//!
//! The schedule answers one question, "how many records are due `t` after the start?",
//! so the sender can be a plain ticker: every tick it sends whatever is due and not yet
//! sent. Due times are absolute (record `i` of a rate is due at `i / rate`, never "one
//! interval after the previous send"), so a slow call delays the records behind it but the
//! sender catches up with bigger batches and the rate holds over the run instead of
//! drifting. Nothing here reads a clock: elapsed time is passed in, which is what the unit
//! tests rely on.

use std::time::Duration;

/// How often the sender wakes to send what is due: fine enough that a replay at speed 1
/// keeps its offsets to a few tens of milliseconds, coarse enough that a rate of a few
/// hundred records per second goes out in batches rather than one call per record.
pub const TICK: Duration = Duration::from_millis(25);

/// The first retry waits this long; each further one twice as long, up to `MAX_BACKOFF`.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The delay before retry number `attempt` (1 for the first retry).
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

/// A schedule of `total()` records.
#[derive(Clone, Debug, PartialEq)]
pub enum Pacing {
    /// Record `i` is due `i / per_second` seconds after the start.
    Rate { per_second: f64, total: u64 },
    /// Record `i` is due at `due[i]` after the start (non-decreasing).
    At(Vec<Duration>),
}

impl Pacing {
    /// `per_second` records a second for `seconds`: `floor(per_second * seconds)` records
    /// (a tiny tolerance keeps 0.1 × 30 at 3 records, not 2).
    pub fn rate(per_second: f64, seconds: f64) -> Pacing {
        let product = per_second * seconds;
        let total = if product.is_finite() && product > 0.0 {
            (product + 1e-9).floor() as u64
        } else {
            0
        };
        Pacing::Rate { per_second, total }
    }

    /// Recorded offsets (ms after the start) replayed at `speed` times their pace; speed 0
    /// makes every record due at once. A record never goes before the one above it: an
    /// offset smaller than an earlier one is due together with that earlier one.
    pub fn offsets(offsets_ms: impl IntoIterator<Item = u64>, speed: f64) -> Pacing {
        let mut latest = Duration::ZERO;
        let due = offsets_ms
            .into_iter()
            .map(|ms| {
                let at = if speed > 0.0 && speed.is_finite() {
                    Duration::from_secs_f64(ms as f64 / 1000.0 / speed)
                } else {
                    Duration::ZERO
                };
                latest = latest.max(at);
                latest
            })
            .collect();
        Pacing::At(due)
    }

    pub fn total(&self) -> u64 {
        match self {
            Pacing::Rate { total, .. } => *total,
            Pacing::At(due) => due.len() as u64,
        }
    }

    /// When record `i` is due (None past the end).
    pub fn due_at(&self, i: u64) -> Option<Duration> {
        match self {
            Pacing::Rate { per_second, total } => {
                (i < *total).then(|| Duration::from_secs_f64(i as f64 / per_second))
            }
            Pacing::At(due) => due.get(usize::try_from(i).ok()?).copied(),
        }
    }

    /// How many records are due `elapsed` after the start: those due at or before it.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        match self {
            Pacing::Rate { per_second, total } => {
                let passed = (elapsed.as_secs_f64() * per_second + 1e-9).floor();
                if passed >= *total as f64 {
                    *total
                } else {
                    passed as u64 + 1
                }
            }
            Pacing::At(due) => due.partition_point(|&at| at <= elapsed) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_rate_makes_one_record_due_every_period_from_the_start() {
        let p = Pacing::rate(100.0, 2.0);
        assert_eq!(p.total(), 200);
        assert_eq!(p.due_by(ms(0)), 1);
        assert_eq!(p.due_by(ms(9)), 1);
        assert_eq!(p.due_by(ms(10)), 2);
        assert_eq!(p.due_by(ms(1000)), 101);
        assert_eq!(p.due_by(ms(1990)), 200);
        assert_eq!(p.due_by(ms(60_000)), 200);
        assert_eq!(p.due_at(199), Some(ms(1990)));
        assert_eq!(p.due_at(200), None);
    }

    #[test]
    fn a_rate_counts_whole_records_and_no_more() {
        assert_eq!(Pacing::rate(0.1, 30.0).total(), 3);
        assert_eq!(Pacing::rate(0.5, 3.0).total(), 1);
        assert_eq!(Pacing::rate(3.0, 0.2).total(), 0);
        assert_eq!(Pacing::rate(f64::NAN, 1.0).total(), 0);
        assert_eq!(Pacing::rate(3.0, 0.2).due_by(ms(10_000)), 0);
    }

    #[test]
    fn sending_what_is_due_at_every_tick_keeps_the_rate_whatever_the_tick() {
        // A sender that wakes every `tick` and sends what is due sends `rate` records per
        // second of schedule: due times are absolute, so late ticks do not accumulate.
        for tick_ms in [1u64, 7, 25, 100, 333] {
            let p = Pacing::rate(250.0, 4.0);
            let mut sent = 0;
            let mut t = 0;
            while sent < p.total() {
                sent = sent.max(p.due_by(ms(t)));
                t += tick_ms;
            }
            let last_tick = t - tick_ms;
            assert!(
                last_tick >= 3996 && last_tick < 3996 + tick_ms,
                "{tick_ms}: {last_tick}"
            );
        }
    }

    #[test]
    fn offsets_are_scaled_by_the_speed_and_never_go_back() {
        let p = Pacing::offsets([0, 500, 1000], 1.0);
        assert_eq!(p.due_by(ms(0)), 1);
        assert_eq!(p.due_by(ms(499)), 1);
        assert_eq!(p.due_by(ms(500)), 2);
        assert_eq!(p.due_by(ms(1000)), 3);
        let fast = Pacing::offsets([0, 500, 1000], 2.0);
        assert_eq!(fast.due_at(2), Some(ms(500)));
        let slow = Pacing::offsets([0, 500, 1000], 0.5);
        assert_eq!(slow.due_at(2), Some(ms(2000)));
        // An earlier offset after a later one goes right after it, not before.
        let p = Pacing::offsets([0, 800, 300, 900], 1.0);
        assert_eq!(p.due_at(2), Some(ms(800)));
        assert_eq!(p.due_by(ms(799)), 1);
        assert_eq!(p.due_by(ms(800)), 3);
    }

    #[test]
    fn speed_zero_makes_everything_due_at_once() {
        let p = Pacing::offsets([0, 5_000, 60_000], 0.0);
        assert_eq!(p.due_by(Duration::ZERO), 3);
        assert_eq!(Pacing::offsets([], 1.0).due_by(ms(5)), 0);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(1), ms(100));
        assert_eq!(retry_delay(2), ms(200));
        assert_eq!(retry_delay(4), ms(800));
        assert_eq!(retry_delay(7), MAX_BACKOFF);
        assert_eq!(retry_delay(u32::MAX), MAX_BACKOFF);
    }
}
