//! What the section tests share: a small world of streams and functions, and shorthands
//! that resolve a config with one mapping and return its problems.

use std::path::Path;

use crate::config::{parse, Mapping};

/// A world with a Kinesis stream `orders`, a DynamoDB table `users` and two functions.
pub(super) const WORLD: &str = r#"
[[streams]]
name = "orders"
kind = "kinesis"
shards = 2

[[streams]]
name = "users"
kind = "dynamodb"
shards = 1

[[functions]]
name = "order-processor"

[[functions]]
name = "user-processor"
"#;

pub(super) const ORDERS_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
pub(super) const USERS_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2026-01-01T00:00:00.000";

pub(super) fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Problems of WORLD plus `extra` (empty when it resolves).
pub(super) fn problems(extra: &str) -> Vec<String> {
    match parse(&format!("{WORLD}\n{extra}"), Path::new("")) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

/// A mapping `m` on `orders` with `params` added.
pub(super) fn mapping_toml(params: &str) -> String {
    format!(
        "[[mappings]]\nname = \"m\"\nevent_source_arn = \"orders\"\nfunction_name = \"order-processor\"\nstarting_position = \"LATEST\"\n{params}\n"
    )
}

pub(super) fn mapping_problems(params: &str) -> Vec<String> {
    problems(&mapping_toml(params))
}

pub(super) fn mapping(params: &str) -> Mapping {
    let config = parse(&format!("{WORLD}\n{}", mapping_toml(params)), Path::new("")).unwrap();
    config.mappings.into_iter().next().unwrap()
}

/// `inside` values resolve; each `outside` value gives exactly `message` (with `{}` the value).
pub(super) fn check_param(key: &str, inside: &[&str], outside: &[&str], message: &str) {
    for v in inside {
        assert_eq!(
            mapping_problems(&format!("{key} = {v}")),
            Vec::<String>::new(),
            "{key} = {v}"
        );
    }
    for v in outside {
        let expected = format!("mapping \"m\": {key} = {v}: {message}");
        assert_eq!(
            mapping_problems(&format!("{key} = {v}")),
            vec![expected],
            "{key} = {v}"
        );
    }
}
