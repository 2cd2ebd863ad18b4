//! Reads the commit a post-commit hook fires for: what `commit.observed` records.
//!
//! Only what the event needs is read: `HEAD`, its commit, and the `.spectra/` subtrees of that
//! commit and its first parent, compared entry by entry (identical subtree ids are skipped
//! without being read). That keeps the hook's cost independent of the size of the repository.

use std::collections::BTreeMap;

use gix::ObjectId;
use gix::objs::FindExt;
use serde_json::json;

use crate::event::{NewEvent, kind};
use crate::repo::Repo;

use super::HookError;

/// The directory whose changes the event lists.
pub const SPECTRA_DIR: &str = ".spectra";

/// The trailer every commit the tool makes carries; such commits are recorded by their run.
pub const RUN_TRAILER: &str = "Spectra-Run";

/// One path under `.spectra/` that a commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpectraChange {
    /// Repository-relative, `/`-separated, e.g. `.spectra/logging.specification.yaml`.
    pub path: String,
    /// The commit removed it (so there is nothing to act on).
    pub deleted: bool,
}

/// The facts `commit.observed` records about one commit.
#[derive(Debug, Clone)]
pub struct ObservedCommit {
    /// The commit's id.
    pub commit: ObjectId,
    /// Its parents, first parent first.
    pub parents: Vec<ObjectId>,
    /// The branch it was made on (short name); during a rebase, the branch being rebased.
    pub branch: Option<String>,
    /// `Name <email>` of the commit's author.
    pub author: String,
    /// The first line of its message.
    pub subject: String,
    /// Paths under `.spectra/` it changed against its first parent, sorted.
    pub spectra_changes: Vec<SpectraChange>,
    /// It carries a `Spectra-Run` trailer: git spectra made it during a run.
    pub made_by_spectra: bool,
}

impl ObservedCommit {
    /// The short id people see in `git log --oneline`.
    pub fn short_id(&self) -> String {
        self.commit.to_hex_with_len(7).to_string()
    }

    /// The `commit.observed` event for this commit (payload as in docs/events.md).
    pub fn to_event(&self) -> NewEvent {
        let files: Vec<&str> = self
            .spectra_changes
            .iter()
            .map(|c| c.path.as_str())
            .collect();
        let on_branch = match &self.branch {
            Some(branch) => format!(" on {branch}"),
            None => String::new(),
        };
        NewEvent::new(kind::COMMIT_OBSERVED)
            .payload(json!({
                "commit": self.commit.to_string(),
                "branch": self.branch,
                "author": self.author,
                "subject": self.subject,
                "spectra_files": files,
            }))
            .subject(format!(
                "hook: observed commit {}{on_branch}: {}",
                self.short_id(),
                self.subject
            ))
    }
}

/// Reads the commit `HEAD` points at.
pub fn observe_head(repo: &Repo) -> Result<ObservedCommit, HookError> {
    let commit_id = repo
        .gix()
        .head_id()
        .map_err(|err| HookError::Commit(format!("HEAD: {err}")))?
        .detach();
    observe_commit(repo, commit_id, current_branch(repo))
}

/// Reads `commit_id`, made on `branch` (a full or short branch name, `None` when detached).
pub fn observe_commit(
    repo: &Repo,
    commit_id: ObjectId,
    branch: Option<String>,
) -> Result<ObservedCommit, HookError> {
    let gix = repo.gix();
    let mut buf = Vec::new();
    let commit = gix
        .objects
        .find_commit(&commit_id, &mut buf)
        .map_err(|err| HookError::Commit(format!("{commit_id}: {err}")))?;
    let author = commit
        .author()
        .map(|a| format!("{} <{}>", a.name, a.email))
        .map_err(|err| HookError::Commit(format!("{commit_id}: bad author: {err}")))?;
    let subject = commit.message().summary().to_string();
    let made_by_spectra = has_trailer(&commit.message.to_string(), RUN_TRAILER);
    let tree = commit.tree();
    let parent = commit.parents().next();

    let mut parent_buf = Vec::new();
    let parent_tree = match parent {
        Some(parent) => Some(
            gix.objects
                .find_commit(&parent, &mut parent_buf)
                .map_err(|err| HookError::Commit(format!("parent {parent}: {err}")))?
                .tree(),
        ),
        None => None,
    };
    let spectra_changes = if made_by_spectra {
        Vec::new()
    } else {
        spectra_changes(gix, parent_tree, tree)?
    };
    Ok(ObservedCommit {
        commit: commit_id,
        parents: commit.parents().collect(),
        branch: branch.map(|name| short_branch(&name)),
        author,
        subject,
        spectra_changes,
        made_by_spectra,
    })
}

/// True when the message's trailer block, as git reads it, has a `key` trailer.
fn has_trailer(message: &str, key: &str) -> bool {
    crate::trailer_text::Trailers::parse(message)
        .get(key)
        .is_some()
}

/// The branch `HEAD` is on; while a rebase replays commits on a detached `HEAD`, the branch
/// being rebased (git keeps it in `rebase-merge/head-name` or `rebase-apply/head-name`).
fn current_branch(repo: &Repo) -> Option<String> {
    if let Ok(Some(name)) = repo.gix().head_name() {
        return Some(short_branch(&name.as_bstr().to_string()));
    }
    ["rebase-merge", "rebase-apply"].iter().find_map(|dir| {
        let name = std::fs::read_to_string(repo.git_dir().join(dir).join("head-name")).ok()?;
        let name = name.trim();
        (name.starts_with("refs/")).then(|| short_branch(name))
    })
}

fn short_branch(full_name: &str) -> String {
    full_name
        .strip_prefix("refs/heads/")
        .unwrap_or(full_name)
        .to_string()
}

/// Paths under `.spectra/` that differ between two root trees.
fn spectra_changes(
    repo: &gix::Repository,
    old_root: Option<ObjectId>,
    new_root: ObjectId,
) -> Result<Vec<SpectraChange>, HookError> {
    let old = match old_root {
        Some(root) => subtree_entry(repo, root, SPECTRA_DIR)?,
        None => None,
    };
    let new = subtree_entry(repo, new_root, SPECTRA_DIR)?;
    let mut changes = Vec::new();
    diff_entries(repo, SPECTRA_DIR, old, new, &mut changes)?;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

/// A tree entry reduced to what a comparison needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: ObjectId,
    is_tree: bool,
    mode: u16,
}

fn subtree_entry(
    repo: &gix::Repository,
    tree: ObjectId,
    name: &str,
) -> Result<Option<Entry>, HookError> {
    Ok(read_tree(repo, tree)?.remove(name))
}

fn read_tree(repo: &gix::Repository, tree: ObjectId) -> Result<BTreeMap<String, Entry>, HookError> {
    let mut buf = Vec::new();
    let decoded = repo
        .objects
        .find_tree(&tree, &mut buf)
        .map_err(|err| HookError::Commit(format!("tree {tree}: {err}")))?;
    Ok(decoded
        .entries
        .iter()
        .map(|entry| {
            (
                entry.filename.to_string(),
                Entry {
                    id: entry.oid.to_owned(),
                    is_tree: entry.mode.is_tree(),
                    mode: entry.mode.value(),
                },
            )
        })
        .collect())
}

/// Compares what `path` is in the old and the new tree and records every changed file below it.
fn diff_entries(
    repo: &gix::Repository,
    path: &str,
    old: Option<Entry>,
    new: Option<Entry>,
    changes: &mut Vec<SpectraChange>,
) -> Result<(), HookError> {
    if old == new {
        return Ok(());
    }
    let old_tree = old.filter(|e| e.is_tree).map(|e| e.id);
    let new_tree = new.filter(|e| e.is_tree).map(|e| e.id);
    if old_tree.is_some() || new_tree.is_some() {
        let old_entries = old_tree
            .map(|t| read_tree(repo, t))
            .transpose()?
            .unwrap_or_default();
        let new_entries = new_tree
            .map(|t| read_tree(repo, t))
            .transpose()?
            .unwrap_or_default();
        let mut names: Vec<&String> = old_entries.keys().chain(new_entries.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let child = format!("{path}/{name}");
            diff_entries(
                repo,
                &child,
                old_entries.get(name).copied(),
                new_entries.get(name).copied(),
                changes,
            )?;
        }
    }
    // A file on either side (also when a file became a directory or the other way round).
    let old_file = old.filter(|e| !e.is_tree);
    let new_file = new.filter(|e| !e.is_tree);
    if old_file.is_some() || new_file.is_some() {
        changes.push(SpectraChange {
            path: path.to_string(),
            deleted: new_file.is_none(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_trailers_are_found_only_in_the_trailer_block() {
        assert!(has_trailer(
            "build: add x\n\nbody\n\nSpectra-Run: 0193\nSpectra-Activity: build\n",
            RUN_TRAILER
        ));
        assert!(!has_trailer(
            "subject\n\nSpectra-Run: mentioned in the body\n\nSigned-off-by: A <a@b>\n",
            RUN_TRAILER
        ));
        assert!(!has_trailer("just a subject\n", RUN_TRAILER));
        assert!(!has_trailer("Spectra-Run: in the subject\n", RUN_TRAILER));
    }

    #[test]
    fn branches_are_shortened() {
        assert_eq!(short_branch("refs/heads/feature/x"), "feature/x");
        assert_eq!(short_branch("refs/remotes/o/x"), "refs/remotes/o/x");
    }
}
