//! Tumbling windows (spec 2.6): window arithmetic and the lifecycle of a shard's open
//! window, with no I/O and no clock of its own.
//!
//! Windows are `[start, end)` intervals aligned to multiples of the window length since the
//! epoch, by record arrival time. A shard has at most one open window at a time, so the
//! whole lifecycle is one small state machine, [`WindowTracker`], that the shard (or lane)
//! drives: it says what to do next ([`Step`]: invoke the records of the open window, send
//! the window's final invoke, or wait), carries the `state` between invocations, and holds
//! checkpoints back until the window's final invoke succeeds (spec: "the shard checkpoints
//! only after it succeeds"), so a restart replays an unfinished window from its start with a
//! fresh state instead of aggregating half a window. [`classify_window`] reads a function's
//! answer (state, and batchItemFailures through the 2.4 parser) into the engine's
//! [`Outcome`] plus the new state.
//!
//! When a window is over [decision, README]: when the next record waiting belongs to a later
//! window; when the shard has ended and none of its records is waiting; when no record is
//! waiting and the clock is `close_grace_ms` past the window's end (AWS: "When no new
//! records are being added to the current window, Lambda waits for up to 2 minutes before
//! assuming that the window is over"; [`AWS_CLOSE_GRACE_MS`]); or early, when the function
//! returned a state larger than [`MAX_STATE_BYTES`], and then the final invoke carries
//! `isWindowTerminatedEarly: true` and the records left in that time window start a new
//! window of the same bounds with a fresh state. A record stamped before the open window's
//! start (arrival stamps are approximate) joins the open window: windows never go back.

use crate::event::window::{parse_window_response, WindowFields, WindowResponse};
use crate::event::{EventContext, ResponseContext};
use crate::function::InvokeResult;
use crate::model::SequenceNumber;
use crate::policy::Outcome;

/// AWS: "Your state can be a maximum of 1 MB per shard. If it exceeds that size, Lambda
/// terminates the window early." A state of more bytes (compact JSON) ends the window.
pub const MAX_STATE_BYTES: usize = crate::limits::ESM_TUMBLING_WINDOW_STATE_BYTES;

/// How long after its end an idle window stays open for late readers (AWS: "Lambda waits
/// for up to 2 minutes before assuming that the window is over").
pub const AWS_CLOSE_GRACE_MS: i64 = 120_000;

/// The state of a window before its first invocation.
const EMPTY_STATE: &str = "{}";

/// A window: records that arrived at or after `start_ms` and before `end_ms` (epoch ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The window of a record that arrived at `arrival_ms`, for windows of `window_len_ms`
/// (aligned to multiples of it since the epoch; a length below 1 ms counts as 1 ms; bounds
/// past the range of i64 are clamped to it). An arrival exactly at a window's end belongs to
/// the next window.
pub fn window_of(arrival_ms: i64, window_len_ms: i64) -> Window {
    let len = window_len_ms.max(1);
    let start_ms = arrival_ms.saturating_sub(arrival_ms.rem_euclid(len));
    Window {
        start_ms,
        end_ms: start_ms.saturating_add(len),
    }
}

/// How many of the leading records (their arrival times, in stream order) may join a batch
/// of `window`: those up to the first one that arrived at or after its end, so no batch
/// spans two windows; and whether such a record of a later window follows them.
pub fn records_in_window(arrivals: impl IntoIterator<Item = i64>, window: Window) -> (usize, bool) {
    let mut records = 0;
    for arrival in arrivals {
        if arrival >= window.end_ms {
            return (records, true);
        }
        records += 1;
    }
    (records, false)
}

/// What the shard does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Cut a batch of at most `records` of the waiting records (BatchSize and the payload
    /// cap may cut it shorter) and invoke it with the open window's fields, not final.
    /// `cut_now`: no further record can join this window's run (a record of a later window
    /// is waiting, or the shard has ended), so the batch need not wait for the batching
    /// window.
    Invoke { records: usize, cut_now: bool },
    /// Send the open window's final invoke: no records, `isFinalInvokeForWindow: true`.
    Final,
    /// Nothing to do until more records are read, the shard ends, or the clock reaches
    /// `until_ms` (when set).
    Wait { until_ms: Option<i64> },
}

/// The open window and what it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OpenWindow {
    window: Window,
    /// Compact JSON text of the state object.
    state: String,
    terminated_early: bool,
}

/// One shard's tumbling window lifecycle. Child shards get a new tracker (fresh state).
#[derive(Clone, Debug)]
pub struct WindowTracker {
    window_len_ms: i64,
    close_grace_ms: i64,
    open: Option<OpenWindow>,
    /// The checkpoint held back until the open window's final invoke succeeds.
    held_checkpoint: Option<SequenceNumber>,
}

impl WindowTracker {
    /// Windows of `window_seconds` (TumblingWindowInSeconds, 1..=900); an idle window closes
    /// `close_grace_ms` after its end ([`AWS_CLOSE_GRACE_MS`] against AWS).
    pub fn new(window_seconds: u32, close_grace_ms: i64) -> Self {
        WindowTracker {
            window_len_ms: i64::from(window_seconds) * 1000,
            close_grace_ms: close_grace_ms.max(0),
            open: None,
            held_checkpoint: None,
        }
    }

    /// The open window, if any.
    pub fn window(&self) -> Option<Window> {
        self.open.as_ref().map(|open| open.window)
    }

    /// Decides the next step from the arrival times of the records read and not yet
    /// batched (in stream order), whether the shard has ended (no record will follow the
    /// waiting ones), and the clock. Opens a window (state `{}`) for the first waiting record
    /// when none is open.
    pub fn next_step(
        &mut self,
        waiting: impl IntoIterator<Item = i64>,
        shard_ended: bool,
        now_ms: i64,
    ) -> Step {
        let mut waiting = waiting.into_iter().peekable();
        let first = waiting.peek().copied();
        let window_len_ms = self.window_len_ms;
        let open = match (&mut self.open, first) {
            (None, None) => return Step::Wait { until_ms: None },
            (slot @ None, Some(arrival)) => slot.insert(OpenWindow {
                window: window_of(arrival, window_len_ms),
                state: EMPTY_STATE.to_string(),
                terminated_early: false,
            }),
            (Some(open), _) => open,
        };
        if open.terminated_early {
            return Step::Final;
        }
        let window = open.window;
        match first {
            Some(arrival) if arrival >= window.end_ms => Step::Final,
            Some(_) => {
                let (records, later_follows) = records_in_window(waiting, window);
                Step::Invoke {
                    records,
                    cut_now: shard_ended || later_follows,
                }
            }
            None => {
                let closes_at = window.end_ms.saturating_add(self.close_grace_ms);
                if shard_ended || now_ms >= closes_at {
                    Step::Final
                } else {
                    Step::Wait {
                        until_ms: Some(closes_at),
                    }
                }
            }
        }
    }

    /// The window fields of the next invoke of the open window (`None` when no window is
    /// open): the final invoke when `is_final`.
    pub fn fields<'a>(&'a self, ctx: &'a EventContext, is_final: bool) -> Option<WindowFields<'a>> {
        self.open.as_ref().map(|open| WindowFields {
            start_ms: open.window.start_ms,
            end_ms: open.window.end_ms,
            state: &open.state,
            shard_id: ctx.shard_id.as_str(),
            event_source_arn: &ctx.event_source_arn,
            is_final_invoke: is_final,
            is_terminated_early: is_final && open.terminated_early,
        })
    }

    /// Takes the state a (non-final) invocation of the open window returned, after a
    /// success or a partial failure. Returns true when the state is over
    /// [`MAX_STATE_BYTES`]: the window ends early and [`Self::next_step`] now says `Final`.
    pub fn accept_state(&mut self, state: String) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        if state.len() > MAX_STATE_BYTES {
            open.terminated_early = true;
        }
        open.state = state;
        open.terminated_early
    }

    /// The open window's final invoke succeeded: the window and its state are dropped.
    /// Returns the checkpoint held back during the window, to write now.
    pub fn final_succeeded(&mut self) -> Option<SequenceNumber> {
        self.open = None;
        self.held_checkpoint.take()
    }

    /// The shard's position moved after `after` (records done, discarded or filtered out).
    /// Returns the checkpoint to write now: `after` itself when no window is open, else
    /// `None` while it is held for the window's final invoke.
    pub fn checkpoint(&mut self, after: SequenceNumber) -> Option<SequenceNumber> {
        if self.open.is_some() {
            self.held_checkpoint = Some(after);
            None
        } else {
            Some(after)
        }
    }
}

/// What a windowed invocation's answer means: the engine's outcome, and the new state when
/// the function answered with a valid one (a success or a partial failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowOutcome {
    pub outcome: Outcome,
    pub state: Option<String>,
}

/// Classifies the answer to a windowed invocation: like [`crate::policy::classify`], but
/// the body must be an object with a `state` object, or the invocation failed (AWS: "If the
/// response does not contain a state property, Lambda considers this a failed invocation");
/// that failure is an `InvalidResponse` (a failed attempt with `functionError: null`).
/// `invoked` are the invoked records' sequence numbers (empty for a final invoke).
pub fn classify_window(
    result: &InvokeResult,
    report_batch_item_failures: bool,
    invoked: &[SequenceNumber],
) -> WindowOutcome {
    let response = match result {
        InvokeResult::NotReached(reason) => {
            return WindowOutcome {
                outcome: Outcome::NotReached {
                    reason: reason.clone(),
                },
                state: None,
            }
        }
        InvokeResult::Response(response) => response,
    };
    let context = ResponseContext::from(response);
    if response.function_error.is_some() {
        return WindowOutcome {
            outcome: Outcome::FunctionError {
                response: context,
                timed_out: response.timed_out,
            },
            state: None,
        };
    }
    match parse_window_response(&response.body, report_batch_item_failures, invoked) {
        WindowResponse::Success { state } => WindowOutcome {
            outcome: Outcome::Success,
            state: Some(state),
        },
        WindowResponse::PartialFailure {
            state,
            first_failed_index,
        } => WindowOutcome {
            outcome: Outcome::PartialFailure {
                first_failed: first_failed_index,
                response: context,
            },
            state: Some(state),
        },
        WindowResponse::Invalid { reason } => WindowOutcome {
            outcome: Outcome::InvalidResponse {
                reason,
                response: context,
            },
            state: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::outcome::tests::answer;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;
    /// 2020-07-30T17:00:00Z
    const T0: i64 = 1_596_128_400_000;

    fn tracker() -> WindowTracker {
        WindowTracker::new(300, AWS_CLOSE_GRACE_MS)
    }

    fn ctx() -> EventContext {
        EventContext::sample()
    }

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber(s.to_string())
    }

    // Alignment.

    #[test]
    fn windows_are_aligned_to_multiples_of_the_length_since_the_epoch() {
        let w = window_of(T0 + 2 * MIN + 17_123, 5 * MIN);
        assert_eq!(
            w,
            Window {
                start_ms: T0,
                end_ms: T0 + 5 * MIN
            }
        );
        assert_eq!(window_of(T0, 5 * MIN).start_ms, T0);
        assert_eq!(window_of(T0 + 5 * MIN - 1, 5 * MIN).start_ms, T0);
    }

    #[test]
    fn an_arrival_exactly_at_a_window_end_belongs_to_the_next_window() {
        let w = window_of(T0 + 5 * MIN, 5 * MIN);
        assert_eq!(w.start_ms, T0 + 5 * MIN);
        assert_eq!(w.end_ms, T0 + 10 * MIN);
    }

    #[test]
    fn alignment_holds_before_the_epoch_and_at_the_extremes_without_overflow() {
        assert_eq!(
            window_of(-1, 1000),
            Window {
                start_ms: -1000,
                end_ms: 0
            }
        );
        let top = window_of(i64::MAX, 900_000);
        assert_eq!(top.start_ms, i64::MAX - i64::MAX % 900_000);
        assert_eq!(top.end_ms, i64::MAX, "clamped");
        let bottom = window_of(i64::MIN + 5, 1000);
        assert_eq!(bottom.start_ms, i64::MIN, "clamped");
        assert_eq!(bottom.end_ms, i64::MIN + 1000);
        assert_eq!(window_of(1234, 0), window_of(1234, 1));
    }

    // Batch cuts.

    #[test]
    fn a_batch_is_cut_before_the_first_record_of_a_later_window() {
        let w = window_of(T0, 5 * MIN);
        let arrivals = [T0, T0 + MIN, T0 + 5 * MIN - 1, T0 + 5 * MIN, T0 + 6 * MIN];
        assert_eq!(records_in_window(arrivals, w), (3, true));
        assert_eq!(records_in_window([T0 + 5 * MIN], w), (0, true));
        assert_eq!(records_in_window([T0, T0 + 1], w), (2, false));
        assert_eq!(records_in_window([], w), (0, false));
    }

    #[test]
    fn a_record_stamped_before_the_open_window_joins_it() {
        let w = window_of(T0, 5 * MIN);
        assert_eq!(records_in_window([T0, T0 - 10, T0 + 1], w), (3, false));
    }

    // Tracker transitions.

    #[test]
    fn the_first_invoke_opens_the_window_of_the_first_record_with_an_empty_state() {
        let mut t = tracker();
        assert_eq!(t.window(), None);
        let step = t.next_step([T0 + MIN, T0 + 2 * MIN, T0 + 6 * MIN], false, T0 + 7 * MIN);
        assert_eq!(
            step,
            Step::Invoke {
                records: 2,
                cut_now: true
            },
            "a record of the next window is waiting: the run is complete"
        );
        assert_eq!(t.window(), Some(window_of(T0, 5 * MIN)));
        let ctx = ctx();
        let fields = t.fields(&ctx, false).expect("a window is open");
        assert_eq!(fields.state, "{}");
        assert!(!fields.is_final_invoke && !fields.is_terminated_early);
        assert_eq!(fields.shard_id, "shardId-000000000000");
    }

    #[test]
    fn the_returned_state_is_carried_to_the_next_invoke_of_the_window() {
        let mut t = tracker();
        t.next_step([T0], false, T0);
        assert!(!t.accept_state(r#"{"n":1}"#.into()));
        assert_eq!(
            t.next_step([T0 + MIN], false, T0 + MIN),
            Step::Invoke {
                records: 1,
                cut_now: false
            }
        );
        let ctx = ctx();
        assert_eq!(t.fields(&ctx, false).map(|f| f.state), Some(r#"{"n":1}"#));
    }

    #[test]
    fn a_record_of_a_later_window_closes_the_open_one_with_a_final_invoke_then_opens_fresh() {
        let mut t = tracker();
        t.next_step([T0], false, T0);
        t.accept_state(r#"{"n":1}"#.into());
        assert_eq!(
            t.next_step([T0 + 5 * MIN], false, T0 + 5 * MIN),
            Step::Final
        );
        let ctx = ctx();
        let fields = t.fields(&ctx, true).expect("open");
        assert!(fields.is_final_invoke && !fields.is_terminated_early);
        assert_eq!(fields.state, r#"{"n":1}"#);
        t.final_succeeded();
        assert_eq!(t.window(), None);
        assert_eq!(
            t.next_step([T0 + 5 * MIN], false, T0 + 5 * MIN),
            Step::Invoke {
                records: 1,
                cut_now: false
            }
        );
        assert_eq!(t.window().map(|w| w.start_ms), Some(T0 + 5 * MIN));
        assert_eq!(t.fields(&ctx, false).map(|f| f.state), Some("{}"));
    }

    #[test]
    fn an_idle_window_waits_for_the_grace_after_its_end_then_closes_on_the_clock() {
        let mut t = WindowTracker::new(300, 2 * MIN);
        t.next_step([T0], false, T0);
        let closes_at = T0 + 7 * MIN;
        assert_eq!(
            t.next_step([], false, T0 + 5 * MIN),
            Step::Wait {
                until_ms: Some(closes_at)
            }
        );
        assert_eq!(
            t.next_step([], false, closes_at - 1),
            Step::Wait {
                until_ms: Some(closes_at)
            }
        );
        assert_eq!(t.next_step([], false, closes_at), Step::Final);
    }

    #[test]
    fn the_end_of_the_shard_closes_the_open_window_once_its_records_are_done() {
        let mut t = tracker();
        t.next_step([T0], false, T0);
        assert_eq!(
            t.next_step([T0 + 1], true, T0 + 1),
            Step::Invoke {
                records: 1,
                cut_now: true
            },
            "records still waiting are invoked first"
        );
        assert_eq!(t.next_step([], true, T0 + 2), Step::Final);
    }

    #[test]
    fn without_records_or_an_open_window_there_is_nothing_to_do() {
        let mut t = tracker();
        assert_eq!(t.next_step([], true, T0), Step::Wait { until_ms: None });
        assert_eq!(t.window(), None);
    }

    #[test]
    fn a_state_over_one_mebibyte_ends_the_window_early_and_the_rest_starts_a_new_window() {
        let mut t = tracker();
        t.next_step([T0, T0 + 1], false, T0);
        let exactly = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_STATE_BYTES - 8));
        assert_eq!(exactly.len(), MAX_STATE_BYTES);
        assert!(!t.accept_state(exactly), "1 MB exactly is allowed");
        let over = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_STATE_BYTES - 7));
        assert!(t.accept_state(over.clone()));
        assert_eq!(t.next_step([T0 + 1], false, T0 + 1), Step::Final);
        let ctx = ctx();
        let fields = t.fields(&ctx, true).expect("open");
        assert!(fields.is_final_invoke && fields.is_terminated_early);
        assert_eq!(fields.state, over);
        t.final_succeeded();
        assert_eq!(
            t.next_step([T0 + 1], false, T0 + 1),
            Step::Invoke {
                records: 1,
                cut_now: false
            }
        );
        assert_eq!(t.window(), Some(window_of(T0, 5 * MIN)), "same bounds");
        let fields = t.fields(&ctx, false).expect("open");
        assert_eq!(fields.state, "{}");
        assert!(!fields.is_terminated_early);
    }

    #[test]
    fn checkpoints_are_held_during_a_window_and_released_by_its_final_invoke() {
        let mut t = tracker();
        assert_eq!(t.checkpoint(seq("5")), Some(seq("5")), "no window open");
        t.next_step([T0], false, T0);
        assert_eq!(t.checkpoint(seq("6")), None);
        assert_eq!(t.checkpoint(seq("7")), None);
        assert_eq!(t.final_succeeded(), Some(seq("7")));
        assert_eq!(t.final_succeeded(), None);
        assert_eq!(t.checkpoint(seq("8")), Some(seq("8")));
    }

    #[test]
    fn no_fields_and_no_state_change_without_an_open_window() {
        let mut t = tracker();
        assert!(t.fields(&ctx(), true).is_none());
        assert!(!t.accept_state("x".repeat(MAX_STATE_BYTES + 1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn driving_the_tracker_invokes_each_record_once_in_its_window_and_closes_every_window(
            gaps in proptest::collection::vec(0i64..200_000, 0..60),
            batch_size in 1usize..8,
            window_seconds in 1u32..300,
        ) {
            let len_ms = i64::from(window_seconds) * 1000;
            let arrivals: Vec<i64> = gaps
                .iter()
                .scan(T0, |t, gap| {
                    *t += gap;
                    Some(*t)
                })
                .collect();
            let mut t = WindowTracker::new(window_seconds, AWS_CLOSE_GRACE_MS);
            let mut next = 0;
            let mut closed = Vec::new();
            for _ in 0..1000 {
                match t.next_step(arrivals[next..].iter().copied(), true, T0) {
                    Step::Invoke { records, cut_now } => {
                        prop_assert!(cut_now, "the shard has ended");
                        let n = records.min(batch_size);
                        prop_assert!(n >= 1);
                        for &arrival in &arrivals[next..next + n] {
                            prop_assert_eq!(Some(window_of(arrival, len_ms)), t.window());
                        }
                        next += n;
                        let state = format!("{{\"done\":{next}}}");
                        prop_assert!(!t.accept_state(state));
                    }
                    Step::Final => {
                        closed.push(t.window());
                        t.final_succeeded();
                    }
                    Step::Wait { .. } => break,
                }
            }
            prop_assert_eq!(next, arrivals.len());
            let mut windows: Vec<Option<Window>> =
                arrivals.iter().map(|&a| Some(window_of(a, len_ms))).collect();
            windows.dedup();
            prop_assert_eq!(closed, windows);
        }
    }

    // Classification.

    #[test]
    fn a_success_with_a_state_gives_the_state() {
        let w = classify_window(&answer(None, r#"{"state":{"k": 2}}"#), false, &[seq("1")]);
        assert_eq!(w.outcome, Outcome::Success);
        assert_eq!(w.state.as_deref(), Some(r#"{"k":2}"#));
    }

    #[test]
    fn a_response_without_state_is_an_invalid_response_and_keeps_no_state() {
        let w = classify_window(&answer(None, "{}"), false, &[seq("1")]);
        assert!(
            matches!(&w.outcome, Outcome::InvalidResponse { reason, response }
                if reason.contains("state") && response.function_error.is_none()),
            "{w:?}"
        );
        assert_eq!(w.state, None);
    }

    #[test]
    fn a_partial_failure_keeps_the_returned_state() {
        let body = r#"{"state":{},"batchItemFailures":[{"itemIdentifier":"2"}]}"#;
        let w = classify_window(&answer(None, body), true, &[seq("1"), seq("2")]);
        assert!(matches!(
            w.outcome,
            Outcome::PartialFailure {
                first_failed: 1,
                ..
            }
        ));
        assert_eq!(w.state.as_deref(), Some("{}"));
    }

    #[test]
    fn function_errors_and_throttles_are_classified_before_the_body_is_read() {
        let w = classify_window(&answer(Some("Unhandled"), r#"{"state":{}}"#), true, &[]);
        assert!(matches!(w.outcome, Outcome::FunctionError { .. }));
        assert_eq!(w.state, None);
        let w = classify_window(&InvokeResult::NotReached("throttled".into()), true, &[]);
        assert!(matches!(w.outcome, Outcome::NotReached { .. }));
    }
}
