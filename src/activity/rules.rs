//! What an activity does beyond the generic loop, as one trait with a default for every step.
//!
//! The registry's `behaviour` field picks the implementation ([`for_behaviour`]); nothing in
//! the loop compares an activity's name. Most activities follow the generic loop alone
//! ([`Generic`]); discover chooses the run's service ([`super::discover::Discover`]) and the
//! test activity trusts only the tests it ran ([`super::test_run::TestRun`]); build applies
//! its changes on a branch and tests that branch ([`super::build_run::Build`]). Everything else
//! that differs between activities (prompts, schema, gates, playbooks, external effects, the
//! planner's keywords) is data in the registry.

use serde_json::Value;

use super::context::Context;
use super::{ActivityError, ActivityWork, Engine, RunError, RunState};
use crate::registry::{Activity, Behaviour, Registry};

/// The steps of the loop where an activity may add its own rules. Every method has the
/// generic loop's behaviour as its default.
pub(crate) trait Rules: Sync {
    /// Whether the activity chooses the run's service itself; any other activity works on the
    /// service chosen before it (`--service`, this run's discover, else the latest discover's).
    fn chooses_service(&self) -> bool {
        false
    }

    /// Checks before the decision is asked for; an error recorded in `work` stops the
    /// activity before it asks. The default refuses when the files the activity will write
    /// (its document, the specification) hold the user's uncommitted changes.
    fn before_decision(&self, engine: &Engine<'_>, work: &mut ActivityWork) {
        if let Some(service) = work.service.clone() {
            let paths = super::outputs::paths(&work.activity, &service);
            super::commit::refuse_dirty(engine, &paths, work);
            if work.errors.is_empty() {
                super::outputs::refuse_unreadable_specification(engine, &service, work);
            }
        }
    }

    /// Checks and completes the decision. `Ok(None)` stops the activity here (the reason is
    /// recorded in `work`); the default accepts the decision as it is.
    fn after_decision(
        &self,
        _engine: &Engine<'_>,
        _state: &mut RunState<'_>,
        _step: &Step<'_>,
        decision: Value,
        _work: &mut ActivityWork,
    ) -> Result<Option<Value>, RunError> {
        Ok(Some(decision))
    }

    /// Changes the playbooks the decision chose before they run (say, a playbook that must
    /// always run).
    fn adjust_choices(&self, _choices: &mut Vec<Value>) {}

    /// Reads what the playbooks really did into facts, outputs and errors.
    fn observe(&self, _dry_run: bool, _work: &mut ActivityWork) {}

    /// Whether the activity can decide without a model ([`Rules::offline_decision`] has
    /// rules for it). Offline, a run refuses before recording anything an activity that
    /// cannot, and the planner leaves it out.
    fn decides_offline(&self) -> bool {
        false
    }

    /// The decision without a model, where the activity has rules that need none.
    fn offline_decision(
        &self,
        _engine: &Engine<'_>,
        definition: &Activity,
        _input: &str,
        _service: Option<&str>,
    ) -> Result<Value, ActivityError> {
        Err(ActivityError::new(
            "offline_unsupported",
            format!(
                "{} needs a model; configure one (git spectra doctor shows how)",
                definition.name
            ),
        ))
    }

    /// Writes the activity's own files once it has decided without an error: by default its
    /// document and its stage in the service's specification, in one commit.
    fn write_outputs(
        &self,
        engine: &Engine<'_>,
        state: &mut RunState<'_>,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        super::outputs::write(engine, state, work)
    }
}

/// What one activity is working with, for rules that ask the model again.
pub(crate) struct Step<'a> {
    pub definition: &'a Activity,
    pub context: &'a Context,
    pub input: &'a str,
}

/// The generic loop alone.
pub(crate) struct Generic;

impl Rules for Generic {}

/// The rules of an activity with this `behaviour`.
pub(crate) fn for_behaviour(behaviour: Behaviour) -> &'static dyn Rules {
    match behaviour {
        Behaviour::Default => &Generic,
        Behaviour::Discover => &super::discover::Discover,
        Behaviour::Test => &super::test_run::TestRun,
        Behaviour::Build => &super::build_run::Build,
    }
}

/// The rules of `definition`, as its registry entry says.
pub(crate) fn of(definition: &Activity) -> &'static dyn Rules {
    for_behaviour(definition.behaviour)
}

/// The activities that can decide without a model, in canonical order.
pub(crate) fn offline_capable(registry: &Registry) -> impl Iterator<Item = &str> {
    registry
        .activities()
        .iter()
        .filter(|activity| of(activity).decides_offline())
        .map(|activity| activity.name.as_str())
}

/// The activities that choose the run's service, in canonical order.
pub(crate) fn service_choosers(registry: &Registry) -> impl Iterator<Item = &str> {
    registry
        .activities()
        .iter()
        .filter(|activity| of(activity).chooses_service())
        .map(|activity| activity.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_behaviour_field_not_the_name_picks_the_rules() {
        let registry = Registry::builtin().unwrap();
        let chooses: Vec<&str> = registry
            .activities()
            .iter()
            .filter(|activity| of(activity).chooses_service())
            .map(|activity| activity.name.as_str())
            .collect();
        assert_eq!(chooses, ["discover"]);

        // Another name with the discover behaviour gets discover's rules; discover's name with
        // the default behaviour gets none.
        let mut renamed = registry.activity("discover").unwrap().clone();
        renamed.name = "scout".into();
        assert!(of(&renamed).chooses_service());
        let mut plain = registry.activity("discover").unwrap().clone();
        plain.behaviour = Behaviour::Default;
        assert!(!of(&plain).chooses_service());
    }

    #[test]
    fn only_activities_with_offline_rules_decide_offline() {
        let registry = Registry::builtin().unwrap();
        let capable: Vec<&str> = offline_capable(&registry).collect();
        assert_eq!(capable, ["discover", "test"]);
        let mut plain = registry.activity("test").unwrap().clone();
        plain.behaviour = Behaviour::Default;
        assert!(!of(&plain).decides_offline());
    }

    #[test]
    fn only_the_test_behaviour_adds_the_tests_playbook() {
        let mut choices = Vec::new();
        for_behaviour(Behaviour::Default).adjust_choices(&mut choices);
        assert!(choices.is_empty());
        for_behaviour(Behaviour::Test).adjust_choices(&mut choices);
        assert_eq!(choices[0]["id"], super::super::test_run::TESTS_PLAYBOOK);
    }
}
