//! The writing side of the log defends itself: free text in subjects and bodies cannot pose as a
//! trailer.

use std::path::Path;

use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::{EVENTS_REF, Store};

use crate::common::TestEnv;

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
