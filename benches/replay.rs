//! What a replay costs: a 12-activity run replayed from its record.
//!
//! Run by hand (not in CI): `cargo bench --bench replay`. It drives the release binary in a
//! temporary repository, against a chat-completions server on 127.0.0.1 that answers every
//! schema at once with its smallest valid decision:
//!
//! 1. records one run of all twelve built-in activities (`run -a engage ... -a finalise`, the
//!    repository's own commands configured as `true`/`echo`), timing it (wall) beside the
//!    duration its `run.finished` records;
//! 2. replays it (`replay <run>`, no network) several times: wall time, the replay's own time
//!    as its report gives it, and per activity;
//! 3. reruns it live (`rerun <run>`, every decision asked again of the instant server), wall.
//!
//! Target (issue 23): a replay costs no more than the orchestration overhead of the run, tens
//! of milliseconds per activity.

#[path = "../tests/e2e/llm_server.rs"]
mod llm_server;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{Value, json};

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_git-spectra");
const ROUNDS: usize = 5;
const ACTIVITIES: [&str; 12] = [
    "engage",
    "discover",
    "plan",
    "assess",
    "design",
    "provision",
    "build",
    "test",
    "deploy",
    "monitor",
    "optimise",
    "finalise",
];

fn spectra(dir: &Path, args: &[&str], llm_url: &str) -> (f64, Output) {
    let started = Instant::now();
    let output = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("SPECTRA_LLM_URL", llm_url)
        .env("SPECTRA_LLM_MODEL", "bench-model")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    (started.elapsed().as_secs_f64() * 1e3, output)
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn main() {
    let server = llm_server::LlmServer::start();
    server.respond_with(|request| {
        let body = request.json();
        let schema = &body["response_format"]["json_schema"]["schema"];
        let mut decision = llm_server::minimal(schema);
        if decision.get("service_name").is_some() {
            decision["service_name"] = json!("logging");
        }
        llm_server::Reply::chat_json(&decision)
    });
    let url = server.base_url();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("repo");
    git(root.path(), &["init", "-q", "repo"]);
    for (key, value) in [
        ("user.name", "Bench"),
        ("user.email", "bench@example.com"),
        ("spectra.test.command", "echo 3 passed"),
        ("spectra.provision.command", "true"),
        ("spectra.deploy.command", "true"),
        ("spectra.monitor.command", "true"),
    ] {
        git(&dir, &["config", key, value]);
    }
    git(&dir, &["commit", "-q", "--allow-empty", "-m", "init"]);

    let mut args = vec![
        "run",
        "a logging service",
        "--service",
        "logging",
        "--format",
        "json",
    ];
    for activity in ACTIVITIES {
        args.extend(["-a", activity]);
    }
    let (recorded_wall, output) = spectra(&dir, &args, &url);
    let report: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    let run = report["run"].as_str().unwrap().to_string();
    let ran = report["activities"].as_array().map_or(0, Vec::len);
    let recorded_ms = report["duration_ms"].as_f64().unwrap_or_default();
    let calls = server.requests().len();
    println!(
        "recorded run: {ran} activities ran, {calls} model calls; wall {recorded_wall:.0} ms, run.finished duration_ms {recorded_ms:.0}"
    );

    let (mut walls, mut inside) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let (wall, output) = spectra(&dir, &["replay", &run, "--format", "json"], &url);
        let replay: Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
        assert_eq!(replay["result"], "same", "{replay:#}");
        walls.push(wall);
        inside.push(replay["replay_ms"].as_f64().unwrap_or_default());
    }
    assert_eq!(server.requests().len(), calls, "a replay sent a request");
    let (wall, own) = (median(&mut walls), median(&mut inside));
    println!(
        "replay x{ROUNDS}: wall p50 {wall:.0} ms, inside the replay p50 {own:.0} ms ({:.1} ms per activity); {:.2}x the recorded run's duration",
        own / ran.max(1) as f64,
        own / recorded_ms.max(1.0)
    );

    let mut reruns = vec![];
    for _ in 0..ROUNDS {
        let (wall, output) = spectra(&dir, &["rerun", &run, "--format", "json"], &url);
        assert!(!output.stdout.is_empty(), "{output:?}");
        reruns.push(wall);
    }
    let rerun = median(&mut reruns);
    println!(
        "live rerun x{ROUNDS} (instant server): wall p50 {rerun:.0} ms; replay / rerun = {:.2}",
        wall / rerun
    );
}
