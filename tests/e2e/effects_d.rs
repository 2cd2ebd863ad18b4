//! Build edits code on a branch of its own (issue 22, item 1): the `changes.apply` playbook
//! applies whole-file and search/replace changes as one commit on
//! `spectra/<service>/build-<run>`, never touching the user's HEAD, index or working tree; the
//! tests run on that branch and decide `tests_pass`; undo deletes the branch and redo makes it
//! again; every refused change says why and nothing is written.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, TestRepo};
use crate::llm_server::{LlmServer, Reply};

/// A repository with `src/app.txt` and a test command that passes only when the checkout it
/// runs in has the build's edit (`GAMMA` in `src/app.txt`): so a pass proves the tests ran on
/// the branch, not in the user's working tree.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/app.txt", "alpha\nbeta\nbeta\n");
    repo.write(
        "run-tests.sh",
        "if grep -q GAMMA src/app.txt; then echo '1 passed, 0 failed, 0 skipped'; \
         else echo '0 passed, 1 failed, 0 skipped'; exit 1; fi\n",
    );
    repo.git(&["add", "."]);
    repo.git(&["commit", "-q", "-m", "app"]);
    repo.git(&["config", "spectra.test.command", "sh run-tests.sh"]);
    repo
}

/// Everything of the user's checkout a build must leave alone: HEAD, the index file's bytes,
/// the status, and every file of the working tree.
#[derive(Debug, PartialEq)]
struct Checkout {
    head: String,
    index: Vec<u8>,
    status: String,
    files: Vec<(String, Vec<u8>)>,
}

fn checkout(repo: &TestRepo) -> Checkout {
    let mut files = Vec::new();
    collect(repo.root(), repo.root(), &mut files);
    files.sort();
    Checkout {
        head: repo.git(&["rev-parse", "HEAD"]),
        index: std::fs::read(repo.root().join(".git/index")).unwrap(),
        status: repo.git(&["status", "--porcelain", "--untracked-files=all"]),
        files,
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name == ".git") {
            continue;
        }
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            files.push((name, target.to_string_lossy().as_bytes().to_vec()));
        } else if kind.is_dir() {
            collect(root, &path, files);
        } else {
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
}

fn build_branches(repo: &TestRepo) -> Vec<String> {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname:short)",
        "refs/heads/spectra/",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn apply(repo: &TestRepo, changes: &Value) -> Run {
    repo.spectra(&[
        "builtin",
        "apply-changes",
        "--service=shop",
        "--run=0190f1e2-7b3c-7def-8abc-1234567890ab",
        &format!("--changes={changes}"),
    ])
}

fn printed(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The scripted model: the build decision given, the minimal answer to anything else.
fn server_with_build(changes: Value) -> LlmServer {
    let server = LlmServer::start();
    let decision = json!({
        "build_plan": {"approach": "edit the app", "steps": ["edit"]},
        "changes": changes,
        "dependencies": [],
        "branch": "ignored",
        "playbooks": [],
    });
    server.respond_with(move |_| Reply::chat_json(&decision));
    server
}

fn build(repo: &TestRepo, server: &LlmServer, extra: &[&str]) -> Run {
    let mut args = vec![
        "build",
        "make it GAMMA",
        "--service",
        "shop",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    repo.env
        .spectra_with_llm(repo.root(), &server.base_url(), &args)
}

fn finished(repo: &TestRepo) -> Value {
    repo.env
        .events(repo.root(), "activity.finished")
        .pop()
        .expect("an activity.finished")
}

fn edits() -> Value {
    json!([
        {"path": "src/new.txt", "action": "create", "purpose": "new", "content": "fresh\n",
         "search": null, "replace": null},
        {"path": "src/app.txt", "action": "modify", "purpose": "edit", "content": null,
         "search": "alpha\n", "replace": "GAMMA\n"},
    ])
}

#[test]
fn build_commits_its_changes_on_its_own_branch_tests_it_and_undo_redo_remove_and_restore_it() {
    let repo = repo();
    let server = server_with_build(edits());
    let before = checkout(&repo);
    let run = build(&repo, &server, &[]);
    assert_eq!(run.code, 0, "{run:?}");

    // One branch, one commit on HEAD with both changes and the run's trailers.
    let branches = build_branches(&repo);
    assert_eq!(branches.len(), 1, "{branches:?}");
    let branch = &branches[0];
    assert!(branch.starts_with("spectra/shop/build-"), "{branch}");
    assert_eq!(
        repo.git(&["show", &format!("{branch}:src/new.txt")]),
        "fresh"
    );
    assert_eq!(
        repo.git(&["show", &format!("{branch}:src/app.txt")]),
        "GAMMA\nbeta\nbeta"
    );
    assert_eq!(repo.git(&["rev-parse", &format!("{branch}^")]), before.head);
    let intended = repo.env.events(repo.root(), "effect.intended");
    let intent = intended
        .iter()
        .find(|event| event["payload"]["effect"] == "branch")
        .expect("effect.intended before the branch");
    assert_eq!(intent["payload"]["branch"], branch.as_str());
    assert_eq!(
        intent["payload"]["files"],
        json!(["src/new.txt", "src/app.txt"])
    );
    assert_eq!(intent["payload"]["kinds"]["src/app.txt"], "search_replace");
    assert_eq!(intent["payload"]["head"], before.head.as_str());
    let message = repo.git(&["log", "-1", "--format=%B", branch]);
    let started = repo
        .env
        .events(repo.root(), "playbook.started")
        .into_iter()
        .find(|event| event["payload"]["playbook"] == "changes.apply")
        .expect("changes.apply started");
    assert!(
        message.contains(&format!(
            "Spectra-Run: {}",
            started["run"].as_str().unwrap()
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Spectra-Event: {}",
            started["id"].as_str().unwrap()
        )),
        "{message}"
    );

    // The user's files are as they were; only spectra's own document was committed on HEAD.
    let after = checkout(&repo);
    let user_files = |files: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .filter(|(name, _)| !name.starts_with(".spectra/"))
            .cloned()
            .collect()
    };
    assert_eq!(user_files(&after.files), user_files(&before.files));
    let touched = repo.git(&["diff", "--name-only", &before.head, "HEAD"]);
    assert!(
        touched.lines().all(|path| path.starts_with(".spectra/")),
        "{touched}"
    );
    assert_eq!(after.status, "", "nothing left uncommitted");
    let document = repo.git(&["show", "HEAD:.spectra/shop/build.md"]);
    assert!(
        document.contains(&format!("on branch `{branch}`")) && document.contains("2 files changed"),
        "the document shows the branch and the diff stat: {document}"
    );

    // The tests ran on the branch (they pass only where GAMMA is) and decided the gate.
    let outputs = &finished(&repo)["payload"]["outputs"];
    assert_eq!(outputs["test_results"]["passed"], 1, "{outputs}");
    assert_eq!(outputs["changes_applied"]["branch"], branch.as_str());
    assert_eq!(outputs["changes_applied"]["success"], true);
    assert_eq!(
        finished(&repo)["payload"]["gates"]["tests_pass"]["result"],
        "passed"
    );
    assert_eq!(
        repo.git(&["worktree", "list"]).lines().count(),
        1,
        "temp checkout removed"
    );

    // Undo deletes the branch and says so; redo makes it again with the same changes.
    let undo = repo.spectra(&["undo"]);
    assert_eq!(undo.code, 0, "{undo:?}");
    assert!(build_branches(&repo).is_empty());
    let printed = compensation_output(&repo);
    assert!(printed.contains("\"deleted\""), "{printed}");
    assert!(
        undo.stdout.contains(&format!(
            "ran playbook changes.apply (undo): deleted branch `{}`",
            branches[0]
        )),
        "the undo says what it did: {undo:?}"
    );
    let redo = repo.spectra(&["redo"]);
    assert_eq!(redo.code, 0, "{redo:?}");
    let again = build_branches(&repo);
    assert_eq!(again, branches);
    assert_eq!(
        repo.git(&["show", &format!("{}:src/app.txt", again[0])]),
        "GAMMA\nbeta\nbeta"
    );
}

#[test]
fn a_build_killed_after_its_branch_and_before_its_record_is_undone_branch_and_all() {
    let repo = repo();
    let server = server_with_build(edits());
    let killed = repo
        .env
        .command(crate::common::spectra_bin(), repo.root())
        .args(["build", "make it GAMMA", "--service", "shop"])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .env("SPECTRA_TEST_STOP_AT", "playbook.ran.changes.apply:kill")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed by its own hook");
    assert_eq!(build_branches(&repo).len(), 1, "the branch was made");

    // Undo closes the interrupted run, then removes the branch the unfinished apply made.
    let undo = repo.spectra(&["undo"]).success();
    assert!(build_branches(&repo).is_empty(), "{undo:?}");
}

#[test]
fn undo_of_a_merged_build_reverts_its_commit_and_says_so() {
    let repo = repo();
    let server = server_with_build(edits());
    let run = build(&repo, &server, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let branch = build_branches(&repo).pop().unwrap();
    repo.git(&["merge", "-q", "--no-edit", &branch]);
    assert_eq!(
        std::fs::read_to_string(repo.root().join("src/app.txt")).unwrap(),
        "GAMMA\nbeta\nbeta\n"
    );
    let undo = repo.spectra(&["undo"]);
    assert_eq!(undo.code, 0, "{undo:?}");
    let printed = compensation_output(&repo);
    assert!(printed.contains("\"reverted\""), "{printed}");
    assert!(
        undo.stdout
            .contains(&format!("`{branch}` was merged: reverted its commit")),
        "the undo says which: {undo:?}"
    );
    assert_eq!(
        repo.git(&["show", "HEAD:src/app.txt"]),
        "alpha\nbeta\nbeta",
        "the merged change is reverted on the user's branch"
    );
    assert!(build_branches(&repo).is_empty());
}

fn stdout_attachment(repo: &TestRepo, event: &Value) -> Vec<u8> {
    let id = event["id"].as_str().unwrap();
    repo.spectra(&["show", id, "--attachment", "stdout"])
        .stdout
        .into_bytes()
}

#[test]
fn failing_tests_on_the_branch_fail_the_tests_pass_gate() {
    let repo = repo();
    // Applies, but the edit is not the one the tests look for.
    let server = server_with_build(json!([
        {"path": "src/app.txt", "action": "modify", "purpose": "edit", "content": null,
         "content": null,
         "search": "alpha", "replace": "delta"}
    ]));
    let run = build(&repo, &server, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    let finished = finished(&repo);
    assert_eq!(finished["payload"]["outputs"]["test_results"]["failed"], 1);
    assert_eq!(
        finished["payload"]["gates"]["tests_pass"]["result"],
        "failed"
    );
    assert_eq!(
        build_branches(&repo).len(),
        1,
        "the branch stays for review"
    );
}

#[test]
fn a_missing_search_text_fails_the_build_with_the_reason_and_makes_no_branch() {
    let repo = repo();
    let server = server_with_build(json!([
        {"path": "src/new.txt", "action": "create", "purpose": "new", "content": "fresh\n",
         "search": null, "replace": null},
        {"path": "src/app.txt", "action": "modify", "purpose": "edit", "content": null,
         "search": "omega", "replace": "GAMMA"},
    ]));
    let before = checkout(&repo);
    let run = build(&repo, &server, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(build_branches(&repo).is_empty());
    // Neither the playbook nor the tests ran, and the one error says why.
    let started = repo.env.events(repo.root(), "playbook.started");
    assert!(started.is_empty(), "{started:?}");
    let human = repo.env.spectra_with_llm(
        repo.root(),
        &server.base_url(),
        &["build", "x", "--service", "shop"],
    );
    assert_eq!(human.code, 1, "{human:?}");
    assert!(
        human.stderr.contains("src/app.txt: search text not found")
            && !human.stderr.contains("tests could not be run"),
        "{}",
        human.stderr
    );
    let finished = finished(&repo);
    assert_eq!(finished["payload"]["outcome"], "failed");
    let applied = &finished["payload"]["outputs"]["changes_applied"];
    assert_eq!(applied["success"], false);
    assert!(
        applied["changes"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{applied}"
    );
    assert_eq!(
        applied["changes"][0]["reason"],
        "not applied: another change failed"
    );
    let after = checkout(&repo);
    assert_eq!(
        after.files.iter().find(|(n, _)| n == "src/app.txt"),
        before.files.iter().find(|(n, _)| n == "src/app.txt")
    );
}

#[test]
fn a_dry_run_shows_the_full_diff_and_writes_nothing() {
    let repo = repo();
    let server = server_with_build(edits());
    let before = checkout(&repo);
    let run = build(&repo, &server, &["--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(build_branches(&repo).is_empty());
    assert_eq!(checkout(&repo), before);
    // The new file's blob was made only in a temporary object directory (the log's own events
    // are objects too, so counting objects would not tell).
    let fresh_blob = "92d5444121bba43a7654dcfb037c209cb2a5d403"; // printf 'fresh\n' | git hash-object --stdin
    let found = repo.env.git(repo.root(), &["cat-file", "-e", fresh_blob]);
    assert_ne!(
        found.code, 0,
        "the new file's blob is not in the repository"
    );
    let preview = &finished(&repo)["payload"]["outputs"]["changes_preview"];
    let diff = preview["diff"].as_str().unwrap();
    assert!(diff.contains("-alpha") && diff.contains("+GAMMA"), "{diff}");
    assert!(diff.contains("+fresh"), "{diff}");
    assert!(
        preview["diff_stat"]
            .as_str()
            .unwrap()
            .contains("2 files changed")
    );

    // The human report shows the branch it would make and the whole diff.
    let args = ["build", "make it GAMMA", "--service", "shop", "--dry-run"];
    let human = repo
        .env
        .spectra_with_llm(repo.root(), &server.base_url(), &args);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.contains("(dry run: not created)"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("    +GAMMA") && human.stdout.contains("    -alpha"),
        "{}",
        human.stdout
    );
    assert!(build_branches(&repo).is_empty());
}

#[test]
fn apply_changes_leaves_head_index_and_working_tree_byte_for_byte() {
    let repo = repo();
    // Something staged and something untracked elsewhere must survive too.
    repo.write("README", "staged edit\n");
    repo.git(&["add", "README"]);
    repo.write("notes.txt", "mine\n");
    let before = checkout(&repo);
    let run = apply(&repo, &edits());
    assert_eq!(run.code, 0, "{run:?}");
    let result = printed(&run);
    assert_eq!(result["branch"], "spectra/shop/build-567890ab");
    assert_eq!(checkout(&repo), before);
    assert_eq!(build_branches(&repo), ["spectra/shop/build-567890ab"]);
}

#[test]
fn every_unsafe_or_unclear_change_is_refused_with_its_reason_and_nothing_is_written() {
    let repo = repo();
    std::os::unix::fs::symlink("/tmp", repo.root().join("out")).unwrap();
    repo.git(&["add", "out"]);
    repo.git(&["commit", "-q", "-m", "a link out"]);
    repo.write("src/app.txt", "user's edit\n");
    let whole = |path: &str| json!({"path": path, "content": "x\n"});
    let cases = [
        (
            json!({"path": "README", "search": "nowhere", "replace": "x"}),
            "not found",
        ),
        (
            json!({"path": "run-tests.sh", "search": "passed", "replace": "x"}),
            "found 2 times",
        ),
        (whole("../escape.txt"), "climbs out"),
        (whole("/tmp/absolute.txt"), "absolute"),
        (whole(".git/config"), "points into .git"),
        (whole("out/x.txt"), "symlink"),
        (whole("src/app.txt"), "uncommitted changes"),
    ];
    let before = checkout(&repo);
    for (change, reason) in cases {
        let run = apply(&repo, &json!([whole("fine.txt"), change]));
        assert_eq!(run.code, 1, "{change}: {run:?}");
        let result = printed(&run);
        assert_eq!(result["success"], false);
        let got = result["changes"][1]["reason"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{change}: {got}");
        assert!(run.stderr.contains(reason), "{change}: {}", run.stderr);
        assert!(build_branches(&repo).is_empty(), "{change}");
        assert_eq!(checkout(&repo), before, "{change}");
    }
}

/// What the newest compensation (a playbook's `undo` run) printed.
fn compensation_output(repo: &TestRepo) -> String {
    let compensation = repo
        .env
        .events(repo.root(), "playbook.finished")
        .into_iter()
        .rev()
        .find(|event| event["payload"]["action"] == "undo")
        .expect("the compensation is recorded");
    String::from_utf8_lossy(&stdout_attachment(repo, &compensation)).into_owned()
}
