//! Parsing one filter pattern (the rule syntax of Lambda's event filtering, a subset of
//! EventBridge's) into a compiled tree, once, at config time.
//!
//! Everything AWS would refuse is refused here with the reason, so matching never meets
//! an ill-formed pattern: a pattern is a non-empty JSON object; every key holds either a
//! nested non-empty object (AND across keys) or a non-empty list of matchers (OR), except
//! `$or`, which holds a non-empty list of pattern objects (OR across fields). A matcher is
//! a string, number, boolean or null (exact match), or a one-key object: `prefix`,
//! `suffix`, `equals-ignore-case`, `anything-but`, `numeric` or `exists`: the rows of
//! Lambda's filter rule syntax table (spec 2.5 lists only the older ones; issue 15 asks for
//! today's Lambda). EventBridge operators Lambda does not list (`wildcard`, `cidr`,
//! `anything-but` or `prefix`/`suffix` with an operator) are refused by name.

use serde_json::{Map, Number, Value};

/// A compiled pattern object: every field must match (AND).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ObjectPattern {
    pub(crate) fields: Vec<(String, FieldPattern)>,
    /// The `$or` alternatives at this level: one must match too (none: no `$or`).
    pub(crate) any_of: Vec<ObjectPattern>,
}

/// What one key of a pattern holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldPattern {
    /// A nested object: the record's value at this key must match it.
    Object(ObjectPattern),
    /// A list of matchers: the record's value at this key must match one of them (OR).
    Leaf(Vec<Matcher>),
}

/// One element of a leaf list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Matcher {
    /// A string, number, boolean or null, matched exactly (no case folding; a number
    /// matches only a number of the same value as JSON text, never a string).
    Exact(Literal),
    /// A string that starts with this.
    Prefix(String),
    /// A string that ends with this.
    Suffix(String),
    /// A string equal to this one ignoring case; held lowercased char by char, as the
    /// record's strings are compared.
    EqualsIgnoreCase(String),
    /// Any value that equals none of these (strings and/or numbers).
    AnythingBut(Vec<Literal>),
    /// A JSON number within the range.
    Numeric(NumericRange),
    /// `true`: the key holds a value; `false`: it holds none.
    Exists(bool),
}

/// A JSON scalar of a pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

/// A numeric range; `None` bounds are open. `=` is the range `[v, v]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NumericRange {
    /// (value, inclusive)
    pub(crate) lower: Option<(f64, bool)>,
    pub(crate) upper: Option<(f64, bool)>,
}

/// Parses a pattern's JSON text. The error is the reason, for the caller to wrap.
pub(crate) fn parse(text: &str) -> Result<ObjectPattern, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value {
        Value::Object(map) if map.is_empty() => Err("the pattern is empty ({})".to_string()),
        Value::Object(map) => object(&map, ""),
        _ => Err("not a JSON object".to_string()),
    }
}

/// `path` is the dotted path of `map` in the pattern, for messages ("" at the top).
fn object(map: &Map<String, Value>, path: &str) -> Result<ObjectPattern, String> {
    let mut fields = Vec::with_capacity(map.len());
    let mut any_of = Vec::new();
    for (key, value) in map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if key == "$or" {
            any_of = alternatives(value, path, &here)?;
            continue;
        }
        let field = match value {
            Value::Object(inner) if inner.is_empty() => {
                return Err(format!("\"{here}\": an empty object matches nothing"))
            }
            Value::Object(inner) => FieldPattern::Object(object(inner, &here)?),
            Value::Array(items) if items.is_empty() => {
                return Err(format!("\"{here}\": an empty list matches nothing"))
            }
            Value::Array(items) => FieldPattern::Leaf(
                items
                    .iter()
                    .map(|item| matcher(item, &here))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return Err(format!(
                    "\"{here}\": {other} must be in a list ([{other}]) or an object"
                ))
            }
        };
        fields.push((key.clone(), field));
    }
    Ok(ObjectPattern { fields, any_of })
}

/// The value of a `$or` key: a non-empty list of non-empty pattern objects, each matched
/// at the position of the object holding the `$or` (so `path`, not `here`, is theirs).
fn alternatives(value: &Value, path: &str, here: &str) -> Result<Vec<ObjectPattern>, String> {
    let bad =
        || format!("\"{here}\": $or takes a non-empty list of non-empty objects, got {value}");
    let Value::Array(items) = value else {
        return Err(bad());
    };
    if items.is_empty() {
        return Err(bad());
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) if !map.is_empty() => object(map, path),
            _ => Err(bad()),
        })
        .collect()
}

fn matcher(item: &Value, here: &str) -> Result<Matcher, String> {
    match item {
        Value::Array(_) => Err(format!("\"{here}\": a list inside a list is not allowed")),
        Value::Object(op) => operator(op, here),
        scalar => literal(scalar)
            .map(Matcher::Exact)
            .ok_or_else(|| format!("\"{here}\": {scalar} is not a value")),
    }
}

fn literal(value: &Value) -> Option<Literal> {
    Some(match value {
        Value::String(s) => Literal::Str(s.clone()),
        Value::Number(n) => Literal::Num(n.clone()),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn operator(op: &Map<String, Value>, here: &str) -> Result<Matcher, String> {
    let mut entries = op.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "\"{here}\": an operator object must have exactly one key, got {}",
            Value::Object(op.clone())
        ));
    };
    match name.as_str() {
        "prefix" => string_arg(name, arg, here).map(Matcher::Prefix),
        "suffix" => string_arg(name, arg, here).map(Matcher::Suffix),
        "equals-ignore-case" => {
            let lowercase = |s: String| s.chars().flat_map(char::to_lowercase).collect();
            string_arg(name, arg, here).map(|s| Matcher::EqualsIgnoreCase(lowercase(s)))
        }
        "anything-but" => anything_but(arg, here),
        "numeric" => numeric(arg, here).map(Matcher::Numeric),
        "exists" => match arg {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            other => Err(format!(
                "\"{here}\": exists takes true or false, got {other}"
            )),
        },
        other => Err(format!(
            "\"{here}\": operator \"{other}\" is not supported ({OPERATORS})"
        )),
    }
}

/// The operators Lambda's filter rule syntax lists, for the message refusing another.
const OPERATORS: &str = "prefix, suffix, equals-ignore-case, anything-but, numeric, exists";

/// The string argument of `prefix`, `suffix` or `equals-ignore-case`.
fn string_arg(name: &str, arg: &Value, here: &str) -> Result<String, String> {
    match arg {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "\"{here}\": {name} takes a string, got {other} ({name} with an operator is not supported)"
        )),
    }
}

fn anything_but(arg: &Value, here: &str) -> Result<Matcher, String> {
    let string_or_number = |v: &Value| match v {
        Value::String(_) | Value::Number(_) => literal(v),
        _ => None,
    };
    let values = match arg {
        Value::Array(items) if items.is_empty() => {
            return Err(format!("\"{here}\": anything-but takes a non-empty list"))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| {
                string_or_number(v).ok_or_else(|| {
                    format!("\"{here}\": anything-but lists only strings and numbers, got {v}")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(_) => {
            return Err(format!(
                "\"{here}\": anything-but with an operator ({arg}) is not supported"
            ))
        }
        other => vec![string_or_number(other).ok_or_else(|| {
            format!(
                "\"{here}\": anything-but takes a string, a number or a list of them, got {other}"
            )
        })?],
    };
    Ok(Matcher::AnythingBut(values))
}

fn numeric(arg: &Value, here: &str) -> Result<NumericRange, String> {
    let bad = || {
        format!(
            "\"{here}\": numeric takes [\"=\", n], [op, n] or [\">\"|\">=\", low, \"<\"|\"<=\", high], got {arg}"
        )
    };
    let Value::Array(items) = arg else {
        return Err(bad());
    };
    let term = |i: usize| -> Result<(&str, f64), String> {
        match (&items[i], &items[i + 1]) {
            (Value::String(op), Value::Number(n)) => {
                n.as_f64().map(|n| (op.as_str(), n)).ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    };
    match items.len() {
        2 => {
            let (op, n) = term(0)?;
            Ok(match op {
                "=" => NumericRange {
                    lower: Some((n, true)),
                    upper: Some((n, true)),
                },
                ">" => NumericRange {
                    lower: Some((n, false)),
                    upper: None,
                },
                ">=" => NumericRange {
                    lower: Some((n, true)),
                    upper: None,
                },
                "<" => NumericRange {
                    lower: None,
                    upper: Some((n, false)),
                },
                "<=" => NumericRange {
                    lower: None,
                    upper: Some((n, true)),
                },
                _ => return Err(bad()),
            })
        }
        4 => {
            let (low_op, low) = term(0)?;
            let (high_op, high) = term(2)?;
            let lower = match low_op {
                ">" => (low, false),
                ">=" => (low, true),
                _ => return Err(bad()),
            };
            let upper = match high_op {
                "<" => (high, false),
                "<=" => (high, true),
                _ => return Err(bad()),
            };
            if low >= high {
                return Err(format!(
                    "\"{here}\": numeric range: the lower bound {low} must be below the upper bound {high}"
                ));
            }
            Ok(NumericRange {
                lower: Some(lower),
                upper: Some(upper),
            })
        }
        _ => Err(bad()),
    }
}

impl NumericRange {
    pub(crate) fn contains(&self, n: f64) -> bool {
        let above = match self.lower {
            None => true,
            Some((low, true)) => n >= low,
            Some((low, false)) => n > low,
        };
        let below = match self.upper {
            None => true,
            Some((high, true)) => n <= high,
            Some((high, false)) => n < high,
        };
        above && below
    }
}

impl ObjectPattern {
    /// Calls `f` on every field this pattern addresses at its own position: its keys and
    /// those of its `$or` alternatives, theirs included.
    pub(crate) fn each_field<'p>(&'p self, f: &mut impl FnMut(&'p str, &'p FieldPattern)) {
        for (key, field) in &self.fields {
            f(key, field);
        }
        for alternative in &self.any_of {
            alternative.each_field(f);
        }
    }
}
