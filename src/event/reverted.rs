//! Which events an undo in effect takes back: the one fold of `events.reverted` and
//! `events.restored` that the projections, stats and undo all read.
//!
//! An `events.reverted` (undo) names its targets; an `events.restored` (redo) names the undos
//! it cancels. An event is reverted while some undo naming it is not cancelled. Cancelling is
//! by id, whatever the order the two arrive in, so the answer depends only on which events the
//! log holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::payload::Targets;
use super::{Event, kind};

/// The undos and redos of a log, folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevertedSet {
    /// `events.reverted` event id -> the event ids it reverts.
    reverts: BTreeMap<String, Vec<String>>,
    /// `events.reverted` ids cancelled by an `events.restored` (redo).
    restored: BTreeSet<String>,
}

impl RevertedSet {
    /// Whether `kind` is one this fold reads (and so needs the payload of).
    pub fn reads(kind: &str) -> bool {
        matches!(kind, kind::EVENTS_REVERTED | kind::EVENTS_RESTORED)
    }

    /// Folds one event; events of other kinds change nothing.
    pub fn apply(&mut self, event: &Event) {
        if !Self::reads(&event.kind) {
            return;
        }
        let targets = Targets::of(&event.payload).targets;
        if event.kind == kind::EVENTS_REVERTED {
            self.revert(&event.id, targets);
        } else {
            self.restore(targets);
        }
    }

    /// Folds the undo `undo_id`, which reverts `targets`.
    pub fn revert(&mut self, undo_id: &str, targets: Vec<String>) {
        self.reverts.insert(undo_id.to_string(), targets);
    }

    /// Folds a redo, which cancels the undos `undos`.
    pub fn restore(&mut self, undos: impl IntoIterator<Item = String>) {
        self.restored.extend(undos);
    }

    /// Ids of events reverted by an undo that no redo cancelled.
    pub fn reverted_ids(&self) -> BTreeSet<&str> {
        self.reverts
            .iter()
            .filter(|(undo, _)| !self.restored.contains(*undo))
            .flat_map(|(_, targets)| targets.iter().map(String::as_str))
            .collect()
    }

    /// The undo (`events.reverted` event id) that reverts `id` and that no redo cancelled; the
    /// newest when several do.
    pub fn reverted_by(&self, id: &str) -> Option<&str> {
        self.reverts
            .iter()
            .filter(|(undo, targets)| {
                !self.restored.contains(*undo) && targets.iter().any(|target| target == id)
            })
            .map(|(undo, _)| undo.as_str())
            .next_back()
    }

    /// Whether a redo (`events.restored`) cancelled the undo `undo_id`.
    pub fn is_restored(&self, undo_id: &str) -> bool {
        self.restored.contains(undo_id)
    }

    /// Ids of the events `git spectra log` marks as reverted: those an active undo names, and
    /// the undos a redo cancelled (a redo is the undo of an undo).
    pub fn marked_reverted(&self) -> BTreeSet<&str> {
        let mut marked = self.reverted_ids();
        marked.extend(
            self.restored
                .iter()
                .filter(|undo| self.reverts.contains_key(*undo))
                .map(String::as_str),
        );
        marked
    }

    /// Whether any undo was folded.
    pub fn has_reverts(&self) -> bool {
        !self.reverts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{NewEvent, seal_for_tests};
    use serde_json::json;

    fn fold(events: &[Event]) -> RevertedSet {
        let mut set = RevertedSet::default();
        for event in events {
            set.apply(event);
        }
        set
    }

    #[test]
    fn an_undo_reverts_its_targets_until_a_redo_cancels_it() {
        let undo = NewEvent::new(kind::EVENTS_REVERTED).payload(json!({"targets": ["a", "b"]}));
        let redo = NewEvent::new(kind::EVENTS_RESTORED).payload(json!({"targets": [undo.id]}));
        let again = NewEvent::new(kind::EVENTS_REVERTED).payload(json!({"targets": ["a"]}));
        let events = seal_for_tests(vec![undo.clone(), redo, again.clone()]);

        let after_undo = fold(&events[..1]);
        assert_eq!(
            after_undo.reverted_ids().into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        let after_redo = fold(&events[..2]);
        assert!(after_redo.reverted_ids().is_empty());
        assert!(after_redo.is_restored(&undo.id));
        assert_eq!(
            after_redo.marked_reverted().into_iter().collect::<Vec<_>>(),
            [undo.id.as_str()]
        );
        let after_again = fold(&events);
        assert_eq!(
            after_again.reverted_ids().into_iter().collect::<Vec<_>>(),
            ["a"]
        );
        assert!(after_again.has_reverts());
    }

    #[test]
    fn a_redo_folded_before_its_undo_still_cancels_it() {
        // After a merge of two logs, the total order need not put the undo first.
        let undo = NewEvent::new(kind::EVENTS_REVERTED).payload(json!({"targets": ["a"]}));
        let redo = NewEvent::new(kind::EVENTS_RESTORED).payload(json!({"targets": [undo.id]}));
        let set = fold(&seal_for_tests(vec![redo, undo]));
        assert!(set.reverted_ids().is_empty());
    }

    #[test]
    fn other_kinds_and_odd_targets_change_nothing() {
        let note = NewEvent::new("note.added").payload(json!({"targets": ["a"]}));
        let odd = NewEvent::new(kind::EVENTS_REVERTED).payload(json!({"targets": [1, "c"]}));
        let set = fold(&seal_for_tests(vec![note, odd]));
        assert_eq!(set.reverted_ids().into_iter().collect::<Vec<_>>(), ["c"]);
    }
}
