//! Commits the post-commit shim has noted but not yet recorded.
//!
//! Starting a process is most of what the hook cost a commit, so the shim does not wait for one:
//! with shell builtins alone it reads the new commit's id from `HEAD` (and the branch it is on,
//! or the branch a rebase is replaying), writes it as a file named by the commit id into
//! `<common dir>/spectra/pending/` (the file holds the branch's full ref name, or an empty line),
//! and starts `git-spectra hook record-noted` in the background. The commit returns at once.
//!
//! [`settle`] turns noted commits into `commit.observed` events: all of them, oldest first, in
//! one append, and then removes their files. The background process runs it, and so does every
//! command that appends to the event log, before it appends, so a run or an undo started after
//! `git commit` returns always sees that commit, whether or not the background process has
//! finished. Commands that only read the log never record anything: they count the notes still
//! [`waiting`] and say so in a hint. One settler works at a time (an exclusive `flock` on `pending/.lock`,
//! released by the kernel when a settler dies); a settler that died after appending but before
//! removing its files is covered too, because commits the log already observed are skipped.
//!
//! When the shim cannot note the commit (no `pending/` directory yet, a branch that lives only
//! in `packed-refs`, the reftable backend), it runs `git-spectra hook post-commit` in the
//! foreground as before, which also creates the directory for the next commit.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gix::ObjectId;

use crate::repo::Repo;
use crate::store::{Filter, Store};

use super::observe::{ObservedCommit, observe_commit};
use super::{APPEND_DEADLINE, HookError, enabled_by_config};

/// The directory under the state directory where the shim notes commits.
pub const PENDING_DIR: &str = "pending";

/// The file settlers lock, inside [`PENDING_DIR`]; never a commit id, so never taken for a note.
const LOCK_FILE: &str = ".lock";

/// How far the tool's clock and the file system's may disagree: events this much older than the
/// oldest note are still searched for commits already recorded.
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// How old a note without its final newline must be to count as abandoned, not being written.
const UNFINISHED: Duration = Duration::from_secs(60);

/// `<common dir>/spectra/pending`.
pub fn pending_dir(repo: &Repo) -> PathBuf {
    repo.state_dir().join(PENDING_DIR)
}

/// Creates the directory the shim notes commits in; until it exists the shim records each
/// commit in the foreground.
pub fn prepare(repo: &Repo) -> Result<(), HookError> {
    let dir = pending_dir(repo);
    fs::create_dir_all(&dir).map_err(|err| HookError::io("create", &dir, err))
}

/// One commit the shim noted.
#[derive(Debug)]
struct Note {
    commit: ObjectId,
    /// The branch's full ref name, `None` when `HEAD` was detached outside a rebase.
    branch: Option<String>,
    /// Where the commit was made, where activities it triggers must run: the settler may be a
    /// command in another linked worktree.
    made_in: Option<Workplace>,
    noted_at: SystemTime,
    path: PathBuf,
}

/// A work tree and its git dir, as the hook that noted a commit saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workplace {
    /// The hook's working directory: the root of the work tree.
    pub root: PathBuf,
    /// That work tree's git dir (`.git`, or `.git/worktrees/<name>` for a linked one).
    pub git_dir: PathBuf,
}

/// A commit [`settle`] recorded, and where it was made.
#[derive(Debug)]
pub struct Settled {
    /// The commit's facts.
    pub commit: ObservedCommit,
    /// The work tree it was made in, when the note says.
    pub made_in: Option<Workplace>,
}

/// What [`settle`] did: the commits it recorded, and the notes it had to drop (a commit that
/// cannot be read, e.g. one `git gc` removed, would otherwise stay noted forever).
#[derive(Debug, Default)]
pub struct Settlement {
    /// The commits recorded.
    pub recorded: Vec<Settled>,
    /// Why each dropped note could not be recorded.
    pub dropped: Vec<HookError>,
}

/// Removes the note for `commit` unrecorded: the commit was made with the hooks switched off for
/// it alone (`git -c spectra.hooks.enabled=false commit`, `SPECTRA_HOOKS=off`).
pub fn forget(repo: &Repo, commit: &str) {
    if commit_id(commit).is_some() {
        let _ = fs::remove_file(pending_dir(repo).join(commit));
    }
}

/// Records every noted commit that the log does not hold yet, oldest first, in one append, and
/// returns what was recorded (commits the tool made itself are recorded by their runs, and
/// skipped). Returns at once when nothing is noted. With `spectra.hooks.enabled=false` in the
/// repository's configuration, notes are removed unrecorded.
pub fn settle(repo: &Repo) -> Result<Settlement, HookError> {
    let dir = pending_dir(repo);
    if !has_notes(&dir) {
        return Ok(Settlement::default());
    }
    let _lock = lock(&dir)?;
    // Read again under the lock: the settler that held it may have recorded them.
    let notes = read_notes(&dir)?;
    if notes.is_empty() {
        return Ok(Settlement::default());
    }
    if !enabled_by_config(repo) {
        remove(&notes);
        return Ok(Settlement::default());
    }
    let store = Store::new(repo).with_append_deadline(APPEND_DEADLINE);
    let oldest = notes.iter().map(|note| note.noted_at).min();
    let recorded = observed_since(&store, oldest);
    let mut settlement = Settlement::default();
    let mut commits = Vec::new();
    for note in &notes {
        if recorded.contains(&note.commit) {
            continue;
        }
        match observe_commit(repo, note.commit, note.branch.clone()) {
            Ok(commit) if commit.made_by_spectra => {}
            Ok(commit) => commits.push(Settled {
                commit,
                made_in: note.made_in.clone(),
            }),
            Err(err) => settlement.dropped.push(err),
        }
    }
    let commits = oldest_first(commits);
    store.append_batch(commits.iter().map(|s| s.commit.to_event()).collect())?;
    remove(&notes);
    settlement.recorded = commits;
    Ok(settlement)
}

/// Whether any note may be waiting: the cheap test every writing command makes.
fn has_notes(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.any(|entry| is_note(entry.as_ref().ok())))
}

/// How many commits are noted and waiting for [`settle`], without recording them: what a
/// command that only reads the log says in a hint. None when the repository's configuration
/// switched the hooks off, since settling would then drop the notes unrecorded.
pub fn waiting(repo: &Repo) -> usize {
    let Ok(entries) = fs::read_dir(pending_dir(repo)) else {
        return 0;
    };
    let count = entries.filter(|entry| is_note(entry.as_ref().ok())).count();
    if count > 0 && !enabled_by_config(repo) {
        return 0;
    }
    count
}

fn is_note(entry: Option<&fs::DirEntry>) -> bool {
    entry.is_some_and(|entry| entry.file_name().to_str().and_then(commit_id).is_some())
}

fn lock(dir: &Path) -> Result<File, HookError> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| HookError::io("open", &path, err))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|err| HookError::io("lock", &path, err.into()))?;
    Ok(file)
}

/// The complete notes in `dir`: the branch's ref name (or an empty line), the work tree's root and
/// its git dir, each ending in a newline. A note still being written (no final newline
/// yet) is left for the settler its own shim starts; files not named by a commit id are not
/// notes.
fn read_notes(dir: &Path) -> Result<Vec<Note>, HookError> {
    let entries = fs::read_dir(dir).map_err(|err| HookError::io("read", dir, err))?;
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(commit) = name.to_str().and_then(commit_id) else {
            continue;
        };
        let path = entry.path();
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let modified = entry.metadata().and_then(|meta| meta.modified()).ok();
        let Some(text) = text.strip_suffix('\n') else {
            // A shim that could not finish writing (a full disk) leaves a note that never
            // completes; after a minute it is no longer one being written.
            if modified.is_some_and(|at| at.elapsed().is_ok_and(|age| age > UNFINISHED)) {
                let _ = fs::remove_file(&path);
            }
            continue;
        };
        let mut lines = text.lines();
        let branch = lines.next().unwrap_or_default().trim();
        let made_in = match (lines.next(), lines.next()) {
            (Some(root), Some(git_dir)) if root.starts_with('/') && git_dir.starts_with('/') => {
                Some(Workplace {
                    root: PathBuf::from(root),
                    git_dir: PathBuf::from(git_dir),
                })
            }
            _ => None,
        };
        let noted_at = modified.unwrap_or_else(SystemTime::now);
        notes.push(Note {
            commit,
            branch: branch.starts_with("refs/").then(|| branch.to_string()),
            made_in,
            noted_at,
            path,
        });
    }
    notes.sort_by_key(|note| (note.noted_at, note.commit));
    Ok(notes)
}

/// A full commit id in lowercase hex, as the shim names notes.
fn commit_id(name: &str) -> Option<ObjectId> {
    let hex = name.len() == 40 || name.len() == 64;
    let lowercase = name
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || !lowercase {
        return None;
    }
    ObjectId::from_hex(name.as_bytes()).ok()
}

/// Commits that `commit.observed` events recorded since a little before `since`: a settler that
/// died between appending and removing its notes leaves notes for commits already in the log.
///
/// Best effort: an event that cannot be read ends the search (the append that follows reports a
/// damaged log), so one bad event cannot keep notes from ever being recorded.
fn observed_since(store: &Store, since: Option<SystemTime>) -> HashSet<ObjectId> {
    let mut observed = HashSet::new();
    let Some(since) = since else {
        return observed;
    };
    let horizon = jiff::Timestamp::try_from(since - CLOCK_SLACK).ok();
    let filter = Filter::default();
    for stored in store.walk_newest_first(&filter) {
        let Ok(stored) = stored else {
            break;
        };
        let event = stored.event;
        let at: Option<jiff::Timestamp> = event.at.parse().ok();
        if let (Some(at), Some(horizon)) = (at, horizon)
            && at < horizon
        {
            break;
        }
        if event.kind == crate::event::kind::COMMIT_OBSERVED
            && let Some(commit) = event.payload["commit"].as_str()
            && let Ok(commit) = ObjectId::from_hex(commit.as_bytes())
        {
            observed.insert(commit);
        }
    }
    observed
}

/// `commits` (in the order they were noted) with every parent before its children: a rebase
/// notes a whole chain within one tick of a coarse file-system clock.
fn oldest_first(commits: Vec<Settled>) -> Vec<Settled> {
    let ids: HashSet<ObjectId> = commits.iter().map(|c| c.commit.commit).collect();
    let mut waiting: BTreeMap<usize, Settled> = commits.into_iter().enumerate().collect();
    let mut placed: HashSet<ObjectId> = HashSet::new();
    let mut ordered = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let ready = waiting
            .iter()
            .find(|(_, settled)| {
                settled
                    .commit
                    .parents
                    .iter()
                    .all(|parent| !ids.contains(parent) || placed.contains(parent))
            })
            .map(|(at, _)| *at)
            // Only a cycle could leave nothing ready; commits cannot form one, but never loop.
            .unwrap_or_else(|| *waiting.keys().next().expect("not empty"));
        let settled = waiting.remove(&ready).expect("present");
        placed.insert(settled.commit.commit);
        ordered.push(settled);
    }
    ordered
}

fn remove(notes: &[Note]) {
    for note in notes {
        let _ = fs::remove_file(&note.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(id: u8, parents: &[u8]) -> Settled {
        let oid = |n: u8| ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).unwrap();
        let commit = ObservedCommit {
            commit: oid(id),
            parents: parents.iter().map(|p| oid(*p)).collect(),
            branch: None,
            author: String::new(),
            subject: id.to_string(),
            spectra_changes: Vec::new(),
            made_by_spectra: false,
        };
        Settled {
            commit,
            made_in: None,
        }
    }

    #[test]
    fn parents_come_before_children_whatever_order_they_were_noted_in() {
        // A rebase's chain 1 <- 2 <- 3 noted within one clock tick, plus an unrelated 9.
        let noted = vec![
            commit(3, &[2]),
            commit(9, &[8]),
            commit(1, &[0]),
            commit(2, &[1]),
        ];
        let order: Vec<String> = oldest_first(noted)
            .into_iter()
            .map(|c| c.commit.subject)
            .collect();
        assert_eq!(order, ["9", "1", "2", "3"]);
    }

    #[test]
    fn only_full_lowercase_ids_name_notes() {
        assert!(commit_id(&"ab".repeat(20)).is_some());
        assert!(commit_id(&"AB".repeat(20)).is_none());
        assert!(commit_id("abc").is_none());
        assert!(commit_id(LOCK_FILE).is_none());
        assert!(commit_id(&format!("{}.tmp", "ab".repeat(20))).is_none());
    }

    #[test]
    fn a_note_without_its_newline_is_not_read_yet() {
        let dir = tempfile::tempdir().unwrap();
        let id = "cd".repeat(20);
        fs::write(dir.path().join(&id), "refs/heads/main").unwrap();
        assert!(read_notes(dir.path()).unwrap().is_empty());
        fs::write(dir.path().join(&id), "refs/heads/main\n").unwrap();
        let notes = read_notes(dir.path()).unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].branch.as_deref(), Some("refs/heads/main"));
        fs::write(dir.path().join(&id), "\n").unwrap();
        assert_eq!(read_notes(dir.path()).unwrap()[0].branch, None);
        fs::write(dir.path().join(&id), "refs/heads/main\n/w/t\n/w/t/.git\n").unwrap();
        let note = &read_notes(dir.path()).unwrap()[0];
        let place = note.made_in.as_ref().unwrap();
        assert_eq!(
            (place.root.as_path(), place.git_dir.as_path()),
            (Path::new("/w/t"), Path::new("/w/t/.git"))
        );
    }
}
