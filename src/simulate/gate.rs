//! How a simulated worker process is frozen or killed: every way it touches the world —
//! its stream source, its function, its lease table — goes through the worker's `Gate`,
//! which holds each call before it starts and again before its answer is handed back.
//!
//! A paused worker (SIGSTOP) therefore stands still as a whole: no read, no invoke, no
//! renew, take or checkpoint write; an invocation already running finishes in the
//! function, and its answer reaches the worker only after the resume, so its checkpoint
//! meets the fence with the late lease state, as a real process's would. A crashed worker
//! (kill -9) gets a gate that never opens again. The function gate also tells the
//! `Ledger` what reached the function and what came back, per record.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use super::ledger::Ledger;
use crate::checkpoint::Checkpoint;
use crate::clock::Clock;
use crate::coordination::lease::Lease;
use crate::coordination::table::{Holder, LeaseTable, TableError};
use crate::function::{Function, Invocation, InvokeResult};
use crate::model::{ShardId, ShardInfo, StreamKind};
use crate::source::{IteratorPosition, RecordsPage, SourceError, StreamSource};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Paused,
    Dead,
}

/// Open, paused, or dead for good.
pub struct Gate {
    state: watch::Sender<State>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: watch::Sender::new(State::Open),
        }
    }
}

impl Gate {
    /// Returns once the gate is open (never, once dead).
    pub async fn pass(&self) {
        let mut rx = self.state.subscribe();
        loop {
            if *rx.borrow_and_update() == State::Open {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn pause(&self) {
        self.set(State::Paused);
    }

    pub fn resume(&self) {
        self.set(State::Open);
    }

    pub fn kill(&self) {
        self.set(State::Dead);
    }

    fn set(&self, state: State) {
        self.state.send_if_modified(|s| {
            // Nothing brings a dead worker back: a restart is a new worker with a new gate.
            let changed = *s != State::Dead && *s != state;
            if changed {
                *s = state;
            }
            changed
        });
    }
}

/// Runs `call` between two passes of `gate`.
async fn gated<T>(gate: &Gate, call: impl std::future::Future<Output = T>) -> T {
    gate.pass().await;
    let answer = call.await;
    gate.pass().await;
    answer
}

pub struct GatedSource {
    pub inner: Arc<dyn StreamSource>,
    pub gate: Arc<Gate>,
}

#[async_trait]
impl StreamSource for GatedSource {
    fn stream_arn(&self) -> &str {
        self.inner.stream_arn()
    }

    fn kind(&self) -> StreamKind {
        self.inner.kind()
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        gated(&self.gate, self.inner.list_shards()).await
    }

    async fn shard_iterator(
        &self,
        shard: &ShardId,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        gated(&self.gate, self.inner.shard_iterator(shard, position)).await
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        gated(&self.gate, self.inner.get_records(iterator, limit)).await
    }
}

/// The function as one worker's mapping reaches it.
pub struct GatedFunction {
    pub inner: Arc<dyn Function>,
    pub gate: Arc<Gate>,
    pub ledger: Arc<Ledger>,
    pub mapping: String,
    pub worker: usize,
    pub clock: Clock,
}

#[async_trait]
impl Function for GatedFunction {
    fn function_arn(&self) -> &str {
        self.inner.function_arn()
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        self.gate.pass().await;
        let (shard, records) = (invocation.shard_id, invocation.records);
        let now = self.clock.now_ms();
        let ids = self
            .ledger
            .delivered(&self.mapping, shard, records, self.worker, now);
        let result = self.inner.invoke(invocation).await;
        self.gate.pass().await;
        self.ledger.returned(&ids, &result, self.clock.now_ms());
        result
    }
}

pub struct GatedTable {
    pub inner: Arc<dyn LeaseTable>,
    pub gate: Arc<Gate>,
}

#[async_trait]
impl LeaseTable for GatedTable {
    async fn prepare(&self) -> Result<(), TableError> {
        gated(&self.gate, self.inner.prepare()).await
    }

    async fn list(&self) -> Result<Vec<Lease>, TableError> {
        gated(&self.gate, self.inner.list()).await
    }

    async fn create(&self, lease: &Lease) -> Result<bool, TableError> {
        gated(&self.gate, self.inner.create(lease)).await
    }

    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError> {
        gated(&self.gate, self.inner.take(key, counter, owner, admin_url)).await
    }

    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError> {
        gated(&self.gate, self.inner.renew(key, holder)).await
    }

    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError> {
        gated(&self.gate, self.inner.checkpoint(key, holder, checkpoint)).await
    }

    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError> {
        gated(&self.gate, self.inner.release(key, holder)).await
    }

    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError> {
        gated(&self.gate, self.inner.set_paused(key, paused)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        gated(&self.gate, self.inner.get(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_gate_holds_until_resumed_and_a_dead_one_for_good() {
        let gate = Arc::new(Gate::default());
        gate.pass().await;
        gate.pause();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass().await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(!waiting.is_finished());
        gate.resume();
        waiting.await.unwrap();
        gate.kill();
        gate.resume();
        let dead = tokio::time::timeout(std::time::Duration::from_secs(60), gate.pass()).await;
        assert!(dead.is_err(), "a dead gate opened");
    }
}
