//! Discover's own rules on top of the generic loop.
//!
//! - The service name is normalised and validated ([`crate::service_name`]); for an invalid one
//!   the model is asked once more for `service_name` alone, with the rule and the rejected name
//!   quoted, and the answer goes into its decision; a name is never invented.
//! - The name is looked up in `.spectra/service-catalog.yaml`: a healthy entry of that name
//!   blocks the run; other statuses are reported (`registry_check.action` = redeploy).
//! - A name that already has a specification in the tree is an update, refused without
//!   `--update` ([`super::existing`]): before the decision when `--service` names it, after it
//!   when the model chose it.
//! - The result is written to `.spectra/<service>.specification.yaml`, with discover's document
//!   `.spectra/<service>/discover.md`, and both are committed on the current branch with
//!   `Spectra-Run` / `Spectra-Event` trailers (`files.committed`).
//! - Offline, the decision comes from rules: the name from `--service` or the idea, the problem
//!   statement is the idea, and every gate that needs judgement is left unpassed.

use serde_json::{Value, json};

use super::commit::refuse_dirty;
use super::existing;
use super::outputs::{self, Files};
use super::rules::{Rules, Step};
use super::specification::{self, Specification};
use super::{ActivityError, ActivityWork, Decider, Engine, RunError, RunState};
use crate::builtin::catalog;
use crate::registry::Activity;
use crate::service_name;

/// The rules of an activity with `behaviour: discover`.
pub(crate) struct Discover;

impl Rules for Discover {
    fn decides_offline(&self) -> bool {
        true
    }

    fn chooses_service(&self) -> bool {
        true
    }

    /// A specification the user is editing, or one `--update` did not allow to replace, is
    /// never overwritten; with the name known, no model is asked.
    fn before_decision(&self, engine: &Engine<'_>, work: &mut ActivityWork) {
        if let Some(service) = work.service.clone()
            && !existing::refuse_without_update(engine, &service, work)
        {
            refuse_dirty_specification(engine, &service, work);
        }
    }

    fn after_decision(
        &self,
        engine: &Engine<'_>,
        state: &mut RunState<'_>,
        step: &Step<'_>,
        decision: Value,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        after_decision(engine, state, step, decision, work)
    }

    fn offline_decision(
        &self,
        engine: &Engine<'_>,
        definition: &Activity,
        input: &str,
        service: Option<&str>,
    ) -> Result<Value, ActivityError> {
        Ok(offline_decision(engine, definition, input, service))
    }

    fn write_outputs(
        &self,
        engine: &Engine<'_>,
        state: &mut RunState<'_>,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        write_outputs(engine, state, work)
    }
}

/// The specification and discover's document are never written over the user's edits.
fn refuse_dirty_specification(engine: &Engine<'_>, service: &str, work: &mut ActivityWork) {
    let paths = outputs::paths(&work.activity, service);
    refuse_dirty(engine, &paths, work);
}

/// Validates the name and checks the catalog. `None` means the run stops here (recorded).
fn after_decision(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    step: &Step<'_>,
    mut decision: Value,
    work: &mut ActivityWork,
) -> Result<Option<Value>, RunError> {
    let name = match work.service.clone() {
        Some(name) => name,
        None => match service_name_from(engine, state, step, &mut decision, work)? {
            Some(name) => name,
            None => return Ok(None),
        },
    };
    decision["service_name"] = json!(name);
    work.service = Some(name.clone());
    work.facts.insert("service_name_valid".into(), true);

    let lookup = match catalog::lookup(engine.root(), &name) {
        Ok(lookup) => lookup,
        Err(error) => {
            work.errors
                .push(ActivityError::new("catalog_unreadable", error.to_string()));
            work.decision = decision;
            return Ok(None);
        }
    };
    let healthy = lookup
        .matches
        .iter()
        .find(|entry| entry.status.as_deref() == Some("healthy"));
    let action = match (healthy.is_some(), lookup.found) {
        (true, _) => "blocked",
        (false, true) => "redeploy",
        (false, false) => "deploy_new",
    };
    work.extra_outputs.insert(
        "registry_check".into(),
        json!({"name": name, "catalog": lookup.catalog, "found": lookup.found, "action": action, "matches": lookup.matches}),
    );
    work.facts
        .insert("no_duplicate_service".into(), !lookup.found);
    if let Some(entry) = healthy {
        work.blocked = true;
        work.errors.push(ActivityError::new(
            "duplicate_service",
            format!(
                "service `{name}` already exists and is healthy in {} ({}{}{})",
                catalog::CATALOG_PATH,
                entry
                    .environment
                    .as_deref()
                    .map(|e| format!("{e}, "))
                    .unwrap_or_default(),
                entry
                    .url
                    .as_deref()
                    .map(|u| format!("{u}, "))
                    .unwrap_or_default(),
                entry
                    .version
                    .as_deref()
                    .map_or_else(|| "status healthy".into(), |v| format!("version {v}")),
            ),
        ));
        work.decision = decision;
        return Ok(None);
    }
    // Checked before the decision already when the name came from --service.
    if engine.options.service.is_none() && !existing::refuse_without_update(engine, &name, work) {
        refuse_dirty_specification(engine, &name, work);
    }
    if !work.errors.is_empty() {
        work.decision = decision;
        return Ok(None);
    }
    Ok(Some(decision))
}

/// The model's name if it is valid; else one more ask, for the name alone, quoting the rule and
/// the rejected name; else a recorded failure.
fn service_name_from(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    step: &Step<'_>,
    decision: &mut Value,
    work: &mut ActivityWork,
) -> Result<Option<String>, RunError> {
    let proposed = proposed_name(decision);
    let problem = match service_name::accept(&proposed) {
        Ok(name) => return Ok(Some(name)),
        Err(problem) => problem,
    };
    if matches!(engine.decider, Decider::Model(_)) {
        let question = format!(
            "Your previous answer proposed the service_name `{proposed}`, which is invalid: {problem}. \
             The rule: {}. Name what the service does, in one to three lowercase English words \
             taken from the idea, joined by hyphens; not a number or a version. Everything else \
             in your answer stands. Reply with only a JSON object whose one key is \
             \"service_name\", its value the new name.",
            service_name::RULE
        );
        let asked = engine.follow_up(state, step, decision, "service_name", &question, work)?;
        if let Some(second) = asked {
            let again = proposed_name(&second);
            match service_name::accept(&again) {
                Ok(name) => {
                    *decision = second;
                    return Ok(Some(name));
                }
                Err(problem) => {
                    return Ok(invalid_name(work, &again, &problem, second));
                }
            }
        }
        return Ok(None);
    }
    Ok(invalid_name(work, &proposed, &problem, decision.clone()))
}

fn invalid_name(
    work: &mut ActivityWork,
    proposed: &str,
    problem: &str,
    decision: Value,
) -> Option<String> {
    work.facts.insert("service_name_valid".into(), false);
    work.errors.push(ActivityError::new(
        "invalid_service_name",
        format!(
            "no valid service name: `{proposed}` is invalid ({problem}); pass one with --service NAME"
        ),
    ));
    work.decision = decision;
    None
}

fn proposed_name(decision: &Value) -> String {
    decision
        .get("service_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The decision discover makes without a model: only what the input says for itself.
fn offline_decision(
    engine: &Engine<'_>,
    definition: &Activity,
    input: &str,
    service: Option<&str>,
) -> Value {
    let name = service
        .map(str::to_string)
        .or_else(|| service_name::derive_from_idea(input))
        .unwrap_or_default();
    let mut playbooks = vec![
        json!({"id": "repo.inventory", "inputs": {}, "reason": "offline: always inventory the repository"}),
    ];
    if service_name::validate(&name).is_ok()
        && engine
            .registry
            .is_allowed(&definition.name, "catalog.lookup")
    {
        playbooks.push(json!({"id": "catalog.lookup", "inputs": {"name": name}, "reason": "offline: always check the catalog"}));
    }
    let empty: Vec<String> = Vec::new();
    json!({
        "service_name": name,
        "problem": {"statement": input, "impact": "", "root_cause": "", "who_has_it": empty},
        "current_state": {"what_exists": empty, "pain_points": empty, "gaps": empty, "blockers": empty},
        "desired_state": {"vision": "", "success_criteria": empty, "goals": empty},
        "stakeholders": {"users": empty, "decision_makers": empty, "beneficiaries": empty},
        "constraints": {"technical": empty, "business": empty, "time": empty, "budget": empty, "compliance": empty},
        "requirements": {"functional": empty, "non_functional": empty},
        "risks": {"technical": empty, "business": empty, "implementation": empty},
        "alternatives": {"other_options": empty, "why_this_solution": ""},
        "idea": {"name": "", "type": "new_service", "priority": "medium"},
        "validation": {"problem_solved": false, "reasoning": "", "confidence": 0,
            "assumptions": ["offline: no model was consulted; only the idea text and the repository were used"]},
        "recommended_tools": empty,
        "next_steps": ["configure a model (git spectra doctor) and run discover again for a full analysis"],
        "playbooks": playbooks,
    })
}

/// Writes `.spectra/<service>.specification.yaml` and discover's document, and commits both
/// (unless told not to).
fn write_outputs(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
) -> Result<(), RunError> {
    let Some(service) = work.service.clone() else {
        return Ok(());
    };
    let run = state.recorder.run().to_string();
    let document_path = crate::document::path(&service, &work.activity);
    let mut spec = specification(&service, &run, engine.decider.mode(), work, &document_path);
    if let Some(earlier) = existing::Earlier::read(engine, &service) {
        earlier.keep("stages", &mut spec.stages);
        earlier.keep("documents", &mut spec.documents);
        let update = earlier.summary(&spec);
        work.extra_outputs
            .insert(existing::UPDATE_OUTPUT.into(), update);
    }
    let statement = work.decision["problem"]["statement"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let subject = existing::commit_subject(work, &service);
    let files = spec
        .to_text(&work.activity, &run)
        .map_err(|message| ActivityError::new("specification_unwritable", message))
        .and_then(|spec_text| {
            Ok(Files {
                document: (
                    document_path,
                    outputs::document_text(engine, state, work, &service)?,
                ),
                specification: Some((specification::path(&service), spec_text)),
                subject,
                body: statement,
            })
        });
    let Some(files) = outputs::recorded_on_error(work, files) else {
        return Ok(());
    };
    // Another discover of the same name may have committed a specification since the decision.
    let under_lock = |work: &mut ActivityWork| {
        existing::refuse_without_update(engine, &service, work);
    };
    let document = outputs::commit_files(engine, state, work, &service, files, &under_lock)?;
    let mut spec_record = document.clone();
    spec_record["path"] = json!(specification::path(&service));
    work.extra_outputs
        .insert("specification".into(), spec_record);
    work.extra_outputs.insert("document".into(), document);
    Ok(())
}

fn specification(
    service: &str,
    run: &str,
    mode: &str,
    work: &ActivityWork,
    document: &str,
) -> Specification {
    let decision = &work.decision;
    let checks: serde_json::Map<String, Value> = work
        .facts
        .iter()
        .map(|(fact, value)| (fact.clone(), json!(value)))
        .collect();
    let registry_check = work
        .extra_outputs
        .get("registry_check")
        .cloned()
        .unwrap_or(Value::Null);
    let mut spec = Specification {
        service: service.to_string(),
        purpose: decision["problem"]["statement"].clone(),
        maturity: json!({"current": "L1-MVP", "target": null}),
        quality_gates: Value::Object(checks),
        deployment: json!({"status": "not_deployed", "action": registry_check["action"]}),
        discovery: json!({
            "run": run,
            "mode": mode,
            "decided_at": crate::event::now_rfc3339(),
            "problem": decision["problem"],
            "idea": decision["idea"],
            "current_state": decision["current_state"],
            "desired_state": decision["desired_state"],
            "stakeholders": decision["stakeholders"],
            "constraints": decision["constraints"],
            "requirements": decision["requirements"],
            "risks": decision["risks"],
            "alternatives": decision["alternatives"],
            "validation": decision["validation"],
            "recommended_tools": decision["recommended_tools"],
            "next_steps": decision["next_steps"],
        }),
        ..Specification::default()
    };
    if let Some(stage) = specification::stage(&work.outcome()) {
        spec.record_stage(&work.activity, stage, Some(document));
    }
    spec
}
