//! Issue 21, items 3 and 8: ids a person can type, and the `log` options git users reach for.

use std::path::Path;

use crate::common::{Run, TestEnv, json_lines, spectra_bin};

/// Appends a `note.added` with `subject` (in `run` when given) and returns its id.
fn note(env: &TestEnv, repo: &Path, subject: &str, run: Option<&str>) -> String {
    let mut args = note_args(subject);
    if let Some(run) = run {
        args.extend(["--run", run]);
    }
    env.spectra(repo, &args).success().stdout.trim().to_string()
}

/// `append` of a `note.added` with `subject`.
fn note_args(subject: &str) -> Vec<&str> {
    vec![
        "append",
        "--kind",
        "note.added",
        "--payload",
        "{}",
        "-m",
        subject,
    ]
}

/// `log --oneline` as (short form, subject) pairs, newest first.
fn oneline(env: &TestEnv, repo: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["log", "--oneline"];
    args.extend(extra);
    env.spectra(repo, &args)
        .success()
        .stdout
        .lines()
        .map(|line| {
            let (short, subject) = line.split_once(' ').expect("short form and subject");
            (short.to_string(), subject.to_string())
        })
        .collect()
}

fn subjects(lines: &[(String, String)]) -> Vec<&str> {
    lines.iter().map(|(_, subject)| subject.as_str()).collect()
}

#[test]
fn events_of_the_same_second_get_distinct_short_forms_that_every_command_takes() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let ids = [
        note(&env, &repo, "first note", None),
        note(&env, &repo, "second note", Some("review-run-1")),
        note(&env, &repo, "third note", None),
    ];
    // UUIDv7 ids begin with the time: the first 8 characters change every 65 s, so of three
    // appends in a row at least two share them (the situation the issue reports).
    let shared = (0..3)
        .flat_map(|a| (a + 1..3).map(move |b| (a, b)))
        .find(|&(a, b)| ids[a][..8] == ids[b][..8])
        .map(|(a, _)| ids[a][..8].to_string())
        .expect("two ids share their first 8 characters");

    // The prefix they share is ambiguous: a usage error naming each candidate's subject.
    let ambiguous = env.spectra(&repo, &["show", &shared]).code(2);
    assert!(ambiguous.stderr.contains("is ambiguous"), "{ambiguous:?}");
    assert!(
        ambiguous.stderr.matches(" note").count() >= 2,
        "the candidates are listed with their subjects: {ambiguous:?}"
    );

    let lines = oneline(&env, &repo, &[]);
    assert_eq!(
        subjects(&lines),
        ["third note", "second note", "first note"]
    );
    let shorts: Vec<&str> = lines.iter().map(|(short, _)| short.as_str()).collect();
    for short in &shorts {
        assert!(short.len() >= 7 && short.len() < 40, "{shorts:?}");
    }
    let human = env.spectra(&repo, &["log"]).success();
    for short in &shorts {
        assert!(human.stdout.contains(&format!("{short} ")), "{human:?}");
    }

    // Each printed form, and the full id, names its event in `show`.
    for ((short, _), id) in lines.iter().zip(ids.iter().rev()) {
        for name in [short.as_str(), id.as_str()] {
            let shown = env.spectra(&repo, &["show", name]).success();
            assert!(shown.stdout.contains(id.as_str()), "{name}: {shown:?}");
        }
    }

    // `log --run` takes the run's short form (its first event's) and the run's id prefix.
    let second = &lines[1].0;
    for name in [second.as_str(), "review-run"] {
        let run = oneline(&env, &repo, &["--run", name]);
        assert_eq!(subjects(&run), ["second note"], "--run {name}");
    }
    let no_run = env.spectra(&repo, &["log", "--run", &lines[0].0]).code(2);
    assert!(no_run.stderr.contains("belongs to no run"), "{no_run:?}");

    // `undo` takes the short form: the event alone, then the run by its short form.
    let undone = env.spectra(&repo, &["undo", &lines[0].0]).success();
    assert!(
        undone
            .stdout
            .contains(&format!("undid event {}", lines[0].0)),
        "{undone:?}"
    );
    let undone = env.spectra(&repo, &["undo", second]).success();
    assert!(
        undone.stdout.contains("undid run review-run-1"),
        "{undone:?}"
    );
    // ...and its own output names the undo by a short form `undo` takes back.
    let redo_line = oneline(&env, &repo, &["-1"]);
    assert!(
        redo_line[0]
            .1
            .starts_with("undo: reverted run review-run-1"),
        "{redo_line:?}"
    );
}

#[test]
fn log_takes_git_counts_oneline_and_reverse_in_git_order() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for n in 1..=5 {
        note(&env, &repo, &format!("note {n}"), None);
    }
    for count in [
        &["-2"][..],
        &["-n", "2"],
        &["-n2"],
        &["--max-count", "2"],
        &["--max-count=2"],
    ] {
        assert_eq!(
            subjects(&oneline(&env, &repo, count)),
            ["note 5", "note 4"],
            "{count:?}"
        );
    }
    // git limits first, then reverses: the two newest, oldest of them first.
    assert_eq!(
        subjects(&oneline(&env, &repo, &["--reverse", "-2"])),
        ["note 4", "note 5"]
    );
    assert_eq!(subjects(&oneline(&env, &repo, &["--reverse"]))[0], "note 1");
    // --oneline is exactly "short subject"; the default line has the time and kind too.
    let line = env.spectra(&repo, &["log", "-1"]).success().stdout;
    assert!(line.contains(" note.added note 5"), "{line}");
    let json = json_lines(
        &env.spectra(&repo, &["log", "-3", "--reverse", "--format", "json"])
            .success()
            .stdout,
    );
    let payload_subjects: Vec<&str> = json
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(payload_subjects, ["note 3", "note 4", "note 5"]);
    let both = env
        .spectra(&repo, &["log", "--oneline", "--format", "json"])
        .code(2);
    assert!(both.stderr.contains("--oneline"), "{both:?}");
    let word = env.spectra(&repo, &["log", "five"]).code(2);
    assert!(word.stderr.contains("-n N"), "{word:?}");
}

#[test]
fn log_filters_by_author_and_subject_before_the_count() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    note(&env, &repo, "chose the log search design", None);
    let as_bob = |subject: &str| {
        let output = env
            .command(spectra_bin(), &repo)
            .env("GIT_COMMITTER_NAME", "Bob Builder")
            .env("GIT_COMMITTER_EMAIL", "bob@example.org")
            .env("GIT_AUTHOR_NAME", "Bob Builder")
            .env("GIT_AUTHOR_EMAIL", "bob@example.org")
            .args(note_args(subject))
            .output()
            .expect("run git-spectra");
        Run::from_output(output).success();
    };
    as_bob("rejected the cache design");
    as_bob("reviewed by Bob");
    note(&env, &repo, "chose the retry policy", None);

    assert_eq!(
        subjects(&oneline(&env, &repo, &["--author", "Bob"])),
        ["reviewed by Bob", "rejected the cache design"]
    );
    // A regular expression on `Name <email>`, as git's --author.
    assert_eq!(
        subjects(&oneline(
            &env,
            &repo,
            &["--author", r"^Ada .*<ada@example\.com>$"]
        )),
        ["chose the retry policy", "chose the log search design"]
    );
    assert_eq!(
        subjects(&oneline(&env, &repo, &["--grep", "design$"])),
        ["rejected the cache design", "chose the log search design"]
    );
    // Filters first, then the count: the newest event matching, not a match among the newest.
    assert_eq!(
        subjects(&oneline(
            &env,
            &repo,
            &["--grep", "^chose", "-1", "--reverse"]
        )),
        ["chose the retry policy"]
    );
    assert_eq!(
        subjects(&oneline(
            &env,
            &repo,
            &["--author", "Bob", "--grep", "cache"]
        )),
        ["rejected the cache design"]
    );
    let bad = env.spectra(&repo, &["log", "--grep", "(unclosed"]).code(2);
    assert!(bad.stderr.contains("not a regular expression"), "{bad:?}");
}

#[test]
fn the_run_report_names_the_run_by_a_short_form_every_command_takes() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let report = env
        .spectra(
            &repo,
            &["discover", "--offline", "--service", "logging", "an idea"],
        )
        .success()
        .stdout;
    let name = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("run:"))
        .expect("a run line")
        .trim()
        .to_string();
    assert!(
        (7..=12).contains(&name.len()) && name.chars().all(|c| c.is_ascii_hexdigit()),
        "not a short form: {name:?}\n{report}"
    );
    assert!(
        report.contains(&format!("git spectra undo {name}")),
        "{report}"
    );
    // It is the run's first event, `run.started`, as `git log` abbreviates its commit.
    let started = env.git(
        &repo,
        &[
            "log",
            "--format=%h %s",
            "--grep=^Spectra-Event: run.started",
            "refs/spectra/events",
        ],
    );
    assert!(started.stdout.starts_with(&name), "{started:?}");
    let events = env
        .spectra(&repo, &["log", "--run", &name])
        .success()
        .stdout;
    assert!(events.lines().count() >= 4, "{events}");
    env.spectra(&repo, &["undo", &name]).success();
}
