//! Undo and redo: reverting earlier events by appending new ones.
//!
//! Nothing is ever rewritten. An undo picks its targets (the newest run not already undone, a
//! run named by id or prefix, or one event), plans the effects to reverse in reverse order of
//! the run (compensating playbooks the registry declares, and `git revert` of the commits the
//! run made on the user's branch), refuses when it must, carries the plan out, and appends one
//! `events.reverted` naming every target; projections then skip those events. A redo cancels
//! the newest undo with an `events.restored`, reverting its reverts and running its compensated
//! playbooks again. Undoing an undo is a redo, as in `jj undo`.
//!
//! - [`history`]: the log as undo reads it, and what "depends on" means.
//! - [`plan`]: the steps and the reasons to refuse; a dry run stops there.
//! - [`apply`]: carrying a plan out and recording it.

mod apply;
mod history;
mod plan;

use std::path::PathBuf;

pub use apply::{Applied, apply, describe_done};
pub use history::{Dependent, History};
pub use plan::{Blockers, Direction, Irreversible, Plan, Step};

use crate::event::{Event, kind};
use crate::playbook::{PlaybookError, Runner};
use crate::registry::Registry;
use crate::repo::Repo;
use crate::store::{Named, Store, StoreError};
use crate::worktree::{Operation, Worktree, WorktreeError, operation_in_progress};

/// What undo works with: the log, the registry (for compensations), the user's work tree and
/// the repository's state folder (which runs are still in progress).
pub struct Context<'a> {
    /// The log.
    pub store: &'a Store,
    /// The registry, for the playbooks' undo argv.
    pub registry: &'a Registry,
    /// The user's work tree, where commits are reverted.
    pub worktree: Worktree,
    /// `<git dir>/spectra`: run locks and the effect lock.
    pub state_dir: PathBuf,
    /// The repository's git dir.
    pub git_dir: PathBuf,
    /// The merge, rebase... the user has in progress, during which nothing is reverted.
    pub operation: Option<Operation>,
    /// The settings' secrets, scrubbed from every event the undo records.
    pub scrubber: crate::llm::scrub::Scrubber,
}

impl<'a> Context<'a> {
    /// Undo's view of `repo`; `None` in a bare repository.
    pub fn new(store: &'a Store, registry: &'a Registry, repo: &Repo) -> Option<Self> {
        let root = repo.work_tree()?;
        Some(Context {
            store,
            registry,
            worktree: Worktree::new(root),
            state_dir: repo.state_dir(),
            git_dir: repo.git_dir().to_path_buf(),
            operation: operation_in_progress(repo.gix()),
            scrubber: crate::llm::scrub::Scrubber::for_repo(repo),
        })
    }

    fn runner(&self) -> Result<Runner<'a>, PlaybookError> {
        Runner::new(self.registry, self.worktree.root())
    }
}

/// Why an undo or redo was refused or failed. Every refusal happens before anything changes.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// Every run is already undone, or none was recorded.
    #[error("nothing to undo: every run is already undone (or none was recorded)")]
    NothingToUndo,
    /// No undo is in effect.
    #[error("nothing to redo: no undo is in effect")]
    NothingToRedo,
    /// The id or prefix given names nothing in the log.
    #[error("`{0}` names no run and no event")]
    NotFound(String),
    /// What was named is already undone.
    #[error("{what} is already undone (by {undo})")]
    AlreadyUndone {
        /// The run or event named.
        what: String,
        /// The `events.reverted` event that undid it.
        undo: String,
    },
    /// The undo named was already redone.
    #[error("undo {0} was already redone")]
    AlreadyRedone(String),
    /// The event named was written by an undo or redo.
    #[error("event {id} ({kind}) was recorded by an undo or redo; undo that operation instead")]
    PartOfUndo {
        /// The event.
        id: String,
        /// Its kind.
        kind: String,
    },
    /// Some effects are declared irreversible.
    #[error("cannot undo: these effects are declared irreversible (`reversible: false`):\n{}", indent(.playbooks))]
    Irreversible {
        /// The irreversible playbook runs.
        playbooks: Vec<String>,
    },
    /// Later work depends on what would be undone (`--force` overrides).
    #[error("cannot undo: later work depends on it:\n{}", indent(.dependents))]
    Dependents {
        /// What depends on it, one line each.
        dependents: Vec<String>,
    },
    /// Playbooks with an undo never finished, so their effect is unknown.
    #[error(
        "cannot undo: these playbooks never finished, so whether they had their effect is unknown:\n{}",
        indent(.playbooks)
    )]
    Unfinished {
        /// One line each: the playbook, its event and how it ended.
        playbooks: Vec<String>,
    },
    /// Files a revert would touch have uncommitted changes.
    #[error("cannot revert: these files have uncommitted changes:\n{}", indent(.paths))]
    Dirty {
        /// The changed files.
        paths: Vec<String>,
    },
    /// The index differs from HEAD.
    #[error("cannot revert while changes are staged (git revert needs an index that matches HEAD):\n{}", indent(.paths))]
    Staged {
        /// The staged files.
        paths: Vec<String>,
    },
    /// Commits to revert are not on the checked-out branch.
    #[error("cannot revert: these commits are not on the checked-out branch:\n{}", indent(.commits))]
    OffBranch {
        /// The commits.
        commits: Vec<String>,
    },
    /// Commits to revert lack the trailers that prove the run made them.
    #[error("cannot revert: these commits do not prove they belong to the run:\n{}", indent(.commits))]
    Unproven {
        /// The commits.
        commits: Vec<String>,
    },
    /// A run concerned is still being carried out.
    #[error("cannot undo: {} still in progress:\n{}", if .runs.len() == 1 { "this run is" } else { "these runs are" }, indent(.runs))]
    InProgress {
        /// The runs.
        runs: Vec<String>,
    },
    /// A merge, rebase or similar is under way.
    #[error("cannot revert while {what} is in progress")]
    OperationInProgress {
        /// What is in progress, e.g. `a rebase`.
        what: &'static str,
        /// How the user finishes or abandons it.
        how_to_finish: &'static str,
    },
    /// The undo's own run could not be marked as in progress.
    #[error("cannot record the undo's run: {0}")]
    RunLock(std::io::Error),
    /// A compensating playbook cannot be prepared as recorded.
    #[error("cannot prepare a compensating playbook:\n{}", indent(.reasons))]
    Unpreparable {
        /// Why, one line per playbook.
        reasons: Vec<String>,
    },
    /// A step failed part way; the steps before it stay done.
    #[error("{} stopped at `{step}`: {reason}{}", direction_word(*.direction), done_list(.done))]
    StepFailed {
        /// Undo or redo.
        direction: Direction,
        /// The step that failed.
        step: String,
        /// Why it failed.
        reason: String,
        /// The steps done before it, which stay done.
        done: Vec<String>,
        /// The `undo.failed` event recording it, when anything had happened.
        recorded: Option<String>,
    },
    /// The repository has no work tree.
    #[error("this command needs a work tree; this is a bare repository")]
    Bare,
    /// A git command on the work tree failed.
    #[error(transparent)]
    Git(#[from] WorktreeError),
    /// The log could not be read or appended to.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UndoError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            UndoError::NothingToUndo => "`git spectra runs` lists the runs and marks undone ones".into(),
            UndoError::NothingToRedo => "`git spectra log --kind events.reverted` lists undos".into(),
            UndoError::NotFound(_) => {
                "give a run id from `git spectra runs` or an event id from `git spectra log` (unique prefixes work)".into()
            }
            UndoError::AlreadyUndone { .. } => "`git spectra redo` restores the newest undo".into(),
            UndoError::AlreadyRedone(_) => "run `git spectra undo` with the run id to undo it again".into(),
            UndoError::PartOfUndo { .. } => {
                "`git spectra redo` undoes the newest undo; `git spectra undo UNDO-EVENT-ID` a given one".into()
            }
            UndoError::Irreversible { .. } => {
                "an irreversible effect cannot be undone, and --force does not change that; make a new change by hand instead".into()
            }
            UndoError::Dependents { .. } => {
                "undo the later work first, or pass --force to undo this anyway".into()
            }
            UndoError::Unfinished { .. } => {
                "check by hand whether it happened; pass --force to run its undo anyway (a deploy's rollback command, for one), or leave the effect and make a new change".into()
            }
            UndoError::Dirty { .. } | UndoError::Staged { .. } => {
                "commit or stash your changes (`git stash`), then run the undo again".into()
            }
            UndoError::OffBranch { .. } => {
                "check out the branch the run committed to, then run the undo again".into()
            }
            UndoError::Unproven { .. } => {
                "a commit is reverted only when its own Spectra-Run and Spectra-Event trailers name the run and event; `git spectra verify` checks the log, and `git show COMMIT` shows the commit".into()
            }
            UndoError::InProgress { .. } => {
                "wait for it to finish, or stop it (Ctrl-C); a stopped run is closed by the next command that writes the log (this one, run again) and can then be undone".into()
            }
            UndoError::OperationInProgress { how_to_finish, .. } => {
                format!("{how_to_finish}, then run the undo again")
            }
            UndoError::RunLock(_) => {
                "check that `.git/spectra` is writable".into()
            }
            UndoError::Unpreparable { .. } => {
                "`git spectra registry show PLAYBOOK` shows its current definition".into()
            }
            UndoError::StepFailed { recorded, done, .. } => match recorded {
                Some(id) if done.is_empty() => format!(
                    "nothing was changed (event {id} records the attempt); fix the cause and run the same command again"
                ),
                Some(id) => format!(
                    "what was done stays done and is recorded in event {id}; fix the cause and run the same command again to finish (done steps are skipped)"
                ),
                None => "nothing was changed; fix the cause and run the same command again".into(),
            },
            UndoError::Git(WorktreeError::RevertConflict { .. }) => {
                "undo the later changes to those files first, or revert by hand".into()
            }
            UndoError::Store(error) => return error.hint(),
            UndoError::Bare | UndoError::Git(_) => return None,
        })
    }
}

impl crate::failure::Classify for UndoError {
    fn class(&self) -> crate::failure::Class {
        match self {
            UndoError::Store(error) => crate::failure::Classify::class(error),
            _ => crate::failure::Class::Failed,
        }
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Undo => "undo",
        Direction::Redo => "redo",
    }
}

fn done_list(done: &[String]) -> String {
    if done.is_empty() {
        "\nnothing had been done before it".into()
    } else {
        format!("\ndone before it (and kept):\n{}", indent(done))
    }
}

/// What the user asked to undo.
enum Selection {
    /// Every live event of a run.
    Run(String),
    /// One event.
    Event(String),
    /// An undo, which undoing cancels (a redo).
    Undo(String),
    /// A redo, which undoing reverts again what it restored.
    Redo(String),
}

/// The plan for `git spectra undo [target]`.
pub fn plan_undo(
    context: &Context<'_>,
    target: Option<&str>,
    forced: bool,
) -> Result<Plan, UndoError> {
    context.store.require_intact()?;
    let history = History::load(context.store)?;
    let selection = match target {
        None => Selection::Run(history.latest_live_run().ok_or(UndoError::NothingToUndo)?),
        Some(text) => select(context.store, &history, text)?,
    };
    match selection {
        Selection::Run(run) => plan_run(context, &history, &run, forced),
        Selection::Event(id) => plan_event(context, &history, &id, forced),
        Selection::Undo(id) => plan_redo_of(context, &history, &id),
        Selection::Redo(id) => plan_undo_of_redo(context, &history, &id, forced),
    }
}

/// The plan for `git spectra redo`: cancel the newest undo in effect.
pub fn plan_redo(context: &Context<'_>) -> Result<Plan, UndoError> {
    context.store.require_intact()?;
    let history = History::load(context.store)?;
    let undo = history
        .latest_active_undo()
        .ok_or(UndoError::NothingToRedo)?;
    plan::redo(context, &history, undo)
}

/// Resolves the argument as every command does ([`crate::store::Ids::resolve`]): a run (by its
/// id, a prefix, or its first event's name, which is what `git spectra runs` prints), else one
/// event.
fn select(store: &Store, history: &History, text: &str) -> Result<Selection, UndoError> {
    let ids = store.ids()?;
    match ids.resolve(text) {
        Ok(Named::Run(run)) => classify_run(history, &run),
        Ok(Named::Event(commit)) => {
            let id = ids.event_at(&commit).map(|event| event.id.as_str());
            match id.and_then(|id| history.event(id)) {
                Some(event) => classify(history, event),
                None => Err(UndoError::NotFound(text.to_string())),
            }
        }
        Err(StoreError::NotFound(_)) => Err(UndoError::NotFound(text.to_string())),
        Err(error) => Err(error.into()),
    }
}

/// A run id: the run itself, or the undo or redo it is the run of.
fn classify_run(history: &History, run: &str) -> Result<Selection, UndoError> {
    if history.is_machinery_run(run) {
        let record = history.run_events(run).into_iter().rev().find(|event| {
            event.kind == kind::EVENTS_REVERTED || event.kind == kind::EVENTS_RESTORED
        });
        return match record {
            Some(event) => classify(history, event),
            None => Err(UndoError::PartOfUndo {
                id: run.to_string(),
                kind: "run of an undo that did not finish".into(),
            }),
        };
    }
    Ok(Selection::Run(run.to_string()))
}

fn classify(history: &History, event: &Event) -> Result<Selection, UndoError> {
    match event.kind.as_str() {
        kind::EVENTS_REVERTED => Ok(Selection::Undo(event.id.clone())),
        kind::EVENTS_RESTORED => Ok(Selection::Redo(event.id.clone())),
        _ if history.is_machinery(event) => Err(UndoError::PartOfUndo {
            id: event.id.clone(),
            kind: event.kind.clone(),
        }),
        _ => Ok(Selection::Event(event.id.clone())),
    }
}

fn plan_run(
    context: &Context<'_>,
    history: &History,
    run: &str,
    forced: bool,
) -> Result<Plan, UndoError> {
    let events = history.run_events(run);
    let live: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|event| !history.is_reverted(&event.id))
        .collect();
    if live.is_empty() {
        return Err(UndoError::AlreadyUndone {
            what: format!("run {run}"),
            undo: undo_naming(history, &events[0].id),
        });
    }
    let description = describe_run(history, run, live.len());
    plan::undo(context, history, description, &live, forced)
}

fn plan_event(
    context: &Context<'_>,
    history: &History,
    id: &str,
    forced: bool,
) -> Result<Plan, UndoError> {
    let event = history
        .event(id)
        .ok_or_else(|| UndoError::NotFound(id.to_string()))?;
    if history.is_reverted(id) {
        return Err(UndoError::AlreadyUndone {
            what: format!("event {id}"),
            undo: undo_naming(history, id),
        });
    }
    let description = format!("event {id} ({})", event.kind);
    plan::undo(context, history, description, &[event], forced)
}

/// Undoing an undo is a redo of it.
fn plan_redo_of(context: &Context<'_>, history: &History, id: &str) -> Result<Plan, UndoError> {
    if history.projection().is_restored(id) {
        return Err(UndoError::AlreadyRedone(id.to_string()));
    }
    let undo = history
        .event(id)
        .ok_or_else(|| UndoError::NotFound(id.to_string()))?;
    plan::redo(context, history, undo)
}

/// Undoing a redo reverts again what the undo it cancelled had reverted.
fn plan_undo_of_redo(
    context: &Context<'_>,
    history: &History,
    id: &str,
    forced: bool,
) -> Result<Plan, UndoError> {
    let redo = history
        .event(id)
        .ok_or_else(|| UndoError::NotFound(id.to_string()))?;
    let targets: Vec<&Event> = plan::string_list(&redo.payload["targets"])
        .iter()
        .filter_map(|undo| history.event(undo))
        .flat_map(|undo| plan::string_list(&undo.payload["targets"]))
        .filter_map(|target| history.event(&target))
        .filter(|event| !history.is_reverted(&event.id))
        .collect();
    if targets.is_empty() {
        return Err(UndoError::AlreadyUndone {
            what: format!("what redo {id} restored"),
            undo: "a later undo".into(),
        });
    }
    let description = format!("what redo {id} restored ({} events)", targets.len());
    plan::undo(context, history, description, &targets, forced)
}

/// The active undo that reverts `id`, for messages.
fn undo_naming(history: &History, id: &str) -> String {
    history
        .events()
        .iter()
        .rev()
        .find(|event| {
            event.kind == kind::EVENTS_REVERTED
                && !history.projection().is_restored(&event.id)
                && plan::string_list(&event.payload["targets"])
                    .iter()
                    .any(|t| t == id)
        })
        .map_or_else(
            || "an earlier undo".into(),
            |event| format!("event {}", event.id),
        )
}

/// `run 0193… (discover "idea" for logging, 9 events)`.
fn describe_run(history: &History, run: &str, live: usize) -> String {
    let record = history.projection().run(run);
    let command = record
        .and_then(|r| r.command.clone())
        .unwrap_or_else(|| "events".into());
    let input = record
        .and_then(|r| r.input.clone())
        .map(|input| format!(" \"{}\"", first_words(&input)))
        .unwrap_or_default();
    let services: Vec<String> = record
        .map(|r| {
            r.activities
                .iter()
                .filter_map(|a| a.service.clone())
                .collect()
        })
        .unwrap_or_default();
    let service = match services.first() {
        Some(service) => format!(" for {service}"),
        None => String::new(),
    };
    format!("run {run} ({command}{input}{service}, {live} events)")
}

fn first_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    words.join(" ")
}
