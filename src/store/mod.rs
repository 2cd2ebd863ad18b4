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

// Temporary: this module is being restructured; its public items get their docs then.
#![allow(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::objs::{FindExt, Kind};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::event::{self, Event, EventError, GENESIS_DIGEST, NewEvent};
use crate::repo::Repo;
use crate::trailer_text::Trailers;
use dag::HeaderWalk;

mod dag;
mod deflate;
mod integrity;
mod loose;
mod merge;
mod pack;
mod read;
mod resume;

pub use integrity::Integrity;
pub use merge::{Conflict, Divergence, Merged};
pub use read::Keep;
pub use resume::{Place, Since};

/// The ref that holds the event log.
pub const EVENTS_REF: &str = "refs/spectra/events";

/// The file in each event's tree that holds the envelope.
pub const EVENT_FILE: &str = "event.json";

/// How long and how often an append keeps retrying a lost compare-and-swap.
const APPEND_DEADLINE: Duration = Duration::from_secs(60);
const APPEND_MAX_ATTEMPTS: u32 = 2_000;

/// Batches of at least this many events are written as one pack instead of loose objects.
///
/// Not lower: every pack costs every later process time to open until a `git gc` folds it,
/// and folding packs (git's `gc --auto` past `gc.autoPackLimit`) repacks the whole repository,
/// while loose objects are packed incrementally. At 4 a discover made one pack per run.
const PACK_THRESHOLD: usize = 8;

/// Every this many events, `git gc --auto` gets a chance to pack loose objects.
const GC_EVERY: u64 = 1_000;

/// More packs than this and `git gc --auto` is asked to fold them into one (git's own limit is 50).
const MAX_PACKS_BEFORE_GC: usize = 40;

/// Memory for decoded pack deltas while walking: long logs are delta chains in a pack.
const PACK_CACHE_BYTES: usize = 96 * 1024 * 1024;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the event log: {0}")]
    Read(String),
    #[error("cannot write the event log: {0}")]
    Write(String),
    #[error(
        "gave up appending after {attempts} attempts: other writers kept moving {EVENTS_REF} or its lock stayed taken ({last_error})"
    )]
    Contention { attempts: u32, last_error: String },
    #[error("no event matches `{0}`")]
    NotFound(String),
    #[error("`{0}` is too short to name an event: give at least 4 characters of the id")]
    TooShort(String),
    #[error("`{prefix}` is ambiguous; it matches:\n{}", candidates.join("\n"))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("commit {commit} on {EVENTS_REF} is not a git spectra event: {reason}")]
    NotAnEvent { commit: ObjectId, reason: String },
    #[error("event {id} has no attachment named `{name}`")]
    NoSuchAttachment { id: String, name: String },
    /// The store checks each event it builds as `verify` would, before moving the ref; one that
    /// would fail is never written, since the log could then never verify again.
    #[error("refused to write event {id} ({kind}): `git spectra verify` would reject it: {reason}")]
    Unverifiable {
        id: String,
        kind: String,
        reason: String,
    },
    /// The log fails verification, so nothing may act on what it says.
    #[error("the event log fails verification at {0}")]
    Tampered(VerifyFailure),
    /// What a merge was asked to join is not a log of git spectra events at all.
    #[error("{commit} is not a git spectra event log: it is {what}")]
    NotALog { commit: ObjectId, what: String },
    /// The log a merge was asked to join fails verification; it is never merged.
    #[error("refused to merge the log ending at {tip}: it fails verification at {failure}")]
    UnverifiedLog {
        tip: ObjectId,
        failure: VerifyFailure,
    },
    #[error(transparent)]
    Event(#[from] EventError),
}

impl StoreError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Contention { .. } => Some(format!(
                "if no other git spectra or git process is running, remove a stale `{EVENTS_REF}.lock` under the git dir and try again"
            )),
            StoreError::NotFound(_) | StoreError::TooShort(_) => {
                Some("list events with `git spectra log`; ids and unique prefixes both work".into())
            }
            StoreError::Ambiguous { .. } => Some("give more characters of the id".into()),
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
            StoreError::TooShort(_) => Class::Usage,
            StoreError::NotFound(_)
            | StoreError::Ambiguous { .. }
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

fn read_err(err: impl std::fmt::Display) -> StoreError {
    StoreError::Read(err.to_string())
}

fn write_err(err: impl std::fmt::Display) -> StoreError {
    StoreError::Write(err.to_string())
}

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

/// What [`Store::events_after`] found.
#[derive(Debug)]
pub struct EventsAfter<T = Event> {
    /// The newest commit of the log when the walk started; `None` for an empty log.
    pub tip: Option<ObjectId>,
    /// Oldest first.
    pub events: Vec<T>,
    /// Whether the walk reached the known commit (else `events` is the whole log).
    pub reached: bool,
}

/// Which events a query keeps. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A run id or a prefix of one.
    pub run: Option<String>,
    pub activity: Option<String>,
    pub service: Option<String>,
    pub kind: Option<String>,
    /// Keep events at or after this instant.
    pub since: Option<jiff::Timestamp>,
}

impl Filter {
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

/// The result of [`Store::verify`].
#[derive(Debug, Clone)]
pub struct Verification {
    /// Events checked and found sound before the first problem (all of them when none).
    pub verified: usize,
    /// The first event that is not sound.
    pub failure: Option<VerifyFailure>,
}

/// The first bad event in the log and what is wrong with it.
#[derive(Debug, Clone)]
pub struct VerifyFailure {
    /// 1-based position from the oldest event.
    pub position: usize,
    pub commit: ObjectId,
    /// The event id, when it could be read.
    pub id: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event #{} (commit {}", self.position, self.commit)?;
        if let Some(id) = &self.id {
            write!(f, ", id {id}")?;
        }
        write!(f, "): {}", self.reason)
    }
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
}

/// The facts about the tip an append builds on.
struct Tip {
    commit: ObjectId,
    lamport: u64,
    digest: String,
}

impl Store {
    /// The event log of `repo`.
    pub fn new(repo_handle: &Repo) -> Store {
        let repo = with_reflog(with_pack_cache(repo_handle.gix().clone()));
        Store {
            repo,
            auto_gc: repo_auto_gc(repo_handle),
            actor: actor_of(repo_handle),
            append_deadline: APPEND_DEADLINE,
            integrity_cache: crate::tip_cache::path(repo_handle, integrity::CACHE_NAME),
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
        let reference = self.repo.try_find_reference(EVENTS_REF).map_err(read_err)?;
        match reference {
            None => Ok(None),
            Some(reference) => match reference.target().try_id() {
                Some(id) => Ok(Some(id.to_owned())),
                None => Err(StoreError::Read(format!(
                    "{EVENTS_REF} is a symbolic ref; it must point at the newest event commit"
                ))),
            },
        }
    }

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
                    if attempt >= APPEND_MAX_ATTEMPTS || started.elapsed() > self.append_deadline {
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
    fn write_chain(
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
    fn move_ref(
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
            .map_err(write_err)
    }

    /// Keeps the object store healthy after a successful append; never fails the append.
    ///
    /// Loose objects and small packs add up (three objects per event, one pack per large batch),
    /// and both slow every later read. Every `GC_EVERY` events, and after a batch when more
    /// than `MAX_PACKS_BEFORE_GC` packs have piled up, we ask git to tidy up with
    /// `git gc --auto`, which applies the user's own settings (`gc.auto`, `gc.autoPackLimit`,
    /// `gc.bigPackThreshold`, partial clones), detaches, takes git's gc lock, and does nothing
    /// when nothing is due. `spectra.store.autoGc=false` turns this off.
    fn after_append(&self, stored: &[StoredEvent]) {
        if let Some(args) = self.housekeeping_after(stored) {
            spawn_git(self.repo.common_dir(), args);
        }
    }

    /// The git command that tidies up after appending `stored`, if one is due.
    fn housekeeping_after(&self, stored: &[StoredEvent]) -> Option<&'static [&'static str]> {
        if !self.auto_gc {
            return None;
        }
        let (first, last) = (stored.first()?, stored.last()?);
        // Did this append reach a multiple of GC_EVERY?
        let reached_a_multiple =
            (first.event.lamport - 1) / GC_EVERY != last.event.lamport / GC_EVERY;
        let packed_many = stored.len() >= PACK_THRESHOLD && self.too_many_packs();
        (reached_a_multiple || packed_many).then_some(&["gc", "--auto", "--quiet"])
    }

    fn too_many_packs(&self) -> bool {
        let pack_dir = self.repo.objects.store_ref().path().join("pack");
        std::fs::read_dir(pack_dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.file_name().to_string_lossy().ends_with(".pack"))
                    .count()
                    > MAX_PACKS_BEFORE_GC
            })
            .unwrap_or(false)
    }

    /// The git identity events are recorded under.
    fn actor(&self) -> gix::actor::Signature {
        self.actor.clone()
    }

    /// The tip with the lamport and digest that the next event chains from.
    fn read_tip(&self) -> Result<Option<Tip>, StoreError> {
        let Some(commit) = self.tip()? else {
            return Ok(None);
        };
        let header = self.read_commit(commit, &mut Vec::new())?;
        tip_of(header).map(Some)
    }

    /// Reads one commit of the log without touching its tree.
    fn read_commit(&self, id: ObjectId, buf: &mut Vec<u8>) -> Result<CommitHeader, StoreError> {
        read_commit(&self.repo, id, buf)
    }

    /// Every commit of the log, newest first in the total order (see `dag`).
    fn headers_newest_first(&self) -> HeaderWalk<'_> {
        HeaderWalk {
            store: self,
            next: None,
            started: false,
            buf: Vec::new(),
            sorted: Vec::new(),
        }
    }

    /// Reads `event.json` for one commit.
    fn load(&self, header: CommitHeader, buf: &mut Vec<u8>) -> Result<StoredEvent, StoreError> {
        load_event(&self.repo, header, buf)
    }

    fn tree_entries(
        &self,
        tree: ObjectId,
        buf: &mut Vec<u8>,
    ) -> Result<HashMap<String, ObjectId>, StoreError> {
        let tree = self.repo.objects.find_tree(&tree, buf).map_err(read_err)?;
        Ok(tree
            .entries
            .iter()
            .map(|entry| (entry.filename.to_string(), entry.oid.to_owned()))
            .collect())
    }

    /// Events newest first (the total order reversed), lazily, keeping those `filter` matches.
    pub fn walk_newest_first<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> impl Iterator<Item = Result<StoredEvent, StoreError>> + 'a {
        let mut buf = Vec::new();
        self.headers_newest_first()
            .filter(move |header| match header {
                Ok(header) => filter.matches_trailers(&header.trailers),
                Err(_) => true,
            })
            .map(move |header| header.and_then(|header| self.load(header, &mut buf)))
            .filter(move |event| match event {
                Ok(stored) => filter.matches_event(&stored.event),
                Err(_) => true,
            })
    }

    /// Every event matching `filter`, oldest first in the total order.
    ///
    /// The chain comes from the commit-graph where it covers the log (else from each commit's
    /// tree and parent, serially: each commit names its parent). The commits' messages and then
    /// the events are read in pack order on every core (see `read`).
    pub fn events_oldest_first(&self, filter: &Filter) -> Result<Vec<StoredEvent>, StoreError> {
        let chain = self.chain_after(None)?;
        let commits: Vec<ObjectId> = chain.links.iter().map(|&(commit, _)| commit).collect();
        let hash = self.repo.object_hash();
        let headers = read::objects_of(&self.repo, &commits, Kind::Commit, &|position, bytes| {
            let commit = gix::objs::CommitRefIter::from_bytes(bytes, hash);
            commit_header(commits[position], commit)
        })?;
        let headers: Vec<CommitHeader> = headers
            .into_iter()
            .filter(|header| filter.matches_trailers(&header.trailers))
            .collect();
        let links: Vec<read::Link> = headers.iter().map(|h| (h.id, h.tree)).collect();
        let events = read::events_of(&self.repo, &links, &event::decode)?;
        Ok(headers
            .into_iter()
            .zip(events)
            .map(|(header, event)| stored_event(header, event))
            .filter(|stored| filter.matches_event(&stored.event))
            .collect())
    }

    /// The events after `known` (a commit of the log), oldest first in the total order (see
    /// `dag`), and the tip they end at.
    ///
    /// This is how caches catch up: when `known` is an ancestor of the tip and every newer event
    /// sorts after everything `known` holds, only the newer events are read (`reached`); when
    /// not (the log was replaced, or a merge brought in events that sort among older ones),
    /// `reached` is false and every event is returned, for the caller to fold from scratch. The tip is the first commit the walk saw, so an append by another
    /// process meanwhile cannot make a cache claim events it does not hold.
    ///
    /// Folds need only the events, so the walk takes parents and trees from git's commit-graph
    /// where it covers the log (`git gc` writes it) instead of inflating every commit.
    pub fn events_after(&self, known: Option<ObjectId>) -> Result<EventsAfter, StoreError> {
        self.events_after_kept(known, &event::decode)
    }

    /// [`Store::events_after`], keeping of each event only what `keep` makes of its
    /// `event.json`. `keep` runs as each event is read (on several threads), so a fold that
    /// needs a few fields decodes only those and never holds the whole log in memory.
    pub fn events_after_kept<T: Send>(
        &self,
        known: Option<ObjectId>,
        keep: &Keep<T>,
    ) -> Result<EventsAfter<T>, StoreError> {
        let chain = self.chain_after(known)?;
        Ok(EventsAfter {
            tip: chain.tip,
            events: read::events_of(&self.repo, &chain.links, keep)?,
            reached: chain.reached,
        })
    }

    /// Commits and their trees from the tip back to `known` (exclusive), oldest first: down the
    /// line of first parents while it has no merge, else through the whole DAG.
    fn chain_after(&self, known: Option<ObjectId>) -> Result<Chain, StoreError> {
        let tip = self.tip()?;
        Ok(match self.walk_line(tip, known)? {
            LineWalk::Stopped(links) => Chain {
                tip,
                links,
                reached: true,
            },
            LineWalk::Root(links) => Chain {
                tip,
                links,
                reached: false,
            },
            LineWalk::Merge => {
                self.dag_chain_after(tip.expect("the walk started at the tip"), known)?
            }
        })
    }

    /// Commits and their trees from `tip` down the line of first parents to `stop` (exclusive),
    /// oldest first; or the news that the line meets a merge first, below which the order is
    /// not the line's.
    fn walk_line(
        &self,
        tip: Option<ObjectId>,
        stop: Option<ObjectId>,
    ) -> Result<LineWalk, StoreError> {
        let graph = self.repo.commit_graph_if_enabled().ok().flatten();
        let mut links = Vec::new();
        let mut next = tip;
        // Where `next` sits in the commit-graph, once the walk is inside it: following
        // positions saves a search of the graph per commit.
        let mut position = None;
        let mut buf = Vec::new();
        while let Some(id) = next {
            if Some(id) == stop {
                links.reverse();
                return Ok(LineWalk::Stopped(links));
            }
            let from_graph = graph
                .as_ref()
                .and_then(|graph| graph_link(graph, id, position));
            let (tree, parent, merge) = match from_graph {
                Some(GraphLink {
                    tree,
                    parent,
                    merge,
                }) => {
                    position = parent.map(|(_, at)| at);
                    (tree, parent.map(|(parent, _)| parent), merge)
                }
                None => {
                    position = None;
                    commit_link(&self.repo, id, &mut buf)?
                }
            };
            if merge {
                return Ok(LineWalk::Merge);
            }
            links.push((id, tree));
            next = parent;
        }
        links.reverse();
        Ok(LineWalk::Root(links))
    }

    /// How many events the log holds (reads only commits).
    pub fn count(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for header in self.headers_newest_first() {
            header?;
            count += 1;
        }
        Ok(count)
    }

    /// The event whose id (or commit id) is `query` or starts with it.
    pub fn find(&self, query: &str) -> Result<StoredEvent, StoreError> {
        let wanted = query.trim().to_lowercase();
        if wanted.len() < 4 {
            return Err(StoreError::TooShort(query.to_string()));
        }
        let mut by_id = Vec::new();
        let mut by_commit = Vec::new();
        for header in self.headers_newest_first() {
            let header = header?;
            let id = header.trailers.get("Spectra-Id").unwrap_or_default();
            if id.starts_with(&wanted) {
                by_id.push(header);
            } else if header.id.to_string().starts_with(&wanted) {
                by_commit.push(header);
            }
        }
        let candidates = if by_id.is_empty() { by_commit } else { by_id };
        match candidates.len() {
            0 => Err(StoreError::NotFound(query.to_string())),
            1 => {
                let header = candidates.into_iter().next().expect("one candidate");
                self.load(header, &mut Vec::new())
            }
            _ => Err(StoreError::Ambiguous {
                prefix: query.to_string(),
                candidates: candidates
                    .iter()
                    .map(|header| {
                        format!(
                            "  {} {}",
                            header.trailers.get("Spectra-Id").unwrap_or("?"),
                            header.subject
                        )
                    })
                    .collect(),
            }),
        }
    }

    /// The bytes of one attachment of `stored`.
    pub fn attachment(&self, stored: &StoredEvent, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        let entries = self.tree_entries(stored.tree, &mut buf)?;
        let blob = entries
            .get(name)
            .filter(|_| name != EVENT_FILE)
            .ok_or_else(|| StoreError::NoSuchAttachment {
                id: stored.event.id.clone(),
                name: name.to_string(),
            })?;
        Ok(self
            .repo
            .objects
            .find_blob(blob, &mut buf)
            .map_err(read_err)?
            .data
            .to_vec())
    }

    /// Recomputes the digest chain and the lamport order over the whole log (every commit
    /// reachable from the tip, each once, parents first: see `dag`) and checks that every
    /// commit's trailers and attachments agree with its `event.json`.
    ///
    /// Always from the first event: this is the auditor's check, and reads no cache. Its answer
    /// is saved for [`Store::integrity`].
    pub fn verify(&self) -> Result<Verification, StoreError> {
        Ok(self.check_from_start(self.tip()?)?.verification())
    }

    /// Reads and checks one event given what it chains from (see [`check_envelope`]) and its
    /// attachments; returns the event and its digest.
    fn check_event(
        &self,
        header: CommitHeader,
        before: &Before,
        buf: &mut Vec<u8>,
    ) -> Result<(Event, String), String> {
        check_required_trailers(&header.trailers)?;
        let trailers = header.trailers.clone();
        let entries = self
            .tree_entries(header.tree, buf)
            .map_err(|err| err.to_string())?;
        let blob = entries
            .get(EVENT_FILE)
            .ok_or_else(|| format!("its tree has no {EVENT_FILE}"))?;
        let bytes = self
            .repo
            .objects
            .find_blob(blob, buf)
            .map_err(|err| err.to_string())?
            .data
            .to_vec();
        let event = event::decode(&bytes).map_err(|err| err.to_string())?;
        let digest = check_envelope(&event, &bytes, &trailers, before)?;
        self.check_attachments(&event, &entries, buf)?;
        Ok((event, digest))
    }

    fn check_attachments(
        &self,
        event: &Event,
        entries: &HashMap<String, ObjectId>,
        buf: &mut Vec<u8>,
    ) -> Result<(), String> {
        for (name, blob) in entries {
            if name == EVENT_FILE {
                continue;
            }
            let Some(expected) = event.attachments.get(name) else {
                return Err(format!(
                    "its tree holds `{name}`, which event.json does not list"
                ));
            };
            let data = self
                .repo
                .objects
                .find_blob(blob, buf)
                .map_err(|err| err.to_string())?
                .data;
            if &crate::digest::sha256_hex(data) != expected {
                return Err(format!(
                    "attachment `{name}` does not match its SHA-256 in event.json (edited after it was written?)"
                ));
            }
        }
        if let Some(missing) = event
            .attachments
            .keys()
            .find(|name| !entries.contains_key(*name))
        {
            return Err(format!(
                "attachment `{missing}` is listed but missing from the tree"
            ));
        }
        Ok(())
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

/// The reflog entry of an append: `spectra append: <subject>`, or for a batch
/// `spectra append: <n> events: <last subject>`.
fn reflog_message(stored: &[StoredEvent]) -> String {
    let last = stored.last().map_or("", |event| event.subject.trim_start());
    match stored.len() {
        1 => format!("spectra append: {last}"),
        count => format!("spectra append: {count} events: {last}"),
    }
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

/// What the next event after `header`'s commit chains from, from its trailers.
fn tip_of(header: CommitHeader) -> Result<Tip, StoreError> {
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

/// Reads one commit of the log without touching its tree.
fn read_commit(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<CommitHeader, StoreError> {
    let commit = repo.objects.find_commit_iter(&id, buf).map_err(read_err)?;
    commit_header(id, commit)
}

/// What the log needs of commit `id`, from its bytes.
fn commit_header(
    id: ObjectId,
    commit: gix::objs::CommitRefIter<'_>,
) -> Result<CommitHeader, StoreError> {
    let tree = commit.clone().tree_id().map_err(read_err)?;
    let parents = commit.parent_ids().collect();
    let message = commit.message().map_err(read_err)?;
    Ok(CommitHeader {
        id,
        tree,
        parents,
        subject: String::from_utf8_lossy(message)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        trailers: Trailers::parse(message),
    })
}

/// Reads and decodes `event.json` of one commit, with the commit's subject and digest.
fn load_event(
    repo: &gix::Repository,
    header: CommitHeader,
    buf: &mut Vec<u8>,
) -> Result<StoredEvent, StoreError> {
    let blob = read::event_blob(repo, header.id, header.tree, buf)?;
    let bytes = repo.objects.find_blob(&blob, buf).map_err(read_err)?.data;
    let event = read::decode(header.id, bytes, &event::decode)?;
    Ok(stored_event(header, event))
}

/// An event with what its commit says about it.
fn stored_event(header: CommitHeader, event: Event) -> StoredEvent {
    let digest = header
        .trailers
        .get("Spectra-Digest")
        .unwrap_or_default()
        .to_string();
    StoredEvent {
        commit: header.id,
        tree: header.tree,
        subject: header.subject,
        digest,
        event,
    }
}

/// A commit's tree and first parent (with its place in the graph), from the commit-graph, and
/// whether it has more parents (a merge event).
struct GraphLink {
    tree: ObjectId,
    parent: Option<(ObjectId, gix::commitgraph::Position)>,
    merge: bool,
}

/// The link of `id` from the commit-graph, when the graph holds it; `at` is its position
/// there when already known.
fn graph_link(
    graph: &gix::commitgraph::Graph,
    id: ObjectId,
    at: Option<gix::commitgraph::Position>,
) -> Option<GraphLink> {
    let commit = graph.commit_at(at.or_else(|| graph.lookup(id))?);
    let merge = commit.iter_parents().nth(1).is_some();
    let parent = match commit.iter_parents().next() {
        None => None,
        Some(Ok(position)) => Some((graph.id_at(position).to_owned(), position)),
        // A damaged graph: read the commit itself instead.
        Some(Err(_)) => return None,
    };
    Some(GraphLink {
        tree: commit.root_tree_id().to_owned(),
        parent,
        merge,
    })
}

/// A commit's tree and first parent, and whether it has more (a merge event), read from the
/// commit itself (its message untouched).
fn commit_link(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<(ObjectId, Option<ObjectId>, bool), StoreError> {
    let commit = repo.objects.find_commit_iter(&id, buf).map_err(read_err)?;
    let tree = commit.clone().tree_id().map_err(read_err)?;
    let mut parents = commit.parent_ids();
    let first = parents.next();
    Ok((tree, first, parents.next().is_some()))
}

/// The chain of commits (and trees) [`Store::events_after`] reads.
struct Chain {
    tip: Option<ObjectId>,
    links: Vec<read::Link>,
    reached: bool,
}

/// How a walk down the line of first parents ended (see [`Store::walk_line`]).
enum LineWalk {
    /// At the commit it was to stop at: the links above it, oldest first.
    Stopped(Vec<read::Link>),
    /// At the root, never meeting a merge: the whole line, oldest first.
    Root(Vec<read::Link>),
    /// At a merge.
    Merge,
}

/// Trailers every event commit carries (Run, Activity and Service only when set).
const REQUIRED_TRAILERS: [&str; 5] = [
    "Spectra-Event",
    "Spectra-Id",
    "Spectra-Lamport",
    "Spectra-Schema",
    "Spectra-Digest",
];

/// The running state of a verification from the oldest event forward.
struct ChainChecker {
    count: usize,
    prev_digest: String,
    lamport: u64,
    ids: HashSet<String>,
}

impl Default for ChainChecker {
    fn default() -> Self {
        ChainChecker {
            count: 0,
            prev_digest: GENESIS_DIGEST.to_string(),
            lamport: 0,
            ids: HashSet::new(),
        }
    }
}

impl ChainChecker {
    /// What the next event on the line must chain from.
    fn before(&self) -> Before {
        Before::one(self.lamport, &self.prev_digest)
    }

    /// Counts a checked event whose digest is `digest`, unless its id was seen before.
    fn record(&mut self, event: &Event, digest: String) -> Result<(), String> {
        if !self.ids.insert(event.id.clone()) {
            return Err(format!("its id {} appears earlier in the log", event.id));
        }
        self.count += 1;
        self.lamport = event.lamport;
        self.prev_digest = digest;
        Ok(())
    }
}

/// Every trailer `verify` requires is in the message.
fn check_required_trailers(trailers: &Trailers) -> Result<(), String> {
    for key in REQUIRED_TRAILERS {
        if trailers.get(key).is_none() {
            return Err(format!(
                "its message has no {key} trailer (was this commit made by hand?)"
            ));
        }
    }
    Ok(())
}

/// What `verify` checks of one event given the one before it (its lamport and digest): the
/// canonical form of `event.json` (`bytes`, decoded as `event`), the chain, and that the
/// commit's trailers mirror the envelope. Returns the event's digest. Pure, so the store runs
/// the same check on what it is about to write.
fn check_envelope(
    event: &Event,
    bytes: &[u8],
    trailers: &Trailers,
    before: &Before,
) -> Result<String, String> {
    if !event.is_canonical_form(bytes) {
        return Err(format!(
            "{EVENT_FILE} is not in canonical form (edited by hand?)"
        ));
    }
    check_merge_shape(event, before)?;
    if event.prev_digest != before.digest {
        return Err(
            "its prev_digest is not the digest of the event before it (events reordered, removed or injected?)"
                .into(),
        );
    }
    if event.lamport != before.lamport + 1 {
        return Err(format!(
            "its lamport {} does not follow {} (events reordered or injected?)",
            event.lamport, before.lamport
        ));
    }
    let digest = match &before.merged_with {
        None => event::chain_digest(&before.digest, bytes),
        Some(second) => event::merge_digest(&before.digest, second, bytes),
    };
    if trailers.get("Spectra-Digest") != Some(digest.as_str()) {
        return Err(
            "its digest does not match its content (payload edited after it was written?)".into(),
        );
    }
    check_trailers_agree(event, trailers)?;
    check_reverts_trailers(event, trailers)?;
    Ok(digest)
}

/// What an event chains from, as its parents' commits say: the lamport it must follow (the
/// greater of two parents'), the digest its `prev_digest` must equal (parent 1's), and for a
/// merge event parent 2's digest, which its own digest covers too.
#[derive(Debug, Clone)]
struct Before {
    lamport: u64,
    digest: String,
    merged_with: Option<String>,
}

impl Before {
    /// What the first event of a log chains from.
    fn genesis() -> Before {
        Before::one(0, GENESIS_DIGEST)
    }

    fn one(lamport: u64, digest: &str) -> Before {
        Before {
            lamport,
            digest: digest.to_string(),
            merged_with: None,
        }
    }
}

/// Only a `log.merged` event has two parents, and it always has two.
fn check_merge_shape(event: &Event, before: &Before) -> Result<(), String> {
    let is_merge_kind = event.kind == event::kind::LOG_MERGED;
    match (&before.merged_with, is_merge_kind) {
        (Some(_), false) => Err(format!(
            "it has two parents but is a {}, not a {} (was a merge made by hand?)",
            event.kind,
            event::kind::LOG_MERGED
        )),
        (None, true) => Err(format!(
            "it is a {} with one parent; a merge of two logs has two",
            event::kind::LOG_MERGED
        )),
        _ => Ok(()),
    }
}

/// Checks an event the store built as `verify` will read it back: the commit's bytes parsed as
/// the walk parses them, `event.json` decoded as the walk decodes it, then [`check_envelope`].
/// Only the uniqueness of the id, which needs the whole log, is left to the UUIDv7.
fn check_own_output(
    hash: gix::hash::Kind,
    sealed: &Event,
    commit_bytes: &[u8],
    json: &[u8],
    before: &Before,
) -> Result<(), StoreError> {
    let unverifiable = |reason: String| StoreError::Unverifiable {
        id: sealed.id.clone(),
        kind: sealed.kind.clone(),
        reason,
    };
    let commit = gix::objs::CommitRefIter::from_bytes(commit_bytes, hash);
    let header =
        commit_header(ObjectId::null(hash), commit).map_err(|err| unverifiable(err.to_string()))?;
    check_required_trailers(&header.trailers).map_err(unverifiable)?;
    let event = event::decode(json).map_err(|err| unverifiable(err.to_string()))?;
    check_envelope(&event, json, &header.trailers, before).map_err(unverifiable)?;
    Ok(())
}

/// The bytes git stores for `object`.
fn encode(object: &impl gix::objs::WriteTo) -> Result<Vec<u8>, StoreError> {
    let mut data = Vec::with_capacity(512);
    object.write_to(&mut data).map_err(write_err)?;
    Ok(data)
}

fn check_trailers_agree(event: &Event, trailers: &Trailers) -> Result<(), String> {
    let expected = expected_trailers(event);
    for key in TRAILER_KEYS {
        let want = expected
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str());
        if trailers.get(key) != want {
            return Err(format!(
                "its {key} trailer ({}) disagrees with event.json ({})",
                trailers.get(key).unwrap_or("absent"),
                want.unwrap_or("absent")
            ));
        }
    }
    Ok(())
}

/// Undo and redo events name each target in a `Spectra-Reverts` trailer, in payload order.
fn check_reverts_trailers(event: &Event, trailers: &Trailers) -> Result<(), String> {
    let expected = reverts_trailers(event);
    let found = trailers.get_all(REVERTS_TRAILER);
    if found != expected {
        return Err(format!(
            "its {REVERTS_TRAILER} trailers ({}) disagree with the targets in event.json ({})",
            list_or_absent(&found),
            list_or_absent(&expected)
        ));
    }
    Ok(())
}

fn list_or_absent(values: &[impl AsRef<str>]) -> String {
    if values.is_empty() {
        "absent".into()
    } else {
        values
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The trailer naming each target of an undo (`events.reverted`) or redo (`events.restored`).
pub const REVERTS_TRAILER: &str = "Spectra-Reverts";

/// The `Spectra-Reverts` values an event's commit carries: its targets when it is an undo or a
/// redo, nothing otherwise. Derived from the envelope, so `verify` can check them.
fn reverts_trailers(event: &Event) -> Vec<String> {
    if event.kind != event::kind::EVENTS_REVERTED && event.kind != event::kind::EVENTS_RESTORED {
        return Vec::new();
    }
    event.payload["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .filter_map(serde_json::Value::as_str)
                .map(one_line_value)
                .collect()
        })
        .unwrap_or_default()
}

/// The trailers that must mirror the envelope (the digest is checked separately).
const TRAILER_KEYS: [&str; 7] = [
    "Spectra-Event",
    "Spectra-Id",
    "Spectra-Run",
    "Spectra-Activity",
    "Spectra-Service",
    "Spectra-Lamport",
    "Spectra-Schema",
];

fn expected_trailers(event: &Event) -> Vec<(&'static str, String)> {
    let mut trailers = vec![
        ("Spectra-Event", event.kind.clone()),
        ("Spectra-Id", event.id.clone()),
    ];
    if let Some(run) = &event.run {
        trailers.push(("Spectra-Run", run.clone()));
    }
    if let Some(activity) = &event.activity {
        trailers.push(("Spectra-Activity", activity.clone()));
    }
    if let Some(service) = &event.service {
        trailers.push(("Spectra-Service", service.clone()));
    }
    trailers.push(("Spectra-Lamport", event.lamport.to_string()));
    trailers.push(("Spectra-Schema", event.schema.to_string()));
    trailers
}

/// The trailers of a commit message: the mirrored envelope, then any `Spectra-Reverts`.
fn message_trailers(event: &Event) -> Vec<(&'static str, String)> {
    let mut trailers = expected_trailers(event);
    trailers.extend(
        reverts_trailers(event)
            .into_iter()
            .map(|target| (REVERTS_TRAILER, target)),
    );
    trailers
}

/// Subject, optional body, then the trailers that make `git log` a complete audit.
///
/// `subject` and `body` come from [`NewEvent::subject_line`] and [`NewEvent::body_text`], which
/// keep them from holding anything git reads as a trailer: the last paragraph is ours alone.
fn commit_message(subject: &str, body: Option<&str>, event: &Event, digest: &str) -> String {
    let mut message = format!("{subject}\n\n");
    if let Some(body) = body.filter(|body| !body.is_empty()) {
        message.push_str(body);
        message.push_str("\n\n");
    }
    for (key, value) in message_trailers(event) {
        message.push_str(&format!("{key}: {}\n", one_line_value(&value)));
    }
    message.push_str(&format!("Spectra-Digest: {digest}\n"));
    message
}

/// Trailer values must stay on one line; anything else would break `git interpret-trailers`.
fn one_line_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signature_at(actor: &gix::actor::Signature, at: &str) -> gix::actor::Signature {
    let seconds = at
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now().as_second());
    gix::actor::Signature {
        name: actor.name.clone(),
        email: actor.email.clone(),
        time: gix::date::Time::new(seconds, 0),
    }
}

/// The tree of one event: `event.json` and its attachments.
fn write_tree(
    sink: &mut ObjectSink<'_>,
    json: Vec<u8>,
    new: &NewEvent,
) -> Result<ObjectId, StoreError> {
    let mut entries = Vec::with_capacity(1 + new.attachments.len());
    entries.push(blob_entry(EVENT_FILE, sink.put(Kind::Blob, json)?));
    for (name, bytes) in &new.attachments {
        entries.push(blob_entry(name, sink.put(Kind::Blob, bytes.clone())?));
    }
    // Git requires tree entries sorted by name (blobs compare as plain bytes).
    entries.sort_by(|a, b| a.filename.cmp(&b.filename));
    sink.put_object(&gix::objs::Tree { entries })
}

/// Where new objects go: straight into loose files, or gathered into one pack for a batch.
/// The commit that records one sealed event: its tree, parents and message.
struct EventCommit<'e> {
    event: &'e Event,
    /// The event's canonical `event.json`.
    json: &'e [u8],
    message: String,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    actor: &'e gix::actor::Signature,
    /// What the event chains from, as verify will check it.
    before: &'e Before,
}

struct ObjectSink<'a> {
    repo: &'a gix::Repository,
    pending: Option<Vec<pack::PackObject>>,
    /// One compressor for every object of the append (see `deflate`).
    deflater: deflate::Deflater,
}

impl<'a> ObjectSink<'a> {
    /// Writes the commit of an event, after checking it as `verify` will read it: an event
    /// verify would reject is never written.
    fn put_event_commit(&mut self, commit: EventCommit<'_>) -> Result<ObjectId, StoreError> {
        let signature = signature_at(commit.actor, &commit.event.at);
        let object = gix::objs::Commit {
            tree: commit.tree,
            parents: commit.parents.into(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: commit.message.into(),
            extra_headers: Vec::new(),
        };
        let bytes = encode(&object)?;
        check_own_output(
            self.repo.object_hash(),
            commit.event,
            &bytes,
            commit.json,
            commit.before,
        )?;
        self.put(Kind::Commit, bytes)
    }

    fn new(repo: &'a gix::Repository, as_pack: bool) -> ObjectSink<'a> {
        ObjectSink {
            repo,
            pending: as_pack.then(Vec::new),
            deflater: deflate::Deflater::new(1),
        }
    }

    fn put_object(&mut self, object: &impl gix::objs::WriteTo) -> Result<ObjectId, StoreError> {
        self.put(object.kind(), encode(object)?)
    }

    fn put(&mut self, kind: Kind, data: Vec<u8>) -> Result<ObjectId, StoreError> {
        let id =
            gix::objs::compute_hash(self.repo.object_hash(), kind, &data).map_err(write_err)?;
        match &mut self.pending {
            None => {
                let objects_dir = self.repo.objects.store_ref().path();
                loose::write(objects_dir, &id, kind, &data, &mut self.deflater)
                    .map_err(write_err)?;
            }
            Some(pending) => pending.push(pack::PackObject { id, kind, data }),
        }
        Ok(id)
    }

    /// Writes the gathered pack, if any; the objects exist only after this.
    fn finish(mut self) -> Result<(), StoreError> {
        match self.pending {
            Some(pending) if !pending.is_empty() => pack::write_pack(
                self.repo.objects.store_ref().path(),
                &pending,
                &mut self.deflater,
            )
            .map_err(write_err),
            _ => Ok(()),
        }
    }
}

fn blob_entry(name: &str, oid: ObjectId) -> gix::objs::tree::Entry {
    gix::objs::tree::Entry {
        mode: gix::objs::tree::EntryKind::Blob.into(),
        filename: name.into(),
        oid,
    }
}

/// The identity events are recorded under; a placeholder where none is configured, because the
/// hook must record even then.
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

/// Starts a housekeeping `git args...` in the repository and does not wait for it: the append
/// is done, and the command only makes later reads faster. Its output goes nowhere; an old git
/// that does not know an option simply does nothing.
fn spawn_git(common_dir: &std::path::Path, args: &[&str]) {
    let spawned = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(common_dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = spawned {
        tracing::debug!(error = %err, ?args, "could not start git housekeeping");
    }
}

/// The pause before retry number `attempt` after a lost compare-and-swap: full jitter, at most
/// 50 ms, so writers who lost the same race spread out.
fn backoff(attempt: u32) -> Duration {
    crate::backoff::Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(50),
    }
    .pause(attempt.saturating_add(1))
}

/// What the log needs from a commit before reading its tree.
struct CommitHeader {
    id: ObjectId,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    subject: String,
    trailers: Trailers,
}

#[cfg(test)]
pub(crate) mod test_git {
    /// Runs `git -C dir args` for a test; panics unless it succeeds; its trimmed stdout.
    pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_come_from_the_last_paragraph() {
        let trailers = Trailers::parse(
            b"subject\n\nBody: not a trailer\n\nSpectra-Id: abc\nSpectra-Lamport: 3\n",
        );
        assert_eq!(trailers.get("Spectra-Id"), Some("abc"));
        assert_eq!(trailers.get("spectra-lamport"), Some("3"));
        assert_eq!(trailers.get("Body"), None);
    }

    #[test]
    fn undo_events_carry_one_reverts_trailer_per_target_and_verify_checks_them() {
        use serde_json::json;
        let undo = NewEvent::new(event::kind::EVENTS_REVERTED)
            .payload(json!({"targets": ["a-1", "b-2"]}))
            .seal("T <t@x>", 1, GENESIS_DIGEST);
        let message = commit_message("undo", None, &undo, &undo.digest());
        let trailers = Trailers::parse(&message);
        assert_eq!(trailers.get_all(REVERTS_TRAILER), vec!["a-1", "b-2"]);
        assert!(check_reverts_trailers(&undo, &trailers).is_ok());

        let dropped = Trailers::parse(message.replace("Spectra-Reverts: b-2\n", ""));
        let error = check_reverts_trailers(&undo, &dropped).unwrap_err();
        assert!(error.contains("disagree"), "{error}");

        let note = NewEvent::new("note.added")
            .payload(json!({"targets": ["a-1"]}))
            .seal("T <t@x>", 1, GENESIS_DIGEST);
        let message = commit_message("note", None, &note, &note.digest());
        assert!(!message.contains(REVERTS_TRAILER));
    }

    /// An empty repository made by `git init`.
    fn fresh_repository() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let init = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(init.success());
        dir
    }

    #[test]
    fn housekeeping_asks_git_gc_when_packs_pile_up_and_every_thousand_events() {
        let dir = fresh_repository();
        let repo = Repo::open(dir.path()).unwrap();
        let mut store = Store::new(&repo);
        // Appending here must not start anything; the decisions are checked directly.
        store.auto_gc = false;
        let event = |n: usize| NewEvent::new("test.event").payload(serde_json::json!({"n": n}));
        let batch = store
            .append_batch((0..PACK_THRESHOLD).map(event).collect())
            .unwrap();
        let single = store.append(event(99)).unwrap();
        store.auto_gc = true;
        assert_eq!(store.housekeeping_after(&batch), None, "one pack is fine");

        let pack_dir = store.repo.objects.store_ref().path().join("pack");
        for n in 0..MAX_PACKS_BEFORE_GC {
            std::fs::write(pack_dir.join(format!("pack-{n:040}.pack")), b"").unwrap();
        }
        let gc: &[&str] = &["gc", "--auto", "--quiet"];
        assert_eq!(store.housekeeping_after(&batch), Some(gc));
        // A single event's objects are loose: it does not look at the packs.
        assert_eq!(
            store.housekeeping_after(std::slice::from_ref(&single)),
            None
        );

        let mut thousandth = single.clone();
        thousandth.event.lamport = GC_EVERY;
        assert_eq!(store.housekeeping_after(&[thousandth]), Some(gc));

        store.auto_gc = false;
        assert_eq!(store.housekeeping_after(&batch), None);
    }

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
}
