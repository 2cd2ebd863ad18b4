//! The temporary checkouts `tests.run` runs a build's branch in: linked worktrees under
//! `<git dir>/spectra/checkouts/`, each named by the process that made it. A checkout is removed
//! by the process that made it; when that process was killed (the playbook's timeout kills its
//! whole process group), the next one to make a checkout removes it, so none stays registered
//! in `git worktree list` or fills the disk.

use std::path::{Path, PathBuf};

use super::{BuiltinError, git};

/// A linked worktree at a commit, removed when dropped.
pub struct Checkout {
    root: PathBuf,
    path: PathBuf,
}

impl Checkout {
    /// Checks `commit` out, detached, in a new linked worktree of the repository at `root`,
    /// after removing the checkouts of processes that no longer run.
    pub fn at(root: &Path, commit: &str) -> Result<Checkout, BuiltinError> {
        let parent = checkouts_dir(root)?;
        remove_abandoned(root, &parent);
        std::fs::create_dir_all(&parent).map_err(BuiltinError::io(parent.clone()))?;
        let name = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let path = parent.join(name);
        git(
            root,
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                &path.to_string_lossy(),
                commit,
            ],
        )?;
        Ok(Checkout {
            root: root.to_path_buf(),
            path,
        })
    }

    /// Where the files are.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        remove(&self.root, &self.path);
    }
}

/// `<common git dir>/spectra/checkouts`.
fn checkouts_dir(root: &Path) -> Result<PathBuf, BuiltinError> {
    let common = git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    Ok(PathBuf::from(common).join("spectra").join("checkouts"))
}

/// Removes every checkout in `parent` whose process is gone.
fn remove_abandoned(root: &Path, parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let maker = name
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<i32>().ok());
        if !maker.is_some_and(is_running) {
            remove(root, &entry.path());
        }
    }
}

/// Whether a process with id `pid` exists (a reused id counts as running: its checkout waits
/// for a later cleanup rather than being taken from a live process).
fn is_running(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// Best effort: unregisters the worktree and deletes its files.
fn remove(root: &Path, path: &Path) {
    let _ = git(
        root,
        &["worktree", "remove", "--force", &path.to_string_lossy()],
    );
    let _ = std::fs::remove_dir_all(path);
    let _ = git(root, &["worktree", "prune"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worktrees(root: &Path) -> usize {
        git(root, &["worktree", "list", "--porcelain"])
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("worktree "))
            .count()
    }

    #[test]
    fn a_checkout_is_gone_when_dropped_and_one_a_dead_process_left_is_removed_by_the_next() {
        let repo = crate::builtin::test_repo();
        let root = repo.path();
        let checkout = Checkout::at(root, "HEAD").unwrap();
        assert!(checkout.path().is_dir());
        assert_eq!(worktrees(root), 2);
        drop(checkout);
        assert_eq!(worktrees(root), 1);

        // What a killed process leaves: a registered worktree named by a pid that is gone.
        let parent = checkouts_dir(root).unwrap();
        let abandoned = parent.join(format!("{}-left", i32::MAX));
        git(
            root,
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                &abandoned.to_string_lossy(),
                "HEAD",
            ],
        )
        .unwrap();
        assert_eq!(worktrees(root), 2);
        let next = Checkout::at(root, "HEAD").unwrap();
        assert!(!abandoned.exists());
        assert_eq!(worktrees(root), 2, "only the new checkout");
        drop(next);
        assert_eq!(worktrees(root), 1);
    }
}
