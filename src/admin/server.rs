//! The admin server's life: bind, say where, serve until shutdown, and sample iterator
//! ages for the dashboard's history.
//!
//! The bound address (port 0 picks a free one) is logged and written to
//! `<state_dir>/admin.addr` as a URL, which is where `esm-sim shards` and the tests find a
//! running daemon; the file is removed again on a clean stop.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::history::IteratorAgeHistory;
use super::routes::router;
use super::state::{AdminState, Mappings};
use crate::clock::Clock;
use crate::config::mapping::Admin;

/// The file under the state directory that holds the admin API's URL.
pub const ADDR_FILE: &str = "admin.addr";
/// How often the dashboard's history samples iterator ages, and how far back it keeps.
const SAMPLE_EVERY_MS: i64 = 5_000;
const HISTORY_WINDOW_MS: i64 = 600_000;

/// A running admin server.
pub struct AdminServer {
    /// Where the API answers, e.g. `http://127.0.0.1:9400`.
    url: String,
    addr_file: PathBuf,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds and starts serving; `None` when `[admin]` is disabled.
    pub async fn start(
        admin: &Admin,
        state_dir: &std::path::Path,
        mappings: Mappings,
        clock: Clock,
    ) -> anyhow::Result<Option<AdminServer>> {
        let Some(listen) = admin.listen else {
            tracing::info!("admin API disabled ([admin] enabled = false)");
            return Ok(None);
        };
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Err(error)
                if admin.listen_is_default && error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tracing::warn!(%listen, "the default admin address is taken (another esm-sim run?): using a free port; set [admin] listen to choose one");
                tokio::net::TcpListener::bind((listen.ip(), 0)).await
            }
            other => other,
        }
        .with_context(|| format!("cannot listen on [admin] listen = \"{listen}\""))?;
        let bound = listener.local_addr()?;
        // An unspecified address (0.0.0.0) is reached through loopback on this machine.
        let host = if bound.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        let url = format!("http://{host}");
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state_dir {}", state_dir.display()))?;
        let addr_file = state_dir.join(ADDR_FILE);
        std::fs::write(&addr_file, format!("{url}\n"))
            .with_context(|| format!("cannot write {}", addr_file.display()))?;
        tracing::info!(%url, addr_file = %addr_file.display(), token = admin.token.is_some(),
            "admin API listening (GET / for the dashboard, /shards, /metrics)");

        let history = Arc::new(Mutex::new(IteratorAgeHistory::new(
            HISTORY_WINDOW_MS,
            SAMPLE_EVERY_MS,
        )));
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample(
            mappings.clone(),
            clock,
            history.clone(),
            stop.clone(),
        ));
        let state = Arc::new(AdminState {
            mappings,
            clock,
            stuck_after_ms: admin.stuck_after_ms,
            shard_series: admin.shard_series,
            token: admin.token.clone(),
            history,
        });
        let shutdown = stop.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "admin API stopped");
            }
        });
        Ok(Some(AdminServer {
            url,
            addr_file,
            stop,
            tasks: vec![sampler, server],
        }))
    }

    /// Where the API answers, e.g. `http://127.0.0.1:9400`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving (requests being answered finish) and removes the address file.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "admin task failed");
            }
        }
        if let Err(error) = std::fs::remove_file(&self.addr_file) {
            tracing::warn!(%error, file = %self.addr_file.display(), "cannot remove the admin address file");
        }
    }
}

/// Every `SAMPLE_EVERY_MS`: every shard's iterator age into the history (a caught-up shard
/// has nothing waiting: age 0).
async fn sample(
    mappings: Mappings,
    clock: Clock,
    history: Arc<Mutex<IteratorAgeHistory>>,
    stop: CancellationToken,
) {
    loop {
        let samples: Vec<(String, String, Option<i64>)> = mappings
            .contexts()
            .iter()
            .flat_map(|ctx| {
                ctx.status.snapshots().into_iter().map(|s| {
                    let age = if s.caught_up {
                        Some(0)
                    } else {
                        s.iterator_age_ms
                    };
                    (ctx.mapping.name.clone(), s.shard_id, age)
                })
            })
            .collect();
        history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(clock.now_ms(), samples);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(SAMPLE_EVERY_MS as u64)) => {}
        }
    }
}
