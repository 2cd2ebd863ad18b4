//! Runbook playbooks at scale (issue 25): with 300 runbooks an activity may use, a decision is
//! offered only the best `spectra.playbooks.offered` (5) by a lexical ranking, recorded with
//! their scores in `activity.started`; a runbook's steps reach the prompt only once a decision
//! chose it; a model may re-rank a longer shortlist (only from it: unknown names dropped, a
//! failure falls back to the lexical list); `registry list` and `validate` know runbooks;
//! `registry import` makes a folder of Markdown runbooks into entries.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv, json_lines, spectra_bin};
use crate::llm_server::{LlmServer, Reply, Request};

#[path = "../fixtures/runbooks/mod.rs"]
pub(crate) mod fixture;

const RAILWAY_DEPLOY: &str = "Deploy service to Railway platform";

/// A repository whose registry adds the `operate` activity and the first `count` generated
/// runbooks.
fn repo_with_runbooks(env: &TestEnv, count: usize) -> PathBuf {
    let repo = env.repo_with_commit("repo");
    let registry = repo.join(".spectra/registry");
    std::fs::create_dir_all(registry.join("activities")).unwrap();
    std::fs::create_dir_all(registry.join("playbooks")).unwrap();
    std::fs::write(
        registry.join(format!("activities/{}.yaml", fixture::ACTIVITY)),
        fixture::activity_yaml(),
    )
    .unwrap();
    for (name, text) in fixture::runbooks(count) {
        std::fs::write(registry.join("playbooks").join(name), text).unwrap();
    }
    repo
}

/// The user prompt of a chat request.
fn prompt(request: &Request) -> String {
    request.message_texts().join("\n")
}

/// A model that plans without choosing a playbook.
fn planning_model() -> LlmServer {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat_json(&json!({"plan": "do it", "playbooks": []})));
    server
}

fn operate(env: &TestEnv, repo: &Path, server: &LlmServer, extra_env: &[(&str, &str)]) -> Run {
    let mut command = env.command(spectra_bin(), repo);
    command
        .args([fixture::ACTIVITY, RAILWAY_DEPLOY, "--format", "json"])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    Run::from_output(command.output().expect("run git-spectra"))
}

/// The `offered` record of each `activity.started`, oldest first.
fn offers(env: &TestEnv, repo: &Path) -> Vec<Value> {
    env.events(repo, "activity.started")
        .into_iter()
        .map(|event| event["payload"]["context"]["offered"].clone())
        .collect()
}

fn offered_ids(offered: &Value) -> Vec<String> {
    offered["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|offer| offer["id"].as_str().unwrap().to_string())
        .collect()
}

/// The ids the decision schema of a chat request lets the model choose.
fn choosable(request: &Request) -> Vec<String> {
    let schema = &request.json()["response_format"]["json_schema"]["schema"];
    schema["properties"]["playbooks"]["items"]["anyOf"]
        .as_array()
        .map(|choices| {
            choices
                .iter()
                .map(|choice| {
                    choice["properties"]["id"]["enum"][0]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn of_300_runbooks_five_are_offered_and_a_railway_one_leads_for_a_railway_deploy() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    let server = planning_model();
    let run = operate(&env, &repo, &server, &[]).success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        report["activities"][0]["outcome"], "succeeded",
        "{report:#}"
    );

    let offered = &offers(&env, &repo)[0];
    assert_eq!(offered["candidates"], 300, "{offered:#}");
    assert_eq!(offered["limit"], 5);
    assert_eq!(offered["ranked"], true);
    let ids = offered_ids(offered);
    assert_eq!(ids.len(), 5, "{offered:#}");
    assert_eq!(ids[0], "railway.deploy-service", "{offered:#}");
    let scores: Vec<f64> = offered["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|offer| offer["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The prompt lists exactly the offered five, without their steps, and the schema lets
    // the model choose only them.
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 1);
    let text = prompt(&requests[0]);
    for id in &ids {
        assert!(
            text.contains(&format!("- {id} (")),
            "{id} not listed:\n{text}"
        );
    }
    assert_eq!(
        text.matches("\n- ").count() + usize::from(text.starts_with("- ")),
        5
    );
    assert!(!text.contains("STEPS-OF"), "no runbook was chosen:\n{text}");
    assert_eq!(choosable(&requests[0]), ids);
}

#[test]
fn the_offered_list_is_the_same_on_every_run_and_without_the_index_cache() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    let server = planning_model();
    operate(&env, &repo, &server, &[]).success();
    let cache = repo.join(".git/spectra/cache/rank-index.json");
    assert!(cache.is_file(), "the index is cached under the git dir");
    let key = |path: &Path| -> Value {
        serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()["key"].clone()
    };
    let first_key = key(&cache);
    operate(&env, &repo, &server, &[]).success();
    std::fs::remove_file(&cache).unwrap();
    operate(&env, &repo, &server, &[]).success();
    assert_eq!(key(&cache), first_key, "rebuilt under the same content key");

    let offers = offers(&env, &repo);
    assert_eq!(offers.len(), 3);
    assert_eq!(offers[0], offers[1]);
    assert_eq!(offers[0], offers[2]);

    // Another runbook changes the registry's content, hence the key.
    let (name, text) = &fixture::runbooks(1)[0];
    std::fs::write(
        repo.join(".spectra/registry/playbooks")
            .join(format!("extra-{name}")),
        text.replace("name: ", "name: extra-"),
    )
    .unwrap();
    operate(&env, &repo, &server, &[]).success();
    assert_ne!(key(&cache), first_key);
}

#[test]
fn a_runbook_s_steps_reach_the_prompt_only_once_a_decision_chose_it() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    let server = LlmServer::start();
    server.respond_with(|request| {
        let text = request.message_texts().join("\n");
        if text.contains("STEPS-OF railway.deploy-service") {
            Reply::chat_json(&json!({"plan": "followed the runbook", "playbooks": []}))
        } else {
            Reply::chat_json(&json!({"plan": "use the runbook", "playbooks": [
                {"id": "railway.deploy-service", "inputs": {}, "reason": "it is the one"}]}))
        }
    });
    let run = operate(&env, &repo, &server, &[]).success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let activity = &report["activities"][0];
    assert_eq!(activity["outcome"], "succeeded", "{report:#}");
    assert_eq!(activity["outputs"]["plan"], "followed the runbook");
    assert_eq!(
        activity["outputs"]["runbooks_followed"],
        json!(["railway.deploy-service"])
    );
    // Following a runbook runs nothing itself.
    assert!(env.events(&repo, "playbook.started").is_empty());

    let requests = server.chat_requests();
    assert_eq!(
        requests.len(),
        2,
        "one decision, then one that follows the steps"
    );
    assert!(!prompt(&requests[0]).contains("STEPS-OF"));
    let second = prompt(&requests[1]);
    assert!(
        second.contains("STEPS-OF railway.deploy-service"),
        "{second}"
    );
    assert_eq!(
        second.matches("STEPS-OF").count(),
        1,
        "only the chosen one's steps"
    );

    // The recorded request bodies say the same: the log can show what the model was sent.
    let called = env.events(&repo, "llm.called");
    assert_eq!(called.len(), 2);
    let bodies: Vec<String> = called
        .iter()
        .map(|event| {
            let id = event["id"].as_str().unwrap();
            env.spectra(&repo, &["show", id, "--attachment", "request.json"])
                .success()
                .stdout
        })
        .collect();
    assert!(!bodies[0].contains("STEPS-OF"));
    assert!(bodies[1].contains("STEPS-OF railway.deploy-service"));
}

#[test]
fn the_setting_bounds_the_offer_and_a_bad_value_is_refused_naming_it() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, 30);
    let server = planning_model();
    operate(&env, &repo, &server, &[("SPECTRA_PLAYBOOKS_OFFERED", "3")]).success();
    env.git(&repo, &["config", "spectra.playbooks.offered", "40"])
        .success();
    operate(&env, &repo, &server, &[]).success();
    let offers = offers(&env, &repo);
    assert_eq!(offered_ids(&offers[0]).len(), 3);
    assert_eq!(offers[1]["ranked"], false, "30 fit within 40: all offered");
    assert_eq!(offered_ids(&offers[1]).len(), 30);
    assert!(offers[1]["playbooks"][0].get("score").is_none());

    let run = operate(&env, &repo, &server, &[("SPECTRA_PLAYBOOKS_OFFERED", "0")]);
    assert_eq!(run.code, 128, "{run:?}");
    assert!(run.stderr.contains("spectra.playbooks.offered"), "{run:?}");
}

#[test]
fn registry_list_shows_the_kind_and_validate_points_into_front_matter() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, 12);
    let list = env.spectra(&repo, &["registry", "list"]).success().stdout;
    let line = list
        .lines()
        .find(|line| line.trim_start().starts_with("railway.create-service "))
        .unwrap();
    assert!(line.contains(" runbook "), "{line}");
    let line = list
        .lines()
        .find(|l| l.trim_start().starts_with("tests.run "))
        .unwrap();
    assert!(line.contains(" command "), "{line}");
    let json = env
        .spectra(&repo, &["registry", "list", "--format", "json"])
        .success()
        .stdout;
    let entry = json_lines(&json)
        .into_iter()
        .find(|entry| entry["id"] == "railway.create-service")
        .unwrap();
    assert_eq!(entry["playbook_kind"], "runbook");

    let path = ".spectra/registry/playbooks/railway.create-service.md";
    let text = std::fs::read_to_string(repo.join(path)).unwrap();
    std::fs::write(
        repo.join(path),
        text.replace(
            "automation_possible: true",
            "automation_possible: sometimes",
        ),
    )
    .unwrap();
    let run = env.spectra(&repo, &["registry", "validate"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = text
        .lines()
        .position(|l| l.starts_with("automation_possible"))
        .unwrap()
        + 1;
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{path}:{line}:")) && l.contains("invalid boolean")),
        "{}",
        run.stdout
    );
}

#[test]
fn registry_import_derives_what_it_can_lists_the_rest_and_never_overwrites_silently() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, 0);
    // Only the domain imported: a domain an activity names must have a playbook for it.
    let activity = fixture::activity_yaml();
    let line = activity
        .lines()
        .find(|l| l.starts_with("playbooks:"))
        .unwrap();
    std::fs::write(
        repo.join(".spectra/registry/activities/operate.yaml"),
        activity.replace(line, "playbooks: [domain:railway]"),
    )
    .unwrap();
    let folder = env.path().join("railway");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("Create Railway Service.md"),
        "# Create a Railway service\n\nLink the repository to a new Railway service.\n\n1. `railway init`\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("rotate.md"),
        "---\nname: railway.rotate-token\ndescription: Rotate the Railway API token.\nmanual steps: [Revoke the old token in the dashboard]\n---\n# Rotate\n\nNew token, then revoke.\n",
    )
    .unwrap();
    let folder_arg = folder.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["registry", "import", folder_arg, "--activity", "operate"];
        args.extend(extra);
        env.spectra(&repo, &args)
    };
    let run = import(&["--format", "json"]).success();
    let entries = json_lines(&run.stdout);
    assert_eq!(entries.len(), 2, "{}", run.stdout);
    assert_eq!(entries[0]["name"], "create-railway-service");
    assert_eq!(entries[0]["status"], "written");
    assert_eq!(
        entries[0]["fill_in"],
        json!(["inputs", "outputs", "automation_possible", "manual_steps"])
    );
    assert_eq!(entries[1]["name"], "railway.rotate-token");
    assert_eq!(
        entries[1]["derived"],
        json!(["summary", "activities", "domain"])
    );

    // The entries are runbooks of the registry, usable by `operate` (which names domain:railway).
    let show = env
        .spectra(
            &repo,
            &[
                "registry",
                "show",
                "create-railway-service",
                "--format",
                "json",
            ],
        )
        .success()
        .stdout;
    let shown: Value = serde_json::from_str(show.trim()).unwrap();
    assert_eq!(shown["domain"], "railway");
    assert_eq!(shown["description"], "Create a Railway service");
    assert_eq!(
        shown["index"]["summary"],
        "Link the repository to a new Railway service."
    );
    env.spectra(&repo, &["registry", "validate"]).success();

    // Importing the same again changes nothing; an entry edited since is not overwritten.
    let again = import(&[]).success();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    let entry = repo.join(".spectra/registry/playbooks/railway.rotate-token.md");
    let edited = std::fs::read_to_string(&entry)
        .unwrap()
        .replace("inputs: []", "inputs: [RAILWAY_TOKEN]");
    std::fs::write(&entry, &edited).unwrap();
    let refused = import(&[]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("railway.rotate-token.md"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&entry).unwrap(), edited);
    import(&["--force"]).success();
    assert_ne!(std::fs::read_to_string(&entry).unwrap(), edited);
}

#[test]
fn registry_import_refuses_what_would_break_the_registry_and_writes_nothing() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    let folder = env.path().join("ops");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("fine.md"),
        "# Restart the worker\n\nRestart it from the dashboard.\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("rotate.md"),
        "---\nname: rotate-key\ndescription: Rotate a key.\nactivity: Maintain\ndomain: github\n---\n# Rotate\n",
    )
    .unwrap();
    let playbooks = repo.join(".spectra/registry/playbooks");
    let folder_arg = folder.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["registry", "import", folder_arg];
        args.extend(extra);
        env.spectra(&repo, &args)
    };

    // An activity that is not an activity name, and one that does not exist.
    let refused = import(&["--activity", "deploy"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("rotate.md"), "{refused:?}");
    assert!(refused.stderr.contains("`Maintain`"), "{refused:?}");
    assert!(
        !playbooks.exists(),
        "nothing written, not even the fine one"
    );

    // An activity that exists but does not name the domain: the registry would refuse it too.
    std::fs::remove_file(folder.join("rotate.md")).unwrap();
    let refused = import(&["--activity", "deploy"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("fine.md")
            && refused.stderr.contains("does not name playbook `fine`"),
        "{refused:?}"
    );
    assert!(!playbooks.exists());

    // A runbook that takes a built-in playbook's id breaks the activities that run it.
    std::fs::write(
        folder.join("fine.md"),
        "---\nname: tests.run\ndescription: Run the tests by hand.\nactivities: [test]\ndomain: testing\n---\n# Tests\n",
    )
    .unwrap();
    let refused = import(&[]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("registry/activities/build.yaml")
            && refused.stderr.contains("(with the new entries)"),
        "{refused:?}"
    );
    assert!(!playbooks.exists());
    env.spectra(&repo, &["registry", "validate"]).success();
}

/// Whether `request` is the re-ranking of the playbooks (not a decision).
fn is_rerank(request: &Request) -> bool {
    request.json()["response_format"]["json_schema"]["name"]
        .as_str()
        .is_some_and(|name| name.ends_with("_playbooks"))
}

/// The playbook ids a prompt lists, in order (`- id (domain...`).
fn listed_ids(request: &Request) -> Vec<String> {
    prompt(request)
        .lines()
        .filter_map(|line| line.strip_prefix("- "))
        .filter_map(|rest| rest.split_once(" (").map(|(id, _)| id.to_string()))
        .collect()
}

#[test]
fn a_model_reranks_a_longer_shortlist_its_unknown_names_are_dropped_and_a_replay_sees_the_same() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    env.git(&repo, &["config", "spectra.playbooks.rerank", "true"])
        .success();
    let server = LlmServer::start();
    server.respond_with(|request| {
        if is_rerank(request) {
            let listed = listed_ids(request);
            // The eighth of the lexical list (not in its top five), a name the list does not
            // hold, the second, and the eighth again.
            Reply::chat_json(&json!({"playbooks": [
                listed[7], "invented.playbook", listed[1], listed[7]]}))
        } else {
            Reply::chat_json(&json!({"plan": "do it", "playbooks": []}))
        }
    });
    let run = operate(&env, &repo, &server, &[]).success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        report["activities"][0]["outcome"], "succeeded",
        "{report:#}"
    );

    let requests = server.chat_requests();
    assert_eq!(requests.len(), 2, "the re-ranking, then the decision");
    assert!(is_rerank(&requests[0]) && !is_rerank(&requests[1]));
    let shortlist = listed_ids(&requests[0]);
    assert_eq!(shortlist.len(), 15, "three times the limit");
    assert_eq!(shortlist[0], "railway.deploy-service");

    let offered = &offers(&env, &repo)[0];
    let rerank = &offered["rerank"];
    assert_eq!(
        offered_ids(offered),
        [
            shortlist[7].clone(),
            shortlist[1].clone(),
            shortlist[0].clone()
        ],
        "the model's known picks in its order, padded to three in lexical order: {offered:#}"
    );
    assert_eq!(rerank["dropped"], json!(["invented.playbook"]));
    assert_eq!(rerank["padded"], 1);
    assert_eq!(rerank["picked"].as_array().unwrap().len(), 4);
    assert_eq!(rerank["shortlist"].as_array().unwrap().len(), 15);
    assert!(rerank.get("failed").is_none(), "{rerank:#}");

    // The decision is offered exactly those, and nothing the model invented.
    assert_eq!(listed_ids(&requests[1]), offered_ids(offered));
    assert_eq!(choosable(&requests[1]), offered_ids(offered));
    assert!(!prompt(&requests[1]).contains("invented.playbook"));

    // Both calls are recorded; the re-ranking's is what `activity.started` names as its cause.
    let called = env.events(&repo, "llm.called");
    assert_eq!(called.len(), 2);
    let started = &env.events(&repo, "activity.started")[0];
    assert_eq!(started["causes"], json!([called[0]["id"]]), "{started:#}");

    // The report draws the re-ranking inside the activity's bar, which starts no later.
    let page = env.path().join("report.html");
    env.spectra(&repo, &["report", "-o", page.to_str().unwrap()])
        .success();
    let page = std::fs::read_to_string(&page).unwrap();
    let lefts = |class: &str| -> Vec<f64> {
        page.split(class)
            .skip(1)
            .map(|rest| {
                let left = rest.split("left:").nth(1).unwrap();
                left[..left.find('%').unwrap()].parse().unwrap()
            })
            .collect()
    };
    let bar = lefts("class=\"bar ");
    let marks = lefts("class=\"mark llm");
    assert_eq!((bar.len(), marks.len()), (1, 2), "one lane, two calls");
    assert!(
        marks.iter().all(|mark| bar[0] <= *mark + 1e-9),
        "bar at {bar:?}, calls at {marks:?}"
    );

    // A replay answers the re-ranking from the record: the same offer, no request.
    let run_id = report["run"].as_str().unwrap();
    env.spectra_with_llm(&repo, &server.base_url(), &["replay", run_id])
        .success();
    assert_eq!(server.chat_requests().len(), 2, "a replay asks nothing");
}

#[test]
fn a_failed_rerank_offers_the_lexical_top_five_and_the_decision_goes_on() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    let server = LlmServer::start();
    server.respond_with(|request| {
        if is_rerank(request) {
            Reply::error(503, "overloaded", None)
        } else {
            Reply::chat_json(&json!({"plan": "do it", "playbooks": []}))
        }
    });
    operate(&env, &repo, &server, &[]).success();
    let reranked = [
        ("SPECTRA_PLAYBOOKS_RERANK", "true"),
        ("SPECTRA_LLM_MAX_ATTEMPTS", "1"),
    ];
    let run = operate(&env, &repo, &server, &reranked).success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        report["activities"][0]["outcome"], "succeeded",
        "{report:#}"
    );

    let offers = offers(&env, &repo);
    let (lexical, fallen_back) = (&offers[0], &offers[1]);
    assert!(
        lexical.get("rerank").is_none(),
        "not asked for: {lexical:#}"
    );
    assert_eq!(offered_ids(fallen_back), offered_ids(lexical));
    let failed = fallen_back["rerank"]["failed"].as_str().unwrap();
    assert!(failed.contains("503"), "{failed}");
    assert!(
        !failed.contains("127.0.0.1") && failed.contains("`spectra.llm.url`"),
        "the endpoint is named by its setting, so a replay elsewhere compares equal: {failed}"
    );

    let requests = server.chat_requests();
    let kinds: Vec<bool> = requests.iter().map(is_rerank).collect();
    assert_eq!(
        kinds,
        [false, true, false],
        "decision; re-ranking that failed, decision"
    );
    assert_eq!(choosable(&requests[2]), offered_ids(lexical));
    // The failed call is in the log as a failed attempt.
    let called = env.events(&repo, "llm.called");
    assert_eq!(called.len(), 3);
    assert_eq!(called[1]["payload"]["status"], 503, "{:#}", called[1]);
}

#[test]
fn a_run_stopped_while_the_model_re_ranks_is_closed_naming_the_activity() {
    let env = TestEnv::new();
    let repo = repo_with_runbooks(&env, fixture::COUNT);
    let server = LlmServer::start();
    // The first answer is not a list of names: the repair turn is held until the run is killed.
    server.push(Reply::chat_json(&json!({"nope": 1})));
    let repair_asked = server.hold_and_signal();
    let mut running = env
        .command(spectra_bin(), &repo)
        .args([fixture::ACTIVITY, RAILWAY_DEPLOY])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .env("SPECTRA_PLAYBOOKS_RERANK", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    repair_asked
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the repair turn was never sent");
    running.kill().unwrap();
    running.wait().unwrap();
    assert!(env.events(&repo, "activity.started").is_empty());
    assert_eq!(
        env.events(&repo, "llm.called").len(),
        1,
        "the first attempt"
    );

    // The next writing command closes the run, naming the activity that was under way.
    env.spectra(&repo, &["undo", "--dry-run"]);
    let finished = env.events(&repo, "run.finished");
    assert_eq!(finished.len(), 1, "{finished:#?}");
    assert_eq!(finished[0]["payload"]["outcome"], "interrupted");
    assert_eq!(
        finished[0]["payload"]["activities"],
        json!([{"activity": fixture::ACTIVITY, "outcome": "interrupted"}])
    );
}
