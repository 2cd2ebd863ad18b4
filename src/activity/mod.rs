//! The one generic agent loop.
//!
//! A run is a sequence of activities. Each activity: gathers its context (fitted to its token
//! budget) → asks the model for a decision (validated against the registry's schema; every HTTP
//! attempt an `llm.called` event) → runs the playbooks it chose (only those the registry allows)
//! → computes its quality gates from observed facts → records `activity.finished`. Every step is
//! an event; a failure at any step is recorded as that failure and the run goes on to its end.
//! What an activity adds to the loop is chosen by its registry entry, never by its name: the
//! [`rules`] its `behaviour` names (discover's service name, catalog and specification file in
//! [`discover`], the services already specified in the tree in [`existing`]; the test activity's real tests in [`test_run`]), and `external` for playbooks
//! that run in dry-run unless the user passes `--execute` ([`effects`]). Which activities a
//! `run` runs is the [`planner`]'s decision, from the registry's keywords when no model plans.
//!
//! The loop itself: [`run`] (a run), [`step`] (one activity), [`playbooks`] (running what the
//! decision chose), [`decider`] (model or offline rules), [`report`] (what a run reports).
//!
//! Outputs flow between activities through the log: each activity's context holds the latest
//! manifests of the activities before it for the same service, and the service is `--service`,
//! else the one discover chose in this run, else the one the latest discover chose.

mod build_run;
mod commit;
pub mod context;
mod decider;
pub mod discover;
pub mod effects;
pub mod existing;
mod outputs;
pub mod planner;
mod playbooks;
mod recorder;
mod report;
mod rerank;
pub(crate) mod rules;
mod run;
pub mod specification;
mod step;
pub mod test_run;

use std::path::PathBuf;

use crate::registry::Registry;
use crate::repo::Repo;
use crate::store::{Store, StoreError};
use crate::worktree::Worktree;

pub use context::Context;
pub use decider::{Decider, DeciderError};
pub use recorder::Recorder;
pub use report::{
    ActivityError, ActivityReport, Outcome, PLAYBOOK_FAILED, PLAYBOOK_REFUSED, PlaybookSummary,
    RunReport,
};
pub(crate) use run::RunState;
pub(crate) use step::ActivityWork;

/// What the user asked for, beyond the input text.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The service, already normalised and validated.
    pub service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    pub dry_run: bool,
    /// Write files but leave them uncommitted.
    pub no_commit: bool,
    /// Really run the playbooks of activities with external effects (provision, deploy,
    /// monitor); without it they run in dry-run.
    pub execute: bool,
    /// Let discover replace a service's existing specification (an update); without it a name
    /// that already has one is refused ([`existing`]).
    pub update: bool,
    /// Decisions taken from an earlier run instead of being asked for again (`git spectra
    /// rerun --from`), by activity.
    pub reuse: std::collections::BTreeMap<String, Reused>,
    /// The run this one runs again (`git spectra rerun`), recorded as `rerun_of` in
    /// `run.started`.
    pub rerun_of: Option<String>,
    /// A replay's recorded playbook results: every playbook that is not a read-only built-in
    /// is answered from them and never runs ([`crate::playbook::recorded`]).
    pub recorded_playbooks: Option<std::sync::Arc<crate::playbook::recorded::RecordedPlaybooks>>,
}

/// A recorded decision a run takes again instead of asking for it: recorded as its own
/// `decision.made` with `reused_from` naming the original.
#[derive(Debug, Clone)]
pub struct Reused {
    /// The `decision.made` event it comes from.
    pub event: String,
    /// The decision.
    pub decision: serde_json::Value,
    /// How it was made (`llm`, `offline`).
    pub mode: String,
}

/// Hooks for showing progress while a run works.
pub trait Progress {
    /// The model is being asked; show that something is happening.
    fn thinking(&self, _activity: &str) {}
    /// The model is writing its reply (streamed): `tokens` so far, `elapsed` since the request
    /// was sent. Called a few times a second at most.
    fn writing(&self, _activity: &str, _tokens: u64, _elapsed: std::time::Duration) {}
    /// The model answered (or failed).
    fn done_thinking(&self) {}
}

/// No progress display (tests, JSON output).
pub struct Quiet;
impl Progress for Quiet {}

/// Why a run could not even be recorded (the log itself failed). Everything else is recorded
/// as the run's own failure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The log could not be read or appended to.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The named activity is not in the registry.
    #[error("activity `{0}` is not in the registry")]
    UnknownActivity(String),
    /// The repository has no work tree to write results into.
    #[error("this command needs a work tree; {0} is a bare repository")]
    Bare(PathBuf),
    /// The registry could not be loaded.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// A merge, rebase or similar is under way on the user's branch.
    #[error("{} is in progress; git spectra changes nothing on your branch until it is finished", .0.what)]
    OperationInProgress(crate::worktree::Operation),
    /// The marker of the run in progress could not be written.
    #[error("cannot record the run as in progress: {0}")]
    RunLock(std::io::Error),
    /// The timeout the repository sets for an activity's own command is not a duration;
    /// refused before anything was recorded.
    #[error("{activity} runs the repository's own command, and {source}")]
    BadTimeout {
        /// The activity.
        activity: String,
        /// What is wrong (names the key and the value).
        source: crate::playbook::PlaybookError,
    },
    /// An activity that runs the repository's own command was asked for and the command is not
    /// configured; refused before anything was recorded.
    #[error("{activity} runs the repository's own command, and `{key}` is not set")]
    NotConfigured {
        /// The activity.
        activity: String,
        /// The `git config` key to set.
        key: String,
    },
    /// A setting the run reads has a value it cannot use.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Activities that need a model were asked for and no model decides; refused before
    /// anything was recorded.
    #[error(
        "{} {} a model; offline, only {} can run",
        and_list(.needing),
        if .needing.len() == 1 { "needs" } else { "need" },
        and_list(.offline_capable)
    )]
    NeedsModel {
        /// The activities that cannot decide without a model.
        needing: Vec<String>,
        /// The activities that can, in canonical order.
        offline_capable: Vec<String>,
    },
}

/// `spectra.playbooks.offered`: a whole number from 1.
fn playbooks_offered(
    settings: &crate::settings::Layers<'_>,
) -> Result<usize, crate::settings::SettingsError> {
    let key = &crate::settings::keys::PLAYBOOKS_OFFERED;
    let setting = settings.get::<u32>(key)?;
    if setting.value == 0 {
        return Err(crate::settings::SettingsError {
            key: key.git,
            shown: "0".into(),
            origin: setting.source,
            reason: "expected a whole number from 1: a decision is offered at least one playbook"
                .into(),
        });
    }
    Ok(usize::try_from(setting.value).unwrap_or(usize::MAX))
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(names: &[String]) -> String {
    match names {
        [] => "no activity".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl crate::failure::Classify for RunError {
    fn class(&self) -> crate::failure::Class {
        use crate::failure::Class;
        match self {
            RunError::UnknownActivity(_)
            | RunError::Registry(_)
            | RunError::OperationInProgress(_)
            | RunError::NeedsModel { .. }
            | RunError::NotConfigured { .. } => Class::Failed,
            // As git does for a bad config value.
            RunError::Store(_)
            | RunError::Bare(_)
            | RunError::RunLock(_)
            | RunError::BadTimeout { .. }
            | RunError::Settings(_) => Class::Fatal,
        }
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
}

impl RunError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Store(error) => error.hint(),
            RunError::OperationInProgress(operation) => Some(format!(
                "{}, then run the same command again (or pass --dry-run to see what it would do)",
                operation.how_to_finish
            )),
            RunError::RunLock(_) => Some("check that `.git/spectra` is writable".into()),
            RunError::Settings(_) => {
                Some("fix or unset the value at the place named above (docs/config.md)".into())
            }
            RunError::NotConfigured { key, .. } => Some(format!(
                "set it to the command (argv words split on spaces, no shell): `git config {key} '...'` (docs/config.md)"
            )),
            RunError::BadTimeout { .. } => Some(
                "set it to a duration such as `90s` or `10m`, or unset it for the default \
                 (docs/config.md)"
                    .into(),
            ),
            RunError::NeedsModel { .. } => Some(
                "configure a model: `git config spectra.llm.url <endpoint>` (or SPECTRA_LLM_URL), \
                 then `git spectra doctor` checks it (docs/config.md)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Everything a run needs.
pub struct Engine<'a> {
    /// The repository the run works in.
    pub repo: &'a Repo,
    /// The log the run appends to.
    pub store: &'a Store,
    /// The activities and playbooks the run may use.
    pub registry: &'a Registry,
    /// Who makes the decisions.
    pub decider: Decider,
    /// How the run was asked for (dry run and the like).
    pub options: RunOptions,
    /// Where progress is shown.
    pub progress: &'a dyn Progress,
    root: PathBuf,
    /// The settings' secrets, scrubbed from every event the run records.
    scrubber: crate::llm::scrub::Scrubber,
    /// `spectra.playbooks.offered`: the most playbooks one decision is offered.
    playbooks_offered: usize,
    /// `spectra.playbooks.rerank`: whether a model re-ranks a longer lexical shortlist.
    playbooks_rerank: bool,
    /// The cache directory under the git dir (the playbooks' ranking index).
    cache_dir: PathBuf,
}

impl<'a> Engine<'a> {
    /// An engine for a repository with a work tree; fails on a bare repository.
    pub fn new(
        repo: &'a Repo,
        store: &'a Store,
        registry: &'a Registry,
        decider: Decider,
        options: RunOptions,
        progress: &'a dyn Progress,
    ) -> Result<Engine<'a>, RunError> {
        let root = repo
            .work_tree()
            .ok_or_else(|| RunError::Bare(repo.git_dir().to_path_buf()))?
            .to_path_buf();
        let settings = crate::settings::Layers::from_process(|name| repo.config_string(name));
        let playbooks_offered = playbooks_offered(&settings)?;
        let playbooks_rerank = settings
            .get::<bool>(&crate::settings::keys::PLAYBOOKS_RERANK)?
            .value;
        Ok(Engine {
            repo,
            store,
            registry,
            decider,
            options,
            progress,
            root,
            scrubber: crate::llm::scrub::Scrubber::for_repo(repo),
            playbooks_offered,
            playbooks_rerank,
            cache_dir: crate::tip_cache::dir(repo),
        })
    }

    /// How many playbooks a decision of `activity` may be offered, how many the lexical
    /// ranking keeps for a model to re-rank, and where the ranking index is cached.
    pub(crate) fn offering(&self, activity: &str) -> context::Offering<'_> {
        let limit = self.playbooks_offered;
        let shortlist = if self.reranks_playbooks(activity) {
            limit.saturating_mul(crate::registry::rank::SHORTLIST_FACTOR)
        } else {
            limit
        };
        context::Offering {
            limit,
            shortlist,
            cache_dir: Some(&self.cache_dir),
        }
    }

    /// Whether a model re-ranks the playbooks `activity` is offered: when it is asked to, and a
    /// model will make this activity's decision (not the offline rules, not a reused decision).
    fn reranks_playbooks(&self, activity: &str) -> bool {
        self.playbooks_rerank
            && matches!(self.decider, Decider::Model(_))
            && !self.options.reuse.contains_key(activity)
    }

    pub(crate) fn worktree(&self) -> Worktree {
        Worktree::new(&self.root).with_repo(self.repo.gix().clone())
    }

    pub(crate) fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Refuses, before anything is recorded, to run activities that need a model when no model
    /// decides (offline). `left_out` names what the planner already left out for that reason:
    /// when nothing is left to run, those are what needed a model.
    pub fn check_decidable(
        &self,
        activities: &[String],
        left_out: &[String],
    ) -> Result<(), RunError> {
        if !matches!(self.decider, Decider::Offline { .. }) {
            return Ok(());
        }
        let mut needing: Vec<String> = activities
            .iter()
            // A decision taken from an earlier run needs no model.
            .filter(|name| !self.options.reuse.contains_key(*name))
            .filter(|name| {
                self.registry
                    .activity(name)
                    .is_some_and(|definition| !rules::of(definition).decides_offline())
            })
            .cloned()
            .collect();
        if activities.is_empty() {
            needing.extend(left_out.iter().cloned());
        }
        if needing.is_empty() {
            return Ok(());
        }
        Err(RunError::NeedsModel {
            needing,
            offline_capable: rules::offline_capable(self.registry)
                .map(str::to_string)
                .collect(),
        })
    }
}
