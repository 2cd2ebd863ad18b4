//! The built-in playbooks' work, reached as `git spectra builtin NAME ...`.
//!
//! Default playbooks are real argv playbooks like any other (`["{spectra}", "builtin", ...]`),
//! so they go through the same runner, timeout, capture and audit; this module is what they
//! run. The runner calls the read-only ones (inventory, catalog lookup) directly rather than
//! through a second process (see `playbook::in_process`). Each function works in the repository root it is given (the runner's cwd) and returns a
//! serializable result that the CLI prints as one JSON object on stdout.

pub mod branch;
pub mod catalog;
pub mod changes;
pub mod checkouts;
pub mod inventory;
pub mod probe;
pub mod release;
pub mod spec;
pub mod tests;

use std::path::PathBuf;

/// Why a built-in playbook failed.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// The service name breaks the naming rule.
    #[error("not a valid service name: {problem}; {}", crate::service_name::RULE)]
    ServiceName {
        /// Which part of the rule it breaks.
        problem: String,
    },
    /// The service catalog is not valid YAML of the expected shape.
    #[error("{file}:{position}: {message}")]
    Catalog {
        /// The catalog file, relative to the repository root.
        file: String,
        /// Where in the file.
        position: crate::yaml::Position,
        /// What is wrong there.
        message: String,
    },
    /// A path given to the playbook leaves the repository.
    #[error("path `{path}` {reason}")]
    PathEscapes {
        /// The path, as given.
        path: String,
        /// How it leaves the repository.
        reason: String,
    },
    /// The specification file exists with other content.
    #[error("{} already exists with different content; not overwriting it", .0.display())]
    SpecConflict(PathBuf),
    /// The specification file was edited after it was written, so undo leaves it.
    #[error("{} changed since it was written; not removing it", .0.display())]
    SpecChanged(PathBuf),
    /// The branch exists and points elsewhere.
    #[error("branch `{branch}` already exists at {existing}, not at {wanted}")]
    BranchConflict {
        /// The branch's name.
        branch: String,
        /// The commit it points at now.
        existing: String,
        /// The commit it was to point at.
        wanted: String,
    },
    /// The release version is not a semantic version.
    #[error("not a semantic version: {reason}")]
    Version {
        /// Why not.
        reason: String,
    },
    /// The release tag exists already: a release is made once.
    #[error("tag `{tag}` already exists (at {commit}); a release is tagged once")]
    TagExists {
        /// The tag.
        tag: String,
        /// The commit it points at.
        commit: String,
    },
    /// The service's URLs could not be probed at all.
    #[error("cannot probe the service: {message}")]
    Probe {
        /// Why.
        message: String,
    },
    /// A git command failed.
    #[error("`{command}` failed: {stderr}")]
    Git {
        /// The git command, as written.
        command: String,
        /// What git said.
        stderr: String,
    },
    /// A build's list of changes cannot be applied at all (none, too many, not a list, no
    /// commit to apply them to); a single change that fails is a result, not this error.
    #[error("{message}")]
    Changes {
        /// What is wrong.
        message: String,
    },
    /// No test command is configured or detected.
    #[error(
        "no test command: set `git config spectra.test.command` or add a Cargo.toml, package.json, go.mod, pyproject.toml or Makefile"
    )]
    NoTestCommand,
    /// A command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command, as written.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl crate::failure::Classify for BuiltinError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Failed
    }

    fn hints(&self) -> Vec<String> {
        let hint = match self {
            BuiltinError::NoTestCommand => {
                "for example: git config spectra.test.command \"cargo test --workspace\""
            }
            BuiltinError::SpecConflict(_) => {
                "edit the existing file by hand, or write the specification to another path"
            }
            _ => return Vec::new(),
        };
        vec![hint.into()]
    }
}

impl BuiltinError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuiltinError {
        let path = path.into();
        move |source| BuiltinError::Io { path, source }
    }
}

/// Checks the one service naming rule ([`crate::service_name::validate`]), the same that
/// discover applies, so a name one accepts the other does too.
pub fn check_service_name(name: &str) -> Result<(), BuiltinError> {
    crate::service_name::validate(name).map_err(|problem| BuiltinError::ServiceName { problem })
}

/// The value of `key` in the repository at `root` as `git config` reads it (repository, global
/// and `git -c`, which reaches us in `GIT_CONFIG_PARAMETERS`), `None` when unset or empty.
pub fn git_config(root: &std::path::Path, key: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["config", "--get", key])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let value = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// The keys matching the regular expression `pattern` that have a non-empty value in the
/// repository at `root` (lowercased, as git prints them), each once, in git's order.
pub fn git_config_keys_matching(root: &std::path::Path, pattern: &str) -> Vec<String> {
    let Some(output) = std::process::Command::new("git")
        .args(["config", "--get-regexp", pattern])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success())
    else {
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some((key, value)) = line.split_once(' ')
            && !value.trim().is_empty()
            && !keys.iter().any(|known| known == key)
        {
            keys.push(key.to_string());
        }
    }
    keys
}

/// Runs `git args...` in `root` and returns its trimmed stdout, or its stderr as the error.
fn git(root: &std::path::Path, args: &[&str]) -> Result<String, BuiltinError> {
    let command = format!("git {}", args.join(" "));
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|source| BuiltinError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuiltinError::Git {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs `git args...` in `root` for a unit test, with a fixed identity and no system config;
/// panics when git fails.
#[cfg(test)]
pub(crate) fn test_git(root: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// A repository with one empty commit, for a unit test.
#[cfg(test)]
pub(crate) fn test_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    test_git(dir.path(), &["init", "-q"]);
    test_git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    dir
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn service_names_follow_the_rule() {
        for good in ["logs", "log-shipper", "a1-b2"] {
            assert!(check_service_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Logs", "-x", "x-", "a--b", "a_b", "1x", &"a".repeat(64)] {
            assert!(check_service_name(bad).is_err(), "{bad}");
        }
    }

    /// The built-in playbooks and discover once had rules of their own: `deploy-portal` passed
    /// here and was refused by discover, a 64-letter name the other way round.
    #[test]
    fn builtin_playbooks_and_discover_accept_the_same_names() {
        let long = "a".repeat(64);
        for name in [
            "logs",
            "log-shipper",
            "deploy-portal",
            "my-app",
            "logs-to-s3",
            &long,
        ] {
            assert_eq!(
                check_service_name(name).is_ok(),
                crate::service_name::validate(name).is_ok(),
                "{name}"
            );
        }
        assert!(check_service_name("deploy-portal").is_err());
        assert!(crate::service_name::validate(&long).is_err());
    }
}
