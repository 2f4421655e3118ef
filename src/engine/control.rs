//! Operator controls of one shard: pause, resume, skip the blocking batch, rewind.
//!
//! The admin API calls these on a shard's `ShardStatus`; the shard task and its lanes act
//! on them. Pause is a flag the task watches (it holds for a shard that is not running
//! yet, and survives the task restarting after a rewind); skip and rewind are requests
//! the running task answers, so the caller learns whether they took effect and sees the
//! state that followed. A request to a shard that is not running is refused with a
//! message that says why, never queued for later.
//!
//! Requests wait in an inbox and are announced through the same watch as the pause flag
//! (a count of requests sent). A channel per shard cost 1.5 KB of memory whether or not an
//! operator ever used it, and polling it on every pass of the task's loop was 5% of a
//! 10,000-shard simulation. Lanes watch the value through `PauseWatch`, which wakes only
//! when the flag itself changes. The task does not wait on the watch: registering a waiter
//! on it and reading it under its lock on every pass touched several cache lines of every
//! shard, cold at 10,000 shards (a tenth of that simulation's cache misses). Every change
//! also counts up `changes` and wakes the task through one `AtomicWaker`; the task reads the
//! watch only when the count moved.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::sync::{oneshot, watch};

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

/// What a shard's task and lanes watch: the operator's pause flag, and how many requests
/// were sent (a change wakes the task, which takes them from its `Inbox`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    pub paused: bool,
    pub requests_sent: u64,
}

/// Requests waiting for the running task, and which task that is (0: none is).
#[derive(Default)]
struct Waiting {
    task: u64,
    tasks_attached: u64,
    requests: VecDeque<Request>,
}

pub struct ShardControl {
    watched: watch::Sender<Controls>,
    waiting: Arc<Mutex<Waiting>>,
    /// How many times `watched` changed; counted after each change.
    changes: AtomicU64,
    /// The running task, woken on every change.
    task: AtomicWaker,
}

impl Default for ShardControl {
    fn default() -> Self {
        ShardControl {
            watched: watch::Sender::new(Controls::default()),
            waiting: Arc::default(),
            changes: AtomicU64::new(0),
            task: AtomicWaker::new(),
        }
    }
}

/// A running task's end of its shard's requests. Dropping it (the task ends) refuses the
/// requests still waiting: their callers learn the shard is not running.
pub struct Inbox {
    waiting: Arc<Mutex<Waiting>>,
    task: u64,
}

impl Inbox {
    /// The requests sent since the last call, oldest first.
    pub fn take(&self) -> VecDeque<Request> {
        let mut waiting = lock(&self.waiting);
        if waiting.task == self.task {
            std::mem::take(&mut waiting.requests)
        } else {
            VecDeque::new()
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut waiting = lock(&self.waiting);
        if waiting.task == self.task {
            waiting.task = 0;
            waiting.requests.clear();
        }
    }
}

fn lock(waiting: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(|p| p.into_inner())
}

/// A lane's view of the pause flag: `changed` wakes only when the flag differs from what
/// the lane last saw, not on every request sent to the task. The flag is read from the
/// watch only when the control's change count moved (every attempt asks; see the module
/// comment for why the watch is not read each time).
pub struct PauseWatch {
    watched: watch::Receiver<Controls>,
    seen: bool,
    /// The control's change count when the flag was last read (`u64::MAX`: never).
    changes_seen: u64,
}

impl PauseWatch {
    /// Whether the shard (whose control is `control`) is paused now, and that is what
    /// `changed` compares against.
    pub fn borrow_and_update(&mut self, control: &ShardControl) -> bool {
        let changes = control.changes();
        if changes != self.changes_seen {
            self.changes_seen = changes;
            self.seen = self.watched.borrow_and_update().paused;
        }
        self.seen
    }

    /// Resolves once the flag differs from the one last seen; Err if the control is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        loop {
            self.watched.changed().await?;
            let now = self.watched.borrow_and_update().paused;
            if now != self.seen {
                self.seen = now;
                return Ok(());
            }
        }
    }
}

impl ShardControl {
    pub fn set_paused(&self, paused: bool) {
        self.change(|c| c.paused = paused);
    }

    pub fn is_paused(&self) -> bool {
        self.watched.borrow().paused
    }

    /// Changes the controls, then counts the change and wakes the task (in that order, so
    /// a task that sees the new count reads the new controls).
    fn change(&self, modify: impl FnOnce(&mut Controls)) {
        self.watched.send_modify(modify);
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.task.wake();
    }

    /// For the shard task: how many changes there were so far. Read it before `controls`.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// For the shard task: the pause flag and the count of requests sent.
    pub fn controls(&self) -> Controls {
        *self.watched.borrow()
    }

    /// For the shard task: ready with the count once it is no longer `seen`; until then the
    /// task is woken by the next change.
    pub fn poll_change(&self, cx: &mut Context<'_>, seen: u64) -> Poll<u64> {
        let changes = self.changes();
        if changes != seen {
            return Poll::Ready(changes);
        }
        self.task.register(cx.waker());
        match self.changes() {
            changes if changes != seen => Poll::Ready(changes),
            _ => Poll::Pending,
        }
    }

    /// For the lanes: changes of the pause flag.
    pub fn watch_paused(&self) -> PauseWatch {
        let changes_seen = self.changes();
        let mut watched = self.watched.subscribe();
        let seen = watched.borrow_and_update().paused;
        PauseWatch {
            watched,
            seen,
            changes_seen,
        }
    }

    /// For a starting shard task: where its requests arrive from now on (a task that
    /// attached before it no longer gets any).
    pub fn attach(&self) -> Inbox {
        let mut waiting = lock(&self.waiting);
        waiting.tasks_attached += 1;
        waiting.task = waiting.tasks_attached;
        waiting.requests.clear();
        Inbox {
            waiting: self.waiting.clone(),
            task: waiting.task,
        }
    }

    /// Sends a request to the running task and waits for its answer.
    pub async fn request(&self, what: ShardRequest, not_running: &str) -> Result<(), ControlError> {
        let (reply, answer) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            if waiting.task == 0 {
                return Err(ControlError::Conflict(not_running.to_string()));
            }
            waiting.requests.push_back(Request { what, reply });
        }
        self.change(|c| c.requests_sent += 1);
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
        let control = Arc::new(ShardControl::default());
        let inbox = control.attach();
        let watched = control.clone();
        let seen = control.changes();
        let task = tokio::spawn(async move {
            std::future::poll_fn(|cx| watched.poll_change(cx, seen)).await;
            assert_eq!(watched.controls().requests_sent, 1);
            let mut requests = inbox.take();
            assert_eq!(requests.len(), 1);
            let request = requests.pop_front().expect("a request");
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

    #[tokio::test]
    async fn a_request_to_a_task_that_ended_is_refused_and_a_new_task_gets_the_next_ones() {
        let control = ShardControl::default();
        let first = control.attach();
        let second = control.attach();
        // The first task ending does not detach the one that replaced it.
        drop(first);
        let asking = control.request(ShardRequest::Skip, "not running");
        let answering = async {
            tokio::task::yield_now().await;
            let mut requests = second.take();
            let request = requests.pop_front().expect("the second task gets it");
            let _ = request.reply.send(Ok(()));
        };
        let (result, ()) = tokio::join!(asking, answering);
        assert_eq!(result, Ok(()));
        drop(second);
        assert_eq!(
            control.request(ShardRequest::Skip, "not running").await,
            Err(ControlError::Conflict("not running".into()))
        );
    }

    #[tokio::test]
    async fn requests_waiting_when_the_task_ends_are_refused() {
        let control = ShardControl::default();
        let inbox = control.attach();
        let asking = control.request(ShardRequest::Skip, "not running");
        let ending = async {
            tokio::task::yield_now().await;
            drop(inbox);
        };
        let (result, ()) = tokio::join!(asking, ending);
        assert_eq!(result, Err(ControlError::Conflict("not running".into())));
    }

    #[tokio::test]
    async fn a_lane_wakes_on_a_pause_change_and_not_on_a_request() {
        let control = ShardControl::default();
        let _inbox = control.attach();
        let mut lane = control.watch_paused();
        assert!(!lane.borrow_and_update(&control));
        control.change(|c| c.requests_sent += 1);
        let woke = tokio::time::timeout(Duration::from_millis(20), lane.changed()).await;
        assert!(woke.is_err(), "a request must not wake a lane");
        control.set_paused(true);
        lane.changed().await.expect("the pause wakes it");
        assert!(lane.borrow_and_update(&control));
    }

    #[tokio::test]
    async fn the_task_is_woken_by_every_change_made_after_the_count_it_saw() {
        let control = Arc::new(ShardControl::default());
        let seen = control.changes();
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { std::future::poll_fn(|cx| control.poll_change(cx, seen)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "nothing changed yet");
        control.set_paused(true);
        let changes = waiting.await.expect("woken");
        assert_eq!(changes, seen + 1);
        assert!(control.controls().paused);
        // A change the task has not seen yet is ready at once, without a wake.
        control.set_paused(false);
        let ready = std::future::poll_fn(|cx| Poll::Ready(control.poll_change(cx, changes)));
        assert_eq!(ready.await, Poll::Ready(changes + 1));
    }

    #[test]
    fn pause_is_a_flag_the_watchers_see() {
        let control = ShardControl::default();
        let mut watcher = control.watch_paused();
        control.set_paused(true);
        assert!(watcher.borrow_and_update(&control));
        assert!(control.is_paused());
        control.set_paused(false);
        assert!(!watcher.borrow_and_update(&control));
    }
}
