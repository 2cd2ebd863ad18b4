//! The part of a report across runs (`--all`): the table of runs and the figures `stats`
//! computes, with their charts.

use std::collections::BTreeSet;

use super::model::{RunRowView, StatsView};
use super::timeline::{Chart, duration};
use crate::projection::Projection;
use crate::stats::Scope;
use crate::store::{Ids, StoredEvent};

/// One row per run in scope, the shown ones marked.
pub(super) fn run_table(
    projection: &Projection,
    ids: &Ids,
    in_scope: &[String],
    shown: &BTreeSet<&str>,
) -> Vec<RunRowView> {
    let in_scope: BTreeSet<&str> = in_scope.iter().map(String::as_str).collect();
    projection
        .runs()
        .into_iter()
        .filter(|row| in_scope.contains(row.run.as_str()))
        .map(|row| RunRowView {
            short: ids.short_run(&row.run),
            shown: shown.contains(row.run.as_str()),
            command: row.command.clone().unwrap_or_else(|| "?".to_string()),
            started_at: row.started_at.clone(),
            outcome: row.outcome.clone(),
            duration: duration(row.duration_ms),
            undone: row.undone,
            activities: row.activity_outcomes().join(" "),
            id: row.run,
        })
        .collect()
}

/// The figures `stats` computes over the runs since `since`, with their charts.
pub(super) fn stats_view(events: &[StoredEvent], since: Option<jiff::Timestamp>) -> StatsView {
    let stats = crate::stats::fold(events.iter().map(|stored| &stored.event)).stats(&Scope {
        since,
        activity: None,
    });
    let success_chart = Chart::new(
        "Success rate per activity",
        stats
            .activities
            .iter()
            .map(|activity| {
                let rate = activity.success_rate.unwrap_or(0.0);
                let text = activity
                    .success_rate
                    .map_or("—".to_string(), |rate| format!("{:.1}%", rate * 100.0));
                let runs = format!("{text} of {}", activity.runs);
                (activity.activity.clone(), vec![(rate, runs)])
            })
            .collect(),
    );
    let latency_chart = Chart::new(
        "LLM latency: p50, p95 and p99 in ms",
        stats
            .llm
            .iter()
            .map(|llm| {
                let latency = &llm.latency_ms;
                let values = [latency.p50, latency.p95, latency.p99]
                    .into_iter()
                    .zip(["p50", "p95", "p99"])
                    .map(|(value, name)| {
                        let ms = value.unwrap_or(0);
                        (ms as f64, format!("{name} {ms} ms"))
                    })
                    .collect();
                (llm.model.clone(), values)
            })
            .collect(),
    );
    StatsView {
        stats,
        success_chart,
        latency_chart,
    }
}
