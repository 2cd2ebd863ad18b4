//! The full projection, cached: what `history`, `runs` and `status` read.

use super::{Fold, NeedsRebuild};
use crate::event::{Event, EventError};
use crate::projection::Projection;
use crate::repo::Repo;
use crate::store::{Store, StoreError};

impl Fold for Projection {
    type Item = Event;
    const NAME: &'static str = "projection";
    const VERSION: u32 = 4;
    // The projection holds every run, so its checkpoints are large: fewer, further apart.
    const CHECKPOINT_EVERY: u64 = 8192;
    const CHECKPOINTS_KEPT: usize = 2;

    fn keep(event_json: &[u8]) -> Result<Event, EventError> {
        crate::projection::decode_for_folding(event_json)
    }

    fn apply(&mut self, event: Event) -> Result<(), NeedsRebuild> {
        Projection::apply(self, &event);
        Ok(())
    }
}

/// The projection of the whole log, from the cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<Projection, StoreError> {
    Ok(super::load::<Projection>(&crate::tip_cache::dir(repo), store)?.saved())
}
