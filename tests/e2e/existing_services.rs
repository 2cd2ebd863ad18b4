//! Services that already have a specification in the work tree: discovering the name again is
//! an update, refused without `--update` (before the model is asked when `--service` names it,
//! after the decision when the model chose it), and with `--update` committed as an update that
//! keeps the earlier stages and reports what changed. A clone with a teammate's specification
//! but not her events is treated the same, and its planner counts that service as discovered.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, TestEnv};
use crate::discover::decision;
use crate::llm_server::{LlmServer, Reply};

const SPEC: &str = ".spectra/logging.specification.yaml";

fn spec_text(repo: &Path) -> String {
    std::fs::read_to_string(repo.join(SPEC)).unwrap()
}

/// The specification as JSON, read with the YAML parser the binary uses.
fn spec(repo: &Path) -> Value {
    let text = spec_text(repo);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn head(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["rev-parse", "HEAD"])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn head_subject(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["log", "-1", "--format=%s"])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn report_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The `decision.made` events of discover (not the planner's).
fn discover_decisions(env: &TestEnv, repo: &Path) -> usize {
    env.events(repo, "decision.made")
        .iter()
        .filter(|event| event["activity"] == "discover")
        .count()
}

fn assert_refused(run: &Run, retry: &str) {
    assert!(
        run.stderr.contains(
            "service logging already has a specification (.spectra/logging.specification.yaml)"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("hint:") && line.contains(&format!("`{retry}`"))),
        "the hint repeats the command with --update: {run:?}"
    );
}

/// What other activities recorded in the specification, committed as a teammate would.
fn record_other_stages(env: &TestEnv, repo: &Path) -> String {
    let text = spec_text(repo)
        .replace(
            "stages:\n  discover: complete\n",
            "stages:\n  discover: complete\n  plan: complete\n",
        )
        .replace(
            "documents:\n",
            "documents:\n  plan: .spectra/logging/plan.md\n",
        );
    assert!(text.contains("plan: complete"), "{text}");
    std::fs::write(repo.join(SPEC), text).unwrap();
    env.git(repo, &["commit", "-q", "-am", "plan: record the plan"])
        .success();
    head(env, repo)
}

#[test]
fn discovering_a_name_twice_needs_update_and_then_keeps_the_stages() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    env.spectra(
        &repo,
        &[
            "discover",
            "central logging",
            "--service",
            "logging",
            "--offline",
        ],
    )
    .success();
    let first = spec_text(&repo);
    let before = head(&env, &repo);

    // Again without --update: refused before any decision, nothing written or committed.
    let run = env
        .spectra(
            &repo,
            &[
                "discover",
                "logs kept a year",
                "--service",
                "logging",
                "--offline",
            ],
        )
        .code(1);
    assert_refused(
        &run,
        "git spectra discover 'logs kept a year' --service logging --offline --update",
    );
    assert_eq!(spec_text(&repo), first);
    assert_eq!(head(&env, &repo), before, "no second commit");
    assert_eq!(
        discover_decisions(&env, &repo),
        1,
        "refused before deciding"
    );
    let finished = env.events(&repo, "activity.finished");
    let last = finished.last().unwrap();
    assert_eq!(last["payload"]["outcome"], "blocked");
    assert_eq!(last["payload"]["errors"][0]["reason"], "service_exists");

    // With --update: an update commit that keeps what the others recorded and says what changed.
    let recorded = record_other_stages(&env, &repo);
    let run = env
        .spectra(
            &repo,
            &[
                "discover",
                "logs kept a year",
                "--service",
                "logging",
                "--offline",
                "--update",
                "--format",
                "json",
            ],
        )
        .success();
    let report = report_of(&run);
    let update = &report["activities"][0]["outputs"]["update"];
    assert_eq!(update["previous_commit"], json!(recorded), "{update}");
    let changed: Vec<&str> = update["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(changed.contains(&"purpose"), "{changed:?}");
    assert!(changed.contains(&"discovery.problem"), "{changed:?}");
    assert!(
        !changed.contains(&"discovery.run"),
        "bookkeeping: {changed:?}"
    );
    assert!(
        !changed.iter().any(|c| c.starts_with("stages")),
        "{changed:?}"
    );
    assert_eq!(
        head_subject(&env, &repo),
        "discover: update specification for logging"
    );
    let updated = spec(&repo);
    assert_eq!(updated["purpose"], "logs kept a year");
    assert_eq!(
        updated["stages"],
        json!({"discover": "complete", "plan": "complete"})
    );
    assert_eq!(
        updated["documents"],
        json!({"discover": ".spectra/logging/discover.md", "plan": ".spectra/logging/plan.md"})
    );

    // The human report names the changed fields.
    let run = env
        .spectra(
            &repo,
            &[
                "discover",
                "logs kept forever",
                "--service",
                "logging",
                "--offline",
                "--update",
            ],
        )
        .success();
    assert!(
        run.stdout.contains("  changed:   discovery.problem, "),
        "{run:?}"
    );
    assert!(run.stdout.contains("purpose"), "{run:?}");
}

#[test]
fn a_clone_with_the_specification_but_not_the_events_refuses_then_updates() {
    let env = TestEnv::new();
    env.git(
        env.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    )
    .success();
    let alice = env.repo_with_commit("alice");
    env.git(&alice, &["remote", "add", "origin", "../remote.git"])
        .success();
    env.spectra(
        &alice,
        &[
            "discover",
            "central logging",
            "--service",
            "logging",
            "--offline",
        ],
    )
    .success();
    // The branch only: Bob gets the specification, not the log.
    env.git(&alice, &["push", "-q", "origin", "main"]).success();
    env.git(env.path(), &["clone", "-q", "remote.git", "bob"])
        .success();
    let bob = env.path().join("bob");
    let alices = spec_text(&bob);
    let before = head(&env, &bob);

    // The planner counts Alice's service: no discover first for a request without --service.
    // (Offline, the plan it makes needs a model, so the run is refused before it starts.)
    let run = env
        .spectra(&bob, &["run", "a roadmap", "--offline", "--format", "json"])
        .code(1);
    assert!(
        run.stderr.contains("error: plan needs a model"),
        "the planner chose plan, not discover: {run:?}"
    );

    let args = [
        "run",
        "roadmap for logging",
        "--offline",
        "--service",
        "logging",
    ];
    let run = env.spectra(&bob, &args).code(1);
    assert_refused(
        &run,
        "git spectra run 'roadmap for logging' --service logging --offline --update",
    );
    assert_eq!(spec_text(&bob), alices, "Alice's specification is intact");
    assert_eq!(head(&env, &bob), before);
    assert_eq!(discover_decisions(&env, &bob), 0, "refused before deciding");

    let mut update = args.to_vec();
    update.extend(["--update", "--format", "json"]);
    // The plan activity that follows needs a model; only discover's result matters here.
    let run = env.spectra(&bob, &update);
    let report = report_of(&run);
    assert_eq!(report["activities"][0]["activity"], "discover", "{run:?}");
    assert_eq!(report["activities"][0]["outcome"], "succeeded", "{run:?}");
    assert_eq!(
        head_subject(&env, &bob),
        "discover: update specification for logging"
    );
    assert_eq!(spec(&bob)["purpose"], "roadmap for logging");
}

#[test]
fn a_name_the_model_chooses_that_has_a_specification_is_blocked_after_the_decision() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat_json(&decision("logging")));
    let url = server.base_url();
    env.spectra_with_llm(&repo, &url, &["discover", "Our logs are everywhere"])
        .success();
    let first = spec_text(&repo);
    let before = head(&env, &repo);

    let run = env
        .spectra_with_llm(&repo, &url, &["discover", "Logs again", "--format", "json"])
        .code(1);
    let activity = &report_of(&run)["activities"][0];
    assert_eq!(activity["outcome"], "blocked", "{run:?}");
    assert_eq!(activity["errors"][0]["reason"], "service_exists");
    assert_eq!(activity["service"], "logging");
    assert_nothing_written(&env, &repo, &first, &before);
    assert_eq!(
        discover_decisions(&env, &repo),
        2,
        "the decision is recorded"
    );

    // The model was told which services exist.
    let prompts: Vec<String> = server
        .chat_requests()
        .iter()
        .map(|request| request.message_texts().join("\n"))
        .collect();
    assert!(
        prompts[1].contains("- logging: Logs are scattered across hosts"),
        "{}",
        prompts[1]
    );
    assert!(
        prompts[0].contains("already specifies:\n(none)"),
        "{}",
        prompts[0]
    );
}

fn assert_nothing_written(env: &TestEnv, repo: &Path, spec: &str, head_before: &str) {
    assert_eq!(spec_text(repo), spec);
    assert_eq!(head(env, repo), head_before);
    let status = env.git(repo, &["status", "--porcelain"]).success().stdout;
    assert_eq!(status, "", "nothing written");
}
