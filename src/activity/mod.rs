//! The one generic agent loop.
//!
//! A run is a sequence of activities. Each activity: gathers its context (fitted to its token
//! budget) → asks the model for a decision (validated against the registry's schema; every HTTP
//! attempt an `llm.called` event) → runs the playbooks it chose (only those the registry allows)
//! → computes its quality gates from observed facts → records `activity.finished`. Every step is
//! an event; a failure at any step is recorded as that failure and the run goes on to its end.
//! Discover adds its own rules (service names, duplicates, the specification file) in
//! [`discover`]; the test activity runs the real tests and trusts only their counts
//! ([`test_run`]); activities with external effects run in dry-run unless the user passes
//! `--execute` ([`effects`]). Which activities a `run` runs is the [`planner`]'s decision.
//!
//! Outputs flow between activities through the log: each activity's context holds the latest
//! manifests of the activities before it for the same service, and the service is `--service`,
//! else the one discover chose in this run, else the one the latest discover chose.

pub mod context;
pub mod discover;
pub mod effects;
pub mod planner;
mod recorder;
pub mod service_name;
pub mod test_run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::event::{NewEvent, kind};
use crate::fold_cache::manifests;
use crate::llm::{Client, DecisionRequest};
use crate::playbook::{Action, Report, Request, Runner};
use crate::projection::manifests::{CorruptIndex, ManifestIndex};
use crate::registry::{Activity, Registry};
use crate::repo::Repo;
use crate::store::{Store, StoreError};
use crate::worktree::Worktree;

pub use context::Context;
pub use recorder::Recorder;

/// What the user asked for, beyond the input text.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The service, already normalised and validated.
    pub service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    pub dry_run: bool,
    /// Write files but leave them uncommitted.
    pub no_commit: bool,
    /// Really run the playbooks of activities with external effects (provision, deploy,
    /// monitor); without it they run in dry-run.
    pub execute: bool,
}

/// Who decides: a model, or the offline rules.
pub enum Decider {
    Model(Box<Client>),
    /// No model; `reason` says why (asked for, or nothing configured and nothing answering).
    Offline {
        reason: String,
    },
}

impl Decider {
    /// The model from the settings, or the offline rules when asked for (`offline`) or when no
    /// endpoint is configured anywhere and the default one does not answer. An endpoint the
    /// user configured is never silently replaced by the offline rules.
    pub fn choose(repo: &Repo, offline: bool) -> Result<Decider, crate::Error> {
        if offline {
            return Ok(Decider::Offline {
                reason: "--offline was given".into(),
            });
        }
        let layers = crate::settings::Layers::from_process(|key| repo.config_string(key));
        let settings = crate::settings::LlmSettings::resolve(&layers)?;
        let url = settings.url.value.clone();
        if settings.url.source == crate::settings::Source::Default && !answers(&url) {
            return Ok(Decider::Offline {
                reason: format!("no model is configured and nothing answers at {url}"),
            });
        }
        let state_dir = repo.state_dir();
        Ok(Decider::Model(Box::new(Client::new(
            settings,
            Some(&state_dir),
        )?)))
    }

    /// Why the offline rules decide, if they do.
    pub fn offline_reason(&self) -> Option<&str> {
        match self {
            Decider::Offline { reason } => Some(reason),
            Decider::Model(_) => None,
        }
    }

    fn mode(&self) -> &'static str {
        match self {
            Decider::Model(_) => "llm",
            Decider::Offline { .. } => "offline",
        }
    }
}

/// Whether something accepts TCP connections at the URL's host and port, within a moment.
fn answers(url: &reqwest::Url) -> bool {
    use std::net::ToSocketAddrs;
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(addresses) = (host, port).to_socket_addrs() else {
        return false;
    };
    addresses.into_iter().any(|address| {
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(300))
            .is_ok()
    })
}

/// Hooks for showing progress while a run works.
pub trait Progress {
    /// The model is being asked; show that something is happening.
    fn thinking(&self, _activity: &str) {}
    /// The model answered (or failed).
    fn done_thinking(&self) {}
}

/// No progress display (tests, JSON output).
pub struct Quiet;
impl Progress for Quiet {}

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

/// Why a run could not even be recorded (the log itself failed). Everything else is recorded
/// as the run's own failure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("activity `{0}` is not in the registry")]
    UnknownActivity(String),
    #[error("this command needs a work tree; {0} is a bare repository")]
    Bare(PathBuf),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("{} is in progress; git spectra changes nothing on your branch until it is finished", .0.what)]
    OperationInProgress(crate::worktree::Operation),
    #[error("cannot record the run as in progress: {0}")]
    RunLock(std::io::Error),
}

impl RunError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Store(error) => error.hint(),
            RunError::OperationInProgress(operation) => Some(format!(
                "{}, then run the same command again (or pass --dry-run to see what it would do)",
                operation.how_to_finish
            )),
            RunError::RunLock(_) => Some("check that `.git/spectra` is writable".into()),
            _ => None,
        }
    }
}

/// Everything a run needs.
pub struct Engine<'a> {
    pub repo: &'a Repo,
    pub store: &'a Store,
    pub registry: &'a Registry,
    pub decider: Decider,
    pub options: RunOptions,
    pub progress: &'a dyn Progress,
    root: PathBuf,
}

/// The state carried from one activity to the next within a run.
struct RunState<'s> {
    recorder: Recorder<'s>,
    service: Option<String>,
    /// The latest manifests and recent history: what a run's context needs, and small however
    /// long the log.
    projection: ManifestIndex,
}

impl<'a> Engine<'a> {
    pub fn new(
        repo: &'a Repo,
        store: &'a Store,
        registry: &'a Registry,
        decider: Decider,
        options: RunOptions,
        progress: &'a dyn Progress,
    ) -> Result<Engine<'a>, RunError> {
        let root = repo
            .work_tree()
            .ok_or_else(|| RunError::Bare(repo.git_dir().to_path_buf()))?
            .to_path_buf();
        Ok(Engine {
            repo,
            store,
            registry,
            decider,
            options,
            progress,
            root,
        })
    }

    /// Runs `activities` in order as one run started by `command` with `input`.
    pub fn run(
        &self,
        command: &str,
        activities: &[String],
        input: &str,
    ) -> Result<RunReport, RunError> {
        self.run_with(command, activities, None, input)
    }

    /// Runs the activities `plan` chose, recording the plan as the run's first decision.
    pub fn run_plan(
        &self,
        command: &str,
        plan: planner::Plan,
        input: &str,
    ) -> Result<RunReport, RunError> {
        let activities = plan.activities.clone();
        self.run_with(command, &activities, Some(plan), input)
    }

    fn run_with(
        &self,
        command: &str,
        activities: &[String],
        plan: Option<planner::Plan>,
        input: &str,
    ) -> Result<RunReport, RunError> {
        for name in activities {
            if self.registry.activity(name).is_none() {
                return Err(RunError::UnknownActivity(name.clone()));
            }
        }
        if !self.options.dry_run
            && let Some(operation) = crate::worktree::operation_in_progress(self.repo.gix())
        {
            return Err(RunError::OperationInProgress(operation));
        }
        let started = Instant::now();
        let run = crate::event::new_id();
        // Held until the run has recorded its end: while it is, undo leaves the run alone, and
        // once the process is gone the next command closes the run (see `crate::reconcile`).
        let _running =
            crate::run_lock::RunLock::acquire(&self.repo.state_dir(), self.repo.git_dir(), &run)
                .map_err(RunError::RunLock)?;
        let mut state = RunState {
            recorder: Recorder::new(self.store, run),
            service: self.options.service.clone(),
            projection: manifests::load(self.repo, self.store)?,
        };
        self.record_run_started(&mut state, command, activities, input);
        if let Some(plan) = &plan {
            planner::record(&mut state.recorder, plan, state.service.as_deref());
        }
        let mut reports = Vec::new();
        let mut skipped = Vec::new();
        for (index, name) in activities.iter().enumerate() {
            let report = self.run_activity(&mut state, name, input)?;
            let blocking = self.registry.activity(name).is_some_and(|a| a.blocking);
            let stop = blocking && report.outcome != Outcome::Succeeded;
            reports.push(report);
            if stop {
                skipped = activities[index + 1..].to_vec();
                break;
            }
            // Later activities see this one's manifest; after the last one, nobody looks, and
            // its events go out with `run.finished`.
            if index + 1 < activities.len() {
                state.recorder.flush()?;
                state.projection = manifests::load(self.repo, self.store)?;
            }
        }
        let outcome = run_outcome(&reports);
        let duration_ms = millis(started);
        self.record_run_finished(
            &mut state,
            command,
            outcome,
            duration_ms,
            &reports,
            &skipped,
        )?;
        // The next command then finds the manifest index at the tip.
        manifests::remember_appended(self.repo, &mut state.projection, state.recorder.appended());
        Ok(RunReport {
            run: state.recorder.run().to_string(),
            command: command.to_string(),
            mode: self.decider.mode().to_string(),
            dry_run: self.options.dry_run,
            outcome,
            duration_ms,
            activities: reports,
            plan,
            skipped,
        })
    }

    fn record_run_started(
        &self,
        state: &mut RunState<'_>,
        command: &str,
        activities: &[String],
        input: &str,
    ) {
        let mut run_started = NewEvent::new(kind::RUN_STARTED)
            .subject(format!("{command}: run started: {}", first_words(input)))
            .payload(json!({
                "command": command,
                "input": input,
                "activities": activities,
                "mode": self.decider.mode(),
                "dry_run": self.options.dry_run,
                "execute": self.options.execute,
            }));
        if let Some(service) = &state.service {
            run_started = run_started.service(service.clone());
        }
        state.recorder.record(run_started);
    }

    fn record_run_finished(
        &self,
        state: &mut RunState<'_>,
        command: &str,
        outcome: Outcome,
        duration_ms: u64,
        reports: &[ActivityReport],
        skipped: &[String],
    ) -> Result<(), RunError> {
        let activities: Vec<Value> = reports
            .iter()
            .map(|r| json!({"activity": r.activity, "outcome": r.outcome}))
            .collect();
        let mut finished = NewEvent::new(kind::RUN_FINISHED)
            .subject(format!("{command}: run {}", outcome_word(outcome)))
            .payload(json!({
                "outcome": if outcome == Outcome::Succeeded { "succeeded" } else { "failed" },
                "duration_ms": duration_ms,
                "activities": activities,
                "skipped": skipped,
            }));
        if let Some(service) = &state.service {
            finished = finished.service(service.clone());
        }
        state.recorder.record(finished);
        state.recorder.flush()?;
        Ok(())
    }

    fn run_activity(
        &self,
        state: &mut RunState<'_>,
        name: &str,
        input: &str,
    ) -> Result<ActivityReport, RunError> {
        let started = Instant::now();
        let definition = self
            .registry
            .activity(name)
            .ok_or_else(|| RunError::UnknownActivity(name.to_string()))?;
        let chosen = state.service.clone();
        let (service, mut context) =
            manifests::query_loaded(&mut state.projection, self.repo, self.store, |index| {
                // Discover chooses a service; every other activity works on the one chosen last.
                let service = match &chosen {
                    None if name != discover::NAME => latest_discovered_service(index)?,
                    chosen => chosen.clone(),
                };
                let context = context::gather(
                    self.repo.gix(),
                    &self.root,
                    index,
                    self.registry,
                    definition,
                    service.as_deref(),
                )?;
                Ok((service, context))
            })?;
        state.service = service;
        if let Decider::Model(client) = &self.decider {
            let budget = client
                .settings()
                .context_window
                .value
                .saturating_sub(definition.token_budget);
            context.fit(budget, |context| {
                render(definition, context, input, state.service.as_deref())
            });
        }
        let mut started_event = NewEvent::new(kind::ACTIVITY_STARTED)
            .activity(name)
            .payload(json!({"input": input, "context": context.summary()}));
        if let Some(service) = &state.service {
            started_event = started_event.service(service.clone());
        }
        state.recorder.record(started_event);
        state.recorder.flush()?;
        crate::test_hook::point("activity.started");

        let mut work = ActivityWork::new(state.service.clone());
        let blocked = if name == discover::NAME {
            discover::before_decision(self, &mut work)
        } else {
            false
        };
        if !blocked && work.errors.is_empty() {
            self.decide_and_act(state, definition, &context, input, &mut work)?;
        }
        self.finish_activity(state, definition, work, started)
    }

    fn decide_and_act(
        &self,
        state: &mut RunState<'_>,
        definition: &Activity,
        context: &Context,
        input: &str,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        let Some(mut decision) = self.decide(state, definition, context, input, None, work)? else {
            return Ok(());
        };
        if definition.name == discover::NAME {
            let Some(checked) =
                discover::after_decision(self, state, definition, context, input, decision, work)?
            else {
                return Ok(());
            };
            decision = checked;
            state.service = work.service.clone();
        }
        let mut choices = decision
            .get("playbooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let name = definition.name.as_str();
        if name == test_run::NAME {
            test_run::ensure_tests_chosen(&mut choices);
        }
        let external = effects::is_external(name);
        let dry_run = self.options.dry_run || (external && !self.options.execute);
        for choice in &choices {
            self.run_playbook(state, name, choice, dry_run, work)?;
        }
        if external {
            work.extra_outputs
                .insert("effects".into(), effects::summary(&work.playbooks));
        }
        if name == test_run::NAME {
            test_run::observe(dry_run, work);
        }
        work.decision = decision;
        if definition.name == discover::NAME && work.errors.is_empty() {
            discover::write_outputs(self, state, work)?;
        }
        Ok(())
    }

    /// Asks the model (or the offline rules) for a decision and records it. `None` means the
    /// failure is already recorded in `work`.
    fn decide(
        &self,
        state: &mut RunState<'_>,
        definition: &Activity,
        context: &Context,
        input: &str,
        correction: Option<&str>,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        let name = &definition.name;
        let (decision, mode, extra, causes) = match &self.decider {
            Decider::Offline { .. } => {
                match self.offline_decision(name, input, state.service.as_deref()) {
                    Ok(decision) => (decision, "offline", json!({}), Vec::new()),
                    Err(error) => {
                        work.errors.push(error);
                        return Ok(None);
                    }
                }
            }
            Decider::Model(client) => {
                let schema = self.registry.decision_schema(name)?;
                let (system, mut user) =
                    render(definition, context, input, state.service.as_deref());
                if let Some(correction) = correction {
                    user.push_str("\n\n");
                    user.push_str(correction);
                }
                let request = DecisionRequest {
                    system,
                    user,
                    schema,
                    schema_name: format!("{name}_decision"),
                    max_tokens: Some(definition.token_budget),
                };
                // Everything recorded so far is in the log before the model is asked: a call
                // can take minutes, and a crash then must not lose what led to it.
                state.recorder.flush()?;
                self.progress.thinking(name);
                let answer = client.decide(&request);
                self.progress.done_thinking();
                let model = client.settings().model.value.clone();
                match answer {
                    Ok(decided) => {
                        let causes = state.recorder.record_llm_attempts(
                            Some(name),
                            state.service.as_deref(),
                            &model,
                            &decided.records,
                        );
                        let extra = json!({"format": decided.format, "repairs": decided.repairs});
                        (decided.value, "llm", extra, causes)
                    }
                    Err(failure) => {
                        state.recorder.record_llm_attempts(
                            Some(name),
                            state.service.as_deref(),
                            &model,
                            &failure.records,
                        );
                        state.recorder.flush()?;
                        work.errors.push(ActivityError::new(
                            llm_reason(&failure.error),
                            failure.error.to_string(),
                        ));
                        return Ok(None);
                    }
                }
            }
        };
        let mut payload = json!({"decision": decision, "mode": mode});
        if let (Some(object), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        let mut event = NewEvent::new(kind::DECISION_MADE)
            .activity(name.clone())
            .subject(decision_subject(name, &decision))
            .payload(payload);
        event.causes = causes;
        if let Some(service) = &state.service {
            event = event.service(service.clone());
        }
        // Appended with whatever comes next, before its first effect (a playbook, a file, a
        // commit, another model call) or at the end of the activity.
        work.decision_event = Some(state.recorder.record(event));
        Ok(Some(decision))
    }

    /// Runs one playbook the decision chose, recording `playbook.started` and `.finished`.
    fn run_playbook(
        &self,
        state: &mut RunState<'_>,
        activity: &str,
        choice: &Value,
        dry_run: bool,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        let id = choice.get("id").and_then(Value::as_str).unwrap_or_default();
        let inputs = choice.get("inputs").cloned().unwrap_or(Value::Null);
        let runner = match Runner::new(self.registry, &self.root) {
            Ok(runner) => runner,
            Err(error) => {
                work.errors
                    .push(ActivityError::new("playbook_failed", error.to_string()));
                return Ok(());
            }
        };
        let run_id = state.recorder.run().to_string();
        let started_id = crate::event::new_id();
        let request = Request {
            activity,
            playbook: id,
            inputs: &inputs,
            action: Action::Run,
            run_id: &run_id,
            event_id: &started_id,
            dry_run,
        };
        // Refused before it starts: not allowed, bad inputs, a path out of the repository.
        let invocation = match runner.prepare(&request) {
            Ok(invocation) => invocation,
            Err(error) => {
                work.errors
                    .push(ActivityError::new("playbook_refused", error.to_string()));
                work.playbooks.push(PlaybookSummary {
                    playbook: id.to_string(),
                    outcome: "refused".into(),
                    message: error.to_string(),
                });
                return Ok(());
            }
        };
        let mut started = NewEvent::new(kind::PLAYBOOK_STARTED)
            .activity(activity)
            .subject(format!(
                "{activity}: {} playbook {id}",
                if dry_run { "would run" } else { "runs" }
            ))
            .payload(json!({
                "playbook": id,
                "action": "run",
                "argv": invocation.argv,
                "inputs": inputs,
                "dry_run": dry_run,
            }));
        started.id = started_id.clone();
        if let Some(service) = &state.service {
            started = started.service(service.clone());
        }
        state.recorder.record(started);
        // What led to a playbook is in the log before it acts. A built-in that only reads acts
        // on nothing, so its events wait for the next effect.
        if !runner.reads_only(&invocation) {
            state.recorder.flush()?;
        }
        let report = match runner.run(&request) {
            Ok(report) => report,
            Err(error) => {
                work.errors
                    .push(ActivityError::new("playbook_failed", error.to_string()));
                return Ok(());
            }
        };
        // Appended with the next playbook's start, or before the activity's next effect.
        self.record_playbook_finished(state, activity, &started_id, &report);
        if !report.succeeded() {
            work.errors
                .push(ActivityError::new("playbook_failed", report.message()));
        }
        work.playbooks.push(PlaybookSummary {
            playbook: id.to_string(),
            outcome: serde_json::to_value(report.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: report.message(),
        });
        work.playbook_reports.push((id.to_string(), report));
        Ok(())
    }

    fn record_playbook_finished(
        &self,
        state: &mut RunState<'_>,
        activity: &str,
        started_id: &str,
        report: &Report,
    ) {
        let mut event = report.finished_event(
            activity,
            started_id,
            format!("{activity}: {}", report.message()),
        );
        if let Some(service) = &state.service {
            event = event.service(service.clone());
        }
        state.recorder.record(event);
    }

    fn finish_activity(
        &self,
        state: &mut RunState<'_>,
        definition: &Activity,
        mut work: ActivityWork,
        started: Instant,
    ) -> Result<ActivityReport, RunError> {
        work.facts
            .entry("playbooks_succeeded".into())
            .or_insert_with(|| {
                work.errors
                    .iter()
                    .all(|e| !e.reason.starts_with("playbook"))
            });
        let gates: BTreeMap<String, bool> = definition
            .quality_gates
            .iter()
            .map(|gate| {
                let result = gate.evaluate(&work.decision, &work.facts);
                (result.name, result.passed && work.decision.is_object())
            })
            .collect();
        let gates_passed = gates.values().filter(|passed| **passed).count();
        let outcome = if work.blocked {
            Outcome::Blocked
        } else if work.errors.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let outputs = work.outputs();
        let duration_ms = millis(started);
        let mut event = NewEvent::new(kind::ACTIVITY_FINISHED)
            .activity(definition.name.clone())
            .subject(format!(
                "{}: {}{} ({gates_passed}/{} gates)",
                definition.name,
                outcome_word(outcome),
                work.service
                    .as_deref()
                    .map(|s| format!(" for {s}"))
                    .unwrap_or_default(),
                gates.len()
            ))
            .payload(json!({
                "outcome": outcome,
                "duration_ms": duration_ms,
                "outputs": outputs,
                "quality_gates": gates,
                "gates_passed": gates_passed,
                "gates_total": gates.len(),
                "errors": work.errors,
            }));
        if let Some(id) = &work.decision_event {
            event = event.cause(id.clone());
        }
        if let Some(service) = &work.service {
            event = event.service(service.clone());
        }
        // Appended with `run.finished`, or before the next activity reads the log.
        state.recorder.record(event);
        Ok(ActivityReport {
            activity: definition.name.clone(),
            service: work.service.clone(),
            outcome,
            duration_ms,
            outputs,
            gates_total: gates.len(),
            quality_gates: gates,
            gates_passed,
            errors: work.errors,
            playbooks: work.playbooks,
            commit: work.commit.map(|c| c.commit),
        })
    }

    /// The decision an activity makes without a model, where it has rules that need none.
    fn offline_decision(
        &self,
        activity: &str,
        input: &str,
        service: Option<&str>,
    ) -> Result<Value, ActivityError> {
        match activity {
            discover::NAME => Ok(discover::offline_decision(self, input, service)),
            test_run::NAME => Ok(test_run::offline_decision()),
            _ => Err(ActivityError::new(
                "offline_unsupported",
                format!("{activity} needs a model; configure one (git spectra doctor shows how)"),
            )),
        }
    }

    pub(crate) fn worktree(&self) -> Worktree {
        Worktree::new(&self.root).with_repo(self.repo.gix().clone())
    }

    pub(crate) fn root(&self) -> &std::path::Path {
        &self.root
    }
}

/// What one activity has found and done so far.
pub(crate) struct ActivityWork {
    pub service: Option<String>,
    pub decision: Value,
    pub decision_event: Option<String>,
    pub facts: BTreeMap<String, bool>,
    pub errors: Vec<ActivityError>,
    pub blocked: bool,
    pub playbooks: Vec<PlaybookSummary>,
    pub playbook_reports: Vec<(String, Report)>,
    /// Extra outputs beyond the decision (registry check, specification, ...).
    pub extra_outputs: serde_json::Map<String, Value>,
    pub commit: Option<crate::worktree::Committed>,
}

impl ActivityWork {
    fn new(service: Option<String>) -> ActivityWork {
        ActivityWork {
            service,
            decision: Value::Null,
            decision_event: None,
            facts: BTreeMap::new(),
            errors: Vec::new(),
            blocked: false,
            playbooks: Vec::new(),
            playbook_reports: Vec::new(),
            extra_outputs: serde_json::Map::new(),
            commit: None,
        }
    }

    /// The activity's result: its decision (without the playbook choices) plus what it observed.
    fn outputs(&self) -> Value {
        let mut outputs = match &self.decision {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        outputs.remove("playbooks");
        if let Some(service) = &self.service {
            outputs.insert("service_name".into(), json!(service));
        }
        outputs.extend(self.extra_outputs.clone());
        Value::Object(outputs)
    }
}

/// Succeeded when every activity did; blocked when one was blocked; else failed.
fn run_outcome(reports: &[ActivityReport]) -> Outcome {
    if reports.iter().all(|r| r.outcome == Outcome::Succeeded) {
        Outcome::Succeeded
    } else if reports.iter().any(|r| r.outcome == Outcome::Blocked) {
        Outcome::Blocked
    } else {
        Outcome::Failed
    }
}

/// The service the latest completed discover chose, for activities run without one.
fn latest_discovered_service(projection: &ManifestIndex) -> Result<Option<String>, CorruptIndex> {
    Ok(projection
        .try_manifests(Some(discover::NAME), None)?
        .into_iter()
        .filter(|manifest| manifest.status == "complete")
        .max_by(|a, b| a.completed_at.cmp(&b.completed_at))
        .and_then(|manifest| manifest.service))
}

/// The system and user prompts of `definition` with this context.
fn render(
    definition: &Activity,
    context: &Context,
    input: &str,
    service: Option<&str>,
) -> (String, String) {
    let mut values = context.variables();
    values.insert("activity", definition.name.clone());
    values.insert("input", input.to_string());
    values.insert(
        "service",
        service
            .map(str::to_string)
            .unwrap_or_else(|| "(not chosen yet)".into()),
    );
    definition.prompts.render(&values)
}

fn llm_reason(error: &crate::llm::LlmError) -> &'static str {
    use crate::llm::LlmError as E;
    match error {
        E::Unreachable { .. } | E::DeadlineExceeded { .. } | E::RetriesExhausted { .. } => {
            "llm_unreachable"
        }
        E::InvalidOutput { .. } | E::MalformedResponse { .. } => "invalid_decision",
        E::PromptTooLarge { .. } | E::ContextLength { .. } => "prompt_too_large",
        _ => "llm_refused",
    }
}

fn decision_subject(activity: &str, decision: &Value) -> String {
    let playbooks: Vec<&str> = decision
        .get("playbooks")
        .and_then(Value::as_array)
        .map(|choices| {
            choices
                .iter()
                .filter_map(|choice| choice.get("id").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match (
        decision.get("service_name").and_then(Value::as_str),
        playbooks.is_empty(),
    ) {
        (Some(service), true) => format!("{activity}: decided on {service}"),
        (Some(service), false) => {
            format!("{activity}: chose {} for {service}", playbooks.join(", "))
        }
        (None, true) => format!("{activity}: decided"),
        (None, false) => format!("{activity}: chose {}", playbooks.join(", ")),
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Blocked => "blocked",
    }
}

fn first_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(12).collect();
    words.join(" ")
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
