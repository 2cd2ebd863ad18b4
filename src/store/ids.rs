//! The names a person types for events and runs, and what each name means.
//!
//! Event ids are UUIDv7: they begin with their timestamp, so events of the same second share
//! their first nine characters and a short prefix of the id names nothing. The short form a
//! person reads is therefore the event commit's hash, abbreviated as `git log --oneline` does:
//! the shortest prefix, at least git's abbreviation length (`core.abbrev` or grown with the
//! object count, never under [`MIN_SHORT`]), that no other commit of the log shares. A run is not a commit; its short form is that of its first event (the lowest
//! lamport, which is `run.started` or `undo.started` for the runs git spectra makes).
//!
//! [`Ids::resolve`] is the one place a typed name is turned into an event or a run: the full
//! id, any unique prefix of an event or run id (at least 4 characters), the short form, and any
//! unique prefix of the commit hash all work.
//!
//! Uniqueness is computed against the whole log from the sorted commit ids, each compared with
//! its two neighbours only: O(n log n) for the sort, linear after it.

use std::collections::HashMap;

use gix::ObjectId;

use super::{Store, StoreError};

/// The fewest characters of a commit hash a short form has, as git's default `core.abbrev`.
pub const MIN_SHORT: usize = 7;

/// The length of a hyphenated UUID, as event and run ids are written.
const UUID_LEN: usize = 36;

/// The fewest characters a typed name must have.
pub const MIN_TYPED: usize = 4;

/// One event of the log, as [`Ids`] knows it.
#[derive(Debug, Clone)]
pub struct EventName {
    /// The commit that records it.
    pub commit: ObjectId,
    /// Its `Spectra-Id`.
    pub id: String,
    /// Its `Spectra-Run`, if it belongs to one.
    pub run: Option<String>,
    /// Its commit subject.
    pub subject: String,
    /// How many characters of the commit hash make it unique in the log.
    short_len: usize,
}

impl EventName {
    /// The short form: the shortest unique prefix of the commit hash.
    pub fn short(&self) -> String {
        self.commit.to_hex_with_len(self.short_len).to_string()
    }
}

/// What a typed name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// One event, by its commit.
    Event(ObjectId),
    /// A run, by its full id: the name was its id, a prefix of it, or its first event's.
    Run(String),
}

/// Every event of the log by commit and by id, with each one's short form.
#[derive(Debug, Default)]
pub struct Ids {
    /// Sorted by commit id.
    events: Vec<EventName>,
    /// Positions in `events`, sorted by event id.
    by_id: Vec<usize>,
    /// Each run's id and the position of its first event, sorted by run id.
    runs: Vec<(String, usize)>,
    /// A commit's position in `events`.
    by_commit: HashMap<ObjectId, usize>,
}

/// What [`Ids::from_events`] takes of one event.
pub struct IdsEntry {
    /// The commit.
    pub commit: ObjectId,
    /// The event id.
    pub id: String,
    /// The run, if any.
    pub run: Option<String>,
    /// The commit subject.
    pub subject: String,
    /// The lamport, which says which event of a run is its first.
    pub lamport: u64,
}

impl Store {
    /// The names of every event and run of the log (one read of every commit header, no trees).
    pub fn ids(&self) -> Result<Ids, StoreError> {
        let Some(tip) = self.tip()? else {
            return Ok(Ids::default());
        };
        let commits = self.reachable(tip)?;
        let headers = self.headers_of(&commits)?;
        let min_short = self.abbrev_len();
        Ok(Ids::from_events_min(
            min_short,
            headers.into_iter().map(|header| {
                let trailer = |key: &str| header.trailers.get(key).map(str::to_string);
                IdsEntry {
                    commit: header.id,
                    id: trailer("Spectra-Id").unwrap_or_default(),
                    run: trailer("Spectra-Run").filter(|run| !run.is_empty()),
                    lamport: trailer("Spectra-Lamport")
                        .and_then(|lamport| lamport.parse().ok())
                        .unwrap_or(u64::MAX),
                    subject: header.subject,
                }
            }),
        ))
    }
}

impl Store {
    /// The fewest hex digits git abbreviates a commit to here, as `git log --oneline` does:
    /// `core.abbrev`, else a length that grows with the repository's object count (at least
    /// [`MIN_SHORT`]). Short forms are never shorter, so they read like git's own.
    fn abbrev_len(&self) -> usize {
        let Some(tip) = self.tip().ok().flatten() else {
            return MIN_SHORT;
        };
        self.repo
            .find_object(tip)
            .map_or(MIN_SHORT, |object| object.id().shorten_or_id().hex_len())
            .max(MIN_SHORT)
    }

    /// The short form of the event `commit` records, as `git log --oneline` abbreviates it:
    /// git's abbreviation length, longer where another object of the repository shares the
    /// prefix (so it is unique in the log too). One lookup in the object database, where
    /// [`Store::ids`] reads every commit: for commands that print a few events of a long log.
    pub fn short_commit(&self, commit: ObjectId) -> String {
        match self.repo.find_object(commit) {
            Ok(object) => object.id().shorten_or_id().to_string(),
            Err(_) => commit.to_string(),
        }
    }

    /// The short form of the event `id`, or of the run `id` (its first event's), found by
    /// walking back from the tip through commit headers only and stopping there: for names near
    /// the tip (the run a command just recorded, the last run), where reading every commit for
    /// [`Store::ids`] would cost more than the rest of the command. The abbreviation is git's
    /// (unique among every object of the repository, so unique in the log, and the same length
    /// [`Store::ids`] gives unless the log itself needs more). `None` when the log does not hold it.
    pub fn short_near_tip(&self, id: &str) -> Option<String> {
        for header in self.headers_newest_first() {
            let header = header.ok()?;
            let trailer = |key: &str| header.trailers.get(key);
            let is_event = trailer("Spectra-Id") == Some(id);
            let starts_run = trailer("Spectra-Run") == Some(id)
                && matches!(
                    trailer("Spectra-Event"),
                    Some(crate::event::kind::RUN_STARTED | crate::event::kind::UNDO_STARTED)
                );
            if is_event || starts_run {
                return Some(self.short_commit(header.id));
            }
        }
        None
    }
}

impl Ids {
    /// The names of these events, in any order, with short forms of at least [`MIN_SHORT`].
    pub fn from_events(entries: impl IntoIterator<Item = IdsEntry>) -> Ids {
        Ids::from_events_min(MIN_SHORT, entries)
    }

    /// [`Ids::from_events`] with short forms of at least `min_short` hex digits.
    pub fn from_events_min(min_short: usize, entries: impl IntoIterator<Item = IdsEntry>) -> Ids {
        let mut entries: Vec<IdsEntry> = entries.into_iter().collect();
        entries.sort_by_key(|entry| entry.commit);
        let short_lens = unique_lengths(&entries, min_short);
        let mut first_of_run: HashMap<String, (u64, String, usize)> = HashMap::new();
        for (at, entry) in entries.iter().enumerate() {
            if let Some(run) = &entry.run {
                let key = (entry.lamport, entry.id.clone(), at);
                first_of_run
                    .entry(run.clone())
                    .and_modify(|first| {
                        if key < *first {
                            *first = key.clone();
                        }
                    })
                    .or_insert(key);
            }
        }
        let events: Vec<EventName> = entries
            .into_iter()
            .zip(short_lens)
            .map(|(entry, short_len)| EventName {
                commit: entry.commit,
                id: entry.id,
                run: entry.run,
                subject: entry.subject,
                short_len,
            })
            .collect();
        let mut by_id: Vec<usize> = (0..events.len()).collect();
        by_id.sort_by(|&a, &b| events[a].id.cmp(&events[b].id));
        let mut runs: Vec<(String, usize)> = first_of_run
            .into_iter()
            .map(|(run, (_, _, at))| (run, at))
            .collect();
        runs.sort();
        let by_commit = events
            .iter()
            .enumerate()
            .map(|(at, event)| (event.commit, at))
            .collect();
        Ids {
            events,
            by_id,
            runs,
            by_commit,
        }
    }

    /// The event recorded by `commit`.
    pub fn event_at(&self, commit: &ObjectId) -> Option<&EventName> {
        self.by_commit.get(commit).map(|&at| &self.events[at])
    }

    /// The event whose id is `id`.
    pub fn event(&self, id: &str) -> Option<&EventName> {
        let at = self
            .by_id
            .binary_search_by(|&at| self.events[at].id.as_str().cmp(id))
            .ok()?;
        Some(&self.events[self.by_id[at]])
    }

    /// The first event of `run`.
    pub fn run_first_event(&self, run: &str) -> Option<&EventName> {
        let at = self
            .runs
            .binary_search_by(|(name, _)| name.as_str().cmp(run))
            .ok()?;
        Some(&self.events[self.runs[at].1])
    }

    /// The short form of the event recorded by `commit`; the full hash if it is not in the log.
    pub fn short_commit(&self, commit: &ObjectId) -> String {
        self.event_at(commit)
            .map_or_else(|| commit.to_string(), EventName::short)
    }

    /// The short form of event `id`; the id itself if the log does not hold it.
    pub fn short_event(&self, id: &str) -> String {
        self.event(id)
            .map_or_else(|| id.to_string(), EventName::short)
    }

    /// The short form of run `run` (its first event's); the id itself if no event names it.
    pub fn short_run(&self, run: &str) -> String {
        self.run_first_event(run)
            .map_or_else(|| run.to_string(), EventName::short)
    }

    /// The short form of `id`, an event's or a run's; `id` itself when the log has neither.
    pub fn short(&self, id: &str) -> String {
        match (self.event(id), self.run_first_event(id)) {
            (Some(event), _) | (None, Some(event)) => event.short(),
            (None, None) => id.to_string(),
        }
    }

    /// `text` with every full event or run id the log holds replaced by its short form, for
    /// messages built where the short forms are not known (plans, descriptions).
    pub fn shorten(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest
                .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if word.len() == UUID_LEN {
                out.push_str(&self.short(word));
            } else {
                out.push_str(word);
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// What `typed` names: an event, or a run (see the module documentation).
    ///
    /// A name that is a run's id (or a prefix of it), or that names the run's first event, is
    /// the run; any other event's name is that event. Ambiguity and unknown names are errors
    /// that list the candidates with their subjects.
    pub fn resolve(&self, typed: &str) -> Result<Named, StoreError> {
        let wanted = typed.trim().to_lowercase();
        if wanted.len() < MIN_TYPED {
            return Err(StoreError::TooShort(typed.to_string()));
        }
        let mut found: Vec<Named> = Vec::new();
        let mut add = |named: Named| {
            if !found.contains(&named) {
                found.push(named);
            }
        };
        for (run, _) in self.runs_starting_with(&wanted) {
            add(Named::Run(run.clone()));
        }
        for event in self.events_matching(&wanted) {
            add(self.named(event));
        }
        // An exact id wins over the prefixes of longer ones.
        if found.len() > 1
            && let Some(exact) = self.exactly(&wanted)
        {
            return Ok(exact);
        }
        match found.len() {
            0 => Err(StoreError::NotFound(typed.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::Ambiguous {
                prefix: typed.to_string(),
                candidates: found.iter().map(|named| self.describe(named)).collect(),
            }),
        }
    }

    /// The run `typed` names: a run's name, or the name of any event of the run (`log --run`).
    pub fn resolve_run(&self, typed: &str) -> Result<String, StoreError> {
        match self.resolve(typed)? {
            Named::Run(run) => Ok(run),
            Named::Event(commit) => self
                .event_at(&commit)
                .and_then(|event| event.run.clone())
                .ok_or_else(|| StoreError::NoRun(typed.to_string())),
        }
    }

    /// The event a resolved name stands for: the event, or a run's first event.
    pub fn event_of(&self, named: &Named) -> Option<&EventName> {
        match named {
            Named::Event(commit) => self.event_at(commit),
            Named::Run(run) => self.run_first_event(run),
        }
    }

    fn named(&self, event: &EventName) -> Named {
        match &event.run {
            Some(run)
                if self.run_first_event(run).map(|first| first.commit) == Some(event.commit) =>
            {
                Named::Run(run.clone())
            }
            _ => Named::Event(event.commit),
        }
    }

    fn exactly(&self, wanted: &str) -> Option<Named> {
        if let Some(event) = self.event(wanted) {
            return Some(self.named(event));
        }
        self.run_first_event(wanted)
            .map(|_| Named::Run(wanted.to_string()))
    }

    /// One line per candidate of an ambiguous name: short form, what it is, subject.
    fn describe(&self, named: &Named) -> String {
        match (named, self.event_of(named)) {
            (Named::Run(run), Some(first)) => {
                format!("  {} run {run}: {}", first.short(), first.subject)
            }
            (Named::Run(run), None) => format!("  run {run}"),
            (Named::Event(_), Some(event)) => {
                format!("  {} event {}: {}", event.short(), event.id, event.subject)
            }
            (Named::Event(commit), None) => format!("  {commit}"),
        }
    }

    /// Runs whose id starts with `prefix`.
    fn runs_starting_with(&self, prefix: &str) -> &[(String, usize)] {
        let start = self.runs.partition_point(|(run, _)| run.as_str() < prefix);
        let end = start
            + self.runs[start..]
                .iter()
                .take_while(|(run, _)| run.starts_with(prefix))
                .count();
        &self.runs[start..end]
    }

    /// Events whose id or commit hash starts with `prefix`.
    fn events_matching<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a EventName> {
        let start = self
            .by_id
            .partition_point(|&at| self.events[at].id.as_str() < prefix);
        let by_id = self.by_id[start..]
            .iter()
            .map(|&at| &self.events[at])
            .take_while(move |event| event.id.starts_with(prefix));
        let start = self
            .events
            .partition_point(|event| event.commit.to_string().as_str() < prefix);
        let by_commit = self.events[start..]
            .iter()
            .take_while(move |event| event.commit.to_string().starts_with(prefix));
        by_id.chain(by_commit)
    }
}

/// For commits sorted by id, how many hex digits make each unique: one more than the longest
/// prefix it shares with either neighbour, and at least `min`.
fn unique_lengths(sorted: &[IdsEntry], min: usize) -> Vec<usize> {
    let hex: Vec<String> = sorted
        .iter()
        .map(|entry| entry.commit.to_string())
        .collect();
    (0..hex.len())
        .map(|at| {
            let before = at
                .checked_sub(1)
                .map_or(0, |prev| shared(&hex[prev], &hex[at]));
            let after = hex.get(at + 1).map_or(0, |next| shared(&hex[at], next));
            (before.max(after) + 1).clamp(min.min(hex[at].len()), hex[at].len())
        })
        .collect()
}

fn shared(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(commit: &str, id: &str, run: Option<&str>, lamport: u64) -> IdsEntry {
        IdsEntry {
            commit: ObjectId::from_hex(commit.as_bytes()).unwrap(),
            id: id.into(),
            run: run.map(str::to_string),
            subject: format!("subject of {id}"),
            lamport,
        }
    }

    fn ids() -> Ids {
        Ids::from_events([
            entry(
                "aaaaaaaa11111111111111111111111111111111",
                "0193f2a1-0000-7000-8000-000000000001",
                Some("0193f2a1-0000-7000-8000-00000000000a"),
                1,
            ),
            entry(
                "aaaaaaaa21111111111111111111111111111111",
                "0193f2a1-0000-7000-8000-000000000002",
                Some("0193f2a1-0000-7000-8000-00000000000a"),
                2,
            ),
            entry(
                "bbbbbbb111111111111111111111111111111111",
                "0193f2a1-0000-7000-8000-000000000003",
                None,
                3,
            ),
        ])
    }

    #[test]
    fn short_forms_are_unique_and_at_least_seven_long() {
        let ids = ids();
        assert_eq!(
            ids.short_event("0193f2a1-0000-7000-8000-000000000001"),
            "aaaaaaaa1"
        );
        assert_eq!(
            ids.short_event("0193f2a1-0000-7000-8000-000000000002"),
            "aaaaaaaa2"
        );
        assert_eq!(
            ids.short_event("0193f2a1-0000-7000-8000-000000000003"),
            "bbbbbbb"
        );
        assert_eq!(
            ids.short_run("0193f2a1-0000-7000-8000-00000000000a"),
            "aaaaaaaa1"
        );
    }

    #[test]
    fn every_printed_form_resolves() {
        let ids = ids();
        let run = Named::Run("0193f2a1-0000-7000-8000-00000000000a".into());
        let second =
            Named::Event(ObjectId::from_hex(b"aaaaaaaa21111111111111111111111111111111").unwrap());
        assert_eq!(ids.resolve("aaaaaaaa1").unwrap(), run);
        assert_eq!(
            ids.resolve("0193f2a1-0000-7000-8000-00000000000a").unwrap(),
            run
        );
        assert_eq!(
            ids.resolve("0193f2a1-0000-7000-8000-000000000001").unwrap(),
            run
        );
        assert_eq!(ids.resolve("aaaaaaaa2").unwrap(), second);
        assert_eq!(
            ids.resolve("0193f2a1-0000-7000-8000-000000000002").unwrap(),
            second
        );
        assert_eq!(
            ids.resolve("BBBB").unwrap(),
            Named::Event(ObjectId::from_hex(b"bbbbbbb111111111111111111111111111111111").unwrap())
        );
    }

    #[test]
    fn shorten_replaces_the_ids_the_log_holds() {
        let ids = ids();
        assert_eq!(
            ids.shorten("undid run 0193f2a1-0000-7000-8000-00000000000a (2 events), not 0193f2a1-0000-7000-8000-0000000000ff"),
            "undid run aaaaaaaa1 (2 events), not 0193f2a1-0000-7000-8000-0000000000ff"
        );
        assert_eq!(
            ids.shorten("event 0193f2a1-0000-7000-8000-000000000003."),
            "event bbbbbbb."
        );
    }

    #[test]
    fn ambiguous_and_unknown_names_are_errors() {
        let ids = ids();
        match ids.resolve("0193f2a1") {
            Err(StoreError::Ambiguous { candidates, .. }) => {
                assert_eq!(candidates.len(), 3, "{candidates:?}");
                assert!(
                    candidates.iter().any(|line| line.contains("subject of")),
                    "{candidates:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ids.resolve("aaaaaaaa"),
            Err(StoreError::Ambiguous { .. })
        ));
        assert!(matches!(ids.resolve("cccc"), Err(StoreError::NotFound(_))));
        assert!(matches!(ids.resolve("aaa"), Err(StoreError::TooShort(_))));
    }
}
