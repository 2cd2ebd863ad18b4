//! `git spectra discover` end to end: the real binary, a temporary repository, and the
//! scripted chat-completions server on 127.0.0.1 standing in for the model.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, TestEnv, json_lines, read_fold_cache, write_fold_cache};
use crate::llm_server::{LlmServer, Reply};

/// A decision that satisfies discover's schema and every gate.
pub(crate) fn decision(service: &str) -> Value {
    json!({
        "service_name": service,
        "problem": {"statement": "Logs are scattered across hosts", "impact": "Outages take hours to diagnose",
                    "root_cause": "No central collection", "who_has_it": ["on-call engineers"]},
        "current_state": {"what_exists": ["syslog on each host"], "pain_points": ["grep over ssh"], "gaps": ["no retention"], "blockers": []},
        "desired_state": {"vision": "One place to search every log", "success_criteria": ["search in under 5 s"], "goals": ["central store"]},
        "stakeholders": {"users": ["engineers"], "decision_makers": ["platform lead"], "beneficiaries": ["customers"]},
        "constraints": {"technical": ["must run on existing VMs"], "business": [], "time": ["Q1"], "budget": [], "compliance": ["GDPR"]},
        "requirements": {"functional": ["ship logs"], "non_functional": ["99.9% availability"]},
        "risks": {"technical": ["log volume"], "business": [], "implementation": ["agent rollout"]},
        "alternatives": {"other_options": ["hosted SaaS"], "why_this_solution": "Data stays in-house"},
        "idea": {"name": "Central logging", "type": "new_service", "priority": "high"},
        "validation": {"problem_solved": true, "reasoning": "Central search removes the ssh step", "confidence": 80, "assumptions": ["volume < 1 TB/day"]},
        "recommended_tools": ["vector"],
        "next_steps": ["plan the rollout"],
        "playbooks": [{"id": "repo.inventory", "inputs": {}, "reason": "see what the repository holds"}],
    })
}

fn discover(env: &TestEnv, repo: &Path, server: &LlmServer, args: &[&str]) -> Run {
    let mut all = vec!["discover"];
    all.extend_from_slice(args);
    env.spectra_with_llm(repo, &server.base_url(), &all)
}

fn events(env: &TestEnv, repo: &Path, kind: &str) -> Vec<Value> {
    env.events(repo, kind)
}

fn spec_path(repo: &Path, service: &str) -> std::path::PathBuf {
    repo.join(format!(".spectra/{service}.specification.yaml"))
}

#[test]
fn a_full_discover_commits_the_specification_and_records_every_step() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.push(Reply::chat_json(&decision("logging")));

    let run = discover(&env, &repo, &server, &["Our logs are everywhere"]).success();
    assert!(
        run.stdout.contains("discover succeeded for logging"),
        "{run:?}"
    );
    assert!(run.stdout.contains("11/11 passed"), "{run:?}");
    assert!(run.stdout.contains("git spectra undo "), "{run:?}");

    let spec = std::fs::read_to_string(spec_path(&repo, "logging")).unwrap();
    assert!(spec.contains("service: logging"), "{spec}");
    assert!(spec.contains("Logs are scattered across hosts"), "{spec}");

    // One commit on the user's branch, with the trailers that tie it to the run.
    let message = env
        .git(&repo, &["log", "-1", "--format=%B"])
        .success()
        .stdout;
    let run_id = events(&env, &repo, "run.started")[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!("Spectra-Run: {run_id}")),
        "{message}"
    );
    // The commit names the event that records it, which follows the intent to make it.
    let committed = events(&env, &repo, "files.committed")[0].clone();
    assert!(
        message.contains(&format!(
            "Spectra-Event: {}",
            committed["id"].as_str().unwrap()
        )),
        "{message}"
    );
    let intent = events(&env, &repo, "effect.intended")[0].clone();
    assert_eq!(intent["payload"]["completes"], committed["id"]);
    assert_eq!(committed["causes"][0], intent["id"]);
    assert_eq!(
        env.git(&repo, &["status", "--porcelain"]).success().stdout,
        ""
    );

    // Every step is an event, in order.
    let kinds: Vec<String> = json_lines(
        &env.spectra(&repo, &["log", "--run", &run_id, "--format", "json"])
            .success()
            .stdout,
    )
    .iter()
    .rev()
    .map(|r| r["event"]["kind"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(
        kinds,
        [
            "run.started",
            "activity.started",
            "llm.called",
            "decision.made",
            "playbook.started",
            "playbook.finished",
            "effect.intended",
            "files.committed",
            "activity.finished",
            "run.finished"
        ]
    );
    let committed = &events(&env, &repo, "files.committed")[0];
    let head = env.git(&repo, &["rev-parse", "HEAD"]).success().stdout;
    assert_eq!(
        committed["payload"]["commit"].as_str().unwrap(),
        head.trim()
    );
    let llm = &events(&env, &repo, "llm.called")[0];
    assert_eq!(llm["payload"]["status"], 200);
    assert_eq!(llm["payload"]["model"], "test-model");
    assert!(llm["attachments"]["request.json"].is_string());
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(finished["payload"]["outcome"], "succeeded");
    assert_eq!(finished["payload"]["gates_passed"], 11);
    assert_eq!(
        finished["payload"]["outputs"]["registry_check"]["action"],
        "deploy_new"
    );
    assert_eq!(finished["service"], "logging");

    env.spectra(&repo, &["verify"]).success();
}

#[test]
fn a_fenced_reply_and_a_repaired_reply_are_accepted() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let fenced = format!("Here you go:\n```json\n{}\n```\n", decision("logging"));
    server.push(Reply::chat(&fenced));
    discover(&env, &repo, &server, &["central logs"]).success();

    let repo2 = env.repo_with_commit("r2");
    let mut invalid = decision("billing");
    invalid["problem"]["who_has_it"] = json!("on-call engineers");
    server.push(Reply::chat_json(&invalid));
    // Only the failing path is asked for; the answer is merged into the reply.
    server.push(Reply::chat_json(
        &json!({"/problem/who_has_it": ["on-call engineers"]}),
    ));
    discover(&env, &repo2, &server, &["bills"]).success();
    let repair = server.chat_requests().last().unwrap().json();
    let asked = &repair["response_format"]["json_schema"]["schema"]["properties"];
    assert_eq!(
        asked.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["/problem/who_has_it"]
    );
    let made = &events(&env, &repo2, "decision.made")[0];
    assert_eq!(made["payload"]["repairs"], 1);
    assert_eq!(
        made["payload"]["decision"]["problem"],
        decision("billing")["problem"]
    );
    assert_eq!(events(&env, &repo2, "llm.called").len(), 2);
    assert!(spec_path(&repo2, "billing").exists());
}

#[test]
fn a_reply_that_never_validates_is_recorded_as_a_failure_and_writes_nothing() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let mut invalid = decision("logging");
    invalid.as_object_mut().unwrap().remove("problem");
    server.respond_with(move |_| Reply::chat_json(&invalid));

    let run = discover(&env, &repo, &server, &["central logs"]).code(1);
    assert!(run.stderr.contains("error: discover failed"), "{run:?}");
    assert!(run.stderr.contains("hint: "), "{run:?}");
    assert!(!spec_path(&repo, "logging").exists());
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", "HEAD"])
            .success()
            .stdout
            .trim(),
        "1"
    );
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(finished["payload"]["outcome"], "failed");
    assert_eq!(
        finished["payload"]["errors"][0]["reason"],
        "invalid_decision"
    );
    assert!(
        events(&env, &repo, "decision.made").is_empty(),
        "no decision was made"
    );
    assert_eq!(
        events(&env, &repo, "llm.called").len(),
        3,
        "first ask and two repair turns"
    );
    assert_eq!(
        events(&env, &repo, "run.finished")[0]["payload"]["outcome"],
        "failed"
    );
    env.spectra(&repo, &["verify"]).success();
}

#[test]
fn a_healthy_duplicate_in_the_catalog_blocks_the_run() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    std::fs::create_dir_all(repo.join(".spectra")).unwrap();
    std::fs::write(
        repo.join(".spectra/service-catalog.yaml"),
        "cosmos:\n  production:\n    services:\n      - name: logging\n        url: https://logs.example.com\n        status: healthy\n        version: 2.1.0\n",
    )
    .unwrap();
    let server = LlmServer::start();
    server.push(Reply::chat_json(&decision("logging")));
    let run = discover(&env, &repo, &server, &["central logs"]).code(1);
    assert!(
        run.stderr.contains("already exists and is healthy"),
        "{run:?}"
    );
    assert!(run.stderr.contains("https://logs.example.com"), "{run:?}");
    assert!(!spec_path(&repo, "logging").exists());
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(finished["payload"]["outcome"], "blocked");
    assert_eq!(
        finished["payload"]["outputs"]["registry_check"]["action"],
        "blocked"
    );
    assert!(
        events(&env, &repo, "playbook.started").is_empty(),
        "a blocked run runs nothing"
    );

    // A duplicate that is not healthy is reported, not blocked.
    std::fs::write(
        repo.join(".spectra/service-catalog.yaml"),
        "services:\n  - name: logging\n    status: degraded\n",
    )
    .unwrap();
    env.git(&repo, &["add", ".spectra"]).success();
    env.git(&repo, &["commit", "-q", "-m", "catalog"]).success();
    server.push(Reply::chat_json(&decision("logging")));
    discover(&env, &repo, &server, &["central logs"]).success();
    let finished = events(&env, &repo, "activity.finished");
    assert_eq!(
        finished[1]["payload"]["outputs"]["registry_check"]["action"],
        "redeploy"
    );
    assert_eq!(
        finished[1]["payload"]["quality_gates"]["no_duplicate_service"],
        false
    );
}

#[test]
fn service_names_are_normalised_validated_and_never_invented() {
    let env = TestEnv::new();
    let server = LlmServer::start();

    // --service is normalised: `Logging Service` -> logging.
    let repo = env.repo_with_commit("a");
    server.push(Reply::chat_json(&decision("whatever")));
    let run = discover(
        &env,
        &repo,
        &server,
        &["logs", "--service", "Logging Service"],
    )
    .success();
    assert!(run.stdout.contains("for logging"), "{run:?}");
    assert!(spec_path(&repo, "logging").exists());

    // --service that breaks the rule is a usage error before anything happens.
    let run = discover(
        &env,
        &repo,
        &server,
        &["logs", "--service", "deploy-portal"],
    )
    .code(2);
    assert!(run.stderr.contains("action verb `deploy`"), "{run:?}");

    // The model's invalid name is sent back once with the rule; a valid second answer is used.
    let repo = env.repo_with_commit("b");
    server.push(Reply::chat_json(&decision("my-app")));
    server.push(Reply::chat_json(&json!({"service_name": "audit-trail"})));
    discover(&env, &repo, &server, &["audits"]).success();
    let second_prompt = server
        .chat_requests()
        .last()
        .unwrap()
        .message_texts()
        .join("\n");
    assert!(
        second_prompt.contains("`my-app`, which is invalid"),
        "{second_prompt}"
    );
    assert!(spec_path(&repo, "audit-trail").exists());

    // Invalid twice: the run fails and suggests --service; no name is made up.
    let repo = env.repo_with_commit("c");
    server.push(Reply::chat_json(&decision("my-app")));
    server.push(Reply::chat_json(&json!({"service_name": "deploy-portal"})));
    let run = discover(&env, &repo, &server, &["portal"]).code(1);
    assert!(run.stderr.contains("--service"), "{run:?}");
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(
        finished["payload"]["errors"][0]["reason"],
        "invalid_service_name"
    );
    assert!(!repo.join(".spectra").exists());
}

#[test]
fn an_invalid_service_name_is_asked_for_alone_and_the_answer_goes_into_the_decision() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.push(Reply::chat_json(&decision("service-owner-lookup")));
    server.push(Reply::chat_json(&json!({"service_name": "owner-lookup"})));

    let run = discover(&env, &repo, &server, &["who owns what"]).success();
    assert!(run.stdout.contains("for owner-lookup"), "{run:?}");

    let sent = server.chat_requests();
    assert_eq!(sent.len(), 2, "the decision, then the name alone");
    let follow_up = sent[1].json();
    assert_eq!(
        follow_up["response_format"]["json_schema"]["schema"],
        json!({
            "type": "object",
            "properties": {"service_name": {
                "type": "string",
                "description": "Lowercase words joined by hyphens, e.g. `log-shipper` (spectra checks the rule).",
                "maxLength": 63
            }},
            "required": ["service_name"],
            "additionalProperties": false
        })
    );
    let texts = sent[1].message_texts();
    assert_eq!(texts.len(), 4, "system, user, the decision, the question");
    assert_eq!(
        texts[..2],
        sent[0].message_texts()[..2],
        "the same prompt prefix"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&texts[2]).unwrap(),
        decision("service-owner-lookup")
    );
    let question = &texts[3];
    assert!(
        question.contains("`service-owner-lookup`, which is invalid")
            && question.contains("reserved word `service`")
            && question.contains("The rule: a service name is"),
        "{question}"
    );
    // No placeholder a small model could copy as its answer (one wrote `<a valid name>`).
    assert!(
        question.contains("one key is \"service_name\"") && !question.contains('<'),
        "{question}"
    );

    // Both asks are recorded; the second decision is the first with the new name.
    assert_eq!(events(&env, &repo, "llm.called").len(), 2);
    let made = events(&env, &repo, "decision.made");
    assert_eq!(made.len(), 2);
    assert_eq!(made[1]["payload"]["follow_up"], "service_name");
    assert_eq!(made[1]["payload"]["decision"], decision("owner-lookup"));
    assert!(spec_path(&repo, "owner-lookup").exists());
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(
        finished["payload"]["outputs"]["service_name"],
        "owner-lookup"
    );
    assert_eq!(
        finished["payload"]["outputs"]["problem"],
        decision("logging")["problem"]
    );
}

#[test]
fn dry_run_runs_no_playbook_and_writes_nothing() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.push(Reply::chat_json(&decision("logging")));
    let run = discover(
        &env,
        &repo,
        &server,
        &["logs", "--dry-run", "--format", "json"],
    )
    .success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["activities"][0]["playbooks"][0]["outcome"],
        "dry_run"
    );
    assert_eq!(
        report["activities"][0]["outputs"]["specification"]["written"],
        false
    );
    assert!(!spec_path(&repo, "logging").exists());
    assert_eq!(
        env.git(&repo, &["status", "--porcelain"]).success().stdout,
        ""
    );
    let finished = &events(&env, &repo, "playbook.finished")[0];
    assert_eq!(finished["payload"]["outcome"], "dry_run");
    assert_eq!(
        events(&env, &repo, "run.started")[0]["payload"]["dry_run"],
        true
    );
}

#[test]
fn no_commit_leaves_the_file_and_a_dirty_specification_is_never_overwritten() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.push(Reply::chat_json(&decision("logging")));
    discover(&env, &repo, &server, &["logs", "--no-commit"]).success();
    assert!(spec_path(&repo, "logging").exists());
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", "HEAD"])
            .success()
            .stdout
            .trim(),
        "1"
    );
    assert!(events(&env, &repo, "files.committed").is_empty());

    // The user edits the (uncommitted) file; discover refuses to touch it, even as an update.
    std::fs::write(
        spec_path(&repo, "logging"),
        "service: logging\n# my notes\n",
    )
    .unwrap();
    server.push(Reply::chat_json(&decision("logging")));
    let run = discover(&env, &repo, &server, &["logs", "--update"]).code(1);
    assert!(run.stderr.contains("uncommitted changes"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(spec_path(&repo, "logging")).unwrap(),
        "service: logging\n# my notes\n"
    );
}

/// A second discover of the same service (an update) commits the rewritten specification alone,
/// whether or not git needed `git add` for it, and leaves what the user staged staged.
#[test]
fn a_second_discover_commits_only_its_specification() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    std::fs::write(repo.join("notes.txt"), "mine\n").unwrap();
    env.git(&repo, &["add", "notes.txt"]).success();
    let mut again = decision("logging");
    again["problem"]["statement"] = json!("Logs are lost on reboot");
    discover_logging_twice(&env, &repo, &server, &again);

    let committed = env
        .git(&repo, &["show", "--name-only", "--format=%s", "HEAD"])
        .success()
        .stdout;
    assert_eq!(
        committed
            .lines()
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>(),
        [
            "discover: update specification for logging",
            ".spectra/logging.specification.yaml",
            ".spectra/logging/discover.md"
        ]
    );
    let in_head = env
        .git(&repo, &["show", "HEAD:.spectra/logging.specification.yaml"])
        .success()
        .stdout;
    assert!(in_head.contains("Logs are lost on reboot"), "{in_head}");
    let status = env.git(&repo, &["status", "--porcelain"]).success().stdout;
    assert_eq!(status, "A  notes.txt\n");
}

/// Two discovers of `logging`, the second (an update) answered with `second`.
fn discover_logging_twice(env: &TestEnv, repo: &Path, server: &LlmServer, second: &Value) {
    server.push(Reply::chat_json(&decision("logging")));
    discover(env, repo, server, &["logs", "--service", "logging"]).success();
    server.push(Reply::chat_json(second));
    discover(
        env,
        repo,
        server,
        &["logs again", "--service", "logging", "--update"],
    )
    .success();
}

#[test]
fn the_history_of_a_first_run_appears_in_the_second_runs_prompt() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    discover_logging_twice(&env, &repo, &server, &decision("logging"));
    let first_run = events(&env, &repo, "run.started")[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    let prompt = server
        .chat_requests()
        .last()
        .unwrap()
        .message_texts()
        .join("\n");
    assert!(
        prompt.contains(&first_run),
        "the first run is in the second prompt"
    );
    assert!(
        prompt.contains("Logs are scattered across hosts"),
        "with its decision"
    );
    let started = &events(&env, &repo, "activity.started")[1];
    assert_eq!(started["payload"]["context"]["history_entries"], 1);
    assert_eq!(
        started["payload"]["context"]["specification"],
        ".spectra/logging.specification.yaml"
    );
}

#[test]
fn an_unreachable_configured_endpoint_is_an_error_not_a_silent_downgrade() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    // The pinned environment points SPECTRA_LLM_URL at a closed port.
    let run = env.spectra(&repo, &["discover", "logs"]).code(1);
    assert!(run.stderr.contains("error: discover failed"), "{run:?}");
    assert!(run.stderr.contains("git spectra doctor"), "{run:?}");
    let finished = &events(&env, &repo, "activity.finished")[0];
    assert_eq!(
        finished["payload"]["errors"][0]["reason"],
        "llm_unreachable"
    );
    assert!(
        !events(&env, &repo, "llm.called").is_empty(),
        "every attempt is recorded"
    );
}

#[test]
fn offline_discover_uses_rules_and_says_so() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let run = env
        .spectra(
            &repo,
            &["discover", "A logging service for payments", "--offline"],
        )
        .success();
    assert!(
        run.stdout
            .contains("discover succeeded for logging (offline)"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("gates:     2 checked by rules and passed; 9 need a model to judge"),
        "only the gates spectra checks itself: {run:?}"
    );
    let made = &events(&env, &repo, "decision.made")[0];
    assert_eq!(made["payload"]["mode"], "offline");
    assert_eq!(
        made["payload"]["decision"]["problem"]["statement"],
        "A logging service for payments"
    );
    let ran: Vec<String> = events(&env, &repo, "playbook.finished")
        .iter()
        .map(|e| e["payload"]["playbook"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["repo.inventory", "catalog.lookup"]);
    assert!(spec_path(&repo, "logging").exists());
    env.spectra(&repo, &["verify"]).success();
}

#[test]
fn manifests_history_runs_and_export_are_projections_of_the_log() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    env.spectra(&repo, &["discover", "A logging service", "--offline"])
        .success();

    let manifests = json_lines(
        &env.spectra(&repo, &["manifest", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["activity"], "discover");
    assert_eq!(manifests[0]["service"], "logging");
    assert_eq!(manifests[0]["status"], "complete");
    let history = json_lines(
        &env.spectra(&repo, &["history", "discover", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(history.len(), 1);
    let runs = json_lines(
        &env.spectra(&repo, &["runs", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(runs[0]["outcome"], "succeeded");

    // Deleting the cache changes no output.
    let before = env.spectra(&repo, &["manifest"]).success().stdout;
    std::fs::remove_dir_all(repo.join(".git/spectra/cache")).unwrap();
    assert_eq!(env.spectra(&repo, &["manifest"]).success().stdout, before);

    // An event appended by another process (a second discover) is seen by the next read.
    env.spectra(&repo, &["discover", "A billing service", "--offline"])
        .success();
    let services: Vec<String> = json_lines(
        &env.spectra(&repo, &["manifest", "--format", "json"])
            .success()
            .stdout,
    )
    .iter()
    .map(|m| m["service"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(services, ["billing", "logging"]);

    let written = env.spectra(&repo, &["export"]).success();
    assert!(
        written.stdout.contains("discover-manifest.yaml"),
        "{written:?}"
    );
    let manifest_file =
        std::fs::read_to_string(repo.join(".spectra/manifests/discover-manifest.yaml")).unwrap();
    assert!(
        manifest_file.contains("billing") && manifest_file.contains("logging"),
        "{manifest_file}"
    );
    let history_file =
        std::fs::read_to_string(repo.join(".spectra/history/discover-history.yaml")).unwrap();
    assert!(history_file.contains("A billing service"), "{history_file}");
    // Each service's own, beside its documents.
    let billing =
        std::fs::read_to_string(repo.join(".spectra/billing/manifests/discover-manifest.yaml"))
            .unwrap();
    assert!(
        billing.contains("service: billing") && !billing.contains("logging"),
        "{billing}"
    );
    let billing_history =
        std::fs::read_to_string(repo.join(".spectra/billing/history/discover-history.yaml"))
            .unwrap();
    assert!(
        billing_history.contains("A billing service")
            && !billing_history.contains("A logging service"),
        "{billing_history}"
    );
    assert!(
        repo.join(".spectra/logging/manifests/discover-manifest.yaml")
            .is_file()
    );
    env.spectra(&repo, &["verify"]).success();
}

/// A repository with two offline discovers: logging, then billing.
fn logging_and_billing_offline(env: &TestEnv) -> std::path::PathBuf {
    let repo = env.repo_with_commit("r");
    for idea in ["A logging service", "A billing service"] {
        env.spectra(&repo, &["discover", idea, "--offline"])
            .success();
    }
    repo
}

#[test]
fn a_manifest_cache_value_that_does_not_parse_is_folded_afresh_from_the_log() {
    let env = TestEnv::new();
    let repo = logging_and_billing_offline(&env);
    let manifests = || {
        env.spectra(&repo, &["manifest", "--format", "json"])
            .success()
            .stdout
    };
    let before = manifests();
    let cache_path = repo.join(".git/spectra/cache/manifests.json");
    let (header, _) = read_fold_cache(&cache_path);
    let cache = || -> Value { read_fold_cache(&cache_path).1 };
    // A hand edit that leaves the file JSON but logging's manifest no manifest.
    let mut edited = cache();
    edited["latest"]["logging\u{0}discover"]["status"] = json!(5);
    write_fold_cache(&cache_path, &header, &edited);

    // Billing's manifest alone is read from the cache as it is.
    let billing = env
        .spectra(
            &repo,
            &["manifest", "--service", "billing", "--format", "json"],
        )
        .success()
        .stdout;
    assert_eq!(json_lines(&billing)[0]["service"], "billing");
    assert_eq!(cache(), edited, "reading billing's manifest reads no other");
    // Logging's is not answered from the cache but from the log, which replaces the cache.
    assert_eq!(manifests(), before);
    assert_eq!(
        cache()["latest"]["logging\u{0}discover"]["status"],
        "complete"
    );

    // The same for a run's context: a history entry that does not parse is not shown to it.
    let mut edited = cache();
    edited["recent"]["discover\u{0}logging"][0]["entry"]["outcome"] = json!(5);
    let (header, _) = read_fold_cache(&cache_path);
    write_fold_cache(&cache_path, &header, &edited);
    env.spectra(&repo, &["discover", "A search service", "--offline"])
        .success();
    assert_eq!(
        cache()["recent"]["discover\u{0}logging"][0]["entry"]["outcome"],
        "succeeded"
    );
}

/// A run saves the manifest index at its own last event, so the next command reads no event
/// back; what it saved is what folding the whole log gives.
#[test]
fn a_run_leaves_the_manifest_cache_at_the_tip() {
    let env = TestEnv::new();
    let repo = logging_and_billing_offline(&env);
    let cache_path = repo.join(".git/spectra/cache/manifests.json");
    let (cache, _) = read_fold_cache(&cache_path);
    let tip = env
        .git(&repo, &["rev-parse", "refs/spectra/events"])
        .success()
        .stdout;
    assert_eq!(cache["place"]["commit"], tip.trim());

    let views = || {
        let manifests = env.spectra(&repo, &["manifest", "--format", "json"]);
        let history = env.spectra(&repo, &["history", "discover", "--format", "json"]);
        (manifests.success().stdout, history.success().stdout)
    };
    let from_the_run = views();
    std::fs::remove_file(&cache_path).unwrap();
    assert_eq!(views(), from_the_run);
}

/// A specification outside the sparse checkout (a skip-worktree entry) is not committed behind
/// git's back: `git add` refuses the update, and the run says so.
#[test]
fn a_skip_worktree_specification_is_refused_by_git_add_not_committed_from_the_index() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    std::fs::create_dir_all(repo.join(".spectra")).unwrap();
    std::fs::write(spec_path(&repo, "logging"), "service: logging\n").unwrap();
    env.git(&repo, &["add", ".spectra"]).success();
    env.git(&repo, &["commit", "-q", "-m", "spec"]).success();
    env.git(
        &repo,
        &[
            "update-index",
            "--skip-worktree",
            ".spectra/logging.specification.yaml",
        ],
    )
    .success();
    let head = env.git(&repo, &["rev-parse", "HEAD"]).success().stdout;

    let run = env.spectra(
        &repo,
        &[
            "discover",
            "A logging service",
            "--offline",
            "--service",
            "logging",
            "--update",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("sparse"), "{run:?}");
    assert_eq!(
        env.git(&repo, &["rev-parse", "HEAD"]).success().stdout,
        head
    );
}
