//! Everything a decision can fail with, each with a hint a user can act on.
//!
//! Messages quote what the endpoint or the model said (with the API key scrubbed out), because
//! "the LLM call failed" is useless when the endpoint said exactly what was wrong.

use std::time::Duration;

/// A requested wait as a message shows it: seconds, or "more than a year" for the absurd waits
/// a hostile server sends (`Retry-After: 1e20`), which saturate to `Duration::MAX`.
fn shown_wait(wait: Duration) -> String {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    if wait > YEAR {
        "more than a year".to_owned()
    } else {
        format!("{}s", wait.as_secs_f64())
    }
}

/// Why a decision could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The prompt leaves no room for a reply in the configured context window; nothing was sent.
    #[error(
        "the prompt needs about {prompt_tokens} tokens, leaving {available} of the {context_window}-token \
         context window for the reply (at least {needed} needed); nothing was sent"
    )]
    PromptTooLarge {
        /// The estimated size of the prompt.
        prompt_tokens: u32,
        /// The configured context window.
        context_window: u32,
        /// The tokens the prompt leaves for the reply.
        available: u32,
        /// The least a reply needs.
        needed: u32,
    },

    /// No connection could be made to the endpoint, on any attempt.
    #[error("cannot reach the LLM endpoint {url} after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last connection failed.
        reason: String,
    },

    /// Every attempt failed with a retryable error.
    #[error("the LLM endpoint {url} kept failing; gave up after {attempts} attempt(s): {last}")]
    RetriesExhausted {
        /// The endpoint.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },

    /// The total deadline passed (or the next wait would pass it) before an answer came.
    #[error(
        "no answer from the LLM endpoint {url} within the total timeout of {}s ({attempts} attempt(s)); last: {last}",
        total.as_secs_f64()
    )]
    DeadlineExceeded {
        /// The endpoint.
        url: String,
        /// The total timeout.
        total: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },

    /// The endpoint asked to be retried later than we are willing to wait.
    #[error(
        "the LLM endpoint asked to retry after {}, longer than spectra.llm.maxDelay ({}s)",
        shown_wait(*wait), max.as_secs_f64()
    )]
    RetryAfterTooLong {
        /// The wait the endpoint asked for.
        wait: Duration,
        /// The most we wait (`spectra.llm.maxDelay`).
        max: Duration,
    },

    /// The endpoint refused the request with a status that retrying cannot fix.
    #[error("the LLM endpoint refused the request with HTTP {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The endpoint's explanation.
        detail: String,
    },

    /// The prompt is longer than the model's context window, as the endpoint says.
    #[error("the prompt does not fit the model's context window: {detail}")]
    ContextLength {
        /// The endpoint's explanation.
        detail: String,
    },

    /// The account behind the API key has no quota left.
    #[error("the LLM account has no quota left: {detail}")]
    InsufficientQuota {
        /// The endpoint's explanation.
        detail: String,
    },

    /// A 2xx reply that is not a chat completion.
    #[error("the LLM endpoint answered, but not with a chat completion: {detail}")]
    MalformedResponse {
        /// What was wrong with it.
        detail: String,
    },

    /// The model's answer never became valid JSON matching the schema, even after repair turns.
    #[error(
        "the model's reply for {schema_name} is not valid after {repairs} repair turn(s): {problems}\nreply was: {reply}"
    )]
    InvalidOutput {
        /// The schema's name.
        schema_name: String,
        /// How many repair turns were used.
        repairs: u32,
        /// What was wrong with the last reply.
        problems: String,
        /// The last reply, shortened.
        reply: String,
    },

    /// The caller's JSON Schema itself is invalid (a bug in an activity definition).
    #[error("the JSON Schema {schema_name} is invalid: {detail}")]
    BadSchema {
        /// The schema's name.
        schema_name: String,
        /// The validator's complaint.
        detail: String,
    },

    /// The HTTP client or its runtime could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),

    /// A replay asked for a call its record does not hold; nothing was sent.
    #[error("{0}")]
    NotRecorded(String),
}

impl LlmError {
    /// What the user can do about it, printed as `hint: ...`.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            LlmError::PromptTooLarge { .. } | LlmError::ContextLength { .. } => {
                "if the model allows a larger window, set it with `git config spectra.llm.contextWindow N` \
                 (or SPECTRA_LLM_CONTEXT_WINDOW)"
            }
            LlmError::Unreachable { .. } | LlmError::DeadlineExceeded { .. } => {
                "point spectra at a running OpenAI-compatible server with SPECTRA_LLM_URL=URL or \
                 `git config spectra.llm.url URL` (e.g. http://localhost:8001/v1), then run `git spectra doctor`"
            }
            LlmError::Refused {
                status: 401 | 403, ..
            } => "set the API key with SPECTRA_LLM_API_KEY or `git config spectra.llm.apiKey KEY`",
            LlmError::Refused { status: 404, .. } => {
                "check the URL (SPECTRA_LLM_URL / spectra.llm.url) and the model name \
                 (SPECTRA_LLM_MODEL / spectra.llm.model); `git spectra doctor` lists the served models"
            }
            LlmError::RetriesExhausted { .. } | LlmError::RetryAfterTooLong { .. } => {
                "the endpoint is overloaded or failing; try again later, or raise spectra.llm.maxAttempts / \
                 spectra.llm.totalTimeout"
            }
            LlmError::InsufficientQuota { .. } => {
                "add credit to the account or use another API key"
            }
            LlmError::InvalidOutput { .. } => {
                "a stronger model, or one that supports response_format json_schema, follows schemas more reliably"
            }
            LlmError::MalformedResponse { .. } => {
                "check that spectra.llm.url points at an OpenAI-compatible /v1/chat/completions endpoint"
            }
            LlmError::NotRecorded(_) => {
                "the run's prompts changed since it was recorded; `git spectra rerun` asks the model again"
            }
            LlmError::Refused { .. } | LlmError::BadSchema { .. } | LlmError::Setup(_) => {
                return None;
            }
        })
    }
}

impl crate::failure::Classify for LlmError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Failed
    }

    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().map(str::to_string).collect()
    }
}
