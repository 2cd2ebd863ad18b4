//! Orchestration overhead of discover, and `manifest` on a long log.
//!
//! Run by hand (not in CI): `cargo bench --bench discover` (`-- --discover-only` or
//! `-- --manifest-only` runs one part; `-- --keep DIR` works in DIR and leaves it there). It
//! drives the release binary:
//!
//! 1. `git spectra discover` against a chat-completions server on 127.0.0.1 that answers at
//!    once; overhead = wall time minus the time inside the LLM call (the `latency_ms` its
//!    `llm.called` event records). `git status` and `git commit` in the same repository are
//!    timed alongside, as bearings. Target: overhead p50 < 30 ms.
//! 2. `git spectra manifest` on a log of 100,000 events (10,000 runs), cold (no cache; median of
//!    5), warm (cache at the tip) and warm after one new run. Targets: warm < 20 ms, cold < 1 s.
//!    Then ten discovers on that log: a run must not slow down as the log grows.

#[path = "../tests/e2e/llm_server.rs"]
mod llm_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spectra::event::{NewEvent, kind};
use spectra::repo::Repo;
use spectra::store::Store;

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_git-spectra");

fn spectra(dir: &Path, args: &[&str], llm_url: &str) -> (Duration, std::process::Output) {
    let started = Instant::now();
    let output = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("SPECTRA_LLM_URL", llm_url)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    (started.elapsed(), output)
}

fn decision(service: &str) -> Value {
    json!({
        "service_name": service,
        "problem": {"statement": "Logs are scattered", "impact": "Slow incidents", "root_cause": "No collection", "who_has_it": ["on-call"]},
        "current_state": {"what_exists": ["syslog"], "pain_points": ["ssh"], "gaps": ["retention"], "blockers": []},
        "desired_state": {"vision": "One place", "success_criteria": ["search < 5 s"], "goals": ["store"]},
        "stakeholders": {"users": ["engineers"], "decision_makers": ["lead"], "beneficiaries": ["customers"]},
        "constraints": {"technical": ["VMs"], "business": [], "time": [], "budget": [], "compliance": []},
        "requirements": {"functional": ["ship"], "non_functional": ["available"]},
        "risks": {"technical": ["volume"], "business": [], "implementation": []},
        "alternatives": {"other_options": ["SaaS"], "why_this_solution": "In-house"},
        "idea": {"name": "Central logging", "type": "new_service", "priority": "high"},
        "validation": {"problem_solved": true, "reasoning": "Search", "confidence": 80, "assumptions": []},
        "recommended_tools": [], "next_steps": [],
        "playbooks": [{"id": "repo.inventory", "inputs": {}, "reason": "look"}],
    })
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank - 1]
}

/// A chat-completions server that answers every discover at once, for the service it was asked.
fn instant_llm() -> llm_server::LlmServer {
    let server = llm_server::LlmServer::start();
    server.respond_with(|request| {
        let prompt = request.message_texts().join("\n");
        let service = prompt
            .lines()
            .find_map(|line| line.strip_prefix("Service name requested: "))
            .unwrap_or("logging")
            .to_string();
        llm_server::Reply::chat_json(&decision(&service))
    });
    server
}

/// One discover of a new service in `dir`: its wall time and its overhead (wall time minus the
/// time inside the LLM call, as its `llm.called` event records it), in ms.
fn timed_discover(dir: &Path, service: &str, llm_url: &str) -> (f64, f64) {
    let (wall, output) = spectra(dir, &["discover", "an idea", "--service", service], llm_url);
    assert!(output.status.success(), "{output:?}");
    let (_, log) = spectra(
        dir,
        &[
            "log",
            "-n",
            "20",
            "--kind",
            "llm.called",
            "--format",
            "json",
        ],
        "",
    );
    let latency: u64 = String::from_utf8_lossy(&log.stdout)
        .lines()
        .take(1)
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["event"]["payload"]["latency_ms"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let wall = wall.as_secs_f64() * 1e3;
    (wall, wall - latency as f64)
}

fn bench_discover(root: &Path) {
    const RUNS: usize = 20;
    let server = instant_llm();
    let dir = root.join("discover");
    git(root, &["init", "-q", "discover"]);
    git(&dir, &["config", "user.name", "Bench"]);
    git(&dir, &["config", "user.email", "bench@example.com"]);
    git(&dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
    let (mut walls, mut overheads, mut statuses, mut commits) = (vec![], vec![], vec![], vec![]);
    for n in 0..RUNS {
        let (wall, overhead) = timed_discover(&dir, &format!("svc{n}"), &server.base_url());
        walls.push(wall);
        overheads.push(overhead);
        let started = Instant::now();
        git(&dir, &["status", "--porcelain"]);
        statuses.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "bearing"]);
        commits.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "discover x{RUNS}: wall p50 {:.1} ms, overhead (wall - LLM latency) p50 {:.1} ms p95 {:.1} ms (target p50 < 30 ms)",
        percentile(&mut walls, 50.0),
        percentile(&mut overheads, 50.0),
        percentile(&mut overheads, 95.0)
    );
    println!(
        "  bearings in the same repository: git status p50 {:.1} ms, git commit p50 {:.1} ms; overhead / git commit = {:.1}x",
        percentile(&mut statuses, 50.0),
        percentile(&mut commits, 50.0),
        percentile(&mut overheads, 50.0) / percentile(&mut commits, 50.0)
    );
}

/// 10,000 runs of ten events each, discover-shaped, over 50 services.
fn fill_log(dir: &Path, runs: usize) {
    let repo = Repo::open(dir).unwrap();
    let store = Store::new(&repo);
    let mut batch = Vec::new();
    for n in 0..runs {
        let run = format!("run-{n:06}");
        let service = format!("service{}", n % 50);
        let activity = ["discover", "plan", "design"][n % 3];
        let events = [
            NewEvent::new(kind::RUN_STARTED).payload(json!({"command": activity, "input": "idea", "dry_run": false})),
            NewEvent::new(kind::ACTIVITY_STARTED).activity(activity).payload(json!({"input": "idea", "context": {}})),
            NewEvent::new(kind::LLM_CALLED).activity(activity).payload(json!({"attempt": 1, "status": 200, "latency_ms": 900})),
            NewEvent::new(kind::DECISION_MADE).activity(activity).payload(json!({"decision": {"service_name": service}})),
            NewEvent::new(kind::PLAYBOOK_STARTED).activity(activity).payload(json!({"playbook": "repo.inventory"})),
            NewEvent::new(kind::PLAYBOOK_FINISHED).activity(activity).payload(json!({"playbook": "repo.inventory", "outcome": "succeeded", "duration_ms": 7})),
            NewEvent::new(kind::COMMIT_OBSERVED).payload(json!({"commit": "0", "subject": "work"})),
            NewEvent::new(kind::ACTIVITY_FINISHED).activity(activity).service(service.clone())
                .payload(json!({"outcome": "succeeded", "duration_ms": 950, "outputs": {"service_name": service}, "errors": [], "quality_gates": {"g": true}})),
            NewEvent::new("note.added").payload(json!({"text": "a note"})),
            NewEvent::new(kind::RUN_FINISHED).payload(json!({"outcome": "succeeded", "duration_ms": 990})),
        ];
        batch.extend(events.into_iter().map(|event| event.run(run.clone())));
        if batch.len() >= 1_000 {
            store.append_batch(std::mem::take(&mut batch)).unwrap();
        }
    }
    store.append_batch(batch).unwrap();
}

fn bench_manifest(root: &Path) {
    let dir = root.join("manifest");
    git(root, &["init", "-q", "manifest"]);
    git(&dir, &["config", "spectra.store.autoGc", "false"]);
    let started = Instant::now();
    fill_log(&dir, 10_000);
    git(&dir, &["gc", "-q"]);
    println!(
        "filled and packed a log of 100,000 events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let cache = dir.join(".git/spectra/cache");
    let time_manifest = || {
        let (took, output) = spectra(&dir, &["manifest", "--format", "json"], "");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 150);
        took.as_secs_f64() * 1e3
    };
    // Cold: the median of five runs, each with the cache deleted first.
    let mut colds: Vec<f64> = (0..5)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&cache);
            time_manifest()
        })
        .collect();
    let cold = percentile(&mut colds, 50.0);
    let mut warm: Vec<f64> = (0..10).map(|_| time_manifest()).collect();
    let mut one_new = Vec::new();
    for n in 0..10 {
        let (_, output) = spectra(
            &dir,
            &[
                "append",
                "--kind",
                "note.added",
                "--run",
                &format!("extra-{n}"),
                "--payload",
                "{}",
            ],
            "",
        );
        assert!(output.status.success());
        one_new.push(time_manifest());
    }
    let started = Instant::now();
    git(&dir, &["log", "--oneline", "-1", "refs/spectra/events"]);
    let git_log = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "manifest on 100,000 events: cold {cold:.0} ms (target < 1000), warm p50 {:.1} ms, after one new event p50 {:.1} ms (target < 20); git log -1 {git_log:.1} ms",
        percentile(&mut warm, 50.0),
        percentile(&mut one_new, 50.0)
    );
    bench_names(&dir);
    // A run reads the manifest index, not the whole log: discover must not slow down as the
    // log grows. The first run brings the index up to the appended events.
    let server = instant_llm();
    timed_discover(&dir, "long-log-warm-up", &server.base_url());
    let mut overheads: Vec<f64> = (0..10)
        .map(|n| timed_discover(&dir, &format!("long-log-{n}"), &server.base_url()).1)
        .collect();
    println!(
        "discover on that log x10: overhead p50 {:.1} ms p95 {:.1} ms",
        percentile(&mut overheads, 50.0),
        percentile(&mut overheads, 95.0)
    );
}

/// The median milliseconds of `runs` runs of `git-spectra args` in `dir`.
fn median_ms(dir: &Path, args: &[&str], runs: usize) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let (took, output) = spectra(dir, args, "");
            assert!(output.status.success(), "{args:?}: {output:?}");
            took.as_secs_f64() * 1e3
        })
        .collect();
    percentile(&mut samples, 50.0)
}

/// Human output names events by short forms unique in the log, and every id argument is
/// resolved against the whole log: what that costs on the 100,000-event log, against
/// `git log --oneline -5` (which abbreviates the same way) and JSON output (full ids).
fn bench_names(dir: &Path) {
    let started = Instant::now();
    git(dir, &["log", "--oneline", "-5", "refs/spectra/events"]);
    let git_log = started.elapsed().as_secs_f64() * 1e3;
    let newest = git(dir, &["rev-parse", "--short=12", "refs/spectra/events"]);
    let human = median_ms(dir, &["log", "-5"], 5);
    let json = median_ms(dir, &["log", "-5", "--format", "json"], 5);
    let show = median_ms(dir, &["show", newest.trim()], 5);
    println!(
        "names on 100,000 events: log -5 {human:.0} ms, log -5 --format json {json:.0} ms, show <hash prefix> {show:.0} ms; git log --oneline -5 {git_log:.1} ms"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--keep DIR` builds in DIR and leaves it there, to profile by hand.
    let kept = args
        .iter()
        .position(|arg| arg == "--keep")
        .and_then(|at| args.get(at + 1))
        .map(std::path::PathBuf::from);
    let scratch = tempfile::tempdir().unwrap();
    let root = kept.clone().unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&root).unwrap();
    if !args.iter().any(|arg| arg == "--manifest-only") {
        bench_discover(&root);
    }
    if !args.iter().any(|arg| arg == "--discover-only") {
        bench_manifest(&root);
    }
}
