//! Git hooks: how git spectra sees the commits made around it.
//!
//! `git spectra hooks install` puts a tiny POSIX shell shim (`hooks/post-commit`, embedded in the
//! binary) where `git rev-parse --git-path hooks` points, as a marked block inside any hook that
//! is already there ([`install`]). On every commit the shim notes the commit with shell builtins
//! and starts `git-spectra hook record-noted` in the background ([`pending`]); where it cannot
//! note it, it runs `git-spectra hook post-commit` in the foreground. Either records one
//! `commit.observed` event per commit ([`observe`]) and, when a commit changed a specification,
//! starts the activities named in `spectra.hooks.onSpecChange` in the background ([`trigger`]).
//!
//! All of this runs beside the user's `git commit`, so it must be fast and must never fail the
//! commit: it opens the repository, reads each commit and two trees, appends the events and maybe
//! starts one detached process. No registry, no LLM, no async runtime. Every error becomes one
//! `warning:` line on stderr and a line in the hooks log; the hook still exits 0.

pub mod install;
pub mod observe;
pub mod pending;
pub mod trigger;

use std::path::PathBuf;

use crate::repo::Repo;
use crate::store::{Store, StoreError};

pub use install::{HookFile, InstallOutcome, UninstallOutcome};
pub use observe::{ObservedCommit, SpectraChange};
pub use trigger::{SpecTrigger, hooks_log_path};

/// How long the hook keeps retrying a busy event log before it gives up with a warning: other
/// writers hold the ref lock for an instant, so only a stale `events.lock` takes this long.
const APPEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// The environment variable that turns the hooks off when set to `0` (or `false`, `no`, `off`).
pub const ENV_SWITCH: &str = crate::settings::keys::HOOKS_ENABLED.env[0];

/// `git config` keys that shape what the hook does.
pub mod keys {
    /// `false` turns the hook off for this repository (default `true`).
    pub const ENABLED: &str = crate::settings::keys::HOOKS_ENABLED.git;
    /// Activities to start in the background when a commit changes a specification.
    pub const ON_SPEC_CHANGE: &str = crate::settings::keys::HOOKS_ON_SPEC_CHANGE.git;
}

/// Why a hook could not be installed, removed, inspected or run.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `git rev-parse --git-path hooks` failed or could not be started.
    #[error("cannot find where git runs hooks: {0}")]
    HooksDir(String),
    /// Reading or writing a hook file (or the hooks log) failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `cannot read`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The existing hook is not something we can safely add a shell block to.
    #[error("will not change {path}: {reason}")]
    Unsupported {
        /// The hook file.
        path: PathBuf,
        /// Why it cannot be changed.
        reason: String,
    },
    /// The commit the hook was called for could not be read.
    #[error("cannot read the commit: {0}")]
    Commit(String),
    /// The event could not be appended.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository could not be opened.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
}

impl HookError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            HookError::Unsupported { .. } => Some(
                "add the line `git-spectra hook post-commit || :` to that hook yourself; `git spectra hooks status` then reports it as installed by hand".into(),
            ),
            HookError::Store(err) => err.hint(),
            _ => None,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HookError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl crate::failure::Classify for HookError {
    fn class(&self) -> crate::failure::Class {
        match self {
            // An existing hook we will not edit is a refusal, like a failed check; the rest
            // (no hooks directory, unreadable files) is fatal, as in git.
            HookError::Unsupported { .. } => crate::failure::Class::Failed,
            _ => crate::failure::Class::Fatal,
        }
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
}

/// Whether `SPECTRA_HOOKS` leaves the hooks on (anything but a false value, or unset).
pub fn enabled_by_env() -> bool {
    // An empty variable counts as unset, as for every other setting.
    match std::env::var(ENV_SWITCH) {
        Ok(value) if !value.trim().is_empty() => crate::repo::parse_git_bool(&value) != Some(false),
        _ => true,
    }
}

/// Whether `spectra.hooks.enabled` leaves the hooks on in `repo` (default: yes).
pub fn enabled_by_config(repo: &Repo) -> bool {
    repo.config_bool(keys::ENABLED).unwrap_or(true)
}

/// The activities `spectra.hooks.onSpecChange` names, in order (comma or space separated).
pub fn on_spec_change(repo: &Repo) -> Vec<String> {
    let layers = crate::settings::Layers::from_process(|key| repo.config_string(key));
    let (raw, _) = layers.raw(&crate::settings::keys::HOOKS_ON_SPEC_CHANGE);
    parse_activity_list(&raw)
}

fn parse_activity_list(raw: &str) -> Vec<String> {
    let mut activities: Vec<String> = Vec::new();
    for name in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        if !name.is_empty() && !activities.iter().any(|seen| seen == name) {
            activities.push(name.to_string());
        }
    }
    activities
}

/// What recording the commit at `HEAD` came to.
#[derive(Debug)]
pub enum Recorded {
    /// The commit carries a `Spectra-Run` trailer: the tool made it and its run records it.
    MadeBySpectra(ObservedCommit),
    /// `commit.observed` was appended with this event id.
    Observed {
        /// The commit's facts.
        commit: ObservedCommit,
        /// The id of the `commit.observed` event.
        event_id: String,
    },
}

/// Appends `commit.observed` for the commit `HEAD` now points at, unless the tool made it.
/// The caller checks that the hooks are enabled, and starts triggers afterwards
/// ([`trigger::start_for_commit`]).
pub fn record_head(repo: &Repo) -> Result<Recorded, HookError> {
    let commit = observe::observe_head(repo)?;
    if commit.made_by_spectra {
        return Ok(Recorded::MadeBySpectra(commit));
    }
    let stored = Store::new(repo)
        .with_append_deadline(APPEND_DEADLINE)
        .append(commit.to_event())?;
    Ok(Recorded::Observed {
        commit,
        event_id: stored.event.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_lists_split_on_commas_and_spaces() {
        assert_eq!(
            parse_activity_list(" discover, plan  design,,plan"),
            vec!["discover", "plan", "design"]
        );
        assert!(parse_activity_list("").is_empty());
    }
}
