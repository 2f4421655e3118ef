//! Backoff waits: exponential from an initial wait to a maximum, with "equal jitter" (half
//! fixed, half random) so that many shards retrying together spread out while a single one
//! still waits at least half the nominal time. The random draw is passed in, so this stays
//! pure and simulations stay deterministic.

/// The wait before retry number `attempt` (1 = first retry), `jitter` in [0, 1).
pub fn backoff_ms(attempt: u32, initial_ms: u64, max_ms: u64, jitter: f64) -> u64 {
    let doublings = attempt.saturating_sub(1).min(32);
    let nominal = initial_ms
        .saturating_mul(1u64 << doublings)
        .min(max_ms.max(initial_ms));
    let half = nominal / 2;
    half + ((nominal - half) as f64 * jitter.clamp(0.0, 1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_per_attempt_up_to_the_maximum() {
        assert_eq!(backoff_ms(1, 100, 1000, 0.999_999), 99);
        assert_eq!(backoff_ms(1, 100, 1000, 0.0), 50);
        assert_eq!(backoff_ms(2, 100, 1000, 0.0), 100);
        assert_eq!(backoff_ms(3, 100, 1000, 0.0), 200);
        assert_eq!(backoff_ms(10, 100, 1000, 0.0), 500);
        assert_eq!(backoff_ms(u32::MAX, 100, 1000, 0.5), 750);
    }
}
