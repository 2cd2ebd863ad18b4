//! What a hostile model or server can send, end to end: the real binary against the scripted
//! chat-completions server, checking that nothing it sends leaks the API key, panics the client
//! or burns the deadline.

use std::path::Path;

use serde_json::Value;

use crate::common::{Run, TestEnv, spectra_bin};
use crate::llm_server::{LlmServer, Reply};

const KEY: &str = "sk-spectra-e2e-7f3a9c41d2";

/// Runs `git-spectra args...` against `server` with [`KEY`] as the API key, fast retries.
fn spectra(env: &TestEnv, repo: &Path, server: &LlmServer, args: &[&str]) -> Run {
    spectra_with(env, repo, server, args, &[])
}

fn spectra_with(
    env: &TestEnv,
    repo: &Path,
    server: &LlmServer,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Run {
    let mut command = env.command(spectra_bin(), repo);
    command
        .args(args)
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .env("SPECTRA_LLM_API_KEY", KEY)
        .env("SPECTRA_LLM_BACKOFF_BASE", "10ms");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    Run::from_output(command.output().expect("run git-spectra"))
}

#[test]
fn a_retry_after_of_1e20_seconds_ends_the_retries_without_a_panic() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    server.respond_with(|_| Reply::error(429, "slow down", None).header("Retry-After", "1e20"));

    let run = spectra(&env, &repo, &server, &["discover", "central logs"]);

    assert_ne!(run.code, 101, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("spectra.llm.maxDelay"), "{run:?}");
    assert_eq!(server.chat_requests().len(), 1);
    let finished = env.events(&repo, "run.finished");
    assert_eq!(finished.len(), 1, "the run was closed");
    assert_eq!(finished[0]["payload"]["outcome"], "failed");
}

#[test]
fn hostile_nesting_is_refused_quickly_within_the_deadline() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    server.push(Reply::chat(&"{".repeat(200_000)));
    server.respond_with(move |_| Reply::chat(&deep));

    let run = spectra_with(
        &env,
        &repo,
        &server,
        &["discover", "central logs"],
        // Room for the repair turns that echo these replies, so the test is about extraction.
        &[
            ("SPECTRA_LLM_TOTAL_TIMEOUT", "20s"),
            ("SPECTRA_LLM_CONTEXT_WINDOW", "1000000"),
        ],
    )
    .code(1);

    assert!(run.stderr.contains("deeper than"), "{run:?}");
    assert_eq!(server.chat_requests().len(), 3, "{run:?}");
    let finished: Vec<Value> = env.events(&repo, "run.finished");
    assert_eq!(finished[0]["payload"]["outcome"], "failed");
}
