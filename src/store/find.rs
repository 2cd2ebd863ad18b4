//! Finding events and their attachments: by id, by commit, by unique prefix of either.

use super::{EVENT_FILE, ReadError, Store, StoreError, StoredEvent};
use gix::objs::FindExt;

impl Store {
    /// The event whose id (or commit id) is `query` or starts with it.
    pub fn find(&self, query: &str) -> Result<StoredEvent, StoreError> {
        let wanted = query.trim().to_lowercase();
        if wanted.len() < 4 {
            return Err(StoreError::TooShort(query.to_string()));
        }
        let mut by_id = Vec::new();
        let mut by_commit = Vec::new();
        for header in self.headers_newest_first() {
            let header = header?;
            let id = header.trailers.get("Spectra-Id").unwrap_or_default();
            if id.starts_with(&wanted) {
                by_id.push(header);
            } else if header.id.to_string().starts_with(&wanted) {
                by_commit.push(header);
            }
        }
        let candidates = if by_id.is_empty() { by_commit } else { by_id };
        match candidates.len() {
            0 => Err(StoreError::NotFound(query.to_string())),
            1 => {
                let header = candidates.into_iter().next().expect("one candidate");
                self.load(header, &mut Vec::new())
            }
            _ => Err(StoreError::Ambiguous {
                prefix: query.to_string(),
                candidates: candidates
                    .iter()
                    .map(|header| {
                        format!(
                            "  {} {}",
                            header.trailers.get("Spectra-Id").unwrap_or("?"),
                            header.subject
                        )
                    })
                    .collect(),
            }),
        }
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
