//! What a hostile model or server can send, end to end: the real binary (and, for one case that
//! needs a precise context window, the client library) against the scripted chat-completions
//! server, checking that nothing it sends leaks the API key, panics the client, burns the
//! deadline or gets blamed on the user's prompt.
//!
//! The key-leak tests look everywhere a string can land: standard output and error, every
//! object reachable from any ref (the user's branch and `refs/spectra/events`, commits, trees
//! and blobs), `git log --all -p`, and every file under the repository, `.git` included. A text
//! "holds the key" if the key appears in it literally or after undoing backslash escapes (a few
//! levels, as a reader decoding JSON inside JSON would).

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use spectra::llm::{Client, DecisionRequest, LlmError};
use spectra::settings::{LlmSettings, Secret, Setting};

use crate::common::{Run, TestEnv, spectra_bin};
use crate::discover::decision;
use crate::llm_server::{LlmServer, Reply};

const KEY: &str = "sk-spectra-e2e-7f3a9c41d2";

/// The key with one letter written as a JSON `\u` escape: `sk-\u0073pectra-...`.
fn one_escaped() -> String {
    KEY.replacen('s', "\\u0073", 1)
}

/// The key with every character written as a JSON `\u` escape.
fn all_escaped() -> String {
    KEY.chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect()
}

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

/// Undoes one level of backslash escapes: `\uXXXX`, `\\`, `\/`, `\"` (enough for an oracle).
fn unescape_once(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            match chars[i + 1] {
                '\\' | '/' | '"' => {
                    out.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                'u' if i + 6 <= chars.len() => {
                    let hex: String = chars[i + 2..i + 6].iter().collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(c);
                        i += 6;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Whether `text` holds the key, literally or behind up to four levels of escapes.
fn holds_key(text: &str) -> bool {
    let mut level = text.to_owned();
    for _ in 0..=4 {
        if level.contains(KEY) {
            return true;
        }
        let next = unescape_once(&level);
        if next == level {
            return false;
        }
        level = next;
    }
    false
}

#[track_caller]
fn assert_no_key(what: &str, text: &str) {
    assert!(!holds_key(text), "the API key leaked into {what}:\n{text}");
}

/// Every object reachable from any ref, printed by `git cat-file --batch`.
fn every_object(env: &TestEnv, repo: &Path) -> String {
    let listed = env
        .git(repo, &["rev-list", "--objects", "--all"])
        .success()
        .stdout;
    let ids: String = listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|id| format!("{id}\n"))
        .collect();
    assert!(!ids.is_empty(), "the repository has objects");
    let mut child = env
        .command("git", repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn git cat-file");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ids.as_bytes())
        .expect("write ids");
    let output = child.wait_with_output().expect("git cat-file");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every file under `dir`, `.git` included, as (path, lossy text).
fn every_file(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            every_file(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

/// The key is nowhere: output, objects, history, files.
#[track_caller]
fn assert_key_nowhere(env: &TestEnv, repo: &Path, run: &Run) {
    assert_no_key("stdout", &run.stdout);
    assert_no_key("stderr", &run.stderr);
    let events_ref = env
        .git(repo, &["rev-parse", "--verify", "refs/spectra/events"])
        .success();
    assert!(!events_ref.stdout.trim().is_empty());
    assert_no_key("git objects", &every_object(env, repo));
    let history = env.git(repo, &["log", "--all", "-p"]).success().stdout;
    assert_no_key("git log --all -p", &history);
    let log = env
        .spectra(repo, &["log", "--format", "json"])
        .success()
        .stdout;
    assert_no_key("git spectra log", &log);
    let mut files = Vec::new();
    every_file(repo, &mut files);
    for (path, text) in files {
        assert_no_key(&path, &text);
    }
}

/// A chat completion whose body carries `content`, then has every `@BODY@` replaced by the key
/// written as body-level `\u` escapes (the decoded content then holds the key literally).
fn chat_with_body_escapes(content: &str) -> Reply {
    let mut reply = Reply::chat(content);
    let body = String::from_utf8(reply.body).unwrap();
    reply.body = body.replace("@BODY@", &all_escaped()).into_bytes();
    reply
}

#[test]
fn a_key_spelled_with_escapes_in_a_decision_reaches_no_output_event_file_or_commit() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let mut spelled = decision("logging");
    spelled["problem"]["statement"] = json!("Logs are scattered; the key is @CONTENT@ here");
    spelled["desired_state"]["vision"] = json!("One place, key @BODY@");
    // Escaped in the reply's JSON (`sk-\u0073...` in the content) and in the body's JSON (the
    // content string itself spelled with escapes), the body sent in 7-byte chunks so the key
    // is split across them.
    let content = spelled.to_string().replace("@CONTENT@", &one_escaped());
    server.push(
        chat_with_body_escapes(&content)
            .header("x-request-id", &one_escaped())
            .in_chunks(7),
    );

    let run = spectra(&env, &repo, &server, &["discover", "central logs"]).success();

    let request = &server.chat_requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str()),
        "the server did get the key, so the test means something"
    );
    let spec = std::fs::read_to_string(repo.join(".spectra/logging.specification.yaml")).unwrap();
    assert!(spec.contains("the key is *** here"), "{spec}");
    let message = env
        .git(&repo, &["log", "-1", "--format=%B"])
        .success()
        .stdout;
    assert!(message.contains("the key is *** here"), "{message}");
    assert_key_nowhere(&env, &repo, &run);
}

#[test]
fn a_key_in_an_error_message_a_header_or_a_repaired_reply_reaches_nothing() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let mut busy = Reply::error(503, "busy; your key is @BODY@", None)
        .header("x-ratelimit-reset-requests", &one_escaped());
    busy.body = String::from_utf8(busy.body)
        .unwrap()
        .replace("@BODY@", &all_escaped())
        .into_bytes();
    server.push(busy);
    // Not JSON, so it is echoed into a repair turn.
    server.push(chat_with_body_escapes(&format!(
        "No JSON today. Keys: {} and @BODY@",
        one_escaped()
    )));
    // The message decodes to `sk-\u0073...`: still the key, one decode away.
    server.push(Reply::error(
        401,
        &format!("invalid key {}", one_escaped()),
        None,
    ));

    let run = spectra(&env, &repo, &server, &["discover", "central logs"]).code(1);

    assert!(run.stderr.contains("HTTP 401"), "{run:?}");
    let requests = server.chat_requests();
    assert_eq!(
        requests.len(),
        3,
        "the 503, the invalid reply, the repair turn"
    );
    let repair = requests[2].message_texts();
    assert!(
        repair.iter().any(|text| text.starts_with("No JSON today")),
        "the invalid reply was echoed: {repair:?}"
    );
    assert_no_key(
        "the repair turn sent",
        &String::from_utf8_lossy(&requests[2].body),
    );
    assert_key_nowhere(&env, &repo, &run);
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

/// The assistant messages of the chat requests after the first: the echoed replies.
fn echoed_replies(server: &LlmServer) -> Vec<String> {
    server
        .chat_requests()
        .iter()
        .skip(1)
        .map(|request| {
            let messages = request.json()["messages"].clone();
            messages
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|m| m["role"] == "assistant")
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_huge_invalid_reply_is_echoed_cut_short_and_the_failure_blames_the_reply() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let huge = "The answer is not JSON. ".repeat(200_000 / 24);
    server.respond_with(move |_| Reply::chat(&huge));

    let run = spectra(&env, &repo, &server, &["discover", "central logs"]).code(1);

    assert!(!run.stderr.contains("the prompt needs"), "{run:?}");
    assert!(run.stderr.contains("reply"), "{run:?}");
    assert!(run.stderr.contains("not valid"), "{run:?}");
    let echoed = echoed_replies(&server);
    assert_eq!(echoed.len(), 2, "two repair turns were sent");
    for text in &echoed {
        assert!(text.len() < 8_000, "echoed {} bytes", text.len());
        assert!(text.starts_with("The answer is not JSON."), "{text}");
        assert!(text.contains("characters cut"), "{text}");
    }
    let finished = env.events(&repo, "activity.finished");
    assert_eq!(
        finished[0]["payload"]["errors"][0]["reason"],
        "invalid_decision"
    );
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

#[test]
fn a_repair_turn_that_cannot_fit_blames_the_reply_not_the_prompt() {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat(&"not json ".repeat(1000)));
    let mut settings = LlmSettings::for_url(&server.url()).expect("valid test URL");
    settings.api_key = Setting::flag(Secret::new(KEY));
    settings.model = Setting::flag("test-model".to_owned());
    // Room for the question and its answer, not for an echoed 4000-character reply as well.
    settings.context_window = Setting::flag(1200);
    settings.max_tokens = Setting::flag(256);
    let request = DecisionRequest {
        system: "You choose.".to_owned(),
        user: "Choose.".to_owned(),
        schema: json!({"type": "object", "required": ["a"]}),
        schema_name: "choice".to_owned(),
        max_tokens: None,
    };

    let failure = Client::new(settings, None)
        .expect("client")
        .decide(&request)
        .expect_err("the reply is never valid");

    let message = failure.error.to_string();
    assert!(
        matches!(failure.error, LlmError::InvalidOutput { repairs: 0, .. }),
        "{message}"
    );
    assert!(message.contains("no repair turn was sent"), "{message}");
    assert!(message.contains("quoting the reply"), "{message}");
    assert!(!message.contains("the prompt needs"), "{message}");
    assert_eq!(server.chat_requests().len(), 1);
    assert_eq!(failure.records.len(), 1);
}

#[test]
fn an_attempt_is_in_the_log_before_the_next_one_so_a_crash_in_a_repair_turn_keeps_it() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let mut invalid = decision("logging");
    invalid.as_object_mut().unwrap().remove("problem");
    server.push(Reply::chat_json(&invalid));
    let repair_asked = server.hold_and_signal();
    let mut discover = env
        .command(spectra_bin(), &repo)
        .args(["discover", "Our logs are everywhere"])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    repair_asked
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the repair turn was never sent");
    discover.kill().unwrap();
    discover.wait().unwrap();

    let called = env.events(&repo, "llm.called");
    assert_eq!(called.len(), 1, "{called:?}");
    let payload = &called[0]["payload"];
    assert_eq!(payload["attempt"], 1);
    assert!(
        payload["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("invalid reply")),
        "{payload}"
    );
}

#[test]
fn a_configured_command_that_holds_or_prints_the_key_leaves_none_of_it_in_the_log() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("repo");
    // A deploy command given the key as an argument (a user's mistake) that prints it, plain
    // and escaped, on both streams; its rollback does the same.
    let script = env.path().join("leak.sh");
    std::fs::write(
        &script,
        "echo \"deploying with $1\"\necho \"{\\\"token\\\": \\\"$1\\\"}\" >&2\n",
    )
    .unwrap();
    let command = format!("sh {} {KEY}", script.display());
    for key in ["spectra.deploy.command", "spectra.deploy.rollbackCommand"] {
        env.git(&repo, &["config", key, &command]).success();
    }
    let server = LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let schema = &body["response_format"]["json_schema"]["schema"];
        let patch = json!({"release": {"version": "1.0.0", "notes": "n"}});
        Reply::chat_json(&crate::lifecycle::merged(
            crate::lifecycle::minimal(schema),
            &patch,
        ))
    });
    let args = [
        "deploy",
        "ship",
        "--service",
        "logging",
        "--execute",
        "--format",
        "json",
    ];
    let run = spectra(&env, &repo, &server, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert_no_key("deploy's report", &run.stdout);
    assert_no_key("deploy's errors", &run.stderr);
    let plan = spectra(
        &env,
        &repo,
        &server,
        &["undo", "--dry-run", "--format", "json"],
    );
    assert_no_key("undo's plan", &plan.stdout);
    let undo = spectra(&env, &repo, &server, &["undo"]);
    assert_eq!(undo.code, 0, "{undo:?}");
    assert_no_key("undo's report", &undo.stdout);
    assert_no_key("the log's objects", &every_object(&env, &repo));
    let shown = spectra(
        &env,
        &repo,
        &server,
        &["log", "--format", "json", "--verbose"],
    );
    assert_no_key("git spectra log", &shown.stdout);
    // The command really got the key: only the record is scrubbed.
    let started = env.events(&repo, "playbook.started");
    assert!(
        started
            .iter()
            .any(|event| event["payload"]["argv"][2] == "***"),
        "{started:#?}"
    );
}
