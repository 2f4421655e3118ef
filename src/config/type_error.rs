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

use std::fmt::Write as _;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// How `resolve` names the entries of the top-level arrays of tables (`mapping "orders"`,
/// unnamed: `mapping #3`).
const ENTRY_LABELS: [(&str, &str); 3] = [
    ("mappings", "mapping"),
    ("streams", "stream"),
    ("functions", "function"),
];

/// How `resolve` names the arrays of tables inside an entry (`stream "s" producer 1`).
const ITEM_LABELS: [(&str, &str); 3] = [
    ("producers", "producer"),
    ("reshard", "reshard"),
    ("rules", "rule"),
];

/// Longest value quoted as written; longer ones are cut with `…`.
const MAX_VALUE_CHARS: usize = 60;

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

// ---------------------------------------------------------------------------------------
// What serde said

/// serde's message, taken apart.
#[derive(Debug, PartialEq)]
enum Problem {
    /// `unknown field `x`, expected one of ...`
    UnknownKey { key: String, allowed: Vec<String> },
    /// `missing field `x``
    Missing { key: String },
    /// `unknown variant `x`, expected ...`: the allowed values.
    UnknownVariant { allowed: Vec<String> },
    /// `wanted string or table`: toml's word for a non-string given to an enum.
    NotAVariant,
    /// Invalid type, value or length: what was expected, in words.
    Expected(String),
    /// Anything else, as serde said it.
    Other(String),
}

impl Problem {
    fn parse(message: &str) -> Problem {
        let message = message.trim();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((key, rest)) = rest.split_once('`') {
                return Problem::UnknownKey {
                    key: key.to_string(),
                    allowed: backticked(rest),
                };
            }
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some(key) = rest.strip_suffix('`') {
                return Problem::Missing {
                    key: key.to_string(),
                };
            }
        }
        if let Some(rest) = message.strip_prefix("unknown variant `") {
            if let Some((_, rest)) = rest.split_once('`') {
                return Problem::UnknownVariant {
                    allowed: backticked(rest),
                };
            }
        }
        if message == "wanted string or table" {
            return Problem::NotAVariant;
        }
        for (prefix, invalid_value) in [
            ("invalid type: ", false),
            ("invalid value: ", true),
            ("invalid length ", true),
        ] {
            if let Some(rest) = message.strip_prefix(prefix) {
                if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                    // toml reports an integer too large for i64 as an i128 of the wrong type.
                    let out_of_range = invalid_value || found.ends_with(" as i128");
                    return Problem::Expected(expected_in_words(expected, out_of_range));
                }
            }
        }
        Problem::Other(message.to_string())
    }
}

/// The names between backticks: `a`, `b` or `c` → [a, b, c].
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// serde's "expected" in the config's words.
fn expected_in_words(expected: &str, out_of_range: bool) -> String {
    let integer_range = |lo: i128, hi: u128| format!("an integer {lo}..={hi}");
    match expected {
        "i8" => integer_range(i8::MIN.into(), i8::MAX as u128),
        "i16" => integer_range(i16::MIN.into(), i16::MAX as u128),
        "i32" => integer_range(i32::MIN.into(), i32::MAX as u128),
        "i64" | "isize" if out_of_range => integer_range(i64::MIN.into(), i64::MAX as u128),
        "u8" => integer_range(0, u8::MAX.into()),
        "u16" => integer_range(0, u16::MAX.into()),
        "u32" if out_of_range => integer_range(0, u32::MAX.into()),
        "u64" | "usize" if out_of_range => integer_range(0, u64::MAX.into()),
        "i64" | "isize" | "i128" => "an integer".to_string(),
        "u32" | "u64" | "usize" | "u128" => "a non-negative integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "a boolean (true or false)".to_string(),
        "a string" | "a borrowed string" | "a character" | "string or map" => {
            "a string".to_string()
        }
        "path string" => "a string (a path)".to_string(),
        "a sequence" | "a tuple" => "an array".to_string(),
        "a map" | "a table" => "a table".to_string(),
        e if e.starts_with("struct ") || e.starts_with("map ") => "a table".to_string(),
        e => match e.strip_prefix("an array of length ") {
            Some(n) => format!("an array of {n} values"),
            None => e.to_string(),
        },
    }
}

/// `"a", "b", "c"`.
fn quoted_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    quoted.join(", ")
}

/// The allowed name closest to a misspelt one, if any is close.
fn did_you_mean<'a>(key: &str, allowed: &'a [String]) -> Option<&'a str> {
    let key_lower = key.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (edit_distance(&key_lower, &a.to_ascii_lowercase()), a))
        .filter(|(d, a)| *d <= (a.chars().count() / 4).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.as_str())
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The line of a problem after `subject: `, given the key (a path inside the entry, or
/// empty) and the value as written (None: not quotable, e.g. a `[table]`).
fn problem_line(problem: &Problem, key: &str, value: Option<&str>, found: &str) -> String {
    let with_value = |expected: &str| match (key.is_empty(), value) {
        (true, Some(value)) => format!("{value}: {expected}"),
        (true, None) => format!("{expected}, found {found}"),
        (false, Some(value)) => format!("{key} = {value}: {expected}"),
        (false, None) => format!("{key}: {expected}, found {found}"),
    };
    match problem {
        Problem::UnknownKey {
            key: unknown,
            allowed,
        } => {
            let mut line = if key.is_empty() {
                format!("{unknown}: unknown key")
            } else {
                format!("{key}.{unknown}: unknown key")
            };
            if let Some(close) = did_you_mean(unknown, allowed) {
                let _ = write!(line, " (did you mean {close}?)");
            }
            if !allowed.is_empty() {
                let _ = write!(line, "; allowed: {}", allowed.join(", "));
            }
            line
        }
        Problem::Missing { key: missing } => {
            if key.is_empty() {
                format!("{missing} is required")
            } else {
                format!("{key}.{missing} is required")
            }
        }
        Problem::UnknownVariant { allowed } => {
            with_value(&format!("expected one of {}", quoted_list(allowed)))
        }
        Problem::NotAVariant => with_value("expected a string"),
        Problem::Expected(expected) => with_value(&format!("expected {expected}")),
        Problem::Other(message) => with_value(message),
    }
}

// ---------------------------------------------------------------------------------------
// TOML

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A node of the spanned document whose span is the error's.
struct Found<'d, 'i> {
    path: Vec<Step>,
    node: &'d DeValue<'i>,
    span: Range<usize>,
    /// The error is on the key itself (an unknown key), not its value.
    on_key: bool,
}

/// `line:column: subject: problem` for a toml error on `text` read as a `T`.
fn describe_toml<T: DeserializeOwned>(text: &str, error: &toml::de::Error) -> String {
    let span = error
        .span()
        .map(|s| s.start.min(text.len())..s.end.min(text.len()))
        .unwrap_or(0..0);
    let span = span.start..span.end.max(span.start);
    let message = one_line(error.message());
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(_) => {
            // The text is not TOML: toml's message says what is wrong.
            let (line, column) = line_column(text, span.start);
            let message = if message == "duplicate key" {
                match text.get(span.clone()) {
                    Some(key) if !key.is_empty() => format!("duplicate key {}", one_line(key)),
                    _ => message,
                }
            } else {
                message
            };
            return format!("{line}:{column}: TOML syntax error: {message}");
        }
    };
    let mut problem = Problem::parse(&message);
    let wants_key = matches!(problem, Problem::UnknownKey { .. });
    let wants_array =
        message.starts_with("invalid type: sequence") || message.starts_with("invalid length ");
    let root = doc.get_ref();
    let mut found = Vec::new();
    find_table(root, &span, &mut Vec::new(), &mut found);
    // Several nodes may share the span: an array of tables and its first table, a dotted
    // key's table and the key. Prefer the key for an unknown key, the array when serde
    // complains about one, else the deepest node.
    let candidates = || found.iter().filter(|f| f.on_key == wants_key);
    let deepest = || candidates().max_by_key(|f| f.path.len());
    let best = if wants_array {
        candidates()
            .filter(|f| matches!(f.node, DeValue::Array(_)))
            .min_by_key(|f| f.path.len())
            .or_else(deepest)
    } else {
        deepest()
    }
    .or_else(|| found.first());
    let Some(best) = best else {
        let (line, column) = line_column(text, span.start);
        return format!("{line}:{column}: {message}");
    };
    if problem == Problem::NotAVariant {
        if let Some(allowed) = enum_values::<T>(text, &best.span) {
            problem = Problem::UnknownVariant { allowed };
        }
    }
    let mut path = best.path.clone();
    if best.on_key {
        // The unknown key is named by the problem; the path is where it is.
        path.pop();
    }
    // `[[admin]]`: serde reads a struct from an array field by field, and complains about
    // the first field. At the top level only the entry arrays are arrays: the others are
    // sections, i.e. tables.
    if let [Step::Key(section), Step::Index(_), ..] = path.as_slice() {
        let array = root
            .get(section.as_str())
            .filter(|a| a.get_ref().is_array());
        if let (Some(array), false) = (array, ENTRY_LABELS.iter().any(|(a, _)| a == section)) {
            let array = Found {
                path: vec![Step::Key(section.clone())],
                node: array.get_ref(),
                span: array.span(),
                on_key: false,
            };
            let (value, found_kind) = value_as_written(text, &array);
            let (line, column) = line_column(text, array.span.start);
            let problem = Problem::Expected("a table".to_string());
            return format!(
                "{line}:{column}: top level: {}",
                problem_line(&problem, section, value.as_deref(), found_kind)
            );
        }
    }
    let (subject, key) = subject_and_key(root, &path, &problem);
    let (value, found_kind) = value_as_written(text, best);
    let (line, column) = line_column(text, best.span.start);
    let mut line_text = format!(
        "{line}:{column}: {subject}: {}",
        problem_line(&problem, &key, value.as_deref(), found_kind)
    );
    // `[mappings]` where `[[mappings]]` was meant.
    if let (DeValue::Table(_), Some(header)) = (best.node, header_of(text, &best.span)) {
        if matches!(&problem, Problem::Expected(e) if e == "an array") {
            let _ = write!(line_text, " (write [[{header}]] for each entry)");
        }
    }
    line_text
}

/// Every node of `table` (and below) whose value span or key span is `span`.
fn find_table<'d, 'i>(
    table: &'d DeTable<'i>,
    span: &Range<usize>,
    path: &mut Vec<Step>,
    found: &mut Vec<Found<'d, 'i>>,
) {
    for (key, value) in table.iter() {
        path.push(Step::Key(key.get_ref().to_string()));
        if key.span() == *span {
            found.push(Found {
                path: path.clone(),
                node: value.get_ref(),
                span: key.span(),
                on_key: true,
            });
        }
        find_value(value, span, path, found);
        path.pop();
    }
}

fn find_value<'d, 'i>(
    value: &'d Spanned<DeValue<'i>>,
    span: &Range<usize>,
    path: &mut Vec<Step>,
    found: &mut Vec<Found<'d, 'i>>,
) {
    if value.span() == *span {
        found.push(Found {
            path: path.clone(),
            node: value.get_ref(),
            span: value.span(),
            on_key: false,
        });
    }
    match value.get_ref() {
        DeValue::Table(table) => find_table(table, span, path, found),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                path.push(Step::Index(i));
                find_value(item, span, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The subject (`mapping "orders"`, `stream "s" producer 2`, `admin`, `top level`) and the
/// key path inside it (`pace.poll_interval_ms`, `command[1]`, empty for the entry itself).
fn subject_and_key(root: &DeTable<'_>, path: &[Step], problem: &Problem) -> (String, String) {
    let entry_itself_ok = matches!(
        problem,
        Problem::Missing { .. } | Problem::UnknownKey { .. }
    );
    let (mut subject, rest, mut node) = match path {
        [Step::Key(array), Step::Index(i), rest @ ..]
            if (!rest.is_empty() || entry_itself_ok)
                && ENTRY_LABELS.iter().any(|(a, _)| a == array) =>
        {
            let label = ENTRY_LABELS
                .iter()
                .find(|(a, _)| a == array)
                .map_or("entry", |(_, l)| l);
            let entry = root
                .get(array.as_str())
                .and_then(|a| a.get_ref().get(*i))
                .map(|e| e.get_ref());
            let name = entry
                .and_then(|e| e.get("name"))
                .and_then(|n| n.get_ref().as_str())
                .filter(|n| !n.is_empty());
            let subject = match name {
                Some(name) => format!("{label} {name:?}"),
                None => format!("{label} #{}", i + 1),
            };
            (subject, rest, entry)
        }
        [Step::Key(section), rest @ ..]
            if (!rest.is_empty() || entry_itself_ok)
                && root
                    .get(section.as_str())
                    .is_some_and(|s| s.get_ref().is_table()) =>
        {
            let node = root.get(section.as_str()).map(|s| s.get_ref());
            (section.clone(), rest, node)
        }
        _ => {
            return ("top level".to_string(), key_path(path));
        }
    };
    // Arrays of tables inside an entry are named as `resolve` names them.
    let mut rest = rest;
    while let [Step::Key(array), Step::Index(i), tail @ ..] = rest {
        let Some((_, label)) = ITEM_LABELS.iter().find(|(a, _)| a == array) else {
            break;
        };
        let is_tables = node
            .and_then(|n| n.get(array.as_str()))
            .and_then(|a| a.get_ref().get(*i))
            .is_some_and(|t| t.get_ref().is_table());
        if !is_tables || (tail.is_empty() && !entry_itself_ok) {
            break;
        }
        let _ = write!(subject, " {label} {}", i + 1);
        node = node
            .and_then(|n| n.get(array.as_str()))
            .and_then(|a| a.get_ref().get(*i))
            .map(|t| t.get_ref());
        rest = tail;
    }
    (subject, key_path(rest))
}

/// `pace.poll_interval_ms`, `command[1]`, `headers."X-Key"`.
fn key_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(key);
                } else {
                    let _ = write!(out, "{key:?}");
                }
            }
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// The value as written (None for a table or array of tables given by a header or dotted
/// keys), and what it is in words for when it is not quotable.
fn value_as_written(text: &str, found: &Found<'_, '_>) -> (Option<String>, &'static str) {
    let written = text.get(found.span.clone()).unwrap_or("");
    let kind = match found.node {
        DeValue::Table(_) => "a table",
        DeValue::Array(_) => "an array of tables",
        _ => "a value",
    };
    let inline = match found.node {
        DeValue::Table(_) => written.starts_with('{'),
        DeValue::Array(_) => written.starts_with('[') && !written.starts_with("[["),
        _ => true,
    };
    if !inline || written.is_empty() {
        return (None, kind);
    }
    (Some(shorten(written)), kind)
}

/// The header of a `[table]` (None when it is not one).
fn header_of(text: &str, span: &Range<usize>) -> Option<String> {
    let written = text.get(span.clone())?;
    let inner = written.strip_prefix('[')?.strip_suffix(']')?;
    if inner.starts_with('[') {
        return None;
    }
    Some(inner.trim().to_string())
}

/// The allowed values of the enum at `span`, found by parsing the text again with a string
/// there that no enum has.
fn enum_values<T: DeserializeOwned>(text: &str, span: &Range<usize>) -> Option<Vec<String>> {
    let mut probe = String::with_capacity(text.len() + 8);
    probe.push_str(text.get(..span.start)?);
    probe.push_str("\"\\u0000\"");
    probe.push_str(text.get(span.end..)?);
    match toml::from_str::<T>(&probe) {
        Err(e) => match Problem::parse(e.message()) {
            Problem::UnknownVariant { allowed }
                if e.span().map(|s| s.start) == Some(span.start) =>
            {
                Some(allowed)
            }
            _ => None,
        },
        Ok(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// JSON

/// `line:column: path = value: expected ...` for a serde_json error on `text`.
fn describe_json(text: &str, error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = one_line(full.strip_suffix(&suffix).unwrap_or(&full));
    let line = error.line().max(1);
    let column = error.column().max(1);
    if !error.is_data() {
        // A syntax error or the end of the text: serde_json's position (in bytes).
        let offset = offset_of(text, line, column);
        let (line, column) = line_column(text, offset);
        return format!("{line}:{column}: JSON syntax error: {message}");
    }
    if !text.trim_start().starts_with('{') {
        return "1:1: expected a JSON object (the mapping's parameters)".to_string();
    }
    let offset = offset_of(text, line, column);
    let problem = Problem::parse(&message);
    let Some(hit) = json_hit(text, offset) else {
        let (line, column) = line_column(text, offset);
        return format!("{line}:{column}: {message}");
    };
    let (line, column) = line_column(text, hit.start);
    let mut path = hit.path;
    if hit.on_key {
        path.pop();
    }
    let key = key_path(&path);
    let value = hit.value.map(|v| shorten(&v));
    format!(
        "{line}:{column}: {}",
        problem_line(&problem, &key, value.as_deref(), "an object")
    )
}

/// The byte offset of serde_json's 1-based line and column (which counts bytes and points
/// at the last character it read).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Where a JSON error is: the key path, the value as written, and its start.
struct JsonHit {
    path: Vec<Step>,
    value: Option<String>,
    start: usize,
    on_key: bool,
}

/// An open object or array of the JSON scanner.
enum Frame {
    Object {
        key: Option<String>,
        expect_key: bool,
        start: usize,
    },
    Array {
        index: usize,
        start: usize,
    },
}

fn frames_path(frames: &[Frame]) -> Vec<Step> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Object { key, .. } => key.clone().map(Step::Key),
            Frame::Array { index, .. } => Some(Step::Index(*index)),
        })
        .collect()
}

/// Scans `text` (which serde_json parsed up to `offset`) for the first token that ends
/// after byte `offset` (serde_json points at the last character it read: the end of a
/// value or key, or the character before a value it only peeked at): a key, a value, or
/// the `}` / `]` that closes an object missing a key.
fn json_hit(text: &str, offset: usize) -> Option<JsonHit> {
    let bytes = text.as_bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'{' | b'[' => {
                if start >= offset {
                    return Some(JsonHit {
                        path: frames_path(&frames),
                        value: Some(container_text(text, start)),
                        start,
                        on_key: false,
                    });
                }
                frames.push(if bytes[i] == b'{' {
                    Frame::Object {
                        key: None,
                        expect_key: true,
                        start,
                    }
                } else {
                    Frame::Array { index: 0, start }
                });
                i += 1;
            }
            b'}' | b']' => {
                let frame = frames.pop();
                if start >= offset {
                    let container_start = match frame {
                        Some(Frame::Object { start, .. }) | Some(Frame::Array { start, .. }) => {
                            start
                        }
                        None => start,
                    };
                    return Some(JsonHit {
                        path: frames_path(&frames),
                        value: Some(container_text(text, container_start)),
                        start: container_start,
                        on_key: false,
                    });
                }
                i += 1;
            }
            b',' => {
                match frames.last_mut() {
                    Some(Frame::Object {
                        key, expect_key, ..
                    }) => {
                        *key = None;
                        *expect_key = true;
                    }
                    Some(Frame::Array { index, .. }) => *index += 1,
                    None => {}
                }
                i += 1;
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = frames.last_mut() {
                    *expect_key = false;
                }
                i += 1;
            }
            b'"' => {
                let end = string_end(bytes, i);
                let raw = text.get(start..end).unwrap_or("");
                let is_key = matches!(
                    frames.last(),
                    Some(Frame::Object {
                        expect_key: true,
                        ..
                    })
                );
                if is_key {
                    let key = serde_json::from_str::<String>(raw)
                        .unwrap_or_else(|_| raw.trim_matches('"').to_string());
                    if let Some(Frame::Object { key: current, .. }) = frames.last_mut() {
                        *current = Some(key);
                    }
                }
                if end > offset {
                    return Some(JsonHit {
                        path: frames_path(&frames),
                        value: (!is_key).then(|| raw.to_string()),
                        start,
                        on_key: is_key,
                    });
                }
                i = end.max(i + 1);
            }
            _ => {
                // A number or a literal: up to the next delimiter.
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b',' | b':' | b'}' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                let end = i.max(start + 1);
                if end > offset {
                    return Some(JsonHit {
                        path: frames_path(&frames),
                        value: text.get(start..end).map(str::to_string),
                        start,
                        on_key: false,
                    });
                }
                i = end;
            }
        }
    }
    None
}

/// The byte after the closing quote of the string starting at `start` (the end of the
/// text when it is not closed).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// An object or array from its opening character to its end (or the end of the text).
fn container_text(text: &str, start: usize) -> String {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return text.get(start..=i).unwrap_or("").to_string();
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.get(start..).unwrap_or("").to_string()
}

// ---------------------------------------------------------------------------------------
// Text

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A message on one line: line breaks become `; `.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join("; ")
}

/// A value as written, on one line (a multi-line value has its white space collapsed) and
/// at most `MAX_VALUE_CHARS` characters.
fn shorten(written: &str) -> String {
    let collapsed = if written.contains(['\n', '\r']) {
        written.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        written.to_string()
    };
    if collapsed.chars().count() <= MAX_VALUE_CHARS {
        collapsed
    } else {
        let mut cut: String = collapsed.chars().take(MAX_VALUE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::super::{parse, resolve, EMBEDDED_DEFAULT};

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
            "2:1: admin: port: unknown key; allowed: enabled, listen, token, token_env, stuck_after_seconds"
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
            let mut text: Vec<char> = EMBEDDED_DEFAULT.chars().collect();
            for (at, delete, token, c, use_char) in edits {
                let at = at.index(text.len() + 1);
                let end = (at + delete).min(text.len());
                let insert: Vec<char> = if use_char { vec![c] } else { token.chars().collect() };
                text.splice(at..end, insert);
            }
            let text: String = text.into_iter().collect();
            if let Err(err) = resolve::parse_toml(&text, None) {
                prop_assert_eq!(err.problems.len(), 1);
                prop_assert!(has_position(&err.problems[0]), "{:?}", err.problems[0]);
                prop_assert!(!err.problems[0].contains('\n'), "{:?}", err.problems[0]);
            }
            let _ = parse(&text, Path::new(""));
        }
    }
}
