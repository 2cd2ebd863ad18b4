//! A fold of the event log: what it keeps of each event and how it applies one, the events
//! coming oldest first in the log's total order. The projection, the manifest index and the
//! stats tally are folds; [`crate::fold_cache`] caches any of them.

use crate::event::EventError;

/// An event a fold cannot apply to its state alone (an undo that brings an older state back):
/// the fold must be rebuilt another way.
#[derive(Debug)]
pub struct NeedsRebuild;

/// A fold of the whole log.
pub trait Fold: Default {
    /// What the fold keeps of each event.
    type Item: Send;

    /// What the fold keeps of an event's `event.json` (runs on the store's reading threads, so
    /// a fold that reads a few fields decodes only those).
    fn keep(event_json: &[u8]) -> Result<Self::Item, EventError>;

    /// Folds in the next event.
    fn apply(&mut self, item: Self::Item) -> Result<(), NeedsRebuild>;
}
