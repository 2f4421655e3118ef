//! What every shard is doing, always known: the state the shard task publishes for logs,
//! reports, the admin API and the metrics, and the operator actions on it.
//!
//! Each shard task owns one `ShardStatus` and updates it at each step (never per record);
//! readers take a snapshot. Counters follow the spec's conservation rule: every record read
//! ends as succeeded, filtered, discarded or lost to retention, or is still waiting.
//! Whether a shard is stuck is judged from a snapshot (`ShardSnapshot::stuck`), so the
//! rule is pure and the same for the API, the CLI and the dashboard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::control::{ControlError, RewindTo, ShardControl, ShardRequest};
use super::latency::LatencyHistogram;
use crate::model::{SequenceNumber, ShardId, ShardInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    WaitingOnParents,
    Polling,
    Invoking,
    Retrying,
    BackingOff,
    Paused,
    Ended,
    Disabled,
    Stopped,
    /// Shared through a lease table, and this worker does not hold the shard's lease
    /// (`lease_owner` says who does).
    NotHeld,
}

/// A batch being processed by one lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// Which of the shard's ParallelizationFactor lanes (0-based).
    pub lane: usize,
    /// What the lane is doing: invoking, retrying, backing_off (not reached) or paused.
    pub state: ShardState,
    pub first_sequence_number: String,
    pub last_sequence_number: String,
    pub records: usize,
    pub payload_bytes: usize,
    /// 1 for the first try of the records being invoked.
    pub attempt: u32,
    pub bisect_depth: u32,
    /// Clock time (epoch ms) of the batch's first invocation.
    pub since_ms: i64,
}

/// The last error a shard met.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// `function_error`, `function_timeout`, `partial_failure`, `invalid_response`,
    /// `not_reached` (throttled or unreachable function), `read` (GetRecords) or
    /// `destination`.
    pub kind: &'static str,
    pub message: String,
    pub at_ms: i64,
}

/// Why a shard is stuck, and on what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stuck {
    /// Since when the shard has not advanced (epoch ms).
    pub since_ms: i64,
    pub for_ms: i64,
    /// The blocking records (the in-flight batch holding the checkpoint back), when one is
    /// in flight.
    pub first_sequence_number: Option<String>,
    pub last_sequence_number: Option<String>,
    pub records: Option<usize>,
    pub attempt: Option<u32>,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardSnapshot {
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub state: ShardState,
    /// Paused by an operator (the state says what the shard was doing when it stopped).
    pub paused: bool,
    pub checkpoint: Option<String>,
    /// With a lease table: the worker holding the shard's lease (`None`: nobody, or no
    /// lease table).
    pub lease_owner: Option<String>,
    /// With a lease table: the lease's counter as this worker last saw it.
    pub lease_counter: Option<u64>,
    /// For a shard started at LATEST or AT_TIMESTAMP without a checkpoint: records that
    /// arrived before this time (epoch ms) were never the mapping's to read.
    pub started_at_time_ms: Option<i64>,
    /// The checkpoint this shard had when the mapping started (a restart): the records up
    /// to it were done by an earlier run.
    pub resumed_from: Option<String>,
    /// Clock time when the shard task started (epoch ms).
    pub running_since_ms: Option<i64>,
    /// PolledEventCount.
    pub records_polled: u64,
    pub records_succeeded: u64,
    /// FilteredOutEventCount.
    pub records_filtered: u64,
    pub records_discarded: u64,
    pub records_trimmed: u64,
    /// Records read and not yet done (waiting for a lane, or in flight).
    pub records_waiting: u64,
    /// InvokedEventCount: records in invocations that reached the function, retries
    /// included.
    pub records_invoked: u64,
    /// FailedInvokeEventCount: records of failed invocations, including every record of a
    /// response that reported batch item failures.
    pub records_failed_invoke: u64,
    /// OnFailureDestinationDeliveredEventCount.
    pub records_delivered_to_destination: u64,
    /// DroppedEventCount: discarded records whose failure record did not reach the
    /// destination (they are in the local dead-letter file).
    pub records_dropped: u64,
    /// DestinationDeliveryFailures: failure records the destination did not take.
    pub destination_delivery_failures: u64,
    /// Times the stream said records were trimmed before they were read, whether or not
    /// it could say how many (DynamoDB Streams cannot).
    pub retention_gaps: u64,
    /// Invocations that reached the function (AWS's count: retries + 1 per batch).
    pub invocations: u64,
    /// Invocations that never reached the function (throttled, service error).
    pub invoke_throttles: u64,
    /// GetRecords calls throttled or failed by the stream.
    pub read_throttles: u64,
    /// Times the reader dropped an iterator the stream kept refusing (the same failure
    /// several times in a row) and opened a new one after the last record read (where the
    /// shard started, if nothing was read).
    pub iterator_reopens: u64,
    /// Failure records delivered to the on-failure destination.
    pub destination_records: u64,
    /// Failure records written to the local dead-letter file instead.
    pub dead_lettered_records: u64,
    pub caught_up: bool,
    /// IteratorAge at the last invocation: from the stream receiving the batch's last
    /// record to the invoke, in ms.
    pub iterator_age_ms: Option<i64>,
    /// The stream's MillisBehindLatest at the last read, where it says.
    pub millis_behind_latest: Option<i64>,
    /// Clock time when the last records were read.
    pub last_data_ms: Option<i64>,
    /// The batches in flight, one per busy lane, lowest first.
    pub in_flight: Vec<InFlight>,
    pub last_error: Option<LastError>,
    /// Clock time when the checkpoint last moved.
    pub last_advance_ms: Option<i64>,
    pub invoke_latency: LatencyHistogram,
}

impl ShardSnapshot {
    fn new(info: &ShardInfo) -> Self {
        ShardSnapshot {
            shard_id: info.shard_id.0.clone(),
            parent_shard_ids: info.parent_shard_ids.iter().map(|p| p.0.clone()).collect(),
            state: ShardState::WaitingOnParents,
            paused: false,
            checkpoint: None,
            lease_owner: None,
            lease_counter: None,
            started_at_time_ms: None,
            resumed_from: None,
            running_since_ms: None,
            records_polled: 0,
            records_succeeded: 0,
            records_filtered: 0,
            records_discarded: 0,
            records_trimmed: 0,
            records_waiting: 0,
            records_invoked: 0,
            records_failed_invoke: 0,
            records_delivered_to_destination: 0,
            records_dropped: 0,
            destination_delivery_failures: 0,
            retention_gaps: 0,
            invocations: 0,
            invoke_throttles: 0,
            read_throttles: 0,
            iterator_reopens: 0,
            destination_records: 0,
            dead_lettered_records: 0,
            caught_up: false,
            iterator_age_ms: None,
            millis_behind_latest: None,
            last_data_ms: None,
            in_flight: Vec::new(),
            last_error: None,
            last_advance_ms: None,
            invoke_latency: LatencyHistogram::default(),
        }
    }

    pub fn set_error(&mut self, kind: &'static str, message: String, at_ms: i64) {
        self.last_error = Some(LastError {
            kind,
            message,
            at_ms,
        });
    }

    /// Publishes what a lane is working on (`None`: the lane is idle), keeping
    /// `in_flight` ordered lowest first, and derives the shard's state from its lanes.
    pub fn set_lane(&mut self, lane: usize, batch: Option<InFlight>) {
        self.in_flight.retain(|b| b.lane != lane);
        if let Some(batch) = batch {
            let at = self.in_flight.partition_point(|b| {
                SequenceNumber::compare_text(&b.first_sequence_number, &batch.first_sequence_number)
                    .is_lt()
            });
            self.in_flight.insert(at, batch);
        }
        self.derive_state();
    }

    pub fn set_lane_state(&mut self, lane: usize, state: ShardState) {
        if let Some(batch) = self.in_flight.iter_mut().find(|b| b.lane == lane) {
            batch.state = state;
        }
        self.derive_state();
    }

    /// With batches in flight the shard is in its busiest lane's state (retrying before
    /// backing off before paused before invoking); with none, the reader's state stands.
    fn derive_state(&mut self) {
        let rank = |state: ShardState| match state {
            ShardState::Retrying => 4,
            ShardState::BackingOff => 3,
            ShardState::Paused => 2,
            _ => 1,
        };
        if let Some(busiest) = self
            .in_flight
            .iter()
            .map(|b| b.state)
            .max_by_key(|s| rank(*s))
        {
            self.state = busiest;
        } else if matches!(
            self.state,
            ShardState::Invoking | ShardState::Retrying | ShardState::BackingOff
        ) {
            self.state = ShardState::Polling;
        }
    }

    /// The batch holding the checkpoint back: the in-flight batch with the lowest records.
    pub fn blocking(&self) -> Option<&InFlight> {
        self.in_flight.first()
    }

    /// Stuck: records are waiting (read and not done, or the stream says the shard is
    /// behind) and the checkpoint has not moved for more than `threshold_ms`. A shard
    /// that has ended, is stopped or disabled is never stuck.
    pub fn stuck(&self, now_ms: i64, threshold_ms: i64) -> Option<Stuck> {
        if matches!(
            self.state,
            ShardState::Ended
                | ShardState::Stopped
                | ShardState::Disabled
                | ShardState::WaitingOnParents
                | ShardState::NotHeld
        ) {
            return None;
        }
        let waiting = self.records_waiting > 0 || self.millis_behind_latest.unwrap_or(0) > 0;
        let since_ms = self.last_advance_ms.or(self.running_since_ms)?;
        let for_ms = now_ms.saturating_sub(since_ms);
        if !waiting || for_ms <= threshold_ms {
            return None;
        }
        let blocking = self.blocking();
        let reason = if self.paused {
            "paused by an operator".to_string()
        } else if let Some(error) = &self.last_error {
            error.message.clone()
        } else if blocking.is_some() {
            "the function has not answered yet".to_string()
        } else {
            "no batch in flight: records are waiting to be read or batched".to_string()
        };
        Some(Stuck {
            since_ms,
            for_ms,
            first_sequence_number: blocking.map(|b| b.first_sequence_number.clone()),
            last_sequence_number: blocking.map(|b| b.last_sequence_number.clone()),
            records: blocking.map(|b| b.records),
            attempt: blocking.map(|b| b.attempt),
            reason,
        })
    }
}

pub struct ShardStatus {
    snapshot: Mutex<ShardSnapshot>,
    control: ShardControl,
}

impl ShardStatus {
    pub fn new(info: &ShardInfo) -> Self {
        ShardStatus {
            snapshot: Mutex::new(ShardSnapshot::new(info)),
            control: ShardControl::default(),
        }
    }

    /// Changes the snapshot in place.
    pub fn update(&self) -> MutexGuard<'_, ShardSnapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> ShardSnapshot {
        let mut snapshot = self.update().clone();
        snapshot.paused = self.control.is_paused();
        snapshot
    }

    pub fn control(&self) -> &ShardControl {
        &self.control
    }

    /// Stops the shard invoking and reading: an invocation in flight finishes, then the
    /// shard waits (its position and batches are kept).
    pub fn pause(&self) -> ShardSnapshot {
        self.control.set_paused(true);
        self.snapshot()
    }

    pub fn resume(&self) -> ShardSnapshot {
        self.control.set_paused(false);
        self.snapshot()
    }

    /// Discards the batch blocking the shard (see `ShardRequest::Skip`).
    pub async fn skip(&self) -> Result<ShardSnapshot, ControlError> {
        let not_running = self.not_running();
        self.control
            .request(ShardRequest::Skip, &not_running)
            .await?;
        Ok(self.snapshot())
    }

    /// Moves the position of a paused shard.
    pub async fn rewind(&self, to: RewindTo) -> Result<ShardSnapshot, ControlError> {
        if !self.control.is_paused() {
            return Err(ControlError::Conflict(
                "rewind needs a paused shard: pause it first".into(),
            ));
        }
        let not_running = self.not_running();
        self.control
            .request(ShardRequest::Rewind(to), &not_running)
            .await?;
        Ok(self.snapshot())
    }

    fn not_running(&self) -> String {
        let state = self.update().state;
        let state = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        format!("the shard is not running (state: {state})")
    }
}

/// Every shard of one mapping, by id.
#[derive(Default)]
pub struct MappingStatus {
    shards: Mutex<BTreeMap<ShardId, Arc<ShardStatus>>>,
}

impl MappingStatus {
    /// The status of a shard, created on first sight.
    pub fn shard(&self, info: &ShardInfo) -> Arc<ShardStatus> {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards
            .entry(info.shard_id.clone())
            .or_insert_with(|| Arc::new(ShardStatus::new(info)))
            .clone()
    }

    /// A known shard's status.
    pub fn get(&self, shard_id: &str) -> Option<Arc<ShardStatus>> {
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards.get(&ShardId(shard_id.to_string())).cloned()
    }

    pub fn snapshots(&self) -> Vec<ShardSnapshot> {
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards.values().map(|s| s.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(state: ShardState) -> ShardSnapshot {
        let info = ShardInfo {
            shard_id: ShardId("shardId-000000000001".into()),
            parent_shard_ids: Vec::new(),
        };
        let mut s = ShardSnapshot::new(&info);
        s.state = state;
        s.running_since_ms = Some(1_000);
        s
    }

    fn in_flight(first: &str, attempt: u32) -> InFlight {
        InFlight {
            lane: 0,
            state: ShardState::Retrying,
            first_sequence_number: first.into(),
            last_sequence_number: first.into(),
            records: 1,
            payload_bytes: 100,
            attempt,
            bisect_depth: 0,
            since_ms: 1_000,
        }
    }

    #[test]
    fn a_retrying_shard_with_waiting_records_is_stuck_past_the_threshold_only() {
        let mut s = running(ShardState::Retrying);
        s.records_waiting = 3;
        s.last_advance_ms = Some(10_000);
        s.in_flight = vec![in_flight("42", 7)];
        s.set_error(
            "function_error",
            "function error Unhandled: boom".into(),
            30_000,
        );
        assert_eq!(
            s.stuck(40_000, 30_000),
            None,
            "30 s is not past a 30 s threshold"
        );
        let stuck = s.stuck(40_001, 30_000).expect("stuck");
        assert_eq!(stuck.since_ms, 10_000);
        assert_eq!(stuck.for_ms, 30_001);
        assert_eq!(stuck.first_sequence_number.as_deref(), Some("42"));
        assert_eq!(stuck.attempt, Some(7));
        assert_eq!(stuck.reason, "function error Unhandled: boom");
    }

    #[test]
    fn lanes_publish_lowest_first_and_the_busiest_state_is_the_shard_s() {
        let mut s = running(ShardState::Polling);
        let batch = |lane, first: &str, state| InFlight {
            lane,
            state,
            ..in_flight(first, 1)
        };
        s.set_lane(0, Some(batch(0, "100", ShardState::Invoking)));
        s.set_lane(1, Some(batch(1, "99", ShardState::Invoking)));
        s.set_lane(2, Some(batch(2, "1000", ShardState::Invoking)));
        let order: Vec<usize> = s.in_flight.iter().map(|b| b.lane).collect();
        assert_eq!(order, vec![1, 0, 2], "sequence numbers compare as numbers");
        assert_eq!(s.state, ShardState::Invoking);
        s.set_lane_state(2, ShardState::Retrying);
        assert_eq!(s.state, ShardState::Retrying);
        assert_eq!(s.blocking().map(|b| b.lane), Some(1));
        s.set_lane(2, None);
        s.set_lane(1, None);
        s.set_lane(0, None);
        assert!(s.in_flight.is_empty());
        assert_eq!(s.state, ShardState::Polling);
    }

    #[test]
    fn a_shard_with_nothing_waiting_is_never_stuck() {
        let mut s = running(ShardState::Polling);
        s.last_advance_ms = Some(0);
        assert_eq!(s.stuck(10_000_000, 1_000), None);
        s.millis_behind_latest = Some(5_000);
        assert!(
            s.stuck(10_000_000, 1_000).is_some(),
            "behind the tip counts as waiting"
        );
    }

    #[test]
    fn ended_and_stopped_shards_are_never_stuck() {
        for state in [
            ShardState::Ended,
            ShardState::Stopped,
            ShardState::Disabled,
            ShardState::NotHeld,
        ] {
            let mut s = running(state);
            s.records_waiting = 1;
            assert_eq!(s.stuck(10_000_000, 1_000), None, "{state:?}");
        }
    }

    #[test]
    fn without_an_advance_the_time_counts_from_the_task_start() {
        let mut s = running(ShardState::Polling);
        s.records_waiting = 1;
        let stuck = s.stuck(5_000, 1_000).expect("stuck");
        assert_eq!(stuck.since_ms, 1_000);
        assert_eq!(stuck.first_sequence_number, None);
        assert!(
            stuck.reason.contains("no batch in flight"),
            "{}",
            stuck.reason
        );
    }

    #[test]
    fn a_paused_shard_says_so() {
        let mut s = running(ShardState::Paused);
        s.paused = true;
        s.records_waiting = 1;
        assert_eq!(
            s.stuck(5_000, 1_000).expect("stuck").reason,
            "paused by an operator"
        );
    }

    #[tokio::test]
    async fn rewind_needs_a_pause_and_skip_needs_a_running_task() {
        let info = ShardInfo {
            shard_id: ShardId("shardId-000000000001".into()),
            parent_shard_ids: Vec::new(),
        };
        let status = ShardStatus::new(&info);
        let refused = status
            .rewind(RewindTo::TimestampMs(0))
            .await
            .expect_err("not paused");
        assert!(refused.to_string().contains("pause it first"), "{refused}");
        assert!(status.pause().paused);
        let refused = status.skip().await.expect_err("no task");
        assert_eq!(
            refused.to_string(),
            "the shard is not running (state: waiting_on_parents)"
        );
        assert!(!status.resume().paused);
    }
}
