//! The reduced entry: what one event contributes to stats, decoded from the log.
//!
//! Each event is reduced to the few facts stats needs (a [`Sample`], a [`Revert`] or a
//! [`Restore`]) so that a long log stays small in memory. [`Reduced::of_json`] decodes only the
//! payload fields stats reads, straight from an `event.json`; [`Reduced::of`] reads an already
//! decoded [`Event`]. Both judge the fields alike, through [`Payload`]. Only the payload fields
//! documented in docs/events.md are read; kinds stats does not use, and payloads without what
//! stats needs, reduce to [`Reduced::Skipped`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{self, Event, EventError, Outcome, kind};

/// What one stats-relevant event contributed.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub(super) id: String,
    /// The event's `at`, in milliseconds since the Unix epoch (for `--since`).
    pub(super) at_ms: i64,
    pub(super) activity: Option<String>,
    pub(super) fact: Fact,
}

/// The kind-specific part of a sample: exactly the payload fields stats reads.
#[derive(Debug, Clone)]
pub(super) enum Fact {
    /// `activity.finished`: `outcome`, `duration_ms`, `errors[].reason`.
    Activity {
        outcome: Outcome,
        duration_ms: Option<u64>,
        reasons: Vec<String>,
    },
    /// `llm.called`: one HTTP attempt.
    Llm {
        url: String,
        model: String,
        attempt: u64,
        status: Option<u64>,
        failed: bool,
        latency_ms: Option<u64>,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// `playbook.finished`: `playbook`, `outcome`, `duration_ms`.
    Playbook {
        playbook: String,
        outcome: Outcome,
        duration_ms: Option<u64>,
    },
    /// `run.finished`: `outcome`, `duration_ms`.
    Run {
        outcome: Outcome,
        duration_ms: Option<u64>,
    },
}

/// An `events.reverted`: the events it takes out of stats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Revert {
    pub(super) id: String,
    pub(super) at_ms: i64,
    pub(super) targets: Vec<String>,
}

/// An `events.restored`: the `events.reverted` ids it cancels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Restore {
    pub(super) at_ms: i64,
    pub(super) targets: Vec<String>,
}

/// What one event contributes to a tally, reduced so that a long log stays small in memory.
#[derive(Debug, Clone)]
pub(super) enum Reduced {
    Sample(Sample),
    Revert(Revert),
    Restore(Restore),
    /// A kind stats does not use, or a payload without what it needs.
    Skipped,
}

impl Reduced {
    pub(super) fn of(event: &Event) -> Reduced {
        Reduced::of_parts(
            &event.id,
            &event.at,
            &event.kind,
            event.activity.as_deref(),
            &event.payload,
        )
    }

    /// The entry of one `event.json`, decoding only the fields stats reads: on a long log this
    /// is most of the cost of a cold `stats`. Any other schema goes through the full decoder.
    pub(super) fn of_json(bytes: &[u8]) -> Result<Reduced, EventError> {
        match serde_json::from_slice::<StatsEnvelope>(bytes) {
            Ok(envelope) if envelope.schema == event::SCHEMA_VERSION => Ok(envelope.entry()),
            _ => event::decode(bytes).map(|event| Reduced::of(&event)),
        }
    }

    fn of_parts(
        id: &str,
        at: &str,
        kind: &str,
        activity: Option<&str>,
        payload: &impl Payload,
    ) -> Reduced {
        let at_ms = millis_of(at);
        match kind {
            kind::EVENTS_REVERTED => Reduced::Revert(Revert {
                id: id.to_string(),
                at_ms,
                targets: strings_at(payload, "targets"),
            }),
            kind::EVENTS_RESTORED => Reduced::Restore(Restore {
                at_ms,
                targets: strings_at(payload, "targets"),
            }),
            _ => match fact_of(kind, payload) {
                Some(fact) => Reduced::Sample(Sample {
                    id: id.to_string(),
                    at_ms,
                    activity: activity.map(str::to_string),
                    fact,
                }),
                None => Reduced::Skipped,
            },
        }
    }
}

/// The envelope fields stats reads; serde skips the rest without allocating.
#[derive(Deserialize)]
struct StatsEnvelope<'a> {
    schema: u32,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow)]
    activity: Option<Cow<'a, str>>,
    payload: StatsPayload,
}

/// Every payload field any stats fact reads, kept as JSON so that [`fact_of`] judges them
/// exactly as it judges a fully decoded event (a missing field and a `null` read the same).
#[derive(Deserialize, Default)]
#[serde(default)]
struct StatsPayload {
    attempt: Option<Value>,
    duration_ms: Option<Value>,
    error: Option<Value>,
    errors: Option<Value>,
    latency_ms: Option<Value>,
    model: Option<Value>,
    outcome: Option<Value>,
    playbook: Option<Value>,
    status: Option<Value>,
    targets: Option<Value>,
    tokens_received: Option<Value>,
    url: Option<Value>,
    usage: Option<Value>,
}

impl StatsEnvelope<'_> {
    fn entry(self) -> Reduced {
        Reduced::of_parts(
            &self.id,
            &self.at,
            &self.kind,
            self.activity.as_deref(),
            &self.payload,
        )
    }
}

/// Where [`fact_of`] reads payload fields from: a decoded payload, or the few fields of it
/// that [`StatsPayload`] kept.
trait Payload {
    fn field(&self, name: &str) -> Option<&Value>;
}

impl Payload for Value {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Payload for StatsPayload {
    fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "attempt" => self.attempt.as_ref(),
            "duration_ms" => self.duration_ms.as_ref(),
            "error" => self.error.as_ref(),
            "errors" => self.errors.as_ref(),
            "latency_ms" => self.latency_ms.as_ref(),
            "model" => self.model.as_ref(),
            "outcome" => self.outcome.as_ref(),
            "playbook" => self.playbook.as_ref(),
            "status" => self.status.as_ref(),
            "targets" => self.targets.as_ref(),
            "tokens_received" => self.tokens_received.as_ref(),
            "url" => self.url.as_ref(),
            "usage" => self.usage.as_ref(),
            other => {
                // fact_of reads a field this struct does not keep: add it above, or the light
                // decoder would quietly count the event differently from a full decode.
                debug_assert!(false, "StatsPayload does not keep `{other}`");
                None
            }
        }
    }
}

/// The stats-relevant facts of `event`, or `None` for kinds (or payloads) stats does not use.
fn fact_of(kind: &str, payload: &impl Payload) -> Option<Fact> {
    match kind {
        kind::ACTIVITY_FINISHED => Some(Fact::Activity {
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
            reasons: error_reasons(payload),
        }),
        kind::LLM_CALLED => Some(llm_fact(payload)?),
        kind::PLAYBOOK_FINISHED => Some(Fact::Playbook {
            playbook: payload.field("playbook")?.as_str()?.to_string(),
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
        }),
        kind::RUN_FINISHED => Some(Fact::Run {
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
        }),
        _ => None,
    }
}

/// The payload's `outcome`, when it is a word.
fn outcome_at(payload: &impl Payload) -> Option<Outcome> {
    payload.field("outcome")?.as_str().map(Outcome::from_word)
}

fn llm_fact(payload: &impl Payload) -> Option<Fact> {
    let usage = payload.field("usage").filter(|usage| usage.is_object());
    let tokens = |name: &str| usage.and_then(|usage| u64_at(usage, name)).unwrap_or(0);
    Some(Fact::Llm {
        url: payload.field("url")?.as_str()?.to_string(),
        model: payload.field("model")?.as_str()?.to_string(),
        attempt: u64_at(payload, "attempt").unwrap_or(1),
        status: u64_at(payload, "status"),
        failed: payload.field("error").is_some_and(|error| !error.is_null()),
        latency_ms: u64_at(payload, "latency_ms"),
        prompt_tokens: tokens("prompt_tokens"),
        // A stream that broke off reported no usage, but the model wrote what it delivered.
        completion_tokens: match usage {
            Some(_) => tokens("completion_tokens"),
            None => u64_at(payload, "tokens_received").unwrap_or(0),
        },
    })
}

/// The `reason` of every entry of `errors`; `unknown` for an entry without one.
fn error_reasons(payload: &impl Payload) -> Vec<String> {
    let Some(errors) = payload.field("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|error| {
            error
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(UNKNOWN_REASON)
                .to_string()
        })
        .collect()
}

/// The reason a failure is counted under when the event gives none.
pub(super) const UNKNOWN_REASON: &str = "unknown";

fn u64_at(value: &impl Payload, key: &str) -> Option<u64> {
    value.field(key).and_then(Value::as_u64)
}

fn strings_at(value: &impl Payload, key: &str) -> Vec<String> {
    value
        .field(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `at` in milliseconds; an unreadable time sorts before every `--since`.
fn millis_of(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>()
        .map(|at| at.as_millisecond())
        .unwrap_or(i64::MIN)
}
