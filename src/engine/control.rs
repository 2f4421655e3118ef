//! Operator controls of one shard: pause, resume, skip the blocking batch, rewind.
//!
//! The admin API calls these on a shard's `ShardStatus`; the shard task and its lanes act
//! on them. Pause is a flag the task watches (it holds for a shard that is not running
//! yet, and survives the task restarting after a rewind); skip and rewind are requests
//! the running task answers, so the caller learns whether they took effect and sees the
//! state that followed. A request to a shard that is not running is refused with a
//! message that says why, never queued for later.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::model::SequenceNumber;

/// Where a rewind puts the shard's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewindTo {
    /// Resume at this record (it is delivered again).
    Sequence(SequenceNumber),
    /// Resume at the first record that arrived at or after this time (epoch ms).
    TimestampMs(i64),
}

/// Why an action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The action does not fit the shard's state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

/// What the shard task is asked to do.
#[derive(Debug)]
pub enum ShardRequest {
    /// Discard the batch that blocks the shard (its failing records), with a failure
    /// record whose condition is `SkippedByOperator`, and go on.
    Skip,
    /// Move the position (only while paused): in-flight work is abandoned, the checkpoint
    /// is set to just before the target.
    Rewind(RewindTo),
}

/// A request and where its answer goes (`Err` holds why it was refused).
#[derive(Debug)]
pub struct Request {
    pub what: ShardRequest,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// How long a caller waits for the shard task to act on a request (a lane finishing an
/// in-flight invocation first can take up to the function's timeout).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ShardControl {
    paused: watch::Sender<bool>,
    requests: Mutex<Option<mpsc::UnboundedSender<Request>>>,
}

impl Default for ShardControl {
    fn default() -> Self {
        ShardControl {
            paused: watch::Sender::new(false),
            requests: Mutex::new(None),
        }
    }
}

impl ShardControl {
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// For the shard task and its lanes: changes of the pause flag.
    pub fn watch_paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    /// For a starting shard task: where its requests arrive from now on.
    pub fn attach(&self) -> mpsc::UnboundedReceiver<Request> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Sends a request to the running task and waits for its answer.
    pub async fn request(&self, what: ShardRequest, not_running: &str) -> Result<(), ControlError> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|tx| tx.send(Request { what, reply }).is_ok());
        if !sent {
            return Err(ControlError::Conflict(not_running.to_string()));
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(result)) => result.map_err(ControlError::Conflict),
            Ok(Err(_)) => Err(ControlError::Conflict(not_running.to_string())),
            Err(_) => Err(ControlError::Conflict(format!(
                "the shard did not act on the request within {} s; it may still do so",
                ANSWER_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_to_a_shard_without_a_task_is_refused_with_the_reason() {
        let control = ShardControl::default();
        let result = control
            .request(ShardRequest::Skip, "shard is waiting on its parents")
            .await;
        assert_eq!(
            result,
            Err(ControlError::Conflict(
                "shard is waiting on its parents".into()
            ))
        );
    }

    #[tokio::test]
    async fn the_task_answer_reaches_the_caller() {
        let control = ShardControl::default();
        let mut rx = control.attach();
        let task = tokio::spawn(async move {
            let request = rx.recv().await.expect("a request");
            assert!(matches!(request.what, ShardRequest::Skip));
            let _ = request.reply.send(Err("nothing to skip".into()));
        });
        let result = control.request(ShardRequest::Skip, "not running").await;
        assert_eq!(
            result,
            Err(ControlError::Conflict("nothing to skip".into()))
        );
        task.await.expect("task");
    }

    #[test]
    fn pause_is_a_flag_the_watchers_see() {
        let control = ShardControl::default();
        let watcher = control.watch_paused();
        control.set_paused(true);
        assert!(*watcher.borrow());
        assert!(control.is_paused());
        control.set_paused(false);
        assert!(!*watcher.borrow());
    }
}
