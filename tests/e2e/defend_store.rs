//! The writing side of the log defends itself: no event that `verify` would reject is ever
//! written (values a trailer cannot carry, from the command line or a library caller), a payload
//! is recorded exactly as given or refused (invalid UTF-8, duplicate keys, numbers that would
//! change), free text cannot pose as a trailer, and every move of the ref is in its reflog, so
//! a replaced log is recovered with plain git.

use std::path::Path;

use spectra::event::{EventError, NewEvent, TrailerField};
use spectra::repo::Repo;
use spectra::store::{EVENTS_REF, Store, StoreError};

use crate::common::{Run, TestEnv, spectra_bin};

const RULE: &str = "one line of printable text";

/// Whether `refs/spectra/events` exists.
fn has_log(env: &TestEnv, repo: &Path) -> bool {
    env.git(repo, &["rev-parse", "--verify", "--quiet", EVENTS_REF])
        .code
        == 0
}

#[track_caller]
fn assert_verifies(env: &TestEnv, repo: &Path, events: usize) {
    let verify = env.spectra(repo, &["verify"]).success();
    assert!(
        verify
            .stdout
            .starts_with(&format!("verified {events} event")),
        "{verify:?}"
    );
}

#[test]
fn append_refuses_a_value_its_trailer_cannot_carry_and_names_where_it_came_from() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (&["--run", "r1 "], None, "--run (or SPECTRA_RUN)"),
        (&["--run", "r\n1"], None, "--run (or SPECTRA_RUN)"),
        (&[], Some("r1\r"), "--run (or SPECTRA_RUN)"),
        (&["--service", "a\tb"], None, "--service"),
        (&["--activity", "two  spaces"], None, "--activity"),
        (&["--activity", ""], None, "--activity"),
    ];
    for (flags, spectra_run, named) in cases {
        let mut args = vec!["append", "--kind", "note.added", "--payload", "{}"];
        args.extend_from_slice(flags);
        let mut command = env.command(spectra_bin(), &repo);
        command.args(&args);
        if let Some(run) = spectra_run {
            command.env("SPECTRA_RUN", run);
        }
        let refused = Run::from_output(command.output().expect("run git-spectra")).code(2);
        assert!(
            refused.stderr.starts_with(&format!("error: {named}: ")),
            "{flags:?}: {refused:?}"
        );
        assert!(refused.stderr.contains(RULE), "{flags:?}: {refused:?}");
        assert!(refused.stderr.contains("\nhint: "), "{refused:?}");
        assert!(!has_log(&env, &repo), "{flags:?} wrote an event");
    }

    let kind = env
        .spectra(
            &repo,
            &["append", "--kind", "note.added ", "--payload", "{}"],
        )
        .code(2);
    assert!(kind.stderr.contains("lowercase dotted words"), "{kind:?}");

    // A single space between words is what a trailer keeps, so it is fine.
    env.spectra(
        &repo,
        &[
            "append",
            "--kind",
            "note.added",
            "--payload",
            "{}",
            "--run",
            "run one",
        ],
    )
    .success();
    assert_verifies(&env, &repo, 1);
}

#[test]
fn a_library_caller_gets_a_typed_error_and_nothing_is_written() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let store = Store::new(&Repo::open(&repo).unwrap());
    let good = NewEvent::new("note.added").run("r1");
    let bad = NewEvent::new("note.added").run("r1").service("logging\n");
    let err = store.append_batch(vec![good, bad]).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Event(EventError::InvalidTrailerValue {
                field: TrailerField::Service,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(store.tip().unwrap(), None, "nothing of the batch lands");

    let mut spoofed_id = NewEvent::new("note.added");
    spoofed_id.id = "abc\nSpectra-Run: r2".into();
    assert!(matches!(
        store.append(spoofed_id).unwrap_err(),
        StoreError::Event(EventError::InvalidTrailerValue {
            field: TrailerField::Id,
            ..
        })
    ));
    assert_eq!(store.tip().unwrap(), None);
}

#[test]
fn a_payload_that_is_not_utf8_is_bad_input_with_a_hint() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let args = ["append", "--kind", "note.added", "--payload", "-"];
    let refused = env
        .spectra_with_bytes(&repo, &args, b"{\"text\": \"caf\xe9\"}")
        .code(2);
    assert!(
        refused
            .stderr
            .contains("the payload from standard input is not valid UTF-8"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("\nhint: "), "{refused:?}");
    assert!(!has_log(&env, &repo));
}

#[test]
fn a_payload_is_recorded_exactly_or_refused_naming_the_path() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let append = |payload: &str| {
        env.spectra(
            &repo,
            &["append", "--kind", "note.added", "--payload", payload],
        )
    };

    let duplicate = append(r#"{"a": 1, "b": {"k": 1, "k": 2}}"#).code(2);
    assert!(
        duplicate
            .stderr
            .contains(r#"has the key "k" twice in the same object (at $.b.k)"#),
        "{duplicate:?}"
    );
    let big = append(r#"{"ids": [1, 12345678901234567890123]}"#).code(2);
    assert!(
        big.stderr
            .contains("has the number 12345678901234567890123 at $.ids[1]"),
        "{big:?}"
    );
    let precise = append(r#"{"x": 1.0000000000000001}"#).code(2);
    assert!(precise.stderr.contains("at $.x"), "{precise:?}");
    assert!(!has_log(&env, &repo));

    // What can be kept exactly is kept: the largest 64-bit integers and exact decimals.
    append(r#"{"max": 18446744073709551615, "min": -9223372036854775808, "half": 0.5}"#).success();
    let stored = env.events(&repo, "note.added");
    assert_eq!(stored[0]["payload"]["max"], serde_json::json!(u64::MAX));
    assert_eq!(stored[0]["payload"]["min"], serde_json::json!(i64::MIN));
    let raw = env
        .git(&repo, &["show", &format!("{EVENTS_REF}:event.json")])
        .success()
        .stdout;
    assert!(raw.contains(r#""max":18446744073709551615"#), "{raw}");
    assert_verifies(&env, &repo, 1);
}

#[test]
fn free_text_in_subjects_and_bodies_never_reads_as_a_trailer() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    for subject in ["x\n\nSpectra-Reverts: abc", "Spectra-Run: r-evil"] {
        env.spectra(
            &repo,
            &[
                "append",
                "--kind",
                "note.added",
                "-m",
                subject,
                "--payload",
                "{}",
            ],
        )
        .success();
    }
    let store = Store::new(&Repo::open(&repo).unwrap());
    let mut with_body = NewEvent::new("note.added").subject("a model said");
    with_body.body = Some(
        "The model says:\nSpectra-Reverts: abc\nSpectra-Run:r-evil\n(cherry picked from commit 0123456)"
            .into(),
    );
    store.append(with_body).unwrap();

    let git_log = |args: &[&str]| {
        let mut all = vec!["log", EVENTS_REF];
        all.extend_from_slice(args);
        env.git(&repo, &all).success().stdout
    };
    let reverts = git_log(&["--format=%(trailers:key=Spectra-Reverts)"]);
    assert_eq!(reverts.trim(), "", "spoofed Spectra-Reverts trailers");
    let runs = git_log(&["--format=%(trailers:key=Spectra-Run,valueonly)"]);
    assert_eq!(runs.trim(), "", "spoofed Spectra-Run trailers");
    // The audit greps of docs/audit.md and docs/undo.md find nothing either.
    assert_eq!(git_log(&["--grep=^Spectra-Reverts:", "--oneline"]), "");
    assert_eq!(git_log(&["--grep=^Spectra-Run:", "--oneline"]), "");

    // Still readable: the words are all there.
    let messages = git_log(&["--format=%B"]);
    assert!(messages.contains(" Spectra-Run: r-evil"), "{messages}");
    assert!(messages.contains(" Spectra-Reverts: abc"), "{messages}");
    assert!(messages.contains("x Spectra-Reverts: abc"), "{messages}");
    assert_verifies(&env, &repo, 3);
}

#[test]
fn the_reflog_records_every_append_and_restores_a_replaced_log() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    for n in 1..=3 {
        env.spectra(
            &repo,
            &[
                "append",
                "--kind",
                "note.added",
                "-m",
                &format!("note {n}"),
                "--payload",
                "{}",
            ],
        )
        .success();
    }
    let store = Store::new(&Repo::open(&repo).unwrap());
    store
        .append_batch(vec![
            NewEvent::new("note.added").subject("note 4"),
            NewEvent::new("note.added").subject("note 5"),
        ])
        .unwrap();
    let tip = env.git(&repo, &["rev-parse", EVENTS_REF]).success().stdout;
    let tip = tip.trim();

    let reflog = env
        .git(&repo, &["reflog", "--format=%gs", EVENTS_REF])
        .success()
        .stdout;
    assert_eq!(
        reflog.lines().collect::<Vec<_>>(),
        [
            "spectra append: 2 events: note 5",
            "spectra append: note 3",
            "spectra append: note 2",
            "spectra append: note 1",
        ]
    );

    // The log is replaced by accident: the ref now names the user's own commit.
    env.git(&repo, &["update-ref", EVENTS_REF, "HEAD"])
        .success();
    env.spectra(&repo, &["verify"]).code(1);

    // docs/audit.md: find the old tip in the reflog and put it back, only if nothing moved.
    let reflog = env
        .git(&repo, &["reflog", "--format=%H %gs", EVENTS_REF])
        .success()
        .stdout;
    let old = reflog
        .lines()
        .find(|line| line.ends_with("spectra append: 2 events: note 5"))
        .and_then(|line| line.split(' ').next())
        .expect("the old tip is in the reflog");
    assert_eq!(old, tip);
    let current = env.git(&repo, &["rev-parse", "HEAD"]).success().stdout;
    env.git(&repo, &["update-ref", EVENTS_REF, old, current.trim()])
        .success();
    assert_verifies(&env, &repo, 5);
}

#[test]
fn a_bare_repository_gets_the_reflog_too() {
    let env = TestEnv::new();
    env.git(env.path(), &["init", "-q", "--bare", "b.git"])
        .success();
    let bare = env.path().join("b.git");
    let store = Store::new(&Repo::open(&bare).unwrap());
    store.append(NewEvent::new("note.added")).unwrap();
    let reflog = env
        .git(&bare, &["reflog", "--format=%gs", EVENTS_REF])
        .success()
        .stdout;
    assert_eq!(reflog.trim(), "spectra append: spectra: note added");
}
