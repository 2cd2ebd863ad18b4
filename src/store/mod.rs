//! The event log: the only code that reads or writes `refs/spectra/*`.
//!
//! One event is one commit on [`EVENTS_REF`]. Its tree holds `event.json` (the canonical
//! envelope) and any attachment blobs; its message is a human subject plus `Spectra-*` trailers,
//! so `git log refs/spectra/events` is an audit trail without this tool. Appends write the
//! objects first and then move the ref with a compare-and-swap against the tip the events were
//! built on: a writer that loses the race rebuilds its events on the new tip (new lamport, new
//! `prev_digest`) and tries again. No lock file of our own is ever taken; git's ref lock is the
//! only one, and it is held only for the instant of the update.
//!
//! Joined with another clone's log by [`Store::merge_log`] (see `merge`), the log becomes a DAG
//! whose merge events have two parents; every read still sees each event once, in one total
//! order (see `dag`).
//!
//! [`Store::verify`] checks the whole log from the first event; [`Store::integrity`] gives the
//! same answer cheaply, from a cache keyed by tip, for the commands that read or act on the log.
//!
//! The code is split by job: `append` (writing events and moving the ref, with contention and
//! backoff), `objects` (the object writers, over `pack`, `loose` and `deflate`), `trailers`
//! (commit messages), `commit` (reading one commit's header and event), `walk` and `read`
//! (reading many events in order), `dag` (the total order), `resume` (where a fold resumes),
//! `ids` (the short forms and every name a person types), `find` (events by name, attachments), `verify` (the chain checker), `integrity` (its cached
//! answer), `merge` (joining logs) and `housekeeping` (`git gc --auto`). Errors are in `error`.

#![warn(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use gix::ObjectId;

use crate::event::Event;
use crate::repo::Repo;
use crate::trailer_text::Trailers;

mod append;
mod commit;
mod dag;
mod deflate;
mod error;
mod find;
mod housekeeping;
mod ids;
mod integrity;
mod last_verify;
mod loose;
mod merge;
mod objects;
mod pack;
mod read;
mod resume;
#[cfg(test)]
pub(crate) mod test_git;
mod trailers;
mod verify;
mod walk;

pub use error::{ReadError, StoreError, WriteError};
pub use ids::{EventName, Ids, IdsEntry, MIN_SHORT, Named};
pub use integrity::Integrity;
pub use last_verify::LastVerify;
pub use merge::{Conflict, Divergence, Merged};
pub use read::Keep;
pub use resume::{Place, Since};
pub use trailers::REVERTS_TRAILER;
pub use verify::{Verification, VerifyFailure};
pub use walk::EventsAfter;

/// The ref that holds the event log.
pub const EVENTS_REF: &str = "refs/spectra/events";

/// The file in each event's tree that holds the envelope.
pub const EVENT_FILE: &str = "event.json";

/// Memory for decoded pack deltas while walking: long logs are delta chains in a pack.
const PACK_CACHE_BYTES: usize = 96 * 1024 * 1024;

/// An event as found in the log, with where it lives.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The commit that records it.
    pub commit: ObjectId,
    /// The commit's tree: `event.json` and the attachments.
    pub tree: ObjectId,
    /// The commit subject.
    pub subject: String,
    /// The `Spectra-Digest` trailer.
    pub digest: String,
    /// The decoded envelope.
    pub event: Event,
}

/// Which events a query keeps. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A run id or a prefix of one.
    pub run: Option<String>,
    /// An activity name (`Spectra-Activity`), exactly.
    pub activity: Option<String>,
    /// A service name (`Spectra-Service`), exactly.
    pub service: Option<String>,
    /// An event kind (`Spectra-Event`), exactly.
    pub kind: Option<String>,
    /// Keep events at or after this instant.
    pub since: Option<jiff::Timestamp>,
    /// Keep events whose commit author, written `Name <email>`, this matches (`git log --author`).
    pub author: Option<regex::Regex>,
    /// Keep events whose commit subject this matches (`git log --grep`).
    pub grep: Option<regex::Regex>,
}

impl Filter {
    fn matches_header(&self, header: &commit::CommitHeader) -> bool {
        self.matches_trailers(&header.trailers)
            && self
                .author
                .as_ref()
                .is_none_or(|author| author.is_match(&header.author))
            && self
                .grep
                .as_ref()
                .is_none_or(|grep| grep.is_match(&header.subject))
    }

    fn matches_trailers(&self, trailers: &Trailers) -> bool {
        let run_matches = match &self.run {
            Some(run) => trailers
                .get("Spectra-Run")
                .is_some_and(|r| r.starts_with(run.as_str())),
            None => true,
        };
        run_matches
            && matches_exactly(&self.activity, trailers.get("Spectra-Activity"))
            && matches_exactly(&self.service, trailers.get("Spectra-Service"))
            && matches_exactly(&self.kind, trailers.get("Spectra-Event"))
    }

    fn matches_event(&self, event: &Event) -> bool {
        match self.since {
            Some(since) => event
                .at
                .parse::<jiff::Timestamp>()
                .is_ok_and(|at| at >= since),
            None => true,
        }
    }
}

fn matches_exactly(wanted: &Option<String>, actual: Option<&str>) -> bool {
    wanted
        .as_deref()
        .is_none_or(|wanted| actual == Some(wanted))
}

/// The event log of one repository.
pub struct Store {
    repo: gix::Repository,
    auto_gc: bool,
    actor: gix::actor::Signature,
    /// How long an append keeps retrying a lost compare-and-swap or a taken ref lock.
    append_deadline: Duration,
    /// Where [`Store::integrity`] keeps its last answer (see `integrity`).
    integrity_cache: PathBuf,
    /// Where [`Store::verify_and_record`] notes its answer (see `last_verify`).
    last_verify: PathBuf,
}

impl Store {
    /// The event log of `repo`.
    pub fn new(repo_handle: &Repo) -> Store {
        let repo = with_reflog(with_pack_cache(repo_handle.gix().clone()));
        Store {
            repo,
            auto_gc: repo_auto_gc(repo_handle),
            actor: actor_of(repo_handle),
            append_deadline: append::APPEND_DEADLINE,
            integrity_cache: crate::tip_cache::path(repo_handle, integrity::CACHE_NAME),
            last_verify: repo_handle.state_dir().join(last_verify::FILE_NAME),
        }
    }

    /// The same store, giving up on an append after `deadline` instead of 60 s. For callers that
    /// must not wait long, such as the post-commit hook behind a stale `events.lock`.
    pub fn with_append_deadline(mut self, deadline: Duration) -> Store {
        self.append_deadline = deadline;
        self
    }

    /// The commit the log currently ends at, or `None` for an empty log.
    pub fn tip(&self) -> Result<Option<ObjectId>, StoreError> {
        let reference = self
            .repo
            .try_find_reference(EVENTS_REF)
            .map_err(ReadError::from)?;
        match reference {
            None => Ok(None),
            Some(reference) => match reference.target().try_id() {
                Some(id) => Ok(Some(id.to_owned())),
                None => Err(ReadError::SymbolicRef.into()),
            },
        }
    }
}

/// A repository handle that writes the log's reflog even where git would write none (a bare
/// repository, `core.logAllRefUpdates=false`), as `git update-ref --create-reflog` does.
fn with_reflog(mut repo: gix::Repository) -> gix::Repository {
    if repo.refs.write_reflog == gix::refs::store::WriteReflog::Disable {
        repo.refs.write_reflog = gix::refs::store::WriteReflog::Normal;
    }
    repo
}

/// A repository handle with a memory-capped cache for pack deltas: long logs are delta chains.
fn with_pack_cache(mut repo: gix::Repository) -> gix::Repository {
    repo.objects.set_pack_cache(|| {
        Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
            PACK_CACHE_BYTES,
        ))
    });
    repo
}

/// The identity events are recorded under (resolved as [`Repo::identity`] resolves it).
/// Commands that write refuse to start without one; only the post-commit hook gets here
/// without one, and records under a placeholder rather than lose the commit it notes.
fn actor_of(repo: &Repo) -> gix::actor::Signature {
    let (name, email) = repo.committer_identity();
    gix::actor::Signature {
        name: name.unwrap_or_else(|| "unknown".into()).into(),
        email: email.unwrap_or_else(|| "unknown@localhost".into()).into(),
        time: gix::date::Time::new(0, 0),
    }
}

/// `SPECTRA_STORE_AUTO_GC`, then `spectra.store.autoGc`; a value that is not a boolean keeps
/// the default rather than failing an append over housekeeping.
fn repo_auto_gc(repo: &Repo) -> bool {
    crate::settings::Layers::from_process(|key| repo.config_string(key))
        .get::<bool>(&crate::settings::keys::STORE_AUTO_GC)
        .map_or(true, |setting| setting.value)
}
