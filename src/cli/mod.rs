//! Argument parsing and rendering. One file per subcommand; no git or HTTP here.

mod activities;
mod append;
mod builtin;
mod completions;
mod discover;
mod doctor;
pub mod error;
mod help;
mod helper;
mod hook;
mod hooks;
mod lifecycle;
mod log;
mod logging;
mod man;
mod pager;
mod registry;
mod registry_import;
mod replay;
mod report;
mod rerun;
mod run;
mod show;
mod stats;
mod status;
mod sync;
pub mod ui;
mod undo;
mod verify;
mod views;

use clap::{Parser, Subcommand};

use error::{EXIT_USAGE, Error};
use logging::{LogFormat, LogOptions};
use ui::ColorChoice;

pub use completions::{CompletionShell, script as completion_script};
pub use man::main_page as man_page;

/// An AI-agent orchestrator that lives inside Git.
///
/// Every decision and outcome is an event: one commit on refs/spectra/events. `git log
/// refs/spectra/events` is the audit trail.
#[derive(Debug, Parser)]
#[command(name = "git-spectra", bin_name = "git spectra", version)]
pub struct Cli {
    // A doc comment here would become help text; the subcommands describe themselves.
    #[allow(missing_docs)]
    #[command(subcommand)]
    pub command: Command,
    /// Log more on stderr: -v info, -vv debug, -vvv trace (overrides SPECTRA_LOG).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// How log lines on stderr are written; `json` is one object per line.
    #[arg(
        long,
        value_enum,
        default_value_t,
        global = true,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
    /// Colour human output (default: SPECTRA_COLOR, spectra.color, NO_COLOR, color.ui, auto).
    #[arg(long, value_enum, global = true, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// Do not page long output (log, show, runs...) on a terminal; as `git --no-pager`.
    #[arg(long, global = true)]
    pub no_pager: bool,
}

/// Every subcommand.
// A doc comment on a variant would replace the help its `*Args` struct's doc comment gives.
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    Append(append::AppendArgs),
    Discover(discover::DiscoverArgs),
    Doctor(doctor::DoctorArgs),
    Log(log::LogArgs),
    Show(show::ShowArgs),
    Stats(stats::StatsArgs),
    Verify(verify::VerifyArgs),
    Report(report::ReportArgs),
    Manifest(views::ManifestArgs),
    History(views::HistoryArgs),
    Runs(views::RunsArgs),
    Export(views::ExportArgs),
    Registry(registry::RegistryArgs),
    Hooks(hooks::HooksArgs),
    Status(status::StatusArgs),
    Fetch(sync::FetchArgs),
    Merge(sync::MergeArgs),
    Push(sync::PushArgs),
    Sync(sync::SyncArgs),
    Completions(completions::CompletionsArgs),
    /// Print or install the manual pages (for packagers and the README's install step).
    #[command(hide = true)]
    Man(man::ManArgs),
    /// Run a git hook's work (the installed shims call this).
    #[command(hide = true)]
    Hook(hook::HookArgs),
    Undo(undo::UndoArgs),
    Redo(undo::RedoArgs),
    Replay(replay::ReplayArgs),
    Rerun(rerun::RerunArgs),
    Run(run::RunArgs),
    /// Run a built-in playbook (used by the default playbooks' argv).
    #[command(hide = true)]
    Builtin(builtin::BuiltinArgs),
}

impl Command {
    /// Whether the command carries out a run (an activity run, an undo, a redo) that a signal
    /// must close; other commands keep the default signal handling and start no thread.
    fn records_a_run(&self) -> bool {
        matches!(
            self,
            Command::Discover(_)
                | Command::Run(_)
                | Command::Rerun(_)
                | Command::Undo(_)
                | Command::Redo(_)
        )
    }

    /// Whether the command prints long human output that a terminal shows through the pager,
    /// as `git log` does; JSON is never paged.
    fn pages(&self) -> bool {
        use registry::RegistryCommand;
        use ui::Format::Human;
        match self {
            Command::Log(args) => args.format == Human,
            Command::Show(args) => args.format == Human,
            Command::Stats(args) => args.format == Human,
            Command::Manifest(args) => args.format == Human,
            Command::History(args) => args.format == Human,
            Command::Runs(args) => args.format == Human,
            Command::Registry(args) => match &args.command {
                RegistryCommand::List { format } | RegistryCommand::Show { format, .. } => {
                    *format == Human
                }
                RegistryCommand::Validate { .. } | RegistryCommand::Import { .. } => false,
            },
            _ => false,
        }
    }
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> u8 {
    if let Some(hook) = called_by_the_post_commit_shim() {
        return run_post_commit_hook(hook);
    }
    let invocation = match parse_args() {
        Ok(invocation) => invocation,
        Err(ParseFailure::Usage(err)) => return render_clap_error(err),
        Err(ParseFailure::Registry(err)) => return render_error(&err.into()),
    };
    ui::set_color_choice(invocation.color);
    let options = LogOptions {
        verbosity: invocation.verbose,
        format: invocation.log_format,
    };
    if let Err(err) = logging::init(options) {
        return render_error(&err.into());
    }
    let command = match invocation.command {
        Invoked::Builtin(command) => command,
        Invoked::Activity { name, args } => {
            crate::interrupt::install();
            return finish(lifecycle::run_activity(&name, args));
        }
    };
    if command.records_a_run() {
        crate::interrupt::install();
    }
    let pager = if command.pages() {
        pager::start(invocation.no_pager)
    } else {
        None
    };
    let result = match command {
        Command::Append(args) => append::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Log(args) => log::run(args),
        Command::Show(args) => show::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Report(args) => report::run(args),
        Command::Manifest(args) => views::manifest(args),
        Command::History(args) => views::history(args),
        Command::Runs(args) => views::runs(args),
        Command::Export(args) => views::export(args),
        Command::Registry(args) => registry::run(args),
        Command::Hooks(args) => hooks::run(args),
        Command::Status(args) => status::run(args),
        Command::Fetch(args) => sync::fetch(args),
        Command::Merge(args) => sync::merge(args),
        Command::Push(args) => sync::push(args),
        Command::Sync(args) => sync::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Undo(args) => undo::undo(args),
        Command::Redo(args) => undo::redo(args),
        Command::Replay(args) => replay::run(args),
        Command::Rerun(args) => rerun::run(args),
        Command::Run(args) => run::run(args),
        Command::Builtin(args) => builtin::run(args),
    };
    let code = finish(result);
    if let Some(pager) = pager {
        pager.finish();
    }
    code
}

/// The exit code of a command's result, its error rendered.
fn finish(result: error::Result<u8>) -> u8 {
    match result {
        Ok(code) => code,
        Err(err) => render_error(&err),
    }
}

/// What the post-commit shim runs: exactly `hook post-commit` (in the foreground) or
/// `hook record-noted COMMIT` (in the background).
#[derive(Debug, Clone)]
enum ShimCall {
    PostCommit,
    RecordNoted(String),
}

/// The shim's call, when the arguments are exactly one of its two.
fn called_by_the_post_commit_shim() -> Option<ShimCall> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != "hook" {
        return None;
    }
    let call = match args.next()?.to_str()? {
        "post-commit" => ShimCall::PostCommit,
        "record-noted" => ShimCall::RecordNoted(args.next()?.into_string().ok()?),
        _ => return None,
    };
    args.next().is_none().then_some(call)
}

/// The hook's work runs beside every `git commit`, within a budget of a few milliseconds: it
/// skips building the whole command line (every subcommand's arguments), which is a measurable
/// part of a process start here. Any other arguments go through clap as usual.
fn run_post_commit_hook(call: ShimCall) -> u8 {
    let options = LogOptions {
        verbosity: 0,
        format: LogFormat::Human,
    };
    if let Err(err) = logging::init(options) {
        return render_error(&err.into());
    }
    match call {
        ShimCall::PostCommit => hook::post_commit(),
        ShimCall::RecordNoted(commit) => hook::record_noted(&commit),
    }
    0
}

/// What the command line asks for, with the options every command takes.
struct Invocation {
    verbose: u8,
    log_format: LogFormat,
    color: Option<ColorChoice>,
    no_pager: bool,
    command: Invoked,
}

/// A built-in command, or one generated from the registry's activities.
enum Invoked {
    Builtin(Command),
    Activity {
        name: String,
        args: lifecycle::ActivityArgs,
    },
}

/// The invocation of a built-in command from what clap matched.
fn builtin_invocation(matches: &clap::ArgMatches) -> Result<Invocation, ParseFailure> {
    use clap::FromArgMatches;
    let cli = Cli::from_arg_matches(matches).map_err(ParseFailure::Usage)?;
    Ok(Invocation {
        verbose: cli.verbose,
        log_format: cli.log_format,
        color: cli.color,
        no_pager: cli.no_pager,
        command: Invoked::Builtin(cli.command),
    })
}

/// Why the command line could not be parsed.
enum ParseFailure {
    /// Usage errors, help and version, as clap renders them.
    Usage(clap::Error),
    /// The command is not a built-in one, and the repository's registry (which could have
    /// declared it) does not load.
    Registry(crate::registry::RegistryError),
}

impl Cli {
    /// The built-in commands alone, without the activity commands the registry adds.
    pub(crate) fn static_command() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
    }
}

/// The whole command line: the built-in commands plus one per activity of the registry (the
/// repository's, else the built-in one). Manual pages and completions are generated from it.
pub fn command() -> clap::Command {
    match activities::registry().0 {
        Some(registry) => command_for(&registry),
        None => Cli::static_command(),
    }
}

/// The built-in commands plus one per activity of `registry` whose name is free.
pub fn command_for(registry: &crate::registry::Registry) -> clap::Command {
    activities::add_to(Cli::static_command(), registry)
}

/// Parses the process arguments with clap's own colours (help, usage errors) following
/// `--color` too; clap needs that before it parses, so the flag is looked for first.
///
/// The built-in commands are tried first, which needs no registry; only when they do not
/// parse (an activity command, help, a usage error) is the registry loaded and the whole
/// command line parsed again, so help and errors name the activities too.
fn parse_args() -> Result<Invocation, ParseFailure> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = clap_color(&args);
    if let Ok(matches) = Cli::static_command()
        .color(color)
        .try_get_matches_from(&args)
    {
        return builtin_invocation(&matches);
    }
    let (registry, registry_error) = activities::registry();
    let command = match &registry {
        Some(registry) => command_for(registry),
        None => Cli::static_command(),
    };
    let matches = match command.color(color).try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(err) => {
            return Err(match registry_error {
                Some(error) if err.kind() == clap::error::ErrorKind::InvalidSubcommand => {
                    ParseFailure::Registry(error)
                }
                _ => ParseFailure::Usage(err),
            });
        }
    };
    let Some((name, sub)) = matches.subcommand() else {
        return builtin_invocation(&matches);
    };
    if activities::is_taken(&Cli::static_command(), name) {
        return builtin_invocation(&matches);
    }
    // Global options given after the activity's name are propagated to its matches.
    Ok(Invocation {
        verbose: sub.get_count("verbose"),
        log_format: sub
            .get_one::<LogFormat>("log_format")
            .copied()
            .unwrap_or_default(),
        color: sub.get_one::<ColorChoice>("color").copied(),
        // Activity commands print a short report and never page.
        no_pager: true,
        command: Invoked::Activity {
            name: name.to_string(),
            args: activities::args_from(sub).map_err(ParseFailure::Usage)?,
        },
    })
}

/// `--color always|never` (or `--color=...`) before any `--`; clap's own `auto` otherwise,
/// which already honours NO_COLOR and the terminal.
fn clap_color(args: &[std::ffi::OsString]) -> clap::ColorChoice {
    let mut value = None;
    let mut words = args.iter().filter_map(|arg| arg.to_str());
    while let Some(word) = words.next() {
        match word {
            "--" => break,
            "--color" => value = words.next(),
            _ => {
                if let Some(given) = word.strip_prefix("--color=") {
                    value = Some(given);
                }
            }
        }
    }
    match value {
        Some("always") => clap::ColorChoice::Always,
        Some("never") => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    }
}

/// Help and version go to stdout with 0; usage errors to stderr with 2, as clap does, ending
/// with a hint that names `git spectra help <command>`.
fn render_clap_error(err: clap::Error) -> u8 {
    if err.use_stderr() {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        help::render_usage_error(&err, &command(), &args);
        return EXIT_USAGE;
    }
    // A closed pipe while printing help is not worth reporting.
    let _ = err.print();
    0
}

/// Prints `fatal:`/`error:` and `hint:` lines as git does and picks the exit code.
fn render_error(err: &Error) -> u8 {
    // `git spectra log | head -1`: the reader left; that is success, not an error.
    if err.is_broken_pipe() {
        return 0;
    }
    let (code, text) = ui::error_report(err);
    // Nothing sensible is left to do when stderr itself is closed.
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    code
}

/// Parses `--since` values: RFC 3339 instants, `YYYY-MM-DD` (midnight UTC), or `N units ago`.
pub(crate) fn parse_since(text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Ok(instant);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|zoned| zoned.timestamp())
            .map_err(|err| err.to_string());
    }
    let ago = text.strip_suffix("ago").unwrap_or(text).trim();
    if let Ok(span) = ago.parse::<jiff::Span>() {
        let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
        return now
            .checked_sub(span)
            .map(|zoned| zoned.timestamp())
            .map_err(|err| err.to_string());
    }
    Err(format!(
        "`{text}` is not a date: use 2026-11-25, 2026-11-25T18:00:00Z or `2 hours ago`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_instants_and_relative_times() {
        assert_eq!(
            parse_since("2026-11-25").unwrap().to_string(),
            "2026-11-25T00:00:00Z"
        );
        assert_eq!(
            parse_since("2026-11-25T18:00:00Z").unwrap().to_string(),
            "2026-11-25T18:00:00Z"
        );
        let two_hours_ago = parse_since("2 hours ago").unwrap();
        assert!(two_hours_ago < jiff::Timestamp::now());
        assert!(parse_since("yesterday-ish").is_err());
    }

    /// Every subcommand a user can see explains itself the same way: a one-line summary that
    /// starts with a capital verb, and a long help with `Examples:` whose lines keep their
    /// breaks (they would be joined into one paragraph without `verbatim_doc_comment`).
    #[test]
    fn every_visible_subcommand_has_a_summary_and_examples() {
        let cli = command_for(&crate::registry::Registry::builtin().unwrap());
        for sub in cli.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            let about = sub.get_about().map(ToString::to_string);
            let about = about.unwrap_or_else(|| panic!("{name} has no summary"));
            assert!(!about.contains('\n'), "{name}: summary is not one line");
            assert!(
                about.starts_with(|c: char| c.is_ascii_uppercase()),
                "{name}: summary `{about}` does not start with a verb"
            );
            let long = sub.get_long_about().map(ToString::to_string);
            let long = long.unwrap_or_else(|| panic!("{name} has no long help"));
            assert!(
                long.contains("Examples:\n  git spectra") || long.contains("Examples:\n  git -c"),
                "{name}: long help lacks an Examples: section with one example per line"
            );
            for nested in sub
                .get_subcommands()
                .filter(|nested| nested.get_name() != "help")
            {
                let nested_name = nested.get_name();
                assert!(
                    nested.get_about().is_some(),
                    "{name} {nested_name} has no summary"
                );
                let long = nested.get_long_about().map(ToString::to_string);
                assert!(
                    long.is_some_and(|long| long.contains("Examples:\n  git ")),
                    "{name} {nested_name}: long help lacks examples"
                );
            }
        }
    }

    #[test]
    fn clap_colours_follow_the_color_flag() {
        let args =
            |words: &[&str]| -> Vec<std::ffi::OsString> { words.iter().map(Into::into).collect() };
        assert_eq!(
            clap_color(&args(&["git-spectra", "--color", "never", "log"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            clap_color(&args(&["git-spectra", "log", "--color=always"])),
            clap::ColorChoice::Always
        );
        assert_eq!(
            clap_color(&args(&["git-spectra", "append", "--", "--color=always"])),
            clap::ColorChoice::Auto
        );
    }

    #[test]
    fn the_command_definition_is_consistent() {
        command_for(&crate::registry::Registry::builtin().unwrap()).debug_assert();
    }
}
