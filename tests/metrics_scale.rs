//! `/metrics`, `/shards` and `/history` at 10,000 shards (issue 14): the default scrape
//! stays under 1 MB and still names the shards that matter (the stuck ones, then the
//! highest iterator ages), paging through `/shards` returns every shard exactly once, and
//! the dashboard's page of history costs its shards only. Pure rendering
//! from snapshots, as the handlers do it, so no daemon is needed; the sizes and times are
//! printed (`--nocapture`) for docs/performance.md, only the sizes are asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use esm_sim::admin::history::IteratorAgeHistory;
use esm_sim::admin::metrics::{render, MappingShards};
use esm_sim::admin::shard_page::{select_shards, shard_page, ShardQuery};
use esm_sim::config::mapping::ShardSeries;
use esm_sim::engine::status::{MappingStatus, ShardSnapshot, ShardState};
use esm_sim::model::{ShardId, ShardInfo};

fn snapshot(id: &str) -> ShardSnapshot {
    let info = ShardInfo {
        shard_id: ShardId(id.into()),
        parent_shard_ids: Vec::new(),
    };
    MappingStatus::default().shard(&info).snapshot()
}

fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .collect()
}

/// 10,000 shards of which 7 are stuck with low ages and the rest have higher ages.
fn ten_thousand_shards() -> Vec<ShardSnapshot> {
    (0..10_000)
        .map(|i| {
            let mut s = snapshot(&format!("shardId-{i:012}"));
            s.state = ShardState::Polling;
            s.running_since_ms = Some(0);
            s.last_advance_ms = Some(0);
            s.iterator_age_ms = Some(1_000 + i64::from(i));
            s.records_polled = 1_000 + u64::from(i as u32);
            s.records_invoked = 1_000;
            s.invocations = 10;
            s.invoke_latency.record(3.0);
            if i % 1_500 == 7 {
                s.records_waiting = 5;
                s.iterator_age_ms = Some(1);
            }
            s
        })
        .collect()
}

fn shards_with_series(text: &str) -> BTreeSet<&str> {
    series(text, "esm_shard_stuck")
        .iter()
        .filter_map(|l| l.split("shard=\"").nth(1)?.split('"').next())
        .collect()
}

#[test]
fn ten_thousand_shards_scrape_under_a_megabyte_with_the_stuck_and_oldest_shards() {
    let shards = ten_thousand_shards();
    let stuck: Vec<String> = (0..10_000)
        .filter(|i| i % 1_500 == 7)
        .map(|i| format!("shardId-{i:012}"))
        .collect();
    assert_eq!(stuck.len(), 7);
    let mapping = [MappingShards {
        name: "orders",
        enabled: true,
        shards: &shards,
    }];
    let now_ms = 120_000;
    let started = Instant::now();
    let text = render(&mapping, now_ms, 60_000, ShardSeries::Top(20));
    let top = started.elapsed();
    let started = Instant::now();
    let all = render(&mapping, now_ms, 60_000, ShardSeries::All);
    let every = started.elapsed();
    let none = render(&mapping, now_ms, 60_000, ShardSeries::None);
    eprintln!(
        "10,000 shards: top 20 {} bytes in {top:?}; all {} bytes in {every:?}; none {} bytes",
        text.len(),
        all.len(),
        none.len()
    );
    assert!(!none.contains("shard=\""));
    assert!(text.len() < 1_000_000, "{} bytes", text.len());
    // The 7 stuck shards, then the 13 highest ages (the last shards).
    let chosen = shards_with_series(&text);
    let mut wanted: Vec<String> = stuck.clone();
    wanted.extend(
        (0..10_000)
            .rev()
            .filter(|i| i % 1_500 != 7)
            .take(13)
            .map(|i| format!("shardId-{i:012}")),
    );
    assert_eq!(
        chosen,
        wanted.iter().map(String::as_str).collect(),
        "stuck first, then the oldest"
    );
    for id in &stuck {
        let line = format!("esm_shard_stuck{{mapping=\"orders\",shard=\"{id}\"}} 1");
        assert!(text.lines().any(|l| l == line), "{line}");
    }
    assert!(text.contains(
        "# esm-sim: mapping \"orders\": per-shard series for 20 of 10000 shards, 9980 left out"
    ));
    assert!(text.contains("esm_mapping_shards_left_out{mapping=\"orders\"} 9980\n"));
    assert!(text.contains("esm_mapping_shards_stuck{mapping=\"orders\"} 7\n"));
    let polled: u64 = (0..10_000u64).map(|i| 1_000 + i).sum();
    assert!(text.contains(&format!(
        "esm_mapping_polled_event_count_total{{mapping=\"orders\"}} {polled}\n"
    )));
    // "all" keeps every shard's series (the old scrape's size, for those who ask).
    assert_eq!(shards_with_series(&all).len(), 10_000);
    assert!(!all.contains("# esm-sim:"));
}

#[test]
fn paging_through_ten_thousand_shards_returns_each_once_and_a_page_costs_only_its_shards() {
    let shards = ten_thousand_shards();
    let mappings = vec![("orders", shards)];
    let mut query = ShardQuery::parse(&BTreeMap::from([("limit".to_string(), "500".to_string())]))
        .expect("query");
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    let started = Instant::now();
    loop {
        let page = shard_page(&mappings, &query, 120_000, 60_000);
        pages += 1;
        assert_eq!(page.total, 10_000);
        for s in &page.shards {
            let id = s["shard_id"].as_str().expect("shard_id").to_string();
            assert!(seen.insert(id.clone()), "{id} twice");
        }
        let Some(next) = page.next else { break };
        query = ShardQuery::parse(&BTreeMap::from([
            ("limit".to_string(), "500".to_string()),
            ("after".to_string(), next),
        ]))
        .expect("next parses");
    }
    let paged = started.elapsed();
    let started = Instant::now();
    let whole = shard_page(&mappings, &ShardQuery::default(), 120_000, 60_000);
    let body = serde_json::to_string(&whole.shards).expect("JSON");
    eprintln!(
        "/shards at 10,000 shards: 20 pages of 500 in {paged:?}; unpaged {} bytes in {:?}",
        body.len(),
        started.elapsed()
    );
    assert_eq!(pages, 20);
    assert_eq!(seen.len(), 10_000);
    let stuck = ShardQuery::parse(&BTreeMap::from([("stuck".to_string(), "true".to_string())]))
        .expect("query");
    assert_eq!(
        shard_page(&mappings, &stuck, 120_000, 60_000).shards.len(),
        7
    );
}

#[test]
fn a_page_of_history_at_ten_thousand_shards_holds_its_shards_series_only() {
    let shards = ten_thousand_shards();
    // Ten minutes sampled every 5 s, as the admin server keeps it.
    let mut history = IteratorAgeHistory::new(600_000, 5_000);
    for t in (0..=600_000).step_by(5_000) {
        history.record(
            t,
            shards
                .iter()
                .map(|s| ("orders".to_string(), s.shard_id.clone(), Some(t))),
        );
    }
    let mappings = vec![("orders", shards)];
    let started = Instant::now();
    let whole = history.to_json().to_string();
    let whole_took = started.elapsed();
    let query = ShardQuery::parse(&BTreeMap::from([("limit".to_string(), "200".to_string())]))
        .expect("query");
    let started = Instant::now();
    let selection = select_shards(&mappings, &query, 600_000, 60_000);
    let page = history
        .to_json_of(
            selection
                .chosen
                .iter()
                .map(|(m, s)| (*m, s.shard_id.as_str())),
        )
        .to_string();
    eprintln!(
        "/history at 10,000 shards, 121 points each: all {} bytes in {whole_took:?}; a page of 200 {} bytes in {:?}",
        whole.len(),
        page.len(),
        started.elapsed()
    );
    let series: serde_json::Value = serde_json::from_str(&page).expect("JSON");
    let ids: Vec<&str> = series["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["shard_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 200);
    assert_eq!(ids.first(), Some(&"shardId-000000000000"));
    assert_eq!(ids.last(), Some(&"shardId-000000000199"));
    assert!(
        page.len() * 40 < whole.len(),
        "{} vs {}",
        page.len(),
        whole.len()
    );
}

#[test]
fn the_metrics_handlers_copy_of_ten_thousand_shards_is_timed_and_renders_like_the_snapshots() {
    // What the handler does before rendering: every shard's snapshot copied out.
    let status = MappingStatus::default();
    for i in 0..10_000 {
        let info = ShardInfo {
            shard_id: ShardId(format!("shardId-{i:012}")),
            parent_shard_ids: Vec::new(),
        };
        status.shard(&info).update().records_polled = i;
    }
    let started = Instant::now();
    let shards = status.snapshots();
    let copied = started.elapsed();
    let started = Instant::now();
    let text = render(
        &[MappingShards {
            name: "orders",
            enabled: true,
            shards: &shards,
        }],
        0,
        60_000,
        ShardSeries::Top(20),
    );
    eprintln!(
        "/metrics handler at 10,000 shards: snapshots copied in {copied:?}, rendered in {:?}",
        started.elapsed()
    );
    let polled: u64 = (0..10_000).sum();
    assert!(text.contains(&format!(
        "esm_mapping_polled_event_count_total{{mapping=\"orders\"}} {polled}\n"
    )));
    assert_eq!(series(&text, "esm_shard_stuck").len(), 20);
}
