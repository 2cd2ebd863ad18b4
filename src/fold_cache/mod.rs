//! One tip-keyed cached fold: the state of a fold of the whole log, saved under the git dir with
//! the [`Place`] in the log's total order it reflects, and a few checkpoints further back.
//!
//! On a read the store returns the events after the cached place, and only those are folded
//! onto the cached state. Appends always sort after everything, so that is the usual case. A
//! merge can bring in events that sort among the folded ones: the cached state is then no longer
//! a prefix of the log, but a checkpoint from before the two logs diverged still is, and the
//! fold resumes from it instead of from scratch. Only when no place fits (the log was replaced,
//! or diverged before the oldest checkpoint) is the whole log folded again.
//!
//! Each fold (the projection, the manifest index, the stats tally) says what it keeps of an
//! event, how it applies one, how often it keeps a checkpoint and how many, and how it is
//! rebuilt when an event cannot be applied to its state alone. The cache is never the truth:
//! a missing, unreadable or stale file only costs time, and failing to write one is not an
//! error.
//!
//! A cache file is one line of JSON saying its version and place, then the state as JSON, so
//! that reading a checkpoint's place does not parse its state. Checkpoints live in
//! `<cache dir>/checkpoints/<name>-<count>.json`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod manifests;
pub mod projection;
pub mod stats;

use crate::store::{Place, ReadError, Store, StoreError};

pub use crate::fold::{Fold, NeedsRebuild};

/// A fold of the whole log that is cached by [`load`].
pub trait Cached: Fold + Serialize + DeserializeOwned + 'static {
    /// The cache file's name, without `.json`.
    const NAME: &'static str;
    /// Bumped whenever the state's stored shape changes, so an old file is simply ignored.
    const VERSION: u32;
    /// A checkpoint is kept at every multiple of this many events...
    const CHECKPOINT_EVERY: u64;
    /// ...and this many of the latest are kept: a merge of logs that diverged less than
    /// `CHECKPOINT_EVERY * (CHECKPOINTS_KEPT - 1)` events ago resumes from one of them.
    const CHECKPOINTS_KEPT: usize;

    /// The fold of the whole log when [`Fold::apply`] refused an event. The default folds the
    /// log from scratch, which suits only folds whose `apply` never refuses.
    fn rebuild(cache_dir: &Path, store: &Store) -> Result<Folded<Self>, StoreError> {
        fold_from_scratch(cache_dir, store)?
            .ok_or_else(|| StoreError::Read(ReadError::FoldRefused { fold: Self::NAME }))
    }
}

/// A fold's state at a place in the log, and what should be saved of it.
#[derive(Debug)]
pub struct Folded<F> {
    /// The fold's state.
    pub value: F,
    /// The place in the log it has folded up to.
    pub place: Place,
    save: Option<Save>,
}

/// A state newer than its cache file: where to write it, and the checkpoints taken on the way.
#[derive(Debug)]
struct Save {
    cache_dir: PathBuf,
    checkpoints: Vec<(Place, Vec<u8>)>,
}

impl<F: Cached> Folded<F> {
    /// Writes the state (and the checkpoints taken while folding) to the cache if it is newer.
    /// Separate from [`load`] so that a caller can write after it has answered.
    pub fn save(&self) {
        let Some(save) = &self.save else {
            return;
        };
        for (place, state) in &save.checkpoints {
            write_file(
                &checkpoint_path(&save.cache_dir, F::NAME, place.count()),
                F::VERSION,
                place,
                state,
            );
        }
        if let Ok(state) = serde_json::to_vec(&self.value) {
            write_file(
                &cache_path(&save.cache_dir, F::NAME),
                F::VERSION,
                &self.place,
                &state,
            );
        }
        prune_checkpoints::<F>(&save.cache_dir, self.place.count());
    }

    /// Marks the whole state as newer than its cache file.
    fn mark_for_saving(&mut self, cache_dir: &Path) {
        self.save.get_or_insert_with(|| Save {
            cache_dir: cache_dir.to_path_buf(),
            checkpoints: Vec::new(),
        });
    }

    /// [`Folded::save`], then the state.
    pub fn saved(self) -> F {
        self.save();
        self.value
    }

    /// Folds in events that follow the state's place directly (a run's own appends), each with
    /// its commit, and marks the state for saving.
    pub fn extend(
        &mut self,
        cache_dir: &Path,
        events: impl IntoIterator<Item = (gix::ObjectId, F::Item)>,
    ) -> Result<(), NeedsRebuild> {
        let events: Vec<_> = events.into_iter().collect();
        let end = self.place.count() + events.len() as u64;
        self.mark_for_saving(cache_dir);
        let save = self.save.as_mut().expect("just marked");
        for (commit, item) in events {
            self.value.apply(item)?;
            self.place.advance(commit);
            if is_kept_checkpoint::<F>(self.place.count(), end)
                && let Ok(state) = serde_json::to_vec(&self.value)
            {
                save.checkpoints.push((self.place.clone(), state));
            }
        }
        Ok(())
    }
}

/// The fold of the whole log, from its cache and checkpoints where they fit.
pub fn load<F: Cached>(cache_dir: &Path, store: &Store) -> Result<Folded<F>, StoreError> {
    let cached = read_file::<F>(&cache_path(cache_dir, F::NAME));
    let checkpoints = checkpoint_places::<F>(cache_dir);
    let mut places: Vec<Place> = Vec::new();
    // `events_since` takes the first place as a tip's: without a cached state, an empty
    // start stands in for it.
    places.push(
        cached
            .as_ref()
            .map_or_else(Place::start, |(place, _)| place.clone()),
    );
    places.extend(checkpoints.iter().map(|(place, _)| place.clone()));
    let since = store.events_since(&places, &F::keep)?;
    if since.tip.is_none() {
        return Ok(Folded {
            value: F::default(),
            place: Place::start(),
            save: None,
        });
    }
    let state = match since.from {
        Some(0) => cached.map(|(_, state)| state),
        Some(at) => read_file::<F>(&checkpoints[at - 1].1).map(|(_, state)| state),
        None => Some(F::default()),
    };
    let Some(state) = state else {
        // The checkpoint chosen no longer reads back (removed or damaged meanwhile).
        return fold_from_scratch(cache_dir, store)?
            .map_or_else(|| F::rebuild(cache_dir, store), Ok);
    };
    if since.from == Some(0) && since.events.is_empty() {
        tracing::debug!(fold = F::NAME, "cache is up to date");
        return Ok(Folded {
            value: state,
            place: since.start,
            save: None,
        });
    }
    tracing::debug!(
        fold = F::NAME,
        folded = since.events.len(),
        incremental = since.from == Some(0),
        from = since.start.count(),
        "folding events into a cache"
    );
    let mut folded = Folded {
        value: state,
        place: since.start,
        save: None,
    };
    match folded.extend(cache_dir, since.commits.into_iter().zip(since.events)) {
        Ok(()) => Ok(folded),
        Err(NeedsRebuild) => F::rebuild(cache_dir, store),
    }
}

/// The whole log folded without any cache (which it then replaces once saved); `None` when
/// the fold refused an event.
pub fn fold_from_scratch<F: Cached>(
    cache_dir: &Path,
    store: &Store,
) -> Result<Option<Folded<F>>, StoreError> {
    let since = store.events_since(&[], &F::keep)?;
    let mut folded = Folded {
        value: F::default(),
        place: Place::start(),
        save: None,
    };
    if since.tip.is_none() {
        return Ok(Some(folded));
    }
    let events = since.commits.into_iter().zip(since.events);
    Ok(folded.extend(cache_dir, events).ok().map(|()| folded))
}

/// Whether the state after `count` events is a checkpoint to keep, in a fold that ends after
/// `end` events: a multiple of the interval, among the last ones kept.
fn is_kept_checkpoint<F: Cached>(count: u64, end: u64) -> bool {
    let span = F::CHECKPOINT_EVERY * F::CHECKPOINTS_KEPT as u64;
    count % F::CHECKPOINT_EVERY == 0 && count + span > end
}

fn cache_path(cache_dir: &Path, name: &str) -> PathBuf {
    cache_dir.join(format!("{name}.json"))
}

fn checkpoint_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("checkpoints")
}

fn checkpoint_path(cache_dir: &Path, name: &str, count: u64) -> PathBuf {
    checkpoint_dir(cache_dir).join(format!("{name}-{count}.json"))
}

/// The checkpoints of `F` on disk (their counts, from their names), newest first.
fn checkpoint_files<F: Cached>(cache_dir: &Path) -> Vec<(u64, PathBuf)> {
    let prefix = format!("{}-", F::NAME);
    let Ok(entries) = std::fs::read_dir(checkpoint_dir(cache_dir)) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let count = name
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((count, entry.path()))
        })
        .collect();
    files.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
    files
}

/// The places of `F`'s checkpoints and their files, newest first, reading only each file's
/// first line.
fn checkpoint_places<F: Cached>(cache_dir: &Path) -> Vec<(Place, PathBuf)> {
    checkpoint_files::<F>(cache_dir)
        .into_iter()
        .filter_map(|(_, path)| {
            let file = std::fs::File::open(&path).ok()?;
            let mut line = String::new();
            std::io::BufReader::new(file).read_line(&mut line).ok()?;
            let header: Header = serde_json::from_str(&line).ok()?;
            (header.version == F::VERSION).then_some((header.place, path))
        })
        .collect()
}

/// Removes the checkpoints past `count` (of another log) and all but the latest kept.
fn prune_checkpoints<F: Cached>(cache_dir: &Path, count: u64) {
    let stale = checkpoint_files::<F>(cache_dir)
        .into_iter()
        .filter(|(at, _)| *at <= count)
        .skip(F::CHECKPOINTS_KEPT)
        .chain(
            checkpoint_files::<F>(cache_dir)
                .into_iter()
                .filter(|(at, _)| *at > count),
        );
    for (_, path) in stale {
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::debug!(path = %path.display(), %error, "could not remove a checkpoint");
        }
    }
}

/// The first line of a cache file.
#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    place: Place,
}

/// The place and state in a cache file, if it holds one of `F`'s version.
fn read_file<F: Cached>(path: &Path) -> Option<(Place, F)> {
    let bytes = std::fs::read(path).ok()?;
    let split = bytes.iter().position(|&byte| byte == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..split]).ok()?;
    if header.version != F::VERSION {
        return None;
    }
    match serde_json::from_slice(&bytes[split + 1..]) {
        Ok(state) => Some((header.place, state)),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "ignoring an unreadable cache");
            None
        }
    }
}

fn write_file(path: &Path, version: u32, place: &Place, state: &[u8]) {
    let header = Header {
        version,
        place: place.clone(),
    };
    let Ok(mut bytes) = serde_json::to_vec(&header) else {
        return;
    };
    bytes.push(b'\n');
    bytes.extend_from_slice(state);
    crate::tip_cache::write_bytes(path, &bytes);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{EventError, NewEvent};
    use crate::repo::Repo;
    use crate::store::test_git::git;

    /// A fold that lists the `n` of each note in the order it folded them, and counts what it
    /// applied in this process.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Notes {
        ns: Vec<u64>,
        #[serde(skip)]
        applied: usize,
    }

    impl Cached for Notes {
        const NAME: &'static str = "notes";
        const VERSION: u32 = 1;
        const CHECKPOINT_EVERY: u64 = 4;
        const CHECKPOINTS_KEPT: usize = 3;
    }

    impl Fold for Notes {
        type Item = u64;

        fn keep(event_json: &[u8]) -> Result<u64, EventError> {
            let event = crate::event::decode(event_json)?;
            // The merge event has no `n`.
            Ok(event.payload["n"].as_u64().unwrap_or(u64::MAX))
        }

        fn apply(&mut self, n: u64) -> Result<(), NeedsRebuild> {
            self.ns.push(n);
            self.applied += 1;
            Ok(())
        }
    }

    struct Log {
        dir: tempfile::TempDir,
        store: Store,
    }

    impl Log {
        fn new(notes: u64) -> Log {
            let dir = tempfile::tempdir().unwrap();
            git(dir.path(), &["init", "-q"]);
            let log = Log {
                store: Store::new(&Repo::open(dir.path()).unwrap()),
                dir,
            };
            log.store.append_batch(notes_from(0, notes)).unwrap();
            log
        }

        fn cache_dir(&self) -> PathBuf {
            self.dir.path().join("cache")
        }

        /// Loads and saves, as a command does.
        fn load(&self) -> Notes {
            load::<Notes>(&self.cache_dir(), &self.store)
                .unwrap()
                .saved()
        }

        fn folded_from_scratch(&self) -> Vec<u64> {
            let scratch = tempfile::tempdir().unwrap();
            let folded = fold_from_scratch::<Notes>(scratch.path(), &self.store).unwrap();
            folded.unwrap().value.ns
        }

        fn checkpoint_counts(&self) -> Vec<u64> {
            let mut counts: Vec<u64> = checkpoint_files::<Notes>(&self.cache_dir())
                .into_iter()
                .map(|(count, _)| count)
                .collect();
            counts.sort_unstable();
            counts
        }
    }

    fn notes_from(from: u64, count: u64) -> Vec<NewEvent> {
        (from..from + count)
            .map(|n| NewEvent::new("note.added").payload(json!({ "n": n })))
            .collect()
    }

    #[test]
    fn appends_fold_only_the_new_events_and_keep_the_latest_checkpoints() {
        let log = Log::new(10);
        assert_eq!(log.load().applied, 10);
        // Multiples of 4 within the last 3 intervals of 10 events.
        assert_eq!(log.checkpoint_counts(), vec![4, 8]);

        log.store.append_batch(notes_from(10, 7)).unwrap();
        let after = log.load();
        assert_eq!(after.applied, 7);
        assert_eq!(after.ns, (0..17).collect::<Vec<_>>());
        assert_eq!(log.checkpoint_counts(), vec![8, 12, 16]);

        let again = log.load();
        assert_eq!((again.applied, again.ns.len()), (0, 17));
    }

    /// Two logs diverged after 14 events; ours folded 20. Their events sort among ours, so the
    /// cached state is no prefix of the merged log; the checkpoint after 12 events still is.
    #[test]
    fn a_merge_resumes_from_a_checkpoint_before_the_logs_diverged() {
        let log = Log::new(14);
        let base = log.store.tip().unwrap().unwrap();
        let theirs = log
            .store
            .side_line_for_tests(Some(base), &notes_from(100, 5));
        log.store.append_batch(notes_from(14, 6)).unwrap();
        log.load();
        assert_eq!(log.checkpoint_counts(), vec![12, 16, 20]);
        log.store.merge_log(theirs, "origin").unwrap();

        let merged = log.load();
        // 2 common events after the checkpoint, 6 of ours, 5 of theirs and the merge.
        assert_eq!(merged.applied, 14);
        assert_eq!(merged.ns, log.folded_from_scratch());
        assert_eq!(merged.ns.len(), 26);
        // The checkpoints of our own line past the merge base are gone.
        assert_eq!(log.checkpoint_counts(), vec![16, 20, 24]);
        assert_eq!(log.load().applied, 0);
    }

    /// The log of the test above with two events of theirs, merged after ours was folded;
    /// `spoil` then changes the text of the checkpoint after 12 events.
    fn merged_with_a_spoilt_checkpoint(spoil: impl Fn(&str, &str) -> String) -> Log {
        let log = Log::new(14);
        let base = log.store.tip().unwrap().unwrap();
        let theirs = log
            .store
            .side_line_for_tests(Some(base), &notes_from(100, 2));
        log.store.append_batch(notes_from(14, 6)).unwrap();
        log.load();
        log.store.merge_log(theirs, "origin").unwrap();
        let twelve = checkpoint_path(&log.cache_dir(), "notes", 12);
        let text = std::fs::read_to_string(&twelve).unwrap();
        let (header, state) = text.split_once('\n').unwrap();
        std::fs::write(&twelve, spoil(header, state)).unwrap();
        log
    }

    #[test]
    fn a_checkpoint_that_does_not_fit_or_does_not_read_back_is_not_used() {
        let another_prefix = merged_with_a_spoilt_checkpoint(|header, state| {
            let mut header: serde_json::Value = serde_json::from_str(header).unwrap();
            header["place"]["prefix"] = json!("00".repeat(32));
            format!("{header}\n{state}")
        });
        let damaged = merged_with_a_spoilt_checkpoint(|header, _| format!("{header}\n{{\"ns\": 5"));
        for log in [another_prefix, damaged] {
            let merged = log.load();
            assert_eq!(merged.applied, 23, "folded from scratch");
            assert_eq!(merged.ns, log.folded_from_scratch());
        }
    }

    #[test]
    fn a_replaced_log_is_folded_from_scratch() {
        let log = Log::new(9);
        log.load();
        let stranger = log.store.side_line_for_tests(None, &notes_from(50, 5));
        git(
            log.dir.path(),
            &["update-ref", "refs/spectra/events", &stranger.to_string()],
        );
        let replaced = log.load();
        assert_eq!(replaced.ns, (50..55).collect::<Vec<_>>());
        assert_eq!(replaced.applied, 5);
        // Checkpoints of the old log past the new one's end are removed.
        assert_eq!(log.checkpoint_counts(), vec![4]);
    }
}
