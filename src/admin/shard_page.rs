//! `GET /shards`' query and its pages: the filters (`stuck`, `mapping`) and the paging
//! (`limit`, `after`), so a client can walk 10,000 shards a page at a time. `GET /history`
//! takes the same query, so the dashboard asks for the series of the shards it shows.
//!
//! Pure: snapshots in, the page out, so paging is tested without a server. Shards are in
//! one total order, mapping name then shard id, and the cursor is the last shard a page
//! returned (`<mapping>/<shard>`, mapping names hold no `/`): a page is what comes after
//! it, so a shard appearing or a mapping leaving between two calls neither repeats nor
//! skips the others. Only the page's shards are turned into JSON.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::engine::status::ShardSnapshot;

/// Most shards in one page.
pub const MAX_LIMIT: usize = 10_000;

/// The query of `GET /shards`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShardQuery {
    pub stuck_only: bool,
    pub mapping: Option<String>,
    /// Shards in the page; `None`: all of them.
    pub limit: Option<usize>,
    /// The shards after this (mapping, shard).
    pub after: Option<(String, String)>,
}

const KEYS: [&str; 4] = ["stuck", "mapping", "limit", "after"];

impl ShardQuery {
    /// The query string's parameters, each checked; the error names the parameter, its
    /// value and what is allowed.
    pub fn parse(query: &BTreeMap<String, String>) -> Result<ShardQuery, String> {
        if let Some(key) = query.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown query parameter {key:?}: expected stuck, mapping, limit or after"
            ));
        }
        let stuck_only = match query.get("stuck").map(String::as_str) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") | Some("") => true,
            Some(other) => return Err(format!("stuck={other:?}: must be true or false")),
        };
        let limit = match query.get("limit") {
            None => None,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
                _ => return Err(format!("limit={text:?}: must be 1..={MAX_LIMIT}")),
            },
        };
        let after = match query.get("after") {
            None => None,
            Some(text) => match text.split_once('/') {
                Some((mapping, shard)) if !mapping.is_empty() && !shard.is_empty() => {
                    Some((mapping.to_string(), shard.to_string()))
                }
                _ => {
                    return Err(format!(
                    "after={text:?}: must be <mapping>/<shard>, the \"next\" of the previous page"
                ))
                }
            },
        };
        Ok(ShardQuery {
            stuck_only,
            mapping: query.get("mapping").cloned(),
            limit,
            after,
        })
    }
}

/// A shard as every route shows it: the mapping, every snapshot field, and `stuck`
/// (`null` or why and on what).
pub fn shard_json(
    mapping: &str,
    snapshot: &ShardSnapshot,
    now_ms: i64,
    stuck_after_ms: i64,
) -> Value {
    let mut object = Map::new();
    object.insert("mapping".into(), json!(mapping));
    if let Ok(Value::Object(fields)) = serde_json::to_value(snapshot) {
        object.extend(fields);
    }
    let stuck = snapshot.stuck(now_ms, stuck_after_ms);
    object.insert(
        "stuck".into(),
        serde_json::to_value(stuck).unwrap_or(Value::Null),
    );
    Value::Object(object)
}

/// One page of shards.
#[derive(Debug)]
pub struct Page {
    /// The page's shards as `shard_json` shows them.
    pub shards: Vec<Value>,
    /// Shards the filters match, on every page.
    pub total: usize,
    /// The cursor of the next page (`<mapping>/<shard>`), when there is one.
    pub next: Option<String>,
}

/// The shards `query` picks for one page (the same choice serves `GET /shards` and the
/// iterator-age series of `GET /history`).
#[derive(Debug)]
pub struct Selection<'a> {
    /// The page's shards, in order: (mapping, snapshot).
    pub chosen: Vec<(&'a str, &'a ShardSnapshot)>,
    /// Shards the filters match, on every page.
    pub total: usize,
    /// The cursor of the next page (`<mapping>/<shard>`), when there is one.
    pub next: Option<String>,
}

/// The shards of the page `query` asks for out of `mappings` (any order; their shards in
/// id order).
pub fn select_shards<'a>(
    mappings: &'a [(&'a str, Vec<ShardSnapshot>)],
    query: &ShardQuery,
    now_ms: i64,
    stuck_after_ms: i64,
) -> Selection<'a> {
    let mut order: Vec<&(&str, Vec<ShardSnapshot>)> = mappings
        .iter()
        .filter(|(name, _)| query.mapping.as_deref().is_none_or(|m| m == *name))
        .collect();
    order.sort_by_key(|(name, _)| *name);
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut chosen = Vec::new();
    let mut total = 0;
    let mut more = false;
    for (name, snapshots) in order {
        for s in snapshots {
            if query.stuck_only && s.stuck(now_ms, stuck_after_ms).is_none() {
                continue;
            }
            total += 1;
            let after_cursor = query
                .after
                .as_ref()
                .is_none_or(|(m, id)| (*name, s.shard_id.as_str()) > (m.as_str(), id.as_str()));
            if !after_cursor {
                continue;
            }
            if chosen.len() == limit {
                more = true;
                continue;
            }
            chosen.push((*name, s));
        }
    }
    let next = chosen
        .last()
        .filter(|_| more)
        .map(|(m, s)| format!("{m}/{}", s.shard_id));
    Selection {
        chosen,
        total,
        next,
    }
}

/// The page `query` asks for out of `mappings`, its shards as `shard_json` shows them.
pub fn shard_page(
    mappings: &[(&str, Vec<ShardSnapshot>)],
    query: &ShardQuery,
    now_ms: i64,
    stuck_after_ms: i64,
) -> Page {
    let selection = select_shards(mappings, query, now_ms, stuck_after_ms);
    Page {
        shards: selection
            .chosen
            .iter()
            .map(|(name, s)| shard_json(name, s, now_ms, stuck_after_ms))
            .collect(),
        total: selection.total,
        next: selection.next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::{MappingStatus, ShardState};
    use crate::model::{ShardId, ShardInfo};

    fn shards(n: usize, stuck_every: usize) -> Vec<ShardSnapshot> {
        (0..n)
            .map(|i| {
                let mut s = MappingStatus::default()
                    .shard(&ShardInfo {
                        shard_id: ShardId(format!("shardId-{i:012}")),
                        parent_shard_ids: Vec::new(),
                    })
                    .snapshot();
                s.state = ShardState::Polling;
                s.running_since_ms = Some(0);
                if i % stuck_every == 0 {
                    s.records_waiting = 1;
                }
                s
            })
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> Result<ShardQuery, String> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ShardQuery::parse(&map)
    }

    /// Every page of `query` (its `after` replaced by each `next`), as (mapping, shard).
    fn walk(
        mappings: &[(&str, Vec<ShardSnapshot>)],
        mut query: ShardQuery,
    ) -> (Vec<(String, String)>, usize) {
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = shard_page(mappings, &query, 100_000, 60_000);
            pages += 1;
            assert!(page.shards.len() <= query.limit.unwrap_or(usize::MAX));
            for s in &page.shards {
                let pair = (s["mapping"].as_str(), s["shard_id"].as_str());
                let (Some(m), Some(id)) = pair else {
                    panic!("no mapping or shard_id: {s}")
                };
                seen.push((m.to_string(), id.to_string()));
            }
            match page.next {
                Some(next) => {
                    query.after = ShardQuery::parse(&BTreeMap::from([("after".to_string(), next)]))
                        .expect("next parses")
                        .after
                }
                None => return (seen, pages),
            }
        }
    }

    #[test]
    fn paging_returns_every_shard_exactly_once_in_order() {
        let mappings = vec![("b", shards(2_500, 7)), ("a", shards(1_003, 7))];
        let (seen, pages) = walk(&mappings, query(&[("limit", "100")]).expect("query"));
        assert_eq!(seen.len(), 3_503);
        assert_eq!(pages, 36);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen, "in order, none twice");
        assert_eq!(seen[0], ("a".into(), "shardId-000000000000".into()));

        // Filtered: the stuck ones of one mapping, each once.
        let (stuck, _) = walk(
            &mappings,
            query(&[("limit", "33"), ("stuck", "true"), ("mapping", "b")]).expect("query"),
        );
        let wanted: Vec<(String, String)> = (0..2_500)
            .step_by(7)
            .map(|i| ("b".to_string(), format!("shardId-{i:012}")))
            .collect();
        assert_eq!(stuck, wanted);
    }

    #[test]
    fn a_page_says_the_total_and_the_last_page_has_no_next() {
        let mappings = vec![("m", shards(10, 1))];
        let first = shard_page(&mappings, &query(&[("limit", "4")]).expect("q"), 0, 60_000);
        assert_eq!((first.shards.len(), first.total), (4, 10));
        assert_eq!(first.next.as_deref(), Some("m/shardId-000000000003"));
        let exact = shard_page(&mappings, &query(&[("limit", "10")]).expect("q"), 0, 60_000);
        assert_eq!((exact.shards.len(), exact.next), (10, None));
        let all = shard_page(&mappings, &query(&[]).expect("q"), 0, 60_000);
        assert_eq!((all.shards.len(), all.next), (10, None));
        let past = query(&[("after", "m/shardId-000000000009")]).expect("q");
        let none = shard_page(&mappings, &past, 0, 60_000);
        assert_eq!((none.shards.len(), none.total, none.next), (0, 10, None));
    }

    #[test]
    fn bad_parameters_name_the_parameter_the_value_and_what_is_allowed() {
        for (pairs, wanted) in [
            (vec![("limit", "0")], "limit=\"0\": must be 1..=10000"),
            (vec![("limit", "ten")], "limit=\"ten\": must be 1..=10000"),
            (vec![("limit", "10001")], "must be 1..=10000"),
            (
                vec![("after", "nocursor")],
                "after=\"nocursor\": must be <mapping>/<shard>",
            ),
            (vec![("after", "m/")], "must be <mapping>/<shard>"),
            (
                vec![("stuck", "maybe")],
                "stuck=\"maybe\": must be true or false",
            ),
            (vec![("offset", "1")], "unknown query parameter \"offset\""),
        ] {
            let error = query(&pairs).expect_err("refused");
            assert!(error.contains(wanted), "{error} lacks {wanted}");
        }
        assert_eq!(
            query(&[("after", "m/shardId-1/x"), ("limit", "5"), ("stuck", "")]),
            Ok(ShardQuery {
                stuck_only: true,
                mapping: None,
                limit: Some(5),
                after: Some(("m".into(), "shardId-1/x".into())),
            })
        );
    }
}
