//! Writing the objects of new events: blobs, trees and commits, loose or as one pack.
//!
//! A single event's objects go straight into loose files; a batch of at least
//! [`PACK_THRESHOLD`] events goes into one pack (see `pack`, `loose` and `deflate`). Each
//! commit is checked as `verify` will read it back before it is written.

use gix::ObjectId;
use gix::objs::Kind;

use super::verify::{Before, check_own_output};
use super::{EVENT_FILE, StoreError, WriteError, deflate, loose, pack};
use crate::event::{Event, NewEvent};

/// Batches of at least this many events are written as one pack instead of loose objects.
///
/// Not lower: every pack costs every later process time to open until a `git gc` folds it,
/// and folding packs (git's `gc --auto` past `gc.autoPackLimit`) repacks the whole repository,
/// while loose objects are packed incrementally. At 4 a discover made one pack per run.
pub(super) const PACK_THRESHOLD: usize = 8;

/// The bytes git stores for `object`.
pub(super) fn encode(object: &impl gix::objs::WriteTo) -> Result<Vec<u8>, StoreError> {
    let mut data = Vec::with_capacity(512);
    object.write_to(&mut data).map_err(WriteError::from)?;
    Ok(data)
}

pub(super) fn signature_at(actor: &gix::actor::Signature, at: &str) -> gix::actor::Signature {
    let seconds = at
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now().as_second());
    gix::actor::Signature {
        name: actor.name.clone(),
        email: actor.email.clone(),
        time: gix::date::Time::new(seconds, 0),
    }
}

/// The tree of one event: `event.json` and its attachments.
pub(super) fn write_tree(
    sink: &mut ObjectSink<'_>,
    json: Vec<u8>,
    new: &NewEvent,
) -> Result<ObjectId, StoreError> {
    let mut entries = Vec::with_capacity(1 + new.attachments.len());
    entries.push(blob_entry(EVENT_FILE, sink.put(Kind::Blob, json)?));
    for (name, bytes) in &new.attachments {
        entries.push(blob_entry(name, sink.put(Kind::Blob, bytes.clone())?));
    }
    // Git requires tree entries sorted by name (blobs compare as plain bytes).
    entries.sort_by(|a, b| a.filename.cmp(&b.filename));
    sink.put_object(&gix::objs::Tree { entries })
}

/// The commit that records one sealed event: its tree, parents and message.
pub(super) struct EventCommit<'e> {
    pub(super) event: &'e Event,
    /// The event's canonical `event.json`.
    pub(super) json: &'e [u8],
    pub(super) message: String,
    pub(super) tree: ObjectId,
    pub(super) parents: Vec<ObjectId>,
    pub(super) actor: &'e gix::actor::Signature,
    /// What the event chains from, as verify will check it.
    pub(super) before: &'e Before,
}

/// Where new objects go: straight into loose files, or gathered into one pack for a batch.
pub(super) struct ObjectSink<'a> {
    repo: &'a gix::Repository,
    pending: Option<Vec<pack::PackObject>>,
    /// One compressor for every object of the append (see `deflate`).
    deflater: deflate::Deflater,
}

impl<'a> ObjectSink<'a> {
    /// Writes the commit of an event, after checking it as `verify` will read it: an event
    /// verify would reject is never written.
    pub(super) fn put_event_commit(
        &mut self,
        commit: EventCommit<'_>,
    ) -> Result<ObjectId, StoreError> {
        let signature = signature_at(commit.actor, &commit.event.at);
        let object = gix::objs::Commit {
            tree: commit.tree,
            parents: commit.parents.into(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: commit.message.into(),
            extra_headers: Vec::new(),
        };
        let bytes = encode(&object)?;
        check_own_output(
            self.repo.object_hash(),
            commit.event,
            &bytes,
            commit.json,
            commit.before,
        )?;
        self.put(Kind::Commit, bytes)
    }

    pub(super) fn new(repo: &'a gix::Repository, as_pack: bool) -> ObjectSink<'a> {
        ObjectSink {
            repo,
            pending: as_pack.then(Vec::new),
            deflater: deflate::Deflater::new(1),
        }
    }

    pub(super) fn put_object(
        &mut self,
        object: &impl gix::objs::WriteTo,
    ) -> Result<ObjectId, StoreError> {
        self.put(object.kind(), encode(object)?)
    }

    pub(super) fn put(&mut self, kind: Kind, data: Vec<u8>) -> Result<ObjectId, StoreError> {
        let id = gix::objs::compute_hash(self.repo.object_hash(), kind, &data)
            .map_err(WriteError::from)?;
        match &mut self.pending {
            None => {
                let objects_dir = self.repo.objects.store_ref().path();
                loose::write(objects_dir, &id, kind, &data, &mut self.deflater)
                    .map_err(WriteError::from)?;
            }
            Some(pending) => pending.push(pack::PackObject { id, kind, data }),
        }
        Ok(id)
    }

    /// Writes the gathered pack, if any; the objects exist only after this.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        match self.pending {
            Some(pending) if !pending.is_empty() => pack::write_pack(
                self.repo.objects.store_ref().path(),
                &pending,
                &mut self.deflater,
            )
            .map_err(|err| WriteError::from(err).into()),
            _ => Ok(()),
        }
    }
}

pub(super) fn blob_entry(name: &str, oid: ObjectId) -> gix::objs::tree::Entry {
    gix::objs::tree::Entry {
        mode: gix::objs::tree::EntryKind::Blob.into(),
        filename: name.into(),
        oid,
    }
}
