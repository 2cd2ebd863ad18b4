//! Joining another clone's log into ours: a fast-forward when one contains the other, else one
//! `log.merged` event with both tips as parents. Nothing is ever rewritten or forced: the ref
//! moves by compare-and-swap only, like an append, and only onto a log that verifies.
//!
//! The merge event records what each side brought (the events only it had since the merge
//! base; everything, for two unrelated logs) and the conflicts: a service and activity for
//! which both sides finished a run that was not a dry run. Folds read the merged log in the
//! total order (see `dag`), so the later of two conflicting runs wins there; the event says so
//! for whoever reports it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use gix::ObjectId;
use gix::objs::{FindExt, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dag::Apart;
use super::integrity::Sound;
use super::{
    APPEND_MAX_ATTEMPTS, Before, EventCommit, ObjectSink, Store, StoreError, StoredEvent, Tip,
    backoff, commit_message, read, read_err, write_tree,
};
use crate::event::{self, NewEvent, kind};

/// What [`Store::merge_log`] did.
// Made once per merge and matched at once: boxing the event would only burden the callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Merged {
    /// Their log was already part of ours: nothing changed.
    UpToDate,
    /// Ours was part of theirs (or we had none): the ref moved to their tip, bringing `events`.
    FastForward {
        from: Option<ObjectId>,
        to: ObjectId,
        events: usize,
    },
    /// Both had events the other lacked: `event` (a `log.merged`) joins them.
    Merged {
        event: StoredEvent,
        ours_events: usize,
        theirs_events: usize,
        conflicts: Vec<Conflict>,
    },
}

/// A service and activity that both sides of a merge ran (not as a dry run) since the merge
/// base, with the runs each side finished, sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conflict {
    pub service: String,
    pub activity: String,
    pub ours: Vec<String>,
    pub theirs: Vec<String>,
}

/// Where our log stands against another clone's: the events only ours holds (`ahead`) and
/// those only theirs holds (`behind`). Both zero: the same log; both non-zero: diverged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub ahead: usize,
    pub behind: usize,
}

/// How one attempt at a merge ended.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Done(Merged),
    /// Another writer moved the ref meanwhile (or held its lock): try again on the new tip.
    Lost(String),
}

/// The events only one side of a merge holds.
struct Side {
    commits: Vec<ObjectId>,
}

/// How two logs differ, and the state of the joined log when it is known to verify.
struct Sides {
    ours_only: Side,
    theirs_only: Side,
    joined: Option<Sound>,
}

impl Sides {
    fn of(apart: Apart, joined: Option<Sound>) -> Sides {
        Sides {
            ours_only: Side {
                commits: apart.ours_only,
            },
            theirs_only: Side {
                commits: apart.theirs_only,
            },
            joined,
        }
    }
}

impl Store {
    /// Joins the log ending at `theirs` (another clone's, fetched under a remote-tracking ref;
    /// `remote` names it in the reflog and in the merge event) into ours. Refuses, changing
    /// nothing, when `theirs` is not a git spectra log or does not verify from its first event.
    ///
    /// When our log is known to verify (the integrity cache covers our tip), only the events
    /// our log lacks are read and checked, chained from their parents in ours; and the state
    /// the merge reaches is saved for [`Store::integrity`]. Otherwise their whole log is checked.
    pub fn merge_log(&self, theirs: ObjectId, remote: &str) -> Result<Merged, StoreError> {
        self.check_is_a_log(theirs)?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.merge_once(theirs, remote)? {
                Attempt::Done(merged) => return Ok(merged),
                Attempt::Lost(error) => {
                    if attempt >= APPEND_MAX_ATTEMPTS || started.elapsed() > self.append_deadline {
                        return Err(StoreError::Contention {
                            attempts: attempt,
                            last_error: error,
                        });
                    }
                    tracing::debug!(attempt, %error, "lost the race for the log; merging again on the new tip");
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
    }

    /// One attempt, built on the tip as it is now.
    fn merge_once(&self, theirs: ObjectId, remote: &str) -> Result<Attempt, StoreError> {
        let Some(ours) = self.read_tip()? else {
            self.verify_their_log(theirs)?;
            let events = self.reachable(theirs)?.len();
            let merged = Merged::FastForward {
                from: None,
                to: theirs,
                events,
            };
            return Ok(self.try_move(None, theirs, fast_forward_reason(remote), merged));
        };
        let sides = self.sides(ours.commit, theirs)?;
        if sides.theirs_only.commits.is_empty() {
            return Ok(Attempt::Done(Merged::UpToDate));
        }
        if sides.ours_only.commits.is_empty() {
            let merged = Merged::FastForward {
                from: Some(ours.commit),
                to: theirs,
                events: sides.theirs_only.commits.len(),
            };
            let reason = fast_forward_reason(remote);
            let attempt = self.try_move(Some(ours.commit), theirs, reason, merged);
            if let (Attempt::Done(_), Some(state)) = (&attempt, sides.joined) {
                self.save_sound(theirs, state);
            }
            return Ok(attempt);
        }
        // A merge event builds on our log: it must verify too.
        self.require_intact()?;
        let Sides {
            ours_only,
            theirs_only,
            joined,
        } = sides;
        let conflicts = self.conflicts(&ours_only, &theirs_only)?;
        let their_tip = self.tip_at(theirs)?;
        let new = merge_event(
            &ours,
            &their_tip,
            remote,
            (ours_only.commits.len(), theirs_only.commits.len()),
            &conflicts,
        );
        let stored = self.write_merge(&new, &ours, &their_tip)?;
        let reason = merge_reason(remote, ours_only.commits.len(), theirs_only.commits.len());
        if let Err(err) = self.move_ref(Some(ours.commit), stored.commit, reason) {
            return Ok(Attempt::Lost(err.to_string()));
        }
        // Both sides and the merge event were just checked: the next check starts here.
        if let Some(state) = joined.and_then(|state| state.joined_by(&stored)) {
            self.save_sound(stored.commit, state);
        }
        self.after_append(std::slice::from_ref(&stored));
        Ok(Attempt::Done(Merged::Merged {
            event: stored,
            ours_events: ours_only.commits.len(),
            theirs_events: theirs_only.commits.len(),
            conflicts,
        }))
    }

    /// What each side holds that the other lacks, their log checked (refused when it fails).
    ///
    /// When the integrity cache says our log is sound at `ours`, the walk stops where the two
    /// logs meet and only their events ours lacks are checked, lamports included, which makes
    /// the walk's answer exact (see [`Store::apart`]). Otherwise, or when that check fails,
    /// both logs are walked whole and theirs is checked from its first event.
    fn sides(&self, ours: ObjectId, theirs: ObjectId) -> Result<Sides, StoreError> {
        if let Some(state) = self.verified_state(ours)? {
            let apart = self.apart(ours, theirs)?;
            if apart.theirs_only.is_empty() {
                // Their tip is part of our log, which verifies.
                return Ok(Sides::of(apart, None));
            }
            let joined = self.check_added_events(state, &apart.theirs_only, theirs)?;
            if joined.is_some() {
                return Ok(Sides::of(apart, joined));
            }
        }
        self.verify_their_log(theirs)?;
        let ours_reach: HashSet<ObjectId> = self.reachable(ours)?.into_iter().collect();
        let theirs_reach: HashSet<ObjectId> = self.reachable(theirs)?.into_iter().collect();
        let apart = Apart {
            ours_only: ours_reach.difference(&theirs_reach).copied().collect(),
            theirs_only: theirs_reach.difference(&ours_reach).copied().collect(),
        };
        Ok(Sides::of(apart, None))
    }

    /// Moves the ref by compare-and-swap; `merged` is the outcome when it moves.
    fn try_move(
        &self,
        expected: Option<ObjectId>,
        new: ObjectId,
        reason: String,
        merged: Merged,
    ) -> Attempt {
        match self.move_ref(expected, new, reason) {
            Ok(()) => Attempt::Done(merged),
            Err(err) => Attempt::Lost(err.to_string()),
        }
    }

    /// How our log and the log ending at `theirs` differ, counted in events (commits), without
    /// verifying or changing anything. An empty local log is behind by all of theirs.
    pub fn divergence(&self, theirs: ObjectId) -> Result<Divergence, StoreError> {
        let theirs_reach: HashSet<ObjectId> = self.reachable(theirs)?.into_iter().collect();
        let ours_reach: HashSet<ObjectId> = match self.tip()? {
            Some(ours) => self.reachable(ours)?.into_iter().collect(),
            None => HashSet::new(),
        };
        Ok(Divergence {
            ahead: ours_reach.difference(&theirs_reach).count(),
            behind: theirs_reach.difference(&ours_reach).count(),
        })
    }

    /// Refuses a `theirs` that is not a commit of a git spectra log; nothing of it is merged then.
    fn check_is_a_log(&self, theirs: ObjectId) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        let object = self
            .repo
            .objects
            .find(&theirs, &mut buf)
            .map_err(read_err)?;
        if object.kind != Kind::Commit {
            return Err(StoreError::NotALog {
                commit: theirs,
                what: format!("a {} object, not a commit", object.kind),
            });
        }
        let header = self.read_commit(theirs, &mut buf)?;
        if header.trailers.get("Spectra-Event").is_none()
            || header.trailers.get("Spectra-Digest").is_none()
        {
            return Err(StoreError::NotALog {
                commit: theirs,
                what: format!(
                    "a commit without Spectra-Event and Spectra-Digest trailers (\"{}\"), such as a branch or a tag of the project",
                    header.subject
                ),
            });
        }
        Ok(())
    }

    /// Refuses the log ending at `theirs` when it fails verification from its first event.
    fn verify_their_log(&self, theirs: ObjectId) -> Result<(), StoreError> {
        match self.verify_at(theirs)?.failure {
            None => Ok(()),
            Some(failure) => Err(StoreError::UnverifiedLog {
                tip: theirs,
                failure,
            }),
        }
    }

    /// Events written after `parent` (or as a new root) without moving the ref: another
    /// clone's line, for tests. Returns its tip.
    #[cfg(test)]
    pub(crate) fn side_line_for_tests(
        &self,
        parent: Option<ObjectId>,
        events: &[crate::event::NewEvent],
    ) -> ObjectId {
        let tip = parent.map(|commit| self.tip_at(commit).unwrap());
        let stored = self
            .write_chain(events, &self.actor(), tip.as_ref())
            .unwrap();
        stored.last().unwrap().commit
    }

    /// The lamport and digest of the event at `commit` (from its trailers).
    fn tip_at(&self, commit: ObjectId) -> Result<Tip, StoreError> {
        let header = self.read_commit(commit, &mut Vec::new())?;
        super::tip_of(header)
    }

    /// Services and activities both sides finished a real run of.
    fn conflicts(&self, ours: &Side, theirs: &Side) -> Result<Vec<Conflict>, StoreError> {
        let ours = self.finished_runs(ours)?;
        let theirs = self.finished_runs(theirs)?;
        Ok(ours
            .into_iter()
            .filter_map(|(key, ours)| {
                let theirs = theirs.get(&key)?;
                Some(Conflict {
                    service: key.0,
                    activity: key.1,
                    ours: ours.into_iter().collect(),
                    theirs: theirs.iter().cloned().collect(),
                })
            })
            .collect())
    }

    /// The runs that finished each (service, activity) on one side, without dry runs.
    fn finished_runs(
        &self,
        side: &Side,
    ) -> Result<BTreeMap<(String, String), BTreeSet<String>>, StoreError> {
        let headers = self.headers_of(&side.commits)?;
        let dry_runs = self.dry_runs(&headers)?;
        let mut finished: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for header in &headers {
            let trailer = |key| header.trailers.get(key).map(str::to_string);
            if header.trailers.get("Spectra-Event") != Some(kind::ACTIVITY_FINISHED) {
                continue;
            }
            let (Some(service), Some(activity), Some(run)) = (
                trailer("Spectra-Service"),
                trailer("Spectra-Activity"),
                trailer("Spectra-Run"),
            ) else {
                continue;
            };
            if !dry_runs.contains(&run) {
                finished.entry((service, activity)).or_default().insert(run);
            }
        }
        Ok(finished)
    }

    /// The runs among `headers` whose `run.started` says `dry_run`.
    fn dry_runs(&self, headers: &[super::CommitHeader]) -> Result<HashSet<String>, StoreError> {
        let starts: Vec<read::Link> = headers
            .iter()
            .filter(|h| h.trailers.get("Spectra-Event") == Some(kind::RUN_STARTED))
            .map(|h| (h.id, h.tree))
            .collect();
        let events = read::events_of(&self.repo, &starts, &event::decode)?;
        Ok(events
            .into_iter()
            .filter(|event| event.payload["dry_run"] == true)
            .filter_map(|event| event.run)
            .collect())
    }

    /// Writes the merge event's objects (moves no ref) after checking it as `verify` will.
    fn write_merge(
        &self,
        new: &NewEvent,
        ours: &Tip,
        theirs: &Tip,
    ) -> Result<StoredEvent, StoreError> {
        let actor = self.actor();
        let actor_text = format!("{} <{}>", actor.name, actor.email);
        let before = Before {
            lamport: ours.lamport.max(theirs.lamport),
            digest: ours.digest.clone(),
            merged_with: Some(theirs.digest.clone()),
        };
        let event = new.seal(&actor_text, before.lamport + 1, &before.digest);
        let json = event.canonical_json();
        let digest = event::merge_digest(&ours.digest, &theirs.digest, &json);
        let mut sink = ObjectSink::new(&self.repo, false);
        let tree = write_tree(&mut sink, json.clone(), new)?;
        let subject = new.subject_line();
        let commit = sink.put_event_commit(EventCommit {
            event: &event,
            json: &json,
            message: commit_message(&subject, None, &event, &digest),
            tree,
            parents: vec![ours.commit, theirs.commit],
            actor: &actor,
            before: &before,
        })?;
        sink.finish()?;
        Ok(StoredEvent {
            commit,
            tree,
            subject,
            digest,
            event,
        })
    }
}

/// The reflog entry of a fast-forward (one line, whatever the remote's name holds).
fn fast_forward_reason(remote: &str) -> String {
    format!(
        "spectra merge: fast-forward from {}",
        super::one_line_value(remote)
    )
}

/// The reflog entry of a merge event.
fn merge_reason(remote: &str, ours_events: usize, theirs_events: usize) -> String {
    format!(
        "spectra merge: joined {} ({ours_events} local, {theirs_events} remote events)",
        super::one_line_value(remote)
    )
}

/// The `log.merged` event joining `ours` and `theirs`.
fn merge_event(
    ours: &Tip,
    theirs: &Tip,
    remote: &str,
    (ours_events, theirs_events): (usize, usize),
    conflicts: &[Conflict],
) -> NewEvent {
    NewEvent::new(kind::LOG_MERGED)
        .subject(format!(
            "spectra: log merged from {remote} ({ours_events} local, {theirs_events} remote events)"
        ))
        .payload(json!({
            "ours": ours.commit.to_string(),
            "theirs": theirs.commit.to_string(),
            "ours_events": ours_events,
            "theirs_events": theirs_events,
            "remote": remote,
            "conflicts": conflicts,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Repo;
    use crate::store::{Filter, Integrity};

    use crate::store::test_git::git;

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    /// A repository whose log holds `base` notes.
    fn repository(base: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let mut store = Store::new(&Repo::open(dir.path()).unwrap());
        store.auto_gc = false;
        for n in 0..base {
            store.append(note(n)).unwrap();
        }
        (dir, store)
    }

    fn note(n: usize) -> NewEvent {
        NewEvent::new("note.added").payload(json!({ "n": n }))
    }

    /// Events written after `parent` (or as a new root) without moving the ref: another
    /// clone's line. Returns its tip.
    fn side_line(store: &Store, parent: Option<ObjectId>, events: Vec<NewEvent>) -> ObjectId {
        let tip = parent.map(|commit| store.tip_at(commit).unwrap());
        let stored = store
            .write_chain(&events, &store.actor(), tip.as_ref())
            .unwrap();
        stored.last().unwrap().commit
    }

    fn notes(from: usize, count: usize) -> Vec<NewEvent> {
        (from..from + count).map(note).collect()
    }

    fn finished(run: &str, service: &str, dry_run: bool) -> Vec<NewEvent> {
        vec![
            NewEvent::new(kind::RUN_STARTED)
                .run(run)
                .payload(json!({"command": "discover", "dry_run": dry_run})),
            NewEvent::new(kind::ACTIVITY_FINISHED)
                .run(run)
                .activity("discover")
                .service(service)
                .payload(json!({"outcome": "succeeded"})),
        ]
    }

    fn merged(outcome: Merged) -> (StoredEvent, usize, usize, Vec<Conflict>) {
        match outcome {
            Merged::Merged {
                event,
                ours_events,
                theirs_events,
                conflicts,
            } => (event, ours_events, theirs_events, conflicts),
            other => panic!("expected a merge, got {other:?}"),
        }
    }

    fn sound(store: &Store) -> usize {
        let verification = store.verify().unwrap();
        assert!(verification.failure.is_none(), "{:?}", verification.failure);
        verification.verified
    }

    #[test]
    fn diverged_logs_join_in_one_merge_event_that_verifies_and_later_appends_continue_it() {
        let (dir, store) = repository(2);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 3));
        store.append_batch(notes(10, 2)).unwrap();
        let ours = store.tip().unwrap().unwrap();

        assert_eq!(
            store.divergence(theirs).unwrap(),
            Divergence {
                ahead: 2,
                behind: 3
            }
        );
        let (event, ours_events, theirs_events, conflicts) =
            merged(store.merge_log(theirs, "origin").unwrap());
        assert_eq!((ours_events, theirs_events), (2, 3));
        assert_eq!(
            store.divergence(theirs).unwrap(),
            Divergence {
                ahead: 3,
                behind: 0
            },
            "ours and the merge event"
        );
        assert!(conflicts.is_empty());
        assert_eq!(event.event.kind, kind::LOG_MERGED);
        assert_eq!(event.event.lamport, 6, "max(4, 5) + 1");
        assert_eq!(event.event.prev_digest, store.tip_at(ours).unwrap().digest);
        let expected_digest = event::merge_digest(
            &store.tip_at(ours).unwrap().digest,
            &store.tip_at(theirs).unwrap().digest,
            &event.event.canonical_json(),
        );
        assert_eq!(event.digest, expected_digest);
        assert_eq!(event.event.payload["ours"], ours.to_string());
        assert_eq!(event.event.payload["theirs"], theirs.to_string());
        assert_eq!(event.event.payload["remote"], "origin");
        assert_eq!(event.event.payload["ours_events"], 2);
        assert_eq!(
            git(dir.path(), &["rev-parse", &format!("{}^@", event.commit)]),
            format!("{ours}\n{theirs}"),
            "parents in order: ours, theirs"
        );
        assert_eq!(store.tip().unwrap(), Some(event.commit));
        assert_eq!(sound(&store), 8);
        assert_eq!(store.count().unwrap(), 8);

        let next = store.append(note(7)).unwrap();
        assert_eq!(next.event.lamport, 7);
        assert_eq!(next.event.prev_digest, event.digest);
        assert_eq!(sound(&store), 9);
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 9, .. }
        ));
        let reflog = git(
            dir.path(),
            &["reflog", "--format=%gs", "refs/spectra/events"],
        );
        assert!(
            reflog.contains("spectra merge: joined origin (2 local, 3 remote events)"),
            "{reflog}"
        );
    }

    /// Removes the loose `event.json` of `commit`: a check that reads that event fails.
    fn lose_event_json(dir: &std::path::Path, commit: ObjectId) {
        let blob = git(dir, &["rev-parse", &format!("{commit}:event.json")]);
        let loose = dir.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
        std::fs::remove_file(loose).unwrap();
    }

    fn cache_bytes(store: &Store) -> Vec<u8> {
        std::fs::read(&store.integrity_cache).unwrap()
    }

    /// On a log the integrity cache says is sound, a merge reads only the events ours lacks:
    /// with the first event's `event.json` gone, a check from the first event fails, and the
    /// merge does not. It leaves the cache at the merge, so no later check reads the old ones.
    #[test]
    fn a_merge_on_a_verified_log_checks_only_their_new_events_and_caches_the_merge() {
        let (dir, store) = repository(2);
        let base = store.tip().unwrap().unwrap();
        let first = git(
            dir.path(),
            &["rev-list", "--max-parents=0", &base.to_string()],
        );
        let theirs = side_line(&store, Some(base), notes(100, 3));
        store.append(note(5)).unwrap();
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 3, .. }
        ));
        lose_event_json(dir.path(), oid(&first));

        let (event, ours_events, theirs_events, _) =
            merged(store.merge_log(theirs, "origin").unwrap());
        assert_eq!((ours_events, theirs_events), (1, 3));
        match store.integrity().unwrap() {
            Integrity::Intact { events, tip } => {
                assert_eq!(events, 7);
                assert_eq!(tip, Some(event.commit));
            }
            broken => panic!("{broken:?}"),
        }
        // Appends after the merge continue from the cached merge.
        let next = store.append(note(6)).unwrap();
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 8, tip: Some(tip) } if tip == next.commit
        ));
        let failure = store.verify().unwrap().failure.expect("event 1 is gone");
        assert_eq!(failure.position, 1);
    }

    /// On a log known sound, the walk that finds what each side holds stops where the two
    /// logs meet: with the first commit itself gone, the merge and what it reports are as
    /// ever. Also when their side is a merge already (their events reach ours twice).
    #[test]
    fn the_sides_of_a_merge_are_found_without_walking_below_where_the_logs_meet() {
        let (dir, store) = repository(3);
        let base = store.tip().unwrap().unwrap();
        let first = git(
            dir.path(),
            &["rev-list", "--max-parents=0", &base.to_string()],
        );
        let theirs = side_line(&store, Some(base), notes(100, 2));
        store.append_batch(notes(10, 3)).unwrap();
        store.integrity().unwrap();
        let loose = dir
            .path()
            .join(".git/objects")
            .join(&first[..2])
            .join(&first[2..]);
        std::fs::remove_file(loose).unwrap();

        let (merge, ours_events, theirs_events, _) =
            merged(store.merge_log(theirs, "origin").unwrap());
        assert_eq!((ours_events, theirs_events), (3, 2));
        assert_eq!(merge.event.payload["ours_events"], 3);
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 9, .. }
        ));

        // Again across the merge: the walk meets the sides at the merge, not below it.
        let theirs = side_line(&store, Some(merge.commit), notes(200, 2));
        store.append(note(20)).unwrap();
        store.integrity().unwrap();
        assert!(matches!(
            store.merge_log(merge.commit, "origin").unwrap(),
            Merged::UpToDate
        ));
        let (_, ours_events, theirs_events, _) = merged(store.merge_log(theirs, "origin").unwrap());
        assert_eq!((ours_events, theirs_events), (1, 2));
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 13, .. }
        ));
    }

    #[test]
    fn a_fast_forward_on_a_verified_log_checks_only_the_new_events_and_caches_their_tip() {
        let (dir, store) = repository(2);
        let old = store.tip().unwrap().unwrap();
        let first = git(
            dir.path(),
            &["rev-list", "--max-parents=0", &old.to_string()],
        );
        let ahead = side_line(&store, Some(old), notes(20, 3));
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 2, .. }
        ));
        lose_event_json(dir.path(), oid(&first));
        assert!(matches!(
            store.merge_log(ahead, "origin").unwrap(),
            Merged::FastForward { events: 3, .. }
        ));
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 5, tip: Some(tip) } if tip == ahead
        ));
    }

    /// What the merge leaves in the cache is byte for byte what a check of the whole merged
    /// log saves: the same count, lamport, digest and id hashes.
    #[test]
    fn the_state_cached_after_a_merge_is_the_one_a_whole_check_saves() {
        let (_dir, store) = repository(3);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 4));
        store.append_batch(notes(10, 2)).unwrap();
        store.integrity().unwrap();
        merged(store.merge_log(theirs, "origin").unwrap());
        let after_merge = cache_bytes(&store);
        assert_eq!(sound(&store), 10);
        assert_eq!(cache_bytes(&store), after_merge);

        // Unrelated logs too: all of theirs is new, chained from the first of their events.
        let (_dir, store) = repository(2);
        store.integrity().unwrap();
        let stranger = side_line(&store, None, notes(300, 2));
        merged(store.merge_log(stranger, "bob").unwrap());
        let after_merge = cache_bytes(&store);
        assert_eq!(sound(&store), 5);
        assert_eq!(cache_bytes(&store), after_merge);
    }

    #[test]
    fn every_read_sees_each_event_once_in_lamport_then_id_order() {
        let (dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 3));
        store.append_batch(notes(10, 2)).unwrap();
        store.merge_log(theirs, "origin").unwrap();
        store.append(note(50)).unwrap();

        let oldest_first = store.events_oldest_first(&Filter::default()).unwrap();
        let keys: Vec<(u64, String)> = oldest_first
            .iter()
            .map(|stored| (stored.event.lamport, stored.event.id.clone()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 8);
        assert_eq!(
            keys.iter().map(|(lamport, _)| *lamport).collect::<Vec<_>>(),
            vec![1, 2, 2, 3, 3, 4, 5, 6]
        );

        let newest_first: Vec<String> = store
            .walk_newest_first(&Filter::default())
            .map(|stored| stored.unwrap().event.id)
            .collect();
        let mut reversed: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
        reversed.reverse();
        assert_eq!(newest_first, reversed);

        let after = store.events_after(None).unwrap();
        assert_eq!(
            after
                .events
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>(),
            keys.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()
        );
        // An event only the other side had is found like any other.
        let their_first = &oldest_first
            .iter()
            .find(|stored| stored.event.payload["n"] == 100)
            .unwrap()
            .event
            .id;
        assert_eq!(&store.find(their_first).unwrap().event.id, their_first);

        // The same order when parents come from git's commit-graph.
        git(dir.path(), &["commit-graph", "write", "--reachable"]);
        let store = Store::new(&Repo::open(dir.path()).unwrap());
        let from_graph: Vec<String> = store
            .events_after(None)
            .unwrap()
            .events
            .into_iter()
            .map(|event| event.id)
            .collect();
        let ids: Vec<String> = keys.into_iter().map(|(_, id)| id).collect();
        assert_eq!(from_graph, ids);
        assert_eq!(
            store
                .reachable(store.tip().unwrap().unwrap())
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn events_after_returns_only_new_events_when_they_all_sort_after_the_known_ones() {
        let (_dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 2));
        store.append_batch(notes(10, 2)).unwrap();
        let ours = store.tip().unwrap().unwrap();
        let merge = merged(store.merge_log(theirs, "origin").unwrap()).0;

        // From the merge base everything new sorts after it.
        let after_base = store.events_after(Some(base)).unwrap();
        assert!(after_base.reached);
        assert_eq!(after_base.events.len(), 5);
        // Their events (lamport 2, 3) sort among ours (lamport 2, 3): fold again from scratch.
        let after_ours = store.events_after(Some(ours)).unwrap();
        assert!(!after_ours.reached);
        assert_eq!(after_ours.events.len(), 6);
        // A commit the log does not hold at all.
        let stranger = side_line(&store, None, notes(300, 1));
        assert!(!store.events_after(Some(stranger)).unwrap().reached);
        // After the merge, appends are a line again.
        let next = store.append(note(9)).unwrap();
        let after_merge = store.events_after(Some(merge.commit)).unwrap();
        assert!(after_merge.reached);
        assert_eq!(after_merge.events.len(), 1);
        assert_eq!(after_merge.events[0].id, next.event.id);
        assert_eq!(after_merge.tip, Some(next.commit));
    }

    #[test]
    fn contained_logs_fast_forward_or_are_up_to_date_and_the_reflog_says_so() {
        let (dir, store) = repository(2);
        let old = store.tip().unwrap().unwrap();
        let ahead = side_line(&store, Some(old), notes(20, 3));
        match store.merge_log(ahead, "origin").unwrap() {
            Merged::FastForward { from, to, events } => {
                assert_eq!((from, to, events), (Some(old), ahead, 3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.tip().unwrap(), Some(ahead));
        assert!(matches!(
            store.merge_log(old, "origin").unwrap(),
            Merged::UpToDate
        ));
        assert!(matches!(
            store.merge_log(ahead, "origin").unwrap(),
            Merged::UpToDate
        ));
        assert_eq!(store.tip().unwrap(), Some(ahead));
        let reflog = git(
            dir.path(),
            &["reflog", "--format=%gs", "refs/spectra/events"],
        );
        assert_eq!(
            reflog.lines().next(),
            Some("spectra merge: fast-forward from origin")
        );

        let (_empty_dir, empty) = repository(0);
        let theirs = side_line(&empty, None, notes(0, 2));
        match empty.merge_log(theirs, "origin").unwrap() {
            Merged::FastForward { from, events, .. } => assert_eq!((from, events), (None, 2)),
            other => panic!("{other:?}"),
        }
        assert_eq!(sound(&empty), 2);
    }

    #[test]
    fn a_merge_that_cannot_take_the_ref_gives_up_with_the_log_unchanged_and_succeeds_later() {
        let (dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 1));
        store.append(note(1)).unwrap();
        let before = store.tip().unwrap();
        let lock = dir.path().join(".git/refs/spectra/events.lock");
        std::fs::write(&lock, b"").unwrap();
        let store = store.with_append_deadline(std::time::Duration::from_millis(20));
        let err = store.merge_log(theirs, "origin").unwrap_err();
        assert!(matches!(err, StoreError::Contention { .. }), "{err:?}");
        assert_eq!(store.tip().unwrap(), before);
        std::fs::remove_file(&lock).unwrap();
        merged(store.merge_log(theirs, "origin").unwrap());
        assert_eq!(sound(&store), 4);
    }

    #[test]
    fn unrelated_logs_merge_with_everything_counted() {
        let (_dir, store) = repository(3);
        let theirs = side_line(&store, None, notes(100, 2));
        let (event, ours_events, theirs_events, _) =
            merged(store.merge_log(theirs, "bob").unwrap());
        assert_eq!((ours_events, theirs_events), (3, 2));
        assert_eq!(event.event.lamport, 4);
        assert_eq!(sound(&store), 6);
    }

    #[test]
    fn both_sides_finishing_the_same_activity_for_a_service_is_a_conflict_dry_runs_are_not() {
        let (_dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let mut their_events = finished("run-b", "logging", false);
        their_events.extend(finished("run-c", "billing", true));
        let theirs = side_line(&store, Some(base), their_events);
        let mut our_events = finished("run-a", "logging", false);
        our_events.extend(finished("run-d", "billing", false));
        store.append_batch(our_events).unwrap();

        let (event, _, _, conflicts) = merged(store.merge_log(theirs, "origin").unwrap());
        let expected = vec![Conflict {
            service: "logging".into(),
            activity: "discover".into(),
            ours: vec!["run-a".into()],
            theirs: vec!["run-b".into()],
        }];
        assert_eq!(conflicts, expected);
        assert_eq!(
            event.event.payload["conflicts"],
            serde_json::to_value(&expected).unwrap()
        );
    }

    #[test]
    fn a_log_that_fails_verification_or_is_no_log_is_refused_and_nothing_moves() {
        let (dir, store) = repository(2);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 2));
        store.append(note(5)).unwrap();
        let before = store.tip().unwrap();
        // Our log known sound: only their new events are checked, and the failure is still
        // named by its place in their whole log.
        assert!(matches!(
            store.integrity().unwrap(),
            Integrity::Intact { events: 3, .. }
        ));

        // Their tip's commit copied onto its grandparent: its prev_digest no longer chains.
        let message = git(
            dir.path(),
            &["log", "-1", "--format=%B", &theirs.to_string()],
        );
        let tree = format!("{theirs}^{{tree}}");
        let forged = oid(&git(
            dir.path(),
            &[
                "commit-tree",
                &tree,
                "-p",
                &base.to_string(),
                "-m",
                &message,
            ],
        ));
        match store.merge_log(forged, "origin").unwrap_err() {
            StoreError::UnverifiedLog { tip, failure } => {
                assert_eq!(tip, forged);
                assert_eq!(failure.commit, forged);
                assert_eq!(failure.position, 3);
                assert!(failure.reason.contains("prev_digest"), "{}", failure.reason);
            }
            other => panic!("{other:?}"),
        }

        let branch = oid(&git(
            dir.path(),
            &["commit-tree", &tree, "-m", "an ordinary commit"],
        ));
        let err = store.merge_log(branch, "origin").unwrap_err();
        assert!(
            matches!(&err, StoreError::NotALog { what, .. } if what.contains("without Spectra-Event")),
            "{err:?}"
        );
        let blob = oid(&git(
            dir.path(),
            &["rev-parse", &format!("{theirs}:event.json")],
        ));
        let err = store.merge_log(blob, "origin").unwrap_err();
        assert!(
            matches!(&err, StoreError::NotALog { what, .. } if what.contains("a blob object")),
            "{err:?}"
        );
        assert_eq!(store.tip().unwrap(), before);
    }

    #[test]
    fn verify_refuses_a_hand_made_merge_and_more_than_two_parents() {
        let (dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 1));
        let ours = store.append(note(1)).unwrap().commit;
        let message = git(dir.path(), &["log", "-1", "--format=%B", &ours.to_string()]);
        let tree = format!("{ours}^{{tree}}");
        let parents = |extra: &[ObjectId]| {
            let mut args = vec!["commit-tree".to_string(), tree.clone()];
            for parent in [base].iter().chain(extra) {
                args.extend(["-p".to_string(), parent.to_string()]);
            }
            args.extend(["-m".to_string(), message.clone()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            oid(&git(dir.path(), &args))
        };
        let by_hand = parents(&[theirs]);
        let failure = store.verify_at(by_hand).unwrap().failure.unwrap();
        assert_eq!(failure.commit, by_hand);
        assert!(
            failure
                .reason
                .contains("two parents but is a note.added, not a log.merged"),
            "{}",
            failure.reason
        );
        let three = parents(&[theirs, ours]);
        let failure = store.verify_at(three).unwrap().failure.unwrap();
        assert!(
            failure.reason.contains("it has 3 parents"),
            "{}",
            failure.reason
        );

        // The store will not write such a merge either.
        let err = store
            .write_merge(
                &note(9),
                &store.tip_at(ours).unwrap(),
                &store.tip_at(theirs).unwrap(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Unverifiable { .. }), "{err:?}");
    }

    #[test]
    fn an_edited_event_on_their_side_of_a_merge_is_named_by_its_place_in_the_order() {
        let (dir, store) = repository(1);
        let base = store.tip().unwrap().unwrap();
        let theirs = side_line(&store, Some(base), notes(100, 2));
        store.append(note(1)).unwrap();
        let merge = merged(store.merge_log(theirs, "origin").unwrap()).0;
        assert_eq!(sound(&store), 5);
        // Rewrite the merge with its second parent swapped for a forged line: a new commit
        // whose digest trailer no longer matches what it covers.
        let message = git(
            dir.path(),
            &["log", "-1", "--format=%B", &merge.commit.to_string()],
        );
        let forged_theirs = side_line(&store, Some(base), notes(200, 2));
        let ours = git(dir.path(), &["rev-parse", &format!("{}^1", merge.commit)]);
        let tree = format!("{}^{{tree}}", merge.commit);
        let forged = oid(&git(
            dir.path(),
            &[
                "commit-tree",
                &tree,
                "-p",
                &ours,
                "-p",
                &forged_theirs.to_string(),
                "-m",
                &message,
            ],
        ));
        let failure = store.verify_at(forged).unwrap().failure.unwrap();
        assert_eq!(failure.commit, forged);
        assert_eq!(failure.position, 5);
        assert!(failure.reason.contains("digest"), "{}", failure.reason);
    }
}
