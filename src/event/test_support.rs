//! Logs built in memory, for tests of the folds.

use super::{Event, GENESIS_DIGEST, NewEvent, kind};

/// Seals `events` as a log in order (lamport 1, 2, ...), for tests of folds.
pub(crate) fn seal_for_tests(events: Vec<NewEvent>) -> Vec<Event> {
    events
        .into_iter()
        .enumerate()
        .map(|(n, event)| event.seal("T <t@x>", n as u64 + 1, GENESIS_DIGEST))
        .collect()
}

/// The events of one discover run (started, activity started, decision, finished, run
/// finished), for tests of folds.
pub(crate) fn discover_run_for_tests(
    run: &str,
    service: &str,
    outcome: &str,
    dry_run: bool,
) -> Vec<NewEvent> {
    use serde_json::json;
    vec![
        NewEvent::new(kind::RUN_STARTED)
            .run(run)
            .payload(json!({"command": "discover", "input": "idea", "dry_run": dry_run})),
        NewEvent::new(kind::ACTIVITY_STARTED)
            .run(run)
            .activity("discover")
            .payload(json!({"input": "idea", "context": {"history_entries": 0}})),
        NewEvent::new(kind::DECISION_MADE)
            .run(run)
            .activity("discover")
            .payload(json!({"decision": {"service_name": service}})),
        NewEvent::new(kind::ACTIVITY_FINISHED)
            .run(run)
            .activity("discover")
            .service(service)
            .payload(
                json!({"outcome": outcome, "duration_ms": 5, "outputs": {"service_name": service},
                "errors": [], "quality_gates": {"a": true}}),
            ),
        NewEvent::new(kind::RUN_FINISHED)
            .run(run)
            .payload(json!({"outcome": outcome, "duration_ms": 6})),
    ]
}
