//! Installing and removing the post-commit shim without disturbing anyone else's hook.
//!
//! The hook goes where `git rev-parse --git-path hooks` points, which honours `core.hooksPath`
//! (husky, pre-commit style shared hook directories) and resolves linked worktrees to the common
//! git dir. With no hook there, the shim (`hooks/post-commit`, embedded at build time) becomes the
//! file. An existing shell hook gets our block, between a begin and an end marker line, inserted
//! right after its `#!` line: there it runs even when the hook ends in `exit` or `exec`, and it
//! runs in its own `if`, so the rest of the hook behaves as before. Uninstall cuts out exactly
//! those lines, leaving the other hook byte for byte as it was. This is the marker-line approach
//! of git-branchless's hook installer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::repo::Repo;

use super::HookError;

/// The hook we install.
pub const HOOK_NAME: &str = "post-commit";

/// The shim exactly as a fresh install writes it: a `#!/bin/sh` line, then the marked block.
pub const SHIM: &str = include_str!("../../hooks/post-commit");

/// The first line of our block (followed by an explanation on the same line).
pub const BEGIN_MARKER: &str = "# >>> git spectra >>>";
/// The last line of our block.
pub const END_MARKER: &str = "# <<< git spectra <<<";

/// Interpreters that run our POSIX shell block unchanged.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"];

/// Where git runs hooks for this repository.
#[derive(Debug, Clone)]
pub struct HooksDir {
    /// Absolute path of the directory.
    pub path: PathBuf,
    /// The `core.hooksPath` value that put it there, if one is set.
    pub hooks_path_config: Option<String>,
}

impl HooksDir {
    /// The path of the post-commit hook in this directory.
    pub fn hook_file(&self) -> PathBuf {
        self.path.join(HOOK_NAME)
    }
}

/// Asks git where it runs hooks, from the current directory and environment (so `git -C`,
/// `GIT_DIR` and worktrees resolve as they do for git).
pub fn hooks_dir(repo: &Repo) -> Result<HooksDir, HookError> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| HookError::HooksDir(format!("cannot run git: {err}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(HookError::HooksDir(stderr.trim().to_string()));
    }
    let printed = String::from_utf8_lossy(&output.stdout)
        .trim_end_matches('\n')
        .to_string();
    let cwd = std::env::current_dir()
        .map_err(|err| HookError::HooksDir(format!("no current directory: {err}")))?;
    Ok(HooksDir {
        path: normalise(&cwd.join(printed)),
        hooks_path_config: repo.config_string("core.hooksPath"),
    })
}

/// Removes `.` components and resolves `..` lexically, so paths print the way people expect.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What is in the post-commit hook file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    /// There is no post-commit hook.
    Missing,
    /// The file is our shim and nothing else.
    Installed,
    /// Our block sits inside another hook.
    InstalledInExistingHook,
    /// Our block is there but differs from this version's (install updates it).
    Outdated,
    /// No block, but the hook calls `git-spectra hook post-commit` itself.
    InstalledByHand,
    /// A hook that does not call git spectra.
    NotInstalled,
}

/// The post-commit hook file and what it holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HookFile {
    /// Where the hook file is.
    pub path: PathBuf,
    /// Whether and how it runs git spectra.
    pub state: HookState,
    /// Git runs only executable hooks (and says so with `hint: The '...' hook was ignored`).
    pub executable: bool,
}

/// Reads the post-commit hook in `dir` and says what it holds.
pub fn inspect(dir: &HooksDir) -> Result<HookFile, HookError> {
    let path = dir.hook_file();
    let Some(text) = read_hook(&path)? else {
        return Ok(HookFile {
            path,
            state: HookState::Missing,
            executable: false,
        });
    };
    let state = match find_block(&text) {
        Ok(Some(range)) if text == SHIM => {
            debug_assert_eq!(&text[range], our_block());
            HookState::Installed
        }
        Ok(Some(range)) if &text[range.clone()] == our_block() => {
            HookState::InstalledInExistingHook
        }
        Ok(Some(_)) | Err(_) => HookState::Outdated,
        Ok(None) if calls_us_by_hand(&text) => HookState::InstalledByHand,
        Ok(None) => HookState::NotInstalled,
    };
    Ok(HookFile {
        executable: is_executable(&path),
        path,
        state,
    })
}

/// What `install` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// There was no hook; the shim is the new file.
    Created,
    /// Our block was added to an existing hook.
    AddedToExisting,
    /// An older block was replaced by this version's.
    Updated,
    /// Already installed as this version installs it; nothing was written.
    Unchanged,
}

/// Installs the post-commit shim into `dir` (see the module documentation).
pub fn install(dir: &HooksDir) -> Result<InstallOutcome, HookError> {
    let path = dir.hook_file();
    let Some(text) = read_hook(&path)? else {
        fs::create_dir_all(&dir.path).map_err(|err| HookError::io("create", &dir.path, err))?;
        write_hook(&path, SHIM, 0o755)?;
        return Ok(InstallOutcome::Created);
    };
    let unsupported = |reason: String| HookError::Unsupported {
        path: path.clone(),
        reason,
    };
    if let Some(range) = find_block(&text).map_err(unsupported)? {
        if text[range.clone()] == *our_block() {
            return Ok(InstallOutcome::Unchanged);
        }
        let mut updated = text.clone();
        updated.replace_range(range, our_block());
        write_hook(&path, &updated, mode_of(&path)?)?;
        return Ok(InstallOutcome::Updated);
    }
    let at = insertion_point(&text).map_err(unsupported)?;
    let mut updated = text.clone();
    updated.insert_str(at, our_block());
    write_hook(&path, &updated, mode_of(&path)?)?;
    Ok(InstallOutcome::AddedToExisting)
}

/// What `uninstall` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// The hook was only our shim; the file is gone.
    Removed,
    /// Our block was cut out of another hook, which is now as it was before install.
    RemovedFromExisting,
    /// There was nothing of ours to remove.
    NotInstalled,
}

/// Removes exactly what [`install`] added.
pub fn uninstall(dir: &HooksDir) -> Result<UninstallOutcome, HookError> {
    let path = dir.hook_file();
    let Some(text) = read_hook(&path)? else {
        return Ok(UninstallOutcome::NotInstalled);
    };
    let range = find_block(&text).map_err(|reason| HookError::Unsupported {
        path: path.clone(),
        reason,
    })?;
    let Some(range) = range else {
        return Ok(UninstallOutcome::NotInstalled);
    };
    let mut remaining = text.clone();
    remaining.replace_range(range, "");
    // What is left of a fresh install is its `#!/bin/sh` line: a hook that does nothing.
    if remaining == shim_shebang() {
        fs::remove_file(&path).map_err(|err| HookError::io("remove", &path, err))?;
        return Ok(UninstallOutcome::Removed);
    }
    write_hook(&path, &remaining, mode_of(&path)?)?;
    Ok(UninstallOutcome::RemovedFromExisting)
}

/// The shim's first line, with its newline.
fn shim_shebang() -> &'static str {
    let end = SHIM.find('\n').expect("the shim has a #! line") + 1;
    &SHIM[..end]
}

/// The marked block: everything in the shim after its `#!` line.
fn our_block() -> &'static str {
    &SHIM[shim_shebang().len()..]
}

/// The byte range of our block (begin line through end line and its newline), if present.
fn find_block(text: &str) -> Result<Option<std::ops::Range<usize>>, String> {
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if start.is_none() && content.starts_with(BEGIN_MARKER) {
            start = Some(offset);
        } else if let Some(start) = start
            && content == END_MARKER
        {
            return Ok(Some(start..offset + line.len()));
        }
        offset += line.len();
    }
    match start {
        Some(_) => Err(format!(
            "it has a `{BEGIN_MARKER}` line but no `{END_MARKER}` line after it; repair or remove the block by hand"
        )),
        None => Ok(None),
    }
}

/// Where our block goes in an existing hook: right after its `#!` line, or first thing when it
/// has none (git runs such a file with `/bin/sh`). Refuses hooks in other languages.
fn insertion_point(text: &str) -> Result<usize, String> {
    let Some(first_line) = text
        .strip_prefix("#!")
        .map(|rest| rest.lines().next().unwrap_or(""))
    else {
        return Ok(0);
    };
    let interpreter = interpreter_name(first_line);
    if !SHELLS.contains(&interpreter.as_str()) {
        return Err(format!(
            "it is a `{interpreter}` script, and the hook is a shell snippet"
        ));
    }
    match text.find('\n') {
        Some(end) => Ok(end + 1),
        None => Err("it is only a `#!` line without a newline".into()),
    }
}

/// `/usr/bin/env bash -e` → `bash`; `/bin/sh` → `sh`.
fn interpreter_name(shebang: &str) -> String {
    let mut words = shebang.split_whitespace();
    let program = words.next().unwrap_or("");
    let base = program.rsplit('/').next().unwrap_or(program);
    let name = if base == "env" {
        words.find(|word| !word.starts_with('-')).unwrap_or("")
    } else {
        base
    };
    name.to_string()
}

fn calls_us_by_hand(text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        code.contains("git-spectra hook post-commit")
            || code.contains("git spectra hook post-commit")
    })
}

/// The hook's text, or `None` when there is no hook.
fn read_hook(path: &Path) -> Result<Option<String>, HookError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| HookError::Unsupported {
                path: path.to_path_buf(),
                reason: "it is not a text file".into(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(HookError::io("read", path, err)),
    }
}

fn mode_of(path: &Path) -> Result<u32, HookError> {
    fs::metadata(path)
        .map(|meta| meta.permissions().mode())
        .map_err(|err| HookError::io("read", path, err))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Replaces the hook in one step (write a temporary file beside it, then rename), so git never
/// runs a half-written hook. A symlinked hook is updated where it points, keeping the link.
fn write_hook(path: &Path, text: &str, mode: u32) -> Result<(), HookError> {
    use std::io::Write;
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|err| HookError::io("resolve", path, err))?
        }
        _ => path.to_path_buf(),
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".post-commit.spectra")
        .tempfile_in(dir)
        .map_err(|err| HookError::io("create a temporary file in", dir, err))?;
    temp.write_all(text.as_bytes())
        .and_then(|()| {
            temp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode))
        })
        .map_err(|err| HookError::io("write", temp.path().to_path_buf(), err))?;
    temp.persist(&target)
        .map_err(|err| HookError::io("replace", &target, err.error))?;
    Ok(())
}

/// The first `git-spectra` on `PATH`, as the shim will find it.
pub fn binary_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("git-spectra"))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_is_a_shebang_and_one_block() {
        assert_eq!(shim_shebang(), "#!/bin/sh\n");
        assert_eq!(find_block(SHIM), Ok(Some(shim_shebang().len()..SHIM.len())));
    }

    #[test]
    fn the_block_goes_after_the_shebang_and_comes_out_exactly() {
        let hook = "#!/usr/bin/env bash\nset -e\necho hi\nexit 0";
        let at = insertion_point(hook).unwrap();
        let mut with_block = hook.to_string();
        with_block.insert_str(at, our_block());
        assert!(with_block.starts_with("#!/usr/bin/env bash\n# >>> git spectra >>>"));
        let range = find_block(&with_block).unwrap().unwrap();
        with_block.replace_range(range, "");
        assert_eq!(with_block, hook);
    }

    #[test]
    fn only_shell_hooks_get_a_block() {
        assert_eq!(insertion_point("echo hi\n"), Ok(0));
        assert!(insertion_point("#!/usr/bin/env python3\nprint()\n").is_err());
        assert!(insertion_point("#!/bin/sh").is_err());
        assert_eq!(interpreter_name("/usr/bin/env -S bash -e"), "bash");
        assert_eq!(interpreter_name(" /bin/dash"), "dash");
    }

    #[test]
    fn a_begin_marker_without_an_end_is_refused() {
        assert!(find_block("#!/bin/sh\n# >>> git spectra >>>\necho\n").is_err());
    }

    #[test]
    fn calls_written_by_hand_are_recognised() {
        assert!(calls_us_by_hand(
            "#!/bin/sh\ngit-spectra hook post-commit || true\n"
        ));
        assert!(!calls_us_by_hand(
            "#!/bin/sh\n# git-spectra hook post-commit\n"
        ));
    }
}
