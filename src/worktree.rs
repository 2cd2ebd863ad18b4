//! Changes to the user's own branch, made with git itself.
//!
//! The tool commits the files an activity writes (and later reverts them) by running `git`, not
//! by writing objects itself: the user's hooks, signing, identity and index rules then apply
//! exactly as for their own commits. Only the named paths are committed; whatever else the user
//! has staged stays staged.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a change to the user's branch could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
}

/// A commit the tool made on the user's branch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Committed {
    pub commit: String,
    pub branch: Option<String>,
    pub files: Vec<String>,
    pub message: String,
}

/// Runs git in the work tree at `root`.
pub struct Worktree {
    root: PathBuf,
}

impl Worktree {
    pub fn new(root: impl Into<PathBuf>) -> Worktree {
        Worktree { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn git(&self, args: &[&str]) -> Result<String, WorktreeError> {
        let output = Command::new("git")
            .current_dir(&self.root)
            .args(args)
            .output()
            .map_err(WorktreeError::Spawn)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(WorktreeError::Git {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// Whether `path` (relative to the root) has changes git has not committed, staged or not.
    pub fn has_uncommitted_changes(&self, path: &str) -> Result<bool, WorktreeError> {
        let status = self.git(&["status", "--porcelain", "--untracked-files=all", "--", path])?;
        Ok(!status.trim().is_empty())
    }

    /// Whether `path` is tracked by git.
    pub fn is_tracked(&self, path: &str) -> bool {
        self.git(&["ls-files", "--error-unmatch", "--", path])
            .is_ok()
    }

    /// The current branch, or `None` when HEAD is detached.
    pub fn current_branch(&self) -> Option<String> {
        self.git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
            .map(|name| name.trim().to_string())
    }

    /// Commits exactly `paths` with `message`, leaving anything else the user staged alone.
    pub fn commit_paths(
        &self,
        paths: &[String],
        message: &str,
    ) -> Result<Committed, WorktreeError> {
        let mut add = vec!["add", "--"];
        add.extend(paths.iter().map(String::as_str));
        self.git(&add)?;
        let mut commit = vec!["commit", "--quiet", "--message", message, "--"];
        commit.extend(paths.iter().map(String::as_str));
        self.git(&commit)?;
        let id = self.git(&["rev-parse", "HEAD"])?.trim().to_string();
        Ok(Committed {
            commit: id,
            branch: self.current_branch(),
            files: paths.to_vec(),
            message: message.lines().next().unwrap_or_default().to_string(),
        })
    }
}
