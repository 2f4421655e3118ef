//! A simulated Lambda function: configurable latency and failure rules, answering exactly
//! as Lambda's Invoke would (status, FunctionError, body), in virtual or real time.
//!
//! Each shard gets its own generator, named after the function and the shard, so the
//! latency and the fraction rules fall the same way whatever order shard tasks run in. The
//! whole decision (latency, rule, response) is made under the lock and before any sleep;
//! the sleep itself holds nothing. Draw order per invocation: the latency first (two
//! uniforms, only when `p99_ms` is set; rounded to whole milliseconds), then one draw for
//! each `fraction` rule reached whose text condition holds.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use memchr::memmem;
use serde_json::json;

use super::{error_body, Function, FunctionResponse, Invocation, InvokeResult};
use crate::config::schema::{AwsIdentity, FailureRule, FunctionConfig, RuleAction};
use crate::model::{ShardId, StreamRecord};
use crate::rng::Rng;

/// z of the 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326;

/// A function of the config's `[[functions]]`, answering from its latency and rules.
pub struct SimulatedFunction {
    name: String,
    arn: String,
    seed: u64,
    p50_ms: f64,
    p99_ms: Option<f64>,
    timeout_ms: u64,
    rules: Vec<FailureRule>,
    /// Each shard's generator, made on its first invocation. Hashed and looked up before
    /// inserting: at 10,000 shards an ordered map and a copied id per invocation showed in
    /// the profile, and so did SipHash (hence foldhash).
    rngs: Mutex<foldhash::HashMap<ShardId, Rng>>,
    /// Whether any invocation draws from its shard's generator (a latency spread or a
    /// `fraction` rule). When none does, the generators are never looked up: at 10,000
    /// shards the lookup's cold key comparison was 1% of a simulation.
    draws: bool,
}

/// What an invocation does: wait this long, then answer.
struct Decision {
    sleep_ms: u64,
    result: InvokeResult,
}

impl SimulatedFunction {
    pub fn new(cfg: &FunctionConfig, aws: &AwsIdentity, seed: u64) -> Self {
        SimulatedFunction {
            name: cfg.name.clone(),
            arn: cfg.arn(aws),
            seed,
            p50_ms: cfg.latency.p50_ms,
            p99_ms: cfg.latency.p99_ms,
            timeout_ms: cfg.timeout_seconds.saturating_mul(1000),
            rules: cfg.rules.clone(),
            rngs: Mutex::default(),
            draws: cfg.latency.p99_ms.is_some() || cfg.rules.iter().any(|r| r.fraction.is_some()),
        }
    }

    fn decide(&self, invocation: &Invocation<'_>) -> Decision {
        if !self.draws {
            // Nothing draws (see `draws`): this generator is never read.
            return self.decide_with(&mut Rng::new(0), invocation);
        }
        let mut rngs = self.rngs.lock().unwrap_or_else(|p| p.into_inner());
        let shard = invocation.shard_id;
        if let Some(rng) = rngs.get_mut(shard) {
            return self.decide_with(rng, invocation);
        }
        let rng = rngs
            .entry(shard.clone())
            .or_insert_with(|| Rng::derived(self.seed, &format!("{}/{shard}", self.name)));
        self.decide_with(rng, invocation)
    }

    /// The decision for an invocation, drawn from its shard's generator.
    fn decide_with(&self, rng: &mut Rng, invocation: &Invocation<'_>) -> Decision {
        let latency_ms = sample_latency_ms(self.p50_ms, self.p99_ms, rng);
        for rule in &self.rules {
            if let Some(matching) = applies(rule, invocation.records, rng) {
                return self.act(rule, &matching, invocation.records, latency_ms);
            }
        }
        let body = match windowed_state(invocation.payload) {
            Some(state) => json!({ "state": state }).to_string().into_bytes(),
            None => b"null".to_vec(),
        };
        self.respond(latency_ms, None, body)
    }

    fn act(
        &self,
        rule: &FailureRule,
        matching: &[&StreamRecord],
        records: &[StreamRecord],
        latency_ms: u64,
    ) -> Decision {
        match rule.action {
            RuleAction::Error => {
                let message = match (rule.when_data_contains.is_some(), matching.first()) {
                    (true, Some(record)) => format!("poison record {}", record.sequence_number),
                    _ => "simulated failure".to_string(),
                };
                self.respond(latency_ms, Some("Unhandled"), error_body(&message, "Error"))
            }
            RuleAction::Partial => {
                let failed: Vec<&StreamRecord> = if rule.when_data_contains.is_some() {
                    matching.to_vec()
                } else {
                    records.first().into_iter().collect()
                };
                let items: Vec<_> = failed
                    .iter()
                    .map(|r| json!({"itemIdentifier": r.sequence_number.as_str()}))
                    .collect();
                let body = json!({ "batchItemFailures": items }).to_string();
                self.respond(latency_ms, None, body.into_bytes())
            }
            RuleAction::Timeout => self.timed_out(),
            RuleAction::Malformed => {
                let body = rule
                    .body
                    .clone()
                    .unwrap_or_else(|| r#"{"batchItemFailures":"oops"}"#.to_string());
                self.respond(latency_ms, None, body.into_bytes())
            }
            RuleAction::Throttle => Decision {
                sleep_ms: 0,
                result: InvokeResult::NotReached(
                    "TooManyRequestsException: Rate Exceeded.".to_string(),
                ),
            },
        }
    }

    /// A response after `latency_ms`, or a timeout when that is past the function timeout.
    fn respond(&self, latency_ms: u64, function_error: Option<&str>, body: Vec<u8>) -> Decision {
        if latency_ms >= self.timeout_ms {
            return self.timed_out();
        }
        Decision {
            sleep_ms: latency_ms,
            result: InvokeResult::Response(FunctionResponse::answered(function_error, body)),
        }
    }

    fn timed_out(&self) -> Decision {
        Decision {
            sleep_ms: self.timeout_ms,
            result: InvokeResult::Response(FunctionResponse::timed_out(
                self.timeout_ms as f64 / 1000.0,
            )),
        }
    }
}

/// Whether a rule applies to this batch: Some(the records its text matches; empty when
/// it has no text condition).
fn applies<'r>(
    rule: &FailureRule,
    records: &'r [StreamRecord],
    rng: &mut Rng,
) -> Option<Vec<&'r StreamRecord>> {
    let matching = match &rule.when_data_contains {
        Some(text) => {
            let finder = memmem::Finder::new(text.as_bytes());
            let matching: Vec<&StreamRecord> = records
                .iter()
                .filter(|r| finder.find(r.data_for_matching()).is_some())
                .collect();
            if matching.is_empty() {
                return None;
            }
            matching
        }
        None => Vec::new(),
    };
    if let Some(fraction) = rule.fraction {
        // A NaN fraction never applies.
        let draw = rng.next_f64();
        if draw >= fraction || fraction.is_nan() {
            return None;
        }
    }
    Some(matching)
}

/// Whole milliseconds: `p50` when `p99` is absent, else log-normal with median `p50` and
/// 99th percentile `p99` (Box-Muller from `rng`).
fn sample_latency_ms(p50: f64, p99: Option<f64>, rng: &mut Rng) -> u64 {
    if !p50.is_finite() || p50 <= 0.0 {
        return 0;
    }
    let ms = match p99 {
        None => p50,
        Some(p99) => {
            let u1 = 1.0 - rng.next_f64();
            let u2 = rng.next_f64();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let sigma = (p99 / p50).ln() / Z_99;
            if sigma.is_finite() && sigma > 0.0 {
                (p50.ln() + sigma * z).exp()
            } else {
                p50
            }
        }
    };
    // Saturating float-to-int conversion: huge values become u64::MAX (a timeout).
    if ms.is_finite() {
        ms.round() as u64
    } else {
        u64::MAX
    }
}

#[async_trait]
impl Function for SimulatedFunction {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        let decision = self.decide(&invocation);
        if decision.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(decision.sleep_ms)).await;
        }
        decision.result
    }
}

/// A simulated function answering a tumbling-window event aggregates like the AWS
/// examples do: its state counts the records and sums their data's `amount` field (the
/// simulated producers write one), carried from the event's `state`. `None` for an event
/// without a window.
fn windowed_state(payload: &[u8]) -> Option<serde_json::Value> {
    // Built once: building a searcher cost more than searching the tail (~1% of a
    // 10,000-shard simulation, which checks every invocation's event).
    static WINDOW_FIELD: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"isFinalInvokeForWindow\""));
    let tail = &payload[payload.len().saturating_sub(96)..];
    WINDOW_FIELD.find(tail)?;
    let event: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let state = &event["state"];
    let (mut count, mut sum) = (
        state["count"].as_u64().unwrap_or(0),
        state["sum"].as_u64().unwrap_or(0),
    );
    for record in event["Records"].as_array().into_iter().flatten() {
        count += 1;
        let data = record["kinesis"]["data"].as_str().unwrap_or("");
        let amount = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|data| data["amount"].as_u64())
            .unwrap_or(0);
        sum += amount;
    }
    Some(json!({ "count": count, "sum": sum }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::LatencyConfig;
    use crate::model::{RecordBody, SequenceNumber};
    use tokio::time::Instant;

    fn function(p50_ms: f64, p99_ms: Option<f64>, rules: Vec<FailureRule>) -> SimulatedFunction {
        let cfg = FunctionConfig {
            name: "processor".into(),
            function_type: "simulated".into(),
            latency: LatencyConfig { p50_ms, p99_ms },
            timeout_seconds: 3,
            rules,
            ..Default::default()
        };
        SimulatedFunction::new(&cfg, &AwsIdentity::default(), 11)
    }

    fn rule(action: RuleAction, when: Option<&str>, fraction: Option<f64>) -> FailureRule {
        FailureRule {
            when_data_contains: when.map(String::from),
            fraction,
            action,
            body: None,
        }
    }

    fn records(poison_at: &[usize]) -> Vec<StreamRecord> {
        (0..6)
            .map(|i| {
                let data = if poison_at.contains(&i) {
                    format!(r#"{{"n":{i},"poison":true}}"#)
                } else {
                    format!(r#"{{"n":{i}}}"#)
                };
                StreamRecord {
                    sequence_number: SequenceNumber(format!("{:056}", 100 + i)),
                    approximate_arrival_ms: 0,
                    body: RecordBody::Kinesis {
                        partition_key: "k".into(),
                        data: data.into_bytes(),
                    },
                }
            })
            .collect()
    }

    async fn invoke(f: &SimulatedFunction, records: &[StreamRecord]) -> (InvokeResult, Duration) {
        let shard = ShardId("shardId-000000000000".into());
        let started = Instant::now();
        let result = f
            .invoke(Invocation {
                shard_id: &shard,
                payload: b"{}",
                records,
            })
            .await;
        (result, started.elapsed())
    }

    fn response(result: InvokeResult) -> FunctionResponse {
        match result {
            InvokeResult::Response(r) => r,
            InvokeResult::NotReached(why) => panic!("not reached: {why}"),
        }
    }

    fn seq(i: usize) -> String {
        format!("{:056}", 100 + i)
    }

    #[tokio::test(start_paused = true)]
    async fn without_rules_the_function_succeeds_after_its_latency_with_a_null_body() {
        let f = function(20.0, None, Vec::new());
        let (result, took) = invoke(&f, &records(&[])).await;
        assert_eq!(took, Duration::from_millis(20));
        let r = response(result);
        assert_eq!(
            (r.status_code, r.function_error, r.timed_out),
            (200, None, false)
        );
        assert_eq!(r.executed_version, "$LATEST");
        assert_eq!(r.body, b"null");
        assert_eq!(
            f.function_arn(),
            "arn:aws:lambda:us-east-1:123456789012:function:processor"
        );
        let instant = function(0.0, None, Vec::new());
        assert_eq!(invoke(&instant, &records(&[])).await.1, Duration::ZERO);
    }

    #[test]
    fn a_windowed_event_gets_its_state_carried_with_the_records_counted_and_summed() {
        let data = |amount: u64| {
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{{\"amount\":{amount}}}"),
            )
        };
        let event = format!(
            r#"{{"Records":[{{"kinesis":{{"data":"{}"}}}},{{"kinesis":{{"data":"{}"}}}}],"window":{{}},"state":{{"count":1,"sum":5}},"isFinalInvokeForWindow":false}}"#,
            data(10),
            data(7)
        );
        assert_eq!(
            windowed_state(event.as_bytes()),
            Some(json!({"count": 3, "sum": 22}))
        );
        let final_invoke =
            r#"{"Records":[],"state":{"count":3,"sum":22},"isFinalInvokeForWindow":true}"#;
        assert_eq!(
            windowed_state(final_invoke.as_bytes()),
            Some(json!({"count": 3, "sum": 22}))
        );
        assert_eq!(windowed_state(br#"{"Records":[]}"#), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_rule_names_the_first_poison_record() {
        let f = function(
            5.0,
            None,
            vec![rule(RuleAction::Error, Some("\"poison\":true"), None)],
        );
        let r = response(invoke(&f, &records(&[2, 4])).await.0);
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        assert!(!r.timed_out);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["errorMessage"], format!("poison record {}", seq(2)));
        assert_eq!(body["errorType"], "Error");
        let clean = response(invoke(&f, &records(&[])).await.0);
        assert_eq!(clean.function_error, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_rule_lists_exactly_the_matching_records() {
        let f = function(
            5.0,
            None,
            vec![rule(RuleAction::Partial, Some("poison"), None)],
        );
        let r = response(invoke(&f, &records(&[1, 3, 5])).await.0);
        assert_eq!(r.function_error, None);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let ids: Vec<&str> = body["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["itemIdentifier"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![seq(1), seq(3), seq(5)]);
        let fraction_only = function(5.0, None, vec![rule(RuleAction::Partial, None, Some(1.0))]);
        let r = response(invoke(&fraction_only, &records(&[])).await.0);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            format!(
                r#"{{"batchItemFailures":[{{"itemIdentifier":"{}"}}]}}"#,
                seq(0)
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_rule_runs_for_the_whole_timeout_and_fails() {
        let f = function(
            5.0,
            None,
            vec![rule(RuleAction::Timeout, Some("poison"), None)],
        );
        let (result, took) = invoke(&f, &records(&[0])).await;
        assert_eq!(took, Duration::from_secs(3));
        let r = response(result);
        assert!(r.timed_out);
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["errorType"], "Sandbox.Timedout");
        assert_eq!(body["errorMessage"], "Task timed out after 3.00 seconds");
    }

    #[tokio::test(start_paused = true)]
    async fn a_latency_at_or_past_the_timeout_is_a_timeout() {
        let f = function(3_000.0, None, Vec::new());
        let (result, took) = invoke(&f, &records(&[])).await;
        assert_eq!(took, Duration::from_secs(3));
        assert!(response(result).timed_out);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_rule_never_reaches_the_function_and_takes_no_time() {
        let f = function(50.0, None, vec![rule(RuleAction::Throttle, None, None)]);
        let (result, took) = invoke(&f, &records(&[])).await;
        assert_eq!(
            result,
            InvokeResult::NotReached("TooManyRequestsException: Rate Exceeded.".into())
        );
        assert_eq!(took, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_rule_returns_its_body_or_a_default() {
        let mut custom = rule(RuleAction::Malformed, None, None);
        custom.body = Some("not json".into());
        let r = response(
            invoke(&function(1.0, None, vec![custom]), &records(&[]))
                .await
                .0,
        );
        assert_eq!(r.body, b"not json");
        assert_eq!(r.function_error, None);
        let r = response(
            invoke(
                &function(1.0, None, vec![rule(RuleAction::Malformed, None, None)]),
                &records(&[]),
            )
            .await
            .0,
        );
        assert_eq!(r.body, br#"{"batchItemFailures":"oops"}"#);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_applicable_rule_decides_and_fractions_hold_roughly() {
        let rules = vec![
            rule(RuleAction::Throttle, Some("never present"), None),
            rule(RuleAction::Error, None, Some(0.25)),
            rule(RuleAction::Malformed, None, None),
        ];
        let outcomes = |f: SimulatedFunction| async move {
            let mut out = Vec::new();
            for _ in 0..400 {
                let r = response(invoke(&f, &records(&[])).await.0);
                out.push(r.function_error.is_some());
                if r.function_error.is_some() {
                    assert!(String::from_utf8(r.body)
                        .unwrap()
                        .contains("simulated failure"));
                } else {
                    assert_eq!(r.body, br#"{"batchItemFailures":"oops"}"#);
                }
            }
            out
        };
        let a = outcomes(function(0.0, None, rules.clone())).await;
        let b = outcomes(function(0.0, None, rules)).await;
        assert_eq!(a, b, "the same seed gives the same failures");
        let errors = a.iter().filter(|&&e| e).count();
        assert!((70..=130).contains(&errors), "{errors} of 400");
    }

    #[test]
    fn log_normal_latency_has_the_configured_median_and_99th_percentile() {
        let mut rng = Rng::new(3);
        let mut samples: Vec<u64> = (0..20_000)
            .map(|_| sample_latency_ms(20.0, Some(200.0), &mut rng))
            .collect();
        samples.sort_unstable();
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((18..=22).contains(&median), "median {median}");
        assert!((160..=250).contains(&p99), "p99 {p99}");
        assert_eq!(sample_latency_ms(20.0, None, &mut rng), 20);
        assert_eq!(sample_latency_ms(0.0, Some(100.0), &mut rng), 0);
        assert_eq!(sample_latency_ms(f64::NAN, None, &mut rng), 0);
        assert_eq!(sample_latency_ms(20.0, Some(10.0), &mut rng), 20);
    }
}
