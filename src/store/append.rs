//! Appending events: writing their objects, then moving [`EVENTS_REF`] by compare-and-swap.
//!
//! An append builds its events on the tip as it reads it (lamport, `prev_digest`), writes
//! their objects (see `objects`), and moves the ref only if it still points at that tip. A
//! writer that loses the race rebuilds its events on the new tip and tries again after a short
//! jittered pause, until a deadline. No lock file of our own is ever taken; git's ref lock is
//! the only one, and it is held only for the instant of the update.

use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use super::commit::CommitHeader;
use super::objects::{EventCommit, ObjectSink, PACK_THRESHOLD, write_tree};
use super::trailers::commit_message;
use super::verify::Before;
use super::{EVENTS_REF, Store, StoreError, StoredEvent, WriteError};
use crate::event::{self, GENESIS_DIGEST, NewEvent};

/// How long and how often an append keeps retrying a lost compare-and-swap.
pub(super) const APPEND_DEADLINE: Duration = Duration::from_secs(60);
pub(super) const APPEND_MAX_ATTEMPTS: u32 = 2_000;

/// The fewest attempts an append makes before its deadline may end it: on a loaded machine
/// one slow write can outlast a short deadline, and a writer that lost the race once
/// deserves another try on the new tip before it reports contention.
const APPEND_MIN_ATTEMPTS: u32 = 5;

/// Whether an append (or a merge) that has lost `attempt` races since `started` stops now.
pub(super) fn gives_up(attempt: u32, started: Instant, deadline: Duration) -> bool {
    attempt >= APPEND_MAX_ATTEMPTS
        || (attempt >= APPEND_MIN_ATTEMPTS && started.elapsed() > deadline)
}

/// The facts about the tip an append builds on.
pub(super) struct Tip {
    pub(super) commit: ObjectId,
    pub(super) lamport: u64,
    pub(super) digest: String,
}

impl Store {
    /// Appends one event and returns it as stored.
    pub fn append(&self, event: NewEvent) -> Result<StoredEvent, StoreError> {
        let mut stored = self.append_batch(vec![event])?;
        Ok(stored.pop().expect("one event in, one event out"))
    }

    /// Appends `events` in order with a single ref update: all of them land, or none.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        for event in &events {
            event.validate()?;
        }
        let actor = self.actor();
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tip = self.read_tip()?;
            let stored = self.write_chain(&events, &actor, tip.as_ref())?;
            let new_tip = stored.last().expect("non-empty batch").commit;
            let reason = reflog_message(&stored);
            let result = self.move_ref(tip.as_ref().map(|t| t.commit), new_tip, reason);
            match result {
                Ok(()) => {
                    self.after_append(&stored);
                    return Ok(stored);
                }
                Err(err) => {
                    if gives_up(attempt, started, self.append_deadline) {
                        return Err(StoreError::Contention {
                            attempts: attempt,
                            last_error: err.to_string(),
                        });
                    }
                    tracing::debug!(attempt, error = %err, "lost the race for {EVENTS_REF}; rebuilding on the new tip");
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
    }

    /// Writes the blobs, trees and commits of `events` chained after `tip`; moves no ref.
    pub(super) fn write_chain(
        &self,
        events: &[NewEvent],
        actor: &gix::actor::Signature,
        tip: Option<&Tip>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let actor_text = format!("{} <{}>", actor.name, actor.email);
        let (mut parent, mut lamport, mut prev_digest) = match tip {
            Some(tip) => (Some(tip.commit), tip.lamport, tip.digest.clone()),
            None => (None, 0, GENESIS_DIGEST.to_string()),
        };
        let mut sink = ObjectSink::new(&self.repo, events.len() >= PACK_THRESHOLD);
        let mut stored = Vec::with_capacity(events.len());
        for new in events {
            lamport += 1;
            let event = new.seal(&actor_text, lamport, &prev_digest);
            let json = event.canonical_json();
            let digest = event::chain_digest(&prev_digest, &json);
            let tree = write_tree(&mut sink, json.clone(), new)?;
            let subject = new.subject_line();
            let commit_id = sink.put_event_commit(EventCommit {
                event: &event,
                json: &json,
                message: commit_message(&subject, new.body_text().as_deref(), &event, &digest),
                tree,
                parents: parent.into_iter().collect(),
                actor,
                before: &Before::one(lamport - 1, &prev_digest),
            })?;
            parent = Some(commit_id);
            prev_digest = digest.clone();
            stored.push(StoredEvent {
                commit: commit_id,
                tree,
                subject,
                digest,
                event,
            });
        }
        sink.finish()?;
        Ok(stored)
    }

    /// Compare-and-swap: move the ref from `expected` to `new`, or fail if it moved meanwhile.
    ///
    /// Each move also appends `reason` to the ref's reflog (`git reflog refs/spectra/events`),
    /// creating it if need be: git creates reflogs only for branches, remotes and notes unless
    /// `core.logAllRefUpdates=always`, and the reflog is how a log replaced by accident is found
    /// again (see docs/audit.md).
    pub(super) fn move_ref(
        &self,
        expected: Option<ObjectId>,
        new: ObjectId,
        reason: String,
    ) -> Result<(), StoreError> {
        let expected = match expected {
            Some(id) => PreviousValue::MustExistAndMatch(gix::refs::Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: true,
                    message: reason.into(),
                },
                expected,
                new: gix::refs::Target::Object(new),
            },
            name: EVENTS_REF.try_into().expect("a valid ref name"),
            deref: false,
        };
        let mut actor = self.actor();
        // The reflog entry's time is the moment of the update.
        actor.time = gix::date::Time::new(jiff::Timestamp::now().as_second(), 0);
        self.repo
            .edit_references_as(Some(edit), Some(actor.to_ref(&mut Default::default())))
            .map(|_| ())
            .map_err(|err| WriteError::from(err).into())
    }

    /// The git identity events are recorded under.
    pub(super) fn actor(&self) -> gix::actor::Signature {
        self.actor.clone()
    }

    /// The tip with the lamport and digest that the next event chains from.
    pub(super) fn read_tip(&self) -> Result<Option<Tip>, StoreError> {
        let Some(commit) = self.tip()? else {
            return Ok(None);
        };
        let header = self.read_commit(commit, &mut Vec::new())?;
        tip_of(header).map(Some)
    }
}

/// The reflog entry of an append: `spectra append: <subject>`, or for a batch
/// `spectra append: <n> events: <last subject>`.
pub(super) fn reflog_message(stored: &[StoredEvent]) -> String {
    let last = stored.last().map_or("", |event| event.subject.trim_start());
    match stored.len() {
        1 => format!("spectra append: {last}"),
        count => format!("spectra append: {count} events: {last}"),
    }
}

/// What the next event after `header`'s commit chains from, from its trailers.
pub(super) fn tip_of(header: CommitHeader) -> Result<Tip, StoreError> {
    let lamport = header
        .trailers
        .get("Spectra-Lamport")
        .and_then(|value| value.parse().ok());
    let digest = header.trailers.get("Spectra-Digest");
    match (lamport, digest) {
        (Some(lamport), Some(digest)) => Ok(Tip {
            commit: header.id,
            lamport,
            digest: digest.to_string(),
        }),
        _ => Err(StoreError::NotAnEvent {
            commit: header.id,
            reason: "the tip has no Spectra-Lamport or Spectra-Digest trailer; refusing to append after it".into(),
        }),
    }
}

/// The pause before retry number `attempt` after a lost compare-and-swap: full jitter, at most
/// 50 ms, so writers who lost the same race spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    crate::backoff::Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(50),
    }
    .pause(attempt.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Repo;
    use crate::store::test_git::fresh_repository;

    #[test]
    fn the_store_refuses_to_build_an_event_that_verify_would_reject() {
        let dir = fresh_repository();
        let store = Store::new(&Repo::open(dir.path()).unwrap());
        // Past `validate`, as a future caller or a bug might be: the self-check still holds.
        let unchecked = NewEvent::new("note.added").run("r1 ");
        let err = store
            .write_chain(&[unchecked], &store.actor(), None)
            .unwrap_err();
        match err {
            StoreError::Unverifiable { reason, .. } => {
                assert!(reason.contains("Spectra-Run trailer (r1)"), "{reason}")
            }
            other => panic!("expected Unverifiable, got {other:?}"),
        }
        let sound = NewEvent::new("note.added").run("r1");
        assert_eq!(
            store
                .write_chain(&[sound], &store.actor(), None)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.tip().unwrap(), None, "write_chain moves no ref");
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..40 {
            assert!(backoff(attempt) <= Duration::from_millis(50));
        }
    }

    #[test]
    fn a_lost_race_past_the_deadline_is_tried_again_a_few_times_before_giving_up() {
        let long_ago = Instant::now() - Duration::from_secs(5);
        let deadline = Duration::from_secs(1);
        assert!(
            !gives_up(1, long_ago, deadline),
            "one slow write is not contention"
        );
        assert!(!gives_up(APPEND_MIN_ATTEMPTS - 1, long_ago, deadline));
        assert!(gives_up(APPEND_MIN_ATTEMPTS, long_ago, deadline));
        assert!(!gives_up(APPEND_MIN_ATTEMPTS, Instant::now(), deadline));
        assert!(gives_up(APPEND_MAX_ATTEMPTS, Instant::now(), deadline));
    }
}
