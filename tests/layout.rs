//! The house rules of `src/`, checked on every test run so a newcomer keeps reading small
//! rooms (issue 11): no file over 700 lines (tests included), no function over 120 lines,
//! and no import circle between files.
//!
//! The checks read the source as text. They rely on rustfmt's layout (which `scripts/test.sh`
//! enforces before the tests run): a function starts on a line of its own with `fn NAME`
//! and ends at the first later line that is its indentation followed by `}`. Imports are
//! the `crate::…` and `super::…` paths outside `#[cfg(test)]` modules, resolved to the
//! file of the longest module prefix that exists; a circle is a group of files each
//! reachable from the others (Tarjan's strongly connected components). A folder's
//! `mod.rs` and the files inside it are one unit (the facade uses its parts, the parts use
//! the types the facade owns, as Rust modules are meant to), so only imports between files
//! that are not nested in one another count: siblings such as `sim/items.rs` and
//! `sim/payload.rs`, or separate folders.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 700;
const MAX_FUNCTION_LINES: usize = 120;

/// Every `.rs` file under `src/`, by path relative to `src/`, with its text.
fn sources() -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.insert(path.strip_prefix(root).expect("under src").into(), text);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// `engine/shard/mod.rs` → `engine::shard`; `lib.rs` and `main.rs` → `crate`.
fn module_of(file: &Path) -> String {
    let mut parts: Vec<String> = file
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        return "crate".into();
    }
    parts.join("::")
}

/// The name of the function declared on `line`, if it declares one.
fn declared_function(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word {
            "pub" | "async" | "const" | "unsafe" | "extern" | "\"C\"" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name = words.next()?;
                let end = name.find(['(', '<']).unwrap_or(name.len());
                return Some(&name[..end]);
            }
            _ => return None,
        }
    }
    None
}

/// Functions longer than the limit: (file, name, first line, lines).
fn long_functions(file: &Path, text: &str) -> Vec<(String, String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = declared_function(line) else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue; // a declaration without a body (trait method)
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indent}}}");
        if let Some(end) = lines[start + 1..].iter().position(|l| *l == closing) {
            let length = end + 2;
            if length > MAX_FUNCTION_LINES {
                out.push((
                    file.display().to_string(),
                    name.to_string(),
                    start + 1,
                    length,
                ));
            }
        }
    }
    out
}

/// The file-level import graph: module → modules whose items it uses (tests excluded).
fn imports(files: &BTreeMap<PathBuf, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.keys().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in files {
        let me = module_of(file);
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        let edges = graph.entry(me.clone()).or_default();
        for path in paths_in(code) {
            let mut segments: Vec<String> = Vec::new();
            let mut parts = path.split("::");
            match parts.next() {
                Some("crate") => {}
                Some("super") => {
                    // `super` is the parent of this module (of `m` for m/mod.rs, of `m::a`
                    // for m/a.rs).
                    segments = me.split("::").map(str::to_string).collect();
                    segments.pop();
                }
                _ => continue,
            }
            for part in parts {
                if part == "super" {
                    segments.pop();
                } else {
                    segments.push(part.to_string());
                }
            }
            let target = (1..=segments.len())
                .rev()
                .map(|k| segments[..k].join("::"))
                .find(|m| modules.contains(m));
            if let Some(target) = target.filter(|t| !nested(t, &me) && !nested(&me, t)) {
                edges.insert(target);
            }
        }
    }
    graph
}

/// Whether `inner` is `outer` or a module inside it (`crate` holds every module).
fn nested(inner: &str, outer: &str) -> bool {
    outer == "crate"
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Every `crate::a::b` / `super::a` path in the text, as written (a `{` list ends it).
fn paths_in(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::"]
        .iter()
        .flat_map(|head| code.match_indices(head).map(|(i, _)| i))
    {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let end = code[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |n| start + n);
        out.push(code[start..end].trim_end_matches(':').to_string());
    }
    out
}

/// Groups of two or more modules that import each other, directly or around a circle.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !tarjan.index.contains_key(v.as_str()) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

#[test]
fn no_file_in_src_is_over_700_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_FILE_LINES)
        .map(|(file, text)| format!("{} ({} lines)", file.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these by job: {long:?}");
}

#[test]
fn no_function_in_src_is_over_120_lines() {
    let long: Vec<_> = sources()
        .iter()
        .flat_map(|(file, text)| long_functions(file, text))
        .collect();
    assert!(long.is_empty(), "split these into named steps: {long:?}");
}

#[test]
fn no_files_in_src_import_each_other_in_a_circle() {
    let found = circles(&imports(&sources()));
    assert!(found.is_empty(), "layer these: {found:?}");
}

#[test]
fn the_checks_find_what_they_look_for() {
    // A long function, and one that is not, in rustfmt's layout.
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let text = format!(
        "pub async fn long(a: u8) {{\n{}}}\n\nfn short() {{\n{}}}\n",
        body(130),
        body(3)
    );
    let long = long_functions(Path::new("x.rs"), &text);
    assert_eq!(long, vec![("x.rs".to_string(), "long".to_string(), 1, 132)]);
    // A circle a → b → c → a, and d → a outside it; `super::` and `{` lists resolve; a
    // part using its folder's facade (a → m) and the facade using it are no circle.
    let files: BTreeMap<PathBuf, String> = [
        ("m/a.rs", "use super::b::Thing;\nuse super::Shared;\n"),
        ("m/b.rs", "use crate::m::c::{self, Other};\n"),
        ("m/c.rs", "fn f() { crate::m::a::g(); }\n"),
        (
            "m/mod.rs",
            "pub mod a;\nuse crate::m::a::Thing;\npub struct Shared;\n",
        ),
        (
            "d.rs",
            "use crate::m::a;\n#[cfg(test)]\nmod tests { use crate::d; }\n",
        ),
    ]
    .into_iter()
    .map(|(f, t)| (PathBuf::from(f), t.to_string()))
    .collect();
    let graph = imports(&files);
    assert_eq!(
        circles(&graph),
        vec![vec![
            "m::a".to_string(),
            "m::b".to_string(),
            "m::c".to_string()
        ]]
    );
    assert_eq!(
        graph["d"],
        BTreeSet::from(["m::a".to_string()]),
        "test modules do not count"
    );
}
