//! The event envelope: what one commit on `refs/spectra/events` records.
//!
//! An event is written once and never changed. Its envelope is stored as canonical JSON (sorted
//! keys, no insignificant whitespace) in `event.json`, so the same event always has the same
//! bytes and the SHA-256 digest chain over those bytes means something. Bulk data (request and
//! response bodies, playbook output) travels beside it as attachment blobs named in the envelope
//! with their SHA-256.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::digest::{hex, sha256_hex};
use crate::trailer_text;

mod canonical;
mod outcome;
pub mod payload;
mod payload_text;
pub mod reverted;

pub use canonical::{canonical_json, is_canonical};
pub use outcome::Outcome;
pub use payload::Payload;
pub use payload_text::{PayloadTextError, parse_payload};
pub use reverted::RevertedSet;

/// The envelope schema this build writes. Older versions are upcast on read.
pub const SCHEMA_VERSION: u32 = 1;

/// The `prev_digest` of the first event: there is nothing before it.
pub const GENESIS_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The event kinds the tool writes itself (past tense). Readers accept and skip others.
pub mod kind {
    /// A run began: its command, input and planned activities.
    pub const RUN_STARTED: &str = "run.started";
    /// An activity began, with the context it loaded.
    pub const ACTIVITY_STARTED: &str = "activity.started";
    /// One HTTP attempt at the model.
    pub const LLM_CALLED: &str = "llm.called";
    /// A decision was accepted: the model's, the offline rules' or the planner's.
    pub const DECISION_MADE: &str = "decision.made";
    /// A playbook is about to run (or undo).
    pub const PLAYBOOK_STARTED: &str = "playbook.started";
    /// A playbook ended.
    pub const PLAYBOOK_FINISHED: &str = "playbook.finished";
    /// A commit was made on the user's branch.
    pub const FILES_COMMITTED: &str = "files.committed";
    /// An activity ended, with its outputs and gates.
    pub const ACTIVITY_FINISHED: &str = "activity.finished";
    /// A run ended.
    pub const RUN_FINISHED: &str = "run.finished";
    /// The post-commit hook saw a commit made by the user.
    pub const COMMIT_OBSERVED: &str = "commit.observed";
    /// An undo: the events it reverted and how.
    pub const EVENTS_REVERTED: &str = "events.reverted";
    /// A redo: the undos it cancelled and how.
    pub const EVENTS_RESTORED: &str = "events.restored";
    /// An undo or redo that stopped part way; it names what it had already done.
    pub const UNDO_FAILED: &str = "undo.failed";
    /// What an effect outside the log is about to do (a commit on the user's branch), appended
    /// before it so that a crash in between can be reconciled from the effect's trailers.
    pub const EFFECT_INTENDED: &str = "effect.intended";
    /// The plan an undo or redo is about to carry out, appended before its first step.
    pub const UNDO_STARTED: &str = "undo.started";
    /// Two diverged logs joined: the only event with two parents (see docs/events.md).
    pub const LOG_MERGED: &str = "log.merged";

    /// Kinds that record an effect the tool made on the user's branch or on the log itself;
    /// undo, redo and the views act on them, so only the tool writes them (`append` refuses).
    pub const TOOL_ONLY: &[&str] = &[
        FILES_COMMITTED,
        EFFECT_INTENDED,
        EVENTS_REVERTED,
        EVENTS_RESTORED,
        UNDO_STARTED,
        UNDO_FAILED,
        LOG_MERGED,
    ];
}

/// One recorded fact, exactly as stored in `event.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Envelope schema version.
    pub schema: u32,
    /// UUIDv7: unique, and sortable by creation time.
    pub id: String,
    /// What happened, e.g. `decision.made`.
    pub kind: String,
    /// When it happened, RFC 3339 UTC from the tool's clock (never from `GIT_*_DATE`).
    pub at: String,
    /// The git identity that caused it, `Name <email>`.
    pub actor: String,
    /// The run this event belongs to: the correlation id of logs and events.
    pub run: Option<String>,
    /// The activity (discover, plan, ...) that produced it.
    pub activity: Option<String>,
    /// The service it concerns.
    pub service: Option<String>,
    /// Position in the log: the parent event's lamport + 1, starting at 1.
    pub lamport: u64,
    /// Ids of events this one depends on.
    pub causes: Vec<String>,
    /// The kind-specific content; always a JSON object.
    pub payload: Value,
    /// Attachment file name -> SHA-256 (hex) of its bytes, stored beside `event.json`.
    pub attachments: BTreeMap<String, String>,
    /// Digest of the previous event ([`GENESIS_DIGEST`] for the first).
    pub prev_digest: String,
}

impl Event {
    /// The canonical bytes stored as `event.json`.
    pub fn canonical_json(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("an event always serialises to JSON");
        canonical_json(&value)
    }

    /// Whether `bytes`, which decode as this event, are its canonical form (see
    /// [`is_canonical`]: a non-integer number may be in any notation of its shortest form).
    pub fn is_canonical_form(&self, bytes: &[u8]) -> bool {
        let value = serde_json::to_value(self).expect("an event always serialises to JSON");
        is_canonical(&value, bytes)
    }

    /// This event's link in the hash chain: `sha256(prev_digest || event.json)`.
    pub fn digest(&self) -> String {
        chain_digest(&self.prev_digest, &self.canonical_json())
    }

    /// A field of the payload as a string, if present.
    pub fn payload_str(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }
}

/// An event a caller wants recorded; the store fills in its place in the log.
///
/// The id and timestamp are fixed when the event is created, so other events in the same batch
/// can name it in `causes`, and a retried append records the same fact.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event's id (UUIDv7), fixed at creation.
    pub id: String,
    /// What happened, as lowercase dotted words (see [`kind`]).
    pub kind: String,
    /// When it happened, RFC 3339.
    pub at: String,
    /// The run it belongs to, if any.
    pub run: Option<String>,
    /// The activity it belongs to, if any.
    pub activity: Option<String>,
    /// The service it concerns, if any.
    pub service: Option<String>,
    /// Ids of the events that caused it.
    pub causes: Vec<String>,
    /// The kind's own data, a JSON object.
    pub payload: Value,
    /// Bulk data stored as blobs beside `event.json`, by file name.
    pub attachments: BTreeMap<String, Vec<u8>>,
    /// The commit subject; a sentence derived from the event when `None`.
    pub subject: Option<String>,
    /// An optional commit body between subject and trailers.
    pub body: Option<String>,
}

impl NewEvent {
    /// A new event of `kind` with an empty payload, a fresh UUIDv7 id and the current time.
    pub fn new(kind: impl Into<String>) -> NewEvent {
        NewEvent {
            id: new_id(),
            kind: kind.into(),
            at: now_rfc3339(),
            run: None,
            activity: None,
            service: None,
            causes: Vec::new(),
            payload: Value::Object(Default::default()),
            attachments: BTreeMap::new(),
            subject: None,
            body: None,
        }
    }

    /// Sets the run.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// Sets the activity.
    pub fn activity(mut self, activity: impl Into<String>) -> Self {
        self.activity = Some(activity.into());
        self
    }

    /// Sets the service.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Adds an event that caused this one.
    pub fn cause(mut self, id: impl Into<String>) -> Self {
        self.causes.push(id.into());
        self
    }

    /// Adds an attachment stored beside `event.json`.
    pub fn attach(mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.attachments.insert(name.into(), bytes.into());
        self
    }

    /// Sets the commit subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The envelope this event gets at `lamport`, chained after `prev_digest`.
    pub fn seal(&self, actor: &str, lamport: u64, prev_digest: &str) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            id: self.id.clone(),
            kind: self.kind.clone(),
            at: self.at.clone(),
            actor: actor.to_string(),
            run: self.run.clone(),
            activity: self.activity.clone(),
            service: self.service.clone(),
            lamport,
            causes: self.causes.clone(),
            payload: self.payload.clone(),
            attachments: self
                .attachments
                .iter()
                .map(|(name, bytes)| (name.clone(), sha256_hex(bytes)))
                .collect(),
            prev_digest: prev_digest.to_string(),
        }
    }

    /// The commit subject: the caller's, or a sentence derived from the event when there is
    /// none (or nothing but blanks). One line, capped, and never shaped like a trailer (see
    /// [`trailer_text::one_line`]).
    pub fn subject_line(&self) -> String {
        let given = self
            .subject
            .as_deref()
            .map(trailer_text::one_line)
            .filter(|subject| !subject.trim().is_empty());
        let subject = given.unwrap_or_else(|| trailer_text::one_line(&default_subject(self)));
        capped(&subject, 120)
    }

    /// The commit body, if any: the caller's text with no line that git could read as a
    /// trailer (see [`trailer_text::neutralise`]).
    pub fn body_text(&self) -> Option<String> {
        self.body
            .as_deref()
            .map(str::trim)
            .filter(|body| !body.is_empty())
            .map(trailer_text::neutralise)
    }
}

/// A field of the envelope that its commit repeats as a trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailerField {
    /// `id`, trailer `Spectra-Id`.
    Id,
    /// `run`, trailer `Spectra-Run`.
    Run,
    /// `activity`, trailer `Spectra-Activity`.
    Activity,
    /// `service`, trailer `Spectra-Service`.
    Service,
}

impl TrailerField {
    /// The envelope field's name.
    pub fn name(self) -> &'static str {
        match self {
            TrailerField::Id => "id",
            TrailerField::Run => "run",
            TrailerField::Activity => "activity",
            TrailerField::Service => "service",
        }
    }

    /// The trailer that repeats it.
    pub fn trailer(self) -> &'static str {
        match self {
            TrailerField::Id => "Spectra-Id",
            TrailerField::Run => "Spectra-Run",
            TrailerField::Activity => "Spectra-Activity",
            TrailerField::Service => "Spectra-Service",
        }
    }
}

/// The rule every trailer-bound value follows, as stated in errors.
pub const TRAILER_VALUE_RULE: &str = "one line of printable text: no newline, tab or other control character, no space at either end, no run of spaces";

/// Why an event could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The kind is not lowercase dotted words.
    #[error("event kind `{0}` is not valid: use lowercase dotted words such as `note.added`")]
    InvalidKind(String),
    /// The payload is some JSON other than an object.
    #[error("the payload must be a JSON object, not {0}")]
    PayloadNotObject(&'static str),
    /// An attachment name is not a plain file name, or is `event.json`.
    #[error("attachment name `{0}` is not valid: use a plain file name other than event.json")]
    InvalidAttachmentName(String),
    /// A field repeated as a trailer does not fit on a trailer line.
    #[error(
        "the event's {} {value:?} cannot be written as its {} trailer: it {problem}; a trailer value is {TRAILER_VALUE_RULE}",
        field.name(),
        field.trailer()
    )]
    InvalidTrailerValue {
        /// Which field.
        field: TrailerField,
        /// Its value.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The stored `event.json` does not read as an event.
    #[error("event.json is not a valid event: {0}")]
    Malformed(String),
    /// The event was written by a newer version of the tool.
    #[error(
        "event schema {found} is newer than this git spectra understands ({SCHEMA_VERSION}); upgrade git spectra"
    )]
    FutureSchema {
        /// The schema version of the event.
        found: u64,
    },
}

impl NewEvent {
    /// Checks what a caller (or `git spectra append`) may get wrong.
    pub fn validate(&self) -> Result<(), EventError> {
        if !is_valid_kind(&self.kind) {
            return Err(EventError::InvalidKind(self.kind.clone()));
        }
        self.validate_trailer_values()?;
        if !self.payload.is_object() {
            return Err(EventError::PayloadNotObject(json_type_name(&self.payload)));
        }
        for name in self.attachments.keys() {
            if !is_valid_attachment_name(name) {
                return Err(EventError::InvalidAttachmentName(name.clone()));
            }
        }
        Ok(())
    }
}

impl NewEvent {
    /// The id, run, activity and service are repeated as trailers, and `verify` requires each
    /// trailer to equal its field: a value that a commit message cannot carry unchanged would
    /// make an event that never verifies.
    fn validate_trailer_values(&self) -> Result<(), EventError> {
        let fields = [
            (TrailerField::Id, Some(&self.id)),
            (TrailerField::Run, self.run.as_ref()),
            (TrailerField::Activity, self.activity.as_ref()),
            (TrailerField::Service, self.service.as_ref()),
        ];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            if let Some(problem) = trailer_value_problem(value) {
                return Err(EventError::InvalidTrailerValue {
                    field,
                    value: value.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }
}

/// What keeps `value` from standing unchanged as a trailer value, if anything.
pub fn trailer_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return Some("is empty");
    }
    if let Some(control) = value.chars().find(|c| c.is_control()) {
        return Some(match control {
            '\n' => "contains a newline",
            '\r' => "contains a carriage return",
            '\t' => "contains a tab",
            _ => "contains a control character",
        });
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Some("starts or ends with a space");
    }
    // Each word separated by exactly one ASCII space: what a trailer line keeps.
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.join(" ") != value {
        return Some("has a run of spaces or a space other than U+0020");
    }
    None
}

/// Parses `event.json`, upcasting older schema versions to the current envelope.
pub fn decode(bytes: &[u8]) -> Result<Event, EventError> {
    // The common case, the current schema, straight into the struct.
    if let Ok(event) = serde_json::from_slice::<Event>(bytes)
        && event.schema == SCHEMA_VERSION
    {
        return Ok(event);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|err| EventError::Malformed(err.to_string()))?;
    let schema = value.get("schema").and_then(Value::as_u64).unwrap_or(0);
    match schema {
        1 => serde_json::from_value(value).map_err(|err| EventError::Malformed(err.to_string())),
        found if found > u64::from(SCHEMA_VERSION) => Err(EventError::FutureSchema { found }),
        _ => Err(EventError::Malformed(format!(
            "unknown schema version {schema}"
        ))),
    }
}

/// Decodes `event.json` like [`decode`], but keeps the payload only of events whose kind
/// `reads_payload` names; the others get a `null` payload. For folds that read the payloads of
/// a few kinds: serde skips the rest without building them, which is most of the decoding.
pub fn decode_payload_of(
    bytes: &[u8],
    reads_payload: fn(&str) -> bool,
) -> Result<Event, EventError> {
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else {
        return decode(bytes);
    };
    if head.schema != SCHEMA_VERSION {
        return decode(bytes);
    }
    let payload = if reads_payload(&head.kind) {
        serde_json::from_str(head.payload.get())
            .map_err(|err| EventError::Malformed(err.to_string()))?
    } else {
        Value::Null
    };
    Ok(head.with_payload(payload))
}

/// An [`Event`] with its payload left as raw JSON, for [`decode_payload_of`] to decode or not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head<'a> {
    schema: u32,
    id: String,
    kind: String,
    at: String,
    actor: String,
    run: Option<String>,
    activity: Option<String>,
    service: Option<String>,
    lamport: u64,
    causes: Vec<String>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
    attachments: BTreeMap<String, String>,
    prev_digest: String,
}

impl Head<'_> {
    fn with_payload(self, payload: Value) -> Event {
        Event {
            schema: self.schema,
            id: self.id,
            kind: self.kind,
            at: self.at,
            actor: self.actor,
            run: self.run,
            activity: self.activity,
            service: self.service,
            lamport: self.lamport,
            causes: self.causes,
            payload,
            attachments: self.attachments,
            prev_digest: self.prev_digest,
        }
    }
}

/// `sha256(prev_digest || event_json)` as lowercase hex.
pub fn chain_digest(prev_digest: &str, event_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_digest.as_bytes());
    hasher.update(event_json);
    hex(&hasher.finalize())
}

/// A merge event's link in the chain: `sha256(digest(parent 1) || digest(parent 2) ||
/// event.json)`, both digests as their ASCII hex, parents in commit order.
pub fn merge_digest(first_parent: &str, second_parent: &str, event_json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(first_parent.as_bytes());
    hasher.update(second_parent.as_bytes());
    hasher.update(event_json);
    hex(&hasher.finalize())
}

/// A fresh UUIDv7 as a hyphenated string.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    format!("{:.3}", now)
}

fn is_valid_kind(kind: &str) -> bool {
    let mut parts = 0;
    for part in kind.split('.') {
        parts += 1;
        let mut chars = part.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !starts_with_letter
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return false;
        }
    }
    parts >= 2 && kind.len() <= 64
}

fn is_valid_attachment_name(name: &str) -> bool {
    !name.is_empty()
        && name != "event.json"
        && name != "."
        && name != ".."
        && name.len() <= 100
        && !name.contains(['/', '\\', '\0', '\n'])
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `discover: decision made for logging`, from the parts every event has.
fn default_subject(event: &NewEvent) -> String {
    let who = event.activity.as_deref().unwrap_or("spectra");
    let what = event.kind.replace(['.', '_'], " ");
    match &event.service {
        Some(service) => format!("{who}: {what} for {service}"),
        None => format!("{who}: {what}"),
    }
}

/// `text` cut to `max_chars` characters, with an ellipsis when cut.
fn capped(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max_chars - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
pub(crate) use test_support::{discover_run_for_tests, seal_for_tests};

#[cfg(test)]
mod tests;
