//! Errors in reading the config's text: TOML syntax errors, values of the wrong type,
//! unknown and missing keys, in the config file and in a mapping's AWS JSON file.
//!
//! This module owns turning serde's (toml's, serde_json's) first error into one line worded
//! like the range errors of `resolve`, with where it is:
//! `config.toml:14:14: mapping "orders": batch_size = "ten": expected an integer`:
//! the file, the line and column (1-based, in characters) of the value (of the key for an
//! unknown key, of the entry for a missing one), the entry it is in (`mapping "orders"`,
//! `stream "s" producer 1`, `function #2`, `admin`, `top level`), the key as a path inside
//! the entry, the value as written, and what was expected. A syntax error is the position
//! and toml's message. serde stops at the first error, so there is one such problem at most.
//!
//! toml gives the error's byte span; the spanned document (`toml::de::DeTable::parse`) tells
//! which key of which entry holds that span. serde_json gives a line and column; a small
//! scanner of the JSON text finds the key there. Neither can panic on any input.

mod json_text;
mod toml_text;
mod wording;

use serde::de::DeserializeOwned;

use self::json_text::describe_json;
use self::toml_text::describe_toml;

/// Deserialize TOML text. The error is one line: `[origin:]line:column: ...`.
pub fn from_toml<T: DeserializeOwned>(text: &str, origin: Option<&str>) -> Result<T, String> {
    toml::from_str(text).map_err(|error| {
        let message = describe_toml::<T>(text, &error);
        match origin {
            Some(origin) => format!("{origin}:{message}"),
            None => message,
        }
    })
}

/// Deserialize a JSON document. The error is one line: `origin:line:column: ...`.
pub fn from_json<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|error| format!("{origin}:{}", describe_json(text, &error)))
}

/// Deserialize a JSON value built in memory (a template's resolved properties): the error
/// is `from_json`'s line without a position, which would point into no file
/// (`BatchSize = "ten": expected an integer`, `BatchSise: unknown key (did you mean ...`).
pub fn from_json_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|error| {
        let line = describe_json(&text, &error);
        let mut parts = line.splitn(3, ':');
        let (row, column, rest) = (parts.next(), parts.next(), parts.next());
        let is_number = |p: Option<&str>| p.is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        match rest {
            Some(rest) if is_number(row) && is_number(column) => rest.trim_start().to_string(),
            _ => line,
        }
    })
}

/// One random edit of a text, for the tests that fuzz reading: at an index, delete up to
/// that many characters and insert the token or (when the flag is set) the character.
#[cfg(test)]
pub(super) type Edit = (proptest::sample::Index, usize, &'static str, char, bool);

/// `original` with `edits` applied in order.
#[cfg(test)]
pub(super) fn apply_edits(original: &str, edits: &[Edit]) -> String {
    let mut text: Vec<char> = original.chars().collect();
    for (at, delete, token, c, use_char) in edits {
        let at = at.index(text.len() + 1);
        let end = (at + delete).min(text.len());
        let insert: Vec<char> = if *use_char {
            vec![*c]
        } else {
            token.chars().collect()
        };
        text.splice(at..end, insert);
    }
    text.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::apply_edits;
    use std::path::Path;

    use proptest::prelude::*;

    use crate::config::{parse, resolve, EMBEDDED_DEFAULT};

    /// The one problem of reading `text` (no file prefix).
    fn problem(text: &str) -> String {
        let err = resolve::parse_toml(text, None).expect_err("a problem");
        assert_eq!(err.problems.len(), 1, "{err}");
        err.problems[0].clone()
    }

    #[test]
    fn wrong_type_in_a_mapping() {
        assert_eq!(
            problem("[[mappings]]\nname = \"orders\"\nbatch_size = \"ten\"\n"),
            "3:14: mapping \"orders\": batch_size = \"ten\": expected an integer"
        );
        assert_eq!(
            problem(
                "[[mappings]]\nname = \"a\"\n[[mappings]]\nbatch_size = true\nname = \"orders\"\n"
            ),
            "4:14: mapping \"orders\": batch_size = true: expected an integer"
        );
        // An entry without a usable name is named by its place, as `resolve` does.
        assert_eq!(
            problem("[[mappings]]\nname = \"a\"\n[[mappings]]\nenabled = \"yes\"\n"),
            "4:11: mapping #2: enabled = \"yes\": expected a boolean (true or false)"
        );
        assert_eq!(
            problem("[[mappings]]\nname = 5\n"),
            "2:8: mapping #1: name = 5: expected a string"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\npace = { poll_interval_ms = -1 }\n"),
            "3:29: mapping \"m\": pace.poll_interval_ms = -1: expected an integer 0..=18446744073709551615"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\nbatch_size = 99999999999999999999\n"),
            "3:14: mapping \"m\": batch_size = 99999999999999999999: expected an integer -9223372036854775808..=9223372036854775807"
        );
        assert_eq!(
            problem(
                "[[mappings]]\nname = \"m\"\n[mappings.destination_config]\non_failure = \"arn\"\n"
            ),
            "4:14: mapping \"m\": destination_config.on_failure = \"arn\": expected a table"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\n[mappings.batch_size]\nx = 1\n"),
            "3:1: mapping \"m\": batch_size: expected an integer, found a table"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\nfilter_criteria = { filters = [{ pattern = \"{}\" }, {}] }\n"),
            "3:52: mapping \"m\": filter_criteria.filters[1].pattern is required"
        );
    }

    #[test]
    fn wrong_type_in_a_stream() {
        let stream = "[[streams]]\nname = \"s\"\n";
        assert_eq!(
            problem(&format!("{stream}kind = \"kafka\"\nshards = 1\n")),
            "3:8: stream \"s\": kind = \"kafka\": expected one of \"kinesis\", \"dynamodb\""
        );
        assert_eq!(
            problem(&format!("{stream}kind = 5\nshards = 1\n")),
            "3:8: stream \"s\": kind = 5: expected one of \"kinesis\", \"dynamodb\""
        );
        assert_eq!(
            problem(&format!("{stream}kind = \"kinesis\"\nshards = -1\n")),
            "4:10: stream \"s\": shards = -1: expected an integer 0..=4294967295"
        );
        assert_eq!(
            problem(&format!(
                "{stream}kind = \"kinesis\"\nshards = 1\n[[streams.producers]]\nrate_per_second = \"fast\"\n"
            )),
            "6:19: stream \"s\" producer 1: rate_per_second = \"fast\": expected a number"
        );
        assert_eq!(
            problem(&format!(
                "{stream}kind = \"kinesis\"\nshards = 2\n[[streams.reshard]]\nat_seconds = 1\nmerge = [\"shardId-000000000000\"]\n"
            )),
            "7:9: stream \"s\" reshard 1: merge = [\"shardId-000000000000\"]: expected an array of 2 values"
        );
        assert_eq!(
            problem(&format!("{stream}shards = 1\n")),
            "1:1: stream \"s\": kind is required"
        );
        assert_eq!(
            problem("[[streams]]\nkind = \"kinesis\"\nshards = 1\n"),
            "1:1: stream #1: name is required"
        );
    }

    #[test]
    fn wrong_type_in_a_function() {
        let function = "[[functions]]\nname = \"f\"\n";
        assert_eq!(
            problem(&format!("{function}timeout_seconds = \"3\"\n")),
            "3:19: function \"f\": timeout_seconds = \"3\": expected a non-negative integer"
        );
        assert_eq!(
            problem(&format!(
                "{function}type = \"command\"\ncommand = [\"./handler\", 1]\n"
            )),
            "4:25: function \"f\": command[1] = 1: expected a string"
        );
        assert_eq!(
            problem(&format!("{function}latency = {{ p50_ms = \"fast\" }}\n")),
            "3:22: function \"f\": latency.p50_ms = \"fast\": expected a number"
        );
        assert_eq!(
            problem(&format!("{function}[[functions.rules]]\naction = \"explode\"\n")),
            "4:10: function \"f\" rule 1: action = \"explode\": expected one of \"error\", \"partial\", \"timeout\", \"malformed\", \"throttle\""
        );
    }

    #[test]
    fn wrong_type_at_top_level_and_in_sections() {
        assert_eq!(
            problem("state_dir = 5\n"),
            "1:13: top level: state_dir = 5: expected a string (a path)"
        );
        assert_eq!(
            problem("# the checkpoints\ncheckpoint_flush_ms = 1.5\n"),
            "2:23: top level: checkpoint_flush_ms = 1.5: expected a non-negative integer"
        );
        assert_eq!(
            problem("[admin]\nenabled = \"yes\"\n"),
            "2:11: admin: enabled = \"yes\": expected a boolean (true or false)"
        );
        assert_eq!(
            problem("[aws]\nregion = [\"us-east-1\"]\n"),
            "2:10: aws: region = [\"us-east-1\"]: expected a string"
        );
        assert_eq!(
            problem("admin = 5\n"),
            "1:9: top level: admin = 5: expected a table"
        );
        assert_eq!(
            problem("[mappings]\nname = \"m\"\n"),
            "1:1: top level: mappings: expected an array, found a table (write [[mappings]] for each entry)"
        );
        assert_eq!(
            problem("[[admin]]\nenabled = true\n"),
            "1:1: top level: admin: expected a table, found an array of tables"
        );
        assert_eq!(
            problem("[simulation]\nstart_time = 2026-01-01T00:00:00Z\n"),
            "2:14: simulation: start_time = 2026-01-01T00:00:00Z: expected a string"
        );
    }

    #[test]
    fn unknown_keys_name_the_key_where_it_is_and_the_allowed_keys() {
        let got = problem("[[mappings]]\nname = \"orders\"\nbatch_sise = 5\n");
        assert!(
            got.starts_with("3:1: mapping \"orders\": batch_sise: unknown key (did you mean batch_size?); allowed: name, aws_json, event_source_arn, consumer_name, function_name, enabled, batch_size, "),
            "{got}"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\npace = { poll_interval = 5 }\n"),
            "3:10: mapping \"m\": pace.poll_interval: unknown key (did you mean poll_interval_ms?); allowed: poll_interval_ms, min_read_interval_ms, get_records_limit, discovery_interval_seconds, retry_backoff_initial_ms, retry_backoff_max_ms, throttle_backoff_initial_ms, throttle_backoff_max_ms, destination_retry_seconds, shutdown_grace_seconds"
        );
        assert_eq!(
            problem("[admin]\nport = 9400\n"),
            "2:1: admin: port: unknown key; allowed: enabled, listen, token, token_env, stuck_after_seconds, metrics_shard_series, metrics_top_shards"
        );
        let got = problem("colour = 1\n");
        assert!(
            got.starts_with(
                "1:1: top level: colour: unknown key; allowed: state_dir, dead_letter_file, "
            ),
            "{got}"
        );
        assert_eq!(
            problem("[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n[[streams.producers]]\nrate_per_second = 1\nrate = 2\n"),
            "7:1: stream \"s\" producer 1: rate: unknown key; allowed: rate_per_second, start_seconds, duration_seconds, records, keys, key_prefix, payload_bytes, poison_every"
        );
    }

    #[test]
    fn syntax_errors_have_their_position_and_tomls_message() {
        assert_eq!(
            problem("state_dir = \n"),
            "1:13: TOML syntax error: string values must be quoted, expected literal string"
        );
        assert_eq!(
            problem("[[mappings]]\nname = \"m\"\n[[mappings]\n"),
            "3:12: TOML syntax error: unclosed array table, expected `]`"
        );
        assert_eq!(
            problem("[admin]\nenabled = true\n[admin]\n"),
            "3:2: TOML syntax error: duplicate key admin"
        );
        assert_eq!(
            problem("name = \"é\\q\"\n"),
            "1:11: TOML syntax error: missing escaped value, expected `b`, `e`, `f`, `n`, `r`, `\\`, `\"`, `x`, `u`, `U`"
        );
    }

    #[test]
    fn the_file_prefixes_the_position() {
        let err = resolve::parse_toml(
            "[[mappings]]\nname = \"orders\"\nbatch_size = \"ten\"\n",
            Some("config.toml"),
        )
        .unwrap_err();
        assert_eq!(
            err.problems,
            vec!["config.toml:3:14: mapping \"orders\": batch_size = \"ten\": expected an integer"]
        );
    }

    #[test]
    fn the_default_config_with_a_wrong_type_names_the_mapping() {
        let text = EMBEDDED_DEFAULT.replace("\nbatch_size = 50\n", "\nbatch_size = \"ten\"\n");
        assert_ne!(text, EMBEDDED_DEFAULT);
        let line = text
            .lines()
            .position(|l| l == "batch_size = \"ten\"")
            .unwrap()
            + 1;
        assert_eq!(
            problem(&text),
            format!("{line}:14: mapping \"orders-to-processor\": batch_size = \"ten\": expected an integer")
        );
    }

    /// Whether `problem` starts with `line:column: `.
    fn has_position(problem: &str) -> bool {
        let mut parts = problem.splitn(3, ':');
        let number = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p != "0")
        };
        number(parts.next())
            && number(parts.next())
            && parts.next().is_some_and(|r| r.starts_with(' '))
    }

    const TOKENS: &[&str] = &[
        "",
        "\"",
        "'",
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        "=",
        ",",
        ".",
        "\n",
        " ",
        "#",
        "\\",
        "\"x\"",
        "1",
        "-1",
        "1.5",
        "true",
        "nan",
        "2026-01-01",
        "é",
        "\u{1F600}",
        "[x]",
        "[[mappings]]",
        "[[streams]]",
        "name = ",
        "batch_size = ",
        "kind = ",
        "{ a = 1 }",
        "[1, \"a\"]",
        "\"\"\"",
        "'''",
        "\r",
        "\t",
        "0x10",
        "1e999",
        "99999999999999999999",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Random edits of the default config: reading never panics, and every problem of
        /// reading the text has a line and column.
        #[test]
        fn random_edits_never_panic_and_every_reading_error_has_a_position(
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0usize..12, prop::sample::select(TOKENS), any::<char>(), any::<bool>()),
                1..4,
            )
        ) {
            let text = apply_edits(EMBEDDED_DEFAULT, &edits);
            if let Err(err) = resolve::parse_toml(&text, None) {
                prop_assert_eq!(err.problems.len(), 1);
                prop_assert!(has_position(&err.problems[0]), "{:?}", err.problems[0]);
                prop_assert!(!err.problems[0].contains('\n'), "{:?}", err.problems[0]);
            }
            let _ = parse(&text, Path::new(""));
        }
    }
}
