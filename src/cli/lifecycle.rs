//! What every lifecycle command shares: `git spectra run`, `git spectra discover` and one
//! command per activity (`git spectra plan "<input>"`, ...). One set of arguments, one way to
//! start the engine, one summary renderer and one set of failure hints.

use std::cell::RefCell;

use clap::Args;

use crate::activity::service_name;
use crate::activity::{
    ActivityReport, Decider, Engine, Outcome, Progress, RunOptions, RunReport, effects,
};
use crate::error::{EXIT_FAILED, Error, Result};
use crate::registry::Registry;
use crate::repo::Repo;
use crate::tip_cache;
use crate::ui::{Format, Output, Spinner};

/// Run one activity through the agent loop.
///
/// The activity's context holds the latest manifests of the activities before it for the
/// same service; the service is --service, else the one the latest discover chose.
#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// What you want, in your own words.
    pub input: String,
    /// The service to work on (default: the one the latest discover chose).
    #[arg(long)]
    pub service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    #[arg(long)]
    pub dry_run: bool,
    /// Really run the playbooks of provision, deploy and monitor (otherwise they run in dry-run).
    #[arg(long)]
    pub execute: bool,
    /// Decide with rules instead of a model (only discover and test have rules).
    #[arg(long)]
    pub offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Which activities a run runs.
pub enum Selection {
    /// These, in this order.
    Given(Vec<String>),
    /// The planner decides.
    Planned,
}

/// Everything a lifecycle command asks for.
pub struct Request<'a> {
    pub command: &'a str,
    pub input: &'a str,
    pub selection: Selection,
    pub service: Option<&'a str>,
    pub dry_run: bool,
    pub no_commit: bool,
    pub execute: bool,
    pub offline: bool,
    pub format: Format,
}

impl ActivityArgs {
    /// The request of `git spectra <activity> ...`.
    pub fn request<'a>(&'a self, activity: &'a str) -> Request<'a> {
        Request {
            command: activity,
            input: &self.input,
            selection: Selection::Given(vec![activity.to_string()]),
            service: self.service.as_deref(),
            dry_run: self.dry_run,
            no_commit: false,
            execute: self.execute,
            offline: self.offline,
            format: self.format,
        }
    }
}

/// `git spectra <activity> "<input>"`.
pub fn run_activity(activity: &str, args: ActivityArgs) -> Result<u8> {
    execute(args.request(activity))
}

/// Runs a request and prints its report; exits 1 when any activity did not succeed.
pub fn execute(request: Request<'_>) -> Result<u8> {
    let service = request.service.map(accept_service).transpose()?;
    let repo = Repo::discover()?;
    let root = repo
        .work_tree()
        .ok_or_else(|| {
            Error::usage(
                format!(
                    "{} needs a work tree; this is a bare repository",
                    request.command
                ),
                None,
            )
        })?
        .to_path_buf();
    let registry = Registry::load_cached(&root, Some(&tip_cache::dir(&repo)))?;
    if let Selection::Given(activities) = &request.selection {
        check_known(&registry, activities)?;
    }
    let store = super::open_store(&repo);
    let decider = Decider::choose(&repo, request.offline)?;
    if let Some(reason) = decider.offline_reason()
        && !request.offline
    {
        crate::ui::hint(format_args!(
            "running {} offline ({reason}); set SPECTRA_LLM_URL or `git config spectra.llm.url` to use a model (git spectra doctor checks it)",
            request.command
        ));
    }
    let progress = SpinnerProgress::default();
    let options = RunOptions {
        service,
        dry_run: request.dry_run,
        no_commit: request.no_commit,
        execute: request.execute,
    };
    let engine = Engine::new(&repo, &store, &registry, decider, options, &progress)?;
    let report = match &request.selection {
        Selection::Given(activities) => engine.run(request.command, activities, request.input)?,
        Selection::Planned => {
            let plan = engine.plan(request.input);
            engine.run_plan(request.command, plan, request.input)?
        }
    };
    let mut out = Output::new();
    match request.format {
        Format::Json => out.json_line(&report)?,
        Format::Human => render_summary(&mut out, &report)?,
    }
    out.flush()?;
    if report.succeeded() {
        Ok(0)
    } else {
        render_failure(&report, request.command, request.input);
        Ok(EXIT_FAILED)
    }
}

/// `--service` is checked like a model's name, before anything runs (exit 2 when it is wrong).
fn accept_service(raw: &str) -> Result<String> {
    service_name::accept(raw).map_err(|problem| {
        Error::usage(
            format!("--service {raw}: {problem}"),
            Some(format!("the rule: {}", service_name::RULE)),
        )
    })
}

fn check_known(registry: &Registry, activities: &[String]) -> Result<()> {
    for name in activities {
        if registry.activity(name).is_none() {
            let known: Vec<&str> = registry
                .activities()
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            return Err(Error::usage(
                format!("activity `{name}` is not in the registry"),
                Some(format!("the activities are: {}", known.join(", "))),
            ));
        }
    }
    Ok(())
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
    if let Some(plan) = &report.plan {
        out.line(format_args!(
            "plan: {} (by the {}{})",
            plan.activities.join(", "),
            plan.decided_by,
            plan.fallback
                .as_ref()
                .and_then(|f| f["message"].as_str())
                .map(|m| format!(", because {m}"))
                .unwrap_or_default()
        ))?;
        if !plan.dropped.is_empty() {
            out.line(format_args!(
                "  dropped:   {} (not in the registry)",
                plan.dropped.join(", ")
            ))?;
        }
    }
    let mode = if report.dry_run {
        format!("{}, dry run", report.mode)
    } else {
        report.mode.clone()
    };
    for activity in &report.activities {
        render_activity(out, activity, &mode)?;
    }
    if !report.skipped.is_empty() {
        out.line(format_args!(
            "skipped: {} (a blocking activity did not succeed)",
            report.skipped.join(", ")
        ))?;
    }
    out.line(format_args!("  run:       {}", report.run))?;
    if !report.dry_run && report.outcome == Outcome::Succeeded {
        out.line(format_args!("  undo:      git spectra undo {}", report.run))?;
    }
    Ok(())
}

fn render_activity(out: &mut Output, activity: &ActivityReport, mode: &str) -> std::io::Result<()> {
    let service = activity.service.as_deref().unwrap_or("(no service)");
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
    if let Some(summary) = activity.outputs["test_results"]["summary"].as_str()
        && activity.outputs["test_results"].get("observed").is_some()
    {
        out.line(format_args!("  tests:     {summary}"))?;
    }
    if effects::is_external(&activity.activity) {
        let executed = activity.outputs["effects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["executed"] == true)
            .count();
        let note = if executed == 0 {
            " (pass --execute to run them for real)"
        } else {
            ""
        };
        out.line(format_args!("  effects:   {executed} executed{note}"))?;
    }
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
    Ok(())
}

fn render_failure(report: &RunReport, command: &str, input: &str) {
    // The same reason in several activities (offline, say) needs its hint once.
    let mut hinted = std::collections::BTreeSet::new();
    for activity in &report.activities {
        for error in &activity.errors {
            crate::ui::error(format_args!(
                "{} {}: {}",
                activity.activity,
                outcome_word(activity.outcome),
                error.message
            ));
            if let Some(hint) = hint_for(&error.reason)
                && hinted.insert(error.reason.as_str())
            {
                crate::ui::hint(hint);
            }
        }
    }
    crate::ui::hint(format_args!(
        "the run is recorded as {}; see it with `git spectra log --run {}`; retry with `git spectra {command} {}`",
        report.run,
        report.run,
        shell_quote(input)
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
        "offline_unsupported" => {
            "configure a model (`git spectra doctor`); offline, only discover and test have rules"
        }
        "no_tests_ran" => "check the test command: `git config spectra.test.command \"<command>\"`",
        "tests_failed" => "the observed counts are in `git spectra manifest test`",
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
