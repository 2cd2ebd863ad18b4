//! Reading one commit of the log: its header (tree, parents, subject, trailers) and its event.

use std::collections::HashMap;

use gix::ObjectId;
use gix::objs::FindExt;

use super::{ReadError, Store, StoreError, StoredEvent, read};
use crate::event::{self, Event};
use crate::trailer_text::Trailers;

/// What the log needs from a commit before reading its tree.
pub(super) struct CommitHeader {
    pub(super) id: ObjectId,
    pub(super) tree: ObjectId,
    pub(super) parents: Vec<ObjectId>,
    pub(super) subject: String,
    /// The author as git prints it: `Name <email>`.
    pub(super) author: String,
    pub(super) trailers: Trailers,
}

impl Store {
    /// Reads one commit of the log without touching its tree.
    pub(super) fn read_commit(
        &self,
        id: ObjectId,
        buf: &mut Vec<u8>,
    ) -> Result<CommitHeader, StoreError> {
        read_commit(&self.repo, id, buf)
    }

    /// Reads `event.json` for one commit.
    pub(super) fn load(
        &self,
        header: CommitHeader,
        buf: &mut Vec<u8>,
    ) -> Result<StoredEvent, StoreError> {
        load_event(&self.repo, header, buf)
    }

    pub(super) fn tree_entries(
        &self,
        tree: ObjectId,
        buf: &mut Vec<u8>,
    ) -> Result<HashMap<String, ObjectId>, StoreError> {
        let tree = self
            .repo
            .objects
            .find_tree(&tree, buf)
            .map_err(ReadError::from)?;
        Ok(tree
            .entries
            .iter()
            .map(|entry| (entry.filename.to_string(), entry.oid.to_owned()))
            .collect())
    }
}

/// Reads one commit of the log without touching its tree.
pub(super) fn read_commit(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<CommitHeader, StoreError> {
    let commit = repo
        .objects
        .find_commit_iter(&id, buf)
        .map_err(ReadError::from)?;
    commit_header(id, commit)
}

/// What the log needs of commit `id`, from its bytes.
pub(super) fn commit_header(
    id: ObjectId,
    commit: gix::objs::CommitRefIter<'_>,
) -> Result<CommitHeader, StoreError> {
    let tree = commit.clone().tree_id().map_err(ReadError::from)?;
    let parents = commit.parent_ids().collect();
    let message = commit.message().map_err(ReadError::from)?;
    let author = commit
        .author()
        .map(|author| format!("{} <{}>", author.name, author.email))
        .unwrap_or_default();
    Ok(CommitHeader {
        author,
        id,
        tree,
        parents,
        subject: String::from_utf8_lossy(message)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        trailers: Trailers::parse(message),
    })
}

/// Reads and decodes `event.json` of one commit, with the commit's subject and digest.
pub(super) fn load_event(
    repo: &gix::Repository,
    header: CommitHeader,
    buf: &mut Vec<u8>,
) -> Result<StoredEvent, StoreError> {
    let blob = read::event_blob(repo, header.id, header.tree, buf)?;
    let bytes = repo
        .objects
        .find_blob(&blob, buf)
        .map_err(ReadError::from)?
        .data;
    let event = read::decode(header.id, bytes, &event::decode)?;
    Ok(stored_event(header, event))
}

/// An event with what its commit says about it.
pub(super) fn stored_event(header: CommitHeader, event: Event) -> StoredEvent {
    let digest = header
        .trailers
        .get("Spectra-Digest")
        .unwrap_or_default()
        .to_string();
    StoredEvent {
        commit: header.id,
        tree: header.tree,
        subject: header.subject,
        digest,
        event,
    }
}
