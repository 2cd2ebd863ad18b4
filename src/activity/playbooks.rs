//! Running the playbooks an activity's decision chose: each one prepared (refused before it
//! starts when not allowed), recorded as `playbook.started`, run, and recorded as
//! `playbook.finished`.

use serde_json::{Value, json};

use super::run::RunState;
use super::step::ActivityWork;
use super::{
    ActivityError, Engine, Outcome, PLAYBOOK_FAILED, PLAYBOOK_REFUSED, PlaybookSummary, RunError,
};
use crate::event::{NewEvent, kind};
use crate::playbook::{Action, Report, Request, Runner};

impl Engine<'_> {
    /// Runs one playbook the decision chose, recording `playbook.started` and `.finished`.
    pub(super) fn run_playbook(
        &self,
        state: &mut RunState<'_>,
        activity: &str,
        choice: &Value,
        dry_run: bool,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        let started_id = crate::event::new_id();
        self.run_playbook_as(state, activity, choice, dry_run, work, started_id)
    }

    /// [`Engine::run_playbook`], its `playbook.started` event taking the id `started_id` (which
    /// an `effect.intended` recorded before it may name).
    pub(super) fn run_playbook_as(
        &self,
        state: &mut RunState<'_>,
        activity: &str,
        choice: &Value,
        dry_run: bool,
        work: &mut ActivityWork,
        started_id: String,
    ) -> Result<(), RunError> {
        let id = choice.get("id").and_then(Value::as_str).unwrap_or_default();
        let inputs = choice.get("inputs").cloned().unwrap_or(Value::Null);
        let runner = match Runner::new(self.registry, &self.root) {
            Ok(runner) => runner,
            Err(error) => {
                work.errors
                    .push(ActivityError::new(PLAYBOOK_FAILED, error.to_string()));
                return Ok(());
            }
        };
        let run_id = state.recorder.run().to_string();
        let request = Request {
            activity,
            playbook: id,
            inputs: &inputs,
            action: Action::Run,
            run_id: &run_id,
            event_id: &started_id,
            dry_run,
        };
        // Refused before it starts: not allowed, bad inputs, a path out of the repository.
        let invocation = match runner.prepare(&request) {
            Ok(invocation) => invocation,
            Err(error) => {
                work.errors
                    .push(ActivityError::new(PLAYBOOK_REFUSED, error.to_string()));
                work.playbooks.push(PlaybookSummary {
                    playbook: id.to_string(),
                    outcome: Outcome::Refused,
                    message: error.to_string(),
                });
                return Ok(());
            }
        };
        let mut started = NewEvent::new(kind::PLAYBOOK_STARTED)
            .activity(activity)
            .subject(format!(
                "{activity}: {} playbook {id}",
                if dry_run { "would run" } else { "runs" }
            ))
            .payload(json!({
                "playbook": id,
                "action": "run",
                "argv": invocation.argv,
                "inputs": inputs,
                "dry_run": dry_run,
            }));
        started.id = started_id.clone();
        if let Some(service) = &state.service {
            started = started.service(service.clone());
        }
        state.recorder.record(started);
        // What led to a playbook is in the log before it acts. A built-in that only reads acts
        // on nothing, so its events wait for the next effect.
        if !runner.reads_only(&invocation) {
            state.recorder.flush()?;
        }
        let answered = match &self.options.recorded_playbooks {
            // A replay: what has effects is answered from the record, never run.
            Some(recorded) if !runner.reads_only(&invocation) => {
                Some(recorded.answer(&invocation).ok_or_else(|| {
                    format!(
                        "playbook {id} has effects and the replayed run's record holds no result \
                         for it, so the replay does not run it"
                    )
                }))
            }
            _ => None,
        };
        let report =
            match answered.unwrap_or_else(|| runner.run(&request).map_err(|e| e.to_string())) {
                Ok(report) => report,
                Err(error) => {
                    work.errors.push(ActivityError::new(PLAYBOOK_FAILED, error));
                    return Ok(());
                }
            };
        // A crash test can stop here, after the playbook's effect and before its record.
        crate::test_hook::point(&format!("playbook.ran.{id}"));
        self.record_playbook_finished(state, activity, &started_id, &report);
        // An effect's outcome is in the log at once, so a crash later cannot leave it
        // unknown; a read-only built-in's waits for the next append.
        if !runner.reads_only(&invocation) {
            state.recorder.flush()?;
        }
        if !report.succeeded() {
            work.errors
                .push(ActivityError::new(PLAYBOOK_FAILED, report.message()));
        }
        work.playbooks.push(PlaybookSummary {
            playbook: id.to_string(),
            outcome: report.outcome.clone(),
            message: report.message(),
        });
        work.playbook_reports.push((id.to_string(), report));
        Ok(())
    }

    fn record_playbook_finished(
        &self,
        state: &mut RunState<'_>,
        activity: &str,
        started_id: &str,
        report: &Report,
    ) {
        let mut event = report.finished_event(
            activity,
            started_id,
            format!("{activity}: {}", report.message()),
        );
        if let Some(service) = &state.service {
            event = event.service(service.clone());
        }
        state.recorder.record(event);
    }
}
