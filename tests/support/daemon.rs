//! The daemon run inside the test's own process: `esm_sim::daemon::run_until` on a tokio
//! task, stopped through a oneshot channel, and the polling wait a test uses while it runs.
//!
//! One harness for every test binary, so each stops the daemon the same way (cleanly,
//! within 20 s) and a start-up error reads the same everywhere.

use std::path::Path;
use std::time::{Duration, Instant};

use esm_sim::function::tap::Observer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A daemon running on a task of this process until `stop`.
pub struct Daemon {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Parses `config_text` (relative paths from `dir`) and starts the daemon on it, with
    /// `tap` watching every invocation. An invalid config fails the test.
    pub fn start(config_text: &str, dir: &Path, tap: Option<Observer>) -> Daemon {
        let config = esm_sim::config::parse(config_text, dir)
            .unwrap_or_else(|e| panic!("invalid test config:\n{e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            esm_sim::daemon::run_until(&config, tap, async {
                let _ = stopped.await;
            })
            .await
        });
        Daemon { stop, task }
    }

    /// Whether the daemon has ended already (it should not, before `stop`).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the daemon to stop; fails the test unless it ends cleanly within 20 s.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(20), self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the daemon did not stop cleanly within 20 s: {other:?}"),
        }
    }
}

/// Waits until `done` holds, failing the test after `seconds`.
pub async fn wait_for(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The error the daemon stops with while starting on `config_text` (within 30 s); fails
/// the test if it starts instead.
pub async fn start_error(config_text: &str, dir: &Path) -> String {
    let config = esm_sim::config::parse(config_text, dir).expect("config");
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        esm_sim::daemon::run_until(&config, None, std::future::pending()),
    )
    .await;
    match result {
        Ok(Err(error)) => format!("{error:#}"),
        other => panic!("expected an error at start, got {other:?}"),
    }
}
