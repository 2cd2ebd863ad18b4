//! What a run reports: how each activity ended, its gates, errors and playbooks, and how the
//! run as a whole ended.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::planner;

/// How an activity ended: succeeded, failed or blocked (the log's one outcome type).
pub use crate::event::Outcome;

/// One error of an activity: a stable reason word and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityError {
    pub reason: String,
    pub message: String,
}

/// The reason of an error of a playbook the activity chose that failed to run or failed.
pub const PLAYBOOK_FAILED: &str = "playbook_failed";
/// The reason of an error of a playbook the activity chose that was refused before it started.
pub const PLAYBOOK_REFUSED: &str = "playbook_refused";

impl ActivityError {
    /// Whether the error is one of a playbook the activity chose (the `playbooks_succeeded`
    /// fact is false when there is one).
    pub fn is_playbook_error(&self) -> bool {
        matches!(self.reason.as_str(), PLAYBOOK_FAILED | PLAYBOOK_REFUSED)
    }

    pub fn new(reason: &str, message: impl Into<String>) -> ActivityError {
        ActivityError {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// What a playbook did, in short.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybookSummary {
    pub playbook: String,
    pub outcome: Outcome,
    pub message: String,
}

/// The result of one activity.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityReport {
    pub activity: String,
    pub service: Option<String>,
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub outputs: Value,
    pub quality_gates: BTreeMap<String, bool>,
    pub gates_passed: usize,
    pub gates_total: usize,
    pub errors: Vec<ActivityError>,
    pub playbooks: Vec<PlaybookSummary>,
    /// The commit made on the user's branch, if any.
    pub commit: Option<String>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: String,
    pub command: String,
    pub mode: String,
    pub dry_run: bool,
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub activities: Vec<ActivityReport>,
    /// The planner's decision, when the planner chose the activities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<planner::Plan>,
    /// Activities not run because a blocking activity before them did not succeed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }
}

/// Succeeded when every activity did; blocked when one was blocked; else failed.
pub(crate) fn run_outcome(reports: &[ActivityReport]) -> Outcome {
    if reports.iter().all(|r| r.outcome == Outcome::Succeeded) {
        Outcome::Succeeded
    } else if reports.iter().any(|r| r.outcome == Outcome::Blocked) {
        Outcome::Blocked
    } else {
        Outcome::Failed
    }
}
