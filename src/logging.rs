//! Diagnostic logs on standard error: how much to say, in which format, and the spans that tie
//! every line to the run and event it belongs to.
//!
//! Logs are for people debugging a run, not for the record: the event log is the record. They go
//! to stderr so stdout stays the command's output, and by default only warnings are shown, so a
//! normal command prints exactly what it did before logging existed. `-v`/`-vv`/`-vvv` or
//! `SPECTRA_LOG=<filter>` (`tracing_subscriber::EnvFilter` syntax) say more; `--log-format json`
//! writes one JSON object a line. The span helpers here carry the run id (the correlation id of
//! events and logs) and the event id, so `jq 'select(.span.run == "...")'` finds one run's lines.
//!
//! Logs never hold the API key (it is a [`crate::settings::Secret`] and is scrubbed from anything
//! the endpoint echoes), and hold prompts only when `SPECTRA_LOG_PROMPTS=1`: a prompt carries the
//! user's specification, which does not belong in a log someone pastes into an issue.

use std::sync::OnceLock;

use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;

use crate::settings::{SettingsError, Source};

/// The environment variable holding a log filter, e.g. `spectra=debug` or `spectra::llm=trace`.
pub const LOG_ENV: &str = "SPECTRA_LOG";

/// The environment variable that, set to `1`, lets prompts into debug logs.
pub const LOG_PROMPTS_ENV: &str = "SPECTRA_LOG_PROMPTS";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, spans first: `run{run=0193..}: message`.
    #[default]
    Human,
    /// One JSON object per line (JSON Lines), with the current span and the span list.
    Json,
}

/// What the command line asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// How many times `-v` was given.
    pub verbosity: u8,
    pub format: LogFormat,
}

/// Installs the process-wide subscriber. Call once, before any work; a second call is a no-op.
///
/// The filter is chosen from, highest priority first: `-v` flags, `SPECTRA_LOG`, warnings only.
pub fn init(options: LogOptions) -> Result<(), SettingsError> {
    let env_value = std::env::var(LOG_ENV).ok();
    let quiet = filter_directives(options.verbosity, env_value.clone()) == QUIET_DIRECTIVES;
    let filter = choose_filter(options.verbosity, env_value)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Already installed (a test harness, a second call): keep the first.
    let _ = match options.format {
        LogFormat::Human if quiet => builder
            .with_ansi(stderr_wants_colour())
            .event_format(GitStyle)
            .try_init(),
        LogFormat::Human => builder.with_ansi(stderr_wants_colour()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    Ok(())
}

/// The directives when nobody asked for logs: only warnings and errors, which users meet
/// without having asked, so they are written as git writes its own ([`GitStyle`]).
const QUIET_DIRECTIVES: &str = "warn";

/// `warning: message key=value ...` (or `error: ...`): what a warning looks like when nobody
/// asked for logs, so it reads like git's own messages and not like a debug trace.
struct GitStyle;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for GitStyle
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use crate::ui::{Stream, Style, paint};
        let (label, style) = match *event.metadata().level() {
            Level::ERROR => ("error", Style::Error),
            Level::WARN => ("warning", Style::Warning),
            _ => ("hint", Style::Hint),
        };
        write!(writer, "{}: ", paint(Stream::Stderr, style, label))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The filter for `verbosity` `-v` flags, else the `SPECTRA_LOG` value, else warnings only.
fn choose_filter(verbosity: u8, env_value: Option<String>) -> Result<EnvFilter, SettingsError> {
    let directives = filter_directives(verbosity, env_value);
    EnvFilter::try_new(&directives).map_err(|error| SettingsError {
        key: LOG_ENV,
        shown: directives.clone(),
        origin: Source::Env(LOG_ENV),
        reason: error.to_string(),
    })
}

/// The directives as written; only the `SPECTRA_LOG` value can be malformed.
fn filter_directives(verbosity: u8, env_value: Option<String>) -> String {
    let from_flags = match verbosity {
        0 => None,
        // Our own crate gets one step more detail than the libraries under it (gix, reqwest).
        1 => Some("warn,spectra=info"),
        2 => Some("info,spectra=debug"),
        _ => Some("debug,spectra=trace"),
    };
    match (
        from_flags,
        env_value.filter(|value| !value.trim().is_empty()),
    ) {
        (Some(directives), _) => directives.to_string(),
        (None, Some(value)) => value,
        (None, None) => QUIET_DIRECTIVES.to_string(),
    }
}

/// The same rule as every other coloured output: `--color`, then NO_COLOR, then a terminal.
fn stderr_wants_colour() -> bool {
    crate::ui::colored(crate::ui::Stream::Stderr)
}

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
    fn flags_win_over_the_environment() {
        assert_eq!(
            filter_directives(2, Some("error".into())),
            "info,spectra=debug"
        );
        assert_eq!(filter_directives(7, None), "debug,spectra=trace");
    }

    #[test]
    fn the_environment_filter_applies_without_flags() {
        assert_eq!(
            filter_directives(0, Some("spectra::llm=trace".into())),
            "spectra::llm=trace"
        );
        assert_eq!(filter_directives(0, None), "warn");
        assert_eq!(filter_directives(0, Some("  ".into())), "warn");
    }

    #[test]
    fn a_bad_environment_filter_names_the_variable() {
        let error = choose_filter(0, Some("spectra=loud".into())).unwrap_err();
        assert_eq!(error.key, LOG_ENV);
        assert!(error.to_string().contains("SPECTRA_LOG"), "{error}");
    }

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
