//! The one clock of the engine: epoch milliseconds derived from tokio's monotonic clock.
//!
//! `run` starts it at the wall-clock time; `simulate` starts it at the configured
//! simulation start on a runtime whose time is paused, where tokio advances time whenever
//! every task waits. The engine sleeps with `tokio::time` and reads `now_ms()` here, so the
//! same code runs in real and in virtual time, and a simulation is deterministic.

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch_ms_at_start: i64,
    started: Instant,
}

impl Clock {
    /// A clock reading `epoch_ms` now and advancing with tokio's time from here on.
    pub fn starting_at(epoch_ms: i64) -> Self {
        Clock {
            epoch_ms_at_start: epoch_ms,
            started: Instant::now(),
        }
    }

    /// A clock on the wall-clock time.
    pub fn wall() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self::starting_at(now)
    }

    pub fn now_ms(&self) -> i64 {
        self.epoch_ms_at_start + self.started.elapsed().as_millis() as i64
    }

    /// Milliseconds since this clock started.
    pub fn elapsed_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }
}
