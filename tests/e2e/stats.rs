//! `git spectra stats`: exact figures from a log of known synthetic events, the empty log, the
//! documented JSON shape, filters, and the tip-keyed cache (never the truth, extended by new
//! events, rebuilt when the log is replaced).

use std::path::Path;

use serde_json::{Value, json};
use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::Store;

use crate::common::{TestRepo, read_fold_cache};

const OLD: &str = "2025-06-01T00:00:00.000Z";
const NEW: &str = "2026-01-02T00:00:00.000Z";
const URL_A: &str = "http://a.example/v1/chat/completions";
const URL_B: &str = "http://b.example/v1/chat/completions";

fn new_event(kind: &str, activity: Option<&str>, at: &str, payload: Value) -> NewEvent {
    let mut event = NewEvent::new(kind).run("run-1").payload(payload);
    event.activity = activity.map(str::to_string);
    event.at = at.to_string();
    event
}

/// Twenty `discover` activities lasting 10, 20, ... 200 ms: 15 succeeded, 3 failed for
/// `llm_unreachable`, 1 failed for both `invalid_decision` and `playbook_failed`, 1 blocked with
/// no reason. Nearest rank over 20: p50 is the 10th (100), p95 the 19th (190), p99 the 20th.
fn discover_activities() -> Vec<NewEvent> {
    (1..=20u64)
        .map(|n| {
            let (outcome, errors) = match n {
                1..=15 => ("succeeded", json!([])),
                16..=18 => (
                    "failed",
                    json!([{"reason": "llm_unreachable", "message": "no answer"}]),
                ),
                19 => (
                    "failed",
                    json!([{"reason": "invalid_decision", "message": "a"},
                           {"reason": "playbook_failed", "message": "b"}]),
                ),
                _ => ("blocked", json!([])),
            };
            new_event(
                "activity.finished",
                Some("discover"),
                OLD,
                json!({"outcome": outcome, "duration_ms": n * 10, "outputs": {},
                       "quality_gates": {}, "gates_passed": 0, "gates_total": 0, "errors": errors}),
            )
        })
        .collect()
}

/// One hundred attempts to endpoint A with latencies 1..=100 ms: every tenth is a retry
/// (attempt 2); five got 429, three no response at all; the 92 others succeeded with 10 prompt
/// and 2 completion tokens each.
fn llm_calls_a() -> Vec<NewEvent> {
    (1..=100u64)
        .map(|n| {
            let attempt = if n % 10 == 0 { 2 } else { 1 };
            let (status, error, usage) = match n {
                1..=5 => (json!(429), json!("HTTP 429: slow down"), Value::Null),
                6..=8 => (
                    Value::Null,
                    json!("no complete response within 1s"),
                    Value::Null,
                ),
                _ => (
                    json!(200),
                    Value::Null,
                    json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}),
                ),
            };
            new_event(
                "llm.called",
                Some("discover"),
                OLD,
                llm_payload(URL_A, "model-a", attempt, status, error, n, usage),
            )
        })
        .collect()
}

fn llm_payload(
    url: &str,
    model: &str,
    attempt: u64,
    status: Value,
    error: Value,
    latency_ms: u64,
    usage: Value,
) -> Value {
    json!({"attempt": attempt, "turn": 0, "format": "json_schema", "url": url, "model": model,
           "started_at": OLD, "status": status, "latency_ms": latency_ms, "usage": usage,
           "finish_reason": "stop", "headers": {}, "error": error,
           "request_sha256": "0", "response_sha256": null})
}

/// Ten `catalog.check` runs of 100, 200, ... 1000 ms (8 succeeded, 1 failed, 1 timed out) and
/// one dry run, whose duration says nothing and is left out.
fn playbooks() -> Vec<NewEvent> {
    let mut events: Vec<NewEvent> = (1..=10u64)
        .map(|n| {
            let outcome = match n {
                9 => "failed",
                10 => "timed_out",
                _ => "succeeded",
            };
            playbook_finished(outcome, n * 100)
        })
        .collect();
    events.push(playbook_finished("dry_run", 5));
    events
}

fn playbook_finished(outcome: &str, duration_ms: u64) -> NewEvent {
    new_event(
        "playbook.finished",
        Some("discover"),
        OLD,
        json!({"playbook": "catalog.check", "action": "run", "argv": [], "outcome": outcome,
               "exit_code": 0, "signal": null, "duration_ms": duration_ms,
               "stdout": null, "stderr": null}),
    )
}

fn runs() -> Vec<NewEvent> {
    [
        ("succeeded", 1000),
        ("succeeded", 2000),
        ("failed", 3000),
        ("succeeded", 4000),
    ]
    .into_iter()
    .map(|(outcome, duration_ms)| {
        new_event(
            "run.finished",
            None,
            OLD,
            json!({"outcome": outcome, "duration_ms": duration_ms, "activities": []}),
        )
    })
    .collect()
}

/// The whole synthetic log, appended in one batch through the library. Besides the figures
/// above: a `plan` activity and an endpoint-B call in January 2026 (for `--since`), unknown
/// kinds (skipped), an outlier activity that an undo reverted (left out), and an endpoint-B
/// call reverted and then restored (counted).
fn synthetic_log() -> Vec<NewEvent> {
    let mut events = discover_activities();
    events.extend(llm_calls_a());
    events.extend(playbooks());
    events.extend(runs());
    events.push(new_event(
        "activity.finished",
        Some("plan"),
        NEW,
        json!({"outcome": "succeeded", "duration_ms": 5, "errors": []}),
    ));
    events.push(new_event(
        "llm.called",
        Some("plan"),
        NEW,
        llm_payload(
            URL_B,
            "model-b",
            1,
            json!(200),
            Value::Null,
            7,
            json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}),
        ),
    ));
    events.push(new_event(
        "note.added",
        Some("discover"),
        OLD,
        json!({"outcome": "succeeded"}),
    ));
    events.push(new_event(
        "review.scored",
        None,
        OLD,
        json!({"duration_ms": 1}),
    ));

    let outlier = new_event(
        "activity.finished",
        Some("discover"),
        OLD,
        json!({"outcome": "failed", "duration_ms": 99_999, "errors": [{"reason": "outlier"}]}),
    );
    let undone = new_event(
        "events.reverted",
        None,
        OLD,
        json!({"targets": [outlier.id], "runs": [], "reverts": [], "compensations": [], "forced": false}),
    );
    let restored_call = new_event(
        "llm.called",
        Some("plan"),
        NEW,
        llm_payload(
            URL_B,
            "model-b",
            1,
            json!(200),
            Value::Null,
            9,
            json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}),
        ),
    );
    let undone_call = new_event(
        "events.reverted",
        None,
        OLD,
        json!({"targets": [restored_call.id], "runs": [], "reverts": [], "compensations": [], "forced": false}),
    );
    let redo = new_event(
        "events.restored",
        None,
        OLD,
        json!({"targets": [undone_call.id], "reapplied": []}),
    );
    events.extend([outlier, undone, restored_call, undone_call, redo]);
    events
}

/// Events in [`synthetic_log`]: 20 + 100 + 11 + 4 + 2 + 2 + 5.
const SYNTHETIC_EVENTS: u64 = 144;

fn append_all(root: &Path, events: Vec<NewEvent>) {
    let repo = Repo::open(root).expect("open the test repository");
    Store::new(&repo)
        .append_batch(events)
        .expect("append the synthetic log");
}

fn repo_with_synthetic_log() -> TestRepo {
    let repo = TestRepo::new();
    append_all(repo.root(), synthetic_log());
    repo
}

fn stats_json(repo: &TestRepo, args: &[&str]) -> Value {
    let mut all = vec!["stats", "--format", "json"];
    all.extend_from_slice(args);
    let run = repo.spectra(&all).success();
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", run.stdout))
}

fn cache_file(repo: &TestRepo) -> std::path::PathBuf {
    repo.root().join(".git/spectra/cache/stats.json")
}

#[test]
fn activity_figures_are_exact() {
    let repo = repo_with_synthetic_log();
    let stats = stats_json(&repo, &[]);
    assert_eq!(stats["events"], SYNTHETIC_EVENTS);
    let discover = &stats["activities"][0];
    assert_eq!(discover["activity"], "discover");
    assert_eq!(discover["runs"], 20);
    assert_eq!(discover["succeeded"], 15);
    assert_eq!(discover["failed"], 5);
    assert_eq!(discover["success_rate"], 0.75);
    assert_eq!(
        discover["outcomes"],
        json!({"succeeded": 15, "failed": 4, "blocked": 1})
    );
    assert_eq!(
        discover["failures_by_reason"],
        json!({"llm_unreachable": 3, "invalid_decision": 1, "playbook_failed": 1, "unknown": 1})
    );
    assert_eq!(
        discover["duration_ms"],
        json!({"count": 20, "mean": 105.0, "p50": 100, "p95": 190, "p99": 200, "max": 200})
    );
    assert_eq!(stats["activities"][1]["activity"], "plan");
}

#[test]
fn llm_figures_are_exact_per_endpoint_and_model() {
    let repo = repo_with_synthetic_log();
    let stats = stats_json(&repo, &[]);
    let a = &stats["llm"][0];
    assert_eq!(
        (a["url"].as_str(), a["model"].as_str()),
        (Some(URL_A), Some("model-a"))
    );
    assert_eq!(a["calls"], 100);
    assert_eq!(a["retries"], 10);
    assert_eq!(a["errors"], 8);
    assert_eq!(a["error_rate"], 0.08);
    assert_eq!(
        a["errors_by_status"],
        json!([{"status": null, "count": 3, "rate": 0.03}, {"status": 429, "count": 5, "rate": 0.05}])
    );
    assert_eq!(
        a["latency_ms"],
        json!({"count": 100, "mean": 50.5, "p50": 50, "p95": 95, "p99": 99, "max": 100})
    );
    assert_eq!(
        (a["prompt_tokens"].as_u64(), a["completion_tokens"].as_u64()),
        (Some(920), Some(184))
    );

    // Endpoint B: one call, plus one that was reverted and then restored.
    let b = &stats["llm"][1];
    assert_eq!(b["model"], "model-b");
    assert_eq!(b["calls"], 2);
    assert_eq!(b["errors_by_status"], json!([]));
    assert_eq!(b["prompt_tokens"], 200);
    assert_eq!(b["latency_ms"]["p50"], 7);
    assert_eq!(b["latency_ms"]["p99"], 9);
}

#[test]
fn playbook_run_and_undo_figures_are_exact() {
    let repo = repo_with_synthetic_log();
    let stats = stats_json(&repo, &[]);
    let playbook = &stats["playbooks"][0];
    assert_eq!(playbook["playbook"], "catalog.check");
    assert_eq!(playbook["runs"], 10);
    assert_eq!(playbook["dry_runs"], 1);
    assert_eq!(playbook["failed"], 2);
    assert_eq!(playbook["failure_rate"], 0.2);
    assert_eq!(
        playbook["duration_ms"],
        json!({"count": 10, "mean": 550.0, "p50": 500, "p95": 1000, "p99": 1000, "max": 1000})
    );
    assert_eq!(stats["runs"]["runs"], 4);
    assert_eq!(stats["runs"]["failed"], 1);
    assert_eq!(stats["runs"]["success_rate"], 0.75);
    assert_eq!(stats["runs"]["duration_ms"]["p50"], 2000);
    assert_eq!(stats["runs"]["duration_ms"]["p95"], 4000);
    // The reverted outlier is out of the discover figures above and counted here.
    assert_eq!(stats["excluded_reverted"], 1);
    assert_eq!(stats["undo"], json!({"undos": 2, "redos": 1}));
}

#[test]
fn since_and_activity_narrow_the_figures() {
    let repo = repo_with_synthetic_log();
    let since = stats_json(&repo, &["--since", "2026-01-01"]);
    assert_eq!(since["since"], "2026-01-01T00:00:00Z");
    let names: Vec<&str> = since["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activity"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plan"]);
    assert_eq!(since["llm"].as_array().unwrap().len(), 1);
    assert_eq!(since["runs"]["runs"], 0);
    // The undos were recorded in 2025.
    assert_eq!(since["undo"], json!({"undos": 0, "redos": 0}));

    let plan = stats_json(&repo, &["--activity", "plan"]);
    assert_eq!(plan["activity"], "plan");
    assert_eq!(plan["activities"].as_array().unwrap().len(), 1);
    assert_eq!(plan["llm"][0]["calls"], 2);
    assert_eq!(plan["playbooks"], json!([]));
    // The total is the log's, whatever the scope.
    assert_eq!(plan["events"], SYNTHETIC_EVENTS);
}

#[test]
fn the_human_report_has_a_row_per_group() {
    let repo = repo_with_synthetic_log();
    let out = repo.spectra(&["stats"]).success().stdout;
    assert!(
        out.starts_with(&format!(
            "{SYNTHETIC_EVENTS} events in the log; 1 left out as reverted; 2 undos, 1 redos"
        )),
        "{out}"
    );
    let discover = out
        .lines()
        .find(|l| l.trim_start().starts_with("discover "))
        .expect(&out);
    let cells: Vec<&str> = discover.split_whitespace().collect();
    assert_eq!(
        cells,
        ["discover", "20", "5", "75.0%", "105.0", "100", "190", "200"]
    );
    assert!(
        out.contains(
            "discover failures: invalid_decision 1, llm_unreachable 3, playbook_failed 1, unknown 1"
        ),
        "{out}"
    );
    assert!(
        out.contains("model-a errors: no response 3 (3.0%), 429 5 (5.0%)"),
        "{out}"
    );
}

#[test]
fn stats_on_an_empty_log_prints_zeros_and_succeeds() {
    let repo = TestRepo::new();
    let human = repo.spectra(&["stats"]).success();
    assert!(
        human.stdout.starts_with("0 events in the log;"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("(none)"), "{}", human.stdout);
    assert_eq!(human.stderr, "");
    let stats = stats_json(&repo, &[]);
    assert_eq!(stats["events"], 0);
    assert_eq!(stats["activities"], json!([]));
    assert_eq!(stats["runs"]["runs"], 0);
    assert_eq!(stats["runs"]["duration_ms"]["p50"], Value::Null);
    assert_eq!(stats["undo"], json!({"undos": 0, "redos": 0}));
}

/// Every key of the output, as `path.to.key`, with array elements as `[]`.
fn key_paths(value: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                // Maps keyed by data (outcome or reason names) are documented as maps.
                let is_data_map = matches!(key.as_str(), "outcomes" | "failures_by_reason");
                let path = format!("{prefix}{key}");
                out.insert(path.clone());
                if !is_data_map {
                    key_paths(item, &format!("{path}."), out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_json_shape_is_the_documented_one() {
    let repo = repo_with_synthetic_log();
    let stats = stats_json(&repo, &[]);
    let mut paths = std::collections::BTreeSet::new();
    key_paths(&stats, "", &mut paths);
    let doc = std::fs::read_to_string(crate::common::manifest_dir().join("docs/stats.md"))
        .expect("docs/stats.md");
    let documented: std::collections::BTreeSet<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(
        paths, documented,
        "the output and the table in docs/stats.md differ"
    );
}

#[test]
fn deleting_the_cache_changes_no_output() {
    let repo = repo_with_synthetic_log();
    let first = repo
        .spectra(&["stats", "--format", "json"])
        .success()
        .stdout;
    assert!(cache_file(&repo).is_file(), "stats wrote its cache");
    let cached = repo
        .spectra(&["stats", "--format", "json"])
        .success()
        .stdout;
    std::fs::remove_dir_all(repo.root().join(".git/spectra/cache")).unwrap();
    let rebuilt = repo
        .spectra(&["stats", "--format", "json"])
        .success()
        .stdout;
    assert_eq!(first, cached);
    assert_eq!(first, rebuilt);
    let human_cached = repo.spectra(&["stats"]).success().stdout;
    std::fs::remove_file(cache_file(&repo)).unwrap();
    assert_eq!(human_cached, repo.spectra(&["stats"]).success().stdout);
}

#[test]
fn a_corrupt_cache_is_ignored_and_replaced() {
    let repo = repo_with_synthetic_log();
    let truth = stats_json(&repo, &[]);
    std::fs::write(cache_file(&repo), "{not json").unwrap();
    assert_eq!(stats_json(&repo, &[]), truth);
    let (header, state) = read_fold_cache(&cache_file(&repo));
    assert_eq!(header["version"], 4);
    assert!(
        header["place"]["commit"].is_string() && state.is_object(),
        "{header} {state}"
    );
}

#[test]
fn an_event_appended_after_a_cached_read_is_folded_in_incrementally() {
    let repo = repo_with_synthetic_log();
    assert_eq!(stats_json(&repo, &[])["runs"]["runs"], 4);
    // Another process appends a run.
    repo.spectra(&[
        "append",
        "--kind",
        "run.finished",
        "--payload",
        r#"{"outcome": "failed", "duration_ms": 5000, "activities": []}"#,
    ])
    .success();
    let run = repo
        .spectra(&["-vv", "stats", "--format", "json"])
        .success();
    let stats: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(stats["runs"]["runs"], 5);
    assert_eq!(stats["runs"]["failed"], 2);
    assert_eq!(stats["events"], SYNTHETIC_EVENTS + 1);
    // Only the new event was read: the cached tip was found among its ancestors.
    assert!(
        run.stderr.contains("folded=1 incremental=true"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_replaced_log_rebuilds_the_cache() {
    let repo = repo_with_synthetic_log();
    append_all(
        repo.root(),
        vec![new_event(
            "run.finished",
            None,
            OLD,
            json!({"outcome": "succeeded", "duration_ms": 1}),
        )],
    );
    assert_eq!(stats_json(&repo, &[])["runs"]["runs"], 5);
    // Point the ref back one event, as a fetch of another history could: the cached tip is no
    // longer an ancestor, so its tally must not be reused.
    repo.git(&["update-ref", "refs/spectra/events", "refs/spectra/events~1"]);
    let stats = stats_json(&repo, &[]);
    assert_eq!(stats["runs"]["runs"], 4);
    assert_eq!(stats["events"], SYNTHETIC_EVENTS);
}
