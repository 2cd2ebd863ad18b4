//! A small index of manifests and recent history, so `git spectra manifest` and every run stay
//! fast on a long log.
//!
//! The full projection holds every run (the whole history needs them), which on a log of
//! 100,000 events is tens of megabytes to read back. Manifests need only the latest finished
//! activity per service plus the runs still in progress, and a run's context only the last few
//! history entries of its activity. This index keeps exactly that, cached beside the full
//! projection and keyed by tip the same way. New events fold into it directly; an undo or redo
//! (which can bring back an older manifest) rebuilds it from the full projection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{HistoryEntry, Manifest, Projection, history_entry, manifest_of};
use crate::event::{Event, kind};
use crate::repo::Repo;
use crate::store::{Store, StoreError};
use crate::tip_cache;

const CACHE_VERSION: u32 = 5;

/// History entries kept per activity and service: at least what a run's context shows.
pub const RECENT_HISTORY: usize = 5;

/// Latest manifests of finished runs, and the runs still open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManifestIndex {
    /// `(service, activity)` -> the manifest of the latest finished, non-dry run.
    latest: BTreeMap<String, Manifest>,
    /// Runs started but not finished, folded as usual.
    open: Projection,
    /// `activity \0 service` (an empty service for entries without one) -> the last
    /// [`RECENT_HISTORY`] history entries of finished runs, oldest first. The last entries
    /// across all services are among these, so they are not kept separately.
    /// Each entry with its place in the order runs finished, which breaks ties between equal
    /// timestamps when the services' entries are merged.
    #[serde(default)]
    recent: BTreeMap<String, VecDeque<(u64, HistoryEntry)>>,
    /// Entries absorbed so far: the next entry's place.
    #[serde(default)]
    absorbed: u64,
}

/// An event the index cannot fold alone.
struct NeedsRebuild;

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
            kept.push_back((self.absorbed, entry));
            self.absorbed += 1;
            if kept.len() > RECENT_HISTORY {
                kept.pop_front();
            }
            if !run.dry_run {
                let key = format!("{}\u{0}{}", service.unwrap_or_default(), record.activity);
                self.latest.insert(key, manifest_of(run, record));
            }
        }
    }

    /// The last `RECENT_HISTORY` (at most) history entries of `activity`, for `service` or for
    /// every service, oldest first: what the full projection's history ends with, without each
    /// entry's `context` and `result` (see [`recent_entry`]).
    pub fn recent_history(&self, activity: &str, service: Option<&str>) -> Vec<HistoryEntry> {
        let mut entries: Vec<(u64, HistoryEntry)> = match service {
            Some(service) => self
                .recent
                .get(&history_key(activity, Some(service)))
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            // Every service's entries of this activity: the keys `activity \0 ...`.
            None => {
                let prefix = history_key(activity, None);
                self.recent
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .flat_map(|(_, kept)| kept.iter().cloned())
                    .collect()
            }
        };
        entries.extend(
            self.open
                .history(Some(activity), service)
                .into_iter()
                .map(|(_, entry)| (u64::MAX, recent_entry(entry))),
        );
        // In the order the runs started, as the full projection lists them (a run left open by
        // a crash long ago is not the newest entry); equal timestamps in the order runs ended.
        entries.sort_by(|(a_at, a), (b_at, b)| (&a.timestamp, a_at).cmp(&(&b.timestamp, b_at)));
        let start = entries.len().saturating_sub(RECENT_HISTORY);
        entries
            .split_off(start)
            .into_iter()
            .map(|(_, entry)| entry)
            .collect()
    }

    fn apply(&mut self, event: &Event) -> Result<(), NeedsRebuild> {
        if matches!(
            event.kind.as_str(),
            kind::EVENTS_REVERTED | kind::EVENTS_RESTORED
        ) {
            return Err(NeedsRebuild);
        }
        self.open.apply(event);
        if event.kind == kind::RUN_FINISHED {
            // No undo is folded here (it asks for a rebuild), so nothing is reverted.
            for run in self.open.take_finished_runs() {
                self.absorb(&run, &BTreeSet::new());
            }
        }
        Ok(())
    }

    /// Ids of events an active undo reverts, and of undos a redo cancelled (for `log` marks).
    /// Undo and redo events always rebuild the index from the full projection, so it holds
    /// every one of them.
    pub fn marked_reverted(&self) -> std::collections::BTreeSet<&str> {
        self.open.marked_reverted()
    }

    /// The manifests, optionally filtered, as the full projection would give them.
    pub fn manifests(&self, activity: Option<&str>, service: Option<&str>) -> Vec<Manifest> {
        let mut merged: BTreeMap<String, Manifest> = self
            .latest
            .iter()
            .filter(|(_, m)| {
                activity.is_none_or(|a| m.activity == a)
                    && service.is_none_or(|s| m.service.as_deref() == Some(s))
            })
            .map(|(key, manifest)| (key.clone(), manifest.clone()))
            .collect();
        for manifest in self.open.manifests(activity, service) {
            let key = format!(
                "{}\u{0}{}",
                manifest.service.as_deref().unwrap_or_default(),
                manifest.activity
            );
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
        manifests
    }
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

fn cache_path(repo: &Repo) -> PathBuf {
    tip_cache::path(repo, "manifests.json")
}

/// The manifest index of the whole log, from its cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<ManifestIndex, StoreError> {
    let path = cache_path(repo);
    if let Some((cached_tip, mut index)) = tip_cache::read::<ManifestIndex>(&path, CACHE_VERSION) {
        let after = store.events_after_kept(Some(cached_tip), &super::decode_for_folding)?;
        let Some(tip) = after.tip else {
            return Ok(ManifestIndex::default());
        };
        if after.reached {
            if after.events.is_empty() {
                return Ok(index);
            }
            if after.events.iter().all(|event| index.apply(event).is_ok()) {
                tip_cache::write(&path, CACHE_VERSION, &tip, &index);
                return Ok(index);
            }
        }
    }
    // Cold: fold the whole log straight into the index; only an undo or redo needs the full
    // projection (to know which older manifest comes back).
    let after = store.events_after_kept(None, &super::decode_for_folding)?;
    let Some(tip) = after.tip else {
        return Ok(ManifestIndex::default());
    };
    let mut index = ManifestIndex::default();
    let folded = after.events.iter().all(|event| index.apply(event).is_ok());
    if !folded {
        index = ManifestIndex::from_projection(&super::cache::load(repo, store)?);
    }
    tip_cache::write(&path, CACHE_VERSION, &tip, &index);
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};

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

    #[test]
    fn an_entry_without_a_service_is_kept_once() {
        // A discover that failed before it chose a service: its events name none.
        let nameless: Vec<NewEvent> =
            crate::event::discover_run_for_tests("r0", "unused", "failed", false)
                .into_iter()
                .map(|mut event| {
                    event.service = None;
                    event
                })
                .collect();
        let mut events = crate::event::seal_for_tests(nameless);
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

    #[test]
    fn an_undo_asks_for_a_rebuild() {
        let mut index = ManifestIndex::default();
        let undo = NewEvent::new(kind::EVENTS_REVERTED).seal("T <t@x>", 1, GENESIS_DIGEST);
        assert!(index.apply(&undo).is_err());
    }
}
