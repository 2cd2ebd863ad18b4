//! The log works wherever git works: unborn, bare, linked worktrees, subdirectories, `git -C`,
//! `GIT_DIR`/`GIT_WORK_TREE`; and outside a repository it fails as git does.

use crate::common::{TestEnv, json_lines, spectra_bin};

fn event_ids(env: &TestEnv, dir: &std::path::Path) -> Vec<String> {
    json_lines(
        &env.spectra(dir, &["log", "--format", "json"])
            .success()
            .stdout,
    )
    .iter()
    .map(|r| r["event"]["id"].as_str().unwrap().to_string())
    .collect()
}

#[test]
fn a_repository_with_no_commits_yet() {
    let env = TestEnv::new();
    let repo = env.init_repo("unborn");
    let id = env.append(&repo, "note.added", "{}");
    assert_eq!(event_ids(&env, &repo), vec![id]);
    // The user's branch is untouched: still unborn.
    env.git(&repo, &["rev-parse", "--verify", "-q", "HEAD"])
        .code(1);
}

#[test]
fn a_bare_repository() {
    let env = TestEnv::new();
    env.git(env.path(), &["init", "-q", "--bare", "bare.git"])
        .success();
    let bare = env.path().join("bare.git");
    let id = env.append(&bare, "note.added", "{}");
    assert_eq!(event_ids(&env, &bare), vec![id]);
    env.spectra(&bare, &["verify"]).success();
}

#[test]
fn a_linked_worktree_shares_the_log() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("main-wt");
    env.git(&repo, &["worktree", "add", "-q", "../linked", "-b", "side"])
        .success();
    let linked = env.path().join("linked");
    let from_linked = env.append(&linked, "note.added", "{}");
    let from_main = env.append(&repo, "note.added", "{}");
    assert_eq!(
        event_ids(&env, &linked),
        vec![from_main.clone(), from_linked.clone()]
    );
    assert_eq!(event_ids(&env, &repo), vec![from_main, from_linked]);
}

#[test]
fn a_subdirectory_and_git_dash_c() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    std::fs::create_dir_all(repo.join("deep/er")).unwrap();
    let id = env.append(&repo.join("deep/er"), "note.added", "{}");
    // `git -C dir spectra` finds git-spectra on PATH and runs it in dir.
    let run = env
        .git(
            env.path(),
            &["-C", "r", "spectra", "log", "--format", "json"],
        )
        .success();
    assert_eq!(json_lines(&run.stdout)[0]["event"]["id"], id);
}

#[test]
fn git_dir_and_git_work_tree_from_the_environment() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let output = env
        .command(spectra_bin(), &elsewhere)
        .args(["append", "--kind", "note.added", "--payload", "{}"])
        .env("GIT_DIR", repo.join(".git"))
        .env("GIT_WORK_TREE", &repo)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let id = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert_eq!(event_ids(&env, &repo), vec![id]);
}

#[test]
fn outside_a_repository_fails_like_git() {
    let env = TestEnv::new();
    let outside = env.path().join("plain");
    std::fs::create_dir(&outside).unwrap();
    let output = env
        .command(spectra_bin(), &outside)
        .args(["log"])
        .env("GIT_CEILING_DIRECTORIES", env.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(128), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "fatal: not a git repository (or any of the parent directories): .git"
    );
}

#[test]
fn the_users_branch_and_index_are_never_touched() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let head_before = env.git(&repo, &["rev-parse", "HEAD"]).success().stdout;
    env.append(&repo, "note.added", "{}");
    assert_eq!(
        env.git(&repo, &["rev-parse", "HEAD"]).success().stdout,
        head_before
    );
    assert_eq!(
        env.git(&repo, &["status", "--porcelain"]).success().stdout,
        ""
    );
}
