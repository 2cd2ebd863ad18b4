//! The git plumbing `changes.apply` runs: every call with optional locks off, so reading the
//! status never rewrites the user's index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Planned;
use crate::builtin::BuiltinError;

/// Builds the tree `base` with `planned` applied, through a temporary index; `env` can point
/// git at a temporary object directory.
pub(super) fn build_tree(
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

pub(super) fn head(root: &Path) -> Result<String, BuiltinError> {
    rev(root, "HEAD^{commit}")?.ok_or_else(|| BuiltinError::Changes {
        message: "the repository has no commit yet; a build branches from HEAD".into(),
    })
}

pub(super) fn rev(root: &Path, name: &str) -> Result<Option<String>, BuiltinError> {
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

pub(super) fn absolute(root: &Path, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        path
    } else {
        root.join(path)
    }
}

/// Runs git in `root` with `env` and `stdin`, returning its trimmed stdout.
pub(super) fn git_env(
    root: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
    stdin: Option<&[u8]>,
) -> Result<String, BuiltinError> {
    let bytes = run_git(root, args, env, stdin)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// `git diff args...` as text, its leading spaces kept (a diff stat's lines start with one).
pub(super) fn diff_text(
    root: &Path,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
) -> Result<String, BuiltinError> {
    let mut all = vec!["diff", "--no-color", "--no-ext-diff"];
    all.extend_from_slice(args);
    let bytes = run_git(root, &all, env, None)?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

pub(super) fn git_bytes(root: &Path, args: &[&str]) -> Result<Vec<u8>, BuiltinError> {
    run_git(root, args, &[], None)
}

pub(super) fn run_git(
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

/// Whether HEAD contains `commit` (the user merged the build branch).
pub(super) fn is_ancestor_of_head(root: &Path, commit: &str) -> Result<bool, BuiltinError> {
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
