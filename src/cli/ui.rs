//! Output: human text or JSON (Lines), written so that a closed pipe is not an error, and the
//! few colours human output uses.
//!
//! Every command writes through [`Output`], which returns `io::Error`s instead of panicking as
//! `println!` would when `git spectra log | head -1` closes the pipe; the binary turns a broken
//! pipe into a quiet exit 0.
//!
//! Colour is decided once per stream, the way git decides it: `--color`, `SPECTRA_COLOR` or
//! `git config spectra.color` win, then `NO_COLOR` (any non-empty value turns colour off,
//! <https://no-color.org>), then git's `color.ui`, then `auto`, which colours a terminal, or
//! git's pager when git started one for us (`GIT_PAGER_IN_USE`, as with `git -p spectra log`
//! or `pager.spectra`). Every style lives in [`Style`], so the palette is
//! one `match`. Diagnostics go through [`error`], [`warning`] and [`hint`], which write git's
//! `error:` / `warning:` / `hint:` labels.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use serde::Serialize;

use crate::output::{json_line, labelled};

/// How a read command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// JSON; one object per line for lists (JSON Lines).
    Json,
}

/// When human output is coloured (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour a terminal (or git's pager), unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always colour, even into a pipe or with NO_COLOR set.
    Always,
    /// Never colour.
    Never,
}

/// `--color`, when given; recorded once by the binary before anything is printed.
static FLAG_CHOICE: OnceLock<Option<ColorChoice>> = OnceLock::new();
/// What the environment and git config say, read at most once (only when the flag is absent).
static CONFIGURED: OnceLock<ConfiguredColor> = OnceLock::new();
static STDOUT_COLORED: OnceLock<bool> = OnceLock::new();
static STDERR_COLORED: OnceLock<bool> = OnceLock::new();

/// Records `--color` (or its absence); call once, before anything is printed.
pub fn set_color_choice(choice: Option<ColorChoice>) {
    // A second call (tests calling `run` twice) keeps the first choice, which is harmless.
    let _ = FLAG_CHOICE.set(choice);
}

/// The two streams colour is decided for separately (`git spectra log 2>file` still colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Everything but the streams themselves that decides colour, highest priority first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColorInputs {
    /// `--color`, else `SPECTRA_COLOR`, else `git config spectra.color`.
    pub explicit: Option<ColorChoice>,
    /// `NO_COLOR` is set to something non-empty.
    pub no_color: bool,
    /// git's own `color.ui`, which users set for every git command.
    pub git_color_ui: Option<ColorChoice>,
    /// Git started its pager for us (`GIT_PAGER_IN_USE`).
    pub pager_in_use: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct ConfiguredColor {
    spectra_color: Option<ColorChoice>,
    git_color_ui: Option<ColorChoice>,
}

/// Whether text written to `stream` should carry colour.
pub fn colored(stream: Stream) -> bool {
    let cell = match stream {
        Stream::Stdout => &STDOUT_COLORED,
        Stream::Stderr => &STDERR_COLORED,
    };
    *cell.get_or_init(|| {
        let is_terminal = match stream {
            Stream::Stdout => io::stdout().is_terminal(),
            Stream::Stderr => io::stderr().is_terminal(),
        };
        let flag = FLAG_CHOICE.get().copied().flatten();
        // Reading git config opens the repository; skip it when the flag already decided.
        let configured = match flag {
            Some(_) => ConfiguredColor::default(),
            None => *CONFIGURED.get_or_init(read_color_config),
        };
        let inputs = ColorInputs {
            explicit: flag.or(configured.spectra_color),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
            git_color_ui: configured.git_color_ui,
            pager_in_use: git_pager_in_use(),
        };
        decide_color(inputs, is_terminal)
    })
}

/// The colour rule, free of the process so it can be tested: `always` and `never`, from
/// wherever they come, decide; NO_COLOR turns `auto` off; git's `color.ui` applies only when
/// nothing more specific was said; `auto` colours a terminal or git's pager.
pub fn decide_color(inputs: ColorInputs, is_terminal: bool) -> bool {
    let visible = is_terminal || inputs.pager_in_use;
    match inputs.explicit {
        Some(ColorChoice::Always) => true,
        Some(ColorChoice::Never) => false,
        Some(ColorChoice::Auto) => !inputs.no_color && visible,
        None if inputs.no_color => false,
        None => match inputs.git_color_ui {
            Some(ColorChoice::Always) => true,
            Some(ColorChoice::Never) => false,
            Some(ColorChoice::Auto) | None => visible,
        },
    }
}

/// `SPECTRA_COLOR` / `spectra.color`, and git's `color.ui`. Outside a repository only the
/// variable counts. A value that is not a colour choice is ignored: colour is not worth failing
/// a command over.
fn read_color_config() -> ConfiguredColor {
    use crate::settings::{Layers, Source, keys};
    let repo = crate::repo::Repo::discover().ok();
    let config = |key: &str| repo.as_ref()?.config_string(key);
    let (raw, source) = Layers::from_process(config).raw(&keys::COLOR);
    ConfiguredColor {
        spectra_color: (source != Source::Default)
            .then(|| parse_color_choice(&raw))
            .flatten(),
        git_color_ui: config("color.ui").and_then(|raw| parse_color_choice(&raw)),
    }
}

/// Reads a colour setting as git reads `color.ui`: `always`, `never`, `auto`; a true boolean
/// means `auto` and a false one `never`.
pub fn parse_color_choice(raw: &str) -> Option<ColorChoice> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "always" => Some(ColorChoice::Always),
        "never" => Some(ColorChoice::Never),
        "auto" => Some(ColorChoice::Auto),
        other => crate::repo::parse_git_bool(other).map(|on| {
            if on {
                ColorChoice::Auto
            } else {
                ColorChoice::Never
            }
        }),
    }
}

/// Set when we started the pager ourselves (see `cli::pager`).
static PAGER_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that standard output now goes to a pager we started; call before anything is
/// printed, so `auto` colours the pager as it would the terminal.
pub fn set_pager_started() {
    PAGER_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A pager shows our output: ours, or git's when it runs `pager.spectra` or `git -p` for
/// external commands itself and says so in `GIT_PAGER_IN_USE`. The pager shows colour, so
/// `auto` colours.
fn git_pager_in_use() -> bool {
    if PAGER_STARTED.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    std::env::var("GIT_PAGER_IN_USE")
        .ok()
        .and_then(|value| crate::repo::parse_git_bool(&value))
        .unwrap_or(false)
}

/// The few meanings colour carries, each with one SGR code (git's palette where git has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The `error:` and `fatal:` labels; failed outcomes.
    Error,
    /// The `warning:` label; in-progress outcomes.
    Warning,
    /// The `hint:` label; secondary details.
    Hint,
    /// Succeeded outcomes, things that work.
    Good,
    /// Commit ids, as `git log` colours them.
    Commit,
    /// Event kinds and section names.
    Kind,
}

impl Style {
    fn sgr(self) -> &'static str {
        match self {
            Style::Error => "1;31",
            Style::Warning => "1;33",
            Style::Hint => "2",
            Style::Good => "32",
            Style::Commit => "33",
            Style::Kind => "36",
        }
    }

    /// The style an outcome word (`succeeded`, `failed`, `in_progress`...) is shown in.
    pub fn for_outcome(outcome: &str) -> Option<Style> {
        match outcome {
            "succeeded" | "complete" | "ok" | "works" | "verified" => Some(Style::Good),
            "failed" | "error" | "unreachable" => Some(Style::Error),
            "in_progress" | "pending" | "skipped" | "incomplete" | "undone" => Some(Style::Warning),
            _ => None,
        }
    }
}

/// `text` in `style` when `stream` is coloured, else `text` unchanged.
pub fn paint(stream: Stream, style: Style, text: impl std::fmt::Display) -> String {
    if colored(stream) {
        format!("\x1b[{}m{text}\x1b[m", style.sgr())
    } else {
        text.to_string()
    }
}

/// An outcome word on standard output, coloured by what it means.
pub fn outcome(text: &str) -> String {
    match Style::for_outcome(text) {
        Some(style) => paint(Stream::Stdout, style, text),
        None => text.to_owned(),
    }
}

/// Writes `label: message` on standard error. Like git, only hints label every line; an error's
/// continuation lines (a list of candidates...) follow unlabelled.
fn diagnostic(label: &str, style: Style, message: &str, label_every_line: bool) {
    let label = paint(Stream::Stderr, style, label);
    // Nothing sensible is left to do when stderr itself is closed.
    let _ = io::stderr()
        .lock()
        .write_all(labelled(&label, message, label_every_line).as_bytes());
}

/// What a failing command prints on standard error for `err` (`fatal:` when it exits 128, else
/// `error:`, then its hints), labels coloured as stderr's colour rule says, and the exit code.
pub fn error_report(err: &super::error::Error) -> (u8, String) {
    let report = err.report();
    let text = report.text_with(|label| {
        let style = if label == "hint" {
            Style::Hint
        } else {
            Style::Error
        };
        paint(Stream::Stderr, style, label)
    });
    (report.exit_code(), text)
}

/// `error: ...` on standard error.
pub fn error(message: impl std::fmt::Display) {
    diagnostic("error", Style::Error, &message.to_string(), false);
}

/// `fatal: ...` on standard error (exit code 128 follows).
pub fn fatal(message: impl std::fmt::Display) {
    diagnostic("fatal", Style::Error, &message.to_string(), false);
}

/// `warning: ...` on standard error.
pub fn warning(message: impl std::fmt::Display) {
    diagnostic("warning", Style::Warning, &message.to_string(), false);
}

/// `hint: ...` on standard error, one label per line.
pub fn hint(message: impl std::fmt::Display) {
    diagnostic("hint", Style::Hint, &message.to_string(), true);
}

/// Buffered standard output.
pub struct Output {
    out: io::BufWriter<io::StdoutLock<'static>>,
}

impl Default for Output {
    fn default() -> Self {
        Self::new()
    }
}

impl Output {
    /// Buffered standard output, locked for the command's life.
    pub fn new() -> Output {
        Output {
            out: io::BufWriter::new(io::stdout().lock()),
        }
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.out, "{text}")
    }

    /// Writes `value` as one line of compact JSON, in the conventions of every
    /// `--format json` (see [`json_record`]).
    pub fn json_line(&mut self, value: &impl Serialize) -> io::Result<()> {
        // Serialise first so a closed pipe surfaces as a plain `BrokenPipe` io::Error.
        let line = json_record(value)?;
        self.out.write_all(&line)
    }

    /// Writes raw bytes (an attachment).
    pub fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The version a `--format json` object carries in `schema` unless it says otherwise (`stats`
/// carries its own, [`crate::stats::STATS_SCHEMA`]).
pub const JSON_SCHEMA: u64 = 1;

/// `value` as one line of JSON in the conventions every `--format json` object follows
/// (docs/commands.md, "JSON output"): keys sorted at every level, and a `schema` version on
/// the top-level object. Going through `serde_json::Value`, whose maps are sorted, gives the
/// order whatever the struct's field order is.
pub fn json_record(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let mut value = serde_json::to_value(value).map_err(io::Error::other)?;
    if let serde_json::Value::Object(object) = &mut value {
        object.entry("schema").or_insert_with(|| JSON_SCHEMA.into());
    }
    json_line(&value)
}

/// True when `err` (or anything it wraps) is a closed pipe.
pub fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// A spinner on standard error while something slow happens; only on a terminal.
pub struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    message: std::sync::Arc<std::sync::Mutex<String>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning with `message`, or returns `None` when stderr is not a terminal.
    pub fn start(message: &str) -> Option<Spinner> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let message = std::sync::Arc::new(std::sync::Mutex::new(message.to_string()));
        let shown = message.clone();
        let handle = std::thread::spawn(move || {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut frame = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let text = shown
                    .lock()
                    .map(|m| m.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                // Clear the line first: a new message may be shorter than the last.
                eprint!("\r\x1b[2K{} {text}", frames[frame % frames.len()]);
                frame += 1;
                std::thread::park_timeout(std::time::Duration::from_millis(100));
            }
            // Clear the line so what follows starts clean.
            eprint!("\r\x1b[2K");
        });
        Some(Spinner {
            stop,
            message,
            handle: Some(handle),
        })
    }

    /// Shows `message` from the next frame on.
    pub fn set_message(&self, message: &str) {
        let mut shown = self
            .message
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        message.clone_into(&mut shown);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(explicit: Option<ColorChoice>, no_color: bool) -> ColorInputs {
        ColorInputs {
            explicit,
            no_color,
            ..ColorInputs::default()
        }
    }

    #[test]
    fn an_explicit_choice_beats_no_color_and_no_color_beats_a_terminal() {
        assert!(decide_color(inputs(Some(ColorChoice::Always), true), false));
        assert!(!decide_color(inputs(Some(ColorChoice::Never), false), true));
        assert!(!decide_color(inputs(Some(ColorChoice::Auto), true), true));
        assert!(!decide_color(inputs(None, true), true));
        assert!(decide_color(inputs(None, false), true));
        assert!(!decide_color(inputs(None, false), false));
    }

    #[test]
    fn git_s_pager_counts_as_a_terminal() {
        let paged = ColorInputs {
            pager_in_use: true,
            ..ColorInputs::default()
        };
        assert!(decide_color(paged, false));
        let paged_no_color = ColorInputs {
            no_color: true,
            ..paged
        };
        assert!(!decide_color(paged_no_color, false));
    }

    #[test]
    fn color_ui_applies_only_when_nothing_more_specific_was_said() {
        let never_ui = ColorInputs {
            git_color_ui: Some(ColorChoice::Never),
            ..ColorInputs::default()
        };
        assert!(!decide_color(never_ui, true));
        let overridden = ColorInputs {
            explicit: Some(ColorChoice::Auto),
            ..never_ui
        };
        assert!(decide_color(overridden, true));
        assert_eq!(parse_color_choice("true"), Some(ColorChoice::Auto));
        assert_eq!(parse_color_choice("off"), Some(ColorChoice::Never));
        assert_eq!(parse_color_choice("Always"), Some(ColorChoice::Always));
        assert_eq!(parse_color_choice("sometimes"), None);
    }
}
