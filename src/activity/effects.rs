//! Activities whose playbooks reach outside the repository (`external: true` in the registry:
//! provision, deploy and monitor by default).
//!
//! Their effects cannot be taken back by reverting a commit, so they run only registry
//! playbooks and only in dry-run unless the user passes `--execute`. Their manifests record,
//! playbook by playbook, which effects really happened, so nobody reads a model's "deployed" as
//! a deployment.
//!
//! An activity with an `effect` in the registry always runs the repository's own command (a
//! playbook whose argv is in `git config`, see `playbook::configured`), whether or not the
//! model chose it: facts over claims, as the test activity runs the real tests. Its outcome
//! alone decides the effect's fact (`deployed`, `healthy`, ...), and a deploy that really
//! succeeded is tagged as a release (`release.tag`), which undo deletes.

use serde_json::{Value, json};

use super::step::ActivityWork;
use super::{ActivityError, Engine, Outcome, PlaybookSummary, RunError, RunState};
use crate::event::{NewEvent, kind};
use crate::registry::{Activity, Effect, Registry};

pub use crate::registry::{PROBE_PLAYBOOK, RELEASE_TAG_PLAYBOOK};

/// Why an activity's effect cannot run: its command is not configured. Found before anything is
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfigured {
    /// The activity.
    pub activity: String,
    /// The `git config` key to set.
    pub key: String,
}

/// The first of `activities` whose effect's command is configured neither by default nor for any
/// environment in the repository at `root`.
pub(super) fn unconfigured(
    registry: &Registry,
    root: &std::path::Path,
    activities: &[String],
) -> Option<Unconfigured> {
    activities.iter().find_map(|name| {
        let effect = registry.activity(name)?.effect.as_ref()?;
        let playbook = registry.playbook(&effect.playbook)?;
        let configured = playbook.configured.as_ref()?;
        let set = if takes_environment(playbook) {
            crate::playbook::configured::is_set_for_some_environment(root, configured)
        } else {
            crate::playbook::configured::git_config(root, &configured.run_key(None)).is_some()
        };
        (!set).then(|| Unconfigured {
            activity: name.clone(),
            key: configured.run_key(None),
        })
    })
}

/// The first of `activities` whose effect's command has a timeout in the repository's config
/// that is not a duration, and why.
pub(super) fn bad_timeout(
    registry: &Registry,
    root: &std::path::Path,
    activities: &[String],
) -> Option<(String, crate::playbook::PlaybookError)> {
    activities.iter().find_map(|name| {
        let effect = registry.activity(name)?.effect.as_ref()?;
        let configured = registry.playbook(&effect.playbook)?.configured.as_ref()?;
        let error = crate::playbook::configured::timeout(root, configured).err()?;
        Some((name.clone(), error))
    })
}

/// Makes the choices run the effect's command exactly once (the model's choice of it first, for
/// its inputs) and drops any choice of the release tag: only a succeeded effect tags.
pub(super) fn adjust_choices(registry: &Registry, definition: &Activity, choices: &mut Vec<Value>) {
    let Some(effect) = &definition.effect else {
        return;
    };
    let id_of = |choice: &Value| choice.get("id").and_then(Value::as_str).map(str::to_string);
    let mut seen = false;
    choices.retain(|choice| match id_of(choice).as_deref() {
        Some(RELEASE_TAG_PLAYBOOK | PROBE_PLAYBOOK) => false,
        Some(id) if id == effect.playbook => !std::mem::replace(&mut seen, true),
        _ => true,
    });
    if !seen {
        choices.push(json!({
            "id": effect.playbook,
            "inputs": default_inputs(registry, &effect.playbook),
            "reason": format!("rule of the {} activity: always run the repository's own command", definition.name),
        }));
    }
}

/// With no default command and exactly one environment's (`spectra.deploy.production.command`
/// alone), a choice of the effect's command that names no environment runs that one: it is
/// the only command the repository has, so nothing is guessed.
pub(super) fn pick_only_environment(
    registry: &Registry,
    root: &std::path::Path,
    definition: &Activity,
    choices: &mut [Value],
) {
    let environment = crate::playbook::configured::ENVIRONMENT_INPUT;
    let Some(effect) = &definition.effect else {
        return;
    };
    let Some(playbook) = registry
        .playbook(&effect.playbook)
        .filter(|playbook| takes_environment(playbook))
    else {
        return;
    };
    let Some(configured) = &playbook.configured else {
        return;
    };
    let unnamed = |choice: &Value| {
        choice["id"] == effect.playbook.as_str() && choice["inputs"][environment].is_null()
    };
    if !choices.iter().any(unnamed)
        || crate::playbook::configured::git_config(root, &configured.run_key(None)).is_some()
    {
        return;
    }
    let environments = crate::playbook::configured::environments(root, configured);
    let [only] = environments.as_slice() else {
        return;
    };
    for choice in choices.iter_mut().filter(|choice| unnamed(choice)) {
        choice["inputs"][environment] = json!(only);
    }
}

/// The inputs of the effect's playbook when these rules choose it: no environment (`null`, the
/// default command) when it takes one, else none.
fn default_inputs(registry: &Registry, playbook: &str) -> Value {
    let environment = crate::playbook::configured::ENVIRONMENT_INPUT;
    if registry.playbook(playbook).is_some_and(takes_environment) {
        json!({ environment: null })
    } else {
        json!({})
    }
}

/// Whether the playbook picks a per-environment command by its `environment` input.
fn takes_environment(playbook: &crate::registry::Playbook) -> bool {
    let environment = crate::playbook::configured::ENVIRONMENT_INPUT;
    playbook.inputs["properties"].get(environment).is_some()
}

/// Reads the effect's outcome into its fact and the `command` output: true only when the
/// command really ran and exited 0. A dry run observes nothing, so its gate is not judged
/// (neither passed nor failed): planning a deployment without `--execute` is not a failure.
pub(super) fn observe(effect: &Effect, dry_run: bool, work: &mut ActivityWork) {
    let summary = work
        .playbooks
        .iter()
        .rev()
        .find(|playbook| playbook.playbook == effect.playbook);
    let report = work
        .playbook_reports
        .iter()
        .rev()
        .find(|(id, _)| *id == effect.playbook)
        .map(|(_, report)| report);
    if !dry_run {
        let succeeded = summary.is_some_and(|s| s.outcome == Outcome::Succeeded);
        work.facts.insert(effect.fact.clone(), succeeded);
    }
    let command = match (summary, report) {
        (Some(summary), Some(report)) => json!({
            "playbook": effect.playbook,
            "argv": report.invocation.argv,
            "executed": summary.outcome.executed(),
            "outcome": summary.outcome,
            "exit_code": report.exit_code,
            "duration_ms": report.duration_ms,
            "timeout_ms": report.invocation.timeout_ms,
        }),
        (Some(summary), None) => json!({
            "playbook": effect.playbook,
            "executed": false,
            "outcome": summary.outcome,
            "message": summary.message,
        }),
        _ => json!({"playbook": effect.playbook, "executed": false}),
    };
    work.extra_outputs.insert("command".into(), command);
}

/// The probe's choice, when the effect probes and the service is known.
pub(super) fn probe_choice(effect: &Effect, work: &ActivityWork) -> Option<Value> {
    effect.probe.as_ref()?;
    let service = work.service.clone()?;
    Some(json!({
        "id": PROBE_PLAYBOOK,
        "inputs": {"service": service},
        "reason": "rule: probe the URLs the service catalog lists",
    }))
}

/// Reads what the probe observed into the `probes` output and the effect's probe fact: true
/// when every catalog URL answered 2xx. A dry run, or a catalog that lists no URL for the
/// service, observes nothing, and the fact's gate is not judged.
pub(super) fn observe_probe(effect: &Effect, dry_run: bool, work: &mut ActivityWork) {
    let Some(fact) = &effect.probe else {
        return;
    };
    let observed = work
        .playbook_reports
        .iter()
        .rev()
        .find(|(id, _)| id == PROBE_PLAYBOOK)
        .and_then(|(_, report)| serde_json::from_slice::<Value>(&report.stdout.bytes).ok());
    let Some(observed) = observed.filter(|_| !dry_run) else {
        return;
    };
    let probes = observed["probes"].clone();
    if probes.as_array().is_some_and(|probes| !probes.is_empty()) {
        work.facts
            .insert(fact.clone(), observed["healthy"] == Value::Bool(true));
    }
    work.extra_outputs.insert("probes".into(), probes);
}

/// The `effect.intended` of the release tag `choice` is about to make at `head`, completed by
/// the `playbook.started` event `completes`.
pub(super) fn tag_intended(
    choice: &Value,
    head: Option<String>,
    completes: &str,
    work: &ActivityWork,
) -> NewEvent {
    let inputs = &choice["inputs"];
    let service = inputs["service"].as_str().unwrap_or_default();
    let version = inputs["version"].as_str().unwrap_or_default();
    let tag = crate::builtin::release::tag_name(service, version);
    let mut intent = NewEvent::new(kind::EFFECT_INTENDED)
        .activity(work.activity.clone())
        .service(service.to_string())
        .subject(format!("{}: about to tag {tag}", work.activity))
        .payload(json!({
            "effect": "tag",
            "tag": tag,
            "branch": null,
            "head": head,
            "files": null,
            "blobs": null,
            "subject": format!("release {service} v{version}"),
            "completes": completes,
        }));
    if let Some(id) = &work.decision_event {
        intent = intent.cause(id.clone());
    }
    intent
}

/// The release tag's choice, checked before the command runs, when the activity tags releases
/// and really runs: the version at the effect's `tag` pointer must be a semantic version (a
/// leading `v` is dropped) whose tag does not exist yet. `Err` says why not: the command must
/// then not run, since its release could not be tagged.
pub(super) fn release_choice(
    effect: &Effect,
    decision: &Value,
    service: Option<&str>,
    run: &str,
    root: &std::path::Path,
) -> Result<Option<Value>, ActivityError> {
    let Some(pointer) = effect.tag.as_deref() else {
        return Ok(None);
    };
    let written = decision
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = written.strip_prefix('v').unwrap_or(written);
    let refuse = |reason: String| {
        ActivityError::new(
            "release_refused",
            format!("{} not run: {reason}", effect.playbook),
        )
    };
    let service = service.ok_or_else(|| {
        refuse("no service to tag the release with; pass --service (or run discover first)".into())
    })?;
    crate::builtin::release::check_version(version)
        .map_err(|reason| refuse(format!("{pointer} is not a semantic version: {reason}")))?;
    let tag = crate::builtin::release::tag_name(service, version);
    crate::builtin::release::check_taggable(root, &tag).map_err(refuse)?;
    Ok(Some(json!({
        "id": RELEASE_TAG_PLAYBOOK,
        "inputs": {"service": service, "version": version, "run": run},
        "reason": "rule: a deployment that succeeded is tagged as a release",
    })))
}

impl Engine<'_> {
    /// The release an activity that tags releases will tag if its command succeeds, checked
    /// before anything runs. A release that could not be tagged fails the activity, and its
    /// command is taken out of `choices`. A dry run tags nothing and fails on nothing, but says
    /// in `outputs.release` which tag `--execute` would make, or why it would be refused.
    pub(super) fn plan_release(
        &self,
        definition: &Activity,
        decision: &Value,
        run: &str,
        dry_run: bool,
        choices: &mut Vec<Value>,
        work: &mut ActivityWork,
    ) -> Option<Value> {
        let effect = definition.effect.as_ref()?;
        let checked = release_choice(effect, decision, work.service.as_deref(), run, self.root());
        if dry_run {
            let release = match checked {
                Ok(Some(release)) => json!({
                    "tag": crate::builtin::release::tag_name(
                        release["inputs"]["service"].as_str().unwrap_or_default(),
                        release["inputs"]["version"].as_str().unwrap_or_default(),
                    ),
                    "refused": null,
                }),
                Ok(None) => return None,
                Err(error) => json!({"tag": null, "refused": error.message}),
            };
            work.extra_outputs.insert("release".into(), release);
            return None;
        }
        match checked {
            Ok(release) => release,
            Err(error) => {
                work.errors.push(error);
                choices.retain(|choice| choice["id"] != effect.playbook.as_str());
                None
            }
        }
    }

    /// After the chosen playbooks: the effect's fact, then the release tag when the command
    /// succeeded (its intent recorded first), then the catalog probe.
    pub(super) fn finish_effect(
        &self,
        state: &mut RunState<'_>,
        definition: &Activity,
        release: Option<Value>,
        dry_run: bool,
        work: &mut ActivityWork,
    ) -> Result<(), RunError> {
        let Some(effect) = &definition.effect else {
            return Ok(());
        };
        let name = definition.name.as_str();
        observe(effect, dry_run, work);
        let succeeded = work.facts.get(&effect.fact) == Some(&true);
        if let Some(release) = release.filter(|_| succeeded) {
            // The tag's intent is in the log before the tag is made; its outcome is the
            // `playbook.started` / `.finished` pair it names.
            let started_id = crate::event::new_id();
            let head = self.worktree().head_commit().map(|(head, _)| head);
            state
                .recorder
                .record(tag_intended(&release, head, &started_id, work));
            self.run_playbook_as(state, name, &release, dry_run, work, started_id)?;
        }
        if let Some(probe) = probe_choice(effect, work) {
            self.run_playbook(state, name, &probe, dry_run, work)?;
            observe_probe(effect, dry_run, work);
        }
        Ok(())
    }
}

/// `[{playbook, executed, outcome}]`: `executed` is true only for a playbook that really ran.
pub(super) fn summary(playbooks: &[PlaybookSummary]) -> Value {
    Value::Array(
        playbooks
            .iter()
            .map(|playbook| {
                let executed = playbook.outcome.executed();
                json!({"playbook": playbook.playbook, "executed": executed, "outcome": playbook.outcome})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;

    const RUN: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    fn deploy_effect() -> Effect {
        Effect {
            playbook: "deploy.command".into(),
            fact: "deployed".into(),
            tag: Some("/release/version".into()),
            probe: None,
        }
    }

    #[test]
    fn the_command_runs_once_and_the_model_never_tags_or_probes() {
        let registry = Registry::builtin().unwrap();
        let deploy = registry.activity("deploy").unwrap();
        let staging = json!({"id": "deploy.command", "inputs": {"environment": "staging"}});
        let mut choices = vec![
            json!({"id": RELEASE_TAG_PLAYBOOK, "inputs": {"service": "x", "version": "9.9.9"}}),
            staging.clone(),
            json!({"id": "deploy.command", "inputs": {"environment": "production"}}),
            json!({"id": PROBE_PLAYBOOK, "inputs": {"service": "x"}}),
        ];
        adjust_choices(&registry, deploy, &mut choices);
        assert_eq!(choices, [staging]);

        let mut none = Vec::new();
        adjust_choices(&registry, deploy, &mut none);
        assert_eq!(none[0]["id"], "deploy.command");
        assert_eq!(none[0]["inputs"], json!({"environment": null}));
        let provision = registry.activity("provision").unwrap();
        let mut none = Vec::new();
        adjust_choices(&registry, provision, &mut none);
        assert_eq!(none[0]["inputs"], json!({}));
    }

    /// A repository with one commit, and the tag `logging/v1.0.0` on it.
    fn tagged_repo() -> tempfile::TempDir {
        let dir = crate::builtin::test_repo();
        crate::builtin::test_git(dir.path(), &["tag", "logging/v1.0.0"]);
        dir
    }

    #[test]
    fn only_a_semantic_version_git_can_tag_and_not_tagged_yet_is_a_release() {
        let effect = deploy_effect();
        let decision = |version: &str| json!({"release": {"version": version}});
        let repo = tagged_repo();
        let root = repo.path();
        let choice = release_choice(&effect, &decision("v1.1.0"), Some("logging"), RUN, root)
            .unwrap()
            .unwrap();
        assert_eq!(
            choice["inputs"],
            json!({"service": "logging", "version": "1.1.0", "run": RUN})
        );
        let refusal = |version: &str, service: Option<&str>, root: &std::path::Path| {
            release_choice(&effect, &decision(version), service, RUN, root)
                .unwrap_err()
                .message
        };
        assert!(refusal("soon", Some("logging"), root).contains("not a semantic version"));
        assert!(refusal("1.0.0", Some("logging"), root).contains("already exists"));
        assert!(refusal("1.0.0-rc.lock", Some("logging"), root).contains("not a name git"));
        assert!(refusal("1.1.0", None, root).contains("no service"));
        let empty = tempfile::tempdir().unwrap();
        crate::builtin::test_git(empty.path(), &["init", "-q"]);
        assert!(refusal("1.1.0", Some("logging"), empty.path()).contains("no commit"));
    }

    #[test]
    fn only_playbooks_that_ran_count_as_executed() {
        let summary = summary(&[
            PlaybookSummary {
                playbook: "a".into(),
                outcome: Outcome::DryRun,
                message: String::new(),
            },
            PlaybookSummary {
                playbook: "b".into(),
                outcome: Outcome::Failed,
                message: String::new(),
            },
        ]);
        assert_eq!(summary[0]["executed"], false);
        assert_eq!(summary[1]["executed"], true);
    }
}
