//! `esm-sim load --table`: writes to a DynamoDB table at a steady rate, so that its stream
//! carries INSERT, MODIFY and REMOVE records.
//!
//! Each generated record (key `user-<n>`, amount, poison, as for Kinesis) becomes one
//! change of item `pk = user-<n>`: PutItem when the item does not exist (as far as this
//! run knows: it starts from an empty key space), UpdateItem when it does, and DeleteItem
//! for every 10th change of an existing item. Which one is decided by the simulator's own
//! item model (`crate::sim::items::Items`), so a table fed by `load` goes through the same
//! INSERT, 8 × MODIFY, REMOVE life as a simulated one. Items hold the simulated images'
//! attributes: `pk` (S), `n` (N, the change's index), `amount` (N), `payload` (S, padding
//! to about `payload_bytes` of DynamoDB JSON) and, on poison changes only, `poison`
//! (BOOL true); an UpdateItem that is not poison removes the attribute, so the marker
//! shows in the poison record's NewImage (and, as DynamoDB works, in the next record's
//! OldImage). A DeleteItem carries no new image: a poison REMOVE shows only through its
//! OldImage, when the item was poison before.
//!
//! Changes go out on the same ticker schedule as the Kinesis load, up to
//! `MAX_IN_FLIGHT` at once (one call at a time cannot hold a few hundred a second against
//! DynamoDB's latency) but never two of the same item: a change waits for the item's
//! previous one, so each item's INSERT, MODIFYs and REMOVE reach its stream in order. A
//! change that fails transiently is retried in place, with backoff, for the same reason;
//! after `max_retries` retries it is given up and counted as failed. The plan is pure
//! (`Planner`, `image_pad_len`, `update_expression`); `load_table` does the calls.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::generate::{Generated, Generator};
use super::pacing::{retry_delay, TICK};
use super::progress::Progress;
use super::{Controls, LoadSpec, Summary};
use crate::aws::{self, AwsFactory, ErrorClass};
use crate::sim::items::{Items, EVENT_INSERT, EVENT_REMOVE};

/// DynamoDB's item limit is 400 KB; leave room for the other attributes.
pub const MAX_ITEM_PAYLOAD_BYTES: usize = 350_000;

const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// Which call a change is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new item: PutItem (INSERT).
    Put,
    /// An existing item: UpdateItem (MODIFY).
    Update,
    /// Every 10th change of an existing item: DeleteItem (REMOVE).
    Delete,
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    pub record: Generated,
}

/// Tracks the items this run has written and decides each change's call.
pub struct Planner {
    items: Items,
}

impl Planner {
    pub fn new(keys: u64) -> Planner {
        Planner {
            items: Items::new(&[keys.max(1)]),
        }
    }

    pub fn plan(&mut self, record: Generated) -> Change {
        let (event, _) = self.items.change(0, record.n, 0, record.k);
        let op = match event {
            EVENT_INSERT => Op::Put,
            EVENT_REMOVE => Op::Delete,
            _ => Op::Update,
        };
        Change { op, record }
    }
}

/// The length of the `payload` string that makes the item's DynamoDB JSON (without the
/// poison marker) about `payload_bytes` long, as the simulated images are.
pub fn image_pad_len(record: &Generated, payload_bytes: usize) -> usize {
    let unpadded = format!(
        r#"{{"pk":{{"S":"{}"}},"n":{{"N":"{}"}},"amount":{{"N":"{}"}},"payload":{{"S":""}}}}"#,
        record.partition_key, record.k, record.amount
    );
    payload_bytes.saturating_sub(unpadded.len())
}

/// The UpdateItem expression of a change (names `#n #amount #payload #poison`).
pub fn update_expression(poison: bool) -> &'static str {
    if poison {
        "SET #n = :n, #amount = :amount, #payload = :payload, #poison = :poison"
    } else {
        "SET #n = :n, #amount = :amount, #payload = :payload REMOVE #poison"
    }
}

fn table_not_found(table: &str) -> anyhow::Error {
    anyhow::anyhow!("Table not found: {table}")
}

/// Checks that `table` exists and is keyed by `pk` (S) alone; warns when it has no stream.
async fn check_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| match aws::classify(&e) {
            ErrorClass::NotFound => table_not_found(table),
            _ => anyhow::anyhow!("DescribeTable {table}: {}", aws::describe(&e)),
        })?;
    let Some(description) = output.table() else {
        return Err(table_not_found(table));
    };
    let key: Vec<String> = description
        .key_schema()
        .iter()
        .map(|k| {
            let kind = description
                .attribute_definitions()
                .iter()
                .find(|d| d.attribute_name() == k.attribute_name())
                .map_or("?", |d| d.attribute_type().as_str());
            format!("{} ({kind}, {})", k.attribute_name(), k.key_type().as_str())
        })
        .collect();
    let pk_string = description
        .attribute_definitions()
        .iter()
        .any(|d| d.attribute_name() == "pk" && *d.attribute_type() == ScalarAttributeType::S);
    let keyed_by_pk = matches!(description.key_schema(), [only]
        if only.attribute_name() == "pk" && *only.key_type() == KeyType::Hash);
    if !(keyed_by_pk && pk_string) {
        anyhow::bail!(
            "table {table}: the load generator writes items keyed by pk (S) alone; this table's key is {}",
            key.join(", ")
        );
    }
    if !description
        .stream_specification()
        .is_some_and(|s| s.stream_enabled())
    {
        tracing::warn!(
            table,
            "the table has no stream enabled: its writes feed no stream"
        );
    }
    Ok(())
}

struct Writer {
    client: aws_sdk_dynamodb::Client,
    table: String,
    payload_bytes: usize,
    max_retries: u32,
    stop: CancellationToken,
}

/// What became of one change.
struct Outcome {
    op: Op,
    key: String,
    throttled: u64,
    retried_errors: u64,
    /// Err: given up, with why.
    result: Result<(), String>,
}

impl Writer {
    /// Sends one change; Ok(Err(..)) is a retryable error (throttled or not).
    async fn send(&self, change: &Change) -> anyhow::Result<Result<(), (bool, String)>> {
        let record = &change.record;
        let key = AttributeValue::S(record.partition_key.clone());
        let n = AttributeValue::N(record.k.to_string());
        let amount = AttributeValue::N(record.amount.to_string());
        let payload = AttributeValue::S("x".repeat(image_pad_len(record, self.payload_bytes)));
        macro_rules! outcome {
            ($result:expr, $call:literal) => {
                match $result {
                    Ok(_) => Ok(Ok(())),
                    Err(error) => match aws::classify(&error) {
                        ErrorClass::NotFound => Err(table_not_found(&self.table)),
                        ErrorClass::Transient => Ok(Err((
                            aws::error_code(&error).is_some_and(|c| THROTTLE_CODES.contains(&c)),
                            aws::describe(&error),
                        ))),
                        ErrorClass::Permanent => Err(anyhow::anyhow!(
                            "{} {} on {}: {}",
                            $call,
                            record.partition_key,
                            self.table,
                            aws::describe(&error)
                        )),
                    },
                }
            };
        }
        match change.op {
            Op::Put => {
                let mut request = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", key)
                    .item("n", n)
                    .item("amount", amount)
                    .item("payload", payload);
                if record.poison {
                    request = request.item("poison", AttributeValue::Bool(true));
                }
                outcome!(request.send().await, "PutItem")
            }
            Op::Update => {
                let mut request = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", key)
                    .update_expression(update_expression(record.poison))
                    .expression_attribute_names("#n", "n")
                    .expression_attribute_names("#amount", "amount")
                    .expression_attribute_names("#payload", "payload")
                    .expression_attribute_names("#poison", "poison")
                    .expression_attribute_values(":n", n)
                    .expression_attribute_values(":amount", amount)
                    .expression_attribute_values(":payload", payload);
                if record.poison {
                    request =
                        request.expression_attribute_values(":poison", AttributeValue::Bool(true));
                }
                outcome!(request.send().await, "UpdateItem")
            }
            Op::Delete => {
                let request = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", key);
                outcome!(request.send().await, "DeleteItem")
            }
        }
    }

    /// Sends `change`, retrying a transient failure in place with backoff until it
    /// succeeds, is given up after `max_retries` retries, or the run is stopped.
    async fn apply(&self, change: Change) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome {
            op: change.op,
            key: change.record.partition_key.clone(),
            throttled: 0,
            retried_errors: 0,
            result: Ok(()),
        };
        let mut attempts = 0u32;
        loop {
            let Err((throttled, error)) = self.send(&change).await? else {
                return Ok(outcome);
            };
            if throttled {
                outcome.throttled += 1;
            } else {
                outcome.retried_errors += 1;
            }
            attempts += 1;
            if attempts > self.max_retries {
                outcome.result = Err(format!("{:?} of {}: {error}", change.op, outcome.key));
                return Ok(outcome);
            }
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    outcome.result = Err(format!(
                        "{:?} of {}: interrupted while waiting to retry ({error})",
                        change.op, outcome.key
                    ));
                    return Ok(outcome);
                }
                _ = tokio::time::sleep(retry_delay(attempts)) => {}
            }
        }
    }
}

/// Changes in flight at once: enough to keep a rate of a few hundred changes a second
/// against DynamoDB's per-call latency; never two of the same item.
const MAX_IN_FLIGHT: usize = 16;

/// The counts of a run.
#[derive(Default)]
struct Tally {
    puts: u64,
    updates: u64,
    deletes: u64,
    throttled: u64,
    retried_errors: u64,
    failed: u64,
    last_failure: Option<String>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.throttled += outcome.throttled;
        self.retried_errors += outcome.retried_errors;
        match outcome.result {
            Ok(()) => match outcome.op {
                Op::Put => self.puts += 1,
                Op::Update => self.updates += 1,
                Op::Delete => self.deletes += 1,
            },
            Err(error) => {
                self.failed += 1;
                self.last_failure = Some(error);
            }
        }
    }
}

type InFlight = JoinSet<anyhow::Result<Outcome>>;

/// Waits for one change in flight to finish and counts it.
async fn finish_one(
    in_flight: &mut InFlight,
    busy: &mut HashSet<String>,
    tally: &mut Tally,
    progress: &Progress,
) -> anyhow::Result<()> {
    if let Some(joined) = in_flight.join_next().await {
        let outcome = joined.map_err(|e| anyhow::anyhow!("a table write task failed: {e}"))??;
        busy.remove(&outcome.key);
        tally.add(outcome);
        progress.inc(1);
        if tally.throttled + tally.retried_errors > 0 {
            progress.set_message(format!(
                "{} throttled, {} failed",
                tally.throttled + tally.retried_errors,
                tally.failed
            ));
        }
    }
    Ok(())
}

/// Writes `spec.rate × spec.duration_seconds` changes to `table` at `spec.rate` changes
/// per second. Up to `MAX_IN_FLIGHT` changes are in flight, never two of the same item,
/// so each item's changes reach the table (and its stream) in order.
pub async fn load_table(
    factory: &AwsFactory,
    table: &str,
    spec: &LoadSpec,
    controls: &Controls,
) -> anyhow::Result<Summary> {
    spec.validate()?;
    if spec.payload_bytes > MAX_ITEM_PAYLOAD_BYTES {
        anyhow::bail!(
            "--payload-bytes {}: a DynamoDB item holds at most 400 KB; use at most {MAX_ITEM_PAYLOAD_BYTES}",
            spec.payload_bytes
        );
    }
    let client = aws::dynamodb(&factory.config_for(table).await);
    check_table(&client, table).await?;
    let writer = Arc::new(Writer {
        client,
        table: table.to_string(),
        payload_bytes: spec.payload_bytes,
        max_retries: spec.max_retries,
        stop: controls.stop.clone(),
    });
    let pacing = spec.pacing();
    let total = pacing.total();
    let progress = Progress::new(controls.show_progress, Some(total), "changes");
    let mut generator = Generator::new(spec.generator_spec());
    let mut planner = Planner::new(spec.keys);
    let mut tally = Tally::default();
    let mut in_flight = InFlight::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut interrupted = false;
    let mut planned = 0u64;
    let start = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    'run: while planned < total {
        tokio::select! {
            biased;
            _ = controls.stop.cancelled() => {
                interrupted = true;
                break;
            }
            _ = ticker.tick() => {}
        }
        while let Some(joined) = in_flight.try_join_next() {
            let outcome =
                joined.map_err(|e| anyhow::anyhow!("a table write task failed: {e}"))??;
            busy.remove(&outcome.key);
            tally.add(outcome);
            progress.inc(1);
        }
        while planned < pacing.due_by(start.elapsed()).min(total) {
            if controls.stop.is_cancelled() {
                interrupted = true;
                break 'run;
            }
            let Some(record) = generator.next() else {
                break 'run;
            };
            let change = planner.plan(record);
            planned += 1;
            // The item's previous change first; and no more than MAX_IN_FLIGHT at once.
            while busy.contains(&change.record.partition_key) || in_flight.len() >= MAX_IN_FLIGHT {
                finish_one(&mut in_flight, &mut busy, &mut tally, &progress).await?;
            }
            busy.insert(change.record.partition_key.clone());
            let writer = Arc::clone(&writer);
            in_flight.spawn(async move { writer.apply(change).await });
        }
    }
    while !in_flight.is_empty() {
        finish_one(&mut in_flight, &mut busy, &mut tally, &progress).await?;
    }
    progress.finish();
    Ok(Summary {
        verb: "wrote",
        unit: "changes",
        count: tally.puts + tally.updates + tally.deletes,
        seconds: start.elapsed().as_secs_f64(),
        target_rate: Some(spec.rate),
        throttled: tally.throttled,
        retried_errors: tally.retried_errors,
        failed: tally.failed,
        max_retries: spec.max_retries,
        last_failure: tally.last_failure,
        detail: Some(format!(
            "{} PutItem, {} UpdateItem, {} DeleteItem",
            tally.puts, tally.updates, tally.deletes
        )),
        interrupted: interrupted || controls.stop.is_cancelled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::generate::GeneratorSpec;

    fn generated(k: u64, n: u64) -> Generated {
        Generated {
            k,
            n,
            partition_key: format!("user-{n}"),
            amount: 42,
            poison: false,
        }
    }

    #[test]
    fn an_item_is_put_updated_eight_times_deleted_and_put_again() {
        let mut planner = Planner::new(3);
        let ops: Vec<Op> = (0..12).map(|k| planner.plan(generated(k, 1)).op).collect();
        let mut expected = vec![Op::Put];
        expected.extend([Op::Update; 8]);
        expected.extend([Op::Delete, Op::Put, Op::Update]);
        assert_eq!(ops, expected);
        // Another key starts its own life.
        assert_eq!(planner.plan(generated(12, 2)).op, Op::Put);
    }

    #[test]
    fn a_seeded_run_plans_puts_updates_and_deletes() {
        let spec = GeneratorSpec {
            keys: 3,
            payload_bytes: 100,
            poison_every: Some(7),
            seed: 5,
        };
        let mut planner = Planner::new(spec.keys);
        let changes: Vec<Change> = Generator::new(spec)
            .take(60)
            .map(|g| planner.plan(g))
            .collect();
        let count = |op| changes.iter().filter(|c| c.op == op).count();
        assert!(count(Op::Put) >= 3 && count(Op::Update) > 0 && count(Op::Delete) >= 3);
        assert_eq!(count(Op::Put) + count(Op::Update) + count(Op::Delete), 60);
    }

    #[test]
    fn the_pad_makes_the_items_json_about_the_payload_size() {
        let record = generated(7, 3);
        let pad = image_pad_len(&record, 200);
        let json = serde_json::json!({
            "pk": {"S": "user-3"}, "n": {"N": "7"}, "amount": {"N": "42"},
            "payload": {"S": "x".repeat(pad)},
        });
        assert_eq!(json.to_string().len(), 200);
        assert_eq!(image_pad_len(&record, 10), 0);
    }

    #[test]
    fn only_a_poison_update_sets_the_marker_and_the_others_remove_it() {
        assert!(update_expression(true).contains("#poison = :poison"));
        assert!(update_expression(false).ends_with("REMOVE #poison"));
    }
}
