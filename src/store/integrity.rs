//! A fast answer to "does the event log verify?", for every command that reads or acts on it.
//!
//! [`Store::verify`] checks every event from the first, which is far too slow to run before
//! each `log` or `undo` of a long log. But the log only grows, so a result stays true for the
//! commit it reached: once every event up to commit T is sound, a tip that reaches T through a
//! line of single-parent commits needs only the events after T checked, chained from T's digest
//! and lamport, and their ids compared with the ids before T. A merge among the new events
//! brings in events that sort before T, so it means a check of the whole DAG, as `verify` does
//! (see `dag` for the order), except where `merge_log` saves the state it reached: it checked
//! every event it brought in, chained from a log this cache said was sound. The last
//! result is kept in `<common dir>/spectra/cache/integrity` (its format is in docs/events.md).
//! A tip that does not descend from the cached one (the log was replaced or rewritten), a cached
//! tip whose own trailers disagree with the file, or a file that is missing, unreadable, of
//! another version or fails its own checksums, all mean a check from the first event.
//!
//! The file only saves time. It is guarded against accidents (a truncated or edited file, a
//! file left from another log), not against a person who rewrites it on purpose together with
//! its checksums: whoever can do that can rewrite the log itself. Logs fetched from elsewhere
//! never bring this file. `git spectra verify` never reads it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::append::tip_of;
use super::commit::CommitHeader;
use super::verify::{Before, ChainChecker};
use super::{Store, StoreError, Verification, VerifyFailure};
use crate::digest::sha256_hex;

/// The cache file's name under the cache directory.
pub(super) const CACHE_NAME: &str = "integrity";

/// Bumped whenever the file's layout or the id hash changes, so old files are ignored.
const CACHE_VERSION: u32 = 1;

/// What [`Store::integrity`] found.
#[derive(Debug, Clone)]
pub enum Integrity {
    /// Every event verifies; `tip` is the commit the check reached (`None`: an empty log).
    Intact {
        events: usize,
        tip: Option<ObjectId>,
    },
    /// The first event that does not verify, as `git spectra verify` names it.
    Broken(VerifyFailure),
}

impl Store {
    /// Whether the whole log verifies, checking only the events appended since the last check
    /// where it can (see the module documentation). Each answer is saved for the next.
    pub fn integrity(&self) -> Result<Integrity, StoreError> {
        let Some(tip) = self.tip()? else {
            return Ok(Integrity::Intact {
                events: 0,
                tip: None,
            });
        };
        let cached = read_cache(&self.integrity_cache);
        let checked = match cached {
            Some(cached) => match self.continue_from(tip, cached)? {
                Continued::Unchanged(integrity) => return Ok(integrity),
                Continued::Checked(checked) => checked,
                Continued::Unusable => self.check_from_start(Some(tip))?,
            },
            None => self.check_from_start(Some(tip))?,
        };
        Ok(checked.integrity(tip))
    }

    /// `Ok` when the whole log verifies, else [`StoreError::Tampered`] naming the first bad
    /// event: what every command that acts on what the log says calls first.
    pub fn require_intact(&self) -> Result<(), StoreError> {
        match self.integrity()? {
            Integrity::Intact { .. } => Ok(()),
            Integrity::Broken(failure) => Err(StoreError::Tampered(failure)),
        }
    }

    /// Verifies every event up to `tip` from the first, and saves the result for
    /// [`Store::integrity`].
    pub(super) fn check_from_start(&self, tip: Option<ObjectId>) -> Result<Checked, StoreError> {
        let Some(tip) = tip else {
            return Ok(Checked::Sound {
                state: Sound::default(),
            });
        };
        let checked = self.check_dag(tip)?;
        self.save(tip, &checked);
        Ok(checked)
    }

    /// Checks what the cached result does not cover, if it covers a first-parent ancestor of
    /// `tip` (or `tip` itself) and the events in between are a single line: a merge among them
    /// brings in events of another line, older than the cached tip in the total order, so only
    /// a check of the whole log can place and count them.
    fn continue_from(&self, tip: ObjectId, cached: CacheFile) -> Result<Continued, StoreError> {
        let walked = self.headers_down_to(tip, Some(cached.tip))?;
        let Some(cached_tip) = walked.reached else {
            // The cached tip is not below a line from the tip (replaced log, or a merge).
            return Ok(Continued::Unusable);
        };
        let mut headers = walked.headers;
        headers.reverse();
        match cached.header.failure.clone() {
            // An append never mends an earlier event: the first bad one is still the first.
            Some(failure) => {
                let Some(failure) = failure.into_failure() else {
                    return Ok(Continued::Unusable);
                };
                if headers.is_empty() {
                    return Ok(Continued::Unchanged(Integrity::Broken(failure)));
                }
                let checked = Checked::Broken(failure);
                self.save(tip, &checked);
                Ok(Continued::Checked(checked))
            }
            None => self.continue_sound(tip, cached, &cached_tip, headers),
        }
    }

    /// Checks `headers` (oldest first), the events after a cached tip that verified.
    fn continue_sound(
        &self,
        tip: ObjectId,
        cached: CacheFile,
        cached_tip: &CommitHeader,
        headers: Vec<CommitHeader>,
    ) -> Result<Continued, StoreError> {
        let state = cached.sound_state();
        if !state.agrees_with(cached_tip) {
            tracing::debug!(
                "the integrity cache disagrees with its tip's trailers; checking again"
            );
            return Ok(Continued::Unusable);
        }
        if headers.is_empty() {
            return Ok(Continued::Unchanged(Integrity::Intact {
                events: state.events,
                tip: Some(tip),
            }));
        }
        let Some(earlier) = cached.into_ids() else {
            return Ok(Continued::Unusable);
        };
        let mut checker = state.checker();
        let checked = match self.check_segment(headers, &mut checker, &earlier)? {
            Segment::Sound => Checked::Sound {
                state: Sound::after(&checker, earlier.merged(&checker.ids)),
            },
            Segment::Failed(failure) => Checked::Broken(failure),
            // Maybe a duplicate, maybe two ids sharing a hash: only the ids themselves can tell.
            Segment::SeenId => return Ok(Continued::Unusable),
        };
        self.save(tip, &checked);
        Ok(Continued::Checked(checked))
    }

    /// Verifies the whole log ending at `tip`, every commit reachable from it, without saving
    /// anything: `verify` of a log that is not (yet) ours, such as a remote-tracking one.
    pub fn verify_at(&self, tip: ObjectId) -> Result<Verification, StoreError> {
        Ok(self.check_dag(tip)?.verification())
    }

    /// Checks every event reachable from `tip` in the total order (parents before children),
    /// each against its parents' commits, stopping at the first that fails.
    fn check_dag(&self, tip: ObjectId) -> Result<Checked, StoreError> {
        let headers = self.headers_in_order(tip)?;
        let mut checker = DagChecker::default();
        let mut buf = Vec::new();
        for header in headers {
            let commit = header.id;
            let id = header.trailers.get("Spectra-Id").map(str::to_string);
            let position = checker.count + 1;
            if let Err(reason) = checker.check(self, header, &mut buf) {
                return Ok(Checked::Broken(VerifyFailure {
                    position,
                    commit,
                    id,
                    reason,
                }));
            }
        }
        let (lamport, digest) = checker.checked[&tip].clone();
        Ok(Checked::Sound {
            state: Sound {
                events: checker.count,
                lamport,
                digest,
                ids: IdHashes::default().merged(&checker.ids),
            },
        })
    }

    /// Checks `headers` (oldest first) chained after the events `checker` has seen, stopping at
    /// the first that fails; `earlier` holds the hashed ids of events `checker` has not kept.
    fn check_segment(
        &self,
        headers: Vec<CommitHeader>,
        checker: &mut ChainChecker,
        earlier: &IdHashes,
    ) -> Result<Segment, StoreError> {
        let mut buf = Vec::new();
        for header in headers {
            let commit = header.id;
            let id = header.trailers.get("Spectra-Id").map(str::to_string);
            // Before the check: it counts the event once the chain holds, before attachments.
            let position = checker.count + 1;
            let before = checker.before();
            let checked = self
                .check_event(header, &before, &mut buf)
                .and_then(|(event, digest)| checker.record(&event, digest));
            if let Err(reason) = checked {
                return Ok(Segment::Failed(VerifyFailure {
                    position,
                    commit,
                    id,
                    reason,
                }));
            }
            // The event verified, so its Spectra-Id trailer is its id.
            if id.is_some_and(|id| earlier.contains(IdHashes::of(&id))) {
                return Ok(Segment::SeenId);
            }
        }
        Ok(Segment::Sound)
    }

    /// Commits from `tip` back along single parents, newest first, down to `stop` (its header
    /// returned apart), the first event, or the first merge (returned last, unreached).
    fn headers_down_to(&self, tip: ObjectId, stop: Option<ObjectId>) -> Result<Walked, StoreError> {
        let mut walked = Walked {
            headers: Vec::new(),
            reached: None,
        };
        let mut next = Some(tip);
        let mut buf = Vec::new();
        while let Some(id) = next {
            let header = self.read_commit(id, &mut buf)?;
            if Some(id) == stop {
                walked.reached = Some(header);
                break;
            }
            // Past a merge the events are no longer a line: the walk ends unreached.
            next = match header.parents.as_slice() {
                [parent] => Some(*parent),
                _ => None,
            };
            walked.headers.push(header);
        }
        Ok(walked)
    }

    /// Our log's verified state at `tip`, ids included, when the cache says the log is intact
    /// exactly there (the ref still points at `tip`); `None` when only a longer check could
    /// tell. What [`Store::merge_log`] builds on to check only the other side's new events.
    pub(super) fn verified_state(&self, tip: ObjectId) -> Result<Option<Sound>, StoreError> {
        let intact_here = matches!(
            self.integrity()?,
            Integrity::Intact { tip: Some(checked), .. } if checked == tip
        );
        let Some(cached) = read_cache(&self.integrity_cache).filter(|_| intact_here) else {
            return Ok(None);
        };
        // Another process may have saved another tip since: then this is no answer for `tip`.
        if cached.tip != tip || cached.header.failure.is_some() {
            return Ok(None);
        }
        let state = cached.sound_state();
        Ok(cached.into_ids().map(|ids| Sound { ids, ..state }))
    }

    /// Checks `commits`, the events another log adds to ours (`ours`, verified), as `verify`
    /// would check them within the joined log: each chained from its parents, which are
    /// either among `commits` or in our log, whose trailers verified. Ids must be new to both.
    /// Returns the state of the joined log whose tip is `top` (one of `commits`); `None` when
    /// the events fail or an id's hash is already ours (a duplicate, or two ids sharing a
    /// hash): only a whole check can name the failure or compare the ids themselves.
    ///
    /// Every parent of `commits` that is not itself among them must be in our log.
    pub(super) fn check_added_events(
        &self,
        ours: Sound,
        commits: &[ObjectId],
        top: ObjectId,
    ) -> Result<Option<Sound>, StoreError> {
        let headers = super::dag::in_total_order(self.headers_of(commits)?);
        let added: HashSet<ObjectId> = commits.iter().copied().collect();
        let mut checker = DagChecker::default();
        let mut buf = Vec::new();
        for parent in headers.iter().flat_map(|header| &header.parents) {
            if added.contains(parent) || checker.checked.contains_key(parent) {
                continue;
            }
            let Ok(tip) = tip_of(self.read_commit(*parent, &mut buf)?) else {
                return Ok(None);
            };
            checker.checked.insert(*parent, (tip.lamport, tip.digest));
        }
        for header in headers {
            if checker.check(self, header, &mut buf).is_err() {
                return Ok(None);
            }
        }
        if checker
            .ids
            .iter()
            .any(|id| ours.ids.contains(IdHashes::of(id)))
        {
            return Ok(None);
        }
        let Some((lamport, digest)) = checker.checked.get(&top).cloned() else {
            return Ok(None);
        };
        Ok(Some(Sound {
            events: ours.events + checker.count,
            lamport,
            digest,
            ids: ours.ids.merged(&checker.ids),
        }))
    }

    /// Saves `state` as the verified state at `tip`: after a merge or fast-forward whose both
    /// sides were just checked, so that the next check starts from there.
    pub(super) fn save_sound(&self, tip: ObjectId, state: Sound) {
        self.save(tip, &Checked::Sound { state });
    }

    /// Saves `checked` as the state at `tip`; a failure to write only costs time next check.
    fn save(&self, tip: ObjectId, checked: &Checked) {
        crate::tip_cache::write_bytes(&self.integrity_cache, &cache_bytes(tip, checked));
    }
}

/// The running state of a check of a whole DAG in the total order: every checked commit's
/// lamport and digest, for its children to chain from.
#[derive(Default)]
struct DagChecker {
    count: usize,
    checked: HashMap<ObjectId, (u64, String)>,
    ids: HashSet<String>,
}

impl DagChecker {
    fn check(
        &mut self,
        store: &Store,
        header: CommitHeader,
        buf: &mut Vec<u8>,
    ) -> Result<(), String> {
        let commit = header.id;
        let before = self.before(&header.parents)?;
        let (event, digest) = store.check_event(header, &before, buf)?;
        if !self.ids.insert(event.id.clone()) {
            return Err(format!("its id {} appears earlier in the log", event.id));
        }
        self.count += 1;
        self.checked.insert(commit, (event.lamport, digest));
        Ok(())
    }

    /// What an event with `parents` chains from. Every parent has been checked already: a
    /// parent's lamport is lower, so it comes earlier in the total order.
    fn before(&self, parents: &[ObjectId]) -> Result<Before, String> {
        let parent = |id: &ObjectId| {
            self.checked.get(id).ok_or_else(|| {
                format!("its lamport is not above that of its parent {id} (events reordered or injected?)")
            })
        };
        match parents {
            [] => Ok(Before::genesis()),
            [only] => {
                let (lamport, digest) = parent(only)?;
                Ok(Before::one(*lamport, digest))
            }
            [first, second] => {
                let (first_lamport, first_digest) = parent(first)?;
                let (second_lamport, second_digest) = parent(second)?;
                Ok(Before {
                    lamport: (*first_lamport).max(*second_lamport),
                    digest: first_digest.clone(),
                    merged_with: Some(second_digest.clone()),
                })
            }
            more => Err(format!(
                "it has {} parents; an event has one, and a merge of two logs two (was a merge made by hand?)",
                more.len()
            )),
        }
    }
}

/// What a walk from the tip found.
struct Walked {
    /// Newest first, without the commit it stopped at.
    headers: Vec<CommitHeader>,
    /// The commit it was asked to stop at, when it met it.
    reached: Option<CommitHeader>,
}

/// How a check that started from the cache ended.
enum Continued {
    /// The tip is the cached one: the cached answer stands.
    Unchanged(Integrity),
    /// The new events were checked.
    Checked(Checked),
    /// The cache cannot be used; check from the first event.
    Unusable,
}

/// How checking a run of events ended.
enum Segment {
    Sound,
    Failed(VerifyFailure),
    /// An event whose id hashes like an earlier one's.
    SeenId,
}

/// The result of a check, as saved.
pub(super) enum Checked {
    Sound { state: Sound },
    Broken(VerifyFailure),
}

impl Checked {
    fn integrity(self, tip: ObjectId) -> Integrity {
        match self {
            Checked::Sound { state } => Integrity::Intact {
                events: state.events,
                tip: Some(tip),
            },
            Checked::Broken(failure) => Integrity::Broken(failure),
        }
    }

    /// The same, in the shape `git spectra verify` reports.
    pub(super) fn verification(self) -> Verification {
        match self {
            Checked::Sound { state } => Verification {
                verified: state.events,
                failure: None,
            },
            Checked::Broken(failure) => Verification {
                verified: failure.position - 1,
                failure: Some(failure),
            },
        }
    }
}

/// Where a sound log ends: what the next event must chain from, and the ids it must not reuse.
#[derive(Default)]
pub(super) struct Sound {
    events: usize,
    lamport: u64,
    digest: String,
    ids: IdHashes,
}

impl Sound {
    fn after(checker: &ChainChecker, ids: IdHashes) -> Sound {
        Sound {
            events: checker.count,
            lamport: checker.lamport,
            digest: checker.prev_digest.clone(),
            ids,
        }
    }

    /// The state after `merge`, a merge event just written on top of this state (its checks
    /// made as `verify` makes them); `None` when its id's hash is already listed.
    pub(super) fn joined_by(self, merge: &super::StoredEvent) -> Option<Sound> {
        if self.ids.contains(IdHashes::of(&merge.event.id)) {
            return None;
        }
        Some(Sound {
            events: self.events + 1,
            lamport: merge.event.lamport,
            digest: merge.digest.clone(),
            ids: self.ids.merged(&HashSet::from([merge.event.id.clone()])),
        })
    }

    /// A checker that continues after these events (their ids are checked apart).
    fn checker(&self) -> ChainChecker {
        ChainChecker {
            count: self.events,
            prev_digest: self.digest.clone(),
            lamport: self.lamport,
            ids: HashSet::new(),
        }
    }

    /// Whether the commit the state was saved for carries the same digest and lamport.
    fn agrees_with(&self, tip: &CommitHeader) -> bool {
        tip.trailers.get("Spectra-Digest") == Some(self.digest.as_str())
            && tip.trailers.get("Spectra-Lamport") == Some(self.lamport.to_string().as_str())
    }
}

/// The ids of verified events, each as the first 8 bytes of its SHA-256, sorted: enough to tell
/// that a new id is new. An id whose hash is already there (a duplicate, or two ids sharing a
/// hash) sends the check back to the first event, where the ids themselves are compared.
#[derive(Debug, Default, PartialEq)]
struct IdHashes(Vec<u64>);

impl IdHashes {
    fn of(id: &str) -> u64 {
        let digest = Sha256::digest(id.as_bytes());
        u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }

    fn contains(&self, hash: u64) -> bool {
        self.0.binary_search(&hash).is_ok()
    }

    fn merged(mut self, ids: &HashSet<String>) -> IdHashes {
        self.0.extend(ids.iter().map(|id| IdHashes::of(id)));
        self.0.sort_unstable();
        self.0.dedup();
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|hash| hash.to_be_bytes()).collect()
    }

    /// The hashes `to_bytes` wrote, if `bytes` can be them (whole, sorted, no repeats).
    fn from_bytes(bytes: &[u8]) -> Option<IdHashes> {
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
struct CacheHeader {
    version: u32,
    /// The commit the check reached.
    tip: String,
    /// For a sound log: the events, and the tip's lamport and digest.
    events: usize,
    lamport: u64,
    digest: String,
    /// SHA-256 of the id hashes that follow the header.
    ids_sha256: String,
    /// For a broken log: the first bad event.
    failure: Option<CachedFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedFailure {
    position: usize,
    commit: String,
    id: Option<String>,
    reason: String,
}

impl CachedFailure {
    fn into_failure(self) -> Option<VerifyFailure> {
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
struct CacheFile {
    tip: ObjectId,
    header: CacheHeader,
    rest: BufReader<std::fs::File>,
}

impl CacheFile {
    fn sound_state(&self) -> Sound {
        Sound {
            events: self.header.events,
            lamport: self.header.lamport,
            digest: self.header.digest.clone(),
            ids: IdHashes::default(),
        }
    }

    /// The id hashes after the header, if they are whole and match its checksum.
    fn into_ids(mut self) -> Option<IdHashes> {
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
fn read_cache(path: &Path) -> Option<CacheFile> {
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
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    line.strip_suffix('\n').map(str::to_string)
}

/// The file that saves `checked` as the state at `tip`: the header as one line of JSON, its
/// SHA-256 (hex) on the second line, then the id hashes of a sound log (8 bytes each, sorted).
fn cache_bytes(tip: ObjectId, checked: &Checked) -> Vec<u8> {
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

    use crate::store::test_git::git;

    /// After a check, only events appended since are read: with the first event's `event.json`
    /// gone from the object store, a check from the start fails, and one from the cache does not.
    #[test]
    fn a_later_check_reads_only_the_events_after_the_cached_tip() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let repo = crate::repo::Repo::open(dir.path()).unwrap();
        let mut store = Store::new(&repo);
        store.auto_gc = false;
        let note =
            |n: u32| crate::event::NewEvent::new("note.added").payload(serde_json::json!({"n": n}));
        let first = store.append(note(1)).unwrap();
        store.append(note(2)).unwrap();
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 2, .. }
        ));

        let blob = git(
            dir.path(),
            &["rev-parse", &format!("{}:event.json", first.commit)],
        );
        let loose = dir
            .path()
            .join(".git/objects")
            .join(&blob[..2])
            .join(&blob[2..]);
        std::fs::remove_file(loose).unwrap();
        let store = Store::new(&repo);
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 2, .. }
        ));
        let third = store.append(note(3)).unwrap();
        match store.integrity().unwrap() {
            Integrity::Intact { events, tip } => {
                assert_eq!(events, 3);
                assert_eq!(tip, Some(third.commit));
            }
            broken => panic!("{broken:?}"),
        }
        // `verify` reads everything, whatever the cache says.
        let failure = store
            .verify()
            .unwrap()
            .failure
            .expect("event 1 cannot be read");
        assert_eq!(failure.position, 1);
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
