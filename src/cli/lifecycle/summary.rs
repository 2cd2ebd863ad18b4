//! The human summary of a finished run: the plan, each activity with its gates and the files
//! it wrote, the changes it made, and after a first run what to do next.

use serde_json::Value;

use super::super::ui::Output;
use crate::activity::{ActivityReport, Outcome, RunReport, existing};
use crate::registry::{GateLevel, GateResult, Verdict};

pub(super) fn render_summary(
    out: &mut Output,
    report: &RunReport,
    run_name: &str,
) -> std::io::Result<()> {
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
        let (unconfigured, need_model): (Vec<_>, Vec<_>) = plan
            .left_out
            .iter()
            .partition(|left_out| left_out.key.is_some());
        if !need_model.is_empty() {
            let names: Vec<&str> = need_model.iter().map(|l| l.activity.as_str()).collect();
            out.line(format_args!(
                "  left out:  {} (needs a model; this run is offline)",
                names.join(", ")
            ))?;
        }
        for left_out in unconfigured {
            out.line(format_args!(
                "  left out:  {} (`{}` is not set)",
                left_out.activity,
                left_out.key.as_deref().unwrap_or_default()
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
    out.line(format_args!("  run:       {run_name}"))?;
    if !report.dry_run && report.outcome == Outcome::Succeeded {
        out.line(format_args!("  undo:      git spectra undo {run_name}"))?;
    }
    Ok(())
}

/// Whether `run` is the first run recorded in this repository: no other `run.started` in the
/// log. The walk stops at the newest other run, so only a log that never had one is read whole,
/// and then only its commit messages.
pub(super) fn is_first_run(store: &crate::store::Store, run: &str) -> bool {
    let filter = crate::store::Filter {
        kind: Some(crate::event::kind::RUN_STARTED.to_string()),
        ..crate::store::Filter::default()
    };
    // A log that cannot be read is no first run worth a welcome.
    !store
        .walk_newest_first(&filter)
        .any(|stored| stored.map_or(true, |stored| stored.event.run.as_deref() != Some(run)))
}

/// What the first run in a repository suggests doing next.
pub(super) struct NextSteps {
    /// No identity outside this command's `git -c` options: the next commands that write would
    /// be refused until one is set.
    pub(super) set_identity: Option<crate::repo::IdentityError>,
    /// Rules decided; a model would judge what they cannot.
    pub(super) configure_model: bool,
    /// The run changed something `git spectra undo` takes back.
    pub(super) undo: bool,
}

/// `next:` and one line per step, after the first run's report (human output only). A missing
/// identity comes last, so the demo pasted without one ends with exactly what to run.
pub(super) fn render_next_steps(out: &mut Output, steps: &NextSteps) -> std::io::Result<()> {
    out.line("next:")?;
    out.line("  see what was recorded:  git spectra log")?;
    if steps.configure_model {
        out.line(
            "  decide with a model:    git config spectra.llm.url <URL> && git config spectra.llm.model <MODEL>  (see docs/llm.md; `git spectra doctor` checks it)",
        )?;
    }
    if steps.undo {
        out.line("  take this run back:     git spectra undo")?;
    }
    if let Some(missing) = &steps.set_identity {
        let commands: Vec<&str> = missing
            .missing
            .iter()
            .map(|field| field.global_command())
            .collect();
        out.line(format_args!(
            "  set your git identity:  {}",
            commands.join(" && ")
        ))?;
        out.line(
            "                          (this run had it from `git -c` only, and every command that writes needs it; --local instead of --global sets it for this repository only)",
        )?;
    }
    Ok(())
}

/// A build's branch and diff stat; in a dry run, the full diff it would commit, or why its
/// changes would be refused.
fn render_changes(out: &mut Output, outputs: &Value) -> std::io::Result<()> {
    let (record, dry_run) = match (
        outputs.get("changes_applied"),
        outputs.get("changes_preview"),
    ) {
        (Some(applied), _) => (applied, false),
        (None, Some(preview)) => (preview, true),
        (None, None) => return Ok(()),
    };
    let branch = record["branch"].as_str().unwrap_or("?");
    if record["success"] != true {
        let verb = if dry_run {
            "would be refused"
        } else {
            "refused"
        };
        out.line(format_args!("  changes:   {verb}, nothing written"))?;
        for change in record["changes"].as_array().into_iter().flatten() {
            if let (Some(path), Some(reason)) = (change["path"].as_str(), change["reason"].as_str())
            {
                out.line(format_args!("    {path}: {reason}"))?;
            }
        }
        if let Some(error) = record["error"].as_str() {
            out.line(format_args!("    {error}"))?;
        }
        return Ok(());
    }
    let state = match record["commit"].as_str() {
        Some(commit) => format!("commit {}", &commit[..commit.len().min(10)]),
        None => "dry run: not created".to_string(),
    };
    out.line(format_args!("  branch:    {branch} ({state})"))?;
    for line in record["diff_stat"].as_str().unwrap_or_default().lines() {
        out.line(format_args!("    {line}"))?;
    }
    if let Some(diff) = record["diff"].as_str() {
        out.line("  diff:")?;
        for line in diff.lines() {
            out.line(format_args!("    {line}"))?;
        }
    }
    Ok(())
}

fn render_activity(out: &mut Output, activity: &ActivityReport, mode: &str) -> std::io::Result<()> {
    let service = activity.service.as_deref().unwrap_or("(no service)");
    out.line(format_args!(
        "{} {} for {service} ({mode})",
        activity.activity,
        activity.outcome.word()
    ))?;
    if let Some(statement) = activity.outputs["problem"]["statement"].as_str() {
        out.line(format_args!("  problem:   {statement}"))?;
    }
    out.line(format_args!("  gates:     {}", gates_line(&activity.gates)))?;
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
    render_changes(out, &activity.outputs)?;
    // Only activities with external effects record them.
    if let Some(effects) = activity.outputs.get("effects") {
        let executed = effects
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
    // Only an output that records a file (design's decision has a `specification` of its own).
    for (label, key) in [("spec:     ", "specification"), ("document: ", "document")] {
        if let Some(record) = activity
            .outputs
            .get(key)
            .filter(|r| r["written"].is_boolean())
        {
            render_written(out, label, record)?;
        }
    }
    if let Some(update) = activity.outputs.get(existing::UPDATE_OUTPUT) {
        let changed: Vec<&str> = update["changed"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.line(format_args!(
            "  changed:   {}",
            if changed.is_empty() {
                "nothing".to_string()
            } else {
                changed.join(", ")
            }
        ))?;
    }
    Ok(())
}

/// A file the activity wrote: `spec:      <path>, committed as <hash>`.
fn render_written(
    out: &mut Output,
    label: &str,
    record: &serde_json::Value,
) -> std::io::Result<()> {
    let path = record["path"].as_str().unwrap_or_default();
    let state = match (record["written"].as_bool(), record["committed"].as_str()) {
        (Some(true), Some(commit)) => {
            format!("committed as {}", &commit[..commit.len().min(10)])
        }
        (Some(true), None) => "written, not committed".to_string(),
        _ if record["dry_run"] == true => "would be written (dry run)".to_string(),
        _ => "not written".to_string(),
    };
    out.line(format_args!("  {label} {path}, {state}"))
}

/// The gates in one line: how many passed of those judged, which failed (advisory ones marked),
/// and how many no model judged (an offline decision):
/// `2 checked by rules and passed; 9 need a model to judge`.
pub(super) fn gates_line(gates: &[GateResult]) -> String {
    let of = |verdict: Verdict| gates.iter().filter(move |gate| gate.verdict == verdict);
    let failed: Vec<String> = of(Verdict::Failed)
        .map(|gate| match gate.level {
            GateLevel::Required => gate.name.clone(),
            GateLevel::Advisory => format!("{} (advisory)", gate.name),
        })
        .collect();
    let failed = if failed.is_empty() {
        String::new()
    } else {
        format!(" (failed: {})", failed.join(", "))
    };
    let judged = gates.len() - of(Verdict::NotJudged).count();
    let passed = of(Verdict::Passed).count();
    match of(Verdict::NotJudged).count() {
        0 => format!("{passed}/{judged} passed{failed}"),
        // No decision to judge (the model could not be reached, say).
        unjudged if judged == 0 => format!("none checked; {unjudged} need a model to judge"),
        unjudged if passed == judged => {
            format!("{passed} checked by rules and passed; {unjudged} need a model to judge")
        }
        unjudged => format!(
            "{passed}/{judged} checked by rules passed{failed}; {unjudged} need a model to judge"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(name: &str, verdict: Verdict, level: GateLevel) -> GateResult {
        GateResult {
            name: name.to_string(),
            passed: verdict == Verdict::Passed,
            verdict,
            level,
            basis: crate::registry::Basis::Fact,
            failures: Vec::new(),
        }
    }

    /// Offline, what rules checked and what needs a model read apart, and a failed gate is
    /// still said to have failed.
    #[test]
    fn the_gates_line_tells_checked_failed_and_unjudged_apart() {
        use GateLevel::{Advisory, Required};
        let unjudged = |n: usize| {
            (0..n)
                .map(|i| gate(&format!("g{i}"), Verdict::NotJudged, Required))
                .collect::<Vec<_>>()
        };
        let mut offline = vec![
            gate("name", Verdict::Passed, Required),
            gate("catalog", Verdict::Passed, Advisory),
        ];
        offline.extend(unjudged(9));
        assert_eq!(
            gates_line(&offline),
            "2 checked by rules and passed; 9 need a model to judge"
        );
        offline[1] = gate("catalog", Verdict::Failed, Advisory);
        assert_eq!(
            gates_line(&offline),
            "1/2 checked by rules passed (failed: catalog (advisory)); 9 need a model to judge"
        );
        let judged = vec![
            gate("a", Verdict::Passed, Required),
            gate("b", Verdict::Failed, Required),
        ];
        assert_eq!(gates_line(&judged), "1/2 passed (failed: b)");
        assert_eq!(
            gates_line(&unjudged(11)),
            "none checked; 11 need a model to judge"
        );
    }
}
