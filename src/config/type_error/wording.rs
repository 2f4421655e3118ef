//! The words of a reading error, the same for TOML and JSON: serde's message taken apart
//! (`Problem`), the line after `subject: ` (`key = value: expected an integer`, `x: unknown
//! key (did you mean y?)`), the key path, the value as written (shortened), and positions
//! as line and column.

use std::fmt::Write as _;

/// Longest value quoted as written; longer ones are cut with `…`.
const MAX_VALUE_CHARS: usize = 60;

/// serde's message, taken apart.
#[derive(Debug, PartialEq)]
pub(super) enum Problem {
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
    pub(super) fn parse(message: &str) -> Problem {
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
pub(super) fn problem_line(
    problem: &Problem,
    key: &str,
    value: Option<&str>,
    found: &str,
) -> String {
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

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// `pace.poll_interval_ms`, `command[1]`, `headers."X-Key"`.
pub(super) fn key_path(path: &[Step]) -> String {
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

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
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
pub(super) fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join("; ")
}

/// A value as written, on one line (a multi-line value has its white space collapsed) and
/// at most `MAX_VALUE_CHARS` characters.
pub(super) fn shorten(written: &str) -> String {
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
