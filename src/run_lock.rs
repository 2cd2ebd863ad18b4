//! Which runs are still going, told by the operating system rather than by the log.
//!
//! A run (an activity run, an undo, a redo) holds an exclusive lock on
//! `<git dir>/spectra/runs/<run>.lock` from before its first event until after its last. The
//! kernel drops the lock when the process ends, however it ends, so a lock file whose lock can
//! be taken belongs to a run whose process is gone: [`abandoned`] finds those for
//! [`crate::reconcile`], and [`liveness`] tells undo whether a run is still in progress. The
//! file holds the process id, for messages only. A run recorded in another clone has no file
//! here and is never taken for abandoned.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folder under the state dir that holds one lock file per live run.
const DIR: &str = "runs";

/// The run this process is carrying out, for the signal handler (see [`crate::interrupt`]).
static ACTIVE: Mutex<Option<ActiveRun>> = Mutex::new(None);

/// What the signal handler needs to close the run this process is working on.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    /// The run's id.
    pub run: String,
    /// The lock file, shared: git children of an effect are let inherit it (see
    /// [`ChildrenHold`]).
    pub lock: Arc<File>,
    /// Where the repository was opened (its git dir).
    pub git_dir: PathBuf,
    /// Where the tool keeps its state (`.git/spectra`).
    pub state_dir: PathBuf,
}

/// The process's hold on one run: the run counts as in progress while this lives.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// Holds the lock; closing it releases the lock.
    _file: File,
}

impl RunLock {
    /// Takes the lock of `run`. The file is locked under a temporary name and then renamed into
    /// place, so nobody ever sees it unlocked while this process lives.
    pub fn acquire(state_dir: &Path, git_dir: &Path, run: &str) -> io::Result<RunLock> {
        let dir = state_dir.join(DIR);
        fs::create_dir_all(&dir)?;
        let mut temp = tempfile::Builder::new().prefix(".new-").tempfile_in(&dir)?;
        try_lock(temp.as_file())?;
        writeln!(temp, "{}", std::process::id())?;
        if !is_safe_run_name(run) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("run id `{run}` cannot name a lock file"),
            ));
        }
        let path = lock_path(state_dir, run);
        let file = temp.persist(&path).map_err(|error| error.error)?;
        *active() = Some(ActiveRun {
            lock: Arc::new(file.try_clone()?),
            run: run.to_string(),
            git_dir: git_dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
        });
        Ok(RunLock { path, _file: file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let mut active = active();
        if active
            .as_ref()
            .is_some_and(|active| self.path.ends_with(format!("{}.lock", active.run)))
        {
            *active = None;
        }
    }
}

/// The run this process is working on, if any.
pub fn active_run() -> Option<ActiveRun> {
    active().clone()
}

fn active() -> std::sync::MutexGuard<'static, Option<ActiveRun>> {
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock_path(state_dir: &Path, run: &str) -> PathBuf {
    state_dir.join(DIR).join(format!("{run}.lock"))
}

/// Whether `run` can name a file in the runs folder: the tool's run ids are UUIDs, and a run
/// id appended by a script that holds a path separator or starts with a dot never names a lock
/// file (it could point outside the folder).
fn is_safe_run_name(run: &str) -> bool {
    !run.is_empty()
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Whether the process of a run is still working on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// A process holds the run's lock (its id, when the file says).
    Running {
        /// The id of the process holding it, when the lock file says.
        pid: Option<u32>,
    },
    /// The run's process ended without finishing it.
    Gone,
    /// No lock file: the run finished, or it was recorded in another clone.
    Unknown,
}

/// Whether `run` is still in progress in this repository.
pub fn liveness(state_dir: &Path, run: &str) -> Liveness {
    if !is_safe_run_name(run) {
        return Liveness::Unknown;
    }
    let Ok(mut file) = File::open(lock_path(state_dir, run)) else {
        return Liveness::Unknown;
    };
    match try_lock(&file) {
        Ok(()) => Liveness::Gone,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Liveness::Running {
                pid: text.trim().parse().ok(),
            }
        }
        Err(_) => Liveness::Unknown,
    }
}

/// A run whose process ended without finishing it; the lock is held until [`Self::release`],
/// so two commands never close the same run.
#[derive(Debug)]
pub struct Abandoned {
    /// The run's id.
    pub run: String,
    path: PathBuf,
    _file: File,
}

impl Abandoned {
    /// The run is closed: its lock file goes.
    pub fn release(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Every run of this repository whose process is gone. Cheap when nothing was interrupted: one
/// read of a (usually empty or missing) folder.
pub fn abandoned(state_dir: &Path) -> Vec<Abandoned> {
    let Ok(entries) = fs::read_dir(state_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<Abandoned> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let run = name.strip_suffix(".lock")?.to_string();
            let file = File::open(entry.path()).ok()?;
            try_lock(&file).ok()?;
            Some(Abandoned {
                run,
                path: entry.path(),
                _file: file,
            })
        })
        .collect();
    found.sort_by(|a, b| a.run.cmp(&b.run));
    found
}

/// Removes the lock file of `run`: for the signal handler, which closes its own run from
/// inside the process while it still holds the lock.
pub fn remove(state_dir: &Path, run: &str) {
    if !is_safe_run_name(run) {
        return;
    }
    let _ = fs::remove_file(lock_path(state_dir, run));
}

/// The lock every change to the user's work tree and branch is made under (write a file and
/// commit it, revert a commit), with the event that records it: two runs never interleave
/// their writes and commits, and a signal handler waits for an effect in flight to be recorded.
#[derive(Debug)]
pub struct EffectLock {
    _file: File,
}

impl EffectLock {
    /// Waits for the lock, as long as it takes (an effect holds it for the length of one `git
    /// commit`).
    pub fn acquire(state_dir: &Path) -> io::Result<EffectLock> {
        let file = effect_lock_file(state_dir)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(EffectLock { _file: file })
    }

    /// The lock if nobody holds it now.
    pub fn try_acquire(state_dir: &Path) -> io::Result<Option<EffectLock>> {
        let file = effect_lock_file(state_dir)?;
        match try_lock(&file) {
            Ok(()) => Ok(Some(EffectLock { _file: file })),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Waits for the lock until `deadline`; `None` when an effect still holds it then.
    pub fn acquire_until(state_dir: &Path, deadline: std::time::Instant) -> Option<EffectLock> {
        let file = effect_lock_file(state_dir).ok()?;
        loop {
            match try_lock(&file) {
                Ok(()) => return Some(EffectLock { _file: file }),
                Err(error)
                    if error.kind() == io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => return None,
            }
        }
    }
}

/// An exclusive `flock` without waiting: `WouldBlock` when another open file holds it (in this
/// process or another).
fn try_lock(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
    Ok(())
}

/// While this lives, the processes the tool starts inherit the effect lock and the run's lock.
/// A `git commit` (and the hooks it runs) can outlive a killed `git-spectra`; holding both
/// locks, it keeps the run "in progress" and other effects waiting until it has finished, so
/// the run is never closed (see [`crate::reconcile`]) before its commit exists.
pub struct ChildrenHold {
    files: Vec<Arc<File>>,
}

impl EffectLock {
    /// Lets the children started until the guard drops inherit this lock and the run's.
    pub fn shared_with_children(&self) -> ChildrenHold {
        let mut files: Vec<Arc<File>> = Vec::new();
        if let Ok(effects) = self._file.try_clone() {
            files.push(Arc::new(effects));
        }
        if let Some(active) = active_run() {
            files.push(active.lock);
        }
        for file in &files {
            set_inherited(file, true);
        }
        ChildrenHold { files }
    }
}

impl Drop for ChildrenHold {
    fn drop(&mut self) {
        for file in &self.files {
            set_inherited(file, false);
        }
    }
}

fn set_inherited(file: &File, inherited: bool) {
    let flags = if inherited {
        rustix::io::FdFlags::empty()
    } else {
        rustix::io::FdFlags::CLOEXEC
    };
    if let Err(error) = rustix::io::fcntl_setfd(file, flags) {
        tracing::warn!(%error, "cannot change whether children inherit a lock");
    }
}

fn effect_lock_file(state_dir: &Path) -> io::Result<File> {
    fs::create_dir_all(state_dir)?;
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir.join("effects.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_running_and_a_released_one_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), dir.path(), "r1").unwrap();
        assert_eq!(
            liveness(dir.path(), "r1"),
            Liveness::Running {
                pid: Some(std::process::id())
            }
        );
        assert!(abandoned(dir.path()).is_empty());
        assert_eq!(active_run().map(|a| a.run), Some("r1".to_string()));
        drop(lock);
        assert_eq!(liveness(dir.path(), "r1"), Liveness::Unknown);
        assert!(active_run().is_none());
    }

    #[test]
    fn run_ids_that_could_leave_the_folder_name_no_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        for run in ["../x", "a/b", ".hidden", "", "r\\n"] {
            assert!(!is_safe_run_name(run), "{run}");
            assert_eq!(liveness(dir.path(), run), Liveness::Unknown);
            assert!(RunLock::acquire(dir.path(), dir.path(), run).is_err());
        }
        assert!(is_safe_run_name("01a2416f-6f9d-72a7-a191-de3743c2fede"));
    }

    #[test]
    fn a_lock_file_nobody_holds_is_abandoned_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(DIR)).unwrap();
        fs::write(lock_path(dir.path(), "r2"), "12345\n").unwrap();
        assert_eq!(liveness(dir.path(), "r2"), Liveness::Gone);
        let found = abandoned(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].run, "r2");
        // While one command holds it, another does not take it too.
        assert!(abandoned(dir.path()).is_empty());
        found.into_iter().for_each(Abandoned::release);
        assert_eq!(liveness(dir.path(), "r2"), Liveness::Unknown);
    }
}
