//! Cache files keyed by the tip of the event log.
//!
//! The projection, the manifest index and the stats tally are each saved under
//! `<git common dir>/spectra/cache/` with the commit of the newest event they reflect and a
//! version number. A file that is missing, unreadable or of another version reads as no cache;
//! writes go through a temporary file and a rename, so a reader never sees half a file, and a
//! write that fails only costs speed next time. A cache is never the truth.

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::repo::Repo;

/// The directory that holds every cache file of `repo`.
pub fn dir(repo: &Repo) -> PathBuf {
    repo.state_dir().join("cache")
}

/// Where the cache file `name` of `repo` lives.
pub fn path(repo: &Repo, name: &str) -> PathBuf {
    dir(repo).join(name)
}

#[derive(serde::Deserialize)]
struct File<T> {
    version: u32,
    tip: String,
    value: T,
}

#[derive(Serialize)]
struct FileRef<'a, T> {
    version: u32,
    tip: String,
    value: &'a T,
}

/// The cached value and the tip it reflects, if the file holds one of `version`.
pub fn read<T: DeserializeOwned>(path: &Path, version: u32) -> Option<(ObjectId, T)> {
    let bytes = std::fs::read(path).ok()?;
    let file: File<T> = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "ignoring an unreadable cache");
            return None;
        }
    };
    let tip = ObjectId::from_hex(file.tip.as_bytes()).ok()?;
    (file.version == version).then_some((tip, file.value))
}

/// Saves `value` as the state at `tip`; failures are logged and otherwise ignored.
pub fn write<T: Serialize>(path: &Path, version: u32, tip: &ObjectId, value: &T) {
    let file = FileRef {
        version,
        tip: tip.to_string(),
        value,
    };
    write_json(path, &file);
}

/// Saves `value` as JSON at `path` through a temporary file and a rename; failures (a read-only
/// or missing git dir) are logged and otherwise ignored, since a cache only ever costs speed.
pub fn write_json<T: Serialize>(path: &Path, value: &T) {
    write_with(path, |writer| {
        serde_json::to_writer(writer, value).map_err(std::io::Error::other)
    });
}

/// Saves `bytes` at `path` as [`write_json`] does, for caches that are not JSON throughout.
pub fn write_bytes(path: &Path, bytes: &[u8]) {
    write_with(path, |writer| writer.write_all(bytes));
}

fn write_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    if let Err(error) = write_atomically(path, write) {
        tracing::debug!(path = %path.display(), %error, "could not write a cache");
    }
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().expect("a cache path has a directory");
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut writer = std::io::BufWriter::new(temp.as_file_mut());
        write(&mut writer)?;
        writer.flush()?;
    }
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}
