//! The scratch repository a replay runs in: a new repository in a temporary directory that
//! borrows the user's objects (`objects/info/alternates`), whose HEAD is the commit the run
//! started from and whose log is the user's log as it was just before the run's first event.
//!
//! The engine then runs there unchanged, so what it reads (the files, the manifests, the
//! history) is what the recorded run read, and nothing it writes (commits, branches, events,
//! caches) can reach the user's repository: new objects go to the scratch's own object
//! directory, and its refs are its own. The directory is removed when the [`Scratch`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ReplayError;

/// Where the run started: the commit, the branch HEAD was on, and the log before the run.
#[derive(Debug, Clone)]
pub struct StartingPoint {
    /// The commit HEAD pointed at, or `None` in a repository with no commit yet.
    pub head: Option<String>,
    /// The branch HEAD was on (`None`: detached).
    pub branch: Option<String>,
    /// The log's tip just before the run's first event (`None`: the run began the log).
    pub log: Option<String>,
    /// `Name <email>` of whoever recorded the run, so that the replay's commits and events
    /// are made by the same identity.
    pub actor: String,
}

/// A scratch repository, removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A scratch repository borrowing the objects of the repository at `git_common_dir`,
    /// standing at `start`, with the `spectra.*` settings of `user_root`'s own config and a
    /// copy of the caches in `user_state` (`.git/spectra`).
    pub fn create(
        git_common_dir: &Path,
        user_root: &Path,
        user_state: &Path,
        start: &StartingPoint,
    ) -> Result<Scratch, ReplayError> {
        let dir = tempfile::Builder::new()
            .prefix("spectra-replay-")
            .tempdir()
            .map_err(|error| ReplayError::Scratch(format!("cannot create it: {error}")))?;
        let root = dir.path();
        git(root, &["init", "-q", "."])?;
        let objects = absolute(&git_common_dir.join("objects"));
        std::fs::write(
            root.join(".git/objects/info/alternates"),
            format!("{}\n", objects.display()),
        )
        .map_err(|error| ReplayError::Scratch(format!("cannot borrow the objects: {error}")))?;
        configure(root, user_root, &start.actor)?;
        // The folds resume from a checkpoint of the user's caches at or before the run's start
        // instead of folding the whole log again (a cache that does not fit is refolded, as on
        // a log that was replaced); a cache that cannot be copied only costs time.
        let _ = copy_dir(&user_state.join("cache"), &root.join(".git/spectra/cache"));
        if let Some(log) = &start.log {
            git(root, &["update-ref", crate::store::EVENTS_REF, log])?;
        }
        if let Some(head) = &start.head {
            match &start.branch {
                Some(branch) => {
                    let reference = format!("refs/heads/{branch}");
                    git(root, &["update-ref", &reference, head])?;
                    git(root, &["symbolic-ref", "HEAD", &reference])?;
                }
                None => git(root, &["update-ref", "--no-deref", "HEAD", head])?,
            }
            git(root, &["reset", "-q", "--hard", "HEAD"])?;
        } else if let Some(branch) = &start.branch {
            git(
                root,
                &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
            )?;
        }
        Ok(Scratch { dir })
    }

    /// The scratch repository's work tree.
    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// The identity of the recorded run, no hooks of the user's (a hook must not run for the
/// replay's commits), and the user's own `spectra.*` settings (the test and deploy commands and
/// the like), which the repository's config held and the scratch's does not.
fn configure(root: &Path, user_root: &Path, actor: &str) -> Result<(), ReplayError> {
    let (name, email) = split_actor(actor);
    let no_hooks = root.join(".git/no-hooks");
    std::fs::create_dir_all(&no_hooks)
        .map_err(|error| ReplayError::Scratch(format!("cannot create {no_hooks:?}: {error}")))?;
    // One write instead of a git process per key: the scratch's config is ours alone.
    let mut config = format!(
        "[user]\n\tname = {}\n\temail = {}\n[core]\n\thooksPath = {}\n",
        quoted(&name),
        quoted(&email),
        quoted(&no_hooks.display().to_string())
    );
    let listed = git_text(
        user_root,
        &["config", "--local", "--null", "--get-regexp", r"^spectra\."],
    )
    .unwrap_or_default();
    for entry in listed.split('\0').filter(|entry| !entry.is_empty()) {
        let (key, value) = entry.split_once('\n').unwrap_or((entry, ""));
        if let Some((section, variable)) = key.rsplit_once('.') {
            let (section, subsection) = match section.split_once('.') {
                Some((section, subsection)) => (section, Some(subsection)),
                None => (section, None),
            };
            let header = match subsection {
                Some(subsection) => format!("[{section} {}]", quoted(subsection)),
                None => format!("[{section}]"),
            };
            config.push_str(&format!("{header}\n\t{variable} = {}\n", quoted(value)));
        }
    }
    let path = root.join(".git/config");
    let mut text = std::fs::read_to_string(&path)
        .map_err(|error| ReplayError::Scratch(format!("cannot read {path:?}: {error}")))?;
    text.push_str(&config);
    std::fs::write(&path, text)
        .map_err(|error| ReplayError::Scratch(format!("cannot write {path:?}: {error}")))
}

/// `text` as a double-quoted git config value.
fn quoted(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\t', "\\t");
    format!("\"{escaped}\"")
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `Name <email>` as its two parts.
fn split_actor(actor: &str) -> (String, String) {
    match actor.rsplit_once(" <") {
        Some((name, email)) => (
            name.trim().to_string(),
            email.trim_end_matches('>').to_string(),
        ),
        None => (actor.to_string(), String::new()),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What would point git at another repository than the one in its directory.
const REPOSITORY_VARIABLES: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
];

/// `git` in `dir`, whatever repository the environment names.
fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    for variable in REPOSITORY_VARIABLES {
        command.env_remove(variable);
    }
    command.current_dir(dir).args(args);
    command
}

/// What git printed in `dir`, or nothing if it failed (for what a report only shows).
pub(super) fn git_output(dir: &Path, args: &[&str]) -> String {
    git_text(dir, args).unwrap_or_default()
}

/// What git printed in `dir`, or `None` if it failed.
pub(super) fn git_text(dir: &Path, args: &[&str]) -> Option<String> {
    git_command(dir, args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs git in `dir`, whatever repository the environment names; its stderr is the error.
pub(super) fn git(dir: &Path, args: &[&str]) -> Result<(), ReplayError> {
    let output = git_command(dir, args)
        .output()
        .map_err(|error| ReplayError::Scratch(format!("cannot run git: {error}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(ReplayError::Scratch(format!(
        "git {}: {}",
        args.join(" "),
        crate::worktree::failure_reason(&output)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_splits_into_name_and_email() {
        assert_eq!(
            split_actor("Ada Tester <ada@example.com>"),
            ("Ada Tester".to_string(), "ada@example.com".to_string())
        );
        assert_eq!(split_actor("nobody"), ("nobody".to_string(), String::new()));
    }
}
