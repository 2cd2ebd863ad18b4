//! Behaving like a native git command: the man page, completions, configuration precedence,
//! `status`, colour and closed pipes, each checked through the real binary.
//!
//! Lists of subcommands come from the clap definition itself, so a subcommand added later is
//! checked without touching these tests.

use std::process::Stdio;

use spectra::registry::Registry;

use crate::common::{Run, TestEnv, TestRepo, spectra_bin};

/// The subcommands a user can see (hidden plumbing such as `hook` and `builtin` is left out),
/// with the activity commands of the built-in registry.
fn visible_subcommands() -> Vec<String> {
    spectra::cli::command_for(&Registry::builtin().unwrap())
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_string())
        .collect()
}

fn parse_json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|err| panic!("{err}: not one JSON object:\n{run:#?}"))
}

#[test]
fn the_man_page_builds_and_names_every_subcommand() {
    let repo = TestRepo::new();
    let page = repo.spectra(&["man"]).success().stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "not roff:\n{page}"
    );
    let subcommands = visible_subcommands();
    assert!(subcommands.len() > 10, "{subcommands:?}");
    for name in &subcommands {
        assert!(
            page.contains(&format!("git\\-spectra\\-{}", name.replace('-', "\\-"))),
            "the man page does not name `{name}`"
        );
    }
}

#[test]
fn man_dir_writes_a_page_for_every_subcommand() {
    let repo = TestRepo::new();
    let dir = repo.root().join("share/man/man1");
    let dir_arg = dir.display().to_string();
    repo.spectra(&["man", "--dir", &dir_arg]).success();
    assert!(dir.join("git-spectra.1").is_file());
    for name in visible_subcommands() {
        assert!(
            dir.join(format!("git-spectra-{name}.1")).is_file(),
            "{name}"
        );
    }
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = repo.spectra(&["completions", shell]).success().stdout;
        assert!(script.contains("git-spectra"), "{shell}");
        for name in visible_subcommands() {
            assert!(script.contains(&name), "{shell} script lacks `{name}`");
        }
    }
    let bash = repo.spectra(&["completions", "bash"]).success().stdout;
    assert!(
        bash.contains("_git_spectra()"),
        "no shim for git's completion"
    );
}

/// Completes `line` in a real bash with the generated script loaded (and git's own completion
/// when the machine has it) and returns the candidates.
fn complete_in_bash(env: &TestEnv, dir: &std::path::Path, script: &str, line: &str) -> String {
    let program = r#"
git_completion=/usr/share/bash-completion/completions/git
source "$SCRIPT"
COMP_LINE="$LINE"
read -ra COMP_WORDS <<<"$LINE"
[[ "$LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_POINT=${#COMP_LINE}
if [[ ${COMP_WORDS[0]} == git ]]; then
    [[ -f $git_completion ]] || { echo "no-git-completion"; exit 0; }
    source "$git_completion"
    __git_wrap__git_main
else
    _gitspectra git-spectra "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
fi
echo "${COMPREPLY[*]}"
"#;
    let path = dir.join("completion.bash");
    std::fs::write(&path, script).unwrap();
    let output = env
        .command("bash", dir)
        .args(["--norc", "-c", program])
        .env("SCRIPT", &path)
        .env("LINE", line)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn bash_completes_git_spectra_and_the_git_subcommand() {
    let repo = TestRepo::new();
    let script = repo.spectra(&["completions", "bash"]).success().stdout;
    let env = &repo.env;
    let direct = complete_in_bash(env, repo.root(), &script, "git-spectra log --for");
    assert_eq!(direct, "--format");
    let through_git = complete_in_bash(env, repo.root(), &script, "git spectra stat");
    if through_git != "no-git-completion" {
        assert_eq!(through_git, "stats status");
        let nested = complete_in_bash(env, repo.root(), &script, "git -C . spectra hooks ins");
        assert_eq!(nested, "install");
    }
}

#[test]
fn git_dash_c_sets_the_model_that_status_reports() {
    let repo = TestRepo::new();
    let run = repo.env.git(
        repo.root(),
        &[
            "-c",
            "spectra.llm.model=x",
            "spectra",
            "status",
            "--offline",
            "--format",
            "json",
        ],
    );
    let status = parse_json(&run.success());
    assert_eq!(status["llm"]["model"], "x");
    assert_eq!(
        status["llm"]["model_source"],
        "git config spectra.llm.model"
    );
}

#[test]
fn the_environment_beats_git_config_and_a_flag_beats_the_environment() {
    let repo = TestRepo::new();
    repo.git(&["config", "spectra.llm.model", "from-config"]);
    let output = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(["status", "--offline", "--format", "json"])
        .env("SPECTRA_LLM_MODEL", "from-env")
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["llm"]["model"], "from-env");
    assert_eq!(status["llm"]["model_source"], "env SPECTRA_LLM_MODEL");

    // `doctor --model` is the flag; the endpoint (port 9) refuses, which is beside the point.
    let output = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(["doctor", "--model", "from-flag", "--format", "json"])
        .env("SPECTRA_LLM_MODEL", "from-env")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let model = report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == "spectra.llm.model")
        .unwrap()
        .clone();
    assert_eq!(model["value"], "from-flag");
    assert_eq!(model["source"], "flag");
}

#[test]
fn status_in_a_repository_with_no_events_and_no_hooks() {
    let repo = TestRepo::new();
    let status = parse_json(
        &repo
            .spectra(&["status", "--offline", "--format", "json"])
            .success(),
    );
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["events"]["count"], 0);
    assert!(status["events"]["last_run"].is_null());
    assert_eq!(status["hooks"]["installed"], false);
    assert!(
        status["llm"]["answers"].is_null(),
        "--offline must not probe"
    );
    let work_tree = status["repository"]["work_tree"].as_str().unwrap();
    assert_eq!(std::path::Path::new(work_tree), repo.root());

    let human = repo.spectra(&["status", "--offline"]).success().stdout;
    assert!(human.contains("0 events"), "{human}");
    assert!(human.contains("not installed"), "{human}");
    assert!(human.contains("not checked"), "{human}");
}

#[test]
fn status_counts_events_reports_installed_hooks_and_an_endpoint_that_does_not_answer() {
    let repo = TestRepo::new();
    repo.env
        .append(repo.root(), "note.added", r#"{"text": "one"}"#);
    repo.spectra(&["hooks", "install"]).success();
    // The pinned endpoint is 127.0.0.1:9 (discard), where nothing listens.
    let status = parse_json(&repo.spectra(&["status", "--format", "json"]).success());
    assert_eq!(status["events"]["count"], 1);
    assert_eq!(status["hooks"]["installed"], true);
    assert_eq!(status["llm"]["answers"], false);
    assert!(status["llm"]["error"].is_string());
}

#[test]
fn status_outside_a_repository_is_fatal() {
    let env = TestEnv::new();
    let run = env.spectra(env.path(), &["status", "--offline"]).code(128);
    assert!(
        run.stderr.starts_with("fatal: not a git repository"),
        "{run:#?}"
    );
}

fn has_escape_codes(text: &str) -> bool {
    text.contains('\u{1b}')
}

#[test]
fn no_color_output_has_no_escape_codes_and_color_always_has_them() {
    let repo = TestRepo::new();
    repo.env
        .append(repo.root(), "note.added", r#"{"text": "one"}"#);
    // The pinned environment sets NO_COLOR=1. GIT_PAGER_IN_USE says git's pager shows the
    // output, which alone would turn `auto` colour on; NO_COLOR must still win.
    let colour_run = |args: &[&str], no_color: bool| {
        let mut command = repo.env.command(spectra_bin(), repo.root());
        command.args(args).env("GIT_PAGER_IN_USE", "true");
        if !no_color {
            command.env_remove("NO_COLOR");
        }
        let output = command.output().unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for args in [&["log"][..], &["runs"], &["status", "--offline"]] {
        let (stdout, _) = colour_run(args, true);
        assert!(!has_escape_codes(&stdout), "{args:?}: {stdout:?}");
    }
    let (stdout, _) = colour_run(&["log"], false);
    assert!(
        has_escape_codes(&stdout),
        "git's pager should get colour: {stdout:?}"
    );

    let always = repo.spectra(&["--color", "always", "log"]).success();
    assert!(has_escape_codes(&always.stdout), "{always:#?}");
    let never = colour_run(&["log", "--color", "never"], false).0;
    assert!(!has_escape_codes(&never), "{never:?}");

    // The setting in git config, and git's own color.ui, as git users set them.
    let configured = repo.env.git(
        repo.root(),
        &["-c", "spectra.color=always", "spectra", "log"],
    );
    assert!(has_escape_codes(&configured.success().stdout));
    let mut quiet = repo.env.command("git", repo.root());
    quiet
        .args(["-c", "color.ui=never", "spectra", "log"])
        .env_remove("NO_COLOR")
        .env("GIT_PAGER_IN_USE", "true");
    let quiet = quiet.output().unwrap();
    assert!(!has_escape_codes(&String::from_utf8_lossy(&quiet.stdout)));

    let error = repo
        .spectra(&["--color", "always", "show", "ffffffff"])
        .code(1);
    assert!(
        error.stderr.contains("\u{1b}[1;31merror\u{1b}[m: "),
        "{error:#?}"
    );
    let plain = repo.spectra(&["show", "ffffffff"]).code(1);
    assert!(plain.stderr.starts_with("error: "), "{plain:#?}");
}

/// Runs `git-spectra args` with standard output a pipe whose reader is already closed, so the
/// first write fails with EPIPE every time; no timing involved.
fn run_into_closed_pipe(repo: &TestRepo, args: &[&str]) -> Run {
    let (reader, writer) = rustix::pipe::pipe().expect("create a pipe");
    drop(reader);
    let output = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run git-spectra");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_closed_pipe_exits_quietly_with_0_for_every_read_command() {
    let repo = TestRepo::new();
    let id = repo
        .env
        .append(repo.root(), "note.added", r#"{"text": "one"}"#);
    let read_commands: &[&[&str]] = &[
        &["log"],
        &["log", "--format", "json"],
        &["show", &id],
        &["verify"],
        &["manifest", "--format", "json"],
        &["history"],
        &["runs"],
        &["registry", "list"],
        &["stats"],
        &["hooks", "status"],
        &["status", "--offline"],
        &["doctor", "--format", "json"],
        &["undo", "--dry-run", &id],
        &["completions", "bash"],
        &["man"],
        &["--help"],
    ];
    for args in read_commands {
        let run = run_into_closed_pipe(&repo, args);
        assert_eq!(run.code, 0, "{args:?}: {run:#?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
}

#[test]
fn log_piped_into_head_exits_0_with_no_error_text() {
    let repo = TestRepo::new();
    for n in 0..3 {
        repo.env
            .append(repo.root(), "note.added", &format!(r#"{{"n": {n}}}"#));
    }
    let shell = format!("'{}' log | head -1", spectra_bin().display());
    let output = repo
        .env
        .command("bash", repo.root())
        .args(["-o", "pipefail", "-c", &shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let repo = TestRepo::new();
    let usage = repo.spectra(&["log", "--no-such-flag"]).code(2);
    assert!(usage.stderr.starts_with("error: "), "{usage:#?}");
    let usage = repo.spectra(&["completions", "tcsh"]).code(2);
    assert!(usage.stderr.starts_with("error: "), "{usage:#?}");
    let failed = repo.spectra(&["show", "ffffffff"]).code(1);
    assert!(failed.stderr.starts_with("error: "), "{failed:#?}");
}

#[test]
fn a_warning_nobody_asked_for_reads_like_git_s() {
    let repo = TestRepo::new();
    // A corrupt file of remembered endpoint facts is ignored with a warning, logged by the
    // library; without -v it must still look like git's `warning:` lines.
    let state = repo.root().join(".git/spectra");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("llm-response-format.json"), "not json").unwrap();
    let run = repo.spectra(&["status"]).success();
    assert!(
        run.stderr
            .starts_with("warning: ignoring a corrupt response_format level file"),
        "{run:#?}"
    );
    assert!(!has_escape_codes(&run.stderr), "{run:#?}");
}
