//! Where a fold of the log can resume: a [`Place`] in the total order, and the events after it.
//!
//! A cached fold (the manifests, the stats, the projection) is the fold of the first `count`
//! events of the log in its total order. It can be extended by the events after them only while
//! the log still begins with exactly those events. A place says which they were: the commit of
//! the last one, how many there were, and a hash over their commit ids in order (the prefix).
//! Appends always sort after everything, so the place of a cached tip stays good; a merge can
//! bring in events that sort among the folded ones, and then an older place (a checkpoint the
//! cache kept from before the two logs diverged) is where the fold resumes, instead of from
//! scratch.

use std::collections::HashMap;

use gix::ObjectId;

use super::walk::LineWalk;
use super::{Store, StoreError, read};
pub use crate::fold::Place;

/// What [`Store::events_since`] found.
#[derive(Debug)]
pub struct Since<T> {
    /// The newest commit of the log when the walk started; `None` for an empty log.
    pub tip: Option<ObjectId>,
    /// Which of the places asked about the events follow; `None` when they are the whole log.
    pub from: Option<usize>,
    /// The place the events follow: that one, or the start.
    pub start: Place,
    /// The events after `start`, oldest first.
    pub events: Vec<T>,
    /// The commit of each event, in the same order.
    pub commits: Vec<ObjectId>,
}

impl Store {
    /// The events after the latest of `places` that the log still begins with, oldest first in
    /// the total order, each kept as `keep` makes it (see [`Store::events_after_kept`]).
    ///
    /// `places[0]` must be the place of a tip (every event before it is an ancestor of its
    /// commit), as a cache's own place is; the others may be anywhere, as checkpoints are. On
    /// a log without merges above `places[0]` the walk stops at its commit; otherwise the whole
    /// DAG is read and sorted, and each place is checked against the order's prefix.
    pub fn events_since<T: Send>(
        &self,
        places: &[Place],
        keep: &read::Keep<T>,
    ) -> Result<Since<T>, StoreError> {
        let tip = self.tip()?;
        let stop = places.first().and_then(Place::commit);
        let (from, links) = match self.walk_line(tip, stop)? {
            LineWalk::Stopped(links) => (Some(0), links),
            LineWalk::Root(links) => (None, links),
            LineWalk::Merge => self.dag_since(tip.expect("the walk started at the tip"), places)?,
        };
        let start = from.map_or_else(Place::start, |at| places[at].clone());
        Ok(Since {
            tip,
            from,
            start,
            events: read::events_of(&self.repo, &links, keep)?,
            commits: links.iter().map(|(commit, _)| *commit).collect(),
        })
    }

    /// The latest of `places` the DAG's total order begins with, and the links after it (all
    /// of them when none matches).
    fn dag_since(
        &self,
        tip: ObjectId,
        places: &[Place],
    ) -> Result<(Option<usize>, Vec<read::Link>), StoreError> {
        let headers = self.headers_in_order(tip)?;
        let links: Vec<read::Link> = headers.iter().map(|h| (h.id, h.tree)).collect();
        let mut by_count: HashMap<u64, Vec<usize>> = HashMap::new();
        for (at, place) in places.iter().enumerate() {
            by_count.entry(place.count()).or_default().push(at);
        }
        let mut best: Option<usize> = None;
        let mut walked = Place::start();
        for (commit, _) in &links {
            walked.advance(*commit);
            let matching = by_count
                .get(&walked.count())
                .into_iter()
                .flatten()
                .find(|&&at| places[at] == walked);
            if let Some(&at) = matching {
                best = Some(at);
            }
        }
        Ok(match best {
            Some(at) => (Some(at), links[places[at].count() as usize..].to_vec()),
            None => (None, links),
        })
    }
}
