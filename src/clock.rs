//! The one clock of the engine: epoch milliseconds derived from tokio's monotonic clock.
//!
//! `run` starts it at the wall-clock time; `simulate` starts it at the configured
//! simulation start on a runtime whose time is paused, where tokio advances time whenever
//! every task waits. The engine sleeps with `tokio::time` and reads `now_ms()` here, so the
//! same code runs in real and in virtual time, and a simulation is deterministic.
//!
//! Reading tokio's paused clock takes a lock and clones the runtime's handle (~25 ns, and
//! a 10,000-shard simulation reads it ~1.5 M times). Paused time only moves while the
//! runtime parks, so `simulate`'s runtime (`block_on_paused`) marks its thread and its
//! park hooks forget the time read: between two parks every read on that thread is the
//! first one's. Any other thread, and any runtime not made there, reads tokio's clock
//! each time.

use std::cell::Cell;

use tokio::time::Instant;

/// A sleep of `ms` from `tokio_now()`: `tokio::time::sleep` would read the clock again.
pub fn sleep_ms(ms: u64) -> tokio::time::Sleep {
    let now = tokio_now();
    let far_future = || now + std::time::Duration::from_secs(86_400 * 365 * 30);
    let at = now
        .checked_add(std::time::Duration::from_millis(ms))
        .unwrap_or_else(far_future);
    tokio::time::sleep_until(at)
}

/// What the clock knows of the current time on this thread.
#[derive(Clone, Copy)]
enum Frozen {
    /// Not a simulation's thread: read tokio's clock every time.
    Off,
    /// A simulation's thread whose runtime parked since the last read.
    Stale,
    /// A simulation's thread: the time read since the runtime last parked, and the last
    /// clock's reading of it (that clock's start, its milliseconds since): the engine's
    /// clocks are copies of one, so most readings are that one again.
    At(Instant, Option<(Instant, i64)>),
}

thread_local! {
    static FROZEN: Cell<Frozen> = const { Cell::new(Frozen::Off) };
}

/// Runs `future` to completion on a new current-thread runtime whose time is paused (it
/// jumps to the next timer whenever every task waits), with this thread's clock reads kept
/// between two parks of that runtime: `simulate`'s runtime.
pub fn block_on_paused<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .on_thread_park(time_may_have_moved)
        .on_thread_unpark(time_may_have_moved)
        .build()?;
    let _frozen = FrozenBetweenParks::enter();
    Ok(runtime.block_on(future))
}

/// While this guard lives, the current thread drives a paused runtime whose park hooks
/// call `time_may_have_moved`.
struct FrozenBetweenParks(());

impl FrozenBetweenParks {
    fn enter() -> Self {
        FROZEN.set(Frozen::Stale);
        FrozenBetweenParks(())
    }
}

impl Drop for FrozenBetweenParks {
    fn drop(&mut self) {
        FROZEN.set(Frozen::Off);
    }
}

/// The park hook of a paused runtime: its time may move while it parks.
fn time_may_have_moved() {
    FROZEN.with(|frozen| {
        if matches!(frozen.get(), Frozen::At(..)) {
            frozen.set(Frozen::Stale);
        }
    });
}

/// tokio's current time, read once between two parks on a simulation's thread.
pub fn tokio_now() -> Instant {
    FROZEN.with(|frozen| match frozen.get() {
        Frozen::At(now, _) => now,
        Frozen::Stale => {
            let now = Instant::now();
            frozen.set(Frozen::At(now, None));
            now
        }
        Frozen::Off => Instant::now(),
    })
}

/// Whole milliseconds from `started` to `now`.
fn ms_between(started: Instant, now: Instant) -> i64 {
    now.duration_since(started).as_millis() as i64
}

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
            started: tokio_now(),
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
        self.epoch_ms_at_start + self.elapsed_ms()
    }

    /// Milliseconds since this clock started.
    pub fn elapsed_ms(&self) -> i64 {
        let (started, now) = (self.started, tokio_now());
        FROZEN.with(|frozen| match frozen.get() {
            Frozen::At(_, Some((memo_started, ms))) if memo_started == started => ms,
            Frozen::At(at, _) => {
                let ms = ms_between(started, at);
                frozen.set(Frozen::At(at, Some((started, ms))));
                ms
            }
            Frozen::Stale | Frozen::Off => ms_between(started, now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_runtime_reads_the_time_once_between_parks_and_again_after_each() {
        let elapsed = block_on_paused(async {
            let clock = Clock::starting_at(1_000_000);
            let mut seen = vec![clock.now_ms()];
            sleep_ms(250).await;
            seen.push(clock.now_ms());
            // Another clock, started now, read in turn with the first: each its own time.
            let other_clock = Clock::starting_at(5_000);
            assert_eq!(other_clock.now_ms(), 5_000);
            assert_eq!(clock.now_ms(), 1_000_250);
            assert_eq!(other_clock.elapsed_ms(), 0);
            tokio::time::sleep(std::time::Duration::from_millis(750)).await;
            seen.push(clock.now_ms());
            // A task on the same runtime sees the time its own wake-up brought.
            let other = tokio::spawn(async move {
                sleep_ms(2_000).await;
                clock.now_ms()
            });
            seen.push(other.await.unwrap());
            seen.push(clock.now_ms());
            seen
        })
        .unwrap();
        assert_eq!(
            elapsed,
            [1_000_000, 1_000_250, 1_001_000, 1_003_000, 1_003_000]
        );
        // Off the runtime again: this thread reads tokio's clock each time.
        assert!(matches!(FROZEN.get(), Frozen::Off));
    }

    #[test]
    fn the_reading_is_kept_until_the_runtime_parks() {
        block_on_paused(async {
            let kept = tokio_now();
            // Moved by hand (simulate never does): no park, so the reading stands.
            tokio::time::advance(std::time::Duration::from_millis(5)).await;
            assert_eq!(tokio_now(), kept);
            assert_eq!(Instant::now() - kept, std::time::Duration::from_millis(5));
            // A sleep parks the runtime: read afresh.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            assert_eq!(tokio_now() - kept, std::time::Duration::from_millis(15));
        })
        .unwrap();
    }

    #[test]
    fn a_thread_not_driving_a_paused_runtime_keeps_no_reading() {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let clock = Clock::starting_at(0);
                assert_eq!(clock.now_ms(), 0);
                tokio::time::advance(std::time::Duration::from_millis(40)).await;
                assert_eq!(clock.now_ms(), 40);
                assert!(matches!(FROZEN.get(), Frozen::Off));
            });
    }
}
