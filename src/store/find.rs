//! Finding events and their attachments: by any name [`Ids::resolve`] takes.

use super::{EVENT_FILE, Ids, ReadError, Store, StoreError, StoredEvent};
use gix::objs::FindExt;

impl Store {
    /// The event `query` names in any form [`Ids::resolve`] takes (a run's name gives its
    /// first event).
    pub fn find(&self, query: &str) -> Result<StoredEvent, StoreError> {
        let ids = self.ids()?;
        self.find_in(&ids, query)
    }

    /// [`Store::find`] with names already read.
    pub fn find_in(&self, ids: &Ids, query: &str) -> Result<StoredEvent, StoreError> {
        let named = ids.resolve(query)?;
        let commit = ids
            .event_of(&named)
            .map(|event| event.commit)
            .ok_or_else(|| StoreError::NotFound(query.to_string()))?;
        self.event_at(commit)
    }

    /// The event recorded by `commit`.
    pub fn event_at(&self, commit: gix::ObjectId) -> Result<StoredEvent, StoreError> {
        let mut buf = Vec::new();
        let header = self.read_commit(commit, &mut buf)?;
        self.load(header, &mut buf)
    }

    /// The first parent of `commit`, a commit of the log: the log as it was just before the
    /// event `commit` records. `None` for the log's first event.
    pub fn first_parent(&self, commit: gix::ObjectId) -> Result<Option<gix::ObjectId>, StoreError> {
        let mut buf = Vec::new();
        let header = self.read_commit(commit, &mut buf)?;
        Ok(header.parents.first().copied())
    }

    /// The bytes of one attachment of `stored`.
    pub fn attachment(&self, stored: &StoredEvent, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        let entries = self.tree_entries(stored.tree, &mut buf)?;
        let blob = entries
            .get(name)
            .filter(|_| name != EVENT_FILE)
            .ok_or_else(|| StoreError::NoSuchAttachment {
                id: stored.event.id.clone(),
                name: name.to_string(),
            })?;
        Ok(self
            .repo
            .objects
            .find_blob(blob, &mut buf)
            .map_err(ReadError::from)?
            .data
            .to_vec())
    }
}
