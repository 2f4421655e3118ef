//! Iterator age over the last minutes, per shard, kept by the admin server so that a freshly
//! opened dashboard draws its charts at once (`GET /history`).
//!
//! The server samples every shard's iterator age on a timer and calls `record`; this type
//! only keeps the points. It is pure (time is passed in), and its memory is bounded: points
//! older than the window are dropped, each series holds at most one window's worth of
//! samples, and a shard that no longer reports (ended, resharded away) ages out with its
//! last point.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

/// One point: clock time (epoch ms) and the iterator age then (`None`: not known yet, e.g.
/// nothing invoked).
type Point = (i64, Option<i64>);

/// Per-shard iterator age samples within a sliding window.
#[derive(Debug, Clone)]
pub struct IteratorAgeHistory {
    window_ms: i64,
    sample_every_ms: i64,
    /// Most points a series holds: a window's worth of samples plus one.
    max_points: usize,
    /// (mapping, shard id) to its points, oldest first.
    series: BTreeMap<(String, String), VecDeque<Point>>,
}

impl IteratorAgeHistory {
    /// A history of the last `window_ms`, sampled every `sample_every_ms`. Values below 1 ms
    /// are taken as 1 ms, and a window shorter than one sample as one sample.
    pub fn new(window_ms: i64, sample_every_ms: i64) -> Self {
        let sample_every_ms = sample_every_ms.max(1);
        let window_ms = window_ms.max(sample_every_ms);
        let max_points = usize::try_from(window_ms / sample_every_ms)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        IteratorAgeHistory {
            window_ms,
            sample_every_ms,
            max_points,
            series: BTreeMap::new(),
        }
    }

    /// Adds one sample per `(mapping, shard id, iterator age ms)` taken at `now_ms`, then
    /// drops every point outside `(now_ms - window_ms) ..= now_ms` (a clock that stepped
    /// back leaves no points "in the future") and every series left empty.
    pub fn record(
        &mut self,
        now_ms: i64,
        samples: impl IntoIterator<Item = (String, String, Option<i64>)>,
    ) {
        for (mapping, shard_id, age_ms) in samples {
            let points = self.series.entry((mapping, shard_id)).or_default();
            points.push_back((now_ms, age_ms));
            while points.len() > self.max_points {
                points.pop_front();
            }
        }
        let oldest = now_ms.saturating_sub(self.window_ms);
        self.series.retain(|_, points| {
            points.retain(|(t, _)| (oldest..=now_ms).contains(t));
            !points.is_empty()
        });
    }

    /// `{"sample_every_ms":..,"window_ms":..,"series":[{"mapping":..,"shard_id":..,
    /// "points":[[t_ms, age_ms or null], ...]}]}`, series ordered by mapping then shard,
    /// points oldest first.
    pub fn to_json(&self) -> Value {
        let series = self
            .series
            .iter()
            .map(|((mapping, shard_id), points)| series_json(mapping, shard_id, points))
            .collect();
        self.answer(series)
    }

    /// The same shape with the series of these shards only, in the order given (a shard
    /// without points has no series): at 10,000 shards the whole history is megabytes,
    /// and a dashboard shows a page of shards at a time.
    pub fn to_json_of<'a>(&self, shards: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        let series = shards
            .into_iter()
            .filter_map(|(mapping, shard_id)| {
                let points = self
                    .series
                    .get(&(mapping.to_string(), shard_id.to_string()))?;
                Some(series_json(mapping, shard_id, points))
            })
            .collect();
        self.answer(series)
    }

    fn answer(&self, series: Vec<Value>) -> Value {
        json!({
            "sample_every_ms": self.sample_every_ms,
            "window_ms": self.window_ms,
            "series": series,
        })
    }
}

/// One shard's series: `{"mapping":..,"shard_id":..,"points":[[t_ms, age_ms or null]]}`.
fn series_json(mapping: &str, shard_id: &str, points: &VecDeque<Point>) -> Value {
    let points: Vec<Value> = points.iter().map(|(t, age)| json!([t, age])).collect();
    json!({"mapping": mapping, "shard_id": shard_id, "points": points})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(mapping: &str, shard: &str, age: Option<i64>) -> (String, String, Option<i64>) {
        (mapping.to_string(), shard.to_string(), age)
    }

    #[test]
    fn the_json_has_the_documented_shape_ordered_by_mapping_and_shard() {
        let mut history = IteratorAgeHistory::new(600_000, 5_000);
        history.record(
            1_000,
            [
                sample("m", "shard-2", Some(40)),
                sample("a", "shard-9", None),
            ],
        );
        history.record(6_000, [sample("m", "shard-2", Some(90))]);
        assert_eq!(
            history.to_json(),
            json!({
                "sample_every_ms": 5000,
                "window_ms": 600000,
                "series": [
                    {"mapping": "a", "shard_id": "shard-9", "points": [[1000, null]]},
                    {"mapping": "m", "shard_id": "shard-2", "points": [[1000, 40], [6000, 90]]},
                ]
            })
        );
    }

    #[test]
    fn the_series_of_chosen_shards_come_in_the_order_asked_and_unknown_shards_are_left_out() {
        let mut history = IteratorAgeHistory::new(600_000, 5_000);
        history.record(
            1_000,
            [
                sample("m", "s1", Some(1)),
                sample("m", "s2", Some(2)),
                sample("n", "s1", Some(3)),
            ],
        );
        assert_eq!(
            history.to_json_of([("n", "s1"), ("m", "gone"), ("m", "s1")]),
            json!({
                "sample_every_ms": 5000,
                "window_ms": 600000,
                "series": [
                    {"mapping": "n", "shard_id": "s1", "points": [[1000, 3]]},
                    {"mapping": "m", "shard_id": "s1", "points": [[1000, 1]]},
                ]
            })
        );
        assert_eq!(history.to_json_of([])["series"], json!([]));
    }

    #[test]
    fn points_older_than_the_window_are_dropped_and_a_silent_shard_ages_out() {
        let mut history = IteratorAgeHistory::new(10_000, 5_000);
        history.record(
            0,
            [sample("m", "gone", Some(1)), sample("m", "kept", Some(1))],
        );
        history.record(5_000, [sample("m", "kept", Some(2))]);
        history.record(10_000, [sample("m", "kept", Some(3))]);
        let json = history.to_json();
        assert_eq!(json["series"].as_array().map(Vec::len), Some(2), "{json}");
        history.record(10_001, [sample("m", "kept", Some(4))]);
        assert_eq!(
            history.to_json()["series"],
            json!([{"mapping": "m", "shard_id": "kept",
                    "points": [[5000, 2], [10000, 3], [10001, 4]]}])
        );
    }

    #[test]
    fn memory_is_bounded_even_when_sampled_faster_than_promised() {
        let mut history = IteratorAgeHistory::new(10_000, 5_000);
        for t in 0..1_000 {
            history.record(t, [sample("m", "s", Some(t))]);
        }
        let points = history.to_json()["series"][0]["points"].clone();
        assert_eq!(points, json!([[997, 997], [998, 998], [999, 999]]));
    }

    #[test]
    fn a_clock_that_steps_back_leaves_no_points_in_the_future() {
        let mut history = IteratorAgeHistory::new(60_000, 1_000);
        history.record(50_000, [sample("m", "s", Some(1))]);
        history.record(40_000, [sample("m", "s", Some(2))]);
        assert_eq!(
            history.to_json()["series"][0]["points"],
            json!([[40000, 2]])
        );
    }

    #[test]
    fn nonsensical_settings_are_clamped_not_panicked_on() {
        let mut history = IteratorAgeHistory::new(-5, 0);
        history.record(i64::MIN, [sample("m", "s", Some(i64::MAX))]);
        history.record(i64::MAX, [sample("m", "s", None)]);
        let json = history.to_json();
        assert_eq!(json["sample_every_ms"], 1);
        assert_eq!(json["window_ms"], 1);
        assert_eq!(json["series"][0]["points"], json!([[i64::MAX, null]]));
    }
}
