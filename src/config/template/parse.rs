//! Reading a template's text: YAML (with CloudFormation's short-form tags) or JSON, into
//! one JSON value.
//!
//! Everything after this works on `serde_json::Value` in CloudFormation's long form, so
//! the short forms disappear here: `!Ref X` becomes `{"Ref": "X"}`, `!GetAtt A.B`
//! becomes `{"Fn::GetAtt": ["A", "B"]}`, any other `!Name v` becomes `{"Fn::Name": v}`
//! (`!Condition` becomes `{"Condition": v}`), so an unsupported function is reported by
//! the resolver by its long name like any other. A text whose first character is `{`
//! (or a `.json` file) is read as JSON, for JSON's own error messages; YAML would read it
//! too. The parsers bound nesting depth, so the conversion's recursion is bounded.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// The template as a JSON value; `origin` (the file) starts the error:
/// `template.yaml:3:7: YAML syntax error: ...`.
pub(super) fn parse(text: &str, origin: &str, is_json: bool) -> Result<Value, String> {
    if is_json || text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full);
            format!(
                "{origin}:{}:{}: JSON syntax error: {message}",
                e.line(),
                e.column()
            )
        });
    }
    let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| {
        let full = e.to_string();
        match e.location() {
            Some(at) => {
                let position = format!(" at line {} column {}", at.line(), at.column());
                let message = full.replace(&position, "");
                format!(
                    "{origin}:{}:{}: YAML syntax error: {message}",
                    at.line(),
                    at.column()
                )
            }
            None => format!("{origin}: YAML error: {full}"),
        }
    })?;
    to_json(yaml).map_err(|e| format!("{origin}: {e}"))
}

/// A YAML value in CloudFormation's JSON long form.
fn to_json(yaml: Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                object.insert(key_text(key)?, to_json(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value)?;
            let (key, value) = match (name, value) {
                ("Ref" | "Condition", value) => (name.to_string(), value),
                ("GetAtt", Value::String(dotted)) => {
                    let parts = match dotted.split_once('.') {
                        Some((resource, attribute)) => vec![resource, attribute],
                        None => vec![dotted.as_str()],
                    };
                    ("Fn::GetAtt".to_string(), Value::from(parts))
                }
                (name, value) => (format!("Fn::{name}"), value),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    })
}

fn number(n: &serde_yaml_ng::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::from(i)
    } else if let Some(u) = n.as_u64() {
        Value::from(u)
    } else {
        // NaN and infinities have no JSON number: kept as written, a type error later.
        n.as_f64()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(n.to_string()), Value::Number)
    }
}

/// A mapping key as text: strings as they are, other scalars as written.
fn key_text(key: Yaml) -> Result<String, String> {
    match key {
        Yaml::String(s) => Ok(s),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Null => Ok("null".to_string()),
        other => Err(format!(
            "a mapping key must be a scalar, not {}",
            serde_json::to_string(&to_json(other)?).unwrap_or_default()
        )),
    }
}
