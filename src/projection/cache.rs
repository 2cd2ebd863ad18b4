//! The projection cache: the folded state saved under the git dir, keyed by the tip it reflects.
//!
//! On a read, when the cached tip is still the tip, the cached state is the answer; when it is
//! an ancestor of the current tip (found by walking back from the tip), only the newer events
//! are folded; otherwise (the log was replaced, or the cache is unreadable) everything is
//! folded again. The cache is never the truth: deleting it changes no output, only speed.

use std::path::PathBuf;

use super::Projection;
use crate::repo::Repo;
use crate::store::{Store, StoreError};
use crate::tip_cache;

/// Bumped whenever [`Projection`]'s shape changes, so old caches are ignored.
const CACHE_VERSION: u32 = 3;

fn cache_path(repo: &Repo) -> PathBuf {
    tip_cache::path(repo, "projection.json")
}

/// The projection of the whole log, from the cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<Projection, StoreError> {
    let path = cache_path(repo);
    let cached = tip_cache::read::<Projection>(&path, CACHE_VERSION);
    let known = cached.as_ref().map(|(tip, _)| *tip);
    let after = store.events_after_kept(known, &super::decode_for_folding)?;
    let Some(tip) = after.tip else {
        return Ok(Projection::default());
    };
    let mut projection = match cached {
        Some((_, cached)) if after.reached => {
            if after.events.is_empty() {
                return Ok(cached);
            }
            cached
        }
        _ => Projection::default(),
    };
    for stored in &after.events {
        projection.apply(stored);
    }
    tip_cache::write(&path, CACHE_VERSION, &tip, &projection);
    Ok(projection)
}
