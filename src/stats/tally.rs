//! The tally: the fold of the log that stats keeps, and the [`Fold`] the cache drives.
//!
//! [`Tally::add`] keeps each event's reduced entry by event id, in log order, so that a later
//! `events.reverted` can take an earlier event back out and an `events.restored` put it back.
//! [`Tally::stats`] applies a [`Scope`] and the reverted set, and hands the samples left to the
//! view's builder.

use serde::{Deserialize, Serialize};

use super::build::Builder;
use super::reduce::{Reduced, Restore, Revert, Sample};
use super::view::{Stats, UndoStats};
use super::{Scope, stored};
use crate::event::{Event, EventError, RevertedSet};
use crate::fold::{Fold, NeedsRebuild};

/// The facts stats keeps from the log: one entry per event that matters, by event id.
/// Cached in the compact shape of [`stored`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "stored::StoredTally", try_from = "stored::StoredTally")]
pub struct Tally {
    /// Events folded so far, whatever their kind.
    pub(super) events: u64,
    pub(super) samples: Vec<Sample>,
    pub(super) reverts: Vec<Revert>,
    pub(super) restores: Vec<Restore>,
}

/// Folds `events` (oldest first) into a tally.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Tally {
    let mut tally = Tally::default();
    for event in events {
        tally.add(event);
    }
    tally
}

impl Tally {
    /// Adds the next event of the log (events must come oldest first).
    pub fn add(&mut self, event: &Event) {
        self.apply_entry(Reduced::of(event));
    }

    pub(super) fn apply_entry(&mut self, entry: Reduced) {
        self.events += 1;
        match entry {
            Reduced::Sample(sample) => self.samples.push(sample),
            Reduced::Revert(revert) => self.reverts.push(revert),
            Reduced::Restore(restore) => self.restores.push(restore),
            Reduced::Skipped => {}
        }
    }

    /// How many events have been folded, whatever their kind.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The view over the events `scope` covers, without reverted events.
    pub fn stats(&self, scope: &Scope) -> Stats {
        let reverted = self.reverted();
        let reverted = reverted.reverted_ids();
        let since_ms = scope.since.map(|since| since.as_millisecond());
        let in_time = |at_ms: i64| since_ms.is_none_or(|since| at_ms >= since);
        let mut builder = Builder::default();
        for sample in &self.samples {
            let in_scope = in_time(sample.at_ms)
                && scope
                    .activity
                    .as_deref()
                    .is_none_or(|wanted| sample.activity.as_deref() == Some(wanted));
            if !in_scope {
                continue;
            }
            if reverted.contains(sample.id.as_str()) {
                builder.excluded += 1;
            } else {
                builder.add(sample);
            }
        }
        let undo = UndoStats {
            undos: self.reverts.iter().filter(|r| in_time(r.at_ms)).count() as u64,
            redos: self.restores.iter().filter(|r| in_time(r.at_ms)).count() as u64,
        };
        builder.finish(self.events, scope, undo)
    }

    /// The undos and redos folded, as the projections and undo fold them.
    fn reverted(&self) -> RevertedSet {
        let mut reverted = RevertedSet::default();
        for revert in &self.reverts {
            reverted.revert(&revert.id, revert.targets.clone());
        }
        for restore in &self.restores {
            reverted.restore(restore.targets.iter().cloned());
        }
        reverted
    }
}

/// What the tally keeps of one event, as the store reads it.
pub struct Entry(Reduced);

/// The tally is a [`Fold`] of the log (cached by [`crate::fold_cache`]).
impl Fold for Tally {
    type Item = Entry;

    fn keep(event_json: &[u8]) -> Result<Entry, EventError> {
        Reduced::of_json(event_json).map(Entry)
    }

    fn apply(&mut self, entry: Entry) -> Result<(), NeedsRebuild> {
        self.apply_entry(entry.0);
        Ok(())
    }
}
