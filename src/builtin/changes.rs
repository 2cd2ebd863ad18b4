//! `builtin apply-changes` and `builtin remove-build-branch`: a build's file changes, as one
//! commit on a branch of its own.
//!
//! A model's edits are applied to a git tree, never to the user's files: the new blobs and tree
//! are built with git plumbing and a temporary index (`GIT_INDEX_FILE`), and the commit (parent:
//! HEAD) goes on `spectra/<service>/build-<run>`. The user's HEAD, index and working tree are
//! not touched, so the branch is there to review and merge like anyone's. Two formats: a whole
//! file (`content`) and aider's search/replace (`search` must occur exactly once in the file as
//! HEAD has it; a missing or ambiguous search text is a failed change, never a guess). Every
//! change is checked before anything is written, and one failed change means none is applied.
//!
//! A preview (a dry run) builds the same tree in a temporary object directory that borrows the
//! repository's objects (`GIT_ALTERNATE_OBJECT_DIRECTORIES`), so it can show the full diff while
//! writing nothing to the repository.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BuiltinError, check_service_name};
use check::check_all;
use git::{absolute, build_tree, diff_text, git_env, head, is_ancestor_of_head, rev};

mod check;
mod git;
#[cfg(test)]
mod tests;

/// Most changes one build may make.
pub const MAX_CHANGES: usize = 20;

/// One change a build asks for, as the decision lists it. Which fields are set says what it is:
/// `action: delete`, else `search` (with `replace`), else `content`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileChange {
    /// The file, relative to the repository root.
    pub path: String,
    /// `create`, `modify` or `delete`; `None` is decided by the other fields.
    #[serde(default)]
    pub action: Option<String>,
    /// The whole new content of the file.
    #[serde(default)]
    pub content: Option<String>,
    /// Text that must occur exactly once in the file as HEAD has it.
    #[serde(default)]
    pub search: Option<String>,
    /// What replaces `search`.
    #[serde(default)]
    pub replace: Option<String>,
}

/// What became of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeResult {
    /// The file.
    pub path: String,
    /// `content`, `search_replace` or `delete`.
    pub kind: &'static str,
    /// Whether the change is in the new tree (false for all when any change failed).
    pub applied: bool,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// The result of applying (or previewing) a list of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The branch, short name (`spectra/<service>/build-<run>`).
    pub branch: String,
    /// The commit on it; `None` in a preview or when a change failed.
    pub commit: Option<String>,
    /// The commit the changes were applied to (HEAD).
    pub base: String,
    /// Every change, in order, with its result.
    pub changes: Vec<ChangeResult>,
    /// `git diff --stat` of base against the new tree.
    pub diff_stat: String,
    /// The full diff (only in a preview; the commit holds it otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Whether every change applied.
    pub success: bool,
}

/// The outcome of removing a build's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The branch.
    pub branch: String,
    /// `deleted` (the branch is gone), `reverted` (already merged into HEAD: its commit was
    /// reverted there, and the branch is gone too) or `absent` (there was no such branch).
    pub action: &'static str,
    /// The commit the branch pointed at, if any.
    pub commit: Option<String>,
}

impl Removed {
    /// What the removal did, in a line an undo shows.
    pub fn said(&self) -> String {
        let branch = &self.branch;
        match (self.action, self.commit.as_deref()) {
            ("reverted", Some(commit)) => format!(
                "`{branch}` was merged: reverted its commit {} on your branch, and deleted the branch",
                crate::worktree::short(commit)
            ),
            ("absent", _) => format!("branch `{branch}` was already gone"),
            _ => format!("deleted branch `{branch}`"),
        }
    }
}

/// A change checked against HEAD: what the file's entry becomes (`None`: removed).
struct Planned {
    path: String,
    mode: String,
    content: Option<Vec<u8>>,
}

/// The branch a build of `service` in run `run` goes on.
pub fn branch_name(service: &str, run: &str) -> String {
    format!("spectra/{service}/build-{}", short_run(run))
}

/// The part of a run id a branch name carries: the last 8 letters and digits of the id (the
/// random end of a UUIDv7; its start is a clock and repeats between runs close in time).
pub fn short_run(run: &str) -> String {
    let plain: Vec<char> = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    plain[plain.len().saturating_sub(8)..].iter().collect()
}

/// Refuses a run id that could not name a branch or a trailer: 8 to 64 letters, digits and `-`.
fn check_run(run: &str) -> Result<(), BuiltinError> {
    let plain = run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let letters = run.chars().filter(char::is_ascii_alphanumeric).count();
    if plain && (8..=64).contains(&run.len()) && letters >= 8 {
        return Ok(());
    }
    Err(BuiltinError::Changes {
        message: format!("`{run}` is not a run id (8 to 64 letters, digits and `-`)"),
    })
}

/// Refuses an event id that could not stand in a trailer: 1 to 64 letters, digits and `-`
/// (the runner sets it; a line break in it would forge the trailers below it).
fn check_event(event: &str) -> Result<(), BuiltinError> {
    let plain = event.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain && (1..=64).contains(&event.len()) {
        return Ok(());
    }
    Err(BuiltinError::Changes {
        message: format!("`{event}` is not an event id (letters, digits and `-`)"),
    })
}

/// The trailers of the revert an undo makes when the build branch was merged: the undo's run
/// and event, as the runner gives them to the playbook, so the post-commit hook knows the
/// commit for the tool's own.
pub fn revert_trailers<'a>(
    run: Option<&'a str>,
    event: Option<&'a str>,
) -> Result<Vec<(&'static str, &'a str)>, BuiltinError> {
    let mut trailers = Vec::new();
    if let Some(run) = run {
        check_run(run)?;
        trailers.push(("Spectra-Run", run));
    }
    if let Some(event) = event {
        check_event(event)?;
        trailers.push(("Spectra-Event", event));
    }
    Ok(trailers)
}

/// Parses the JSON list of changes a playbook input carries.
pub fn parse(json: &str) -> Result<Vec<FileChange>, BuiltinError> {
    serde_json::from_str(json).map_err(|error| BuiltinError::Changes {
        message: format!(
            "the changes are not a JSON list of {{path, content | search, replace}}: {error}"
        ),
    })
}

/// Applies `changes` in `root` on a new branch for `service` and `run`, one commit carrying
/// `Spectra-Run: run` and `Spectra-Event: event`. When a change fails nothing is written and
/// the result says why (`success: false`).
pub fn apply(
    root: &Path,
    service: &str,
    run: &str,
    event: Option<&str>,
    changes: &[FileChange],
) -> Result<Applied, BuiltinError> {
    if let Some(event) = event {
        check_event(event)?;
    }
    let (branch, base, results, planned) = match checked(root, service, run, changes)? {
        Ok(checked) => checked,
        Err(refused) => return Ok(refused),
    };
    let reference = format!("refs/heads/{branch}");
    let tree = build_tree(root, &base, &planned, &[])?;
    let diff_stat = diff_text(root, &["--stat", &base, &tree], &[])?;
    if let Some(existing) = rev(root, &reference)? {
        // A run again (a redo): the same tree on the same base is the same build.
        let same = rev(root, &format!("{existing}^{{tree}}"))? == Some(tree.clone())
            && rev(root, &format!("{existing}^"))? == Some(base.clone());
        if !same {
            return Err(BuiltinError::BranchConflict {
                branch,
                existing,
                wanted: format!("a new build on {base}"),
            });
        }
        return Ok(done(branch, Some(existing), base, results, diff_stat));
    }
    let message = commit_message(service, run, event, changes);
    let commit = git_env(
        root,
        &["commit-tree", &tree, "-p", &base, "-F", "-"],
        &[],
        Some(message.as_bytes()),
    )?;
    // An empty old value: the update fails if the branch appeared meanwhile.
    git_env(
        root,
        &[
            "update-ref",
            "-m",
            &format!("spectra: build for service {service}"),
            &reference,
            &commit,
            "",
        ],
        &[],
        None,
    )?;
    Ok(done(branch, Some(commit), base, results, diff_stat))
}

/// Checks `changes` and shows the diff they would make, writing nothing to the repository.
pub fn preview(
    root: &Path,
    service: &str,
    run: &str,
    changes: &[FileChange],
) -> Result<Applied, BuiltinError> {
    let (branch, base, results, planned) = match checked(root, service, run, changes)? {
        Ok(checked) => checked,
        Err(refused) => return Ok(refused),
    };
    let objects = tempfile::tempdir().map_err(BuiltinError::io(std::env::temp_dir()))?;
    let own_objects = absolute(
        root,
        &git_env(root, &["rev-parse", "--git-path", "objects"], &[], None)?,
    );
    let borrowed = [
        (
            "GIT_OBJECT_DIRECTORY",
            objects.path().as_os_str().to_owned(),
        ),
        (
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            own_objects.into_os_string(),
        ),
    ];
    let tree = build_tree(root, &base, &planned, &borrowed)?;
    let diff = |stat: bool| {
        let mode = if stat { "--stat" } else { "--patch" };
        diff_text(root, &[mode, &base, &tree], &borrowed)
    };
    let (diff_stat, full) = (diff(true)?, diff(false)?);
    let mut applied = done(branch, None, base, results, diff_stat);
    applied.diff = Some(full);
    Ok(applied)
}

/// What [`apply`] and [`preview`] both start with: the branch, HEAD, and every change checked
/// (`Err`: the result that says which were refused, nothing written).
type Checked = (String, String, Vec<ChangeResult>, Vec<Planned>);

fn checked(
    root: &Path,
    service: &str,
    run: &str,
    changes: &[FileChange],
) -> Result<Result<Checked, Applied>, BuiltinError> {
    check_service_name(service)?;
    check_run(run)?;
    let branch = branch_name(service, run);
    let base = head(root)?;
    let (results, planned) = check_all(root, &base, changes)?;
    Ok(match planned {
        Some(planned) => Ok((branch, base, results, planned)),
        None => Err(failed(branch, base, results)),
    })
}

/// Removes the branch a build made: deletes it, and when HEAD already contains its commit (the
/// user merged it) first reverts that commit on the user's branch.
pub fn remove_branch(
    root: &Path,
    service: &str,
    run: &str,
    revert_trailers: &[(&str, &str)],
) -> Result<Removed, BuiltinError> {
    check_service_name(service)?;
    check_run(run)?;
    let branch = branch_name(service, run);
    let reference = format!("refs/heads/{branch}");
    let Some(commit) = rev(root, &reference)? else {
        return Ok(Removed {
            branch,
            action: "absent",
            commit: None,
        });
    };
    refuse_unless_removable(root, &branch, &commit, run)?;
    let merged = is_ancestor_of_head(root, &commit)?;
    let action = if merged {
        crate::worktree::Worktree::new(root)
            .revert(&commit, revert_trailers)
            .map_err(|error| BuiltinError::Changes {
                message: format!(
                    "`{branch}` was merged, and reverting its commit on your branch failed \
                     (your branch is as it was): {error}"
                ),
            })?;
        "reverted"
    } else {
        "deleted"
    };
    // Either way the branch goes, so that a redo can make it again from HEAD.
    git_env(root, &["update-ref", "-d", &reference, &commit], &[], None)?;
    Ok(Removed {
        branch,
        action,
        commit: Some(commit),
    })
}

/// Refuses to remove a build branch that is checked out in any worktree, or that holds more
/// than the build's own commit (the user committed on it): that work is theirs.
fn refuse_unless_removable(
    root: &Path,
    branch: &str,
    tip: &str,
    run: &str,
) -> Result<(), BuiltinError> {
    let worktrees = git_env(root, &["worktree", "list", "--porcelain"], &[], None)?;
    let checked_out = format!("branch refs/heads/{branch}");
    if worktrees.lines().any(|line| line == checked_out) {
        return Err(BuiltinError::Changes {
            message: format!(
                "`{branch}` is checked out in a worktree (`git worktree list`); switch it to \
                 another branch and undo again"
            ),
        });
    }
    let made_by = git_env(
        root,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Spectra-Run,valueonly)",
            tip,
        ],
        &[],
        None,
    )?;
    if made_by.trim() != run {
        return Err(BuiltinError::Changes {
            message: format!(
                "`{branch}` has moved since the build made it: its tip {} is not the build's \
                 commit; keep what you committed there, then delete the branch yourself \
                 (`git branch -D {branch}`)",
                crate::worktree::short(tip)
            ),
        });
    }
    Ok(())
}

fn failed(branch: String, base: String, changes: Vec<ChangeResult>) -> Applied {
    Applied {
        branch,
        commit: None,
        base,
        changes,
        diff_stat: String::new(),
        diff: None,
        success: false,
    }
}

fn done(
    branch: String,
    commit: Option<String>,
    base: String,
    changes: Vec<ChangeResult>,
    diff_stat: String,
) -> Applied {
    Applied {
        branch,
        commit,
        base,
        changes,
        diff_stat,
        diff: None,
        success: true,
    }
}

/// The commit's message: a subject naming the files, one line per change, and the trailers.
fn commit_message(service: &str, run: &str, event: Option<&str>, changes: &[FileChange]) -> String {
    let paths: Vec<&str> = changes.iter().map(|change| change.path.as_str()).collect();
    let mut subject =
        crate::trailer_text::one_line(&format!("build({service}): change {}", paths.join(", ")));
    if subject.len() > 72 {
        subject = format!("build({service}): change {} files", paths.len());
    }
    let body: String = changes
        .iter()
        .map(|change| format!("- {} {}\n", kind_of(change), change.path))
        .collect();
    let body = crate::trailer_text::neutralise(&body);
    let event = event
        .map(|event| format!("Spectra-Event: {event}\n"))
        .unwrap_or_default();
    format!("{subject}\n\n{body}\nSpectra-Run: {run}\n{event}")
}

/// `delete`, `search_replace` or `content`: which of the formats `change` uses.
pub fn kind_of(change: &FileChange) -> &'static str {
    if change.action.as_deref() == Some("delete") {
        "delete"
    } else if change.search.is_some() {
        "search_replace"
    } else {
        "content"
    }
}
