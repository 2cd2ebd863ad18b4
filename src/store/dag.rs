//! The log as a DAG: once two logs are merged, a commit of the log may have two parents.
//!
//! Every read covers each commit reachable from the tip once, in one total order that any clone
//! computes alike from the same commits: by lamport, then by event id (string order), then by
//! commit id for commits that are not sound events, with parents always before their children
//! (see `in_total_order`). A merge's lamport is above both its parents', so on a log that
//! verifies this is simply the sort by lamport and id. On a log without merges it is the
//! first-parent line itself, which the fast paths of the store keep walking; only a walk that
//! meets a merge reads every commit and sorts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use gix::ObjectId;
use gix::objs::Kind;

use super::commit::{CommitHeader, commit_header};
use super::walk::Chain;
use super::{Store, StoreError, read};

/// The commits each of two tips reaches and the other does not, in no particular order.
pub(super) struct Apart {
    pub(super) ours_only: Vec<ObjectId>,
    pub(super) theirs_only: Vec<ObjectId>,
}

/// The state of [`Store::apart`]: which tips reach each commit met so far, and the commits
/// still to walk, highest lamport first.
struct ApartWalk<'a> {
    store: &'a Store,
    reached: HashMap<ObjectId, u8>,
    /// Each commit's lamport (from its trailer) and parents.
    known: HashMap<ObjectId, (u64, Vec<ObjectId>)>,
    pending: BinaryHeap<(u64, ObjectId)>,
    buf: Vec<u8>,
}

impl ApartWalk<'_> {
    const OURS: u8 = 1;
    const THEIRS: u8 = 2;
    const BOTH: u8 = Self::OURS | Self::THEIRS;

    /// Marks `id` reached by the tips in `by`; walks it (again) if that is news.
    fn reach(&mut self, id: ObjectId, by: u8) -> Result<(), StoreError> {
        let flags = self.reached.entry(id).or_default();
        if *flags | by == *flags {
            return Ok(());
        }
        *flags |= by;
        let lamport = match self.known.get(&id) {
            Some((lamport, _)) => *lamport,
            None => {
                let header = self.store.read_commit(id, &mut self.buf)?;
                let lamport = order_key(&header).0;
                self.known.insert(id, (lamport, header.parents));
                lamport
            }
        };
        self.pending.push((lamport, id));
        Ok(())
    }

    /// Whether a commit left to walk is not yet known to be reached by both tips: below
    /// commits reached by both, everything is.
    fn pending_not_by_both(&self) -> bool {
        self.pending
            .iter()
            .any(|(_, id)| self.reached[id] != Self::BOTH)
    }

    fn only(&self, side: u8) -> Vec<ObjectId> {
        self.reached
            .iter()
            .filter(|(_, flags)| **flags == side)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Where a commit sits in the total order.
type OrderKey = (u64, String, ObjectId);

fn order_key(header: &CommitHeader) -> OrderKey {
    let lamport = header
        .trailers
        .get("Spectra-Lamport")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let id = header.trailers.get("Spectra-Id").unwrap_or_default();
    (lamport, id.to_string(), header.id)
}

impl Store {
    /// Every commit reachable from `tip` (all parents), each once: from the commit-graph where
    /// it covers them, else from the commits themselves. In no particular order.
    pub(super) fn reachable(&self, tip: ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        let graph = self.repo.commit_graph_if_enabled().ok().flatten();
        let mut seen = HashSet::from([tip]);
        let mut pending = vec![tip];
        let mut order = Vec::new();
        let mut buf = Vec::new();
        while let Some(id) = pending.pop() {
            order.push(id);
            let parents = match graph.as_ref().and_then(|graph| graph_parents(graph, id)) {
                Some(parents) => parents,
                None => self.read_commit(id, &mut buf)?.parents,
            };
            for parent in parents {
                if seen.insert(parent) {
                    pending.push(parent);
                }
            }
        }
        Ok(order)
    }

    /// The commits reachable from `ours` and not from `theirs`, and the other way round,
    /// walking down from both tips by descending lamport and stopping where everything left
    /// to walk is reachable from both (as git finds a merge base by commit date).
    ///
    /// Exact when every commit's `Spectra-Lamport` is above its parents': then a commit is
    /// walked only after every commit above it, so it knows by then which tips reach it. That
    /// holds on a log that verifies; on another the answer may be wrong, and the caller must
    /// check the lamports of what it found before trusting it.
    pub(super) fn apart(&self, ours: ObjectId, theirs: ObjectId) -> Result<Apart, StoreError> {
        let mut walk = ApartWalk {
            store: self,
            reached: HashMap::new(),
            known: HashMap::new(),
            pending: BinaryHeap::new(),
            buf: Vec::new(),
        };
        walk.reach(ours, ApartWalk::OURS)?;
        walk.reach(theirs, ApartWalk::THEIRS)?;
        while walk.pending_not_by_both() {
            let Some((_, id)) = walk.pending.pop() else {
                break;
            };
            let by = walk.reached[&id];
            let parents = walk.known[&id].1.clone();
            for parent in parents {
                walk.reach(parent, by)?;
            }
        }
        Ok(Apart {
            ours_only: walk.only(ApartWalk::OURS),
            theirs_only: walk.only(ApartWalk::THEIRS),
        })
    }

    /// The headers of every commit reachable from `tip`, oldest first in the total order.
    pub(super) fn headers_in_order(&self, tip: ObjectId) -> Result<Vec<CommitHeader>, StoreError> {
        let commits = self.reachable(tip)?;
        Ok(in_total_order(self.headers_of(&commits)?))
    }

    /// The headers of `commits`, in their order, read in pack order on every core.
    pub(super) fn headers_of(&self, commits: &[ObjectId]) -> Result<Vec<CommitHeader>, StoreError> {
        let hash = self.repo.object_hash();
        read::objects_of(&self.repo, commits, Kind::Commit, &|position, bytes| {
            let commit = gix::objs::CommitRefIter::from_bytes(bytes, hash);
            commit_header(commits[position], commit)
        })
    }

    /// [`Store::chain_after`] for a log with merges: the whole DAG in the total order, and
    /// only the events after `known` when those all sort after everything `known` holds.
    pub(super) fn dag_chain_after(
        &self,
        tip: ObjectId,
        known: Option<ObjectId>,
    ) -> Result<Chain, StoreError> {
        let headers = self.headers_in_order(tip)?;
        let links: Vec<read::Link> = headers.iter().map(|h| (h.id, h.tree)).collect();
        let first_new = known.and_then(|known| first_new_after(&headers, known));
        Ok(match first_new {
            Some(first_new) => Chain {
                tip: Some(tip),
                links: links[first_new..].to_vec(),
                reached: true,
            },
            None => Chain {
                tip: Some(tip),
                links,
                reached: false,
            },
        })
    }
}

/// `headers` (every commit reachable from a tip) with parents before children, taking among
/// the commits whose parents are all placed the one with the least [`order_key`]. On a sound
/// log that is simply the sort by key (a parent's lamport is below its children's); on a log
/// whose lamports were tampered with it still places parents first, so that `verify` checks
/// each event after its parents and a line keeps its order, naming the first bad event where
/// it sits.
pub(super) fn in_total_order(headers: Vec<CommitHeader>) -> Vec<CommitHeader> {
    let index: HashMap<ObjectId, usize> = headers
        .iter()
        .enumerate()
        .map(|(at, header)| (header.id, at))
        .collect();
    let mut waiting_on = vec![0usize; headers.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); headers.len()];
    for (at, header) in headers.iter().enumerate() {
        let parents: HashSet<usize> = header
            .parents
            .iter()
            .filter_map(|parent| index.get(parent).copied())
            .collect();
        waiting_on[at] = parents.len();
        for parent in parents {
            children[parent].push(at);
        }
    }
    let keys: Vec<OrderKey> = headers.iter().map(order_key).collect();
    let mut ready: BinaryHeap<Reverse<(&OrderKey, usize)>> = (0..headers.len())
        .filter(|&at| waiting_on[at] == 0)
        .map(|at| Reverse((&keys[at], at)))
        .collect();
    let mut order = Vec::with_capacity(headers.len());
    while let Some(Reverse((_, at))) = ready.pop() {
        order.push(at);
        for &child in &children[at] {
            waiting_on[child] -= 1;
            if waiting_on[child] == 0 {
                ready.push(Reverse((&keys[child], child)));
            }
        }
    }
    let mut slots: Vec<Option<CommitHeader>> = headers.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|at| slots[at].take().expect("each commit placed once"))
        .collect()
}

/// Where the events `known` does not hold begin in `headers` (oldest first in the total order),
/// when every one of them sorts after every event `known` holds; `None` when `known` is not in
/// the log, or when an event new to it sorts among the ones it holds (a merge brought in older
/// events), since a fold from `known` would then apply them out of order.
fn first_new_after(headers: &[CommitHeader], known: ObjectId) -> Option<usize> {
    let parents: HashMap<ObjectId, &[ObjectId]> = headers
        .iter()
        .map(|header| (header.id, header.parents.as_slice()))
        .collect();
    if !parents.contains_key(&known) {
        return None;
    }
    let mut held = HashSet::from([known]);
    let mut pending = vec![known];
    while let Some(id) = pending.pop() {
        for parent in parents.get(&id).copied().unwrap_or_default() {
            if held.insert(*parent) {
                pending.push(*parent);
            }
        }
    }
    let count = held.len();
    let held_come_first = headers[..count]
        .iter()
        .all(|header| held.contains(&header.id));
    held_come_first.then_some(count)
}

/// The parents of `id` from the commit-graph, when it holds `id` and is sound there.
fn graph_parents(graph: &gix::commitgraph::Graph, id: ObjectId) -> Option<Vec<ObjectId>> {
    let commit = graph.commit_at(graph.lookup(id)?);
    commit
        .iter_parents()
        .map(|parent| parent.ok().map(|at| graph.id_at(at).to_owned()))
        .collect()
}

/// Commits newest first in the total order, from a walk down first parents: while each commit
/// has one parent the line itself is the order; at the first merge, everything the merge
/// reaches is read and sorted.
pub(super) struct HeaderWalk<'a> {
    pub(super) store: &'a Store,
    pub(super) next: Option<ObjectId>,
    pub(super) started: bool,
    pub(super) buf: Vec<u8>,
    /// What is left below a merge, oldest first (popped from the end).
    pub(super) sorted: Vec<CommitHeader>,
}

impl HeaderWalk<'_> {
    fn below_merge(&mut self, merge: ObjectId) -> Option<Result<CommitHeader, StoreError>> {
        match self.store.headers_in_order(merge) {
            Ok(headers) => {
                self.sorted = headers;
                self.sorted.pop().map(Ok)
            }
            Err(err) => Some(Err(err)),
        }
    }
}

impl Iterator for HeaderWalk<'_> {
    type Item = Result<CommitHeader, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            match self.store.tip() {
                Ok(tip) => self.next = tip,
                Err(err) => return Some(Err(err)),
            }
        }
        if let Some(header) = self.sorted.pop() {
            return Some(Ok(header));
        }
        let id = self.next.take()?;
        match self.store.read_commit(id, &mut self.buf) {
            Ok(header) if header.parents.len() > 1 => self.below_merge(header.id),
            Ok(header) => {
                self.next = header.parents.first().copied();
                Some(Ok(header))
            }
            Err(err) => Some(Err(err)),
        }
    }
}
