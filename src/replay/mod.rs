//! Replaying a past run from its record, offline, and comparing it with what was recorded.
//!
//! A replay runs the recorded run's activities again, with the current registry and code, in a
//! scratch repository ([`scratch`]) that stands where the run started: HEAD at the commit it
//! started from, the log as it was just before its first event. The engine runs there
//! unchanged, so the user's HEAD, index, branches and log cannot move, and nothing is appended
//! to the user's log. Every model call is answered from the run's own `llm.called` records
//! ([`crate::llm::recorded`]): nothing is sent, and a request the record does not hold stops
//! the replay, saying whose prompt changed and where. The read-only built-in playbooks run in
//! the scratch repository; every other playbook is answered from its recorded result
//! ([`crate::playbook::recorded`]) and never runs. The two runs are then compared event by
//! event ([`compare`]).
//!
//! See docs/replay.md.

pub mod compare;
mod record;
mod scratch;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::activity::{Decider, Engine, Quiet, RunError, RunOptions};
use crate::event::Event;
use crate::llm::recorded::{Miss, Recorded, RecordedAttempt};
use crate::playbook::recorded::RecordedPlaybooks;
use crate::registry::Registry;
use crate::repo::Repo;
use crate::store::{Store, StoreError};

pub use compare::{Divergence, GateChange, Summary};
pub use record::Asked;

/// Why a run could not be replayed at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record lacks what a replay needs.
    #[error("the run cannot be replayed: {0}")]
    Unreplayable(String),
    /// The scratch repository could not be set up.
    #[error("cannot set up the replay's scratch repository: {0}")]
    Scratch(String),
    /// The scratch repository could not be opened.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// The model's settings are invalid.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The replaying client could not be built.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// `rerun --from` or `replay --activity` names an activity the run did not run.
    #[error("the run did not run {activity}; it ran {}", .activities.join(", "))]
    NotInRun {
        /// The activity asked for.
        activity: String,
        /// The run's activities.
        activities: Vec<String>,
    },
    /// The run could not be started again (an activity the registry no longer has, ...).
    #[error("the run cannot be replayed: {0}")]
    Run(#[from] RunError),
}

impl crate::failure::Classify for ReplayError {
    fn class(&self) -> crate::failure::Class {
        use crate::failure::Class;
        match self {
            ReplayError::Unreplayable(_) | ReplayError::Run(_) => Class::Failed,
            ReplayError::NotInRun { .. } => Class::Usage,
            ReplayError::Settings(error) => crate::failure::Classify::class(error),
            ReplayError::Llm(_) => Class::Failed,
            ReplayError::Store(_) | ReplayError::Scratch(_) | ReplayError::Repo(_) => Class::Fatal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            ReplayError::Store(error) => error.hint().into_iter().collect(),
            ReplayError::Run(error) => error.hint().into_iter().collect(),
            ReplayError::Settings(error) => crate::failure::Classify::hints(error),
            ReplayError::Unreplayable(_) => {
                vec!["docs/replay.md lists what makes a run unreplayable".into()]
            }
            _ => Vec::new(),
        }
    }
}

/// How a replay ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// Every event matched the record.
    Same,
    /// The replay differs from the record.
    Diverged {
        /// The first difference.
        divergence: Divergence,
    },
    /// A model call the record does not hold: the replay stopped there.
    Stopped {
        /// Which call and how its request differs.
        reason: String,
        /// The activity whose prompt changed (`null`: the planner).
        activity: Option<String>,
        /// The recorded request's SHA-256 at that position.
        recorded_sha256: Option<String>,
        /// The new request's SHA-256.
        now_sha256: String,
        /// Where the new request first differs from the recorded one.
        first_difference: String,
    },
}

impl Verdict {
    /// Whether the replay matched the record.
    pub fn is_same(&self) -> bool {
        matches!(self, Verdict::Same)
    }
}

impl From<Miss> for Verdict {
    fn from(miss: Miss) -> Verdict {
        Verdict::Stopped {
            reason: miss.to_string(),
            activity: miss.asker,
            recorded_sha256: miss.recorded_sha256,
            now_sha256: miss.now_sha256,
            first_difference: miss.first_difference,
        }
    }
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The run replayed (its full id).
    pub run: String,
    /// The command that recorded it.
    pub command: String,
    /// Same, diverged, or stopped at a call the record does not hold.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Events recorded by the run.
    pub recorded_events: usize,
    /// Events the replay made.
    pub replayed_events: usize,
    /// Model calls answered from the record.
    pub calls_answered: usize,
    /// Decisions, gates and outcomes side by side.
    pub summary: Summary,
    /// Files the replay's commits hold differently from the run's (`git diff --stat`).
    pub files: Vec<String>,
    /// The difference in those files, as `git diff` shows it.
    pub diff: String,
    /// The run's own recorded duration.
    pub recorded_ms: Option<u64>,
    /// How long the replay took.
    pub replay_ms: u64,
}

/// Replays `run` (a full run id) of `store`, with `registry`, and compares. With `only`
/// (activities of the run), only those are decided again and compared: the others take their
/// recorded decisions again, as `rerun` does, so that what the chosen ones see is what the run
/// gave them.
pub fn replay(
    repo: &Repo,
    store: &Store,
    registry: &Registry,
    run: &str,
    only: &[String],
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let original = record::Original::read(store, run)?;
    let reuse = reuse_outside(&original, only)?;
    let user_root = repo
        .work_tree()
        .ok_or_else(|| ReplayError::Unreplayable("this is a bare repository".into()))?;
    let recorded = Arc::new(Recorded::new(asked_by(original.attempts(store)?, only)));
    let start = original.start(store)?;
    let scratch =
        scratch::Scratch::create(repo.common_dir(), user_root, &repo.state_dir(), &start)?;
    let scratch_repo = Repo::open(&scratch.root())?;
    let scratch_store = Store::new(&scratch_repo);
    let decider = decider(repo, &original.asked, &recorded)?;
    let asked = &original.asked;
    let options = RunOptions {
        service: asked.service.clone(),
        dry_run: asked.dry_run,
        no_commit: false,
        // As recorded: nothing with an effect runs, it is answered from the record.
        execute: asked.execute,
        update: asked.update,
        reuse,
        rerun_of: asked.rerun_of.clone(),
        recorded_playbooks: Some(Arc::new(RecordedPlaybooks::new(
            original.playbook_results(store)?,
        ))),
    };
    let engine = Engine::new(
        &scratch_repo,
        &scratch_store,
        registry,
        decider,
        options,
        &Quiet,
    )?;
    let report = if asked.planned {
        let plan = engine.plan(&asked.input);
        engine.run_plan(&asked.command, plan, &asked.input)?
    } else {
        engine.run(&asked.command, &asked.activities, &asked.input)?
    };
    let replayed = of_activities(events_of(&scratch_store, &report.run)?, only);
    let recorded_events = of_activities(
        original.events.iter().map(|s| s.event.clone()).collect(),
        only,
    );
    let verdict = match recorded.miss() {
        Some(miss) => Verdict::from(miss),
        None => match compare::first_divergence(&recorded_events, &replayed, &|blob| {
            blob_text(&scratch_repo, blob)
        }) {
            Some(divergence) => Verdict::Diverged { divergence },
            None => Verdict::Same,
        },
    };
    // The same events name the same blobs (by content, ids and times masked): the same files.
    let (files, diff) = if verdict.is_same() {
        (Vec::new(), String::new())
    } else {
        changed_files(&scratch.root(), &recorded_events, &replayed)
    };
    Ok(ReplayReport {
        run: run.to_string(),
        command: asked.command.clone(),
        verdict,
        recorded_events: recorded_events.len(),
        replayed_events: replayed.len(),
        calls_answered: recorded.answered(),
        summary: compare::summary(&recorded_events, &replayed),
        files,
        diff,
        recorded_ms: original
            .events
            .iter()
            .rev()
            .find(|stored| stored.event.kind == crate::event::kind::RUN_FINISHED)
            .and_then(|stored| stored.event.payload["duration_ms"].as_u64()),
        replay_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// The decisions a replay takes from the record instead of asking for them: those the run
/// itself took again (a rerun's), and with `only`, those of every activity not in it. An
/// activity in `only` that the run did not run is refused.
fn reuse_outside(
    original: &record::Original,
    only: &[String],
) -> Result<std::collections::BTreeMap<String, crate::activity::Reused>, ReplayError> {
    let ran = &original.asked.activities;
    if let Some(missing) = only.iter().find(|name| !ran.contains(name)) {
        return Err(ReplayError::NotInRun {
            activity: missing.clone(),
            activities: ran.clone(),
        });
    }
    let mut reuse = original.reused();
    if !only.is_empty() {
        let others: Vec<String> = ran
            .iter()
            .filter(|name| !only.contains(name))
            .cloned()
            .collect();
        for (activity, decision) in original.decisions_of(&others) {
            reuse.entry(activity).or_insert(decision);
        }
    }
    Ok(reuse)
}

/// The recorded model calls a replay of `activities` answers from: those of the activities
/// and the planner's (all of them when `activities` is empty); the others' decisions are taken
/// again, not asked for.
fn asked_by(attempts: Vec<RecordedAttempt>, activities: &[String]) -> Vec<RecordedAttempt> {
    if activities.is_empty() {
        return attempts;
    }
    attempts
        .into_iter()
        .filter(|attempt| {
            attempt
                .asker
                .as_ref()
                .is_none_or(|asker| activities.contains(asker))
        })
        .collect()
}

/// The events of `activities` among `events` (all of them when `activities` is empty).
fn of_activities(events: Vec<Event>, activities: &[String]) -> Vec<Event> {
    if activities.is_empty() {
        return events;
    }
    events
        .into_iter()
        .filter(|event| {
            event
                .activity
                .as_ref()
                .is_some_and(|activity| activities.contains(activity))
        })
        .collect()
}

/// What `git spectra rerun <RUN> --from FROM` runs again: how the run was asked for, and the
/// recorded decisions of the activities before `from` (none without `from`), which the new
/// run takes again instead of asking for them.
pub fn rerun_of(
    store: &Store,
    run: &str,
    from: Option<&str>,
) -> Result<
    (
        Asked,
        std::collections::BTreeMap<String, crate::activity::Reused>,
    ),
    ReplayError,
> {
    let original = record::Original::read(store, run)?;
    let asked = original.asked.clone();
    let before: Vec<String> = match from {
        None => Vec::new(),
        Some(from) => {
            let at = asked
                .activities
                .iter()
                .position(|name| name == from)
                .ok_or_else(|| ReplayError::NotInRun {
                    activity: from.to_string(),
                    activities: asked.activities.clone(),
                })?;
            asked.activities[..at].to_vec()
        }
    };
    let reuse = original.decisions_of(&before);
    Ok((asked, reuse))
}

/// The runs a `replay --all` replays, oldest first: every run that started (at or after
/// `since`) and finished, other than one that was interrupted and the replays `--record` wrote.
pub fn completed_runs(
    store: &Store,
    since: Option<jiff::Timestamp>,
) -> Result<Vec<String>, ReplayError> {
    let of_kind = |kind: &str| crate::store::Filter {
        kind: Some(kind.to_string()),
        since,
        ..crate::store::Filter::default()
    };
    let finished: std::collections::HashSet<String> = store
        .events_oldest_first(&of_kind(crate::event::kind::RUN_FINISHED))?
        .into_iter()
        .filter(|stored| stored.event.payload["outcome"] != "interrupted")
        .filter_map(|stored| stored.event.run)
        .collect();
    Ok(store
        .events_oldest_first(&of_kind(crate::event::kind::RUN_STARTED))?
        .into_iter()
        .filter(|stored| stored.event.payload.get(REPLAY_OF).is_none())
        .filter_map(|stored| stored.event.run)
        .filter(|run| finished.contains(run))
        .collect())
}

/// Appends `report` to `store` as a run of its own (`--record`): `run.started` with command
/// `replay` and [`REPLAY_OF`] naming the run replayed, and `run.finished` with the verdict.
/// It has no activity, so the projections (which fold activities) see nothing of it; `runs`
/// lists it. Returns its run id.
pub fn record(store: &Store, report: &ReplayReport) -> Result<String, ReplayError> {
    use crate::event::{NewEvent, kind};
    let run = crate::event::new_id();
    let outcome = if report.verdict.is_same() {
        "succeeded"
    } else {
        "failed"
    };
    let verdict = serde_json::to_value(&report.verdict).unwrap_or_default();
    let started = NewEvent::new(kind::RUN_STARTED)
        .run(run.clone())
        .subject(format!("replay: run started: {}", report.run))
        .payload(serde_json::json!({
            "command": "replay",
            "input": report.run,
            "activities": [],
            "mode": "replay",
            "dry_run": false,
            "execute": false,
            REPLAY_OF: report.run,
        }));
    let finished = NewEvent::new(kind::RUN_FINISHED)
        .run(run.clone())
        .subject(format!("replay: run {outcome}"))
        .payload(serde_json::json!({
            "outcome": outcome,
            "duration_ms": report.replay_ms,
            "activities": [],
            "skipped": [],
            REPLAY_OF: report.run,
            "replay": verdict,
        }));
    store.append_batch(vec![started, finished])?;
    Ok(run)
}

/// The `run.started` field of a recorded replay naming the run it replayed.
pub const REPLAY_OF: &str = "replay_of";

/// Who decides in the replay: the record, for a run a model decided; the offline rules, for a
/// run they decided.
fn decider(repo: &Repo, asked: &Asked, recorded: &Arc<Recorded>) -> Result<Decider, ReplayError> {
    if asked.mode == "offline" {
        return Ok(Decider::Offline {
            reason: "the recorded run decided offline".into(),
        });
    }
    let layers = crate::settings::Layers::from_process(|key| repo.config_string(key));
    let settings = crate::settings::LlmSettings::resolve(&layers)?;
    let client = crate::llm::Client::replaying(settings, Arc::clone(recorded))?;
    Ok(Decider::Model(Box::new(client)))
}

fn events_of(store: &Store, run: &str) -> Result<Vec<Event>, ReplayError> {
    let filter = crate::store::Filter {
        run: Some(run.to_string()),
        ..crate::store::Filter::default()
    };
    Ok(store
        .events_oldest_first(&filter)?
        .into_iter()
        .map(|stored| stored.event)
        .filter(|event| event.run.as_deref() == Some(run))
        .collect())
}

/// The text of the blob `id`, read in process: the scratch repository sees the user's objects
/// and its own.
fn blob_text(repo: &Repo, id: &str) -> Option<String> {
    let id = gix::ObjectId::from_hex(id.as_bytes()).ok()?;
    let object = repo.gix().find_object(id).ok()?;
    Some(String::from_utf8_lossy(&object.data).into_owned())
}

/// The files whose content differs between the last commit each run made on its branch, and
/// the diff, read in the scratch repository (which sees both: it borrows the user's objects).
fn changed_files(
    scratch_root: &std::path::Path,
    recorded: &[Event],
    replayed: &[Event],
) -> (Vec<String>, String) {
    let last_commit = |events: &[Event]| {
        events
            .iter()
            .rev()
            .find(|event| event.kind == crate::event::kind::FILES_COMMITTED)
            .and_then(|event| event.payload["commit"].as_str().map(str::to_string))
    };
    let (Some(old), Some(new)) = (last_commit(recorded), last_commit(replayed)) else {
        return (Vec::new(), String::new());
    };
    let names = scratch::git_output(scratch_root, &["diff", "--name-only", &old, &new]);
    // A file that differs only in the ids and times it names (the run that wrote it) is the
    // same file.
    let content = |commit: &str, path: &str| {
        scratch::git_text(scratch_root, &["show", &format!("{commit}:{path}")])
            .map(|text| crate::llm::recorded::masked(&text))
    };
    let differing: Vec<String> = names
        .lines()
        .filter(|path| content(&old, path) != content(&new, path))
        .map(str::to_string)
        .collect();
    if differing.is_empty() {
        return (differing, String::new());
    }
    let mut args = vec!["diff", old.as_str(), new.as_str(), "--"];
    args.extend(differing.iter().map(String::as_str));
    let diff = scratch::git_output(scratch_root, &args);
    (differing, diff)
}
