//! Tests of the whole fold: reduced entries, the tally, the view and the stored form together.

use super::reduce::{Fact, Reduced};
use super::*;
use crate::event::{Event, GENESIS_DIGEST, NewEvent, kind};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The facts a tally holds, by event id.
fn sample_ids(tally: &Tally) -> HashMap<&str, &Fact> {
    tally
        .samples
        .iter()
        .map(|sample| (sample.id.as_str(), &sample.fact))
        .collect()
}

fn event(kind: &str, activity: Option<&str>, payload: Value) -> Event {
    let mut new = NewEvent::new(kind).payload(payload);
    new.activity = activity.map(str::to_string);
    new.seal("A <a@x>", 1, GENESIS_DIGEST)
}

fn at(mut event: Event, at: &str) -> Event {
    event.at = at.to_string();
    event
}

#[test]
fn nearest_rank_picks_the_sample_at_rank_ceil_p_n() {
    let hundred: Vec<u64> = (1..=100).collect();
    assert_eq!(nearest_rank(&hundred, 50), Some(50));
    assert_eq!(nearest_rank(&hundred, 95), Some(95));
    assert_eq!(nearest_rank(&hundred, 99), Some(99));
    assert_eq!(nearest_rank(&hundred, 100), Some(100));
    let twenty: Vec<u64> = (1..=20).map(|n| n * 10).collect();
    assert_eq!(nearest_rank(&twenty, 50), Some(100));
    assert_eq!(nearest_rank(&twenty, 95), Some(190));
    assert_eq!(nearest_rank(&twenty, 99), Some(200));
}

#[test]
fn nearest_rank_of_tiny_sets() {
    assert_eq!(nearest_rank(&[], 50), None);
    assert_eq!(nearest_rank(&[7], 1), Some(7));
    assert_eq!(nearest_rank(&[7], 99), Some(7));
    assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
    assert_eq!(nearest_rank(&[1, 2], 51), Some(2));
    assert_eq!(nearest_rank(&[5], 0), Some(5));
}

#[test]
fn durations_sort_before_ranking_and_report_the_mean() {
    let summary = Durations::of(vec![30, 10, 20, 40]);
    assert_eq!(summary.count, 4);
    assert_eq!(summary.mean, Some(25.0));
    assert_eq!(summary.p50, Some(20));
    assert_eq!(summary.p95, Some(40));
    assert_eq!(summary.max, Some(40));
    let empty = Durations::of(Vec::new());
    assert_eq!((empty.count, empty.mean, empty.p99), (0, None, None));
}

#[test]
fn failures_are_counted_by_reason_and_unknown_or_incomplete_without_one() {
    let events = [
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "failed", "duration_ms": 5, "errors": [{"reason": "llm_unreachable", "message": "x"}]}),
        ),
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "blocked", "duration_ms": 7, "errors": []}),
        ),
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "succeeded", "duration_ms": 9, "errors": []}),
        ),
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "incomplete", "duration_ms": 8, "errors": []}),
        ),
    ];
    let stats = fold(&events).stats(&Scope::default());
    let plan = &stats.activities[0];
    assert_eq!((plan.runs, plan.succeeded, plan.failed), (4, 1, 3));
    assert_eq!(plan.failures_by_reason["llm_unreachable"], 1);
    assert_eq!(plan.failures_by_reason["unknown"], 1);
    assert_eq!(plan.failures_by_reason["incomplete"], 1);
    assert_eq!(plan.duration_ms.p50, Some(7));
}

#[test]
fn reverted_events_leave_stats_until_restored() {
    let finished = event(
        kind::RUN_FINISHED,
        None,
        json!({"outcome": "succeeded", "duration_ms": 10}),
    );
    let revert = event(
        kind::EVENTS_REVERTED,
        None,
        json!({"targets": [finished.id.clone()]}),
    );
    let mut tally = fold([&finished, &revert]);
    assert_eq!(sample_ids(&tally).len(), 1);
    let stats = tally.stats(&Scope::default());
    assert_eq!((stats.runs.runs, stats.excluded_reverted), (0, 1));
    assert_eq!(stats.undo.undos, 1);
    tally.add(&event(
        kind::EVENTS_RESTORED,
        None,
        json!({"targets": [revert.id.clone()]}),
    ));
    let stats = tally.stats(&Scope::default());
    assert_eq!((stats.runs.runs, stats.excluded_reverted), (1, 0));
    assert_eq!((stats.undo.undos, stats.undo.redos), (1, 1));
}

#[test]
fn scope_filters_by_time_and_activity() {
    let old = at(
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "succeeded"}),
        ),
        "2026-01-01T00:00:00.000Z",
    );
    let new = at(
        event(
            kind::ACTIVITY_FINISHED,
            Some("build"),
            json!({"outcome": "succeeded"}),
        ),
        "2026-02-01T00:00:00.000Z",
    );
    let tally = fold([&old, &new]);
    let since = Scope {
        since: Some("2026-01-15T00:00:00Z".parse().unwrap()),
        activity: None,
    };
    let names: Vec<_> = tally
        .stats(&since)
        .activities
        .into_iter()
        .map(|a| a.activity)
        .collect();
    assert_eq!(names, ["build"]);
    let plan = Scope {
        since: None,
        activity: Some("plan".into()),
    };
    let names: Vec<_> = tally
        .stats(&plan)
        .activities
        .into_iter()
        .map(|a| a.activity)
        .collect();
    assert_eq!(names, ["plan"]);
}

#[test]
fn unknown_kinds_and_incomplete_payloads_are_skipped() {
    let events = [
        event("note.added", None, json!({"outcome": "succeeded"})),
        event(kind::PLAYBOOK_FINISHED, None, json!({"outcome": "failed"})),
    ];
    let tally = fold(&events);
    assert_eq!(tally.events(), 2);
    assert!(sample_ids(&tally).is_empty());
}

#[test]
fn llm_errors_group_by_status_with_null_for_no_response() {
    let call = |attempt: u64, status: Value, error: Value| {
        event(
            kind::LLM_CALLED,
            Some("plan"),
            json!({"url": "u", "model": "m", "attempt": attempt, "status": status, "error": error,
                   "latency_ms": 10, "usage": null}),
        )
    };
    let events = [
        call(1, Value::Null, json!("timed out")),
        call(2, json!(429), json!("HTTP 429")),
        call(3, json!(200), Value::Null),
    ];
    let stats = fold(&events).stats(&Scope::default());
    let llm = &stats.llm[0];
    assert_eq!((llm.calls, llm.retries, llm.errors), (3, 2, 2));
    let statuses: Vec<_> = llm.errors_by_status.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [None, Some(429)]);
    assert_eq!(llm.prompt_tokens, 0);
}

#[test]
fn the_compact_cache_shape_gives_back_the_same_stats_and_the_light_decoder_agrees() {
    let events = [
        event(
            kind::ACTIVITY_FINISHED,
            Some("plan"),
            json!({"outcome": "failed", "duration_ms": 5, "errors": [{"reason": "llm_unreachable"}, {}]}),
        ),
        event(
            kind::LLM_CALLED,
            Some("plan"),
            json!({"url": "http://127.0.0.1:1/v1/chat/completions", "model": "m", "attempt": 2,
                   "status": 429, "error": "HTTP 429", "latency_ms": 31,
                   "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
        ),
        event(
            kind::LLM_CALLED,
            Some("plan"),
            json!({"url": "http://127.0.0.1:1/v1/chat/completions", "model": "m", "attempt": 1,
                   "status": 200, "error": "went silent", "latency_ms": 60000, "usage": null,
                   "stream": true, "tokens_received": 7}),
        ),
        event(
            kind::PLAYBOOK_FINISHED,
            None,
            json!({"playbook": "repo.inventory", "outcome": "succeeded", "duration_ms": 12}),
        ),
        event(
            kind::RUN_FINISHED,
            None,
            json!({"outcome": "succeeded", "duration_ms": 80}),
        ),
        event(kind::DECISION_MADE, Some("plan"), json!({"decision": {}})),
    ];
    let mut undo = event(kind::EVENTS_REVERTED, None, json!({}));
    undo.payload = json!({"targets": [events[3].id.clone()]});
    let mut tally = fold(events.iter().chain([&undo]));
    let scope = Scope::default();
    // A stream that broke off reported no usage: what it delivered counts as written.
    assert_eq!(tally.stats(&scope).llm[0].completion_tokens, 4 + 7);
    let json = serde_json::to_string(&tally).unwrap();
    let back: Tally = serde_json::from_str(&json).unwrap();
    assert_eq!(back.stats(&scope), tally.stats(&scope));
    assert!(json.len() < 800, "compact: {json}");

    // Folding through the light decoder gives the same tally as through whole events.
    let mut light = Tally::default();
    for event in events.iter().chain([&undo]) {
        light.apply_entry(Reduced::of_json(&event.canonical_json()).unwrap());
    }
    assert_eq!(light.stats(&scope), tally.stats(&scope));
    tally.add(&events[0]);
    assert_ne!(light.stats(&scope), tally.stats(&scope));

    // A file whose rows name strings it does not hold is refused, not misread.
    let broken = json.replace("\"strings\":[", "\"strings\":[],\"unused\":[");
    assert!(serde_json::from_str::<Tally>(&broken).is_err());
}
