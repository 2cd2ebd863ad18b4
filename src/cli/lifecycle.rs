//! What every lifecycle command shares: `git spectra run`, `git spectra discover` and one
//! command per activity (`git spectra plan "<input>"`, ...). One set of arguments, one way to
//! start the engine, one summary renderer and one set of failure hints.

use std::cell::RefCell;

use clap::Args;

use super::error::{EXIT_FAILED, Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output, Spinner};
use crate::activity::{
    ActivityReport, Decider, Engine, Outcome, Progress, RunOptions, RunReport, existing,
};
use crate::registry::{GateLevel, GateResult, Registry, Verdict};
use crate::service_name;
use crate::tip_cache;
use summary::{NextSteps, is_first_run, render_next_steps, render_summary};

mod summary;

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
    /// For an activity that chooses the service (as discover does): update a service that
    /// already has a specification instead of refusing.
    #[arg(long)]
    pub update: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Which activities a run runs.
#[derive(Clone)]
pub enum Selection {
    /// These, in this order.
    Given(Vec<String>),
    /// The planner decides.
    Planned,
}

/// Everything a lifecycle command asks for.
#[derive(Clone)]
pub struct Request<'a> {
    pub command: &'a str,
    pub input: &'a str,
    pub selection: Selection,
    pub service: Option<&'a str>,
    pub dry_run: bool,
    pub no_commit: bool,
    pub execute: bool,
    pub offline: bool,
    /// Discover may replace an existing specification.
    pub update: bool,
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
            update: self.update,
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
    execute_reusing(request, std::collections::BTreeMap::new(), None)
}

/// [`execute`], taking the decisions of `reuse` from an earlier run (`rerun_of`, recorded in
/// `run.started`) instead of asking for them.
pub fn execute_reusing(
    request: Request<'_>,
    reuse: std::collections::BTreeMap<String, crate::activity::Reused>,
    rerun_of: Option<String>,
) -> Result<u8> {
    let service = request.service.map(accept_service).transpose()?;
    let helper = CommandHelper::open(Access::Writes)?;
    let repo = helper.repo();
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
    let registry = Registry::load_cached(&root, Some(&tip_cache::dir(repo)))?;
    if let Selection::Given(activities) = &request.selection {
        check_known(&registry, activities)?;
    }
    let store = helper.store();
    let decider = Decider::choose(repo, request.offline)?;
    // Said only once the run is known to go ahead: a refusal needs no such note.
    let offline_note = decider
        .offline_reason()
        .filter(|_| !request.offline)
        .map(|reason| {
            format!(
                "running {} offline ({reason}); set SPECTRA_LLM_URL or `git config spectra.llm.url` to use a model (git spectra doctor checks it)",
                request.command
            )
        });
    let decided_by_rules = decider.offline_reason().is_some();
    let progress = SpinnerProgress {
        quiet: request.format == Format::Json,
        ..SpinnerProgress::default()
    };
    let options = RunOptions {
        service,
        dry_run: request.dry_run,
        no_commit: request.no_commit,
        execute: request.execute,
        update: request.update,
        reuse,
        rerun_of,
        recorded_playbooks: None,
    };
    let engine = Engine::new(repo, store, &registry, decider, options, &progress)?;
    let show_offline_note = || {
        if let Some(note) = &offline_note {
            crate::cli::ui::hint(note);
        }
    };
    let report = match &request.selection {
        Selection::Given(activities) => {
            engine.check_decidable(activities, &[])?;
            show_offline_note();
            engine.run(request.command, activities, request.input)?
        }
        Selection::Planned => {
            let plan = engine.plan(request.input);
            engine.check_decidable(&plan.activities, &plan.left_out_names())?;
            show_offline_note();
            engine.run_plan(request.command, plan, request.input)?
        }
    };
    // What a person types to name the run: its short form, found near the tip.
    let run_name = store
        .short_near_tip(&report.run)
        .unwrap_or_else(|| report.run.clone());
    let mut out = Output::new();
    match request.format {
        Format::Json => out.json_line(&report)?,
        Format::Human => {
            render_summary(&mut out, &report, &run_name)?;
            if report.succeeded() && is_first_run(store, &report.run) {
                let steps = NextSteps {
                    set_identity: repo.identity_without_command_line().err(),
                    configure_model: decided_by_rules,
                    undo: !report.dry_run,
                };
                render_next_steps(&mut out, &steps)?;
            }
        }
    }
    out.flush()?;
    if report.succeeded() {
        Ok(0)
    } else {
        render_failure(&report, &request, &run_name);
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

/// Spins on stderr while the model thinks (only on a terminal, never with `--format json`).
#[derive(Default)]
struct SpinnerProgress {
    spinner: RefCell<Option<Spinner>>,
    quiet: bool,
}

impl Progress for SpinnerProgress {
    fn thinking(&self, activity: &str) {
        if self.quiet {
            return;
        }
        *self.spinner.borrow_mut() = Spinner::start(&format!("{activity}: asking the model…"));
    }

    fn writing(&self, activity: &str, tokens: u64, elapsed: std::time::Duration) {
        if let Some(spinner) = self.spinner.borrow().as_ref() {
            spinner.set_message(&writing_line(activity, tokens, elapsed));
        }
    }

    fn done_thinking(&self) {
        self.spinner.borrow_mut().take();
    }
}

/// `discover: model is writing… 412 tokens, 38 s, 10.8 tok/s`.
fn writing_line(activity: &str, tokens: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        tokens as f64 / secs
    } else {
        0.0
    };
    format!(
        "{activity}: model is writing… {tokens} tokens, {:.0} s, {rate:.1} tok/s",
        secs.floor()
    )
}

fn render_failure(report: &RunReport, request: &Request<'_>, run_name: &str) {
    let retry = retry_command(request);
    // The same reason in several activities (offline, say) needs its hint once.
    let mut hinted = std::collections::BTreeSet::new();
    for activity in &report.activities {
        render_incomplete(activity);
        for error in &activity.errors {
            crate::cli::ui::error(format_args!(
                "{} {}: {}",
                activity.activity,
                activity.outcome.word(),
                error.message
            ));
            if !hinted.insert(error.reason.as_str()) {
                continue;
            }
            if error.reason == existing::SERVICE_EXISTS {
                let update = retry_command(&Request {
                    update: true,
                    ..request.clone()
                });
                crate::cli::ui::hint(format_args!(
                    "to update {}'s specification (keeping its stages), run `{update}`",
                    activity.service.as_deref().unwrap_or("the service")
                ));
            } else if let Some(hint) = hint_for(&error.reason) {
                crate::cli::ui::hint(hint);
            }
        }
    }
    crate::cli::ui::hint(format_args!(
        "the run is recorded as {run_name}; see it with `git spectra log --run {run_name}`; retry with `{retry}`"
    ));
}

/// Why an activity is incomplete: each required gate that failed and what the decision lacked.
fn render_incomplete(activity: &ActivityReport) {
    if activity.outcome != Outcome::Incomplete {
        return;
    }
    let failed: Vec<&GateResult> = activity
        .gates
        .iter()
        .filter(|gate| gate.verdict == Verdict::Failed && gate.level == GateLevel::Required)
        .collect();
    let names: Vec<&str> = failed.iter().map(|gate| gate.name.as_str()).collect();
    crate::cli::ui::error(format_args!(
        "{} incomplete: required gate{} failed: {}",
        activity.activity,
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ));
    let lacks: Vec<String> = failed
        .iter()
        .map(|gate| format!("{}: {}", gate.name, gate.failures.join("; ")))
        .collect();
    crate::cli::ui::hint(format_args!(
        "the decision lacks what the gates ask for ({}); run the activity again with a more specific input, or see `git spectra registry show {}` for its gates",
        lacks.join(" | "),
        activity.activity
    ));
}

/// The command line that asks for `request` again: the same input and every flag that changes
/// what runs (`-a`, `--service`, `--dry-run`, `--no-commit`, `--execute`, `--offline`,
/// `--update`) or how
/// it prints (`--format`), quoted for a POSIX shell.
fn retry_command(request: &Request<'_>) -> String {
    let mut argv = vec![
        "git".to_string(),
        "spectra".to_string(),
        request.command.to_string(),
    ];
    // An input that looks like an option goes last, after `--`, as it must have been given.
    let input_is_last = request.input.starts_with('-');
    if !input_is_last {
        argv.push(request.input.to_string());
    }
    // `git spectra plan` names its one activity already; only `run` takes `-a`.
    if let Selection::Given(activities) = &request.selection
        && request.command == "run"
    {
        for activity in activities {
            argv.extend(["-a".to_string(), activity.clone()]);
        }
    }
    if let Some(service) = request.service {
        argv.extend(["--service".to_string(), service.to_string()]);
    }
    for (given, flag) in [
        (request.dry_run, "--dry-run"),
        (request.no_commit, "--no-commit"),
        (request.execute, "--execute"),
        (request.offline, "--offline"),
        (request.update, "--update"),
    ] {
        if given {
            argv.push(flag.to_string());
        }
    }
    if request.format == Format::Json {
        argv.extend(["--format".to_string(), "json".to_string()]);
    }
    if input_is_last {
        argv.extend(["--".to_string(), request.input.to_string()]);
    }
    crate::playbook::quoted_argv(&argv)
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
        "specification_dirty" | "file_dirty" => {
            "commit or stash your changes to that file first, then run the same command again"
        }
        "commit_failed" => {
            "git refused the commit (its reason is above) and the files were put back; fix the cause and run the same command again"
        }
        "document_unrenderable" => {
            "the activity's document template failed; check it with `git spectra registry validate`"
        }
        "offline_unsupported" => {
            "configure a model (`git spectra doctor`); offline, only discover and test have rules"
        }
        "no_tests_ran" => "check the test command: `git config spectra.test.command \"<command>\"`",
        "tests_failed" => "the observed counts are in `git spectra manifest test`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(command: &'a str, input: &'a str, selection: Selection) -> Request<'a> {
        Request {
            command,
            input,
            selection,
            service: None,
            dry_run: false,
            no_commit: false,
            execute: false,
            offline: false,
            update: false,
            format: Format::Human,
        }
    }

    #[test]
    fn the_retry_command_repeats_every_flag_given() {
        let mut discover = request(
            "discover",
            "A payments' ledger",
            Selection::Given(vec!["discover".into()]),
        );
        discover.service = Some("ledger");
        discover.no_commit = true;
        discover.offline = true;
        discover.format = Format::Json;
        assert_eq!(
            retry_command(&discover),
            r"git spectra discover 'A payments'\'' ledger' --service ledger --no-commit --offline --format json"
        );

        let mut run = request(
            "run",
            "ship it",
            Selection::Given(vec!["deploy".into(), "monitor".into()]),
        );
        run.dry_run = true;
        run.execute = true;
        assert_eq!(
            retry_command(&run),
            "git spectra run 'ship it' -a deploy -a monitor --dry-run --execute"
        );
        assert_eq!(
            retry_command(&request("run", "ship it", Selection::Planned)),
            "git spectra run 'ship it'"
        );
        // An activity command names its activity already.
        assert_eq!(
            retry_command(&request(
                "plan",
                "roadmap",
                Selection::Given(vec!["plan".into()])
            )),
            "git spectra plan roadmap"
        );
    }

    #[test]
    fn an_input_that_looks_like_an_option_is_retried_after_a_double_dash() {
        let mut plan = request("plan", "-v", Selection::Given(vec!["plan".into()]));
        plan.service = Some("billing");
        assert_eq!(
            retry_command(&plan),
            "git spectra plan --service billing -- -v"
        );
    }
}
