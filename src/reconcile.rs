//! Closing runs whose process died before it recorded how they ended.
//!
//! A run appends what an effect is about to do before doing it (`effect.intended` before a
//! commit on the user's branch, `undo.started` before an undo's reverts and compensations,
//! `playbook.started` before a playbook), and what happened after. A process killed in
//! between leaves an intent without its outcome, and the run without its end. The next command
//! that writes the log (see [`settle`]; commands that only read it leave such runs open) finds
//! them through [`crate::run_lock`] and closes them here:
//!
//! - an intended commit is looked for on the branch by its own trailers (`Spectra-Run` and
//!   `Spectra-Event`, which name the `files.committed` event it was going to get); found, that
//!   event is appended with `reconciled: true`, so undo can reverse it; not found, each file
//!   the run wrote for it is put back as HEAD has it, if it still holds what the run wrote;
//! - a playbook started and never finished gets `playbook.finished` with outcome
//!   `interrupted`;
//! - an activity run gets `activity.finished` for each unfinished activity and `run.finished`,
//!   all with outcome `interrupted`;
//! - an undo or redo gets `undo.failed` naming the steps found done (its reverts, by their
//!   `Spectra-Run` and `Spectra-Reverts` trailers and git's "This reverts commit" line), so
//!   running it again completes the record instead of reverting twice.
//!
//! The signal handler ([`crate::interrupt`]) uses [`close`] for its own run. Nothing is closed
//! while the log fails verification.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::activity::Recorder;
use crate::event::payload::PlaybookFinished;
use crate::event::{Event, NewEvent, Outcome, kind};
use crate::repo::Repo;
use crate::run_lock;
use crate::store::{Filter, Store, StoreError};
use crate::worktree::{CommitFacts, Worktree, WorktreeError};

/// Why a run is being closed, as the closing events say it.
pub const PROCESS_GONE: &str = "the process running it ended before it recorded how it ended";

/// A run this module closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The run's id.
    pub run: String,
    /// Commits of the run found on the branch by their trailers and recorded now.
    pub found: Vec<String>,
}

/// Why a run could not be closed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The log could not be read or appended to.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A git command on the work tree failed.
    #[error(transparent)]
    Git(#[from] WorktreeError),
}

/// Closes every run of this repository whose process is gone. Best effort: a run that cannot
/// be closed now keeps its lock file and is tried again by the next command.
pub fn settle(repo: &Repo, store: &Store) -> Vec<Closed> {
    let state_dir = repo.state_dir();
    let abandoned = run_lock::abandoned(&state_dir);
    if abandoned.is_empty() {
        return Vec::new();
    }
    // Closing a run acts on what its events say: never on a log that fails verification (the
    // lock files stay, and the run is closed once the log is sound again).
    if let Err(error) = store.require_intact() {
        tracing::warn!(%error, "interrupted runs are left open");
        return Vec::new();
    }
    let worktree = repo.work_tree().map(Worktree::new);
    let mut closed = Vec::new();
    for run in abandoned {
        match close(store, worktree.as_ref(), &run.run, PROCESS_GONE) {
            Ok(done) => {
                closed.extend(done);
                run.release();
            }
            Err(error) => {
                tracing::warn!(run = %run.run, %error, "could not close an interrupted run");
            }
        }
    }
    closed
}

/// Closes `run` if it is open: records the effects found on the branch and how it ended.
/// `None` when the run is unknown or already closed.
pub fn close(
    store: &Store,
    worktree: Option<&Worktree>,
    run: &str,
    why: &str,
) -> Result<Option<Closed>, ReconcileError> {
    let events: Vec<Event> = store
        .events_oldest_first(&Filter {
            run: Some(run.to_string()),
            ..Filter::default()
        })?
        .into_iter()
        .map(|stored| stored.event)
        .filter(|event| event.run.as_deref() == Some(run))
        .collect();
    if events.is_empty() || events.iter().any(is_closing) {
        return Ok(None);
    }
    let mut recorder = Recorder::new(store, run);
    let found = match worktree {
        Some(worktree) => record_found_commits(&mut recorder, worktree, &events, run)?,
        None => Vec::new(),
    };
    let tagged = match worktree {
        Some(worktree) => record_found_tags(&mut recorder, worktree.root(), &events, run),
        None => Vec::new(),
    };
    record_unfinished_playbooks(&mut recorder, &events, &tagged, why);
    match events.iter().find(|event| event.kind == kind::UNDO_STARTED) {
        Some(started) => {
            let done = undo_steps_done(worktree, &events, started, run)?;
            recorder.record(undo_failed(started, done, why));
        }
        None => record_run_end(&mut recorder, &events, &found, why),
    }
    recorder.flush()?;
    Ok(Some(Closed {
        run: run.to_string(),
        found,
    }))
}

/// Whether `event` says its run has ended.
fn is_closing(event: &Event) -> bool {
    matches!(
        event.kind.as_str(),
        kind::RUN_FINISHED | kind::EVENTS_REVERTED | kind::EVENTS_RESTORED | kind::UNDO_FAILED
    )
}

/// Appends `files.committed` for each intended commit that landed but was never recorded.
fn record_found_commits(
    recorder: &mut Recorder<'_>,
    worktree: &Worktree,
    events: &[Event],
    run: &str,
) -> Result<Vec<String>, ReconcileError> {
    let recorded: HashSet<&str> = events.iter().map(|event| event.id.as_str()).collect();
    let mut found = Vec::new();
    for intent in events.iter().filter(|event| {
        event.kind == kind::EFFECT_INTENDED && event.payload_str("effect") == Some("commit")
    }) {
        let Some(completes) = intent.payload_str("completes") else {
            continue;
        };
        if recorded.contains(completes) {
            continue;
        }
        let tip = intent
            .payload_str("branch")
            .map_or_else(|| "HEAD".into(), |branch| format!("refs/heads/{branch}"));
        let commit = worktree.find_commit(intent.payload_str("head"), &tip, |facts| {
            made_by(facts, run, completes)
        })?;
        match commit {
            Some(facts) => {
                let files = worktree.paths_changed_by(&facts.commit)?;
                recorder.record(committed_event(intent, completes, &facts, files));
                found.push(facts.commit);
            }
            None => put_back_unchanged_files(worktree, intent),
        }
    }
    Ok(found)
}

/// The files an intended commit that never happened had written: each is put back as HEAD has
/// it, but only while it still holds exactly what the run wrote (its blob id, recorded in the
/// intent), so nothing the user changed since is lost.
fn put_back_unchanged_files(worktree: &Worktree, intent: &Event) {
    let Some(blobs) = intent.payload["blobs"].as_object() else {
        return;
    };
    for (path, blob) in blobs {
        let Some(blob) = blob.as_str() else { continue };
        if worktree.blob_id_of_file(path).as_deref() != Some(blob) {
            continue;
        }
        if let Err(error) = worktree.restore_path(path) {
            tracing::warn!(%path, %error, "cannot put back a file an interrupted run wrote");
        }
    }
}

/// Whether a commit's own trailers say `run` made it as the effect `event` records.
pub fn made_by(facts: &CommitFacts, run: &str, event: &str) -> bool {
    facts.runs.iter().any(|r| r == run) && facts.events.iter().any(|e| e == event)
}

fn committed_event(
    intent: &Event,
    completes: &str,
    facts: &CommitFacts,
    files: Vec<String>,
) -> NewEvent {
    let mut event = NewEvent::new(kind::FILES_COMMITTED)
        .subject(format!(
            "{}: found commit {} of an interrupted run",
            intent.activity.as_deref().unwrap_or("run"),
            crate::worktree::short(&facts.commit)
        ))
        .payload(json!({
            "commit": facts.commit,
            "branch": intent.payload["branch"],
            "files": files,
            "message": facts.subject,
            "reconciled": true,
        }))
        .cause(intent.id.clone());
    event.id = completes.to_string();
    with_scope(event, intent)
}

/// The activity and service of `like`, on `event`.
fn with_scope(mut event: NewEvent, like: &Event) -> NewEvent {
    if let Some(activity) = &like.activity {
        event = event.activity(activity.clone());
    }
    if let Some(service) = &like.service {
        event = event.service(service.clone());
    }
    event
}

/// Appends the `playbook.finished` of each release tag that was made but never recorded (an
/// `effect.intended` with `effect: tag`, and the tag's own trailers naming the run and the
/// playbook run it completes); returns those `playbook.started` ids.
fn record_found_tags(
    recorder: &mut Recorder<'_>,
    root: &std::path::Path,
    events: &[Event],
    run: &str,
) -> Vec<String> {
    let finished = finished_playbooks(events);
    let mut found = Vec::new();
    for intent in events.iter().filter(|event| {
        event.kind == kind::EFFECT_INTENDED && event.payload_str("effect") == Some("tag")
    }) {
        let (Some(tag), Some(completes)) =
            (intent.payload_str("tag"), intent.payload_str("completes"))
        else {
            continue;
        };
        let started = events
            .iter()
            .find(|event| event.id == completes && event.kind == kind::PLAYBOOK_STARTED);
        let Some(started) = started.filter(|_| !finished.contains(completes)) else {
            continue;
        };
        let Some(commit) = crate::builtin::release::made_by(root, tag, run, completes) else {
            continue;
        };
        let playbook = started.payload_str("playbook").unwrap_or_default();
        let subject = format!("playbook {playbook}: found tag {tag} of an interrupted run");
        let found_tag = json!({"reconciled": true, "tag": tag, "commit": commit});
        recorder.record(closing_finished(
            started,
            subject,
            Outcome::Succeeded,
            found_tag,
        ));
        found.push(started.id.clone());
    }
    found
}

/// The ids of the `playbook.started` events that have their `playbook.finished`.
fn finished_playbooks(events: &[Event]) -> HashSet<&str> {
    events
        .iter()
        .filter(|event| event.kind == kind::PLAYBOOK_FINISHED)
        .flat_map(|event| event.causes.iter().map(String::as_str))
        .collect()
}

fn record_unfinished_playbooks(
    recorder: &mut Recorder<'_>,
    events: &[Event],
    reconciled: &[String],
    why: &str,
) {
    let mut finished = finished_playbooks(events);
    finished.extend(reconciled.iter().map(String::as_str));
    for started in events
        .iter()
        .filter(|event| event.kind == kind::PLAYBOOK_STARTED)
        .filter(|event| !finished.contains(event.id.as_str()))
    {
        let playbook = started.payload_str("playbook").unwrap_or_default();
        let subject = format!("playbook {playbook} interrupted");
        let reason = json!({"reason": why});
        recorder.record(closing_finished(
            started,
            subject,
            Outcome::Interrupted,
            reason,
        ));
    }
}

/// The `playbook.finished` a closing run writes for `started`: no exit code, duration or
/// output (its process is gone), plus the fields of `extra`.
fn closing_finished(started: &Event, subject: String, outcome: Outcome, extra: Value) -> NewEvent {
    let mut payload = json!({
        "playbook": started.payload_str("playbook").unwrap_or_default(),
        "action": started.payload["action"],
        "argv": started.payload["argv"],
        "outcome": outcome,
        "exit_code": null,
        "signal": null,
        "duration_ms": null,
        "stdout": null,
        "stderr": null,
    });
    if let (Some(payload), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
        payload.extend(extra.clone());
    }
    let event = NewEvent::new(kind::PLAYBOOK_FINISHED)
        .subject(subject)
        .payload(payload)
        .cause(started.id.clone());
    with_scope(event, started)
}

fn record_run_end(recorder: &mut Recorder<'_>, events: &[Event], found: &[String], why: &str) {
    let finished: HashSet<&str> = events
        .iter()
        .filter(|event| event.kind == kind::ACTIVITY_FINISHED)
        .filter_map(|event| event.activity.as_deref())
        .collect();
    let mut activities = Vec::new();
    for event in events {
        if event.kind == kind::ACTIVITY_FINISHED {
            activities
                .push(json!({"activity": event.activity, "outcome": event.payload["outcome"]}));
        }
        if event.kind != kind::ACTIVITY_STARTED {
            continue;
        }
        let name = event.activity.clone().unwrap_or_default();
        if finished.contains(name.as_str()) {
            continue;
        }
        let error = json!({"reason": "interrupted", "message": why});
        let finished = NewEvent::new(kind::ACTIVITY_FINISHED)
            .subject(format!("{name}: interrupted"))
            .payload(json!({
                "outcome": "interrupted",
                "duration_ms": null,
                "outputs": {},
                "quality_gates": {},
                "gates_passed": 0,
                "gates_total": 0,
                "errors": [error],
            }))
            .cause(event.id.clone());
        recorder.record(with_scope(finished, event));
        activities.push(json!({"activity": name, "outcome": "interrupted"}));
    }
    for name in stopped_before_start(events) {
        activities.push(json!({"activity": name, "outcome": "interrupted"}));
    }
    let command = events
        .iter()
        .find(|event| event.kind == kind::RUN_STARTED)
        .and_then(|event| event.payload_str("command"))
        .unwrap_or("run")
        .to_string();
    let mut end = NewEvent::new(kind::RUN_FINISHED)
        .subject(format!("{command}: run interrupted"))
        .payload(json!({
            "outcome": "interrupted",
            "duration_ms": null,
            "activities": activities,
            "skipped": [],
            "reason": why,
            "reconciled": found,
        }));
    if let Some(service) = events.iter().rev().find_map(|event| event.service.clone()) {
        end = end.service(service);
    }
    recorder.record(end);
}

/// Activities stopped before their `activity.started`: in the middle of the model call that
/// re-ranks their playbooks, whose earlier attempts are in the log. They never started, so no
/// `activity.finished` closes them; the run's end lists them as interrupted.
fn stopped_before_start(events: &[Event]) -> Vec<String> {
    let begun: HashSet<&str> = events
        .iter()
        .filter(|event| {
            matches!(
                event.kind.as_str(),
                kind::ACTIVITY_STARTED | kind::ACTIVITY_FINISHED
            )
        })
        .filter_map(|event| event.activity.as_deref())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for event in events.iter().filter(|event| event.kind == kind::LLM_CALLED) {
        if let Some(name) = event.activity.as_deref()
            && !begun.contains(name)
            && !names.iter().any(|known| known == name)
        {
            names.push(name.to_string());
        }
    }
    names
}

/// The steps of an interrupted undo or redo that happened: reverts found on the branch by their
/// own trailers, compensations whose playbook finished successfully.
fn undo_steps_done(
    worktree: Option<&Worktree>,
    events: &[Event],
    started: &Event,
    run: &str,
) -> Result<Vec<Value>, ReconcileError> {
    let mut done = Vec::new();
    for step in started.payload["steps"].as_array().into_iter().flatten() {
        match step["step"].as_str() {
            Some("revert") => {
                let (Some(commit), Some(target)) =
                    (step["commit"].as_str(), step["event"].as_str())
                else {
                    continue;
                };
                let Some(worktree) = worktree else { continue };
                let tip = started
                    .payload_str("branch")
                    .map_or_else(|| "HEAD".into(), |branch| format!("refs/heads/{branch}"));
                if let Some(revert) = find_revert(worktree, run, commit, target, &tip)? {
                    done.push(json!({"step": "revert", "commit": commit, "revert": revert.commit, "event": target}));
                }
            }
            Some("playbook") => {
                if let Some(started_id) = succeeded_playbook(events, step) {
                    let mut record = step.clone();
                    record["started"] = json!(started_id);
                    record.as_object_mut().map(|object| object.remove("argv"));
                    done.push(record);
                }
            }
            _ => {}
        }
    }
    Ok(done)
}

/// The revert of `commit` that the undo or redo `run` made for `event`, found in `tip`'s
/// history after `commit`, proven by its own trailers and git's message.
pub fn find_revert(
    worktree: &Worktree,
    run: &str,
    commit: &str,
    event: &str,
    tip: &str,
) -> Result<Option<CommitFacts>, WorktreeError> {
    worktree.find_commit(Some(commit), tip, |facts| {
        facts.runs.iter().any(|r| r == run)
            && facts.reverts.iter().any(|r| r == event)
            && facts.reverts_commit(commit)
    })
}

/// The `playbook.started` of this run that re-applied `step`'s source and finished well.
fn succeeded_playbook(events: &[Event], step: &Value) -> Option<String> {
    let source = step["source"].as_str()?;
    let started = events.iter().find(|event| {
        event.kind == kind::PLAYBOOK_STARTED && event.payload["reapplies"].as_str() == Some(source)
    })?;
    events
        .iter()
        .any(|event| {
            event.kind == kind::PLAYBOOK_FINISHED
                && event.causes.contains(&started.id)
                && PlaybookFinished::of(&event.payload)
                    .outcome
                    .is_some_and(|outcome| outcome.succeeded())
        })
        .then(|| started.id.clone())
}

fn undo_failed(started: &Event, done: Vec<Value>, why: &str) -> NewEvent {
    let direction = started.payload_str("direction").unwrap_or("undo");
    NewEvent::new(kind::UNDO_FAILED)
        .subject(format!("{direction}: interrupted"))
        .payload(json!({
            "direction": direction,
            "targets": started.payload["targets"],
            "runs": started.payload["runs"],
            "done": done,
            "failed": {"step": null, "reason": why},
            "interrupted": true,
        }))
        .cause(started.id.clone())
}
