//! The dashboard in a real browser: a running `esm-sim run` daemon with a poison record in
//! one shard of four, its page (`GET /`) loaded by headless Chromium, and the DOM and a
//! screenshot checked; then the page with `?limit=2`, to see it ask for a page and keep
//! the stuck shard first. Chromium is Debian's (`scripts/test.sh` installs it when missing);
//! without it this test fails, it never skips.
//!
//! The daemon is the real binary, found through the `admin.addr` file it writes, so the
//! page is checked exactly as an operator opens it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use esm_sim::admin::client::AdminClient;
use serde_json::Value;

/// One stream of 4 shards, 60 records of which the 50th is poison; the function fails on
/// it forever (MaximumRetryAttempts -1), one record a batch so the blocking range is the
/// poison record alone.
const CONFIG: &str = r#"
state_dir = "state"

[admin]
listen = "127.0.0.1:0"
stuck_after_seconds = 5

[[streams]]
name = "orders"
kind = "kinesis"
shards = 4

[[streams.producers]]
rate_per_second = 50.0
records = 60
poison_every = 50

[[functions]]
name = "fails-on-poison"

[[functions.rules]]
when_data_contains = "\"poison\":true"
action = "error"

[[mappings]]
name = "orders"
event_source_arn = "orders"
function_name = "fails-on-poison"
starting_position = "TRIM_HORIZON"
batch_size = 1
maximum_retry_attempts = -1
"#;

/// The daemon, killed when the test ends however it ends.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let config = dir.join("config.toml");
        std::fs::write(&config, CONFIG).expect("write the config");
        let log = dir.join("daemon.log");
        let stderr = std::fs::File::create(&log).expect("create the daemon log");
        let child = Command::cargo_bin("esm-sim")
            .expect("the esm-sim binary")
            .arg("run")
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start esm-sim run");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin URL from `<state_dir>/admin.addr`, once the daemon has written it.
    fn admin_url(&mut self, state_dir: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(state_dir.join("admin.addr")) {
                if !text.trim().is_empty() {
                    return text.trim().to_string();
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("esm-sim run exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no admin.addr after 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `GET path` on the admin API at `url`.
fn admin_get(url: &str, path: &str) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = AdminClient::new(url, None)?;
    runtime.block_on(client.get(path))
}

/// Polls `GET /shards?stuck=true` until it lists a shard; returns that answer.
fn wait_for_stuck(daemon: &Daemon, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = admin_get(url, "/shards?stuck=true");
        if let Ok(answer) = &answer {
            if answer["shards"].as_array().is_some_and(|s| !s.is_empty()) {
                return answer.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no stuck shard after 60 s (last answer {answer:?}):\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `GET /history?stuck=true` until the stuck shard `shard_id` has a sampled
/// iterator age (the server samples every 5 s), so the page can chart it.
fn wait_for_stuck_history(daemon: &Daemon, url: &str, shard_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = admin_get(url, "/history?stuck=true&limit=200");
        let charted = answer.as_ref().is_ok_and(|h| {
            h["series"].as_array().into_iter().flatten().any(|s| {
                s["shard_id"] == shard_id
                    && s["points"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|point| point[1].is_i64()))
            })
        });
        if charted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no iterator age of {shard_id} in the stuck page's history after 30 s (last answer {answer:?}):\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether a row's iterator-age chart has points (its last one is drawn as a dot).
fn charted(row: &str) -> bool {
    row.contains("class=\"dot\"")
}

/// The dashboard with `?limit=2`: the first page of 2 shards of the API, with the stuck
/// shard (`stuck_key`) first whether or not it is on that page, each row once, a count of
/// 2 of all and a Next button.
fn check_a_page_of_two(profile: &Path, url: &str, stuck_key: &str) {
    let first = admin_get(url, "/shards?limit=2").expect("GET /shards?limit=2");
    let total = first["total"].as_u64().expect("total");
    let mut expected: BTreeSet<String> = first["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().unwrap_or_default().to_string();
            format!("{}/{}", field("mapping"), field("shard_id"))
        })
        .collect();
    expected.insert(stuck_key.to_string());
    let dump = chromium(
        profile,
        &[
            "--dump-dom",
            "--virtual-time-budget=5000",
            &format!("{url}/?limit=2"),
        ],
    );
    let dom = String::from_utf8_lossy(&dump.stdout);
    let rows = shard_rows(&dom);
    let keys: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(keys, expected, "the stuck shard and the first page:\n{dom}");
    assert_eq!(rows.len(), keys.len(), "each shard once:\n{dom}");
    assert_eq!(rows[0].0, stuck_key, "the stuck shard first:\n{dom}");
    assert!(
        charted(&rows[0].2),
        "the stuck shard's chart, from the stuck page's history, off the first page or not:\n{dom}"
    );
    assert!(
        dom.contains("shards?limit=2,") && dom.contains(&format!("showing 2 of {total} shards")),
        "a page of 2 of {total}:\n{dom}"
    );
    let next = dom
        .split("<button id=\"next\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("a Next button");
    assert!(!next.contains("disabled"), "Next is enabled: {next}");
}

/// Headless Chromium with the flags this machine needs, a fresh profile, and a deadline.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromium ({e}): scripts/test.sh installs it \
                 (Debian: apt-get install chromium)"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium's output");
    assert!(
        output.status.success(),
        "chromium {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every `<tr data-shard=...>` of the dumped DOM: (its `data-shard`, whether its class
/// list holds `stuck`, its inner HTML).
fn shard_rows(dom: &str) -> Vec<(String, bool, String)> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_string())
    };
    dom.split("<tr ")
        .skip(1)
        .filter_map(|row| {
            let (tag, rest) = row.split_once('>')?;
            let shard = attribute(&format!(" {tag}"), "data-shard")?;
            let class = attribute(&format!(" {tag}"), "class").unwrap_or_default();
            let inner = rest.split("</tr>").next().unwrap_or_default();
            let stuck = class.split_whitespace().any(|c| c == "stuck");
            Some((shard, stuck, inner.to_string()))
        })
        .collect()
}

#[test]
fn the_dashboard_marks_the_one_stuck_shard_with_its_poison_record_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(dir.path());
    let url = daemon.admin_url(&dir.path().join("state"));

    let answer = wait_for_stuck(&daemon, &url);
    let shards = answer["shards"].as_array().cloned().unwrap_or_default();
    assert_eq!(shards.len(), 1, "exactly one stuck shard: {answer}");
    let stuck = &shards[0];
    let shard_id = stuck["shard_id"].as_str().expect("shard_id").to_string();
    let poison = stuck["stuck"]["first_sequence_number"]
        .as_str()
        .expect("the blocking range")
        .to_string();
    // The function names the first poison record it met: the blocking record is it.
    let reason = stuck["stuck"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("poison record {poison}")),
        "the reason names the poison record {poison}: {stuck}"
    );

    wait_for_stuck_history(&daemon, &url, &shard_id);

    let profile = tempfile::tempdir().expect("chromium profile");
    let page = format!("{url}/");
    let dump = chromium(
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=5000", &page],
    );
    let dom = String::from_utf8_lossy(&dump.stdout);
    let rows = shard_rows(&dom);
    assert_eq!(rows.len(), 4, "one row per shard of 4:\n{dom}");
    let stuck_rows: Vec<_> = rows.iter().filter(|(_, stuck, _)| *stuck).collect();
    assert_eq!(stuck_rows.len(), 1, "exactly one stuck row:\n{dom}");
    let (key, _, inner) = stuck_rows[0];
    assert_eq!(*key, format!("orders/{shard_id}"));
    assert!(inner.contains("STUCK"), "a visible STUCK badge: {inner}");
    assert!(
        charted(inner),
        "the stuck shard's iterator age is charted: {inner}"
    );
    assert!(
        inner.contains(&format!("<div class=\"seq\">{poison}</div>")),
        "the blocking range shows the poison record {poison}: {inner}"
    );
    assert_eq!(
        rows.first().map(|r| r.1),
        Some(true),
        "the stuck row is sorted first"
    );
    // It asks for a page, not every shard, and says how many it shows.
    assert!(
        dom.contains("shards?limit=200"),
        "the page asks GET /shards for a page of 200:\n{dom}"
    );
    assert!(
        dom.contains("showing 4 of 4 shards"),
        "the page says how many shards it shows:\n{dom}"
    );

    check_a_page_of_two(profile.path(), &url, key);

    // Kept under target/tmp so it can be looked at after the run.
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,800",
            "--virtual-time-budget=5000",
            &page,
        ],
    );
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
    assert!(
        png.len() > 20_000,
        "a rendered page, not a blank one: {} bytes",
        png.len()
    );
    println!(
        "dashboard screenshot: {} ({} bytes)",
        screenshot.display(),
        png.len()
    );
}
