//! One activity of a run: gather the context, decide (model or offline rules), apply the
//! activity's own rules ([`super::rules`]), run the chosen playbooks, compute the gates and
//! record `activity.finished`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::decider::llm_reason;
use super::recorder::Recorder;
use super::rules::{self, Rules, Step};
use super::run::{RunState, millis};
use super::{
    ActivityError, ActivityReport, Context, Decider, Engine, Outcome, PlaybookSummary, RunError,
    context, effects,
};
use crate::event::{NewEvent, kind};
use crate::fold_cache::manifests;
use crate::llm::{AttemptRecord, DecisionRequest};
use crate::playbook::Report;
use crate::projection::manifests::{CorruptIndex, ManifestIndex};
use crate::registry::{Activity, Evidence, GateLevel, GateResult, PlaybookKind, Registry, Verdict};
use crate::store::StoreError;

/// A model's answer (the value and how it was obtained) or why there is none, and the ids of
/// the attempts recorded for it.
pub(super) type AnswerAndAttempts = (Result<(Value, Value), crate::llm::LlmError>, Vec<String>);

/// The reply budget of a follow-up question about one field: a short value and its key.
const FOLLOW_UP_TOKENS: u32 = 256;

impl Engine<'_> {
    pub(super) fn run_activity(
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
        let rules = rules::of(definition);
        let chosen = state.service.clone();
        let (service, mut context) =
            manifests::query_loaded(&mut state.projection, self.repo, self.store, |index| {
                // Discover chooses a service; every other activity works on the one chosen last.
                let service = match &chosen {
                    None if !rules.chooses_service() => {
                        latest_chosen_service(self.registry, index)?
                    }
                    chosen => chosen.clone(),
                };
                let context = context::gather(
                    self.repo.gix(),
                    &self.root,
                    index,
                    self.registry,
                    definition,
                    &context::Query {
                        input,
                        service: service.as_deref(),
                    },
                    self.offering(name),
                )?;
                Ok((service, context))
            })?;
        state.service = service;
        let mut rerank_attempts = Vec::new();
        // A shortlist longer than the offer is kept only for a model to re-rank.
        if let Decider::Model(client) = &self.decider
            && context.offered.is_shortlist()
        {
            let (offer, attempts) =
                self.rerank(state, client, definition, input, &context.offered)?;
            context.offer(self.registry, offer);
            rerank_attempts = attempts;
        }
        self.fit_context(definition, &mut context, input, state.service.as_deref());
        let mut started_event = NewEvent::new(kind::ACTIVITY_STARTED)
            .activity(name)
            .payload(json!({"input": input, "context": context.summary()}));
        started_event.causes = rerank_attempts;
        if let Some(service) = &state.service {
            started_event = started_event.service(service.clone());
        }
        state.recorder.record(started_event);
        state.recorder.flush()?;
        crate::test_hook::point("activity.started");

        let mut work = ActivityWork::new(name, state.service.clone());
        rules.before_decision(self, &mut work);
        if work.errors.is_empty() {
            let step = Step {
                definition,
                context: &context,
                input,
            };
            self.decide_and_act(state, rules, &step, &mut work)?;
        }
        self.finish_activity(state, definition, work, started)
    }

    /// Drops whole items of `context`, least relevant first, until the prompt leaves the
    /// model room for its answer (only a model has a context window).
    fn fit_context(
        &self,
        definition: &Activity,
        context: &mut Context,
        input: &str,
        service: Option<&str>,
    ) {
        if let Decider::Model(client) = &self.decider {
            let budget = client
                .settings()
                .context_window
                .value
                .saturating_sub(definition.token_budget);
            context.fit(budget, |context| {
                render(definition, context, input, service)
            });
        }
    }

    fn decide_and_act(
        &self,
        state: &mut RunState<'_>,
        rules: &dyn Rules,
        step: &Step<'_>,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        let Some(decision) = self.decide(state, step, work)? else {
            return Ok(());
        };
        let Some(decision) = self.follow_runbooks(state, step, decision, work)? else {
            return Ok(());
        };
        let Some(decision) = rules.after_decision(self, state, step, decision, work)? else {
            return Ok(());
        };
        if rules.chooses_service() {
            state.service = work.service.clone();
        }
        let mut choices = decision
            .get("playbooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rules.adjust_choices(&mut choices);
        // A runbook runs nothing itself: its steps were the second decision's context.
        choices.retain(|choice| !is_runbook(self.registry, choice));
        let definition = step.definition;
        effects::adjust_choices(self.registry, definition, &mut choices);
        effects::pick_only_environment(self.registry, &self.root, definition, &mut choices);
        let name = definition.name.as_str();
        let dry_run = self.options.dry_run || (definition.external && !self.options.execute);
        let run = state.recorder.run().to_string();
        let release = self.plan_release(definition, &decision, &run, dry_run, &mut choices, work);
        for choice in &choices {
            self.run_playbook(state, name, choice, dry_run, work)?;
        }
        self.finish_effect(state, definition, release, dry_run, work)?;
        if definition.external {
            work.extra_outputs
                .insert("effects".into(), effects::summary(&work.playbooks));
        }
        rules.observe(dry_run, work);
        work.decision = decision;
        // The document records the outcome, so the gates are judged before it is written. A
        // decision whose playbooks failed is still a result a reviewer reads (outcome failed).
        work.judge(definition, self.decider.judges());
        if !work.blocked {
            rules.write_outputs(self, state, work)?;
        }
        Ok(())
    }

    /// When `decision` chose runbooks, asks the model once more with their steps in the
    /// prompt ("follow these steps") and returns that decision instead: its plan and the
    /// executable playbooks it names are how a runbook is carried out. A runbook chosen in the
    /// second decision is not followed again. `None` means the failure is recorded in `work`.
    fn follow_runbooks(
        &self,
        state: &mut RunState<'_>,
        step: &Step<'_>,
        decision: Value,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        let chosen = chosen_runbooks(self.registry, &decision);
        if chosen.is_empty() || !matches!(self.decider, Decider::Model(_)) {
            return Ok(Some(decision));
        }
        let mut context = step.context.clone();
        context.follow_runbooks(&chosen);
        let service = state.service.clone();
        self.fit_context(
            step.definition,
            &mut context,
            step.input,
            service.as_deref(),
        );
        work.extra_outputs.insert(
            "runbooks_followed".into(),
            json!(chosen.iter().map(|(id, _)| id).collect::<Vec<_>>()),
        );
        let followed = Step {
            definition: step.definition,
            context: &context,
            input: step.input,
        };
        self.decide(state, &followed, work)
    }

    /// Asks the model (or the offline rules) for a decision and records it. `None` means the
    /// failure is already recorded in `work`.
    pub(crate) fn decide(
        &self,
        state: &mut RunState<'_>,
        step: &Step<'_>,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        let Step {
            definition,
            context,
            input,
        } = *step;
        let name = &definition.name;
        if let Some(reused) = self.options.reuse.get(name) {
            let extra = json!({"reused_from": reused.event});
            return Ok(Some(self.record_decision(
                state,
                name,
                reused.decision.clone(),
                &reused.mode,
                extra,
                Vec::new(),
                work,
            )));
        }
        let (decision, mode, extra, causes) = match &self.decider {
            Decider::Offline { .. } => {
                let rules = rules::of(definition);
                match rules.offline_decision(self, definition, input, state.service.as_deref()) {
                    Ok(decision) => (decision, "offline", json!({}), Vec::new()),
                    Err(error) => {
                        work.errors.push(error);
                        return Ok(None);
                    }
                }
            }
            Decider::Model(client) => {
                let schema = self
                    .registry
                    .decision_schema_offering(name, Some(&context.offered_ids()))?;
                let (system, user) = render(definition, context, input, state.service.as_deref());
                // What the largest valid decision can take, within the activity's budget.
                let max_tokens = crate::llm::estimate::max_tokens(&schema, definition.token_budget);
                let request = DecisionRequest {
                    system,
                    user,
                    schema,
                    schema_name: format!("{name}_decision"),
                    max_tokens: Some(max_tokens),
                };
                match self.ask_model(state, client, name, &request, Vec::new(), work)? {
                    Some((decision, extra, causes)) => (decision, "llm", extra, causes),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(self.record_decision(
            state, name, decision, mode, extra, causes, work,
        )))
    }

    /// Asks the model for a new value of its decision's top-level `field` alone, with that
    /// field's schema, after its `decision` and the `question` (which says what was wrong):
    /// the same prompts, then the decision as the model's answer, then the question. The
    /// attempts are recorded as `llm.called` and the decision with the new value as
    /// `decision.made`, which is returned. `None` means the failure is recorded in `work`.
    /// The answer is the model's own: it is never coerced, and the caller checks its rules.
    pub(crate) fn follow_up(
        &self,
        state: &mut RunState<'_>,
        step: &Step<'_>,
        decision: &Value,
        field: &str,
        question: &str,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        let Decider::Model(client) = &self.decider else {
            return Ok(None);
        };
        let definition = step.definition;
        let name = &definition.name;
        let decision_schema = self
            .registry
            .decision_schema_offering(name, Some(&step.context.offered_ids()))?;
        let field_schema = crate::llm::repair::sub_schema(&decision_schema, &format!("/{field}"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let (system, user) = render(
            definition,
            step.context,
            step.input,
            state.service.as_deref(),
        );
        let request = DecisionRequest {
            system,
            user,
            schema: json!({
                "type": "object",
                "properties": {field: field_schema},
                "required": [field],
                "additionalProperties": false,
            }),
            schema_name: format!("{name}_{field}"),
            max_tokens: Some(FOLLOW_UP_TOKENS.min(definition.token_budget)),
        };
        let earlier = vec![
            json!({"role": "assistant", "content": decision.to_string()}),
            json!({"role": "user", "content": question}),
        ];
        let Some((answer, mut extra, causes)) =
            self.ask_model(state, client, name, &request, earlier, work)?
        else {
            return Ok(None);
        };
        let mut amended = decision.clone();
        amended[field] = answer[field].clone();
        extra["follow_up"] = json!(field);
        Ok(Some(self.record_decision(
            state, name, amended, "llm", extra, causes, work,
        )))
    }

    /// Asks the model through `client` and records every attempt as `llm.called`: the answer,
    /// how it was obtained and the attempts' event ids, or `None` with the failure in `work`.
    fn ask_model(
        &self,
        state: &mut RunState<'_>,
        client: &crate::llm::Client,
        name: &str,
        request: &DecisionRequest,
        earlier: Vec<Value>,
        work: &mut ActivityWork,
    ) -> Result<Option<(Value, Value, Vec<String>)>, RunError> {
        let (answer, causes) = self.ask_model_recorded(state, client, name, request, earlier)?;
        match answer {
            Ok((value, extra)) => Ok(Some((value, extra, causes))),
            Err(error) => {
                work.errors
                    .push(ActivityError::new(llm_reason(&error), error.to_string()));
                Ok(None)
            }
        }
    }

    /// Asks the model through `client` and records every attempt as `llm.called`: the answer
    /// and how it was obtained, or why there is none, with the attempts' event ids either way.
    pub(super) fn ask_model_recorded(
        &self,
        state: &mut RunState<'_>,
        client: &crate::llm::Client,
        name: &str,
        request: &DecisionRequest,
        earlier: Vec<Value>,
    ) -> Result<AnswerAndAttempts, RunError> {
        // Everything recorded so far is in the log before the model is asked: a call
        // can take minutes, and a crash then must not lose what led to it.
        state.recorder.flush()?;
        self.progress.thinking(name);
        let model = client.settings().model.value.clone();
        let watcher = AttemptsAppended {
            progress: self.progress,
            activity: name,
            service: state.service.as_deref(),
            model: &model,
            recorder: RefCell::new(&mut state.recorder),
            appended: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
        };
        let answer = client.follow_up(request, earlier, &watcher);
        self.progress.done_thinking();
        let (answer, records) = match answer {
            Ok(decided) => {
                let extra = json!({"format": decided.format, "repairs": decided.repairs});
                (Ok((decided.value, extra)), decided.records)
            }
            Err(failure) => (Err(failure.error), failure.records),
        };
        let causes = watcher.append_rest(&records)?;
        if answer.is_err() {
            state.recorder.flush()?;
        }
        Ok((answer, causes))
    }

    /// Records `decision.made` for `decision`, caused by the attempts that made it.
    #[allow(clippy::too_many_arguments)] // each is one part of the event
    fn record_decision(
        &self,
        state: &mut RunState<'_>,
        name: &str,
        decision: Value,
        mode: &str,
        extra: Value,
        causes: Vec<String>,
        work: &mut ActivityWork,
    ) -> Value {
        let mut payload = json!({"decision": decision, "mode": mode});
        if let (Some(object), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        let mut event = NewEvent::new(kind::DECISION_MADE)
            .activity(name.to_owned())
            .subject(decision_subject(name, &decision))
            .payload(payload);
        event.causes = causes;
        if let Some(service) = &state.service {
            event = event.service(service.clone());
        }
        // Appended with whatever comes next, before its first effect (a playbook, a file, a
        // commit, another model call) or at the end of the activity.
        work.decision_event = Some(state.recorder.record(event));
        decision
    }

    pub(super) fn finish_activity(
        &self,
        state: &mut RunState<'_>,
        definition: &Activity,
        mut work: ActivityWork,
        started: Instant,
    ) -> Result<ActivityReport, RunError> {
        work.judge(definition, self.decider.judges());
        let gates = work.gate_map();
        let gates_passed = work.gates.iter().filter(|gate| gate.passed).count();
        let outcome = work.outcome();
        let mut outputs = work.outputs();
        // What the report shows is what the log holds: no secret a playbook was given or printed.
        self.scrubber.value(&mut outputs);
        for error in &mut work.errors {
            error.message = self.scrubber.text(&error.message);
        }
        for playbook in &mut work.playbooks {
            playbook.message = self.scrubber.text(&playbook.message);
        }
        let duration_ms = millis(started);
        let mut event = NewEvent::new(kind::ACTIVITY_FINISHED)
            .activity(definition.name.clone())
            .subject(format!(
                "{}: {}{} ({gates_passed}/{} gates)",
                definition.name,
                outcome,
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
                "gates": work.gate_details(),
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
            gates: work.gates,
            errors: work.errors,
            playbooks: work.playbooks,
            commit: work.commit.map(|c| c.commit),
        })
    }
}

/// What one activity has found and done so far.
pub(crate) struct ActivityWork {
    /// The activity's name, as events and files name it.
    pub activity: String,
    pub service: Option<String>,
    pub decision: Value,
    pub decision_event: Option<String>,
    pub facts: BTreeMap<String, bool>,
    /// The gates as last judged ([`ActivityWork::judge`]).
    pub gates: Vec<GateResult>,
    pub errors: Vec<ActivityError>,
    pub blocked: bool,
    pub playbooks: Vec<PlaybookSummary>,
    pub playbook_reports: Vec<(String, Report)>,
    /// Extra outputs beyond the decision (registry check, specification, ...).
    pub extra_outputs: serde_json::Map<String, Value>,
    pub commit: Option<crate::worktree::Committed>,
}

impl ActivityWork {
    /// The JSON object `playbook` printed on its last run in this activity, if it printed one.
    pub(crate) fn last_printed(&self, playbook: &str) -> Option<Value> {
        let (_, report) = self
            .playbook_reports
            .iter()
            .rev()
            .find(|(id, _)| id == playbook)?;
        serde_json::from_slice::<Value>(&report.stdout.bytes)
            .ok()
            .filter(Value::is_object)
    }

    pub(super) fn new(activity: &str, service: Option<String>) -> ActivityWork {
        ActivityWork {
            activity: activity.to_string(),
            service,
            decision: Value::Null,
            decision_event: None,
            facts: BTreeMap::new(),
            gates: Vec::new(),
            errors: Vec::new(),
            blocked: false,
            playbooks: Vec::new(),
            playbook_reports: Vec::new(),
            extra_outputs: serde_json::Map::new(),
            commit: None,
        }
    }

    /// Judges every gate of `definition` on the decision and the facts; the decision counts
    /// only when `decision_judged` (a model made it).
    pub(super) fn judge(&mut self, definition: &Activity, decision_judged: bool) {
        self.facts
            .entry("playbooks_succeeded".into())
            .or_insert_with(|| self.errors.iter().all(|e| !e.is_playbook_error()));
        let evidence = Evidence {
            decision: &self.decision,
            decision_judged,
            facts: &self.facts,
        };
        self.gates = definition
            .quality_gates
            .iter()
            .map(|gate| gate.judge(&evidence))
            .collect();
    }

    /// How the activity ends as things stand: blocked by a rule, failed on an error,
    /// incomplete when a required gate failed, else succeeded.
    pub(crate) fn outcome(&self) -> Outcome {
        if self.blocked {
            Outcome::Blocked
        } else if !self.errors.is_empty() {
            Outcome::Failed
        } else if self.failed_required_gates().next().is_some() {
            Outcome::Incomplete
        } else {
            Outcome::Succeeded
        }
    }

    /// The required gates that failed.
    pub(crate) fn failed_required_gates(&self) -> impl Iterator<Item = &GateResult> {
        self.gates
            .iter()
            .filter(|gate| gate.verdict == Verdict::Failed && gate.level == GateLevel::Required)
    }

    /// Each gate and whether it passed (`quality_gates` in `activity.finished`).
    fn gate_map(&self) -> BTreeMap<String, bool> {
        self.gates
            .iter()
            .map(|gate| (gate.name.clone(), gate.passed))
            .collect()
    }

    /// Each gate's verdict, level, basis and failures (`gates` in `activity.finished`).
    fn gate_details(&self) -> Value {
        self.gates
            .iter()
            .map(|gate| {
                let detail = json!({
                    "result": gate.verdict,
                    "level": gate.level,
                    "basis": gate.basis,
                    "failures": gate.failures,
                });
                (gate.name.clone(), detail)
            })
            .collect::<serde_json::Map<String, Value>>()
            .into()
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

/// The service the latest completed activity that chooses services (discover) chose, for
/// activities run without one.
fn latest_chosen_service(
    registry: &Registry,
    projection: &ManifestIndex,
) -> Result<Option<String>, CorruptIndex> {
    let mut latest = None;
    for name in rules::service_choosers(registry) {
        latest = projection
            .try_manifests(Some(name), None)?
            .into_iter()
            .filter(crate::projection::Manifest::has_result)
            .chain(latest)
            .max_by(|a, b| a.completed_at.cmp(&b.completed_at));
    }
    Ok(latest.and_then(|manifest| manifest.service))
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
        service.map_or_else(|| "(not chosen yet)".into(), str::to_string),
    );
    definition.prompts.render(&values)
}

/// Whether a playbook choice of a decision names a runbook.
fn is_runbook(registry: &Registry, choice: &Value) -> bool {
    choice
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| registry.playbook(id))
        .is_some_and(|playbook| playbook.kind() == PlaybookKind::Runbook)
}

/// The runbooks `decision` chose, each (id, steps), in the order chosen.
fn chosen_runbooks(registry: &Registry, decision: &Value) -> Vec<(String, String)> {
    let choices = decision.get("playbooks").and_then(Value::as_array);
    let mut chosen: Vec<(String, String)> = Vec::new();
    for choice in choices.into_iter().flatten() {
        let Some(playbook) = choice
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| registry.playbook(id))
            .filter(|playbook| playbook.kind() == PlaybookKind::Runbook)
        else {
            continue;
        };
        if !chosen.iter().any(|(id, _)| *id == playbook.id) {
            let steps = playbook.runbook.clone().unwrap_or_default();
            chosen.push((playbook.id.clone(), steps));
        }
    }
    chosen
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

/// Appends each attempt of a decision as `llm.called` as soon as it is final, rather than
/// when the decision ends: a decision on a slow model can take many minutes over several
/// attempts, and a crash in a later one must not lose the earlier ones. Also shows progress.
struct AttemptsAppended<'a, 's> {
    progress: &'a dyn super::Progress,
    activity: &'a str,
    service: Option<&'a str>,
    model: &'a str,
    recorder: RefCell<&'a mut Recorder<'s>>,
    /// The ids of the attempts appended so far, in order.
    appended: RefCell<Vec<String>>,
    /// The first append that failed; the decision goes on and the error is returned after.
    failed: RefCell<Option<StoreError>>,
}

impl AttemptsAppended<'_, '_> {
    /// Queues the attempts in `records` not appended yet and returns the ids of all of them.
    fn queue_new(&self, records: &[AttemptRecord]) -> Vec<String> {
        let mut appended = self.appended.borrow_mut();
        let new = records.get(appended.len()..).unwrap_or_default();
        let ids = self.recorder.borrow_mut().record_llm_attempts(
            Some(self.activity),
            self.service,
            self.model,
            new,
        );
        appended.extend(ids);
        appended.clone()
    }

    /// Queues the attempts not appended yet (they are appended with what comes next) and
    /// returns every attempt's id: the causes of the decision. A failed earlier append is
    /// returned now.
    fn append_rest(&self, records: &[AttemptRecord]) -> Result<Vec<String>, StoreError> {
        if let Some(error) = self.failed.borrow_mut().take() {
            return Err(error);
        }
        Ok(self.queue_new(records))
    }
}

impl crate::llm::Watcher for AttemptsAppended<'_, '_> {
    fn writing(&self, tokens: u64, elapsed: Duration) {
        self.progress.writing(self.activity, tokens, elapsed);
    }

    fn settled(&self, records: &[AttemptRecord]) {
        if records.len() == self.appended.borrow().len() || self.failed.borrow().is_some() {
            return;
        }
        self.queue_new(records);
        if let Err(error) = self.recorder.borrow_mut().flush() {
            *self.failed.borrow_mut() = Some(error);
        }
    }
}
