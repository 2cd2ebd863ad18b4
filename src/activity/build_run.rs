//! The build activity's rules: the decision's edits become a commit on a branch of the build's
//! own, and the tests that decide `tests_pass` run on that branch.
//!
//! The changes the decision lists with `content`, `search`/`replace` or `action: delete` are
//! edits; those with none are only a plan, and a build with no edit behaves as before. With
//! edits, the `changes.apply` playbook runs first (inputs filled from the decision, whatever the
//! model chose), then `tests.run` at the branch it made, in a temporary checkout. The applied
//! result and the observed test counts go into the activity's outputs; a dry run previews the
//! full diff without writing anything.

use serde_json::{Value, json};

use super::rules::{Rules, Step};
use super::test_run::{TESTS_PLAYBOOK, observe_tests};
use super::{ActivityError, ActivityWork, Engine, RunError, RunState};
use crate::builtin::changes::{self, FileChange};
use crate::event::{NewEvent, kind};

/// The playbook that applies a build's changes.
pub const CHANGES_PLAYBOOK: &str = "changes.apply";

/// The rules of an activity with `behaviour: build`.
pub(crate) struct Build;

impl Rules for Build {
    fn after_decision(
        &self,
        engine: &Engine<'_>,
        state: &mut RunState<'_>,
        _step: &Step<'_>,
        decision: Value,
        work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        let run = state.recorder.run().to_string();
        let decision = plan_playbooks(engine, &run, decision, work);
        if !engine.options.dry_run && work.errors.is_empty() {
            intend_branch(engine, state, &run, &decision, work)?;
        }
        Ok(Some(decision))
    }

    fn observe(&self, dry_run: bool, work: &mut ActivityWork) {
        observe(dry_run, work);
    }

    fn write_outputs(
        &self,
        engine: &Engine<'_>,
        state: &mut RunState<'_>,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        add_applied(work);
        super::outputs::write(engine, state, work)
    }
}

/// Adds `applied` (`{branch, commit, diff_stat}`) to the decision the document renders, from
/// what `changes.apply` did or, in a dry run, from the preview.
fn add_applied(work: &mut ActivityWork) {
    let source = work
        .extra_outputs
        .get("changes_applied")
        .or_else(|| work.extra_outputs.get("changes_preview"));
    let Some(source) = source.filter(|source| source["success"] == true) else {
        return;
    };
    let applied = json!({
        "branch": source["branch"],
        "commit": source["commit"],
        "diff_stat": source["diff_stat"],
    });
    if let Some(decision) = work.decision.as_object_mut() {
        decision.insert("applied".into(), applied);
    }
}

/// The decision's edits: the changes that carry something to apply.
pub(crate) fn edits(decision: &Value) -> Vec<FileChange> {
    let Some(listed) = decision.get("changes").and_then(Value::as_array) else {
        return Vec::new();
    };
    listed
        .iter()
        .filter_map(|change| serde_json::from_value::<FileChange>(change.clone()).ok())
        .map(without_empty_search)
        .filter(|change| {
            change.content.is_some()
                || change.search.is_some()
                || change.action.as_deref() == Some("delete")
        })
        .map(|change| FileChange {
            // Only what applying reads: the model's purpose stays in the decision.
            action: change.action.filter(|action| action != "modify"),
            ..change
        })
        .collect()
}

/// An empty `search` (with an empty `replace`) is how a model that must fill every field says
/// "no search block": read as absent, so a whole-file change is not refused as contradictory.
fn without_empty_search(change: FileChange) -> FileChange {
    if change.search.as_deref() != Some("") {
        return change;
    }
    FileChange {
        search: None,
        replace: change.replace.filter(|replace| !replace.is_empty()),
        ..change
    }
}

/// Puts `changes.apply` first and `tests.run` at the build's branch in the decision's
/// playbooks, when the decision has edits; a dry run records the diff they would make.
fn plan_playbooks(
    engine: &Engine<'_>,
    run: &str,
    mut decision: Value,
    work: &mut ActivityWork,
) -> Value {
    let edits = edits(&decision);
    let service = work.service.clone();
    if service.is_none() && !edits.is_empty() {
        work.errors.push(ActivityError::new(
            "no_service",
            "a build with changes needs a service (--service, or run discover first)",
        ));
    }
    // Checked here first, so that a refused change runs neither the playbook nor the tests;
    // the playbook checks again when it applies them.
    let preview = service
        .as_deref()
        .filter(|_| !edits.is_empty())
        .map(|service| preview(engine, service, run, &edits));
    let applicable = preview
        .as_ref()
        .is_some_and(|preview| preview["success"] == true);
    if let Some(preview) = preview {
        record_preview(engine.options.dry_run, preview, work);
    }
    let chosen = decision
        .get("playbooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Refused edits: no tests either, they would test something other than the build.
    let refused = !edits.is_empty() && !applicable;
    let chosen: Vec<Value> = chosen
        .into_iter()
        .filter(|choice| !(refused && choice["id"] == TESTS_PLAYBOOK))
        .collect();
    let to_apply = if applicable { edits.as_slice() } else { &[] };
    let choices = choices(chosen, service.as_deref(), run, to_apply);
    if let Some(object) = decision.as_object_mut() {
        object.insert("playbooks".into(), Value::Array(choices));
    }
    decision
}

/// What applying `edits` would do, as `changes.apply` prints it, with the full diff.
fn preview(engine: &Engine<'_>, service: &str, run: &str, edits: &[FileChange]) -> Value {
    changes::preview(engine.root(), service, run, edits)
        .map(|applied| serde_json::to_value(applied).unwrap_or(Value::Null))
        .unwrap_or_else(|error| json!({"success": false, "error": error.to_string()}))
}

/// A dry run records the preview (`changes_preview`); a real run records a refusal as the
/// result (`changes_applied`) with the error `changes_refused`, and nothing runs.
fn record_preview(dry_run: bool, preview: Value, work: &mut ActivityWork) {
    if dry_run {
        work.extra_outputs.insert("changes_preview".into(), preview);
        return;
    }
    if preview["success"] == true {
        return;
    }
    let mut refused = refused_changes(&preview);
    refused.extend(preview["error"].as_str().map(str::to_string));
    work.errors.push(ActivityError::new(
        "changes_refused",
        format!("no change was applied: {}", refused.join("; ")),
    ));
    let mut result = preview;
    if let Some(object) = result.as_object_mut() {
        object.remove("diff");
    }
    work.extra_outputs.insert("changes_applied".into(), result);
}

/// The playbooks a build runs: never a `changes.apply` the model chose itself (its inputs come
/// from the decision's changes alone); with edits and a service, `changes.apply` first and
/// `tests.run` at the new branch (instead of any the model chose), then the model's others.
fn choices(
    chosen: Vec<Value>,
    service: Option<&str>,
    run: &str,
    edits: &[FileChange],
) -> Vec<Value> {
    let id_of = |choice: &Value| choice.get("id").and_then(Value::as_str).map(str::to_string);
    let Some(service) = service.filter(|_| !edits.is_empty()) else {
        let mut kept: Vec<Value> = chosen
            .into_iter()
            .filter(|choice| id_of(choice).as_deref() != Some(CHANGES_PLAYBOOK))
            .collect();
        super::test_run::tests_on_the_working_tree(&mut kept);
        return kept;
    };
    let branch = changes::branch_name(service, run);
    let listed = serde_json::to_string(edits).unwrap_or_default();
    let mut choices = vec![
        json!({
            "id": CHANGES_PLAYBOOK,
            "inputs": {"service": service, "run": run, "changes": listed},
            "reason": "rule of the build activity: its changes go on a branch of their own",
        }),
        json!({
            "id": TESTS_PLAYBOOK,
            "inputs": {"at": branch},
            "reason": "rule of the build activity: the tests run on the build's branch",
        }),
    ];
    choices.extend(chosen.into_iter().filter(|choice| {
        let id = id_of(choice);
        id.as_deref() != Some(CHANGES_PLAYBOOK) && id.as_deref() != Some(TESTS_PLAYBOOK)
    }));
    choices
}

/// Records, and appends, `effect.intended` for the branch `changes.apply` is about to make:
/// the branch and each file with the format of its change. The outcome follows as the
/// playbook's `playbook.finished` and the activity's `outputs.changes_applied`.
fn intend_branch(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    run: &str,
    decision: &Value,
    work: &ActivityWork,
) -> Result<(), RunError> {
    let edits = edits(decision);
    let Some(service) = work.service.clone().filter(|_| !edits.is_empty()) else {
        return Ok(());
    };
    let branch = changes::branch_name(&service, run);
    let head = engine.worktree().head_commit().map(|(head, _)| head);
    let files: Vec<&str> = edits.iter().map(|change| change.path.as_str()).collect();
    let kinds: serde_json::Map<String, Value> = edits
        .iter()
        .map(|change| (change.path.clone(), json!(changes::kind_of(change))))
        .collect();
    let mut intent = NewEvent::new(kind::EFFECT_INTENDED)
        .activity(work.activity.clone())
        .service(service)
        .subject(format!(
            "{}: about to commit {} change(s) on {branch}",
            work.activity,
            files.len()
        ))
        .payload(json!({
            "effect": "branch",
            "branch": branch,
            "head": head,
            "playbook": CHANGES_PLAYBOOK,
            "files": files,
            "kinds": kinds,
        }));
    if let Some(id) = &work.decision_event {
        intent = intent.cause(id.clone());
    }
    state.recorder.record(intent);
    state.recorder.flush()?;
    Ok(())
}

/// Records what `changes.apply` did and, when the tests ran on the branch, their counts as
/// the `tests_ran` / `tests_passed` facts.
fn observe(dry_run: bool, work: &mut ActivityWork) {
    if dry_run {
        return;
    }
    if let Some(applied) = work.last_printed(CHANGES_PLAYBOOK) {
        if applied["success"] == false {
            let refused = refused_changes(&applied);
            work.errors.push(ActivityError::new(
                "changes_refused",
                format!("no change was applied: {}", refused.join("; ")),
            ));
        }
        work.extra_outputs.insert("changes_applied".into(), applied);
    }
    let tests_ran = work
        .playbook_reports
        .iter()
        .any(|(id, _)| id == TESTS_PLAYBOOK);
    if tests_ran {
        observe_tests(false, work);
    }
}

/// `path: reason` of each change `changes.apply` (or its preview) reported with a reason.
fn refused_changes(printed: &Value) -> Vec<String> {
    printed["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|change| {
            Some(format!(
                "{}: {}",
                change["path"].as_str()?,
                change["reason"].as_str()?
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_with_something_to_apply_are_edits() {
        let decision = json!({"changes": [
            {"path": "a", "action": "create", "purpose": "plan only"},
            {"path": "b", "action": "create", "purpose": "", "content": "x"},
            {"path": "c", "action": "modify", "purpose": "", "search": "s", "replace": "r"},
            {"path": "d", "action": "delete", "purpose": ""},
        ]});
        let paths: Vec<String> = edits(&decision).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, ["b", "c", "d"]);
        assert!(edits(&json!({"changes": [{"path": "a", "action": "create"}]})).is_empty());
    }

    #[test]
    fn an_empty_search_block_is_no_search_block() {
        let decision = json!({"changes": [
            {"path": "b", "action": "create", "content": "x", "search": "", "replace": ""},
            {"path": "c", "action": "modify", "content": null, "search": "", "replace": ""},
        ]});
        let edits = edits(&decision);
        assert_eq!(edits.len(), 1, "{edits:?}");
        assert_eq!(
            (edits[0].search.clone(), edits[0].replace.clone()),
            (None, None)
        );
    }

    #[test]
    fn the_model_never_chooses_changes_apply_and_edits_put_it_first_with_tests_on_the_branch() {
        let run = "0190f1e2-7b3c-7def-8abc-1234567890ab";
        let chosen = vec![
            json!({"id": CHANGES_PLAYBOOK, "inputs": {"service": "x", "run": "evil-run-id", "changes": "[]"}}),
            json!({"id": TESTS_PLAYBOOK, "inputs": {"at": "v1.0"}}),
            json!({"id": "repo.inventory", "inputs": {}}),
        ];
        let ids = |choices: &[Value]| -> Vec<String> {
            choices
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        };
        let plan_only = choices(chosen.clone(), Some("shop"), run, &[]);
        assert_eq!(ids(&plan_only), [TESTS_PLAYBOOK, "repo.inventory"]);
        // The tests the model chose run on the working tree, not at a revision it named.
        assert_eq!(plan_only[0]["inputs"]["at"], Value::Null);
        let edit = FileChange {
            path: "a".into(),
            content: Some("x".into()),
            ..FileChange::default()
        };
        let with_edits = choices(chosen, Some("shop"), run, &[edit]);
        assert_eq!(
            ids(&with_edits),
            [CHANGES_PLAYBOOK, TESTS_PLAYBOOK, "repo.inventory"]
        );
        assert_eq!(with_edits[0]["inputs"]["run"], run);
        assert_eq!(with_edits[1]["inputs"]["at"], "spectra/shop/build-567890ab");
    }
}
