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
use crate::store::EVENTS_REF;

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
    #[error("no remote named `{0}`")]
    NoSuchRemote(String),
    #[error("this repository has no remote to share the log with")]
    NoRemote,
    #[error("`git {args}` failed: {reason}")]
    Git { args: String, reason: String },
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("{remote}'s {REMOTE_LOG_REF} is not an event log of git spectra: {what}")]
    NotALog { remote: String, what: String },
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
            SyncError::Git { .. } | SyncError::Spawn(_) => return None,
        })
    }

    /// Whether git itself could not reach the remote or run (fatal, as in git).
    pub fn is_fatal(&self) -> bool {
        matches!(self, SyncError::Git { .. } | SyncError::Spawn(_))
    }
}

/// Runs git in one repository.
pub struct Git {
    dir: PathBuf,
}

impl Git {
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
        let said = [&output.stderr, &output.stdout]
            .into_iter()
            .map(|bytes| String::from_utf8_lossy(bytes).trim().to_string())
            .find(|text| !text.is_empty())
            .unwrap_or_else(|| format!("git exited with {}", output.status));
        Err(SyncError::Git {
            args: args.join(" "),
            reason: said,
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

/// What a fetch found.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    pub remote: String,
    /// The remote-tracking ref.
    pub tracking: String,
    /// Its commit before and after the fetch.
    pub before: Option<String>,
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
        .map(|kind| kind.trim().to_string())
        .unwrap_or_else(|_| "nothing".into());
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
        remote: String,
    },
    InSync {
        remote: String,
    },
    /// Counts are events only one side holds.
    Ahead {
        remote: String,
        ahead: usize,
    },
    Behind {
        remote: String,
        behind: usize,
    },
    Diverged {
        remote: String,
        ahead: usize,
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
    let marker = repo.state_dir().join("remote-log-checked");
    if marker.exists() {
        return None;
    }
    let _ = std::fs::create_dir_all(repo.state_dir());
    let _ = std::fs::write(&marker, "");
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
