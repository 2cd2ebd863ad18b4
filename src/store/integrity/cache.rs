//! The integrity cache file: what a check found at a tip, and the hashed ids of a sound log.
//!
//! The header is one line of JSON and its SHA-256 (hex) the second line; the id hashes of a
//! sound log follow, 8 bytes each, sorted, covered by a checksum in the header. A file that
//! fails any of these checks, or is of another version, is not used (docs/events.md).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Checked, Sound};
use crate::digest::sha256_hex;
use crate::store::VerifyFailure;

/// Bumped whenever the file's layout or the id hash changes, so old files are ignored.
pub(super) const CACHE_VERSION: u32 = 1;

/// The ids of verified events, each as the first 8 bytes of its SHA-256, sorted: enough to tell
/// that a new id is new. An id whose hash is already there (a duplicate, or two ids sharing a
/// hash) sends the check back to the first event, where the ids themselves are compared.
#[derive(Debug, Default, PartialEq)]
pub(super) struct IdHashes(Vec<u64>);

impl IdHashes {
    pub(super) fn of(id: &str) -> u64 {
        let digest = Sha256::digest(id.as_bytes());
        u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }

    pub(super) fn contains(&self, hash: u64) -> bool {
        self.0.binary_search(&hash).is_ok()
    }

    pub(super) fn merged(mut self, ids: &HashSet<String>) -> IdHashes {
        self.0.extend(ids.iter().map(|id| IdHashes::of(id)));
        self.0.sort_unstable();
        self.0.dedup();
        self
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|hash| hash.to_be_bytes()).collect()
    }

    /// The hashes `to_bytes` wrote, if `bytes` can be them (whole, sorted, no repeats).
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<IdHashes> {
        let chunks = bytes.chunks_exact(8);
        if !chunks.remainder().is_empty() {
            return None;
        }
        let hashes: Vec<u64> = chunks
            .map(|chunk| u64::from_be_bytes(chunk.try_into().expect("8 bytes")))
            .collect();
        hashes
            .windows(2)
            .all(|pair| pair[0] < pair[1])
            .then_some(IdHashes(hashes))
    }
}

/// The first line of the cache file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CacheHeader {
    pub(super) version: u32,
    /// The commit the check reached.
    pub(super) tip: String,
    /// For a sound log: the events, and the tip's lamport and digest.
    pub(super) events: usize,
    pub(super) lamport: u64,
    pub(super) digest: String,
    /// SHA-256 of the id hashes that follow the header.
    pub(super) ids_sha256: String,
    /// For a broken log: the first bad event.
    pub(super) failure: Option<CachedFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CachedFailure {
    pub(super) position: usize,
    pub(super) commit: String,
    pub(super) id: Option<String>,
    pub(super) reason: String,
}

impl CachedFailure {
    pub(super) fn into_failure(self) -> Option<VerifyFailure> {
        let commit = ObjectId::from_hex(self.commit.as_bytes()).ok()?;
        Some(VerifyFailure {
            position: self.position,
            commit,
            id: self.id,
            reason: self.reason,
        })
    }
}

/// An integrity cache file whose header and checksum were read; the ids are read on demand.
pub(super) struct CacheFile {
    pub(super) tip: ObjectId,
    pub(super) header: CacheHeader,
    pub(super) rest: BufReader<std::fs::File>,
}

impl CacheFile {
    pub(super) fn sound_state(&self) -> Sound {
        Sound {
            events: self.header.events,
            lamport: self.header.lamport,
            digest: self.header.digest.clone(),
            ids: IdHashes::default(),
        }
    }

    /// The id hashes after the header, if they are whole and match its checksum.
    pub(super) fn into_ids(mut self) -> Option<IdHashes> {
        let mut bytes = Vec::new();
        self.rest.read_to_end(&mut bytes).ok()?;
        if sha256_hex(&bytes) != self.header.ids_sha256 {
            tracing::debug!("the integrity cache's ids fail their checksum; checking again");
            return None;
        }
        IdHashes::from_bytes(&bytes)
    }
}

/// The cache at `path`, if it is readable, of this version, and its header passes its checksum.
pub(super) fn read_cache(path: &Path) -> Option<CacheFile> {
    let mut rest = BufReader::new(std::fs::File::open(path).ok()?);
    let header_line = read_line(&mut rest)?;
    let checksum = read_line(&mut rest)?;
    if sha256_hex(header_line.as_bytes()) != checksum {
        tracing::debug!(path = %path.display(), "the integrity cache fails its checksum; ignoring it");
        return None;
    }
    let header: CacheHeader = serde_json::from_str(&header_line).ok()?;
    let tip = ObjectId::from_hex(header.tip.as_bytes()).ok()?;
    (header.version == CACHE_VERSION).then_some(CacheFile { tip, header, rest })
}

/// One line without its newline; `None` at the end of the file or on bytes that are not text.
pub(super) fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    line.strip_suffix('\n').map(str::to_string)
}

/// The file that saves `checked` as the state at `tip`: the header as one line of JSON, its
/// SHA-256 (hex) on the second line, then the id hashes of a sound log (8 bytes each, sorted).
pub(super) fn cache_bytes(tip: ObjectId, checked: &Checked) -> Vec<u8> {
    let empty = IdHashes::default();
    let (header, ids) = match checked {
        Checked::Sound { state } => (
            CacheHeader {
                version: CACHE_VERSION,
                tip: tip.to_string(),
                events: state.events,
                lamport: state.lamport,
                digest: state.digest.clone(),
                ids_sha256: String::new(),
                failure: None,
            },
            &state.ids,
        ),
        Checked::Broken(failure) => (
            CacheHeader {
                version: CACHE_VERSION,
                tip: tip.to_string(),
                events: failure.position - 1,
                lamport: 0,
                digest: String::new(),
                ids_sha256: String::new(),
                failure: Some(CachedFailure {
                    position: failure.position,
                    commit: failure.commit.to_string(),
                    id: failure.id.clone(),
                    reason: failure.reason.clone(),
                }),
            },
            &empty,
        ),
    };
    let ids = ids.to_bytes();
    let header = CacheHeader {
        ids_sha256: sha256_hex(&ids),
        ..header
    };
    let line = serde_json::to_string(&header).expect("a cache header serializes");
    let mut bytes = Vec::with_capacity(line.len() + 66 + ids.len());
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(sha256_hex(line.as_bytes()).as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&ids);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::integrity::CACHE_NAME;

    fn sound(events: usize, ids: &[&str]) -> Checked {
        let ids: HashSet<String> = ids.iter().map(|id| id.to_string()).collect();
        Checked::Sound {
            state: Sound {
                events,
                lamport: events as u64,
                digest: "ab".repeat(32),
                ids: IdHashes::default().merged(&ids),
            },
        }
    }

    fn tip() -> ObjectId {
        ObjectId::from_hex(b"0123456789abcdef0123456789abcdef01234567").unwrap()
    }

    fn written(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_NAME);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_saved_state_reads_back_with_its_ids() {
        let bytes = cache_bytes(tip(), &sound(2, &["id-1", "id-2"]));
        let (_dir, path) = written(&bytes);
        let cached = read_cache(&path).expect("a valid cache");
        assert_eq!(cached.tip, tip());
        assert_eq!(cached.header.events, 2);
        let ids = cached.into_ids().expect("valid ids");
        assert!(ids.contains(IdHashes::of("id-1")));
        assert!(ids.contains(IdHashes::of("id-2")));
        assert!(!ids.contains(IdHashes::of("id-3")));
    }

    #[test]
    fn an_edited_or_damaged_cache_is_not_used() {
        let bytes = cache_bytes(tip(), &sound(2, &["id-1", "id-2"]));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // The header edited to claim more events, checksum left as it was.
        let (_dir, path) = written(text.replacen("\"events\":2", "\"events\":3", 1).as_bytes());
        assert!(read_cache(&path).is_none());
        // Garbage, and an empty file.
        let (_dir, path) = written(b"\xff\xfe not a cache at all");
        assert!(read_cache(&path).is_none());
        let (_dir, path) = written(b"");
        assert!(read_cache(&path).is_none());
        // Ids cut short: the header still reads, the ids do not.
        let (_dir, path) = written(&bytes[..bytes.len() - 3]);
        assert!(
            read_cache(&path)
                .expect("header intact")
                .into_ids()
                .is_none()
        );
        // An id hash changed (which would let a duplicate through): its checksum catches it.
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let (_dir, path) = written(&flipped);
        assert!(
            read_cache(&path)
                .expect("header intact")
                .into_ids()
                .is_none()
        );
    }

    #[test]
    fn a_cache_of_another_version_is_not_used() {
        let bytes = cache_bytes(tip(), &sound(1, &["id-1"]));
        let text = String::from_utf8_lossy(&bytes);
        let (header, _) = text.split_once('\n').unwrap();
        let older = header.replace(
            &format!("\"version\":{CACHE_VERSION}"),
            &format!("\"version\":{}", CACHE_VERSION + 1),
        );
        let rewritten = format!("{older}\n{}\n", sha256_hex(older.as_bytes()));
        let (_dir, path) = written(rewritten.as_bytes());
        assert!(read_cache(&path).is_none());
    }

    #[test]
    fn id_hashes_refuse_bytes_they_could_not_have_written() {
        let ids = IdHashes(vec![1, 2, 3]);
        assert_eq!(IdHashes::from_bytes(&ids.to_bytes()), Some(ids));
        assert_eq!(IdHashes::from_bytes(&[0; 7]), None);
        let unsorted = IdHashes(vec![3, 1]).to_bytes();
        assert_eq!(IdHashes::from_bytes(&unsorted), None);
    }
}
