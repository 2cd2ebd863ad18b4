//! Reading the log into a [`Report`]: which runs, and for each the events grouped by activity,
//! with the attachments a reviewer reads (prompts, replies, playbook output).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::ReportError;
use super::across::{run_table, stats_view};
use super::fields::{flatten, text};
use super::group::{Group, group_by_activity, playbook_end};
use super::marks::{attempt_start, llm_mark, playbook_mark};
use super::model::{
    ActivityView, AttemptView, CommitView, EventRow, GateView, IntegrityView, Message,
    PlaybookView, Report, RunView, UndoView,
};
use super::timeline::{Axis, Lane, Mark, duration};
use crate::event::payload::{
    ActivityFinished, DecisionMade, FilesCommitted, LlmCalled, PlaybookFinished, PlaybookStarted,
    RunStarted, Targets,
};
use crate::event::{RevertedSet, kind};
use crate::projection::Projection;
use crate::repo::Repo;
use crate::store::{Filter, Ids, Integrity, Store, StoredEvent};

/// The most bytes of one attachment (a prompt, a reply, a playbook's output) the page shows;
/// the rest is a `git spectra show --attachment` away.
const ATTACHMENT_CAP: usize = 64 * 1024;

/// With more runs than this on the page, each run's details start collapsed.
const COLLAPSE_OVER: usize = 5;

/// Which runs a report covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// These runs (any name `git spectra log` prints or accepts for a run or one of its events).
    pub runs: Vec<String>,
    /// Every run, with the table of runs and the figures across them.
    pub all: bool,
    /// Only runs that started at or after this instant.
    pub since: Option<jiff::Timestamp>,
}

/// Reads the log and builds the report `selection` asks for.
///
/// Without runs named and without `all`, the newest run (or, with `since`, every run since).
pub fn gather(repo: &Repo, store: &Store, selection: &Selection) -> Result<Report, ReportError> {
    let integrity = integrity_view(store)?;
    let ids = store.ids()?;
    let wanted: Vec<String> = selection
        .runs
        .iter()
        .map(|typed| ids.resolve_run(typed))
        .collect::<Result<_, _>>()?;
    let events = store.events_oldest_first(&Filter::default())?;
    let projection = Projection::from_events(events.iter().map(|stored| &stored.event));
    let mut reverted = RevertedSet::default();
    for stored in &events {
        reverted.apply(&stored.event);
    }
    let in_scope = runs_in_scope(&events, selection.since);
    let shown = shown_runs(&wanted, &in_scope, selection)?;
    let by_run = events_by_run(&events, &shown);
    let context = Context {
        store,
        ids: &ids,
        reverted: &reverted,
        shown: Default::default(),
    };
    let mut runs = Vec::new();
    for run in &shown {
        let run_events = by_run.get(run.as_str()).map_or(&[][..], Vec::as_slice);
        runs.push(context.run_view(run, run_events)?);
    }
    let commits: Vec<String> = runs
        .iter()
        .flat_map(|run| &run.activities)
        .flat_map(|activity| &activity.commits)
        .map(|commit| commit.short.clone())
        .collect();
    let stats_of = diff_stats(repo, &commits);
    for commit in runs
        .iter_mut()
        .flat_map(|run| &mut run.activities)
        .flat_map(|activity| &mut activity.commits)
    {
        commit.stat = stats_of
            .get(&commit.short)
            .cloned()
            .unwrap_or_else(|| "not in this clone".to_string());
        commit.short.truncate(12);
    }
    let shown_set: BTreeSet<&str> = shown.iter().map(String::as_str).collect();
    let (table, stats) = if selection.all {
        (
            Some(run_table(&projection, &ids, &in_scope, &shown_set)),
            Some(stats_view(&events, selection.since)),
        )
    } else {
        (None, None)
    };
    let undos = undo_views(&events, &ids, &reverted, &runs);
    Ok(Report {
        title: title(selection, runs.len()),
        generated_at: crate::event::now_rfc3339(),
        integrity,
        table,
        stats,
        collapse_runs: runs.len() > COLLAPSE_OVER,
        runs,
        undos,
    })
}

/// Whether the log verifies, as `verify` would answer, and the tip that answer covers. The
/// integrity check gives the same answer as a check from the first event while checking only
/// what was appended since the last command checked, so a report of one run does not pay for
/// reading every event's attachments again.
fn integrity_view(store: &Store) -> Result<IntegrityView, ReportError> {
    Ok(match store.integrity()? {
        Integrity::Intact { events, tip } => IntegrityView {
            ok: true,
            verified: events,
            tip: tip.map(|tip| tip.to_string()),
            failure: None,
        },
        Integrity::Broken(failure) => IntegrityView {
            ok: false,
            verified: failure.position - 1,
            tip: store.tip()?.map(|tip| tip.to_string()),
            failure: Some(failure.to_string()),
        },
    })
}

fn title(selection: &Selection, runs: usize) -> String {
    let plural = if runs == 1 { "" } else { "s" };
    if selection.all {
        format!("git spectra report: all runs ({runs} run{plural})")
    } else {
        format!("git spectra report: {runs} run{plural}")
    }
}

/// Every run of the log (its own and undo's and redo's) in the order of its first event, if
/// that event is at or after `since`.
fn runs_in_scope(events: &[StoredEvent], since: Option<jiff::Timestamp>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut runs = Vec::new();
    for stored in events {
        let Some(run) = stored.event.run.as_deref() else {
            continue;
        };
        if seen.insert(run) && started_since(&stored.event.at, since) {
            runs.push(run.to_string());
        }
    }
    runs
}

fn started_since(started_at: &str, since: Option<jiff::Timestamp>) -> bool {
    since.is_none_or(|since| millis(started_at).is_some_and(|at| at >= since.as_millisecond()))
}

/// The runs shown in full: those named; else every run in scope with `all` or `since`; else
/// the newest.
fn shown_runs(
    wanted: &[String],
    in_scope: &[String],
    selection: &Selection,
) -> Result<Vec<String>, ReportError> {
    if !wanted.is_empty() {
        return Ok(wanted.to_vec());
    }
    let since = if selection.since.is_some() {
        " since that time"
    } else {
        ""
    };
    if in_scope.is_empty() {
        return Err(ReportError::NoRuns(since));
    }
    if selection.all || selection.since.is_some() {
        Ok(in_scope.to_vec())
    } else {
        Ok(in_scope.last().into_iter().cloned().collect())
    }
}

fn events_by_run<'a>(
    events: &'a [StoredEvent],
    shown: &[String],
) -> BTreeMap<&'a str, Vec<&'a StoredEvent>> {
    let shown: BTreeSet<&str> = shown.iter().map(String::as_str).collect();
    let mut by_run: BTreeMap<&str, Vec<&StoredEvent>> = BTreeMap::new();
    for stored in events {
        if let Some(run) = stored.event.run.as_deref()
            && shown.contains(run)
        {
            by_run.entry(run).or_default().push(stored);
        }
    }
    by_run
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub(super) fn millis(at: &str) -> Option<i64> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .map(|at| at.as_millisecond())
}

/// What every part of one run's view needs.
struct Context<'a> {
    store: &'a Store,
    ids: &'a Ids,
    reverted: &'a RevertedSet,
    /// Long prompt messages already on the page: digest -> the anchor that shows it.
    shown: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

impl Context<'_> {
    fn run_view(&self, run: &str, events: &[&StoredEvent]) -> Result<RunView, ReportError> {
        let first = events.first().map(|stored| &stored.event);
        let started = events
            .iter()
            .find(|stored| stored.event.kind == kind::RUN_STARTED)
            .map(|stored| RunStarted::of(&stored.event.payload))
            .unwrap_or_default();
        let finished = events
            .iter()
            .rev()
            .find(|stored| stored.event.kind == kind::RUN_FINISHED);
        let finished_payload =
            finished.map(|stored| crate::event::payload::RunFinished::of(&stored.event.payload));
        let start_ms = first.and_then(|event| millis(&event.at)).unwrap_or(0);
        let end_ms = events
            .iter()
            .filter_map(|stored| millis(&stored.event.at))
            .max()
            .unwrap_or(start_ms);
        let axis = Axis::new(start_ms, end_ms);
        let (own, groups) = group_by_activity(events);
        let mut activities = Vec::new();
        if !own.is_empty() {
            activities.push(self.activity_view(&own, 0)?);
        }
        let mut lanes = Vec::new();
        for (index, group) in groups.iter().enumerate() {
            let view = self.activity_view(group, index + 1)?;
            lanes.push(self.lane(group, &view, &axis, end_ms));
            activities.push(view);
        }
        Ok(RunView {
            id: run.to_string(),
            short: self.ids.short_run(run),
            command: started.command.unwrap_or_else(|| "?".to_string()),
            input: started.input.unwrap_or_default(),
            outcome: finished_payload
                .as_ref()
                .and_then(|finished| finished.outcome.as_ref())
                .map_or("in_progress".to_string(), |outcome| {
                    outcome.word().to_string()
                }),
            started_at: first.map(|event| event.at.clone()).unwrap_or_default(),
            duration: duration(finished_payload.and_then(|finished| finished.duration_ms)),
            dry_run: started.dry_run.unwrap_or(false),
            undone_by: first
                .and_then(|event| self.reverted.reverted_by(&event.id))
                .map(str::to_string),
            lanes,
            activities,
            events: events.iter().map(|stored| self.event_row(stored)).collect(),
        })
    }

    fn event_row(&self, stored: &StoredEvent) -> EventRow {
        let event = &stored.event;
        EventRow {
            id: event.id.clone(),
            short: self.ids.short_event(&event.id),
            kind: event.kind.clone(),
            at: event.at.clone(),
            activity: event.activity.clone(),
            subject: stored.subject.clone(),
            reverted_by: self.reverted.reverted_by(&event.id).map(str::to_string),
        }
    }

    fn is_reverted(&self, stored: &StoredEvent) -> bool {
        self.reverted.reverted_by(&stored.event.id).is_some()
    }

    fn activity_view(&self, group: &Group, index: usize) -> Result<ActivityView, ReportError> {
        let finished = group
            .finished
            .map(|stored| ActivityFinished::of(&stored.event.payload));
        let decision = group
            .decisions
            .last()
            .map(|stored| DecisionMade::of(&stored.event.payload));
        let mut attempts = Vec::new();
        for stored in &group.attempts {
            attempts.push(self.attempt_view(stored)?);
        }
        let mut playbooks = Vec::new();
        for (position, stored) in group.playbooks_started.iter().enumerate() {
            let end = playbook_end(stored, &group.playbooks_finished, position);
            playbooks.push(self.playbook_view(stored, end)?);
        }
        Ok(ActivityView {
            anchor: format!("a-{}", anchor_of(group, index)),
            activity: group.name.clone(),
            service: group.service.clone(),
            outcome: finished
                .as_ref()
                .and_then(|finished| finished.outcome.as_ref())
                .map_or_else(
                    || {
                        if group.started.is_some() {
                            "in_progress".to_string()
                        } else {
                            String::new()
                        }
                    },
                    |outcome| outcome.word().to_string(),
                ),
            duration: duration(finished.as_ref().and_then(|finished| finished.duration_ms)),
            reverted: group.started.is_some_and(|stored| self.is_reverted(stored)),
            decision: decision
                .as_ref()
                .and_then(|decision| decision.decision.as_ref())
                .map(flatten)
                .unwrap_or_default(),
            decided_by: decision.and_then(|decision| decision.mode),
            gates: group
                .finished
                .map(|stored| gates(&stored.event.payload))
                .unwrap_or_default(),
            errors: finished
                .as_ref()
                .and_then(|finished| finished.errors.as_ref())
                .map(errors)
                .unwrap_or_default(),
            attempts,
            playbooks,
            commits: group
                .commits
                .iter()
                .map(|stored| self.commit_view(stored))
                .collect(),
        })
    }

    fn attempt_view(&self, stored: &StoredEvent) -> Result<AttemptView, ReportError> {
        let call = LlmCalled::of(&stored.event.payload);
        let usage = call.usage.as_ref();
        let tokens = usage.map(|usage| {
            format!(
                "{} + {} tokens",
                text(&usage["prompt_tokens"]),
                text(&usage["completion_tokens"])
            )
        });
        let request = self.attachment_json(stored, "request.json")?;
        let response = self.attachment_text(stored, "response.json")?;
        Ok(AttemptView {
            anchor: format!("e-{}", stored.event.id),
            event: stored.event.id.clone(),
            attempt: call.attempt.unwrap_or(1),
            turn: call.turn.unwrap_or(0),
            model: call.model.unwrap_or_default(),
            status: call
                .status
                .map_or("no response".to_string(), |status| format!("HTTP {status}")),
            latency: duration(call.latency_ms),
            tokens,
            error: call.error.as_ref().filter(|e| !e.is_null()).map(text),
            prompt: request
                .as_ref()
                .map(|request| messages(request, &stored.event.id, &mut self.shown.borrow_mut()))
                .unwrap_or_default(),
            reply: response.map(|body| reply_text(&body)),
            reverted: self.is_reverted(stored),
        })
    }

    fn playbook_view(
        &self,
        started: &StoredEvent,
        finished: Option<&StoredEvent>,
    ) -> Result<PlaybookView, ReportError> {
        let start = PlaybookStarted::of(&started.event.payload);
        let end = finished.map(|stored| PlaybookFinished::of(&stored.event.payload));
        let exit_code = match &end {
            None => "—".to_string(),
            Some(end) => match (end.exit_code, end.signal) {
                (Some(code), _) => code.to_string(),
                (None, Some(signal)) => format!("signal {signal}"),
                (None, None) => "none".to_string(),
            },
        };
        let (stdout, stderr) = match finished {
            Some(stored) => (
                self.attachment_text(stored, "stdout")?,
                self.attachment_text(stored, "stderr")?,
            ),
            None => (None, None),
        };
        Ok(PlaybookView {
            anchor: format!("e-{}", started.event.id),
            playbook: start.playbook.unwrap_or_default(),
            action: start.action.unwrap_or_default(),
            argv: start.argv.unwrap_or_default().join(" "),
            outcome: end
                .as_ref()
                .and_then(|end| end.outcome.as_ref())
                .map_or("in_progress".to_string(), |outcome| {
                    outcome.word().to_string()
                }),
            exit_code,
            duration: duration(end.and_then(|end| end.duration_ms)),
            stdout: stdout.filter(|text| !text.is_empty()),
            stderr: stderr.filter(|text| !text.is_empty()),
            reverted: self.is_reverted(started),
        })
    }

    fn commit_view(&self, stored: &StoredEvent) -> CommitView {
        let committed = FilesCommitted::of(&stored.event.payload);
        CommitView {
            // The full id until the diff stats are looked up by it; cut afterwards.
            short: committed.commit.unwrap_or_default(),
            subject: committed
                .message
                .as_deref()
                .and_then(|message| message.lines().next())
                .unwrap_or_default()
                .to_string(),
            stat: String::new(),
            files: committed.files.unwrap_or_default(),
            reverted: self.is_reverted(stored),
        }
    }

    fn lane(&self, group: &Group, view: &ActivityView, axis: &Axis, end_ms: i64) -> Lane {
        let started = group
            .started
            .and_then(|stored| millis(&stored.event.at))
            .unwrap_or(end_ms);
        // A model call that chose the activity's playbooks is made before its start: the bar
        // covers it.
        let from = group
            .attempts
            .iter()
            .map(|stored| attempt_start(stored))
            .fold(started, i64::min);
        let to = group
            .finished
            .and_then(|stored| millis(&stored.event.at))
            .unwrap_or(end_ms);
        let (left, width) = axis.place(from, to);
        let mut marks: Vec<Mark> = group.attempts.iter().map(|s| llm_mark(s, axis)).collect();
        for (position, stored) in group.playbooks_started.iter().enumerate() {
            let end = playbook_end(stored, &group.playbooks_finished, position);
            marks.push(playbook_mark(stored, end, axis, end_ms));
        }
        let service = view
            .service
            .as_deref()
            .map(|service| format!(" for {service}"))
            .unwrap_or_default();
        Lane {
            activity: group.name.clone(),
            href: format!("#{}", view.anchor),
            outcome: view.outcome.clone(),
            reverted: view.reverted,
            left,
            width,
            title: format!(
                "{}{service}: {}, {}",
                group.name, view.outcome, view.duration
            ),
            marks,
        }
    }

    /// An attachment as text, capped; `None` when the event has no such attachment.
    fn attachment_text(
        &self,
        stored: &StoredEvent,
        name: &str,
    ) -> Result<Option<String>, ReportError> {
        if !stored.event.attachments.contains_key(name) {
            return Ok(None);
        }
        let bytes = self.store.attachment(stored, name)?;
        Ok(Some(capped(&bytes)))
    }

    fn attachment_json(
        &self,
        stored: &StoredEvent,
        name: &str,
    ) -> Result<Option<Value>, ReportError> {
        if !stored.event.attachments.contains_key(name) {
            return Ok(None);
        }
        let bytes = self.store.attachment(stored, name)?;
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

/// The anchor of an activity's section: its `activity.started` id, or its place in the run.
fn anchor_of(group: &Group, index: usize) -> String {
    group.started.map_or_else(
        || format!("{}-{index}", group.name),
        |stored| stored.event.id.clone(),
    )
}

/// Each gate's verdict: the detailed `gates` when recorded, else the `quality_gates` booleans.
fn gates(payload: &Value) -> Vec<GateView> {
    if let Some(details) = payload.get("gates").and_then(Value::as_object) {
        return details
            .iter()
            .map(|(name, detail)| GateView {
                name: name.clone(),
                result: detail["result"].as_str().unwrap_or("?").to_string(),
                level: detail["level"].as_str().map(str::to_string),
                basis: detail["basis"].as_str().map(str::to_string),
                failures: detail["failures"]
                    .as_array()
                    .map(|failures| failures.iter().map(text).collect())
                    .unwrap_or_default(),
            })
            .collect();
    }
    payload
        .get("quality_gates")
        .and_then(Value::as_object)
        .map(|gates| {
            gates
                .iter()
                .map(|(name, passed)| GateView {
                    name: name.clone(),
                    result: match passed.as_bool() {
                        Some(true) => "passed",
                        Some(false) => "failed",
                        None => "not_judged",
                    }
                    .to_string(),
                    level: None,
                    basis: None,
                    failures: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn errors(errors: &Value) -> Vec<String> {
    errors
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    format!(
                        "{}: {}",
                        error["reason"].as_str().unwrap_or("unknown"),
                        text(&error["message"])
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Messages at least this long are shown once per page and linked to when they repeat.
const SHOWN_ONCE_BYTES: usize = 256;

/// The messages of a chat-completions request body; a long one already shown on the page (by
/// its digest in `shown`) links to where it was.
fn messages(
    request: &Value,
    event: &str,
    shown: &mut std::collections::HashMap<String, String>,
) -> Vec<Message> {
    let Some(messages) = request["messages"].as_array() else {
        return Vec::new();
    };
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let anchor = format!("m-{event}-{index}");
            let mut content = match &message["content"] {
                Value::String(content) => content.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            let mut same_as = None;
            if content.len() >= SHOWN_ONCE_BYTES {
                let digest = crate::digest::sha256_hex(content.as_bytes());
                match shown.get(&digest) {
                    Some(first) => {
                        same_as = Some(first.clone());
                        content = String::new();
                    }
                    None => {
                        shown.insert(digest, anchor.clone());
                    }
                }
            }
            Message {
                anchor,
                same_as,
                role: message["role"].as_str().unwrap_or("?").to_string(),
                content,
            }
        })
        .collect()
}

/// What the model answered: the first choice's content, else the body as recorded.
fn reply_text(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| {
            value["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.to_string())
}

/// Bytes as text, cut at [`ATTACHMENT_CAP`] with a note saying so.
fn capped(bytes: &[u8]) -> String {
    if bytes.len() <= ATTACHMENT_CAP {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut text = String::from_utf8_lossy(&bytes[..ATTACHMENT_CAP]).into_owned();
    text.push_str(&format!(
        "\n… ({} more bytes; the whole attachment: git spectra show EVENT --attachment NAME)",
        bytes.len() - ATTACHMENT_CAP
    ));
    text
}

/// Each commit's `--shortstat`, by full id, from one `git log --no-walk`. Commits this clone
/// lacks are left out; so is everything when git cannot be run.
fn diff_stats(repo: &Repo, commits: &[String]) -> BTreeMap<String, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut stats = BTreeMap::new();
    if commits.is_empty() {
        return stats;
    }
    let child = Command::new("git")
        .arg("--git-dir")
        .arg(repo.git_dir())
        .args([
            "log",
            "--no-walk=unsorted",
            "--ignore-missing",
            "--stdin",
            "--shortstat",
            "--format=@%H",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return stats;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(commits.join("\n").as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let Ok(output) = child.wait_with_output() else {
        return stats;
    };
    let mut current: Option<String> = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(commit) = line.strip_prefix('@') {
            current = Some(commit.to_string());
            stats.insert(commit.to_string(), "no change".to_string());
        } else if let Some(commit) = &current
            && !line.trim().is_empty()
        {
            stats.insert(commit.clone(), line.trim().to_string());
        }
    }
    stats
}

/// The undos and redos that name an event of the runs shown, oldest first.
fn undo_views(
    events: &[StoredEvent],
    ids: &Ids,
    reverted: &RevertedSet,
    runs: &[RunView],
) -> Vec<UndoView> {
    let shown: BTreeSet<&str> = runs
        .iter()
        .flat_map(|run| &run.events)
        .map(|event| event.id.as_str())
        .collect();
    let undo_ids: BTreeSet<&str> = runs
        .iter()
        .flat_map(|run| &run.events)
        .filter_map(|event| event.reverted_by.as_deref())
        .collect();
    events
        .iter()
        .filter(|stored| {
            matches!(
                stored.event.kind.as_str(),
                kind::EVENTS_REVERTED | kind::EVENTS_RESTORED
            )
        })
        .filter_map(|stored| {
            let targets = Targets::of(&stored.event.payload).targets;
            let touches = undo_ids.contains(stored.event.id.as_str())
                || targets.iter().any(|target| {
                    shown.contains(target.as_str()) || undo_ids.contains(target.as_str())
                });
            touches.then(|| UndoView {
                anchor: format!("u-{}", stored.event.id),
                id: stored.event.id.clone(),
                short: ids.short_event(&stored.event.id),
                kind: stored.event.kind.clone(),
                at: stored.event.at.clone(),
                restored: stored.event.kind == kind::EVENTS_REVERTED
                    && reverted.is_restored(&stored.event.id),
                targets: targets
                    .iter()
                    .map(|target| ids.short_event(target))
                    .collect(),
            })
        })
        .collect()
}
