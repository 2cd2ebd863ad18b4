//! `append`, `log`, `show` and `verify` through the real binary.

use crate::common::{TestEnv, json_lines};

#[test]
fn empty_log_prints_nothing_and_verifies_zero_events() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let log = env.spectra(&repo, &["log"]).success();
    assert_eq!(log.stdout, "");
    let verify = env.spectra(&repo, &["verify"]).success();
    assert!(verify.stdout.contains("verified 0 events"), "{verify:?}");
}

#[test]
fn append_prints_the_id_and_log_lists_newest_first() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let first = env.append(&repo, "note.added", r#"{"n": 1}"#);
    let second = env.append(&repo, "note.added", r#"{"n": 2}"#);
    assert_eq!(first.len(), 36, "a UUID: {first}");
    assert_ne!(first, second);

    let records = json_lines(
        &env.spectra(&repo, &["log", "--format", "json"])
            .success()
            .stdout,
    );
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()]);
    assert_eq!(records[0]["event"]["lamport"], 2);
    assert_eq!(records[0]["event"]["payload"]["n"], 2);
    assert_eq!(records[0]["event"]["actor"], "Ada Tester <ada@example.com>");

    let human = env.spectra(&repo, &["log", "-n", "1"]).success();
    assert_eq!(human.stdout.lines().count(), 1);
    assert!(human.stdout.contains("note.added"), "{human:?}");
}

#[test]
fn payload_is_read_from_standard_input() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let id = env
        .spectra_with_input(
            &repo,
            &["append", "--kind", "review.scored", "--payload", "-"],
            r#"{"score": 3}"#,
        )
        .success()
        .stdout
        .trim()
        .to_string();
    let shown = json_lines(
        &env.spectra(&repo, &["show", &id, "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(shown[0]["event"]["payload"]["score"], 3);
}

#[test]
fn a_payload_that_is_not_a_json_object_is_refused_and_nothing_is_written() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for (payload, expected) in [
        ("[1, 2]", "not an array"),
        ("{oops", "not valid JSON"),
        ("\"text\"", "not a string"),
    ] {
        let run = env
            .spectra(
                &repo,
                &["append", "--kind", "note.added", "--payload", payload],
            )
            .code(2);
        assert!(run.stderr.starts_with("error: "), "{run:?}");
        assert!(run.stderr.contains(expected), "{payload}: {run:?}");
        assert!(run.stderr.contains("hint: "), "{run:?}");
    }
    let bad_kind = env
        .spectra(&repo, &["append", "--kind", "Bad Kind", "--payload", "{}"])
        .code(2);
    assert!(
        bad_kind
            .stderr
            .contains("event kind `Bad Kind` is not valid"),
        "{bad_kind:?}"
    );
    assert_eq!(env.spectra(&repo, &["log"]).success().stdout, "");
    assert!(
        !env.git(
            &repo,
            &["rev-parse", "--verify", "-q", "refs/spectra/events"]
        )
        .stdout
        .contains(char::is_alphanumeric)
    );
}

#[test]
fn log_filters_by_run_activity_service_kind_and_time() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let append = |args: &[&str]| {
        let mut all = vec!["append"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--payload", "{}"]);
        env.spectra(&repo, &all).success().stdout.trim().to_string()
    };
    let a = append(&[
        "--kind",
        "run.started",
        "--run",
        "run-aaaa",
        "--activity",
        "discover",
        "--service",
        "logging",
    ]);
    let b = append(&[
        "--kind",
        "decision.made",
        "--run",
        "run-aaaa",
        "--activity",
        "discover",
        "--service",
        "logging",
    ]);
    let c = append(&[
        "--kind",
        "decision.made",
        "--run",
        "run-bbbb",
        "--activity",
        "plan",
        "--service",
        "billing",
    ]);

    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["log", "--format", "json"];
        all.extend_from_slice(args);
        json_lines(&env.spectra(&repo, &all).success().stdout)
            .iter()
            .map(|r| r["event"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["--run", "run-aaaa"]), vec![b.clone(), a.clone()]);
    assert_eq!(
        ids(&["--run", "run-b"]),
        vec![c.clone()],
        "run prefixes match"
    );
    assert_eq!(ids(&["--activity", "plan"]), vec![c.clone()]);
    assert_eq!(ids(&["--service", "logging"]), vec![b.clone(), a.clone()]);
    assert_eq!(
        ids(&["--kind", "decision.made"]),
        vec![c.clone(), b.clone()]
    );
    assert_eq!(
        ids(&["--kind", "decision.made", "-n", "1"]),
        vec![c.clone()]
    );
    assert_eq!(ids(&["--since", "2000-01-01"]).len(), 3);
    assert!(ids(&["--since", "2999-01-01"]).is_empty());
    let bad = env.spectra(&repo, &["log", "--since", "someday"]).code(2);
    assert!(bad.stderr.contains("not a date"), "{bad:?}");
}

#[test]
fn show_finds_by_prefix_and_lists_candidates_when_ambiguous() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let first = env.append(&repo, "note.added", r#"{"text": "one"}"#);
    let second = env.append(&repo, "note.added", r#"{"text": "two"}"#);

    // A unique prefix: the ids differ somewhere; take one character past the common part.
    let common = first
        .chars()
        .zip(second.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let unique = &second[..(common + 1).max(4)];
    let shown = env.spectra(&repo, &["show", unique]).success();
    assert!(shown.stdout.contains(&second), "{shown:?}");
    assert!(shown.stdout.contains("\"text\": \"two\""), "{shown:?}");

    // UUIDv7 ids made in the same second share their first characters.
    let ambiguous = &first[..4];
    let run = env.spectra(&repo, &["show", ambiguous]).code(2);
    assert!(run.stderr.contains("is ambiguous"), "{run:?}");
    assert!(
        run.stderr.contains(&first) && run.stderr.contains(&second),
        "{run:?}"
    );

    let missing = env.spectra(&repo, &["show", "ffffffff"]).code(1);
    assert!(missing.stderr.contains("no event matches"), "{missing:?}");

    // The commit hash that `git log` shows works too.
    let commit = env
        .git(&repo, &["rev-parse", "--short=10", "refs/spectra/events"])
        .success();
    let by_commit = env
        .spectra(&repo, &["show", commit.stdout.trim()])
        .success();
    assert!(by_commit.stdout.contains(&second), "{by_commit:?}");
}

#[test]
fn plain_git_log_is_a_readable_audit() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.spectra(
        &repo,
        &[
            "append",
            "--kind",
            "decision.made",
            "--run",
            "run-1",
            "--activity",
            "discover",
            "--service",
            "logging",
            "-m",
            "discover: chose catalog.check for logging",
            "--payload",
            "{}",
        ],
    )
    .success();
    let log = env
        .git(&repo, &["log", "refs/spectra/events", "--format=%s|%(trailers:key=Spectra-Run,valueonly,separator=)|%(trailers:key=Spectra-Event,valueonly,separator=)"])
        .success();
    assert_eq!(
        log.stdout.trim(),
        "discover: chose catalog.check for logging|run-1|decision.made"
    );
    let trailers = env
        .git(
            &repo,
            &[
                "log",
                "-1",
                "refs/spectra/events",
                "--format=%(trailers:only,unfold)",
            ],
        )
        .success();
    for key in [
        "Spectra-Event",
        "Spectra-Id",
        "Spectra-Run",
        "Spectra-Activity",
        "Spectra-Service",
        "Spectra-Lamport",
        "Spectra-Schema",
        "Spectra-Digest",
    ] {
        assert!(
            trailers.stdout.contains(&format!("{key}: ")),
            "{key} missing: {trailers:?}"
        );
    }
}

#[test]
fn inside_a_playbook_the_run_and_cause_come_from_the_environment() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let output = env
        .command(crate::common::spectra_bin(), &repo)
        .args(["append", "--kind", "note.added", "--payload", "{}"])
        .env("SPECTRA_RUN", "run-from-env")
        .env("SPECTRA_EVENT", "event-from-env")
        .output()
        .unwrap();
    assert!(output.status.success());
    let records = json_lines(
        &env.spectra(&repo, &["log", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(records[0]["event"]["run"], "run-from-env");
    assert_eq!(records[0]["event"]["causes"][0], "event-from-env");
}

#[test]
fn a_closed_pipe_ends_log_quietly() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for n in 0..300 {
        env.spectra(
            &repo,
            &[
                "append",
                "--kind",
                "note.added",
                "--payload",
                &format!(r#"{{"n": {n}, "pad": "{}"}}"#, "x".repeat(200)),
            ],
        )
        .success();
    }
    let shell = format!(
        "'{}' log --format json | head -1",
        crate::common::spectra_bin().display()
    );
    let output = env
        .command("bash", &repo)
        .args(["-o", "pipefail", "-c", &shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}
