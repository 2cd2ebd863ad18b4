//! `git spectra replay`: a recorded discover → plan → design run replayed from its own record,
//! with the scripted server counting that nothing reaches it; a changed gate or prompt in a
//! registry overlay named; the user's checkout never touched.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv, json_lines, manifest_dir};
use crate::lifecycle::{merged, minimal};
use crate::llm_server::{LlmServer, Reply};

const DESIGN_OVERLAY: &str = ".spectra/registry/activities/design.yaml";

/// A model that answers each schema with its minimal valid decision; discover names the
/// service `logging`, and design lists no integrations (which a stricter gate then fails).
fn model() -> LlmServer {
    let server = LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let format = &body["response_format"]["json_schema"];
        let decision = minimal(&format["schema"]);
        let patch = match format["name"].as_str().unwrap_or_default() {
            "discover_decision" => json!({"service_name": "logging"}),
            "design_decision" => json!({"architecture": {"integrations": []}}),
            _ => json!({}),
        };
        Reply::chat_json(&merged(decision, &patch))
    });
    server
}

/// A repository, its server, and the id of a recorded discover → plan → design run.
struct Recorded {
    env: TestEnv,
    repo: PathBuf,
    server: LlmServer,
    run: String,
}

fn recorded_run() -> Recorded {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    let server = model();
    let recorded = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &[
                "run",
                "a logging service",
                "-a",
                "discover",
                "-a",
                "plan",
                "-a",
                "design",
                "--format",
                "json",
            ],
        )
        .success();
    let report: Value = serde_json::from_str(recorded.stdout.trim()).expect("a JSON report");
    let run = report["run"].as_str().expect("a run id").to_string();
    Recorded {
        env,
        repo,
        server,
        run,
    }
}

impl Recorded {
    /// `git spectra replay <run> args...` against the same server (which must not be asked).
    fn replay(&self, args: &[&str]) -> Run {
        let mut all = vec!["replay", self.run.as_str()];
        all.extend_from_slice(args);
        self.env
            .spectra_with_llm(&self.repo, &self.server.base_url(), &all)
    }

    /// `git spectra replay --all`.
    fn replay_all(&self) -> Run {
        self.env
            .spectra_with_llm(&self.repo, &self.server.base_url(), &["replay", "--all"])
    }

    /// The built-in design activity with `edit` applied, as a registry overlay.
    fn overlay_design(&self, edit: impl Fn(String) -> String) {
        self.overlay("design", edit);
    }

    /// The built-in `activity` with `edit` applied, as a registry overlay.
    fn overlay(&self, activity: &str, edit: impl Fn(String) -> String) {
        let file = format!("registry/activities/{activity}.yaml");
        let builtin = std::fs::read_to_string(manifest_dir().join(&file)).unwrap();
        let edited = edit(builtin.clone());
        assert_ne!(edited, builtin, "the edit changed nothing");
        let path = self.repo.join(".spectra").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, edited).unwrap();
    }
}

/// Everything of the user's checkout a replay must leave alone: HEAD, every ref (branches,
/// tags, the log), the index and the work tree's status.
fn checkout_state(env: &TestEnv, repo: &Path) -> Vec<String> {
    let git = |args: &[&str]| env.git(repo, args).success().stdout;
    vec![
        git(&["rev-parse", "HEAD"]),
        git(&["symbolic-ref", "HEAD"]),
        git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        git(&["ls-files", "--stage"]),
        git(&["status", "--porcelain", "--untracked-files=all"]),
    ]
}

#[test]
fn a_replay_with_nothing_changed_is_identical_and_asks_the_server_nothing() {
    let recorded = recorded_run();
    let asked = recorded.server.requests().len();
    assert!(asked >= 3, "the run asked the model: {asked}");
    let replay = recorded.replay(&[]).success();
    assert!(replay.stdout.contains(": same"), "{replay:#?}");
    assert!(
        replay
            .stdout
            .contains("decisions identical: design, discover, plan"),
        "{replay:#?}"
    );
    assert_eq!(
        recorded.server.requests().len(),
        asked,
        "the replay sent a request"
    );

    let json = recorded.replay(&["--format", "json"]).success();
    let report: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(report["result"], "same", "{report:#}");
    assert_eq!(report["calls_answered"], asked as u64, "{report:#}");
    assert_eq!(report["recorded_events"], report["replayed_events"]);
    assert_eq!(recorded.server.requests().len(), asked);
}

#[test]
fn a_changed_gate_in_a_registry_overlay_is_named() {
    let recorded = recorded_run();
    let asked = recorded.server.requests().len();
    recorded.overlay_design(|yaml| {
        yaml.replace(
            "checks: [non_empty: /architecture/style, non_empty: /architecture/components]",
            "checks: [non_empty: /architecture/style, non_empty: /architecture/integrations]",
        )
    });
    let replay = recorded.replay(&[]).code(1);
    assert!(replay.stdout.contains("diverged at event"), "{replay:#?}");
    assert!(
        replay
            .stdout
            .contains("gate architecture_defined of design: passed → failed"),
        "{replay:#?}"
    );
    let json = recorded.replay(&["--format", "json"]).code(1);
    let report: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(report["result"], "diverged");
    assert_eq!(
        report["summary"]["gates"],
        json!([{"activity": "design", "gate": "architecture_defined", "was": "passed", "now": "failed"}])
    );
    assert_eq!(recorded.server.requests().len(), asked);
}

#[test]
fn a_changed_prompt_stops_the_replay_at_that_call_and_names_it() {
    let recorded = recorded_run();
    let asked = recorded.server.requests().len();
    recorded.overlay_design(|yaml| {
        yaml.replace(
            "    repository's existing languages and conventions.\n",
            "    repository's existing languages and conventions.\n    Keep it small.\n",
        )
    });
    let replay = recorded.replay(&[]).code(1);
    let line = replay.stdout.lines().next().unwrap_or_default();
    assert!(
        line.contains("stopped: the prompt for design changed: recorded sha256 "),
        "{replay:#?}"
    );
    assert!(
        line.contains(
            "first differing line: system message 1, line 6: was \"Choose only playbooks"
        ),
        "{replay:#?}"
    );
    assert!(line.contains("now \"Keep it small.\""), "{replay:#?}");
    assert_eq!(
        recorded.server.requests().len(),
        asked,
        "the replay sent a request"
    );
}

#[test]
fn a_replay_never_moves_head_the_index_any_branch_or_the_log() {
    let recorded = recorded_run();
    let (env, repo) = (&recorded.env, &recorded.repo);
    // Work in progress of the user's: a staged file and an edit, on a branch of their own.
    env.git(repo, &["checkout", "-q", "-b", "topic"]).success();
    std::fs::write(repo.join("staged.txt"), "staged\n").unwrap();
    env.git(repo, &["add", "staged.txt"]).success();
    std::fs::write(repo.join("README"), "edited, not staged\n").unwrap();
    let before = checkout_state(env, repo);
    // A change that makes the replay diverge and commit differently still touches nothing.
    recorded.overlay_design(|yaml| {
        yaml.replace(
            "checks: [non_empty: /architecture/style, non_empty: /architecture/components]",
            "checks: [non_empty: /architecture/style, non_empty: /architecture/integrations]",
        )
    });
    let overlay = (
        DESIGN_OVERLAY,
        std::fs::read(repo.join(DESIGN_OVERLAY)).unwrap(),
    );
    std::fs::remove_file(repo.join(DESIGN_OVERLAY)).unwrap();
    recorded.replay(&[]).success();
    assert_eq!(checkout_state(env, repo), before);
    std::fs::write(repo.join(overlay.0), overlay.1).unwrap();
    let with_overlay = checkout_state(env, repo);
    recorded.replay(&[]).code(1);
    assert_eq!(checkout_state(env, repo), with_overlay);
    assert_eq!(
        std::fs::read_to_string(repo.join("README")).unwrap(),
        "edited, not staged\n"
    );
}

#[test]
fn replay_all_names_the_one_run_of_twenty_that_diverged() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    let server = model();
    let activity = |name: &str, input: &str| {
        let run = env
            .spectra_with_llm(
                &repo,
                &server.base_url(),
                &[name, input, "--service", "logging", "--format", "json"],
            )
            .success();
        let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
        report["run"].as_str().unwrap().to_string()
    };
    let mut runs: Vec<String> = (1..=19)
        .map(|n| activity("plan", &format!("plan step {n}")))
        .collect();
    let design = activity("design", "design it");
    runs.push(design.clone());
    let asked = server.requests().len();

    let all = env
        .spectra_with_llm(&repo, &server.base_url(), &["replay", "--all"])
        .success();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{all:#?}");
    assert!(
        lines.iter().all(|line| line.ends_with(": same")),
        "{all:#?}"
    );

    // A stricter gate for design: only the one design run changes.
    let path = repo.join(DESIGN_OVERLAY);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let builtin =
        std::fs::read_to_string(manifest_dir().join("registry/activities/design.yaml")).unwrap();
    std::fs::write(
        &path,
        builtin.replace(
            "checks: [non_empty: /architecture/style, non_empty: /architecture/components]",
            "checks: [non_empty: /architecture/style, non_empty: /architecture/integrations]",
        ),
    )
    .unwrap();
    let all = env
        .spectra_with_llm(&repo, &server.base_url(), &["replay", "--all"])
        .code(1);
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{all:#?}");
    let diverged: Vec<&&str> = lines
        .iter()
        .filter(|line| line.contains(": diverged at event "))
        .collect();
    assert_eq!(diverged.len(), 1, "{all:#?}");
    // The line names the run by its short name, which names the design run.
    let short = diverged[0].split_whitespace().next().unwrap();
    let named = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &["replay", short, "--format", "json"],
        )
        .code(1);
    let report: Value = serde_json::from_str(named.stdout.trim()).unwrap();
    assert_eq!(report["run"], design.as_str());
    assert!(
        diverged[0].contains(" design: diverged at event "),
        "{all:#?}"
    );
    assert_eq!(
        lines.iter().filter(|line| line.ends_with(": same")).count(),
        19
    );
    assert_eq!(server.requests().len(), asked, "a replay sent a request");
}

#[test]
fn a_recorded_replay_is_a_run_of_its_own_that_points_at_the_original() {
    let recorded = recorded_run();
    let manifest_before = recorded
        .env
        .spectra(&recorded.repo, &["manifest", "design", "--format", "json"])
        .success()
        .stdout;
    recorded.replay(&["--record"]).success();
    let started = recorded.env.events(&recorded.repo, "run.started");
    let replay = started.last().unwrap();
    assert_eq!(replay["payload"]["command"], "replay");
    assert_eq!(replay["payload"]["replay_of"], recorded.run.as_str());
    let finished = recorded.env.events(&recorded.repo, "run.finished");
    assert_eq!(
        finished.last().unwrap()["payload"]["replay"]["result"],
        "same"
    );
    let runs = recorded
        .env
        .spectra(&recorded.repo, &["runs"])
        .success()
        .stdout;
    assert!(runs.contains("replay"), "{runs}");
    let manifest_after = recorded
        .env
        .spectra(&recorded.repo, &["manifest", "design", "--format", "json"])
        .success()
        .stdout;
    assert_eq!(
        manifest_after, manifest_before,
        "a projection saw the replay"
    );
    // `--all` replays the run, not the record of its replay.
    let all = recorded.replay_all();
    assert_eq!(all.stdout.lines().count(), 1, "{all:#?}");
}

/// The schema names the server was asked for, in order (`discover_decision`, ...).
fn asked_schemas(server: &LlmServer) -> Vec<String> {
    server
        .chat_requests()
        .iter()
        .map(|request| {
            request.json()["response_format"]["json_schema"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn a_rerun_from_design_reuses_discover_and_plan_and_asks_design_live() {
    let recorded = recorded_run();
    let (env, repo) = (&recorded.env, &recorded.repo);
    let asked_before = asked_schemas(&recorded.server).len();
    let decisions_before = env.events(repo, "decision.made");
    let original = |activity: &str| {
        decisions_before
            .iter()
            .rfind(|event| event["activity"] == activity)
            .unwrap()["id"]
            .clone()
    };
    let rerun = env
        .spectra_with_llm(
            repo,
            &recorded.server.base_url(),
            &[
                "rerun",
                &recorded.run,
                "--from",
                "design",
                "--format",
                "json",
            ],
        )
        .success();
    let report: Value = serde_json::from_str(rerun.stdout.trim()).unwrap();
    let new_run = report["run"].as_str().unwrap();
    assert_ne!(new_run, recorded.run);
    assert_eq!(
        asked_schemas(&recorded.server)[asked_before..],
        ["design_decision".to_string()],
        "only design was asked for"
    );
    let decisions: Vec<Value> = env
        .events(repo, "decision.made")
        .into_iter()
        .filter(|event| event["run"] == new_run)
        .collect();
    let of = |activity: &str| {
        decisions
            .iter()
            .find(|event| event["activity"] == activity)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of("discover")["payload"]["reused_from"],
        original("discover")
    );
    assert_eq!(of("plan")["payload"]["reused_from"], original("plan"));
    assert_eq!(of("design")["payload"].get("reused_from"), None);
    assert_eq!(
        of("plan")["payload"]["decision"],
        decisions_before
            .iter()
            .rfind(|event| event["activity"] == "plan")
            .unwrap()["payload"]["decision"]
    );
    let rerun_started = env
        .events(repo, "run.started")
        .into_iter()
        .find(|event| event["run"] == new_run)
        .unwrap();
    assert_eq!(rerun_started["payload"]["rerun_of"], recorded.run.as_str());
    // The rerun replays from its own record: the reused decisions are taken again as it took
    // them, design's call is answered from the record.
    let asked_now = recorded.server.requests().len();
    let replay = env
        .spectra_with_llm(repo, &recorded.server.base_url(), &["replay", new_run])
        .success();
    assert!(replay.stdout.contains(": same"), "{replay:#?}");
    assert_eq!(recorded.server.requests().len(), asked_now);
    // The new run is undoable as usual.
    let head = env.git(repo, &["rev-parse", "HEAD"]).success().stdout;
    env.spectra(repo, &["undo"]).success();
    assert_ne!(env.git(repo, &["rev-parse", "HEAD"]).success().stdout, head);
    let reverted = env.events(repo, "events.reverted");
    assert_eq!(
        reverted.last().unwrap()["payload"]["runs"],
        json!([new_run])
    );

    let unknown = env.spectra_with_llm(
        repo,
        &recorded.server.base_url(),
        &["rerun", &recorded.run, "--from", "deploy"],
    );
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(
        unknown
            .stderr
            .contains("the run did not run deploy; it ran discover, plan, design"),
        "{unknown:#?}"
    );
}

#[test]
fn a_run_the_offline_rules_decided_replays_with_them_and_usage_errors_exit_2() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    let run = env
        .spectra(
            &repo,
            &[
                "discover",
                "--offline",
                "--service",
                "logging",
                "--format",
                "json",
                "an idea",
            ],
        )
        .success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let id = report["run"].as_str().unwrap();
    let replay = env.spectra(&repo, &["replay", id]).success();
    assert!(replay.stdout.contains("(discover): same"), "{replay:#?}");
    assert!(replay.stdout.contains("0 model call(s)"), "{replay:#?}");
    env.spectra(&repo, &["replay"]).code(2);
    env.spectra(&repo, &["replay", id, "--all"]).code(2);
    env.spectra(&repo, &["replay", id, "--since", "1 day ago"])
        .code(2);
}

#[test]
fn a_command_with_effects_is_answered_from_the_record_and_never_runs_again() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    let server = model();
    // The repository's own provision command: it counts its runs in a file outside the repo.
    let counter = env.path().join("provisioned");
    let script = env.path().join("provision.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho provisioned >> '{}'\necho done\n",
            counter.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.git(
        &repo,
        &[
            "config",
            "spectra.provision.command",
            script.to_str().unwrap(),
        ],
    )
    .success();
    let run = env
        .spectra_with_llm(
            &repo,
            &server.base_url(),
            &[
                "provision",
                "--service",
                "logging",
                "--execute",
                "--format",
                "json",
                "infra",
            ],
        )
        .success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let id = report["run"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "provisioned\n");
    let replay = env
        .spectra_with_llm(&repo, &server.base_url(), &["replay", id])
        .success();
    assert!(replay.stdout.contains("(provision): same"), "{replay:#?}");
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap(),
        "provisioned\n",
        "the replay ran the command"
    );
}

#[test]
fn replay_of_one_activity_decides_only_it_again_and_compares_only_its_events() {
    let recorded = recorded_run();
    let asked = recorded.server.requests().len();
    let untouched = recorded.replay(&["--activity", "design"]);
    assert!(untouched.stdout.contains(": same"), "{untouched:#?}");
    // A changed discover prompt does not matter to a replay of design: discover takes its
    // recorded decision again, so design sees what the run gave it.
    recorded.overlay("discover", |yaml| {
        yaml.replace(
            "    Be concrete and honest:",
            "    Be brief.\n    Be concrete and honest:",
        )
    });
    assert_eq!(
        recorded.replay(&[]).code,
        1,
        "the whole run now stops at discover"
    );
    let json = recorded
        .replay(&["--activity", "design", "--format", "json"])
        .success();
    let report: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(report["result"], "same", "{report:#}");
    assert_eq!(report["summary"]["decisions_identical"], json!(["design"]));
    let log = recorded
        .env
        .spectra(
            &recorded.repo,
            &["log", "--run", &recorded.run, "--format", "json"],
        )
        .success();
    let design_events = json_lines(&log.stdout)
        .iter()
        .filter(|record| record["event"]["activity"] == "design")
        .count();
    assert_eq!(
        report["recorded_events"], design_events as u64,
        "{report:#}"
    );
    assert_eq!(
        report["calls_answered"], 1,
        "only design's call: {report:#}"
    );

    // A changed design prompt stops it, naming design.
    recorded.overlay_design(|yaml| {
        yaml.replace(
            "    repository's existing languages and conventions.\n",
            "    repository's existing languages and conventions.\n    Keep it small.\n",
        )
    });
    let stopped = recorded.replay(&["--activity", "design"]).code(1);
    assert!(
        stopped
            .stdout
            .contains("stopped: the prompt for design changed"),
        "{stopped:#?}"
    );
    assert_eq!(
        recorded.server.requests().len(),
        asked,
        "the replay sent a request"
    );

    let unknown = recorded.replay(&["--activity", "deploy"]);
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(
        unknown
            .stderr
            .contains("the run did not run deploy; it ran discover, plan, design"),
        "{unknown:#?}"
    );
    let with_all = recorded
        .env
        .spectra(&recorded.repo, &["replay", "--all", "--activity", "design"]);
    assert_eq!(with_all.code, 2, "{with_all:#?}");
}
