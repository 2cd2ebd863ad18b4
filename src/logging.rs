//! Diagnostic logs on standard error: how much to say, in which format, and the spans that tie
//! every line to the run and event it belongs to.
//!
//! Logs are for people debugging a run, not for the record: the event log is the record. They go
//! to stderr so stdout stays the command's output, and by default only warnings are shown, so a
//! normal command prints exactly what it did before logging existed. `-v`/`-vv`/`-vvv` or
//! `SPECTRA_LOG=<filter>` (`tracing_subscriber::EnvFilter` syntax) say more; `--log-format json`
//! writes one JSON object a line (the command line installs the subscriber: `cli::logging`).
//! The span helpers here carry the run id (the correlation id of
//! events and logs) and the event id, so `jq 'select(.span.run == "...")'` finds one run's lines.
//!
//! Logs never hold the API key (it is a [`crate::settings::Secret`] and is scrubbed from anything
//! the endpoint echoes), and hold prompts only when `SPECTRA_LOG_PROMPTS=1`: a prompt carries the
//! user's specification, which does not belong in a log someone pastes into an issue.

use std::sync::OnceLock;

use tracing::{Level, Span};

/// The environment variable that, set to `1`, lets prompts into debug logs.
pub const LOG_PROMPTS_ENV: &str = "SPECTRA_LOG_PROMPTS";

/// True when `SPECTRA_LOG_PROMPTS=1` (or `true`): prompts may appear in debug logs.
pub fn prompts_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var(LOG_PROMPTS_ENV)
            .is_ok_and(|value| matches!(value.trim().to_lowercase().as_str(), "1" | "true"))
    })
}

/// What a log line may say about a prompt (or a request body holding one): the text itself when
/// [`prompts_enabled`], else only its size, so a line still shows that something was sent.
pub fn loggable_prompt(text: &str) -> String {
    loggable_prompt_if(prompts_enabled(), text)
}

fn loggable_prompt_if(enabled: bool, text: &str) -> String {
    if enabled {
        text.to_string()
    } else {
        format!(
            "<{} bytes; set {LOG_PROMPTS_ENV}=1 to log prompts>",
            text.len()
        )
    }
}

// Spans are created at ERROR level on purpose: a span is only recorded when its level passes
// the filter, and the default filter shows warnings. At INFO, a warning inside a run would
// lose its run id exactly when it matters. Creating a span that no line uses costs next to
// nothing.

/// The span of one run (`git spectra discover`, `run`, ...): every line inside carries `run`.
pub fn run_span(run: &str) -> Span {
    tracing::span!(Level::ERROR, "run", run = %run)
}

/// The span of one activity of a run.
pub fn activity_span(run: &str, activity: &str) -> Span {
    tracing::span!(Level::ERROR, "activity", run = %run, activity = %activity)
}

/// The span of one HTTP attempt to the LLM; `event` is the id of its `llm.called` event.
pub fn llm_attempt_span(run: &str, event: &str, attempt: u32) -> Span {
    tracing::span!(Level::ERROR, "llm_attempt", run = %run, event = %event, attempt)
}

/// The span of one playbook execution; `event` is the id of its `playbook.started` event.
pub fn playbook_span(run: &str, event: &str, playbook: &str) -> Span {
    tracing::span!(Level::ERROR, "playbook", run = %run, event = %event, playbook = %playbook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_replaced_by_their_size_unless_enabled() {
        assert_eq!(
            loggable_prompt_if(false, "design a logging service"),
            "<24 bytes; set SPECTRA_LOG_PROMPTS=1 to log prompts>"
        );
        assert_eq!(
            loggable_prompt_if(true, "design a logging service"),
            "design a logging service"
        );
    }
}
