//! Tests of `BatchRetry`, beside it in their own file: the state machine is one
//! cohesive piece, its examples and properties are longer than it.

use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_000_000_000;

fn limits(retries: Option<u32>, age_ms: Option<i64>, bisect: bool) -> RetryLimits {
    RetryLimits {
        maximum_retry_attempts: retries,
        maximum_record_age_ms: age_ms,
        bisect_on_function_error: bisect,
    }
}

/// A 200 answer of `$LATEST`, with `function_error` set or not.
fn answered(function_error: Option<&str>) -> ResponseContext {
    ResponseContext {
        status_code: 200,
        executed_version: "$LATEST".into(),
        function_error: function_error.map(str::to_string),
    }
}

fn unhandled() -> ResponseContext {
    answered(Some("Unhandled"))
}

fn function_error() -> Outcome {
    Outcome::FunctionError {
        response: unhandled(),
        timed_out: false,
    }
}

fn partial(first_failed: usize) -> Outcome {
    Outcome::PartialFailure {
        first_failed,
        response: answered(None),
    }
}

fn fresh(n: usize) -> Vec<i64> {
    vec![NOW; n]
}

/// Drives a batch where `fails(range)` says whether invoking `range` fails; returns the
/// invoked ranges and the discards.
fn drive(
    retry: &mut BatchRetry,
    arrivals: &[i64],
    mut outcome_for: impl FnMut(&Range<usize>) -> Outcome,
) -> (Vec<Range<usize>>, Vec<Discard>) {
    let (mut invoked, mut discards) = (vec![], vec![]);
    for _ in 0..10_000 {
        match retry.next_step(arrivals, NOW) {
            Step::Done => return (invoked, discards),
            Step::Discard(d) => discards.push(d),
            Step::Invoke { range, .. } => {
                let resolution = retry.on_outcome(&outcome_for(&range));
                invoked.push(range);
                discards.extend(resolution.discarded);
            }
        }
    }
    panic!("the batch never finished");
}

#[test]
fn a_skip_discards_only_the_failing_half_of_a_bisected_batch() {
    let mut retry = BatchRetry::new(4, limits(None, None, true));
    // 0..4 fails and splits; 0..2 fails and splits; 0..1 fails and is retried.
    for _ in 0..3 {
        let Step::Invoke { .. } = retry.next_step(&fresh(4), NOW) else {
            panic!("expected an invoke");
        };
        retry.on_outcome(&function_error());
    }
    assert_eq!(retry.current().map(|s| s.start..s.end), Some(0..1));
    let skipped = retry.skip_current().expect("a segment to skip");
    assert_eq!(skipped.range, 0..1);
    assert_eq!(skipped.condition, Condition::SkippedByOperator);
    assert_eq!(skipped.approximate_invoke_count, 3);
    assert_eq!(skipped.response, Some(unhandled()));
    assert_eq!(
        retry.next_step(&fresh(4), NOW),
        Step::Invoke {
            range: 1..2,
            attempt: 1
        },
        "the rest of the batch goes on"
    );
}

#[test]
fn maximum_retry_attempts_n_gives_n_plus_1_invocations_and_an_invoke_count_of_n_plus_1() {
    // (MaximumRetryAttempts, records): 0 discards after the first failure.
    for (retries, len) in [(0, 1), (1, 3), (2, 3)] {
        let mut retry = BatchRetry::new(len, limits(Some(retries), None, false));
        let (invoked, discards) = drive(&mut retry, &fresh(len), |_| function_error());
        let invocations = retries as usize + 1;
        assert_eq!(invoked.len(), invocations, "retries {retries}");
        assert_eq!(discards.len(), 1);
        assert_eq!(discards[0].condition, Condition::RetryAttemptsExhausted);
        assert_eq!(discards[0].approximate_invoke_count, invocations as u32);
        assert_eq!(discards[0].range, 0..len);
        assert_eq!(
            discards[0]
                .response
                .as_ref()
                .and_then(|r| r.function_error.as_deref()),
            Some("Unhandled")
        );
    }
}

#[test]
fn unlimited_retries_keep_retrying_and_report_each_failure_as_counted() {
    let mut retry = BatchRetry::new(2, limits(None, None, false));
    for attempt in 1..=50 {
        assert_eq!(
            retry.next_step(&fresh(2), NOW),
            Step::Invoke {
                range: 0..2,
                attempt
            }
        );
        let resolution = retry.on_outcome(&function_error());
        assert_eq!(
            resolution.next,
            Next::RetryAfterFailure {
                failed_attempts: attempt
            }
        );
        assert!(resolution.discarded.is_none());
    }
}

#[test]
fn success_resolves_the_whole_batch() {
    let mut retry = BatchRetry::new(5, limits(Some(0), None, true));
    assert_eq!(
        retry.next_step(&fresh(5), NOW),
        Step::Invoke {
            range: 0..5,
            attempt: 1
        }
    );
    let resolution = retry.on_outcome(&Outcome::Success);
    assert_eq!(resolution.succeeded, Some(0..5));
    assert_eq!(retry.next_step(&fresh(5), NOW), Step::Done);
}

#[test]
fn throttles_are_retried_without_counting_towards_the_retry_limit() {
    let mut retry = BatchRetry::new(2, limits(Some(0), None, false));
    for _ in 0..20 {
        assert_eq!(
            retry.next_step(&fresh(2), NOW),
            Step::Invoke {
                range: 0..2,
                attempt: 1
            }
        );
        let resolution = retry.on_outcome(&Outcome::NotReached {
            reason: "TooManyRequests".into(),
        });
        assert_eq!(resolution.next, Next::RetryNotCounted);
    }
    retry.next_step(&fresh(2), NOW);
    let resolution = retry.on_outcome(&function_error());
    assert_eq!(
        resolution.discarded.map(|d| d.approximate_invoke_count),
        Some(1)
    );
}

#[test]
fn the_aws_observed_partial_failure_case_discards_only_the_sixth_record_with_count_4_and_null_function_error(
) {
    // BatchSize 3, 6 records, only the 6th fails, MaximumRetryAttempts 3: the second
    // batch (records 4..6) reports record 6; only it is retried; count 4.
    let mut first = BatchRetry::new(3, limits(Some(3), None, false));
    let (_, discards) = drive(&mut first, &fresh(3), |_| Outcome::Success);
    assert!(discards.is_empty());
    let mut second = BatchRetry::new(3, limits(Some(3), None, false));
    let (invoked, discards) = drive(&mut second, &fresh(3), |range| partial(2 - range.start));
    assert_eq!(invoked, vec![0..3, 2..3, 2..3, 2..3]);
    assert_eq!(discards.len(), 1);
    assert_eq!(discards[0].range, 2..3);
    assert_eq!(discards[0].approximate_invoke_count, 4);
    assert_eq!(
        discards[0]
            .response
            .as_ref()
            .map(|r| r.function_error.clone()),
        Some(None)
    );
}

#[test]
fn a_partial_failure_checkpoints_before_the_lowest_reported_record() {
    let mut retry = BatchRetry::new(10, limits(None, None, false));
    retry.next_step(&fresh(10), NOW);
    let resolution = retry.on_outcome(&partial(4));
    assert_eq!(resolution.succeeded, Some(0..4));
    assert_eq!(
        resolution.next,
        Next::RetryAfterFailure { failed_attempts: 1 }
    );
    assert_eq!(
        retry.next_step(&fresh(10), NOW),
        Step::Invoke {
            range: 4..10,
            attempt: 2
        }
    );
}

#[test]
fn with_bisect_a_partial_failure_retries_the_rest_without_halving_it() {
    let mut retry = BatchRetry::new(10, limits(None, None, true));
    retry.next_step(&fresh(10), NOW);
    let resolution = retry.on_outcome(&partial(4));
    assert!(!resolution.bisected);
    assert_eq!(
        retry.next_step(&fresh(10), NOW),
        Step::Invoke {
            range: 4..10,
            attempt: 2
        }
    );
}

#[test]
fn bisect_splits_with_the_first_half_taking_the_extra_record_and_resets_attempts() {
    let mut retry = BatchRetry::new(5, limits(Some(0), None, true));
    retry.next_step(&fresh(5), NOW);
    let resolution = retry.on_outcome(&function_error());
    assert!(resolution.bisected);
    assert_eq!(resolution.next, Next::Continue);
    assert_eq!(
        retry.next_step(&fresh(5), NOW),
        Step::Invoke {
            range: 0..3,
            attempt: 1
        }
    );
    assert_eq!(retry.current().map(|s| s.bisect_depth), Some(1));
}

#[test]
fn an_invalid_batch_response_bisects_like_a_function_error() {
    let mut retry = BatchRetry::new(4, limits(Some(0), None, true));
    retry.next_step(&fresh(4), NOW);
    let invalid = Outcome::InvalidResponse {
        reason: "not JSON".into(),
        response: answered(None),
    };
    assert!(retry.on_outcome(&invalid).bisected);
}

#[test]
fn bisect_isolates_one_poison_record_in_100_and_the_other_99_succeed() {
    let poison = 37;
    let mut retry = BatchRetry::new(100, limits(Some(0), None, true));
    let mut succeeded = 0;
    let mut discards = vec![];
    let mut invocations_holding_poison = 0;
    loop {
        match retry.next_step(&fresh(100), NOW) {
            Step::Done => break,
            Step::Discard(d) => discards.push(d),
            Step::Invoke { range, .. } => {
                let outcome = if range.contains(&poison) {
                    function_error()
                } else {
                    Outcome::Success
                };
                invocations_holding_poison += range.contains(&poison) as u32;
                let resolution = retry.on_outcome(&outcome);
                succeeded += resolution.succeeded.map_or(0, |r| r.len());
                discards.extend(resolution.discarded);
            }
        }
    }
    assert_eq!(succeeded, 99);
    assert_eq!(discards.len(), 1);
    assert_eq!(discards[0].range, poison..poison + 1);
    assert_eq!(
        discards[0].approximate_invoke_count,
        invocations_holding_poison
    );
    // 0..100 -> 0..50 -> 25..50 -> 25..38 -> 32..38 -> 35..38 -> 37..38.
    assert_eq!(invocations_holding_poison, 7);
}

#[test]
fn an_expired_record_in_front_is_discarded_and_the_fresh_ones_are_invoked() {
    // AWS-observed: 1 expired + 5 fresh -> one RecordAgeExceeded of batchSize 1, 5 invoked.
    let max_age = 60_000;
    let mut arrivals = fresh(6);
    arrivals[0] = NOW - max_age;
    let mut retry = BatchRetry::new(6, limits(None, Some(max_age), false));
    match retry.next_step(&arrivals, NOW) {
        Step::Discard(d) => {
            assert_eq!(d.range, 0..1);
            assert_eq!(d.condition, Condition::RecordAgeExceeded);
            assert_eq!(d.response, None);
            assert_eq!(d.approximate_invoke_count, 1);
        }
        other => panic!("expected a discard, got {other:?}"),
    }
    assert_eq!(
        retry.next_step(&arrivals, NOW),
        Step::Invoke {
            range: 1..6,
            attempt: 1
        }
    );
}

#[test]
fn a_record_one_millisecond_short_of_the_age_limit_is_still_invoked() {
    let mut retry = BatchRetry::new(1, limits(None, Some(60_000), false));
    assert_eq!(
        retry.next_step(&[NOW - 59_999], NOW),
        Step::Invoke {
            range: 0..1,
            attempt: 1
        }
    );
}

#[test]
fn the_age_check_runs_before_the_retry_limit_check() {
    // AWS-observed: MaximumRetryAttempts 0 with an expired record gives RecordAgeExceeded
    // with approximateInvokeCount 1.
    let mut retry = BatchRetry::new(1, limits(Some(0), Some(60_000), false));
    assert!(matches!(
        retry.next_step(&[NOW - 120_000], NOW),
        Step::Discard(Discard {
            condition: Condition::RecordAgeExceeded,
            approximate_invoke_count: 1,
            ..
        })
    ));
    assert_eq!(retry.next_step(&[NOW - 120_000], NOW), Step::Done);
}

#[test]
fn records_that_expire_while_retrying_are_discarded_before_the_next_invoke_with_their_count() {
    let mut retry = BatchRetry::new(2, limits(None, Some(60_000), false));
    let arrivals = [NOW, NOW];
    for _ in 0..3 {
        retry.next_step(&arrivals, NOW);
        retry.on_outcome(&function_error());
    }
    match retry.next_step(&arrivals, NOW + 60_000) {
        Step::Discard(d) => {
            assert_eq!(
                (d.range, d.approximate_invoke_count, d.response),
                (0..2, 3, None)
            );
        }
        other => panic!("expected a discard, got {other:?}"),
    }
}

fn outcome_strategy() -> impl Strategy<Value = u8> {
    0u8..5
}

proptest! {
    /// Conservation and order: every record is resolved exactly once, in sequence order,
    /// so the checkpoint (end of the resolved prefix) only moves forward.
    #[test]
    fn every_record_is_resolved_exactly_once_in_order(
        len in 1usize..200,
        retries in proptest::option::of(0u32..4),
        bisect in any::<bool>(),
        age in proptest::option::of(60_000i64..120_000),
        script in proptest::collection::vec((outcome_strategy(), 0usize..300, 0i64..20_000), 1..400),
    ) {
        let mut retry = BatchRetry::new(len, limits(retries, age, bisect));
        let arrivals: Vec<i64> = (0..len as i64).map(|i| i * 10).collect();
        let mut resolved_until = 0usize;
        let mut now = 0i64;
        let mut script = script.into_iter().cycle();
        let mut steps = 0;
        loop {
            steps += 1;
            prop_assert!(steps < 100_000);
            let (kind, cut, advance) = script.next().unwrap_or((0, 0, 0));
            // Without limits a batch only ends by succeeding: end every script that way.
            let kind = if steps > 5_000 { 0 } else { kind };
            now += advance;
            let (resolved, invoked_range) = match retry.next_step(&arrivals, now) {
                Step::Done => break,
                Step::Discard(d) => (vec![d.range], None),
                Step::Invoke { range, .. } => {
                    prop_assert_eq!(range.start, resolved_until, "only the front of the unresolved part is invoked");
                    let outcome = match kind {
                        0 => Outcome::Success,
                        1 => function_error(),
                        2 => partial(cut % range.len()),
                        3 => Outcome::NotReached { reason: "throttled".into() },
                        _ => Outcome::InvalidResponse { reason: "bad".into(), response: unhandled() },
                    };
                    let resolution = retry.on_outcome(&outcome);
                    (resolution.succeeded.into_iter().chain(resolution.discarded.map(|d| d.range)).collect(), Some(range))
                }
            };
            for range in resolved {
                prop_assert_eq!(range.start, resolved_until, "resolutions are contiguous and in order");
                prop_assert!(range.end > range.start);
                if let Some(invoked) = &invoked_range {
                    prop_assert!(range.end <= invoked.end);
                }
                resolved_until = range.end;
            }
        }
        prop_assert_eq!(resolved_until, len, "every record resolved");
    }

    /// With a retry limit, a batch always finishes: failures end in a discard.
    #[test]
    fn with_a_retry_limit_an_always_failing_batch_ends_in_discards_covering_it(
        len in 1usize..300, retries in 0u32..5, bisect in any::<bool>(),
    ) {
        let mut retry = BatchRetry::new(len, limits(Some(retries), None, bisect));
        let (invoked, discards) = drive(&mut retry, &fresh(len), |_| function_error());
        let discarded: usize = discards.iter().map(|d| d.range.len()).sum();
        prop_assert_eq!(discarded, len);
        for d in &discards {
            prop_assert!(d.approximate_invoke_count >= 1);
            let holding = invoked.iter().filter(|r| r.start <= d.range.start && d.range.end <= r.end).count() as u32;
            prop_assert_eq!(d.approximate_invoke_count, holding, "count = invocations whose payload held the records");
            if bisect { prop_assert_eq!(d.range.len(), 1); }
        }
    }
}
