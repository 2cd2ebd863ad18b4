//! Two clones of one bare repository, each with its own events, join their logs through the
//! store's `merge_log` (the log travels with plain `git push` / `git fetch` here): the merged
//! log verifies, both clones end with the same events in the same order and print the same
//! JSON, unrelated logs merge, a conflict is recorded, and a tampered remote log is refused.

use std::path::{Path, PathBuf};

use spectra::repo::Repo;
use spectra::store::{EVENTS_REF, Merged, Store, StoreError};

use crate::common::{TestEnv, json_lines};

const TRACKING_REF: &str = "refs/spectra/remotes/origin/events";

/// A bare `origin.git` with one commit on `main`, and clones of it named `names`.
fn origin_and_clones(env: &TestEnv, names: &[&str]) -> (PathBuf, Vec<PathBuf>) {
    env.repo_with_commit("seed");
    env.git(env.path(), &["clone", "-q", "--bare", "seed", "origin.git"])
        .success();
    let clones = names
        .iter()
        .map(|name| {
            env.git(env.path(), &["clone", "-q", "origin.git", name])
                .success();
            env.path().join(name)
        })
        .collect();
    (env.path().join("origin.git"), clones)
}

/// Pushes the clone's log to origin as a fast-forward only (no `+`, no `--force`).
fn push_log(env: &TestEnv, clone: &Path) {
    env.git(
        clone,
        &[
            "push",
            "-q",
            "origin",
            &format!("{EVENTS_REF}:{EVENTS_REF}"),
        ],
    )
    .success();
}

/// Fetches origin's log into the remote-tracking ref (forced there: it only mirrors origin)
/// and merges it into the clone's log.
fn fetch_and_merge(env: &TestEnv, clone: &Path) -> Result<Merged, StoreError> {
    env.git(
        clone,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("+{EVENTS_REF}:{TRACKING_REF}"),
        ],
    )
    .success();
    let theirs = rev_parse(env, clone, TRACKING_REF);
    store(clone).merge_log(theirs, "origin")
}

fn store(clone: &Path) -> Store {
    Store::new(&Repo::open(clone).expect("open the clone"))
}

fn rev_parse(env: &TestEnv, dir: &Path, rev: &str) -> gix::ObjectId {
    let hex = env.git(dir, &["rev-parse", rev]).success().stdout;
    gix::ObjectId::from_hex(hex.trim().as_bytes()).expect("a commit id")
}

fn tip(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, &["rev-parse", EVENTS_REF])
        .success()
        .stdout
        .trim()
        .to_string()
}

#[track_caller]
fn assert_verifies(env: &TestEnv, dir: &Path, events: usize) {
    let verify = env.spectra(dir, &["verify"]).success();
    assert!(
        verify
            .stdout
            .starts_with(&format!("verified {events} events")),
        "{verify:?}"
    );
}

fn output(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    env.spectra(dir, args).success().stdout
}

fn discover_logging(env: &TestEnv, clone: &Path) {
    env.spectra(
        clone,
        &[
            "discover",
            "A logging service for payments",
            "--offline",
            "--service",
            "logging",
        ],
    )
    .success();
}

#[test]
fn two_clones_merge_each_others_logs_and_end_with_the_same_log() {
    let env = TestEnv::new();
    let (_origin, clones) = origin_and_clones(&env, &["alice", "bob"]);
    let (alice, bob) = (&clones[0], &clones[1]);

    // A shared beginning: alice's first event, which bob's empty log fast-forwards to.
    env.append(alice, "note.added", r#"{"text":"start"}"#);
    push_log(&env, alice);
    assert!(matches!(
        fetch_and_merge(&env, bob).unwrap(),
        Merged::FastForward {
            from: None,
            events: 1,
            ..
        }
    ));

    // Then each decides on its own: both discover `logging`.
    discover_logging(&env, alice);
    push_log(&env, alice);
    discover_logging(&env, bob);
    env.append(bob, "note.added", r#"{"text":"bob only"}"#);
    let bob_before = tip(&env, bob);
    let bob_count = store(bob).count().unwrap();
    let alice_count = store(alice).count().unwrap();

    let (merge, ours_events, theirs_events, conflicts) = match fetch_and_merge(&env, bob).unwrap() {
        Merged::Merged {
            event,
            ours_events,
            theirs_events,
            conflicts,
        } => (event, ours_events, theirs_events, conflicts),
        other => panic!("expected a merge, got {other:?}"),
    };
    assert_eq!(ours_events, bob_count - 1);
    assert_eq!(theirs_events, alice_count - 1);
    assert_eq!(
        env.git(bob, &["rev-parse", &format!("{}^1", merge.commit)])
            .success()
            .stdout
            .trim(),
        bob_before
    );
    // The conflict: both finished a discover of logging since the shared event.
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(
        (
            conflicts[0].service.as_str(),
            conflicts[0].activity.as_str()
        ),
        ("logging", "discover")
    );
    let recorded = &env.events(bob, "log.merged")[0];
    assert_eq!(recorded["payload"]["conflicts"][0]["service"], "logging");
    assert_eq!(
        recorded["payload"]["conflicts"][0]["ours"],
        serde_json::json!(conflicts[0].ours)
    );
    assert_eq!(
        recorded["payload"]["conflicts"][0]["theirs"],
        serde_json::json!(conflicts[0].theirs)
    );
    let total = alice_count + bob_count - 1 + 1;
    assert_verifies(&env, bob, total);

    // Bob's merged log is a fast-forward of origin's; alice fast-forwards to it.
    push_log(&env, bob);
    match fetch_and_merge(&env, alice).unwrap() {
        Merged::FastForward { events, .. } => assert_eq!(events, bob_count - 1 + 1),
        other => panic!("expected a fast-forward, got {other:?}"),
    }
    assert!(matches!(
        fetch_and_merge(&env, bob).unwrap(),
        Merged::UpToDate
    ));
    assert_eq!(tip(&env, alice), tip(&env, bob));
    assert_verifies(&env, alice, total);
    for args in [
        &["log", "--format", "json"][..],
        &["runs", "--format", "json"],
        &["manifest", "--format", "json"],
        &["stats", "--format", "json"],
    ] {
        let (a, b) = (output(&env, alice, args), output(&env, bob, args));
        assert!(!a.trim().is_empty(), "{args:?} printed nothing");
        assert_eq!(a, b, "{args:?} differs between the clones");
    }
    // Each event once.
    let logged = json_lines(&output(&env, alice, &["log", "--format", "json"]));
    assert_eq!(logged.len(), total);

    // The next append continues from the merge.
    let merge_lamport = merge.event.lamport;
    env.append(bob, "note.added", r#"{"text":"after"}"#);
    let notes = env.events(bob, "note.added");
    assert_eq!(
        notes.last().unwrap()["lamport"].as_u64(),
        Some(merge_lamport + 1)
    );
    assert_verifies(&env, bob, total + 1);
}

#[test]
fn logs_started_apart_merge_and_a_tampered_remote_log_is_refused() {
    let env = TestEnv::new();
    let (origin, clones) = origin_and_clones(&env, &["alice", "dave"]);
    let (alice, dave) = (&clones[0], &clones[1]);
    for n in 0..3 {
        env.append(alice, "note.added", &format!(r#"{{"n":{n}}}"#));
    }
    push_log(&env, alice);
    // Dave started his own log before ever fetching: two unrelated roots.
    env.append(dave, "note.added", r#"{"dave":1}"#);
    env.append(dave, "note.added", r#"{"dave":2}"#);
    match fetch_and_merge(&env, dave).unwrap() {
        Merged::Merged {
            ours_events,
            theirs_events,
            event,
            ..
        } => {
            assert_eq!((ours_events, theirs_events), (2, 3));
            assert_eq!(event.event.lamport, 4, "max(2, 3) + 1");
        }
        other => panic!("expected a merge, got {other:?}"),
    }
    assert_verifies(&env, dave, 6);

    // Someone with write access to origin rewrites its newest event onto the one before last.
    let forged_from = tip(&env, &origin);
    let message = env
        .git(&origin, &["log", "-1", "--format=%B", &forged_from])
        .success()
        .stdout;
    let forged = env
        .git(
            &origin,
            &[
                "commit-tree",
                &format!("{forged_from}^{{tree}}"),
                "-p",
                &format!("{forged_from}~2"),
                "-m",
                message.trim(),
            ],
        )
        .success()
        .stdout;
    env.git(&origin, &["update-ref", EVENTS_REF, forged.trim()])
        .success();
    env.append(alice, "note.added", r#"{"n":9}"#);
    let before = tip(&env, alice);
    match fetch_and_merge(&env, alice).unwrap_err() {
        StoreError::UnverifiedLog { failure, .. } => {
            assert_eq!(failure.commit.to_string(), forged.trim());
            // The forged event follows the first one directly.
            assert_eq!(failure.position, 2);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(tip(&env, alice), before, "nothing merged");
    assert_verifies(&env, alice, 4);

    // A branch where the log should be is no log at all.
    let main = rev_parse(&env, alice, "main");
    let refused = store(alice).merge_log(main, "origin").unwrap_err();
    assert!(matches!(refused, StoreError::NotALog { .. }), "{refused:?}");
    assert!(
        refused
            .to_string()
            .contains("is not a git spectra event log")
    );
    assert_eq!(tip(&env, alice), before);
}
