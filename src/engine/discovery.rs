//! When a mapping lists its stream's shards: at start, every `discovery_interval_ms`, at
//! once when asked (a shard ended), and after a failed listing at the throttle backoff.
//! Shared by both supervisors (one worker alone, or leased).

use super::context::MappingContext;
use crate::model::ShardInfo;
use crate::policy::backoff::backoff_ms;
use crate::rng::Rng;

pub struct Discovery {
    rng: Rng,
    failures_in_a_row: u32,
    next_ms: i64,
}

impl Discovery {
    /// Due at once.
    pub fn new(ctx: &MappingContext) -> Self {
        Discovery {
            rng: Rng::derived(ctx.seed, &format!("{}/discovery", ctx.mapping.name)),
            failures_in_a_row: 0,
            next_ms: ctx.clock.now_ms(),
        }
    }

    /// List again at once.
    pub fn due_now(&mut self, now_ms: i64) {
        self.next_ms = now_ms;
    }

    /// How long until the next listing is due.
    pub fn wait_ms(&self, now_ms: i64) -> u64 {
        (self.next_ms - now_ms).max(0) as u64
    }

    /// The stream's shards if a listing was due and succeeded; a failure is logged and
    /// retried after a backoff.
    pub async fn poll(&mut self, ctx: &MappingContext) -> Option<Vec<ShardInfo>> {
        if ctx.clock.now_ms() < self.next_ms {
            return None;
        }
        let pace = &ctx.mapping.pace;
        match ctx.source.list_shards().await {
            Ok(listed) => {
                self.failures_in_a_row = 0;
                self.next_ms = ctx.clock.now_ms() + pace.discovery_interval_ms as i64;
                Some(listed)
            }
            Err(error) => {
                self.failures_in_a_row += 1;
                let wait = backoff_ms(
                    self.failures_in_a_row,
                    pace.throttle_backoff_initial_ms,
                    pace.throttle_backoff_max_ms,
                    self.rng.next_f64(),
                );
                tracing::warn!(mapping = %ctx.mapping.name, %error, wait_ms = wait, "cannot list shards; retrying");
                self.next_ms = ctx.clock.now_ms() + wait as i64;
                None
            }
        }
    }
}
