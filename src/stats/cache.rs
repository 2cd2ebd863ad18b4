//! A tip-keyed cache of the stats [`Tally`], so `git spectra stats` on a long log reads only the
//! events appended since it last ran.
//!
//! The file `<common dir>/spectra/cache/stats.json` holds the tally and the tip commit it
//! reflects. On a read, the store returns the events after the cached tip: when it is an
//! ancestor and every newer event sorts after it in the log's total order (always so for
//! appends), only those are folded onto the cached tally; otherwise (the ref was replaced, or a
//! merge brought in events that sort among older ones) the store returns the whole log and the
//! tally is rebuilt from it. The cache is never the truth: a missing, unreadable or stale file only costs time, and
//! failing to write it is not an error.

use std::path::{Path, PathBuf};

use gix::ObjectId;

use super::{Entry, Tally};
use crate::store::{Store, StoreError};
use crate::tip_cache;

/// Bumped whenever the tally's stored shape changes, so an old file is simply ignored.
const CACHE_VERSION: u32 = 3;

/// The cache file, under `cache_dir` (`<common dir>/spectra/cache`).
pub fn cache_file(cache_dir: &Path) -> PathBuf {
    cache_dir.join("stats.json")
}

/// The tally of the whole log, reusing the cache in `cache_dir`, and what to write back.
pub fn tally(store: &Store, cache_dir: &Path) -> Result<Folded, StoreError> {
    let file = cache_file(cache_dir);
    let cached = tip_cache::read::<Tally>(&file, CACHE_VERSION);
    let cached_tip = cached.as_ref().map(|(tip, _)| *tip);
    let newer = entries_after(store, cached_tip)?;
    let Some(tip) = newer.tip else {
        // An empty log: nothing to cache.
        return Ok(Folded::unchanged(Tally::default()));
    };
    let mut tally = match (cached, newer.reached_cached_tip) {
        (Some((_, cached)), true) => cached,
        _ => Tally::default(),
    };
    if newer.entries.is_empty() && newer.reached_cached_tip {
        tracing::debug!(%tip, "stats cache is up to date");
        return Ok(Folded::unchanged(tally));
    }
    tracing::debug!(
        %tip,
        folded = newer.entries.len(),
        incremental = newer.reached_cached_tip,
        "folding events into the stats cache"
    );
    for entry in newer.entries {
        tally.apply(entry);
    }
    Ok(Folded {
        tally,
        refresh: Some((file, tip)),
    })
}

/// A tally, and the cache it should be saved to when it is newer than the cache's.
pub struct Folded {
    pub tally: Tally,
    refresh: Option<(PathBuf, ObjectId)>,
}

impl Folded {
    fn unchanged(tally: Tally) -> Folded {
        Folded {
            tally,
            refresh: None,
        }
    }

    /// Writes the tally to the cache if it is newer. Separate from [`tally`] so that a caller
    /// can write while it reports: on a long log writing is a tenth of a cold run. Failing to
    /// write is not an error (the cache is never the truth).
    pub fn save(&self) {
        if let Some((file, tip)) = &self.refresh {
            tip_cache::write(file, CACHE_VERSION, tip, &self.tally);
        }
    }
}

/// The events newer than `cached_tip`, oldest first, as reduced entries.
struct Newer {
    /// The tip the walk started from; `None` for an empty log.
    tip: Option<ObjectId>,
    entries: Vec<Entry>,
    /// Whether the walk stopped at the cached tip (so the entries extend the cached tally).
    reached_cached_tip: bool,
}

fn entries_after(store: &Store, cached_tip: Option<ObjectId>) -> Result<Newer, StoreError> {
    let after = store.events_after_kept(cached_tip, &Entry::of_json)?;
    Ok(Newer {
        tip: after.tip,
        entries: after.events,
        reached_cached_tip: after.reached,
    })
}
