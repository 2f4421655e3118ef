//! Where a TOML reading error is: toml gives the error's byte span, the spanned document
//! (`toml::de::DeTable::parse`) tells which key of which entry holds that span, and the
//! entry is named as `resolve` names it (`mapping "orders"`, `stream "s" producer 1`).

use std::fmt::Write as _;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::wording::{key_path, line_column, one_line, problem_line, shorten, Problem, Step};

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

/// A node of the spanned document whose span is the error's.
struct Found<'d, 'i> {
    path: Vec<Step>,
    node: &'d DeValue<'i>,
    span: Range<usize>,
    /// The error is on the key itself (an unknown key), not its value.
    on_key: bool,
}

/// `line:column: subject: problem` for a toml error on `text` read as a `T`.
pub(super) fn describe_toml<T: DeserializeOwned>(text: &str, error: &toml::de::Error) -> String {
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
