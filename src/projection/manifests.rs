//! A small index of manifests and recent history, so `git spectra manifest` and every run stay
//! fast on a long log.
//!
//! The full projection holds every run (the whole history needs them), which on a log of
//! 100,000 events is tens of megabytes to read back. Manifests need only the latest finished
//! activity per service plus the runs still in progress, and a run's context only the last few
//! history entries of its activity. This index keeps exactly that, cached beside the full
//! projection and keyed by tip the same way. New events fold into it directly; an undo or redo
//! (which can bring back an older manifest) rebuilds it from the full projection.
//!
//! Every service's manifests and history are in the index, but a run reads only its own
//! service's few. So the index keeps what it read from its cache as JSON text ([`Stored`]) and
//! parses a value only when asked for it: reading and writing the cache costs a copy of the
//! text, not a JSON tree built (and dropped) for every service.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{HistoryEntry, Manifest, Projection, history_entry, manifest_of};
use crate::event::{Event, kind};
use crate::fold::{Fold, NeedsRebuild};

/// History entries kept per activity and service: at least what a run's context shows.
pub const RECENT_HISTORY: usize = 5;

/// Latest manifests of finished runs, and the runs still open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManifestIndex {
    /// `service \0 activity` (an empty service for manifests without one) -> the manifest of
    /// the latest finished, non-dry run.
    latest: BTreeMap<String, Stored<Manifest>>,
    /// Runs started but not finished, folded as usual.
    open: Projection,
    /// `activity \0 service` (an empty service for entries without one) -> the last
    /// [`RECENT_HISTORY`] history entries of finished runs, oldest first. The last entries
    /// across all services are among these, so they are not kept separately.
    #[serde(default)]
    recent: BTreeMap<String, VecDeque<KeptEntry>>,
    /// Entries absorbed so far: the next entry's place.
    #[serde(default)]
    absorbed: u64,
    /// The lamport of the last event folded in; 0 when not known (an index rebuilt from the full
    /// projection). A run's own appends follow it directly when nobody appended in between.
    #[serde(default)]
    lamport: u64,
    /// Where in the log the index stands, when it was loaded through its cache.
    #[serde(skip)]
    pub place: Option<crate::fold::Place>,
}

/// A recent history entry with what merging the services' entries sorts by, so that only the
/// entries returned are parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptEntry {
    /// The entry's place in the order runs finished: breaks ties between equal timestamps.
    place: u64,
    /// The entry's timestamp (a copy of the one inside it).
    timestamp: String,
    entry: Stored<HistoryEntry>,
}

/// A value of the index: parsed, when folded in this process, or the JSON text it was cached
/// as, parsed only when asked for.
///
/// Folded values stay parsed rather than serialized at once: they are written to the cache right
/// after the fold anyway, and an index folded afresh then never fails to answer (see
/// [`query_loaded`]).
#[derive(Debug, Clone)]
enum Stored<T> {
    Parsed(T),
    Text(Box<RawValue>),
}

impl<T: Clone + DeserializeOwned> Stored<T> {
    /// The value, parsed from its text if it was read from the cache.
    fn get(&self) -> Result<T, CorruptIndex> {
        match self {
            Stored::Parsed(value) => Ok(value.clone()),
            Stored::Text(text) => serde_json::from_str(text.get()).map_err(CorruptIndex),
        }
    }
}

impl<T: Serialize> Serialize for Stored<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Stored::Parsed(value) => value.serialize(serializer),
            // Written back as read: no tree is built.
            Stored::Text(text) => text.serialize(serializer),
        }
    }
}

impl<'de, T> Deserialize<'de> for Stored<T> {
    /// Only checks that the text is JSON; whether it is a `T` is checked when it is asked for.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Stored::Text)
    }
}

/// A value in the manifest index cache that does not parse as what the index keeps there: the
/// file was edited by hand, or its format changed without a new `CACHE_VERSION`.
#[derive(Debug, thiserror::Error)]
#[error("a value in the manifest index cache does not parse: {0}")]
pub struct CorruptIndex(serde_json::Error);

impl ManifestIndex {
    /// The index of a whole folded log.
    pub fn from_projection(projection: &Projection) -> ManifestIndex {
        let mut open = projection.clone();
        let finished = open.take_finished_runs();
        let mut index = ManifestIndex {
            latest: BTreeMap::new(),
            open,
            recent: BTreeMap::new(),
            absorbed: 0,
            lamport: 0,
            place: None,
        };
        let reverted = projection.reverted_ids();
        for run in finished {
            let undone = run
                .event_ids
                .first()
                .is_some_and(|first| reverted.contains(first.as_str()));
            if !undone {
                index.absorb(&run, &reverted);
            }
        }
        index
    }

    /// Takes a finished run's manifests (unless it was a dry run) and history entries (leaving
    /// out activities an undo reverted).
    fn absorb(&mut self, run: &super::RunRecord, reverted: &BTreeSet<&str>) {
        for record in &run.activities {
            if reverted.contains(record.started_event.as_str()) {
                continue;
            }
            let entry = recent_entry(history_entry(run, record));
            let service = record.service.as_deref();
            let kept = self
                .recent
                .entry(history_key(&record.activity, service))
                .or_default();
            kept.push_back(KeptEntry {
                place: self.absorbed,
                timestamp: entry.timestamp.clone(),
                entry: Stored::Parsed(entry),
            });
            self.absorbed += 1;
            if kept.len() > RECENT_HISTORY {
                kept.pop_front();
            }
            if !run.dry_run {
                let manifest = manifest_of(run, record);
                self.latest
                    .insert(manifest_key(&manifest), Stored::Parsed(manifest));
            }
        }
    }

    /// The last `RECENT_HISTORY` (at most) history entries of `activity`, for `service` or for
    /// every service, oldest first: what the full projection's history ends with, without each
    /// entry's `context` and `result` (see [`recent_entry`]). Only those entries are parsed.
    pub fn try_recent_history(
        &self,
        activity: &str,
        service: Option<&str>,
    ) -> Result<Vec<HistoryEntry>, CorruptIndex> {
        let open = self
            .open
            .history(Some(activity), service)
            .into_iter()
            .map(|(_, entry)| (u64::MAX, Candidate::Open(recent_entry(entry))));
        let mut candidates: Vec<(u64, Candidate)> = self
            .kept_entries(activity, service)
            .map(|kept| (kept.place, Candidate::Kept(kept)))
            .chain(open)
            .collect();
        // In the order the runs started, as the full projection lists them (a run left open by
        // a crash long ago is not the newest entry); equal timestamps in the order runs ended.
        candidates.sort_by(|(a_place, a), (b_place, b)| {
            (a.timestamp(), a_place).cmp(&(b.timestamp(), b_place))
        });
        let start = candidates.len().saturating_sub(RECENT_HISTORY);
        candidates
            .split_off(start)
            .into_iter()
            .map(|(_, candidate)| candidate.into_entry())
            .collect()
    }

    /// The kept entries of `activity` for `service`, or for every service.
    fn kept_entries<'s>(
        &'s self,
        activity: &str,
        service: Option<&str>,
    ) -> impl Iterator<Item = &'s KeptEntry> {
        let kept: Vec<&VecDeque<KeptEntry>> = match service {
            Some(service) => self
                .recent
                .get(&history_key(activity, Some(service)))
                .into_iter()
                .collect(),
            // Every service's entries of this activity: the keys `activity \0 ...`.
            None => {
                let prefix = history_key(activity, None);
                self.recent
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .map(|(_, kept)| kept)
                    .collect()
            }
        };
        kept.into_iter().flatten()
    }

    /// Folds in the next event; an undo or redo asks for a rebuild from the full projection.
    pub fn apply(&mut self, event: &Event) -> Result<(), NeedsRebuild> {
        if matches!(
            event.kind.as_str(),
            kind::EVENTS_REVERTED | kind::EVENTS_RESTORED
        ) {
            return Err(NeedsRebuild);
        }
        self.open.apply(event);
        self.lamport = event.lamport;
        if event.kind == kind::RUN_FINISHED {
            // No undo is folded here (it asks for a rebuild), so nothing is reverted.
            for run in self.open.take_finished_runs() {
                self.absorb(&run, &BTreeSet::new());
            }
        }
        Ok(())
    }

    /// The lamport of the last event folded in; 0 when not known.
    pub fn lamport(&self) -> u64 {
        self.lamport
    }

    /// Ids of events an active undo reverts, and of undos a redo cancelled (for `log` marks).
    /// Undo and redo events always rebuild the index from the full projection, so it holds
    /// every one of them.
    pub fn marked_reverted(&self) -> std::collections::BTreeSet<&str> {
        self.open.marked_reverted()
    }

    /// The manifests, optionally filtered, as the full projection would give them. Only the
    /// manifests of the service (and activity) asked for are parsed.
    pub fn try_manifests(
        &self,
        activity: Option<&str>,
        service: Option<&str>,
    ) -> Result<Vec<Manifest>, CorruptIndex> {
        let mut merged: BTreeMap<String, Manifest> = BTreeMap::new();
        for (key, stored) in self.latest_candidates(activity, service) {
            let manifest = stored.get()?;
            // The key only narrows the search (a name holding a NUL could make another's key
            // match); the manifest itself decides, as in the full projection.
            if is_of(&manifest, activity, service) {
                merged.insert(key.clone(), manifest);
            }
        }
        for manifest in self.open.manifests(activity, service) {
            let key = manifest_key(&manifest);
            // As in the full projection, the run that started last wins: a run left open by a
            // crash long ago does not hide a later one that finished.
            let later = merged
                .get(&key)
                .is_none_or(|finished| manifest.started_at >= finished.started_at);
            if later {
                merged.insert(key, manifest);
            }
        }
        let mut manifests: Vec<Manifest> = merged.into_values().collect();
        manifests.sort_by(|a, b| (&a.service, &a.activity).cmp(&(&b.service, &b.activity)));
        Ok(manifests)
    }

    /// The entries of `latest` whose key can be that of a manifest of `activity` and `service`:
    /// one service's manifests are a range of keys, and an activity's end the key.
    fn latest_candidates<'s>(
        &'s self,
        activity: Option<&'s str>,
        service: Option<&str>,
    ) -> impl Iterator<Item = (&'s String, &'s Stored<Manifest>)> {
        let prefix = service.map(|s| format!("{s}\u{0}")).unwrap_or_default();
        self.latest
            .range(prefix.clone()..)
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .filter(move |(key, _)| {
                activity.is_none_or(|activity| {
                    key.strip_suffix(activity)
                        .is_some_and(|rest| rest.ends_with('\u{0}'))
                })
            })
    }
}

/// A recent history entry to return: kept in the index, or of a run still open.
enum Candidate<'a> {
    Kept(&'a KeptEntry),
    Open(HistoryEntry),
}

impl Candidate<'_> {
    fn timestamp(&self) -> &str {
        match self {
            Candidate::Kept(kept) => &kept.timestamp,
            Candidate::Open(entry) => &entry.timestamp,
        }
    }

    fn into_entry(self) -> Result<HistoryEntry, CorruptIndex> {
        match self {
            Candidate::Kept(kept) => kept.entry.get(),
            Candidate::Open(entry) => Ok(entry),
        }
    }
}

/// Whether `manifest` is of `activity` and `service` (each when given).
fn is_of(manifest: &Manifest, activity: Option<&str>, service: Option<&str>) -> bool {
    activity.is_none_or(|a| manifest.activity == a)
        && service.is_none_or(|s| manifest.service.as_deref() == Some(s))
}

/// `service \0 activity`: the key of a manifest in `latest`.
fn manifest_key(manifest: &Manifest) -> String {
    format!(
        "{}\u{0}{}",
        manifest.service.as_deref().unwrap_or_default(),
        manifest.activity
    )
}

/// A history entry as the index keeps it: what a run's context shows of it (when, which run and
/// service, the decision and the outcome), without the context that run saw and its full result,
/// which only `git spectra history` shows (from the full projection).
fn recent_entry(mut entry: HistoryEntry) -> HistoryEntry {
    entry.context = serde_json::Value::Null;
    entry.result = serde_json::Value::Null;
    entry
}

fn history_key(activity: &str, service: Option<&str>) -> String {
    format!("{activity}\u{0}{}", service.unwrap_or_default())
}

impl Fold for ManifestIndex {
    type Item = Event;

    fn keep(event_json: &[u8]) -> Result<Event, crate::event::EventError> {
        super::decode_for_folding(event_json)
    }

    fn apply(&mut self, event: Event) -> Result<(), NeedsRebuild> {
        ManifestIndex::apply(self, &event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};

    /// The index's answers for tests, where a parse error is a failure.
    trait Answers {
        fn manifests(&self, activity: Option<&str>, service: Option<&str>) -> Vec<Manifest>;
        fn recent_history(&self, activity: &str, service: Option<&str>) -> Vec<HistoryEntry>;
    }

    impl Answers for ManifestIndex {
        fn manifests(&self, activity: Option<&str>, service: Option<&str>) -> Vec<Manifest> {
            self.try_manifests(activity, service).unwrap()
        }

        fn recent_history(&self, activity: &str, service: Option<&str>) -> Vec<HistoryEntry> {
            self.try_recent_history(activity, service).unwrap()
        }
    }

    fn run(run: &str, service: &str, outcome: &str, dry_run: bool) -> Vec<Event> {
        crate::event::seal_for_tests(crate::event::discover_run_for_tests(
            run, service, outcome, dry_run,
        ))
    }

    #[test]
    fn folding_into_the_index_gives_what_the_full_projection_gives() {
        let mut events = run("r1", "logging", "succeeded", false);
        events.extend(run("r2", "billing", "failed", false));
        events.extend(run("r3", "logging", "failed", true));
        let mut open_run = run("r4", "audit", "succeeded", false);
        open_run.truncate(2);
        events.extend(open_run);

        let full = Projection::from_events(&events);
        let mut index = ManifestIndex::from_projection(&Projection::from_events(&events[..5]));
        for event in &events[5..] {
            assert!(index.apply(event).is_ok());
        }
        assert_eq!(index.manifests(None, None), full.manifests(None, None));
        let tail = |history: Vec<(String, HistoryEntry)>| {
            let entries: Vec<HistoryEntry> =
                history.into_iter().map(|(_, e)| recent_entry(e)).collect();
            let start = entries.len().saturating_sub(RECENT_HISTORY);
            entries[start..].to_vec()
        };
        for service in [None, Some("logging"), Some("audit"), Some("nowhere")] {
            assert_eq!(
                index.recent_history("discover", service),
                tail(full.history(Some("discover"), service)),
                "{service:?}"
            );
        }
        assert_eq!(
            index.manifests(Some("discover"), Some("logging")),
            full.manifests(Some("discover"), Some("logging"))
        );
    }

    #[test]
    fn recent_history_keeps_the_last_entries_per_service_and_for_all() {
        let mut events = Vec::new();
        for n in 0..RECENT_HISTORY + 3 {
            let service = if n % 2 == 0 { "logging" } else { "billing" };
            events.extend(run(&format!("r{n}"), service, "succeeded", n == 4));
        }
        let full = Projection::from_events(&events);
        let mut index = ManifestIndex::default();
        for event in &events {
            assert!(index.apply(event).is_ok());
        }
        for service in [None, Some("logging"), Some("billing")] {
            let history: Vec<HistoryEntry> = full
                .history(Some("discover"), service)
                .into_iter()
                .map(|(_, entry)| recent_entry(entry))
                .collect();
            let start = history.len().saturating_sub(RECENT_HISTORY);
            assert_eq!(
                index.recent_history("discover", service),
                history[start..],
                "{service:?}"
            );
        }
        assert_eq!(index.recent_history("discover", None).len(), RECENT_HISTORY);
    }

    /// A discover that failed before it chose a service: its events name none.
    fn nameless_run() -> Vec<Event> {
        let nameless: Vec<NewEvent> =
            crate::event::discover_run_for_tests("r0", "unused", "failed", false)
                .into_iter()
                .map(|mut event| {
                    event.service = None;
                    event
                })
                .collect();
        crate::event::seal_for_tests(nameless)
    }

    #[test]
    fn an_entry_without_a_service_is_kept_once() {
        let mut events = nameless_run();
        events.extend(run("r1", "logging", "succeeded", false));
        let full = Projection::from_events(&events);
        let mut index = ManifestIndex::default();
        for event in &events {
            assert!(index.apply(event).is_ok());
        }
        let history: Vec<HistoryEntry> = full
            .history(Some("discover"), None)
            .into_iter()
            .map(|(_, entry)| recent_entry(entry))
            .collect();
        assert_eq!(history.len(), 2);
        assert_eq!(index.recent_history("discover", None), history);
    }

    #[test]
    fn a_run_left_open_long_ago_does_not_hide_a_later_one() {
        // Started a day earlier than the run that follows, and never finished.
        let interrupted: Vec<NewEvent> =
            crate::event::discover_run_for_tests("r1", "logging", "succeeded", false)
                .into_iter()
                .take(2)
                .map(|mut event| {
                    event.at = "2026-01-01T00:00:00.000Z".into();
                    event
                })
                .collect();
        let mut events = crate::event::seal_for_tests(interrupted);
        events.extend(run("r2", "logging", "succeeded", false));
        let full = Projection::from_events(&events);
        let mut index = ManifestIndex::default();
        for event in &events {
            assert!(index.apply(event).is_ok());
        }
        assert_eq!(index.manifests(None, None), full.manifests(None, None));
        assert_eq!(index.manifests(None, Some("logging"))[0].status, "complete");
        let history: Vec<HistoryEntry> = full
            .history(Some("discover"), None)
            .into_iter()
            .map(|(_, entry)| recent_entry(entry))
            .collect();
        assert_eq!(index.recent_history("discover", None), history);
    }

    /// Runs of three services (one failed, one dry, one without a service, one left open) and
    /// more than `RECENT_HISTORY` entries for one service.
    fn mixed_log() -> Vec<Event> {
        let mut events = nameless_run();
        for n in 1..=RECENT_HISTORY + 2 {
            events.extend(run(&format!("l{n}"), "logging", "succeeded", false));
        }
        events.extend(run("b1", "billing", "failed", false));
        events.extend(run("b2", "billing", "succeeded", true));
        let mut open_run = run("a1", "audit", "succeeded", false);
        open_run.truncate(2);
        events.extend(open_run);
        events
    }

    /// The index as the cache file holds it, and read back.
    fn through_the_cache(index: &ManifestIndex) -> (String, ManifestIndex) {
        let text = serde_json::to_string(index).unwrap();
        let read: ManifestIndex = serde_json::from_str(&text).unwrap();
        (text, read)
    }

    fn services() -> [Option<&'static str>; 6] {
        [
            None,
            Some("logging"),
            Some("billing"),
            Some("audit"),
            Some(""),
            Some("nowhere"),
        ]
    }

    #[test]
    fn the_index_read_back_from_its_cache_gives_the_same_answers() {
        let events = mixed_log();
        let mut folded = ManifestIndex::default();
        for event in &events {
            assert!(folded.apply(event).is_ok());
        }
        let (text, cached) = through_the_cache(&folded);
        // Read back, every value is text until asked for.
        assert!(cached.latest.values().all(|m| matches!(m, Stored::Text(_))));
        assert!(
            cached
                .recent
                .values()
                .flatten()
                .all(|kept| matches!(kept.entry, Stored::Text(_)))
        );
        for activity in [None, Some("discover"), Some("cover"), Some("plan")] {
            for service in services() {
                assert_eq!(
                    cached.manifests(activity, service),
                    folded.manifests(activity, service),
                    "{activity:?} {service:?}"
                );
            }
        }
        for service in services() {
            assert_eq!(
                cached.recent_history("discover", service),
                folded.recent_history("discover", service),
                "{service:?}"
            );
        }
        assert_eq!(cached.manifests(None, None).len(), 3);
        // Written back as read.
        assert_eq!(serde_json::to_string(&cached).unwrap(), text);
    }

    #[test]
    fn events_after_the_cached_tip_fold_into_the_index_read_back() {
        let events = mixed_log();
        let full = Projection::from_events(&events);
        let split = events.len() - 6;
        let mut index = ManifestIndex::from_projection(&Projection::from_events(&events[..split]));
        let (_, mut cached) = through_the_cache(&index);
        for event in &events[split..] {
            assert!(index.apply(event).is_ok());
            assert!(cached.apply(event).is_ok());
        }
        assert_eq!(cached.manifests(None, None), full.manifests(None, None));
        for service in services() {
            assert_eq!(
                cached.recent_history("discover", service),
                index.recent_history("discover", service),
                "{service:?}"
            );
        }
    }

    #[test]
    fn a_cached_value_that_does_not_parse_is_an_error_only_where_asked_for() {
        let mut index = ManifestIndex::default();
        for event in mixed_log() {
            assert!(index.apply(&event).is_ok());
        }
        let mut cache: serde_json::Value = serde_json::to_value(&index).unwrap();
        // Valid JSON, but neither a manifest nor a history entry.
        cache["latest"]["logging\u{0}discover"]["status"] = 5.into();
        cache["recent"]["discover\u{0}billing"][0]["entry"]["outcome"] = 5.into();
        let cached: ManifestIndex = serde_json::from_value(cache).unwrap();

        assert!(cached.try_manifests(None, Some("logging")).is_err());
        assert!(cached.try_manifests(Some("discover"), None).is_err());
        assert_eq!(
            cached.try_manifests(None, Some("billing")).unwrap(),
            index.manifests(None, Some("billing"))
        );
        assert!(
            cached
                .try_recent_history("discover", Some("billing"))
                .is_err()
        );
        assert_eq!(
            cached
                .try_recent_history("discover", Some("logging"))
                .unwrap(),
            index.recent_history("discover", Some("logging"))
        );
    }

    #[test]
    fn an_undo_asks_for_a_rebuild() {
        let mut index = ManifestIndex::default();
        let undo = NewEvent::new(kind::EVENTS_REVERTED).seal("T <t@x>", 1, GENESIS_DIGEST);
        assert!(index.apply(&undo).is_err());
    }
}
