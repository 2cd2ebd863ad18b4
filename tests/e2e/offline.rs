//! Offline honesty (issue 19, item 4): an activity that needs a model is refused before any
//! event is written when no model decides; `run --offline` plans only the activities that can
//! decide by rules and says which it left out; and runs that decided nothing and changed
//! nothing (a model that could not be reached) never block `undo` of earlier work.

use serde_json::{Value, json};

use crate::common::{Run, TestRepo, spectra_bin};

/// Commits on `refs/spectra/events` (0 before the first event).
fn event_count(repo: &TestRepo) -> usize {
    let run = repo
        .env
        .git(repo.root(), &["rev-list", "--count", "refs/spectra/events"]);
    if run.code != 0 {
        return 0;
    }
    run.stdout.trim().parse().expect("a count")
}

fn report_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|err| panic!("{err}: {run:#?}"))
}

fn discover(repo: &TestRepo, service: &str) -> String {
    let run = repo
        .spectra(&[
            "discover",
            "--offline",
            "--service",
            service,
            "--format",
            "json",
            "an idea",
        ])
        .success();
    report_of(&run)["run"]
        .as_str()
        .expect("a run id")
        .to_string()
}

/// `git spectra args...` against a model that cannot be reached (the pinned endpoint is a
/// closed port on 127.0.0.1), asked once: the activity fails before it decides anything.
fn with_unreachable_model(repo: &TestRepo, args: &[&str]) -> Run {
    let output = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(args)
        .env("SPECTRA_LLM_MAX_ATTEMPTS", "1")
        .env("SPECTRA_LLM_CONNECT_TIMEOUT", "1s")
        .output()
        .expect("run git-spectra");
    Run::from_output(output)
}

#[test]
fn an_activity_that_needs_a_model_is_refused_offline_before_any_event() {
    let repo = TestRepo::new();
    for args in [
        &["design", "an API", "--offline"][..],
        &["design", "an API", "--offline", "--dry-run"],
        &[
            "run",
            "an API",
            "-a",
            "discover",
            "-a",
            "design",
            "--offline",
        ],
    ] {
        let run = repo.spectra(args).code(1);
        let mut lines = run.stderr.lines();
        assert_eq!(
            lines.next(),
            Some("error: design needs a model; offline, only discover and test can run"),
            "{args:?}: {run:#?}"
        );
        let hint = lines.next().unwrap_or_default();
        assert!(
            hint.starts_with("hint: ") && hint.contains("spectra.llm.url"),
            "{run:#?}"
        );
        assert_eq!(event_count(&repo), 0, "{args:?} wrote events");
    }

    // With a log already there, still nothing is added.
    discover(&repo, "logging");
    let before = event_count(&repo);
    repo.spectra(&["plan", "the roadmap", "--service", "logging", "--offline"])
        .code(1);
    assert_eq!(event_count(&repo), before);
}

#[test]
fn run_offline_plans_only_what_can_decide_offline_and_says_what_it_left_out() {
    let repo = TestRepo::new();
    let run = repo
        .spectra(&["run", "design the API", "--offline", "--format", "json"])
        .success();
    let report = report_of(&run);
    assert_eq!(
        report["plan"]["activities"],
        json!(["discover"]),
        "{report:#}"
    );
    assert_eq!(
        report["plan"]["left_out"],
        json!([{"activity": "design", "reason": "needs_model"}])
    );
    let ran: Vec<&Value> = report["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["activity"])
        .collect();
    assert_eq!(ran, [&json!("discover")]);
    // The plan's own event says it too.
    let plans = repo.env.events(repo.root(), "decision.made");
    let reasoning = plans
        .iter()
        .find(|event| event["payload"]["mode"] == "planner")
        .map(|event| event["payload"]["decision"]["reasoning"].to_string())
        .unwrap_or_default();
    assert!(reasoning.contains("left out design"), "{reasoning}");

    let human = repo
        .spectra(&["run", "design the API", "--offline", "--service", "billing"])
        .success();
    assert!(
        human.stdout.contains("  left out:  design (needs a model"),
        "{human:#?}"
    );

    // A known service and only activities that need a model: nothing is left, nothing runs.
    let before = event_count(&repo);
    let refused = repo
        .spectra(&["run", "the roadmap", "--offline", "--service", "billing"])
        .code(1);
    assert!(
        refused
            .stderr
            .starts_with("error: plan needs a model; offline, only discover and test can run"),
        "{refused:#?}"
    );
    assert_eq!(event_count(&repo), before);
}

#[test]
fn runs_that_decided_nothing_do_not_block_undo_but_a_run_that_decided_does() {
    let repo = TestRepo::new();
    let discovered = discover(&repo, "logging");
    for _ in 0..3 {
        let failed =
            with_unreachable_model(&repo, &["plan", "the roadmap", "--service", "logging"]).code(1);
        assert!(failed.stderr.contains("plan failed"), "{failed:#?}");
    }
    let runs = repo.spectra(&["runs", "--format", "json"]).success().stdout;
    assert_eq!(runs.lines().count(), 4, "{runs}");

    let undo = repo.spectra(&["undo", &discovered]).success();
    assert!(!undo.stderr.contains("depends"), "{undo:#?}");
    assert!(
        !repo
            .root()
            .join(".spectra/logging.specification.yaml")
            .exists()
    );

    // Every other protection stays: the test activity decides offline (its decision is
    // recorded) for the same service, so it built on the discover and blocks its undo.
    let discovered = discover(&repo, "billing");
    repo.spectra(&["test", "run the tests", "--service", "billing", "--offline"]);
    let refused = repo.spectra(&["undo", &discovered]).code(1);
    assert!(
        refused.stderr.contains("later work depends on it"),
        "{refused:#?}"
    );
    // Its document and stage are in the specification: undone first, the discover follows.
    repo.spectra(&["undo"]).success();
    repo.spectra(&["undo", &discovered]).success();
}
