//! The terminal commands on a running daemon: `shards`, `shard`, `pause`, `resume`,
//! `skip`, `rewind`. Their flags, where they find the daemon, and what they print; the
//! HTTP is `client`'s, the layout `table`'s.
//!
//! Where the daemon is: `--admin URL`, else `ESM_SIM_ADMIN_URL`, else the URL the daemon
//! wrote to `<state_dir>/admin.addr` (state_dir of `--config` or `./config.toml`), else
//! the config's `[admin] listen`, else `http://127.0.0.1:9400`. The token: `--token`, else
//! `ESM_SIM_ADMIN_TOKEN`, else the config's `[admin] token`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::{segment, AdminClient};
use super::server::ADDR_FILE;
use super::table::{shard_detail, shards_table};
use crate::config::{self, Config};

/// The default admin URL, `[admin] listen`'s default.
const DEFAULT_URL: &str = "http://127.0.0.1:9400";

/// Where the daemon's admin API is.
#[derive(Debug, clap::Args)]
pub struct AdminTarget {
    /// The admin API's URL (default: ESM_SIM_ADMIN_URL, else <state_dir>/admin.addr, else
    /// the config's [admin] listen, else http://127.0.0.1:9400).
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// Bearer token (default: ESM_SIM_ADMIN_TOKEN, else the config's [admin] token).
    #[arg(long)]
    token: Option<String>,
    /// The daemon's config, to find its state_dir and [admin] settings. Default: ./config.toml.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ShardsArgs {
    #[command(flatten)]
    target: AdminTarget,
    /// Only the stuck shards.
    #[arg(long)]
    stuck: bool,
    /// Redraw every SECONDS (default 2) until Ctrl-C.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    watch: Option<u64>,
    /// Only this mapping's shards.
    #[arg(long)]
    mapping: Option<String>,
    /// At most N shards (a page; the last line says how to get the next one).
    #[arg(long, value_name = "N", default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=crate::admin::shard_page::MAX_LIMIT as u64))]
    limit: u64,
    /// The shards after this one (`MAPPING/SHARD`, the cursor the previous page printed).
    #[arg(long, value_name = "MAPPING/SHARD")]
    after: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShardArgs {
    #[command(flatten)]
    target: AdminTarget,
    mapping: String,
    shard: String,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RewindArgs {
    #[command(flatten)]
    shard: ShardArgs,
    /// Resume at this record (it is delivered again).
    #[arg(
        long,
        value_name = "SEQ",
        required_unless_present = "timestamp",
        conflicts_with = "timestamp"
    )]
    sequence_number: Option<String>,
    /// Resume at the first record that arrived at or after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    timestamp: Option<String>,
}

/// The operator actions that take no arguments.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Pause,
    Resume,
    Skip,
}

impl ShardsArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let client = self.target.client()?;
        let mut path = format!("/shards?stuck={}&limit={}", self.stuck, self.limit);
        if let Some(mapping) = &self.mapping {
            path.push_str(&format!("&mapping={}", segment(mapping)));
        }
        if let Some(after) = &self.after {
            path.push_str(&format!("&after={}", segment(after)));
        }
        let render = |answer: &Value| {
            if self.json {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(answer).unwrap_or_default()
                )
            } else {
                shards_table(answer, terminal_width())
            }
        };
        runtime()?.block_on(async {
            let Some(every) = self.watch else {
                emit(&render(&client.get(&path).await?))?;
                return Ok(());
            };
            let every = Duration::from_secs(every.max(1));
            loop {
                let frame = match client.get(&path).await {
                    Ok(answer) => render(&answer),
                    Err(error) => format!("{error:#}\n"),
                };
                let now = crate::ops::show::rfc3339(chrono::Utc::now().timestamp_millis());
                // Clear the screen, cursor home, then the frame.
                let screen = format!(
                    "\x1b[2J\x1b[H{now}  every {} s, Ctrl-C to stop\n\n{frame}",
                    every.as_secs()
                );
                if !emit(&screen)? {
                    return Ok(());
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

impl ShardArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let path = self.path("");
        let client = self.target.client()?;
        let answer = runtime()?.block_on(client.get(&path))?;
        self.print(&answer)
    }

    fn path(&self, action: &str) -> String {
        format!(
            "/shards/{}/{}{action}",
            segment(&self.mapping),
            segment(&self.shard)
        )
    }

    fn print(&self, shard: &Value) -> anyhow::Result<()> {
        let text = if self.json {
            format!("{}\n", serde_json::to_string_pretty(shard)?)
        } else {
            shard_detail(shard, chrono::Utc::now().timestamp_millis())
        };
        emit(&text)?;
        Ok(())
    }

    /// `POST .../action` and the shard's new state.
    pub fn act(self, action: Action) -> anyhow::Result<()> {
        let name = match action {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Skip => "skip",
        };
        self.post(name, None)
    }

    fn post(&self, action: &str, body: Option<&Value>) -> anyhow::Result<()> {
        let client = self.target.client()?;
        let path = self.path(&format!("/{action}"));
        let answer = runtime()?.block_on(client.post(&path, body))?;
        self.print(&answer)
    }
}

impl RewindArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let body = match (&self.sequence_number, &self.timestamp) {
            (Some(seq), _) => json!({ "sequence_number": seq }),
            (None, Some(time)) => json!({ "timestamp": time }),
            (None, None) => anyhow::bail!("give --sequence-number or --timestamp"),
        };
        self.shard.post("rewind", Some(&body))
    }
}

impl AdminTarget {
    fn client(&self) -> anyhow::Result<AdminClient> {
        let config = self.config()?;
        let admin = config.as_ref().map(|c| &c.admin);
        let from_file = config.as_ref().and_then(|c| {
            std::fs::read_to_string(c.state_dir.join(ADDR_FILE))
                .ok()
                .map(|text| text.trim().to_string())
                .filter(|text| !text.is_empty())
        });
        let url = pick_url(
            self.admin.clone(),
            env("ESM_SIM_ADMIN_URL"),
            from_file,
            admin.and_then(|a| a.listen),
        );
        let token = self
            .token
            .clone()
            .or_else(|| env("ESM_SIM_ADMIN_TOKEN"))
            .or_else(|| admin.and_then(|a| a.token.clone()));
        AdminClient::new(&url, token)
    }

    /// The config named by `--config` (its errors are errors), else `./config.toml` when it
    /// exists and is valid.
    fn config(&self) -> anyhow::Result<Option<Config>> {
        match &self.config {
            Some(path) => config::load(Some(path))
                .map(|(config, _)| Some(config))
                .map_err(|e| anyhow::anyhow!("invalid config:\n{e}")),
            None if std::path::Path::new("config.toml").exists() => {
                Ok(config::load(None).ok().map(|(config, _)| config))
            }
            None => Ok(None),
        }
    }
}

/// The first of: the flag, the environment, the address file, the configured address
/// (unless port 0), the default.
fn pick_url(
    flag: Option<String>,
    env: Option<String>,
    from_file: Option<String>,
    listen: Option<SocketAddr>,
) -> String {
    flag.or(env)
        .or(from_file)
        .or_else(|| {
            listen.filter(|a| a.port() != 0).map(|a| {
                let ip = if a.ip().is_unspecified() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    a.ip()
                };
                format!("http://{}", SocketAddr::new(ip, a.port()))
            })
        })
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// Writes to stdout; false when the reader has gone (`| head`), which ends the output
/// quietly rather than as an error.
fn emit(text: &str) -> anyhow::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(anyhow::anyhow!("cannot write to stdout: {error}")),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn terminal_width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map_or(80, |(_rows, columns)| usize::from(columns).max(20))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_flag_then_the_environment_then_the_file_then_the_config() {
        let some = |s: &str| Some(s.to_string());
        let listen: Option<SocketAddr> = Some("0.0.0.0:9500".parse().unwrap());
        assert_eq!(
            pick_url(
                some("http://a:1"),
                some("http://b:2"),
                some("http://c:3"),
                listen
            ),
            "http://a:1"
        );
        assert_eq!(
            pick_url(None, some("http://b:2"), some("http://c:3"), listen),
            "http://b:2"
        );
        assert_eq!(
            pick_url(None, None, some("http://c:3"), listen),
            "http://c:3"
        );
        assert_eq!(pick_url(None, None, None, listen), "http://127.0.0.1:9500");
        assert_eq!(
            pick_url(None, None, None, Some("127.0.0.1:0".parse().unwrap())),
            DEFAULT_URL
        );
        assert_eq!(pick_url(None, None, None, None), DEFAULT_URL);
    }
}
