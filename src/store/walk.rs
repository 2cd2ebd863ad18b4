//! Walking the log: newest first, oldest first, and the events after a known commit.
//!
//! A log without merges is a line of first parents, walked as such (with parents and trees
//! from git's commit-graph where it covers the log); below a merge every read takes the whole
//! DAG in the total order (see `dag`).

use gix::ObjectId;
use gix::objs::{FindExt, Kind};

use super::commit::{CommitHeader, commit_header, stored_event};
use super::dag::HeaderWalk;
use super::{Filter, Keep, ReadError, Store, StoreError, StoredEvent, read};
use crate::event::{self, Event};

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

impl Store {
    /// Every commit of the log, newest first in the total order (see `dag`).
    pub(super) fn headers_newest_first(&self) -> HeaderWalk<'_> {
        HeaderWalk {
            store: self,
            next: None,
            started: false,
            buf: Vec::new(),
            sorted: Vec::new(),
        }
    }

    /// Events newest first (the total order reversed), lazily, keeping those `filter` matches.
    pub fn walk_newest_first<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> impl Iterator<Item = Result<StoredEvent, StoreError>> + 'a {
        let mut buf = Vec::new();
        self.headers_newest_first()
            .filter(move |header| match header {
                Ok(header) => filter.matches_header(header),
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
            .filter(|header| filter.matches_header(header))
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
    pub(super) fn chain_after(&self, known: Option<ObjectId>) -> Result<Chain, StoreError> {
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
    pub(super) fn walk_line(
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
}

/// A commit's tree and first parent (with its place in the graph), from the commit-graph, and
/// whether it has more parents (a merge event).
pub(super) struct GraphLink {
    pub(super) tree: ObjectId,
    pub(super) parent: Option<(ObjectId, gix::commitgraph::Position)>,
    pub(super) merge: bool,
}

/// The link of `id` from the commit-graph, when the graph holds it; `at` is its position
/// there when already known.
pub(super) fn graph_link(
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
pub(super) fn commit_link(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<(ObjectId, Option<ObjectId>, bool), StoreError> {
    let commit = repo
        .objects
        .find_commit_iter(&id, buf)
        .map_err(ReadError::from)?;
    let tree = commit.clone().tree_id().map_err(ReadError::from)?;
    let mut parents = commit.parent_ids();
    let first = parents.next();
    Ok((tree, first, parents.next().is_some()))
}

/// The chain of commits (and trees) [`Store::events_after`] reads.
pub(super) struct Chain {
    pub(super) tip: Option<ObjectId>,
    pub(super) links: Vec<read::Link>,
    pub(super) reached: bool,
}

/// How a walk down the line of first parents ended (see [`Store::walk_line`]).
pub(super) enum LineWalk {
    /// At the commit it was to stop at: the links above it, oldest first.
    Stopped(Vec<read::Link>),
    /// At the root, never meeting a merge: the whole line, oldest first.
    Root(Vec<read::Link>),
    /// At a merge.
    Merge,
}

#[cfg(test)]
mod tests;
