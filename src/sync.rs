//! Sharing the event log through a git remote: fetching it into a remote-tracking ref,
//! knowing where the local log stands against it, and pushing it back as a fast-forward.
//!
//! Everything goes through the `git` CLI, so it works with any host git can reach (a bare
//! repository, GitHub, GitLab, Gerrit) and the user's credentials and transport settings apply.
//! The remote's `refs/spectra/events` is fetched into `refs/spectra/remotes/<remote>/events`,
//! forced there as `refs/remotes/*` are, since that ref only mirrors the remote; the local log
//! is never touched by a fetch and never forced by anything. Joining two logs is the store's
//! merge ([`crate::store::Store::merge_log`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Serialize;

use crate::repo::Repo;
use crate::store::{EVENTS_REF, Merged, Store};

pub use conflicts::{Unresolved, open_conflicts, unresolved_conflicts};

mod conflicts;

/// The log's name on every remote.
pub const REMOTE_LOG_REF: &str = EVENTS_REF;

/// Where the log of `remote` is mirrored locally.
pub fn tracking_ref(remote: &str) -> String {
    format!("refs/spectra/remotes/{remote}/events")
}

/// The fetch refspec `sync --setup` adds to `remote.<name>.fetch`.
pub fn fetch_refspec(remote: &str) -> String {
    format!("+{REMOTE_LOG_REF}:{}", tracking_ref(remote))
}

/// Why sharing the log failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote named does not exist.
    #[error("no remote named `{0}`")]
    NoSuchRemote(String),
    /// The repository has no remote at all.
    #[error("this repository has no remote to share the log with")]
    NoRemote,
    /// A git command failed.
    #[error("`git {args}` failed: {reason}")]
    Git {
        /// Its arguments.
        args: String,
        /// What went wrong.
        reason: String,
    },
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// The remote's ref does not hold an event log of this tool.
    #[error("{remote}'s {REMOTE_LOG_REF} is not an event log of git spectra: {what}")]
    NotALog {
        /// The remote.
        remote: String,
        /// What is wrong with it.
        what: String,
    },
    /// The remote's log is needed but was never fetched.
    #[error("{remote}'s log was never fetched")]
    NotFetched {
        /// The remote.
        remote: String,
    },
    /// The local log could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl SyncError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SyncError::NoSuchRemote(_) | SyncError::NoRemote => {
                "`git remote -v` lists the remotes; `git remote add origin URL` adds one".into()
            }
            SyncError::NotALog { remote, .. } => format!(
                "nothing was fetched into the local log; ask who owns {remote} what {REMOTE_LOG_REF} holds there"
            ),
            SyncError::NotFetched { remote } => format!("`git spectra fetch {remote}` brings it"),
            SyncError::Store(error) => return error.hint(),
            SyncError::Git { .. } | SyncError::Spawn(_) => return None,
        })
    }

    /// Whether git itself could not reach the remote or run (fatal, as in git).
    pub fn is_fatal(&self) -> bool {
        matches!(self, SyncError::Git { .. } | SyncError::Spawn(_))
    }
}

impl crate::failure::Classify for SyncError {
    fn class(&self) -> crate::failure::Class {
        match self {
            SyncError::Store(error) => crate::failure::Classify::class(error),
            // git could not reach the remote: fatal, as git's own fetch is.
            error if error.is_fatal() => crate::failure::Class::Fatal,
            _ => crate::failure::Class::Failed,
        }
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
}

/// Runs git in one repository.
pub struct Git {
    dir: PathBuf,
}

impl Git {
    /// Runs git in `repo`'s work tree, or its git dir when it has none.
    pub fn new(repo: &Repo) -> Git {
        Git {
            dir: repo
                .work_tree()
                .unwrap_or_else(|| repo.git_dir())
                .to_path_buf(),
        }
    }

    fn output(&self, args: &[&str]) -> Result<Output, SyncError> {
        Command::new("git")
            .current_dir(&self.dir)
            .args(args)
            // A remote that wants a password fails instead of waiting for one.
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(SyncError::Spawn)
    }

    /// stdout of `git args`, or why it failed in git's own words.
    pub fn run(&self, args: &[&str]) -> Result<String, SyncError> {
        let output = self.output(args)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        Err(SyncError::Git {
            args: args.join(" "),
            reason: crate::worktree::failure_reason(&output),
        })
    }

    /// The commit `name` points at, if it exists.
    pub fn resolve(&self, name: &str) -> Option<String> {
        self.run(&[
            "rev-parse",
            "--quiet",
            "--verify",
            &format!("{name}^{{commit}}"),
        ])
        .ok()
        .map(|out| out.trim().to_string())
        .filter(|id| !id.is_empty())
    }

    /// Where git runs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The remote to use: the one named, else the current branch's, else `origin`.
pub fn choose_remote(git: &Git, named: Option<&str>) -> Result<String, SyncError> {
    let remotes: Vec<String> = git
        .run(&["remote"])?
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(named) = named {
        return if remotes.iter().any(|r| r == named) {
            Ok(named.to_string())
        } else {
            Err(SyncError::NoSuchRemote(named.to_string()))
        };
    }
    let branch_remote = git
        .run(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .ok()
        .and_then(|branch| {
            git.run(&[
                "config",
                "--get",
                &format!("branch.{}.remote", branch.trim()),
            ])
            .ok()
        })
        .map(|remote| remote.trim().to_string())
        .filter(|remote| remotes.contains(remote));
    branch_remote
        .or_else(|| remotes.iter().find(|r| *r == "origin").cloned())
        .or_else(|| (remotes.len() == 1).then(|| remotes[0].clone()))
        .ok_or(SyncError::NoRemote)
}

/// Notes that the remote's log was looked for (or is being fetched), so that
/// [`unfetched_remote_log`] asks no more; `false` when it was noted already.
pub fn remember_remote_checked(repo: &Repo) -> bool {
    let marker = repo.state_dir().join("remote-log-checked");
    if marker.exists() {
        return false;
    }
    let _ = std::fs::create_dir_all(repo.state_dir());
    let _ = std::fs::write(&marker, "");
    true
}

/// What a fetch found.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    /// The remote fetched from.
    pub remote: String,
    /// The remote-tracking ref.
    pub tracking: String,
    /// Its commit before the fetch.
    pub before: Option<String>,
    /// Its commit after the fetch.
    pub after: Option<String>,
    /// Events the fetch brought that the tracking ref did not have.
    pub new_events: usize,
    /// False when the remote has no log at all.
    pub remote_has_log: bool,
}

/// Fetches `remote`'s log into its remote-tracking ref; the local log is not touched. A remote
/// without a log is not an error. What the remote holds under the log's name must be one of
/// our logs, else the tracking ref is put back and the fetch refused.
pub fn fetch(git: &Git, remote: &str) -> Result<Fetched, SyncError> {
    let tracking = tracking_ref(remote);
    let before = git.resolve(&tracking);
    let advertised = git.run(&["ls-remote", remote, REMOTE_LOG_REF])?;
    if advertised.trim().is_empty() {
        return Ok(Fetched {
            remote: remote.to_string(),
            tracking,
            before: before.clone(),
            after: before,
            new_events: 0,
            remote_has_log: false,
        });
    }
    git.run(&[
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        remote,
        &fetch_refspec(remote),
    ])?;
    if let Err(what) = looks_like_a_log(git, &tracking) {
        put_back(git, &tracking, before.as_deref());
        return Err(SyncError::NotALog {
            remote: remote.to_string(),
            what,
        });
    }
    let after = git.resolve(&tracking);
    let new_events = match (&before, &after) {
        (_, None) => 0,
        (Some(before), Some(after)) if before == after => 0,
        (Some(before), Some(after)) => count_commits(git, &[after.as_str(), &format!("^{before}")]),
        (None, Some(after)) => count_commits(git, &[after.as_str()]),
    };
    Ok(Fetched {
        remote: remote.to_string(),
        tracking,
        before,
        after,
        new_events,
        remote_has_log: true,
    })
}

/// `Err(what it is)` unless `name` is a commit that carries an event's trailers.
fn looks_like_a_log(git: &Git, name: &str) -> Result<(), String> {
    let kind = git
        .run(&["cat-file", "-t", name])
        .map_or_else(|_| "nothing".into(), |kind| kind.trim().to_string());
    if kind != "commit" {
        return Err(format!("it is a {kind}, not a commit"));
    }
    let trailers = git
        .run(&[
            "log",
            "-1",
            "--format=%(trailers:key=Spectra-Digest,valueonly)",
            name,
            "--",
        ])
        .unwrap_or_default();
    if trailers.trim().is_empty() {
        let subject = git
            .run(&["log", "-1", "--format=%s", name, "--"])
            .unwrap_or_default();
        return Err(format!(
            "its newest commit \"{}\" has no Spectra-Digest trailer (a branch pushed there by mistake?)",
            subject.trim()
        ));
    }
    Ok(())
}

/// Puts the tracking ref back where it was (or removes it).
fn put_back(git: &Git, tracking: &str, before: Option<&str>) {
    let restored = match before {
        Some(before) => git.run(&[
            "update-ref",
            "-m",
            "spectra fetch: refused",
            tracking,
            before,
        ]),
        None => git.run(&["update-ref", "-d", tracking]),
    };
    if let Err(error) = restored {
        tracing::warn!(%error, "cannot put the remote-tracking log back");
    }
}

fn count_commits(git: &Git, revisions: &[&str]) -> usize {
    let mut args = vec!["rev-list", "--count"];
    args.extend_from_slice(revisions);
    args.push("--");
    git.run(&args)
        .ok()
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

/// Adds the log's fetch refspec to `remote.<remote>.fetch`, so that a plain `git fetch` brings
/// it too; `false` when it was there already. Never adds a push refspec: that would change
/// what a plain `git push` pushes.
pub fn setup(git: &Git, remote: &str) -> Result<bool, SyncError> {
    let key = format!("remote.{remote}.fetch");
    let refspec = fetch_refspec(remote);
    let present = git
        .run(&["config", "--get-all", &key])
        .unwrap_or_default()
        .lines()
        .any(|line| line.trim() == refspec);
    if present {
        return Ok(false);
    }
    git.run(&["config", "--add", &key, &refspec])?;
    Ok(true)
}

/// Where the local log stands against a remote's, from what was last fetched (no network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// The remote's log was never fetched into this clone.
    NeverFetched {
        /// The remote.
        remote: String,
    },
    /// Both logs hold the same events.
    InSync {
        /// The remote.
        remote: String,
    },
    /// Counts are events only one side holds.
    Ahead {
        /// The remote.
        remote: String,
        /// Events only the local log holds.
        ahead: usize,
    },
    /// The remote's log holds events the local one lacks.
    Behind {
        /// The remote.
        remote: String,
        /// Events only the remote's log holds.
        behind: usize,
    },
    /// Both sides hold events the other lacks.
    Diverged {
        /// The remote.
        remote: String,
        /// Events only the local log holds.
        ahead: usize,
        /// Events only the remote's log holds.
        behind: usize,
    },
}

/// The standing of the local log against `remote`'s last fetched log.
pub fn standing(git: &Git, remote: &str) -> Standing {
    let remote_name = remote.to_string();
    let Some(theirs) = git.resolve(&tracking_ref(remote)) else {
        return Standing::NeverFetched {
            remote: remote_name,
        };
    };
    let Some(ours) = git.resolve(EVENTS_REF) else {
        let behind = count_commits(git, &[theirs.as_str()]);
        return Standing::Behind {
            remote: remote_name,
            behind,
        };
    };
    let counts = git
        .run(&[
            "rev-list",
            "--left-right",
            "--count",
            &format!("{ours}...{theirs}"),
            "--",
        ])
        .unwrap_or_default();
    let mut numbers = counts
        .split_whitespace()
        .filter_map(|n| n.parse::<usize>().ok());
    let (ahead, behind) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    match (ahead, behind) {
        (0, 0) => Standing::InSync {
            remote: remote_name,
        },
        (ahead, 0) => Standing::Ahead {
            remote: remote_name,
            ahead,
        },
        (0, behind) => Standing::Behind {
            remote: remote_name,
            behind,
        },
        (ahead, behind) => Standing::Diverged {
            remote: remote_name,
            ahead,
            behind,
        },
    }
}

/// Once per clone, for a caller whose local log is empty, when no remote log was ever fetched:
/// asks the
/// default remote whether it has a log, so that the first command after `git clone` can say
/// so. The answer is remembered (a file in the state dir), so the network is asked once.
pub fn unfetched_remote_log(repo: &Repo, git: &Git) -> Option<String> {
    if !remember_remote_checked(repo) {
        return None;
    }
    let tracked = git
        .run(&[
            "for-each-ref",
            "--count=1",
            "--format=%(refname)",
            "refs/spectra/remotes/",
        ])
        .unwrap_or_default();
    if !tracked.trim().is_empty() {
        return None;
    }
    let remote = choose_remote(git, None).ok()?;
    let advertised = git.run(&["ls-remote", &remote, REMOTE_LOG_REF]).ok()?;
    (!advertised.trim().is_empty()).then_some(remote)
}

/// What joining a remote's log into the local one did, for people and for `--format json`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Joined {
    /// The remote had nothing the local log lacked.
    UpToDate,
    /// The local log lacked only what the remote had; it now points at the remote's tip.
    FastForward {
        /// Events the local log gained.
        events: usize,
    },
    /// Both sides had new events; a `log.merged` event joins them.
    Merged {
        /// The `log.merged` event.
        event: String,
        /// Events only the local log held, since the merge base.
        ours_events: usize,
        /// Events only the remote's log held, since the merge base.
        theirs_events: usize,
        /// Results both sides decided for the same service and activity.
        conflicts: Vec<crate::store::Conflict>,
    },
}

/// Joins `remote`'s fetched log into the local log (see [`Store::merge_log`]).
pub fn merge(git: &Git, store: &Store, remote: &str) -> Result<Joined, SyncError> {
    let theirs = git
        .resolve(&tracking_ref(remote))
        .ok_or_else(|| SyncError::NotFetched {
            remote: remote.to_string(),
        })?;
    merge_tip(store, remote, &theirs)
}

/// Joins the log ending at `theirs` (a commit id) into the local log.
pub fn merge_tip(store: &Store, remote: &str, theirs: &str) -> Result<Joined, SyncError> {
    let theirs =
        gix::ObjectId::from_hex(theirs.as_bytes()).map_err(|error| SyncError::NotALog {
            remote: remote.to_string(),
            what: format!("`{theirs}` is not a commit id ({error})"),
        })?;
    Ok(match store.merge_log(theirs, remote)? {
        Merged::UpToDate => Joined::UpToDate,
        Merged::FastForward { events, .. } => Joined::FastForward { events },
        Merged::Merged {
            event,
            ours_events,
            theirs_events,
            conflicts,
        } => Joined::Merged {
            event: event.event.id,
            ours_events,
            theirs_events,
            conflicts,
        },
    })
}

/// What `git spectra sync` did.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    /// The remote synced with.
    pub remote: String,
    /// Events the local log gained from the remote.
    pub events_in: usize,
    /// Events the push sent.
    pub events_out: usize,
    /// What the fetch found.
    pub fetched: Fetched,
    /// How the logs were joined.
    pub joined: Joined,
    /// What the push did.
    pub pushed: Pushed,
}

/// Fetch, merge, push: the remote and the local log hold the same events afterwards (unless
/// another clone pushed in between, which the next sync brings).
pub fn sync(git: &Git, store: &Store, remote: &str) -> Result<Synced, SyncError> {
    let fetched = fetch(git, remote)?;
    let joined = if fetched.remote_has_log {
        merge(git, store, remote)?
    } else {
        Joined::UpToDate
    };
    let pushed = push_merging(git, store, remote)?;
    let events_in = match &joined {
        Joined::UpToDate => 0,
        Joined::FastForward { events } => *events,
        Joined::Merged { theirs_events, .. } => *theirs_events,
    };
    Ok(Synced {
        remote: remote.to_string(),
        events_in,
        events_out: pushed.events,
        fetched,
        joined,
        pushed,
    })
}

/// [`push`], merging what the remote gained meanwhile into the local log before each retry.
pub fn push_merging(git: &Git, store: &Store, remote: &str) -> Result<Pushed, SyncError> {
    push(git, remote, |theirs| {
        merge_tip(store, remote, theirs).map(|_| ())
    })
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The remote pushed to.
    pub remote: String,
    /// The commit the remote's log points at now; `None` when there was nothing to push.
    pub tip: Option<String>,
    /// Events the remote did not have before.
    pub events: usize,
    /// Rounds of fetch and merge it took because the remote had moved meanwhile.
    pub merges: usize,
}

/// How many times a push fetches, merges and tries again when the remote moved meanwhile.
const PUSH_ATTEMPTS: usize = 8;

/// Pushes the local log to `remote`'s `refs/spectra/events` as a fast-forward only (never
/// forced). When the remote moved meanwhile (another clone pushed), `catch_up` is called with
/// the remote's new tip, fetched into the tracking ref, to merge it into the local log, and the
/// push is tried again, a bounded number of times with a growing, jittered pause, so that two
/// clones pushing at the same moment both land.
pub fn push(
    git: &Git,
    remote: &str,
    mut catch_up: impl FnMut(&str) -> Result<(), SyncError>,
) -> Result<Pushed, SyncError> {
    let mut merges = 0;
    let before = git.resolve(&tracking_ref(remote));
    for attempt in 1..=PUSH_ATTEMPTS {
        let Some(local) = git.resolve(EVENTS_REF) else {
            return Ok(Pushed {
                remote: remote.to_string(),
                tip: None,
                events: 0,
                merges,
            });
        };
        let refspec = format!("{local}:{REMOTE_LOG_REF}");
        let pushed = git.output(&["push", "--porcelain", "--quiet", remote, &refspec])?;
        if pushed.status.success() {
            // The tracking ref mirrors what the remote now has.
            let _ = git.run(&[
                "update-ref",
                "-m",
                "spectra push",
                &tracking_ref(remote),
                &local,
            ]);
            let events = match &before {
                Some(before) => count_commits(git, &[local.as_str(), &format!("^{before}")]),
                None => count_commits(git, &[local.as_str()]),
            };
            return Ok(Pushed {
                remote: remote.to_string(),
                tip: Some(local),
                events,
                merges,
            });
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&pushed.stdout),
            String::from_utf8_lossy(&pushed.stderr)
        );
        if !remote_moved(&said) || attempt == PUSH_ATTEMPTS {
            return Err(SyncError::Git {
                args: format!("push {remote} {refspec}"),
                reason: said.trim().to_string(),
            });
        }
        let fetched = fetch(git, remote)?;
        if let Some(theirs) = &fetched.after {
            catch_up(theirs)?;
            merges += 1;
        }
        std::thread::sleep(push_backoff(attempt));
    }
    unreachable!("the last attempt returns")
}

/// Whether a refused push says the remote's log moved (a non-fast-forward, or a ref lock
/// another push held), as opposed to any other failure.
fn remote_moved(said: &str) -> bool {
    [
        "non-fast-forward",
        "fetch first",
        "cannot lock ref",
        "failed to update ref",
        "stale info",
    ]
    .iter()
    .any(|sign| said.contains(sign))
}

/// A full-jitter pause that grows with each attempt, capped at a second: a push takes a
/// round trip, so clones that raced wait longer than the store's appenders do.
fn push_backoff(attempt: usize) -> std::time::Duration {
    use std::time::Duration;
    let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
    crate::backoff::Backoff {
        base: Duration::from_millis(50),
        cap: Duration::from_secs(1),
    }
    .pause(attempt.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn only_remote_moves_are_retried() {
        assert!(remote_moved(
            "!\trefs/heads/x:refs/spectra/events\t[rejected] (non-fast-forward)"
        ));
        assert!(remote_moved("! [rejected] (fetch first)"));
        assert!(!remote_moved(
            "fatal: could not read from remote repository"
        ));
        assert!(push_backoff(40) <= std::time::Duration::from_secs(1));
    }
}
