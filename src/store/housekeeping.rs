//! Keeping the object store healthy after appends: `git gc --auto` when it is due.
//!
//! Loose objects and small packs add up (three objects per event, one pack per large batch),
//! and both slow every later read. The store asks git to tidy up now and then, in the
//! background, with the user's own gc settings; `spectra.store.autoGc=false` turns it off.

use super::objects::PACK_THRESHOLD;
use super::{Store, StoredEvent};

/// Every this many events, `git gc --auto` gets a chance to pack loose objects.
pub(super) const GC_EVERY: u64 = 1_000;

/// More packs than this and `git gc --auto` is asked to fold them into one (git's own limit is 50).
pub(super) const MAX_PACKS_BEFORE_GC: usize = 40;

impl Store {
    /// Keeps the object store healthy after a successful append; never fails the append.
    ///
    /// Loose objects and small packs add up (three objects per event, one pack per large batch),
    /// and both slow every later read. Every `GC_EVERY` events, and after a batch when more
    /// than `MAX_PACKS_BEFORE_GC` packs have piled up, we ask git to tidy up with
    /// `git gc --auto`, which applies the user's own settings (`gc.auto`, `gc.autoPackLimit`,
    /// `gc.bigPackThreshold`, partial clones), detaches, takes git's gc lock, and does nothing
    /// when nothing is due. `spectra.store.autoGc=false` turns this off.
    pub(super) fn after_append(&self, stored: &[StoredEvent]) {
        if let Some(args) = self.housekeeping_after(stored) {
            spawn_git(self.repo.common_dir(), args);
        }
    }

    /// The git command that tidies up after appending `stored`, if one is due.
    pub(super) fn housekeeping_after(
        &self,
        stored: &[StoredEvent],
    ) -> Option<&'static [&'static str]> {
        if !self.auto_gc {
            return None;
        }
        let (first, last) = (stored.first()?, stored.last()?);
        // Did this append reach a multiple of GC_EVERY?
        let reached_a_multiple =
            (first.event.lamport - 1) / GC_EVERY != last.event.lamport / GC_EVERY;
        let packed_many = stored.len() >= PACK_THRESHOLD && self.too_many_packs();
        (reached_a_multiple || packed_many).then_some(&["gc", "--auto", "--quiet"])
    }

    pub(super) fn too_many_packs(&self) -> bool {
        let pack_dir = self.repo.objects.store_ref().path().join("pack");
        std::fs::read_dir(pack_dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.file_name().to_string_lossy().ends_with(".pack"))
                    .count()
                    > MAX_PACKS_BEFORE_GC
            })
            .unwrap_or(false)
    }
}

/// Starts a housekeeping `git args...` in the repository and does not wait for it: the append
/// is done, and the command only makes later reads faster. Its output goes nowhere; an old git
/// that does not know an option simply does nothing.
pub(super) fn spawn_git(common_dir: &std::path::Path, args: &[&str]) {
    let spawned = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(common_dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = spawned {
        tracing::debug!(error = %err, ?args, "could not start git housekeeping");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::repo::Repo;
    use crate::store::test_git::fresh_repository;

    #[test]
    fn housekeeping_asks_git_gc_when_packs_pile_up_and_every_thousand_events() {
        let dir = fresh_repository();
        let repo = Repo::open(dir.path()).unwrap();
        let mut store = Store::new(&repo);
        // Appending here must not start anything; the decisions are checked directly.
        store.auto_gc = false;
        let event = |n: usize| NewEvent::new("test.event").payload(serde_json::json!({"n": n}));
        let batch = store
            .append_batch((0..PACK_THRESHOLD).map(event).collect())
            .unwrap();
        let single = store.append(event(99)).unwrap();
        store.auto_gc = true;
        assert_eq!(store.housekeeping_after(&batch), None, "one pack is fine");

        let pack_dir = store.repo.objects.store_ref().path().join("pack");
        for n in 0..MAX_PACKS_BEFORE_GC {
            std::fs::write(pack_dir.join(format!("pack-{n:040}.pack")), b"").unwrap();
        }
        let gc: &[&str] = &["gc", "--auto", "--quiet"];
        assert_eq!(store.housekeeping_after(&batch), Some(gc));
        // A single event's objects are loose: it does not look at the packs.
        assert_eq!(
            store.housekeeping_after(std::slice::from_ref(&single)),
            None
        );

        let mut thousandth = single.clone();
        thousandth.event.lamport = GC_EVERY;
        assert_eq!(store.housekeeping_after(&[thousandth]), Some(gc));

        store.auto_gc = false;
        assert_eq!(store.housekeeping_after(&batch), None);
    }
}
