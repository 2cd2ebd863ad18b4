//! `builtin create-branch` and `builtin delete-branch`: a branch for a service's work.
//!
//! The branch is created with a compare-and-swap on "does not exist yet" and never checked out,
//! so the user's working tree and current branch are untouched. Deleting uses `git branch -d`,
//! which refuses to drop commits that are not merged elsewhere.

use std::path::Path;

use serde::Serialize;

use super::{BuiltinError, check_service_name, git};

/// The outcome of creating a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    /// The branch's short name.
    pub branch: String,
    /// The commit the branch points at.
    pub commit: String,
    /// `false` when the branch already pointed at that commit.
    pub created: bool,
}

/// The outcome of deleting a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// The branch's short name.
    pub branch: String,
    /// `false` when there was no such branch.
    pub deleted: bool,
}

/// The branch a service's work goes on.
pub fn branch_name(service: &str) -> String {
    format!("service/{service}")
}

/// Creates `service/<service>` at `base` (default `HEAD`).
pub fn create(root: &Path, service: &str, base: Option<&str>) -> Result<Created, BuiltinError> {
    check_service_name(service)?;
    let branch = branch_name(service);
    let base = base.unwrap_or("HEAD");
    let commit = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{base}^{{commit}}"),
        ],
    )?;
    let reference = format!("refs/heads/{branch}");
    if let Some(existing) = current(root, &reference)? {
        if existing == commit {
            return Ok(Created {
                branch,
                commit,
                created: false,
            });
        }
        return Err(BuiltinError::BranchConflict {
            branch,
            existing,
            wanted: commit,
        });
    }
    // An empty old value makes the update fail if the branch appeared meanwhile.
    git(
        root,
        &[
            "update-ref",
            "-m",
            &format!("spectra: branch for service {service}"),
            &reference,
            &commit,
            "",
        ],
    )?;
    Ok(Created {
        branch,
        commit,
        created: true,
    })
}

/// Deletes `service/<service>` if it exists and is merged.
pub fn delete(root: &Path, service: &str) -> Result<Deleted, BuiltinError> {
    check_service_name(service)?;
    let branch = branch_name(service);
    if current(root, &format!("refs/heads/{branch}"))?.is_none() {
        return Ok(Deleted {
            branch,
            deleted: false,
        });
    }
    git(root, &["branch", "-d", &branch])?;
    Ok(Deleted {
        branch,
        deleted: true,
    })
}

fn current(root: &Path, reference: &str) -> Result<Option<String>, BuiltinError> {
    match git(root, &["rev-parse", "--verify", "--quiet", reference]) {
        Ok(commit) => Ok(Some(commit)),
        Err(BuiltinError::Git { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}
