//! A log that fails verification is read with a warning and never acted on: read commands name
//! the first bad event on stderr and still show the log; undo, redo and the hook's triggers
//! refuse; the integrity cache that keeps the check cheap never hides a bad event.
//!
//! The log is tampered with git plumbing (see `tamper`), as a person with a shell would do it.

use std::path::Path;

use serde_json::Value;

use crate::common::{Run, TestEnv, TestRepo, json_lines};
use crate::tamper::{RawCommit, event_json, read_chain, replace_in_tree, write_chain};

const CACHE: &str = ".git/spectra/cache/integrity";

fn discover(repo: &TestRepo, service: &str) {
    repo.spectra(&[
        "discover",
        "--offline",
        "--service",
        service,
        &format!("an idea for {service}"),
    ])
    .success();
}

fn tip(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, &["rev-parse", "refs/spectra/events"])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// The warning (and its hint) a read command prints for a log that fails at event `position`.
#[track_caller]
fn assert_warns(run: &Run, position: usize, id: &str) {
    let expected =
        format!("warning: the event log fails verification at event #{position} (commit ");
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert!(run.stderr.contains(&format!("id {id})")), "{run:#?}");
    assert!(
        run.stderr
            .contains("hint: run `git spectra verify` for details; the log is shown as recorded"),
        "{run:#?}"
    );
    assert_eq!(
        run.stderr.matches("warning:").count(),
        1,
        "one warning: {run:#?}"
    );
}

/// An acting command's refusal: exit 1, the first bad event named, nothing done.
#[track_caller]
fn assert_refuses(run: Run, position: usize, id: &str) {
    let run = run.code(1);
    let expected = format!("error: the event log fails verification at event #{position} (commit ");
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert!(run.stderr.contains(&format!("id {id})")), "{run:#?}");
    assert!(run.stderr.contains("hint: "), "{run:#?}");
}

/// What `files.committed` edits leave: the position and id `verify` names.
struct Edited {
    position: usize,
    id: String,
}

/// Rewrites the `files.committed` payload so that it names `commit`. With `rechain`, the edited
/// event's own `Spectra-Digest` is recomputed as a careful forger would, so it is the event
/// after it whose `prev_digest` no longer matches.
fn point_files_committed_at(repo: &TestRepo, commit: &str, rechain: bool) -> Edited {
    let (env, dir) = (&repo.env, repo.root());
    let mut chain = read_chain(env, dir);
    let index = chain
        .iter()
        .position(|raw| raw.message.contains("Spectra-Event: files.committed\n"))
        .expect("a files.committed event");
    let mut event = event_json(env, dir, &chain[index].tree);
    event["payload"]["commit"] = Value::String(commit.to_string());
    let bytes = serde_json::to_vec(&event).unwrap();
    chain[index].tree = replace_in_tree(env, dir, &chain[index].tree, "event.json", &bytes);
    if rechain {
        let prev = event["prev_digest"].as_str().unwrap();
        let digest = spectra::event::chain_digest(prev, &bytes);
        chain[index].message = with_trailer(&chain[index].message, "Spectra-Digest", &digest);
    }
    write_chain(env, dir, &chain);
    let named = if rechain { index + 1 } else { index };
    let id = event_json(env, dir, &chain[named].tree)["id"]
        .as_str()
        .unwrap()
        .to_string();
    Edited {
        position: named + 1,
        id,
    }
}

/// `message` with the value of trailer `key` replaced.
fn with_trailer(message: &str, key: &str, value: &str) -> String {
    message
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((k, _)) if k == key => format!("{key}: {value}\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

fn head(repo: &TestRepo) -> String {
    repo.git(&["rev-parse", "HEAD"])
}

#[test]
fn an_edited_files_committed_payload_is_read_with_a_warning_and_never_undone() {
    for rechain in [false, true] {
        let repo = TestRepo::new();
        let user_commit = head(&repo);
        discover(&repo, "logging");
        let edited = point_files_committed_at(&repo, &user_commit, rechain);

        for args in [
            &["log"][..],
            &["log", "--format", "json"],
            &["manifest"],
            &["runs"],
            &["history"],
        ] {
            let run = repo.spectra(args).success();
            assert_warns(&run, edited.position, &edited.id);
            assert!(!run.stdout.is_empty(), "{args:?} still shows the log");
        }
        // JSON output stays clean: the warning is on stderr only.
        let json = repo.spectra(&["log", "--format", "json"]).success();
        assert!(json_lines(&json.stdout).len() > 5);
        let manifest = repo.spectra(&["manifest", "--format", "json"]).success();
        let shown = json_lines(&manifest.stdout);
        assert_eq!(shown[0]["activity"], "discover", "{manifest:#?}");

        let head_before = head(&repo);
        let events_before = tip(&repo.env, repo.root());
        assert_refuses(
            repo.spectra(&["undo", "--dry-run"]),
            edited.position,
            &edited.id,
        );
        assert_refuses(repo.spectra(&["undo"]), edited.position, &edited.id);
        assert_refuses(repo.spectra(&["redo"]), edited.position, &edited.id);
        assert_eq!(head(&repo), head_before, "no revert commit was made");
        assert_eq!(
            tip(&repo.env, repo.root()),
            events_before,
            "no event was appended"
        );
        let subjects = repo.git(&["log", "--format=%s"]);
        assert!(!subjects.contains("Revert"), "{subjects}");

        // `verify` names the same event.
        let verify = repo.spectra(&["verify"]).code(1);
        assert!(
            verify
                .stderr
                .contains(&format!("event #{} (commit", edited.position)),
            "{verify:#?}"
        );
    }
}

#[test]
fn an_intact_log_reads_without_a_warning() {
    let repo = TestRepo::new();
    discover(&repo, "logging");
    let id = json_lines(&repo.spectra(&["log", "--format", "json", "-n", "1"]).stdout)[0]["event"]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    for args in [
        &["log"][..],
        &["show", id.as_str()],
        &["manifest"],
        &["history"],
        &["runs"],
        &["stats"],
        &["status", "--offline"],
    ] {
        let run = repo.spectra(args).success();
        assert_eq!(run.stderr, "", "{args:?}: {run:#?}");
    }
    // The answer was saved for the next command.
    assert!(repo.root().join(CACHE).is_file());
}

/// A log of four notes, checked once so that the cache holds its tip.
fn four_checked_events(env: &TestEnv) -> (std::path::PathBuf, Vec<String>) {
    let dir = env.init_repo("r");
    let ids = (1..=4)
        .map(|n| env.append(&dir, "note.added", &format!(r#"{{"n": {n}}}"#)))
        .collect();
    let run = env.spectra(&dir, &["log"]).success();
    assert_eq!(run.stderr, "", "{run:#?}");
    assert!(dir.join(CACHE).is_file());
    (dir, ids)
}

/// Edits the payload of event `index` (0-based) and writes the chain again; nothing re-chained.
fn edit_payload(env: &TestEnv, dir: &Path, chain: &mut [RawCommit], index: usize) {
    let mut event = event_json(env, dir, &chain[index].tree);
    event["payload"]["n"] = serde_json::json!(300);
    let bytes = serde_json::to_vec(&event).unwrap();
    chain[index].tree = replace_in_tree(env, dir, &chain[index].tree, "event.json", &bytes);
    write_chain(env, dir, chain);
}

#[test]
fn an_event_rewritten_below_the_cached_tip_is_found() {
    let env = TestEnv::new();
    let (dir, ids) = four_checked_events(&env);
    env.spectra(&dir, &["verify"]).success();
    let good_cache = std::fs::read(dir.join(CACHE)).unwrap();
    let good_tip = tip(&env, &dir);

    let mut chain = read_chain(&env, &dir);
    edit_payload(&env, &dir, &mut chain, 1);
    let bad_tip = tip(&env, &dir);
    assert_ne!(bad_tip, good_tip);
    assert_warns(&env.spectra(&dir, &["log"]).success(), 2, &ids[1]);

    // Garbage where the cache was.
    std::fs::write(dir.join(CACHE), b"\x00\xffnot a cache\n\n").unwrap();
    assert_warns(&env.spectra(&dir, &["log"]).success(), 2, &ids[1]);

    // The good cache edited to claim the bad tip.
    let claimed = String::from_utf8_lossy(&good_cache).replace(&good_tip, &bad_tip);
    std::fs::write(dir.join(CACHE), claimed.as_bytes()).unwrap();
    assert_warns(&env.spectra(&dir, &["runs"]).success(), 2, &ids[1]);
    assert_refuses(env.spectra(&dir, &["undo", "--dry-run"]), 2, &ids[1]);
}

/// The cache file with its header rewritten by `edit` and its checksum made to match.
fn forged_cache(dir: &Path, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(CACHE)).unwrap();
    let first = bytes.iter().position(|&b| b == b'\n').unwrap();
    let second = first + 1 + bytes[first + 1..].iter().position(|&b| b == b'\n').unwrap();
    let mut header: Value = serde_json::from_slice(&bytes[..first]).unwrap();
    edit(&mut header);
    let line = serde_json::to_string(&header).unwrap();
    let mut forged =
        format!("{line}\n{}\n", spectra::digest::sha256_hex(line.as_bytes())).into_bytes();
    forged.extend_from_slice(&bytes[second + 1..]);
    forged
}

#[test]
fn a_cache_claiming_a_bad_tip_whose_trailers_disagree_is_not_believed() {
    let env = TestEnv::new();
    let (dir, _) = four_checked_events(&env);
    // A commit made by hand on top of the log: no trailers at all.
    let mut chain = read_chain(&env, &dir);
    chain.push(RawCommit {
        tree: chain[3].tree.clone(),
        message: "tidy up the log\n".into(),
    });
    write_chain(&env, &dir, &chain);
    let bad_tip = tip(&env, &dir);
    // A well-formed cache, checksums and all, that says the new tip is the sound one.
    let forged = forged_cache(&dir, |header| {
        header["tip"] = Value::String(bad_tip.clone());
    });
    std::fs::write(dir.join(CACHE), forged).unwrap();

    let run = env.spectra(&dir, &["log"]).success();
    assert!(
        run.stderr
            .contains("fails verification at event #5 (commit ")
            && run.stderr.contains("no Spectra-Event trailer"),
        "{run:#?}"
    );
}

/// Appends by hand an event that copies `source`'s envelope as event number `lamport`, chained
/// correctly after the tip (the forger recomputed every digest): only its id gives it away.
fn append_copy_of(env: &TestEnv, dir: &Path, source: &RawCommit, lamport: u64) {
    let mut chain = read_chain(env, dir);
    let tip_message = &chain.last().unwrap().message;
    let prev = tip_message
        .lines()
        .find_map(|line| line.strip_prefix("Spectra-Digest: "))
        .unwrap()
        .to_string();
    let mut event = event_json(env, dir, &source.tree);
    event["lamport"] = lamport.into();
    event["prev_digest"] = Value::String(prev.clone());
    let bytes = serde_json::to_vec(&event).unwrap();
    let digest = spectra::event::chain_digest(&prev, &bytes);
    let tree = replace_in_tree(env, dir, &source.tree, "event.json", &bytes);
    let message = with_trailer(&source.message, "Spectra-Lamport", &lamport.to_string());
    chain.push(RawCommit {
        tree,
        message: with_trailer(&message, "Spectra-Digest", &digest),
    });
    write_chain(env, dir, &chain);
}

#[test]
fn events_appended_after_a_check_are_checked_too() {
    let env = TestEnv::new();
    let (dir, ids) = four_checked_events(&env);
    let fifth = env.append(&dir, "note.added", r#"{"n": 5}"#);
    let run = env.spectra(&dir, &["log"]).success();
    assert_eq!(run.stderr, "", "{run:#?}");
    let good_tip = tip(&env, &dir);

    // A sixth event added by hand: a copy of the fifth, so its prev_digest is wrong.
    let mut chain = read_chain(&env, &dir);
    chain.push(chain[4].clone());
    write_chain(&env, &dir, &chain);
    let run = env.spectra(&dir, &["log"]).success();
    assert!(
        run.stderr.contains("at event #6 (commit ") && run.stderr.contains("prev_digest"),
        "{run:#?}"
    );

    // Back to the good tip (not a descendant of the broken one): intact again.
    env.git(&dir, &["update-ref", "refs/spectra/events", &good_tip])
        .success();
    assert_eq!(env.spectra(&dir, &["log"]).success().stderr, "");

    // A sixth event chained perfectly, but with the id of the second: the cache's id hashes
    // catch it, and the check from the first event names it.
    let chain = read_chain(&env, &dir);
    append_copy_of(&env, &dir, &chain[1], 6);
    let run = env.spectra(&dir, &["log"]).success();
    assert!(
        run.stderr.contains("at event #6 (commit ")
            && run
                .stderr
                .contains(&format!("its id {} appears earlier in the log", ids[1])),
        "{run:#?}"
    );
    env.spectra(&dir, &["verify"]).code(1);

    // Only the newest event edited, its commit replaced.
    env.git(&dir, &["update-ref", "refs/spectra/events", &good_tip])
        .success();
    assert_eq!(env.spectra(&dir, &["log"]).success().stderr, "");
    let mut chain = read_chain(&env, &dir);
    edit_payload(&env, &dir, &mut chain, 4);
    assert_warns(&env.spectra(&dir, &["log"]).success(), 5, &fifth);
}

#[test]
fn the_hook_starts_no_activity_on_a_log_that_fails_verification() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    env.spectra(&dir, &["hooks", "install"]).success();
    env.git(
        &dir,
        &["config", "spectra.hooks.onSpecChange", "no-such-activity"],
    )
    .success();
    let first = env.append(&dir, "note.added", r#"{"n": 1}"#);
    env.append(&dir, "note.added", r#"{"n": 2}"#);
    let mut chain = read_chain(&env, &dir);
    edit_payload(&env, &dir, &mut chain, 0);
    // Without the notes directory the shim records in the foreground, so what the hook does
    // happens before the commit returns.
    let _ = std::fs::remove_dir_all(dir.join(".git/spectra/pending"));

    let spec = dir.join(".spectra/logging.specification.yaml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(&spec, "name: logging\n").unwrap();
    env.git(&dir, &["add", "-A"]).success();
    let commit = env.git(&dir, &["commit", "-q", "-m", "spec"]).success();

    let warning = "the event log fails verification at event #1 (commit ";
    assert!(
        commit.stderr.contains("warning: git spectra: commit "),
        "{commit:#?}"
    );
    assert!(
        commit.stderr.contains("no-such-activity not started"),
        "{commit:#?}"
    );
    assert!(commit.stderr.contains(warning), "{commit:#?}");
    assert!(commit.stderr.contains(&first), "{commit:#?}");
    let log = std::fs::read_to_string(dir.join(".git/spectra/hooks.log")).unwrap();
    assert!(log.contains(warning), "{log}");
    assert!(!log.contains("starting:"), "no runner was started: {log}");
}
