//! What every command opens, opened once and the same way: the repository, and the event log
//! in the mode the command needs (like jj's `CommandHelper`).
//!
//! A command that appends anyway ([`Access::Writes`]: runs, `append`, `undo`/`redo`,
//! `sync`/`merge`/`push`) first records what the post-commit hook noted and closes runs whose
//! process died, so it acts on a complete log. A command that only reads ([`Access::Reads`],
//! [`Access::Shows`]) never writes the log: it says in a `hint:` line what is waiting to be
//! recorded and which commands record it.
//!
//! A command that writes needs a git identity (`user.name`, `user.email`), checked when it
//! opens, before anything is written. Reading needs none.
//!
//! The hidden hook paths (`git spectra hook post-commit|record-noted`) use it only for the
//! repository: they record the notes themselves and close no runs, so a commit stays fast.

use std::cell::OnceCell;

use super::error::Result;
use super::hook::settle_noted;
use super::ui;
use crate::hook::pending;
use crate::repo::{Repo, RepoError};
use crate::store::{Integrity, Store};

/// How a command uses the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it and reports problems itself (`verify`, `status`'s counts).
    Reads,
    /// Shows what it holds: a log that fails verification gets a warning first, and is still
    /// shown (commands that act on the log refuse instead; see `Store::require_intact`).
    Shows,
    /// Appends to it: what the hook noted is recorded and interrupted runs are closed first.
    Writes,
}

/// The repository of the current directory and, on first use, its event log.
pub struct CommandHelper {
    repo: Repo,
    access: Access,
    store: OnceCell<Store>,
}

impl CommandHelper {
    /// Opens the repository the current directory belongs to. A command that writes is
    /// refused here, before it writes anything, when no git identity is configured.
    pub fn open(access: Access) -> Result<CommandHelper> {
        let helper = CommandHelper::discover(access)?;
        if access == Access::Writes {
            helper.repo.identity()?;
        }
        Ok(helper)
    }

    /// [`CommandHelper::open`], with the repository's own error for commands that go on
    /// without a repository (`doctor`) or never fail (the hook paths).
    pub fn discover(access: Access) -> std::result::Result<CommandHelper, RepoError> {
        Ok(CommandHelper {
            repo: Repo::discover()?,
            access,
            store: OnceCell::new(),
        })
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The event log, opened on first use as [`Access`] says.
    pub fn store(&self) -> &Store {
        self.store.get_or_init(|| self.open_store())
    }

    fn open_store(&self) -> Store {
        let repo = &self.repo;
        if self.access == Access::Writes {
            settle_noted(repo);
        }
        let store = Store::new(repo);
        hint_unfetched_remote(repo, &store);
        match self.access {
            Access::Writes => close_interrupted_runs(repo, &store),
            Access::Reads | Access::Shows => hint_what_waits(repo),
        }
        if self.access == Access::Shows {
            warn_unless_intact(&store);
        }
        store
    }
}

/// After `git clone`, an empty log may only mean the remote's was never fetched.
fn hint_unfetched_remote(repo: &Repo, store: &Store) {
    if store.tip().ok().flatten().is_none()
        && let Some(remote) = crate::sync::unfetched_remote_log(repo, &crate::sync::Git::new(repo))
    {
        ui::hint(format_args!(
            "{remote} has an event log that this clone has not fetched; `git spectra fetch {remote}` brings it (`git spectra sync --setup` makes `git fetch` bring it too)"
        ));
    }
}

/// Closes runs whose process died before recording their end (see [`crate::reconcile`]), so the
/// command sees them as interrupted, with their effects.
fn close_interrupted_runs(repo: &Repo, store: &Store) {
    for closed in crate::reconcile::settle(repo, store) {
        let found = match closed.found.as_slice() {
            [] => String::new(),
            commits => format!(
                "; its commits {} are now recorded and can be undone",
                commits
                    .iter()
                    .map(|commit| crate::worktree::short(commit))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        ui::warning(format_args!(
            "run {} was interrupted (its process ended); recorded it as interrupted{found}",
            store
                .short_near_tip(&closed.run)
                .unwrap_or_else(|| closed.run.clone())
        ));
    }
}

/// What a reading command leaves for the next writing one: commits the hook noted, and runs
/// whose process died, each said in one `hint:` line.
fn hint_what_waits(repo: &Repo) {
    if let Some(hint) = waiting_commits_hint(pending::waiting(repo)) {
        ui::hint(hint);
    }
    let interrupted = crate::run_lock::abandoned(&repo.state_dir());
    if let Some(hint) = interrupted_runs_hint(interrupted.iter().map(|run| run.run.as_str())) {
        ui::hint(hint);
    }
}

/// The writing commands a hint names.
const WRITERS: &str = "a run such as `git spectra discover`, `append`, `undo`, `sync`";

fn waiting_commits_hint(count: usize) -> Option<String> {
    let (commits, are, them) = match count {
        0 => return None,
        1 => ("1 commit".to_string(), "is", "it"),
        n => (format!("{n} commits"), "are", "them"),
    };
    Some(format!(
        "{commits} noted by the post-commit hook {are} not in the event log yet; the next command that writes the log ({WRITERS}) records {them}"
    ))
}

fn interrupted_runs_hint<'a>(runs: impl Iterator<Item = &'a str>) -> Option<String> {
    let runs: Vec<&str> = runs.collect();
    let (what, awaits, ended, it) = match runs.as_slice() {
        [] => return None,
        [run] => (format!("run {run}"), "awaits", "its process ended", "it"),
        runs => (
            format!("runs {}", runs.join(", ")),
            "await",
            "their processes ended",
            "them",
        ),
    };
    Some(format!(
        "{what} {awaits} closing ({ended}); the next command that writes the log ({WRITERS}) records {it} as interrupted"
    ))
}

/// A warning naming the first bad event, for a command that shows the log anyway.
fn warn_unless_intact(store: &Store) {
    match store.integrity() {
        Ok(Integrity::Intact { .. }) => {}
        Ok(Integrity::Broken(failure)) => {
            ui::warning(format_args!(
                "the event log fails verification at {failure}"
            ));
            ui::hint(
                "run `git spectra verify` for details; the log is shown as recorded, and no command will act on it",
            );
        }
        // Reading the log goes on: it reports its own errors where it meets them.
        Err(err) => ui::warning(format_args!(
            "cannot check the event log's integrity: {err}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_hint_counts_commits_and_names_the_commands_that_record_them() {
        assert_eq!(waiting_commits_hint(0), None);
        let one = waiting_commits_hint(1).unwrap();
        assert!(
            one.starts_with("1 commit noted by the post-commit hook is not"),
            "{one}"
        );
        assert!(one.contains("git spectra discover"), "{one}");
        let three = waiting_commits_hint(3).unwrap();
        assert!(
            three.starts_with("3 commits noted by the post-commit hook are not"),
            "{three}"
        );
    }

    #[test]
    fn the_interrupted_hint_names_the_runs() {
        assert_eq!(interrupted_runs_hint(std::iter::empty()), None);
        let one = interrupted_runs_hint(["r1"].into_iter()).unwrap();
        assert!(
            one.starts_with("run r1 awaits closing (its process ended)"),
            "{one}"
        );
        let two = interrupted_runs_hint(["r1", "r2"].into_iter()).unwrap();
        assert!(two.starts_with("runs r1, r2 await closing"), "{two}");
        assert!(two.ends_with("records them as interrupted"), "{two}");
    }
}
