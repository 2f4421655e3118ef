//! The docs are checked like code: every ```` ```toml ```` block of README.md and docs/*.md
//! (and every ```` ```yaml ```` template, with the TOML before it) goes through the real
//! binary's `esm-sim validate`, and every relative link must lead to
//! a file (and heading) that exists. A config key renamed, a default changed or a page
//! moved then fails here instead of misleading a reader.
//!
//! The snippet convention (also in docs/configuration.md, "The snippets in these docs"):
//!
//! - A snippet with a `[[functions]]` entry and a `[[mappings]]` or `[[streams]]` entry is a
//!   **whole config**, validated as it stands (a config whose mappings come through the
//!   Lambda API has none).
//! - Any other snippet is a **fragment**, validated followed by `BASE_CONFIG`: a simulated
//!   Kinesis stream `orders`, a simulated function `order-processor` for the fragment's
//!   mappings to name, and a mapping `docs-base` from the stream to a function of its own
//!   (so a fragment may map `orders` to `order-processor` too). The base holds only arrays of tables, so it never collides with the
//!   fragment's sections or captures its top-level keys.
//! - The config is written into an empty directory that also holds a `fixtures` link to
//!   the repository's fixtures (so `aws_json = "fixtures/aws/..."` resolves as from the
//!   repository root) and every file a ```` ```json file=NAME ```` block of the same page
//!   defines.
//! - A variable a snippet names with `token_env = "NAME"` is set to `TOKEN_ENV_VALUE`.
//! - ```` ```toml invalid ```` marks a snippet that shows an error: `validate` must fail,
//!   and its output must hold every line of the fenced block right after the snippet
//!   (the message the page shows).
//!
//! - Every ```` ```yaml ```` block is a CloudFormation / SAM template: it is validated with
//!   `esm-sim validate --config config.toml --template template.yaml`, the config being
//!   the nearest plain ```` ```toml ```` block before it on the page (as written when it
//!   defines `[[functions]]`, else followed by `BASE_CONFIG`); ```` ```yaml invalid ````
//!   works as for TOML.
//!
//! Any other word after `toml` or `yaml` is an error, so no snippet is skipped by a typo.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a fragment is validated with (see the module comment).
const BASE_CONFIG: &str = r#"
[[streams]]
name = "orders"
kind = "kinesis"
shards = 1

[[functions]]
name = "order-processor"

[[functions]]
name = "docs-base"

[[mappings]]
name = "docs-base"
event_source_arn = "orders"
function_name = "docs-base"
starting_position = "TRIM_HORIZON"
"#;

/// The value of the variables snippets name with `token_env`.
const TOKEN_ENV_VALUE: &str = "docs-snippet-token";

/// Links that leave the repository on purpose, with why they cannot be checked here.
const OUTSIDE_REPOSITORY: &[(&str, &str)] = &[(
    "../shared/spec/esm-semantics.md",
    "the spec lives beside the repository, in the project's shared folder",
)];

/// A fenced block of a page.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The words after the backticks: `toml`, `toml invalid`, `json file=esm.json`, ...
    info: Vec<String>,
    text: String,
}

struct Page {
    /// Relative to the repository root, as the failures name it.
    name: String,
    path: PathBuf,
    text: String,
    blocks: Vec<Block>,
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<Page> {
    let root = repository();
    let mut paths = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("a docs/ folder")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable page");
            let name = path
                .strip_prefix(&root)
                .expect("inside the repository")
                .display()
                .to_string();
            Page {
                name,
                blocks: fenced_blocks(&text),
                path,
                text,
            }
        })
        .collect()
}

/// The fenced blocks of a page: a fence is a line that starts with exactly three
/// backticks (four open an inline code span in prose, never a block here).
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let is_fence = line.starts_with("```") && !line.starts_with("````");
        match (&mut open, is_fence) {
            (None, true) => {
                open = Some(Block {
                    line: index + 1,
                    info: line[3..].split_whitespace().map(str::to_string).collect(),
                    text: String::new(),
                })
            }
            (Some(_), true) => blocks.extend(open.take()),
            (Some(block), false) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, false) => {}
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    blocks
}

/// The files a page's ```` ```json file=NAME ```` blocks define.
fn defined_files(page: &Page) -> BTreeMap<String, String> {
    page.blocks
        .iter()
        .filter(|block| block.info.first().is_some_and(|l| l == "json"))
        .filter_map(|block| {
            let name = block.info.iter().find_map(|w| w.strip_prefix("file="))?;
            Some((name.to_string(), block.text.clone()))
        })
        .collect()
}

/// The variables a snippet names with `token_env = "NAME"`.
fn token_variables(snippet: &str) -> Vec<(&str, &str)> {
    snippet
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("token_env")?
                .trim()
                .strip_prefix('=')
        })
        .filter_map(|value| value.split('"').nth(1))
        .map(|name| (name, TOKEN_ENV_VALUE))
        .collect()
}

fn is_whole_config(snippet: &str) -> bool {
    let has = |header: &str| snippet.lines().any(|line| line.trim() == header);
    has("[[functions]]") && (has("[[mappings]]") || has("[[streams]]"))
}

/// Validates one snippet; `Err` says what is wrong with it.
fn check_snippet(
    page: &Page,
    index: usize,
    files: &BTreeMap<String, String>,
) -> Result<(), String> {
    let block = &page.blocks[index];
    let invalid = is_marked_invalid(block)?;
    let config = config_of(&block.text);
    let dir = snippet_dir(files);
    std::fs::write(dir.path().join("config.toml"), &config).expect("the config");
    let out = support::binary::run_offline_with_env(
        dir.path(),
        &["validate", "--config", "config.toml"],
        &token_variables(&block.text),
    );
    judge(page, index, invalid, &out, &config)
}

/// Whether a snippet is marked `invalid` (the only mark there is).
fn is_marked_invalid(block: &Block) -> Result<bool, String> {
    match &block.info[1..] {
        [] => Ok(false),
        [word] if word == "invalid" => Ok(true),
        other => Err(format!(
            "unknown marks {other:?} after {} (only `invalid`)",
            block.info[0]
        )),
    }
}

/// What a TOML snippet is validated as: itself when whole, else followed by the base.
fn config_of(snippet: &str) -> String {
    if is_whole_config(snippet) {
        snippet.to_string()
    } else {
        format!("{snippet}\n{BASE_CONFIG}")
    }
}

/// An empty directory with the `fixtures` link and the page's defined files.
fn snippet_dir(files: &BTreeMap<String, String>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::os::unix::fs::symlink(repository().join("fixtures"), dir.path().join("fixtures"))
        .expect("a fixtures link");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("a defined file");
    }
    dir
}

/// Whether `validate` did as the block at `index` says: succeed, or (marked invalid)
/// fail printing every line of the block after it.
fn judge(
    page: &Page,
    index: usize,
    invalid: bool,
    out: &support::binary::Output,
    validated: &str,
) -> Result<(), String> {
    let printed = format!("{}{}", out.stdout, out.stderr);
    let shown = || format!("validate printed:\n{printed}\n--- what was validated:\n{validated}");
    if !invalid {
        return match out.success {
            true => Ok(()),
            false => Err(format!("validate failed; {}", shown())),
        };
    }
    if out.success {
        return Err(format!(
            "marked invalid, but validate accepted it; {}",
            shown()
        ));
    }
    let message = page
        .blocks
        .get(index + 1)
        .ok_or("marked invalid, but no block after it shows the message")?;
    match message
        .text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .find(|line| !printed.contains(line.trim()))
    {
        Some(missing) => Err(format!(
            "validate's output lacks the shown line {missing:?}; {}",
            shown()
        )),
        None => Ok(()),
    }
}

/// Validates one ```` ```yaml ```` template with the nearest TOML snippet before it (as
/// written when it defines `[[functions]]`, which a template's mappings need; else with
/// the base config, like a TOML fragment).
fn check_template(
    page: &Page,
    index: usize,
    files: &BTreeMap<String, String>,
) -> Result<(), String> {
    let block = &page.blocks[index];
    let invalid = is_marked_invalid(block)?;
    let snippet = page.blocks[..index]
        .iter()
        .rev()
        .find(|b| b.info.first().is_some_and(|l| l == "toml") && b.info.len() == 1)
        .ok_or("no toml snippet before this template gives its config")?;
    let has_functions = snippet.text.lines().any(|l| l.trim() == "[[functions]]");
    let config = match has_functions {
        true => snippet.text.clone(),
        false => format!("{}\n{BASE_CONFIG}", snippet.text),
    };
    let dir = snippet_dir(files);
    std::fs::write(dir.path().join("config.toml"), &config).expect("the config");
    std::fs::write(dir.path().join("template.yaml"), &block.text).expect("the template");
    let out = support::binary::run_offline_with_env(
        dir.path(),
        &[
            "validate",
            "--config",
            "config.toml",
            "--template",
            "template.yaml",
        ],
        &token_variables(&snippet.text),
    );
    let validated = format!("{config}\n--- template.yaml:\n{}", block.text);
    judge(page, index, invalid, &out, &validated)
}

/// Checks one block of a page (with the files the page defines).
type BlockCheck = fn(&Page, usize, &BTreeMap<String, String>) -> Result<(), String>;

/// Runs `check` on every block of language `lang` of every page; fails with every
/// problem found, or when no such block exists (the fence parsing would be broken).
fn check_every_block(lang: &str, what: &str, check: BlockCheck) {
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        let files = defined_files(&page);
        for (index, block) in page.blocks.iter().enumerate() {
            if block.info.first().is_none_or(|l| l != lang) {
                continue;
            }
            checked += 1;
            if let Err(why) = check(&page, index, &files) {
                failures.push(format!("{}:{}: {why}", page.name, block.line));
            }
        }
    }
    eprintln!("{checked} {what} validated");
    assert!(checked > 0, "no {what} found: is the fence parsing broken?");
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn every_toml_snippet_of_the_docs_passes_validate_or_fails_as_shown() {
    check_every_block("toml", "toml snippets", check_snippet);
}

#[test]
fn every_yaml_template_of_the_docs_passes_validate_or_fails_as_shown() {
    check_every_block("yaml", "yaml templates", check_template);
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside fenced blocks), `-1`, `-2`... for repeats.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_block = false;
    let mut anchors = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") && !line.starts_with("````") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            let base = slug(line.trim_start_matches('#'));
            let count = seen.entry(base.clone()).or_insert(0);
            anchors.push(match *count {
                0 => base.clone(),
                n => format!("{base}-{n}"),
            });
            *count += 1;
        }
    }
    anchors
}

/// The targets of the `[text](target)` links of a page's prose, with their lines.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    let mut in_block = false;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("```") && !line.starts_with("````") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            links.push((index + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    links
}

/// `path` with `.` and `..` resolved, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn check_link(page: &Page, target: &str) -> Result<(), String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    if OUTSIDE_REPOSITORY
        .iter()
        .any(|(outside, _why)| *outside == target)
    {
        return Ok(());
    }
    let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
    let dir = page.path.parent().expect("a page's folder");
    let path = if file.is_empty() {
        page.path.clone()
    } else {
        normalize(&dir.join(file))
    };
    if !path.starts_with(repository()) {
        return Err(format!(
            "{target}: leaves the repository (list it in OUTSIDE_REPOSITORY if meant)"
        ));
    }
    if !path.exists() {
        return Err(format!("{target}: no such file {}", path.display()));
    }
    if anchor.is_empty() || path.extension().is_none_or(|e| e != "md") {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).expect("a readable page");
    let known = anchors(&text);
    match known.iter().any(|a| a == anchor) {
        true => Ok(()),
        false => Err(format!(
            "{target}: no heading with anchor #{anchor} (anchors: {known:?})"
        )),
    }
}

#[test]
fn every_relative_link_of_the_docs_leads_to_an_existing_file_and_heading() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        for (line, target) in links(&page.text) {
            checked += 1;
            if let Err(why) = check_link(&page, &target) {
                failures.push(format!("{}:{line}: {why}", page.name));
            }
        }
    }
    eprintln!("{checked} links followed");
    assert!(checked > 0, "no link found: is the link parsing broken?");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_slug_of_a_heading_is_the_anchor_github_gives_it() {
    assert_eq!(
        slug(" HTTP function (`type = \"http\"`)"),
        "http-function-type--http"
    );
    assert_eq!(
        slug(" Filtering (FilterCriteria)"),
        "filtering-filtercriteria"
    );
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n"),
        vec!["a".to_string(), "a-1".to_string()]
    );
}
