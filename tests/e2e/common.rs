//! A temporary git repository with a pinned environment, and helpers to run `git` and
//! `git spectra` in it.
//!
//! Nothing from the developer's own configuration leaks in: the environment is cleared, `HOME`
//! is a fresh directory, `GIT_CONFIG_NOSYSTEM` is set and the git identity is fixed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn spectra_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-spectra"))
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with everything the process printed unless it exited 0.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\n{self:#?}");
        self
    }

    /// Panics unless the process exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}:\n{self:#?}");
        self
    }
}

/// A scratch directory holding a home directory and one or more repositories.
pub struct TestEnv {
    pub root: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = tempfile::tempdir().expect("create a temp dir");
        std::fs::create_dir(root.path().join("home")).expect("create HOME");
        TestEnv { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// A command with the pinned environment, run in `dir`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(dir).env_clear();
        for (key, value) in pinned_env(&self.home()) {
            command.env(key, value);
        }
        command.stdin(Stdio::null());
        command
    }

    /// [`TestEnv::command`] with no git identity at all: none in the environment, none in the
    /// (empty) home directory or the system files, no `EMAIL`; only what the repository's own
    /// config or `git -c` gives.
    pub fn command_without_identity(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        dir: &Path,
    ) -> Command {
        let mut command = self.command(program, dir);
        for var in IDENTITY_VARS {
            command.env_remove(var);
        }
        command
    }

    /// Runs `git args...` in `dir`.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Run {
        let output = self
            .command("git", dir)
            .args(args)
            .output()
            .expect("run git");
        Run::from_output(output)
    }

    /// Runs `git-spectra args...` in `dir`.
    pub fn spectra(&self, dir: &Path, args: &[&str]) -> Run {
        let output = self
            .command(spectra_bin(), dir)
            .args(args)
            .output()
            .expect("run git-spectra");
        Run::from_output(output)
    }

    /// Runs `git-spectra args...` in `dir` against the chat-completions server at `llm_url`.
    pub fn spectra_with_llm(&self, dir: &Path, llm_url: &str, args: &[&str]) -> Run {
        let output = self
            .command(spectra_bin(), dir)
            .args(args)
            .env("SPECTRA_LLM_URL", llm_url)
            .env("SPECTRA_LLM_MODEL", "test-model")
            .output()
            .expect("run git-spectra");
        Run::from_output(output)
    }

    /// The events of `kind` in the log of `dir`, oldest first, as JSON envelopes.
    pub fn events(&self, dir: &Path, kind: &str) -> Vec<serde_json::Value> {
        let mut records = json_lines(
            &self
                .spectra(dir, &["log", "--kind", kind, "--format", "json"])
                .success()
                .stdout,
        );
        records.reverse();
        records.into_iter().map(|r| r["event"].clone()).collect()
    }

    /// Runs `git-spectra args...` in `dir` with `input` on standard input.
    pub fn spectra_with_input(&self, dir: &Path, args: &[&str], input: &str) -> Run {
        self.spectra_with_bytes(dir, args, input.as_bytes())
    }

    /// Runs `git-spectra args...` in `dir` with `input` (any bytes) on standard input.
    pub fn spectra_with_bytes(&self, dir: &Path, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(spectra_bin(), dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn git-spectra");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        Run::from_output(child.wait_with_output().expect("wait for git-spectra"))
    }

    /// `git init` a new work tree repository named `name` inside the scratch dir.
    pub fn init_repo(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        self.git(self.path(), &["init", "-q", "-b", "main", name])
            .success();
        dir
    }

    /// A repository with one commit on `main`.
    pub fn repo_with_commit(&self, name: &str) -> PathBuf {
        let dir = self.init_repo(name);
        std::fs::write(dir.join("README"), "hello\n").expect("write README");
        self.git(&dir, &["add", "README"]).success();
        self.git(&dir, &["commit", "-q", "-m", "first"]).success();
        dir
    }

    /// Appends an event through the binary and returns its id.
    pub fn append(&self, dir: &Path, kind: &str, payload: &str) -> String {
        let run = self
            .spectra(dir, &["append", "--kind", kind, "--payload", payload])
            .success();
        run.stdout.trim().to_string()
    }
}

/// The variables that give the pinned identity, which [`TestEnv::command_without_identity`]
/// leaves out.
pub const IDENTITY_VARS: [&str; 4] = [
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
];

/// The only environment tests run with: no user config, fixed identity, our binary on PATH.
pub fn pinned_env(home: &Path) -> Vec<(String, String)> {
    let bin_dir = spectra_bin()
        .parent()
        .expect("binary has a directory")
        .to_path_buf();
    let system_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    vec![
        (
            "PATH".into(),
            format!("{}:{system_path}", bin_dir.display()),
        ),
        ("HOME".into(), home.display().to_string()),
        (
            "XDG_CONFIG_HOME".into(),
            home.join(".config").display().to_string(),
        ),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("GIT_AUTHOR_NAME".into(), "Ada Tester".into()),
        ("GIT_AUTHOR_EMAIL".into(), "ada@example.com".into()),
        ("GIT_COMMITTER_NAME".into(), "Ada Tester".into()),
        ("GIT_COMMITTER_EMAIL".into(), "ada@example.com".into()),
        ("LANG".into(), "C".into()),
        ("NO_COLOR".into(), "1".into()),
        (
            "SPECTRA_LLM_URL".into(),
            "http://127.0.0.1:9/v1/chat/completions".into(),
        ),
    ]
}

/// Parses JSON Lines output.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

/// The crate's source directory (for `registry/` and `tests/fixtures/`).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One repository with one commit in its own [`TestEnv`], for tests that need only one.
pub struct TestRepo {
    pub env: TestEnv,
    root: PathBuf,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let env = TestEnv::new();
        // Canonical, so paths that children report (`pwd -P`) compare equal to ours.
        let root = env
            .repo_with_commit("repo")
            .canonicalize()
            .expect("canonical repo path");
        TestRepo { env, root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs git in the repository and returns its trimmed stdout; panics if it fails.
    pub fn git(&self, args: &[&str]) -> String {
        self.env
            .git(&self.root, args)
            .success()
            .stdout
            .trim()
            .to_string()
    }

    /// Runs `git-spectra args...` in the repository.
    pub fn spectra(&self, args: &[&str]) -> Run {
        self.env.spectra(&self.root, args)
    }

    /// Writes `content` to `path` under the root, creating directories.
    pub fn write(&self, path: &str, content: &str) {
        let full = self.root.join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("create dirs");
        std::fs::write(full, content).expect("write file");
    }

    /// Copies the directory `tests/fixtures/<from>` to `<root>/<to>`.
    pub fn copy_fixture(&self, from: &str, to: &str) {
        copy_dir(
            &manifest_dir().join("tests/fixtures").join(from),
            &self.root.join(to),
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create fixture dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy fixture");
        }
    }
}

/// A cache file of a fold (`.git/spectra/cache/<name>.json`): its first line (version and
/// place in the log) and the state after it.
pub fn read_fold_cache(path: &Path) -> (serde_json::Value, serde_json::Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, state) = text
        .split_once('\n')
        .expect("a header line, then the state");
    (
        serde_json::from_str(header).unwrap(),
        serde_json::from_str(state).unwrap(),
    )
}

/// Writes a fold's cache file as [`read_fold_cache`] reads it.
pub fn write_fold_cache(path: &Path, header: &serde_json::Value, state: &serde_json::Value) {
    std::fs::write(path, format!("{header}\n{state}")).unwrap();
}
