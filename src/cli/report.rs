//! `git spectra report`: one self-contained HTML page of runs, for people who would rather look.

use std::path::PathBuf;

use clap::Args;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{self, Output};
use crate::report::{Selection, gather, render};

/// Write an HTML report of runs: timeline, decisions, gates, prompts, playbooks, commits, undos.
///
/// The page is one self-contained file: its style and script are inline and it loads nothing,
/// so it opens from file:// and works as a CI artefact. Without RUN, the newest run (every run
/// since DATE with --since). Without -o it is written to <git dir>/spectra/report.html and its
/// path printed. The event log is only read. See docs/report.md.
///
/// Examples:
///   git spectra report
///   git spectra report 3f2a1c9 -o review.html
///   git spectra report --all --since '7 days ago' --open
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// Runs to report on: a run's short form or id, or any event of it (as `git spectra log`
    /// prints them).
    #[arg(value_name = "RUN")]
    runs: Vec<String>,
    /// Every run, with a table of runs and the figures `git spectra stats` computes.
    #[arg(long)]
    all: bool,
    /// Only runs that started at or after this time (2026-11-25, an RFC 3339 instant, or
    /// `2 hours ago`).
    #[arg(long, value_name = "DATE", value_parser = super::parse_since)]
    since: Option<jiff::Timestamp>,
    /// Write the page here instead of <git dir>/spectra/report.html.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Open the page with the platform's opener (xdg-open, open) once written.
    #[arg(long)]
    open: bool,
}

pub fn run(args: ReportArgs) -> Result<u8> {
    if args.all && !args.runs.is_empty() {
        return Err(Error::usage(
            "--all reports every run; give either RUN... or --all",
            None,
        ));
    }
    let helper = CommandHelper::open(Access::Shows)?;
    let selection = Selection {
        runs: args.runs,
        all: args.all,
        since: args.since,
    };
    let report = gather(helper.repo(), helper.store(), &selection)?;
    let html = render(&report)?;
    let path = match args.output {
        Some(path) => path,
        None => {
            let dir = helper.repo().state_dir();
            std::fs::create_dir_all(&dir).map_err(|err| write_error(&dir, err))?;
            dir.join("report.html")
        }
    };
    std::fs::write(&path, html).map_err(|err| write_error(&path, err))?;
    let mut out = Output::new();
    out.line(path.display())?;
    out.flush()?;
    if args.open {
        open(&path);
    }
    Ok(0)
}

fn write_error(path: &std::path::Path, err: std::io::Error) -> Error {
    Error::failed_with_hint(
        format!("cannot write the report to {}: {err}", path.display()),
        "choose another file with -o FILE",
    )
}

/// Hands the page to the platform's opener; without one, says how to open it.
fn open(path: &std::path::Path) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        ui::warning(format_args!(
            "no `{opener}` to open the report with; open {} in a browser",
            path.display()
        ));
    }
}
