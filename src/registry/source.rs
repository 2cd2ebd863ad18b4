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
    /// An activity's document template, `activities/<activity>.md.j2` beside its definition.
    Template,
    /// A runbook playbook: Markdown with YAML front matter, `playbooks/<name>.md`.
    Runbook,
}

/// How a runbook playbook's file is named: its name followed by this.
pub const RUNBOOK_SUFFIX: &str = ".md";

/// How an activity's document template file is named: `<activity>` followed by this.
pub const TEMPLATE_SUFFIX: &str = ".md.j2";

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
    "registry/activities/engage.md.j2",
    "registry/activities/discover.md.j2",
    "registry/activities/plan.md.j2",
    "registry/activities/assess.md.j2",
    "registry/activities/design.md.j2",
    "registry/activities/provision.md.j2",
    "registry/activities/build.md.j2",
    "registry/activities/test.md.j2",
    "registry/activities/deploy.md.j2",
    "registry/activities/monitor.md.j2",
    "registry/activities/optimise.md.j2",
    "registry/activities/finalise.md.j2",
    "registry/playbooks/repo.inventory.yaml",
    "registry/playbooks/catalog.lookup.yaml",
    "registry/playbooks/provision.command.yaml",
    "registry/playbooks/deploy.command.yaml",
    "registry/playbooks/release.tag.yaml",
    "registry/playbooks/monitor.command.yaml",
    "registry/playbooks/service.probe.yaml",
    "registry/playbooks/spec.write.yaml",
    "registry/playbooks/tests.run.yaml",
    "registry/playbooks/branch.create.yaml",
    "registry/playbooks/changes.apply.yaml",
];

/// The JSON Schema of an activity file.
pub const ACTIVITY_SCHEMA: &str = include_str!("../../registry/schema/activity.schema.json");
/// The JSON Schema of a playbook file.
pub const PLAYBOOK_SCHEMA: &str = include_str!("../../registry/schema/playbook.schema.json");
/// The JSON Schema of a runbook playbook's front matter.
pub const RUNBOOK_SCHEMA: &str = include_str!("../../registry/schema/runbook.schema.json");

/// The built-in files.
pub fn builtin() -> Vec<SourceFile> {
    EMBEDDED
        .iter()
        .filter_map(|(path, text)| {
            let (dir, name) = path.strip_prefix("registry/")?.split_once('/')?;
            Some(SourceFile {
                path: path.to_string(),
                kind: kind_of_file(kind_of_dir(dir)?, name)?,
                layer: Layer::Builtin,
                text: text.to_string(),
            })
        })
        .collect()
}

/// The files under `<root>/.spectra/registry/`, and a problem for anything there that is not a
/// readable `activities/*.yaml`, `activities/*.md.j2`, `playbooks/*.yaml` or `playbooks/*.md`: a broken override
/// must never be skipped silently, or the user would run with defaults they believe they
/// replaced.
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
        let Some(file_kind) = kind_of_file(kind, &name) else {
            let expected = match kind {
                Kind::Activity => {
                    "expected a `.yaml` file, or an activity's document template `<activity>.md.j2`"
                }
                _ => "expected a `.yaml` playbook or a `.md` runbook",
            };
            problems.push(Problem::whole_file(
                &path,
                format!("not a registry file: {expected}"),
            ));
            continue;
        };
        match std::fs::read_to_string(entry.path()) {
            Ok(text) => files.push(SourceFile {
                path,
                kind: file_kind,
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

/// What the file `name` in a directory of `dir_kind` defines, if it is a registry file at all:
/// YAML definitions in both directories, document templates beside the activities, runbooks
/// beside the playbooks.
fn kind_of_file(dir_kind: Kind, name: &str) -> Option<Kind> {
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        Some(dir_kind)
    } else if dir_kind == Kind::Activity && name.ends_with(TEMPLATE_SUFFIX) {
        Some(Kind::Template)
    } else if dir_kind == Kind::Playbook && name.ends_with(RUNBOOK_SUFFIX) {
        Some(Kind::Runbook)
    } else {
        None
    }
}

/// The activity a document template file belongs to: its file name without `.md.j2`.
pub fn template_activity(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_suffix(TEMPLATE_SUFFIX).unwrap_or(name)
}

fn kind_of_dir(name: &str) -> Option<Kind> {
    match name {
        "activities" => Some(Kind::Activity),
        "playbooks" => Some(Kind::Playbook),
        _ => None,
    }
}
