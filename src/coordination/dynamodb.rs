//! The lease table in DynamoDB, shared by every `esm-sim run` process of a deployment:
//! the `LeaseTable` seam over one table, with the in-memory table's semantics exactly
//! (`memory` is the reference; tests/lease_table_dynamodb.rs runs one scenario list
//! against both).
//!
//! Why it is shaped so:
//! - **Every change is one conditional write** (UpdateItem or PutItem), its condition
//!   the in-memory table's `holds` test: `leaseOwner = :owner AND leaseCounter = :counter`
//!   for the holder's writes, `leaseCounter = :counter` for a take,
//!   `attribute_not_exists(leaseKey)` for a create, `attribute_exists(leaseKey)` for a
//!   pause. A failed condition is `Conflict`. Counters are bumped by the server
//!   (`leaseCounter + 1`), never computed here. Writes whose row the trait returns ask for
//!   ALL_NEW, so the row is the one the write made, not a later read.
//! - **A take is up to two writes.** A new owner counts an owner switch and the same owner
//!   taking its lease back does not; one update expression cannot choose, so the first
//!   write is conditional on "the counter, and another owner or none" and, if that fails,
//!   the second on "the counter, and this owner". Together the two conditions are exactly
//!   `leaseCounter = :counter`, each write is atomic, and the common take (of a free,
//!   expired or stolen lease) is one call.
//! - **Names and values are placeholders** (`#owner`, `:owner`): the attribute names of an
//!   expression are found in its text, so a write never sends a name it does not use
//!   (DynamoDB refuses those).
//! - **Reads are consistent** (Scan and GetItem with ConsistentRead), so a worker never
//!   decides on a counter older than its own last write. A row this table cannot read is
//!   skipped with a warning naming its key (`item`), never a panic and never the end of
//!   the listing. Scan pages are read by `source::paging`, LastEvaluatedKey being a lease
//!   key.
//! - **`prepare` creates a missing table** (on-demand billing, so an idle deployment costs
//!   nothing), waits up to a minute for it to be ACTIVE, and refuses a table whose key is
//!   not KCL's (`schema`). A peer creating it at the same moment is not an error.
//! - SDK retries are off (`aws::dynamodb_leases`); errors are classified in `error`.

mod error;
mod item;
mod schema;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TableStatus;
use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, ReturnValue, TableDescription};

use self::error::table_error;
use self::item::{
    decode, encode, number, Item, ADMIN_URL, CHECKPOINT, COUNTER, LEASE_KEY, OWNER, PAUSED,
    SWITCHES,
};
use self::schema::{check_key_schema, lease_key_schema};
use super::lease::Lease;
use super::table::{Holder, LeaseTable, TableError};
use crate::aws::{self, AwsFactory};
use crate::checkpoint::Checkpoint;
use crate::source::paging::all_pages;

/// How long `prepare` waits for a table to become ACTIVE, and how often it looks.
const ACTIVE_WITHIN: Duration = Duration::from_secs(60);
const ACTIVE_POLL: Duration = Duration::from_millis(500);

/// The placeholders expressions use, and the attributes they stand for.
const NAMES: &[(&str, &str)] = &[
    ("#key", LEASE_KEY),
    ("#owner", OWNER),
    ("#counter", COUNTER),
    ("#checkpoint", CHECKPOINT),
    ("#switches", SWITCHES),
    ("#paused", PAUSED),
    ("#admin", ADMIN_URL),
];

/// The holder's writes: the lease is still `:owner`'s at `:counter`.
const HELD: &str = "#owner = :owner AND #counter = :counter";

/// One lease table in DynamoDB.
pub struct DynamodbLeaseTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// One conditional UpdateItem.
struct Write<'a> {
    update: &'a str,
    condition: &'a str,
    values: Vec<(&'a str, AttributeValue)>,
    /// Return the row as written.
    all_new: bool,
}

impl DynamodbLeaseTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamodbLeaseTable { client, table }
    }

    /// The table `table` (a name, or an ARN whose region the client takes) through the
    /// factory's configuration. Nothing is called until `prepare`.
    pub async fn connect(factory: &AwsFactory, table: &str) -> Self {
        let config = factory.config_for(table).await;
        Self::new(aws::dynamodb_leases(&config), table.to_string())
    }

    /// The table's description; `None` if there is no such table.
    async fn describe(&self) -> Result<Option<TableDescription>, TableError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(output) => output.table.map(Some).ok_or_else(|| {
                TableError::Fatal(format!(
                    "lease table {:?}: DescribeTable returned no Table",
                    self.table
                ))
            }),
            Err(e) if aws::error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(table_error(&e, "DescribeTable", &self.table)),
        }
    }

    /// CreateTable, on demand; a table a peer is creating already is fine.
    async fn create_table(&self) -> Result<(), TableError> {
        let (key, definition) = lease_key_schema(&self.table)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key)
            .attribute_definitions(definition)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table = %self.table, "created the lease table");
                Ok(())
            }
            Err(e) if aws::error_code(&e) == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(table_error(&e, "CreateTable", &self.table)),
        }
    }

    /// The table's description once it is ACTIVE (or UPDATING: usable), polling for at
    /// most `ACTIVE_WITHIN`.
    async fn wait_active(&self) -> Result<TableDescription, TableError> {
        let deadline = tokio::time::Instant::now() + ACTIVE_WITHIN;
        loop {
            let description = self.describe().await?;
            let status = description.as_ref().and_then(|d| d.table_status().cloned());
            if let (Some(d), Some(TableStatus::Active | TableStatus::Updating)) =
                (description, &status)
            {
                return Ok(d);
            }
            if tokio::time::Instant::now() >= deadline {
                let status = status.map_or("missing".to_string(), |s| s.as_str().to_string());
                return Err(TableError::Unavailable(format!(
                    "lease table {:?} is not ACTIVE after {} s (status {status})",
                    self.table,
                    ACTIVE_WITHIN.as_secs()
                )));
            }
            tokio::time::sleep(ACTIVE_POLL).await;
        }
    }

    /// Sends `write` to the row at `key`; the row as written if `write.all_new`.
    async fn update(&self, key: &str, write: Write<'_>) -> Result<Option<Item>, TableError> {
        let values = write
            .values
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(key.to_string()))
            .update_expression(write.update)
            .condition_expression(write.condition)
            .set_expression_attribute_names(Some(names_in(&[write.update, write.condition])))
            .set_expression_attribute_values(Some(values))
            .return_values(if write.all_new {
                ReturnValue::AllNew
            } else {
                ReturnValue::None
            });
        let output = request
            .send()
            .await
            .map_err(|e| table_error(&e, "UpdateItem", &self.table))?;
        Ok(output.attributes)
    }

    /// The lease an ALL_NEW write returned.
    fn written(&self, key: &str, row: Option<Item>) -> Result<Lease, TableError> {
        let row = row.ok_or_else(|| {
            TableError::Fatal(format!(
                "lease table {:?}: UpdateItem of {key:?} returned no attributes",
                self.table
            ))
        })?;
        decode(&row).map_err(|reason| {
            TableError::Fatal(format!(
                "lease table {:?}: UpdateItem: {reason}",
                self.table
            ))
        })
    }

    /// The lease `row` holds, or `None` (with a warning) if it holds none this table reads.
    fn readable(&self, row: &Item) -> Option<Lease> {
        decode(row)
            .map_err(|reason| tracing::warn!(table = %self.table, "{reason}: skipped"))
            .ok()
    }
}

/// The attribute names `expressions` use, by placeholder.
fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    NAMES
        .iter()
        .filter(|(placeholder, _)| expressions.iter().any(|e| e.contains(placeholder)))
        .map(|(placeholder, name)| (placeholder.to_string(), name.to_string()))
        .collect()
}

#[async_trait]
impl LeaseTable for DynamodbLeaseTable {
    async fn prepare(&self) -> Result<(), TableError> {
        if self.describe().await?.is_none() {
            self.create_table().await?;
        }
        let description = self.wait_active().await?;
        check_key_schema(
            &self.table,
            description.key_schema(),
            description.attribute_definitions(),
        )
    }

    async fn list(&self) -> Result<Vec<Lease>, TableError> {
        let table = self.table.as_str();
        let rows = all_pages(|start: Option<String>| async move {
            let start =
                start.map(|key| HashMap::from([(LEASE_KEY.into(), AttributeValue::S(key))]));
            let output = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| table_error(&e, "Scan", table))?;
            let next = match output.last_evaluated_key().map(|last| last.get(LEASE_KEY)) {
                None => None,
                Some(Some(AttributeValue::S(key))) => Some(key.clone()),
                Some(_) => {
                    return Err(TableError::Fatal(format!(
                        "lease table {table:?}: Scan: LastEvaluatedKey has no {LEASE_KEY} (S)"
                    )))
                }
            };
            Ok((output.items.unwrap_or_default(), next))
        })
        .await?;
        Ok(rows.iter().filter_map(|row| self.readable(row)).collect())
    }

    async fn create(&self, lease: &Lease) -> Result<bool, TableError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(lease)))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", LEASE_KEY)
            .send()
            .await;
        match put.map_err(|e| table_error(&e, "PutItem", &self.table)) {
            Ok(_) => Ok(true),
            Err(TableError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn take(
        &self,
        key: &str,
        counter: u64,
        owner: &str,
        admin_url: Option<&str>,
    ) -> Result<Lease, TableError> {
        let mut set = String::from("SET #owner = :owner, #counter = #counter + :one");
        let mut remove = "";
        let mut values = vec![
            (":owner", AttributeValue::S(owner.to_string())),
            (":counter", number(counter)),
            (":one", number(1)),
        ];
        match admin_url {
            Some(url) => {
                set.push_str(", #admin = :admin");
                values.push((":admin", AttributeValue::S(url.to_string())));
            }
            None => remove = " REMOVE #admin",
        }
        let switched = format!("{set}, #switches = if_not_exists(#switches, :zero) + :one{remove}");
        let mut switched_values = values.clone();
        switched_values.push((":zero", number(0)));
        let from_another = Write {
            update: &switched,
            condition: "#counter = :counter AND (attribute_not_exists(#owner) OR #owner <> :owner)",
            values: switched_values,
            all_new: true,
        };
        match self.update(key, from_another).await {
            Err(TableError::Conflict) => {}
            row => return self.written(key, row?),
        }
        let kept = format!("{set}{remove}");
        let back = Write {
            update: &kept,
            condition: HELD,
            values,
            all_new: true,
        };
        let row = self.update(key, back).await?;
        self.written(key, row)
    }

    async fn renew(&self, key: &str, holder: Holder<'_>) -> Result<Lease, TableError> {
        let write = Write {
            update: "SET #counter = #counter + :one",
            condition: HELD,
            values: held_values(holder, vec![(":one", number(1))]),
            all_new: true,
        };
        let row = self.update(key, write).await?;
        self.written(key, row)
    }

    async fn checkpoint(
        &self,
        key: &str,
        holder: Holder<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), TableError> {
        let values = vec![
            (":checkpoint", AttributeValue::S(checkpoint.encode())),
            (":zero", number(0)),
        ];
        let write = Write {
            update: "SET #checkpoint = :checkpoint, #switches = :zero",
            condition: HELD,
            values: held_values(holder, values),
            all_new: false,
        };
        self.update(key, write).await.map(drop)
    }

    async fn release(&self, key: &str, holder: Holder<'_>) -> Result<(), TableError> {
        let write = Write {
            update: "SET #counter = #counter + :one REMOVE #owner, #admin",
            condition: HELD,
            values: held_values(holder, vec![(":one", number(1))]),
            all_new: false,
        };
        self.update(key, write).await.map(drop)
    }

    async fn set_paused(&self, key: &str, paused: bool) -> Result<(), TableError> {
        let write = Write {
            update: "SET #paused = :paused",
            condition: "attribute_exists(#key)",
            values: vec![(":paused", AttributeValue::Bool(paused))],
            all_new: false,
        };
        self.update(key, write).await.map(drop)
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .consistent_read(true)
            .key(LEASE_KEY, AttributeValue::S(key.to_string()))
            .send()
            .await
            .map_err(|e| table_error(&e, "GetItem", &self.table))?;
        Ok(output.item.and_then(|row| self.readable(&row)))
    }
}

/// `values` plus the holder's `:owner` and `:counter`.
fn held_values(
    holder: Holder<'_>,
    mut values: Vec<(&'static str, AttributeValue)>,
) -> Vec<(&'static str, AttributeValue)> {
    values.push((":owner", AttributeValue::S(holder.owner.to_string())));
    values.push((":counter", number(holder.counter)));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_sends_exactly_the_names_it_uses() {
        let names = names_in(&["SET #counter = #counter + :one REMOVE #owner, #admin", HELD]);
        let mut sent: Vec<(&str, &str)> = names
            .iter()
            .map(|(p, n)| (p.as_str(), n.as_str()))
            .collect();
        sent.sort_unstable();
        assert_eq!(
            sent,
            [
                ("#admin", "ownerAdminUrl"),
                ("#counter", "leaseCounter"),
                ("#owner", "leaseOwner")
            ]
        );
        assert_eq!(names_in(&["SET #paused = :paused"]).len(), 1);
    }

    #[test]
    fn no_placeholder_is_the_start_of_another() {
        // `names_in` finds placeholders by substring: `#own` would also match `#owner`.
        for (a, _) in NAMES {
            for (b, _) in NAMES {
                assert!(a == b || !b.starts_with(a), "{a} starts {b}");
            }
        }
    }
}
