//! `git spectra stats` over a long log: cold (no cache), warm (cache hit), and warm with one
//! event appended after the cache was written.
//!
//! Run by hand (not in CI): `cargo bench --bench stats` (add `-- --events N` for another size,
//! `-- --keep DIR` to keep the filled repository in `DIR/log`).
//! It fills a scratch repository with N synthetic events of the kinds stats reads (appended in
//! batches of 1000 through the library, so each batch is one pack, as a run's events are), then
//! times the release binary as a user would run it. Each figure is the median of five runs.
//! The target is cold < 1 s at 100,000 events; `git cat-file --batch` reading the same blobs is
//! timed alongside, as a bearing for how fast this machine is at the moment. Results go in
//! docs/performance.md under "Stats".

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::Store;

mod common;
use common::{cat_file_event_blobs, git};

const BATCH: usize = 1_000;
const REPEATS: usize = 5;

/// The value after `flag` on the command line.
fn arg_value(flag: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|arg| arg == flag)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// The n-th synthetic event: a realistic mix, mostly LLM attempts and playbook runs.
fn event(n: usize) -> NewEvent {
    let activity = ["discover", "assess", "plan", "design", "build"][n % 5];
    let model = ["m-small", "m-large"][n % 2];
    let playbook = ["catalog.check", "tests.run", "branch.create"][n % 3];
    let (kind, payload) = match n % 10 {
        0..=3 => (
            "llm.called",
            json!({"attempt": 1 + (n % 3), "turn": 0, "format": "json_schema",
                   "url": "http://localhost:8001/v1/chat/completions",
                   "model": model, "started_at": "2026-11-25T18:00:00Z",
                   "status": if n % 17 == 0 { json!(429) } else { json!(200) },
                   "latency_ms": 200 + (n * 7919) % 5000,
                   "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
                   "finish_reason": "stop", "headers": {},
                   "error": if n % 17 == 0 { json!("HTTP 429") } else { json!(null) },
                   "request_sha256": "ab", "response_sha256": "cd"}),
        ),
        4..=6 => (
            "playbook.finished",
            json!({"playbook": playbook,
                   "action": "run", "argv": ["git", "spectra", "builtin"],
                   "outcome": if n % 13 == 0 { "failed" } else { "succeeded" },
                   "exit_code": 0, "signal": null, "duration_ms": (n * 104_729) % 60_000,
                   "stdout": {"total_bytes": 10, "truncated": false, "sha256": "ef"},
                   "stderr": {"total_bytes": 0, "truncated": false, "sha256": "ef"}}),
        ),
        7 | 8 => (
            "activity.finished",
            json!({"outcome": if n % 11 == 0 { "failed" } else { "succeeded" },
                   "duration_ms": (n * 15_485_863) % 120_000, "outputs": {"summary": "done"},
                   "quality_gates": {"has_output": true}, "gates_passed": 1, "gates_total": 1,
                   "errors": if n % 11 == 0 { json!([{"reason": "playbook_failed", "message": "exit 1"}]) } else { json!([]) }}),
        ),
        _ => (
            "run.finished",
            json!({"outcome": "succeeded", "duration_ms": (n * 32_452_843) % 600_000, "activities": []}),
        ),
    };
    NewEvent::new(kind)
        .run(format!("run-{}", n / 50))
        .activity(activity)
        .service("bench")
        .payload(payload)
}

fn fill(dir: &Path, events: usize) -> Duration {
    let repo = Repo::open(dir).expect("open the scratch repository");
    let store = Store::new(&repo);
    let started = Instant::now();
    for first in (0..events).step_by(BATCH) {
        let batch = (first..(first + BATCH).min(events)).map(event).collect();
        store.append_batch(batch).expect("append a batch");
    }
    started.elapsed()
}

/// One `git spectra stats --format json`, timed from spawn to exit.
fn stats_once(dir: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_git-spectra"))
        .current_dir(dir)
        .args(["stats", "--format", "json"])
        .output()
        .expect("run git-spectra stats");
    let took = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    took
}

/// `git spectra log --format json` over the same log: every event read one commit at a time,
/// newest first. Its output goes to /dev/null.
fn log_once(dir: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_git-spectra"))
        .current_dir(dir)
        .args(["log", "--format", "json"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run git-spectra log");
    assert!(status.success());
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn cache_dir(dir: &Path) -> std::path::PathBuf {
    dir.join(".git/spectra/cache")
}

fn cold(dir: &Path) -> Duration {
    median(
        (0..REPEATS)
            .map(|_| {
                let _ = std::fs::remove_dir_all(cache_dir(dir));
                stats_once(dir)
            })
            .collect(),
    )
}

fn warm(dir: &Path) -> Duration {
    stats_once(dir);
    median((0..REPEATS).map(|_| stats_once(dir)).collect())
}

/// One event appended after the cache was written, then `stats` (folds just that event).
fn warm_plus_one(dir: &Path) -> Duration {
    let repo = Repo::open(dir).expect("open the scratch repository");
    let store = Store::new(&repo);
    median(
        (0..REPEATS)
            .map(|n| {
                stats_once(dir);
                store.append(event(n)).expect("append one event");
                stats_once(dir)
            })
            .collect(),
    )
}

fn report(label: &str, took: Duration) {
    println!("{label:<48} {:>8.1} ms", took.as_secs_f64() * 1e3);
}

fn main() {
    let events = arg_value("--events").map_or(100_000, |n| n.parse().expect("--events N"));
    let root = tempfile::tempdir().expect("scratch dir");
    // `--keep DIR` leaves the filled repository there, for profiling by hand.
    let parent = arg_value("--keep").map_or(root.path().to_path_buf(), std::path::PathBuf::from);
    git(&parent, &["init", "-q", "log"]);
    let dir = parent.join("log");
    git(&dir, &["config", "user.name", "Bench"]);
    git(&dir, &["config", "user.email", "bench@example.com"]);
    // Keep the layout the benchmark describes: one pack per batch, no background repacking.
    git(&dir, &["config", "spectra.store.autoGc", "false"]);
    println!(
        "git spectra stats benchmark ({}, {events} events, median of {REPEATS})",
        git(&dir, &["--version"]).trim()
    );
    let filled = fill(&dir, events);
    println!(
        "filled the log in {:.1} s (batches of {BATCH})",
        filled.as_secs_f64()
    );
    measure(&dir, "one pack per batch");
    git(&dir, &["gc", "-q"]);
    measure(&dir, "after git gc");
    let cache = std::fs::metadata(cache_dir(&dir).join("stats.json")).map(|m| m.len());
    if let Ok(bytes) = cache {
        println!("cache file: {:.1} MB", bytes as f64 / 1e6);
    }
}

fn measure(dir: &Path, layout: &str) {
    let log = median((0..REPEATS).map(|_| log_once(dir)).collect());
    report(&format!("log --format json, {layout}"), log);
    let cat_file = median((0..REPEATS).map(|_| cat_file_event_blobs(dir)).collect());
    report(
        &format!("git cat-file --batch of every event.json, {layout}"),
        cat_file,
    );
    let cold = cold(dir);
    report(&format!("stats cold, {layout} (target < 1 s)"), cold);
    println!(
        "{:<48} {:>8.2}",
        "  cold stats / git cat-file",
        cold.as_secs_f64() / cat_file.as_secs_f64()
    );
    report(&format!("stats warm (cache hit), {layout}"), warm(dir));
    report(
        &format!("stats warm + 1 new event, {layout}"),
        warm_plus_one(dir),
    );
}
