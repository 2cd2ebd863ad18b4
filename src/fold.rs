//! A fold of the event log: what it keeps of each event and how it applies one, the events
//! coming oldest first in the log's total order. The projection, the manifest index and the
//! stats tally are folds; [`crate::fold_cache`] caches any of them, saying with a [`Place`] which
//! events a state holds.

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::EventError;

/// An event a fold cannot apply to its state alone (an undo that brings an older state back):
/// the fold must be rebuilt another way.
#[derive(Debug)]
pub struct NeedsRebuild;

/// A fold of the whole log.
pub trait Fold: Default {
    /// What the fold keeps of each event.
    type Item: Send;

    /// What the fold keeps of an event's `event.json` (runs on the store's reading threads, so
    /// a fold that reads a few fields decodes only those).
    fn keep(event_json: &[u8]) -> Result<Self::Item, EventError>;

    /// Folds in the next event.
    fn apply(&mut self, item: Self::Item) -> Result<(), NeedsRebuild>;
}

/// A place in the log's total order: just after its first `count` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PlaceText", try_from = "PlaceText")]
pub struct Place {
    /// The commit of the last event before the place; `None` at the start.
    commit: Option<ObjectId>,
    count: u64,
    /// SHA-256 chained over the commit ids of the events before the place, in order.
    prefix: [u8; 32],
}

/// How a place is written in a cache file.
#[derive(Serialize, Deserialize)]
struct PlaceText {
    commit: Option<String>,
    count: u64,
    prefix: String,
}

impl From<Place> for PlaceText {
    fn from(place: Place) -> PlaceText {
        PlaceText {
            commit: place.commit.map(|commit| commit.to_string()),
            count: place.count,
            prefix: place
                .prefix
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
        }
    }
}

impl TryFrom<PlaceText> for Place {
    type Error = String;

    fn try_from(text: PlaceText) -> Result<Place, String> {
        let commit = match text.commit {
            Some(hex) => Some(ObjectId::from_hex(hex.as_bytes()).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut prefix = [0u8; 32];
        if text.prefix.len() != 64 {
            return Err("a place's prefix is 64 hex digits".into());
        }
        for (at, byte) in prefix.iter_mut().enumerate() {
            let digits = &text.prefix[at * 2..at * 2 + 2];
            *byte = u8::from_str_radix(digits, 16).map_err(|e| e.to_string())?;
        }
        Ok(Place {
            commit,
            count: text.count,
            prefix,
        })
    }
}

impl Place {
    /// Before the first event.
    pub fn start() -> Place {
        Place {
            commit: None,
            count: 0,
            prefix: [0; 32],
        }
    }

    /// How many events come before the place.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The commit of the last event before the place; `None` at the start.
    pub fn commit(&self) -> Option<ObjectId> {
        self.commit
    }

    /// Moves the place past the event of `commit`, the next one in the order.
    pub fn advance(&mut self, commit: ObjectId) {
        let mut hasher = Sha256::new();
        hasher.update(self.prefix);
        hasher.update(commit.as_bytes());
        self.prefix = hasher.finalize().into();
        self.count += 1;
        self.commit = Some(commit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_reads_back_as_written() {
        let mut place = Place::start();
        place.advance(ObjectId::null(gix::hash::Kind::Sha1));
        let text = serde_json::to_string(&place).unwrap();
        assert_eq!(serde_json::from_str::<Place>(&text).unwrap(), place);
    }

    #[test]
    fn the_prefix_depends_on_the_order() {
        let a = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
        let b = ObjectId::from_hex(b"2222222222222222222222222222222222222222").unwrap();
        let (mut ab, mut ba) = (Place::start(), Place::start());
        ab.advance(a);
        ab.advance(b);
        ba.advance(b);
        ba.advance(a);
        assert_eq!(ab.count(), 2);
        assert_ne!(ab.prefix, ba.prefix);
    }
}
