//! Configuration: finding, reading and validating the TOML file.
//!
//! This module owns the way in: `load` picks the file (an explicit path, else
//! `./config.toml`, else the embedded default), `parse` turns TOML text into the validated
//! `Config`. The layers below are `schema` (the TOML as written), `aws_json` (a mapping in
//! the AWS CLI's JSON form), `resolve` (defaults, AWS ranges, paths, ARNs: every problem
//! collected before failing), `mapping` (the validated model the engine reads) and
//! `describe` (the human summary printed by `esm-sim validate`). With `--template`,
//! `template` adds the mappings of a CloudFormation / SAM template to the file's before
//! `resolve` sees them.

pub mod aws_json;
pub mod describe;
pub mod mapping;
pub mod resolve;
pub mod schema;
pub mod template;
mod type_error;

use std::fmt;
use std::path::{Path, PathBuf};

pub use describe::describe;
pub use mapping::{
    Config, Coordination, FanOutConsumer, LeaseTableSettings, Mapping, OnDestinationFailure, Pace,
    Simulation, StartingPosition, WorkerAction, WorkerEvent,
};
pub use template::TemplateOptions;

/// The embedded default config (the repository's config.toml).
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config.toml");

/// Where a config came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Embedded => f.write_str("the embedded default config"),
        }
    }
}

/// Everything wrong with a config, one problem per entry (and per line when displayed).
///
/// A TOML syntax error, a value of the wrong type or an unknown key is a single problem
/// naming the file position, the entry and the key (`type_error`); validation problems are
/// all collected, so one run lists every one of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    /// An error with a single problem.
    pub fn single(problem: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![problem.into()],
        }
    }
}

/// `path` given: read it. None: ./config.toml if it exists, else the embedded default.
///
/// Relative paths inside a file resolve against the file's directory; inside the embedded
/// default, against the current directory.
pub fn load(path: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
    load_with_template(path, None)
}

/// `load`, with the mappings of a CloudFormation / SAM template added to the config's.
/// Problems of the template come first, then those of the config (without the one
/// saying there is no mapping, when the template's could not be read).
pub fn load_with_template(
    path: Option<&Path>,
    template: Option<&TemplateOptions>,
) -> Result<(Config, ConfigSource), ConfigError> {
    match path {
        Some(path) => load_file(path, template),
        None => {
            let local = Path::new("config.toml");
            if local.exists() {
                load_file(local, template)
            } else {
                let config = parse_with_origin(
                    EMBEDDED_DEFAULT,
                    Path::new(""),
                    "embedded config.toml",
                    template,
                )?;
                Ok((config, ConfigSource::Embedded))
            }
        }
    }
}

/// Parse TOML text; relative paths (aws_json, file:// destinations, state_dir,
/// dead_letter_file) resolve against `base_dir`.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let file = resolve::parse_toml(text, None)?;
    resolve::resolve(file, base_dir)
}

fn load_file(
    path: &Path,
    template: Option<&TemplateOptions>,
) -> Result<(Config, ConfigSource), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::single(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let config = parse_with_origin(&text, base_dir, &path.display().to_string(), template)?;
    Ok((config, ConfigSource::File(path.to_path_buf())))
}

/// `parse`, with an error in reading the text prefixed by where the text came from
/// (`config.toml:14:14: ...`; validation problems name their mapping, stream or function
/// and need no prefix).
fn parse_with_origin(
    text: &str,
    base_dir: &Path,
    origin: &str,
    template: Option<&TemplateOptions>,
) -> Result<Config, ConfigError> {
    let mut file = resolve::parse_toml(text, Some(origin))?;
    let template_problems = match template {
        Some(options) => template::add_mappings(&mut file, options),
        None => Vec::new(),
    };
    match (
        resolve::resolve(file, base_dir),
        template_problems.is_empty(),
    ) {
        (Ok(config), true) => Ok(config),
        (Err(mut error), true) => {
            if let Some(options) = template {
                // Say where else a mapping could have come from.
                for problem in error
                    .problems
                    .iter_mut()
                    .filter(|p| *p == resolve::NO_MAPPINGS)
                {
                    *problem = format!(
                        "no [[mappings]] in the config, no Kinesis or DynamoDB mapping in {} and [admin] enabled = false: nothing to run",
                        options.path.display()
                    );
                }
            }
            Err(error)
        }
        (result, false) => {
            let config_problems = result.err().map(|e| e.problems).unwrap_or_default();
            Err(ConfigError {
                problems: template_problems
                    .into_iter()
                    .chain(
                        config_problems
                            .into_iter()
                            .filter(|p| p != resolve::NO_MAPPINGS),
                    )
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_reads_the_given_file_and_resolves_paths_against_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, EMBEDDED_DEFAULT).unwrap();
        let (config, source) = load(Some(&path)).unwrap();
        assert_eq!(source, ConfigSource::File(path.clone()));
        assert_eq!(config.state_dir, dir.path().join(".esm-sim"));
        assert_eq!(
            config.dead_letter_file,
            dir.path().join(".esm-sim").join("dead-letter.jsonl")
        );
        let expected = format!(
            "file://{}",
            dir.path().join(".esm-sim/failures.jsonl").display()
        );
        assert_eq!(
            config.mappings[0].on_failure_destination.as_deref(),
            Some(expected.as_str())
        );
    }

    #[test]
    fn load_reports_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let err = load(Some(&path)).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(
            err.problems[0].starts_with(&format!("cannot read config file {}: ", path.display()))
        );
    }

    #[test]
    fn load_prefixes_a_syntax_error_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "state_dir = \n").unwrap();
        let err = load(Some(&path)).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(
            err.problems[0],
            format!(
                "{}:1:13: TOML syntax error: string values must be quoted, expected literal string",
                path.display()
            )
        );
    }

    #[test]
    fn load_without_a_path_finds_a_config() {
        // The crate directory holds config.toml (cargo runs tests there); elsewhere the
        // embedded default is used. Either way it loads.
        let (config, _source) = load(None).unwrap();
        assert!(!config.mappings.is_empty());
    }

    #[test]
    fn error_display_is_one_problem_per_line() {
        let err = ConfigError {
            problems: vec!["a: x".into(), "b: y".into()],
        };
        assert_eq!(err.to_string(), "a: x\nb: y");
    }
}
