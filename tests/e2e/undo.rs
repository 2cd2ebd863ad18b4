//! `git spectra undo` and `redo` end to end: offline discovers (no model needed) in a temporary
//! repository, then undo and redo through the real binary, checking the user's branch, the
//! event log, the projections and `verify` after each step.

use serde_json::Value;

use crate::common::{TestRepo, json_lines};

fn discover(repo: &TestRepo, service: &str) -> String {
    discover_with(repo, service, &[])
}

/// A discover of a service that already has a specification: an update.
fn update(repo: &TestRepo, service: &str) -> String {
    discover_with(repo, service, &["--update"])
}

fn discover_with(repo: &TestRepo, service: &str, extra: &[&str]) -> String {
    let idea = format!("an idea for {service}");
    let mut args = vec!["discover", "--offline", "--service", service];
    args.extend_from_slice(extra);
    args.extend(["--format", "json", &idea]);
    let run = repo.spectra(&args).success();
    let report: Value = serde_json::from_str(run.stdout.trim()).expect("discover JSON");
    report["run"].as_str().expect("a run id").to_string()
}

fn spec(service: &str) -> String {
    format!(".spectra/{service}.specification.yaml")
}

fn event_count(repo: &TestRepo) -> usize {
    repo.git(&["rev-list", "--count", "refs/spectra/events"])
        .parse()
        .expect("a count")
}

fn head(repo: &TestRepo) -> String {
    repo.git(&["rev-parse", "HEAD"])
}

fn in_head(repo: &TestRepo, path: &str) -> bool {
    !repo
        .git(&["ls-tree", "--name-only", "HEAD", "--", path])
        .is_empty()
}

/// Events (envelopes plus the `reverted` mark) oldest first, optionally of one kind.
fn events(repo: &TestRepo, kind: Option<&str>) -> Vec<Value> {
    let mut args = vec!["log", "--format", "json"];
    if let Some(kind) = kind {
        args.extend(["--kind", kind]);
    }
    let mut records = json_lines(&repo.spectra(&args).success().stdout);
    records.reverse();
    records
}

fn event_of(repo: &TestRepo, run: &str, kind: &str) -> Value {
    events(repo, Some(kind))
        .into_iter()
        .map(|record| record["event"].clone())
        .find(|event| event["run"] == run)
        .unwrap_or_else(|| panic!("no {kind} in run {run}"))
}

fn json(repo: &TestRepo, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    repo.spectra(&args).success().stdout
}

fn runs(repo: &TestRepo) -> Vec<Value> {
    json_lines(&json(repo, &["runs"]))
}

fn undone(repo: &TestRepo, run: &str) -> bool {
    runs(repo)
        .iter()
        .find(|row| row["run"] == run)
        .unwrap_or_else(|| panic!("run {run} listed"))["undone"]
        .as_bool()
        .unwrap()
}

/// What must hold after any refusal: nothing moved.
#[track_caller]
fn unchanged(repo: &TestRepo, before: (String, usize, String)) {
    assert_eq!(head(repo), before.0, "HEAD moved");
    assert_eq!(event_count(repo), before.1, "events were appended");
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        before.2,
        "the work tree changed"
    );
}

fn snapshot(repo: &TestRepo) -> (String, usize, String) {
    (
        head(repo),
        event_count(repo),
        repo.git(&["status", "--porcelain"]),
    )
}

#[test]
fn undo_reverts_the_last_discover_with_a_new_commit_and_the_views_read_as_before() {
    let repo = TestRepo::new();
    let manifest_before = json(&repo, &["manifest"]);
    let history_before = json(&repo, &["history"]);
    let run = discover(&repo, "logging");
    let discover_commit = head(&repo);
    assert!(in_head(&repo, &spec("logging")));
    let count = event_count(&repo);

    let out = repo.spectra(&["undo"]).success();
    assert!(
        out.stdout
            .contains(&format!("undid run {}", short(&repo, &run))),
        "{out:?}"
    );

    // The spec is gone from HEAD through a new revert commit; the discover commit stays.
    assert!(!in_head(&repo, &spec("logging")));
    assert!(!repo.root().join(spec("logging")).exists());
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]), discover_commit);
    let committed = event_of(&repo, &run, "files.committed");
    let message = repo.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains(&format!("This reverts commit {discover_commit}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Spectra-Reverts: {}",
            committed["id"].as_str().unwrap()
        )),
        "{message}"
    );
    assert!(message.contains("Spectra-Run: "), "{message}");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // The log only grew: by the undo's intent, then one event that names every event of the
    // run in trailers.
    assert_eq!(event_count(&repo), count + 2);
    assert_eq!(events(&repo, Some("undo.started")).len(), 1);
    let undo = events(&repo, Some("events.reverted")).pop().unwrap()["event"].clone();
    let targets: Vec<&str> = undo["payload"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let run_events: Vec<Value> = events(&repo, None)
        .into_iter()
        .filter(|record| record["event"]["run"] == run.as_str())
        .collect();
    assert_eq!(targets.len(), run_events.len());
    let trailers = repo.git(&["log", "-1", "--format=%B", "refs/spectra/events"]);
    for record in &run_events {
        let id = record["event"]["id"].as_str().unwrap();
        assert!(targets.contains(&id));
        assert!(
            trailers.contains(&format!("Spectra-Reverts: {id}")),
            "{trailers}"
        );
        assert_eq!(record["reverted"], true, "{record}");
    }
    assert_eq!(
        undo["payload"]["reverts"][0]["commit"],
        discover_commit.as_str()
    );
    assert_eq!(
        undo["payload"]["reverts"][0]["revert"],
        head(&repo).as_str()
    );
    assert_eq!(undo["payload"]["forced"], false);
    let audit = repo.git(&[
        "log",
        "refs/spectra/events",
        "--format=%s %(trailers:key=Spectra-Reverts,valueonly,separator=%x2C)",
        "-1",
    ]);
    assert!(audit.starts_with("undo: reverted run"), "{audit}");

    // Projections read as before the run; `runs` marks it undone; `log` marks its events.
    assert_eq!(json(&repo, &["manifest"]), manifest_before);
    assert_eq!(json(&repo, &["history"]), history_before);
    assert!(undone(&repo, &run));
    let human = repo.spectra(&["log"]).success().stdout;
    assert!(human.contains("run.started [reverted]"), "{human}");
    assert!(!human.contains("events.reverted [reverted]"), "{human}");
    repo.spectra(&["verify"]).success();
}

#[test]
fn repeated_undo_walks_back_and_redo_restores_in_reverse_order() {
    let repo = TestRepo::new();
    let logging = discover(&repo, "logging");
    let billing = discover(&repo, "billing");
    let after_both = json(&repo, &["manifest"]);

    repo.spectra(&["undo"]).success();
    assert!(undone(&repo, &billing) && !undone(&repo, &logging));
    repo.spectra(&["undo"]).success();
    assert!(undone(&repo, &billing) && undone(&repo, &logging));
    assert!(!in_head(&repo, &spec("logging")) && !in_head(&repo, &spec("billing")));
    assert_eq!(json(&repo, &["manifest"]), "");
    let nothing = repo.spectra(&["undo"]).code(1);
    assert!(
        nothing.stderr.contains("error: nothing to undo"),
        "{nothing:?}"
    );
    assert!(nothing.stderr.contains("hint: "), "{nothing:?}");

    // Redo cancels the newest undo first: logging comes back, then billing.
    let out = repo.spectra(&["redo"]).success();
    assert!(out.stdout.contains(&short(&repo, &logging)), "{out:?}");
    assert!(!undone(&repo, &logging) && undone(&repo, &billing));
    assert!(in_head(&repo, &spec("logging")) && !in_head(&repo, &spec("billing")));
    let subject = repo.git(&["log", "-1", "--format=%s"]);
    assert!(subject.starts_with("Reapply"), "{subject}");
    repo.spectra(&["redo"]).success();
    assert!(in_head(&repo, &spec("billing")));
    assert_eq!(json(&repo, &["manifest"]), after_both);
    repo.spectra(&["redo"]).code(1);

    let restored = events(&repo, Some("events.restored"));
    assert_eq!(restored.len(), 2);
    let undos = events(&repo, Some("events.reverted"));
    for (redo, undo) in restored.iter().zip(undos.iter().rev()) {
        let undo_id = undo["event"]["id"].as_str().unwrap();
        assert_eq!(redo["event"]["payload"]["targets"][0], undo_id);
        let trailers = repo.git(&["log", "-1", "--format=%B", redo["commit"].as_str().unwrap()]);
        assert!(
            trailers.contains(&format!("Spectra-Reverts: {undo_id}")),
            "{trailers}"
        );
        // A redone undo is itself marked reverted.
        assert_eq!(undo["reverted"], true);
    }
    repo.spectra(&["verify"]).success();
}

#[test]
fn undo_takes_a_run_prefix_or_one_event() {
    let repo = TestRepo::new();
    let logging = discover(&repo, "logging");
    let billing = discover(&repo, "billing");

    // Run ids share their leading (time) digits: a short prefix is ambiguous.
    let ambiguous = repo.spectra(&["undo", &logging[..4]]).code(2);
    assert!(ambiguous.stderr.contains("ambiguous"), "{ambiguous:?}");
    assert!(ambiguous.stderr.contains(&billing), "{ambiguous:?}");

    repo.spectra(&["undo", &logging[..23]]).success();
    assert!(undone(&repo, &logging) && !undone(&repo, &billing));
    assert!(!in_head(&repo, &spec("logging")) && in_head(&repo, &spec("billing")));

    // One event: billing's commit alone. The run stays, its commit is reverted.
    let committed = event_of(&repo, &billing, "files.committed");
    let id = committed["id"].as_str().unwrap();
    let out = repo.spectra(&["undo", id]).success();
    assert!(
        out.stdout
            .contains(&format!("undid event {}", short(&repo, id))),
        "{out:?}"
    );
    assert!(!in_head(&repo, &spec("billing")));
    assert!(!undone(&repo, &billing));
    let marked: Vec<Value> = events(&repo, None)
        .into_iter()
        .filter(|record| record["event"]["run"] == billing.as_str() && record["reverted"] == true)
        .collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["event"]["id"], id);
    let again = repo.spectra(&["undo", id]).code(1);
    assert!(again.stderr.contains("already undone"), "{again:?}");

    // An event others name in their causes: listed, and refused without --force.
    let decision = event_of(&repo, &billing, "decision.made");
    let before = snapshot(&repo);
    let refused = repo
        .spectra(&["undo", decision["id"].as_str().unwrap()])
        .code(1);
    assert!(
        refused.stderr.contains("later work depends on it"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("activity.finished"), "{refused:?}");
    unchanged(&repo, before);
    repo.spectra(&["verify"]).success();
}

#[test]
fn undoing_an_undo_is_a_redo_and_undoing_the_redo_undoes_again() {
    let repo = TestRepo::new();
    let run = discover(&repo, "logging");
    repo.spectra(&["undo"]).success();
    let undo = events(&repo, Some("events.reverted")).pop().unwrap()["event"].clone();

    let out = repo
        .spectra(&["undo", undo["id"].as_str().unwrap()])
        .success();
    assert!(out.stdout.starts_with("redid"), "{out:?}");
    assert!(!undone(&repo, &run));
    assert!(in_head(&repo, &spec("logging")));
    let redo = events(&repo, Some("events.restored")).pop().unwrap()["event"].clone();
    assert_eq!(redo["payload"]["targets"][0], undo["id"]);

    repo.spectra(&["undo", redo["id"].as_str().unwrap()])
        .success();
    assert!(undone(&repo, &run));
    assert!(!in_head(&repo, &spec("logging")));
    repo.spectra(&["verify"]).success();
}

/// A repository override of a built-in playbook that offline discover runs: the built-in
/// definition with its `reversible: true` line replaced by `replacement`.
fn override_playbook(repo: &TestRepo, id: &str, replacement: &str) {
    let builtin = std::fs::read_to_string(
        crate::common::manifest_dir().join(format!("registry/playbooks/{id}.yaml")),
    )
    .expect("the built-in playbook");
    assert!(builtin.contains("reversible: true\n"));
    repo.write(
        &format!(".spectra/registry/playbooks/{id}.yaml"),
        &builtin.replace("reversible: true\n", replacement),
    );
}

#[test]
fn an_irreversible_playbook_refuses_the_undo_even_with_force() {
    let repo = TestRepo::new();
    override_playbook(&repo, "repo.inventory", "reversible: false\n");
    let run = discover(&repo, "logging");
    let before = snapshot(&repo);
    for args in [&["undo"][..], &["undo", "--force"][..]] {
        let refused = repo.spectra(args).code(1);
        assert!(refused.stderr.contains("irreversible"), "{refused:?}");
        assert!(refused.stderr.contains("repo.inventory"), "{refused:?}");
        assert!(refused.stderr.contains("--force does not"), "{refused:?}");
        unchanged(&repo, before.clone());
    }
    assert!(!undone(&repo, &run));
}

#[test]
fn a_dependent_event_refuses_the_undo_unless_forced() {
    let repo = TestRepo::new();
    let run = discover(&repo, "logging");
    let decision = event_of(&repo, &run, "decision.made");
    let note = repo
        .spectra(&[
            "append",
            "--kind",
            "note.added",
            "--cause",
            decision["id"].as_str().unwrap(),
            "--payload",
            "{}",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let before = snapshot(&repo);
    let refused = repo.spectra(&["undo"]).code(1);
    assert!(
        refused.stderr.contains("later work depends on it"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains(&note), "{refused:?}");
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    unchanged(&repo, before);

    let dry = repo.spectra(&["undo", "--force", "--dry-run"]).success();
    assert!(dry.stdout.contains("depends on it (--force)"), "{dry:?}");
    repo.spectra(&["undo", "--force"]).success();
    assert!(undone(&repo, &run));
    let undo = events(&repo, Some("events.reverted")).pop().unwrap()["event"].clone();
    assert_eq!(undo["payload"]["forced"], true);
    assert_eq!(undo["payload"]["dependents"][0]["event"], note.as_str());
    repo.spectra(&["verify"]).success();
}

#[test]
fn a_later_run_for_the_same_service_depends_and_a_conflicting_revert_is_aborted_cleanly() {
    let repo = TestRepo::new();
    let first = discover(&repo, "logging");
    let second = update(&repo, "logging");
    let content = std::fs::read_to_string(repo.root().join(spec("logging"))).unwrap();
    let before = snapshot(&repo);

    let refused = repo.spectra(&["undo", &first]).code(1);
    assert!(refused.stderr.contains(&second), "{refused:?}");
    assert!(refused.stderr.contains("service logging"), "{refused:?}");
    unchanged(&repo, before.clone());

    // Forced, the revert of the first commit conflicts with the second run's edit.
    let conflict = repo.spectra(&["undo", &first, "--force"]).code(1);
    assert!(conflict.stderr.contains("conflicts"), "{conflict:?}");
    assert!(conflict.stderr.contains("aborted"), "{conflict:?}");
    assert!(
        conflict.stderr.contains("nothing was changed"),
        "{conflict:?}"
    );
    // The attempt is in the log (its intent and its failure, with nothing done); the branch and
    // the work tree are as they were.
    let failed = events(&repo, Some("undo.failed")).pop().unwrap()["event"].clone();
    assert_eq!(failed["payload"]["done"], serde_json::json!([]));
    unchanged(&repo, (before.0, before.1 + 2, before.2));
    assert!(!repo.root().join(".git/REVERT_HEAD").exists());
    assert_eq!(
        std::fs::read_to_string(repo.root().join(spec("logging"))).unwrap(),
        content
    );
    assert!(!undone(&repo, &first));
    repo.spectra(&["verify"]).success();
}

#[test]
fn uncommitted_or_staged_changes_refuse_the_undo_and_nothing_moves() {
    let repo = TestRepo::new();
    let run = discover(&repo, "logging");
    repo.write(&spec("logging"), "my own edit\n");
    let before = snapshot(&repo);
    let refused = repo.spectra(&["undo"]).code(1);
    assert!(
        refused.stderr.contains("uncommitted changes"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains(&spec("logging")), "{refused:?}");
    assert!(
        refused.stderr.contains("hint: commit or stash"),
        "{refused:?}"
    );
    unchanged(&repo, before);
    assert_eq!(
        std::fs::read_to_string(repo.root().join(spec("logging"))).unwrap(),
        "my own edit\n"
    );
    repo.git(&["checkout", "--", &spec("logging")]);

    repo.write("notes.txt", "staged\n");
    repo.git(&["add", "notes.txt"]);
    let before = snapshot(&repo);
    let refused = repo.spectra(&["undo"]).code(1);
    assert!(refused.stderr.contains("staged"), "{refused:?}");
    assert!(refused.stderr.contains("notes.txt"), "{refused:?}");
    unchanged(&repo, before);
    assert!(!undone(&repo, &run));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let repo = TestRepo::new();
    let run = discover(&repo, "logging");
    let commit = head(&repo);
    let before = snapshot(&repo);

    let out = repo.spectra(&["undo", "--dry-run"]).success();
    assert!(
        out.stdout
            .contains(&format!("would undo run {}", short(&repo, &run))),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("revert commit {}", &commit[..10])),
        "{out:?}"
    );
    assert!(out.stdout.contains(&spec("logging")), "{out:?}");
    assert!(
        out.stdout.contains("then record events.reverted"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("repo.inventory declares no undo"),
        "{out:?}"
    );
    unchanged(&repo, before.clone());

    let plan: Value =
        serde_json::from_str(json(&repo, &["undo", "--dry-run"]).trim()).expect("JSON plan");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["plan"]["steps"][0]["step"], "revert");
    assert_eq!(plan["plan"]["steps"][0]["commit"], commit.as_str());
    assert!(plan["refused"].is_null());
    unchanged(&repo, before);
    assert!(!undone(&repo, &run));
}

#[test]
fn a_failing_compensation_is_reported_recorded_and_finished_by_running_again() {
    let repo = TestRepo::new();
    override_playbook(
        &repo,
        "catalog.lookup",
        "undo: [sh, -c, \"echo cannot compensate >&2; exit 4\"]\nreversible: true\n",
    );
    let run = discover(&repo, "logging");
    let discover_commit = head(&repo);

    let failed = repo.spectra(&["undo"]).code(1);
    assert!(
        failed
            .stderr
            .contains("stopped at `compensate: playbook catalog.lookup"),
        "{failed:?}"
    );
    assert!(failed.stderr.contains("exit code 4"), "{failed:?}");
    assert!(
        failed
            .stderr
            .contains(&format!("reverted {}", &discover_commit[..10])),
        "{failed:?}"
    );
    assert!(
        failed.stderr.contains("run the same command again"),
        "{failed:?}"
    );
    // Nothing half-applied is hidden: the revert stays and the log says so.
    assert!(!in_head(&repo, &spec("logging")));
    assert!(!undone(&repo, &run));
    let finished = events(&repo, Some("playbook.finished")).pop().unwrap()["event"].clone();
    assert_eq!(finished["payload"]["action"], "undo");
    assert_eq!(finished["payload"]["outcome"], "failed");
    let stopped = events(&repo, Some("undo.failed")).pop().unwrap()["event"].clone();
    assert_eq!(
        stopped["payload"]["done"][0]["commit"],
        discover_commit.as_str()
    );
    assert!(
        stopped["payload"]["failed"]["reason"]
            .as_str()
            .unwrap()
            .contains("exit code 4")
    );

    // Fixed, the same command finishes the job without reverting twice.
    override_playbook(
        &repo,
        "catalog.lookup",
        "undo: [sh, -c, \"exit 0\"]\nreversible: true\n",
    );
    let revert = head(&repo);
    repo.spectra(&["undo"]).success();
    assert_eq!(head(&repo), revert);
    assert!(undone(&repo, &run));
    let undo = events(&repo, Some("events.reverted")).pop().unwrap()["event"].clone();
    assert_eq!(undo["payload"]["reverts"][0]["revert"], revert.as_str());
    assert_eq!(
        undo["payload"]["compensations"].as_array().unwrap().len(),
        1
    );
    repo.spectra(&["verify"]).success();

    // Redo runs the compensated playbook again and re-applies the commit.
    repo.spectra(&["redo"]).success();
    assert!(in_head(&repo, &spec("logging")));
    let rerun = events(&repo, Some("playbook.started")).pop().unwrap()["event"].clone();
    assert_eq!(rerun["payload"]["playbook"], "catalog.lookup");
    assert_eq!(rerun["payload"]["action"], "run");
    repo.spectra(&["verify"]).success();
}

/// The short form human output prints for a run or event id: its (first) event's commit hash,
/// as `git spectra log --oneline` abbreviates it.
fn short(repo: &TestRepo, id: &str) -> String {
    let shown = repo.spectra(&["show", id]).success().stdout;
    shown
        .lines()
        .find_map(|line| line.strip_prefix("short"))
        .expect("show prints the short form")
        .trim()
        .to_string()
}
