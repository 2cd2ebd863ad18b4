//! The manifest index, cached: what `git spectra manifest` and every run read.
//!
//! Values read from the cache are kept as JSON text and parsed only when asked for (see
//! [`ManifestIndex`]), so one that does not parse (a hand-edited cache) shows only then: ask
//! through [`query`] or [`query_loaded`], which fold the log afresh in that case.

use std::path::Path;

use super::{Cached, Folded};
use crate::projection::manifests::{CorruptIndex, ManifestIndex};
use crate::repo::Repo;
use crate::store::{Store, StoreError, StoredEvent};

impl Cached for ManifestIndex {
    const NAME: &'static str = "manifests";
    const VERSION: u32 = 9;
    const CHECKPOINT_EVERY: u64 = 2048;
    const CHECKPOINTS_KEPT: usize = 8;

    /// An undo or redo can bring back an older manifest, which only the full projection knows.
    fn rebuild(cache_dir: &Path, store: &Store) -> Result<Folded<Self>, StoreError> {
        let projection = super::load::<crate::projection::Projection>(cache_dir, store)?;
        let place = projection.place.clone();
        let value = ManifestIndex::from_projection(&projection.saved());
        let mut folded = Folded {
            value,
            place,
            save: None,
        };
        folded.mark_for_saving(cache_dir);
        Ok(folded)
    }
}

/// The manifest index of the whole log, from its cache where it can be.
pub fn load(repo: &Repo, store: &Store) -> Result<ManifestIndex, StoreError> {
    let folded = super::load::<ManifestIndex>(&crate::tip_cache::dir(repo), store)?;
    Ok(with_place(folded))
}

/// The index folded without its cache, which it then replaces. Every value in it is parsed.
fn fold_afresh(repo: &Repo, store: &Store) -> Result<ManifestIndex, StoreError> {
    let dir = crate::tip_cache::dir(repo);
    let folded = match super::fold_from_scratch::<ManifestIndex>(&dir, store)? {
        Some(folded) => folded,
        None => ManifestIndex::rebuild(&dir, store)?,
    };
    Ok(with_place(folded))
}

/// The saved index, knowing where in the log it stands (for [`remember_appended`]).
fn with_place(folded: Folded<ManifestIndex>) -> ManifestIndex {
    let place = folded.place.clone();
    let mut index = folded.saved();
    index.place = Some(place);
    index
}

/// Folds a run's own appends into the index the run loaded, and saves it as the state at the
/// run's last event, so that the next command finds the cache at the tip instead of reading
/// the run back from git. Only when the events not yet folded follow the index's last event
/// with nothing in between (consecutive lamports from it); otherwise nothing is saved and the
/// next load folds what it finds, as always.
pub fn remember_appended(repo: &Repo, index: &mut ManifestIndex, appended: &[StoredEvent]) {
    let Some(new) = following(index.lamport(), appended) else {
        return;
    };
    let Some(place) = index.place.take() else {
        return;
    };
    let mut folded = Folded {
        value: std::mem::take(index),
        place,
        save: None,
    };
    let events = new
        .into_iter()
        .map(|stored| (stored.commit, stored.event.clone()));
    let extended = folded.extend(&crate::tip_cache::dir(repo), events);
    if extended.is_ok() {
        folded.save();
        *index = folded.value;
        index.place = Some(folded.place);
    } else {
        // The index took part of the events: it no longer matches a place in the log.
        *index = folded.value;
    }
}

/// The events of `appended` after `lamport`, if they follow it with none missing; `None` when
/// `lamport` is unknown (0) or another process appended in between.
fn following(lamport: u64, appended: &[StoredEvent]) -> Option<Vec<&StoredEvent>> {
    if lamport == 0 {
        return None;
    }
    let new: Vec<&StoredEvent> = appended
        .iter()
        .filter(|stored| stored.event.lamport > lamport)
        .collect();
    new.iter()
        .zip(lamport + 1..)
        .all(|(stored, expected)| stored.event.lamport == expected)
        .then_some(new)
}

/// Asks `question` of the manifest index of the whole log (see [`query_loaded`]).
pub fn query<T>(
    repo: &Repo,
    store: &Store,
    question: impl Fn(&ManifestIndex) -> Result<T, CorruptIndex>,
) -> Result<T, StoreError> {
    let mut index = load(repo, store)?;
    query_loaded(&mut index, repo, store, question)
}

/// Asks `question` of `index`, loaded from the cache by [`load`].
///
/// Checking every cached value when the cache is read would cost what keeping them as text
/// saves, so a value that does not parse is found only when a question reaches it. The cache is
/// never the truth: then `index` is replaced by one folded afresh from the log (which also
/// rewrites the cache) and asked again. That index holds every value parsed, never as text, so
/// the second answer cannot fail to parse.
pub fn query_loaded<T>(
    index: &mut ManifestIndex,
    repo: &Repo,
    store: &Store,
    question: impl Fn(&ManifestIndex) -> Result<T, CorruptIndex>,
) -> Result<T, StoreError> {
    match question(index) {
        Ok(answer) => return Ok(answer),
        Err(error) => {
            tracing::debug!(%error, "folding the log afresh for the manifest index");
        }
    }
    *index = fold_afresh(repo, store)?;
    Ok(question(index).expect("an index folded afresh holds no value as text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};

    #[test]
    fn a_runs_own_appends_are_folded_only_when_nothing_came_between() {
        let stored = |lamport: u64| StoredEvent {
            commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
            tree: gix::ObjectId::null(gix::hash::Kind::Sha1),
            subject: String::new(),
            digest: String::new(),
            event: NewEvent::new("test.event").seal("T <t@x>", lamport, GENESIS_DIGEST),
        };
        let lamports = |events: Option<Vec<&StoredEvent>>| {
            events.map(|events| events.iter().map(|s| s.event.lamport).collect::<Vec<_>>())
        };
        let appended: Vec<StoredEvent> = [11, 12, 13, 14].into_iter().map(stored).collect();
        assert_eq!(
            lamports(following(10, &appended)),
            Some(vec![11, 12, 13, 14])
        );
        // An index reloaded after the first two (a later activity's) takes the rest.
        assert_eq!(lamports(following(12, &appended)), Some(vec![13, 14]));
        // Another process appended 11 before this run's first event.
        assert_eq!(lamports(following(9, &appended)), None);
        // Unknown position (an index rebuilt from the full projection).
        assert_eq!(lamports(following(0, &appended)), None);
        // A gap between this run's own appends.
        let gapped: Vec<StoredEvent> = [11, 12, 14].into_iter().map(stored).collect();
        assert_eq!(lamports(following(10, &gapped)), None);
    }
}
