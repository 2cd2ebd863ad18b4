//! What a run reports: how each activity ended, its gates, errors and playbooks, and how the
//! run as a whole ended.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::planner;

/// How an activity ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Stopped by a rule (a healthy duplicate service); nothing was changed.
    Blocked,
}

/// One error of an activity: a stable reason word and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityError {
    pub reason: String,
    pub message: String,
}

impl ActivityError {
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
    pub outcome: String,
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

/// The word events and summaries use for `outcome`.
pub(crate) fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Blocked => "blocked",
    }
}
