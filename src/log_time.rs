//! The timestamps of log lines: the wall clock, or, while a simulation runs, its virtual
//! clock.
//!
//! `simulate` runs hours of virtual time in seconds of wall time; its log lines only read
//! alongside its invocation log and report when they carry the time of the simulated world
//! (`2026-01-01T00:00:03.120Z`), not the moment the machine ran it. So `simulate` installs
//! its clock here for the duration of the run (`VirtualLogTime::install`, dropped at the
//! end), and the binary's log formatter (`LogTime`) reads it for every line; with no clock
//! installed, as in `run`, lines carry the wall clock exactly as before.
//!
//! The slot is process-wide because log lines come from any thread (tokio's blocking pool,
//! the checkpoint flusher). The clock's time is tokio's, paused in a simulation, so it is
//! read inside the simulation's runtime context, which the installed handle provides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::runtime::Handle;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

use crate::clock::Clock;

struct Installed {
    id: u64,
    clock: Clock,
    runtime: Handle,
}

static VIRTUAL_CLOCK: RwLock<Option<Installed>> = RwLock::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// While this guard lives, log lines carry the time of the clock it installed.
#[must_use = "the virtual log time is uninstalled when the guard is dropped"]
pub struct VirtualLogTime {
    id: u64,
}

impl VirtualLogTime {
    /// Log lines carry `clock`'s time from now on; `runtime` is the runtime whose (paused)
    /// time the clock advances with. A later install replaces this one.
    pub fn install(clock: Clock, runtime: Handle) -> VirtualLogTime {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        *write_slot() = Some(Installed { id, clock, runtime });
        VirtualLogTime { id }
    }
}

impl Drop for VirtualLogTime {
    fn drop(&mut self) {
        let mut slot = write_slot();
        // Only uninstall our own clock: a simulation started later owns the slot now.
        if slot
            .as_ref()
            .is_some_and(|installed| installed.id == self.id)
        {
            *slot = None;
        }
    }
}

fn write_slot() -> std::sync::RwLockWriteGuard<'static, Option<Installed>> {
    VIRTUAL_CLOCK
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The installed virtual clock's time (epoch ms), if one is installed.
pub fn virtual_now_ms() -> Option<i64> {
    let slot = VIRTUAL_CLOCK
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slot.as_ref().map(|installed| {
        let _context = installed.runtime.enter();
        installed.clock.now_ms()
    })
}

/// The log line timer of the binary: the virtual time to the millisecond while a
/// simulation runs, else the wall clock (as `tracing_subscriber`'s default timer writes it).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogTime;

impl FormatTime for LogTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match virtual_now_ms().and_then(DateTime::<Utc>::from_timestamp_millis) {
            Some(instant) => write!(
                w,
                "{}",
                instant.to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
            None => SystemTime.format_time(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    fn formatted() -> String {
        let mut text = String::new();
        LogTime.format_time(&mut Writer::new(&mut text)).unwrap();
        text
    }

    // One test, not several: they would share the process-wide slot.
    #[test]
    fn log_time_follows_the_installed_virtual_clock_and_the_wall_clock_otherwise() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let first = VirtualLogTime::install(Clock::starting_at(T0), Handle::current());
            assert_eq!(formatted(), "2026-01-01T00:00:00.000Z");
            tokio::time::sleep(std::time::Duration::from_millis(3_120)).await;
            assert_eq!(formatted(), "2026-01-01T00:00:03.120Z");
            // Read from a thread outside the runtime, the time is still the virtual one.
            let from_another_thread = std::thread::spawn(formatted).join().unwrap();
            assert_eq!(from_another_thread, "2026-01-01T00:00:03.120Z");
            let second = VirtualLogTime::install(Clock::starting_at(0), Handle::current());
            drop(first);
            assert_eq!(formatted(), "1970-01-01T00:00:00.000Z");
            drop(second);
        });
        assert_eq!(virtual_now_ms(), None);
        let wall = formatted();
        assert!(
            !wall.starts_with("1970") && !wall.starts_with("2026-01-01T00:00:0"),
            "{wall}"
        );
    }
}
