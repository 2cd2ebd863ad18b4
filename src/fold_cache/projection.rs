//! The full projection, cached: what `history`, `runs` and `status` read.

use super::Cached;
use crate::projection::Projection;
use crate::repo::Repo;
use crate::store::{Store, StoreError};

impl Cached for Projection {
    const NAME: &'static str = "projection";
    const VERSION: u32 = 4;
    // The projection holds every run, so its checkpoints are large: fewer, further apart.
    const CHECKPOINT_EVERY: u64 = 8192;
    const CHECKPOINTS_KEPT: usize = 2;
}

/// The projection of the whole log, from the cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<Projection, StoreError> {
    Ok(super::load::<Projection>(&crate::tip_cache::dir(repo), store)?.saved())
}
