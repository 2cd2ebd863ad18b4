//! Background runs started by a commit that changed a specification.
//!
//! When a commit adds or edits `.spectra/<service>.specification.yaml`, the hook starts the
//! activities listed in `spectra.hooks.onSpecChange` as `git spectra <activity> --service
//! <service> --update "<input>"`: the specification exists, so a discover among them is an
//! update of it, which needs `--update` (and the other activities ignore it). They must not hold up the commit, so the hook starts one detached runner
//! per changed specification (`git-spectra hook run-activities`, in its own process group, stdin
//! closed, output appended to `<common dir>/spectra/hooks.log`) and returns at once. The runner
//! runs the activities one after another, in the configured order, and stops at the first that
//! fails: `plan` after a failed `discover` would only fail again. Their runs are ordinary runs in
//! the event log.
//!
//! The runner holds a shared `flock` on the hooks log for as long as it (or anything it started)
//! runs, because it inherits the open log as its stdout and stderr. Anyone who wants to wait for
//! the background work, a test or `flock .git/spectra/hooks.log true`, takes an exclusive lock.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::repo::Repo;
use crate::store::Store;

use super::observe::{ObservedCommit, SPECTRA_DIR};
use super::pending::Workplace;
use super::{ENV_SWITCH, HookError};

/// The hooks log, under the state directory shared by all worktrees.
pub const LOG_FILE: &str = "hooks.log";

/// What a specification file is called: `.spectra/<service>.specification.yaml`.
const SPEC_SUFFIX: &str = ".specification.yaml";

/// One background runner the hook started.
#[derive(Debug, Clone)]
pub struct SpecTrigger {
    /// The service whose specification changed.
    pub service: String,
    /// The specification that changed, e.g. `.spectra/logging.specification.yaml`.
    pub specification: String,
    /// The input every activity gets.
    pub input: String,
    /// The activities, in the order they run.
    pub activities: Vec<String>,
    /// The runner's process id (also its process group id).
    pub pid: u32,
}

/// `<common dir>/spectra/hooks.log`.
pub fn hooks_log_path(repo: &Repo) -> PathBuf {
    repo.state_dir().join(LOG_FILE)
}

/// The service a path names when it is a specification directly under `.spectra/`.
pub fn service_of_specification(path: &str) -> Option<&str> {
    let name = path.strip_prefix(SPECTRA_DIR)?.strip_prefix('/')?;
    let service = name.strip_suffix(SPEC_SUFFIX)?;
    (!service.is_empty() && !service.contains('/')).then_some(service)
}

/// Starts one detached runner for each specification `commit` added or changed, when
/// `activities` is not empty. Returns what was started.
///
/// The runners work where the commit was made when `made_in` says where (a command in another
/// linked worktree may be the one recording it), else in `repo`'s work tree.
pub fn start_for_commit(
    repo: &Repo,
    commit: &ObservedCommit,
    activities: &[String],
    made_in: Option<&Workplace>,
) -> Result<Vec<SpecTrigger>, HookError> {
    let specs: Vec<(&str, &str)> = commit
        .spectra_changes
        .iter()
        .filter(|change| !change.deleted)
        .filter_map(|change| {
            Some((
                service_of_specification(&change.path)?,
                change.path.as_str(),
            ))
        })
        .collect();
    if activities.is_empty() || specs.is_empty() {
        return Ok(Vec::new());
    }
    // The activities read the log they extend; none starts on a log that fails verification.
    Store::new(repo).require_intact()?;
    let log_path = hooks_log_path(repo);
    let mut log = open_log(&log_path)?;
    hold_shared_lock(&log);
    let mut started = Vec::with_capacity(specs.len());
    for (service, path) in specs {
        let input = format!("specification {path} changed in {}", commit.short_id());
        let line = format!(
            "commit {}: {path} changed; starting {} for {service}",
            commit.short_id(),
            activities.join(", ")
        );
        write_log_line(&mut log, &line).map_err(|err| HookError::io("write", &log_path, err))?;
        let pid = spawn_runner(repo, made_in, &log, &log_path, service, &input, activities)?;
        started.push(SpecTrigger {
            service: service.to_string(),
            specification: path.to_string(),
            input,
            activities: activities.to_vec(),
            pid,
        });
    }
    Ok(started)
}

/// Starts `git-spectra hook run-activities ...` detached from the commit.
fn spawn_runner(
    repo: &Repo,
    made_in: Option<&Workplace>,
    log: &File,
    log_path: &Path,
    service: &str,
    input: &str,
    activities: &[String],
) -> Result<u32, HookError> {
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("git-spectra"));
    let mut command = Command::new(program);
    command
        .args([
            "hook",
            "run-activities",
            "--service",
            service,
            "--input",
            input,
            "--",
        ])
        .args(activities);
    detach(&mut command, log).map_err(|err| HookError::io("open", log_path, err))?;
    match made_in {
        // That work tree and its git dir, not whatever this process was given.
        Some(place) => {
            command
                .current_dir(&place.root)
                .env("GIT_DIR", &place.git_dir)
                .env_remove("GIT_WORK_TREE");
        }
        None => {
            if let Some(root) = repo.work_tree() {
                command.current_dir(root);
            }
        }
    }
    let child = command
        .spawn()
        .map_err(|err| HookError::io("start the background runner for", log_path, err))?;
    // Not waited for: the runner outlives this process and is adopted by init.
    Ok(child.id())
}

/// Makes `command` independent of the commit that starts it: its own process group (a Ctrl-C
/// in the terminal does not reach it), no stdin, output into the log, and an environment that
/// does not point at the commit's temporary index.
fn detach(command: &mut Command, log: &File) -> std::io::Result<()> {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        // `git commit <paths>` hands hooks a temporary index that is gone once the commit ends.
        .env_remove("GIT_INDEX_FILE")
        // Commits the activities make carry `Spectra-Run` and are skipped anyway; this also
        // spares them starting a hook process at all, and rules out any chain of triggers.
        .env(ENV_SWITCH, "0");
    Ok(())
}

/// Runs `git spectra <activity> --service <service> --update <input>` for each activity in order,
/// writing a line before and after each to `log`, and stops at the first that fails. Returns
/// the exit code of the last one run.
pub fn run_activities(
    service: &str,
    input: &str,
    activities: &[String],
    log: &mut impl Write,
) -> std::io::Result<u8> {
    for activity in activities {
        write_log_line(
            log,
            &format!("starting: git spectra {activity} --service {service} --update {input:?}"),
        )?;
        log.flush()?;
        let status = Command::new("git")
            .args(["spectra", activity, "--service", service, "--update", input])
            .stdin(Stdio::null())
            .status();
        let code = match status {
            Ok(status) => status.code().map_or(128, |c| c.clamp(0, 255) as u8),
            Err(err) => {
                write_log_line(log, &format!("cannot start git spectra {activity}: {err}"))?;
                return Ok(128);
            }
        };
        write_log_line(log, &format!("git spectra {activity} exited with {code}"))?;
        if code != 0 {
            if activities.last() != Some(activity) {
                write_log_line(log, "not starting the activities after it")?;
            }
            return Ok(code);
        }
    }
    Ok(0)
}

/// Appends one timestamped line to the hooks log, creating it; for the hook's own warnings.
pub fn append_to_log(repo: &Repo, text: &str) -> Result<(), HookError> {
    let path = hooks_log_path(repo);
    let mut log = open_log(&path)?;
    write_log_line(&mut log, text).map_err(|err| HookError::io("write", &path, err))
}

/// Waits until every background runner started so far has finished (they hold shared locks on
/// the log; this takes an exclusive one).
pub fn wait_for_background_runs(log_path: &Path) -> std::io::Result<()> {
    let log = match File::open(log_path) {
        Ok(log) => log,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    rustix::fs::flock(&log, rustix::fs::FlockOperation::LockExclusive)?;
    rustix::fs::flock(&log, rustix::fs::FlockOperation::Unlock)?;
    Ok(())
}

fn open_log(path: &Path) -> Result<File, HookError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| HookError::io("create", dir, err))?;
    }
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| HookError::io("open", path, err))
}

/// Takes a shared lock that the runners inherit with the open log. Never blocks the commit: if
/// someone is waiting with an exclusive lock right now, the runs go ahead unlocked.
fn hold_shared_lock(log: &File) {
    let _ = rustix::fs::flock(log, rustix::fs::FlockOperation::NonBlockingLockShared);
}

/// One line, written with a single `write` so concurrent writers do not interleave within it.
fn write_log_line(log: &mut impl Write, text: &str) -> std::io::Result<()> {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    log.write_all(format!("{now} {text}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_name_their_service() {
        assert_eq!(
            service_of_specification(".spectra/logging.specification.yaml"),
            Some("logging")
        );
        assert_eq!(
            service_of_specification(".spectra/a/b.specification.yaml"),
            None
        );
        assert_eq!(
            service_of_specification(".spectra/.specification.yaml"),
            None
        );
        assert_eq!(service_of_specification(".spectra/notes.yaml"), None);
        assert_eq!(
            service_of_specification("x/.spectra/y.specification.yaml"),
            None
        );
    }
}
