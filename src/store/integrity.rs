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

use std::collections::HashSet;

use gix::ObjectId;

use super::append::tip_of;
use super::commit::CommitHeader;
use super::verify::{ChainChecker, DagChecker};
use super::{Store, StoreError, Verification, VerifyFailure};
use cache::{CacheFile, IdHashes, cache_bytes, read_cache};

mod cache;

/// The cache file's name under the cache directory.
pub(super) const CACHE_NAME: &str = "integrity";

/// What [`Store::integrity`] found.
#[derive(Debug, Clone)]
pub enum Integrity {
    /// Every event verifies; `tip` is the commit the check reached (`None`: an empty log).
    Intact {
        /// How many events the log holds.
        events: usize,
        /// The commit the check reached; `None` for an empty log.
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
