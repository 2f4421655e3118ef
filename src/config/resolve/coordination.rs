//! `[coordination]`: the embedded store (one worker, the default) or a DynamoDB lease
//! table shared by several workers, with this worker's id and the lease timing.
//!
//! The renew and take intervals are not keys: they follow from `lease_duration_seconds`
//! as KCL derives them (`coordination::timing`), and `esm-sim validate` prints them.

use super::problems::Problems;
use crate::config::mapping::{Coordination, LeaseTableSettings};
use crate::config::schema::CoordinationSettings;
use crate::coordination::timing::LeaseTiming;

/// `[coordination] table` unless given.
pub const DEFAULT_LEASE_TABLE: &str = "esm-sim-leases";
/// `lease_duration_seconds` unless given (KCL's failover time).
pub const DEFAULT_LEASE_DURATION_SECONDS: u64 = 10;
/// Most `lease_duration_seconds`: ten minutes.
pub const MAX_LEASE_DURATION_SECONDS: u64 = 600;
/// Most `max_steals_per_pass`.
pub const MAX_STEALS_PER_PASS: u64 = 1_000;
/// Most characters of a worker id (it is written into every lease it holds).
const MAX_WORKER_ID_CHARS: usize = 256;

const SUBJECT: &str = "coordination";

pub(super) fn resolve_coordination(c: &CoordinationSettings, p: &mut Problems) -> Coordination {
    let duration = c
        .lease_duration_seconds
        .unwrap_or(DEFAULT_LEASE_DURATION_SECONDS);
    let lease_duration_ms = p.seconds_as_ms(
        SUBJECT,
        "lease_duration_seconds",
        duration,
        1,
        MAX_LEASE_DURATION_SECONDS,
    );
    let steals = c.max_steals_per_pass.unwrap_or(1);
    p.range(
        SUBJECT,
        "max_steals_per_pass",
        steals,
        1,
        MAX_STEALS_PER_PASS,
    );
    let table = c.table.as_deref().unwrap_or(DEFAULT_LEASE_TABLE);
    check_table_name(table, p);
    let worker_id = match &c.worker_id {
        Some(id) => {
            check_worker_id(id, p);
            id.clone()
        }
        None => default_worker_id(),
    };
    match c.store.as_deref().unwrap_or("embedded") {
        "embedded" => {
            for (key, given) in [
                ("table", c.table.is_some()),
                ("worker_id", c.worker_id.is_some()),
                ("lease_duration_seconds", c.lease_duration_seconds.is_some()),
                ("max_steals_per_pass", c.max_steals_per_pass.is_some()),
            ] {
                if given {
                    p.add(
                        SUBJECT,
                        format!(
                            "{key} applies to store = \"dynamodb\" only (store is \"embedded\")"
                        ),
                    );
                }
            }
            Coordination { lease_table: None }
        }
        "dynamodb" => Coordination {
            lease_table: Some(LeaseTableSettings {
                table: table.to_string(),
                worker_id,
                timing: LeaseTiming::from_lease_duration_ms(lease_duration_ms),
                max_steals_per_pass: steals as usize,
            }),
        },
        other => {
            p.add(
                SUBJECT,
                format!("store = {other:?}: must be \"embedded\" or \"dynamodb\""),
            );
            Coordination { lease_table: None }
        }
    }
}

/// DynamoDB's rule: 3 to 255 of `a-z A-Z 0-9 _ - .`.
fn check_table_name(table: &str, p: &mut Problems) {
    let ok = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        p.add(
            SUBJECT,
            format!(
                "table = {table:?}: must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
            ),
        );
    }
}

fn check_worker_id(id: &str, p: &mut Problems) {
    let count = id.chars().count();
    if count == 0 || count > MAX_WORKER_ID_CHARS || id.chars().any(char::is_control) {
        p.add(
            SUBJECT,
            format!(
                "worker_id = {id:?}: must be 1 to {MAX_WORKER_ID_CHARS} characters, none of them control characters"
            ),
        );
    }
}

/// `<host name>-<pid>`: unique among the processes of one host, readable in the table.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(c: CoordinationSettings) -> Result<Coordination, Vec<String>> {
        let mut p = Problems::default();
        let resolved = resolve_coordination(&c, &mut p);
        if p.list.is_empty() {
            Ok(resolved)
        } else {
            Err(p.list)
        }
    }

    #[test]
    fn the_default_is_the_embedded_store() {
        assert_eq!(
            resolve(CoordinationSettings::default()),
            Ok(Coordination { lease_table: None })
        );
    }

    #[test]
    fn dynamodb_takes_kcls_defaults_and_a_host_pid_worker_id() {
        let resolved = resolve(CoordinationSettings {
            store: Some("dynamodb".into()),
            ..Default::default()
        })
        .unwrap();
        let table = resolved.lease_table.unwrap();
        assert_eq!(table.table, "esm-sim-leases");
        assert_eq!(table.timing, LeaseTiming::from_lease_duration_ms(10_000));
        assert_eq!(table.max_steals_per_pass, 1);
        let pid = format!("-{}", std::process::id());
        assert!(table.worker_id.ends_with(&pid), "{}", table.worker_id);
    }

    #[test]
    fn bad_values_name_the_key_the_value_and_the_range() {
        let problems = resolve(CoordinationSettings {
            store: Some("dynamodb".into()),
            table: Some("a b".into()),
            worker_id: Some(String::new()),
            lease_duration_seconds: Some(0),
            max_steals_per_pass: Some(0),
        })
        .unwrap_err();
        assert_eq!(
            problems,
            vec![
                "coordination: lease_duration_seconds = 0: must be 1..=600",
                "coordination: max_steals_per_pass = 0: must be 1..=1000",
                "coordination: table = \"a b\": must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.'",
                "coordination: worker_id = \"\": must be 1 to 256 characters, none of them control characters",
            ]
        );
    }

    #[test]
    fn an_unknown_store_and_lease_keys_on_the_embedded_store_are_refused() {
        assert_eq!(
            resolve(CoordinationSettings {
                store: Some("redis".into()),
                ..Default::default()
            }),
            Err(vec![
                "coordination: store = \"redis\": must be \"embedded\" or \"dynamodb\"".to_string()
            ])
        );
        assert_eq!(
            resolve(CoordinationSettings {
                table: Some("leases".into()),
                ..Default::default()
            }),
            Err(vec![
                "coordination: table applies to store = \"dynamodb\" only (store is \"embedded\")"
                    .to_string()
            ])
        );
    }
}
