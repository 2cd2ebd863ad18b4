//! Projections: pure folds from the event log to the views people read.
//!
//! Nothing here is stored as truth. [`Projection::apply`] folds one event at a time into
//! per-run records; manifests, history and runs are computed from those records on demand,
//! skipping every event that an active `events.reverted` names. The fold state is what the
//! tip-keyed cache ([`cache`]) saves, so a warm read folds only the events appended since.

pub mod export;
pub mod manifests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::payload::{
    ActivityFinished, ActivityStarted, DecisionMade, RunFinished, RunStarted,
};
use crate::event::{Event, Outcome, RevertedSet, kind};
use crate::fold::{Fold, NeedsRebuild};

/// The folded state of the whole log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Projection {
    /// Runs in the order they started.
    runs: Vec<RunRecord>,
    /// Position of each run in `runs`, by run id.
    run_index: BTreeMap<String, usize>,
    /// The undos and redos folded so far.
    reverted: RevertedSet,
    /// Events folded so far.
    pub events: u64,
}

/// Everything one run did, as far as the views need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id.
    pub run: String,
    /// The command that started it.
    pub command: Option<String>,
    /// The user's text.
    pub input: Option<String>,
    /// Who decided: `llm` or `offline`.
    pub mode: Option<String>,
    /// Whether the run only said what it would do.
    pub dry_run: bool,
    /// When `run.started` was written.
    pub started_at: String,
    /// When `run.finished` was written; `None` while in progress.
    pub finished_at: Option<String>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<Outcome>,
    /// Wall-clock time it took, when it finished.
    pub duration_ms: Option<u64>,
    /// Its activities, in the order they started.
    pub activities: Vec<ActivityRecord>,
    /// Ids of every event of the run (undo targets them).
    pub event_ids: Vec<String>,
}

/// One activity within a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// The activity's name.
    pub activity: String,
    /// The service it worked on, if any.
    pub service: Option<String>,
    /// When `activity.started` was written.
    pub started_at: String,
    /// The id of `activity.started`.
    pub started_event: String,
    /// What the activity loaded before deciding.
    pub context: Value,
    /// The decision accepted, once made.
    pub decision: Option<Value>,
    /// The id of `activity.finished`, once written.
    pub finished_event: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<Outcome>,
    /// Wall-clock time it took, when it finished.
    pub duration_ms: Option<u64>,
    /// Its result object.
    pub outputs: Value,
    /// Its errors, `[{reason, message}]`.
    pub errors: Value,
    /// Gate -> passed.
    pub quality_gates: Value,
}

/// The manifest of one activity for one service: its latest state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The activity's name.
    pub activity: String,
    /// The service, if any.
    pub service: Option<String>,
    /// `pending`, `in_progress`, `complete`, `incomplete` (a required gate failed) or
    /// `failed`.
    pub status: String,
    /// When the latest run of it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub completed_at: Option<String>,
    /// Milliseconds.
    pub duration: Option<u64>,
    /// Its result object.
    pub outputs: Value,
    /// Its errors, `[{reason, message}]`.
    pub errors: Value,
    /// Whether every quality gate passed.
    pub quality_gates_passed: bool,
    /// Gate -> passed.
    pub quality_gates: Value,
    /// The run that produced this state.
    pub run: Option<String>,
}

impl Manifest {
    /// Whether the activity left a result later activities can build on: complete, or
    /// incomplete (it decided, but a required gate failed).
    pub fn has_result(&self) -> bool {
        matches!(self.status.as_str(), "complete" | "incomplete")
    }
}

/// One entry of an activity's history.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// When the activity started.
    pub timestamp: String,
    /// The run it was part of.
    pub run: String,
    /// The service, if any.
    pub service: Option<String>,
    /// The decision accepted (`null` if none was).
    pub decision: Value,
    /// What the activity loaded before deciding.
    pub context: Value,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// `{outputs, errors}`.
    pub result: Value,
}

/// One row of `git spectra runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run's id.
    pub run: String,
    /// The command that started it.
    pub command: Option<String>,
    /// The user's text.
    pub input: Option<String>,
    /// When it started.
    pub started_at: String,
    /// When it finished; `None` while in progress.
    pub finished_at: Option<String>,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// Wall-clock time it took, when it finished.
    pub duration_ms: Option<u64>,
    /// Whether it only said what it would do.
    pub dry_run: bool,
    /// Whether an undo reverted it.
    pub undone: bool,
    /// `{activity, service, outcome}` of each activity.
    pub activities: Vec<Value>,
}

impl RunRow {
    /// `activity:outcome` of each activity (`in_progress` until it finished), as `runs` shows them.
    pub fn activity_outcomes(&self) -> Vec<String> {
        self.activities
            .iter()
            .map(|a| {
                format!(
                    "{}:{}",
                    a["activity"].as_str().unwrap_or("?"),
                    a["outcome"].as_str().unwrap_or("in_progress")
                )
            })
            .collect()
    }
}

/// Decodes one `event.json` for [`Projection::apply`]: payloads only of the kinds it reads.
pub fn decode_for_folding(bytes: &[u8]) -> Result<Event, crate::event::EventError> {
    crate::event::decode_payload_of(bytes, Projection::reads_payload_of)
}

impl Projection {
    /// Whether [`Projection::apply`] reads the payload of events of `kind`.
    pub fn reads_payload_of(kind: &str) -> bool {
        matches!(
            kind,
            kind::RUN_STARTED
                | kind::ACTIVITY_STARTED
                | kind::DECISION_MADE
                | kind::ACTIVITY_FINISHED
                | kind::RUN_FINISHED
                | kind::EVENTS_REVERTED
                | kind::EVENTS_RESTORED
        )
    }

    /// Folds every event of `events`, oldest first.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Projection {
        let mut projection = Projection::default();
        for event in events {
            projection.apply(event);
        }
        projection
    }

    /// Folds one more event (events must arrive oldest first). Unknown kinds are skipped.
    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        if let Some(run) = event.run.as_deref()
            && let Some(&index) = self.run_index.get(run)
        {
            self.runs[index].event_ids.push(event.id.clone());
        }
        match event.kind.as_str() {
            kind::RUN_STARTED => self.start_run(event),
            kind::ACTIVITY_STARTED => self.start_activity(event),
            kind::DECISION_MADE => self.record_decision(event),
            kind::ACTIVITY_FINISHED => self.finish_activity(event),
            kind::RUN_FINISHED => self.finish_run(event),
            kind::EVENTS_REVERTED | kind::EVENTS_RESTORED => self.reverted.apply(event),
            _ => {}
        }
    }

    fn start_run(&mut self, event: &Event) {
        let Some(run) = event.run.clone() else {
            return;
        };
        let started = RunStarted::of(&event.payload);
        let record = RunRecord {
            run: run.clone(),
            command: started.command,
            input: started.input,
            mode: started.mode,
            dry_run: started.dry_run.unwrap_or(false),
            started_at: event.at.clone(),
            finished_at: None,
            outcome: None,
            duration_ms: None,
            activities: Vec::new(),
            event_ids: vec![event.id.clone()],
        };
        self.run_index.insert(run, self.runs.len());
        self.runs.push(record);
    }

    fn run_mut(&mut self, event: &Event) -> Option<&mut RunRecord> {
        let index = *self.run_index.get(event.run.as_deref()?)?;
        self.runs.get_mut(index)
    }

    fn start_activity(&mut self, event: &Event) {
        let Some(activity) = event.activity.clone() else {
            return;
        };
        let Some(run) = self.run_mut(event) else {
            return;
        };
        run.activities.push(ActivityRecord {
            activity,
            service: event.service.clone(),
            started_at: event.at.clone(),
            started_event: event.id.clone(),
            context: ActivityStarted::of(&event.payload)
                .context
                .unwrap_or(Value::Null),
            decision: None,
            finished_event: None,
            finished_at: None,
            outcome: None,
            duration_ms: None,
            outputs: Value::Null,
            errors: json!([]),
            quality_gates: json!({}),
        });
    }

    fn open_activity(&mut self, event: &Event) -> Option<&mut ActivityRecord> {
        let activity = event.activity.clone()?;
        self.run_mut(event)?
            .activities
            .iter_mut()
            .rev()
            .find(|record| record.activity == activity)
    }

    fn record_decision(&mut self, event: &Event) {
        if let Some(record) = self.open_activity(event) {
            record.decision = DecisionMade::of(&event.payload).decision;
        }
    }

    fn finish_activity(&mut self, event: &Event) {
        if let Some(record) = self.open_activity(event) {
            if event.service.is_some() {
                record.service = event.service.clone();
            }
            record.finished_event = Some(event.id.clone());
            record.finished_at = Some(event.at.clone());
            let finished = ActivityFinished::of(&event.payload);
            record.outcome = finished.outcome;
            record.duration_ms = finished.duration_ms;
            record.outputs = finished.outputs.unwrap_or(Value::Null);
            record.errors = finished.errors.unwrap_or(json!([]));
            record.quality_gates = finished.quality_gates.unwrap_or(json!({}));
        }
    }

    fn finish_run(&mut self, event: &Event) {
        if let Some(run) = self.run_mut(event) {
            run.finished_at = Some(event.at.clone());
            let finished = RunFinished::of(&event.payload);
            run.outcome = finished.outcome;
            run.duration_ms = finished.duration_ms;
        }
    }

    /// Ids of events reverted by an undo that no redo cancelled.
    pub fn reverted_ids(&self) -> BTreeSet<&str> {
        self.reverted.reverted_ids()
    }

    /// Whether a redo (`events.restored`) cancelled the undo `undo_id`.
    pub fn is_restored(&self, undo_id: &str) -> bool {
        self.reverted.is_restored(undo_id)
    }

    /// Ids of the events `git spectra log` marks as reverted (see
    /// [`RevertedSet::marked_reverted`]).
    pub fn marked_reverted(&self) -> BTreeSet<&str> {
        self.reverted.marked_reverted()
    }

    /// The undo (`events.reverted` event id) that undid `run`, if an undo that no redo
    /// cancelled reverted its `run.started`.
    pub fn undone_by(&self, run: &str) -> Option<&str> {
        let record = self.runs.iter().find(|record| record.run == run)?;
        self.reverted.reverted_by(record.event_ids.first()?)
    }

    /// Each run with whether it is undone: its `run.started` is reverted (undo of the run, or
    /// of that one event).
    fn live_runs(&self) -> impl Iterator<Item = (&RunRecord, bool)> {
        let reverted = self.reverted_ids();
        self.runs.iter().map(move |run| {
            let undone = run
                .event_ids
                .first()
                .is_some_and(|first| reverted.contains(first.as_str()));
            (run, undone)
        })
    }

    /// The latest manifest of each (service, activity), optionally filtered.
    pub fn manifests(&self, activity: Option<&str>, service: Option<&str>) -> Vec<Manifest> {
        let mut latest: BTreeMap<(Option<String>, String), (&RunRecord, &ActivityRecord)> =
            BTreeMap::new();
        let reverted = self.reverted_ids();
        for (run, undone) in self.live_runs() {
            if undone || run.dry_run {
                continue;
            }
            for record in &run.activities {
                if !matches(record, activity, service, &reverted) {
                    continue;
                }
                latest.insert(
                    (record.service.clone(), record.activity.clone()),
                    (run, record),
                );
            }
        }
        let mut manifests: Vec<Manifest> = latest
            .into_values()
            .map(|(run, record)| manifest_of(run, record))
            .collect();
        manifests.sort_by(|a, b| (&a.service, &a.activity).cmp(&(&b.service, &b.activity)));
        manifests
    }

    /// Entries of `activity`'s history, oldest first, optionally for one service.
    pub fn history(
        &self,
        activity: Option<&str>,
        service: Option<&str>,
    ) -> Vec<(String, HistoryEntry)> {
        let mut entries = Vec::new();
        let reverted = self.reverted_ids();
        for (run, undone) in self.live_runs() {
            if undone {
                continue;
            }
            for record in &run.activities {
                if !matches(record, activity, service, &reverted) {
                    continue;
                }
                entries.push((record.activity.clone(), history_entry(run, record)));
            }
        }
        entries
    }

    /// One row per run, oldest first; undone runs are marked, not hidden.
    pub fn runs(&self) -> Vec<RunRow> {
        self.live_runs()
            .map(|(run, undone)| RunRow {
                run: run.run.clone(),
                command: run.command.clone(),
                input: run.input.clone(),
                started_at: run.started_at.clone(),
                finished_at: run.finished_at.clone(),
                outcome: outcome_or_in_progress(run.outcome.as_ref()),
                duration_ms: run.duration_ms,
                dry_run: run.dry_run,
                undone,
                activities: run
                    .activities
                    .iter()
                    .map(|record| {
                        json!({
                            "activity": record.activity,
                            "service": record.service,
                            "outcome": record.outcome,
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// Whether any undo or redo was folded (the manifest index then rebuilds from scratch).
    pub fn has_reverts(&self) -> bool {
        self.reverted.has_reverts()
    }

    /// Takes the finished runs out, leaving only those still in progress.
    pub fn take_finished_runs(&mut self) -> Vec<RunRecord> {
        let (finished, open): (Vec<RunRecord>, Vec<RunRecord>) = std::mem::take(&mut self.runs)
            .into_iter()
            .partition(|run| run.finished_at.is_some());
        self.runs = open;
        self.run_index = self
            .runs
            .iter()
            .enumerate()
            .map(|(index, run)| (run.run.clone(), index))
            .collect();
        finished
    }

    /// The full record of one run, if it exists.
    pub fn run(&self, run: &str) -> Option<&RunRecord> {
        self.run_index.get(run).map(|&index| &self.runs[index])
    }
}

/// Whether an activity record belongs in a view filtered by `activity` and `service`. An
/// activity whose `activity.started` was reverted on its own (an undo of that one event) is
/// left out like an undone run.
fn matches(
    record: &ActivityRecord,
    activity: Option<&str>,
    service: Option<&str>,
    reverted: &BTreeSet<&str>,
) -> bool {
    activity.is_none_or(|wanted| wanted == record.activity)
        && service.is_none_or(|wanted| record.service.as_deref() == Some(wanted))
        && !reverted.contains(record.started_event.as_str())
}

pub(crate) fn manifest_of(run: &RunRecord, record: &ActivityRecord) -> Manifest {
    let status = match &record.outcome {
        None if run.finished_at.is_some() => "failed",
        None => "in_progress",
        Some(Outcome::Succeeded) => "complete",
        // Decided and written, but a required gate failed: the word the specification's
        // `stages` and the document's front matter use too.
        Some(Outcome::Incomplete) => "incomplete",
        Some(_) => "failed",
    };
    let gates_passed = record
        .quality_gates
        .as_object()
        .is_some_and(|gates| !gates.is_empty() && gates.values().all(|v| v == &Value::Bool(true)));
    Manifest {
        activity: record.activity.clone(),
        service: record.service.clone(),
        status: status.to_string(),
        started_at: Some(record.started_at.clone()),
        completed_at: record.finished_at.clone(),
        duration: record.duration_ms,
        outputs: record.outputs.clone(),
        errors: record.errors.clone(),
        quality_gates_passed: gates_passed,
        quality_gates: record.quality_gates.clone(),
        run: Some(run.run.clone()),
    }
}

pub(crate) fn history_entry(run: &RunRecord, record: &ActivityRecord) -> HistoryEntry {
    HistoryEntry {
        timestamp: record.started_at.clone(),
        run: run.run.clone(),
        service: record.service.clone(),
        decision: record.decision.clone().unwrap_or(Value::Null),
        context: record.context.clone(),
        outcome: outcome_or_in_progress(record.outcome.as_ref()),
        result: json!({"outputs": record.outputs, "errors": record.errors}),
    }
}

/// The outcome word a view shows: `in_progress` for what has not finished.
fn outcome_or_in_progress(outcome: Option<&Outcome>) -> String {
    outcome.map_or("in_progress", Outcome::word).to_string()
}

impl Fold for Projection {
    type Item = Event;

    fn keep(event_json: &[u8]) -> Result<Event, crate::event::EventError> {
        decode_for_folding(event_json)
    }

    fn apply(&mut self, event: Event) -> Result<(), NeedsRebuild> {
        Projection::apply(self, &event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};

    fn sealed(events: Vec<NewEvent>) -> Vec<Event> {
        crate::event::seal_for_tests(events)
    }

    fn discover_run(run: &str, service: &str, outcome: &str) -> Vec<NewEvent> {
        crate::event::discover_run_for_tests(run, service, outcome, false)
    }

    #[test]
    fn folding_decodes_only_the_payloads_it_reads_and_gives_the_same_projection() {
        let mut events = discover_run("r1", "logging", "failed");
        events.extend(discover_run("r2", "billing", "succeeded"));
        events.push(NewEvent::new(kind::COMMIT_OBSERVED).payload(json!({"commit": "abc"})));
        let mut sealed = sealed(events);
        let undo = NewEvent::new(kind::EVENTS_REVERTED)
            .payload(json!({"targets": [sealed[0].id.clone()]}));
        sealed.extend(crate::event::seal_for_tests(vec![undo]));
        let light: Vec<Event> = sealed
            .iter()
            .map(|event| decode_for_folding(&event.canonical_json()).unwrap())
            .collect();
        let observed = light
            .iter()
            .find(|e| e.kind == kind::COMMIT_OBSERVED)
            .unwrap();
        assert_eq!(
            observed.payload,
            Value::Null,
            "a payload the fold never reads is skipped"
        );
        let full = serde_json::to_value(Projection::from_events(&sealed)).unwrap();
        let folded = serde_json::to_value(Projection::from_events(&light)).unwrap();
        assert_eq!(full, folded);
        assert!(Projection::from_events(&light).has_reverts());
    }

    #[test]
    fn the_latest_run_of_an_activity_is_its_manifest() {
        let mut events = discover_run("r1", "logging", "failed");
        events.extend(discover_run("r2", "logging", "succeeded"));
        let projection = Projection::from_events(&sealed(events));
        let manifests = projection.manifests(None, None);
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].status, "complete");
        assert_eq!(manifests[0].run.as_deref(), Some("r2"));
        assert!(manifests[0].quality_gates_passed);
        assert_eq!(projection.history(Some("discover"), None).len(), 2);
    }

    #[test]
    fn reverted_runs_vanish_from_manifests_and_history_and_come_back_on_restore() {
        let mut events = discover_run("r1", "logging", "succeeded");
        events.extend(discover_run("r2", "billing", "succeeded"));
        let mut sealed_events = sealed(events);
        let r2_ids: Vec<String> = sealed_events
            .iter()
            .filter(|e| e.run.as_deref() == Some("r2"))
            .map(|e| e.id.clone())
            .collect();
        let undo = NewEvent::new(kind::EVENTS_REVERTED)
            .payload(json!({"targets": r2_ids, "runs": ["r2"]}))
            .seal("T <t@x>", 11, GENESIS_DIGEST);
        sealed_events.push(undo.clone());
        let projection = Projection::from_events(&sealed_events);
        let services: Vec<_> = projection
            .manifests(None, None)
            .into_iter()
            .map(|m| m.service.unwrap())
            .collect();
        assert_eq!(services, vec!["logging"]);
        assert_eq!(projection.history(None, None).len(), 1);
        assert!(
            projection
                .runs()
                .iter()
                .any(|row| row.run == "r2" && row.undone)
        );

        let redo = NewEvent::new(kind::EVENTS_RESTORED)
            .payload(json!({"targets": [undo.id]}))
            .seal("T <t@x>", 12, GENESIS_DIGEST);
        sealed_events.push(redo);
        let projection = Projection::from_events(&sealed_events);
        assert_eq!(projection.manifests(None, None).len(), 2);
    }

    #[test]
    fn reverting_one_activity_start_hides_that_activity_but_not_the_run() {
        let mut sealed_events = sealed(discover_run("r1", "logging", "succeeded"));
        let activity_started = sealed_events[1].id.clone();
        let undo = NewEvent::new(kind::EVENTS_REVERTED)
            .payload(json!({"targets": [activity_started]}))
            .seal("T <t@x>", 6, GENESIS_DIGEST);
        sealed_events.push(undo.clone());
        let projection = Projection::from_events(&sealed_events);
        assert!(projection.manifests(None, None).is_empty());
        assert!(projection.history(None, None).is_empty());
        assert!(!projection.runs()[0].undone);
        assert!(
            projection
                .marked_reverted()
                .contains(activity_started.as_str())
        );
        assert!(!projection.marked_reverted().contains(undo.id.as_str()));

        // A redo brings it back and marks the undo itself as reverted.
        let redo = NewEvent::new(kind::EVENTS_RESTORED)
            .payload(json!({"targets": [undo.id]}))
            .seal("T <t@x>", 7, GENESIS_DIGEST);
        sealed_events.push(redo);
        let projection = Projection::from_events(&sealed_events);
        assert_eq!(projection.manifests(None, None).len(), 1);
        assert!(projection.is_restored(&undo.id));
        assert_eq!(
            projection.marked_reverted().into_iter().collect::<Vec<_>>(),
            vec![undo.id.as_str()]
        );
    }

    #[test]
    fn an_undo_after_a_redo_reverts_again() {
        let mut sealed_events = sealed(discover_run("r1", "logging", "succeeded"));
        let ids: Vec<String> = sealed_events.iter().map(|e| e.id.clone()).collect();
        let undo = NewEvent::new(kind::EVENTS_REVERTED)
            .payload(json!({"targets": ids}))
            .seal("T <t@x>", 6, GENESIS_DIGEST);
        let redo = NewEvent::new(kind::EVENTS_RESTORED)
            .payload(json!({"targets": [undo.id.clone()]}))
            .seal("T <t@x>", 7, GENESIS_DIGEST);
        let again = NewEvent::new(kind::EVENTS_REVERTED)
            .payload(json!({"targets": ids}))
            .seal("T <t@x>", 8, GENESIS_DIGEST);
        sealed_events.extend([undo, redo, again]);
        let projection = Projection::from_events(&sealed_events);
        assert!(projection.runs()[0].undone);
        assert!(projection.manifests(None, None).is_empty());
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        let events = sealed(vec![NewEvent::new("note.added").payload(json!({"x": 1}))]);
        let projection = Projection::from_events(&events);
        assert!(projection.runs().is_empty());
        assert_eq!(projection.events, 1);
    }
}
