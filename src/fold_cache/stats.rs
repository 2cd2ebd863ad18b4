//! The stats tally, cached, so `git spectra stats` on a long log reads only the events
//! appended since it last ran.

use std::path::Path;

use super::{Cached, Folded};
use crate::stats::Tally;
use crate::store::{Store, StoreError};

impl Cached for Tally {
    const NAME: &'static str = "stats";
    const VERSION: u32 = 4;
    const CHECKPOINT_EVERY: u64 = 2048;
    const CHECKPOINTS_KEPT: usize = 8;
}

/// The tally of the whole log, reusing the cache in `cache_dir`; [`Folded::save`] writes it
/// back (separately, so that a caller can write while it reports).
pub fn tally(store: &Store, cache_dir: &Path) -> Result<Folded<Tally>, StoreError> {
    super::load::<Tally>(cache_dir, store)
}
