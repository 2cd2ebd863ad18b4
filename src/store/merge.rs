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

use super::append::{Tip, backoff, gives_up, tip_of};
use super::commit::CommitHeader;
use super::dag::Apart;
use super::integrity::Sound;
use super::objects::{EventCommit, ObjectSink, write_tree};
use super::trailers::{commit_message, one_line_value};
use super::verify::Before;
use super::{ReadError, Store, StoreError, StoredEvent, read};
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
        /// Our tip before the merge; `None` when we had no log.
        from: Option<ObjectId>,
        /// Their tip, where the ref now points.
        to: ObjectId,
        /// How many events the fast-forward brought.
        events: usize,
    },
    /// Both had events the other lacked: `event` (a `log.merged`) joins them.
    Merged {
        /// The `log.merged` event, as stored.
        event: StoredEvent,
        /// The events only our side held since the merge base.
        ours_events: usize,
        /// The events only their side held since the merge base.
        theirs_events: usize,
        /// What both sides ran since the merge base.
        conflicts: Vec<Conflict>,
    },
}

/// A service and activity that both sides of a merge ran (not as a dry run) since the merge
/// base, with the runs each side finished, sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conflict {
    /// The service both sides ran the activity for.
    pub service: String,
    /// The activity both sides ran.
    pub activity: String,
    /// The runs our side finished, sorted.
    pub ours: Vec<String>,
    /// The runs their side finished, sorted.
    pub theirs: Vec<String>,
}

/// Where our log stands against another clone's: the events only ours holds (`ahead`) and
/// those only theirs holds (`behind`). Both zero: the same log; both non-zero: diverged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// Events only our log holds.
    pub ahead: usize,
    /// Events only their log holds.
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
                    if gives_up(attempt, started, self.append_deadline) {
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
            .map_err(ReadError::from)?;
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
        tip_of(header)
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
    fn dry_runs(&self, headers: &[CommitHeader]) -> Result<HashSet<String>, StoreError> {
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
        one_line_value(remote)
    )
}

/// The reflog entry of a merge event.
fn merge_reason(remote: &str, ours_events: usize, theirs_events: usize) -> String {
    format!(
        "spectra merge: joined {} ({ours_events} local, {theirs_events} remote events)",
        one_line_value(remote)
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
mod tests;
