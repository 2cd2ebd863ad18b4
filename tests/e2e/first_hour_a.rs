//! The first hour, lane A (issue 21, items 1, 2 and 5): a command that writes refuses to start
//! without a git identity and says how to set one; `git spectra help [COMMAND]` prints the long
//! help without a man page, and usage errors point to it; the offline demo reads as the success
//! it is and the first run ends with the next step.

use crate::common::{Run, TestRepo, spectra_bin};

const IDEA: &str = "A logging service that collects logs from every host";

/// `git spectra args...` with no identity anywhere (see `command_without_identity`).
fn spectra_without_identity(repo: &TestRepo, args: &[&str]) -> Run {
    let output = repo
        .env
        .command_without_identity(spectra_bin(), repo.root())
        .args(args)
        .output()
        .expect("run git-spectra");
    Run::from_output(output)
}

/// `git <git_args...> spectra args...` through git itself, with no identity but what
/// `git_args` give (`-c user.name=...` reaches us as `GIT_CONFIG_PARAMETERS`).
fn through_git_without_identity(repo: &TestRepo, git_args: &[&str], args: &[&str]) -> Run {
    let output = repo
        .env
        .command_without_identity("git", repo.root())
        .args(git_args)
        .arg("spectra")
        .args(args)
        .output()
        .expect("run git spectra");
    Run::from_output(output)
}

/// Everything under `refs/spectra`, as `git for-each-ref` lists it.
fn spectra_refs(repo: &TestRepo) -> String {
    repo.git(&["for-each-ref", "refs/spectra"])
}

#[track_caller]
fn assert_refused_for_identity(run: &Run, missing: &str) {
    assert_eq!(run.code, 128, "expected the identity refusal:\n{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("fatal: author identity unknown: {missing} not set")),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("--local instead of --global"),
        "{run:#?}"
    );
}

#[test]
fn discover_without_an_identity_is_refused_before_anything_is_written() {
    let repo = TestRepo::new();
    let head = repo.git(&["rev-parse", "HEAD"]);

    let refused = spectra_without_identity(&repo, &["discover", "--offline", IDEA]);
    assert_refused_for_identity(&refused, "user.name and user.email are");
    for hint in [
        "hint: run `git config --global user.name \"Your Name\"`",
        "hint: run `git config --global user.email \"you@example.com\"`",
    ] {
        assert!(refused.stderr.contains(hint), "{hint}: {refused:#?}");
    }
    assert_eq!(spectra_refs(&repo), "", "no event, no ref");
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "no file, nothing staged");
    assert!(!repo.root().join(".spectra").exists());
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);

    // The identity from `git -c`, as the README's demo gives it, is enough.
    let ok = through_git_without_identity(
        &repo,
        &["-c", "user.name=Demo", "-c", "user.email=demo@example.com"],
        &["discover", "--offline", IDEA],
    )
    .success();
    assert!(ok.stdout.contains("discover succeeded"), "{ok:#?}");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>", "refs/spectra/events"]),
        "Demo <demo@example.com>"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae> %cn <%ce>", "HEAD"]),
        "Demo <demo@example.com> Demo <demo@example.com>"
    );
}

#[test]
fn every_command_that_writes_needs_an_identity_and_reads_do_not() {
    let repo = TestRepo::new();
    repo.spectra(&["discover", "--offline", IDEA]).success();
    let tip = repo.git(&["rev-parse", "refs/spectra/events"]);

    for args in [
        &["discover", "--offline", "another idea", "--service", "other"][..],
        &["run", "--offline", "ship it"],
        &["test", "--offline", "run the tests"],
        &["append", "--kind", "note.added", "--payload", "{}"],
        &["undo"],
        &["redo"],
        &["merge", "origin"],
        &["sync", "origin"],
        &["push", "origin"],
    ] {
        let run = spectra_without_identity(&repo, args);
        assert_refused_for_identity(&run, "user.name and user.email are");
        assert_eq!(
            repo.git(&["rev-parse", "refs/spectra/events"]),
            tip,
            "{args:?} wrote to the log"
        );
    }
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    let id = repo.git(&["rev-parse", "refs/spectra/events"]);
    for args in [
        &["log"][..],
        &["show", &id],
        &["status"],
        &["verify"],
        &["runs"],
        &["manifest", "discover"],
        &["history"],
        &["stats"],
    ] {
        spectra_without_identity(&repo, args).success();
    }
}

#[test]
fn the_refusal_names_only_what_is_missing_and_email_may_come_from_the_environment() {
    let repo = TestRepo::new();
    repo.git(&["config", "user.name", "Local Name"]);
    let append = ["append", "--kind", "note.added", "--payload", "{}"];

    let refused = spectra_without_identity(&repo, &append);
    assert_refused_for_identity(&refused, "user.email is");
    assert!(!refused.stderr.contains("user.name"), "{refused:#?}");
    assert_eq!(spectra_refs(&repo), "");

    // An empty value is no identity, as git refuses an empty name.
    let empty = through_git_without_identity(&repo, &["-c", "user.email="], &append);
    assert_refused_for_identity(&empty, "user.email is");

    // `EMAIL` gives the email, as it does to `git commit`.
    let output = repo
        .env
        .command_without_identity(spectra_bin(), repo.root())
        .args(append)
        .env("EMAIL", "env@example.com")
        .output()
        .expect("run git-spectra");
    Run::from_output(output).success();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>", "refs/spectra/events"]),
        "Local Name <env@example.com>"
    );
}

