//! A tip-keyed cache of the stats [`Tally`], so `git spectra stats` on a long log reads only the
//! events appended since it last ran.
//!
//! The file `<common dir>/spectra/cache/stats-v1.json` holds the tally and the tip commit it
//! reflects. On a read, the log is walked newest first from the current tip: reaching the cached
//! tip means it is an ancestor (the log only grows along first parents), so only the newer
//! events are folded onto the cached tally; never reaching it (the ref was replaced, say by a
//! fetch of another history) means the walk has seen the whole log and the tally is rebuilt from
//! it. The cache is never the truth: a missing, unreadable or stale file only costs time, and
//! failing to write it is not an error.

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::{Entry, Tally};
use crate::store::{Store, StoreError};

/// Bumped whenever the tally's stored shape changes, so an old file is simply ignored.
const CACHE_VERSION: u32 = 1;

/// The cache file, under `cache_dir` (`<common dir>/spectra/cache`).
pub fn cache_file(cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("stats-v{CACHE_VERSION}.json"))
}

/// What the cache file holds.
#[derive(Serialize, Deserialize)]
struct Cached {
    version: u32,
    /// The hex id of the newest event commit the tally includes.
    tip: String,
    tally: Tally,
}

/// The tally of the whole log, reusing and refreshing the cache in `cache_dir`.
pub fn tally(store: &Store, cache_dir: &Path) -> Result<Tally, StoreError> {
    let file = cache_file(cache_dir);
    let cached = read(&file);
    let cached_tip = cached
        .as_ref()
        .and_then(|cached| ObjectId::from_hex(cached.tip.as_bytes()).ok());
    let newer = entries_after(store, cached_tip)?;
    let Some(tip) = newer.tip else {
        // An empty log: nothing to cache.
        return Ok(Tally::default());
    };
    let mut tally = match (cached, newer.reached_cached_tip) {
        (Some(cached), true) => cached.tally,
        _ => Tally::default(),
    };
    if newer.entries.is_empty() && newer.reached_cached_tip {
        tracing::debug!(%tip, "stats cache is up to date");
        return Ok(tally);
    }
    tracing::debug!(
        %tip,
        folded = newer.entries.len(),
        incremental = newer.reached_cached_tip,
        "folding events into the stats cache"
    );
    for entry in newer.entries.into_iter().rev() {
        tally.apply(entry);
    }
    write(&file, &tip, &tally);
    Ok(tally)
}

/// The tally of the whole log, folded from scratch without touching the cache.
pub fn tally_uncached(store: &Store) -> Result<Tally, StoreError> {
    let walked = entries_after(store, None)?;
    let mut tally = Tally::default();
    for entry in walked.entries.into_iter().rev() {
        tally.apply(entry);
    }
    Ok(tally)
}

/// The events newer than `cached_tip`, newest first, as reduced entries.
struct Newer {
    /// The tip the walk started from; `None` for an empty log.
    tip: Option<ObjectId>,
    entries: Vec<Entry>,
    /// Whether the walk stopped at the cached tip (so the entries extend the cached tally).
    reached_cached_tip: bool,
}

fn entries_after(store: &Store, cached_tip: Option<ObjectId>) -> Result<Newer, StoreError> {
    let after = store.events_after(cached_tip)?;
    Ok(Newer {
        tip: after.tip,
        // Newest first, as the callers fold them in reverse.
        entries: after.events.iter().rev().map(Entry::of).collect(),
        reached_cached_tip: after.reached,
    })
}

/// The cached tally, or `None` when the file is missing, unreadable or of another version.
fn read(file: &Path) -> Option<Cached> {
    let bytes = std::fs::read(file).ok()?;
    match serde_json::from_slice::<Cached>(&bytes) {
        Ok(cached) if cached.version == CACHE_VERSION => Some(cached),
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(file = %file.display(), %error, "ignoring an unreadable stats cache");
            None
        }
    }
}

/// Replaces the cache file atomically (write a temporary file, then rename), so a reader never
/// sees half a file. Failure only costs the next run time.
fn write(file: &Path, tip: &ObjectId, tally: &Tally) {
    if let Err(error) = try_write(file, tip, tally) {
        tracing::debug!(file = %file.display(), %error, "cannot write the stats cache");
    }
}

fn try_write(file: &Path, tip: &ObjectId, tally: &Tally) -> std::io::Result<()> {
    let dir = file
        .parent()
        .expect("the cache file is inside the cache dir");
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    let cached = CachedRef {
        version: CACHE_VERSION,
        tip: tip.to_string(),
        tally,
    };
    let mut writer = std::io::BufWriter::new(temp.as_file_mut());
    serde_json::to_writer(&mut writer, &cached)?;
    writer.flush()?;
    drop(writer);
    temp.persist(file).map_err(|err| err.error)?;
    Ok(())
}

/// [`Cached`] by reference, so writing does not copy the tally.
#[derive(Serialize)]
struct CachedRef<'a> {
    version: u32,
    tip: String,
    tally: &'a Tally,
}
