//! Issue 22, item 2: provision, deploy and monitor run the repository's own commands
//! (`git config spectra.<activity>.command`), argv only, through the playbook runner. The
//! observed exit code decides the effect's gate; a deploy that really succeeded is tagged
//! `<service>/v<version>` with the run's trailers, and undo runs the configured rollback and
//! deletes the tag. The commands are small shell scripts written into the scratch directory
//! and run as argv (`sh <script>`), never through a shell string.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv};
use crate::lifecycle::{merged, minimal};
use crate::llm_server::{LlmServer, Reply};

/// The deploy decision the scripted model gives: release 1.2.0, and `choices` as its playbooks.
fn script_deploy(server: &LlmServer, version: &str, choices: Value) {
    let version = version.to_string();
    server.respond_with(move |request| {
        let body = request.json();
        let schema = &body["response_format"]["json_schema"]["schema"];
        let patch = json!({"release": {"version": version, "notes": "n"}, "playbooks": choices});
        Reply::chat_json(&merged(minimal(schema), &patch))
    });
}

/// A script in the scratch directory (outside the repository, so the work tree stays clean).
fn script_file(env: &TestEnv, name: &str, body: &str) -> PathBuf {
    let path = env.path().join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// `sh <script>` as the value of `key`.
fn configure(env: &TestEnv, repo: &Path, key: &str, script: &Path) {
    let command = format!("sh {}", script.display());
    env.git(repo, &["config", key, &command]).success();
}

fn deploy(env: &TestEnv, repo: &Path, server: &LlmServer, extra: &[&str]) -> Run {
    let mut args = vec![
        "deploy",
        "ship it",
        "--service",
        "logging",
        "--format",
        "json",
    ];
    args.extend(extra);
    env.spectra_with_llm(repo, &server.base_url(), &args)
}

/// A repository whose deploy and rollback commands append `deployed` and `rolled-back` to the
/// marker file it returns.
fn repo_that_deploys_and_rolls_back(env: &TestEnv) -> (PathBuf, PathBuf) {
    let marker = env.path().join("marker");
    let repo = repo_with_deploy(env, &format!("echo deployed >> {}\n", marker.display()));
    configure_rollback(
        env,
        &repo,
        &format!("echo rolled-back >> {}\n", marker.display()),
    );
    (repo, marker)
}

/// `sh <script>` with `body` as the deploy's rollback command.
fn configure_rollback(env: &TestEnv, repo: &Path, body: &str) {
    let rollback = script_file(env, "rollback.sh", body);
    configure(env, repo, "spectra.deploy.rollbackCommand", &rollback);
}

/// Runs `args` against the scripted model, killed by its own hook at `point` (SIGKILL, as a
/// power cut would).
fn killed_at(env: &TestEnv, repo: &Path, server: &LlmServer, args: &[&str], point: &str) {
    let killed = env
        .command(crate::common::spectra_bin(), repo)
        .args(args)
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .env("SPECTRA_TEST_STOP_AT", format!("{point}:kill"))
        .output()
        .unwrap();
    assert_eq!(
        killed.status.code(),
        None,
        "killed by its own hook at {point}"
    );
}

fn report(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

fn tags(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["tag", "--list"]).success().stdout
}

/// A repository whose deploy command writes `deployed` into a marker file beside the scripts.
fn repo_with_deploy(env: &TestEnv, body: &str) -> PathBuf {
    let repo = env.repo_with_commit("r");
    let script = script_file(env, "deploy.sh", body);
    configure(env, &repo, "spectra.deploy.command", &script);
    repo
}

#[test]
fn a_deploy_that_succeeds_is_tagged_and_undo_rolls_back_and_removes_the_tag() {
    let env = TestEnv::new();
    let marker = env.path().join("marker");
    let repo = repo_with_deploy(
        &env,
        &format!("echo deploying\necho deployed > {}\n", marker.display()),
    );
    configure_rollback(
        &env,
        &repo,
        &format!("echo rolled-back > {}\n", marker.display()),
    );
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));

    let run = deploy(&env, &repo, &server, &["--execute"]).success();
    let report = report(&run);
    let activity = &report["activities"][0];
    assert_eq!(activity["outcome"], "succeeded", "{activity:#}");
    assert_eq!(activity["quality_gates"]["deployed"], true);
    let command = &activity["outputs"]["command"];
    assert_eq!(command["executed"], true, "{command:#}");
    assert_eq!(command["exit_code"], 0);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "deployed\n");

    // The tag: annotated, at HEAD before the deploy's own document commit, with trailers.
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0");
    let tag = env
        .git(&repo, &["cat-file", "tag", "logging/v1.2.0"])
        .success()
        .stdout;
    let run_id = report["run"].as_str().unwrap();
    assert!(tag.contains("release logging v1.2.0"), "{tag}");
    assert!(tag.contains(&format!("Spectra-Run: {run_id}")), "{tag}");
    let tagging = env
        .events(&repo, "playbook.started")
        .into_iter()
        .find(|e| e["payload"]["playbook"] == "release.tag")
        .expect("the tag's playbook.started");
    let started_id = tagging["id"].as_str().unwrap();
    assert!(
        tag.contains(&format!("Spectra-Event: {started_id}")),
        "{tag}"
    );
    // Its intent was recorded first, naming the event that completes it.
    let intents = env.events(&repo, "effect.intended");
    let intent = intents
        .iter()
        .find(|e| e["payload"]["effect"] == "tag")
        .expect("the tag's effect.intended");
    assert_eq!(intent["payload"]["tag"], "logging/v1.2.0");
    assert_eq!(intent["payload"]["completes"], started_id);

    // Undo: the rollback command runs (its marker) and the tag is gone, and it says so.
    let undo = env.spectra(&repo, &["undo"]).success();
    assert!(
        undo.stdout
            .contains("ran playbook release.tag (undo): deleted tag `logging/v1.2.0`"),
        "{undo:?}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "rolled-back\n");
    assert_eq!(tags(&env, &repo).trim(), "");
}

#[test]
fn a_deploy_killed_after_its_tag_and_before_its_record_is_undone_tag_and_all() {
    let env = TestEnv::new();
    let (repo, marker) = repo_that_deploys_and_rolls_back(&env);
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    killed_at(
        &env,
        &repo,
        &server,
        &["deploy", "ship it", "--service", "logging", "--execute"],
        "playbook.ran.release.tag",
    );
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0");
    assert!(
        !env.events(&repo, "playbook.finished")
            .iter()
            .any(|e| e["payload"]["playbook"] == "release.tag"),
        "the tag's outcome was never recorded"
    );

    // Undo closes the interrupted run, then takes back both effects: its undo looks for the tag
    // itself, so an unfinished tagging is compensated too.
    let undo = env.spectra(&repo, &["undo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "", "{undo:?}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "deployed\nrolled-back\n"
    );
    // Closing the run found the tag by its own trailers: the log says it was made.
    let tagged = env
        .events(&repo, "playbook.finished")
        .into_iter()
        .find(|e| e["payload"]["playbook"] == "release.tag" && e["payload"]["action"] == "run")
        .expect("the tag's outcome, found when the run was closed");
    assert_eq!(tagged["payload"]["outcome"], "succeeded", "{tagged:#}");
    assert_eq!(tagged["payload"]["reconciled"], true);
    assert_eq!(tagged["payload"]["tag"], "logging/v1.2.0");
}

#[test]
fn a_deploy_whose_command_never_finished_is_not_rolled_back_blind_unless_forced() {
    let env = TestEnv::new();
    let marker = env.path().join("marker");
    // The command writes its marker, then never finishes on its own: the timeout stops it. The
    // timeout is the test's length, and long enough that even a loaded machine starts `sh` and
    // writes the marker before it (the marker is what shows the command really began).
    let repo = repo_with_deploy(
        &env,
        &format!("echo half >> {}\nsleep 30\n", marker.display()),
    );
    env.git(&repo, &["config", "spectra.deploy.timeout", "3s"])
        .success();
    configure_rollback(
        &env,
        &repo,
        &format!("echo rolled-back >> {}\n", marker.display()),
    );
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let command = &report(&run)["activities"][0]["outputs"]["command"];
    assert_eq!(command["outcome"], "timed_out", "{command:#}");

    let refused = env.spectra(&repo, &["undo"]).code(1);
    assert!(refused.stderr.contains("never finished"), "{refused:?}");
    assert!(refused.stderr.contains("deploy.command"), "{refused:?}");
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    let marked = std::fs::read_to_string(&marker).expect("the command wrote before its timeout");
    assert_eq!(marked, "half\n");

    env.spectra(&repo, &["undo", "--force"]).success();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "half\nrolled-back\n"
    );
}

#[test]
fn a_monitor_killed_while_probing_keeps_its_command_s_outcome() {
    let env = TestEnv::new();
    let url = http_fixture(Answer::Status(200));
    let repo = repo_with_catalog(&env, &url);
    let server = LlmServer::start();
    script_monitor(&server);
    // The probe only reads, so nothing is appended between the command and the kill: the
    // command's outcome must already be in the log.
    killed_at(
        &env,
        &repo,
        &server,
        &["monitor", "watch it", "--service", "logging", "--execute"],
        "playbook.ran.service.probe",
    );
    let commands: Vec<Value> = env
        .events(&repo, "playbook.finished")
        .into_iter()
        .filter(|e| e["payload"]["playbook"] == "monitor.command")
        .collect();
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert_eq!(commands[0]["payload"]["outcome"], "succeeded");
}

#[test]
fn undo_redo_undo_of_a_deploy_rolls_back_twice_and_leaves_no_tag() {
    let env = TestEnv::new();
    let (repo, marker) = repo_that_deploys_and_rolls_back(&env);
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    deploy(&env, &repo, &server, &["--execute"]).success();
    env.spectra(&repo, &["undo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "");
    env.spectra(&repo, &["redo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0");
    let undo = env.spectra(&repo, &["undo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "", "{undo:?}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "deployed\nrolled-back\ndeployed\nrolled-back\n"
    );
}

#[test]
fn a_failed_rollback_keeps_the_release_tag_and_redo_tags_only_after_deploying() {
    let env = TestEnv::new();
    let marker = env.path().join("marker");
    let repo = repo_with_deploy(&env, &format!("echo deployed >> {}\n", marker.display()));
    configure_rollback(&env, &repo, "exit 1\n");
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    deploy(&env, &repo, &server, &["--execute"]).success();

    // The rollback fails: the release is still live, so its tag stays.
    let failed = env.spectra(&repo, &["undo"]).code(1);
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0", "{failed:?}");
    // Once the rollback works, the undo finishes: rolled back, then untagged.
    configure_rollback(
        &env,
        &repo,
        &format!("echo rolled-back >> {}\n", marker.display()),
    );
    let undo = env.spectra(&repo, &["undo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "", "{undo:?}");
    let rollback = undo.stdout.find("deploy.command (undo)");
    let untag = undo.stdout.find("release.tag (undo)");
    assert!(rollback.is_some() && rollback < untag, "{undo:?}");

    // Redo deploys again, then tags.
    let redo = env.spectra(&repo, &["redo"]).success();
    let deployed = redo.stdout.find("deploy.command (run)");
    let tagged = redo.stdout.find("release.tag (run)");
    assert!(deployed.is_some() && deployed < tagged, "{redo:?}");
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "deployed\nrolled-back\ndeployed\n"
    );
}

#[test]
fn undo_leaves_a_release_tag_another_run_made_alone() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "exit 0\n");
    configure_rollback(&env, &repo, "exit 0\n");
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    deploy(&env, &repo, &server, &["--execute"]).success();
    // Someone re-makes the release tag by hand: it is theirs now.
    env.git(&repo, &["tag", "-d", "logging/v1.2.0"]).success();
    env.git(&repo, &["tag", "-a", "logging/v1.2.0", "-m", "by hand"])
        .success();
    let undo = env.spectra(&repo, &["undo", "--format", "json"]).success();
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0", "{undo:?}");
    let untagging = env
        .events(&repo, "playbook.finished")
        .into_iter()
        .find(|e| e["payload"]["playbook"] == "release.tag" && e["payload"]["action"] == "undo")
        .expect("the tag's compensation");
    // A lightweight tag on the deploy's own document commit carries that commit's trailers,
    // not a tag's: it is the user's too.
    env.git(&repo, &["tag", "-d", "logging/v1.2.0"]).success();
    env.spectra(&repo, &["redo"]).success();
    env.git(&repo, &["tag", "-d", "logging/v1.2.0"]).success();
    let documents = env.events(&repo, "files.committed");
    let document = documents[0]["payload"]["commit"].as_str().unwrap();
    env.git(&repo, &["tag", "logging/v1.2.0", document])
        .success();
    let undo = env.spectra(&repo, &["undo"]).success();
    assert_eq!(tags(&env, &repo).trim(), "logging/v1.2.0");
    assert!(
        undo.stdout
            .contains("ran playbook release.tag (undo): tag `logging/v1.2.0` was made by no run"),
        "the undo says it left the tag alone: {undo:?}"
    );
    let id = untagging["id"].as_str().unwrap();
    let printed = env
        .spectra(&repo, &["show", id, "--attachment", "stdout"])
        .success()
        .stdout;
    assert!(printed.contains("left as it is"), "{printed}");
}

#[test]
fn undo_of_a_deploy_without_a_rollback_command_refuses_and_changes_nothing() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "exit 0\n");
    let server = LlmServer::start();
    script_deploy(&server, "v2.0.0", json!([]));
    deploy(&env, &repo, &server, &["--execute"]).success();
    // A leading `v` in the decision is dropped, once.
    assert_eq!(tags(&env, &repo).trim(), "logging/v2.0.0");
    let head = env.git(&repo, &["rev-parse", "HEAD"]).success().stdout;

    let undo = env.spectra(&repo, &["undo"]).code(1);
    assert!(
        undo.stderr.contains("spectra.deploy.rollbackCommand"),
        "{undo:?}"
    );
    assert_eq!(tags(&env, &repo).trim(), "logging/v2.0.0");
    assert_eq!(
        env.git(&repo, &["rev-parse", "HEAD"]).success().stdout,
        head
    );
}

#[test]
fn a_deploy_command_that_fails_leaves_no_tag_and_fails_the_activity() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "echo broken >&2\nexit 3\n");
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["outcome"], "failed");
    assert_eq!(activity["quality_gates"]["deployed"], false);
    assert_eq!(activity["outputs"]["command"]["exit_code"], 3);
    assert_eq!(activity["errors"][0]["reason"], "playbook_failed");
    assert_eq!(tags(&env, &repo).trim(), "");
}

#[test]
fn a_deploy_command_that_hangs_is_killed_at_its_configured_timeout() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "sleep 600\n");
    env.git(&repo, &["config", "spectra.deploy.timeout", "200ms"])
        .success();
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let activity = &report(&run)["activities"][0];
    let command = &activity["outputs"]["command"];
    assert_eq!(command["outcome"], "timed_out", "{command:#}");
    assert_eq!(command["timeout_ms"], 200);
    assert_eq!(activity["quality_gates"]["deployed"], false);
    assert_eq!(tags(&env, &repo).trim(), "");
}

#[test]
fn a_timeout_that_is_not_a_duration_is_refused_before_anything_is_recorded() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "exit 0\n");
    env.git(&repo, &["config", "spectra.deploy.timeout", "soon"])
        .success();
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(128);
    assert!(
        run.stderr.contains("`spectra.deploy.timeout` is \"soon\""),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint: set it to a duration"), "{run:?}");
    assert!(env.events(&repo, "run.started").is_empty());
    assert!(server.chat_requests().is_empty(), "the model was not asked");
}

#[test]
fn nothing_configured_names_the_key_and_records_nothing() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    for (activity, key) in [
        ("deploy", "spectra.deploy.command"),
        ("provision", "spectra.provision.command"),
        ("monitor", "spectra.monitor.command"),
    ] {
        let run = env
            .spectra_with_llm(&repo, &server.base_url(), &[activity, "x", "--dry-run"])
            .code(1);
        assert!(
            run.stderr.contains(&format!("`{key}` is not set")),
            "{run:?}"
        );
        assert!(
            run.stderr.contains(&format!("git config {key} '...'")),
            "{run:?}"
        );
    }
    assert!(env.events(&repo, "run.started").is_empty());
    assert!(server.chat_requests().is_empty());

    // An environment's key counts only for an activity whose command takes an environment.
    env.git(
        &repo,
        &["config", "spectra.provision.staging.command", "true"],
    )
    .success();
    let run = env
        .spectra_with_llm(&repo, &server.base_url(), &["provision", "x", "--dry-run"])
        .code(1);
    assert!(
        run.stderr
            .contains("`spectra.provision.command` is not set"),
        "{run:?}"
    );
    assert!(env.events(&repo, "run.started").is_empty());
}

#[test]
fn without_execute_the_exact_argv_is_recorded_and_nothing_runs() {
    let env = TestEnv::new();
    let marker = env.path().join("marker");
    let repo = repo_with_deploy(&env, &format!("touch {}\n", marker.display()));
    let server = LlmServer::start();
    script_deploy(&server, "1.2.0", json!([]));
    let run = deploy(&env, &repo, &server, &[]).success();
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["outputs"]["command"]["executed"], false);
    // Nothing observed: the gate is neither passed nor failed, and planning is not a failure.
    assert_eq!(activity["quality_gates"]["deployed"], false);
    let gate = activity["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|gate| gate["name"] == "deployed")
        .unwrap();
    assert_eq!(gate["verdict"], "not_judged", "{gate:#}");
    assert_eq!(activity["outcome"], "succeeded");
    let script = env.path().join("deploy.sh").display().to_string();
    let started = env.events(&repo, "playbook.started");
    let deploying = started
        .iter()
        .find(|e| e["payload"]["playbook"] == "deploy.command")
        .expect("deploy.command recorded");
    assert_eq!(deploying["payload"]["argv"], json!(["sh", script]));
    assert_eq!(deploying["payload"]["dry_run"], true);
    assert!(!marker.exists());
    assert_eq!(tags(&env, &repo).trim(), "");
    // It says which tag --execute would make.
    assert_eq!(
        activity["outputs"]["release"],
        json!({"tag": "logging/v1.2.0", "refused": null})
    );

    // A version --execute would refuse is said in the dry run too, which still fails nothing.
    script_deploy(&server, "latest", json!([]));
    let run = deploy(&env, &repo, &server, &[]).success();
    let release = &report(&run)["activities"][0]["outputs"]["release"];
    assert_eq!(release["tag"], Value::Null, "{release:#}");
    assert!(
        release["refused"]
            .as_str()
            .is_some_and(|reason| reason.contains("is not a semantic version")),
        "{release:#}"
    );
}

#[test]
fn an_environment_the_decision_names_runs_its_own_command() {
    let env = TestEnv::new();
    let repo = repo_with_deploy(&env, "exit 9\n");
    let staging = script_file(&env, "staging.sh", "exit 0\n");
    configure(&env, &repo, "spectra.deploy.staging.command", &staging);
    let server = LlmServer::start();
    let choice =
        json!([{"id": "deploy.command", "inputs": {"environment": "staging"}, "reason": "r"}]);
    script_deploy(&server, "0.1.0", choice);
    let run = deploy(&env, &repo, &server, &["--execute"]).success();
    let command = &report(&run)["activities"][0]["outputs"]["command"];
    assert_eq!(
        command["argv"],
        json!(["sh", staging.display().to_string()])
    );
    assert_eq!(tags(&env, &repo).trim(), "logging/v0.1.0");
}

#[test]
fn a_repository_that_configures_only_an_environments_command_can_deploy_to_it() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let production = script_file(&env, "production.sh", "exit 0\n");
    configure(
        &env,
        &repo,
        "spectra.deploy.production.command",
        &production,
    );
    let server = LlmServer::start();
    let choice =
        json!([{"id": "deploy.command", "inputs": {"environment": "production"}, "reason": "r"}]);
    script_deploy(&server, "0.2.0", choice);
    let run = deploy(&env, &repo, &server, &["--execute"]).success();
    let command = &report(&run)["activities"][0]["outputs"]["command"];
    assert_eq!(command["outcome"], "succeeded", "{command:#}");
    assert_eq!(tags(&env, &repo).trim(), "logging/v0.2.0");

    // A decision that names no environment runs the only command the repository has.
    script_deploy(&server, "0.3.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).success();
    let command = &report(&run)["activities"][0]["outputs"]["command"];
    assert_eq!(
        command["argv"],
        json!(["sh", production.display().to_string()])
    );
    assert_eq!(tags(&env, &repo).lines().last(), Some("logging/v0.3.0"));

    // With two environments and no default, it would be a guess: the deploy fails naming the
    // key, and nothing is tagged.
    configure(&env, &repo, "spectra.deploy.staging.command", &production);
    script_deploy(&server, "0.4.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    assert!(run.stdout.contains("spectra.deploy.command"), "{run:?}");
    assert_eq!(tags(&env, &repo).lines().last(), Some("logging/v0.3.0"));
}

/// How the loopback fixture answers every request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// `302 Found` to `http://<address>/`.
    Redirect(std::net::SocketAddr),
    /// Accepts the connection and never answers.
    Nothing,
}

/// A tiny HTTP server on 127.0.0.1 answering every request the same way; its URL.
fn http_fixture(answer: Answer) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            match answer {
                Answer::Status(status) => {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(reply.as_bytes());
                }
                Answer::Redirect(to) => {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer);
                    let reply = format!(
                        "HTTP/1.1 302 Found\r\nlocation: http://{to}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(reply.as_bytes());
                }
                // Kept open, unanswered, until the test process ends.
                Answer::Nothing => held.push(stream),
            }
        }
    });
    format!("http://{address}/health")
}

/// A repository whose monitor command succeeds and whose catalog lists `url` for `logging`.
fn repo_with_catalog(env: &TestEnv, url: &str) -> PathBuf {
    let repo = env.repo_with_commit("r");
    std::fs::create_dir_all(repo.join(".spectra")).unwrap();
    std::fs::write(
        repo.join(".spectra/service-catalog.yaml"),
        format!("services:\n  - name: logging\n    url: {url}\n    status: up\n"),
    )
    .unwrap();
    env.git(&repo, &["add", "."]).success();
    env.git(&repo, &["commit", "-q", "-m", "catalog"]).success();
    env.git(&repo, &["config", "spectra.monitor.command", "true"])
        .success();
    // Ample for a loopback fixture that answers, even on a loaded machine; only the test of a
    // URL that never answers shortens it (see `probe_timeout`), since it waits all of it.
    probe_timeout(env, &repo, "5s");
    repo
}

/// Sets how long the monitor waits for a probed URL to answer.
fn probe_timeout(env: &TestEnv, repo: &Path, timeout: &str) {
    env.git(repo, &["config", "spectra.monitor.probeTimeout", timeout])
        .success();
}

fn monitor(env: &TestEnv, repo: &Path, server: &LlmServer) -> Run {
    env.spectra_with_llm(
        repo,
        &server.base_url(),
        &[
            "monitor",
            "watch it",
            "--service",
            "logging",
            "--execute",
            "--format",
            "json",
        ],
    )
}

/// A model that asks to probe a URL of its own: only the catalog's are ever probed.
fn script_monitor(server: &LlmServer) {
    server.respond_with(move |request| {
        let body = request.json();
        let schema = &body["response_format"]["json_schema"]["schema"];
        let choices =
            json!([{"id": "service.probe", "inputs": {"service": "evil"}, "reason": "r"}]);
        Reply::chat_json(&merged(minimal(schema), &json!({"playbooks": choices})))
    });
}

#[test]
fn monitor_probes_the_catalog_url_and_a_200_is_healthy() {
    let env = TestEnv::new();
    let url = http_fixture(Answer::Status(200));
    let repo = repo_with_catalog(&env, &url);
    let server = LlmServer::start();
    script_monitor(&server);
    let run = monitor(&env, &repo, &server).success();
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["quality_gates"]["healthy"], true, "{activity:#}");
    assert_eq!(activity["quality_gates"]["endpoints_healthy"], true);
    let probes = activity["outputs"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 1, "only the catalog's URL: {probes:?}");
    assert_eq!(probes[0]["url"], url);
    assert_eq!(probes[0]["status"], 200);
    assert!(probes[0]["latency_ms"].is_u64());
    // The probe is recorded like any playbook, with the catalog's service as its input.
    let started = env.events(&repo, "playbook.started");
    let probed: Vec<&Value> = started
        .iter()
        .filter(|e| e["payload"]["playbook"] == "service.probe")
        .collect();
    assert_eq!(probed.len(), 1);
    assert_eq!(
        probed[0]["payload"]["inputs"],
        json!({"service": "logging"})
    );
}

#[test]
fn monitor_records_a_redirect_as_the_catalog_url_s_answer_and_never_follows_it() {
    let env = TestEnv::new();
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let target = elsewhere.local_addr().unwrap();
    let repo = repo_with_catalog(&env, &http_fixture(Answer::Redirect(target)));
    let server = LlmServer::start();
    script_monitor(&server);
    let run = monitor(&env, &repo, &server).code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["outputs"]["probes"][0]["status"], 302);
    assert_eq!(activity["quality_gates"]["endpoints_healthy"], false);
    // The monitor has exited: a followed redirect would have connected by now.
    let connected = elsewhere.accept();
    assert!(
        connected
            .as_ref()
            .is_err_and(|error| error.kind() == std::io::ErrorKind::WouldBlock),
        "the redirect's target was contacted: {connected:?}"
    );
}

#[test]
fn monitor_records_a_503_as_unhealthy() {
    let env = TestEnv::new();
    let repo = repo_with_catalog(&env, &http_fixture(Answer::Status(503)));
    let server = LlmServer::start();
    script_monitor(&server);
    let run = monitor(&env, &repo, &server).code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["outcome"], "failed");
    assert_eq!(activity["quality_gates"]["endpoints_healthy"], false);
    assert_eq!(activity["outputs"]["probes"][0]["status"], 503);
}

#[test]
fn monitor_records_a_url_that_never_answers_as_unhealthy_at_the_probe_timeout() {
    let env = TestEnv::new();
    let repo = repo_with_catalog(&env, &http_fixture(Answer::Nothing));
    // Nothing ever answers, so any timeout ends in the same verdict: a short one keeps it quick.
    probe_timeout(&env, &repo, "300ms");
    let server = LlmServer::start();
    script_monitor(&server);
    let run = monitor(&env, &repo, &server).code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["quality_gates"]["endpoints_healthy"], false);
    let probe = &activity["outputs"]["probes"][0];
    assert_eq!(probe["status"], Value::Null, "{probe:#}");
    assert!(
        probe["error"].as_str().unwrap().contains("timed out"),
        "{probe:#}"
    );
}

const SMOKE_ACTIVITY: &str = "\
name: smoke
order: 60
description: Runs the repository's smoke test.
prompts: {system: s, user: u}
decision: {type: object, properties: {}, required: [], additionalProperties: false}
quality_gates:
  - name: smoke_passed
    description: The smoke command exited 0.
    checks: [fact: smoke_passed]
playbooks: [smoke.command]
token_budget: 100
effect: {playbook: smoke.command, fact: smoke_passed}
";

const SMOKE_PLAYBOOK: &str = "\
id: smoke.command
activities: [smoke]
domain: smoke
description: The repository's smoke test.
configured: {run: spectra.smoke.command}
reversible: true
idempotent: true
timeout: 30
";

/// The effect is registry data: a repository's own activity gets the same rules by naming a
/// configured playbook, and validation refuses an effect that could never run a command.
#[test]
fn a_repositorys_own_activity_runs_its_own_configured_command() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let write = |path: &str, text: &str| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(".spectra/registry/activities/smoke.yaml", SMOKE_ACTIVITY);
    write(".spectra/registry/playbooks/smoke.yaml", SMOKE_PLAYBOOK);
    env.git(&repo, &["add", "."]).success();
    env.git(&repo, &["commit", "-q", "-m", "registry"])
        .success();
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat_json(&json!({"playbooks": []})));
    let args = [
        "run",
        "-a",
        "smoke",
        "x",
        "--service",
        "logging",
        "--format",
        "json",
    ];

    let refused = env
        .spectra_with_llm(&repo, &server.base_url(), &args)
        .code(1);
    assert!(
        refused
            .stderr
            .contains("`spectra.smoke.command` is not set"),
        "{refused:?}"
    );
    env.git(&repo, &["config", "spectra.smoke.command", "false"])
        .success();
    let failed = env
        .spectra_with_llm(&repo, &server.base_url(), &args)
        .code(1);
    let activity = &report(&failed)["activities"][0];
    assert_eq!(
        activity["quality_gates"]["smoke_passed"], false,
        "{activity:#}"
    );
    env.git(&repo, &["config", "spectra.smoke.command", "true"])
        .success();
    let passed = env
        .spectra_with_llm(&repo, &server.base_url(), &args)
        .success();
    let activity = &report(&passed)["activities"][0];
    assert_eq!(
        activity["quality_gates"]["smoke_passed"], true,
        "{activity:#}"
    );

    write(
        ".spectra/registry/playbooks/smoke.yaml",
        &SMOKE_PLAYBOOK.replace(
            "configured: {run: spectra.smoke.command}",
            "run: [\"true\"]",
        ),
    );
    let invalid = env.spectra(&repo, &["registry", "validate"]).code(1);
    assert!(
        invalid
            .stdout
            .contains("smoke.yaml:12:20: effect: playbook `smoke.command`")
            && invalid.stdout.contains("has no `configured` keys"),
        "{invalid:?}"
    );
}

#[test]
fn the_planner_leaves_out_an_activity_whose_command_is_not_configured() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let format = &body["response_format"]["json_schema"];
        if format["name"] == "run_plan" {
            return Reply::chat_json(&json!({"activities": ["plan", "deploy"], "reasoning": "r"}));
        }
        Reply::chat_json(&merged(minimal(&format["schema"]), &json!({})))
    });
    let run = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &["run", "ship it", "--service", "logging", "--format", "json"],
        )
        .success();
    let report = report(&run);
    assert_eq!(report["plan"]["activities"], json!(["plan"]));
    assert_eq!(
        report["plan"]["left_out"],
        json!([{"activity": "deploy", "reason": "not_configured", "key": "spectra.deploy.command"}])
    );
}

#[test]
fn a_release_is_tagged_once_and_a_second_deploy_of_it_is_refused_before_it_runs() {
    let env = TestEnv::new();
    let runs = env.path().join("runs");
    let repo = repo_with_deploy(&env, &format!("echo run >> {}\n", runs.display()));
    let server = LlmServer::start();
    script_deploy(&server, "1.0.0", json!([]));
    deploy(&env, &repo, &server, &["--execute"]).success();
    let first = env
        .git(&repo, &["rev-parse", "logging/v1.0.0^{commit}"])
        .success()
        .stdout;

    let again = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let activity = &report(&again)["activities"][0];
    assert_eq!(activity["outcome"], "failed");
    assert_eq!(activity["errors"][0]["reason"], "release_refused");
    let message = activity["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("tag `logging/v1.0.0` already exists"),
        "{message}"
    );
    assert_eq!(activity["quality_gates"]["deployed"], false);
    // The command ran once, for the first release; the tag is where it was.
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    let still = env
        .git(&repo, &["rev-parse", "logging/v1.0.0^{commit}"])
        .success()
        .stdout;
    assert_eq!(still, first);
}

#[test]
fn a_version_that_is_not_semver_is_refused_before_the_command_runs() {
    let env = TestEnv::new();
    let runs = env.path().join("runs");
    let repo = repo_with_deploy(&env, &format!("echo run >> {}\n", runs.display()));
    let server = LlmServer::start();
    script_deploy(&server, "latest", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["errors"][0]["reason"], "release_refused");
    assert!(!runs.exists());
    assert_eq!(tags(&env, &repo).trim(), "");
}

#[test]
fn undo_of_a_provision_runs_its_rollback_command() {
    let env = TestEnv::new();
    let marker = env.path().join("marker");
    let repo = env.repo_with_commit("r");
    let provision = script_file(
        &env,
        "provision.sh",
        &format!("echo up > {}\n", marker.display()),
    );
    let teardown = script_file(
        &env,
        "teardown.sh",
        &format!("echo down > {}\n", marker.display()),
    );
    configure(&env, &repo, "spectra.provision.command", &provision);
    configure(&env, &repo, "spectra.provision.rollbackCommand", &teardown);
    let server = LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let schema = &body["response_format"]["json_schema"]["schema"];
        Reply::chat_json(&merged(minimal(schema), &json!({"playbooks": []})))
    });
    let run = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &[
                "provision",
                "stack",
                "--service",
                "logging",
                "--execute",
                "--format",
                "json",
            ],
        )
        .success();
    assert_eq!(
        report(&run)["activities"][0]["quality_gates"]["provisioned"],
        true
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "up\n");
    env.spectra(&repo, &["undo"]).success();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "down\n");
}

#[test]
fn a_catalog_without_a_url_for_the_service_probes_nothing_and_judges_nothing() {
    let env = TestEnv::new();
    let repo = repo_with_catalog(&env, "http://127.0.0.1:9/health");
    std::fs::write(
        repo.join(".spectra/service-catalog.yaml"),
        "services:\n  - name: other\n    url: http://127.0.0.1:9/\n",
    )
    .unwrap();
    env.git(&repo, &["commit", "-qam", "other"]).success();
    let server = LlmServer::start();
    script_monitor(&server);
    let run = monitor(&env, &repo, &server).success();
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["outputs"]["probes"], json!([]));
    let gate = activity["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|gate| gate["name"] == "endpoints_healthy")
        .unwrap();
    assert_eq!(gate["verdict"], "not_judged");
}

#[test]
fn a_deploy_with_no_service_to_tag_is_refused_before_the_command_runs() {
    let env = TestEnv::new();
    let runs = env.path().join("runs");
    let repo = repo_with_deploy(&env, &format!("echo run >> {}\n", runs.display()));
    let server = LlmServer::start();
    script_deploy(&server, "1.0.0", json!([]));
    let run = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &["deploy", "ship it", "--execute", "--format", "json"],
        )
        .code(1);
    let activity = &report(&run)["activities"][0];
    assert_eq!(activity["errors"][0]["reason"], "release_refused");
    assert!(
        activity["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--service"),
        "{activity:#}"
    );
    assert!(!runs.exists());
}

#[test]
fn a_configured_command_that_cannot_start_is_recorded_as_failed_with_the_reason() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    env.git(
        &repo,
        &[
            "config",
            "spectra.deploy.command",
            "no-such-deploy-tool --now",
        ],
    )
    .success();
    let server = LlmServer::start();
    script_deploy(&server, "1.0.0", json!([]));
    let run = deploy(&env, &repo, &server, &["--execute"]).code(1);
    let finished: Vec<Value> = env
        .events(&repo, "playbook.finished")
        .into_iter()
        .filter(|e| e["payload"]["playbook"] == "deploy.command")
        .collect();
    assert_eq!(finished.len(), 1, "{run:?}");
    assert_eq!(finished[0]["payload"]["outcome"], "failed");
    assert_eq!(finished[0]["payload"]["exit_code"], Value::Null);
    let activity = &report(&run)["activities"][0];
    let message = activity["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("no-such-deploy-tool"), "{activity:#}");
    assert_eq!(tags(&env, &repo).trim(), "");
}
