//! `builtin run-tests`: run the project's tests and count what passed, failed and was skipped.
//!
//! The command comes from `git config spectra.test.command` (words split on whitespace; no shell,
//! no quoting) or, failing that, from the build files present. It is never a model's input: the
//! model may choose to run the tests, not what "the tests" are. Counts are parsed from the
//! closing lines of the common runners; the process exit code decides success either way.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::BuiltinError;

/// The git config key holding the test command.
pub const TEST_COMMAND_KEY: &str = crate::settings::keys::TEST_COMMAND.git;

/// What a test run observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRun {
    /// The command run, as argv.
    pub command: Vec<String>,
    /// Its exit code, `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests skipped or ignored.
    pub skipped: u64,
    /// Which runner's summary the counts were read from, or `None` when none was recognised.
    pub format: Option<&'static str>,
    /// The command exited 0 and no failure was counted.
    pub success: bool,
}

/// Pass, fail and skip counts read from a runner's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests skipped or ignored.
    pub skipped: u64,
    /// Which runner's summary the counts come from.
    pub format: &'static str,
}

/// Runs the test command of the repository at `root`.
pub fn run(root: &Path) -> Result<TestRun, BuiltinError> {
    run_in(root, test_command(root)?)
}

/// Runs `command` in `dir` and reads the counts it printed.
fn run_in(dir: &Path, command: Vec<String>) -> Result<TestRun, BuiltinError> {
    let (program, args) = command.split_first().ok_or(BuiltinError::NoTestCommand)?;
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| BuiltinError::Spawn {
            command: command.join(" "),
            source,
        })?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = parse_counts(&text);
    let found = counts.unwrap_or_default();
    Ok(TestRun {
        exit_code: output.status.code(),
        passed: found.passed,
        failed: found.failed,
        skipped: found.skipped,
        format: counts.map(|counts| counts.format),
        success: output.status.success() && found.failed == 0,
        command,
    })
}

/// Runs the test command in a temporary linked worktree of `root`'s repository checked out at
/// `revision` (detached), and removes the worktree afterwards (or, when this process is killed
/// at its timeout, the next run does: `checkouts`): the user's working tree, index and HEAD are
/// not touched.
pub fn run_at(root: &Path, revision: &str) -> Result<TestRun, BuiltinError> {
    let commit = super::git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{revision}^{{commit}}"),
        ],
    )?;
    // What "the tests" are is the user's: their setting, or the build files of their own
    // tree, never a file the checked-out revision (a build's branch) added or changed.
    let command = test_command(root)?;
    let checkout = super::checkouts::Checkout::at(root, &commit)?;
    run_in(checkout.path(), command)
}

/// The configured test command, or one guessed from the build files at `root`.
pub fn test_command(root: &Path) -> Result<Vec<String>, BuiltinError> {
    // The variable first, as for every setting; `git config` runs in `root`, so it reads that
    // repository's config (and `git -c`, which arrives in GIT_CONFIG_PARAMETERS).
    let from_env = std::env::var(crate::settings::keys::TEST_COMMAND.env[0])
        .ok()
        .filter(|command| !command.trim().is_empty());
    let configured = from_env.or_else(|| {
        Command::new("git")
            .args(["config", "--get", TEST_COMMAND_KEY])
            .current_dir(root)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .filter(|command| !command.is_empty())
    });
    if let Some(command) = configured {
        return Ok(command.split_whitespace().map(str::to_string).collect());
    }
    detect(root).ok_or(BuiltinError::NoTestCommand)
}

fn detect(root: &Path) -> Option<Vec<String>> {
    let has = |name: &str| root.join(name).exists();
    let words: &[&str] = if has("Cargo.toml") {
        &["cargo", "test"]
    } else if has("package.json") {
        &["npm", "test"]
    } else if has("go.mod") {
        &["go", "test", "-v", "./..."]
    } else if ["pyproject.toml", "setup.py", "pytest.ini", "tox.ini"]
        .iter()
        .any(|name| has(name))
    {
        &["python3", "-m", "pytest"]
    } else if has("Makefile") {
        &["make", "test"]
    } else {
        return None;
    };
    Some(words.iter().map(ToString::to_string).collect())
}

/// Reads pass/fail/skip counts from the output of cargo test, jest, go test -v, mocha, pytest,
/// or any runner ending with a line like `N passed, N failed, N skipped`.
pub fn parse_counts(output: &str) -> Option<Counts> {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    summed(&lines, |line| line.starts_with("test result:"), "cargo")
        .or_else(|| summed(&lines, |line| line.starts_with("Tests:"), "jest"))
        .or_else(|| go_counts(&lines))
        .or_else(|| mocha_counts(&lines))
        .or_else(|| summary_line(&lines))
}

/// Adds up the counts of every line `is_summary` picks (cargo prints one per test binary).
fn summed(
    lines: &[&str],
    is_summary: impl Fn(&str) -> bool,
    format: &'static str,
) -> Option<Counts> {
    let mut total: Option<Counts> = None;
    for line in lines.iter().filter(|line| is_summary(line)) {
        let counts = counts_in(line, format);
        let sum = total.get_or_insert(Counts {
            format,
            ..Counts::default()
        });
        sum.passed += counts.passed;
        sum.failed += counts.failed;
        sum.skipped += counts.skipped;
    }
    total
}

fn go_counts(lines: &[&str]) -> Option<Counts> {
    let count = |prefix: &str| lines.iter().filter(|line| line.starts_with(prefix)).count() as u64;
    let counts = Counts {
        passed: count("--- PASS"),
        failed: count("--- FAIL"),
        skipped: count("--- SKIP"),
        format: "go",
    };
    (counts.passed + counts.failed + counts.skipped > 0).then_some(counts)
}

fn mocha_counts(lines: &[&str]) -> Option<Counts> {
    let mut counts = Counts {
        format: "mocha",
        ..Counts::default()
    };
    let mut seen = false;
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(number), Some(word)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        let slot = match word {
            "passing" => &mut counts.passed,
            "failing" => &mut counts.failed,
            "pending" => &mut counts.skipped,
            _ => continue,
        };
        *slot += number;
        seen = true;
    }
    seen.then_some(counts)
}

/// The last line that reads like `3 passed, 1 failed, 2 skipped` (pytest's closing line, and the
/// plain form many runners print).
fn summary_line(lines: &[&str]) -> Option<Counts> {
    lines.iter().rev().find_map(|line| {
        let format = if line.starts_with('=') {
            "pytest"
        } else {
            "summary"
        };
        let counts = counts_in(line, format);
        (counts.passed + counts.failed > 0 || mentions_outcome(line)).then_some(counts)
    })
}

fn mentions_outcome(line: &str) -> bool {
    let words = number_word_pairs(line);
    words
        .iter()
        .any(|(_, word)| matches!(*word, "passed" | "failed"))
}

/// The counts in one summary line, from its "N word" pairs.
fn counts_in(line: &str, format: &'static str) -> Counts {
    let mut counts = Counts {
        format,
        ..Counts::default()
    };
    for (number, word) in number_word_pairs(line) {
        match word {
            "passed" | "passing" => counts.passed += number,
            "failed" | "failing" | "error" | "errors" => counts.failed += number,
            "skipped" | "ignored" | "pending" | "todo" => counts.skipped += number,
            _ => {}
        }
    }
    counts
}

fn number_word_pairs(line: &str) -> Vec<(u64, &str)> {
    let tokens: Vec<&str> = line
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    tokens
        .windows(2)
        .filter_map(|pair| Some((pair[0].parse::<u64>().ok()?, pair[1])))
        .collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn counts(output: &str) -> (u64, u64, u64, &'static str) {
        let counts = parse_counts(output).expect("counts");
        (counts.passed, counts.failed, counts.skipped, counts.format)
    }

    #[test]
    fn cargo_lines_are_summed_across_binaries() {
        let output = "running 3 tests\ntest result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                      test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(counts(output), (5, 1, 1, "cargo"));
    }

    #[test]
    fn pytest_jest_go_mocha_and_plain_summaries() {
        assert_eq!(
            counts("==== 3 passed, 1 failed, 2 skipped, 1 error in 0.12s ===="),
            (3, 2, 2, "pytest")
        );
        assert_eq!(
            counts("Tests:       1 failed, 2 skipped, 3 passed, 6 total"),
            (3, 1, 2, "jest")
        );
        assert_eq!(
            counts(
                "=== RUN   TestA\n--- PASS: TestA (0.00s)\n    --- SKIP: TestA/b\n--- FAIL: TestB"
            ),
            (1, 1, 1, "go")
        );
        assert_eq!(
            counts("  4 passing (12ms)\n  1 pending\n  2 failing"),
            (4, 2, 1, "mocha")
        );
        assert_eq!(
            counts("Results: 7 passed, 0 failed, 1 skipped"),
            (7, 0, 1, "summary")
        );
    }

    #[test]
    fn a_revision_s_own_build_files_do_not_say_what_the_tests_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let git = |args: &[&str]| {
            let output = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(root)
                .env_remove("SPECTRA_TEST_COMMAND")
                .output()
                .unwrap();
            assert!(output.status.success(), "{args:?}: {output:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["commit", "-q", "--allow-empty", "-m", "no build files"]);
        git(&["switch", "-q", "-c", "built"]);
        std::fs::write(root.join("Makefile"), "test:\n\techo 12 passing\n").unwrap();
        git(&["add", "Makefile"]);
        git(&["commit", "-q", "-m", "a Makefile of its own"]);
        git(&["switch", "-q", "main"]);
        if std::env::var_os("SPECTRA_TEST_COMMAND").is_some() {
            return; // a command set for the whole test process says what the tests are
        }
        assert!(matches!(
            run_at(root, "built"),
            Err(BuiltinError::NoTestCommand)
        ));
    }

    #[test]
    fn unrecognised_output_has_no_counts() {
        assert_eq!(parse_counts("all good\n"), None);
    }
}
