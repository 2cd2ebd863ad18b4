//! An activity's reviewable result: its document, `.spectra/<service>/<activity>.md`, rendered
//! from the decision, and its stage in the service's specification, committed together on the
//! user's branch (see [`super::commit`]).

use serde_json::{Value, json};

use super::commit::{self, Change};
use super::specification::{self, Specification};
use super::{ActivityError, ActivityWork, Engine, RunError, RunState};
use crate::document::{self, FrontMatter, GateEntry};

/// The files an activity's result changes (its document, and the specification's stage) and
/// the commit that holds them.
pub(crate) struct Files {
    /// The document's path and text.
    pub document: (String, String),
    /// The specification's path and new text, when the service has one.
    pub specification: Option<(String, String)>,
    /// The commit's subject.
    pub subject: String,
    /// The commit message's body.
    pub body: String,
}

/// The paths `activity` writes for `service`, to check for the user's edits
/// before anything is asked.
pub(crate) fn paths(activity: &str, service: &str) -> Vec<String> {
    vec![
        document::path(service, activity),
        specification::path(service),
    ]
}

/// The front matter of the document `work` leads to.
pub(crate) fn front_matter(
    engine: &Engine<'_>,
    state: &RunState<'_>,
    work: &ActivityWork,
    service: &str,
) -> FrontMatter {
    FrontMatter {
        service: service.to_string(),
        activity: work.activity.clone(),
        run: state.recorder.run().to_string(),
        event: work.decision_event.clone().unwrap_or_default(),
        outcome: work.outcome().word().to_string(),
        gates: work
            .gates
            .iter()
            .map(|gate| {
                let entry = GateEntry {
                    result: gate.verdict.word().to_string(),
                    level: gate.level.word().to_string(),
                };
                (gate.name.clone(), entry)
            })
            .collect(),
        decided_by: engine.decider.mode().to_string(),
        model: engine.decider.model().map(str::to_string),
    }
}

/// The document, rendered from the decision.
pub(crate) fn document_text(
    engine: &Engine<'_>,
    state: &RunState<'_>,
    work: &ActivityWork,
    service: &str,
) -> Result<String, ActivityError> {
    let front = front_matter(engine, state, work, service);
    let template = match engine.registry.activity(&work.activity) {
        Some(activity) => activity.document_template(),
        None => document::Template::fallback(),
    };
    document::render(template, &front, &observed_over_claims(work))
        .map_err(|error| ActivityError::new("document_unrenderable", error.to_string()))
}

/// Records an error in `work` when the service's specification is in the work tree but does not
/// parse: its stage could not be recorded, so no model is asked for a decision that would be
/// thrown away. Checked again when the file is written.
pub(crate) fn refuse_unreadable_specification(
    engine: &Engine<'_>,
    service: &str,
    work: &mut ActivityWork,
) {
    let path = specification::path(service);
    let Ok(text) = std::fs::read_to_string(engine.root().join(&path)) else {
        return;
    };
    if let Err(error) = Specification::parse(&text) {
        work.errors.push(unreadable(&path, error));
    }
}

/// The error for a specification that does not parse.
fn unreadable(path: &str, error: String) -> ActivityError {
    ActivityError::new(
        "specification_unreadable",
        format!("{path}: {error}; fix the file (or restore it with git) and run again"),
    )
}

/// The decision as the document shows it: where the activity observed what the decision only
/// claims (the test activity's `test_results`), the observation replaces the claim, so a
/// reviewer reads the counts spectra saw, not the model's prediction.
fn observed_over_claims(work: &ActivityWork) -> Value {
    let mut decision = work.decision.clone();
    if let Value::Object(fields) = &mut decision {
        for (key, observed) in &work.extra_outputs {
            if let Some(claim) = fields.get_mut(key) {
                *claim = observed.clone();
            }
        }
    }
    decision
}

/// The specification with this activity's stage and document recorded, when the service has
/// one in the work tree.
fn updated_specification(
    engine: &Engine<'_>,
    state: &RunState<'_>,
    work: &ActivityWork,
    service: &str,
    document: &str,
) -> Result<Option<(String, String)>, ActivityError> {
    let path = specification::path(service);
    let Ok(text) = std::fs::read_to_string(engine.root().join(&path)) else {
        return Ok(None);
    };
    let Some(stage) = specification::stage(&work.outcome()) else {
        return Ok(None);
    };
    let mut spec = Specification::parse(&text).map_err(|error| unreadable(&path, error))?;
    spec.record_stage(&work.activity, stage, Some(document));
    let text = spec
        .to_text(&work.activity, state.recorder.run())
        .map_err(|error| unreadable(&path, error))?;
    Ok(Some((path, text)))
}

/// Writes and commits the document of an activity that decided, and its stage in the
/// specification. Recorded in `outputs.document`.
pub(crate) fn write(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
) -> Result<(), RunError> {
    let Some(service) = work.service.clone() else {
        return Ok(());
    };
    let path = document::path(&service, &work.activity);
    let verb = if engine.root().join(&path).exists() {
        "update"
    } else {
        "add"
    };
    let files = document_text(engine, state, work, &service).and_then(|text| {
        Ok(Files {
            specification: updated_specification(engine, state, work, &service, &path)?,
            subject: format!(
                "{}: {verb} {} for {service}",
                work.activity,
                document_name(&work.activity)
            ),
            body: summary_line(work),
            document: (path, text),
        })
    });
    let Some(files) = recorded_on_error(work, files) else {
        return Ok(());
    };
    let record = commit_files(engine, state, work, &service, files, &|_| {})?;
    work.extra_outputs.insert("document".into(), record);
    Ok(())
}

/// The document's name in a commit subject: `design document`.
fn document_name(activity: &str) -> String {
    format!("{activity} document")
}

/// One line for the commit's body: the outcome and the gates.
fn summary_line(work: &ActivityWork) -> String {
    let passed = work.gates.iter().filter(|gate| gate.passed).count();
    format!(
        "{} ({passed}/{} gates passed)",
        work.outcome(),
        work.gates.len()
    )
}

/// The value, or `None` with the error recorded in `work`.
pub(crate) fn recorded_on_error<T>(
    work: &mut ActivityWork,
    result: Result<T, ActivityError>,
) -> Option<T> {
    result.map_err(|error| work.errors.push(error)).ok()
}

/// Writes (or, on a dry run, only names) `files`, and returns what `outputs.document` records.
/// `under_lock` checks again, under the effect lock, what another run may have changed since
/// the decision; an error it records stops the write.
pub(crate) fn commit_files(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
    service: &str,
    files: Files,
    under_lock: &dyn Fn(&mut ActivityWork),
) -> Result<Value, RunError> {
    let path = files.document.0.clone();
    if engine.options.dry_run {
        return Ok(json!({"path": path, "written": false, "committed": null, "dry_run": true}));
    }
    let mut list = vec![(files.document.0, files.document.1.into_bytes())];
    list.extend(
        files
            .specification
            .map(|(path, text)| (path, text.into_bytes())),
    );
    let change = Change {
        files: list,
        subject: files.subject,
        body: files.body,
    };
    let written = commit::write_and_commit(engine, state, work, service, change, under_lock)?;
    Ok(json!({"path": path, "written": written.written, "committed": written.commit}))
}
