//! The git hooks end to end: `git spectra hooks install|uninstall|status` in fresh repositories,
//! next to existing hooks, with `core.hooksPath` and in linked worktrees; what one commit
//! records; the hook staying out of the way (switched off, broken store, binary missing); and the
//! background runs a specification change starts.
//!
//! Commits are made with the real `git` and the real shim, which finds `git-spectra` on the
//! pinned `PATH`. Background runners are waited for with an exclusive `flock` on the hooks log,
//! which they hold shared until they finish: no sleeps.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv, json_lines, manifest_dir};
use crate::llm_server::{LlmServer, Reply};

/// Runs git in `dir` with extra environment variables on top of the pinned ones.
fn git_with_env(env: &TestEnv, dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut command = env.command("git", dir);
    command.args(args);
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command.output().expect("run git");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `content` to `path` in `dir`, stages everything and commits with `message`.
fn commit_file(env: &TestEnv, dir: &Path, path: &str, content: &str, message: &str) -> Run {
    write(dir, path, content);
    env.git(dir, &["add", "-A"]).success();
    env.git(dir, &["commit", "-q", "-m", message])
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("a parent")).expect("create dirs");
    std::fs::write(full, content).expect("write file");
}

fn head(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, &["rev-parse", "HEAD"])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// Records what the shim noted, in the foreground: what its background process does, done
/// here so a test never races it (commands that only read the log record nothing).
fn record_noted(env: &TestEnv, dir: &Path) {
    let head = env.git(dir, &["rev-parse", "HEAD"]).success().stdout;
    env.spectra(dir, &["hook", "record-noted", head.trim()])
        .success();
}

/// The `commit.observed` envelopes, newest first, once every noted commit is recorded.
fn observed(env: &TestEnv, dir: &Path) -> Vec<Value> {
    record_noted(env, dir);
    observed_so_far(env, dir)
}

/// The `commit.observed` envelopes the log holds now, newest first.
fn observed_so_far(env: &TestEnv, dir: &Path) -> Vec<Value> {
    let run = env
        .spectra(
            dir,
            &["log", "--kind", "commit.observed", "--format", "json"],
        )
        .success();
    json_lines(&run.stdout)
        .into_iter()
        .map(|line| line["event"].clone())
        .collect()
}

fn all_events(env: &TestEnv, dir: &Path) -> Vec<Value> {
    record_noted(env, dir);
    let run = env.spectra(dir, &["log", "--format", "json"]).success();
    json_lines(&run.stdout)
        .into_iter()
        .map(|line| line["event"].clone())
        .collect()
}

fn install(env: &TestEnv, dir: &Path) -> Run {
    env.spectra(dir, &["hooks", "install"]).success()
}

fn status_json(env: &TestEnv, dir: &Path) -> Value {
    let run = env
        .spectra(dir, &["hooks", "status", "--format", "json"])
        .success();
    serde_json::from_str(&run.stdout).expect("status is JSON")
}

fn shim() -> String {
    std::fs::read_to_string(manifest_dir().join("hooks/post-commit")).expect("read the shim")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn hooks_log(dir: &Path) -> PathBuf {
    dir.join(".git/spectra/hooks.log")
}

/// Blocks until every background runner the hooks started has finished.
fn wait_for_background_runs(log: &Path) {
    spectra::hook::trigger::wait_for_background_runs(log).expect("lock the hooks log");
}

/// A hook someone already had: it leaves a mark so we can see that it still runs.
const EXISTING_HOOK: &str = "#!/bin/sh\n# the team's own hook\necho \"existing hook ran\" >> \"$(git rev-parse --git-dir)/existing-hook.out\"\nexit 0\n";

#[test]
fn install_into_a_fresh_repository_and_record_one_commit() {
    let env = TestEnv::new();
    let dir = env.init_repo("repo");
    let run = install(&env, &dir);
    let hook = dir.join(".git/hooks/post-commit");
    assert!(
        run.stdout.contains("installed the post-commit hook"),
        "{run:?}"
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), shim());
    assert_eq!(mode(&hook), 0o755);

    let commit = commit_file(&env, &dir, "README", "hello\n", "first").success();
    assert_eq!(commit.stderr, "", "the hook is silent when all is well");

    let events = observed(&env, &dir);
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["kind"], "commit.observed");
    assert_eq!(event["run"], Value::Null);
    assert_eq!(
        event["payload"],
        json!({
            "commit": head(&env, &dir),
            "branch": "main",
            "author": "Ada Tester <ada@example.com>",
            "subject": "first",
            "spectra_files": [],
        })
    );
    env.spectra(&dir, &["verify"]).success();

    let status = status_json(&env, &dir);
    assert_eq!(status["hook"]["state"], "installed");
    assert_eq!(status["hook"]["executable"], true);
    assert_eq!(status["enabled"], true);
}

#[test]
fn the_payload_lists_the_spectra_files_a_commit_changed() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    write(
        &dir,
        ".spectra/logging.specification.yaml",
        "name: logging\n",
    );
    write(&dir, ".spectra/registry/activities/x.yaml", "name: x\n");
    write(&dir, "src/main.rs", "fn main() {}\n");
    env.git(&dir, &["add", "-A"]).success();
    env.git(&dir, &["commit", "-q", "-m", "add specs"])
        .success();

    std::fs::remove_file(dir.join(".spectra/registry/activities/x.yaml")).unwrap();
    write(
        &dir,
        ".spectra/logging.specification.yaml",
        "name: logging\nv: 2\n",
    );
    env.git(&dir, &["add", "-A"]).success();
    env.git(&dir, &["commit", "-q", "-m", "edit and delete"])
        .success();

    commit_file(&env, &dir, "src/main.rs", "fn main() { }\n", "code only").success();

    let files: Vec<Value> = observed(&env, &dir)
        .iter()
        .map(|event| event["payload"]["spectra_files"].clone())
        .collect();
    assert_eq!(
        files,
        vec![
            json!([]),
            json!([
                ".spectra/logging.specification.yaml",
                ".spectra/registry/activities/x.yaml"
            ]),
            json!([
                ".spectra/logging.specification.yaml",
                ".spectra/registry/activities/x.yaml"
            ]),
        ]
    );
}

#[test]
fn an_existing_hook_still_runs_and_uninstall_restores_it_byte_for_byte() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    let hook = dir.join(".git/hooks/post-commit");
    std::fs::write(&hook, EXISTING_HOOK).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o750)).unwrap();

    let run = install(&env, &dir);
    assert!(
        run.stdout.contains("added git spectra to the existing"),
        "{run:?}"
    );
    let installed = std::fs::read_to_string(&hook).unwrap();
    assert!(
        installed.starts_with("#!/bin/sh\n# >>> git spectra >>>"),
        "{installed}"
    );
    assert!(installed.ends_with(&EXISTING_HOOK["#!/bin/sh\n".len()..]));
    assert_eq!(mode(&hook), 0o750, "install keeps the hook's mode");
    assert_eq!(
        status_json(&env, &dir)["hook"]["state"],
        "installed_in_existing_hook"
    );

    commit_file(&env, &dir, "a", "1\n", "second").success();
    let mark = std::fs::read_to_string(dir.join(".git/existing-hook.out")).unwrap();
    assert_eq!(mark, "existing hook ran\n");
    assert_eq!(observed(&env, &dir).len(), 1);

    let run = env.spectra(&dir, &["hooks", "uninstall"]).success();
    assert!(
        run.stdout.contains("removed the git spectra block"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&hook).unwrap(), EXISTING_HOOK.as_bytes());
    assert_eq!(mode(&hook), 0o750);
    let run = env.spectra(&dir, &["hooks", "uninstall"]).success();
    assert!(run.stdout.contains("not installed"), "{run:?}");
}

#[test]
fn installing_twice_changes_nothing() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    let hook = dir.join(".git/hooks/post-commit");
    std::fs::write(&hook, EXISTING_HOOK).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    install(&env, &dir);
    let before = std::fs::read(&hook).unwrap();
    let modified = std::fs::metadata(&hook).unwrap().modified().unwrap();

    let run = install(&env, &dir);
    assert!(run.stdout.contains("already installed"), "{run:?}");
    assert_eq!(std::fs::read(&hook).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&hook).unwrap().modified().unwrap(),
        modified
    );

    commit_file(&env, &dir, "a", "1\n", "once").success();
    assert_eq!(observed(&env, &dir).len(), 1, "one block, one event");
}

#[test]
fn a_fresh_install_is_removed_completely() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    let run = env.spectra(&dir, &["hooks", "uninstall"]).success();
    assert!(
        run.stdout.contains("removed the post-commit hook"),
        "{run:?}"
    );
    assert!(!dir.join(".git/hooks/post-commit").exists());
    assert_eq!(status_json(&env, &dir)["hook"]["state"], "missing");
    commit_file(&env, &dir, "a", "1\n", "not recorded").success();
    assert!(observed(&env, &dir).is_empty());
}

#[test]
fn core_hooks_path_is_where_the_hook_goes() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    // A hooks directory checked into the repository, as pre-commit-style setups share them.
    env.git(&dir, &["config", "core.hooksPath", ".githooks"])
        .success();
    let hook = dir.join(".githooks/post-commit");
    write(&dir, ".githooks/post-commit", EXISTING_HOOK);
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run = install(&env, &dir);
    assert!(run.stdout.contains(".githooks/post-commit"), "{run:?}");
    assert!(run.stdout.contains("core.hooksPath"), "{run:?}");
    assert!(!dir.join(".git/hooks/post-commit").exists());
    let status = status_json(&env, &dir);
    assert!(
        status["hooks_dir"]
            .as_str()
            .unwrap()
            .ends_with("/.githooks"),
        "{status}"
    );
    assert_eq!(status["core_hooks_path"], ".githooks");

    commit_file(&env, &dir, "a", "1\n", "through hooksPath").success();
    assert_eq!(observed(&env, &dir).len(), 1);
    assert!(dir.join(".git/existing-hook.out").exists());

    env.spectra(&dir, &["hooks", "uninstall"]).success();
    assert_eq!(std::fs::read(&hook).unwrap(), EXISTING_HOOK.as_bytes());
}

#[test]
fn a_husky_hooks_directory_gets_the_hook_and_a_note() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    // husky 9 points core.hooksPath at .husky/_, which it generates.
    std::fs::create_dir_all(dir.join(".husky/_")).unwrap();
    env.git(&dir, &["config", "core.hooksPath", ".husky/_"])
        .success();

    let run = install(&env, &dir);
    assert!(run.stdout.contains("husky rewrites .husky/_"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join(".husky/_/post-commit")).unwrap(),
        shim()
    );
    commit_file(&env, &dir, "a", "1\n", "with husky").success();
    assert_eq!(observed(&env, &dir).len(), 1);
}

#[test]
fn a_linked_worktree_shares_the_hook_and_the_log() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    env.git(&dir, &["worktree", "add", "-q", "-b", "topic", "../wt"])
        .success();
    let worktree = env.path().join("wt");

    let run = install(&env, &worktree);
    assert!(
        run.stdout.contains("repo/.git/hooks/post-commit"),
        "hooks live in the common git dir: {run:?}"
    );
    commit_file(&env, &worktree, "b", "2\n", "in the worktree").success();
    commit_file(&env, &dir, "c", "3\n", "in the main checkout").success();

    let events = observed(&env, &dir);
    let branches: Vec<&Value> = events.iter().map(|e| &e["payload"]["branch"]).collect();
    assert_eq!(branches, vec!["main", "topic"]);
    assert_eq!(events[1]["payload"]["commit"], head(&env, &worktree));
    assert_eq!(
        observed(&env, &worktree).len(),
        2,
        "one log for all worktrees"
    );
}

#[test]
fn a_rebase_records_each_replayed_commit() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    env.git(&dir, &["checkout", "-q", "-b", "topic"]).success();
    commit_file(&env, &dir, "t1", "1\n", "topic one").success();
    commit_file(&env, &dir, "t2", "2\n", "topic two").success();
    env.git(&dir, &["checkout", "-q", "main"]).success();
    commit_file(&env, &dir, "m", "m\n", "main moves").success();
    env.git(&dir, &["checkout", "-q", "topic"]).success();

    env.git(&dir, &["rebase", "-q", "main"]).success();

    let events = observed(&env, &dir);
    assert_eq!(events.len(), 5, "three commits, then two replayed");
    let replayed = env
        .git(&dir, &["rev-list", "--reverse", "main..topic"])
        .success()
        .stdout;
    let replayed: Vec<&str> = replayed.lines().collect();
    let recorded: Vec<(&str, &str, &str)> = events[..2]
        .iter()
        .rev()
        .map(|e| {
            (
                e["payload"]["commit"].as_str().unwrap(),
                e["payload"]["branch"].as_str().unwrap(),
                e["payload"]["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        vec![
            (replayed[0], "topic", "topic one"),
            (replayed[1], "topic", "topic two")
        ]
    );
}

#[test]
fn a_commit_made_by_the_tool_is_not_recorded_twice() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    write(&dir, "generated.md", "by a run\n");
    env.git(&dir, &["add", "-A"]).success();
    env.git(
        &dir,
        &[
            "commit",
            "-q",
            "-m",
            "build: write generated.md",
            "-m",
            "Spectra-Run: 01a213f7-ffe0-7a11-8e0c-3d1b2f1c0a77\nSpectra-Activity: build",
        ],
    )
    .success();
    assert!(observed(&env, &dir).is_empty());

    // A user commit that mentions the trailer in its body is still the user's.
    env.git(
        &dir,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "notes",
            "-m",
            "Spectra-Run: mentioned here",
            "-m",
            "Signed-off-by: Ada Tester <ada@example.com>",
        ],
    )
    .success();
    assert_eq!(observed(&env, &dir).len(), 1);
}

#[test]
fn switched_off_by_environment_or_config_records_nothing() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);

    write(&dir, "a", "1\n");
    env.git(&dir, &["add", "a"]).success();
    let run = git_with_env(
        &env,
        &dir,
        &["commit", "-q", "-m", "off"],
        &[("SPECTRA_HOOKS", "0")],
    )
    .success();
    assert_eq!(run.stderr, "");
    assert!(observed(&env, &dir).is_empty());

    env.git(&dir, &["config", "spectra.hooks.enabled", "false"])
        .success();
    commit_file(&env, &dir, "a", "2\n", "off by config").success();
    assert!(observed(&env, &dir).is_empty());
    let status = status_json(&env, &dir);
    assert_eq!(status["enabled"], false);
    assert_eq!(status["disabled_by"], "spectra.hooks.enabled");

    git_with_env(
        &env,
        &dir,
        &[
            "-c",
            "spectra.hooks.enabled=true",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "on again",
        ],
        &[],
    )
    .success();
    assert_eq!(observed(&env, &dir).len(), 1, "git -c overrides the config");
}

/// The one line a hook may print when it could not record, and the commit it did not stop.
#[track_caller]
fn assert_one_warning(run: &Run, about: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{run:#?}");
    assert!(lines[0].starts_with("warning: git spectra: "), "{run:#?}");
    assert!(lines[0].contains(about), "{run:#?}");
}

#[test]
fn a_broken_store_does_not_stop_the_commit() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    // The log's ref points at an ordinary commit, not an event.
    env.git(&dir, &["update-ref", "refs/spectra/events", "HEAD"])
        .success();

    let before = head(&env, &dir);
    let run = commit_file(&env, &dir, "a", "1\n", "still commits").success();
    assert_one_warning(&run, "commit not recorded");
    assert_ne!(head(&env, &dir), before, "the commit happened");
    let log = std::fs::read_to_string(hooks_log(&dir)).unwrap();
    assert!(log.contains("warning: commit not recorded"), "{log}");
}

#[test]
fn a_stale_lock_on_the_log_costs_the_commit_at_most_a_moment() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    commit_file(&env, &dir, "a", "1\n", "recorded").success();
    // A writer that died holding git's ref lock.
    std::fs::write(dir.join(".git/refs/spectra/events.lock"), "").unwrap();

    let started = std::time::Instant::now();
    let run = commit_file(&env, &dir, "a", "2\n", "not recorded").success();
    assert_one_warning(&run, "commit not recorded");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the hook gives up quickly, not after the store's 60 s"
    );
}

#[test]
fn a_missing_binary_is_one_warning() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    write(&dir, "a", "1\n");
    env.git(&dir, &["add", "a"]).success();
    let run = git_with_env(
        &env,
        &dir,
        &["commit", "-q", "-m", "no binary"],
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    )
    .success();
    assert_one_warning(&run, "git-spectra is not on PATH");
}

#[test]
fn a_hook_in_another_language_is_left_alone() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    let hook = dir.join(".git/hooks/post-commit");
    let python = "#!/usr/bin/env python3\nprint('hi')\n";
    std::fs::write(&hook, python).unwrap();
    let run = env.spectra(&dir, &["hooks", "install"]).code(1);
    assert!(run.stderr.contains("python3"), "{run:?}");
    assert!(run.stderr.contains("hint: add the line"), "{run:?}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), python);
}

#[test]
fn a_spec_change_starts_the_configured_activities_in_the_background() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    // Activities that do not exist fail at once: the mechanism is under test, not discover.
    env.git(
        &dir,
        &[
            "config",
            "spectra.hooks.onSpecChange",
            "no-such-activity, never-started",
        ],
    )
    .success();

    commit_file(&env, &dir, "README", "changed\n", "not a spec").success();
    assert!(!hooks_log(&dir).exists(), "no specification, no runner");

    let run = commit_file(
        &env,
        &dir,
        ".spectra/logging.specification.yaml",
        "name: logging\n",
        "spec",
    )
    .success();
    assert_eq!(run.stderr, "");
    let short = &head(&env, &dir)[..7];
    wait_for_background_runs(&hooks_log(&dir));

    let log = std::fs::read_to_string(hooks_log(&dir)).unwrap();
    let expected_start = format!(
        "starting: git spectra no-such-activity --service logging --update \"specification .spectra/logging.specification.yaml changed in {short}\""
    );
    assert!(log.contains(&expected_start), "{log}");
    assert!(
        log.contains("unrecognized subcommand 'no-such-activity'"),
        "the activity's own output lands in the log: {log}"
    );
    assert!(
        log.contains("git spectra no-such-activity exited with 2"),
        "{log}"
    );
    assert!(
        !log.contains("starting: git spectra never-started"),
        "a failed activity stops the ones after it: {log}"
    );
    assert_eq!(observed(&env, &dir).len(), 2);

    // Deleting the specification starts nothing.
    let lines_before = log.lines().count();
    std::fs::remove_file(dir.join(".spectra/logging.specification.yaml")).unwrap();
    env.git(&dir, &["add", "-A"]).success();
    env.git(&dir, &["commit", "-q", "-m", "drop spec"])
        .success();
    wait_for_background_runs(&hooks_log(&dir));
    let log = std::fs::read_to_string(hooks_log(&dir)).unwrap();
    assert_eq!(log.lines().count(), lines_before, "{log}");
}

/// A decision that satisfies discover's schema and quality gates.
fn discover_decision() -> Value {
    json!({
        "service_name": "logging",
        "problem": {"statement": "logs are scattered", "impact": "slow incident response",
                    "root_cause": "no shipping", "who_has_it": ["on-call"]},
        "current_state": {"what_exists": ["files on hosts"], "pain_points": ["grep on ten hosts"],
                          "gaps": ["no search"], "blockers": []},
        "desired_state": {"vision": "one place for logs", "success_criteria": ["search in 5 s"],
                          "goals": ["ship logs"]},
        "stakeholders": {"users": ["on-call"], "decision_makers": ["platform lead"],
                         "beneficiaries": ["customers"]},
        "constraints": {"technical": ["runs on k8s"], "business": [], "time": [], "budget": [],
                        "compliance": []},
        "requirements": {"functional": ["ship logs"], "non_functional": ["99.9%"]},
        "risks": {"technical": ["volume"], "business": [], "implementation": []},
        "alternatives": {"other_options": ["SaaS"], "why_this_solution": "cost"},
        "idea": {"name": "log shipper", "type": "new_service", "priority": "high"},
        "validation": {"problem_solved": true, "reasoning": "central search", "confidence": 80,
                       "assumptions": []},
        "recommended_tools": [],
        "next_steps": ["plan"],
        "playbooks": [],
    })
}

#[test]
fn a_spec_change_with_on_spec_change_discover_runs_discover_against_the_llm() {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat_json(&discover_decision()));
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    env.git(&dir, &["config", "spectra.hooks.onSpecChange", "discover"])
        .success();
    env.git(&dir, &["config", "spectra.llm.url", &server.base_url()])
        .success();

    write(
        &dir,
        ".spectra/logging.specification.yaml",
        "name: logging\n",
    );
    env.git(&dir, &["add", "-A"]).success();
    let run = git_with_env(
        &env,
        &dir,
        &["commit", "-q", "-m", "spec for logging"],
        &[("SPECTRA_LLM_URL", &server.url())],
    )
    .success();
    assert_eq!(run.stderr, "");
    wait_for_background_runs(&hooks_log(&dir));

    let log = std::fs::read_to_string(hooks_log(&dir)).unwrap();
    assert!(log.contains("git spectra discover exited with 0"), "{log}");
    let events = all_events(&env, &dir);
    let started = events
        .iter()
        .find(|e| e["kind"] == "run.started")
        .unwrap_or_else(|| panic!("a discover run in the log: {events:#?}\n{log}"));
    assert_eq!(started["payload"]["command"], "discover");
    assert_eq!(started["service"], "logging");
    assert!(
        started["payload"]["input"]
            .as_str()
            .unwrap()
            .contains(".spectra/logging.specification.yaml changed in"),
        "{started}"
    );
    assert!(events.iter().any(|e| e["kind"] == "run.finished"));
    assert!(!server.chat_requests().is_empty());
}

/// A `PATH` whose `git-spectra` does everything the real one does except the shim's background
/// recording: what a commit leaves behind when that process never got to run. Its `where-am-i`
/// "activity" prints where it was started.
pub(crate) fn path_without_background_recording(env: &TestEnv) -> String {
    let bin = env.path().join("no-background-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("git-spectra");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = hook ] && [ \"$2\" = record-noted ]; then exit 0; fi\n\
             if [ \"$1\" = where-am-i ]; then echo \"where-am-i: $PWD ${{GIT_DIR-}}\"; exit 0; fi\n\
             exec '{}' \"$@\"\n",
            crate::common::spectra_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pinned = crate::common::pinned_env(&env.home());
    let path = &pinned.iter().find(|(key, _)| key == "PATH").unwrap().1;
    format!("{}:{path}", bin.display())
}

pub(crate) fn commit_with_path(
    env: &TestEnv,
    dir: &Path,
    path: &str,
    file: &str,
    message: &str,
) -> Run {
    write(dir, file, &format!("{message}\n"));
    env.git(dir, &["add", "-A"]).success();
    git_with_env(
        env,
        dir,
        &["commit", "-q", "-m", message],
        &[("PATH", path)],
    )
}

/// The commits the shim noted and nothing recorded yet, by file name.
pub(crate) fn notes(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(".git/spectra/pending"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".lock")
        .collect();
    names.sort();
    names
}

#[test]
fn noted_commits_are_recorded_in_order_by_the_next_command() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    let path = path_without_background_recording(&env);
    let mut commits = Vec::new();
    for n in 1..=3 {
        let run = commit_with_path(&env, &dir, &path, &format!("f{n}"), &format!("commit {n}"));
        assert_eq!(run.success().stderr, "");
        commits.push(head(&env, &dir));
    }
    // The shim only noted them: the log is untouched until a command records them.
    let mut noted = commits.clone();
    noted.sort();
    assert_eq!(notes(&dir), noted);
    let note = std::fs::read_to_string(dir.join(".git/spectra/pending").join(&commits[0])).unwrap();
    let root = dir.canonicalize().unwrap();
    assert_eq!(
        note,
        format!(
            "refs/heads/main\n{}\n{}/.git\n",
            root.display(),
            root.display()
        )
    );
    assert!(
        env.git(
            &dir,
            &["rev-parse", "-q", "--verify", "refs/spectra/events"]
        )
        .stdout
        .is_empty()
    );

    // Reading the log records nothing; the next command that writes it records them first.
    assert!(observed_so_far(&env, &dir).is_empty());
    assert_eq!(notes(&dir).len(), 3);
    env.append(&dir, "note.added", "{}");
    let events = observed(&env, &dir);
    let recorded: Vec<&str> = events
        .iter()
        .rev()
        .map(|e| e["payload"]["commit"].as_str().unwrap())
        .collect();
    assert_eq!(recorded, commits, "one event per commit, oldest first");
    assert!(events.iter().all(|e| e["payload"]["branch"] == "main"));
    assert!(notes(&dir).is_empty(), "recorded notes are removed");
    env.spectra(&dir, &["verify"]).success();
}

#[test]
fn a_note_for_a_commit_already_recorded_is_not_recorded_again() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    commit_file(&env, &dir, "a", "1\n", "recorded once").success();
    assert_eq!(observed(&env, &dir).len(), 1);
    // What a recorder that died between appending and removing its note leaves behind.
    let commit = head(&env, &dir);
    std::fs::write(
        dir.join(".git/spectra/pending").join(&commit),
        "refs/heads/main\n",
    )
    .unwrap();

    env.append(&dir, "note.added", "{}");
    let events = observed(&env, &dir);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(notes(&dir).is_empty());
}

#[test]
fn without_the_notes_directory_the_hook_records_before_the_commit_returns() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    std::fs::remove_dir_all(dir.join(".git/spectra/pending")).unwrap();
    let path = path_without_background_recording(&env);

    commit_with_path(&env, &dir, &path, "a", "in the foreground").success();
    // Plain git, so no git spectra command records anything first.
    let count = env
        .git(&dir, &["rev-list", "--count", "refs/spectra/events"])
        .success();
    assert_eq!(count.stdout.trim(), "1");
    assert!(
        dir.join(".git/spectra/pending").is_dir(),
        "the next commit is noted again"
    );
    commit_with_path(&env, &dir, &path, "b", "noted").success();
    assert_eq!(notes(&dir).len(), 1);
    env.append(&dir, "note.added", "{}");
    assert_eq!(observed(&env, &dir).len(), 2);
}

#[test]
fn a_commit_with_the_hooks_off_for_itself_leaves_other_notes_alone() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    let path = path_without_background_recording(&env);
    commit_with_path(&env, &dir, &path, "a", "noted, not yet recorded").success();
    let noted = head(&env, &dir);

    write(&dir, "b", "b\n");
    env.git(&dir, &["add", "b"]).success();
    git_with_env(
        &env,
        &dir,
        &[
            "-c",
            "spectra.hooks.enabled=false",
            "commit",
            "-q",
            "-m",
            "off for this one",
        ],
        &[],
    )
    .success();
    assert_eq!(
        notes(&dir),
        vec![noted.clone()],
        "only its own note is gone"
    );
    for off in ["off", "false", "NO"] {
        commit_file(&env, &dir, "c", off, off).success();
    }
    git_with_env(
        &env,
        &dir,
        &["commit", "-q", "--allow-empty", "-m", "env off"],
        &[("SPECTRA_HOOKS", "off")],
    )
    .success();

    let events = observed(&env, &dir);
    let recorded: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(recorded, ["NO", "false", "off", "noted, not yet recorded"]);
}

#[test]
fn a_commit_recorded_from_another_worktree_triggers_in_its_own() {
    let env = TestEnv::new();
    let dir = env.repo_with_commit("repo");
    install(&env, &dir);
    env.git(
        &dir,
        &["config", "spectra.hooks.onSpecChange", "where-am-i"],
    )
    .success();
    env.git(&dir, &["worktree", "add", "-q", "-b", "topic", "../wt"])
        .success();
    let worktree = env.path().join("wt");
    let path = path_without_background_recording(&env);
    commit_with_path(
        &env,
        &worktree,
        &path,
        ".spectra/logging.specification.yaml",
        "spec in the worktree",
    )
    .success();

    // A command in the main checkout that writes the log records the note and starts the
    // trigger.
    let mut append = env.command(crate::common::spectra_bin(), &dir);
    append
        .args(["append", "--kind", "note.added", "--payload", "{}"])
        .env("PATH", &path);
    assert!(append.output().unwrap().status.success());
    wait_for_background_runs(&hooks_log(&dir));

    let hooks = std::fs::read_to_string(hooks_log(&dir)).unwrap();
    let root = worktree.canonicalize().unwrap();
    let git_dir = dir.canonicalize().unwrap().join(".git/worktrees/wt");
    assert!(
        hooks.contains(&format!(
            "where-am-i: {} {}",
            root.display(),
            git_dir.display()
        )),
        "{hooks}"
    );
}
