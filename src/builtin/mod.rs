//! The built-in playbooks' work, reached as `git spectra builtin NAME ...`.
//!
//! Default playbooks are real argv playbooks like any other (`["{spectra}", "builtin", ...]`),
//! so they go through the same runner, timeout, capture and audit; this module is what they
//! run. The runner calls the read-only ones (inventory, catalog lookup) directly rather than
//! through a second process (see `playbook::in_process`). Each function works in the repository root it is given (the runner's cwd) and returns a
//! serializable result that the CLI prints as one JSON object on stdout.

pub mod branch;
pub mod catalog;
pub mod inventory;
pub mod spec;
pub mod tests;

use std::path::PathBuf;

/// Why a built-in playbook failed.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    #[error("not a valid service name: {problem}; {}", crate::service_name::RULE)]
    ServiceName { problem: String },
    #[error("{file}:{position}: {message}")]
    Catalog {
        file: String,
        position: crate::yaml::Position,
        message: String,
    },
    #[error("path `{path}` {reason}")]
    PathEscapes { path: String, reason: String },
    #[error("{} already exists with different content; not overwriting it", .0.display())]
    SpecConflict(PathBuf),
    #[error("{} changed since it was written; not removing it", .0.display())]
    SpecChanged(PathBuf),
    #[error("branch `{branch}` already exists at {existing}, not at {wanted}")]
    BranchConflict {
        branch: String,
        existing: String,
        wanted: String,
    },
    #[error("`{command}` failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error(
        "no test command: set `git config spectra.test.command` or add a Cargo.toml, package.json, go.mod, pyproject.toml or Makefile"
    )]
    NoTestCommand,
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
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
