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
    /// A stable word naming the kind of error, for scripts.
    pub reason: String,
    /// What went wrong, for a person.
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

    /// An error with reason word `reason`.
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
    /// The playbook's id.
    pub playbook: String,
    /// How the playbook ended.
    pub outcome: Outcome,
    /// What the playbook said, or why it failed.
    pub message: String,
}

/// The result of one activity.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityReport {
    /// The activity's name in the registry.
    pub activity: String,
    /// The service it worked on, if any.
    pub service: Option<String>,
    /// How the activity ended.
    pub outcome: Outcome,
    /// Wall-clock time the activity took.
    pub duration_ms: u64,
    /// The outputs the activity produced (its manifest's content).
    pub outputs: Value,
    /// Each quality gate and whether it passed.
    pub quality_gates: BTreeMap<String, bool>,
    /// How many quality gates passed.
    pub gates_passed: usize,
    /// How many quality gates there are.
    pub gates_total: usize,
    /// Each gate's verdict (passed, failed, not judged), level, basis and failures.
    pub gates: Vec<crate::registry::GateResult>,
    /// What went wrong, empty when nothing did.
    pub errors: Vec<ActivityError>,
    /// The playbooks the activity ran, in order.
    pub playbooks: Vec<PlaybookSummary>,
    /// The commit made on the user's branch, if any.
    pub commit: Option<String>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's id.
    pub run: String,
    /// The command that started the run.
    pub command: String,
    /// Who decided: `llm` or `offline`.
    pub mode: String,
    /// Whether the run only said what it would do.
    pub dry_run: bool,
    /// How the run ended.
    pub outcome: Outcome,
    /// Wall-clock time the run took.
    pub duration_ms: u64,
    /// The activities run, in order.
    pub activities: Vec<ActivityReport>,
    /// The planner's decision, when the planner chose the activities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<planner::Plan>,
    /// Activities not run because a blocking activity before them did not succeed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl RunReport {
    /// Whether the whole run succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }
}

/// Succeeded when every activity did; blocked when one was blocked; incomplete when the
/// others that did not succeed are all incomplete; else failed.
pub(crate) fn run_outcome(reports: &[ActivityReport]) -> Outcome {
    let not_succeeded = || reports.iter().filter(|r| r.outcome != Outcome::Succeeded);
    if not_succeeded().next().is_none() {
        Outcome::Succeeded
    } else if reports.iter().any(|r| r.outcome == Outcome::Blocked) {
        Outcome::Blocked
    } else if not_succeeded().all(|r| r.outcome == Outcome::Incomplete) {
        Outcome::Incomplete
    } else {
        Outcome::Failed
    }
}
