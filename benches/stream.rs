//! Streamed vs non-streamed replies from a slow model.
//!
//! Run by hand (not in CI): `cargo bench --bench stream` (`-- --rate N` sets tokens per
//! second, 10 by default). A chat-completions server on 127.0.0.1 replays one ~1,200-token
//! discover decision at that rate: streamed, one SSE piece per token; non-streamed, the whole
//! body once the same time has passed. It reports, for each, the wall time of
//! `git spectra discover` (time to decision) and the peak memory of the process
//! (`/usr/bin/time -f %M`). Figures are in docs/performance.md. The streamed reply is
//! cut into pieces of equal length, at most one per token, so it may have fewer pieces than
//! tokens; compare per piece.

#[path = "../tests/e2e/llm_server.rs"]
mod llm_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_git-spectra");
const TOKENS: usize = 1200;

/// Words `tag-1 tag-2 ...` up to `max` characters: text of a known length, never repeating
/// (a repeated item or run of characters would be cut as a runaway).
fn phrase(tag: &str, max: usize) -> String {
    let mut text = String::new();
    for n in 1.. {
        let word = format!("{tag}-{n}");
        if text.len() + word.len() + 1 > max {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&word);
    }
    text
}

/// A valid discover decision of about [`TOKENS`] tokens (about four characters each), within
/// the schema's bounds: two long items per list, long free-text fields.
fn decision() -> Value {
    let two = |tag: &str| {
        json!([
            phrase(&format!("{tag}a"), 90),
            phrase(&format!("{tag}b"), 90)
        ])
    };
    json!({
        "service_name": "logging",
        "problem": {"statement": phrase("st", 380), "impact": phrase("im", 190), "root_cause": phrase("rc", 190), "who_has_it": two("wh")},
        "current_state": {"what_exists": two("we"), "pain_points": two("pp"), "gaps": two("ga"), "blockers": two("bl")},
        "desired_state": {"vision": phrase("vi", 380), "success_criteria": two("sc"), "goals": two("go")},
        "stakeholders": {"users": two("us"), "decision_makers": two("dm"), "beneficiaries": two("be")},
        "constraints": {"technical": two("ct"), "business": two("cb"), "time": two("cti"), "budget": two("cbu"), "compliance": two("cc")},
        "requirements": {"functional": two("rf"), "non_functional": two("rn")},
        "risks": {"technical": two("kt"), "business": two("kb"), "implementation": two("ki")},
        "alternatives": {"other_options": two("oo"), "why_this_solution": phrase("wy", 380)},
        "idea": {"name": "Central logging", "type": "new_service", "priority": "high"},
        "validation": {"problem_solved": true, "reasoning": phrase("re", 480), "confidence": 80, "assumptions": two("as")},
        "recommended_tools": two("rt"), "next_steps": two("ns"),
        "playbooks": [{"id": "repo.inventory", "inputs": {}, "reason": "look"}],
    })
}

/// `text` in `n` pieces of about equal length.
fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(chars.len().div_ceil(n))
        .map(|c| c.iter().collect())
        .collect()
}

/// Serves one discover at `rate` tokens per second, streamed or whole.
fn slow_llm(stream: bool, rate: f64) -> llm_server::LlmServer {
    let server = llm_server::LlmServer::start();
    let (mut reply, sender) = llm_server::Reply::sse();
    let content = decision().to_string();
    let per_token = Duration::from_secs_f64(1.0 / rate);
    if stream {
        let pieces = pieces(&content, TOKENS);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let events: Vec<Vec<u8>> = llm_server::sse_text(&refs)
            .split_inclusive("\n\n")
            .map(|e| e.as_bytes().to_vec())
            .collect();
        std::thread::spawn(move || {
            for event in events {
                std::thread::sleep(per_token);
                let _ = sender.send(event);
            }
        });
    } else {
        reply.headers = vec![("Content-Type".into(), "application/json".into())];
        let body = llm_server::Reply::chat(&content).body;
        std::thread::spawn(move || {
            std::thread::sleep(per_token * TOKENS as u32);
            let _ = sender.send(body);
        });
    }
    server.push(reply);
    server
}

/// Wall time (s) and peak resident memory (KiB) of one discover against `llm_url`.
fn timed_discover(dir: &Path, llm_url: &str, stream: bool) -> (f64, u64) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", BIN, "discover", "our logs are everywhere"])
        .current_dir(dir)
        .env("SPECTRA_LLM_URL", llm_url)
        .env("SPECTRA_LLM_STREAM", stream.to_string())
        // A whole reply must arrive within one attempt's timeout; at 10 tok/s the default 120 s
        // is just too short for 1,200 tokens (the reply would be lost and asked again), so both
        // runs get room enough to compare their time and memory.
        .env("SPECTRA_LLM_TIMEOUT", "600s")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (wall, peak)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: f64 = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(10.0);
    let chars = decision().to_string().chars().count();
    println!("one ~{TOKENS}-token discover decision ({chars} characters) at {rate} tok/s");
    for stream in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        git(dir, &["init", "-q"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
        let server = slow_llm(stream, rate);
        let (wall, peak) = timed_discover(dir, &server.base_url(), stream);
        let label = if stream { "streamed" } else { "whole" };
        println!("{label:>9}: time to decision {wall:.1} s, peak memory {peak} KiB");
    }
}
