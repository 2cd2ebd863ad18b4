//! What a replay takes from the record of the run it replays: how the run was asked for,
//! where it started, and its model calls with their request and response bodies.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ReplayError;
use super::scratch::StartingPoint;
use crate::activity::Reused;
use crate::event::kind;
use crate::llm::ResponseFormat;
use crate::llm::recorded::RecordedAttempt;
use crate::playbook::Captured;
use crate::playbook::recorded::RecordedResult;
use crate::store::{Store, StoredEvent};

/// How the recorded run was asked for, from its `run.started`.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The command (`run`, `discover`, `design`, ...).
    pub command: String,
    /// The user's text.
    pub input: String,
    /// The activities it was to run, in order.
    pub activities: Vec<String>,
    /// Whether the planner chose them (the run has a planner's `decision.made`).
    pub planned: bool,
    /// `llm` or `offline`.
    pub mode: String,
    /// `--service`, as the run's events carry it.
    pub service: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--update`.
    pub update: bool,
    /// `--execute`: the run's external effects really ran.
    pub execute: bool,
    /// The run it ran again, when it was a `rerun`.
    pub rerun_of: Option<String>,
}

/// The recorded run: its events in the total order, how it was asked for, where it started.
pub struct Original {
    /// The run's events, oldest first.
    pub events: Vec<StoredEvent>,
    /// How it was asked for.
    pub asked: Asked,
}

impl Original {
    /// The run `run` (a full id) of `store`, refused as unreplayable when it did not start or
    /// finish, or does not say where it started.
    pub fn read(store: &Store, run: &str) -> Result<Original, ReplayError> {
        let filter = crate::store::Filter {
            run: Some(run.to_string()),
            ..crate::store::Filter::default()
        };
        let events: Vec<StoredEvent> = store
            .events_oldest_first(&filter)?
            .into_iter()
            .filter(|stored| stored.event.run.as_deref() == Some(run))
            .collect();
        let started = events
            .iter()
            .find(|stored| stored.event.kind == kind::RUN_STARTED)
            .ok_or_else(|| unreplayable("the run has no run.started event"))?;
        if !events
            .iter()
            .any(|stored| stored.event.kind == kind::RUN_FINISHED)
        {
            return Err(unreplayable("the run has not finished"));
        }
        let payload = &started.event.payload;
        if let Some(original) = payload.get(super::REPLAY_OF).and_then(Value::as_str) {
            return Err(unreplayable(&format!(
                "it is the record of a replay of run {original}; replay that run instead"
            )));
        }
        if started.event.schema != crate::event::SCHEMA_VERSION {
            return Err(unreplayable(&format!(
                "the run was recorded with event schema {}, which has no upcaster to {}",
                started.event.schema,
                crate::event::SCHEMA_VERSION
            )));
        }
        let asked = Asked {
            command: text(payload, "command").unwrap_or_else(|| "run".into()),
            input: text(payload, "input").unwrap_or_default(),
            activities: payload["activities"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            planned: events.iter().any(|stored| {
                stored.event.kind == kind::DECISION_MADE
                    && stored.event.payload["mode"] == "planner"
            }),
            mode: text(payload, "mode").unwrap_or_else(|| "llm".into()),
            service: started.event.service.clone(),
            dry_run: payload["dry_run"].as_bool().unwrap_or(false),
            update: payload["update"].as_bool().unwrap_or(false),
            execute: payload["execute"].as_bool().unwrap_or(false),
            rerun_of: text(payload, "rerun_of"),
        };
        Ok(Original { events, asked })
    }

    /// Where the run started, refused as unreplayable when the record does not say.
    pub fn start(&self, store: &Store) -> Result<StartingPoint, ReplayError> {
        let started = self
            .events
            .iter()
            .find(|stored| stored.event.kind == kind::RUN_STARTED)
            .ok_or_else(|| unreplayable("the run has no run.started event"))?;
        starting_point(store, &self.events, started)
    }

    /// The run's playbook results (`action: run`), with their kept output, in order.
    pub fn playbook_results(&self, store: &Store) -> Result<Vec<RecordedResult>, ReplayError> {
        self.events
            .iter()
            .filter(|stored| {
                stored.event.kind == kind::PLAYBOOK_FINISHED
                    && stored.event.payload["action"] == "run"
            })
            .map(|stored| playbook_result(store, stored))
            .collect()
    }

    /// The last decision each of `activities` made in the run, to be taken again.
    pub fn decisions_of(&self, activities: &[String]) -> BTreeMap<String, Reused> {
        let mut reuse = BTreeMap::new();
        for stored in &self.events {
            let event = &stored.event;
            let Some(activity) = &event.activity else {
                continue;
            };
            if event.kind != kind::DECISION_MADE || !activities.contains(activity) {
                continue;
            }
            reuse.insert(
                activity.clone(),
                Reused {
                    event: event.id.clone(),
                    decision: event.payload["decision"].clone(),
                    mode: text(&event.payload, "mode").unwrap_or_else(|| "llm".into()),
                },
            );
        }
        reuse
    }

    /// The decisions the run itself took again from an earlier run (a `rerun --from`), with
    /// the `reused_from` they named, so that a replay takes them again as the run did.
    pub fn reused(&self) -> BTreeMap<String, Reused> {
        self.events
            .iter()
            .map(|stored| &stored.event)
            .filter(|event| event.kind == kind::DECISION_MADE)
            .filter_map(|event| {
                let from = text(&event.payload, "reused_from")?;
                Some((
                    event.activity.clone()?,
                    Reused {
                        event: from,
                        decision: event.payload["decision"].clone(),
                        mode: text(&event.payload, "mode").unwrap_or_else(|| "llm".into()),
                    },
                ))
            })
            .collect()
    }

    /// The run's model calls with their bodies, in the order they were made.
    pub fn attempts(&self, store: &Store) -> Result<Vec<RecordedAttempt>, ReplayError> {
        self.events
            .iter()
            .filter(|stored| stored.event.kind == kind::LLM_CALLED)
            .map(|stored| attempt(store, stored))
            .collect()
    }
}

/// Where the run started: `head` and `branch` of its `run.started` (recorded since replays
/// exist), else the `head` and `branch` of its first `effect.intended`.
fn starting_point(
    store: &Store,
    events: &[StoredEvent],
    started: &StoredEvent,
) -> Result<StartingPoint, ReplayError> {
    let payload = &started.event.payload;
    let (head, branch) = if payload.get("head").is_some() {
        (text(payload, "head"), text(payload, "branch"))
    } else {
        let intended = events
            .iter()
            .find(|stored| {
                stored.event.kind == kind::EFFECT_INTENDED
                    && stored.event.payload["effect"] == "commit"
            })
            .ok_or_else(|| {
                unreplayable(
                    "the run does not say which commit it started from (it was recorded before \
                     run.started recorded its head, and made no commit)",
                )
            })?;
        (
            text(&intended.event.payload, "head"),
            text(&intended.event.payload, "branch"),
        )
    };
    let first = events.first().map(|stored| stored.commit);
    let log = match first {
        Some(commit) => parent_of(store, commit)?,
        None => None,
    };
    Ok(StartingPoint {
        head,
        branch,
        log,
        actor: started.event.actor.clone(),
    })
}

/// The first parent of a commit of the log: the log as it was just before it.
fn parent_of(store: &Store, commit: gix::ObjectId) -> Result<Option<String>, ReplayError> {
    store
        .first_parent(commit)
        .map(|parent| parent.map(|id| id.to_string()))
        .map_err(ReplayError::Store)
}

fn attempt(store: &Store, stored: &StoredEvent) -> Result<RecordedAttempt, ReplayError> {
    let payload = &stored.event.payload;
    let request_body = store.attachment(stored, "request.json").map_err(|_| {
        unreplayable(&format!(
            "the recorded attachment request.json of event {} is missing",
            stored.event.id
        ))
    })?;
    let status = payload["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    let response_body = if status.is_some() {
        Some(store.attachment(stored, "response.json").map_err(|_| {
            unreplayable(&format!(
                "the recorded attachment response.json of event {} is missing",
                stored.event.id
            ))
        })?)
    } else {
        None
    };
    let format = match payload["format"].as_str() {
        Some("json_object") => ResponseFormat::JsonObject,
        Some("instructions") => ResponseFormat::Instructions,
        _ => ResponseFormat::JsonSchema,
    };
    Ok(RecordedAttempt {
        asker: stored.event.activity.clone(),
        format,
        stream: payload["stream"].as_bool().unwrap_or(false),
        request_sha256: text(payload, "request_sha256")
            .unwrap_or_else(|| crate::digest::sha256_hex(&request_body)),
        request_body,
        status,
        headers: payload["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        response_body,
        error: text(payload, "error"),
        cut_off: text(payload, "cut_off"),
        tokens_received: payload["tokens_received"].as_u64(),
    })
}

fn playbook_result(store: &Store, stored: &StoredEvent) -> Result<RecordedResult, ReplayError> {
    let payload = &stored.event.payload;
    let captured = |name: &str| -> Result<Captured, ReplayError> {
        let bytes = store.attachment(stored, name).map_err(|_| {
            unreplayable(&format!(
                "the recorded attachment {name} of event {} is missing",
                stored.event.id
            ))
        })?;
        let recorded = &payload[name];
        Ok(Captured {
            total_bytes: recorded["total_bytes"]
                .as_u64()
                .unwrap_or(bytes.len() as u64),
            truncated: recorded["truncated"].as_bool().unwrap_or(false),
            sha256: text(recorded, "sha256").unwrap_or_else(|| crate::digest::sha256_hex(&bytes)),
            bytes,
        })
    };
    let code = |key: &str| {
        payload[key]
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
    };
    Ok(RecordedResult {
        activity: stored.event.activity.clone(),
        playbook: text(payload, "playbook").unwrap_or_default(),
        outcome: crate::event::Outcome::from_word(payload["outcome"].as_str().unwrap_or_default()),
        exit_code: code("exit_code"),
        signal: code("signal"),
        duration_ms: payload["duration_ms"].as_u64().unwrap_or_default(),
        stdout: captured("stdout")?,
        stderr: captured("stderr")?,
    })
}

fn text(payload: &Value, key: &str) -> Option<String> {
    payload[key].as_str().map(str::to_string)
}

fn unreplayable(reason: &str) -> ReplayError {
    ReplayError::Unreplayable(reason.to_string())
}
