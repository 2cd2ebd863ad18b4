//! Every activity leaves a document a reviewer reads: `.spectra/<service>/<activity>.md`,
//! committed with its stage in the specification; its front matter agrees with the event, and
//! the gates decide the outcome. The scripted server answers each activity with the realistic
//! decision in `tests/fixtures/decisions/<activity>.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use spectra::registry::CANONICAL_ACTIVITIES;

use crate::common::{Run, TestEnv, manifest_dir};
use crate::llm_server::{LlmServer, Reply};

const SERVICE: &str = "log-search";

/// The built-in activities, discover first: it writes the specification whose stages the
/// others record.
fn activities_discover_first() -> Vec<&'static str> {
    let rest = CANONICAL_ACTIVITIES
        .into_iter()
        .filter(|name| *name != "discover");
    std::iter::once("discover").chain(rest).collect()
}

/// The fixture decision of `activity`, as the model would answer it (choosing no playbook).
fn fixture(activity: &str) -> Value {
    let path = manifest_dir().join(format!("tests/fixtures/decisions/{activity}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut decision: Value = serde_json::from_str(&text).unwrap();
    decision["playbooks"] = json!([]);
    decision
}

/// A server that answers each activity's schema with its fixture, `patches` laid over it.
fn serve(patches: BTreeMap<String, Value>) -> LlmServer {
    let server = LlmServer::start();
    server.respond_with(move |request| {
        let name = request.json()["response_format"]["json_schema"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let activity = name.trim_end_matches("_decision");
        let mut decision = fixture(activity);
        if let Some(patch) = patches.get(activity) {
            for (key, value) in patch.as_object().unwrap() {
                decision[key] = value.clone();
            }
        }
        Reply::chat_json(&decision)
    });
    server
}

/// A repository whose tests pass, so the test activity's facts pass its gates.
fn repo(env: &TestEnv, name: &str) -> PathBuf {
    let repo = env.repo_with_commit(name);
    std::fs::write(repo.join("run-tests.sh"), "echo '4 passed, 0 failed'\n").unwrap();
    env.git(&repo, &["add", "run-tests.sh"]).success();
    env.git(&repo, &["commit", "-q", "-m", "tests"]).success();
    env.git(
        &repo,
        &["config", "spectra.test.command", "sh run-tests.sh"],
    )
    .success();
    // Provision, deploy and monitor refuse to run without a command of the repository's own.
    for key in [
        "spectra.provision.command",
        "spectra.deploy.command",
        "spectra.monitor.command",
    ] {
        env.git(&repo, &["config", key, "true"]).success();
    }
    repo
}

fn activity(env: &TestEnv, repo: &Path, server: &LlmServer, name: &str, extra: &[&str]) -> Run {
    let mut args = vec![name, "work on it", "--service", SERVICE, "--format", "json"];
    args.extend(extra);
    env.spectra_with_llm(repo, &server.base_url(), &args)
}

fn report(run: &Run) -> Value {
    let report: Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    report["activities"][0].clone()
}

fn document_path(activity: &str) -> String {
    format!(".spectra/{SERVICE}/{activity}.md")
}

fn spec_path() -> String {
    format!(".spectra/{SERVICE}.specification.yaml")
}

fn in_head(env: &TestEnv, repo: &Path, path: &str) -> Option<String> {
    let run = env.git(repo, &["show", &format!("HEAD:{path}")]);
    (run.code == 0).then_some(run.stdout)
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A document's front matter (parsed) and its body.
fn split(document: &str) -> (Value, String) {
    let rest = document
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("no front matter: {document}"));
    let end = rest.find("\n---\n").expect("the front matter ends");
    let body = rest[end + 5..]
        .strip_prefix('\n')
        .expect("a blank line after the front matter");
    (yaml(&rest[..=end]), body.to_string())
}

fn head_files(env: &TestEnv, repo: &Path) -> Vec<String> {
    env.git(repo, &["show", "--name-only", "--format=", "HEAD"])
        .success()
        .stdout
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

fn head_trailer(env: &TestEnv, repo: &Path, key: &str) -> String {
    env.git(
        repo,
        &[
            "log",
            "-1",
            &format!("--format=%(trailers:key={key},valueonly)"),
        ],
    )
    .success()
    .stdout
    .trim()
    .to_string()
}

fn head(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["rev-parse", "HEAD"])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// The front matter says what the event recorded: the outcome, and each gate's result and level.
fn assert_front_matter_matches(front: &Value, finished: &Value, activity: &str, run: &str) {
    assert_eq!(front["service"], SERVICE);
    assert_eq!(front["activity"], activity);
    assert_eq!(front["run"], run);
    assert_eq!(front["outcome"], finished["outcome"], "{front}");
    assert_eq!(front["decided_by"], "llm");
    let recorded = finished["gates"].as_object().expect("the event's gates");
    let written = front["gates"]
        .as_object()
        .expect("the front matter's gates");
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        written.keys().collect::<Vec<_>>(),
        "{activity}"
    );
    for (name, gate) in recorded {
        assert_eq!(
            written[name]["result"], gate["result"],
            "{activity}: {name}"
        );
        assert_eq!(written[name]["level"], gate["level"], "{activity}: {name}");
    }
}

#[test]
fn every_activity_commits_a_document_whose_front_matter_matches_its_event() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let server = serve(BTreeMap::new());
    for name in activities_discover_first() {
        let run = activity(&env, &repo, &server, name, &[]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
        let reported = report(&run);
        assert_eq!(reported["outcome"], "succeeded", "{name}");
        let path = document_path(name);
        assert_eq!(reported["outputs"]["document"]["path"], path.as_str());

        // One commit holds the document and the specification, with the run's trailers.
        let files = head_files(&env, &repo);
        assert!(
            files.contains(&path) && files.contains(&spec_path()),
            "{name}: {files:?}"
        );
        let run_id = head_trailer(&env, &repo, "Spectra-Run");
        let events = env.events(&repo, "activity.finished");
        let finished = events
            .iter()
            .find(|event| event["activity"] == name && event["run"] == run_id.as_str())
            .unwrap_or_else(|| panic!("{name}: no activity.finished of run {run_id}"));
        let committed = env.events(&repo, "files.committed");
        assert!(
            committed
                .iter()
                .any(|event| event["id"] == head_trailer(&env, &repo, "Spectra-Event").as_str()),
            "{name}: the commit's Spectra-Event names its files.committed"
        );

        let document = in_head(&env, &repo, &path).expect("the document is in HEAD");
        let (front, body) = split(&document);
        assert_front_matter_matches(&front, &finished["payload"], name, &run_id);
        assert!(body.starts_with("# "), "{name}: {body}");
        assert!(document.ends_with('\n') && !document.ends_with("\n\n"));

        let spec = yaml(&in_head(&env, &repo, &spec_path()).unwrap());
        assert_eq!(spec["stages"][name], "complete", "{name}: {spec}");
        assert_eq!(spec["documents"][name], path.as_str(), "{name}");
    }
    // The test document shows the counts spectra observed, not the fixture's claimed 41.
    let test = in_head(&env, &repo, &document_path("test")).unwrap();
    assert!(test.contains("| 4 | 0 | 0 |"), "{test}");
    assert!(!test.contains("| 41 |"), "{test}");

    // Every stage is kept as the later activities add theirs.
    let spec = yaml(&in_head(&env, &repo, &spec_path()).unwrap());
    assert_eq!(spec["stages"].as_object().unwrap().len(), 12, "{spec}");
    env.spectra(&repo, &["verify"]).success();
}

#[test]
fn a_failed_required_gate_makes_the_activity_incomplete_everywhere() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let server = serve(BTreeMap::from([(
        "design".to_string(),
        json!({"architecture": {"style": "pipeline", "components": [], "data_flow": [], "integrations": []}}),
    )]));
    activity(&env, &repo, &server, "discover", &[]);
    let run = activity(&env, &repo, &server, "design", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("error: design incomplete: required gate failed: architecture_defined"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("/architecture/components is empty"),
        "the hint says what the decision lacked: {run:?}"
    );
    let reported = report(&run);
    assert_eq!(reported["outcome"], "incomplete");
    let finished = env.events(&repo, "activity.finished");
    assert_eq!(finished.last().unwrap()["payload"]["outcome"], "incomplete");

    let (front, _) = split(&in_head(&env, &repo, &document_path("design")).unwrap());
    assert_eq!(front["outcome"], "incomplete");
    assert_eq!(front["gates"]["architecture_defined"]["result"], "failed");
    assert_eq!(front["gates"]["specification_written"]["result"], "passed");
    let spec = yaml(&in_head(&env, &repo, &spec_path()).unwrap());
    assert_eq!(spec["stages"]["design"], "incomplete");
}

#[test]
fn an_advisory_gate_that_fails_is_reported_and_changes_nothing() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let design = std::fs::read_to_string(manifest_dir().join("registry/activities/design.yaml"))
        .unwrap()
        .replace(
            "    checks: [non_empty: /architecture/style, non_empty: /architecture/components]\n",
            "    checks: [non_empty: /architecture/style, non_empty: /architecture/components]\n    level: advisory\n",
        );
    assert!(design.contains("level: advisory"));
    let dir = repo.join(".spectra/registry/activities");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("design.yaml"), design).unwrap();
    env.git(&repo, &["add", ".spectra"]).success();
    env.git(&repo, &["commit", "-q", "-m", "an advisory gate"])
        .success();

    let server = serve(BTreeMap::from([(
        "design".to_string(),
        json!({"architecture": {"style": "pipeline", "components": [], "data_flow": [], "integrations": []}}),
    )]));
    activity(&env, &repo, &server, "discover", &[]);
    let run = activity(&env, &repo, &server, "design", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let reported = report(&run);
    assert_eq!(reported["outcome"], "succeeded");
    let gate = reported["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|gate| gate["name"] == "architecture_defined")
        .unwrap()
        .clone();
    assert_eq!(
        (&gate["verdict"], &gate["level"]),
        (&json!("failed"), &json!("advisory"))
    );
    let (front, _) = split(&in_head(&env, &repo, &document_path("design")).unwrap());
    assert_eq!(front["outcome"], "succeeded");
    assert_eq!(
        front["gates"]["architecture_defined"],
        json!({"result": "failed", "level": "advisory"})
    );
}

#[test]
fn the_same_decision_renders_the_same_document_in_another_repository() {
    let env = TestEnv::new();
    let server = serve(BTreeMap::new());
    let bodies: Vec<String> = ["one", "two"]
        .into_iter()
        .map(|name| {
            let repo = repo(&env, name);
            activity(&env, &repo, &server, "discover", &[]);
            activity(&env, &repo, &server, "design", &[]);
            split(&in_head(&env, &repo, &document_path("design")).unwrap()).1
        })
        .collect();
    assert_eq!(bodies[0], bodies[1]);
}

#[test]
fn undo_reverts_a_document_with_its_stage_and_redo_restores_them() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let server = serve(BTreeMap::new());
    activity(&env, &repo, &server, "discover", &[]);
    activity(&env, &repo, &server, "design", &[]);
    let with_design = in_head(&env, &repo, &spec_path()).unwrap();

    env.spectra(&repo, &["undo"]).success();
    assert_eq!(in_head(&env, &repo, &document_path("design")), None);
    let spec = yaml(&in_head(&env, &repo, &spec_path()).unwrap());
    assert_eq!(spec["stages"].get("design"), None, "{spec}");
    assert!(in_head(&env, &repo, &document_path("discover")).is_some());

    env.spectra(&repo, &["redo"]).success();
    assert!(in_head(&env, &repo, &document_path("design")).is_some());
    assert_eq!(in_head(&env, &repo, &spec_path()).unwrap(), with_design);
}

#[test]
fn a_document_with_uncommitted_edits_is_never_overwritten() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let server = serve(BTreeMap::new());
    activity(&env, &repo, &server, "discover", &[]);
    activity(&env, &repo, &server, "design", &[]);
    let path = repo.join(document_path("design"));
    let mine = "my own notes on the design\n";
    std::fs::write(&path, mine).unwrap();
    let before = head(&env, &repo);
    let asked = server.requests().len();

    let run = activity(&env, &repo, &server, "design", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(report(&run)["errors"][0]["reason"], "file_dirty");
    assert!(run.stderr.contains(&document_path("design")), "{run:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), mine);
    assert_eq!(head(&env, &repo), before, "no commit");
    assert_eq!(
        server.requests().len(),
        asked,
        "refused before the model was asked"
    );
}

#[test]
fn a_dry_run_writes_and_commits_nothing() {
    let env = TestEnv::new();
    let repo = repo(&env, "r");
    let server = serve(BTreeMap::new());
    activity(&env, &repo, &server, "discover", &[]);
    let before = head(&env, &repo);
    let run = activity(&env, &repo, &server, "design", &["--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        report(&run)["outputs"]["document"],
        json!({"path": document_path("design"), "written": false, "committed": null, "dry_run": true})
    );
    assert!(!repo.join(document_path("design")).exists());
    assert_eq!(head(&env, &repo), before);
}
