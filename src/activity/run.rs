//! One run: activities in order, with the run's own events around them (`run.started`, the
//! planner's decision, `run.finished`), the run lock held throughout, and a blocking activity
//! that did not succeed stopping the rest.

use std::time::Instant;

use serde_json::{Value, json};

use super::report::run_outcome;
use super::{ActivityReport, Engine, Outcome, Recorder, RunError, RunReport, planner};
use crate::event::{NewEvent, kind};
use crate::fold_cache::manifests;
use crate::projection::manifests::ManifestIndex;

/// The state carried from one activity to the next within a run.
pub(crate) struct RunState<'s> {
    pub recorder: Recorder<'s>,
    pub service: Option<String>,
    /// The latest manifests and recent history: what a run's context needs, and small however
    /// long the log.
    pub projection: ManifestIndex,
}

impl Engine<'_> {
    /// Runs `activities` in order as one run started by `command` with `input`.
    pub fn run(
        &self,
        command: &str,
        activities: &[String],
        input: &str,
    ) -> Result<RunReport, RunError> {
        self.run_with(command, activities, None, input)
    }

    /// Runs the activities `plan` chose, recording the plan as the run's first decision.
    pub fn run_plan(
        &self,
        command: &str,
        plan: planner::Plan,
        input: &str,
    ) -> Result<RunReport, RunError> {
        let activities = plan.activities.clone();
        self.run_with(command, &activities, Some(plan), input)
    }

    fn run_with(
        &self,
        command: &str,
        activities: &[String],
        plan: Option<planner::Plan>,
        input: &str,
    ) -> Result<RunReport, RunError> {
        for name in activities {
            if self.registry.activity(name).is_none() {
                return Err(RunError::UnknownActivity(name.clone()));
            }
        }
        let left_out = plan
            .as_ref()
            .map(planner::Plan::left_out_names)
            .unwrap_or_default();
        self.check_decidable(activities, &left_out)?;
        // With nothing left to run, what the plan left out is what the user asked for.
        let asked = if activities.is_empty() {
            left_out.as_slice()
        } else {
            activities
        };
        if let Some(unconfigured) = super::effects::unconfigured(self.registry, &self.root, asked) {
            return Err(RunError::NotConfigured {
                activity: unconfigured.activity,
                key: unconfigured.key,
            });
        }
        if let Some((activity, source)) =
            super::effects::bad_timeout(self.registry, &self.root, asked)
        {
            return Err(RunError::BadTimeout { activity, source });
        }
        if !self.options.dry_run
            && let Some(operation) = crate::worktree::operation_in_progress(self.repo.gix())
        {
            return Err(RunError::OperationInProgress(operation));
        }
        let started = Instant::now();
        let run = crate::event::new_id();
        // Held until the run has recorded its end: while it is, undo leaves the run alone, and
        // once the process is gone the next command closes the run (see `crate::reconcile`).
        let _running =
            crate::run_lock::RunLock::acquire(&self.repo.state_dir(), self.repo.git_dir(), &run)
                .map_err(RunError::RunLock)?;
        let mut state = RunState {
            recorder: Recorder::new(self.store, run).scrubbing(self.scrubber.clone()),
            service: self.options.service.clone(),
            projection: manifests::load(self.repo, self.store)?,
        };
        self.record_run_started(&mut state, command, activities, input);
        if let Some(plan) = &plan {
            planner::record(&mut state.recorder, plan, state.service.as_deref());
        }
        let mut reports = Vec::new();
        let mut skipped = Vec::new();
        for (index, name) in activities.iter().enumerate() {
            let report = self.run_activity(&mut state, name, input)?;
            let blocking = self.registry.activity(name).is_some_and(|a| a.blocking);
            // An incomplete result is still a result the next activity can build on.
            let stop =
                blocking && !matches!(report.outcome, Outcome::Succeeded | Outcome::Incomplete);
            reports.push(report);
            if stop {
                skipped = activities[index + 1..].to_vec();
                break;
            }
            // Later activities see this one's manifest; after the last one, nobody looks, and
            // its events go out with `run.finished`.
            if index + 1 < activities.len() {
                state.recorder.flush()?;
                state.projection = manifests::load(self.repo, self.store)?;
            }
        }
        let outcome = run_outcome(&reports);
        let duration_ms = millis(started);
        self.record_run_finished(
            &mut state,
            command,
            &outcome,
            duration_ms,
            &reports,
            &skipped,
        )?;
        // The next command then finds the manifest index at the tip.
        manifests::remember_appended(self.repo, &mut state.projection, state.recorder.appended());
        Ok(RunReport {
            run: state.recorder.run().to_string(),
            command: command.to_string(),
            mode: self.decider.mode().to_string(),
            dry_run: self.options.dry_run,
            outcome,
            duration_ms,
            activities: reports,
            plan,
            skipped,
        })
    }

    fn record_run_started(
        &self,
        state: &mut RunState<'_>,
        command: &str,
        activities: &[String],
        input: &str,
    ) {
        // Where the run starts from, so that a replay can start from the same commit.
        let (head, branch) = match self.worktree().head_commit() {
            Some((head, branch)) => (Some(head), branch),
            None => (None, None),
        };
        let mut run_started = NewEvent::new(kind::RUN_STARTED)
            .subject(format!("{command}: run started: {}", first_words(input)))
            .payload(json!({
                "command": command,
                "input": input,
                "activities": activities,
                "mode": self.decider.mode(),
                "dry_run": self.options.dry_run,
                "execute": self.options.execute,
                "update": self.options.update,
                "head": head,
                "branch": branch,
            }));
        if let Some(original) = &self.options.rerun_of {
            run_started.payload["rerun_of"] = json!(original);
        }
        if let Some(service) = &state.service {
            run_started = run_started.service(service.clone());
        }
        state.recorder.record(run_started);
    }

    fn record_run_finished(
        &self,
        state: &mut RunState<'_>,
        command: &str,
        outcome: &Outcome,
        duration_ms: u64,
        reports: &[ActivityReport],
        skipped: &[String],
    ) -> Result<(), RunError> {
        let activities: Vec<Value> = reports
            .iter()
            .map(|r| json!({"activity": r.activity, "outcome": r.outcome}))
            .collect();
        let mut finished = NewEvent::new(kind::RUN_FINISHED)
            .subject(format!("{command}: run {outcome}"))
            .payload(json!({
                // A run one of whose activities was blocked did not succeed: it failed.
                "outcome": if outcome.succeeded() { Outcome::Succeeded } else { Outcome::Failed },
                "duration_ms": duration_ms,
                "activities": activities,
                "skipped": skipped,
            }));
        if let Some(service) = &state.service {
            finished = finished.service(service.clone());
        }
        state.recorder.record(finished);
        state.recorder.flush()?;
        Ok(())
    }
}

fn first_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(12).collect();
    words.join(" ")
}

pub(crate) fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
