//! Smaller defences around a run, end to end, each test named after the failure it guards
//! against (and the item of issue 16 that reported it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Run, TestRepo, json_lines, manifest_dir, spectra_bin};

/// How long a command that must not hang may take before the test gives up on it.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// Runs `git-spectra args...` in `repo`, failing (not hanging) when it does not return within
/// [`HANG_LIMIT`]; the process is then killed.
fn spectra_within_limit(repo: &TestRepo, args: &[&str]) -> Run {
    let child = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git-spectra");
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(HANG_LIMIT) {
        Ok(output) => Run::from_output(output.expect("wait for git-spectra")),
        Err(_) => {
            kill(pid);
            panic!("git-spectra {args:?} did not return within {HANG_LIMIT:?}");
        }
    }
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// A process a playbook started outside its process group, killed when the test ends however
/// it ends. The playbook writes its pid to `pidfile`.
struct Escaped {
    pidfile: PathBuf,
}

impl Drop for Escaped {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            kill(pid);
        }
    }
}

/// Overrides `repo.inventory` (which an offline discover runs first) with `script`, run by
/// `sh -c`, and `timeout` seconds.
fn override_inventory(repo: &TestRepo, script: &str, timeout: u32) {
    let builtin =
        std::fs::read_to_string(manifest_dir().join("registry/playbooks/repo.inventory.yaml"))
            .expect("read the built-in inventory playbook");
    let run_line = r#"run: ["{spectra}", builtin, inventory]"#;
    assert!(builtin.contains(run_line) && builtin.contains("timeout: 60"));
    let changed = builtin
        .replace(
            run_line,
            &format!("run: [sh, -c, {}]", serde_json::to_string(script).unwrap()),
        )
        .replace("timeout: 60", &format!("timeout: {timeout}"));
    repo.write(".spectra/registry/playbooks/inventory.yaml", &changed);
}

/// The `playbook.finished` payload of `repo.inventory`.
fn inventory_finished(repo: &TestRepo) -> Value {
    repo.env
        .events(repo.root(), "playbook.finished")
        .into_iter()
        .map(|event| event["payload"].clone())
        .find(|payload| payload["playbook"] == "repo.inventory")
        .expect("repo.inventory finished")
}

/// A sleeper that leaves the process group with `setsid`, holding the playbook's stdout.
fn escaping_sleeper(pidfile: &Path) -> String {
    format!("setsid sleep 1000 & echo $! > '{}'", pidfile.display())
}

/// The timeout of the playbook that times out: the test waits all of it, and before it the
/// playbook must start its sleeper and write its line, which a loaded machine can take a while
/// to get to.
const PLAYBOOK_TIMEOUT_S: u32 = 5;

/// Issue 16, item 10: the timeout holds although a grandchild escaped the group with the pipes.
#[test]
fn a_timed_out_playbook_returns_although_an_escaped_grandchild_holds_its_output() {
    let repo = TestRepo::new();
    let escaped = Escaped {
        pidfile: repo.env.path().join("escaped.pid"),
    };
    override_inventory(
        &repo,
        &format!(
            "{}; echo before the deadline; wait",
            escaping_sleeper(&escaped.pidfile)
        ),
        PLAYBOOK_TIMEOUT_S,
    );

    spectra_within_limit(&repo, &["discover", "--offline", "A logging service"]);

    let finished = inventory_finished(&repo);
    assert_eq!(finished["outcome"], "timed_out", "{finished:#}");
    assert_eq!(finished["signal"], 9, "{finished:#}");
    // What was written before the deadline is kept.
    assert_eq!(
        finished["stdout"]["total_bytes"],
        "before the deadline\n".len(),
        "{finished:#}"
    );
    // Back soon after the deadline, not when the sleeper lets go of the pipe (1000 s).
    let returned_by_ms = u64::from(PLAYBOOK_TIMEOUT_S + 5) * 1000;
    assert!(
        finished["duration_ms"].as_u64().unwrap() < returned_by_ms,
        "{finished:#}"
    );
    assert!(
        std::fs::metadata(&escaped.pidfile).is_ok(),
        "the sleeper never started, so nothing was tested"
    );
}

/// Issue 16, item 10: a leader that exits while an escaped grandchild keeps stdout open.
#[test]
fn a_finished_playbook_returns_although_an_escaped_grandchild_holds_its_output() {
    let repo = TestRepo::new();
    let escaped = Escaped {
        pidfile: repo.env.path().join("escaped.pid"),
    };
    override_inventory(
        &repo,
        // `{{}}` is a literal `{}` in an argv template: an empty JSON object.
        &format!("{}; echo '{{{{}}}}'", escaping_sleeper(&escaped.pidfile)),
        600,
    );

    spectra_within_limit(&repo, &["discover", "--offline", "A logging service"]).success();

    let finished = inventory_finished(&repo);
    assert_eq!(finished["outcome"], "succeeded", "{finished:#}");
    assert_eq!(finished["stdout"]["total_bytes"], 3, "{finished:#}");
    assert!(
        std::fs::metadata(&escaped.pidfile).is_ok(),
        "the sleeper never started, so nothing was tested"
    );
}

const NULL_KEY_ACTIVITY: &str = "\
name: extra
order: 50
description: Has a description that YAML splits into keys.
prompts: {system: s, user: u}
decision:
  type: object
  properties:
    ok: {type: boolean, description: Whether it is, built, done.}
token_budget: 10
";

/// Issue 16, list: a schema holding a null-valued key is refused, with file, line and path.
#[test]
fn a_decision_schema_with_a_null_valued_key_is_refused_with_its_place() {
    let repo = TestRepo::new();
    repo.write(".spectra/registry/activities/extra.yaml", NULL_KEY_ACTIVITY);

    let run = repo.spectra(&["registry", "validate"]).code(1);
    assert!(
        run.stdout.lines().any(|line| line.starts_with(
            ".spectra/registry/activities/extra.yaml:8:53: `decision` holds null at `/properties/ok/built`"
        )),
        "{run:#?}"
    );
    assert!(
        run.stdout
            .contains("`decision` holds null at `/properties/ok/done.`"),
        "{run:#?}"
    );

    let run = repo
        .spectra(&["registry", "validate", "--format", "json"])
        .code(1);
    let problems = json_lines(&run.stdout);
    assert_eq!(
        problems[0]["file"],
        ".spectra/registry/activities/extra.yaml"
    );
    assert_eq!(problems[0]["position"], json!({"line": 8, "column": 53}));

    // Nothing that would send the schema to a model runs.
    let run = repo
        .spectra(&["run", "-a", "extra", "--offline", "anything"])
        .code(1);
    assert!(run.stderr.contains("holds null"), "{run:#?}");
}

/// Issue 16, list: the built-in discover schema sends the model a description, not null keys.
#[test]
fn the_builtin_schemas_send_the_model_their_descriptions_whole() {
    let repo = TestRepo::new();
    repo.spectra(&["registry", "validate"]).success();
    for (activity, pointer, description) in [
        (
            "discover",
            "/properties/validation/properties/problem_solved",
            "Whether the idea, built, solves the problem.",
        ),
        (
            "provision",
            "/properties/infrastructure/properties/secrets",
            "Names of the secrets needed, never their values.",
        ),
    ] {
        let run = repo
            .spectra(&["registry", "show", activity, "--format", "json"])
            .success();
        let shown: Value = serde_json::from_str(&run.stdout).unwrap();
        let schema = &shown["decision_schema"].pointer(pointer).unwrap();
        assert_eq!(schema["description"], description, "{schema:#}");
        assert!(
            schema.as_object().unwrap().values().all(|v| !v.is_null()),
            "{schema:#}"
        );
    }
}

/// Issue 16, list: the message for a too-short id closes every quote it opens.
#[test]
fn a_too_short_event_id_is_bad_input_with_a_whole_message() {
    let repo = TestRepo::new();
    let run = repo.spectra(&["show", "abc"]).code(2);
    assert_eq!(
        run.stderr.lines().next(),
        Some("error: `abc` is too short to name an event: give at least 4 characters of the id"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("hint: "), "{run:#?}");
}

/// Issue 16, list: the retry hint repeats `--service` and the other flags given.
#[test]
fn the_retry_hint_repeats_the_service_and_every_flag_given() {
    let repo = TestRepo::new();
    // Offline, the test activity runs the project's tests; there are none, so the run fails
    // and says how to retry.
    let run = repo
        .spectra(&[
            "run",
            "Run the tests",
            "-a",
            "test",
            "--service",
            "billing",
            "--offline",
        ])
        .code(1);
    assert!(
        run.stderr.contains(
            "retry with `git spectra run 'Run the tests' -a test --service billing --offline`"
        ),
        "{run:#?}"
    );
}

fn install_pre_commit(repo: &TestRepo, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let hook = repo.root().join(".git/hooks/pre-commit");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The reasons the discover of `repo` recorded for its failures.
fn recorded_errors(repo: &TestRepo) -> String {
    repo.env
        .events(repo.root(), "activity.finished")
        .iter()
        .map(|event| event["payload"]["errors"].to_string())
        .collect()
}

/// Issue 16, list: a refusing `pre-commit` hook's own words are the failure reason. (git sends
/// a hook's stdout to its stderr, so this held already; it guards the stdout case.)
#[test]
fn a_refusing_pre_commit_hook_is_named_in_the_failure_reason() {
    let repo = TestRepo::new();
    install_pre_commit(
        &repo,
        "echo 'pre-commit: specifications need a reviewer'\nexit 1\n",
    );
    let run = repo
        .spectra(&[
            "discover",
            "--offline",
            "--service",
            "logging",
            "A logging service",
        ])
        .code(1);
    assert!(
        run.stderr
            .contains("pre-commit: specifications need a reviewer"),
        "{run:#?}"
    );
    assert!(
        recorded_errors(&repo).contains("pre-commit: specifications need a reviewer"),
        "{}",
        recorded_errors(&repo)
    );
    assert!(
        run.stderr.contains(
            "retry with `git spectra discover 'A logging service' --service logging --offline`"
        ),
        "{run:#?}"
    );
}

/// Issue 16, list: a hook that refuses without a word still gives a reason.
#[test]
fn a_silent_refusing_pre_commit_hook_still_gives_a_reason() {
    let repo = TestRepo::new();
    install_pre_commit(&repo, "exit 1\n");
    let run = repo
        .spectra(&["discover", "--offline", "A logging service"])
        .code(1);
    let reason = "git exited with status 1 and printed nothing";
    assert!(run.stderr.contains(reason), "{run:#?}");
    assert!(
        recorded_errors(&repo).contains(reason),
        "{}",
        recorded_errors(&repo)
    );
}

/// Issue 16, list: git's "nothing to commit" goes to stdout, and is the reason all the same.
#[test]
fn a_commit_git_refuses_on_stdout_gives_that_reason() {
    let repo = TestRepo::new();
    let worktree = spectra::worktree::Worktree::new(repo.root());
    let error = worktree
        .commit_paths(&["README".to_string()], "nothing changed")
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with("nothing to commit, working tree clean"),
        "{error}"
    );
}
