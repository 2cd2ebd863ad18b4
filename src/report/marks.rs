//! The timeline's marks made from events: a model attempt from when it was sent for its
//! latency, a playbook from its start to its end (or the run's end, when it never finished).

use super::fields::text;
use super::gather::millis;
use super::timeline::{Axis, Mark, duration};
use crate::event::payload::{LlmCalled, PlaybookFinished, PlaybookStarted};
use crate::store::StoredEvent;

/// When an attempt was sent, in milliseconds: its `started_at`, or its end less its latency.
pub(super) fn attempt_start(stored: &StoredEvent) -> i64 {
    let call = LlmCalled::of(&stored.event.payload);
    let end = millis(&stored.event.at).unwrap_or_default();
    let latency = call.latency_ms.unwrap_or(0) as i64;
    call.started_at
        .as_deref()
        .and_then(millis)
        .unwrap_or(end - latency)
}

pub(super) fn llm_mark(stored: &StoredEvent, axis: &Axis) -> Mark {
    let call = LlmCalled::of(&stored.event.payload);
    let latency = call.latency_ms.unwrap_or(0) as i64;
    let start = attempt_start(stored);
    let (left, width) = axis.place(start, start + latency);
    let status = call
        .status
        .map_or("no response".to_string(), |status| format!("HTTP {status}"));
    let tokens = call
        .usage
        .as_ref()
        .map(|usage| format!(", {} tokens", text(&usage["total_tokens"])))
        .unwrap_or_default();
    Mark {
        kind: "llm",
        href: format!("#e-{}", stored.event.id),
        failed: call.error.as_ref().is_some_and(|error| !error.is_null()),
        left,
        width,
        title: format!(
            "LLM attempt {} (turn {}): {status}, {}{tokens}",
            call.attempt.unwrap_or(1),
            call.turn.unwrap_or(0),
            duration(call.latency_ms)
        ),
    }
}

pub(super) fn playbook_mark(
    started: &StoredEvent,
    finished: Option<&StoredEvent>,
    axis: &Axis,
    end_ms: i64,
) -> Mark {
    let start = PlaybookStarted::of(&started.event.payload);
    let end = finished.map(|stored| PlaybookFinished::of(&stored.event.payload));
    let from = millis(&started.event.at).unwrap_or(end_ms);
    let to = finished
        .and_then(|stored| millis(&stored.event.at))
        .unwrap_or(end_ms);
    let (left, width) = axis.place(from, to);
    let outcome = end
        .as_ref()
        .and_then(|end| end.outcome.as_ref())
        .map_or("in_progress".to_string(), |outcome| {
            outcome.word().to_string()
        });
    let exit = end
        .as_ref()
        .and_then(|end| end.exit_code)
        .map(|code| format!(", exit {code}"))
        .unwrap_or_default();
    Mark {
        kind: "playbook",
        href: format!("#e-{}", started.event.id),
        failed: end
            .as_ref()
            .and_then(|end| end.outcome.as_ref())
            .is_some_and(|outcome| !outcome.succeeded() && outcome.word() != "dry_run"),
        left,
        width,
        title: format!(
            "playbook {}: {outcome}{exit}, {}",
            start.playbook.unwrap_or_default(),
            duration(end.and_then(|end| end.duration_ms))
        ),
    }
}
