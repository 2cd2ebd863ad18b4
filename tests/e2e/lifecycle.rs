//! `git spectra run` and the per-activity commands end to end: the planner, execution in
//! order, outputs flowing between activities, facts over claims for the test activity, and
//! dry-run external effects. The scripted server answers each request by the schema it asks
//! for (`response_format.json_schema.name`), so one responder serves a whole run.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, TestEnv, json_lines};
use crate::llm_server::{LlmServer, Reply, Request};

pub(crate) use crate::llm_server::minimal;

/// `patch` laid over `base`, objects merged key by key.
pub(crate) fn merged(mut base: Value, patch: &Value) -> Value {
    match (base.as_object_mut(), patch.as_object()) {
        (Some(base_map), Some(patch_map)) => {
            for (key, value) in patch_map {
                let old = base_map.remove(key).unwrap_or(Value::Null);
                base_map.insert(key.clone(), merged(old, value));
            }
            base
        }
        _ => patch.clone(),
    }
}

/// What the model answers, per schema name (`run_plan`, `discover_decision`, ...): a reply, or
/// a patch over the minimal valid decision. Schemas not listed get the minimal decision.
enum Answer {
    Patch(Value),
    Reply(Reply),
}

fn script(server: &LlmServer, answers: Vec<(&str, Answer)>) {
    let answers: BTreeMap<String, Answer> = answers
        .into_iter()
        .map(|(name, answer)| (name.to_string(), answer))
        .collect();
    server.respond_with(move |request| {
        let body = request.json();
        let format = &body["response_format"]["json_schema"];
        let name = format["name"].as_str().unwrap_or_default();
        match answers.get(name) {
            Some(Answer::Reply(reply)) => reply.clone(),
            Some(Answer::Patch(patch)) => {
                Reply::chat_json(&merged(minimal(&format["schema"]), patch))
            }
            None => Reply::chat_json(&minimal(&format["schema"])),
        }
    });
}

fn plan_reply(activities: &[&str]) -> Answer {
    Answer::Reply(Reply::chat_json(
        &json!({"activities": activities, "reasoning": "scripted plan"}),
    ))
}

fn discover_patch() -> Answer {
    Answer::Patch(json!({
        "service_name": "logging",
        "problem": {"statement": "Logs are scattered across hosts", "impact": "Slow outages"},
    }))
}

fn spectra(env: &TestEnv, repo: &Path, server: &LlmServer, args: &[&str]) -> Run {
    env.spectra_with_llm(repo, &server.base_url(), args)
}

fn report_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["activity"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, o)| (a.to_string(), o.to_string()))
        .collect()
}

/// The prompt text of the requests that asked for `schema_name`.
fn prompts_for(server: &LlmServer, schema_name: &str) -> Vec<String> {
    server
        .chat_requests()
        .iter()
        .filter(|r| r.json()["response_format"]["json_schema"]["name"] == schema_name)
        .map(Request::message_texts)
        .map(|texts| texts.join("\n"))
        .collect()
}

fn events(env: &TestEnv, repo: &Path, kind: &str) -> Vec<Value> {
    env.events(repo, kind)
}

/// A repository whose test command prints `output` and exits with `code`.
fn repo_with_tests(env: &TestEnv, output: &str, code: i32) -> std::path::PathBuf {
    let repo = env.repo_with_commit("r");
    std::fs::write(
        repo.join("run-tests.sh"),
        format!("echo '{output}'\nexit {code}\n"),
    )
    .unwrap();
    env.git(
        &repo,
        &["config", "spectra.test.command", "sh run-tests.sh"],
    )
    .success();
    repo
}

#[test]
fn the_planner_runs_three_activities_and_plan_sees_discovers_service_and_problem() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(
        &server,
        vec![
            ("run_plan", plan_reply(&["discover", "assess", "plan"])),
            ("discover_decision", discover_patch()),
        ],
    );
    let run = spectra(
        &env,
        &repo,
        &server,
        &["run", "Our logs are everywhere", "--format", "json"],
    )
    .success();
    let report = report_of(&run);
    assert_eq!(report["plan"]["decided_by"], "model");
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("discover", "succeeded"),
            ("assess", "succeeded"),
            ("plan", "succeeded")
        ])
    );
    for schema in ["assess_decision", "plan_decision"] {
        let prompt = &prompts_for(&server, schema)[0];
        assert!(prompt.contains("Service: logging"), "{schema}: {prompt}");
        assert!(
            prompt.contains("Logs are scattered across hosts"),
            "{schema} sees discover's problem: {prompt}"
        );
    }

    // The plan is the run's first decision: no activity, mode planner, caused by its call.
    let decisions = events(&env, &repo, "decision.made");
    let plan = &decisions[0];
    assert_eq!(plan["activity"], Value::Null);
    assert_eq!(plan["payload"]["mode"], "planner");
    assert_eq!(
        plan["payload"]["decision"]["activities"],
        json!(["discover", "assess", "plan"])
    );
    let planner_call = &events(&env, &repo, "llm.called")[0];
    assert_eq!(plan["causes"], json!([planner_call["id"]]));
    assert_eq!(planner_call["activity"], Value::Null);

    // The whole run undoes as one, and the log stays sound.
    spectra(&env, &repo, &server, &["undo"]).success();
    let manifests = spectra(&env, &repo, &server, &["manifest", "--format", "json"]).success();
    assert_eq!(manifests.stdout.trim(), "", "nothing left after undo");
    assert!(!repo.join(".spectra/logging.specification.yaml").exists());
    spectra(&env, &repo, &server, &["verify"]).success();
}

#[test]
fn outputs_flow_design_sees_plan_and_build_and_test_see_design() {
    let env = TestEnv::new();
    let repo = repo_with_tests(&env, "4 passed, 0 failed, 0 skipped", 0);
    let server = LlmServer::start();
    script(
        &server,
        vec![
            ("discover_decision", discover_patch()),
            (
                "plan_decision",
                Answer::Patch(
                    json!({"moscow_priorities": {"must_have": ["ship every log centrally"]}}),
                ),
            ),
            (
                "design_decision",
                Answer::Patch(json!({"architecture": {"style": "a log-router pipeline"}})),
            ),
        ],
    );
    spectra(&env, &repo, &server, &["discover", "central logs"]).success();
    // No --service: the service comes from the latest discover manifest.
    let run = spectra(
        &env,
        &repo,
        &server,
        &[
            "run", "carry on", "-a", "plan", "-a", "design", "-a", "build", "-a", "test",
            "--format", "json",
        ],
    )
    .success();
    let report = report_of(&run);
    assert!(report.get("plan").is_none(), "-a skips the planner");
    assert!(
        report["activities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["service"] == "logging"),
        "{report}"
    );
    assert!(prompts_for(&server, "plan_decision")[0].contains("Service: logging"));
    assert!(prompts_for(&server, "design_decision")[0].contains("ship every log centrally"));
    for schema in ["build_decision", "test_decision"] {
        assert!(
            prompts_for(&server, schema)[0].contains("a log-router pipeline"),
            "{schema} sees design"
        );
    }
}

#[test]
fn an_unknown_activity_in_the_plan_is_dropped_and_recorded() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(
        &server,
        vec![
            ("run_plan", plan_reply(&["discover", "launch-rocket"])),
            // Asked for the unknown name alone, the model insists on it.
            (
                "run_plan_repair",
                Answer::Reply(Reply::chat_json(&json!({"/activities/1": "launch-rocket"}))),
            ),
            ("discover_decision", discover_patch()),
        ],
    );
    let run = spectra(&env, &repo, &server, &["run", "logs", "--format", "json"]).success();
    let report = report_of(&run);
    assert_eq!(report["plan"]["dropped"], json!(["launch-rocket"]));
    assert_eq!(outcomes(&report), pairs(&[("discover", "succeeded")]));
    let plan = &events(&env, &repo, "decision.made")[0];
    assert_eq!(plan["payload"]["dropped"], json!(["launch-rocket"]));
    assert_eq!(plan["payload"]["decided_by"], "model");

    let human = spectra(&env, &repo, &server, &["run", "logs", "--service", "other"]);
    assert!(
        human.stdout.contains("dropped:   launch-rocket"),
        "{human:?}"
    );
}

#[test]
fn when_the_planner_fails_keyword_rules_choose_and_say_why() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(
        &server,
        vec![
            (
                "run_plan",
                Answer::Reply(Reply::error(400, "no planning today", None)),
            ),
            ("discover_decision", discover_patch()),
        ],
    );
    let run = spectra(
        &env,
        &repo,
        &server,
        &["run", "central logging, then test it", "--format", "json"],
    );
    let report = report_of(&run);
    assert_eq!(report["plan"]["decided_by"], "rules");
    assert_eq!(report["plan"]["activities"], json!(["discover", "test"]));
    assert!(
        report["plan"]["fallback"]["message"].is_string(),
        "{report}"
    );
    let plan = events(&env, &repo, "decision.made")
        .into_iter()
        .find(|e| e["payload"]["mode"] == "planner")
        .unwrap();
    assert_eq!(plan["payload"]["decided_by"], "rules");
    assert_eq!(
        plan["causes"].as_array().unwrap().len(),
        1,
        "the failed call"
    );
}

#[test]
fn a_failing_activity_does_not_stop_the_next_but_a_blocking_one_does() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(
        &server,
        vec![
            (
                "assess_decision",
                Answer::Reply(Reply::error(400, "cannot assess", None)),
            ),
            ("discover_decision", discover_patch()),
        ],
    );
    let run = spectra(
        &env,
        &repo,
        &server,
        &[
            "run",
            "go on",
            "-a",
            "assess",
            "-a",
            "plan",
            "--service",
            "logging",
            "--format",
            "json",
        ],
    )
    .code(1);
    let report = report_of(&run);
    assert_eq!(
        outcomes(&report),
        pairs(&[("assess", "failed"), ("plan", "succeeded")])
    );
    assert_eq!(
        report["activities"][0]["errors"][0]["reason"],
        "llm_refused"
    );

    // A healthy duplicate blocks discover, which is blocking: plan never runs.
    std::fs::create_dir_all(repo.join(".spectra")).unwrap();
    std::fs::write(
        repo.join(".spectra/service-catalog.yaml"),
        "services:\n  - {name: logging, status: healthy}\n",
    )
    .unwrap();
    let asked_before = prompts_for(&server, "plan_decision").len();
    let run = spectra(
        &env,
        &repo,
        &server,
        &[
            "run", "logs", "-a", "discover", "-a", "plan", "--format", "json",
        ],
    )
    .code(1);
    let report = report_of(&run);
    assert_eq!(outcomes(&report), pairs(&[("discover", "blocked")]));
    assert_eq!(report["skipped"], json!(["plan"]));
    assert_eq!(prompts_for(&server, "plan_decision").len(), asked_before);
    let finished = events(&env, &repo, "run.finished");
    assert_eq!(
        finished.last().unwrap()["payload"]["skipped"],
        json!(["plan"])
    );
}

#[test]
fn the_test_activity_reports_observed_counts_whatever_the_model_claims() {
    let env = TestEnv::new();
    let repo = repo_with_tests(&env, "5 passed, 2 failed, 1 skipped", 1);
    let server = LlmServer::start();
    script(
        &server,
        vec![(
            "test_decision",
            Answer::Patch(json!({
                "test_strategy": {"approach": "unit first", "levels": ["unit"]},
                "test_results": {"passed": 99, "failed": 0, "skipped": 0, "summary": "all green"},
            })),
        )],
    );
    let run = spectra(
        &env,
        &repo,
        &server,
        &[
            "test",
            "run the tests",
            "--service",
            "logging",
            "--format",
            "json",
        ],
    )
    .code(1);
    let activity = &report_of(&run)["activities"][0];
    assert_eq!(activity["outcome"], "failed");
    let results = &activity["outputs"]["test_results"];
    assert_eq!(
        (results["passed"].as_u64(), results["failed"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(results["observed"], true);
    assert_eq!(activity["quality_gates"]["tests_ran"], true);
    assert_eq!(activity["quality_gates"]["tests_passed"], false);
    // The model chose no playbook; the tests ran anyway, as a rule of the activity.
    assert_eq!(activity["playbooks"][0]["playbook"], "tests.run");
    let manifest = json_lines(
        &spectra(
            &env,
            &repo,
            &server,
            &["manifest", "test", "--format", "json"],
        )
        .success()
        .stdout,
    );
    assert_eq!(manifest[0]["outputs"]["test_results"]["passed"], 5);
}

#[test]
fn zero_tests_is_not_a_pass_and_offline_the_tests_still_run() {
    let env = TestEnv::new();
    let repo = repo_with_tests(&env, "nothing to see", 0);
    let server = LlmServer::start();
    script(&server, Vec::new());
    let run = spectra(
        &env,
        &repo,
        &server,
        &[
            "test",
            "run the tests",
            "--service",
            "logging",
            "--format",
            "json",
        ],
    )
    .code(1);
    let activity = &report_of(&run)["activities"][0];
    assert_eq!(activity["errors"][0]["reason"], "no_tests_ran");
    assert_eq!(activity["quality_gates"]["tests_ran"], false);

    std::fs::write(
        repo.join("run-tests.sh"),
        "echo '3 passed, 0 failed, 0 skipped'\n",
    )
    .unwrap();
    let offline = spectra(
        &env,
        &repo,
        &server,
        &["test", "run the tests", "--service", "logging", "--offline"],
    )
    .success();
    assert!(
        offline.stdout.contains("observed: 3 passed, 0 failed"),
        "{offline:?}"
    );
    let needs_model = spectra(&env, &repo, &server, &["plan", "x", "--offline"]).code(1);
    assert!(
        needs_model.stderr.contains("plan needs a model"),
        "{needs_model:?}"
    );
}

#[test]
fn deploy_runs_nothing_for_real_without_execute() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    env.git(&repo, &["config", "spectra.deploy.command", "true"])
        .success();
    let server = LlmServer::start();
    script(
        &server,
        vec![(
            "deploy_decision",
            Answer::Patch(json!({
                "playbooks": [{"id": "repo.inventory", "inputs": {}, "reason": "look"}],
                "release": {"version": "1.0.0", "notes": "n"},
            })),
        )],
    );
    let args = [
        "deploy",
        "ship it",
        "--service",
        "logging",
        "--format",
        "json",
    ];
    let run = spectra(&env, &repo, &server, &args).success();
    let activity = &report_of(&run)["activities"][0];
    assert_eq!(
        activity["outputs"]["effects"],
        json!([
            {"playbook": "repo.inventory", "executed": false, "outcome": "dry_run"},
            {"playbook": "deploy.command", "executed": false, "outcome": "dry_run"},
        ])
    );
    let finished = events(&env, &repo, "playbook.finished");
    assert_eq!(finished[0]["payload"]["outcome"], "dry_run");

    let mut executed = args.to_vec();
    executed.push("--execute");
    let run = spectra(&env, &repo, &server, &executed).success();
    let activity = &report_of(&run)["activities"][0];
    assert_eq!(activity["outputs"]["effects"][0]["executed"], true);
}

#[test]
fn an_unknown_activity_on_the_command_line_is_a_usage_error() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let run = spectra(&env, &repo, &server, &["run", "x", "-a", "launch-rocket"]).code(2);
    assert!(run.stderr.contains("not in the registry"), "{run:?}");
    assert!(run.stderr.contains("discover, plan"), "{run:?}");
}

#[test]
fn design_reports_its_document_and_never_its_decisions_specification_as_a_file() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(&server, vec![("discover_decision", discover_patch())]);
    spectra(&env, &repo, &server, &["discover", "central logs"]).success();
    // Design's decision has a `specification` of its own (a summary, interfaces): the report
    // used to print it as `spec: , would be written (dry run)` on a real run.
    let run = spectra(
        &env,
        &repo,
        &server,
        &["design", "design it", "--service", "logging"],
    )
    .success();
    assert!(!run.stdout.contains("spec:"), "{run:?}");
    assert!(
        run.stdout
            .contains("document:  .spectra/logging/design.md, committed as"),
        "{run:?}"
    );
    let dry = spectra(
        &env,
        &repo,
        &server,
        &["design", "design it", "--service", "logging", "--dry-run"],
    )
    .success();
    assert!(
        dry.stdout
            .contains("document:  .spectra/logging/design.md, would be written (dry run)"),
        "{dry:?}"
    );
}

#[test]
fn an_incomplete_discover_is_a_result_the_next_activity_builds_on() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script(
        &server,
        vec![(
            "discover_decision",
            Answer::Patch(json!({
                "service_name": "logging",
                "stakeholders": {"users": [], "decision_makers": []},
            })),
        )],
    );
    let run = spectra(&env, &repo, &server, &["discover", "central logs"]).code(1);
    assert!(
        run.stderr
            .contains("error: discover incomplete: required gate failed: stakeholders_identified"),
        "{run:?}"
    );
    let manifest = json_lines(
        &spectra(&env, &repo, &server, &["manifest", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(manifest[0]["status"], "incomplete", "{manifest:?}");

    // Design, with no --service, works on the service the incomplete discover chose.
    let design = report_of(
        &spectra(
            &env,
            &repo,
            &server,
            &["design", "design it", "--format", "json"],
        )
        .success(),
    );
    assert_eq!(design["activities"][0]["service"], "logging", "{design}");
    let spec = std::fs::read_to_string(repo.join(".spectra/logging.specification.yaml")).unwrap();
    assert!(
        spec.contains("discover: incomplete") && spec.contains("design: complete"),
        "{spec}"
    );
}
