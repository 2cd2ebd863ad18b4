//! A temporary git repository with a pinned environment, and the real binary to run in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `git-spectra` binary under test.
pub fn spectra_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-spectra"))
}

/// The crate's source directory (for `registry/` and `tests/fixtures/`).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh repository with one commit, its own HOME and no system or global git config.
pub struct TestRepo {
    _dir: tempfile::TempDir,
    home: PathBuf,
    root: PathBuf,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        // Canonical, so paths the children report compare equal to ours.
        let root = root.canonicalize().unwrap();
        let repo = TestRepo {
            _dir: dir,
            home,
            root,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.write("README.md", "test repository\n");
        repo.git(&["add", "README.md"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Pins the environment of `command` and runs it in the repository.
    pub fn pin(&self, command: &mut Command) {
        for name in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
        ] {
            command.env_remove(name);
        }
        command
            .current_dir(&self.root)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z");
    }

    /// Runs git, panicking with its stderr if it fails.
    pub fn git(&self, args: &[&str]) -> String {
        let mut command = Command::new("git");
        command.args(args);
        self.pin(&mut command);
        let output = command.output().expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Runs `git-spectra args...` in the repository.
    pub fn spectra(&self, args: &[&str]) -> Output {
        let mut command = Command::new(spectra_exe());
        command.args(args);
        self.pin(&mut command);
        command.output().expect("git-spectra runs")
    }

    /// Writes `content` to `path` under the root, creating directories.
    pub fn write(&self, path: &str, content: &str) {
        let full = self.root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    /// Copies `tests/fixtures/<from>` (a directory) to `<root>/<to>`.
    pub fn copy_fixture(&self, from: &str, to: &str) {
        copy_dir(
            &manifest_dir().join("tests/fixtures").join(from),
            &self.root.join(to),
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Stdout and stderr of an output, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
