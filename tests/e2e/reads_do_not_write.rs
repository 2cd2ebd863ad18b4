//! Commands that only read the event log never write it: the commits the post-commit hook
//! noted, and runs whose process died, wait for the next command that appends anyway, and a
//! read says in one `hint:` line that they wait.
//!
//! Commits are made through a `git-spectra` that skips the shim's background recording (see
//! `hooks::path_without_background_recording`), so nothing records the note behind the test's
//! back: no sleeps, no races.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;
use crate::hooks::{commit_with_path, notes, path_without_background_recording};

/// Where `refs/spectra/events` points, or an empty string while there is no log.
fn events_tip(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, &["rev-parse", "-q", "--verify", "refs/spectra/events"])
        .stdout
        .trim()
        .to_string()
}

/// A repository with the hook installed, one event in its log, and one commit the hook noted
/// and nothing recorded yet; returns the repository, the noted commit and the event's id.
fn repo_with_a_noted_commit(env: &TestEnv) -> (PathBuf, String, String) {
    let dir = env.repo_with_commit("repo");
    env.spectra(&dir, &["hooks", "install"]).success();
    let event = env.append(&dir, "note.added", r#"{"text":"before the commit"}"#);
    let path = path_without_background_recording(env);
    commit_with_path(env, &dir, &path, "a.txt", "noted by the hook").success();
    let commit = env.git(&dir, &["rev-parse", "HEAD"]).success().stdout;
    let commit = commit.trim().to_string();
    assert_eq!(notes(&dir), vec![commit.clone()]);
    (dir, commit, event)
}

const WAITING: &str = "hint: 1 commit noted by the post-commit hook is not in the event log yet; the next command that writes the log";

#[test]
fn reads_leave_the_log_unchanged_and_say_a_noted_commit_waits() {
    let env = TestEnv::new();
    let (dir, commit, event) = repo_with_a_noted_commit(&env);
    let before = events_tip(&env, &dir);
    assert!(!before.is_empty());

    let reads: [&[&str]; 9] = [
        &["log"],
        &["log", "--format", "json"],
        &["manifest"],
        &["history"],
        &["runs"],
        &["stats"],
        &["status", "--offline"],
        &["verify"],
        &["show", &event],
    ];
    for read in reads {
        let run = env.spectra(&dir, read).success();
        assert_eq!(events_tip(&env, &dir), before, "`{read:?}` wrote the log");
        assert_eq!(
            run.stderr.matches(WAITING).count(),
            1,
            "`{read:?}` should say once that the commit waits: {run:#?}"
        );
        assert!(!run.stdout.contains(&commit), "`{read:?}`: {run:#?}");
    }
    assert_eq!(
        notes(&dir),
        vec![commit.clone()],
        "the note is still waiting"
    );

    // The next command that appends records the noted commit first.
    env.spectra(
        &dir,
        &["discover", "--offline", "--service", "logging", "an idea"],
    )
    .success();
    let observed = env.events(&dir, "commit.observed");
    assert!(
        observed
            .iter()
            .any(|event| event["payload"]["commit"] == commit.as_str()),
        "{observed:#?}"
    );
    assert!(notes(&dir).is_empty(), "the recorded note is removed");
    let after = env.spectra(&dir, &["log"]).success();
    assert!(!after.stderr.contains("hint:"), "{after:#?}");
}

#[test]
fn append_records_the_noted_commit_before_its_own_event() {
    let env = TestEnv::new();
    let (dir, commit, _) = repo_with_a_noted_commit(&env);
    env.append(&dir, "note.added", r#"{"text":"after the commit"}"#);
    let run = env
        .spectra(&dir, &["log", "-n", "2", "--format", "json"])
        .success();
    let kinds: Vec<String> = crate::common::json_lines(&run.stdout)
        .iter()
        .map(|line| line["event"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["note.added", "commit.observed"]);
    assert!(run.stdout.contains(&commit));
    assert!(notes(&dir).is_empty());
}

#[test]
fn a_read_leaves_an_interrupted_run_for_the_next_writer_and_says_so() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    env.append(&dir, "note.added", r#"{"text":"a log"}"#);
    // What a run whose process died leaves: its lock file, held by nobody.
    let runs = dir.join(".git/spectra/runs");
    std::fs::create_dir_all(&runs).unwrap();
    let lock = runs.join("0193aaaa-dead-run.lock");
    std::fs::write(&lock, "").unwrap();
    let before = events_tip(&env, &dir);

    let read = env.spectra(&dir, &["log"]).success();
    assert!(
        read.stderr.contains(
            "hint: run 0193aaaa-dead-run awaits closing (its process ended); the next command that writes the log"
        ),
        "{read:#?}"
    );
    assert_eq!(events_tip(&env, &dir), before);
    assert!(lock.exists(), "a read closes nothing");

    env.append(&dir, "note.added", r#"{"text":"a writer"}"#);
    assert!(!lock.exists(), "the writer closed the run");
    let read = env.spectra(&dir, &["log"]).success();
    assert!(!read.stderr.contains("awaits closing"), "{read:#?}");
}
