//! Where a JSON reading error is: serde_json gives a line and column, and a small scanner
//! of the JSON text finds the key and the value there.

use super::wording::{key_path, line_column, one_line, problem_line, shorten, Problem, Step};

/// `line:column: path = value: expected ...` for a serde_json error on `text`.
pub(super) fn describe_json(text: &str, error: &serde_json::Error) -> String {
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
