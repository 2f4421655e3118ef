//! How often a worker renews and takes, derived from the lease duration as KCL derives
//! them from its failover time: renew three times per duration (less a margin, so two
//! renewals can fail and the lease still holds), take every two durations (a worker only
//! calls a lease expired after watching its counter stand still for a whole duration).

/// KCL's `epsilonMillis`: the margin for clock and call delays.
pub const EPSILON_MS: u64 = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A lease whose counter has not moved for this long is expired.
    pub lease_duration_ms: u64,
    /// How often a holder renews its leases.
    pub renew_interval_ms: u64,
    /// How often a worker lists the table and takes or steals leases.
    pub take_interval_ms: u64,
}

impl LeaseTiming {
    /// KCL: renew every `duration / 3 - ε`, take every `(duration + ε) * 2`.
    pub fn from_lease_duration_ms(lease_duration_ms: u64) -> Self {
        LeaseTiming {
            lease_duration_ms,
            renew_interval_ms: (lease_duration_ms / 3).saturating_sub(EPSILON_MS).max(1),
            take_interval_ms: (lease_duration_ms + EPSILON_MS) * 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_seconds_gives_kcls_intervals() {
        let timing = LeaseTiming::from_lease_duration_ms(10_000);
        assert_eq!(timing.renew_interval_ms, 3_308);
        assert_eq!(timing.take_interval_ms, 20_050);
    }

    #[test]
    fn one_second_still_renews_well_inside_the_lease() {
        let timing = LeaseTiming::from_lease_duration_ms(1_000);
        assert_eq!(timing.renew_interval_ms, 308);
        assert_eq!(timing.take_interval_ms, 2_050);
    }
}
