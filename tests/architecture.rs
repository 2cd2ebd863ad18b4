//! The module map of docs/architecture.md, checked: the library's top-level modules use each
//! other without cycles, and none of them uses `cli`.
//!
//! A module's uses are the `crate::<module>` paths in its code (comments and its unit tests
//! left out), which is how every module of this crate names another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library and the files it is made of.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let files: &mut Vec<PathBuf> = modules.entry(name).or_default();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else {
            files.push(path);
        }
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests`.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names as `crate::<module>` (also inside `use crate::{...}`).
fn uses_in(code: &str, known: &BTreeMap<String, Vec<PathBuf>>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| known.contains_key(*word))
            .map(str::to_string)
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            used.extend(words(&group[..end]));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if known.contains_key(&name) {
                used.insert(name);
            }
        }
    }
    used
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    modules
        .iter()
        .map(|(name, files)| {
            let mut used = BTreeSet::new();
            for file in files {
                used.extend(uses_in(&code_of(file), &modules));
            }
            used.remove(name);
            (name.clone(), used)
        })
        .collect()
}

/// A cycle through `start`, if there is one: the modules along it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in &graph[&at] {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_library_modules_use_each_other_without_cycles() {
    let graph = graph();
    assert!(graph.len() > 20, "found the modules: {:?}", graph.keys());
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "cycles: {cycles:#?}");
}

#[test]
fn no_library_module_uses_the_command_line() {
    let graph = graph();
    let users: Vec<&String> = graph
        .iter()
        .filter(|(module, used)| module.as_str() != "cli" && used.contains("cli"))
        .map(|(module, _)| module)
        .collect();
    assert!(users.is_empty(), "modules that use cli: {users:?}");
}

#[test]
fn the_checker_sees_a_use_in_a_group_and_ignores_comments() {
    let known: BTreeMap<String, Vec<PathBuf>> = ["store", "event", "cli"]
        .into_iter()
        .map(|name| (name.to_string(), Vec::new()))
        .collect();
    let used = uses_in(
        "use crate::{event::Event, store};\nlet x = crate::cli::run();",
        &known,
    );
    assert_eq!(
        used,
        BTreeSet::from(["event".into(), "store".into(), "cli".into()])
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.rs");
    std::fs::write(&file, "/// see [`crate::cli`]\nfn f() {}\n").unwrap();
    assert!(uses_in(&code_of(&file), &known).is_empty());
}
