//! The test activity's rules: facts over claims.
//!
//! The model may plan the tests and predict their results, but what counts is what spectra
//! observed. So the project's real test command always runs (through the `tests.run` playbook,
//! even when the model did not choose it), its parsed counts replace the model's
//! `test_results`, and the `tests_ran` / `tests_passed` facts behind the gates come from that run
//! alone. Zero tests counted is not a pass: a test command that runs nothing proves nothing.

use serde_json::{Value, json};

use super::rules::Rules;
use super::{ActivityError, ActivityWork, Engine};
use crate::registry::Activity;

/// The playbook that runs the project's tests.
pub const TESTS_PLAYBOOK: &str = "tests.run";

/// The rules of an activity with `behaviour: test`.
pub(crate) struct TestRun;

impl Rules for TestRun {
    fn decides_offline(&self) -> bool {
        true
    }

    fn adjust_choices(&self, choices: &mut Vec<Value>) {
        ensure_tests_chosen(choices);
    }

    fn observe(&self, dry_run: bool, work: &mut ActivityWork) {
        observe_tests(dry_run, work);
    }

    fn offline_decision(
        &self,
        _engine: &Engine<'_>,
        _definition: &Activity,
        _input: &str,
        _service: Option<&str>,
    ) -> Result<Value, ActivityError> {
        Ok(offline_decision())
    }
}

/// Adds a `tests.run` choice when the model left it out: running the tests is a rule of the
/// activity, not the model's option. Where they run is not the model's either: every
/// `tests.run` it chose runs on the working tree (`at` is the rules' input alone).
fn ensure_tests_chosen(choices: &mut Vec<Value>) {
    if !tests_on_the_working_tree(choices) {
        choices.push(json!({
            "id": TESTS_PLAYBOOK,
            "inputs": {"at": null},
            "reason": "rule of the test activity: always run the project's tests",
        }));
    }
}

/// Sets `at` to null on every `tests.run` in `choices`, so the tests the model chose run on
/// the working tree, never on a revision it named; whether there was one.
pub(super) fn tests_on_the_working_tree(choices: &mut [Value]) -> bool {
    let mut found = false;
    for choice in choices
        .iter_mut()
        .filter(|choice| choice.get("id").and_then(Value::as_str) == Some(TESTS_PLAYBOOK))
    {
        found = true;
        choice["inputs"]["at"] = Value::Null;
    }
    found
}

/// The decision the test activity makes without a model: run the tests, predict nothing.
fn offline_decision() -> Value {
    json!({
        "test_strategy": {"approach": "", "levels": [], "coverage_target": 0},
        "test_cases": [],
        "test_results": {"passed": 0, "failed": 0, "skipped": 0, "summary": "offline: no prediction"},
        "playbooks": [{"id": TESTS_PLAYBOOK, "inputs": {"at": null}, "reason": "offline: run the project's tests"}],
    })
}

/// Reads the counts `tests.run` printed, records them as the activity's `test_results` and
/// facts, and records an error when no test ran or any failed.
pub(super) fn observe_tests(dry_run: bool, work: &mut ActivityWork) {
    if dry_run {
        work.facts.insert("tests_ran".into(), false);
        work.facts.insert("tests_passed".into(), false);
        work.extra_outputs.insert(
            "test_results".into(),
            json!({"observed": false, "summary": "dry run: the tests were not run"}),
        );
        return;
    }
    let Some(observed) = work.last_printed(TESTS_PLAYBOOK) else {
        work.facts.insert("tests_ran".into(), false);
        work.facts.insert("tests_passed".into(), false);
        work.extra_outputs.insert(
            "test_results".into(),
            json!({"observed": false, "summary": "the tests could not be run"}),
        );
        work.errors.push(ActivityError::new(
            "no_tests_ran",
            "the project's tests could not be run (set `git config spectra.test.command`)",
        ));
        return;
    };
    let count = |key: &str| observed[key].as_u64().unwrap_or(0);
    let (passed, failed, skipped) = (count("passed"), count("failed"), count("skipped"));
    let command = observed["command"]
        .as_array()
        .map(|words| {
            words
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let ran = passed + failed > 0;
    let all_passed = ran && failed == 0 && observed["success"].as_bool() == Some(true);
    work.facts.insert("tests_ran".into(), ran);
    work.facts.insert("tests_passed".into(), all_passed);
    work.extra_outputs.insert(
        "test_results".into(),
        json!({
            "passed": passed,
            "failed": failed,
            "skipped": skipped,
            "summary": format!("observed: {passed} passed, {failed} failed, {skipped} skipped (`{command}`)"),
            "observed": true,
            "command": command,
            "exit_code": observed["exit_code"],
        }),
    );
    if !ran {
        work.errors.push(ActivityError::new(
            "no_tests_ran",
            format!("`{command}` ran but no test was counted; zero tests is not a pass"),
        ));
    } else if !all_passed {
        work.errors.push(ActivityError::new(
            "tests_failed",
            format!("`{command}`: {failed} of {} tests failed", passed + failed),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_run_is_added_once_when_the_model_left_it_out() {
        let mut choices = vec![json!({"id": "repo.inventory", "inputs": {}, "reason": "look"})];
        ensure_tests_chosen(&mut choices);
        ensure_tests_chosen(&mut choices);
        let ids: Vec<&str> = choices.iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, ["repo.inventory", TESTS_PLAYBOOK]);
    }

    #[test]
    fn the_model_never_chooses_where_the_tests_run() {
        let mut choices =
            vec![json!({"id": TESTS_PLAYBOOK, "inputs": {"at": "v1.0"}, "reason": "old"})];
        ensure_tests_chosen(&mut choices);
        assert_eq!(choices.len(), 1);
        assert_eq!(choices[0]["inputs"]["at"], Value::Null);
    }

    #[test]
    fn without_an_observed_run_nothing_passes() {
        let mut work = ActivityWork::new("test", None);
        observe_tests(false, &mut work);
        assert!(!work.facts["tests_ran"]);
        assert_eq!(work.errors[0].reason, "no_tests_ran");
    }
}
