//! Changes to the user's own branch, made with git itself.
//!
//! The tool commits the files an activity writes (and later reverts them) by running `git`, not
//! by writing objects itself: the user's hooks, signing, identity and index rules then apply
//! exactly as for their own commits. Only the named paths are committed; whatever else the user
//! has staged stays staged. Undo reverts those commits with `git revert` (a new commit, never a
//! reset), and a revert that conflicts is aborted so the work tree is left as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a change to the user's branch could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    /// A git command failed.
    #[error("`git {args}` failed: {stderr}")]
    Git {
        /// Its arguments.
        args: String,
        /// What git said.
        stderr: String,
    },
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// A revert conflicts with later changes; it was aborted.
    #[error(
        "reverting {} conflicts with later changes to {}; the revert was aborted and the work tree is as it was",
        short(.commit),
        .paths.join(", ")
    )]
    RevertConflict {
        /// The commit being reverted.
        commit: String,
        /// The conflicting paths.
        paths: Vec<String>,
    },
    /// A trailer key has characters other than letters, digits and `-`.
    #[error("trailer `{0}` may hold only letters, digits and `-`")]
    UnsafeTrailer(String),
}

/// The first ten characters of a commit id, for messages.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// A commit the tool made on the user's branch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Committed {
    /// The commit made.
    pub commit: String,
    /// The branch it was made on; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The paths it committed.
    pub files: Vec<String>,
    /// Its full message.
    pub message: String,
}

/// Runs git in the work tree at `root`.
pub struct Worktree {
    root: PathBuf,
    /// The same repository opened in-process, when the caller has it: reading HEAD after a
    /// commit then costs a file read instead of another git process.
    repo: Option<gix::Repository>,
}

impl Worktree {
    /// A work tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Worktree {
        Worktree {
            root: root.into(),
            repo: None,
        }
    }

    /// Reads refs through `repo` (the repository git runs in, opened as git would) instead of
    /// asking `git rev-parse`.
    pub fn with_repo(mut self, repo: gix::Repository) -> Worktree {
        self.repo = Some(repo);
        self
    }

    /// The work tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn git(&self, args: &[&str]) -> Result<String, WorktreeError> {
        self.git_with_env(args, &[])
    }

    fn git_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String, WorktreeError> {
        let output = Command::new("git")
            .current_dir(&self.root)
            .args(args)
            // Reading the status must not rewrite the user's index (git refreshes its stat
            // data opportunistically); locks git needs for a commit or revert are not optional.
            .env("GIT_OPTIONAL_LOCKS", "0")
            .envs(env.iter().copied())
            .output()
            .map_err(WorktreeError::Spawn)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(WorktreeError::Git {
                args: args.join(" "),
                stderr: failure_reason(&output),
            })
        }
    }

    /// Whether `path` (relative to the root) has changes git has not committed, staged or not.
    pub fn has_uncommitted_changes(&self, path: &str) -> Result<bool, WorktreeError> {
        // The usual answers (a path that exists nowhere yet, or a file exactly as committed) are
        // read in-process; anything else is left to `git status`, which knows every rule.
        if let Some(repo) = &self.repo
            && unchanged_in_process(repo, &self.root, path) == Some(true)
        {
            return Ok(false);
        }
        let status = self.git(&["status", "--porcelain", "--untracked-files=all", "--", path])?;
        Ok(!status.trim().is_empty())
    }

    /// Whether `path` is tracked by git.
    pub fn is_tracked(&self, path: &str) -> bool {
        self.git(&["ls-files", "--error-unmatch", "--", path])
            .is_ok()
    }

    /// The current branch, or `None` when HEAD is detached.
    pub fn current_branch(&self) -> Option<String> {
        self.git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
            .map(|name| name.trim().to_string())
    }

    /// Commits exactly `paths` with `message`, leaving anything else the user staged alone.
    pub fn commit_paths(
        &self,
        paths: &[String],
        message: &str,
    ) -> Result<Committed, WorktreeError> {
        // `git commit -- paths` stages paths git already tracks by itself; only new files need
        // `git add` first (a process fewer when a specification is written again).
        let all_tracked = self
            .repo
            .as_ref()
            .is_some_and(|repo| paths.iter().all(|path| tracked_in_process(repo, path)));
        if !all_tracked {
            let mut add = vec!["add", "--"];
            add.extend(paths.iter().map(String::as_str));
            self.git(&add)?;
        }
        // The tool's commit adds a file or two: it does not start git's auto-maintenance (a
        // process that decides whether the repository needs a repack), which the user's own next
        // commit or fetch starts as usual.
        let mut commit = vec![
            "-c",
            "maintenance.auto=false",
            "commit",
            "--quiet",
            "--message",
            message,
            "--",
        ];
        commit.extend(paths.iter().map(String::as_str));
        self.git(&commit)?;
        let (id, branch) = self.head()?;
        Ok(Committed {
            commit: id,
            branch,
            files: paths.to_vec(),
            message: message.lines().next().unwrap_or_default().to_string(),
        })
    }
}

impl Worktree {
    /// The commit HEAD points at and the branch it is on (`None` when detached).
    fn head(&self) -> Result<(String, Option<String>), WorktreeError> {
        if let Some((id, branch)) = self.repo.as_ref().and_then(head_in_process) {
            return Ok((id, branch));
        }
        // One git process for both: the commit and the branch it is on ("HEAD" if detached).
        let head = self.git(&["rev-parse", "HEAD", "--abbrev-ref", "HEAD"])?;
        let mut lines = head.lines();
        let id = lines.next().unwrap_or_default().trim().to_string();
        let branch = lines
            .next()
            .map(str::trim)
            .filter(|name| *name != "HEAD" && !name.is_empty())
            .map(str::to_string);
        Ok((id, branch))
    }

    /// The paths `commit` changed (against its first parent, or everything for a root commit).
    pub fn paths_changed_by(&self, commit: &str) -> Result<Vec<String>, WorktreeError> {
        let out = self.git(&[
            "diff-tree",
            "--root",
            "--no-commit-id",
            "--name-only",
            "-r",
            "-z",
            commit,
        ])?;
        Ok(nul_separated(&out))
    }

    /// Those of `paths` that have uncommitted changes (staged, unstaged or untracked).
    pub fn dirty_paths(&self, paths: &[String]) -> Result<Vec<String>, WorktreeError> {
        let mut dirty = Vec::new();
        for path in paths {
            if self.has_uncommitted_changes(path)? {
                dirty.push(path.clone());
            }
        }
        Ok(dirty)
    }

    /// Paths whose staged content differs from HEAD. `git revert` refuses to run while there are
    /// any, whatever paths the revert touches.
    pub fn staged_paths(&self) -> Result<Vec<String>, WorktreeError> {
        let out = self.git(&["diff", "--cached", "--name-only", "-z", "HEAD", "--"])?;
        Ok(nul_separated(&out))
    }

    /// The subject line of `commit`.
    pub fn subject(&self, commit: &str) -> Result<String, WorktreeError> {
        Ok(self
            .git(&["log", "-1", "--format=%s", commit, "--"])?
            .trim()
            .to_string())
    }

    /// Whether `commit` is HEAD or one of its ancestors (that is, on the checked-out branch).
    pub fn is_on_head(&self, commit: &str) -> bool {
        self.git(&["merge-base", "--is-ancestor", commit, "HEAD"])
            .is_ok()
    }

    /// Reverts `commit` and returns the new commit, whose message is git's own (`Revert
    /// "..."`, `This reverts commit ...`) plus `trailers`. A revert that fails (a conflict, most
    /// often, or a hook that refuses the commit) is undone again, leaving HEAD, the index and the
    /// work tree as they were.
    ///
    /// `git revert --no-commit` applies the change and `git commit` records it, so the user's
    /// `pre-commit` and `commit-msg` hooks, signing and identity apply as to their own commits.
    pub fn revert(&self, commit: &str, trailers: &[(&str, &str)]) -> Result<String, WorktreeError> {
        let message = revert_message(&self.commit_facts(commit)?.unwrap_or_default(), trailers)?;
        if let Err(error) = self.git(&["revert", "--no-commit", "--no-rerere-autoupdate", commit]) {
            return Err(self.abort_revert(commit, error));
        }
        let committed = self.git(&[
            "-c",
            "maintenance.auto=false",
            "commit",
            "--quiet",
            "--message",
            &message,
        ]);
        match committed {
            Ok(_) => Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string()),
            Err(error) => Err(self.abort_revert(commit, error)),
        }
    }

    /// Cleans up after a failed revert and says why it failed.
    fn abort_revert(&self, commit: &str, error: WorktreeError) -> WorktreeError {
        if self
            .git(&["rev-parse", "-q", "--verify", "REVERT_HEAD"])
            .is_err()
        {
            // Refused before it started (dirty index, unknown commit): nothing to clean up.
            return error;
        }
        let conflicted = self
            .git(&["diff", "--name-only", "-z", "--diff-filter=U"])
            .map(|out| nul_separated(&out))
            .unwrap_or_default();
        // `git revert --abort` would also move HEAD back to where the revert started; nothing
        // was committed, so `reset --merge` puts the index and the touched files back alone.
        if let Err(abort_error) = self.git(&["reset", "--quiet", "--merge"]) {
            tracing::warn!(error = %abort_error, "git reset --merge after a failed revert failed");
            return abort_error;
        }
        if conflicted.is_empty() {
            error
        } else {
            WorktreeError::RevertConflict {
                commit: commit.to_string(),
                paths: conflicted,
            }
        }
    }
}

/// How much of git's output a failure reason keeps: enough for any message git or a hook
/// prints, not a whole `git status`.
const REASON_LIMIT: usize = 2000;

/// Why git failed, in its own words: stderr, or stdout when git said it there ("nothing to
/// commit" goes to stdout), trimmed and capped; never empty.
pub(crate) fn failure_reason(output: &std::process::Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    let said = [&output.stderr, &output.stdout]
        .into_iter()
        .map(|bytes| String::from_utf8_lossy(bytes).trim().to_string())
        .find(|text| !text.is_empty());
    match said {
        Some(text) => capped(text, REASON_LIMIT),
        None => match (output.status.code(), output.status.signal()) {
            (Some(code), _) => format!("git exited with status {code} and printed nothing"),
            (None, Some(signal)) => {
                format!("git was killed by signal {signal} and printed nothing")
            }
            (None, None) => "git failed and printed nothing".to_string(),
        },
    }
}

/// `text` cut to at most `limit` bytes (at a character boundary), marked when it was cut.
fn capped(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" [...]");
    text
}

/// What a commit says about itself: its subject, body and the `Spectra-*` trailers it carries.
/// Undo trusts these, not the event that names the commit: a commit only counts as the tool's
/// when its own trailers say which run and event made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitFacts {
    /// The commit's id.
    pub commit: String,
    /// The first line of its message.
    pub subject: String,
    /// The whole message.
    pub message: String,
    /// `Spectra-Run` values.
    pub runs: Vec<String>,
    /// `Spectra-Event` values.
    pub events: Vec<String>,
    /// `Spectra-Reverts` values.
    pub reverts: Vec<String>,
}

impl CommitFacts {
    /// Whether the message is git's revert message for `commit` ("This reverts commit <id>.").
    pub fn reverts_commit(&self, commit: &str) -> bool {
        !commit.is_empty()
            && self
                .message
                .contains(&format!("This reverts commit {commit}"))
    }
}

/// `git log --format` for [`CommitFacts`]: fields split by NUL, records ended by RS, trailer
/// values by US.
const FACTS_FORMAT: &str = "--format=%H%x00%s%x00%(trailers:key=Spectra-Run,valueonly,separator=%x1f)%x00%(trailers:key=Spectra-Event,valueonly,separator=%x1f)%x00%(trailers:key=Spectra-Reverts,valueonly,separator=%x1f)%x00%B%x1e";

fn parse_facts(out: &str) -> Vec<CommitFacts> {
    let values = |text: &str| -> Vec<String> {
        text.split('\x1f')
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect()
    };
    out.split('\x1e')
        .filter_map(|record| {
            let mut fields = record.trim_start_matches('\n').splitn(6, '\0');
            let commit = fields.next()?.trim().to_string();
            if commit.is_empty() {
                return None;
            }
            Some(CommitFacts {
                commit,
                subject: fields.next()?.to_string(),
                runs: values(fields.next()?),
                events: values(fields.next()?),
                reverts: values(fields.next()?),
                message: fields.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

impl Worktree {
    /// What `commit` says about itself; `None` when the repository has no such commit.
    pub fn commit_facts(&self, commit: &str) -> Result<Option<CommitFacts>, WorktreeError> {
        let object = format!("{commit}^{{commit}}");
        if self
            .git(&["rev-parse", "--quiet", "--verify", &object])
            .is_err()
        {
            return Ok(None);
        }
        let out = self.git(&["log", "-1", "--no-walk", FACTS_FORMAT, &object, "--"])?;
        Ok(parse_facts(&out).into_iter().next())
    }

    /// The newest commit of `tip`'s history after `since` (all of it when `None`) that `wanted`
    /// accepts: how the tool finds the effects of a run that died before recording them.
    pub fn find_commit(
        &self,
        since: Option<&str>,
        tip: &str,
        wanted: impl Fn(&CommitFacts) -> bool,
    ) -> Result<Option<CommitFacts>, WorktreeError> {
        let range = match since {
            Some(since)
                if self
                    .git(&["rev-parse", "--quiet", "--verify", since])
                    .is_ok() =>
            {
                format!("{since}..{tip}")
            }
            _ => tip.to_string(),
        };
        let out = self.git(&["log", FACTS_FORMAT, &range, "--"])?;
        Ok(parse_facts(&out).into_iter().find(|facts| wanted(facts)))
    }

    /// The newest commit of HEAD's history that changed `path`, if any did.
    pub fn last_commit_of(&self, path: &str) -> Option<String> {
        self.git(&["log", "-1", "--format=%H", "HEAD", "--", path])
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
    }

    /// The commit HEAD points at and its branch (`None` when detached); `None` before the first
    /// commit.
    pub fn head_commit(&self) -> Option<(String, Option<String>)> {
        self.head()
            .ok()
            .filter(|(id, _)| !id.is_empty() && id != "HEAD")
    }

    /// The blob id of the file at `path` as it is on disk (not through git's filters), or
    /// `None` when it cannot be read.
    pub fn blob_id_of_file(&self, path: &str) -> Option<String> {
        self.git(&["hash-object", "--no-filters", "--", path])
            .ok()
            .map(|id| id.trim().to_string())
    }

    /// Puts `path` back as HEAD has it (or removes it, and its index entry, when HEAD has none):
    /// the way back from a file the tool wrote and then could not commit. Only for a path that
    /// was unchanged before the tool wrote it.
    pub fn restore_path(&self, path: &str) -> Result<(), WorktreeError> {
        let in_head = self
            .git(&["cat-file", "-e", &format!("HEAD:{path}")])
            .is_ok();
        if in_head {
            self.git(&["checkout", "--quiet", "HEAD", "--", path])?;
        } else {
            self.git(&["rm", "--cached", "--quiet", "--ignore-unmatch", "--", path])?;
            match std::fs::remove_file(self.root.join(path)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(WorktreeError::Spawn(error));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A git operation the user has in progress, during which the tool commits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// "a merge", "a rebase", ...
    pub what: &'static str,
    /// How to finish or abandon it.
    pub how_to_finish: &'static str,
}

/// The merge, rebase, cherry-pick, revert, bisect or `git am` in progress in `repo`, if any.
pub fn operation_in_progress(repo: &gix::Repository) -> Option<Operation> {
    use gix::state::InProgress as P;
    let (what, how_to_finish) = match repo.state()? {
        P::Merge => (
            "a merge",
            "finish it with `git commit` or abandon it with `git merge --abort`",
        ),
        P::Rebase | P::RebaseInteractive => (
            "a rebase",
            "finish it with `git rebase --continue` or abandon it with `git rebase --abort`",
        ),
        P::CherryPick | P::CherryPickSequence => (
            "a cherry-pick",
            "finish it with `git cherry-pick --continue` or abandon it with `git cherry-pick --abort`",
        ),
        P::Revert | P::RevertSequence => (
            "a revert",
            "finish it with `git revert --continue` or abandon it with `git revert --abort`",
        ),
        P::Bisect => ("a bisect", "end it with `git bisect reset`"),
        P::ApplyMailbox | P::ApplyMailboxRebase => (
            "a `git am`",
            "finish it with `git am --continue` or abandon it with `git am --abort`",
        ),
    };
    Some(Operation {
        what,
        how_to_finish,
    })
}

/// git's revert message for the commit `facts` describes, with `trailers` appended. Keys and
/// values are checked to be single plain words, so they stay exactly one trailer each.
fn revert_message(facts: &CommitFacts, trailers: &[(&str, &str)]) -> Result<String, WorktreeError> {
    // git's own wording: reverting a revert is a reapply.
    let subject = match facts
        .subject
        .strip_prefix("Revert \"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(original) => format!("Reapply \"{original}\""),
        None => format!("Revert \"{}\"", facts.subject),
    };
    let mut message = format!("{subject}\n\nThis reverts commit {}.\n\n", facts.commit);
    for (key, value) in trailers {
        for word in [key, value] {
            let safe =
                !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !safe {
                return Err(WorktreeError::UnsafeTrailer(word.to_string()));
            }
        }
        message.push_str(&format!("{key}: {value}\n"));
    }
    Ok(message)
}

/// `Some(true)` when `path` is plainly unchanged: absent from the work tree, the index and HEAD,
/// or one plain (non-executable) file with the same content in all three. `None` whenever that
/// cannot be told without git's full rules (conflicts, a sparse index, modes, filters that make
/// the bytes differ): the caller then asks `git status`.
fn unchanged_in_process(repo: &gix::Repository, root: &Path, path: &str) -> Option<bool> {
    let index = repo.try_index().ok()?;
    let staged: Vec<&gix::index::Entry> = match &index {
        Some(index) if index.is_sparse() => return None,
        Some(index) => entries_at(index, path),
        None => Vec::new(),
    };
    let head_tree = repo.find_tree(repo.head_tree_id_or_empty().ok()?).ok()?;
    let committed = head_tree.lookup_entry_by_path(path).ok()?;
    let on_disk = match std::fs::symlink_metadata(root.join(path)) {
        Ok(meta) => Some(meta),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => return None,
    };
    match (on_disk, staged.as_slice(), committed) {
        (None, [], None) => Some(true),
        (Some(meta), [staged], Some(committed)) => {
            use std::os::unix::fs::PermissionsExt;
            let plain = meta.is_file()
                && meta.permissions().mode() & 0o111 == 0
                && staged.stage_raw() == 0
                && staged.mode == gix::index::entry::Mode::FILE
                && committed.mode().kind() == gix::object::tree::EntryKind::Blob;
            if !plain || staged.id != committed.object_id() {
                return None;
            }
            let bytes = std::fs::read(root.join(path)).ok()?;
            let on_disk =
                gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, &bytes).ok()?;
            (on_disk == staged.id).then_some(true)
        }
        _ => None,
    }
}

/// Whether the index holds `path` as one plain, unconflicted entry, so that `git commit -- path`
/// takes its work-tree content without `git add`. `false` when in doubt (no index, a sparse
/// index, a conflict, a skip-worktree entry): the caller then runs `git add`, which is always
/// right.
fn tracked_in_process(repo: &gix::Repository, path: &str) -> bool {
    let Ok(Some(index)) = repo.try_index() else {
        return false;
    };
    if index.is_sparse() {
        return false;
    }
    // A skip-worktree entry (sparse checkout) is committed from the index, not from the file we
    // wrote: `git add` must run, and refuse it, as before.
    matches!(entries_at(&index, path).as_slice(), [entry]
        if entry.stage_raw() == 0 && !entry.flags.contains(gix::index::entry::Flags::SKIP_WORKTREE))
}

/// The index entries of exactly `path`: one, or one per stage of a conflict, or none.
fn entries_at<'i>(index: &'i gix::index::File, path: &str) -> Vec<&'i gix::index::Entry> {
    use gix::bstr::ByteSlice;
    let path = path.as_bytes().as_bstr();
    index
        .prefixed_entries(path)
        .unwrap_or_default()
        .iter()
        .filter(|entry| entry.path(index) == path)
        .collect()
}

/// HEAD's commit and short branch name, read from the ref files; `None` if anything is odd (the
/// caller then asks git).
fn head_in_process(repo: &gix::Repository) -> Option<(String, Option<String>)> {
    let head = repo.head().ok()?;
    let id = head.id()?.detach().to_string();
    let branch = head.referent_name().map(|name| name.shorten().to_string());
    Some((id, branch))
}

fn nul_separated(out: &str) -> Vec<String> {
    out.split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{ExitStatus, Output};

    use super::*;

    fn failed(stdout: &str, stderr: &str) -> Output {
        Output {
            // A wait status: exit code 1.
            status: ExitStatus::from_raw(1 << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_failure_reason_is_stderr_else_stdout_else_says_nothing_was_printed() {
        assert_eq!(
            failure_reason(&failed("on stdout\n", "  on stderr\n")),
            "on stderr"
        );
        assert_eq!(
            failure_reason(&failed("nothing to commit, working tree clean\n", "\n")),
            "nothing to commit, working tree clean"
        );
        assert_eq!(
            failure_reason(&failed("", "")),
            "git exited with status 1 and printed nothing"
        );
        let killed = Output {
            status: ExitStatus::from_raw(9),
            ..failed("", "")
        };
        assert_eq!(
            failure_reason(&killed),
            "git was killed by signal 9 and printed nothing"
        );
    }

    #[test]
    fn a_long_failure_reason_is_cut_at_a_character_boundary() {
        let reason = failure_reason(&failed(&"é".repeat(REASON_LIMIT), ""));
        assert!(reason.ends_with(" [...]"), "{reason}");
        assert!(reason.len() <= REASON_LIMIT + " [...]".len());
    }
}
