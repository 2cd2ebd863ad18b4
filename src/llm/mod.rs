//! The chat-completions client that activities decide through.
//!
//! An activity hands a [`Client`] a [`DecisionRequest`] (system and user prompt, the JSON Schema
//! its decision must match) and gets back a [`Decision`]: a JSON value that parsed and validated,
//! or an [`LlmFailure`] that says honestly why not. Either way it also gets one
//! [`AttemptRecord`] per HTTP attempt, which it appends as an `llm.called` event, so every call
//! is auditable and replayable.
//!
//! The parts, one job each:
//! - [`client`]: the blocking API and the conversation (response-format ladder, repair turns);
//! - `transport`: one request over HTTP with timeouts, retries and records;
//! - [`retry`]: which failures to retry and how long to wait;
//! - [`extract`]: the JSON value out of the reply text;
//! - [`estimate`]: the largest reply a decision schema accepts, in tokens;
//! - [`budget`]: `max_tokens` from the prompt size and the context window;
//! - [`format_level`]: the `response_format` ladder and its per-endpoint memory;
//! - [`record`]: the attempt record;
//! - [`recorded`]: a replay's calls, answered from a past run's records instead of the network;
//! - [`repair`]: repair turns that ask only for the paths that failed the schema;
//! - `stream`: streamed (SSE) replies assembled, and runaway replies spotted while written;
//! - [`scrub`]: the configured secrets out of everything the endpoint sends back;
//! - [`probe`]: what `git spectra doctor` checks.
//!
//! Settings come from [`crate::settings::LlmSettings`]; the API key is a
//! [`crate::settings::Secret`] and never reaches a record, a log line, an error message or a
//! decision, however the endpoint spells it back.

pub mod budget;
pub mod client;
mod error;
pub mod estimate;
pub mod extract;
pub mod format_level;
pub mod probe;
pub mod record;
pub mod recorded;
pub mod repair;
pub mod retry;
pub mod scrub;
mod stream;
mod transport;

pub use client::{Client, Decision, DecisionRequest, LlmFailure, Unwatched, Watcher};
pub use error::LlmError;
pub use format_level::ResponseFormat;
pub use probe::DoctorReport;
pub use record::{AttemptRecord, Usage};
