//! Sharing the log through a remote: `git spectra fetch`, `sync --setup`, where `status` says
//! the log stands, and the hint after `git clone`. Remotes are bare repositories on disk.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::TestEnv;

/// A bare remote and a clone of it, named `name`, with one commit on main.
fn remote_and_clone(env: &TestEnv, name: &str) -> (PathBuf, PathBuf) {
    let remote = env.path().join("remote.git");
    env.git(
        env.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    )
    .success();
    let clone = clone(env, name);
    std::fs::write(clone.join("README"), "hello\n").unwrap();
    env.git(&clone, &["add", "README"]).success();
    env.git(&clone, &["commit", "-q", "-m", "first"]).success();
    env.git(&clone, &["push", "-q", "origin", "main"]).success();
    (remote, clone)
}

fn clone(env: &TestEnv, name: &str) -> PathBuf {
    env.git(env.path(), &["clone", "-q", "remote.git", name])
        .success();
    env.path().join(name)
}

fn discover(env: &TestEnv, repo: &Path, service: &str) {
    env.spectra(
        repo,
        &["discover", "--offline", "--service", service, "an idea"],
    )
    .success();
}

fn rev(env: &TestEnv, repo: &Path, name: &str) -> String {
    env.git(repo, &["rev-parse", name])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn remote_state(env: &TestEnv, repo: &Path) -> Value {
    let status = env
        .spectra(repo, &["status", "--offline", "--format", "json"])
        .success();
    let status: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    status["remote"].clone()
}

#[test]
fn fetch_mirrors_the_remote_log_and_never_touches_the_local_one() {
    let env = TestEnv::new();
    let (_remote, alice) = remote_and_clone(&env, "alice");
    let none = env.spectra(&alice, &["fetch"]).success();
    assert!(none.stdout.contains("has no event log yet"), "{none:#?}");
    discover(&env, &alice, "logging");
    env.git(&alice, &["push", "-q", "origin", "refs/spectra/events"])
        .success();

    let bob = clone(&env, "bob");
    discover(&env, &bob, "billing");
    let bobs_log = rev(&env, &bob, "refs/spectra/events");
    assert_eq!(remote_state(&env, &bob)["state"], "never_fetched");
    let fetched = env.spectra(&bob, &["fetch", "--format", "json"]).success();
    let fetched: Value = serde_json::from_str(fetched.stdout.trim()).unwrap();
    assert_eq!(fetched["remote"], "origin");
    assert_eq!(fetched["tracking"], "refs/spectra/remotes/origin/events");
    assert!(fetched["new_events"].as_u64().unwrap() > 5, "{fetched}");
    assert_eq!(
        rev(&env, &bob, "refs/spectra/remotes/origin/events"),
        rev(&env, &alice, "refs/spectra/events")
    );
    assert_eq!(
        rev(&env, &bob, "refs/spectra/events"),
        bobs_log,
        "the local log moved"
    );
    let state = remote_state(&env, &bob);
    assert_eq!(state["state"], "diverged", "{state}");
    let again = env.spectra(&bob, &["fetch"]).success();
    assert!(again.stdout.contains("up to date"), "{again:#?}");
}

#[test]
fn sync_setup_makes_a_plain_git_fetch_bring_the_log_and_adds_no_push_refspec() {
    let env = TestEnv::new();
    let (_remote, alice) = remote_and_clone(&env, "alice");
    discover(&env, &alice, "logging");
    env.git(&alice, &["push", "-q", "origin", "refs/spectra/events"])
        .success();
    let bob = clone(&env, "bob");
    let added = env.spectra(&bob, &["sync", "--setup"]).success();
    assert!(added.stdout.contains("added"), "{added:#?}");
    let again = env.spectra(&bob, &["sync", "--setup"]).success();
    assert!(again.stdout.contains("already has"), "{again:#?}");
    let fetch = env
        .git(&bob, &["config", "--get-all", "remote.origin.fetch"])
        .success()
        .stdout;
    assert_eq!(
        fetch.lines().filter(|l| l.contains("refs/spectra")).count(),
        1
    );
    assert!(
        env.git(&bob, &["config", "--get-all", "remote.origin.push"])
            .code
            != 0
    );
    env.git(&bob, &["fetch", "-q"]).success();
    assert_eq!(
        rev(&env, &bob, "refs/spectra/remotes/origin/events"),
        rev(&env, &alice, "refs/spectra/events")
    );
    assert_eq!(remote_state(&env, &bob)["state"], "behind");
}

#[test]
fn the_first_command_after_clone_says_the_remote_has_a_log() {
    let env = TestEnv::new();
    let (_remote, alice) = remote_and_clone(&env, "alice");
    discover(&env, &alice, "logging");
    env.git(&alice, &["push", "-q", "origin", "refs/spectra/events"])
        .success();
    let bob = clone(&env, "bob");
    let first = env.spectra(&bob, &["log"]).success();
    assert!(
        first.stderr.contains("origin has an event log")
            && first.stderr.contains("git spectra fetch origin"),
        "{first:#?}"
    );
    let second = env.spectra(&bob, &["log"]).success();
    assert!(
        !second.stderr.contains("event log"),
        "said twice: {second:#?}"
    );
}

#[test]
fn a_remote_holding_something_else_under_the_logs_name_is_refused() {
    let env = TestEnv::new();
    let (remote, alice) = remote_and_clone(&env, "alice");
    env.git(
        &alice,
        &["push", "-q", "origin", "main:refs/spectra/events"],
    )
    .success();
    let refused = env.spectra(&alice, &["fetch"]).code(1);
    assert!(
        refused.stderr.contains("not an event log")
            && refused.stderr.contains("no Spectra-Digest trailer"),
        "{refused:#?}"
    );
    assert!(
        env.git(
            &alice,
            &[
                "rev-parse",
                "-q",
                "--verify",
                "refs/spectra/remotes/origin/events"
            ]
        )
        .code
            != 0,
        "the foreign commit was kept"
    );
    // A tag there is refused too.
    env.git(&alice, &["tag", "-a", "-m", "v1", "v1"]).success();
    env.git(&alice, &["push", "-q", "origin", "v1"]).success();
    env.git(
        &remote,
        &[
            "update-ref",
            "refs/spectra/events",
            &rev(&env, &alice, "v1"),
        ],
    )
    .success();
    let tag = env.spectra(&alice, &["fetch"]).code(1);
    assert!(tag.stderr.contains("it is a tag, not a commit"), "{tag:#?}");
}

#[test]
fn bad_remotes_get_gits_error_or_a_named_one() {
    let env = TestEnv::new();
    let (_remote, alice) = remote_and_clone(&env, "alice");
    let unknown = env.spectra(&alice, &["fetch", "nope"]).code(1);
    assert!(
        unknown.stderr.contains("no remote named `nope`"),
        "{unknown:#?}"
    );
    env.git(&alice, &["remote", "add", "gone", "/nonexistent/repo.git"])
        .success();
    discover(&env, &alice, "logging");
    let before = rev(&env, &alice, "refs/spectra/events");
    let unreachable = env.spectra(&alice, &["fetch", "gone"]).code(128);
    assert!(unreachable.stderr.starts_with("fatal:"), "{unreachable:#?}");
    assert_eq!(rev(&env, &alice, "refs/spectra/events"), before);
}
