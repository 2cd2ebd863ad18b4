//! `git spectra report --all` over 1,000 runs: how long it takes to write the page, how big the
//! page is, and how the page behaves in headless Chromium (load, layout, scrolling).
//!
//! Run by hand (not in CI): `cargo bench --bench report` (add `-- --runs N` for another size,
//! `-- --keep DIR` to keep the filled repository in `DIR/log` and the page in `DIR/report.html`).
//! It fills a scratch repository with N synthetic runs of three activities each (each activity:
//! an LLM attempt with a prompt and a reply attached, a decision, a playbook with its output
//! attached, gates), 20 events a run, appended through the library one batch per run, as a run
//! is. Then it times the release binary as a user would run it (median of three), with
//! `git spectra log --format json` over the same log as a bearing. With Chromium on the PATH
//! (or in `CHROMIUM`) it loads the page from file:// with a script that, once the page has
//! loaded, reads the navigation timing, then scrolls the whole page one window at a time,
//! forcing layout at each step, and records the slowest step. Results go in
//! docs/performance.md under "Report".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::Store;

mod common;
use common::git;

const REPEATS: usize = 3;
const ACTIVITIES: [&str; 3] = ["discover", "plan", "design"];

/// The value after `flag` on the command line.
fn arg_value(flag: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|arg| arg == flag)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// The instant `ms` milliseconds after the first run started, as events record time.
fn at(ms: i64) -> String {
    let base = 1_764_000_000_000; // late November 2025
    format!(
        "{:.3}",
        jiff::Timestamp::from_millisecond(base + ms).expect("a valid instant")
    )
}

fn event(
    kind: &str,
    run: &str,
    activity: Option<&str>,
    ms: i64,
    payload: serde_json::Value,
) -> NewEvent {
    let mut event = NewEvent::new(kind).run(run).payload(payload);
    event.activity = activity.map(str::to_string);
    if activity.is_some() {
        event.service = Some("search".to_string());
    }
    event.at = at(ms);
    event
}

/// Run `n`: 20 events over about 40 seconds, one in seven with a failed playbook.
fn run_events(n: usize) -> Vec<NewEvent> {
    let run = format!("bench-run-{n:05}");
    let start = n as i64 * 60_000;
    let mut events = vec![event(
        "run.started",
        &run,
        None,
        start,
        json!({"command": "run", "input": format!("make service {n} searchable"),
               "activities": ACTIVITIES, "mode": "llm", "dry_run": false, "execute": false}),
    )];
    let prompt = "Decide the next step for the service. ".repeat(60);
    for (index, activity) in ACTIVITIES.into_iter().enumerate() {
        let t = start + 100 + index as i64 * 13_000;
        let latency = 2_000 + ((n * 7_919 + index * 104_729) % 6_000) as i64;
        let failed = (n + index) % 7 == 0;
        let decision = json!({"summary": format!("{activity} for run {n}"),
                              "steps": ["one", "two", "three"], "confidence": 70});
        let request = json!({"model": "m-small", "messages": [
            {"role": "system", "content": prompt},
            {"role": "user", "content": format!("Activity {activity}, run {n}")}]});
        let response = json!({"choices": [{"message": {"content": decision.to_string()}}]});
        events.push(event("activity.started", &run, Some(activity), t,
            json!({"input": "make it searchable", "context": {"manifests": [], "playbooks": ["tests.run"]}})));
        events.push(
            event("llm.called", &run, Some(activity), t + 50 + latency,
                json!({"attempt": 1, "turn": 0, "format": "json_schema",
                       "url": "http://localhost:8001/v1/chat/completions", "model": "m-small",
                       "started_at": at(t + 50), "status": 200, "latency_ms": latency,
                       "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
                       "finish_reason": "stop", "headers": {}, "error": null,
                       "request_sha256": "ab", "response_sha256": "cd"}))
            .attach("request.json", request.to_string())
            .attach("response.json", response.to_string()),
        );
        events.push(event(
            "decision.made",
            &run,
            Some(activity),
            t + 60 + latency,
            json!({"decision": decision, "mode": "llm", "format": "json_schema", "repairs": 0}),
        ));
        let pb = t + 100 + latency;
        events.push(event(
            "playbook.started",
            &run,
            Some(activity),
            pb,
            json!({"playbook": "tests.run", "action": "run", "argv": ["cargo", "test"],
                   "inputs": {}, "dry_run": false}),
        ));
        events.push(
            event(
                "playbook.finished",
                &run,
                Some(activity),
                pb + 3_000,
                json!({"playbook": "tests.run", "action": "run", "argv": ["cargo", "test"],
                       "outcome": if failed { "failed" } else { "succeeded" },
                       "exit_code": if failed { 101 } else { 0 }, "signal": null,
                       "duration_ms": 3_000,
                       "stdout": {"total_bytes": 200, "truncated": false, "sha256": "ef"},
                       "stderr": {"total_bytes": 0, "truncated": false, "sha256": "ef"}}),
            )
            .attach("stdout", "test result: ok. 42 passed; 0 failed\n".repeat(5))
            .attach("stderr", ""),
        );
        events.push(event("activity.finished", &run, Some(activity), pb + 3_100,
            json!({"outcome": if failed { "failed" } else { "succeeded" },
                   "duration_ms": pb + 3_100 - t, "outputs": {"summary": "done"},
                   "quality_gates": {"has_summary": true, "tests_pass": !failed},
                   "gates": {"has_summary": {"result": "passed", "level": "required", "basis": "decision", "failures": []},
                             "tests_pass": {"result": if failed { "failed" } else { "passed" }, "level": "required", "basis": "fact", "failures": []}},
                   "gates_passed": if failed { 1 } else { 2 }, "gates_total": 2,
                   "errors": if failed { json!([{"reason": "playbook_failed", "message": "exit 101"}]) } else { json!([]) }})));
    }
    let failed = (0..3).any(|index| (n + index) % 7 == 0);
    events.push(event(
        "run.finished",
        &run,
        None,
        start + 40_000,
        json!({"outcome": if failed { "failed" } else { "succeeded" }, "duration_ms": 40_000,
               "activities": [], "skipped": []}),
    ));
    events
}

fn fill(dir: &Path, runs: usize) -> Duration {
    let repo = Repo::open(dir).expect("open the scratch repository");
    let store = Store::new(&repo);
    let started = Instant::now();
    for n in 0..runs {
        store.append_batch(run_events(n)).expect("append a run");
    }
    started.elapsed()
}

fn timed(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_git-spectra"))
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run git-spectra");
    let took = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn line(label: &str, took: Duration) {
    println!("{label:<52} {:>9.1} ms", took.as_secs_f64() * 1e3);
}

/// What the page records about itself once loaded (see the module documentation).
const PROBE: &str = r#"<script>
window.addEventListener("load",function(){var root=document.documentElement,nav=performance.getEntriesByType("navigation")[0];
root.setAttribute("data-dom-content-loaded",String(Math.round(nav.domContentLoadedEventEnd)));
root.setAttribute("data-load",String(Math.round(nav.loadEventStart)));
var t0=performance.now(),height=document.body.scrollHeight;root.setAttribute("data-first-layout",String(Math.round(performance.now()-t0)));
var steps=0,slowest=0,all=performance.now();for(var y=0;y<height;y+=window.innerHeight){var s=performance.now();window.scrollTo(0,y);document.elementFromPoint(10,10);void document.body.offsetHeight;var d=performance.now()-s;if(d>slowest)slowest=d;steps++}
root.setAttribute("data-scroll-steps",String(steps));root.setAttribute("data-scroll-slowest",slowest.toFixed(1));root.setAttribute("data-scroll-total",String(Math.round(performance.now()-all)));root.setAttribute("data-height",String(height));});
</script>"#;

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome"].map(PathBuf::from))
        .find(|candidate| {
            Command::new(candidate)
                .arg("--version")
                .output()
                .is_ok_and(|output| output.status.success())
        })
}

/// Loads `page` in headless Chromium and returns (time from spawn to exit, the dumped DOM).
fn load(chromium: &Path, profile: &Path, page: &Path) -> (Duration, String) {
    let started = Instant::now();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--window-size=1200,900",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let took = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    (took, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn attribute<'a>(dom: &'a str, name: &str) -> &'a str {
    let root = &dom[dom.find("<html").unwrap_or(0)..];
    let root = &root[..root.find('>').unwrap_or(root.len())];
    root.find(&format!("{name}=\""))
        .map(|start| {
            let start = start + name.len() + 2;
            &root[start..start + root[start..].find('"').unwrap_or(0)]
        })
        .unwrap_or("?")
}

fn browse(chromium: &Path, dir: &Path, page: &Path) {
    let html = std::fs::read_to_string(page).expect("read the page");
    let probed = dir.join("probed.html");
    std::fs::write(
        &probed,
        html.replacen("</head>", &format!("{PROBE}</head>"), 1),
    )
    .unwrap();
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><title>blank</title><p>blank").unwrap();
    let profile = dir.join("chromium-profile");
    load(chromium, &profile, &blank); // the profile is made once, outside the timings
    let blank_time = median(
        (0..REPEATS)
            .map(|_| load(chromium, &profile, &blank).0)
            .collect(),
    );
    let mut runs: Vec<(Duration, String)> = (0..REPEATS)
        .map(|_| load(chromium, &profile, &probed))
        .collect();
    runs.sort_by_key(|(took, _)| *took);
    let (took, dom) = &runs[runs.len() / 2];
    line(
        "chromium --dump-dom of a blank page (browser start)",
        blank_time,
    );
    line("chromium --dump-dom of the report, spawn to exit", *took);
    for (label, name) in [
        (
            "  DOMContentLoaded (ms after navigation start)",
            "data-dom-content-loaded",
        ),
        ("  load event (ms after navigation start)", "data-load"),
        ("  first full layout (ms)", "data-first-layout"),
        ("  page height (px)", "data-height"),
        ("  scroll steps of one window", "data-scroll-steps"),
        (
            "  slowest scroll step incl. layout (ms)",
            "data-scroll-slowest",
        ),
        ("  all scroll steps (ms)", "data-scroll-total"),
    ] {
        println!("{label:<52} {:>9}", attribute(dom, name));
    }
}

fn main() {
    let runs = arg_value("--runs").map_or(1_000, |n| n.parse().expect("--runs N"));
    let root = tempfile::tempdir().expect("scratch dir");
    let parent = arg_value("--keep").map_or(root.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&parent).expect("create the directory to keep the log in");
    git(&parent, &["init", "-q", "log"]);
    let dir = parent.join("log");
    git(&dir, &["config", "user.name", "Bench"]);
    git(&dir, &["config", "user.email", "bench@example.com"]);
    git(&dir, &["config", "spectra.store.autoGc", "false"]);
    println!(
        "git spectra report benchmark ({}, {runs} runs, median of {REPEATS})",
        git(&dir, &["--version"]).trim()
    );
    let filled = fill(&dir, runs);
    println!(
        "filled the log in {:.1} s ({} events)",
        filled.as_secs_f64(),
        runs * 20
    );
    git(&dir, &["gc", "-q"]);
    let page = parent.join("report.html");
    let page_arg = page.to_str().expect("a UTF-8 path");
    let log = median(
        (0..REPEATS)
            .map(|_| timed(&dir, &["log", "--format", "json"]))
            .collect(),
    );
    line("log --format json (bearing)", log);
    let report = median(
        (0..REPEATS)
            .map(|_| timed(&dir, &["report", "--all", "-o", page_arg]))
            .collect(),
    );
    line("report --all -o FILE", report);
    let one = median(
        (0..REPEATS)
            .map(|_| timed(&dir, &["report", "-o", page_arg]))
            .collect(),
    );
    line("report of the newest run -o FILE", one);
    timed(&dir, &["report", "--all", "-o", page_arg]);
    let bytes = std::fs::metadata(&page).expect("the page").len();
    println!("{:<52} {:>9.1} MB", "page size, --all", bytes as f64 / 1e6);
    match chromium() {
        Some(chromium) => browse(&chromium, &parent, &page),
        None => println!("no Chromium on the PATH (or in CHROMIUM): browser figures skipped"),
    }
}
