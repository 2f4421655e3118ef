//! Mappings from a CloudFormation or SAM template (`--template template.yaml`).
//!
//! The template adds mappings to a config; it does not replace it: the config still gives
//! the functions, the simulated streams, the settings, and in `[template]` the values a
//! template refers to but cannot define (parameters, resources of other stacks, values
//! AWS chooses). The mappings found are appended to the config's `[[mappings]]` before
//! validation, so `resolve` applies the same defaults, ranges and messages whatever a
//! mapping was written in. The parts: `parse` (YAML or JSON text to one JSON value, short
//! forms to long ones), `intrinsics` (Ref, Fn::GetAtt, Fn::Sub, Fn::Join), `attributes`
//! (what a resource's Ref and attributes are), `convert` (resources and SAM events to
//! mapping entries). Every problem is collected, each naming the file, the resource's
//! logical id and the field; none is fatal before all are found.

mod attributes;
mod convert;
mod intrinsics;
mod parse;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_resources;

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

use self::attributes::Env;
use self::intrinsics::Resolver;
use super::schema::{ConfigFile, MappingEntry};

/// AWS::StackName unless `--stack-name` gives one.
pub const DEFAULT_STACK_NAME: &str = "esm-sim";

/// What the command line says about the template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// The template file (relative to the current directory).
    pub path: PathBuf,
    /// `--parameter KEY=VALUE`, in order (a later one wins).
    pub parameters: Vec<(String, String)>,
    /// `--stack-name`; default `DEFAULT_STACK_NAME`.
    pub stack_name: Option<String>,
}

/// A value the resolver could not find: the innermost intrinsic function that failed
/// (`Fn::GetAtt OrdersTable.StreamArn`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Unresolved {
    pub(super) what: String,
    pub(super) why: String,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// Read the template and append its mappings to `file.mappings`. The problems, each a
/// line starting with the template's path; empty when all went well.
pub fn add_mappings(file: &mut ConfigFile, options: &TemplateOptions) -> Vec<String> {
    let origin = options.path.display().to_string();
    let text = match std::fs::read_to_string(&options.path) {
        Ok(text) => text,
        Err(e) => return vec![format!("cannot read template {origin}: {e}")],
    };
    let is_json = options
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    match mappings(&text, &origin, is_json, file, options) {
        Ok(found) => {
            file.mappings.extend(found);
            Vec::new()
        }
        Err(problems) => problems,
    }
}

/// The mappings of a template's text, resolved against `file` (its `[aws]`, simulated
/// streams and `[template]`); `origin` starts every problem.
pub fn mappings(
    text: &str,
    origin: &str,
    is_json: bool,
    file: &ConfigFile,
    options: &TemplateOptions,
) -> Result<Vec<MappingEntry>, Vec<String>> {
    let template = parse::parse(text, origin, is_json).map_err(|e| vec![e])?;
    let Value::Object(template) = template else {
        return Err(vec![format!(
            "{origin}: expected a template (an object with Resources), not {}",
            kind_of(&template)
        )]);
    };
    let empty = Map::new();
    let resources = match template.get("Resources") {
        Some(Value::Object(resources)) => resources,
        None => &empty,
        Some(other) => {
            return Err(vec![format!(
                "{origin}: Resources: expected an object, not {}",
                kind_of(other)
            )])
        }
    };
    let env = Env {
        aws: &file.aws,
        streams: &file.streams,
        stack_name: options.stack_name.as_deref().unwrap_or(DEFAULT_STACK_NAME),
    };
    let (resolver, mut problems) = Resolver::new(
        &template,
        resources,
        &file.template,
        &options.parameters,
        env,
    );
    let (entries, more) = convert::mapping_entries(resources, &resolver);
    problems.extend(more);
    match problems.is_empty() {
        true => Ok(entries),
        false => Err(problems
            .into_iter()
            .map(|problem| format!("{origin}: {problem}"))
            .collect()),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
