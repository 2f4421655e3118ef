//! What a worker's lease keeper counts: leases held, taken, stolen and lost, checkpoint
//! writes fenced off, conditional-check failures, throttles and renew latency. The admin
//! server's `/metrics` renders them; `simulate` reports them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::engine::latency::LatencyHistogram;

#[derive(Default)]
pub struct LeaseMetrics {
    pub held: AtomicU64,
    /// Free or expired leases taken.
    pub taken: AtomicU64,
    /// Leases taken from a live worker over its share.
    pub stolen: AtomicU64,
    /// Leases this worker held and lost (stolen, expired before a renew, refused by the
    /// table).
    pub lost: AtomicU64,
    /// Checkpoints refused because the lease was no longer held.
    pub checkpoints_fenced: AtomicU64,
    /// Conditional writes the table refused (a take lost to a peer, a lost lease).
    pub conditional_check_failures: AtomicU64,
    /// Calls the table throttled.
    pub throttles: AtomicU64,
    /// Every call made to the table.
    pub calls: AtomicU64,
    pub renew_latency: Mutex<LatencyHistogram>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LeaseCounts {
    pub held: u64,
    pub taken: u64,
    pub stolen: u64,
    pub lost: u64,
    pub checkpoints_fenced: u64,
    pub conditional_check_failures: u64,
    pub throttles: u64,
    pub calls: u64,
    pub renew_latency: LatencyHistogram,
}

impl LeaseMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LeaseCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LeaseCounts {
            held: get(&self.held),
            taken: get(&self.taken),
            stolen: get(&self.stolen),
            lost: get(&self.lost),
            checkpoints_fenced: get(&self.checkpoints_fenced),
            conditional_check_failures: get(&self.conditional_check_failures),
            throttles: get(&self.throttles),
            calls: get(&self.calls),
            renew_latency: self
                .renew_latency
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
