//! `builtin apply-changes` and `builtin remove-build-branch`: a build's file changes, as one
//! commit on a branch of its own.
//!
//! A model's edits are applied to a git tree, never to the user's files: the new blobs and tree
//! are built with git plumbing and a temporary index (`GIT_INDEX_FILE`), and the commit (parent:
//! HEAD) goes on `spectra/<service>/build-<run>`. The user's HEAD, index and working tree are
//! not touched, so the branch is there to review and merge like anyone's. Two formats: a whole
//! file (`content`) and aider's search/replace (`search` must occur exactly once in the file as
//! HEAD has it; a missing or ambiguous search text is a failed change, never a guess). Every
//! change is checked before anything is written, and one failed change means none is applied.
//!
//! A preview (a dry run) builds the same tree in a temporary object directory that borrows the
//! repository's objects (`GIT_ALTERNATE_OBJECT_DIRECTORIES`), so it can show the full diff while
//! writing nothing to the repository.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{BuiltinError, check_service_name};

/// Most changes one build may make.
pub const MAX_CHANGES: usize = 20;

/// One change a build asks for, as the decision lists it. Which fields are set says what it is:
/// `action: delete`, else `search` (with `replace`), else `content`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileChange {
    /// The file, relative to the repository root.
    pub path: String,
    /// `create`, `modify` or `delete`; `None` is decided by the other fields.
    #[serde(default)]
    pub action: Option<String>,
    /// The whole new content of the file.
    #[serde(default)]
    pub content: Option<String>,
    /// Text that must occur exactly once in the file as HEAD has it.
    #[serde(default)]
    pub search: Option<String>,
    /// What replaces `search`.
    #[serde(default)]
    pub replace: Option<String>,
}

/// What became of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeResult {
    /// The file.
    pub path: String,
    /// `content`, `search_replace` or `delete`.
    pub kind: &'static str,
    /// Whether the change is in the new tree (false for all when any change failed).
    pub applied: bool,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// The result of applying (or previewing) a list of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The branch, short name (`spectra/<service>/build-<run>`).
    pub branch: String,
    /// The commit on it; `None` in a preview or when a change failed.
    pub commit: Option<String>,
    /// The commit the changes were applied to (HEAD).
    pub base: String,
    /// Every change, in order, with its result.
    pub changes: Vec<ChangeResult>,
    /// `git diff --stat` of base against the new tree.
    pub diff_stat: String,
    /// The full diff (only in a preview; the commit holds it otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Whether every change applied.
    pub success: bool,
}

/// The outcome of removing a build's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The branch.
    pub branch: String,
    /// `deleted` (the branch is gone), `reverted` (already merged into HEAD: its commit was
    /// reverted there, and the branch is gone too) or `absent` (there was no such branch).
    pub action: &'static str,
    /// The commit the branch pointed at, if any.
    pub commit: Option<String>,
}

/// A change checked against HEAD: what the file's entry becomes (`None`: removed).
struct Planned {
    path: String,
    mode: String,
    content: Option<Vec<u8>>,
}

/// The branch a build of `service` in run `run` goes on.
pub fn branch_name(service: &str, run: &str) -> String {
    format!("spectra/{service}/build-{}", short_run(run))
}

/// The part of a run id a branch name carries: the last 8 letters and digits of the id (the
/// random end of a UUIDv7; its start is a clock and repeats between runs close in time).
pub fn short_run(run: &str) -> String {
    let plain: Vec<char> = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    plain[plain.len().saturating_sub(8)..].iter().collect()
}

/// Refuses a run id that could not name a branch or a trailer: 8 to 64 letters, digits and `-`.
fn check_run(run: &str) -> Result<(), BuiltinError> {
    let plain = run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let letters = run.chars().filter(char::is_ascii_alphanumeric).count();
    if plain && (8..=64).contains(&run.len()) && letters >= 8 {
        return Ok(());
    }
    Err(BuiltinError::Changes {
        message: format!("`{run}` is not a run id (8 to 64 letters, digits and `-`)"),
    })
}

/// Refuses an event id that could not stand in a trailer: 1 to 64 letters, digits and `-`
/// (the runner sets it; a line break in it would forge the trailers below it).
fn check_event(event: &str) -> Result<(), BuiltinError> {
    let plain = event.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain && (1..=64).contains(&event.len()) {
        return Ok(());
    }
    Err(BuiltinError::Changes {
        message: format!("`{event}` is not an event id (letters, digits and `-`)"),
    })
}

/// The trailers of the revert an undo makes when the build branch was merged: the undo's run
/// and event, as the runner gives them to the playbook, so the post-commit hook knows the
/// commit for the tool's own.
pub fn revert_trailers<'a>(
    run: Option<&'a str>,
    event: Option<&'a str>,
) -> Result<Vec<(&'static str, &'a str)>, BuiltinError> {
    let mut trailers = Vec::new();
    if let Some(run) = run {
        check_run(run)?;
        trailers.push(("Spectra-Run", run));
    }
    if let Some(event) = event {
        check_event(event)?;
        trailers.push(("Spectra-Event", event));
    }
    Ok(trailers)
}

/// Parses the JSON list of changes a playbook input carries.
pub fn parse(json: &str) -> Result<Vec<FileChange>, BuiltinError> {
    serde_json::from_str(json).map_err(|error| BuiltinError::Changes {
        message: format!(
            "the changes are not a JSON list of {{path, content | search, replace}}: {error}"
        ),
    })
}

/// Applies `changes` in `root` on a new branch for `service` and `run`, one commit carrying
/// `Spectra-Run: run` and `Spectra-Event: event`. When a change fails nothing is written and
/// the result says why (`success: false`).
pub fn apply(
    root: &Path,
    service: &str,
    run: &str,
    event: Option<&str>,
    changes: &[FileChange],
) -> Result<Applied, BuiltinError> {
    check_service_name(service)?;
    check_run(run)?;
    if let Some(event) = event {
        check_event(event)?;
    }
    let branch = branch_name(service, run);
    let base = head(root)?;
    let (results, planned) = check_all(root, &base, changes)?;
    let Some(planned) = planned else {
        return Ok(failed(branch, base, results));
    };
    let reference = format!("refs/heads/{branch}");
    let tree = build_tree(root, &base, &planned, &[])?;
    let diff_stat = diff_text(root, &["--stat", &base, &tree], &[])?;
    if let Some(existing) = rev(root, &reference)? {
        // A run again (a redo): the same tree on the same base is the same build.
        let same = rev(root, &format!("{existing}^{{tree}}"))? == Some(tree.clone())
            && rev(root, &format!("{existing}^"))? == Some(base.clone());
        if !same {
            return Err(BuiltinError::BranchConflict {
                branch,
                existing,
                wanted: format!("a new build on {base}"),
            });
        }
        return Ok(done(branch, Some(existing), base, results, diff_stat));
    }
    let message = commit_message(service, run, event, changes);
    let commit = git_env(
        root,
        &["commit-tree", &tree, "-p", &base, "-F", "-"],
        &[],
        Some(message.as_bytes()),
    )?;
    // An empty old value: the update fails if the branch appeared meanwhile.
    git_env(
        root,
        &[
            "update-ref",
            "-m",
            &format!("spectra: build for service {service}"),
            &reference,
            &commit,
            "",
        ],
        &[],
        None,
    )?;
    Ok(done(branch, Some(commit), base, results, diff_stat))
}

/// Checks `changes` and shows the diff they would make, writing nothing to the repository.
pub fn preview(
    root: &Path,
    service: &str,
    run: &str,
    changes: &[FileChange],
) -> Result<Applied, BuiltinError> {
    check_service_name(service)?;
    check_run(run)?;
    let branch = branch_name(service, run);
    let base = head(root)?;
    let (results, planned) = check_all(root, &base, changes)?;
    let Some(planned) = planned else {
        return Ok(failed(branch, base, results));
    };
    let objects = tempfile::tempdir().map_err(BuiltinError::io(std::env::temp_dir()))?;
    let own_objects = absolute(
        root,
        &git_env(root, &["rev-parse", "--git-path", "objects"], &[], None)?,
    );
    let borrowed = [
        (
            "GIT_OBJECT_DIRECTORY",
            objects.path().as_os_str().to_owned(),
        ),
        (
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            own_objects.into_os_string(),
        ),
    ];
    let tree = build_tree(root, &base, &planned, &borrowed)?;
    let diff = |stat: bool| {
        let mode = if stat { "--stat" } else { "--patch" };
        diff_text(root, &[mode, &base, &tree], &borrowed)
    };
    let (diff_stat, full) = (diff(true)?, diff(false)?);
    let mut applied = done(branch, None, base, results, diff_stat);
    applied.diff = Some(full);
    Ok(applied)
}

/// Removes the branch a build made: deletes it, and when HEAD already contains its commit (the
/// user merged it) first reverts that commit on the user's branch.
pub fn remove_branch(
    root: &Path,
    service: &str,
    run: &str,
    revert_trailers: &[(&str, &str)],
) -> Result<Removed, BuiltinError> {
    check_service_name(service)?;
    check_run(run)?;
    let branch = branch_name(service, run);
    let reference = format!("refs/heads/{branch}");
    let Some(commit) = rev(root, &reference)? else {
        return Ok(Removed {
            branch,
            action: "absent",
            commit: None,
        });
    };
    refuse_unless_removable(root, &branch, &commit, run)?;
    let merged = is_ancestor_of_head(root, &commit)?;
    let action = if merged {
        crate::worktree::Worktree::new(root)
            .revert(&commit, revert_trailers)
            .map_err(|error| BuiltinError::Changes {
                message: format!(
                    "`{branch}` was merged, and reverting its commit on your branch failed \
                     (your branch is as it was): {error}"
                ),
            })?;
        "reverted"
    } else {
        "deleted"
    };
    // Either way the branch goes, so that a redo can make it again from HEAD.
    git_env(root, &["update-ref", "-d", &reference, &commit], &[], None)?;
    Ok(Removed {
        branch,
        action,
        commit: Some(commit),
    })
}

/// Refuses to remove a build branch that is checked out in any worktree, or that holds more
/// than the build's own commit (the user committed on it): that work is theirs.
fn refuse_unless_removable(
    root: &Path,
    branch: &str,
    tip: &str,
    run: &str,
) -> Result<(), BuiltinError> {
    let worktrees = git_env(root, &["worktree", "list", "--porcelain"], &[], None)?;
    let checked_out = format!("branch refs/heads/{branch}");
    if worktrees.lines().any(|line| line == checked_out) {
        return Err(BuiltinError::Changes {
            message: format!(
                "`{branch}` is checked out in a worktree (`git worktree list`); switch it to \
                 another branch and undo again"
            ),
        });
    }
    let made_by = git_env(
        root,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Spectra-Run,valueonly)",
            tip,
        ],
        &[],
        None,
    )?;
    if made_by.trim() != run {
        return Err(BuiltinError::Changes {
            message: format!(
                "`{branch}` has moved since the build made it: its tip {} is not the build's \
                 commit; keep what you committed there, then delete the branch yourself \
                 (`git branch -D {branch}`)",
                crate::worktree::short(tip)
            ),
        });
    }
    Ok(())
}

/// Whether HEAD contains `commit` (the user merged the build branch).
fn is_ancestor_of_head(root: &Path, commit: &str) -> Result<bool, BuiltinError> {
    match run_git(
        root,
        &["merge-base", "--is-ancestor", commit, "HEAD"],
        &[],
        None,
    ) {
        Ok(_) => Ok(true),
        Err(BuiltinError::Git { stderr, .. }) if stderr.is_empty() => Ok(false),
        Err(error) => Err(error),
    }
}

fn failed(branch: String, base: String, changes: Vec<ChangeResult>) -> Applied {
    Applied {
        branch,
        commit: None,
        base,
        changes,
        diff_stat: String::new(),
        diff: None,
        success: false,
    }
}

fn done(
    branch: String,
    commit: Option<String>,
    base: String,
    changes: Vec<ChangeResult>,
    diff_stat: String,
) -> Applied {
    Applied {
        branch,
        commit,
        base,
        changes,
        diff_stat,
        diff: None,
        success: true,
    }
}

/// The commit's message: a subject naming the files, one line per change, and the trailers.
fn commit_message(service: &str, run: &str, event: Option<&str>, changes: &[FileChange]) -> String {
    let paths: Vec<&str> = changes.iter().map(|change| change.path.as_str()).collect();
    let mut subject =
        crate::trailer_text::one_line(&format!("build({service}): change {}", paths.join(", ")));
    if subject.len() > 72 {
        subject = format!("build({service}): change {} files", paths.len());
    }
    let body: String = changes
        .iter()
        .map(|change| format!("- {} {}\n", kind_of(change), change.path))
        .collect();
    let body = crate::trailer_text::neutralise(&body);
    let event = event
        .map(|event| format!("Spectra-Event: {event}\n"))
        .unwrap_or_default();
    format!("{subject}\n\n{body}\nSpectra-Run: {run}\n{event}")
}

/// `delete`, `search_replace` or `content`: which of the formats `change` uses.
pub fn kind_of(change: &FileChange) -> &'static str {
    if change.action.as_deref() == Some("delete") {
        "delete"
    } else if change.search.is_some() {
        "search_replace"
    } else {
        "content"
    }
}

/// Checks every change against `base`; the planned entries only when all of them pass.
fn check_all(
    root: &Path,
    base: &str,
    changes: &[FileChange],
) -> Result<(Vec<ChangeResult>, Option<Vec<Planned>>), BuiltinError> {
    if changes.is_empty() {
        return Err(BuiltinError::Changes {
            message: "no changes to apply".into(),
        });
    }
    if changes.len() > MAX_CHANGES {
        return Err(BuiltinError::Changes {
            message: format!(
                "{} changes; one build makes at most {MAX_CHANGES}",
                changes.len()
            ),
        });
    }
    let mut results = Vec::new();
    let mut planned = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let repeated = changes[..index]
            .iter()
            .any(|earlier| earlier.path == change.path);
        let outcome = if repeated {
            Err("is changed twice; give one change per file".to_string())
        } else {
            check_one(root, base, change)?
        };
        let (applied, reason) = match outcome {
            Ok(plan) => {
                planned.push(plan);
                (true, None)
            }
            Err(reason) => (false, Some(reason)),
        };
        results.push(ChangeResult {
            path: change.path.clone(),
            kind: kind_of(change),
            applied,
            reason,
        });
    }
    if results.iter().all(|result| result.applied) {
        return Ok((results, Some(planned)));
    }
    // All or nothing: a change that passed is not applied either.
    for result in &mut results {
        if result.applied {
            result.applied = false;
            result.reason = Some("not applied: another change failed".into());
        }
    }
    Ok((results, None))
}

/// One change: `Err(reason)` when it is refused.
fn check_one(
    root: &Path,
    base: &str,
    change: &FileChange,
) -> Result<Result<Planned, String>, BuiltinError> {
    if let Err(reason) = path_shape(&change.path) {
        return Ok(Err(reason));
    }
    let entries = tree_entries(root, base, &change.path)?;
    if let Err(reason) = through_tree(&change.path, &entries) {
        return Ok(Err(reason));
    }
    if has_uncommitted_changes(root, &change.path)? {
        return Ok(Err(
            "has uncommitted changes (staged, unstaged or untracked); commit or stash them first"
                .into(),
        ));
    }
    let existing = entries.get(&change.path).cloned();
    // `git status` does not show an ignored file (a `.env`, a build output), but merging a
    // branch that adds one would overwrite it without a word.
    if existing.is_none() && root.join(&change.path).symlink_metadata().is_ok() {
        return Ok(Err(
            "exists in the work tree but not in HEAD (an ignored or untracked file); \
             move it away or commit it first"
                .into(),
        ));
    }
    let current = match &existing {
        Some((_, id)) => Some(git_bytes(root, &["cat-file", "blob", id])?),
        None => None,
    };
    let mode = existing
        .as_ref()
        .map_or_else(|| "100644".to_string(), |(mode, _)| mode.clone());
    let content = match new_content(change, current.as_deref()) {
        Ok(content) => content,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(Planned {
        path: change.path.clone(),
        mode,
        content,
    }))
}

/// The file's new content (`None`: removed), or why the change cannot be made.
fn new_content(change: &FileChange, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
    match (change.action.as_deref(), &change.search, &change.content) {
        (Some("delete"), _, _) => match current {
            Some(_) => Ok(None),
            None => Err("cannot be deleted: HEAD has no such file".into()),
        },
        (_, Some(search), _) => {
            let current =
                current.ok_or("search/replace needs an existing file: HEAD has no such file")?;
            let text = std::str::from_utf8(current)
                .map_err(|_| "is not UTF-8 text, so search/replace cannot edit it".to_string())?;
            replace_once(text, search, change.replace.as_deref().unwrap_or(""))
                .map(|text| Some(text.into_bytes()))
        }
        (action, None, Some(content)) => {
            if action == Some("create") && current.is_some() {
                return Err("already exists in HEAD; modify it with search/replace".into());
            }
            Ok(Some(content.clone().into_bytes()))
        }
        (_, None, None) => {
            Err("has neither `content` nor `search`/`replace`: nothing to apply".into())
        }
    }
}

/// `text` with the one occurrence of `search` replaced.
fn replace_once(text: &str, search: &str, replace: &str) -> Result<String, String> {
    if search.is_empty() {
        return Err("search text is empty".into());
    }
    match occurrences(text, search).as_slice() {
        [] => Err("search text not found in the file as HEAD has it".into()),
        [at] => Ok(format!(
            "{}{replace}{}",
            &text[..*at],
            &text[at + search.len()..]
        )),
        all => Err(format!(
            "search text found {} times; it must occur exactly once (include more surrounding lines)",
            all.len()
        )),
    }
}

/// Where `search` starts in `text`, overlapping occurrences included: `}\n}\n` occurs twice
/// in `}\n}\n}\n`, and a replacement there would be a guess.
fn occurrences(text: &str, search: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(search) {
        found.push(from + at);
        // The next character boundary after this start.
        from += at + text[from + at..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Refuses paths that are empty, absolute, climb with `..`, reach into `.git`, or are not
/// written plainly (`a//b`, `./a`, a trailing `/`).
fn path_shape(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err("is absolute; paths are relative to the repository root".into());
    }
    if path.contains('\\') {
        return Err("contains `\\`; use `/` between directories".into());
    }
    // A line break in a path would end the commit's subject line and could forge a trailer
    // below it; other control characters would hide text on a terminal.
    if path.chars().any(char::is_control) {
        return Err("contains a control character (a line break, NUL, an escape...)".into());
    }
    for component in path.split('/') {
        match component {
            ".." => return Err("climbs out of the repository with `..`".into()),
            "" | "." => return Err("is not a plain relative path (empty or `.` component)".into()),
            name if name.eq_ignore_ascii_case(".git") => {
                return Err("points into .git; spectra never writes there".into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The entries HEAD has for `path` and each directory above it: path → (mode, object id).
fn tree_entries(
    root: &Path,
    base: &str,
    path: &str,
) -> Result<std::collections::BTreeMap<String, (String, String)>, BuiltinError> {
    let prefixes: Vec<String> = path
        .match_indices('/')
        .map(|(at, _)| path[..at].to_string())
        .chain(std::iter::once(path.to_string()))
        .collect();
    let mut args = vec!["--literal-pathspecs", "ls-tree", "-z", base, "--"];
    args.extend(prefixes.iter().map(String::as_str));
    let listing = git_bytes(root, &args)?;
    Ok(listing
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, name) = entry.split_once('\t')?;
            let mut words = meta.split(' ');
            let (mode, _kind, id) = (words.next()?, words.next()?, words.next()?);
            Some((name.to_string(), (mode.to_string(), id.to_string())))
        })
        // ls-tree lists a directory's other entries when a pathspec reaches into it.
        .filter(|(name, _)| prefixes.contains(name))
        .collect())
}

/// Refuses a path whose directories are not all directories in HEAD (a symlink, a file, a
/// submodule), or that is itself a symlink or a submodule.
fn through_tree(
    path: &str,
    entries: &std::collections::BTreeMap<String, (String, String)>,
) -> Result<(), String> {
    for (name, (mode, _)) in entries {
        let is_self = name == path;
        let problem = match mode.as_str() {
            "120000" => Some("a symlink"),
            "160000" => Some("a submodule"),
            "040000" if is_self => Some("a directory"),
            "100644" | "100755" if !is_self => Some("a file"),
            _ => None,
        };
        if let Some(problem) = problem {
            let which = if is_self {
                "is".to_string()
            } else {
                format!("goes through `{name}`, which is")
            };
            return Err(format!(
                "{which} {problem} in HEAD; spectra writes only regular files inside the tree"
            ));
        }
    }
    Ok(())
}

/// Whether the user has changes to `path` that HEAD does not have: staged, unstaged, or an
/// untracked file there.
fn has_uncommitted_changes(root: &Path, path: &str) -> Result<bool, BuiltinError> {
    let status = git_bytes(
        root,
        &[
            "--literal-pathspecs",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            path,
        ],
    )?;
    Ok(!status.is_empty())
}

/// Builds the tree `base` with `planned` applied, through a temporary index; `env` can point
/// git at a temporary object directory.
fn build_tree(
    root: &Path,
    base: &str,
    planned: &[Planned],
    env: &[(&str, std::ffi::OsString)],
) -> Result<String, BuiltinError> {
    let index_dir = tempfile::tempdir().map_err(BuiltinError::io(std::env::temp_dir()))?;
    let index = index_dir.path().join("index");
    let mut env: Vec<(&str, std::ffi::OsString)> = env.to_vec();
    env.push(("GIT_INDEX_FILE", index.into_os_string()));
    git_env(root, &["read-tree", base], &env, None)?;
    for entry in planned {
        match &entry.content {
            Some(content) => {
                let blob = git_env(
                    root,
                    &["hash-object", "-w", "--no-filters", "--stdin"],
                    &env,
                    Some(content),
                )?;
                let info = format!("{},{blob},{}", entry.mode, entry.path);
                git_env(
                    root,
                    &["update-index", "--add", "--cacheinfo", &info],
                    &env,
                    None,
                )?;
            }
            None => {
                git_env(
                    root,
                    &["update-index", "--force-remove", "--", &entry.path],
                    &env,
                    None,
                )?;
            }
        }
    }
    git_env(root, &["write-tree"], &env, None)
}

fn head(root: &Path) -> Result<String, BuiltinError> {
    rev(root, "HEAD^{commit}")?.ok_or_else(|| BuiltinError::Changes {
        message: "the repository has no commit yet; a build branches from HEAD".into(),
    })
}

fn rev(root: &Path, name: &str) -> Result<Option<String>, BuiltinError> {
    match git_env(
        root,
        &["rev-parse", "--verify", "--quiet", "--end-of-options", name],
        &[],
        None,
    ) {
        Ok(id) => Ok(Some(id)),
        Err(BuiltinError::Git { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

fn absolute(root: &Path, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        path
    } else {
        root.join(path)
    }
}

/// Runs git in `root` with `env` and `stdin`, returning its trimmed stdout.
fn git_env(
    root: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
    stdin: Option<&[u8]>,
) -> Result<String, BuiltinError> {
    let bytes = run_git(root, args, env, stdin)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// `git diff args...` as text, its leading spaces kept (a diff stat's lines start with one).
fn diff_text(
    root: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
) -> Result<String, BuiltinError> {
    let mut all = vec!["diff", "--no-color", "--no-ext-diff"];
    all.extend_from_slice(args);
    let bytes = run_git(root, &all, env, None)?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

fn git_bytes(root: &Path, args: &[&str]) -> Result<Vec<u8>, BuiltinError> {
    run_git(root, args, &[], None)
}

fn run_git(
    root: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, BuiltinError> {
    let command = format!("git {}", args.join(" "));
    let spawn_error = |source| BuiltinError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = Command::new("git")
        .args(args)
        // `git status` would otherwise refresh the user's index as it reads it.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .current_dir(root)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).map_err(spawn_error)?;
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if !output.status.success() {
        return Err(BuiltinError::Git {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod unit {
    use super::*;

    /// A repository with one commit: `src/lib.rs`, `README.md`, a symlink `out` → `/tmp`, a
    /// symlink `inside` → `src`.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(args)
                .current_dir(root)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap();
            assert!(status.status.success(), "{args:?}: {status:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        // The playbook's own commits (commit-tree, a revert) take the repository's identity.
        git(&["config", "user.name", "t"]);
        git(&["config", "user.email", "t@example.com"]);
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn b() {}\n").unwrap();
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
        std::os::unix::fs::symlink("src", root.join("inside")).unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "init"]);
        dir
    }

    fn whole(path: &str, content: &str) -> FileChange {
        FileChange {
            path: path.into(),
            content: Some(content.into()),
            ..FileChange::default()
        }
    }

    fn edit(path: &str, search: &str, replace: &str) -> FileChange {
        FileChange {
            path: path.into(),
            search: Some(search.into()),
            replace: Some(replace.into()),
            ..FileChange::default()
        }
    }

    fn reason(root: &Path, change: FileChange) -> String {
        let base = head(root).unwrap();
        let (results, planned) = check_all(root, &base, &[change]).unwrap();
        assert!(planned.is_none());
        results[0].reason.clone().unwrap()
    }

    #[test]
    fn search_must_occur_exactly_once() {
        assert_eq!(replace_once("a b c", "b", "x").unwrap(), "a x c");
        assert!(
            replace_once("a b c", "z", "x")
                .unwrap_err()
                .contains("not found")
        );
        assert!(
            replace_once("b b", "b", "x")
                .unwrap_err()
                .contains("found 2 times")
        );
        assert!(replace_once("b", "", "x").unwrap_err().contains("empty"));
        // Overlapping occurrences count: the second `}\n}\n` starts inside the first.
        assert!(
            replace_once("}\n}\n}\n", "}\n}\n", "x")
                .unwrap_err()
                .contains("found 2 times")
        );
        assert_eq!(replace_once("é b é", "b", "x").unwrap(), "é x é");
        assert_eq!(occurrences("ééé", "éé"), [0, 2]);
    }

    #[test]
    fn paths_stay_plain_and_out_of_git() {
        assert!(path_shape("src/lib.rs").is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../x", ".."),
            ("src/../../x", ".."),
            (".git/config", ".git"),
            ("sub/.GIT/hooks/pre-commit", ".git"),
            ("a//b", "plain"),
            ("./a", "plain"),
            ("a\nSpectra-Reverts: 0190", "control character"),
            ("a\r---", "control character"),
            ("a\u{1b}[2Jb", "control character"),
            ("a\0b", "control character"),
        ] {
            assert!(path_shape(bad).unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn symlinks_files_and_dirty_files_are_refused() {
        let dir = repo();
        let root = dir.path();
        assert!(reason(root, whole("out/x", "y")).contains("through `out`, which is a symlink"));
        assert!(reason(root, whole("inside/x", "y")).contains("symlink"));
        assert!(reason(root, whole("out", "y")).contains("is a symlink"));
        assert!(reason(root, whole("README.md/x", "y")).contains("a file"));
        assert!(reason(root, whole("src", "y")).contains("a directory"));
        std::fs::write(root.join("README.md"), "edited\n").unwrap();
        assert!(reason(root, whole("README.md", "y")).contains("uncommitted"));
        std::fs::write(root.join("new.txt"), "mine\n").unwrap();
        assert!(reason(root, whole("new.txt", "y")).contains("uncommitted"));
        // An ignored file does not show in `git status`, but is the user's all the same.
        std::fs::write(root.join(".gitignore"), ".env\n").unwrap();
        std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
        assert!(reason(root, whole(".env", "y")).contains("ignored or untracked"));
        // Staged, with the working tree back as HEAD has it: still the user's change.
        std::fs::write(root.join("src/lib.rs"), "staged\n").unwrap();
        let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
        git(&["add", "src/lib.rs"]);
        std::fs::write(root.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn b() {}\n").unwrap();
        assert!(reason(root, whole("src/lib.rs", "y")).contains("uncommitted"));
    }

    #[test]
    fn search_replace_reads_the_file_as_head_has_it() {
        let dir = repo();
        let root = dir.path();
        assert!(reason(root, edit("src/lib.rs", "fn z", "x")).contains("not found"));
        assert!(reason(root, edit("src/lib.rs", "fn b() {}", "x")).contains("found 2 times"));
        assert!(reason(root, edit("missing.rs", "a", "b")).contains("HEAD has no such file"));
        let create = FileChange {
            action: Some("create".into()),
            ..whole("README.md", "x")
        };
        assert!(reason(root, create).contains("already exists"));
        let delete = FileChange {
            action: Some("delete".into()),
            ..FileChange::default()
        };
        assert!(
            reason(
                root,
                FileChange {
                    path: "gone".into(),
                    ..delete
                }
            )
            .contains("no such file")
        );
        assert!(
            reason(
                root,
                FileChange {
                    path: "x".into(),
                    ..FileChange::default()
                }
            )
            .contains("nothing to apply")
        );
    }

    #[test]
    fn the_subject_is_one_line_whatever_the_paths() {
        // Paths are checked before a message is written; the message holds on its own too.
        let changes = [whole("a\nSpectra-Reverts: x", "x")];
        let message = commit_message("svc", "run-1234567890", Some("ev-1"), &changes);
        assert!(
            message.starts_with("build(svc): change a Spectra-Reverts: x\n\n"),
            "{message}"
        );
        assert!(
            !message
                .lines()
                .any(|line| line.starts_with("Spectra-Reverts")),
            "{message}"
        );
        assert!(message.ends_with("Spectra-Run: run-1234567890\nSpectra-Event: ev-1\n"));
    }

    #[test]
    fn reading_the_status_leaves_the_index_bytes_alone() {
        let dir = repo();
        let root = dir.path();
        // New stat data for a file the index knows: a plain `git status` would write the index.
        let lib = root.join("src/lib.rs");
        let old = std::fs::metadata(&lib).unwrap().modified().unwrap();
        let file = std::fs::File::options().write(true).open(&lib).unwrap();
        file.set_modified(old + std::time::Duration::from_secs(5))
            .unwrap();
        drop(file);
        let index = std::fs::read(root.join(".git/index")).unwrap();
        assert!(!has_uncommitted_changes(root, "src/lib.rs").unwrap());
        assert_eq!(std::fs::read(root.join(".git/index")).unwrap(), index);
    }

    /// A build branch for run `run-5678efgh` that changes `README.md`; returns its commit.
    fn built(root: &Path) -> String {
        let applied = apply(
            root,
            "svc",
            "run-5678efgh",
            Some("ev-1"),
            &[edit("README.md", "hello", "hello, world")],
        )
        .unwrap();
        applied.commit.unwrap()
    }

    #[test]
    fn a_branch_the_user_committed_on_or_checked_out_elsewhere_is_not_removed() {
        let dir = repo();
        let root = dir.path();
        let commit = built(root);
        let branch = "spectra/svc/build-5678efgh";
        let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let review = elsewhere.path().join("review");
        git(&["worktree", "add", "-q", review.to_str().unwrap(), branch]);
        let refused = remove_branch(root, "svc", "run-5678efgh", &[]).unwrap_err();
        assert!(
            refused.to_string().contains("checked out in a worktree"),
            "{refused}"
        );
        git(&["worktree", "remove", "--force", review.to_str().unwrap()]);
        // The user adds a commit of their own on top of the build's.
        git(&["switch", "-q", branch]);
        std::fs::write(root.join("mine.txt"), "mine\n").unwrap();
        git(&["add", "mine.txt"]);
        git(&["commit", "-q", "-m", "my fix"]);
        git(&["switch", "-q", "main"]);
        let refused = remove_branch(root, "svc", "run-5678efgh", &[]).unwrap_err();
        assert!(refused.to_string().contains("has moved"), "{refused}");
        let tip = rev(root, &format!("refs/heads/{branch}")).unwrap().unwrap();
        assert_ne!(tip, commit, "the user's commit is still there");
    }

    #[test]
    fn a_merged_build_is_reverted_with_trailers_or_left_alone_when_it_conflicts() {
        let dir = repo();
        let root = dir.path();
        let commit = built(root);
        let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
        git(&["merge", "-q", "--ff-only", "spectra/svc/build-5678efgh"]);
        // The user then edits the same line: the revert conflicts.
        std::fs::write(root.join("README.md"), "hello, everyone\n").unwrap();
        git(&["commit", "-q", "-am", "mine"]);
        let head = rev(root, "HEAD").unwrap();
        let trailers = [("Spectra-Run", "undo-run-1234")];
        let refused = remove_branch(root, "svc", "run-5678efgh", &trailers).unwrap_err();
        assert!(
            refused.to_string().contains("reverting its commit"),
            "{refused}"
        );
        assert_eq!(rev(root, "HEAD").unwrap(), head);
        assert!(rev(root, "REVERT_HEAD").unwrap().is_none());
        assert_eq!(git(&["status", "--porcelain"]), "");
        assert!(
            rev(root, "refs/heads/spectra/svc/build-5678efgh")
                .unwrap()
                .is_some()
        );
        // Without the conflicting edit the revert lands, carrying the undo's trailers.
        git(&["reset", "-q", "--hard", "HEAD~1"]);
        let removed = remove_branch(root, "svc", "run-5678efgh", &trailers).unwrap();
        assert_eq!((removed.action, removed.commit), ("reverted", Some(commit)));
        let message = git(&["log", "-1", "--format=%B"]);
        assert!(message.contains("Spectra-Run: undo-run-1234"), "{message}");
        assert_eq!(
            std::fs::read_to_string(root.join("README.md")).unwrap(),
            "hello\n"
        );
    }

    #[test]
    fn revert_trailers_take_only_plain_ids() {
        assert_eq!(
            revert_trailers(Some("run-5678efgh"), Some("ev-1")).unwrap(),
            [("Spectra-Run", "run-5678efgh"), ("Spectra-Event", "ev-1")]
        );
        assert!(revert_trailers(None, Some("ev\nSpectra-Reverts: x")).is_err());
    }

    #[test]
    fn one_failed_change_applies_none() {
        let dir = repo();
        let root = dir.path();
        let base = head(root).unwrap();
        let changes = [whole("ok.txt", "fine\n"), edit("README.md", "absent", "x")];
        let result = apply(root, "svc", "0000-abcdef12", None, &changes).unwrap();
        assert!(!result.success);
        assert!(result.commit.is_none());
        assert!(
            result.changes[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("another change failed")
        );
        assert!(
            rev(root, "refs/heads/spectra/svc/build-abcdef12")
                .unwrap()
                .is_none()
        );
        assert_eq!(head(root).unwrap(), base);
    }

    #[test]
    fn apply_commits_on_a_branch_and_leaves_the_checkout_alone() {
        let dir = repo();
        let root = dir.path();
        let index_before = std::fs::read(root.join(".git/index")).unwrap();
        let changes = [
            whole("src/new.rs", "pub fn new() {}\n"),
            edit("src/lib.rs", "fn a() {}", "fn a() { b() }"),
            FileChange {
                path: "README.md".into(),
                action: Some("delete".into()),
                ..FileChange::default()
            },
        ];
        let result = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
        assert!(result.success, "{result:?}");
        assert_eq!(result.branch, "spectra/svc/build-1234abcd");
        let commit = result.commit.unwrap();
        let show = |spec: &str| git_env(root, &["show", spec], &[], None).unwrap();
        assert!(show(&format!("{commit}:src/lib.rs")).starts_with("fn a() { b() }"));
        assert_eq!(show(&format!("{commit}:src/new.rs")), "pub fn new() {}");
        assert!(rev(root, &format!("{commit}:README.md")).unwrap().is_none());
        let message = git_env(root, &["log", "-1", "--format=%B", &commit], &[], None).unwrap();
        assert!(message.contains("Spectra-Run: run-1234abcd"), "{message}");
        assert!(message.contains("Spectra-Event: ev-1"), "{message}");
        assert_eq!(
            rev(root, &format!("{commit}^")).unwrap(),
            Some(result.base.clone())
        );
        assert!(
            result.diff_stat.contains("3 files changed"),
            "{}",
            result.diff_stat
        );
        assert_eq!(
            std::fs::read(root.join(".git/index")).unwrap(),
            index_before
        );
        assert_eq!(
            std::fs::read_to_string(root.join("README.md")).unwrap(),
            "hello\n"
        );
        assert!(!root.join("src/new.rs").exists());
        // The same build again changes nothing; removing the branch deletes it.
        let again = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
        assert_eq!(again.commit, Some(commit.clone()));
        let removed = remove_branch(root, "svc", "run-1234abcd", &[]).unwrap();
        assert_eq!((removed.action, removed.commit), ("deleted", Some(commit)));
        assert_eq!(
            remove_branch(root, "svc", "run-1234abcd", &[])
                .unwrap()
                .action,
            "absent"
        );
        // A build branch the user is on is not pulled from under them.
        let again = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
        assert!(again.success);
        git_env(root, &["switch", "-q", &again.branch], &[], None).unwrap();
        let refused = remove_branch(root, "svc", "run-1234abcd", &[]).unwrap_err();
        assert!(refused.to_string().contains("is checked out"), "{refused}");
    }

    #[test]
    fn preview_shows_the_diff_and_writes_no_object() {
        let dir = repo();
        let root = dir.path();
        let count = || git_env(root, &["count-objects", "-v"], &[], None).unwrap();
        let before = count();
        let result = preview(
            root,
            "svc",
            "r-00000001",
            &[whole("brand-new.txt", "unique 8c1f\n")],
        )
        .unwrap();
        assert!(result.success);
        assert!(result.diff.unwrap().contains("+unique 8c1f"));
        assert!(result.diff_stat.contains("brand-new.txt"));
        assert_eq!(count(), before);
    }

    #[test]
    fn run_ids_that_could_not_name_a_branch_are_refused() {
        assert!(check_run("0190f1e2-7b3c-7def-8abc-1234567890ab").is_ok());
        for bad in ["short", "a\nSpectra-Run: x", "--------", "ab/cd/efgh"] {
            assert!(check_run(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branch_names_use_the_random_end_of_the_run_id() {
        assert_eq!(
            branch_name("logs", "0190f1e2-7b3c-7def-8abc-1234567890ab"),
            "spectra/logs/build-567890ab"
        );
    }
}
