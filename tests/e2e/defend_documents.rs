//! An activity's document and its stage in the specification are one commit on the user's
//! branch: a crash on either side of it is reconciled for both files, the user's staged work is
//! left as it was, a broken specification or template stops the run with nothing half-written,
//! and the views say `incomplete` as the log does.

use serde_json::{Value, json};

use crate::common::{Run, TestRepo, json_lines, spectra_bin};
use crate::lifecycle::{merged, minimal};
use crate::llm_server::{LlmServer, Reply};

const SPEC: &str = ".spectra/logging.specification.yaml";
const DESIGN: &str = ".spectra/logging/design.md";
const KEY: &str = "sk-review-secret-4242";

/// A model that answers every schema with the minimal valid decision, `patch` laid over the
/// design decision.
fn model(patch: Value) -> LlmServer {
    let server = LlmServer::start();
    server.respond_with(move |request| {
        let body = request.json();
        let format = &body["response_format"]["json_schema"];
        let decision = minimal(&format["schema"]);
        if format["name"] == "design_decision" {
            Reply::chat_json(&merged(decision, &patch))
        } else {
            Reply::chat_json(&decision)
        }
    });
    server
}

/// A repository whose `logging` service was discovered (offline) and committed.
fn discovered() -> TestRepo {
    let repo = TestRepo::new();
    repo.spectra(&[
        "discover",
        "--offline",
        "--service",
        "logging",
        "a logging service",
    ])
    .success();
    repo
}

/// `git spectra design` for logging, against `server`, with `env` added.
fn design(repo: &TestRepo, server: &LlmServer, env: &[(&str, &str)]) -> Run {
    let mut command = repo.env.command(spectra_bin(), repo.root());
    command
        .args([
            "design",
            "--service",
            "logging",
            "--format",
            "json",
            "design it",
        ])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .env("SPECTRA_LLM_API_KEY", KEY);
    for (key, value) in env {
        command.env(key, value);
    }
    Run::from_output(command.output().expect("run git-spectra"))
}

fn in_head(repo: &TestRepo, path: &str) -> bool {
    !repo
        .git(&["ls-tree", "--name-only", "HEAD", "--", path])
        .is_empty()
}

fn read(repo: &TestRepo, path: &str) -> String {
    std::fs::read_to_string(repo.root().join(path)).unwrap_or_default()
}

fn events_of(repo: &TestRepo, kind: &str) -> Vec<Value> {
    repo.env.events(repo.root(), kind)
}

/// Appends a note: a command that writes the log, which closes runs whose process died.
fn write_the_log(repo: &TestRepo) {
    repo.spectra(&["append", "--kind", "note.added", "--payload", "{}"])
        .success();
}

#[test]
fn a_design_killed_before_its_commit_puts_back_both_the_document_and_the_specification() {
    let repo = discovered();
    let server = model(json!({}));
    let spec_before = read(&repo, SPEC);
    let killed = design(
        &repo,
        &server,
        &[("SPECTRA_TEST_STOP_AT", "commit.before:kill")],
    );
    assert_eq!(killed.code, -1, "{killed:#?}");
    assert!(repo.root().join(DESIGN).exists(), "written before the kill");
    assert_ne!(read(&repo, SPEC), spec_before, "the stage was written");
    write_the_log(&repo);
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "a file stayed");
    assert_eq!(read(&repo, SPEC), spec_before);
    design(&repo, &server, &[]).success();
    assert!(in_head(&repo, DESIGN));
}

#[test]
fn a_design_killed_after_its_commit_is_recorded_and_undone_with_both_files() {
    let repo = discovered();
    let server = model(json!({}));
    let spec_before = read(&repo, SPEC);
    let killed = design(
        &repo,
        &server,
        &[("SPECTRA_TEST_STOP_AT", "commit.after:kill")],
    );
    assert_eq!(killed.code, -1, "{killed:#?}");
    assert!(in_head(&repo, DESIGN));
    write_the_log(&repo);
    let committed: Vec<Value> = events_of(&repo, "files.committed")
        .into_iter()
        .filter(|event| event["activity"] == "design")
        .collect();
    assert_eq!(committed.len(), 1, "{committed:#?}");
    let mut files: Vec<String> = committed[0]["payload"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, [SPEC, DESIGN]);
    repo.spectra(&["undo"]).success();
    assert!(!in_head(&repo, DESIGN));
    assert_eq!(read(&repo, SPEC), spec_before);
}

#[test]
fn the_users_staged_work_stays_staged_and_out_of_the_document_commit() {
    let repo = discovered();
    repo.write("notes.txt", "mine\n");
    repo.git(&["add", "notes.txt"]);
    design(&repo, &model(json!({})), &[]).success();
    let in_commit = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(!in_commit.contains("notes.txt"), "{in_commit}");
    assert_eq!(repo.git(&["diff", "--cached", "--name-only"]), "notes.txt");
}

#[test]
fn a_specification_broken_by_hand_stops_design_and_names_the_file() {
    let repo = discovered();
    let broken = "service: logging\nstages: [unclosed\n";
    repo.write(SPEC, broken);
    repo.git(&["commit", "-qam", "hand edit"]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = model(json!({}));
    let run = design(&repo, &server, &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains(SPEC), "{run:#?}");
    assert!(
        server.chat_requests().is_empty(),
        "the model was asked for a decision whose stage could not be recorded"
    );
    assert_eq!(read(&repo, SPEC), broken);
    assert!(!repo.root().join(DESIGN).exists());
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn fields_added_to_the_specification_by_hand_are_kept() {
    let repo = discovered();
    let text = read(&repo, SPEC) + "owner: ops team # the pager\nlinks:\n  - https://wiki\n";
    repo.write(SPEC, &text);
    repo.git(&["commit", "-qam", "hand edit"]);
    design(&repo, &model(json!({})), &[]).success();
    let after = read(&repo, SPEC);
    assert!(after.contains("owner: ops team"), "{after}");
    assert!(after.contains("https://wiki"), "{after}");
    assert!(after.contains("design: complete"), "{after}");
}

#[test]
fn design_for_a_service_with_no_specification_writes_its_document_only() {
    let repo = TestRepo::new();
    design(&repo, &model(json!({})), &[]).success();
    assert!(in_head(&repo, DESIGN));
    assert!(
        !repo.root().join(SPEC).exists(),
        "no specification is made up"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn the_api_key_in_a_decision_never_reaches_the_document() {
    let repo = discovered();
    let server = model(json!({"architecture": {"style": format!("uses {KEY} to log in")}}));
    let run = design(&repo, &server, &[]).success();
    let document = read(&repo, DESIGN);
    assert!(!document.contains(KEY), "{document}");
    assert!(document.contains("uses *** to log in"), "{document}");
    assert!(!run.stdout.contains(KEY));
}

#[test]
fn a_template_that_fails_inside_a_loop_is_caught_by_validate() {
    let repo = discovered();
    repo.write(
        ".spectra/registry/activities/design.md.j2",
        "# Design\n\n{% for component in decision.architecture.components %}\n- {{ component.name | no_such_filter }}\n{% endfor %}\n",
    );
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "template"]);
    let validate = repo.spectra(&["registry", "validate"]).code(1);
    assert!(
        validate
            .stdout
            .contains(".spectra/registry/activities/design.md.j2:4:"),
        "{validate:#?}"
    );
    let head = repo.git(&["rev-parse", "HEAD"]);
    let run = design(&repo, &model(json!({})), &[]).code(1);
    assert!(run.stderr.contains("design.md.j2:4"), "{run:#?}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn undo_of_a_design_followed_by_another_design_goes_newest_first() {
    let repo = discovered();
    let spec_before = read(&repo, SPEC);
    let first: Value = serde_json::from_str(
        design(&repo, &model(json!({})), &[])
            .success()
            .stdout
            .trim(),
    )
    .unwrap();
    let second = model(json!({"architecture": {"style": "second"}}));
    design(&repo, &second, &[]).success();
    let first = first["run"].as_str().unwrap();
    let refused = repo.spectra(&["undo", first]).code(1);
    assert!(
        refused.stderr.contains("later work depends on it"),
        "{refused:#?}"
    );
    assert!(read(&repo, DESIGN).contains("Style: second"));
    repo.spectra(&["undo"]).success();
    assert!(!read(&repo, DESIGN).contains("Style: second"));
    assert!(read(&repo, SPEC).contains("design: complete"));
    repo.spectra(&["undo", first]).success();
    assert!(!repo.root().join(DESIGN).exists());
    assert_eq!(read(&repo, SPEC), spec_before);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn an_incomplete_design_reads_incomplete_in_the_manifest_and_the_export() {
    let repo = discovered();
    let server = model(json!({"architecture": {"components": []}}));
    design(&repo, &server, &[]).code(1);
    let manifest = repo
        .spectra(&["manifest", "design", "--format", "json"])
        .success();
    let rows = json_lines(&manifest.stdout);
    assert_eq!(rows[0]["status"], "incomplete", "{rows:#?}");
    repo.spectra(&["export", "--dir", "out"]).success();
    let exported = read(&repo, "out/manifests/design-manifest.yaml");
    assert!(exported.contains("status: incomplete"), "{exported}");
    let spec = read(&repo, SPEC);
    assert!(spec.contains("design: incomplete"), "{spec}");
}
