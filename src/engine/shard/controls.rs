//! The operator's controls as the shard task obeys them: pause, skip and rewind.
//!
//! A paused shard starts nothing: it cuts no batch and reads nothing, and busy lanes stop
//! at their next attempt and wait there (`Lane`); with no lane busy it shows Paused
//! (`obey_pause`). A skip goes to the lane holding the lowest in-flight batch, which
//! discards the records it is failing on. A rewind (paused only; to a time only where the
//! stream can open an iterator at one: `rewind_refusal`) abandons the lanes' work and the
//! buffer and re-opens the shard at the new position (`rewind_target`).

use tokio::sync::oneshot;

use super::lanes::{new_window, Lanes};
use super::reader::Reader;
use super::ShardTask;
use crate::checkpoint::Checkpoint;
use crate::engine::control::{Request, RewindTo, ShardRequest};
use crate::engine::status::ShardState;
use crate::model::StreamKind;
use crate::source::IteratorPosition;

/// One pass of the shard loop under the operator's pause.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Pass {
    /// Whether the pass may cut batches and read.
    pub(super) starts_work: bool,
    /// What the shard shows when no lane is busy.
    pub(super) idle_state: ShardState,
}

/// The pause rule: a paused shard starts nothing and shows Paused once no lane is busy;
/// a running one shows BackingOff while its reads fail, else Polling.
pub(super) fn obey_pause(paused: bool, read_errors_in_a_row: u32) -> Pass {
    let idle_state = if paused {
        ShardState::Paused
    } else if read_errors_in_a_row > 0 {
        ShardState::BackingOff
    } else {
        ShardState::Polling
    };
    Pass {
        starts_work: !paused,
        idle_state,
    }
}

/// Why a rewind to `to` is refused, if it is: only a paused shard is rewound, and
/// DynamoDB Streams cannot open an iterator at a time (such a checkpoint would fail every
/// read, after a restart too).
pub(super) fn rewind_refusal(
    to: &RewindTo,
    paused: bool,
    kind: StreamKind,
) -> Option<&'static str> {
    if !paused {
        return Some("rewind needs a paused shard: pause it first");
    }
    if matches!(to, RewindTo::TimestampMs(_)) && kind == StreamKind::Dynamodb {
        return Some("DynamoDB Streams has no AT_TIMESTAMP position: rewind to a sequence number");
    }
    None
}

/// A rewind's checkpoint, and where the shard reads from next: at the record (it is
/// delivered again), or at the first record that arrived at or after the time.
pub(super) fn rewind_target(to: RewindTo) -> (Checkpoint, IteratorPosition) {
    match to {
        RewindTo::Sequence(seq) => (
            Checkpoint::At(seq.clone()),
            IteratorPosition::AtSequence(seq),
        ),
        RewindTo::TimestampMs(ms) => (
            Checkpoint::AtTimestamp(ms),
            IteratorPosition::AtTimestamp(ms),
        ),
    }
}

impl ShardTask {
    /// Carries out the operator's requests sent since the last pass; whether the operator
    /// holds the shard paused now. The controls are read at the top of every pass where
    /// their change count moved, not only when the task is woken for a change: reading
    /// them marks the change seen.
    pub(super) fn obey_operator(&mut self) -> bool {
        let changes = self.status.control().changes();
        if changes != self.controls_seen {
            self.controls_seen = changes;
            let controls = self.status.control().controls();
            self.operator_paused = controls.paused;
            if controls.requests_sent != self.requests_seen {
                self.requests_seen = controls.requests_sent;
                for request in self.requests.take() {
                    self.apply_request(request);
                }
            }
        }
        self.operator_paused
    }

    /// Carries out an operator request; the answer goes to its reply.
    pub(super) fn apply_request(&mut self, request: Request) {
        let Request { what, reply } = request;
        match what {
            ShardRequest::Skip => self.skip(reply),
            ShardRequest::Rewind(to) => {
                let _ = reply.send(self.rewind(to));
            }
        }
    }

    /// Hands the skip to the lane holding the lowest in-flight batch, which answers it.
    fn skip(&self, reply: oneshot::Sender<Result<(), String>>) {
        let blocking = self.status.update().blocking().map(|b| b.lane);
        match blocking.and_then(|lane| self.lanes.signals.get(lane)) {
            Some(signal) => signal.request_skip(reply),
            None => {
                let _ = reply.send(Err("nothing to skip: no batch is in flight".into()));
            }
        }
    }

    /// Abandons the lanes' work and everything read (it is read again), and re-opens the
    /// shard at `to`, still paused.
    fn rewind(&mut self, to: RewindTo) -> Result<(), String> {
        let kind = self.ctx.mapping.stream_kind;
        if let Some(refusal) = rewind_refusal(&to, self.status.control().is_paused(), kind) {
            return Err(refusal.into());
        }
        self.lanes.busy.clear();
        self.held_keys.clear();
        self.window = new_window(&self.ctx);
        self.lanes = Lanes::new(
            &self.ctx,
            &self.shard_id,
            &self.status,
            &self.checkpointer,
            &self.window,
            &self.held_keys,
        );
        self.buffer.clear();
        let (checkpoint, position) = rewind_target(to);
        tracing::info!(mapping = %self.ctx.mapping.name, shard = %self.shard_id, checkpoint = %checkpoint.encode(), "operator rewind: in-flight batches abandoned; the shard resumes there");
        self.checkpointer.reset(checkpoint);
        // The read under way, if any, is dropped with the old reader.
        self.reader = Reader::at(position, self.ctx.clock.now_ms());
        let mut s = self.status.update();
        s.in_flight.clear();
        s.state = ShardState::Paused;
        s.caught_up = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::control::ControlError;
    use crate::engine::shard::test_support::{start, wait_until};
    use crate::model::SequenceNumber;

    #[test]
    fn a_paused_shard_starts_nothing_and_shows_paused_even_while_its_reads_fail() {
        let expected = Pass {
            starts_work: false,
            idle_state: ShardState::Paused,
        };
        assert_eq!(obey_pause(true, 0), expected);
        assert_eq!(obey_pause(true, 3), expected);
    }

    #[test]
    fn a_running_idle_shard_backs_off_while_its_reads_fail_and_polls_otherwise() {
        assert_eq!(
            obey_pause(false, 2),
            Pass {
                starts_work: true,
                idle_state: ShardState::BackingOff
            }
        );
        assert_eq!(
            obey_pause(false, 0),
            Pass {
                starts_work: true,
                idle_state: ShardState::Polling
            }
        );
    }

    #[test]
    fn a_running_shard_refuses_a_rewind_until_it_is_paused() {
        let to = RewindTo::Sequence(SequenceNumber("1".into()));
        let refusal = rewind_refusal(&to, false, StreamKind::Kinesis);
        assert_eq!(refusal, Some("rewind needs a paused shard: pause it first"));
        assert_eq!(rewind_refusal(&to, true, StreamKind::Kinesis), None);
    }

    #[test]
    fn dynamodb_streams_refuse_a_rewind_to_a_time_but_not_to_a_sequence_number() {
        let to_time = RewindTo::TimestampMs(0);
        let refusal = rewind_refusal(&to_time, true, StreamKind::Dynamodb).expect("refused");
        assert!(refusal.contains("AT_TIMESTAMP"), "{refusal}");
        assert_eq!(rewind_refusal(&to_time, true, StreamKind::Kinesis), None);
        let to_record = RewindTo::Sequence(SequenceNumber("1".into()));
        assert_eq!(rewind_refusal(&to_record, true, StreamKind::Dynamodb), None);
    }

    #[test]
    fn a_rewind_to_a_record_checkpoints_at_it_so_it_is_delivered_again() {
        let seq = SequenceNumber("42".into());
        assert_eq!(
            rewind_target(RewindTo::Sequence(seq.clone())),
            (
                Checkpoint::At(seq.clone()),
                IteratorPosition::AtSequence(seq)
            )
        );
        assert_eq!(
            rewind_target(RewindTo::TimestampMs(7)),
            (Checkpoint::AtTimestamp(7), IteratorPosition::AtTimestamp(7))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_skip_that_came_too_late_does_not_cut_the_next_batch_s_backoff_short() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctx, shard) = start(
            r#"
[[streams]]
name = "s"
kind = "kinesis"
shards = 1

[[streams.producers]]
rate_per_second = 1.0
records = 1

[[streams.producers]]
rate_per_second = 1.0
start_seconds = 5.0
records = 1
poison_every = 1

[[functions]]
name = "f"
latency = { p50_ms = 1000.0, p99_ms = 1000.0 }

[[functions.rules]]
when_data_contains = '"poison":true'
action = "error"

[[mappings]]
name = "m"
event_source_arn = "s"
function_name = "f"
starting_position = "TRIM_HORIZON"
maximum_retry_attempts = -1
pace = { retry_backoff_initial_ms = 10000, retry_backoff_max_ms = 10000 }
"#,
            dir.path(),
        )
        .await;
        // A skip while the healthy first batch is being invoked: it resolves first.
        wait_until(&shard, |s| !s.in_flight.is_empty()).await;
        let skipping = shard.clone();
        let skip = tokio::spawn(async move { skipping.skip().await });
        let answer = skip.await.expect("skip task");
        assert!(answer.is_err(), "nothing was left to skip: {answer:?}");
        // The poison batch fails once: its retry waits at least 5 s (half the backoff).
        wait_until(&shard, |s| s.last_error.is_some()).await;
        let invocations = shard.snapshot().invocations;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(
            shard.snapshot().invocations,
            invocations,
            "retried without its backoff"
        );
        ctx.cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dynamodb_shard_refuses_a_rewind_to_a_time_and_keeps_its_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctx, shard) = start(
            r#"
[[streams]]
name = "orders"
kind = "dynamodb"
shards = 1

[[streams.producers]]
rate_per_second = 10.0
records = 5
keys = 2

[[functions]]
name = "f"

[[mappings]]
name = "m"
event_source_arn = "orders"
function_name = "f"
starting_position = "TRIM_HORIZON"
"#,
            dir.path(),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        shard.pause();
        let before = shard.snapshot().checkpoint;
        assert!(before.is_some(), "the shard has checkpointed");
        let result = shard.rewind(RewindTo::TimestampMs(0)).await;
        let Err(ControlError::Conflict(message)) = result else {
            panic!("a rewind to a time was accepted on DynamoDB Streams: {result:?}");
        };
        assert!(message.contains("AT_TIMESTAMP"), "{message}");
        assert_eq!(shard.snapshot().checkpoint, before);
        ctx.cancel.cancel();
    }
}
