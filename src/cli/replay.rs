//! `git spectra replay`: run a past run again from its record, offline, and compare.

use clap::Args;

use super::error::{EXIT_FAILED, Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::registry::Registry;
use crate::replay::{ReplayError, ReplayReport, Verdict};
use crate::tip_cache;

/// Replay a past run from its record, offline, and compare it with what was recorded.
///
/// The run's activities run again with the current registry and code, in a scratch repository
/// at the commit the run started from: your HEAD, index, branches and log are never touched,
/// and nothing is appended to the log. Every model call is answered from the run's recorded
/// `llm.called` replies (no network, ever); a call the record does not hold stops the replay
/// and names the prompt that changed. Playbooks with effects (the repository's own commands,
/// changes, tags, probes) never run: their recorded results answer.
/// Exits 0 when the replay matches the record, 1 when it diverges, stops or cannot be
/// replayed. With --all, every completed run (since DATE) is replayed, one line each, for a
/// CI check that a change to .spectra/registry/ changes no past decision. See docs/replay.md.
///
/// Examples:
///   git spectra replay 3f9c2a1
///   git spectra replay 3f9c2a1 --activity design --format json
///   git spectra replay --all --since '30 days ago'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The run to replay (its id or a unique prefix, as `git spectra runs` shows it).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    run: Option<String>,
    /// Decide again and compare only this activity (repeatable); the run's other activities
    /// take their recorded decisions again, so the chosen ones see what the run gave them.
    #[arg(long, value_name = "ACTIVITY", conflicts_with = "all")]
    activity: Vec<String>,
    /// Replay every completed run, one line each.
    #[arg(long)]
    all: bool,
    /// With --all, only the runs started at or after DATE ('2 weeks ago', 2026-01-31).
    #[arg(long, value_parser = super::parse_since)]
    since: Option<jiff::Timestamp>,
    /// Append the replay to the log as a run of its own (command `replay`, `replay_of` naming
    /// the run), which `runs` lists and the views ignore.
    #[arg(long)]
    record: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: ReplayArgs) -> Result<u8> {
    if args.since.is_some() && !args.all {
        return Err(Error::usage(
            "--since is for --all",
            Some(
                "replay one run by its name, or every run since DATE with --all --since DATE"
                    .into(),
            ),
        ));
    }
    let access = if args.record {
        Access::Writes
    } else {
        Access::Shows
    };
    let helper = CommandHelper::open(access)?;
    let repo = helper.repo();
    let store = helper.store();
    let registry = match repo.work_tree() {
        Some(root) => Registry::load_cached(root, Some(&tip_cache::dir(repo)))?,
        None => Registry::builtin()?,
    };
    let mut out = Output::new();
    let same = match &args.run {
        Some(typed) => {
            let run = store.ids()?.resolve_run(typed)?;
            let report = crate::replay::replay(repo, store, &registry, &run, &args.activity)?;
            if args.record {
                crate::replay::record(store, &report)?;
            }
            let shown = store.short_near_tip(&run).unwrap_or_else(|| run.clone());
            match args.format {
                Format::Json => out.json_line(&report)?,
                Format::Human => render(&mut out, &report, &shown)?,
            }
            report.verdict.is_same()
        }
        None => replay_all(&mut out, &helper, &registry, &args)?,
    };
    out.flush()?;
    Ok(if same { 0 } else { EXIT_FAILED })
}

/// `--all`: one line per completed run; whether every one was the same.
fn replay_all(
    out: &mut Output,
    helper: &CommandHelper,
    registry: &Registry,
    args: &ReplayArgs,
) -> Result<bool> {
    let (repo, store) = (helper.repo(), helper.store());
    let runs = crate::replay::completed_runs(store, args.since)?;
    let ids = store.ids()?;
    let mut all_same = true;
    for run in runs {
        let shown = ids.short_run(&run);
        let replayed = match crate::replay::replay(repo, store, registry, &run, &[]) {
            Ok(report) => Ok(report),
            Err(error @ (ReplayError::Unreplayable(_) | ReplayError::Run(_))) => {
                Err(error.to_string())
            }
            Err(error) => return Err(error.into()),
        };
        match (&replayed, args.format) {
            (Ok(report), Format::Json) => out.json_line(report)?,
            (Ok(report), Format::Human) => out.line(format!(
                "{shown} {}: {}",
                report.command,
                verdict_line(&report.verdict)
            ))?,
            (Err(reason), Format::Json) => out.json_line(&serde_json::json!({
                "run": run, "result": "unreplayable", "reason": reason,
            }))?,
            (Err(reason), Format::Human) => out.line(format!(
                "{shown}: unreplayable: {}",
                reason.trim_start_matches("the run cannot be replayed: ")
            ))?,
        }
        match replayed {
            Ok(report) => {
                all_same &= report.verdict.is_same();
                if args.record {
                    crate::replay::record(store, &report)?;
                }
            }
            Err(_) => all_same = false,
        }
    }
    Ok(all_same)
}

/// One line for the verdict, then what changed.
fn render(out: &mut Output, report: &ReplayReport, shown: &str) -> std::io::Result<()> {
    out.line(format!(
        "replay of run {shown} ({}): {}",
        report.command,
        verdict_line(&report.verdict)
    ))?;
    out.line(format!(
        "  {} events recorded, {} replayed; {} model call(s) answered from the record; {} ms (the run took {})",
        report.recorded_events,
        report.replayed_events,
        report.calls_answered,
        report.replay_ms,
        report
            .recorded_ms
            .map_or("an unknown time".to_string(), |ms| format!("{ms} ms"))
    ))?;
    let summary = &report.summary;
    if !summary.decisions_identical.is_empty() {
        out.line(format!(
            "  decisions identical: {}",
            summary.decisions_identical.join(", ")
        ))?;
    }
    if !summary.decisions_changed.is_empty() {
        out.line(format!(
            "  decisions changed: {}",
            summary.decisions_changed.join(", ")
        ))?;
    }
    for gate in &summary.gates {
        out.line(format!(
            "  gate {} of {}: {} → {}",
            gate.gate,
            gate.activity,
            word(&gate.was),
            word(&gate.now)
        ))?;
    }
    for outcome in &summary.outcomes {
        out.line(format!(
            "  {}: {} → {}",
            word(&outcome["activity"]),
            word(&outcome["was"]),
            word(&outcome["now"])
        ))?;
    }
    if !report.files.is_empty() {
        out.line(format!(
            "  files that would differ: {}",
            report.files.join(", ")
        ))?;
        for line in report.diff.lines() {
            out.line(format!("    {line}"))?;
        }
    }
    Ok(())
}

/// The verdict in a few words: `same`, `diverged at …`, `stopped: …`.
pub(super) fn verdict_line(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Same => "same".to_string(),
        Verdict::Diverged { divergence } => format!(
            "diverged at event {} ({}{}): {}: was {}, now {}",
            divergence.position,
            divergence.kind,
            divergence
                .activity
                .as_deref()
                .map(|activity| format!(" of {activity}"))
                .unwrap_or_default(),
            divergence.field,
            divergence.old,
            divergence.new
        ),
        Verdict::Stopped { reason, .. } => format!("stopped: {reason}"),
    }
}

fn word(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}
