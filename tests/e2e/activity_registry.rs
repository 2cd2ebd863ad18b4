//! Activities are registry data: a repository declares a new activity in
//! `.spectra/registry/activities/` and it is a command (`git spectra <name>`), with its own help,
//! its external playbooks in dry-run unless `--execute`, and its own planner keywords, with no
//! change to the binary. A bad value of the new fields is reported with file and line.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv};
use crate::llm_server::{LlmServer, Reply};

const TRIAGE: &str = r#"name: triage
order: 20
description: Triage an incident and page whoever owns it.
prompts:
  system: You triage incidents. Reply with one JSON object.
  user: "Incident: {{input}}\nPlaybooks: {{playbooks}}"
decision:
  type: object
  additionalProperties: false
  required: [severity]
  properties:
    severity: {type: string, maxLength: 40}
quality_gates:
  - name: severity_set
    description: A severity is given.
    checks: [non_empty: /severity]
playbooks: [oncall.page]
token_budget: 1024
external: true
planner:
  keywords: [incident, outage]
command:
  summary: 'Triage an incident and page its owner.'
  examples:
    - 'git spectra triage "checkout returns 500s"'
"#;

const PAGE: &str = r"id: oncall.page
activities: [triage]
domain: oncall
description: Page the on-call engineer.
run: [echo, paged]
reversible: false
idempotent: true
timeout: 10
";

/// A repository with one commit whose registry adds the triage activity and its playbook.
fn repo_with_triage(env: &TestEnv, triage: &str) -> PathBuf {
    let repo = env.repo_with_commit("repo");
    let registry = repo.join(".spectra/registry");
    std::fs::create_dir_all(registry.join("activities")).unwrap();
    std::fs::create_dir_all(registry.join("playbooks")).unwrap();
    std::fs::write(registry.join("activities/triage.yaml"), triage).unwrap();
    std::fs::write(registry.join("playbooks/oncall.page.yaml"), PAGE).unwrap();
    repo
}

/// A model that rates every incident high and pages on-call.
fn triage_model() -> LlmServer {
    let server = LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let name = body["response_format"]["json_schema"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(name, "triage_decision", "only triage asks the model here");
        Reply::chat_json(&json!({
            "severity": "high",
            "playbooks": [{"id": "oncall.page", "inputs": {}, "reason": "wake them"}],
        }))
    });
    server
}

fn report_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:#?}"))
}

fn triage_with_model(env: &TestEnv, repo: &Path, extra: &[&str]) -> Value {
    let server = triage_model();
    let mut args = vec!["triage", "checkout returns 500s", "--format", "json"];
    args.extend(extra);
    let run = env
        .spectra_with_llm(repo, &server.base_url(), &args)
        .success();
    report_of(&run)
}

#[test]
fn a_repository_activity_is_a_command_with_its_own_help() {
    let env = TestEnv::new();
    let repo = repo_with_triage(&env, TRIAGE);
    let help = env.spectra(&repo, &["triage", "--help"]).success().stdout;
    assert!(
        help.starts_with("Triage an incident and page its owner.\n"),
        "{help}"
    );
    assert!(
        help.contains("Examples:\n  git spectra triage \"checkout returns 500s\"\n"),
        "{help}"
    );
    for flag in [
        "--service",
        "--dry-run",
        "--execute",
        "--offline",
        "--format",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    let top = env.spectra(&repo, &["--help"]).success().stdout;
    assert!(
        top.contains("triage") && top.contains("Triage an incident and page its owner."),
        "{top}"
    );
    let bash = env
        .spectra(&repo, &["completions", "bash"])
        .success()
        .stdout;
    assert!(bash.contains(" triage "), "completions lack triage");
}

#[test]
fn a_repository_activity_runs_its_external_playbooks_in_dry_run_unless_executed() {
    let env = TestEnv::new();
    let repo = repo_with_triage(&env, TRIAGE);

    let report = triage_with_model(&env, &repo, &[]);
    let activity = &report["activities"][0];
    assert_eq!(activity["activity"], "triage");
    assert_eq!(activity["outcome"], "succeeded", "{report:#}");
    assert_eq!(activity["outputs"]["severity"], "high");
    assert_eq!(activity["playbooks"][0]["outcome"], "dry_run");
    assert_eq!(
        activity["outputs"]["effects"],
        json!([{"playbook": "oncall.page", "executed": false, "outcome": "dry_run"}])
    );

    let report = triage_with_model(&env, &repo, &["--execute"]);
    let activity = &report["activities"][0];
    assert_eq!(
        activity["outputs"]["effects"][0]["executed"], true,
        "{report:#}"
    );
    assert_eq!(activity["playbooks"][0]["outcome"], "succeeded");
}

#[test]
fn the_planner_s_keyword_rules_use_the_repository_activity_s_keywords() {
    let env = TestEnv::new();
    let repo = repo_with_triage(&env, TRIAGE);
    let run = env.spectra(
        &repo,
        &[
            "run",
            "an outage at checkout",
            "--offline",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    let report = report_of(&run);
    // The keywords chose triage; offline, an activity without offline rules is left out
    // rather than run to fail.
    assert_eq!(
        report["plan"]["activities"],
        json!(["discover"]),
        "{report:#}"
    );
    assert_eq!(
        report["plan"]["left_out"],
        json!([{"activity": "triage", "reason": "needs_model"}])
    );
    assert!(
        report["plan"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("activities named by words of the input"),
        "{report:#}"
    );
}

#[test]
fn a_repository_activity_may_follow_the_test_rules() {
    let env = TestEnv::new();
    let triage = TRIAGE.replace("external: true\n", "behaviour: test\n");
    let repo = repo_with_triage(&env, &triage);
    // The test rules add `tests.run`, which must then be allowed to this activity.
    let registry = repo.join(".spectra/registry/playbooks/tests.run.yaml");
    let builtin = std::fs::read_to_string(
        crate::common::manifest_dir().join("registry/playbooks/tests.run.yaml"),
    )
    .unwrap();
    std::fs::write(
        &registry,
        builtin.replace(
            "activities: [build, test, optimise]",
            "activities: [build, test, optimise, triage]",
        ),
    )
    .unwrap();
    let path = repo.join(".spectra/registry/activities/triage.yaml");
    std::fs::write(
        &path,
        triage.replace(
            "playbooks: [oncall.page]",
            "playbooks: [oncall.page, tests.run]",
        ),
    )
    .unwrap();
    // Offline, the test rules decide: run the tests and predict nothing.
    let run = env.spectra(
        &repo,
        &[
            "triage",
            "check it",
            "--offline",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    let report = report_of(&run);
    let activity = &report["activities"][0];
    assert_eq!(
        activity["playbooks"][0]["playbook"], "tests.run",
        "{report:#}"
    );
    assert_eq!(activity["outputs"]["test_results"]["observed"], false);
}

#[test]
fn registry_validate_points_at_a_bad_behaviour_or_keyword() {
    let env = TestEnv::new();
    let triage = TRIAGE
        .replace("external: true\n", "external: true\nbehaviour: scout\n")
        .replace("[incident, outage]", "[incident, Out age]");
    let repo = repo_with_triage(&env, &triage);
    let run = env.spectra(&repo, &["registry", "validate"]).code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(".spectra/registry/activities/triage.yaml:20:")
            && text.contains("`scout` is not a behaviour; use one of: default, discover, test"),
        "{text}"
    );
    assert!(
        text.contains(".spectra/registry/activities/triage.yaml:22:")
            && text.contains("`Out age` is not a planner keyword"),
        "{text}"
    );
}

#[test]
fn registry_validate_reports_an_activity_named_like_a_command() {
    let env = TestEnv::new();
    let triage = TRIAGE.replace("name: triage", "name: log");
    let repo = env.repo_with_commit("repo");
    let dir = repo.join(".spectra/registry/activities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("log.yaml"),
        triage.replace("playbooks: [oncall.page]\n", ""),
    )
    .unwrap();
    let run = env.spectra(&repo, &["registry", "validate"]).code(1);
    assert!(
        run.stdout
            .contains(".spectra/registry/activities/log.yaml:1:")
            && run
                .stdout
                .contains("`log` is already a git spectra command"),
        "{run:#?}"
    );
    // The command keeps its meaning.
    env.spectra(&repo, &["log"]).success();
}

/// Issue 20: an activity asks for the reply its decision schema's bounds allow (the schema as
/// sent, playbook runs included), not its whole `token_budget`.
#[test]
fn a_decision_asks_for_the_tokens_its_bounds_allow_within_its_budget() {
    let env = TestEnv::new();
    let repo = repo_with_triage(&env, TRIAGE);
    let server = triage_model();
    env.spectra_with_llm(
        &repo,
        &server.base_url(),
        &["triage", "checkout returns 500s", "--format", "json"],
    )
    .success();
    let body = server.chat_requests()[0].json();
    let schema = &body["response_format"]["json_schema"]["schema"];
    let asked = body["max_tokens"].as_u64().unwrap();
    let estimate = spectra::llm::estimate::reply_tokens(schema).expect("a bounded schema");
    assert_eq!(asked, estimate, "{body:#}");
    assert!(asked < 1024, "{asked}: below triage's token_budget");
}
