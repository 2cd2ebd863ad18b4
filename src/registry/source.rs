//! Where registry files come from: the defaults compiled into the binary, then the repository's
//! `.spectra/registry/`, whose entries add to or replace the defaults by name.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::Problem;

/// Which layer a registry entry came from; a repository entry overrides a built-in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Shipped in the binary.
    Builtin,
    /// Under the repository's `.spectra/registry/`.
    Repository,
}

/// What a registry file defines, decided by the directory it sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An activity definition.
    Activity,
    /// A playbook definition.
    Playbook,
}

/// One registry file's text and where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file, as [`super::Problem::file`] names it.
    pub path: String,
    /// What it defines.
    pub kind: Kind,
    /// Where it came from.
    pub layer: Layer,
    /// Its content.
    pub text: String,
}

/// Where a repository keeps its registry additions, relative to the repository root.
pub const REPOSITORY_DIR: &str = ".spectra/registry";

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)))),*]
    };
}

/// The default registry, compiled in. A test checks this list against `registry/` on disk.
pub const EMBEDDED: &[(&str, &str)] = embed![
    "registry/activities/engage.yaml",
    "registry/activities/discover.yaml",
    "registry/activities/plan.yaml",
    "registry/activities/assess.yaml",
    "registry/activities/design.yaml",
    "registry/activities/provision.yaml",
    "registry/activities/build.yaml",
    "registry/activities/test.yaml",
    "registry/activities/deploy.yaml",
    "registry/activities/monitor.yaml",
    "registry/activities/optimise.yaml",
    "registry/activities/finalise.yaml",
    "registry/playbooks/repo.inventory.yaml",
    "registry/playbooks/catalog.lookup.yaml",
    "registry/playbooks/spec.write.yaml",
    "registry/playbooks/tests.run.yaml",
    "registry/playbooks/branch.create.yaml",
];

/// The JSON Schema of an activity file.
pub const ACTIVITY_SCHEMA: &str = include_str!("../../registry/schema/activity.schema.json");
/// The JSON Schema of a playbook file.
pub const PLAYBOOK_SCHEMA: &str = include_str!("../../registry/schema/playbook.schema.json");

/// The built-in files.
pub fn builtin() -> Vec<SourceFile> {
    EMBEDDED
        .iter()
        .filter_map(|(path, text)| {
            Some(SourceFile {
                path: path.to_string(),
                kind: kind_of_dir(path.split('/').nth(1)?)?,
                layer: Layer::Builtin,
                text: text.to_string(),
            })
        })
        .collect()
}

/// The files under `<root>/.spectra/registry/`, and a problem for anything there that is not a
/// readable `activities/*.yaml` or `playbooks/*.yaml`: a broken override must never be skipped
/// silently, or the user would run with defaults they believe they replaced.
pub fn repository(root: &Path) -> (Vec<SourceFile>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let base = root.join(REPOSITORY_DIR);
    let Ok(entries) = sorted_entries(&base) else {
        return (files, problems);
    };
    for dir in entries {
        let display = format!("{REPOSITORY_DIR}/{}", dir.file_name().to_string_lossy());
        let Some(kind) = dir.file_name().to_str().and_then(kind_of_dir) else {
            problems.push(Problem::whole_file(
                &display,
                "unexpected entry; the registry holds only `activities/` and `playbooks/`",
            ));
            continue;
        };
        read_kind_dir(&dir.path(), &display, kind, &mut files, &mut problems);
    }
    (files, problems)
}

fn read_kind_dir(
    dir: &Path,
    display: &str,
    kind: Kind,
    files: &mut Vec<SourceFile>,
    problems: &mut Vec<Problem>,
) {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(Problem::whole_file(
                display,
                format!("cannot read directory: {error}"),
            ));
            return;
        }
    };
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{display}/{name}");
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            problems.push(Problem::whole_file(
                &path,
                "not a registry file: expected a `.yaml` file",
            ));
            continue;
        }
        match std::fs::read_to_string(entry.path()) {
            Ok(text) => files.push(SourceFile {
                path,
                kind,
                layer: Layer::Repository,
                text,
            }),
            Err(error) => {
                problems.push(Problem::whole_file(&path, format!("cannot read: {error}")));
            }
        }
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

fn kind_of_dir(name: &str) -> Option<Kind> {
    match name {
        "activities" => Some(Kind::Activity),
        "playbooks" => Some(Kind::Playbook),
        _ => None,
    }
}
