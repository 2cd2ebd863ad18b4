//! The stats view: the JSON object of docs/stats.md, and the exact percentiles it reports.
//!
//! Every sample is kept until the view is computed, so [`Durations`] ranks all of them
//! (nearest-rank, no sampling or sketches).

use std::collections::BTreeMap;

use serde::Serialize;

/// The stats view: the JSON object documented in docs/stats.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// [`STATS_SCHEMA`](super::STATS_SCHEMA).
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
    /// Undo and redo events in the `--since` window.
    pub undo: UndoStats,
}

/// What one activity's finished runs came to (`activity.finished` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityStats {
    /// The activity (`-` when the event named none).
    pub activity: String,
    /// `activity.finished` events.
    pub runs: u64,
    /// Those whose outcome is `succeeded`.
    pub succeeded: u64,
    /// Every finished activity whose outcome is not `succeeded`.
    pub failed: u64,
    /// `succeeded / runs`; null when there are no runs.
    pub success_rate: Option<f64>,
    /// Outcome -> count (`succeeded`, `failed`, `blocked`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Reason -> count, over the `errors` of activities that did not succeed.
    pub failures_by_reason: BTreeMap<String, u64>,
    /// Of the events' `duration_ms`.
    pub duration_ms: Durations,
}

/// What the HTTP attempts to one endpoint and model came to (`llm.called` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmStats {
    /// The endpoint, as recorded.
    pub url: String,
    /// The model asked for.
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
    /// Of the attempts' `latency_ms`.
    pub latency_ms: Durations,
    /// The sum of `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// The sum of `usage.completion_tokens`, or of `tokens_received` for a streamed attempt
    /// that reported no usage.
    pub completion_tokens: u64,
}

/// The failed attempts of one endpoint and model that ended with one HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusErrors {
    /// The HTTP status; `None` when no response arrived (connection error or timeout).
    pub status: Option<u64>,
    /// Failed attempts with this status.
    pub count: u64,
    /// `count / calls` of the endpoint and model.
    pub rate: f64,
}

/// What one playbook's runs came to (`playbook.finished` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookStats {
    /// The playbook id.
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
    /// Of the events' `duration_ms`, dry runs excluded.
    pub duration_ms: Durations,
}

/// What whole runs came to (`run.finished` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStats {
    /// `run.finished` events.
    pub runs: u64,
    /// Those whose outcome is `succeeded`.
    pub succeeded: u64,
    /// The others.
    pub failed: u64,
    /// `succeeded / runs`; null when there are no runs.
    pub success_rate: Option<f64>,
    /// Of the events' `duration_ms`.
    pub duration_ms: Durations,
}

/// How often the log was undone and redone.
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
    /// How many samples.
    pub count: u64,
    /// Arithmetic mean; null when there are no samples.
    pub mean: Option<f64>,
    /// The nearest-rank median; null when there are no samples.
    pub p50: Option<u64>,
    /// The nearest-rank 95th percentile; null when there are no samples.
    pub p95: Option<u64>,
    /// The nearest-rank 99th percentile; null when there are no samples.
    pub p99: Option<u64>,
    /// The largest sample; null when there are none.
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
