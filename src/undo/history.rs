//! The event log as undo reads it: every event oldest first, what is already reverted, which
//! events belong to undo and redo themselves, and what depends on a set of targets.
//!
//! "Depends" is defined here, once: a later event that is neither a target nor already
//! reverted depends on the targets when its `causes` name a target or an event that itself
//! depends on one (the causal closure); and a later run that is not undone and not a dry run
//! depends on them when it concerns a service one of the targets concerns, because that run
//! read the manifests and files the targets produced. A later run that recorded no decision
//! of an activity and changed nothing ([`History::is_empty_run`]) built on nothing and never
//! depends.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::event::{Event, Outcome, kind};
use crate::projection::Projection;
use crate::store::{Filter, Store, StoreError};

/// Something that depends on the targets of an undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependent {
    /// The dependent event, when the dependency is causal.
    pub event: Option<String>,
    /// The run it belongs to.
    pub run: Option<String>,
    /// Why it depends on the targets, in a sentence.
    pub why: String,
}

/// The whole log, folded once.
pub struct History {
    events: Vec<Event>,
    position: HashMap<String, usize>,
    projection: Projection,
    reverted: HashSet<String>,
    /// Runs that undo or redo recorded (their compensations, their own events).
    machinery_runs: HashSet<String>,
}

impl History {
    /// Reads every event of `store`.
    pub fn load(store: &Store) -> Result<History, StoreError> {
        let events = store
            .events_oldest_first(&Filter::default())?
            .into_iter()
            .map(|stored| stored.event)
            .collect();
        Ok(History::from_events(events))
    }

    /// Builds the view from events already read, oldest first.
    pub fn from_events(events: Vec<Event>) -> History {
        let projection = Projection::from_events(&events);
        let reverted = projection
            .reverted_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        let position = events
            .iter()
            .enumerate()
            .map(|(index, event)| (event.id.clone(), index))
            .collect();
        let machinery_runs = events
            .iter()
            .filter(|event| is_undo_record(event))
            .filter_map(|event| event.run.clone())
            .collect();
        History {
            events,
            position,
            projection,
            reverted,
            machinery_runs,
        }
    }

    /// Every event, in the log's total order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The views folded from them.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The event with id `id`, if the log holds it.
    pub fn event(&self, id: &str) -> Option<&Event> {
        self.position.get(id).map(|&index| &self.events[index])
    }

    /// Whether an active undo reverts `id`.
    pub fn is_reverted(&self, id: &str) -> bool {
        self.reverted.contains(id)
    }

    /// Whether `event` was recorded by an undo or redo rather than by a run of its own.
    pub fn is_machinery(&self, event: &Event) -> bool {
        is_undo_record(event)
            || event
                .run
                .as_deref()
                .is_some_and(|run| self.machinery_runs.contains(run))
            || (event.kind.starts_with("playbook.") && event.payload_str("action") == Some("undo"))
    }

    /// Whether `run` is the run of an undo or redo.
    pub fn is_machinery_run(&self, run: &str) -> bool {
        self.machinery_runs.contains(run)
    }

    /// Every event of `run`, oldest first.
    pub fn run_events(&self, run: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| event.run.as_deref() == Some(run))
            .collect()
    }

    /// The newest run (one that recorded `run.started`) that is not undone.
    pub fn latest_live_run(&self) -> Option<String> {
        self.projection
            .runs()
            .into_iter()
            .rev()
            .find(|row| !row.undone && !self.is_machinery_run(&row.run))
            .map(|row| row.run)
    }

    /// The newest undo (`events.reverted`) that no redo has cancelled.
    pub fn latest_active_undo(&self) -> Option<&Event> {
        self.events.iter().rev().find(|event| {
            event.kind == kind::EVENTS_REVERTED && !self.projection.is_restored(&event.id)
        })
    }

    /// The `playbook.finished` that closes the `playbook.started` with id `started`.
    pub fn finished_of(&self, started: &str) -> Option<&Event> {
        let from = *self.position.get(started)?;
        self.events[from..].iter().find(|event| {
            event.kind == kind::PLAYBOOK_FINISHED && event.causes.iter().any(|c| c == started)
        })
    }

    /// Every `undo.failed` event in the log.
    pub fn unfinished_undos_all(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| event.kind == kind::UNDO_FAILED)
            .collect()
    }

    /// The `undo.failed` events since the last undo or redo that completed: what an unfinished
    /// undo already did, so that running it again does not do it twice.
    pub fn unfinished_undos(&self) -> Vec<&Event> {
        let since = self
            .events
            .iter()
            .rposition(|event| {
                event.kind == kind::EVENTS_REVERTED || event.kind == kind::EVENTS_RESTORED
            })
            .map_or(0, |index| index + 1);
        self.events[since..]
            .iter()
            .filter(|event| event.kind == kind::UNDO_FAILED)
            .collect()
    }

    /// Everything that depends on `targets` (see the module documentation).
    pub fn dependents(&self, targets: &[&Event]) -> Vec<Dependent> {
        let mut dependents = self.causal_dependents(targets);
        dependents.extend(self.same_service_runs(targets));
        dependents
    }

    fn causal_dependents(&self, targets: &[&Event]) -> Vec<Dependent> {
        let Some(first) = targets
            .iter()
            .filter_map(|t| self.position.get(&t.id))
            .min()
        else {
            return Vec::new();
        };
        let mut closure: HashSet<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let mut dependents = Vec::new();
        for event in &self.events[*first..] {
            if closure.contains(event.id.as_str())
                || self.is_reverted(&event.id)
                || self.is_machinery(event)
            {
                continue;
            }
            if let Some(cause) = event.causes.iter().find(|c| closure.contains(c.as_str())) {
                dependents.push(Dependent {
                    event: Some(event.id.clone()),
                    run: event.run.clone(),
                    why: format!("{} {} names {cause} among its causes", event.kind, event.id),
                });
                closure.insert(&event.id);
            }
        }
        dependents
    }

    fn same_service_runs(&self, targets: &[&Event]) -> Vec<Dependent> {
        let services: BTreeSet<&str> = targets
            .iter()
            .filter_map(|t| t.service.as_deref())
            .collect();
        let target_runs: BTreeSet<&str> = targets.iter().filter_map(|t| t.run.as_deref()).collect();
        let Some(last_target) = targets
            .iter()
            .filter_map(|t| self.position.get(&t.id))
            .max()
        else {
            return Vec::new();
        };
        let mut dependents = Vec::new();
        for row in self.projection.runs() {
            let later = self
                .projection
                .run(&row.run)
                .and_then(|record| record.event_ids.first())
                .and_then(|first| self.position.get(first))
                .is_some_and(|position| position > last_target);
            if !later
                || row.undone
                || row.dry_run
                || target_runs.contains(row.run.as_str())
                || self.is_machinery_run(&row.run)
                || self.is_empty_run(&row.run)
            {
                continue;
            }
            let shared = self
                .run_events(&row.run)
                .into_iter()
                .filter_map(|event| event.service.as_deref())
                .find(|service| services.contains(service));
            if let Some(service) = shared {
                dependents.push(Dependent {
                    event: None,
                    run: Some(row.run.clone()),
                    why: format!(
                        "run {} ({}) came later for service {service} and built on it",
                        row.run,
                        row.command.as_deref().unwrap_or("run")
                    ),
                });
            }
        }
        dependents
    }
}

impl History {
    /// Whether `run` recorded no decision of an activity and changed nothing: no commit
    /// (`files.committed`) and no playbook that really ran and may have had an effect (one not
    /// run as a dry run, that did not fail). Such a run (an activity that could not reach its
    /// model, say) built on nothing, so it is never a dependent. The planner's decision is not
    /// an activity's: it only chose what to run.
    pub fn is_empty_run(&self, run: &str) -> bool {
        !self
            .run_events(run)
            .into_iter()
            .any(|event| match event.kind.as_str() {
                kind::DECISION_MADE => event.payload_str("mode") != Some("planner"),
                kind::FILES_COMMITTED => true,
                kind::PLAYBOOK_STARTED => self.may_have_had_an_effect(event),
                _ => false,
            })
    }

    /// Whether the playbook `started` ran for real and did not end failed (a
    /// playbook still running, or closed as interrupted, may have changed something).
    fn may_have_had_an_effect(&self, started: &Event) -> bool {
        if started.payload["dry_run"] == true {
            return false;
        }
        let outcome = self
            .finished_of(&started.id)
            .and_then(|finished| finished.payload_str("outcome"))
            .map(Outcome::from_word);
        // As for compensations: a playbook that failed is presumed to have changed nothing.
        !matches!(outcome, Some(Outcome::Failed | Outcome::DryRun))
    }
}

/// The events undo and redo write about themselves.
fn is_undo_record(event: &Event) -> bool {
    matches!(
        event.kind.as_str(),
        kind::EVENTS_REVERTED | kind::EVENTS_RESTORED | kind::UNDO_FAILED | kind::UNDO_STARTED
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::NewEvent;

    fn sealed(events: Vec<NewEvent>) -> Vec<Event> {
        crate::event::seal_for_tests(events)
    }

    fn run(run: &str, service: &str) -> Vec<NewEvent> {
        crate::event::discover_run_for_tests(run, service, "succeeded", false)
    }

    fn targets<'h>(history: &'h History, run: &str) -> Vec<&'h Event> {
        history.run_events(run)
    }

    #[test]
    fn a_later_run_for_the_same_service_depends_and_one_for_another_does_not() {
        let mut events = run("r1", "logging");
        events.extend(run("r2", "billing"));
        events.extend(run("r3", "logging"));
        let history = History::from_events(sealed(events));
        let dependents = history.dependents(&targets(&history, "r1"));
        assert_eq!(dependents.len(), 1, "{dependents:?}");
        assert_eq!(dependents[0].run.as_deref(), Some("r3"));
        assert!(history.dependents(&targets(&history, "r3")).is_empty());
    }

    /// A run whose activity failed before deciding: started, finished failed, nothing else.
    fn failed_before_deciding(run: &str, service: &str) -> Vec<NewEvent> {
        vec![
            NewEvent::new(kind::RUN_STARTED)
                .run(run)
                .service(service)
                .payload(json!({"command": "plan", "input": "x", "dry_run": false})),
            NewEvent::new(kind::ACTIVITY_STARTED)
                .run(run)
                .activity("plan")
                .service(service)
                .payload(json!({"input": "x"})),
            NewEvent::new(kind::ACTIVITY_FINISHED)
                .run(run)
                .activity("plan")
                .service(service)
                .payload(json!({"outcome": "failed", "errors": [{"reason": "llm_unreachable"}]})),
            NewEvent::new(kind::RUN_FINISHED)
                .run(run)
                .service(service)
                .payload(json!({"outcome": "failed"})),
        ]
    }

    #[test]
    fn a_later_run_that_decided_nothing_and_changed_nothing_does_not_depend() {
        let mut events = run("r1", "logging");
        events.extend(failed_before_deciding("r2", "logging"));
        // The planner's decision alone decides nothing an activity built.
        let mut planned = failed_before_deciding("r3", "logging");
        planned.insert(
            1,
            NewEvent::new(kind::DECISION_MADE)
                .run("r3")
                .payload(json!({"decision": {"activities": ["plan"]}, "mode": "planner"})),
        );
        events.extend(planned);
        let history = History::from_events(sealed(events));
        assert!(history.is_empty_run("r2") && history.is_empty_run("r3"));
        assert!(!history.is_empty_run("r1"), "r1 decided");
        let dependents = history.dependents(&targets(&history, "r1"));
        assert!(dependents.is_empty(), "{dependents:?}");
    }

    #[test]
    fn a_later_run_with_a_playbook_that_ran_depends_even_without_a_decision() {
        let mut events = run("r1", "logging");
        let mut ran = failed_before_deciding("r2", "logging");
        let started = NewEvent::new(kind::PLAYBOOK_STARTED)
            .run("r2")
            .service("logging")
            .payload(json!({"playbook": "deploy.apply", "action": "run", "dry_run": false}));
        let finished = NewEvent::new(kind::PLAYBOOK_FINISHED)
            .run("r2")
            .cause(started.id.clone())
            .payload(json!({"playbook": "deploy.apply", "outcome": "succeeded"}));
        ran.splice(2..2, [started, finished]);
        events.extend(ran);
        let history = History::from_events(sealed(events));
        assert!(!history.is_empty_run("r2"));
        let dependents = history.dependents(&targets(&history, "r1"));
        assert_eq!(dependents.len(), 1, "{dependents:?}");
        assert_eq!(dependents[0].run.as_deref(), Some("r2"));
    }

    #[test]
    fn causes_make_dependents_transitively_and_reverted_events_do_not_count() {
        let mut events = run("r1", "logging");
        let target = events[1].id.clone();
        let direct = NewEvent::new("note.added").cause(target.clone());
        let indirect = NewEvent::new("note.added").cause(direct.id.clone());
        let undone_note = NewEvent::new("note.added").cause(target.clone());
        let undo = NewEvent::new(kind::EVENTS_REVERTED)
            .run("u1")
            .payload(json!({"targets": [undone_note.id.clone()]}));
        let ids = [direct.id.clone(), indirect.id.clone()];
        events.extend([direct, indirect, undone_note, undo]);
        let history = History::from_events(sealed(events));
        let found: Vec<String> = history
            .dependents(&[history.event(&target).unwrap()])
            .into_iter()
            .filter_map(|d| d.event)
            .collect();
        assert_eq!(found, ids);
    }

    #[test]
    fn the_latest_live_run_skips_undone_runs_and_undo_runs() {
        let mut events = run("r1", "logging");
        events.extend(run("r2", "billing"));
        let history = History::from_events(sealed(events.clone()));
        let r2: Vec<String> = history
            .run_events("r2")
            .iter()
            .map(|e| e.id.clone())
            .collect();
        events.push(
            NewEvent::new(kind::EVENTS_REVERTED)
                .run("u1")
                .payload(json!({"targets": r2})),
        );
        let history = History::from_events(sealed(events));
        assert_eq!(history.latest_live_run().as_deref(), Some("r1"));
        assert!(history.is_machinery_run("u1"));
        assert!(history.latest_active_undo().is_some());
    }
}
