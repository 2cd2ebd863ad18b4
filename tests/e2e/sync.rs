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

/// A discover in `clone`, whose log is then pushed with plain git, as before sync existed.
fn discover_and_push_the_log_by_hand(env: &TestEnv, clone: &Path) {
    discover(env, clone, "logging");
    env.git(clone, &["push", "-q", "origin", "refs/spectra/events"])
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
    discover_and_push_the_log_by_hand(&env, &alice);

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
    discover_and_push_the_log_by_hand(&env, &alice);
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
    discover_and_push_the_log_by_hand(&env, &alice);
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

/// A bare remote that keeps a reflog of its log, and `count` clones of it, each with its own
/// first commit on its own branch (so that the clones' branches never need merging).
fn team(env: &TestEnv, names: &[&str]) -> (PathBuf, Vec<PathBuf>) {
    let remote = env.path().join("remote.git");
    env.git(
        env.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    )
    .success();
    env.git(&remote, &["config", "core.logAllRefUpdates", "always"])
        .success();
    let clones = names
        .iter()
        .map(|name| {
            let dir = clone(env, name);
            std::fs::write(dir.join("README"), format!("{name}\n")).unwrap();
            env.git(&dir, &["add", "README"]).success();
            env.git(&dir, &["commit", "-q", "-m", "first"]).success();
            dir
        })
        .collect();
    (remote, clones)
}

fn run_id(env: &TestEnv, repo: &Path, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let out = env.spectra(repo, &args).success();
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    report["run"].as_str().unwrap().to_string()
}

fn event_ids(env: &TestEnv, repo: &Path) -> Vec<String> {
    let mut ids: Vec<String> = crate::common::json_lines(
        &env.spectra(repo, &["log", "--format", "json"])
            .success()
            .stdout,
    )
    .iter()
    .map(|record| record["event"]["id"].as_str().unwrap().to_string())
    .collect();
    ids.sort();
    ids
}

fn views(env: &TestEnv, repo: &Path) -> Vec<String> {
    [
        vec!["manifest", "--format", "json"],
        vec!["runs", "--format", "json"],
        vec!["stats", "--format", "json"],
        vec!["log", "--format", "json"],
    ]
    .iter()
    .map(|args| env.spectra(repo, args).success().stdout)
    .collect()
}

/// `git spectra args` in every clone at the same moment; every one must succeed.
fn all_at_once(env: &TestEnv, clones: &[PathBuf], args: &[&str]) {
    let children: Vec<_> = clones
        .iter()
        .map(|dir| {
            env.command(crate::common::spectra_bin(), dir)
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}

#[test]
fn three_clones_syncing_in_any_order_converge_to_one_log() {
    let env = TestEnv::new();
    let names = ["alice", "bob", "carol"];
    let (remote, clones) = team(&env, &names);
    // A fixed "random" order of syncs per round, and every third round all at once.
    let orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1], [1, 0, 2]];
    // 13 rounds: in each clone 13 discovers, 13 notes and 4 undos, 30 runs and appends.
    for round in 0..13 {
        for (index, dir) in clones.iter().enumerate() {
            let service = format!("{}-svc-{round}", names[index]);
            let run = run_id(
                &env,
                dir,
                &["discover", "--offline", "--service", &service, "an idea"],
            );
            env.spectra(
                dir,
                &["append", "--kind", "note.added", "--payload", r#"{"n": 1}"#],
            )
            .success();
            if round % 3 == 1 {
                env.spectra(dir, &["undo", &run]).success();
            }
        }
        if round % 3 == 2 {
            all_at_once(&env, &clones, &["sync"]);
        } else {
            for &index in &orders[round % orders.len()] {
                env.spectra(&clones[index], &["sync"]).success();
            }
        }
    }
    for dir in clones.iter().chain(clones.iter()) {
        env.spectra(dir, &["sync"]).success();
    }

    let expected = event_ids(&env, &clones[0]);
    let mut unique = expected.clone();
    unique.dedup();
    assert_eq!(unique.len(), expected.len(), "an event is there twice");
    // Every discover, note and undo of the three clones is there, plus the merges.
    assert!(expected.len() > 3 * 13 * 12, "{} events", expected.len());
    let reference = views(&env, &clones[0]);
    for dir in &clones {
        env.spectra(dir, &["verify"]).success();
        assert_eq!(event_ids(&env, dir), expected, "{} differs", dir.display());
        assert_eq!(
            views(&env, dir),
            reference,
            "{} reads differently",
            dir.display()
        );
    }
    // The remote only ever moved forward.
    assert_only_fast_forwards(&env, &remote);
}

/// Every update of the remote's log in its reflog is a fast-forward.
fn assert_only_fast_forwards(env: &TestEnv, remote: &Path) {
    let tips: Vec<String> = env
        .git(remote, &["reflog", "--format=%H", "refs/spectra/events"])
        .success()
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    assert!(tips.len() > 1, "the remote kept no reflog");
    for pair in tips.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        env.git(remote, &["merge-base", "--is-ancestor", older, newer])
            .success();
    }
}

#[test]
fn two_pushes_at_once_both_land_and_nothing_is_forced() {
    let env = TestEnv::new();
    let (remote, clones) = team(&env, &["alice", "bob"]);
    discover(&env, &clones[0], "logging");
    env.spectra(&clones[0], &["push"]).success();
    env.spectra(&clones[1], &["fetch"]).success();
    env.spectra(&clones[1], &["merge"]).success();
    discover(&env, &clones[0], "alerts");
    discover(&env, &clones[1], "billing");
    all_at_once(&env, &clones, &["push"]);
    let on_remote = env
        .git(&remote, &["log", "--format=%s", "refs/spectra/events"])
        .success()
        .stdout;
    for service in ["logging", "alerts", "billing"] {
        assert!(
            on_remote.contains(&format!("discover: decided on {service}"))
                || on_remote.contains(&format!("for {service}")),
            "{service} missing on the remote"
        );
    }
    assert_only_fast_forwards(&env, &remote);
}

#[test]
fn unrelated_logs_merge_and_a_conflict_is_listed_until_a_later_run_settles_it() {
    let env = TestEnv::new();
    let (_remote, clones) = team(&env, &["alice", "bob"]);
    let (alice, bob) = (&clones[0], &clones[1]);
    discover(&env, alice, "logging");
    discover(&env, bob, "logging");
    env.spectra(alice, &["sync"]).success();
    let merged = env.spectra(bob, &["sync"]).success();
    assert!(merged.stdout.contains("merged"), "{merged:#?}");
    assert!(
        merged.stderr.contains("both logs ran discover for logging"),
        "{merged:#?}"
    );
    let status = |dir: &Path| -> Value {
        let out = env
            .spectra(dir, &["status", "--offline", "--format", "json"])
            .success();
        serde_json::from_str(out.stdout.trim()).unwrap()
    };
    let conflicts = status(bob)["conflicts"].clone();
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{conflicts}");
    assert_eq!(conflicts[0]["service"], "logging");
    let merge = env
        .spectra(bob, &["log", "--kind", "log.merged", "--format", "json"])
        .success();
    let merge: Value = serde_json::from_str(merge.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        merge["event"]["payload"]["conflicts"][0]["activity"],
        "discover"
    );

    // Bob has a specification of logging already: the later run is an update.
    env.spectra(
        bob,
        &[
            "discover",
            "--offline",
            "--service",
            "logging",
            "--update",
            "an idea",
        ],
    )
    .success();
    assert_eq!(status(bob)["conflicts"], serde_json::json!([]));
    env.spectra(bob, &["verify"]).success();
}

#[test]
fn a_remote_log_that_fails_verification_is_never_merged() {
    let env = TestEnv::new();
    let (remote, clones) = team(&env, &["alice", "bob"]);
    let (alice, bob) = (&clones[0], &clones[1]);
    discover(&env, alice, "logging");
    env.spectra(alice, &["push"]).success();
    // Someone rewrites the newest event's subject-bearing commit on the remote by hand.
    let tip = rev(&env, &remote, "refs/spectra/events");
    let raw = env
        .git(&remote, &["cat-file", "commit", &tip])
        .success()
        .stdout;
    let (headers, message) = raw.split_once("\n\n").unwrap();
    let tree = headers
        .lines()
        .next()
        .unwrap()
        .strip_prefix("tree ")
        .unwrap();
    let parent = headers
        .lines()
        .find_map(|line| line.strip_prefix("parent "))
        .unwrap();
    let forged_message = message.replace("Spectra-Lamport:", "X-Lamport:");
    let forged = env
        .git(
            &remote,
            &["commit-tree", tree, "-p", parent, "-m", &forged_message],
        )
        .success()
        .stdout;
    env.git(
        &remote,
        &["update-ref", "refs/spectra/events", forged.trim()],
    )
    .success();

    discover(&env, bob, "billing");
    let before = rev(&env, bob, "refs/spectra/events");
    let refused = env.spectra(bob, &["sync"]).code(1);
    assert!(refused.stderr.contains("event #"), "{refused:#?}");
    assert_eq!(
        rev(&env, bob, "refs/spectra/events"),
        before,
        "merged anyway"
    );
}

#[test]
fn a_shallow_clone_syncs_the_whole_log() {
    let env = TestEnv::new();
    let (remote, alice) = remote_and_clone(&env, "alice");
    discover(&env, &alice, "logging");
    env.spectra(&alice, &["sync"]).success();
    let url = format!("file://{}", remote.display());
    env.git(
        env.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    )
    .success();
    let shallow = env.path().join("shallow");
    env.spectra(&shallow, &["sync"]).success();
    env.spectra(&shallow, &["verify"]).success();
    assert_eq!(event_ids(&env, &shallow), event_ids(&env, &alice));
}

#[test]
fn a_run_recorded_in_one_clone_is_undone_in_another() {
    let env = TestEnv::new();
    let (_remote, alice) = remote_and_clone(&env, "alice");
    let run = run_id(
        &env,
        &alice,
        &["discover", "--offline", "--service", "logging", "an idea"],
    );
    env.git(&alice, &["push", "-q", "origin", "main"]).success();
    env.spectra(&alice, &["sync"]).success();

    let bob = clone(&env, "bob");
    env.spectra(&bob, &["sync"]).success();
    let undone = env.spectra(&bob, &["undo", &run]).success();
    assert!(undone.stdout.contains("reverted"), "{undone:#?}");
    assert!(
        !bob.join(".spectra/logging.specification.yaml").exists(),
        "the spec is still on Bob's branch"
    );
    env.spectra(&bob, &["sync"]).success();
    env.spectra(&alice, &["sync"]).success();
    let runs = env
        .spectra(&alice, &["runs", "--format", "json"])
        .success()
        .stdout;
    let row: Value = serde_json::from_str(runs.lines().next().unwrap()).unwrap();
    assert_eq!(row["undone"], true, "Alice's log does not show Bob's undo");
}
