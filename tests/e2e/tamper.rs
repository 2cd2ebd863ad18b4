//! Every way of changing the log behind the tool's back is caught by `git spectra verify`,
//! which names the first bad event and exits 1.
//!
//! The tampering is done with git plumbing, as a person with a shell would do it: the chain is
//! read commit by commit and rewritten with `git commit-tree` and `git update-ref`.

use std::path::Path;

use crate::common::{Run, TestEnv};

/// One event commit, enough to write it again.
#[derive(Clone)]
pub(crate) struct RawCommit {
    pub(crate) tree: String,
    pub(crate) message: String,
}

pub(crate) fn read_chain(env: &TestEnv, repo: &Path) -> Vec<RawCommit> {
    let ids = env
        .git(repo, &["rev-list", "--reverse", "refs/spectra/events"])
        .success()
        .stdout;
    ids.lines()
        .map(|id| {
            let raw = env.git(repo, &["cat-file", "commit", id]).success().stdout;
            let (headers, message) = raw.split_once("\n\n").unwrap();
            let tree = headers
                .lines()
                .next()
                .unwrap()
                .strip_prefix("tree ")
                .unwrap()
                .to_string();
            RawCommit {
                tree,
                message: message.to_string(),
            }
        })
        .collect()
}

pub(crate) fn write_chain(env: &TestEnv, repo: &Path, chain: &[RawCommit]) {
    let mut parent: Option<String> = None;
    for commit in chain {
        let mut args = vec!["commit-tree".to_string(), commit.tree.clone()];
        if let Some(parent) = &parent {
            args.push("-p".into());
            args.push(parent.clone());
        }
        args.push("-m".into());
        args.push(commit.message.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        parent = Some(env.git(repo, &args).success().stdout.trim().to_string());
    }
    env.git(
        repo,
        &[
            "update-ref",
            "refs/spectra/events",
            parent.as_deref().unwrap(),
        ],
    )
    .success();
}

/// A tree like `tree` with `name` replaced by `content`.
pub(crate) fn replace_in_tree(
    env: &TestEnv,
    repo: &Path,
    tree: &str,
    name: &str,
    content: &[u8],
) -> String {
    let path = env.path().join("blob.tmp");
    std::fs::write(&path, content).unwrap();
    let blob = env
        .git(repo, &["hash-object", "-w", path.to_str().unwrap()])
        .success()
        .stdout
        .trim()
        .to_string();
    let listing = env.git(repo, &["ls-tree", tree]).success().stdout;
    let rewritten: String = listing
        .lines()
        .map(|line| {
            if line.ends_with(&format!("\t{name}")) {
                format!("100644 blob {blob}\t{name}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let output = env
        .command("git", repo)
        .arg("mktree")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(rewritten.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

pub(crate) fn event_json(env: &TestEnv, repo: &Path, tree: &str) -> serde_json::Value {
    let text = env
        .git(repo, &["cat-file", "-p", &format!("{tree}:event.json")])
        .success()
        .stdout;
    serde_json::from_str(&text).unwrap()
}

/// A log of four events, the second with an attachment; returns the event ids oldest first.
fn four_events(env: &TestEnv, name: &str) -> (std::path::PathBuf, Vec<String>) {
    let repo = env.init_repo(name);
    let mut ids = vec![env.append(&repo, "note.added", r#"{"n": 1}"#)];
    ids.push(append_with_attachment(env, &repo));
    for n in 3..=4 {
        ids.push(env.append(&repo, "note.added", &format!(r#"{{"n": {n}}}"#)));
    }
    env.spectra(&repo, &["verify"]).success();
    (repo, ids)
}

/// Attachments are written by the library (the CLI's `append` takes none).
fn append_with_attachment(env: &TestEnv, repo: &Path) -> String {
    let _ = env;
    let opened = spectra::repo::Repo::open(repo).unwrap();
    let stored = spectra::store::Store::new(&opened)
        .append(
            spectra::event::NewEvent::new("llm.called")
                .run("run-1")
                .payload(serde_json::json!({"status": 200}))
                .attach("response.json", br#"{"ok": true}"#.to_vec()),
        )
        .unwrap();
    stored.event.id
}

#[track_caller]
fn assert_verify_names(
    env: &TestEnv,
    repo: &Path,
    position: usize,
    id: Option<&str>,
    reason: &str,
) -> Run {
    let run = env.spectra(repo, &["verify"]).code(1);
    assert!(
        run.stderr.contains(&format!("event #{position} ")),
        "wrong position: {run:?}"
    );
    if let Some(id) = id {
        assert!(run.stderr.contains(id), "id {id} not named: {run:?}");
    }
    assert!(
        run.stderr.contains(reason),
        "reason `{reason}` not given: {run:?}"
    );
    run
}

#[test]
fn an_edited_payload_is_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    let mut event = event_json(&env, &repo, &chain[2].tree);
    event["payload"]["n"] = serde_json::json!(300);
    // Keep it canonical (sorted keys, compact) so only the digest can tell.
    let bytes = serde_json::to_vec(&event).unwrap();
    chain[2].tree = replace_in_tree(&env, &repo, &chain[2].tree, "event.json", &bytes);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 3, Some(&ids[2]), "digest does not match");
}

#[test]
fn reordered_events_are_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    chain.swap(2, 3);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 3, Some(&ids[3]), "prev_digest");
}

#[test]
fn a_removed_event_is_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    chain.remove(1);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 2, Some(&ids[2]), "prev_digest");
}

#[test]
fn a_commit_injected_by_hand_is_detected() {
    let env = TestEnv::new();
    let (repo, _) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    let injected = RawCommit {
        tree: chain[1].tree.clone(),
        message: "tidy up the log\n".into(),
    };
    chain.insert(2, injected);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 3, None, "no Spectra-Event trailer");
}

#[test]
fn a_copied_event_is_detected() {
    let env = TestEnv::new();
    let (repo, _) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    let copy = chain[3].clone();
    chain.push(copy);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 5, None, "prev_digest");
}

#[test]
fn a_trailer_that_disagrees_with_the_payload_is_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    chain[1].message = chain[1]
        .message
        .replace("Spectra-Run: run-1", "Spectra-Run: run-2");
    write_chain(&env, &repo, &chain);
    assert_verify_names(
        &env,
        &repo,
        2,
        Some(&ids[1]),
        "Spectra-Run trailer (run-2) disagrees",
    );
}

#[test]
fn an_edited_attachment_is_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    chain[1].tree = replace_in_tree(
        &env,
        &repo,
        &chain[1].tree,
        "response.json",
        b"{\"ok\": false}",
    );
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 2, Some(&ids[1]), "attachment `response.json`");
}

#[test]
fn a_reformatted_event_json_is_detected() {
    let env = TestEnv::new();
    let (repo, ids) = four_events(&env, "r");
    let mut chain = read_chain(&env, &repo);
    let event = event_json(&env, &repo, &chain[0].tree);
    let pretty = serde_json::to_vec_pretty(&event).unwrap();
    chain[0].tree = replace_in_tree(&env, &repo, &chain[0].tree, "event.json", &pretty);
    write_chain(&env, &repo, &chain);
    assert_verify_names(&env, &repo, 1, Some(&ids[0]), "canonical form");
}

#[test]
fn verify_reports_the_count_and_json_shape() {
    let env = TestEnv::new();
    let (repo, _) = four_events(&env, "r");
    let text = env.spectra(&repo, &["verify"]).success();
    assert!(text.stdout.contains("verified 4 events"), "{text:?}");
    let json = env
        .spectra(&repo, &["verify", "--format", "json"])
        .success();
    let value: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["verified"], 4);
}
