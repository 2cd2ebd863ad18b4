//! The recorded run and its replay, compared event by event.
//!
//! What is compared: each event's kind, activity, service, payload, attachments (name and
//! SHA-256) and causes, in the order the run recorded them. What is compared by role, not by
//! value, because a replay makes its own: event and run ids, commit ids, which become
//! `<event N>`, `<run>` and `<commit N>` in the order each side first names them; the run id's
//! last eight characters inside longer strings (a build branch's name). What is not compared:
//! when (`at`, `started_at`), how long (`duration_ms`, `latency_ms`), the lamport number, the
//! digest chain, the actor, and the endpoint's URL (`url` of `llm.called`), none of which a
//! decision depends on. Inside longer strings, ids and times are masked by role
//! ([`crate::llm::recorded::masked`]); the blobs an `effect.intended` names are compared by
//! their masked content (a document names the run that wrote it); a replayed `llm.called`'s
//! request hash is not compared, since the replay answered it only because its masked request
//! matched the record.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{Event, kind};
use crate::llm::recorded::masked;

/// Keys that say when or how long, never what: left out of every payload compared.
const TIMING_KEYS: [&str; 4] = ["at", "started_at", "duration_ms", "latency_ms"];
/// Keys whose value is a commit the run made (or started from): compared by role. Other
/// 40-hex values (the blob ids of the files about to be written) are content, compared as is.
const COMMIT_KEYS: [&str; 6] = [
    "commit",
    "committed",
    "head",
    "base",
    "revert",
    "previous_commit",
];

/// The first place the replay differs from the record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Divergence {
    /// The event's position in the run, from 1.
    pub position: usize,
    /// The recorded event's kind (or the replayed one's, past the end of the record).
    pub kind: String,
    /// Its activity.
    pub activity: Option<String>,
    /// The field that differs, as a path (`payload.gates.architecture_defined.result`).
    pub field: String,
    /// The recorded value (`null` when the field or the event is absent).
    pub old: Value,
    /// The replayed value.
    pub new: Value,
}

/// A gate whose verdict changed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GateChange {
    /// The activity the gate belongs to.
    pub activity: String,
    /// The gate.
    pub gate: String,
    /// The recorded verdict (`passed`, `failed`, `not_judged`; `null` when it was not judged).
    pub was: Value,
    /// The replayed verdict.
    pub now: Value,
}

/// What changed, whatever came first.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Decisions made identically, by activity (`planner` for the plan).
    pub decisions_identical: Vec<String>,
    /// Decisions that differ.
    pub decisions_changed: Vec<String>,
    /// Gates whose verdict changed.
    pub gates: Vec<GateChange>,
    /// Activities whose outcome changed: `{activity, was, now}`.
    pub outcomes: Vec<Value>,
}

/// What a blob id holds, for comparing files by content: `None` when it cannot be read.
pub type BlobContent<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The events of a run, comparable: roles for ids, no timing.
fn comparable(events: &[Event], content: BlobContent<'_>) -> Vec<Value> {
    let mut roles = Roles::new(events);
    events
        .iter()
        .map(|event| roles.event(event, content))
        .collect()
}

/// The first divergence between the recorded events and the replayed ones, if any;
/// `content` reads the blobs the events name.
pub fn first_divergence(
    recorded: &[Event],
    replayed: &[Event],
    content: BlobContent<'_>,
) -> Option<Divergence> {
    let (old, new) = (comparable(recorded, content), comparable(replayed, content));
    for (index, (a, b)) in old.iter().zip(&new).enumerate() {
        if let Some((field, was, now)) = first_difference(a, b, String::new()) {
            return Some(Divergence {
                position: index + 1,
                kind: recorded[index].kind.clone(),
                activity: recorded[index].activity.clone(),
                field,
                old: was,
                new: now,
            });
        }
    }
    let common = old.len().min(new.len());
    if old.len() == new.len() {
        return None;
    }
    let (event, missing_in_replay) = if old.len() > new.len() {
        (&recorded[common], true)
    } else {
        (&replayed[common], false)
    };
    Some(Divergence {
        position: common + 1,
        kind: event.kind.clone(),
        activity: event.activity.clone(),
        field: "event".into(),
        old: if missing_in_replay {
            Value::String(event.kind.clone())
        } else {
            Value::Null
        },
        new: if missing_in_replay {
            Value::Null
        } else {
            Value::String(event.kind.clone())
        },
    })
}

/// Decisions, gates and outcomes of both runs, side by side.
pub fn summary(recorded: &[Event], replayed: &[Event]) -> Summary {
    let mut summary = Summary::default();
    let (old_decisions, new_decisions) = (decisions(recorded), decisions(replayed));
    for (who, decision) in &old_decisions {
        if new_decisions.get(who) == Some(decision) {
            summary.decisions_identical.push(who.clone());
        } else {
            summary.decisions_changed.push(who.clone());
        }
    }
    for who in new_decisions.keys() {
        if !old_decisions.contains_key(who) {
            summary.decisions_changed.push(who.clone());
        }
    }
    let (old_finished, new_finished) = (finished(recorded), finished(replayed));
    for (activity, old) in &old_finished {
        let new = new_finished.get(activity).cloned().unwrap_or(Value::Null);
        if old["outcome"] != new["outcome"] {
            summary.outcomes.push(serde_json::json!({
                "activity": activity, "was": old["outcome"], "now": new["outcome"],
            }));
        }
        let (old_gates, new_gates) = (verdicts(old), verdicts(&new));
        let mut names: Vec<&String> = old_gates.keys().chain(new_gates.keys()).collect();
        names.sort();
        names.dedup();
        for gate in names {
            let (was, now) = (
                old_gates.get(gate).cloned().unwrap_or(Value::Null),
                new_gates.get(gate).cloned().unwrap_or(Value::Null),
            );
            if was != now {
                summary.gates.push(GateChange {
                    activity: activity.clone(),
                    gate: gate.clone(),
                    was,
                    now,
                });
            }
        }
    }
    summary
}

/// The decisions of a run by who made them (the activity, or `planner`), the last one each.
fn decisions(events: &[Event]) -> BTreeMap<String, Value> {
    events
        .iter()
        .filter(|event| event.kind == kind::DECISION_MADE)
        .map(|event| {
            let who = event.activity.clone().unwrap_or_else(|| "planner".into());
            (who, event.payload["decision"].clone())
        })
        .collect()
}

/// The `activity.finished` payload of each activity of a run.
fn finished(events: &[Event]) -> BTreeMap<String, Value> {
    events
        .iter()
        .filter(|event| event.kind == kind::ACTIVITY_FINISHED)
        .filter_map(|event| Some((event.activity.clone()?, event.payload.clone())))
        .collect()
}

/// Each gate's verdict in an `activity.finished` payload: `gates.<gate>.result`, else (older
/// logs) `quality_gates.<gate>` as `passed` / `failed`.
fn verdicts(finished: &Value) -> BTreeMap<String, Value> {
    if let Some(gates) = finished["gates"].as_object() {
        return gates
            .iter()
            .map(|(gate, verdict)| (gate.clone(), verdict["result"].clone()))
            .collect();
    }
    finished["quality_gates"]
        .as_object()
        .map(|gates| {
            gates
                .iter()
                .map(|(gate, passed)| {
                    let word = if passed.as_bool() == Some(true) {
                        "passed"
                    } else {
                        "failed"
                    };
                    (gate.clone(), Value::String(word.into()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ids one side makes, each replaced by its role.
struct Roles {
    run: Option<String>,
    assigned: HashMap<String, String>,
    commits: usize,
}

impl Roles {
    fn new(events: &[Event]) -> Roles {
        let mut assigned = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            assigned.insert(event.id.clone(), format!("<event {}>", index + 1));
        }
        let run = events.first().and_then(|event| event.run.clone());
        if let Some(run) = &run {
            assigned.insert(run.clone(), "<run>".into());
        }
        Roles {
            run,
            assigned,
            commits: 0,
        }
    }

    fn event(&mut self, event: &Event, content: BlobContent<'_>) -> Value {
        let mut payload = event.payload.clone();
        let mut attachments = event.attachments.clone();
        if event.kind == kind::LLM_CALLED
            && let Some(object) = payload.as_object_mut()
        {
            object.remove("url");
            object.remove("request_sha256");
            attachments.remove("request.json");
        }
        if let Some(blobs) = payload.get_mut("blobs").and_then(Value::as_object_mut) {
            for blob in blobs.values_mut() {
                if let Some(text) = blob.as_str().and_then(content) {
                    *blob = Value::String(crate::digest::sha256_hex(masked(&text).as_bytes()));
                }
            }
        }
        let payload = self.value(payload, None);
        let causes: Vec<Value> = event
            .causes
            .iter()
            .map(|cause| self.value(Value::String(cause.clone()), None))
            .collect();
        serde_json::json!({
            "kind": event.kind,
            "activity": event.activity,
            "service": event.service,
            "causes": causes,
            "attachments": attachments,
            "payload": payload,
        })
    }

    /// `value` with its ids replaced by roles; `key` is the object key it is held under.
    fn value(&mut self, value: Value, key: Option<&str>) -> Value {
        match value {
            Value::String(text) => {
                let names_a_commit = key.is_some_and(|key| COMMIT_KEYS.contains(&key));
                Value::String(self.text(text, names_a_commit))
            }
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.value(item, key))
                    .collect(),
            ),
            Value::Object(object) => {
                let kept: Map<String, Value> = object
                    .into_iter()
                    .filter(|(key, _)| !TIMING_KEYS.contains(&key.as_str()))
                    .map(|(key, value)| {
                        let value = self.value(value, Some(&key));
                        (key, value)
                    })
                    .collect();
                Value::Object(kept)
            }
            other => other,
        }
    }

    fn text(&mut self, text: String, names_a_commit: bool) -> String {
        if let Some(role) = self.assigned.get(&text) {
            return role.clone();
        }
        if names_a_commit && is_commit_id(&text) {
            self.commits += 1;
            let role = format!("<commit {}>", self.commits);
            self.assigned.insert(text, role.clone());
            return role;
        }
        let text = match &self.run {
            Some(run) => {
                let suffix = &run[run.len().saturating_sub(8)..];
                text.replace(run.as_str(), "<run>").replace(suffix, "<run>")
            }
            None => text,
        };
        masked(&text)
    }
}

fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first path where `a` and `b` differ, with both values there.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<(String, Value, Value)> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let (old, new) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                first_difference(old, new, at(key))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(index, (old, new))| first_difference(old, new, at(&index.to_string()))),
        _ if a == b => None,
        _ => Some((path, a.clone(), b.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str, payload: Value) -> Event {
        Event {
            schema: 1,
            id: id.into(),
            kind: kind.into(),
            at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
            actor: "a <a@b>".into(),
            run: Some(format!("run-of-{}", &id[..1])),
            activity: Some("design".into()),
            service: None,
            lamport: id.len() as u64,
            causes: vec![],
            payload,
            attachments: BTreeMap::new(),
            prev_digest: String::new(),
        }
    }

    #[test]
    fn ids_commits_and_timings_are_compared_by_role() {
        let commit = |c: char| c.to_string().repeat(40);
        let recorded = vec![
            event("a1", "run.started", serde_json::json!({"duration_ms": 5})),
            event(
                "a2",
                "files.committed",
                serde_json::json!({"commit": commit('a'), "cause": "a1"}),
            ),
        ];
        let replayed = vec![
            event("b1", "run.started", serde_json::json!({"duration_ms": 9})),
            event(
                "b2",
                "files.committed",
                serde_json::json!({"commit": commit('b'), "cause": "b1"}),
            ),
        ];
        assert_eq!(first_divergence(&recorded, &replayed, &|_| None), None);
    }

    #[test]
    fn the_first_differing_field_is_named_with_both_values() {
        let gates = |result: &str| serde_json::json!({"gates": {"defined": {"result": result}}, "outcome": "x"});
        let recorded = vec![event("a1", "activity.finished", gates("passed"))];
        let replayed = vec![event("b1", "activity.finished", gates("failed"))];
        let divergence = first_divergence(&recorded, &replayed, &|_| None).unwrap();
        assert_eq!(divergence.field, "payload.gates.defined.result");
        assert_eq!(
            (divergence.old, divergence.new),
            ("passed".into(), "failed".into())
        );
        let summary = summary(&recorded, &replayed);
        assert_eq!(summary.gates[0].gate, "defined");
    }

    #[test]
    fn a_missing_event_is_a_divergence() {
        let recorded = vec![
            event("a1", "run.started", Value::Null),
            event("a2", "run.finished", Value::Null),
        ];
        let replayed = vec![event("b1", "run.started", Value::Null)];
        let divergence = first_divergence(&recorded, &replayed, &|_| None).unwrap();
        assert_eq!(
            (divergence.position, divergence.field.as_str()),
            (2, "event")
        );
    }
}
