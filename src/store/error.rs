//! Why the store could not do what was asked, and how that ends a command.
//!
//! A failure to read or write the object database keeps its cause as a typed source (a gix
//! error, an I/O error); the message the user sees is the one the cause gives, after
//! "cannot read the event log:" or "cannot write the event log:".

use gix::ObjectId;

use super::{EVENTS_REF, VerifyFailure};
use crate::event::EventError;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object database or the ref could not be read.
    #[error("cannot read the event log: {0}")]
    Read(#[from] ReadError),
    /// An object or the ref could not be written.
    #[error("cannot write the event log: {0}")]
    Write(#[from] WriteError),
    /// Other writers kept winning the compare-and-swap on the ref until the deadline.
    #[error(
        "gave up appending after {attempts} attempts: other writers kept moving {EVENTS_REF} or its lock stayed taken ({last_error})"
    )]
    Contention {
        /// How many times the append was built and tried.
        attempts: u32,
        /// Why the last try failed.
        last_error: String,
    },
    /// No event's id or commit starts with what was given.
    #[error("no event matches `{0}`")]
    NotFound(String),
    /// The name given is an event's that belongs to no run.
    #[error("`{0}` names an event that belongs to no run")]
    NoRun(String),
    /// The prefix given is too short to look an event up by.
    #[error("`{0}` is too short to name an event: give at least 4 characters of the id")]
    TooShort(String),
    /// The prefix given starts the ids of several events.
    #[error("`{prefix}` is ambiguous; it matches:\n{}", candidates.join("\n"))]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// One line per event it matches: its id and subject.
        candidates: Vec<String>,
    },
    /// A commit on the log is not an event this tool wrote.
    #[error("commit {commit} on {EVENTS_REF} is not a git spectra event: {reason}")]
    NotAnEvent {
        /// The commit.
        commit: ObjectId,
        /// What is wrong with it.
        reason: String,
    },
    /// An event has no attachment of that name.
    #[error("event {id} has no attachment named `{name}`")]
    NoSuchAttachment {
        /// The event's id.
        id: String,
        /// The attachment asked for.
        name: String,
    },
    /// The store checks each event it builds as `verify` would, before moving the ref; one that
    /// would fail is never written, since the log could then never verify again.
    #[error("refused to write event {id} ({kind}): `git spectra verify` would reject it: {reason}")]
    Unverifiable {
        /// The id of the event that was refused.
        id: String,
        /// Its kind.
        kind: String,
        /// Why `verify` would reject it.
        reason: String,
    },
    /// The log fails verification, so nothing may act on what it says.
    #[error("the event log fails verification at {0}")]
    Tampered(VerifyFailure),
    /// What a merge was asked to join is not a log of git spectra events at all.
    #[error("{commit} is not a git spectra event log: it is {what}")]
    NotALog {
        /// What the merge was asked to join.
        commit: ObjectId,
        /// What it is instead.
        what: String,
    },
    /// The log a merge was asked to join fails verification; it is never merged.
    #[error("refused to merge the log ending at {tip}: it fails verification at {failure}")]
    UnverifiedLog {
        /// The tip of the refused log.
        tip: ObjectId,
        /// Its first bad event.
        failure: VerifyFailure,
    },
    /// An event to append is not valid (see [`crate::event::NewEvent::validate`]).
    #[error(transparent)]
    Event(#[from] EventError),
}

/// Why the event log could not be read: the cause, as gix or the system reported it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// gix could not look up the ref, or find, read or parse an object.
    #[error(transparent)]
    Gix(#[from] gix::Error),
    /// The ref is symbolic: it names another ref instead of a commit.
    #[error("{EVENTS_REF} is a symbolic ref; it must point at the newest event commit")]
    SymbolicRef,
    /// An object is not of the kind the log holds there.
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What it is.
        actual: gix::objs::Kind,
        /// What it should be.
        expected: gix::objs::Kind,
    },
    /// A reading thread could not open its own handle on the repository.
    #[error(transparent)]
    OpenRepository(Box<crate::repo::RepoError>),
    /// A fold of the log refused one of its events and cannot rebuild otherwise.
    #[error("the {fold} fold refused an event and has no other way to rebuild")]
    FoldRefused {
        /// The fold's name.
        fold: &'static str,
    },
}

/// Why the event log could not be written: the cause, as gix or the system reported it.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An object file, a pack or its index could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// gix could not compute an object's id, or update the ref (or its reflog), for instance
    /// because the ref moved meanwhile.
    #[error(transparent)]
    Gix(#[from] gix::Error),
}

impl StoreError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Contention { .. } => Some(format!(
                "if no other git spectra or git process is running, remove a stale `{EVENTS_REF}.lock` under the git dir and try again"
            )),
            StoreError::NotFound(_) | StoreError::TooShort(_) => {
                Some("list events with `git spectra log` and runs with `git spectra runs`; their short forms, full ids and unique prefixes all work".into())
            }
            StoreError::NoRun(_) => {
                Some("`git spectra runs` lists the runs; `git spectra show` shows the event".into())
            }
            StoreError::Ambiguous { .. } => Some("give more characters, or the short form `git spectra log` prints".into()),
            StoreError::NotAnEvent { .. } => {
                Some("run `git spectra verify` to find every problem in the log".into())
            }
            StoreError::Unverifiable { .. } => Some(
                "nothing was written and the log is unchanged; whatever built this event has a bug: please report it with the reason above".into(),
            ),
            StoreError::NotALog { .. } => Some(
                "nothing was merged and the local log is unchanged; a remote's refs/spectra/events must be a log written by git spectra".into(),
            ),
            StoreError::UnverifiedLog { .. } => Some(
                "nothing was merged and the local log is unchanged; whoever writes that log can find every problem with `git spectra verify` in their clone".into(),
            ),
            StoreError::Tampered(_) => Some(
                "nothing was changed: no command acts on a log that fails verification; run `git spectra verify` for details".into(),
            ),
            _ => None,
        }
    }
}

impl crate::failure::Classify for StoreError {
    fn class(&self) -> crate::failure::Class {
        use crate::failure::Class;
        match self {
            // A prefix too short to look up is bad input, as a malformed argument would be.
            StoreError::TooShort(_) | StoreError::Ambiguous { .. } | StoreError::NoRun(_) => {
                Class::Usage
            }
            StoreError::NotFound(_)
            | StoreError::NoSuchAttachment { .. }
            | StoreError::Contention { .. }
            | StoreError::Unverifiable { .. }
            | StoreError::Tampered(_)
            | StoreError::NotALog { .. }
            | StoreError::UnverifiedLog { .. }
            | StoreError::Event(_) => Class::Failed,
            StoreError::Read(_) | StoreError::Write(_) | StoreError::NotAnEvent { .. } => {
                Class::Fatal
            }
        }
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::failure::{Class, Classify};
    use crate::repo::Repo;
    use crate::store::Store;
    use crate::store::test_git::{fresh_repository, git};

    #[test]
    fn a_write_failure_keeps_its_cause_as_its_source_and_prints_as_before() {
        let cause = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no room");
        let err = StoreError::from(WriteError::from(cause));
        assert_eq!(err.to_string(), "cannot write the event log: no room");
        let source = err.source().expect("the cause is kept");
        assert!(matches!(
            source.downcast_ref::<WriteError>(),
            Some(WriteError::Io(io)) if io.kind() == std::io::ErrorKind::PermissionDenied
        ));
        assert_eq!(err.class(), Class::Fatal);
    }

    #[test]
    fn a_symbolic_events_ref_is_a_typed_read_error_with_the_same_message() {
        let dir = fresh_repository();
        git(dir.path(), &["symbolic-ref", EVENTS_REF, "refs/heads/main"]);
        let store = Store::new(&Repo::open(dir.path()).unwrap());
        let err = store.tip().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the event log: refs/spectra/events is a symbolic ref; it must point at the newest event commit"
        );
        assert!(matches!(err, StoreError::Read(ReadError::SymbolicRef)));
        assert_eq!(err.class(), Class::Fatal);
    }
}
