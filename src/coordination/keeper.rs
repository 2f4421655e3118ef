//! The lease keeper: one per worker process, for every leased mapping it runs. It renews
//! the leases it holds, takes and steals leases in take passes (`balance` decides which),
//! writes the checkpoints its shard tasks save, and hands its leases back on a clean stop.
//!
//! Expiry is judged as KCL judges it, without trusting anyone's clock: a lease is expired
//! when this worker has watched its counter stand still for a whole lease duration (or it
//! is free). A lease this worker holds is lost when the table refuses a renew or a
//! checkpoint (someone else holds it now), or when a lease duration passed since its last
//! successful renew (the process was stopped, the table unreachable): from that moment no
//! checkpoint of that shard is accepted (`queue_checkpoint` refuses it) and the mapping's
//! supervisor is told to stop the shard at once.
//!
//! Checkpoints are queued and written by one writer loop, coalesced per shard (the latest
//! wins), each write conditional on (owner = this worker, counter = the one it holds);
//! a lease's writes and renews never overlap (one lock per lease), so a write's counter
//! is always the current one. A SHARD_END checkpoint, once written, hands the lease back:
//! nobody renews or takes an ended lease, and the children become ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::balance::{self, Pick};
use super::lease::{lease_key, Lease};
use super::metrics::LeaseMetrics;
use super::seen::{observe, parents_first, shuffle, Observed};
use super::table::{Holder, LeaseTable, TableError};
use super::timing::LeaseTiming;
use crate::checkpoint::{Checkpoint, StoreError};
use crate::clock::Clock;
use crate::config::LeaseTableSettings;
use crate::model::{ShardId, ShardInfo};
use crate::rng::Rng;

/// Calls made to the table at once by a renew pass or the checkpoint writer.
const CONCURRENT_CALLS: usize = 16;
/// Wait before writing again checkpoints the table did not take (throttled, unreachable).
const WRITE_RETRY_MS: u64 = 200;

/// What a mapping's supervisor is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// This worker holds the lease now, in this tenure: run the shard from the lease's
    /// checkpoint, saving through `queue_checkpoint` with the tenure.
    Gained(Lease, Tenure),
    /// This worker no longer holds the lease: stop the shard now.
    Lost(ShardId),
    /// An operator paused or resumed the shard (seen in the lease at a renew).
    Paused { shard_id: ShardId, paused: bool },
}

/// One holding of a lease by this worker, from a take to its loss or hand-back. A shard
/// task saves under the tenure it was started in, so a task that outlives its holding
/// cannot write into the next holding of the same lease (lost, then taken again while the
/// old task was still finishing: its positions are older than the row's).
pub type Tenure = u64;

pub struct LeaseKeeper {
    table: Arc<dyn LeaseTable>,
    pub worker_id: String,
    pub timing: LeaseTiming,
    max_steals: usize,
    clock: Clock,
    admin_url: Mutex<Option<String>>,
    state: Mutex<State>,
    writes: Notify,
    take_now: Notify,
    stop: CancellationToken,
    pub metrics: LeaseMetrics,
    rng: Mutex<Rng>,
    /// The last tenure given out.
    tenures: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct State {
    held: BTreeMap<String, Held>,
    /// Every lease as last read, and since when its counter has stood still.
    seen: BTreeMap<String, Observed>,
    mappings: BTreeMap<String, mpsc::UnboundedSender<LeaseEvent>>,
    /// Checkpoints saved and not yet written, by lease key, with the tenure they were
    /// saved in.
    pending: BTreeMap<String, (Checkpoint, Tenure)>,
}

struct Held {
    mapping: String,
    shard_id: ShardId,
    counter: u64,
    renewed_at_ms: i64,
    paused: bool,
    tenure: Tenure,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl LeaseKeeper {
    pub fn new(
        table: Arc<dyn LeaseTable>,
        settings: &LeaseTableSettings,
        clock: Clock,
        seed: u64,
    ) -> Arc<Self> {
        Arc::new(LeaseKeeper {
            table,
            worker_id: settings.worker_id.clone(),
            timing: settings.timing,
            max_steals: settings.max_steals_per_pass,
            clock,
            admin_url: Mutex::new(None),
            state: Mutex::new(State::default()),
            writes: Notify::new(),
            take_now: Notify::new(),
            stop: CancellationToken::new(),
            metrics: LeaseMetrics::default(),
            rng: Mutex::new(Rng::derived(
                seed,
                &format!("leases/{}", settings.worker_id),
            )),
            tenures: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the table if missing and checks it is a lease table.
    pub async fn prepare(&self) -> Result<(), TableError> {
        self.call(self.table.prepare()).await
    }

    /// Where peers forward operator actions on the shards this worker holds.
    pub fn set_admin_url(&self, url: String) {
        *self.admin_url.lock().unwrap_or_else(|p| p.into_inner()) = Some(url);
    }

    /// From now on, leases of `mapping` are taken, and its supervisor hears about them.
    pub fn attach(&self, mapping: &str) -> mpsc::UnboundedReceiver<LeaseEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state().mappings.insert(mapping.to_string(), tx);
        self.take_now.notify_one();
        rx
    }

    /// Renews, takes and writes checkpoints until `hand_back`.
    pub async fn run(self: Arc<Self>) {
        tokio::join!(self.renew_loop(), self.take_loop(), self.write_loop());
    }

    /// Asks for a take pass now (a shard ended: its children may be ready).
    pub fn take_soon(&self) {
        self.take_now.notify_one();
    }

    /// Creates the leases of shards just discovered that the table may not have yet,
    /// parents before children, so a child is never in the table without its parents.
    pub async fn create_leases(&self, mapping: &str, shards: &[ShardInfo]) {
        for info in parents_first(shards) {
            let key = lease_key(mapping, &info.shard_id);
            if self.state().seen.contains_key(&key) {
                continue;
            }
            let lease = Lease::new(
                mapping,
                info.shard_id.clone(),
                info.parent_shard_ids.clone(),
            );
            match self.call(self.table.create(&lease)).await {
                Ok(created) => {
                    if created {
                        tracing::info!(mapping, shard = %info.shard_id, "lease created");
                    }
                }
                Err(error) => {
                    tracing::warn!(mapping, shard = %info.shard_id, %error, "cannot create the lease; the next discovery tries again");
                }
            }
        }
        self.take_now.notify_one();
    }

    /// Whether this worker holds the lease now (renewed within a lease duration).
    pub fn holds(&self, mapping: &str, shard_id: &ShardId) -> bool {
        let key = lease_key(mapping, shard_id);
        let now = self.clock.now_ms();
        self.state()
            .held
            .get(&key)
            .is_some_and(|h| now - h.renewed_at_ms < self.timing.lease_duration_ms as i64)
    }

    /// Queues a checkpoint for writing, if this worker still holds the lease in `tenure`
    /// (any tenure when `None`); refused (and counted) otherwise: the fence a late
    /// invocation runs into.
    pub fn queue_checkpoint(
        &self,
        mapping: &str,
        shard_id: &ShardId,
        checkpoint: &Checkpoint,
        tenure: Option<Tenure>,
    ) -> Result<(), StoreError> {
        let held_tenure = self
            .holds(mapping, shard_id)
            .then(|| self.tenure(mapping, shard_id))
            .flatten();
        let Some(held_tenure) = held_tenure.filter(|held| tenure.is_none_or(|t| t == *held)) else {
            LeaseMetrics::add(&self.metrics.checkpoints_fenced, 1);
            return Err(StoreError(format!(
                "lease of shard {shard_id} is not held by worker {:?} in the holding the shard task started in: checkpoint {} not written",
                self.worker_id,
                checkpoint.encode()
            )));
        };
        let key = lease_key(mapping, shard_id);
        self.state()
            .pending
            .insert(key, (checkpoint.clone(), held_tenure));
        self.writes.notify_one();
        Ok(())
    }

    /// The tenure of a lease this worker holds.
    pub fn tenure(&self, mapping: &str, shard_id: &ShardId) -> Option<Tenure> {
        let key = lease_key(mapping, shard_id);
        self.state().held.get(&key).map(|h| h.tenure)
    }

    /// The lease of a shard as this worker knows it: its own view of the leases it holds,
    /// the last table read for the others.
    pub fn lease(&self, mapping: &str, shard_id: &ShardId) -> Option<Lease> {
        let key = lease_key(mapping, shard_id);
        let state = self.state();
        let mut lease = state.seen.get(&key)?.lease.clone();
        if let Some(held) = state.held.get(&key) {
            lease.owner = Some(self.worker_id.clone());
            lease.counter = held.counter;
            lease.paused = held.paused;
        }
        Some(lease)
    }

    /// Every lease of `mapping`, as `lease` gives each.
    pub fn leases(&self, mapping: &str) -> Vec<Lease> {
        let keys: Vec<ShardId> = self
            .state()
            .seen
            .values()
            .filter(|o| o.lease.mapping == mapping)
            .map(|o| o.lease.shard_id.clone())
            .collect();
        keys.iter()
            .filter_map(|shard| self.lease(mapping, shard))
            .collect()
    }

    /// An operator's pause or resume, written into the lease (the holder applies it).
    pub async fn set_paused(
        &self,
        mapping: &str,
        shard_id: &ShardId,
        paused: bool,
    ) -> Result<(), TableError> {
        let key = lease_key(mapping, shard_id);
        self.call(self.table.set_paused(&key, paused)).await?;
        let mut state = self.state();
        if let Some(held) = state.held.get_mut(&key) {
            held.paused = paused;
        }
        if let Some(observed) = state.seen.get_mut(&key) {
            observed.lease.paused = paused;
        }
        Ok(())
    }

    /// A clean stop, once every shard task has stopped: writes the checkpoints still
    /// queued, then hands every lease back (owner cleared) so peers take them at their
    /// next take pass rather than after a lease duration.
    pub async fn hand_back(&self) {
        self.stop.cancel();
        self.write_pending().await;
        let keys: Vec<String> = self.state().held.keys().cloned().collect();
        for key in keys {
            self.release(&key, "handed back on shutdown").await;
        }
    }

    async fn release(&self, key: &str, why: &str) {
        let Some((lock, counter)) = self.lock_of(key) else {
            return;
        };
        let _guard = lock.lock().await;
        let holder = Holder {
            owner: &self.worker_id,
            counter,
        };
        let result = self.call(self.table.release(key, holder)).await;
        let removed = self.state().held.remove(key);
        if removed.is_some() {
            self.metrics
                .held
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(()) => tracing::info!(lease = key, "lease {why}"),
            Err(error) => {
                tracing::warn!(lease = key, %error, "lease not handed back; peers take it once it expires")
            }
        }
    }

    fn lock_of(&self, key: &str) -> Option<(Arc<tokio::sync::Mutex<()>>, u64)> {
        self.state()
            .held
            .get(key)
            .map(|h| (h.lock.clone(), h.counter))
    }

    /// Stops holding a lease: counted, logged, and the supervisor stops the shard.
    fn lose(&self, key: &str, why: &str) {
        let mut state = self.state();
        let Some(held) = state.held.remove(key) else {
            return;
        };
        state.pending.remove(key);
        // Not ours any more: until the next take pass reads the new owner, show none.
        if let Some(observed) = state.seen.get_mut(key) {
            if observed.lease.owner.as_deref() == Some(self.worker_id.as_str()) {
                observed.lease.owner = None;
                observed.lease.owner_admin_url = None;
            }
        }
        self.metrics
            .held
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        LeaseMetrics::add(&self.metrics.lost, 1);
        tracing::warn!(mapping = %held.mapping, shard = %held.shard_id, worker = %self.worker_id, "lease lost: {why}; the shard stops here");
        if let Some(tx) = state.mappings.get(&held.mapping) {
            let _ = tx.send(LeaseEvent::Lost(held.shard_id));
        }
    }

    /// One table call, counted (throttles and refused conditions too). No timeout of its
    /// own: a lease is given up by the clock (`holds`) whatever a slow call does, and in
    /// `simulate` a paused worker's calls must wait out the pause as a stopped process's.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, TableError>>,
    ) -> Result<T, TableError> {
        LeaseMetrics::add(&self.metrics.calls, 1);
        let result = call.await;
        match &result {
            Err(TableError::Conflict) => {
                LeaseMetrics::add(&self.metrics.conditional_check_failures, 1)
            }
            Err(TableError::Throttled(_)) => LeaseMetrics::add(&self.metrics.throttles, 1),
            _ => {}
        }
        result
    }

    async fn sleep_or_stop(&self, ms: u64, wake: Option<&Notify>) -> bool {
        let wake = async {
            match wake {
                Some(notify) => notify.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            _ = wake => true,
            _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
        }
    }

    async fn renew_loop(&self) {
        while self
            .sleep_or_stop(self.timing.renew_interval_ms, None)
            .await
        {
            let keys: Vec<String> = self.state().held.keys().cloned().collect();
            stream::iter(keys)
                .for_each_concurrent(
                    CONCURRENT_CALLS,
                    |key| async move { self.renew(&key).await },
                )
                .await;
        }
    }

    async fn renew(&self, key: &str) {
        let Some((lock, _)) = self.lock_of(key) else {
            return;
        };
        let _guard = lock.lock().await;
        let Some((counter, renewed_at_ms)) = self
            .state()
            .held
            .get(key)
            .map(|h| (h.counter, h.renewed_at_ms))
        else {
            return;
        };
        let started_ms = self.clock.now_ms();
        if started_ms - renewed_at_ms >= self.timing.lease_duration_ms as i64 {
            self.lose(key, "a lease duration passed since its last renew");
            return;
        }
        let holder = Holder {
            owner: &self.worker_id,
            counter,
        };
        let started = tokio::time::Instant::now();
        let result = self.call(self.table.renew(key, holder)).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics
            .renew_latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(latency_ms);
        match result {
            Ok(row) => self.renewed(key, row, started_ms),
            Err(TableError::Conflict) => self.lose(key, "another worker holds it now"),
            Err(error) => {
                tracing::warn!(lease = key, %error, "cannot renew the lease; it is lost if this lasts a lease duration")
            }
        }
    }

    fn renewed(&self, key: &str, row: Lease, started_ms: i64) {
        let mut state = self.state();
        let Some(held) = state.held.get_mut(key) else {
            return;
        };
        held.counter = row.counter;
        held.renewed_at_ms = started_ms;
        if held.paused != row.paused {
            held.paused = row.paused;
            let event = LeaseEvent::Paused {
                shard_id: held.shard_id.clone(),
                paused: row.paused,
            };
            let mapping = held.mapping.clone();
            if let Some(tx) = state.mappings.get(&mapping) {
                let _ = tx.send(event);
            }
        }
    }

    async fn take_loop(&self) {
        let mut first = true;
        loop {
            let wait = if first {
                0
            } else {
                self.timing.take_interval_ms
            };
            first = false;
            if !self.sleep_or_stop(wait, Some(&self.take_now)).await {
                return;
            }
            if let Err(error) = self.take_pass().await {
                tracing::warn!(worker = %self.worker_id, %error, "take pass failed; trying again at the next");
            }
        }
    }

    /// Lists the table, then takes or steals what `balance` says, mapping by mapping.
    async fn take_pass(&self) -> Result<(), TableError> {
        let rows = self.call(self.table.list()).await?;
        let now = self.clock.now_ms();
        let picks = {
            let mut state = self.state();
            observe(&mut state.seen, rows, now);
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            let mappings: Vec<String> = state.mappings.keys().cloned().collect();
            let mut picks = Vec::new();
            for mapping in mappings {
                picks.extend(self.plan_mapping(&state, &mapping, now, &mut rng));
            }
            picks
        };
        for (key, counter, pick) in picks {
            self.take(&key, counter, pick).await;
        }
        Ok(())
    }

    /// What `balance` picks among `mapping`'s leases, with the counter each was seen at.
    fn plan_mapping(
        &self,
        state: &State,
        mapping: &str,
        now: i64,
        rng: &mut Rng,
    ) -> Vec<(String, u64, Pick)> {
        let duration = self.timing.lease_duration_ms as i64;
        let mut leases: Vec<(Lease, i64)> = state
            .seen
            .iter()
            .filter(|(_, o)| o.lease.mapping == mapping)
            .map(|(key, o)| {
                let mut lease = o.lease.clone();
                // Ours in the table but not held here: a previous run of this worker id.
                if lease.owner.as_deref() == Some(self.worker_id.as_str())
                    && !state.held.contains_key(key)
                {
                    lease.owner = None;
                }
                (lease, o.since_ms)
            })
            .collect();
        shuffle(&mut leases, rng);
        let present: BTreeSet<&ShardId> = leases.iter().map(|(l, _)| &l.shard_id).collect();
        let ended: BTreeSet<&ShardId> = leases
            .iter()
            .filter(|(l, _)| l.is_ended())
            .map(|(l, _)| &l.shard_id)
            .collect();
        let seen: Vec<balance::Seen> = leases
            .iter()
            .map(|(lease, since_ms)| balance::Seen {
                lease,
                expired: lease.owner.is_none()
                    || (lease.owner.as_deref() != Some(self.worker_id.as_str())
                        && now - since_ms >= duration),
                ready: lease
                    .parent_shard_ids
                    .iter()
                    .all(|p| !present.contains(p) || ended.contains(p)),
            })
            .collect();
        let counters: BTreeMap<String, u64> =
            leases.iter().map(|(l, _)| (l.key(), l.counter)).collect();
        balance::plan(&seen, &self.worker_id, self.max_steals)
            .into_iter()
            .map(|(key, pick)| (key.clone(), counters[&key], pick))
            .collect()
    }

    async fn take(&self, key: &str, counter: u64, pick: Pick) {
        let started_ms = self.clock.now_ms();
        let admin_url = self
            .admin_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let result = self
            .call(
                self.table
                    .take(key, counter, &self.worker_id, admin_url.as_deref()),
            )
            .await;
        let row = match result {
            Ok(row) => row,
            Err(TableError::Conflict) => {
                tracing::debug!(lease = key, "a peer took the lease first");
                return;
            }
            Err(error) => {
                tracing::warn!(lease = key, %error, "cannot take the lease");
                return;
            }
        };
        let tenure = self
            .tenures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut state = self.state();
        state.held.insert(
            key.to_string(),
            Held {
                mapping: row.mapping.clone(),
                shard_id: row.shard_id.clone(),
                counter: row.counter,
                renewed_at_ms: started_ms,
                paused: row.paused,
                tenure,
                lock: Arc::default(),
            },
        );
        state.seen.insert(
            key.to_string(),
            Observed {
                lease: row.clone(),
                since_ms: started_ms,
            },
        );
        LeaseMetrics::add(&self.metrics.held, 1);
        match &pick {
            Pick::Take => LeaseMetrics::add(&self.metrics.taken, 1),
            Pick::Steal { .. } => LeaseMetrics::add(&self.metrics.stolen, 1),
        }
        let how = match &pick {
            Pick::Take => "taken".to_string(),
            Pick::Steal { from } => format!("stolen from {from}"),
        };
        tracing::info!(mapping = %row.mapping, shard = %row.shard_id, worker = %self.worker_id, counter = row.counter,
            checkpoint = row.checkpoint.as_ref().map(Checkpoint::encode).as_deref().unwrap_or("none"), "lease {how}");
        if let Some(tx) = state.mappings.get(&row.mapping) {
            let _ = tx.send(LeaseEvent::Gained(row, tenure));
        }
    }

    async fn write_loop(&self) {
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                _ = self.writes.notified() => {}
            }
            self.write_pending().await;
            if !self.state().pending.is_empty() && !self.sleep_or_stop(WRITE_RETRY_MS, None).await {
                return;
            }
        }
    }

    /// Writes every queued checkpoint; the ones the table could not take stay queued
    /// (unless a newer one came meanwhile).
    async fn write_pending(&self) {
        let batch = std::mem::take(&mut self.state().pending);
        stream::iter(batch)
            .for_each_concurrent(CONCURRENT_CALLS, |(key, (checkpoint, tenure))| async move {
                self.write(&key, checkpoint, tenure).await
            })
            .await;
    }

    async fn write(&self, key: &str, checkpoint: Checkpoint, tenure: Tenure) {
        let Some((lock, _)) = self.lock_of(key) else {
            LeaseMetrics::add(&self.metrics.checkpoints_fenced, 1);
            return;
        };
        let _guard = lock.lock().await;
        // Lost and taken again since it was saved: it belongs to the old holding.
        let held = self.state().held.get(key).map(|h| (h.counter, h.tenure));
        let Some(counter) = held.filter(|(_, t)| *t == tenure).map(|(c, _)| c) else {
            LeaseMetrics::add(&self.metrics.checkpoints_fenced, 1);
            return;
        };
        let holder = Holder {
            owner: &self.worker_id,
            counter,
        };
        match self
            .call(self.table.checkpoint(key, holder, &checkpoint))
            .await
        {
            Ok(()) => {
                if let Some(observed) = self.state().seen.get_mut(key) {
                    observed.lease.checkpoint = Some(checkpoint.clone());
                }
                if checkpoint == Checkpoint::ShardEnd {
                    drop(_guard);
                    self.release(key, "handed back: the shard ended").await;
                    self.take_soon();
                }
            }
            Err(TableError::Conflict) => {
                LeaseMetrics::add(&self.metrics.checkpoints_fenced, 1);
                self.lose(key, "the table refused its checkpoint");
            }
            Err(error) => {
                tracing::warn!(lease = key, %error, "checkpoint not written yet; retrying");
                self.state()
                    .pending
                    .entry(key.to_string())
                    .or_insert((checkpoint, tenure));
            }
        }
    }
}

#[cfg(test)]
#[path = "keeper_tests.rs"]
mod tests;
