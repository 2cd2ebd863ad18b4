//! Helpers for the store's tests: git on the command line, fresh repositories, logs of notes
//! and side lines written as another clone would.

use gix::ObjectId;
use serde_json::json;

use super::Store;
use crate::event::NewEvent;
use crate::repo::Repo;

/// Runs `git -C dir args` for a test; panics unless it succeeds; its trimmed stdout.
pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// An empty repository made by `git init`.
pub(crate) fn fresh_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    dir
}

/// An object id from its hex.
pub(crate) fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).unwrap()
}

/// A repository whose log holds `base` notes, with housekeeping off.
pub(crate) fn repository(base: usize) -> (tempfile::TempDir, Store) {
    let dir = fresh_repository();
    let mut store = Store::new(&Repo::open(dir.path()).unwrap());
    store.auto_gc = false;
    for n in 0..base {
        store.append(note(n)).unwrap();
    }
    (dir, store)
}

/// A note whose payload is `{"n": n}`.
pub(crate) fn note(n: usize) -> NewEvent {
    NewEvent::new("note.added").payload(json!({ "n": n }))
}

/// Notes `from`, `from + 1`, ... (`count` of them).
pub(crate) fn notes(from: usize, count: usize) -> Vec<NewEvent> {
    (from..from + count).map(note).collect()
}

/// Events written after `parent` (or as a new root) without moving the ref: another
/// clone's line. Returns its tip.
pub(crate) fn side_line(
    store: &Store,
    parent: Option<ObjectId>,
    events: Vec<NewEvent>,
) -> ObjectId {
    store.side_line_for_tests(parent, &events)
}
