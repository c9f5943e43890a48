//! The crate's module structure, read from its own source: data flows one way.
//!
//! Every `crate::name` path in `src/` (outside `#[cfg(test)]` code) is an edge from the top-level
//! module it is written in to the top-level module it names. The graph must have no cycle, and
//! only the program's entry (`app`, `lib.rs`) may use the command line's types (`cli`): below
//! it, every stage takes plain settings from `config`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Modules allowed to use `crate::cli`.
const CLI_USERS: [&str; 2] = ["app", "cli"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module and without comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a piece of code names through `crate::…` (including `crate::{a, b::c}`).
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap_or(file);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string());
        let top = first
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let deps = uses(&code(&text));
        graph
            .entry(top.clone())
            .or_default()
            .extend(deps.into_iter().filter(|d| *d != top));
    }
    let names: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    graph
}

/// Every cycle's modules (strongly connected components of more than one module), sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for d in graph.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for m in graph.keys() {
        let mut scc: Vec<String> = graph
            .keys()
            .filter(|o| *o == m || (reachable[m].contains(*o) && reachable[*o].contains(m)))
            .cloned()
            .collect();
        scc.sort();
        if scc.len() > 1 && !out.contains(&scc) {
            out.push(scc);
        }
    }
    out
}

fn describe(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, d)| {
            format!(
                "  {m} -> {}",
                d.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_import_cycle_among_top_level_modules() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph.len() > 15,
        "read too few modules:\n{}",
        describe(&graph)
    );
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles among top-level modules: {found:?}\n{}",
        describe(&graph)
    );
}

#[test]
fn only_the_entry_uses_the_command_line_types() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let users: Vec<&String> = graph
        .iter()
        .filter(|(m, d)| d.contains("cli") && !CLI_USERS.contains(&m.as_str()))
        .map(|(m, _)| m)
        .collect();
    assert!(
        users.is_empty(),
        "crate::cli used below the entry by {users:?}"
    );
}

#[test]
fn the_check_finds_a_cycle_and_reads_every_import_form() {
    let code = code(
        "use crate::a::X;\nuse crate::{b, c::Y};\n// crate::commented\nfn f() { crate::d::g(); }\n#[cfg(test)]\nmod tests { use crate::e; }",
    );
    let names: Vec<String> = uses(&code).into_iter().collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let mut g = Graph::new();
    for (m, d) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")] {
        g.entry(m.into()).or_default().insert(d.into());
    }
    g.entry("e".into()).or_default();
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    g.get_mut("c").map(|d| d.remove("a"));
    assert!(cycles(&g).is_empty());
}
