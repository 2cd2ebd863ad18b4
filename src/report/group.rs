//! A run's events grouped by activity, as the report shows them: each activity from its
//! `activity.started` to its `activity.finished`, with the model call that chose its playbooks
//! just before its start; the run's own events (the planner's) apart.

use std::collections::BTreeMap;

use crate::event::kind;
use crate::store::StoredEvent;

/// One activity's events, as they are found in the run.
#[derive(Default)]
pub(super) struct Group<'a> {
    pub name: String,
    pub service: Option<String>,
    pub started: Option<&'a StoredEvent>,
    pub finished: Option<&'a StoredEvent>,
    pub attempts: Vec<&'a StoredEvent>,
    pub decisions: Vec<&'a StoredEvent>,
    pub playbooks_started: Vec<&'a StoredEvent>,
    pub playbooks_finished: Vec<&'a StoredEvent>,
    pub commits: Vec<&'a StoredEvent>,
}

impl<'a> Group<'a> {
    fn add(&mut self, stored: &'a StoredEvent) {
        if self.service.is_none() {
            self.service = stored.event.service.clone();
        }
        match stored.event.kind.as_str() {
            kind::ACTIVITY_STARTED => self.started = Some(stored),
            kind::ACTIVITY_FINISHED => self.finished = Some(stored),
            kind::LLM_CALLED => self.attempts.push(stored),
            kind::DECISION_MADE => self.decisions.push(stored),
            kind::PLAYBOOK_STARTED => self.playbooks_started.push(stored),
            kind::PLAYBOOK_FINISHED => self.playbooks_finished.push(stored),
            kind::FILES_COMMITTED => self.commits.push(stored),
            _ => {}
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.started.is_none()
            && self.attempts.is_empty()
            && self.decisions.is_empty()
            && self.playbooks_started.is_empty()
            && self.playbooks_finished.is_empty()
            && self.commits.is_empty()
    }
}

/// The run's events by activity: the run's own (the planner's, and those of no activity)
/// first, then each activity from its `activity.started` to its `activity.finished`, with the
/// activity's events just before its start (the model call that chose its playbooks).
pub(super) fn group_by_activity<'a>(events: &[&'a StoredEvent]) -> (Group<'a>, Vec<Group<'a>>) {
    let mut own = Group {
        name: "run".to_string(),
        ..Group::default()
    };
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut before_start: BTreeMap<String, Vec<&'a StoredEvent>> = BTreeMap::new();
    for &stored in events {
        let event = &stored.event;
        let Some(activity) = event.activity.as_deref() else {
            own.add(stored);
            continue;
        };
        if event.kind == kind::ACTIVITY_STARTED {
            open.insert(activity.to_string(), groups.len());
            let mut group = Group {
                name: activity.to_string(),
                ..Group::default()
            };
            for early in before_start.remove(activity).unwrap_or_default() {
                group.add(early);
            }
            groups.push(group);
        }
        match open.get(activity) {
            Some(&index) => groups[index].add(stored),
            None => before_start
                .entry(activity.to_string())
                .or_default()
                .push(stored),
        }
        if event.kind == kind::ACTIVITY_FINISHED {
            open.remove(activity);
        }
    }
    for stored in before_start.into_values().flatten() {
        own.add(stored);
    }
    (own, groups)
}

/// The `playbook.finished` of `started`: the one that names it as a cause, else the one at the
/// same position among the group's playbooks.
pub(super) fn playbook_end<'a>(
    started: &StoredEvent,
    finished: &[&'a StoredEvent],
    position: usize,
) -> Option<&'a StoredEvent> {
    finished
        .iter()
        .find(|end| end.event.causes.contains(&started.event.id))
        .or_else(|| finished.get(position))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};

    fn stored(kind: &str, activity: Option<&str>, lamport: u64) -> StoredEvent {
        let mut event = NewEvent::new(kind);
        if let Some(activity) = activity {
            event = event.activity(activity);
        }
        StoredEvent {
            commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
            tree: gix::ObjectId::null(gix::hash::Kind::Sha1),
            subject: String::new(),
            digest: String::new(),
            event: event.seal("T <t@x>", lamport, GENESIS_DIGEST),
        }
    }

    #[test]
    fn a_model_call_just_before_an_activity_starts_is_that_activity_s() {
        let events = [
            stored(kind::RUN_STARTED, None, 1),
            stored(kind::LLM_CALLED, None, 2),
            // The re-ranking of operate's playbooks, made before its `activity.started`.
            stored(kind::LLM_CALLED, Some("operate"), 3),
            stored(kind::ACTIVITY_STARTED, Some("operate"), 4),
            stored(kind::LLM_CALLED, Some("operate"), 5),
            stored(kind::ACTIVITY_FINISHED, Some("operate"), 6),
            // Of no activity that starts: the run's own.
            stored(kind::LLM_CALLED, Some("never-started"), 7),
        ];
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let (own, groups) = group_by_activity(&refs);
        let lamports = |attempts: &[&StoredEvent]| -> Vec<u64> {
            attempts.iter().map(|stored| stored.event.lamport).collect()
        };
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "operate");
        assert_eq!(lamports(&groups[0].attempts), [3, 5]);
        assert_eq!(lamports(&own.attempts), [2, 7]);
    }
}
