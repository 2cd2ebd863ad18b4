//! The chain checker: what `git spectra verify` checks of each event, and of the whole log.
//!
//! Each event is checked against what it chains from (its parents' lamport and digest): the
//! canonical form of `event.json`, the digest chain, the lamport order, the trailers that
//! mirror the envelope, and the attachments. The store runs the same pure checks on every
//! event it builds, before writing it.

use std::collections::{HashMap, HashSet};

use gix::ObjectId;
use gix::objs::FindExt;

use super::commit::{CommitHeader, commit_header};
use super::trailers::{REVERTS_TRAILER, TRAILER_KEYS, expected_trailers, reverts_trailers};
use super::{EVENT_FILE, Store, StoreError};
use crate::event::{self, Event, GENESIS_DIGEST};
use crate::trailer_text::Trailers;

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
    /// The commit that records it.
    pub commit: ObjectId,
    /// The event id, when it could be read.
    pub id: Option<String>,
    /// What is wrong with it, as `git spectra verify` prints it.
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

impl Store {
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
    pub(super) fn check_event(
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

    pub(super) fn check_attachments(
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

/// Trailers every event commit carries (Run, Activity and Service only when set).
pub(super) const REQUIRED_TRAILERS: [&str; 5] = [
    "Spectra-Event",
    "Spectra-Id",
    "Spectra-Lamport",
    "Spectra-Schema",
    "Spectra-Digest",
];

/// The running state of a verification from the oldest event forward.
pub(super) struct ChainChecker {
    pub(super) count: usize,
    pub(super) prev_digest: String,
    pub(super) lamport: u64,
    pub(super) ids: HashSet<String>,
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
    pub(super) fn before(&self) -> Before {
        Before::one(self.lamport, &self.prev_digest)
    }

    /// Counts a checked event whose digest is `digest`, unless its id was seen before.
    pub(super) fn record(&mut self, event: &Event, digest: String) -> Result<(), String> {
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
pub(super) fn check_required_trailers(trailers: &Trailers) -> Result<(), String> {
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
pub(super) fn check_envelope(
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
pub(super) struct Before {
    pub(super) lamport: u64,
    pub(super) digest: String,
    pub(super) merged_with: Option<String>,
}

impl Before {
    /// What the first event of a log chains from.
    pub(super) fn genesis() -> Before {
        Before::one(0, GENESIS_DIGEST)
    }

    pub(super) fn one(lamport: u64, digest: &str) -> Before {
        Before {
            lamport,
            digest: digest.to_string(),
            merged_with: None,
        }
    }
}

/// Only a `log.merged` event has two parents, and it always has two.
pub(super) fn check_merge_shape(event: &Event, before: &Before) -> Result<(), String> {
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
pub(super) fn check_own_output(
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

pub(super) fn check_trailers_agree(event: &Event, trailers: &Trailers) -> Result<(), String> {
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
pub(super) fn check_reverts_trailers(event: &Event, trailers: &Trailers) -> Result<(), String> {
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

pub(super) fn list_or_absent(values: &[impl AsRef<str>]) -> String {
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

/// The running state of a check of a whole DAG in the total order: every checked commit's
/// lamport and digest, for its children to chain from.
#[derive(Default)]
pub(super) struct DagChecker {
    pub(super) count: usize,
    pub(super) checked: HashMap<ObjectId, (u64, String)>,
    pub(super) ids: HashSet<String>,
}

impl DagChecker {
    pub(super) fn check(
        &mut self,
        store: &Store,
        header: CommitHeader,
        buf: &mut Vec<u8>,
    ) -> Result<(), String> {
        let commit = header.id;
        let before = self.before(&header.parents)?;
        let (event, digest) = store.check_event(header, &before, buf)?;
        if !self.ids.insert(event.id.clone()) {
            return Err(format!("its id {} appears earlier in the log", event.id));
        }
        self.count += 1;
        self.checked.insert(commit, (event.lamport, digest));
        Ok(())
    }

    /// What an event with `parents` chains from. Every parent has been checked already: a
    /// parent's lamport is lower, so it comes earlier in the total order.
    fn before(&self, parents: &[ObjectId]) -> Result<Before, String> {
        let parent = |id: &ObjectId| {
            self.checked.get(id).ok_or_else(|| {
                format!("its lamport is not above that of its parent {id} (events reordered or injected?)")
            })
        };
        match parents {
            [] => Ok(Before::genesis()),
            [only] => {
                let (lamport, digest) = parent(only)?;
                Ok(Before::one(*lamport, digest))
            }
            [first, second] => {
                let (first_lamport, first_digest) = parent(first)?;
                let (second_lamport, second_digest) = parent(second)?;
                Ok(Before {
                    lamport: (*first_lamport).max(*second_lamport),
                    digest: first_digest.clone(),
                    merged_with: Some(second_digest.clone()),
                })
            }
            more => Err(format!(
                "it has {} parents; an event has one, and a merge of two logs two (was a merge made by hand?)",
                more.len()
            )),
        }
    }
}
