//! Argument parsing and rendering. One file per subcommand; no git or HTTP here.

mod append;
mod builtin;
mod completions;
mod discover;
mod doctor;
pub mod error;
mod helper;
mod hook;
mod hooks;
mod lifecycle;
mod log;
mod logging;
mod man;
mod registry;
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
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    Append(append::AppendArgs),
    Discover(discover::DiscoverArgs),
    Doctor(doctor::DoctorArgs),
    Log(log::LogArgs),
    Show(show::ShowArgs),
    Stats(stats::StatsArgs),
    Verify(verify::VerifyArgs),
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
    Run(run::RunArgs),
    /// Engage stakeholders: who the service is for, who decides, how to work together.
    ///
    /// Runs the engage activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra engage "a logging service for the platform team"
    ///   git spectra engage "who needs central logs" --service logging --format json
    #[command(verbatim_doc_comment)]
    Engage(lifecycle::ActivityArgs),
    /// Plan the work: MoSCoW priorities, requirements, milestones, a backlog.
    ///
    /// Runs the plan activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra plan "plan the first release" --service logging
    ///   git spectra plan "plan the rollout" --dry-run
    #[command(verbatim_doc_comment)]
    Plan(lifecycle::ActivityArgs),
    /// Assess maturity, stage readiness and the gaps to close.
    ///
    /// Runs the assess activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra assess "are we ready to build?" --service logging
    ///   git spectra assess "assess readiness" --format json
    #[command(verbatim_doc_comment)]
    Assess(lifecycle::ActivityArgs),
    /// Design the architecture, components and interfaces.
    ///
    /// Runs the design activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra design "design the log pipeline" --service logging
    ///   git spectra design "design the ingestion API" --dry-run
    #[command(verbatim_doc_comment)]
    Design(lifecycle::ActivityArgs),
    /// Plan environments and infrastructure (playbooks dry-run unless --execute).
    ///
    /// Runs the provision activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra provision "staging and production environments" --service logging
    ///   git spectra provision "create the staging stack" --execute
    #[command(verbatim_doc_comment)]
    Provision(lifecycle::ActivityArgs),
    /// Build the service: the implementation plan and its steps.
    ///
    /// Runs the build activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra build "implement the ingestion endpoint" --service logging
    ///   git spectra build "build the collector" --dry-run
    #[command(verbatim_doc_comment)]
    Build(lifecycle::ActivityArgs),
    /// Decide the test strategy and run the real tests; their counts are the result.
    ///
    /// Runs the test activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra test "run the test suite" --service logging
    ///   git spectra test "check the collector" --offline
    #[command(verbatim_doc_comment)]
    Test(lifecycle::ActivityArgs),
    /// Plan and record a deployment (playbooks dry-run unless --execute).
    ///
    /// Runs the deploy activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra deploy "deploy to staging" --service logging
    ///   git spectra deploy "deploy to production" --execute --format json
    #[command(verbatim_doc_comment)]
    Deploy(lifecycle::ActivityArgs),
    /// Define metrics, alerts, dashboards and SLOs (playbooks dry-run unless --execute).
    ///
    /// Runs the monitor activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra monitor "alerts and SLOs for ingestion" --service logging
    ///   git spectra monitor "dashboards for the collector" --execute
    #[command(verbatim_doc_comment)]
    Monitor(lifecycle::ActivityArgs),
    /// Find and rank optimisations with their expected gain.
    ///
    /// Runs the optimise activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra optimise "where is ingestion slow?" --service logging
    ///   git spectra optimise "cut storage costs" --format json
    #[command(verbatim_doc_comment)]
    Optimise(lifecycle::ActivityArgs),
    /// Finalise: handover, documentation, what is left.
    ///
    /// Runs the finalise activity as one run; its context holds the latest manifests of the
    /// activities before it for the same service (--service, else the latest discover's).
    ///
    /// Examples:
    ///   git spectra finalise "hand over to the platform team" --service logging
    ///   git spectra finalise "what is left before 1.0" --dry-run
    #[command(verbatim_doc_comment)]
    Finalise(lifecycle::ActivityArgs),
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
                | Command::Undo(_)
                | Command::Redo(_)
                | Command::Engage(_)
                | Command::Plan(_)
                | Command::Assess(_)
                | Command::Design(_)
                | Command::Provision(_)
                | Command::Build(_)
                | Command::Test(_)
                | Command::Deploy(_)
                | Command::Monitor(_)
                | Command::Optimise(_)
                | Command::Finalise(_)
        )
    }
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> u8 {
    if let Some(hook) = called_by_the_post_commit_shim() {
        return run_post_commit_hook(hook);
    }
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(err) => return render_clap_error(err),
    };
    ui::set_color_choice(cli.color);
    let options = LogOptions {
        verbosity: cli.verbose,
        format: cli.log_format,
    };
    if let Err(err) = logging::init(options) {
        return render_error(&err.into());
    }
    if cli.command.records_a_run() {
        crate::interrupt::install();
    }
    let result = match cli.command {
        Command::Append(args) => append::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Log(args) => log::run(args),
        Command::Show(args) => show::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Verify(args) => verify::run(args),
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
        Command::Run(args) => run::run(args),
        Command::Engage(args) => lifecycle::run_activity("engage", args),
        Command::Plan(args) => lifecycle::run_activity("plan", args),
        Command::Assess(args) => lifecycle::run_activity("assess", args),
        Command::Design(args) => lifecycle::run_activity("design", args),
        Command::Provision(args) => lifecycle::run_activity("provision", args),
        Command::Build(args) => lifecycle::run_activity("build", args),
        Command::Test(args) => lifecycle::run_activity("test", args),
        Command::Deploy(args) => lifecycle::run_activity("deploy", args),
        Command::Monitor(args) => lifecycle::run_activity("monitor", args),
        Command::Optimise(args) => lifecycle::run_activity("optimise", args),
        Command::Finalise(args) => lifecycle::run_activity("finalise", args),
        Command::Builtin(args) => builtin::run(args),
    };
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

/// Parses the process arguments with clap's own colours (help, usage errors) following
/// `--color` too; clap needs that before it parses, so the flag is looked for first.
fn parse_args() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = Cli::command()
        .color(clap_color(&args))
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
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

/// Help and version go to stdout with 0; usage errors to stderr with 2, as clap does.
fn render_clap_error(err: clap::Error) -> u8 {
    let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
    // A closed pipe while printing help is not worth reporting.
    let _ = err.print();
    code
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
        use clap::CommandFactory;
        let cli = Cli::command();
        for sub in cli.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            let about = sub.get_about().map(|about| about.to_string());
            let about = about.unwrap_or_else(|| panic!("{name} has no summary"));
            assert!(!about.contains('\n'), "{name}: summary is not one line");
            assert!(
                about.starts_with(|c: char| c.is_ascii_uppercase()),
                "{name}: summary `{about}` does not start with a verb"
            );
            let long = sub.get_long_about().map(|long| long.to_string());
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
                let long = nested.get_long_about().map(|long| long.to_string());
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
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
