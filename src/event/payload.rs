//! Typed views of the payloads of the tool's own event kinds (docs/events.md lists each).
//!
//! The envelope keeps its payload as JSON ([`super::Event::payload`]): that is what is hashed
//! and what `verify` re-serialises, so the bytes of an event never depend on these types, and
//! `append` records a script's payload as given. Readers decode a view with [`Payload::decode`]
//! (or the kind's own `of`) instead of looking fields up by name.
//!
//! The views read as the log has always been read: a field that is missing, `null` or of
//! another type reads as absent (`None`, or an empty list), never as an error, so a script's
//! odd `activity.finished` is folded as before. Fields the docs mark as always present are
//! written back as `null` when absent; optional ones are left out. A payload the tool wrote
//! therefore decodes and serialises back to the same canonical bytes (see the tests).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Outcome;
use super::kind;

/// Reads a field leniently: a value of another type reads as `None`, like a missing one.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// Reads a list of strings leniently: anything but an array reads as empty, and items that are
/// not strings are skipped.
fn strings<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Reads an optional field that may be present as `null`: present (even `null`) is `Some`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Declares one payload view: every field lenient, and `of` to read it from a payload.
macro_rules! payload_view {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[doc = $doc:literal])* $field:ident : Option<$ty:ty> ),* $(,)?
        }
        $( optional { $( $(#[doc = $odoc:literal])* $ofield:ident : Option<$oty:ty> ),* $(,)? } )?
        $( present { $( $(#[doc = $pdoc:literal])* $pfield:ident ),* $(,)? } )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[serde(default, deserialize_with = "lenient")]
                pub $field: Option<$ty>,
            )*
            $($(
                $(#[doc = $odoc])*
                #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
                pub $ofield: Option<$oty>,
            )*)?
            $($(
                $(#[doc = $pdoc])*
                #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
                pub $pfield: Option<Value>,
            )*)?
        }

        impl $name {
            /// The view of `payload`; a payload that is not an object reads as all absent.
            pub fn of(payload: &Value) -> $name {
                $name::deserialize(payload).unwrap_or_default()
            }
        }
    };
}

payload_view! {
    /// `run.started`.
    RunStarted {
        /// `discover`, `run`, `plan`, ...
        command: Option<String>,
        /// The user's text.
        input: Option<String>,
        /// The activities planned, in order.
        activities: Option<Vec<String>>,
        /// `llm` or `offline`.
        mode: Option<String>,
        /// Whether the run only says what it would do.
        dry_run: Option<bool>,
        /// `--execute`: external effects really run.
        execute: Option<bool>,
    }
}

payload_view! {
    /// `activity.started`.
    ActivityStarted {
        /// The user's text.
        input: Option<String>,
        /// What was loaded: `{specification, manifests, playbooks, history_entries, dropped}`.
        context: Option<Value>,
    }
}

payload_view! {
    /// `llm.called`: one HTTP attempt.
    LlmCalled {
        /// The attempt number within the turn, from 1.
        attempt: Option<u64>,
        /// 0 for the first ask, 1.. for repair turns.
        turn: Option<u64>,
        /// `json_schema`, `json_object` or `instructions`.
        format: Option<String>,
        /// The endpoint called.
        url: Option<String>,
        /// The model asked.
        model: Option<String>,
        /// When the request was sent, RFC 3339.
        started_at: Option<String>,
        /// The HTTP status; none when there was no response.
        status: Option<u64>,
        /// Time to the full reply, or to the failure.
        latency_ms: Option<u64>,
        /// `{prompt_tokens, completion_tokens, total_tokens}`.
        usage: Option<Value>,
        /// Why the model stopped, as it said.
        finish_reason: Option<String>,
        /// The rate-limit and request-id headers of the reply.
        headers: Option<Value>,
        /// Why the attempt failed; none on success.
        error: Option<Value>,
        /// SHA-256 of the request body (attached as `request.json`).
        request_sha256: Option<String>,
        /// SHA-256 of the reply body (attached as `response.json`), when there was one.
        response_sha256: Option<String>,
    }
}

payload_view! {
    /// `decision.made`.
    DecisionMade {
        /// The validated JSON object.
        decision: Option<Value>,
        /// `llm`, `offline` or `planner`.
        mode: Option<String>,
    }
    optional {
        /// Repair turns used (the model's and the planner's decisions).
        repairs: Option<u64>,
        /// The planner's: `model` or `rules`.
        decided_by: Option<String>,
        /// The planner's: names not in the registry.
        dropped: Option<Vec<String>>,
    }
    present {
        /// The output format used (the model's and the planner's decisions; `null` when the
        /// planner's rules decided).
        format,
        /// The planner's: `{reason, message}` when the rules decided, else `null`.
        fallback,
    }
}

payload_view! {
    /// `playbook.started`.
    PlaybookStarted {
        /// The playbook's id.
        playbook: Option<String>,
        /// `run` or `undo`.
        action: Option<String>,
        /// The command run, as argv.
        argv: Option<Vec<String>>,
        /// The inputs the playbook was given.
        inputs: Option<Value>,
        /// Whether the playbook was only asked what it would do.
        dry_run: Option<bool>,
    }
    optional {
        /// A compensation or re-run: the original `playbook.started` it reapplies.
        reapplies: Option<String>,
    }
}

payload_view! {
    /// `playbook.finished`.
    PlaybookFinished {
        /// The playbook's id.
        playbook: Option<String>,
        /// `run` or `undo`.
        action: Option<String>,
        /// The command run, as argv.
        argv: Option<Vec<String>>,
        /// How it ended.
        outcome: Option<Outcome>,
        /// Its exit code; none when a signal ended it.
        exit_code: Option<i64>,
        /// The signal that ended it, if one did.
        signal: Option<i64>,
        /// Wall-clock time it took.
        duration_ms: Option<u64>,
        /// `{total_bytes, truncated, sha256}`.
        stdout: Option<Value>,
        /// As `stdout`.
        stderr: Option<Value>,
    }
    optional {
        /// The activity that ran it.
        activity: Option<String>,
        /// The time it was allowed.
        timeout_ms: Option<u64>,
        /// Why it was closed as interrupted.
        reason: Option<String>,
    }
}

payload_view! {
    /// `effect.intended`: a commit about to be made on the user's branch.
    EffectIntended {
        /// `commit`.
        effect: Option<String>,
        /// The branch the commit goes on; none when HEAD is detached.
        branch: Option<String>,
        /// HEAD before the commit, if any.
        head: Option<String>,
        /// The paths about to be committed.
        files: Option<Vec<String>>,
        /// Path -> blob id of the content about to be written.
        blobs: Option<Value>,
        /// The commit's subject.
        subject: Option<String>,
        /// The id of the event that will record the outcome.
        completes: Option<String>,
    }
}

payload_view! {
    /// `files.committed`.
    FilesCommitted {
        /// The commit made.
        commit: Option<String>,
        /// The branch it was made on; none when HEAD was detached.
        branch: Option<String>,
        /// The paths it committed.
        files: Option<Vec<String>>,
        /// Its full message.
        message: Option<String>,
    }
    optional {
        /// Found by its trailers after the run's process died.
        reconciled: Option<bool>,
    }
}

/// One error of an activity: a stable reason word and a sentence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// A stable word naming the kind of error.
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
    /// What went wrong, for a person.
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}

payload_view! {
    /// `activity.finished`.
    ActivityFinished {
        /// How the activity ended.
        outcome: Option<Outcome>,
        /// Wall-clock time it took.
        duration_ms: Option<u64>,
        /// The activity's result object.
        outputs: Option<Value>,
        /// Gate -> passed.
        quality_gates: Option<Value>,
        /// How many quality gates passed.
        gates_passed: Option<u64>,
        /// How many quality gates there are.
        gates_total: Option<u64>,
        /// `[{reason, message}]`.
        errors: Option<Value>,
    }
}

impl ActivityFinished {
    /// The `reason` of every entry of `errors`, `None` for an entry without one.
    pub fn error_reasons(&self) -> Vec<Option<String>> {
        let Some(errors) = self.errors.as_ref().and_then(Value::as_array) else {
            return Vec::new();
        };
        errors
            .iter()
            .map(|error| {
                error
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }
}

/// One activity of a `run.finished`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityOutcome {
    /// The activity's name.
    #[serde(default, deserialize_with = "lenient")]
    pub activity: Option<String>,
    /// How it ended.
    #[serde(default, deserialize_with = "lenient")]
    pub outcome: Option<Outcome>,
}

payload_view! {
    /// `run.finished`.
    RunFinished {
        /// How the run ended.
        outcome: Option<Outcome>,
        /// None when interrupted.
        duration_ms: Option<u64>,
        /// Each activity run and how it ended.
        activities: Option<Vec<ActivityOutcome>>,
        /// Activities not run because a blocking one did not succeed.
        skipped: Option<Vec<String>>,
    }
    optional {
        /// An interrupted run's: why.
        reason: Option<String>,
        /// An interrupted run's: the commits found by their trailers.
        reconciled: Option<Vec<String>>,
    }
}

payload_view! {
    /// `commit.observed` (from the hook).
    CommitObserved {
        /// The commit seen.
        commit: Option<String>,
        /// The branch it was made on; none when HEAD was detached.
        branch: Option<String>,
        /// `Name <email>` of its author.
        author: Option<String>,
        /// The first line of its message.
        subject: Option<String>,
        /// Changed paths under `.spectra/`.
        spectra_files: Option<Vec<String>>,
    }
}

payload_view! {
    /// `events.reverted` (an undo).
    EventsReverted {
        /// The event ids undone.
        targets: Option<Vec<String>>,
        /// The run ids undone.
        runs: Option<Vec<String>>,
        /// `[{commit, revert, event}]`.
        reverts: Option<Value>,
        /// Ids of the compensating `playbook.started` events.
        compensations: Option<Vec<String>>,
        /// True when `--force` overrode dependents.
        forced: Option<bool>,
        /// `[{event, run, why}]`: what depended on the targets.
        dependents: Option<Value>,
        /// Every step in the order done; redo replays them backwards.
        steps: Option<Value>,
    }
}

payload_view! {
    /// `events.restored` (a redo).
    EventsRestored {
        /// The `events.reverted` ids it cancels.
        targets: Option<Vec<String>>,
        /// The run ids redone.
        runs: Option<Vec<String>>,
        /// `[{commit, revert, event}]`: each revert commit reverted again.
        reapplied: Option<Value>,
        /// Ids of the `playbook.started` events run again.
        playbooks: Option<Vec<String>>,
        /// Every step in the order done.
        steps: Option<Value>,
    }
}

payload_view! {
    /// `undo.started`.
    UndoStarted {
        /// `undo` or `redo`.
        direction: Option<String>,
        /// The event ids to undo or redo.
        targets: Option<Vec<String>>,
        /// The run ids concerned.
        runs: Option<Vec<String>>,
        /// The branch checked out, if any.
        branch: Option<String>,
        /// The plan's steps still to do.
        steps: Option<Value>,
    }
}

payload_view! {
    /// `undo.failed`.
    UndoFailed {
        /// `undo` or `redo`.
        direction: Option<String>,
        /// The event ids it was undoing or redoing.
        targets: Option<Vec<String>>,
        /// The run ids concerned.
        runs: Option<Vec<String>>,
        /// The steps done; they stay done.
        done: Option<Value>,
        /// `{step, reason}`.
        failed: Option<Value>,
    }
    optional {
        /// Closed by a later command after its process died or was stopped.
        interrupted: Option<bool>,
    }
}

payload_view! {
    /// `log.merged`.
    LogMerged {
        /// The local tip joined (parent 1).
        ours: Option<String>,
        /// The remote's tip joined (parent 2).
        theirs: Option<String>,
        /// Events only the local log held, since the merge base.
        ours_events: Option<u64>,
        /// Events only the remote's log held, since the merge base.
        theirs_events: Option<u64>,
        /// The remote whose log was merged.
        remote: Option<String>,
        /// `[{service, activity, ours, theirs}]`: results both sides hold; the later wins.
        conflicts: Option<Value>,
    }
}

/// The `targets` of an `events.reverted` or `events.restored`, read as every fold of undo reads
/// them: the string items of the list, nothing else.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Targets {
    /// The ids of the events named.
    #[serde(default, deserialize_with = "strings")]
    pub targets: Vec<String>,
}

impl Targets {
    /// The targets of `payload`.
    pub fn of(payload: &Value) -> Targets {
        Targets::deserialize(payload).unwrap_or_default()
    }
}

/// The payload of any event, typed for the tool's own kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `run.started`.
    RunStarted(RunStarted),
    /// `activity.started`.
    ActivityStarted(ActivityStarted),
    /// `llm.called`.
    LlmCalled(LlmCalled),
    /// `decision.made`.
    DecisionMade(DecisionMade),
    /// `playbook.started`.
    PlaybookStarted(PlaybookStarted),
    /// `playbook.finished`.
    PlaybookFinished(PlaybookFinished),
    /// `effect.intended`.
    EffectIntended(EffectIntended),
    /// `files.committed`.
    FilesCommitted(FilesCommitted),
    /// `activity.finished`.
    ActivityFinished(ActivityFinished),
    /// `run.finished`.
    RunFinished(RunFinished),
    /// `commit.observed`.
    CommitObserved(CommitObserved),
    /// `events.reverted`.
    EventsReverted(EventsReverted),
    /// `events.restored`.
    EventsRestored(EventsRestored),
    /// `undo.started`.
    UndoStarted(UndoStarted),
    /// `undo.failed`.
    UndoFailed(UndoFailed),
    /// `log.merged`.
    LogMerged(LogMerged),
    /// A kind the tool does not write (a script's own), as recorded.
    Other(Value),
}

impl Payload {
    /// The typed view of an event of `kind` with `payload`.
    pub fn decode(kind: &str, payload: &Value) -> Payload {
        match kind {
            kind::RUN_STARTED => Payload::RunStarted(RunStarted::of(payload)),
            kind::ACTIVITY_STARTED => Payload::ActivityStarted(ActivityStarted::of(payload)),
            kind::LLM_CALLED => Payload::LlmCalled(LlmCalled::of(payload)),
            kind::DECISION_MADE => Payload::DecisionMade(DecisionMade::of(payload)),
            kind::PLAYBOOK_STARTED => Payload::PlaybookStarted(PlaybookStarted::of(payload)),
            kind::PLAYBOOK_FINISHED => Payload::PlaybookFinished(PlaybookFinished::of(payload)),
            kind::EFFECT_INTENDED => Payload::EffectIntended(EffectIntended::of(payload)),
            kind::FILES_COMMITTED => Payload::FilesCommitted(FilesCommitted::of(payload)),
            kind::ACTIVITY_FINISHED => Payload::ActivityFinished(ActivityFinished::of(payload)),
            kind::RUN_FINISHED => Payload::RunFinished(RunFinished::of(payload)),
            kind::COMMIT_OBSERVED => Payload::CommitObserved(CommitObserved::of(payload)),
            kind::EVENTS_REVERTED => Payload::EventsReverted(EventsReverted::of(payload)),
            kind::EVENTS_RESTORED => Payload::EventsRestored(EventsRestored::of(payload)),
            kind::UNDO_STARTED => Payload::UndoStarted(UndoStarted::of(payload)),
            kind::UNDO_FAILED => Payload::UndoFailed(UndoFailed::of(payload)),
            kind::LOG_MERGED => Payload::LogMerged(LogMerged::of(payload)),
            _ => Payload::Other(payload.clone()),
        }
    }

    /// The payload as JSON, as the envelope stores it.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Payload::RunStarted(p) => serde_json::to_value(p),
            Payload::ActivityStarted(p) => serde_json::to_value(p),
            Payload::LlmCalled(p) => serde_json::to_value(p),
            Payload::DecisionMade(p) => serde_json::to_value(p),
            Payload::PlaybookStarted(p) => serde_json::to_value(p),
            Payload::PlaybookFinished(p) => serde_json::to_value(p),
            Payload::EffectIntended(p) => serde_json::to_value(p),
            Payload::FilesCommitted(p) => serde_json::to_value(p),
            Payload::ActivityFinished(p) => serde_json::to_value(p),
            Payload::RunFinished(p) => serde_json::to_value(p),
            Payload::CommitObserved(p) => serde_json::to_value(p),
            Payload::EventsReverted(p) => serde_json::to_value(p),
            Payload::EventsRestored(p) => serde_json::to_value(p),
            Payload::UndoStarted(p) => serde_json::to_value(p),
            Payload::UndoFailed(p) => serde_json::to_value(p),
            Payload::LogMerged(p) => serde_json::to_value(p),
            Payload::Other(value) => Ok(value.clone()),
        };
        value.expect("a payload view always serialises to JSON")
    }
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
