//! Discover's own rules on top of the generic loop.
//!
//! - The service name is normalised and validated ([`crate::service_name`]); an invalid one is
//!   sent back to the model once with the rule quoted, and never replaced by an invented name.
//! - The name is looked up in `.spectra/service-catalog.yaml`: a healthy entry of that name
//!   blocks the run; other statuses are reported (`registry_check.action` = redeploy).
//! - A name that already has a specification in the tree is an update, refused without
//!   `--update` ([`super::existing`]): before the decision when `--service` names it, after it
//!   when the model chose it.
//! - The result is written to `.spectra/<service>.specification.yaml` and committed on the
//!   current branch with `Spectra-Run` / `Spectra-Event` trailers (`files.committed`).
//! - Offline, the decision comes from rules: the name from `--service` or the idea, the problem
//!   statement is the idea, and every gate that needs judgement is left unpassed.

use serde_json::{Value, json};

use super::context::specification_path;
use super::existing;
use super::rules::{Rules, Step};
use super::{ActivityError, ActivityWork, Decider, Engine, RunError, RunState};
use crate::builtin::catalog;
use crate::event::{NewEvent, kind};
use crate::registry::Activity;
use crate::service_name;

/// The rules of an activity with `behaviour: discover`.
pub(crate) struct Discover;

impl Rules for Discover {
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

fn refuse_dirty_specification(engine: &Engine<'_>, service: &str, work: &mut ActivityWork) {
    let path = specification_path(service);
    if engine.options.dry_run {
        return;
    }
    match engine.worktree().has_uncommitted_changes(&path) {
        Ok(false) => {}
        Ok(true) => work.errors.push(ActivityError::new(
            "specification_dirty",
            format!(
                "{path} has uncommitted changes; commit or stash them first (git spectra never overwrites your edits)"
            ),
        )),
        Err(error) => work
            .errors
            .push(ActivityError::new("git_failed", error.to_string())),
    }
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

/// The model's name if it is valid; else one more ask quoting the rule; else a recorded failure.
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
        let correction = format!(
            "Your previous answer proposed the service_name `{proposed}`, which is invalid: {problem}. \
             The rule: {}. Answer again with a valid service_name.",
            service_name::RULE
        );
        if let Some(second) = engine.decide(state, step, Some(&correction), work)? {
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
        "validation": {"problem_solved": false, "reasoning": "", "confidence": 0.0,
            "assumptions": ["offline: no model was consulted; only the idea text and the repository were used"]},
        "recommended_tools": empty,
        "next_steps": ["configure a model (git spectra doctor) and run discover again for a full analysis"],
        "playbooks": playbooks,
    })
}

/// Writes `.spectra/<service>.specification.yaml` and commits it (unless told not to).
fn write_outputs(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
) -> Result<(), RunError> {
    let Some(service) = work.service.clone() else {
        return Ok(());
    };
    // The decision and the playbooks' outcomes are in the log before the file is written.
    state.recorder.flush()?;
    let path = specification_path(&service);
    let mut document = specification(&service, state.recorder.run(), engine.decider.mode(), work);
    if let Some(earlier) = existing::Earlier::read(engine, &service) {
        earlier.keep("stages", &mut document.stages);
        earlier.keep("documents", &mut document.documents);
        let update = earlier.summary(&document);
        work.extra_outputs
            .insert(existing::UPDATE_OUTPUT.into(), update);
    }
    if engine.options.dry_run {
        work.extra_outputs.insert(
            "specification".into(),
            json!({"path": path, "written": false, "committed": null, "dry_run": true}),
        );
        return Ok(());
    }
    let text = match crate::yaml::to_string(&document) {
        Ok(text) => format!(
            "# Written by git spectra {} (run {}).\n{text}",
            work.activity,
            state.recorder.run()
        ),
        Err(message) => {
            work.errors
                .push(ActivityError::new("specification_unwritable", message));
            return Ok(());
        }
    };
    // Another run's write and commit of the same file never interleave with this one, and the
    // file is checked again under the lock: it may have changed since the decision.
    let effects = match crate::run_lock::EffectLock::acquire(&engine.repo.state_dir()) {
        Ok(lock) => lock,
        Err(error) => {
            work.errors.push(ActivityError::new(
                "specification_unwritable",
                format!("cannot take the effect lock: {error}"),
            ));
            return Ok(());
        }
    };
    if !existing::refuse_without_update(engine, &service, work) {
        refuse_dirty_specification(engine, &service, work);
    }
    if !work.errors.is_empty() {
        return Ok(());
    }
    // The commit's intent is in the log before the file is written: a run that dies before its
    // commit leaves a file the next command can recognise (by its blob id) and put back.
    let intent = if engine.options.no_commit {
        None
    } else {
        match intend_commit(engine, state, work, &service, &path, text.as_bytes()) {
            Ok(intent) => Some(intent),
            Err(error) => {
                work.errors.push(error);
                return Ok(());
            }
        }
    };
    let full = engine.root().join(&path);
    let written = full
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&full, text));
    if let Err(error) = written {
        work.errors.push(ActivityError::new(
            "specification_unwritable",
            format!("cannot write {path}: {error}"),
        ));
        return Ok(());
    }
    let mut record = json!({"path": path, "written": true, "committed": null});
    if let Some(intent) = intent {
        match commit_specification(engine, state, work, &effects, &path, intent) {
            Ok(commit) => record["committed"] = json!(commit),
            Err(error) => {
                record["written"] = json!(false);
                work.errors.push(error);
            }
        }
    }
    work.extra_outputs.insert("specification".into(), record);
    // The commit is recorded before another run may write.
    state.recorder.flush()?;
    Ok(())
}

/// A commit about to be made: the `effect.intended` event and what the commit will carry.
struct Intent {
    id: String,
    /// The id of the `files.committed` event that will record the commit.
    completion: String,
    message: String,
    service: String,
}

/// Records, and appends, that `path` is about to be written with `content` and committed: the
/// branch and HEAD it starts from, the blob id of the content, and the id of the
/// `files.committed` event to come, which the commit's `Spectra-Event` trailer names.
fn intend_commit(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &ActivityWork,
    service: &str,
    path: &str,
    content: &[u8],
) -> Result<Intent, ActivityError> {
    let statement = work.decision["problem"]["statement"]
        .as_str()
        .unwrap_or_default();
    let completion = crate::event::new_id();
    let activity = &work.activity;
    let subject = existing::commit_subject(work, service);
    let message = format!(
        "{subject}\n\n{}\n\nSpectra-Run: {}\nSpectra-Event: {completion}\n",
        // The statement is the model's text: it must not add trailers of its own.
        crate::trailer_text::neutralise(statement.trim()),
        state.recorder.run(),
    );
    let repo = engine.repo.gix();
    let blob = gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, content)
        .map(|id| id.to_string())
        .ok();
    let (head, branch) = engine.worktree().head_commit().unzip();
    let mut intent = NewEvent::new(kind::EFFECT_INTENDED)
        .activity(activity.clone())
        .service(service)
        .subject(format!("{activity}: about to commit {path}"))
        .payload(json!({
            "effect": "commit",
            "branch": branch.flatten(),
            "head": head,
            "files": [path],
            "blobs": {path: blob},
            "subject": subject,
            "completes": completion,
        }));
    if let Some(id) = &work.decision_event {
        intent = intent.cause(id.clone());
    }
    let id = state.recorder.record(intent);
    state
        .recorder
        .flush()
        .map_err(|error| ActivityError::new("commit_failed", error.to_string()))?;
    Ok(Intent {
        id,
        completion,
        message,
        service: service.to_string(),
    })
}

/// Commits the specification as `intent` said, and records `files.committed` after it. A
/// commit that fails leaves the file as it was before the run wrote it (the log keeps the
/// decision), so running the same command again is not blocked by a leftover.
fn commit_specification(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
    effects: &crate::run_lock::EffectLock,
    path: &str,
    intent: Intent,
) -> Result<String, ActivityError> {
    let worktree = engine.worktree();
    crate::test_hook::point("commit.before");
    let committed = {
        // git outliving this process keeps the run in progress until it is done.
        let _hold = effects.shared_with_children();
        worktree.commit_paths(&[path.to_string()], &intent.message)
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(error) => {
            let kept = match worktree.restore_path(path) {
                Ok(()) => "the file was put back as it was".to_string(),
                Err(restore) => format!("putting the file back failed too: {restore}"),
            };
            return Err(ActivityError::new(
                "commit_failed",
                format!("{error}; {kept} (the decision is in the log)"),
            ));
        }
    };
    crate::test_hook::point("commit.after");
    let mut event = NewEvent::new(kind::FILES_COMMITTED)
        .activity(work.activity.clone())
        .service(intent.service)
        .subject(format!(
            "{}: committed {path} as {}",
            work.activity,
            &committed.commit[..committed.commit.len().min(10)]
        ))
        .payload(serde_json::to_value(&committed).unwrap_or(Value::Null))
        .cause(intent.id);
    event.id = intent.completion;
    state.recorder.record(event);
    let id = committed.commit.clone();
    work.commit = Some(committed);
    Ok(id)
}

/// The specification document: what the later activities build on. A struct, so the file
/// reads top-down in this order.
#[derive(serde::Serialize)]
struct Specification {
    service: String,
    purpose: Value,
    maturity: Value,
    dependencies: Vec<String>,
    stages: Value,
    /// Each activity's document, kept from the earlier specification on an update.
    #[serde(skip_serializing_if = "Value::is_null")]
    documents: Value,
    quality_gates: Value,
    deployment: Value,
    discovery: Value,
}

fn specification(service: &str, run: &str, mode: &str, work: &ActivityWork) -> Specification {
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
    Specification {
        service: service.to_string(),
        purpose: decision["problem"]["statement"].clone(),
        maturity: json!({"current": "L1-MVP", "target": null}),
        dependencies: Vec::new(),
        stages: Value::Object(
            [(work.activity.clone(), json!("complete"))]
                .into_iter()
                .collect(),
        ),
        documents: Value::Null,
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
    }
}
