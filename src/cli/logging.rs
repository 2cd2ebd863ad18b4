//! Installs the process's log subscriber from `-v`, `SPECTRA_LOG` and `--log-format` (see
//! [`crate::logging`] for what logs are for and the spans every line carries). When nobody
//! asked for logs, warnings read like git's own `warning:` lines, coloured as every other
//! diagnostic is.

use tracing::Level;
use tracing_subscriber::EnvFilter;

use crate::settings::{SettingsError, Source};

/// The environment variable holding a log filter, e.g. `spectra=debug` or `spectra::llm=trace`.
pub const LOG_ENV: &str = "SPECTRA_LOG";

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
        use super::ui::{Stream, Style, paint};
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
    super::ui::colored(super::ui::Stream::Stderr)
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
}
