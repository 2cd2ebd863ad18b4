//! Planning: from the targets of an undo (or the undo a redo cancels) to the ordered steps that
//! would carry it out, and everything that stands in the way. A plan changes nothing; `--dry-run`
//! prints it, and [`super::apply`] carries it out only when [`Plan::refusal`] has no objection.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::history::{Dependent, History};
use super::{Context, UndoError};
use crate::event::payload::PlaybookFinished;
use crate::event::{Event, Outcome, kind};
use crate::playbook::{Action, Request};

/// Whether a plan reverts events or restores what an undo reverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Revert events.
    Undo,
    /// Restore what an undo reverted.
    Redo,
}

/// One effect to undo (or redo), in the order it will happen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `git revert` a commit on the user's branch.
    Revert {
        /// The commit to revert (for a redo: the revert commit to revert again).
        commit: String,
        /// Its subject line.
        subject: String,
        /// The paths it changed: the revert touches exactly these.
        files: Vec<String>,
        /// The event the revert answers for: the `files.committed` an undo reverts, or the
        /// `events.reverted` a redo cancels. Written as the revert's `Spectra-Reverts` trailer.
        event: String,
        /// For a redo: the original commit this re-applies.
        reapplies: Option<String>,
        /// Set when an earlier undo that stopped part way already made this revert.
        already_done_as: Option<String>,
    },
    /// Run a playbook's `undo` argv (a compensation) or, for a redo, its `run` argv again.
    Playbook {
        /// `undo` for a compensation, `run` for a redo.
        action: Action,
        /// The playbook's id.
        playbook: String,
        /// The activity that ran it.
        activity: String,
        /// The service it worked on, if any.
        service: Option<String>,
        /// The inputs it was given, given again.
        inputs: Value,
        /// What would run.
        argv: Vec<String>,
        /// The `playbook.started` event whose effect this answers for.
        source: String,
        /// Set when an earlier undo that stopped part way already ran it successfully.
        already_done: bool,
    },
}

impl Step {
    /// One line for people: what this step does.
    pub fn describe(&self) -> String {
        match self {
            Step::Revert {
                commit,
                subject,
                reapplies,
                ..
            } => match reapplies {
                Some(original) => format!(
                    "revert {} \"{subject}\" (re-applies {})",
                    short(commit),
                    short(original)
                ),
                None => format!("revert commit {} \"{subject}\"", short(commit)),
            },
            Step::Playbook {
                action,
                playbook,
                argv,
                ..
            } => {
                let what = match action {
                    Action::Undo => "compensate",
                    Action::Run => "run again",
                };
                format!(
                    "{what}: playbook {playbook}: {}",
                    crate::playbook::quoted_argv(argv)
                )
            }
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Step::Revert {
                already_done_as, ..
            } => already_done_as.is_some(),
            Step::Playbook { already_done, .. } => *already_done,
        }
    }
}

/// An effect that cannot be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Irreversible {
    /// The `playbook.started` event.
    pub event: String,
    /// The playbook's id.
    pub playbook: String,
}

/// Everything that stands in the way of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blockers {
    /// Playbooks the registry declares `reversible: false` (no `--force` overrides this).
    pub irreversible: Vec<Irreversible>,
    /// What depends on the targets (`--force` overrides this).
    pub dependents: Vec<Dependent>,
    /// Paths a revert would touch that have uncommitted changes.
    pub dirty: Vec<String>,
    /// Paths staged in the index (`git revert` needs an index that matches HEAD).
    pub staged: Vec<String>,
    /// Commits to revert that are not on the checked-out branch.
    pub off_branch: Vec<String>,
    /// Compensations that cannot even be prepared (the playbook changed or went away).
    pub unpreparable: Vec<String>,
    /// Commits an event names that do not prove, by their own trailers, that the run made
    /// them (no `--force` overrides this).
    pub unproven: Vec<String>,
    /// Target runs whose process is still working on them.
    pub in_progress: Vec<String>,
    /// Playbooks with an undo whose run never finished (interrupted, killed, timed out), so
    /// whether their effect happened is unknown: `--force` runs their undo anyway.
    pub unfinished: Vec<String>,
}

/// What an undo or redo would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Undo or redo.
    pub direction: Direction,
    /// What is being undone or redone, for people.
    pub description: String,
    /// The event ids the undo reverts, or (redo) the `events.reverted` id it cancels.
    pub targets: Vec<String>,
    /// The runs concerned.
    pub runs: Vec<String>,
    /// The effects, in the order they will be undone or redone.
    pub steps: Vec<Step>,
    /// Things worth knowing that change nothing (playbooks with nothing to compensate...).
    pub notes: Vec<String>,
    /// What stops the plan, if anything.
    pub blockers: Blockers,
    /// Set by `--force`: dependents do not stop the plan.
    pub forced: bool,
    /// The merge, rebase... in progress that stops any revert.
    #[serde(skip)]
    pub operation: Option<crate::worktree::Operation>,
}

impl Plan {
    /// Why this plan may not be carried out, if it may not. Irreversible effects and a work
    /// tree git cannot revert in always refuse; dependents refuse unless `--force` was given.
    pub fn refusal(&self) -> Option<UndoError> {
        let blockers = &self.blockers;
        if !blockers.in_progress.is_empty() {
            return Some(UndoError::InProgress {
                runs: blockers.in_progress.clone(),
            });
        }
        if !blockers.unproven.is_empty() {
            return Some(UndoError::Unproven {
                commits: blockers.unproven.clone(),
            });
        }
        if !blockers.irreversible.is_empty() {
            return Some(UndoError::Irreversible {
                playbooks: blockers
                    .irreversible
                    .iter()
                    .map(|i| format!("{} (event {})", i.playbook, i.event))
                    .collect(),
            });
        }
        if let Some(operation) = self.operation {
            return Some(UndoError::OperationInProgress {
                what: operation.what,
                how_to_finish: operation.how_to_finish,
            });
        }
        if !blockers.dirty.is_empty() {
            return Some(UndoError::Dirty {
                paths: blockers.dirty.clone(),
            });
        }
        if !blockers.staged.is_empty() {
            return Some(UndoError::Staged {
                paths: blockers.staged.clone(),
            });
        }
        if !blockers.off_branch.is_empty() {
            return Some(UndoError::OffBranch {
                commits: blockers.off_branch.clone(),
            });
        }
        if !blockers.unpreparable.is_empty() {
            return Some(UndoError::Unpreparable {
                reasons: blockers.unpreparable.clone(),
            });
        }
        if !blockers.unfinished.is_empty() && !self.forced {
            return Some(UndoError::Unfinished {
                playbooks: blockers.unfinished.clone(),
            });
        }
        if !blockers.dependents.is_empty() && !self.forced {
            return Some(UndoError::Dependents {
                dependents: blockers.dependents.iter().map(|d| d.why.clone()).collect(),
            });
        }
        None
    }

    /// The steps still to do (those an unfinished earlier undo did are skipped).
    pub fn pending_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|step| !step.is_done())
    }
}

/// Moves the steps of playbooks that record what the others did (`undo_last`: a release tag)
/// after the others, keeping every other order: an undo then deletes the tag only once the
/// rollback succeeded (a failed rollback stops the undo with the release still tagged), and a
/// redo tags again only once it deployed again.
fn records_last(context: &Context<'_>, steps: &mut [Step]) {
    let last = |step: &Step| match step {
        Step::Playbook { playbook, .. } => context
            .registry
            .playbook(playbook)
            .is_some_and(|playbook| playbook.undo_last),
        Step::Revert { .. } => false,
    };
    steps.sort_by_key(last);
}

/// The plan to revert `targets` (live events, oldest first).
pub(super) fn undo(
    context: &Context<'_>,
    history: &History,
    description: String,
    targets: &[&Event],
    forced: bool,
) -> Result<Plan, UndoError> {
    let mut plan = Plan {
        direction: Direction::Undo,
        description,
        targets: targets.iter().map(|event| event.id.clone()).collect(),
        runs: distinct_runs(targets),
        steps: Vec::new(),
        notes: Vec::new(),
        blockers: Blockers::default(),
        forced,
        operation: None,
    };
    // Effects are undone in reverse order of the run.
    for event in targets.iter().rev() {
        match event.kind.as_str() {
            kind::FILES_COMMITTED => add_revert(context, &mut plan, event)?,
            kind::PLAYBOOK_STARTED => add_compensation(context, history, &mut plan, event),
            _ => {}
        }
    }
    records_last(context, &mut plan.steps);
    plan.blockers.dependents = history.dependents(targets);
    plan.blockers.in_progress = runs_in_progress(context, &plan.runs);
    mark_already_done(context, history, &mut plan)?;
    check_work_tree(context, &mut plan)?;
    Ok(plan)
}

/// Those of `runs` whose process is still working on them: undoing half a run would leave
/// the rest of it to land afterwards.
fn runs_in_progress(context: &Context<'_>, runs: &[String]) -> Vec<String> {
    runs.iter()
        .filter_map(
            |run| match crate::run_lock::liveness(&context.state_dir, run) {
                crate::run_lock::Liveness::Running { pid: Some(pid) } => {
                    Some(format!("run {run} (process {pid})"))
                }
                crate::run_lock::Liveness::Running { pid: None } => Some(format!("run {run}")),
                _ => None,
            },
        )
        .collect()
}

/// The plan to cancel the undo `undo` (an `events.reverted`): its steps backwards, each
/// inverted.
pub(super) fn redo(
    context: &Context<'_>,
    history: &History,
    undo: &Event,
) -> Result<Plan, UndoError> {
    let mut plan = Plan {
        direction: Direction::Redo,
        description: format!("undo {} ({})", undo.id, undo_summary(undo)),
        targets: vec![undo.id.clone()],
        runs: string_list(&undo.payload["runs"]),
        steps: Vec::new(),
        notes: Vec::new(),
        blockers: Blockers::default(),
        forced: false,
        operation: None,
    };
    for step in recorded_steps(undo).iter().rev() {
        match step["step"].as_str() {
            Some("revert") => {
                let (Some(commit), Some(revert)) =
                    (step["commit"].as_str(), step["revert"].as_str())
                else {
                    continue;
                };
                let reverted_for = step["event"].as_str().unwrap_or_default();
                let facts =
                    match prove_revert(context, history, undo, revert, commit, reverted_for)? {
                        Ok(facts) => facts,
                        Err(reason) => {
                            plan.blockers.unproven.push(format!(
                                "{} (recorded by undo {}): {reason}",
                                short(revert),
                                undo.id
                            ));
                            continue;
                        }
                    };
                let files = context.worktree.paths_changed_by(&facts.commit)?;
                plan.steps.push(Step::Revert {
                    commit: facts.commit,
                    subject: facts.subject,
                    files,
                    event: undo.id.clone(),
                    reapplies: Some(commit.to_string()),
                    already_done_as: None,
                });
            }
            Some("playbook") => add_rerun(context, &mut plan, step),
            _ => {}
        }
    }
    records_last(context, &mut plan.steps);
    mark_already_done(context, history, &mut plan)?;
    check_work_tree(context, &mut plan)?;
    Ok(plan)
}

/// The facts of `revert`, when they prove that the undo `undo` made it: its own trailers name
/// the undo's run and the event it reverted, and git's message names the commit it reverts.
/// `Ok(Err(reason))` when they do not.
fn prove_revert(
    context: &Context<'_>,
    history: &History,
    undo: &Event,
    revert: &str,
    reverted: &str,
    event: &str,
) -> Result<Result<crate::worktree::CommitFacts, String>, UndoError> {
    let Some(facts) = context.worktree.commit_facts(revert)? else {
        return Ok(Err("no such commit in this repository".into()));
    };
    let run = undo.run.as_deref().unwrap_or_default();
    // An undo that finished what an interrupted one started records reverts made under the
    // interrupted one's run, which its `undo.failed` names.
    let made_by_the_undo = |named: &String| {
        named == run
            || history.unfinished_undos_all().iter().any(|failed| {
                failed.run.as_deref() == Some(named.as_str())
                    && failed.payload["done"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|done| done["revert"] == facts.commit.as_str())
            })
    };
    let proven = !run.is_empty()
        && facts.runs.iter().any(made_by_the_undo)
        && facts.reverts.iter().any(|r| r == event)
        && facts.reverts_commit(reverted);
    if proven {
        Ok(Ok(facts))
    } else {
        Ok(Err(format!(
            "its own trailers do not say that run {} made it to revert {} for event {event}",
            if run.is_empty() { "(none)" } else { run },
            short(reverted)
        )))
    }
}

/// The steps an undo recorded, in the order it did them. An `events.reverted` appended by hand
/// may list only `reverts`; those are its steps then.
fn recorded_steps(undo: &Event) -> Vec<Value> {
    if let Some(steps) = undo.payload["steps"].as_array() {
        return steps.clone();
    }
    undo.payload["reverts"]
        .as_array()
        .map(|reverts| {
            reverts
                .iter()
                .map(|revert| {
                    let mut step = revert.clone();
                    step["step"] = "revert".into();
                    step
                })
                .collect()
        })
        .unwrap_or_default()
}

fn add_revert(context: &Context<'_>, plan: &mut Plan, event: &Event) -> Result<(), UndoError> {
    let Some(commit) = event.payload_str("commit") else {
        plan.notes.push(format!(
            "{} {} names no commit; nothing to revert",
            event.kind, event.id
        ));
        return Ok(());
    };
    let facts = match prove_commit(context, event, commit)? {
        Ok(facts) => facts,
        Err(reason) => {
            plan.blockers.unproven.push(format!(
                "{} (named by event {}): {reason}",
                short(commit),
                event.id
            ));
            return Ok(());
        }
    };
    let files = context.worktree.paths_changed_by(&facts.commit)?;
    plan.steps.push(Step::Revert {
        commit: facts.commit,
        subject: facts.subject,
        files,
        event: event.id.clone(),
        reapplies: None,
        already_done_as: None,
    });
    Ok(())
}

/// The facts of `commit`, when the commit itself proves that `event`'s run made it: its own
/// `Spectra-Run` trailer names the run and its `Spectra-Event` trailer names the event (or,
/// as commits made before `effect.intended` existed do, the decision that caused it).
/// `Ok(Err(reason))` when it does not; what the event says is never enough on its own.
fn prove_commit(
    context: &Context<'_>,
    event: &Event,
    commit: &str,
) -> Result<Result<crate::worktree::CommitFacts, String>, UndoError> {
    let Some(run) = event.run.as_deref() else {
        return Ok(Err(
            "the event belongs to no run, so nothing ties the commit to the tool".into(),
        ));
    };
    let Some(facts) = context.worktree.commit_facts(commit)? else {
        return Ok(Err("no such commit in this repository".into()));
    };
    if !facts.runs.iter().any(|r| r == run) {
        return Ok(Err(match facts.runs.as_slice() {
            [] => format!(
                "the commit has no Spectra-Run trailer (\"{}\" is not the tool's)",
                facts.subject
            ),
            runs => format!(
                "its Spectra-Run trailer names {}, not run {run}",
                runs.join(", ")
            ),
        }));
    }
    let names_event = facts
        .events
        .iter()
        .any(|named| *named == event.id || event.causes.contains(named));
    if !names_event {
        return Ok(Err(format!(
            "its Spectra-Event trailer does not name event {} or what caused it",
            event.id
        )));
    }
    Ok(Ok(facts))
}

/// A playbook the run started: refuse if irreversible, compensate if it succeeded (or did not
/// finish, when its registry entry says its undo copes: `undo_unfinished`) and declares an
/// `undo`, otherwise note why nothing is done.
fn add_compensation(context: &Context<'_>, history: &History, plan: &mut Plan, started: &Event) {
    let id = started.payload_str("playbook").unwrap_or_default();
    if started.payload_str("action") != Some("run") || started.payload["dry_run"] == true {
        return;
    }
    let Some(playbook) = context.registry.playbook(id) else {
        plan.notes.push(format!(
            "playbook {id} is no longer in the registry; nothing is known to compensate it"
        ));
        return;
    };
    if !playbook.reversible {
        plan.blockers.irreversible.push(Irreversible {
            event: started.id.clone(),
            playbook: id.to_string(),
        });
        return;
    }
    let outcome = history
        .finished_of(&started.id)
        .and_then(|finished| PlaybookFinished::of(&finished.payload).outcome);
    let succeeded = outcome.as_ref().is_some_and(Outcome::succeeded);
    let unfinished = may_not_have_finished(outcome.as_ref());
    if unfinished && playbook.has_undo() && !playbook.undo_unfinished {
        // Its undo would act blind (a rollback after a deploy that never ran moves the
        // service back a release): the user decides, with --force.
        let outcome = outcome.as_ref().map_or("unfinished", Outcome::word);
        plan.blockers.unfinished.push(format!(
            "{id} (event {}) ended {outcome}: whether it had its effect is unknown",
            started.id
        ));
        if !plan.forced {
            return;
        }
    }
    let undo_anyway = unfinished && (playbook.undo_unfinished || plan.forced);
    if !(succeeded || undo_anyway) {
        let outcome = outcome.as_ref().map_or("unfinished", Outcome::word);
        plan.notes.push(format!(
            "playbook {id} did not succeed ({outcome}); its effect is not compensated"
        ));
        return;
    }
    if !playbook.has_undo() {
        plan.notes.push(format!(
            "playbook {id} declares no undo; nothing to compensate"
        ));
        return;
    }
    let activity = started.activity.clone().unwrap_or_default();
    push_playbook(
        context,
        plan,
        PlaybookStep {
            action: Action::Undo,
            playbook: id,
            activity: &activity,
            service: started.service.clone(),
            inputs: started.payload["inputs"].clone(),
            source: started.id.clone(),
        },
    );
}

/// Whether a playbook with this outcome may have made its effect without saying so: it never
/// finished, or its process was stopped (interrupted, killed, timed out) rather than failing.
fn may_not_have_finished(outcome: Option<&Outcome>) -> bool {
    matches!(
        outcome,
        None | Some(Outcome::Interrupted | Outcome::Killed | Outcome::TimedOut)
    )
}

/// A compensation the undo ran: the redo runs the playbook's `run` argv again.
fn add_rerun(context: &Context<'_>, plan: &mut Plan, step: &Value) {
    let text = |key: &str| step[key].as_str().unwrap_or_default().to_string();
    let (playbook, activity) = (text("playbook"), text("activity"));
    push_playbook(
        context,
        plan,
        PlaybookStep {
            action: Action::Run,
            playbook: &playbook,
            activity: &activity,
            service: step["service"].as_str().map(str::to_string),
            inputs: step["inputs"].clone(),
            source: text("source"),
        },
    );
}

struct PlaybookStep<'a> {
    action: Action,
    playbook: &'a str,
    activity: &'a str,
    service: Option<String>,
    inputs: Value,
    source: String,
}

/// Checks the playbook step with the runner (as a dry run would) and adds it to the plan.
fn push_playbook(context: &Context<'_>, plan: &mut Plan, step: PlaybookStep<'_>) {
    let request = Request {
        activity: step.activity,
        playbook: step.playbook,
        inputs: &step.inputs,
        action: step.action,
        run_id: "",
        event_id: "",
        dry_run: true,
    };
    match context.runner().and_then(|runner| runner.prepare(&request)) {
        Ok(invocation) => plan.steps.push(Step::Playbook {
            action: step.action,
            playbook: step.playbook.to_string(),
            activity: step.activity.to_string(),
            service: step.service,
            inputs: step.inputs,
            // Shown and recorded, never run (the runner prepares it again): no secret in it.
            argv: invocation
                .argv
                .iter()
                .map(|arg| context.scrubber.text(arg))
                .collect(),
            source: step.source,
            already_done: false,
        }),
        Err(error) => plan.blockers.unpreparable.push(error.to_string()),
    }
}

/// Skips what an earlier undo of the same targets did before it stopped, so running the undo
/// again finishes the job instead of doing it twice. A revert counts as done only when it is
/// on HEAD and proves itself (its own trailers name the unfinished undo's run and the event, and
/// git's message the commit it reverts): what an `undo.failed` event claims is not enough.
fn mark_already_done(
    context: &Context<'_>,
    history: &History,
    plan: &mut Plan,
) -> Result<(), UndoError> {
    let targets: BTreeSet<&str> = plan.targets.iter().map(String::as_str).collect();
    let direction = match plan.direction {
        Direction::Undo => "undo",
        Direction::Redo => "redo",
    };
    for failed in history.unfinished_undos() {
        let failed_targets = string_list(&failed.payload["targets"]);
        let same_targets = !failed_targets.is_empty()
            && failed_targets.iter().all(|t| targets.contains(t.as_str()));
        if failed.payload_str("direction") != Some(direction) || !same_targets {
            continue;
        }
        let Some(run) = failed.run.as_deref() else {
            continue;
        };
        for step in &mut plan.steps {
            match step {
                Step::Revert {
                    commit,
                    event,
                    already_done_as,
                    ..
                } if already_done_as.is_none() => {
                    let found = crate::reconcile::find_revert(
                        &context.worktree,
                        run,
                        commit,
                        event,
                        "HEAD",
                    )?;
                    *already_done_as = found.map(|facts| facts.commit);
                }
                Step::Playbook {
                    source,
                    already_done,
                    ..
                } => {
                    let done = failed.payload["done"].as_array().into_iter().flatten();
                    if done
                        .into_iter()
                        .any(|d| d["step"] == "playbook" && d["source"] == source.as_str())
                    {
                        *already_done = true;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// What git needs before it can revert: the commits on this branch, nothing staged, and no
/// uncommitted changes in the paths the reverts touch.
fn check_work_tree(context: &Context<'_>, plan: &mut Plan) -> Result<(), UndoError> {
    let mut touched = BTreeSet::new();
    let mut off_branch = Vec::new();
    for step in plan.pending_steps() {
        if let Step::Revert { commit, files, .. } = step {
            if !context.worktree.is_on_head(commit) {
                off_branch.push(commit.clone());
            }
            touched.extend(files.iter().cloned());
        }
    }
    plan.blockers.off_branch = off_branch;
    if !touched.is_empty() {
        plan.operation = context.operation;
    }
    if touched.is_empty() {
        return Ok(());
    }
    let touched: Vec<String> = touched.into_iter().collect();
    plan.blockers.dirty = context.worktree.dirty_paths(&touched)?;
    plan.blockers.staged = context
        .worktree
        .staged_paths()?
        .into_iter()
        .filter(|path| !plan.blockers.dirty.contains(path))
        .collect();
    Ok(())
}

fn distinct_runs(events: &[&Event]) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for run in events.iter().filter_map(|event| event.run.as_ref()) {
        if !runs.contains(run) {
            runs.push(run.clone());
        }
    }
    runs
}

fn undo_summary(undo: &Event) -> String {
    let targets = undo.payload["targets"].as_array().map_or(0, Vec::len);
    match string_list(&undo.payload["runs"]).as_slice() {
        [run] => format!("{targets} events of run {run}"),
        _ => format!("{targets} events"),
    }
}

pub(super) fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

pub(super) fn short(id: &str) -> &str {
    crate::worktree::short(id)
}
