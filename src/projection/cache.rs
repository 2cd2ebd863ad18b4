//! The projection cache: the folded state saved under the git dir, keyed by the tip it reflects.
//!
//! On a read, when the cached tip is still the tip, the cached state is the answer; when it is
//! an ancestor of the current tip (found by walking back from the tip), only the newer events
//! are folded; otherwise (the log was replaced, or the cache is unreadable) everything is
//! folded again. The cache is never the truth: deleting it changes no output, only speed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Projection;
use crate::repo::Repo;
use crate::store::{Store, StoreError};

/// Bumped whenever [`Projection`]'s shape changes, so old caches are ignored.
const CACHE_VERSION: u32 = 1;

#[derive(Deserialize)]
struct CacheFile {
    version: u32,
    tip: String,
    projection: Projection,
}

/// What is written: the same shape, borrowed.
#[derive(Serialize)]
struct CacheFileRef<'a> {
    version: u32,
    tip: &'a str,
    projection: &'a Projection,
}

fn cache_path(repo: &Repo) -> PathBuf {
    repo.state_dir().join("cache").join("projection.json")
}

/// The projection of the whole log, from the cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<Projection, StoreError> {
    let path = cache_path(repo);
    let cached = read_cache(&path);
    let known = cached.as_ref().map(|(tip, _)| *tip);
    let after = store.events_after(known)?;
    let Some(tip) = after.tip else {
        return Ok(Projection::default());
    };
    let mut projection = match cached {
        Some((_, cache)) if after.reached => {
            if after.events.is_empty() {
                return Ok(cache.projection);
            }
            cache.projection
        }
        _ => Projection::default(),
    };
    for stored in &after.events {
        projection.apply(stored);
    }
    write_cache(&path, &tip.to_string(), &projection);
    Ok(projection)
}

/// The cache and the tip it reflects, when it is readable and of this version.
fn read_cache(path: &Path) -> Option<(gix::ObjectId, CacheFile)> {
    let bytes = std::fs::read(path).ok()?;
    let cache: CacheFile = serde_json::from_slice(&bytes).ok()?;
    let tip = gix::ObjectId::from_hex(cache.tip.as_bytes()).ok()?;
    (cache.version == CACHE_VERSION).then_some((tip, cache))
}

/// Best effort: a cache that cannot be written only costs speed next time.
fn write_cache(path: &Path, tip: &str, projection: &Projection) {
    let file = CacheFileRef {
        version: CACHE_VERSION,
        tip,
        projection,
    };
    write_json_atomically(path, &file);
}

/// Writes `value` as JSON to `path` through a temporary file, so readers never see half of it.
/// Failures are logged and otherwise ignored: a cache that cannot be written only costs speed.
pub(crate) fn write_json_atomically(path: &Path, value: &impl Serialize) {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().expect("the cache path has a directory");
        std::fs::create_dir_all(dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        {
            let mut writer = std::io::BufWriter::new(temp.as_file_mut());
            serde_json::to_writer(&mut writer, value).map_err(std::io::Error::other)?;
            std::io::Write::flush(&mut writer)?;
        }
        temp.persist(path).map_err(|err| err.error)?;
        Ok(())
    };
    if let Err(err) = write() {
        tracing::debug!(error = %err, path = %path.display(), "could not write a cache");
    }
}
