//! The checker behind the architecture tests: which file of `src/` uses which through
//! `crate::` and `super::` paths (in `use` lines and in code), resolved to files; which floor
//! each file stands on; and what breaks the rules. Works on source text given as data, so a
//! synthetic tree can show that it catches a violation.
//!
//! Test code is left out: files named `tests.rs` and everything from a file's first
//! `#[cfg(test)]` on (tests may reach for helpers on any floor).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floors of the house. Core: pure (data in, decisions out). Edges: I/O behind small
/// seams. Wiring: puts the two together and owns the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    Core,
    Edge,
    Wiring,
}

/// Each part (a module file or directory under `src/`, longest match first) and its floor.
pub const FLOORS: &[(&str, Floor)] = &[
    ("model.rs", Floor::Core),
    ("diagnostic.rs", Floor::Core),
    ("image.rs", Floor::Core),
    ("yaml", Floor::Core),
    ("text", Floor::Core),
    ("repo", Floor::Core),
    ("policy", Floor::Core),
    ("plan", Floor::Core),
    ("promotion", Floor::Core),
    ("history", Floor::Core),
    ("dashboard", Floor::Core),
    ("chatops/command.rs", Floor::Core),
    ("testkit.rs", Floor::Core),
    ("git", Floor::Edge),
    ("forge", Floor::Edge),
    ("registry", Floor::Edge),
    ("server", Floor::Edge),
    ("chatops", Floor::Edge),
    ("metrics.rs", Floor::Edge),
    ("kustomize.rs", Floor::Edge),
    ("redact.rs", Floor::Edge),
    ("atomic_file.rs", Floor::Edge),
    ("announce/format.rs", Floor::Core),
    ("announce/sink.rs", Floor::Core),
    ("announce/mod.rs", Floor::Core),
    ("announce", Floor::Wiring),
    ("reconcile", Floor::Wiring),
    ("daemon", Floor::Wiring),
    ("handlers", Floor::Wiring),
    ("cli", Floor::Wiring),
    ("checkout.rs", Floor::Wiring),
    ("config.rs", Floor::Wiring),
    ("config", Floor::Wiring),
    ("lib.rs", Floor::Wiring),
    ("main.rs", Floor::Wiring),
];

/// Imports that cross the rules on purpose: (from, to, why). Every entry is a decision.
pub const EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "registry/oci.rs",
    "config.rs",
    "a registry's settings (`config::RegistryAccess`) are read by the client they configure",
)];

/// Words the core never uses, outside [`READER`]: the file system, processes, the network,
/// the environment and the clock (with the async runtime, git and HTTP crates).
pub const CORE_FORBIDDEN: &[&str] = &[
    "tokio",
    "git2",
    "reqwest",
    "axum",
    "gitlab::",
    "std::process",
    "std::fs",
    "std::net",
    "std::env",
    "File::",
    ".is_file()",
    ".exists()",
    "Utc::now",
    "Local::now",
    "SystemTime::now",
    "Instant::now",
];

/// The core's one reader of a directory: `repo`'s directory tree.
pub const READER: &str = "repo/tree.rs";

/// The parts the server may not import: it decodes requests and hands them on (issue 15 §1).
pub const SERVER_MAY_NOT_USE: &[&str] = &["reconcile", "forge", "git", "registry", "cli"];

/// Every `.rs` file under `src`, by path relative to it (`/`-separated), with its text.
pub fn read_src(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().to_string_lossy();
                out.insert(
                    rel.replace('\\', "/"),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The module path of a file: `reconcile/act.rs` -> `[reconcile, act]`, `plan/mod.rs` ->
/// `[plan]`, `lib.rs` -> `[]`.
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// True for test code: a `tests.rs` file (or one under a `tests` directory).
fn is_test_file(file: &str) -> bool {
    file.split('/').any(|p| p == "tests" || p == "tests.rs")
}

/// The code of a file that the rules look at: comments cut, nothing from `#[cfg(test)]` on.
fn production_code(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect()
}

/// Reads a use tree at the start of `s` (`a::b`, `a::{b, c::d}`, `a::*`, `a as b`): the paths
/// it names and how many bytes it took.
fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut at = 0;
    let mut path = Vec::new();
    loop {
        at += s[at..].len() - s[at..].trim_start().len();
        if s[at..].starts_with('{') {
            let (group, used) = use_group(&s[at + 1..]);
            let paths = group
                .into_iter()
                .map(|tail| path.iter().cloned().chain(tail).collect())
                .collect();
            return (paths, at + 1 + used);
        }
        let word: String = s[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*')
            .collect();
        if word.is_empty() {
            return (vec![path], at);
        }
        at += word.len();
        path.push(word);
        if !s[at..].starts_with("::") {
            return (vec![path], at);
        }
        at += 2;
    }
}

/// Reads the inside of `{a, b::c}` up to and with its `}`: the paths and the bytes taken.
fn use_group(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let (inner, used) = use_tree(&s[at..]);
        at += used;
        out.extend(inner.into_iter().filter(|p| !p.is_empty()));
        let rest = &s[at..];
        at += rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == ',')
                .len();
        if s[at..].starts_with('}') {
            return (out, at + 1);
        }
        if at >= s.len() || used == 0 {
            return (out, at);
        }
    }
}

/// Which files each file uses through `crate::` and `super::` paths.
pub fn imports(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, &String> =
        files.keys().map(|f| (module_path(f), f)).collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).copied())
    };
    let mut graph = BTreeMap::new();
    for (file, text) in files.iter().filter(|(f, _)| !is_test_file(f)) {
        let here = module_path(file);
        let code = production_code(text).join("\n");
        let mut used = BTreeSet::new();
        for root in ["crate::", "super::"] {
            for (i, _) in code.match_indices(root) {
                let before = code[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let (paths, _) = use_tree(&code[i + root.len()..]);
                for tail in paths {
                    let mut base = if root == "crate::" {
                        Vec::new()
                    } else {
                        here[..here.len().saturating_sub(1)].to_vec()
                    };
                    let mut tail = tail.as_slice();
                    while let Some(rest) = tail.strip_prefix(&["super".to_string()]) {
                        base.pop();
                        tail = rest;
                    }
                    base.extend(tail.iter().cloned());
                    if let Some(target) = resolve(&base).filter(|t| *t != file) {
                        used.insert(target.clone());
                    }
                }
            }
        }
        graph.insert(file.clone(), used);
    }
    graph
}

/// The floor of a file, by the longest part in [`FLOORS`] that holds it.
pub fn floor_of(file: &str) -> Option<Floor> {
    FLOORS
        .iter()
        .filter(|(part, _)| file == *part || file.starts_with(&format!("{part}/")))
        .max_by_key(|(part, _)| part.len())
        .map(|(_, floor)| *floor)
}

/// Imports that go down the wrong way: the core using an edge or the wiring, an edge using the
/// wiring (the server is checked by [`server_violations`]). Files on no floor are named too.
pub fn floor_violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (from, used) in graph {
        let Some(floor) = floor_of(from) else {
            out.push(format!("{from}: on no floor; add it to FLOORS"));
            continue;
        };
        if from.starts_with("server/") {
            continue;
        }
        for to in used {
            let allowed = matches!(
                (floor, floor_of(to)),
                (Floor::Wiring, _)
                    | (Floor::Edge, Some(Floor::Core | Floor::Edge))
                    | (Floor::Core, Some(Floor::Core))
            );
            let excepted = EXCEPTIONS.iter().any(|(f, t, _)| f == from && t == to);
            if !allowed && !excepted {
                out.push(format!("{from} ({floor:?}) uses {to} ({:?})", floor_of(to)));
            }
        }
    }
    out
}

/// The server's imports of the parts it may not use.
pub fn server_violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    graph
        .iter()
        .filter(|(from, _)| from.starts_with("server/"))
        .flat_map(|(from, used)| {
            used.iter()
                .filter(|to| {
                    SERVER_MAY_NOT_USE
                        .iter()
                        .any(|p| to.starts_with(&format!("{p}/")) || **to == format!("{p}.rs"))
                })
                .map(move |to| format!("{from} uses {to}"))
        })
        .collect()
}

/// Core files that use a [`CORE_FORBIDDEN`] word (test code included: the core's tests are
/// pure too), except the directory reader's file system.
pub fn io_violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (file, text) in files
        .iter()
        .filter(|(f, _)| floor_of(f) == Some(Floor::Core))
    {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in CORE_FORBIDDEN {
                let reader_io = file == READER && !word.contains("now");
                if code.contains(word) && !reader_io {
                    out.push(format!("{file}:{}: {word}", n + 1));
                }
            }
        }
    }
    out
}

/// Files that use each other in a circle, each circle as its files and the uses between them.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // Tarjan's strongly connected components; any with two or more files is a circle.
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<&'g str>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
        .iter()
        .map(|circle| {
            let uses: Vec<String> = circle
                .iter()
                .flat_map(|a| {
                    graph[*a]
                        .iter()
                        .filter(|b| circle.contains(&b.as_str()))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            uses.join(", ")
        })
        .collect()
}
