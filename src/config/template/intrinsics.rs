//! Resolving CloudFormation's intrinsic functions in a resource's properties: `Ref`,
//! `Fn::GetAtt`, `Fn::Sub` and `Fn::Join`, against the template's parameters, the pseudo
//! parameters, the config's `[template]` section and the template's other resources.
//!
//! Names are looked up in this order: pseudo parameters (`AWS::Region`, ...), the
//! template's parameters (a `--parameter` over `[template] parameters` over the
//! `Default`), `[template] resources` (they win over what could be derived), then the
//! template's resources (`attributes`). A failure is an `Unresolved`: the innermost
//! function that failed (`Fn::GetAtt OrdersTable.StreamArn`) and why; every failure of a
//! value is collected, not only the first. A resource's own properties are resolved the
//! same way when a reference needs them (its `Name`, ...); the chain of resources being
//! resolved is kept, so a circle of references is an error naming it. `Ref AWS::NoValue` removes the property or list
//! item it stands for. Other functions (`Fn::If`, `Fn::Select`, ...) are refused by name.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::attributes::{self, Env, Properties};
use super::Unresolved;
use crate::config::schema::TemplateSettings;

/// The functions resolved, for messages.
const SUPPORTED: &str = "esm-sim resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join";

/// A resolved value: `None` for `Ref AWS::NoValue`.
type Resolved = Result<Option<Value>, Vec<Unresolved>>;

/// Everything a template's values resolve against.
pub(super) struct Resolver<'a> {
    resources: &'a Map<String, Value>,
    /// Each declared parameter's value, or why it has none.
    parameters: BTreeMap<String, Result<Value, String>>,
    overrides: &'a BTreeMap<String, BTreeMap<String, String>>,
    env: Env<'a>,
    /// The resources whose properties are being resolved, outermost first: a reference
    /// back to one of them is a circle.
    visiting: RefCell<Vec<String>>,
}

impl<'a> Resolver<'a> {
    /// A resolver for `template` (an object); the problems are parameters given (on the
    /// command line or in the config) that the template does not declare.
    pub(super) fn new(
        template: &'a Map<String, Value>,
        resources: &'a Map<String, Value>,
        settings: &'a TemplateSettings,
        cli: &[(String, String)],
        env: Env<'a>,
    ) -> (Resolver<'a>, Vec<String>) {
        let empty = Map::new();
        let declared = match template.get("Parameters") {
            Some(Value::Object(declared)) => declared,
            _ => &empty,
        };
        let cli: BTreeMap<&str, &str> = cli.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut problems = Vec::new();
        let known = declared.keys().cloned().collect::<Vec<_>>().join(", ");
        let undeclared = |name: &str| {
            format!("the template declares no parameter {name} (it declares: {known})")
        };
        for name in cli.keys().filter(|n| !declared.contains_key(**n)) {
            problems.push(format!("--parameter {name}: {}", undeclared(name)));
        }
        for name in settings
            .parameters
            .keys()
            .filter(|n| !declared.contains_key(*n))
        {
            problems.push(format!(
                "[template] parameters: {name}: {}",
                undeclared(name)
            ));
        }
        let parameters = declared
            .iter()
            .map(|(name, declaration)| {
                let given = cli
                    .get(name.as_str())
                    .copied()
                    .or(settings.parameters.get(name).map(String::as_str));
                (name.clone(), parameter_value(name, declaration, given))
            })
            .collect();
        let resolver = Resolver {
            resources,
            parameters,
            overrides: &settings.resources,
            env,
            visiting: RefCell::new(Vec::new()),
        };
        (resolver, problems)
    }

    /// `value` with every intrinsic function resolved.
    pub(super) fn resolve(&self, value: &Value) -> Resolved {
        self.resolve_at(value)
    }

    /// The type of template resource `id`, if it has one.
    pub(super) fn resource_type(&self, id: &str) -> Option<&'a str> {
        self.resources.get(id)?.get("Type")?.as_str()
    }

    /// Whether `[template] resources` gives `attribute` of `id`.
    pub(super) fn is_given(&self, id: &str, attribute: &str) -> bool {
        self.overrides
            .get(id)
            .is_some_and(|a| a.contains_key(attribute))
    }

    fn resolve_at(&self, value: &Value) -> Resolved {
        match value {
            Value::Object(object) => {
                if let Some((name, argument)) = intrinsic(object) {
                    return self.function(name, argument);
                }
                let mut out = Map::new();
                let mut errors = Vec::new();
                for (key, item) in object {
                    match self.resolve_at(item) {
                        Ok(Some(item)) => {
                            out.insert(key.clone(), item);
                        }
                        Ok(None) => {}
                        Err(more) => errors.extend(more),
                    }
                }
                done(Value::Object(out), errors)
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                let mut errors = Vec::new();
                for item in items {
                    match self.resolve_at(item) {
                        Ok(item) => out.extend(item),
                        Err(more) => errors.extend(more),
                    }
                }
                done(Value::Array(out), errors)
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn function(&self, name: &str, argument: &Value) -> Resolved {
        let fail = |what: String, why: String| Err(vec![Unresolved { what, why }]);
        match (name, argument) {
            ("Ref", Value::String(target)) if target == "AWS::NoValue" => Ok(None),
            ("Ref", Value::String(target)) => match self.reference(target) {
                Ok(value) => Ok(Some(value)),
                Err(why) => fail(format!("Ref {target}"), why),
            },
            ("Ref", other) => fail(
                format!("Ref {other}"),
                "Ref takes the name of a parameter or resource".to_string(),
            ),
            ("Fn::GetAtt", argument) => self.get_att_function(argument),
            ("Fn::Sub", argument) => self.sub(argument).map(|s| Some(Value::String(s))),
            ("Fn::Join", argument) => self.join(argument).map(|s| Some(Value::String(s))),
            (name, _) => fail(name.to_string(), format!("not supported ({SUPPORTED})")),
        }
    }

    fn get_att_function(&self, argument: &Value) -> Resolved {
        let (resource, attribute) = match argument {
            Value::Array(parts) => match parts.as_slice() {
                [Value::String(resource), attribute] => match self.resolve_at(attribute)? {
                    Some(Value::String(attribute)) => (resource.clone(), attribute),
                    _ => return bad_get_att(argument),
                },
                _ => return bad_get_att(argument),
            },
            Value::String(dotted) => match dotted.split_once('.') {
                Some((r, a)) => (r.to_string(), a.to_string()),
                None => return bad_get_att(argument),
            },
            _ => return bad_get_att(argument),
        };
        match self.get_att(&resource, &attribute) {
            Ok(value) => Ok(Some(Value::String(value))),
            Err(why) => Err(vec![Unresolved {
                what: format!("Fn::GetAtt {resource}.{attribute}"),
                why,
            }]),
        }
    }

    /// What `Ref name` gives.
    pub(super) fn reference(&self, name: &str) -> Result<Value, String> {
        let env = &self.env;
        let pseudo = match name {
            "AWS::Region" => Some(env.aws.region.clone()),
            "AWS::AccountId" => Some(env.aws.account_id.clone()),
            "AWS::Partition" => Some(env.partition().to_string()),
            "AWS::StackName" => Some(env.stack_name.to_string()),
            "AWS::URLSuffix" => Some(env.url_suffix().to_string()),
            "AWS::StackId" | "AWS::NotificationARNs" => {
                return Err(format!(
                    "{name} is chosen by CloudFormation; esm-sim does not make one up"
                ))
            }
            _ if name.starts_with("AWS::") => {
                return Err(format!("{name} is not a pseudo parameter"));
            }
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Value::String(value));
        }
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        self.attribute(name, None).map(Value::String)
    }

    /// What `Fn::GetAtt resource.attribute` gives.
    fn get_att(&self, resource: &str, attribute: &str) -> Result<String, String> {
        self.attribute(resource, Some(attribute))
    }

    /// A resource's attribute (`None`: its Ref), from `[template] resources` or derived.
    fn attribute(&self, id: &str, attribute: Option<&str>) -> Result<String, String> {
        if let Some(value) = self
            .overrides
            .get(id)
            .and_then(|given| given.get(attribute.unwrap_or("Ref")))
        {
            return Ok(value.clone());
        }
        let Some(resource) = self.resources.get(id) else {
            let kind = if attribute.is_none() {
                "parameter or resource"
            } else {
                "resource"
            };
            return Err(format!(
                "no {kind} {id} in the template, nor in [template] resources"
            ));
        };
        let Some(kind) = resource.get("Type").and_then(Value::as_str) else {
            return Err(format!("resource {id} has no Type"));
        };
        let properties = ResourceProperties {
            resolver: self,
            id,
            properties: resource.get("Properties").and_then(Value::as_object),
        };
        if self.visiting.borrow().iter().any(|v| v == id) {
            let mut chain = self.visiting.borrow().clone();
            chain.push(id.to_string());
            return Err(format!(
                "the references go round in a circle: {}",
                chain.join(" -> ")
            ));
        }
        self.visiting.borrow_mut().push(id.to_string());
        let result = attributes::attribute(kind, id, attribute, &properties, &self.env);
        self.visiting.borrow_mut().pop();
        result
    }

    fn sub(&self, argument: &Value) -> Result<String, Vec<Unresolved>> {
        let bad = || {
            vec![Unresolved {
                what: "Fn::Sub".to_string(),
                why: format!("takes a string or [STRING, {{VARIABLES}}], not {argument}"),
            }]
        };
        let (text, variables) = match argument {
            Value::String(text) => (text, None),
            Value::Array(parts) => match parts.as_slice() {
                [Value::String(text), Value::Object(variables)] => (text, Some(variables)),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let mut errors = Vec::new();
        let mut given = BTreeMap::new();
        for (name, value) in variables.into_iter().flatten() {
            match self.resolve_at(value).map(|v| v.as_ref().and_then(text_of)) {
                Ok(Some(value)) => {
                    given.insert(name.as_str(), value);
                }
                Ok(None) => errors.push(Unresolved {
                    what: format!("Fn::Sub variable {name}"),
                    why: format!("must be a string, not {value}"),
                }),
                Err(more) => errors.extend(more),
            }
        }
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let Some(end) = after.find('}') else {
                errors.push(Unresolved {
                    what: format!("Fn::Sub {text:?}"),
                    why: "a ${ is never closed".to_string(),
                });
                break;
            };
            let variable = after[..end].trim();
            rest = &after[end + 1..];
            let declared = variables.is_some_and(|v| v.contains_key(variable));
            let value = match (given.get(variable), variable.split_once('.')) {
                (Some(value), _) => Ok(value.clone()),
                // Its value failed, and was reported.
                (None, _) if declared => continue,
                (None, Some((resource, attribute))) => self.get_att(resource, attribute),
                (None, None) => self.reference(variable).and_then(|v| {
                    text_of(&v).ok_or_else(|| format!("is a list, not a string: {v}"))
                }),
            };
            match value {
                Ok(value) => out.push_str(&value),
                Err(why) => errors.push(Unresolved {
                    what: format!("Fn::Sub ${{{variable}}}"),
                    why,
                }),
            }
        }
        out.push_str(rest);
        match errors.is_empty() {
            true => Ok(out),
            false => Err(errors),
        }
    }

    fn join(&self, argument: &Value) -> Result<String, Vec<Unresolved>> {
        let bad = |why: String| {
            vec![Unresolved {
                what: "Fn::Join".to_string(),
                why,
            }]
        };
        let [Value::String(delimiter), list] = argument.as_array().map_or(&[][..], Vec::as_slice)
        else {
            return Err(bad(format!(
                "takes [DELIMITER, [VALUES...]], not {argument}"
            )));
        };
        let Some(Value::Array(items)) = self.resolve_at(list)? else {
            return Err(bad(format!("its values must be a list, not {list}")));
        };
        let texts: Option<Vec<String>> = items.iter().map(text_of).collect();
        match texts {
            Some(texts) => Ok(texts.join(delimiter)),
            None => Err(bad(format!(
                "its values must be strings, not {}",
                Value::Array(items)
            ))),
        }
    }
}

/// The name and argument of an intrinsic function (an object with the one key `Ref`,
/// `Condition` or `Fn::...`).
fn intrinsic(object: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = object.iter();
    let (name, argument) = entries.next()?;
    let is_function = name == "Ref" || name == "Condition" || name.starts_with("Fn::");
    (entries.next().is_none() && is_function).then_some((name.as_str(), argument))
}

fn bad_get_att(argument: &Value) -> Resolved {
    Err(vec![Unresolved {
        what: "Fn::GetAtt".to_string(),
        why: format!("takes [RESOURCE, ATTRIBUTE] or \"RESOURCE.ATTRIBUTE\", not {argument}"),
    }])
}

fn done(value: Value, errors: Vec<Unresolved>) -> Resolved {
    match errors.is_empty() {
        true => Ok(Some(value)),
        false => Err(errors),
    }
}

/// A scalar as text, as CloudFormation turns numbers and booleans into strings.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A declared parameter's value: `given` (command line or config) or its `Default`,
/// checked against its `AllowedValues`; a list for list types.
fn parameter_value(name: &str, declaration: &Value, given: Option<&str>) -> Result<Value, String> {
    let kind = declaration
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("String");
    let default = declaration.get("Default").and_then(|d| match d {
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        other => text_of(other),
    });
    let value = match (given, default) {
        (Some(given), _) => given.to_string(),
        (None, Some(_)) if kind.starts_with("AWS::SSM::Parameter::") => {
            return Err(format!(
                "parameter {name} is read from SSM by CloudFormation; give its value with --parameter {name}=VALUE or in [template] parameters"
            ))
        }
        (None, Some(default)) => default,
        (None, None) => {
            return Err(format!(
                "parameter {name} has no Default; give it with --parameter {name}=VALUE or in [template] parameters"
            ))
        }
    };
    if let Some(Value::Array(allowed)) = declaration.get("AllowedValues") {
        let allowed: Vec<String> = allowed.iter().filter_map(text_of).collect();
        if !allowed.contains(&value) {
            return Err(format!(
                "parameter {name} = {value:?} is not one of its AllowedValues: {}",
                allowed.join(", ")
            ));
        }
    }
    if kind == "CommaDelimitedList" || kind.starts_with("List<") {
        let items: Vec<Value> = value.split(',').map(|s| Value::from(s.trim())).collect();
        return Ok(Value::Array(items));
    }
    Ok(Value::String(value))
}

/// A template resource's properties, resolved on demand.
struct ResourceProperties<'r, 'a> {
    resolver: &'r Resolver<'a>,
    id: &'r str,
    properties: Option<&'a Map<String, Value>>,
}

impl Properties for ResourceProperties<'_, '_> {
    fn string(&self, key: &str) -> Result<Option<String>, String> {
        let Some(value) = self.properties.and_then(|p| p.get(key)) else {
            return Ok(None);
        };
        match self.resolver.resolve_at(value) {
            Ok(None) => Ok(None),
            Ok(Some(value)) => text_of(&value)
                .map(Some)
                .ok_or_else(|| format!("resource {}: {key} = {value}: expected a string", self.id)),
            Err(errors) => Err(format!(
                "resource {}: {key}: {}",
                self.id,
                errors
                    .iter()
                    .map(Unresolved::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.properties.is_some_and(|p| p.contains_key(key))
    }
}
