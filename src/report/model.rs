//! What the page shows, as plain data: every string here is text (the template escapes it),
//! every position a percentage computed in Rust, so the template only lays things out.

use serde::Serialize;

use super::fields::Field;
use crate::stats::Stats;

/// Everything one report page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The page's heading.
    pub title: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// `verify` at the time of the report.
    pub integrity: IntegrityView,
    /// The runs shown in full, oldest first.
    pub runs: Vec<RunView>,
    /// Across runs (`--all`): one row per run in scope, oldest first.
    pub table: Option<Vec<RunRowView>>,
    /// Across runs (`--all`): the figures `stats` computes, with their charts.
    pub stats: Option<StatsView>,
    /// The undos and redos that reverted (or restored) events of the runs shown.
    pub undos: Vec<UndoView>,
    /// Whether each run's details start collapsed (many runs on one page).
    pub collapse_runs: bool,
}

/// The result of `verify` and the log it covers.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityView {
    /// Whether every event verified.
    pub ok: bool,
    /// Events found sound.
    pub verified: usize,
    /// The commit `refs/spectra/events` pointed at.
    pub tip: Option<String>,
    /// The first bad event and why.
    pub failure: Option<String>,
}

/// One run in full.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run's id.
    pub id: String,
    /// Its short form, as `git spectra log` prints it.
    pub short: String,
    /// The command that started it.
    pub command: String,
    /// The user's text.
    pub input: String,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// When it started.
    pub started_at: String,
    /// How long it took, for a person (`1.2 s`).
    pub duration: String,
    /// Whether it only said what it would do.
    pub dry_run: bool,
    /// The undo (`events.reverted` id) that undid it, if one did and no redo cancelled it.
    pub undone_by: Option<String>,
    /// One lane per activity.
    pub lanes: Vec<super::timeline::Lane>,
    /// The activities, in the order they started; the run's own events (the planner's) first
    /// when there are any.
    pub activities: Vec<ActivityView>,
    /// Every event of the run, in the log's order.
    pub events: Vec<EventRow>,
}

/// One activity of a run, or the run's own events (the planner's), in full.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityView {
    /// The id of the element that shows it.
    pub anchor: String,
    /// Its name (`run` for the run's own events).
    pub activity: String,
    /// The service it worked on.
    pub service: Option<String>,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// How long it took.
    pub duration: String,
    /// Whether an undo reverted it.
    pub reverted: bool,
    /// The decision, field by field.
    pub decision: Vec<Field>,
    /// Who decided: `llm`, `offline` or `planner`.
    pub decided_by: Option<String>,
    /// Each quality gate's verdict.
    pub gates: Vec<GateView>,
    /// Its errors, as `reason: message`.
    pub errors: Vec<String>,
    /// Each LLM attempt.
    pub attempts: Vec<AttemptView>,
    /// Each playbook run.
    pub playbooks: Vec<PlaybookView>,
    /// The commits it made on the user's branch.
    pub commits: Vec<CommitView>,
}

/// One quality gate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    /// The gate's name.
    pub name: String,
    /// `passed`, `failed` or `not_judged`.
    pub result: String,
    /// `required` or `advisory`, when recorded.
    pub level: Option<String>,
    /// `fact`, `decision` or `fact_and_decision`, when recorded.
    pub basis: Option<String>,
    /// The failing checks.
    pub failures: Vec<String>,
}

/// One HTTP attempt at the model.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    /// The id of the element that shows it.
    pub anchor: String,
    /// The `llm.called` event's id.
    pub event: String,
    /// Attempt number within the turn.
    pub attempt: u64,
    /// 0 for the first ask, 1.. for repair turns.
    pub turn: u64,
    /// The model asked.
    pub model: String,
    /// The HTTP status, or `no response`.
    pub status: String,
    /// How long it took.
    pub latency: String,
    /// `prompt + completion` tokens, when the endpoint said.
    pub tokens: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The messages sent (the repair reasons are the last one of a repair turn).
    pub prompt: Vec<Message>,
    /// What the model answered.
    pub reply: Option<String>,
    /// Whether an undo reverted it.
    pub reverted: bool,
}

/// One message of a prompt.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The id of the element that shows it.
    pub anchor: String,
    /// The anchor of the first message of the page with the same text, when this one repeats
    /// it (a long system prompt sent on every attempt is shown once); its content is then empty.
    pub same_as: Option<String>,
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// One playbook run: its start and its end.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybookView {
    /// The id of the element that shows it.
    pub anchor: String,
    /// The playbook's id.
    pub playbook: String,
    /// `run` or `undo`.
    pub action: String,
    /// The command, as argv joined with spaces.
    pub argv: String,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// Its exit code, or how it ended without one.
    pub exit_code: String,
    /// How long it took.
    pub duration: String,
    /// Its captured standard output (capped).
    pub stdout: Option<String>,
    /// Its captured standard error (capped).
    pub stderr: Option<String>,
    /// Whether an undo reverted it.
    pub reverted: bool,
}

/// One commit an activity made on the user's branch.
#[derive(Debug, Clone, Serialize)]
pub struct CommitView {
    /// Its short hash.
    pub short: String,
    /// Its subject.
    pub subject: String,
    /// `N files changed, ...`, or why there is none.
    pub stat: String,
    /// The paths it committed.
    pub files: Vec<String>,
    /// Whether an undo reverted it.
    pub reverted: bool,
}

/// One event of a run, in the run's list of events.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// The event's id.
    pub id: String,
    /// Its short form.
    pub short: String,
    /// Its kind.
    pub kind: String,
    /// When it was written.
    pub at: String,
    /// The activity that wrote it.
    pub activity: Option<String>,
    /// Its commit subject.
    pub subject: String,
    /// The undo that reverted it, if one did and no redo cancelled it.
    pub reverted_by: Option<String>,
}

/// One row of the table of runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunRowView {
    /// The run's id.
    pub id: String,
    /// Its short form.
    pub short: String,
    /// The command that started it.
    pub command: String,
    /// When it started.
    pub started_at: String,
    /// How it ended, or `in_progress`.
    pub outcome: String,
    /// How long it took.
    pub duration: String,
    /// Whether an undo undid it.
    pub undone: bool,
    /// `activity:outcome` of each activity.
    pub activities: String,
    /// Whether the run is shown in full on this page (so its row links to it).
    pub shown: bool,
}

/// The figures `stats` computes and their charts.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// The figures, as `git spectra stats --format json` prints them.
    pub stats: Stats,
    /// Success rate per activity.
    pub success_chart: super::timeline::Chart,
    /// LLM latency p50/p95/p99 per endpoint and model.
    pub latency_chart: super::timeline::Chart,
}

/// An undo or redo that touched the runs shown.
#[derive(Debug, Clone, Serialize)]
pub struct UndoView {
    /// The id of the element that shows it (what reverted marks link to).
    pub anchor: String,
    /// The event's id.
    pub id: String,
    /// Its short form.
    pub short: String,
    /// `events.reverted` or `events.restored`.
    pub kind: String,
    /// When it was written.
    pub at: String,
    /// Whether a later redo cancelled it.
    pub restored: bool,
    /// The events it names.
    pub targets: Vec<String>,
}
