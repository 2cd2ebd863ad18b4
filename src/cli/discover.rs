//! `git spectra discover`: turn an idea into a validated service specification.

use std::cell::RefCell;

use clap::Args;

use crate::activity::service_name;
use crate::activity::{Decider, Engine, Outcome, Progress, RunOptions, RunReport};
use crate::error::{EXIT_FAILED, Error, Result};
use crate::registry::Registry;
use crate::repo::Repo;
use crate::store::Store;
use crate::ui::{Format, Output, Spinner};

/// Discover the problem behind an idea and write the service's specification.
///
/// Asks the model for a decision (problem, current and desired state, stakeholders,
/// constraints, requirements, risks, alternatives, a service name), checks the name and the
/// service catalog, runs the playbooks it chose, writes .spectra/<service>.specification.yaml
/// and commits it on the current branch. Every step is an event on refs/spectra/events.
/// Without a configured model (or with --offline) it runs on rules instead, and says so.
///
/// Examples:
///   git spectra discover "Our services log to files nobody reads"
///   git spectra discover "central logging" --service log-shipper --no-commit
///   git spectra discover "central logging" --dry-run --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DiscoverArgs {
    /// The idea, in your own words.
    idea: String,
    /// The service name to use instead of the model's (normalised and validated the same way).
    #[arg(long)]
    service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    #[arg(long)]
    dry_run: bool,
    /// Write the specification but do not commit it.
    #[arg(long)]
    no_commit: bool,
    /// Decide with rules instead of a model.
    #[arg(long)]
    offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: DiscoverArgs) -> Result<u8> {
    let service = args
        .service
        .as_deref()
        .map(|raw| {
            service_name::accept(raw).map_err(|problem| {
                Error::usage(
                    format!("--service {raw}: {problem}"),
                    Some(format!("the rule: {}", service_name::RULE)),
                )
            })
        })
        .transpose()?;
    let repo = Repo::discover()?;
    let root = repo
        .work_tree()
        .ok_or_else(|| {
            Error::usage(
                "discover needs a work tree; this is a bare repository",
                None,
            )
        })?
        .to_path_buf();
    let registry = Registry::load(&root)?;
    let store = Store::new(&repo);
    let decider = Decider::choose(&repo, args.offline)?;
    if let Some(reason) = decider.offline_reason()
        && !args.offline
    {
        crate::ui::hint(format_args!(
            "running discover offline ({reason}); set SPECTRA_LLM_URL or `git config spectra.llm.url` to use a model (git spectra doctor checks it)"
        ));
    }
    let progress = SpinnerProgress::default();
    let options = RunOptions {
        service,
        dry_run: args.dry_run,
        no_commit: args.no_commit,
    };
    let engine = Engine::new(&repo, &store, &registry, decider, options, &progress)?;
    let report = engine.run("discover", &["discover".to_string()], &args.idea)?;
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&report)?,
        Format::Human => render_summary(&mut out, &report)?,
    }
    out.flush()?;
    if report.succeeded() {
        Ok(0)
    } else {
        render_failure(&report, &args.idea);
        Ok(EXIT_FAILED)
    }
}

/// Spins on stderr while the model thinks (only on a terminal).
#[derive(Default)]
struct SpinnerProgress {
    spinner: RefCell<Option<Spinner>>,
}

impl Progress for SpinnerProgress {
    fn thinking(&self, activity: &str) {
        *self.spinner.borrow_mut() = Spinner::start(&format!("{activity}: asking the model…"));
    }

    fn done_thinking(&self) {
        self.spinner.borrow_mut().take();
    }
}

fn render_summary(out: &mut Output, report: &RunReport) -> std::io::Result<()> {
    for activity in &report.activities {
        let service = activity.service.as_deref().unwrap_or("(no service)");
        let mode = if report.dry_run {
            format!("{}, dry run", report.mode)
        } else {
            report.mode.clone()
        };
        out.line(format_args!(
            "{} {} for {service} ({mode})",
            activity.activity,
            outcome_word(activity.outcome)
        ))?;
        if let Some(statement) = activity.outputs["problem"]["statement"].as_str() {
            out.line(format_args!("  problem:   {statement}"))?;
        }
        let failed: Vec<&str> = activity
            .quality_gates
            .iter()
            .filter(|(_, passed)| !**passed)
            .map(|(name, _)| name.as_str())
            .collect();
        let failed = if failed.is_empty() {
            String::new()
        } else {
            format!(" (not passed: {})", failed.join(", "))
        };
        out.line(format_args!(
            "  gates:     {}/{} passed{failed}",
            activity.gates_passed, activity.gates_total
        ))?;
        let playbooks: Vec<String> = activity
            .playbooks
            .iter()
            .map(|p| format!("{} ({})", p.playbook, p.outcome))
            .collect();
        out.line(format_args!(
            "  playbooks: {}",
            if playbooks.is_empty() {
                "none".to_string()
            } else {
                playbooks.join(", ")
            }
        ))?;
        if let Some(spec) = activity.outputs.get("specification") {
            let path = spec["path"].as_str().unwrap_or_default();
            let state = match (spec["written"].as_bool(), spec["committed"].as_str()) {
                (Some(true), Some(commit)) => {
                    format!("committed as {}", &commit[..commit.len().min(10)])
                }
                (Some(true), None) => "written, not committed".to_string(),
                _ => "would be written (dry run)".to_string(),
            };
            out.line(format_args!("  spec:      {path}, {state}"))?;
        }
    }
    out.line(format_args!("  run:       {}", report.run))?;
    if !report.dry_run && report.outcome == Outcome::Succeeded {
        out.line(format_args!("  undo:      git spectra undo {}", report.run))?;
    }
    Ok(())
}

fn render_failure(report: &RunReport, idea: &str) {
    for activity in &report.activities {
        for error in &activity.errors {
            crate::ui::error(format_args!(
                "{} {}: {}",
                activity.activity,
                outcome_word(activity.outcome),
                error.message
            ));
            if let Some(hint) = hint_for(&error.reason) {
                crate::ui::hint(hint);
            }
        }
    }
    crate::ui::hint(format_args!(
        "the run is recorded as {}; see it with `git spectra log --run {}`; retry with `git spectra discover {}`",
        report.run,
        report.run,
        shell_quote(idea)
    ));
}

fn hint_for(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "llm_unreachable" => "check the endpoint with `git spectra doctor`, or run with --offline",
        "invalid_decision" => {
            "the model's answers did not match the schema; retry, or try another model (`git spectra doctor` shows what the endpoint supports)"
        }
        "prompt_too_large" => {
            "raise `git config spectra.llm.contextWindow` if the model allows more"
        }
        "invalid_service_name" => "pass a valid name with --service NAME",
        "duplicate_service" => {
            "choose another name with --service, or redeploy the existing service"
        }
        "specification_dirty" => "commit or stash your changes to the specification first",
        "commit_failed" => "the specification was written but not committed; check `git status`",
        _ => return None,
    })
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Blocked => "blocked",
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
