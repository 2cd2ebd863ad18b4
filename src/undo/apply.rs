//! Carrying out a plan: each step in order under a run of its own, then one event that says
//! what was reverted (`events.reverted`) or restored (`events.restored`).
//!
//! Playbooks run as `playbook.started` / `playbook.finished` events of the undo's run, exactly
//! as an activity's playbooks do. Commits are reverted with `git revert`, carrying
//! `Spectra-Run` and `Spectra-Reverts` trailers. When a step fails, what was already done stays
//! done (nothing is rolled back behind the user's back) and an `undo.failed` event records it,
//! so the log never hides a half-applied undo; running the same undo again skips what it
//! records as done.

use serde::Serialize;
use serde_json::{Value, json};

use super::plan::{Direction, Plan, Step, short};
use super::{Context, UndoError};
use crate::activity::Recorder;
use crate::event::{NewEvent, kind, new_id};
use crate::playbook::{Action, Report, Request};

/// What an undo or redo did.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// Undo or redo.
    pub direction: Direction,
    /// The undo's or redo's own run.
    pub run: String,
    /// The `events.reverted` or `events.restored` event.
    pub event: String,
    /// The event ids undone or redone.
    pub targets: Vec<String>,
    /// Every step done, as recorded in the event's `steps`.
    pub steps: Vec<Value>,
}

/// Carries out `plan`, which must have no [`Plan::refusal`]. The caller holds `effects` from
/// before it made the plan, so no other run changes the branch between plan and revert.
pub fn apply(
    context: &Context<'_>,
    plan: &Plan,
    effects: &crate::run_lock::EffectLock,
) -> Result<Applied, UndoError> {
    if let Some(refusal) = plan.refusal() {
        return Err(refusal);
    }
    let run = new_id();
    let _running = crate::run_lock::RunLock::acquire(&context.state_dir, &context.git_dir, &run)
        .map_err(UndoError::RunLock)?;
    let mut work = Work {
        recorder: Recorder::new(context.store, run).scrubbing(context.scrubber.clone()),
        done: Vec::new(),
        effects,
    };
    work.record_intent(context, plan)?;
    for step in &plan.steps {
        match done_earlier(step) {
            Some(record) => work.done.push(record),
            None => {
                if let Err(reason) = work.carry_out(context, step) {
                    return Err(work.stop(plan, step, reason));
                }
            }
        }
    }
    let final_event = work.record_outcome(plan);
    work.recorder.flush()?;
    Ok(Applied {
        direction: plan.direction,
        run: work.recorder.run().to_string(),
        event: final_event,
        targets: plan.targets.clone(),
        steps: work.done,
    })
}

/// The record of a step an earlier, unfinished undo already did.
fn done_earlier(step: &Step) -> Option<Value> {
    match step {
        Step::Revert {
            commit,
            event,
            already_done_as: Some(revert),
            ..
        } => Some(json!({"step": "revert", "commit": commit, "revert": revert, "event": event})),
        Step::Playbook {
            already_done: true,
            playbook,
            activity,
            service,
            inputs,
            source,
            ..
        } => Some(
            json!({"step": "playbook", "playbook": playbook, "activity": activity,
            "service": service, "inputs": inputs, "source": source, "started": null}),
        ),
        _ => None,
    }
}

/// The undo's run while it works: its recorder and the steps done so far.
struct Work<'s, 'e> {
    recorder: Recorder<'s>,
    done: Vec<Value>,
    effects: &'e crate::run_lock::EffectLock,
}

impl Work<'_, '_> {
    /// Appends `undo.started` with every step still to do, before the first of them: a process
    /// that dies part way leaves the plan in the log, and the next command finds from the
    /// reverts' own trailers which steps happened (see [`crate::reconcile`]).
    fn record_intent(&mut self, context: &Context<'_>, plan: &Plan) -> Result<(), UndoError> {
        let steps: Vec<&Step> = plan.pending_steps().collect();
        if steps.is_empty() {
            return Ok(());
        }
        self.recorder.record(
            NewEvent::new(kind::UNDO_STARTED)
                .subject(format!(
                    "{}: starting on {}",
                    match plan.direction {
                        Direction::Undo => "undo",
                        Direction::Redo => "redo",
                    },
                    plan.description
                ))
                .payload(json!({
                    "direction": plan.direction,
                    "targets": plan.targets,
                    "runs": plan.runs,
                    "branch": context.worktree.current_branch(),
                    "steps": steps,
                })),
        );
        self.recorder.flush()?;
        Ok(())
    }

    /// Does one step; `Err` says why it failed.
    fn carry_out(&mut self, context: &Context<'_>, step: &Step) -> Result<(), String> {
        match step {
            Step::Revert { commit, event, .. } => {
                let run = self.recorder.run().to_string();
                let trailers = [("Spectra-Run", run.as_str()), ("Spectra-Reverts", event)];
                crate::test_hook::point("revert.before");
                let revert = {
                    // git outliving this process keeps the run in progress until it is done.
                    let _hold = self.effects.shared_with_children();
                    context.worktree.revert(commit, &trailers)
                }
                .map_err(|error| error.to_string())?;
                crate::test_hook::point("revert.after");
                self.done.push(
                    json!({"step": "revert", "commit": commit, "revert": revert, "event": event}),
                );
                Ok(())
            }
            Step::Playbook { .. } => self.run_playbook(context, step),
        }
    }

    /// Runs one playbook step as `playbook.started` / `playbook.finished` of this run.
    fn run_playbook(&mut self, context: &Context<'_>, step: &Step) -> Result<(), String> {
        let Step::Playbook {
            action,
            playbook,
            activity,
            service,
            inputs,
            argv,
            source,
            ..
        } = step
        else {
            return Ok(());
        };
        let started_id = new_id();
        let mut started = NewEvent::new(kind::PLAYBOOK_STARTED)
            .activity(activity.clone())
            .subject(format!(
                "{}: {} playbook {playbook}",
                direction_word(*action),
                action_word(*action)
            ))
            .payload(json!({
                "playbook": playbook,
                "action": action,
                "argv": argv,
                "inputs": inputs,
                "dry_run": false,
                "reapplies": source,
            }));
        started.id = started_id.clone();
        if let Some(service) = service {
            started = started.service(service.clone());
        }
        self.recorder.record(started);
        self.recorder.flush().map_err(|error| error.to_string())?;
        let report = context
            .runner()
            .and_then(|runner| {
                runner.run(&Request {
                    activity,
                    playbook,
                    inputs,
                    action: *action,
                    run_id: self.recorder.run(),
                    event_id: &started_id,
                    dry_run: false,
                })
            })
            .map_err(|error| error.to_string())?;
        self.record_finished(activity, service.as_deref(), &started_id, &report);
        self.recorder.flush().map_err(|error| error.to_string())?;
        if !report.succeeded() {
            return Err(report.message());
        }
        let mut done = json!({"step": "playbook", "playbook": playbook, "action": action,
            "activity": activity, "service": service, "inputs": inputs, "source": source,
            "started": started_id});
        if let Some(said) = said(&report) {
            done["said"] = json!(said);
        }
        self.done.push(done);
        Ok(())
    }

    fn record_finished(
        &mut self,
        activity: &str,
        service: Option<&str>,
        started_id: &str,
        report: &Report,
    ) {
        let mut event = report.finished_event(
            activity,
            started_id,
            format!(
                "{}: {}",
                direction_word(report.invocation.action),
                report.message()
            ),
        );
        if let Some(service) = service {
            event = event.service(service);
        }
        self.recorder.record(event);
    }

    /// Appends the one event that says the undo or redo happened; returns its id.
    fn record_outcome(&mut self, plan: &Plan) -> String {
        let event = match plan.direction {
            Direction::Undo => self.reverted_event(plan),
            Direction::Redo => self.restored_event(plan),
        };
        self.recorder.record(event)
    }

    fn reverted_event(&self, plan: &Plan) -> NewEvent {
        let compensations = self.playbook_events();
        NewEvent::new(kind::EVENTS_REVERTED)
            .subject(format!("undo: reverted {}", plan.description))
            .payload(json!({
                "targets": plan.targets,
                "runs": plan.runs,
                "reverts": self.reverts(),
                "compensations": compensations,
                "forced": plan.forced && !plan.blockers.dependents.is_empty(),
                "dependents": plan.blockers.dependents,
                "steps": self.done,
            }))
    }

    fn restored_event(&self, plan: &Plan) -> NewEvent {
        let playbooks = self.playbook_events();
        NewEvent::new(kind::EVENTS_RESTORED)
            .subject(format!("redo: cancelled {}", plan.description))
            .payload(json!({
                "targets": plan.targets,
                "runs": plan.runs,
                "reapplied": self.reverts(),
                "playbooks": playbooks,
                "steps": self.done,
            }))
    }

    /// The `playbook.started` ids of the playbooks run (those an earlier, unfinished undo ran
    /// are in its own `undo.failed` event).
    fn playbook_events(&self) -> Vec<&Value> {
        self.done
            .iter()
            .filter(|step| step["step"] == "playbook" && step["started"].is_string())
            .map(|step| &step["started"])
            .collect()
    }

    fn reverts(&self) -> Vec<Value> {
        self.done
            .iter()
            .filter(|step| step["step"] == "revert")
            .map(|step| json!({"commit": step["commit"], "revert": step["revert"], "event": step["event"]}))
            .collect()
    }

    /// Records where the plan stopped (when anything had happened) and builds the error.
    fn stop(&mut self, plan: &Plan, step: &Step, reason: String) -> UndoError {
        let anything_happened = !self.done.is_empty() || !self.recorder.recorded.is_empty();
        let mut recorded = None;
        if anything_happened {
            let event = NewEvent::new(kind::UNDO_FAILED)
                .subject(format!(
                    "{}: stopped at {}",
                    match plan.direction {
                        Direction::Undo => "undo",
                        Direction::Redo => "redo",
                    },
                    step.describe()
                ))
                .payload(json!({
                    "direction": plan.direction,
                    "targets": plan.targets,
                    "runs": plan.runs,
                    "done": self.done,
                    "failed": {"step": step, "reason": reason},
                }));
            let id = self.recorder.record(event);
            if let Err(error) = self.recorder.flush() {
                return UndoError::Store(error);
            }
            recorded = Some(id);
        }
        UndoError::StepFailed {
            direction: plan.direction,
            step: step.describe(),
            reason,
            done: self.done.iter().map(describe_done).collect(),
            recorded,
        }
    }
}

/// The line a built-in printed of what it did (`said` in its JSON output), if any.
fn said(report: &Report) -> Option<String> {
    let output: Value = serde_json::from_slice(&report.stdout.bytes).ok()?;
    output["said"].as_str().map(str::to_string)
}

/// A step done, in a line: what was reverted, or which playbook ran and what it said it did.
pub fn describe_done(step: &Value) -> String {
    let text = |key: &str| step[key].as_str().unwrap_or("?").to_string();
    match step["step"].as_str() {
        Some("revert") => format!(
            "reverted {} as {}",
            short(&text("commit")),
            short(&text("revert"))
        ),
        _ => {
            let ran = format!("ran playbook {} ({})", text("playbook"), text("action"));
            match step["said"].as_str() {
                Some(said) => format!("{ran}: {said}"),
                None => ran,
            }
        }
    }
}

fn direction_word(action: Action) -> &'static str {
    match action {
        Action::Undo => "undo",
        Action::Run => "redo",
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Undo => "compensates with",
        Action::Run => "runs again",
    }
}
