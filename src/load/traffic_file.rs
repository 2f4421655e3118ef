//! The traffic file: recorded Kinesis traffic that `esm-sim record` writes and
//! `esm-sim replay` puts back, one record per line (JSON Lines).
//!
//! ```text
//! {"partition_key":"user-3","data":"{\"producer\":0,\"n\":0,...}","offset_ms":0}
//! {"partition_key":"user-7","data_base64":"AAECAw==","offset_ms":250}
//! ```
//!
//! - `partition_key` (string, 1 to 256 characters): the record's partition key.
//! - `data` (string): the record's bytes when they are UTF-8 text, or `data_base64`
//!   (standard base64, padded) when they are not. Exactly one of the two. At most 1 MiB.
//! - `offset_ms` (non-negative integer, optional): when the record arrived, in
//!   milliseconds after the first record of the recording. Missing means 0: as soon as
//!   possible. Replay keeps the file's order, so a record whose offset is smaller than an
//!   earlier line's goes right after that line.
//!
//! Blank lines are skipped. Anything else (a line that is not a JSON object, an unknown
//! field, both or neither of `data`/`data_base64`, bad base64, an empty key) is an error
//! naming the file and the line number. Unknown fields are refused rather than ignored so
//! that a misspelt `offset_ms` cannot silently replay everything at once.
//!
//! Text rather than a binary format so that a recording can be read, diffed, edited and
//! written by hand; `data` as text (not always base64) for the same reason, since stream
//! payloads are nearly always JSON. This file is pure: parsing and formatting of lines
//! and whole texts; reading and writing files is left to the callers.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Kinesis' partition key limit, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = crate::limits::KINESIS_MAX_PARTITION_KEY_CHARS;
/// Kinesis' classic per-record data limit.
pub const MAX_DATA_BYTES: usize = crate::limits::KINESIS_MAX_RECORD_DATA_BYTES;

/// One record of a traffic file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Milliseconds after the start of the recording (0 when the line has none).
    pub offset_ms: u64,
}

/// A line that could not be read, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TrafficError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for TrafficError {}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Line {
    partition_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset_ms: Option<u64>,
}

/// Parses one non-blank line.
pub fn parse_line(text: &str) -> Result<TrafficRecord, String> {
    // serde would also take a struct from a JSON array of its fields.
    if !text.trim_start().starts_with('{') {
        return Err("not a traffic record: a line must be a JSON object".to_string());
    }
    let line: Line =
        serde_json::from_str(text).map_err(|e| format!("not a traffic record: {e}"))?;
    let data = match (line.data, line.data_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("data_base64 is not valid base64: {e}"))?,
        (Some(_), Some(_)) => return Err("has both data and data_base64: give one".to_string()),
        (None, None) => return Err("has neither data nor data_base64".to_string()),
    };
    let key_chars = line.partition_key.chars().count();
    if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
        return Err(format!(
            "partition_key must be 1 to {MAX_PARTITION_KEY_CHARS} characters (it has {key_chars})"
        ));
    }
    if data.len() > MAX_DATA_BYTES {
        return Err(format!(
            "data is {} bytes: more than Kinesis' {MAX_DATA_BYTES}",
            data.len()
        ));
    }
    Ok(TrafficRecord {
        partition_key: line.partition_key,
        data,
        offset_ms: line.offset_ms.unwrap_or(0),
    })
}

/// Parses a whole traffic text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<TrafficRecord>, TrafficError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_line(line).map_err(|message| TrafficError {
            file: file.to_string(),
            line: index + 1,
            message,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Reads and parses a traffic file.
pub fn read(path: &Path) -> anyhow::Result<Vec<TrafficRecord>> {
    let text = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read traffic file {}: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {}): a traffic file is JSON Lines",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(parse(&path.display().to_string(), &text)?)
}

/// One record as a line (without the newline): `data` when the bytes are UTF-8, else
/// `data_base64`; `offset_ms` always.
pub fn format_line(record: &TrafficRecord) -> String {
    let (data, data_base64) = match std::str::from_utf8(&record.data) {
        Ok(text) => (Some(text.to_string()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&record.data)),
        ),
    };
    let line = Line {
        partition_key: record.partition_key.clone(),
        data,
        data_base64,
        offset_ms: Some(record.offset_ms),
    };
    // A struct of strings and an integer always serializes.
    serde_json::to_string(&line).unwrap_or_default()
}

/// Records as a whole traffic text, one line each, newline-terminated.
pub fn format(records: &[TrafficRecord]) -> String {
    let mut out = String::new();
    for record in records {
        out.push_str(&format_line(record));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, data: &[u8], offset_ms: u64) -> TrafficRecord {
        TrafficRecord {
            partition_key: key.into(),
            data: data.to_vec(),
            offset_ms,
        }
    }

    #[test]
    fn text_and_binary_records_round_trip_through_the_format() {
        let records = vec![
            rec("user-3", br#"{"n":1,"poison":true}"#, 0),
            rec("user-4", &[0, 159, 146, 150, 255], 250),
            rec("k\"ey\n", "é ✓ \u{1}".as_bytes(), 1000),
            rec("user-5", b"", 1000),
        ];
        let text = format(&records);
        assert_eq!(text.lines().count(), 4);
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .contains("\"data_base64\":\"AJ+Slv8=\""));
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains(r#""data":"{\"n\":1,\"poison\":true}""#));
        assert_eq!(parse("t.jsonl", &text).unwrap(), records);
    }

    #[test]
    fn a_missing_offset_is_zero_and_blank_lines_are_skipped() {
        let text = "\n{\"partition_key\":\"a\",\"data\":\"x\"}\n   \n{\"partition_key\":\"b\",\"data_base64\":\"eHk=\",\"offset_ms\":7}\n";
        assert_eq!(
            parse("t", text).unwrap(),
            vec![rec("a", b"x", 0), rec("b", b"xy", 7)]
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_the_file_and_the_line() {
        let good = r#"{"partition_key":"a","data":"x"}"#;
        let cases = [
            ("not json", "not a traffic record"),
            (r#"{"partition_key":"a"}"#, "neither data nor data_base64"),
            (
                r#"{"partition_key":"a","data":"x","data_base64":"eA=="}"#,
                "both data and data_base64",
            ),
            (
                r#"{"partition_key":"a","data_base64":"%%"}"#,
                "not valid base64",
            ),
            (r#"{"partition_key":"","data":"x"}"#, "1 to 256 characters"),
            (
                r#"{"partition_key":"a","data":"x","offset":5}"#,
                "unknown field `offset`",
            ),
            (
                r#"{"partition_key":"a","data":"x","offset_ms":-1}"#,
                "not a traffic record",
            ),
            (r#"["a","x"]"#, "not a traffic record"),
            (r#"{"data":"x"}"#, "missing field `partition_key`"),
        ];
        for (bad, expected) in cases {
            let text = format!("{good}\n\n{bad}\n{good}\n");
            let error = parse("traffic.jsonl", &text).unwrap_err();
            assert_eq!(error.line, 3, "{bad}");
            let shown = error.to_string();
            assert!(shown.starts_with("traffic.jsonl:3: "), "{shown}");
            assert!(shown.contains(expected), "{bad}: {shown}");
        }
    }

    #[test]
    fn keys_longer_than_256_characters_and_data_over_1_mib_are_refused() {
        let long_key = "é".repeat(257);
        let line = format!(r#"{{"partition_key":"{long_key}","data":"x"}}"#);
        assert!(parse_line(&line).unwrap_err().contains("it has 257"));
        let ok_key = "é".repeat(256);
        assert!(parse_line(&format!(r#"{{"partition_key":"{ok_key}","data":"x"}}"#)).is_ok());
        let big = "x".repeat(MAX_DATA_BYTES + 1);
        let line = format!(r#"{{"partition_key":"a","data":"{big}"}}"#);
        assert!(parse_line(&line)
            .unwrap_err()
            .contains("more than Kinesis'"));
    }

    #[test]
    fn the_sample_fixture_parses() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traffic/orders-sample.jsonl");
        let records = read(&path).unwrap();
        assert!(records.len() >= 40, "{}", records.len());
        let poison = records
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.data).contains("\"poison\":true"))
            .count();
        assert!(poison >= 2, "{poison}");
        assert!(records.windows(2).all(|w| w[0].offset_ms <= w[1].offset_ms));
    }
}
