//! `git spectra stats`: success rates, latencies, tokens and durations, from the event log alone.

use clap::Args;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::stats::{Durations, Scope, Stats};

/// Show how activities, LLM endpoints and playbooks have behaved.
///
/// Computed only from the event log, so it works in any clone and after a fetch. Percentiles
/// are exact (nearest rank over every event). Events an undo reverted are left out, except from
/// the undo count. See docs/stats.md for every figure and the JSON shape.
///
/// Examples:
///   git spectra stats
///   git spectra stats --since '7 days ago' --activity discover
///   git spectra stats --format json | jq '.llm[] | {model, p95: .latency_ms.p95}'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatsArgs {
    /// Only events at or after this time (2026-11-25, an RFC 3339 instant, or `2 hours ago`).
    #[arg(long, value_parser = super::parse_since)]
    since: Option<jiff::Timestamp>,
    /// Only events recorded by this activity (its LLM calls and playbooks included).
    #[arg(long)]
    activity: Option<String>,
    /// Output format; `json` prints one object (documented in docs/stats.md).
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

pub fn run(args: StatsArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let folded =
        crate::fold_cache::stats::tally(helper.store(), &crate::tip_cache::dir(helper.repo()))?;
    let scope = Scope {
        since: args.since,
        activity: args.activity,
    };
    // The cache is written while the report is made and printed.
    std::thread::scope(|threads| {
        threads.spawn(|| folded.save());
        report(&folded.value.stats(&scope), args.format)
    })?;
    Ok(0)
}

fn report(stats: &Stats, format: Format) -> Result<()> {
    let mut out = Output::new();
    match format {
        Format::Json => out.json_line(stats)?,
        Format::Human => {
            for line in human_report(stats) {
                out.line(line)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The whole report as lines of text: a summary, then one table per section.
fn human_report(stats: &Stats) -> Vec<String> {
    let mut lines = vec![summary_line(stats)];
    section(&mut lines, "Activities", activity_table(stats));
    section(&mut lines, "LLM endpoints", llm_table(stats));
    section(&mut lines, "Playbooks", playbook_table(stats));
    section(&mut lines, "Runs", run_table(stats));
    lines
}

fn summary_line(stats: &Stats) -> String {
    let mut scope = String::new();
    if let Some(since) = &stats.since {
        scope.push_str(&format!(", since {since}"));
    }
    if let Some(activity) = &stats.activity {
        scope.push_str(&format!(", activity {activity}"));
    }
    format!(
        "{} events in the log{scope}; {} left out as reverted; {} undos, {} redos",
        stats.events, stats.excluded_reverted, stats.undo.undos, stats.undo.redos
    )
}

fn section(lines: &mut Vec<String>, title: &str, body: Vec<String>) {
    lines.push(String::new());
    lines.push(title.to_string());
    lines.extend(body);
}

fn activity_table(stats: &Stats) -> Vec<String> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for activity in &stats.activities {
        let mut row = vec![
            activity.activity.clone(),
            activity.runs.to_string(),
            activity.failed.to_string(),
            percent(activity.success_rate),
        ];
        row.extend(duration_cells(&activity.duration_ms));
        rows.push(row);
        if !activity.failures_by_reason.is_empty() {
            let reasons: Vec<String> = activity
                .failures_by_reason
                .iter()
                .map(|(reason, count)| format!("{reason} {count}"))
                .collect();
            notes.push(format!(
                "  {} failures: {}",
                activity.activity,
                reasons.join(", ")
            ));
        }
    }
    let mut lines = table(
        &with_durations(&["activity", "runs", "failed", "success"]),
        rows,
        1,
    );
    lines.extend(notes);
    lines
}

fn llm_table(stats: &Stats) -> Vec<String> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for llm in &stats.llm {
        let mut row = vec![
            llm.url.clone(),
            llm.model.clone(),
            llm.calls.to_string(),
            llm.retries.to_string(),
            llm.errors.to_string(),
            percent(llm.error_rate),
        ];
        row.extend(duration_cells(&llm.latency_ms));
        row.push(llm.prompt_tokens.to_string());
        row.push(llm.completion_tokens.to_string());
        rows.push(row);
        if !llm.errors_by_status.is_empty() {
            let by_status: Vec<String> = llm
                .errors_by_status
                .iter()
                .map(|errors| {
                    let status = errors
                        .status
                        .map_or("no response".to_string(), |status| status.to_string());
                    format!("{status} {} ({})", errors.count, percent(Some(errors.rate)))
                })
                .collect();
            notes.push(format!("  {} errors: {}", llm.model, by_status.join(", ")));
        }
    }
    let mut headers =
        with_durations(&["endpoint", "model", "calls", "retries", "errors", "error%"]);
    headers.extend(["prompt tok".to_string(), "completion tok".to_string()]);
    let mut lines = table(&headers, rows, 2);
    lines.extend(notes);
    lines
}

fn playbook_table(stats: &Stats) -> Vec<String> {
    let rows = stats
        .playbooks
        .iter()
        .map(|playbook| {
            let mut row = vec![
                playbook.playbook.clone(),
                playbook.runs.to_string(),
                playbook.failed.to_string(),
                percent(playbook.failure_rate),
                playbook.dry_runs.to_string(),
            ];
            row.extend(duration_cells(&playbook.duration_ms));
            row
        })
        .collect();
    table(
        &with_durations(&["playbook", "runs", "failed", "failure", "dry runs"]),
        rows,
        1,
    )
}

fn run_table(stats: &Stats) -> Vec<String> {
    let runs = &stats.runs;
    let mut row = vec![
        runs.runs.to_string(),
        runs.failed.to_string(),
        percent(runs.success_rate),
    ];
    row.extend(duration_cells(&runs.duration_ms));
    table(
        &with_durations(&["runs", "failed", "success"]),
        vec![row],
        0,
    )
}

/// `headers` followed by the duration columns every table shares.
fn with_durations(headers: &[&str]) -> Vec<String> {
    headers
        .iter()
        .chain(&["mean ms", "p50", "p95", "p99"])
        .map(ToString::to_string)
        .collect()
}

fn duration_cells(durations: &Durations) -> [String; 4] {
    let cell = |value: Option<u64>| value.map_or("-".to_string(), |v| v.to_string());
    [
        durations
            .mean
            .map_or("-".to_string(), |mean| format!("{mean:.1}")),
        cell(durations.p50),
        cell(durations.p95),
        cell(durations.p99),
    ]
}

/// `66.7%`, or `-` when there is nothing to divide by.
fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".to_string(), |rate| format!("{:.1}%", rate * 100.0))
}

/// Columns padded to their widest cell: the first `text_columns` left-aligned (names), the rest
/// right-aligned (numbers). A table without rows says so under its header.
fn table(headers: &[String], rows: Vec<Vec<String>>, text_columns: usize) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, &width))| {
                if column < text_columns {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let mut lines = vec![render(headers)];
    if rows.is_empty() {
        lines.push("  (none)".to_string());
    }
    lines.extend(rows.iter().map(|row| render(row)));
    lines
}
