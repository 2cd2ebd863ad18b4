//! Logs on stderr: quiet by default, JSON Lines with the run id on request, and never the API
//! key or (unless asked) a prompt.

use serde_json::Value;

use crate::common::{TestRepo, json_lines};
use crate::llm_server::{LlmServer, Reply};

const KEY: &str = "sk-logging-test-3f9a8b7c6d5e";
const RUN: &str = "01a21400-0000-7000-8000-00000000beef";

fn append_in_run(repo: &TestRepo, flags: &[&str]) -> crate::common::Run {
    let mut args = flags.to_vec();
    args.extend([
        "append",
        "--kind",
        "note.added",
        "--run",
        RUN,
        "--payload",
        r#"{"text": "hello"}"#,
    ]);
    repo.spectra(&args).success()
}

#[test]
fn by_default_a_command_logs_nothing() {
    let repo = TestRepo::new();
    let run = append_in_run(&repo, &[]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout.lines().count(), 1, "stdout is just the id");
}

#[test]
fn json_logs_are_json_lines_that_carry_the_run_id() {
    let repo = TestRepo::new();
    let run = append_in_run(&repo, &["-vv", "--log-format", "json"]);
    let lines = json_lines(&run.stderr);
    assert!(!lines.is_empty(), "-vv logged something");
    for line in &lines {
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    let appended = lines
        .iter()
        .find(|line| line["message"] == "appended the event")
        .unwrap_or_else(|| panic!("no line about the append: {}", run.stderr));
    assert_eq!(appended["span"]["run"], RUN);
    assert_eq!(appended["spans"][0]["run"], RUN);
    assert_eq!(appended["event"].as_str(), Some(run.stdout.trim()));
    // Stdout is untouched by logging.
    assert_eq!(run.stdout.lines().count(), 1);
}

#[test]
fn spectra_log_chooses_the_level_without_flags() {
    let repo = TestRepo::new();
    let run = repo
        .env
        .command(crate::common::spectra_bin(), repo.root())
        .env("SPECTRA_LOG", "spectra=info")
        .args([
            "--log-format",
            "json",
            "append",
            "--kind",
            "note.added",
            "--run",
            RUN,
        ])
        .args(["--payload", "{}"])
        .output()
        .unwrap();
    assert!(run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    let lines = json_lines(&stderr);
    assert!(lines.iter().all(|line| line["level"] == "INFO"), "{stderr}");
    assert!(
        lines.iter().any(|line| line["span"]["run"] == RUN),
        "{stderr}"
    );
}

#[test]
fn a_bad_spectra_log_filter_is_a_named_error() {
    let repo = TestRepo::new();
    let run = repo
        .env
        .command(crate::common::spectra_bin(), repo.root())
        .env("SPECTRA_LOG", "spectra=loudest")
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(128));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("SPECTRA_LOG"), "{stderr}");
}

/// `git spectra doctor` against a server that echoes the key back, logging at `-vvv` or, with
/// `everything`, at `SPECTRA_LOG=trace` (every library's trace lines too).
fn doctor_logs(repo: &TestRepo, server: &LlmServer, log_prompts: bool, everything: bool) -> String {
    let mut command = repo.env.command(crate::common::spectra_bin(), repo.root());
    command
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_API_KEY", KEY)
        .args(["--log-format", "json", "doctor"]);
    if everything {
        command.env("SPECTRA_LOG", "trace");
    } else {
        command.arg("-vvv");
    }
    if log_prompts {
        command.env("SPECTRA_LOG_PROMPTS", "1");
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    // Log lines are JSON; the command's own `error:`/`hint:` lines are git-style text.
    let (logs, messages): (Vec<&str>, Vec<&str>) =
        stderr.lines().partition(|line| line.starts_with('{'));
    assert!(!logs.is_empty(), "doctor logged at -vvv");
    let _: Vec<Value> = json_lines(&logs.join("\n"));
    for line in messages {
        assert!(
            line.starts_with("error: ") || line.starts_with("hint: "),
            "{line}"
        );
    }
    stderr
}

fn echoing_server() -> LlmServer {
    let server = LlmServer::start();
    server.set_models(&["m"]);
    server.respond_with(|request| {
        let echoed = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        Reply::error(503, &format!("busy; you sent {echoed}"), None).header("x-request-id", &echoed)
    });
    server
}

#[test]
fn the_api_key_never_reaches_the_logs() {
    let repo = TestRepo::new();
    let server = echoing_server();
    for (log_prompts, everything) in [(false, false), (true, false), (true, true)] {
        let stderr = doctor_logs(&repo, &server, log_prompts, everything);
        assert!(
            server
                .chat_requests()
                .iter()
                .any(|r| r.header("authorization").is_some_and(|a| a.contains(KEY))),
            "the server saw the key, so the test means something"
        );
        assert!(
            !stderr.contains(KEY),
            "the API key leaked into the logs: {stderr}"
        );
    }
}

#[test]
fn prompts_reach_the_logs_only_with_spectra_log_prompts() {
    let repo = TestRepo::new();
    let server = echoing_server();
    let quiet = doctor_logs(&repo, &server, false, false);
    assert!(!quiet.contains("You are a health check"), "{quiet}");
    assert!(
        quiet.contains("set SPECTRA_LOG_PROMPTS=1 to log prompts"),
        "{quiet}"
    );
    let loud = doctor_logs(&repo, &server, true, false);
    assert!(loud.contains("You are a health check"), "{loud}");
}
