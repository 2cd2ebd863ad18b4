//! `git spectra registry import DIR`: a folder of Markdown runbooks made into runbook playbooks
//! under `.spectra/registry/playbooks/`. The conversion is `registry::import`; this file reads
//! the folder, refuses to overwrite, writes and reports.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::registry::ImportRequest;
use super::ui::{Format, Output};
use crate::registry::import::{self, Defaults, Imported};
use crate::registry::{REPOSITORY_DIR, RUNBOOK_SUFFIX};

/// One runbook of the folder, made into an entry, and where it goes.
struct Planned {
    source: PathBuf,
    target: PathBuf,
    /// The target, relative to the repository root, as the report shows it.
    shown: String,
    imported: Imported,
    /// The target already holds exactly this.
    unchanged: bool,
}

/// Imports every `.md` runbook of `request.dir`, all or nothing.
pub fn run(out: &mut Output, request: &ImportRequest, format: Format) -> Result<()> {
    let helper = CommandHelper::open(Access::Reads)?;
    let root = helper
        .repo()
        .work_tree()
        .ok_or_else(|| Error::usage("registry import needs a work tree", None))?
        .to_path_buf();
    let defaults = Defaults {
        activities: request.activities.clone(),
        domain: request
            .domain
            .as_deref()
            .map_or_else(|| folder_domain(&request.dir), import::slug),
    };
    let planned = plan(&root, &request.dir, &defaults)?;
    refuse_overwrites(&planned, request.force)?;
    refuse_breaking(&root, &planned)?;
    for entry in planned.iter().filter(|entry| !entry.unchanged) {
        if let Some(parent) = entry.target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&entry.target, &entry.imported.text)?;
    }
    report(out, &planned, format)
}

/// The domain of runbooks whose front matter names none: the folder's own name.
fn folder_domain(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = absolute
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    import::slug(&name)
}

fn plan(root: &Path, dir: &Path, defaults: &Defaults) -> Result<Vec<Planned>> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        Error::usage(
            format!("cannot read {}: {error}", dir.display()),
            Some("name a folder of Markdown runbooks (`*.md`)".to_string()),
        )
    })?;
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        return Err(Error::usage(
            format!("no `.md` runbook in {}", dir.display()),
            None,
        ));
    }
    let mut planned: Vec<Planned> = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source)?;
        let stem = source
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let imported = import::runbook(&stem, &text, defaults).map_err(|error| {
            Error::failed_with_hint(
                format!("{}: {error}", source.display()),
                "nothing was written; fix the runbook (or pass what it lacks) and import again",
            )
        })?;
        if let Some(other) = planned.iter().find(|p| p.imported.name == imported.name) {
            return Err(Error::failed_with_hint(
                format!(
                    "{} and {} both become the entry `{}`",
                    other.source.display(),
                    source.display(),
                    imported.name
                ),
                "give one of them another `name` in its front matter; nothing was written",
            ));
        }
        let shown = format!(
            "{REPOSITORY_DIR}/playbooks/{}{RUNBOOK_SUFFIX}",
            imported.name
        );
        let target = root.join(&shown);
        let unchanged = std::fs::read_to_string(&target).is_ok_and(|now| now == imported.text);
        planned.push(Planned {
            source,
            target,
            shown,
            imported,
            unchanged,
        });
    }
    Ok(planned)
}

/// An entry that exists with other content is replaced only with `--force`; without it nothing
/// is written and every such entry is named.
fn refuse_overwrites(planned: &[Planned], force: bool) -> Result<()> {
    let taken: Vec<&str> = planned
        .iter()
        .filter(|entry| !entry.unchanged && entry.target.exists())
        .map(|entry| entry.shown.as_str())
        .collect();
    if taken.is_empty() || force {
        return Ok(());
    }
    Err(Error::failed_with_hint(
        format!(
            "{} already exist{} with other content: {}",
            if taken.len() == 1 {
                "an entry"
            } else {
                "entries"
            },
            if taken.len() == 1 { "s" } else { "" },
            taken.join(", ")
        ),
        "nothing was written; pass --force to replace them, or rename the runbooks",
    ))
}

/// Entries the registry would refuse (an activity that does not exist, a name that is not an
/// id) are not written: a broken registry stops every command. Each problem is named with the
/// runbook it came from and the line of the entry it would be.
fn refuse_breaking(root: &Path, planned: &[Planned]) -> Result<()> {
    let entries: Vec<(String, String)> = planned
        .iter()
        .map(|entry| (entry.shown.clone(), entry.imported.text.clone()))
        .collect();
    let problems = import::problems_with(root, &entries);
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| {
            match planned.iter().find(|entry| entry.shown == problem.file) {
                Some(entry) => format!("{} (as {problem})", entry.source.display()),
                // Another file, broken by what an entry is (a built-in playbook's id, say).
                None => format!("{problem} (with the new entries)"),
            }
        })
        .collect();
    Err(Error::failed_with_hint(
        format!(
            "the registry would refuse what this import writes:\n  {}",
            lines.join("\n  ")
        ),
        "nothing was written; a runbook's activities must exist (`git spectra registry list`), and each must name the runbook's id or `domain:NAME` in its `playbooks` (in `.spectra/registry/activities/`) before the import: fix that, or the runbook's front matter or --activity, and import again",
    ))
}

fn report(out: &mut Output, planned: &[Planned], format: Format) -> Result<()> {
    for entry in planned {
        let status = if entry.unchanged {
            "unchanged"
        } else {
            "written"
        };
        let imported = &entry.imported;
        match format {
            Format::Json => out.json_line(&json!({
                "source": entry.source.display().to_string(),
                "entry": entry.shown,
                "name": imported.name,
                "status": status,
                "derived": imported.derived,
                "fill_in": imported.fill_in,
                "dropped": imported.dropped,
            }))?,
            Format::Human => {
                out.line(format_args!(
                    "{status} {} from {}",
                    entry.shown,
                    entry.source.display()
                ))?;
                if !imported.derived.is_empty() {
                    out.line(format_args!("  derived: {}", imported.derived.join(", ")))?;
                }
                if !imported.fill_in.is_empty() {
                    out.line(format_args!("  fill in: {}", imported.fill_in.join(", ")))?;
                }
                if !imported.dropped.is_empty() {
                    out.line(format_args!(
                        "  dropped (not runbook fields): {}",
                        imported.dropped.join(", ")
                    ))?;
                }
            }
        }
    }
    Ok(())
}
