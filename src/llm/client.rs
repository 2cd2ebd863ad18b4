//! The blocking client and the conversation that turns a prompt into a validated decision.
//!
//! The rest of the crate is synchronous, so [`Client`] owns a current-thread tokio runtime and
//! blocks on it; do not call it from inside another runtime. One decision is a short
//! conversation: ask at the remembered `response_format` level; step down the ladder if the
//! endpoint rejects that level; extract and validate the reply; if it is invalid, show the model
//! what was wrong and ask again — for the failing paths alone when the rest is valid
//! ([`super::repair`]) — at most [`MAX_REPAIR_TURNS`] times; then give up with an error
//! that quotes the problems. An unparsed or invalid reply is never returned as a decision, and
//! its attempt record carries the reason. The reply echoed into a repair turn is cut to
//! [`ECHOED_REPLY_CHARS`], so a huge reply cannot blow the prompt up; and every string of the
//! decision (values and keys) is scrubbed of secrets before it is validated and returned.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::extract::{Found, NotFound, extract_json_by};
use super::format_level::FormatMemory;
use super::record::AttemptRecord;
use super::repair::{self, PartialRepair};
use super::scrub::Scrubber;
use super::transport::{Exchange, Reply, SendError, Transport};
use super::{LlmError, ResponseFormat, budget};
use crate::settings::LlmSettings;

/// Repair turns after the first answer, as the design asks: enough for a model that slipped,
/// few enough that a model that cannot follow the schema fails quickly.
pub const MAX_REPAIR_TURNS: u32 = 2;
/// How much of an invalid reply an error message quotes.
const QUOTED_REPLY_CHARS: usize = 600;
/// How much of an invalid reply a repair turn echoes back to the model: a reply within the
/// usual reply budget is echoed whole, a longer one (a hostile or runaway reply) is cut.
pub const ECHOED_REPLY_CHARS: usize = 4000;
/// How many schema violations a repair turn lists, and how long each may be.
const MAX_LISTED_PROBLEMS: usize = 8;
const PROBLEM_CHARS: usize = 300;

/// What to ask.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    /// The system message: the activity's instructions.
    pub system: String,
    /// The user message: the context and the question.
    pub user: String,
    /// The JSON Schema the decision must validate against.
    pub schema: Value,
    /// A short name for the schema (`discover_decision`), sent with `json_schema` and used in errors.
    pub schema_name: String,
    /// The reply budget for this request; `spectra.llm.maxTokens` when `None`.
    pub max_tokens: Option<u32>,
}

/// A validated decision and every attempt it took.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The decision, valid against the request's schema.
    pub value: Value,
    /// The response-format level of the successful request.
    pub format: ResponseFormat,
    /// How the value was found in the reply.
    pub found: Found,
    /// Repair turns it took (0 when the first answer was valid).
    pub repairs: u32,
    /// Every HTTP attempt made, in order.
    pub records: Vec<AttemptRecord>,
}

/// A decision that could not be obtained, with every attempt that was made.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct LlmFailure {
    /// Why no decision was obtained.
    pub error: LlmError,
    /// Every HTTP attempt made, in order.
    pub records: Vec<AttemptRecord>,
}

impl From<LlmFailure> for LlmError {
    fn from(failure: LlmFailure) -> Self {
        failure.error
    }
}

impl crate::failure::Classify for LlmFailure {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Classify::class(&self.error)
    }

    fn hints(&self) -> Vec<String> {
        crate::failure::Classify::hints(&self.error)
    }
}

/// What a caller of [`Client::decide_watched`] is told while the decision is being made.
pub trait Watcher {
    /// The tokens written so far and the time since the request was sent, a few times a
    /// second while a streamed reply arrives.
    fn writing(&self, tokens: u64, elapsed: Duration) {
        let _ = (tokens, elapsed);
    }

    /// Every attempt so far, all final (their verdicts included), just before the next
    /// attempt is sent. A caller that records them here, rather than when the decision ends,
    /// keeps them through a crash during a long later attempt. The list only grows: the
    /// records a call has seen come first, in the same order, in every later call and in the
    /// decision's `records`.
    fn settled(&self, records: &[AttemptRecord]) {
        let _ = records;
    }
}

/// A [`Watcher`] that is told nothing.
pub struct Unwatched;

impl Watcher for Unwatched {}

/// A chat-completions client for one endpoint and model.
#[derive(Debug)]
pub struct Client {
    runtime: tokio::runtime::Runtime,
    pub(crate) transport: Transport,
    pub(crate) memory: FormatMemory,
}

/// Where a conversation stands.
struct Turn {
    format: ResponseFormat,
    /// The invalid replies and the repair requests so far, sent after the user message.
    repair_messages: Vec<Value>,
    repairs: u32,
    deadline: Instant,
    /// What was wrong with the last reply and its text, while a repair turn asks about it.
    rejected: Option<(String, String)>,
    /// The paths a partial repair turn asks for alone ([`repair`]); `None` asks for the whole.
    partial: Option<Box<PartialRepair>>,
    /// Ask for a streamed reply (the setting, unless the endpoint was seen not to stream).
    stream: bool,
}

/// Why a reply was not taken.
enum Rejection {
    /// What is wrong with it, for the repair turn and the error, and the partial repair that
    /// can fix it (`None`: ask for the whole decision again).
    Invalid(String, Option<Box<PartialRepair>>),
    /// The total deadline passed while looking at it.
    OutOfTime,
}

/// The successful end of a conversation.
struct Answer {
    value: Value,
    format: ResponseFormat,
    found: Found,
    repairs: u32,
}

impl Client {
    /// A client for `settings`. `state_dir` (normally `<git dir>/spectra`) is where the
    /// response-format level is remembered; `None` remembers it for this client only.
    pub fn new(settings: LlmSettings, state_dir: Option<&Path>) -> Result<Client, LlmError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LlmError::Setup(e.to_string()))?;
        // reqwest needs a runtime context when it builds its connector.
        let transport = runtime.block_on(async { Transport::new(settings) })?;
        Ok(Client {
            runtime,
            transport,
            memory: FormatMemory::open(state_dir),
        })
    }

    /// A client for `settings` that sends nothing: every request is answered from `recorded`
    /// ([`super::recorded`]). It starts at the response-format level and streaming the record's
    /// first attempt used, and remembers levels for itself only, as the recorded run did.
    pub fn replaying(
        settings: LlmSettings,
        recorded: std::sync::Arc<super::recorded::Recorded>,
    ) -> Result<Client, LlmError> {
        let mut client = Client::new(settings, None)?;
        if let Some(first) = recorded.first() {
            let (endpoint, model) = (
                client.transport.endpoint(),
                client.settings().model.value.clone(),
            );
            client.memory.remember(&endpoint, &model, first.format);
            client
                .memory
                .remember_stream(&endpoint, &model, first.stream);
        }
        client.transport = client.transport.replaying(recorded);
        Ok(client)
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &LlmSettings {
        &self.transport.settings
    }

    /// Asks for a decision matching `request.schema`. Blocks until it is valid, or until the
    /// retries, repair turns or total timeout run out.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision, LlmFailure> {
        self.decide_watched(request, &Unwatched)
    }

    /// [`Client::decide`], telling `watcher` how the reply is coming along and handing it each
    /// attempt's record once it is final.
    pub fn decide_watched(
        &self,
        request: &DecisionRequest,
        watcher: &dyn Watcher,
    ) -> Result<Decision, LlmFailure> {
        self.follow_up(request, Vec::new(), watcher)
    }

    /// Like [`Client::decide_watched`], but the conversation goes on after the user message
    /// with `earlier` chat messages (the model's earlier answer and a follow-up question about
    /// it), so that a small question is asked with its own schema and the same prompt prefix.
    pub fn follow_up(
        &self,
        request: &DecisionRequest,
        earlier: Vec<Value>,
        watcher: &dyn Watcher,
    ) -> Result<Decision, LlmFailure> {
        let mut records = Vec::new();
        let mut validator = PendingValidator::compile(&request.schema);
        let outcome = self.runtime.block_on(self.converse(
            request,
            earlier,
            &mut validator,
            &mut records,
            watcher,
        ));
        match outcome {
            Ok(answer) => Ok(Decision {
                value: answer.value,
                format: answer.format,
                found: answer.found,
                repairs: answer.repairs,
                records,
            }),
            Err(error) => Err(LlmFailure { error, records }),
        }
    }

    /// Runs `future` on the client's runtime (for [`super::probe`]).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Asks, checks the reply, and asks again with the problems while repair turns remain.
    async fn converse(
        &self,
        request: &DecisionRequest,
        earlier: Vec<Value>,
        validator: &mut PendingValidator,
        records: &mut Vec<AttemptRecord>,
        watcher: &dyn Watcher,
    ) -> Result<Answer, LlmError> {
        let deadline = instant_after(self.settings().total_timeout.value);
        let endpoint = self.transport.endpoint();
        let mut turn = Turn {
            format: self
                .memory
                .level(&self.transport.endpoint(), &self.settings().model.value),
            repair_messages: earlier,
            repairs: 0,
            deadline,
            rejected: None,
            partial: None,
            stream: self.settings().stream.value
                && self.memory.streams(&endpoint, &self.settings().model.value),
        };
        loop {
            let reply = match self.ask(request, &mut turn, records, watcher).await {
                Ok(reply) => reply,
                Err(error) => return Err(self.repair_failure(request, &turn, error)),
            };
            let validator = validator.get().map_err(|detail| LlmError::BadSchema {
                schema_name: request.schema_name.clone(),
                detail,
            })?;
            let asked = Asked {
                schema: &request.schema,
                partial: turn.partial.as_deref(),
            };
            let judged = judge(
                &reply,
                validator,
                asked,
                self.transport.scrubber(),
                turn.deadline,
            );
            let (problems, partial) = match judged {
                Ok((value, found)) => {
                    let (format, repairs) = (turn.format, turn.repairs);
                    return Ok(Answer {
                        value,
                        format,
                        found,
                        repairs,
                    });
                }
                Err(Rejection::OutOfTime) => {
                    let last = "the total timeout ran out while looking for JSON in the reply";
                    records[reply.record_index].error = Some(last.to_owned());
                    return Err(LlmError::DeadlineExceeded {
                        url: self.transport.endpoint(),
                        total: self.settings().total_timeout.value,
                        attempts: records.len() as u32,
                        last: last.to_owned(),
                    });
                }
                Err(Rejection::Invalid(problems, partial)) => (problems, partial),
            };
            records[reply.record_index].error = Some(format!("invalid reply: {problems}"));
            if turn.repairs == MAX_REPAIR_TURNS {
                return Err(self.invalid_output(request, turn.repairs, problems, &reply.content));
            }
            tracing::info!(turn = turn.repairs + 1, %problems, "invalid reply; asking for a repair");
            turn.repair_messages
                .push(json!({"role": "assistant", "content": echoed(&reply.content)}));
            let prompt = partial
                .as_ref()
                .map_or_else(|| repair_prompt(&problems), |partial| partial.prompt());
            turn.repair_messages
                .push(json!({"role": "user", "content": prompt}));
            turn.repairs += 1;
            turn.rejected = Some((problems, reply.content));
            turn.partial = partial;
        }
    }

    /// `error` as the conversation reports it. A repair turn that does not fit the context
    /// window failed because of the reply it quotes, not the user's prompt (which fit): it is
    /// reported as the invalid reply it is, saying why no repair was asked for.
    fn repair_failure(&self, request: &DecisionRequest, turn: &Turn, error: LlmError) -> LlmError {
        let (
            LlmError::PromptTooLarge {
                prompt_tokens,
                context_window,
                ..
            },
            Some((problems, reply)),
        ) = (&error, &turn.rejected)
        else {
            return error;
        };
        let problems = format!(
            "{problems}; no repair turn was sent: quoting the reply back needs about \
             {prompt_tokens} tokens, more than the {context_window}-token context window leaves \
             for an answer"
        );
        self.invalid_output(request, turn.repairs - 1, problems, reply)
    }

    /// Sends one turn of the conversation, stepping down the `response_format` ladder while the
    /// endpoint rejects the level, and remembers the level that was accepted.
    async fn ask(
        &self,
        request: &DecisionRequest,
        turn: &mut Turn,
        records: &mut Vec<AttemptRecord>,
        watcher: &dyn Watcher,
    ) -> Result<Reply, LlmError> {
        let settings = self.settings();
        loop {
            let answer_schema = turn.partial.as_ref().map(|partial| {
                let name = partial.schema_name(&request.schema_name);
                (name, partial.reply_schema())
            });
            let body = self.request_body(
                request,
                turn.format,
                &turn.repair_messages,
                answer_schema.as_ref(),
            )?;
            let exchange = Exchange {
                body: &body,
                format: turn.format,
                turn: turn.repairs,
                deadline: turn.deadline,
                total: settings.total_timeout.value,
                max_attempts: settings.max_attempts.value,
                stream: turn.stream,
                watcher,
            };
            match self.transport.send(&exchange, records).await {
                Ok(reply) => {
                    if turn.stream && !reply.streamed {
                        // Asked to stream, it answered whole: do not ask it to stream again.
                        self.remember_no_stream(
                            turn,
                            "the endpoint answered a streamed request whole",
                        );
                    }
                    self.memory.remember(
                        &self.transport.endpoint(),
                        &settings.model.value,
                        turn.format,
                    );
                    return Ok(reply);
                }
                Err(SendError::FormatRejected { detail }) => {
                    // Instructions send no response_format, so a rejection always has a lower level.
                    let Some(lower) = turn.format.lower() else {
                        return Err(LlmError::Refused {
                            status: 400,
                            detail,
                        });
                    };
                    tracing::info!(from = %turn.format, to = %lower, %detail, "endpoint rejected response_format; stepping down");
                    turn.format = lower;
                }
                Err(SendError::StreamRejected { detail }) => {
                    self.remember_no_stream(turn, &detail);
                }
                Err(SendError::Failed(error)) => return Err(error),
            }
        }
    }

    /// Stops asking this endpoint for streamed replies, in this conversation and later runs.
    fn remember_no_stream(&self, turn: &mut Turn, why: &str) {
        tracing::info!(%why, "the endpoint does not stream; asking for whole replies");
        turn.stream = false;
        let settings = self.settings();
        self.memory
            .remember_stream(&self.transport.endpoint(), &settings.model.value, false);
    }

    fn invalid_output(
        &self,
        request: &DecisionRequest,
        repairs: u32,
        problems: String,
        reply: &str,
    ) -> LlmError {
        // The reply was scrubbed on arrival; scrub before cutting anyway, so that no cut can
        // leave part of a secret.
        let reply = self.transport.scrubber().text(reply);
        LlmError::InvalidOutput {
            schema_name: request.schema_name.clone(),
            repairs,
            problems,
            reply: reply.chars().take(QUOTED_REPLY_CHARS).collect(),
        }
    }

    /// The JSON request body for `format`, with `max_tokens` budgeted for this prompt. The
    /// `response_format` constrains the reply to `answer_schema` (name, schema) when a partial
    /// repair turn asks for some paths alone, else to the decision schema.
    pub(crate) fn request_body(
        &self,
        request: &DecisionRequest,
        format: ResponseFormat,
        repair_messages: &[Value],
        answer_schema: Option<&(String, Value)>,
    ) -> Result<Vec<u8>, LlmError> {
        let settings = self.settings();
        let system = system_prompt(request, format);
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": request.user}),
        ];
        messages.extend_from_slice(repair_messages);
        let (schema_name, schema) = answer_schema
            .map_or((&request.schema_name, &request.schema), |(name, schema)| {
                (name, schema)
            });
        let response_format = format.request_field(schema_name, schema);
        let response_format_text = response_format
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        let texts = messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .chain([response_format_text.as_str()]);
        let prompt_tokens = budget::estimate_prompt_tokens(texts);
        let wanted = request.max_tokens.unwrap_or(settings.max_tokens.value);
        let max_tokens =
            budget::reply_tokens(prompt_tokens, settings.context_window.value, wanted)?;
        let mut body = json!({
            "model": settings.model.value,
            "messages": messages,
            "temperature": settings.temperature.value,
            "max_tokens": max_tokens,
        });
        if let Some(response_format) = response_format {
            body["response_format"] = response_format;
        }
        Ok(serde_json::to_vec(&body).expect("a serde_json::Value always serializes"))
    }
}

/// The caller's system prompt plus what the format level needs the model to be told.
fn system_prompt(request: &DecisionRequest, format: ResponseFormat) -> String {
    if format.needs_schema_in_prompt() {
        let schema = serde_json::to_string_pretty(&request.schema).unwrap_or_default();
        format!(
            "{}\n\nReply with one JSON object and nothing else: no prose, no code fences. \
             It must validate against this JSON Schema:\n{schema}",
            request.system
        )
    } else {
        format!(
            "{}\n\nReply with one JSON object and nothing else.",
            request.system
        )
    }
}

/// `reply` as a repair turn echoes it: whole up to [`ECHOED_REPLY_CHARS`], else cut there with
/// a marker saying how much was left out.
fn echoed(reply: &str) -> String {
    let Some((cut, _)) = reply.char_indices().nth(ECHOED_REPLY_CHARS) else {
        return reply.to_owned();
    };
    let left_out = reply[cut..].chars().count();
    format!(
        "{}\n[... {left_out} more characters cut ...]",
        &reply[..cut]
    )
}

/// `now + duration`, or a century from now if that is past what an `Instant` can hold (a
/// total timeout configured absurdly long must not panic).
pub(crate) fn instant_after(duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(duration)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

fn repair_prompt(problems: &str) -> String {
    format!(
        "Your previous reply cannot be used: {problems}\n\
         Reply again with only the corrected JSON object: no prose, no code fences."
    )
}

/// The decision schema's validator, compiled on a thread while the request is on its way. The
/// first schema a process compiles is the slow one (jsonschema builds its meta-schema validator
/// then), and the model's answer always takes longer than it (docs/performance.md). The price: a schema
/// that does not compile is reported after the first request rather than before it. Decision
/// schemas are compiled when the registry is checked, so that takes a registry the checks
/// did not see.
struct PendingValidator {
    compiling: Option<std::thread::JoinHandle<Result<jsonschema::Validator, String>>>,
    compiled: Option<Result<jsonschema::Validator, String>>,
}

impl PendingValidator {
    fn compile(schema: &Value) -> PendingValidator {
        let schema = schema.clone();
        let compile = move || jsonschema::validator_for(&schema).map_err(|e| e.to_string());
        match std::thread::Builder::new()
            .name("schema".into())
            .spawn(compile.clone())
        {
            Ok(handle) => PendingValidator {
                compiling: Some(handle),
                compiled: None,
            },
            // No thread to be had: compile here, as before.
            Err(_) => PendingValidator {
                compiling: None,
                compiled: Some(compile()),
            },
        }
    }

    /// The validator, waiting for the compile if it is still running; the schema's error if
    /// it does not compile.
    fn get(&mut self) -> Result<&jsonschema::Validator, String> {
        if let Some(handle) = self.compiling.take() {
            let compiled = handle
                .join()
                .unwrap_or_else(|_| Err("compiling the schema panicked".to_string()));
            self.compiled = Some(compiled);
        }
        match self.compiled.as_ref() {
            Some(Ok(validator)) => Ok(validator),
            Some(Err(detail)) => Err(detail.clone()),
            None => Err("the schema was never compiled".to_string()),
        }
    }
}

/// What the turn that got a reply asked for.
#[derive(Clone, Copy)]
struct Asked<'a> {
    /// The decision schema.
    schema: &'a Value,
    /// The paths a partial repair turn asked for; `None` when it asked for the whole decision.
    partial: Option<&'a PartialRepair>,
}

/// The reply's JSON value if it is present and valid, else what is wrong with it, phrased for
/// the model (it is sent back in the repair turn) and for the user (it ends up in the error),
/// with the partial repair that can fix it. The answer to a partial repair turn is merged into
/// the decision before the decision is validated whole. The value is scrubbed of secrets
/// before it is validated, so that what is validated is what is returned.
fn judge(
    reply: &Reply,
    validator: &jsonschema::Validator,
    asked: Asked<'_>,
    scrubber: &Scrubber,
    deadline: Instant,
) -> Result<(Value, Found), Rejection> {
    if let Some(reason) = &reply.cut_off {
        return Err(Rejection::Invalid(
            format!(
                "the reply was cut off while it was written: {reason}; answer with a shorter \
                 JSON object that ends"
            ),
            None,
        ));
    }
    let cut_off = reply.finish_reason.as_deref() == Some("length");
    // A broken answer to a partial question asks the same question again.
    let invalid = |problem: String| {
        let again = asked
            .partial
            .map(|partial| Box::new(partial.again(&problem)));
        Rejection::Invalid(problem, again)
    };
    let (mut value, found) =
        extract_json_by(&reply.content, Some(deadline)).map_err(|not_found| match not_found {
            NotFound::OutOfTime => Rejection::OutOfTime,
            _ if cut_off => invalid(format!(
                "{not_found}: the reply was cut off at the token limit (finish_reason: length) \
                 before the JSON was complete; answer with a shorter JSON object"
            )),
            _ => invalid(not_found.to_string()),
        })?;
    scrubber.value(&mut value);
    if let Some(partial) = asked.partial {
        value = partial.merged(&value).map_err(invalid)?;
    }
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .take(MAX_LISTED_PROBLEMS)
        .map(|error| {
            let at = error.instance_path().to_string();
            let at = if at.is_empty() {
                "the top level".to_owned()
            } else {
                at
            };
            let text: String = error.to_string().chars().take(PROBLEM_CHARS).collect();
            format!("at {at}: {text}")
        })
        .collect();
    if problems.is_empty() {
        return Ok((value, found));
    }
    let mut text = format!(
        "the JSON does not match the schema: {}",
        problems.join("; ")
    );
    if value.is_array() {
        text.push_str(" (the reply must be a single JSON object, not an array)");
    }
    let partial = repair::plan(asked.schema, &value, validator).map(Box::new);
    Err(Rejection::Invalid(text, partial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_reply_is_echoed_whole_and_a_long_one_is_cut_with_a_marker() {
        assert_eq!(echoed("{\"a\": 1"), "{\"a\": 1");
        let exact = "é".repeat(ECHOED_REPLY_CHARS);
        assert_eq!(echoed(&exact), exact);
        let long = format!("{}{}", "é".repeat(ECHOED_REPLY_CHARS), "x".repeat(200_000));
        let cut = echoed(&long);
        assert!(cut.starts_with(&exact));
        assert!(
            cut.ends_with("\n[... 200000 more characters cut ...]"),
            "{}",
            &cut[cut.len() - 60..]
        );
    }

    #[test]
    fn an_absurd_duration_gives_a_deadline_instead_of_a_panic() {
        let far = instant_after(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(3600));
    }
}
