//! The stats view: the JSON object of docs/stats.md, and the exact percentiles it reports.
//!
//! Every sample is kept until the view is computed, so [`Durations`] ranks all of them
//! (nearest-rank, no sampling or sketches).

use std::collections::BTreeMap;

use serde::Serialize;

/// The stats view: the JSON object documented in docs/stats.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// [`STATS_SCHEMA`].
    pub schema: u32,
    /// Events in the log, whatever their kind and scope.
    pub events: u64,
    /// The `--since` instant, if any.
    pub since: Option<String>,
    /// The `--activity`, if any.
    pub activity: Option<String>,
    /// In-scope events left out because an undo reverted them.
    pub excluded_reverted: u64,
    /// Per activity, by name.
    pub activities: Vec<ActivityStats>,
    /// Per endpoint URL and model.
    pub llm: Vec<LlmStats>,
    /// Per playbook id.
    pub playbooks: Vec<PlaybookStats>,
    /// Whole runs (`run.finished`).
    pub runs: RunStats,
    pub undo: UndoStats,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityStats {
    pub activity: String,
    /// `activity.finished` events.
    pub runs: u64,
    pub succeeded: u64,
    /// Every finished activity whose outcome is not `succeeded`.
    pub failed: u64,
    /// `succeeded / runs`; null when there are no runs.
    pub success_rate: Option<f64>,
    /// Outcome -> count (`succeeded`, `failed`, `blocked`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Reason -> count, over the `errors` of activities that did not succeed.
    pub failures_by_reason: BTreeMap<String, u64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmStats {
    pub url: String,
    pub model: String,
    /// HTTP attempts (`llm.called` events).
    pub calls: u64,
    /// Attempts with `attempt > 1`.
    pub retries: u64,
    /// Attempts whose `error` is not null.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: Option<f64>,
    /// Failed attempts grouped by HTTP status; status null means no response (connection error
    /// or timeout). Sorted by status, null first.
    pub errors_by_status: Vec<StatusErrors>,
    pub latency_ms: Durations,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusErrors {
    pub status: Option<u64>,
    pub count: u64,
    /// `count / calls` of the endpoint and model.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookStats {
    pub playbook: String,
    /// `playbook.finished` events that really ran (outcome other than `dry_run`).
    pub runs: u64,
    /// `dry_run` outcomes: recorded, nothing ran.
    pub dry_runs: u64,
    /// Outcomes `failed`, `timed_out` and `killed`.
    pub failed: u64,
    /// `failed / runs`.
    pub failure_rate: Option<f64>,
    /// Outcome -> count, dry runs included.
    pub outcomes: BTreeMap<String, u64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStats {
    /// `run.finished` events.
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoStats {
    /// `events.reverted` events (reverted or not, in the `--since` window).
    pub undos: u64,
    /// `events.restored` events.
    pub redos: u64,
}

/// A distribution of milliseconds: exact nearest-rank percentiles over every sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Durations {
    pub count: u64,
    /// Arithmetic mean; null when there are no samples.
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Durations {
    /// The summary of `samples` (in any order).
    pub fn of(mut samples: Vec<u64>) -> Durations {
        samples.sort_unstable();
        let count = samples.len() as u64;
        let mean =
            (count > 0).then(|| samples.iter().map(|&v| v as f64).sum::<f64>() / count as f64);
        Durations {
            count,
            mean,
            p50: nearest_rank(&samples, 50),
            p95: nearest_rank(&samples, 95),
            p99: nearest_rank(&samples, 99),
            max: samples.last().copied(),
        }
    }
}

/// The `percent`-th percentile of `sorted` by the nearest-rank method: the smallest sample such
/// that at least `percent`% of the samples are less than or equal to it, i.e. the sample at
/// 1-based rank `ceil(percent / 100 * n)`. Always one of the samples, never an interpolation;
/// `None` when there are none.
pub fn nearest_rank(sorted: &[u64], percent: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // Integer ceiling, so 95% of 20 is exactly rank 19 with no floating-point doubt.
    let rank = (u64::from(percent) * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize])
}
