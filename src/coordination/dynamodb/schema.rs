//! The lease table's key, as CreateTable is given it and as DescribeTable must show it:
//! one hash key, `leaseKey`, a string (KCL's). Pure, so the refusal of a foreign table
//! (which names the table, the schema found, the schema needed and what to do) is tested
//! without a server.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
};

use super::item::LEASE_KEY;
use crate::coordination::table::TableError;

/// The key schema and attribute definitions CreateTable is given.
pub(super) fn lease_key_schema(
    table: &str,
) -> Result<(KeySchemaElement, AttributeDefinition), TableError> {
    let invalid = |e: aws_sdk_dynamodb::error::BuildError| {
        TableError::Fatal(format!("lease table {table:?}: CreateTable request: {e}"))
    };
    let key = KeySchemaElement::builder()
        .attribute_name(LEASE_KEY)
        .key_type(KeyType::Hash)
        .build()
        .map_err(invalid)?;
    let definition = AttributeDefinition::builder()
        .attribute_name(LEASE_KEY)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(invalid)?;
    Ok((key, definition))
}

/// `Ok` if the table's only key is `leaseKey` (S), else `Fatal` saying what was found.
pub(super) fn check_key_schema(
    table: &str,
    keys: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
) -> Result<(), TableError> {
    let type_of = |name: &str| {
        definitions
            .iter()
            .find(|d| d.attribute_name() == name)
            .map(|d| d.attribute_type().as_str().to_string())
    };
    let fits = matches!(keys, [only] if only.attribute_name() == LEASE_KEY
        && *only.key_type() == KeyType::Hash
        && type_of(LEASE_KEY).as_deref() == Some("S"));
    if fits {
        return Ok(());
    }
    let found: Vec<String> = keys
        .iter()
        .map(|k| {
            let kind = type_of(k.attribute_name()).unwrap_or_else(|| "?".into());
            format!("{} {} ({kind})", k.attribute_name(), k.key_type().as_str())
        })
        .collect();
    Err(TableError::Fatal(format!(
        "lease table {table:?} has key schema [{}]; esm-sim needs a table whose only key is \
         {LEASE_KEY} (S): use another table name ([coordination] table) or delete it",
        found.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("a key")
    }

    fn definition(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("a definition")
    }

    #[test]
    fn the_schema_created_is_the_schema_accepted() {
        let (key, definition) = lease_key_schema("t").expect("a schema");
        assert_eq!(check_key_schema("t", &[key], &[definition]), Ok(()));
    }

    #[test]
    fn a_foreign_schema_is_refused_naming_table_found_needed_and_remedy() {
        let refused = check_key_schema(
            "orders",
            &[key("pk", KeyType::Hash), key("sk", KeyType::Range)],
            &[
                definition("pk", ScalarAttributeType::S),
                definition("sk", ScalarAttributeType::N),
            ],
        );
        assert_eq!(
            refused,
            Err(TableError::Fatal(
                "lease table \"orders\" has key schema [pk HASH (S), sk RANGE (N)]; esm-sim \
                 needs a table whose only key is leaseKey (S): use another table name \
                 ([coordination] table) or delete it"
                    .into()
            ))
        );
    }

    #[test]
    fn near_misses_are_refused_too() {
        let hash = key(LEASE_KEY, KeyType::Hash);
        let cases = [
            // leaseKey a number.
            (
                vec![hash.clone()],
                vec![definition(LEASE_KEY, ScalarAttributeType::N)],
                "[leaseKey HASH (N)]",
            ),
            // leaseKey plus a sort key.
            (
                vec![hash.clone(), key("at", KeyType::Range)],
                vec![
                    definition(LEASE_KEY, ScalarAttributeType::S),
                    definition("at", ScalarAttributeType::S),
                ],
                "[leaseKey HASH (S), at RANGE (S)]",
            ),
            // leaseKey as a sort key; no definitions at all.
            (
                vec![key(LEASE_KEY, KeyType::Range)],
                vec![],
                "[leaseKey RANGE (?)]",
            ),
            (vec![], vec![], "[]"),
        ];
        for (keys, definitions, found) in cases {
            match check_key_schema("t", &keys, &definitions) {
                Err(TableError::Fatal(text)) => {
                    assert!(text.contains(&format!("key schema {found};")), "{text}")
                }
                other => panic!("{found}: {other:?}"),
            }
        }
    }
}
