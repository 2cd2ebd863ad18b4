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
        run.stderr.contains(&format!(
            "fatal: author identity unknown: {missing} not set"
        )),
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
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "no file, nothing staged"
    );
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
        &[
            "discover",
            "--offline",
            "another idea",
            "--service",
            "other",
        ][..],
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
        &["report"],
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

/// `git spectra args...` through git itself, with the pinned environment.
fn through_git(repo: &TestRepo, args: &[&str]) -> Run {
    let output = repo
        .env
        .command("git", repo.root())
        .arg("spectra")
        .args(args)
        .output()
        .expect("run git spectra");
    Run::from_output(output)
}

#[test]
fn help_prints_the_long_help_of_any_command_without_a_man_page() {
    let repo = TestRepo::new();
    // No man page is installed in the test's home or anywhere on its MANPATH.
    for command in ["discover", "log", "plan"] {
        let help = through_git(&repo, &["help", command]).success();
        let own = repo.spectra(&[command, "--help"]).success();
        assert_eq!(help.stdout, own.stdout, "help {command}");
        assert!(help.stdout.contains("Examples:\n  git "), "{help:#?}");
        assert!(help.stderr.is_empty(), "{help:#?}");
    }
    let nested = through_git(&repo, &["help", "registry", "show"]).success();
    assert!(
        nested.stdout.contains("Usage: git spectra registry show"),
        "{nested:#?}"
    );
    let tool = through_git(&repo, &["help"]).success();
    assert!(
        tool.stdout.contains("An AI-agent orchestrator"),
        "{tool:#?}"
    );
    assert!(tool.stdout.contains("discover"), "{tool:#?}");

    let unknown = through_git(&repo, &["help", "nosuch"]).code(2);
    assert!(
        unknown.stderr.contains("unrecognized subcommand 'nosuch'"),
        "{unknown:#?}"
    );
    assert!(
        unknown.stderr.ends_with("hint: see 'git spectra help'\n"),
        "{unknown:#?}"
    );
}

#[test]
fn a_usage_mistake_points_to_the_help_of_its_command() {
    let repo = TestRepo::new();
    for (args, pointer) in [
        (&["log", "--bogus"][..], "git spectra help log"),
        (
            &["--color", "never", "registry", "show"],
            "git spectra help registry show",
        ),
        (&["plan", "--nope", "x"], "git spectra help plan"),
        (&["lgo"], "git spectra help"),
    ] {
        let run = repo.spectra(args).code(2);
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:#?}");
        assert!(
            run.stderr.ends_with(&format!("\nhint: see '{pointer}'\n")),
            "{args:?}: {run:#?}"
        );
        // `git spectra --help` would run `man`, which may have no page to show.
        assert!(!run.stderr.contains("try '--help'"), "{args:?}: {run:#?}");
    }
}

/// The man page step of the README's first command, run as written with `CARGO_HOME` where a
/// test can look: it writes `git-spectra.1` where `man` finds it for `~/.cargo/bin`.
#[test]
fn the_readme_install_line_installs_the_man_page_beside_the_binary() {
    let readme = std::fs::read_to_string(crate::common::manifest_dir().join("README.md"))
        .expect("read README.md");
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .expect("a first sh block");
    let steps: Vec<&str> = first.split(" && ").collect();
    assert!(steps[0].starts_with("cargo install"), "{first}");
    assert!(
        steps.last().unwrap().contains("spectra discover"),
        "the line ends in the demo: {first}"
    );
    let man_step = steps
        .iter()
        .find(|step| step.contains(" man --dir "))
        .unwrap_or_else(|| panic!("no man page step in {first}"));

    let repo = TestRepo::new();
    let cargo_home = repo.env.path().join("cargo");
    std::fs::create_dir_all(cargo_home.join("bin")).expect("create bin");
    std::os::unix::fs::symlink(spectra_bin(), cargo_home.join("bin/git-spectra"))
        .expect("link the binary");
    let output = repo
        .env
        .command("sh", repo.root())
        .args(["-c", man_step])
        .env("CARGO_HOME", &cargo_home)
        .output()
        .expect("run sh");
    Run::from_output(output).success();
    let page = std::fs::read_to_string(cargo_home.join("share/man/man1/git-spectra.1"))
        .expect("git-spectra.1 installed");
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
}

/// The `next:` block and what follows it, empty when there is none.
fn next_steps(run: &Run) -> &str {
    run.stdout
        .find("\nnext:\n")
        .map_or("", |at| &run.stdout[at + 1..])
}

#[test]
fn the_first_run_reads_as_a_success_and_ends_with_the_next_step() {
    let repo = TestRepo::new();
    let first = repo.spectra(&["discover", "--offline", IDEA]).success();
    assert!(
        first
            .stdout
            .contains("  gates:     2 checked by rules and passed; 9 need a model to judge\n"),
        "{first:#?}"
    );
    assert!(!first.stdout.contains("not passed"), "{first:#?}");
    let next = next_steps(&first);
    for step in [
        "  see what was recorded:  git spectra log\n",
        "  decide with a model:    git config spectra.llm.url <URL> && git config spectra.llm.model <MODEL>",
        "  take this run back:     git spectra undo\n",
    ] {
        assert!(next.contains(step), "{step}: {first:#?}");
    }
    // The pinned environment gives an identity: nothing to set.
    assert!(!next.contains("identity"), "{first:#?}");
    assert!(first.stdout.ends_with(next), "the report ends with it");

    let second = repo
        .spectra(&[
            "discover",
            "--offline",
            "--service",
            "billing",
            "a billing service",
        ])
        .success();
    assert!(second.stdout.contains("discover succeeded"), "{second:#?}");
    assert_eq!(next_steps(&second), "", "only the first run: {second:#?}");
}

#[test]
fn json_output_has_no_next_step() {
    let repo = TestRepo::new();
    let run = repo
        .spectra(&["discover", "--offline", "--format", "json", IDEA])
        .success();
    let report: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|err| panic!("{err}: {run:#?}"));
    assert_eq!(report["outcome"], "succeeded");
    assert!(!run.stdout.contains("next:"), "{run:#?}");
    assert!(!run.stderr.contains("next:"), "{run:#?}");
}

/// The README's demo on a machine without an identity: it succeeds with `git -c`, and its last
/// lines say exactly what to run before the next command that writes.
#[test]
fn the_demo_without_an_identity_ends_with_how_to_set_one() {
    let repo = TestRepo::new();
    let demo = through_git_without_identity(
        &repo,
        &["-c", "user.name=Demo", "-c", "user.email=demo@example.com"],
        // The README's machine has no model configured; the tests' pins an unreachable one.
        &["discover", "--offline", IDEA],
    )
    .success();
    let last: Vec<&str> = demo.stdout.lines().rev().take(2).collect();
    assert_eq!(
        last[1],
        "  set your git identity:  git config --global user.name \"Your Name\" && git config --global user.email \"you@example.com\"",
        "{demo:#?}"
    );
    assert!(last[0].contains("--local instead of --global"), "{demo:#?}");

    // As it says: reading works, writing waits for the identity.
    spectra_without_identity(&repo, &["log"]).success();
    let undo = spectra_without_identity(&repo, &["undo"]);
    assert_refused_for_identity(&undo, "user.name and user.email are");
}
