//! The planner: which activities `git spectra run` runs, and in what order.
//!
//! The model is given the registry's catalogue (name, order, description) and asked for
//! `{activities, reasoning}`, validated against a schema whose `activities` items enumerate the
//! registry's names. A reply that still names activities the registry does not have after the
//! client's repair turns is not thrown away: the unknown names are dropped (and recorded), and
//! what is left must validate. When the model fails, or there is none, keyword rules decide
//! instead: each activity's `planner` keywords in the registry (see [`keyword_plan`] and
//! docs/run.md). Either way the plan is one `decision.made`
//! event of the run with `activity: null` and `mode: planner`.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Decider, Engine, Recorder, rules};
use crate::event::{NewEvent, kind};
use crate::llm::extract::extract_json;
use crate::llm::{AttemptRecord, DecisionRequest, LlmFailure};
use crate::registry::{Activity, Registry};

/// The schema name sent with the planner's request (and how tests recognise it).
pub const SCHEMA_NAME: &str = "run_plan";
/// The most reply tokens a plan may take; its schema's bounds usually ask for less.
const PLAN_TOKEN_BUDGET: u32 = 1024;

/// How the plan was made.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The activities to run, in order; every one is in the registry.
    pub activities: Vec<String>,
    /// Why these activities, in the planner's words.
    pub reasoning: String,
    /// `model` or `rules`.
    pub decided_by: &'static str,
    /// Names the model gave that the registry does not have.
    pub dropped: Vec<String>,
    /// Why the rules decided instead of the model (`{reason, message}`), if they did.
    pub fallback: Option<Value>,
    /// Activities the rules chose but left out, offline, because they need a model.
    pub left_out: Vec<LeftOut>,
    #[serde(skip)]
    attempts: Vec<AttemptRecord>,
    #[serde(skip)]
    model: Option<String>,
    #[serde(skip)]
    format: Value,
    #[serde(skip)]
    repairs: u32,
}

/// An activity the plan left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// The activity.
    pub activity: String,
    /// A stable word: `needs_model` (offline, it has no rules to decide by) or
    /// `not_configured` (it runs the repository's own command, and none is configured).
    pub reason: &'static str,
    /// The `git config` key to set, for `not_configured`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Plan {
    /// The names of the activities left out.
    pub fn left_out_names(&self) -> Vec<String> {
        self.left_out.iter().map(|l| l.activity.clone()).collect()
    }

    /// Offline: keeps only the activities that can decide without a model, and notes the rest
    /// (in `left_out` and in the reasoning the plan's event records).
    fn keep_offline_capable(&mut self, registry: &Registry) {
        let (kept, left_out): (Vec<String>, Vec<String>) =
            self.activities.drain(..).partition(|name| {
                registry
                    .activity(name)
                    .is_some_and(|definition| rules::of(definition).decides_offline())
            });
        self.activities = kept;
        if left_out.is_empty() {
            return;
        }
        self.reasoning.push_str(&format!(
            "; offline, left out {} (need a model)",
            left_out.join(", ")
        ));
        self.left_out = left_out
            .into_iter()
            .map(|activity| LeftOut {
                activity,
                reason: "needs_model",
                key: None,
            })
            .collect();
    }

    /// Leaves out the activities whose own command is not configured (see
    /// [`super::effects`]): a plan is a suggestion, so a deploy nobody configured is noted
    /// rather than refusing the whole run.
    fn leave_out_unconfigured(&mut self, registry: &Registry, root: &std::path::Path) {
        while let Some(missing) = super::effects::unconfigured(registry, root, &self.activities) {
            self.activities.retain(|name| *name != missing.activity);
            self.reasoning.push_str(&format!(
                "; left out {} (`{}` is not set)",
                missing.activity, missing.key
            ));
            self.left_out.push(LeftOut {
                activity: missing.activity,
                reason: "not_configured",
                key: Some(missing.key),
            });
        }
    }
}

/// The JSON Schema of the planner's decision.
pub fn schema(registry: &Registry) -> Value {
    let names: Vec<&str> = registry
        .activities()
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["activities", "reasoning"],
        "properties": {
            "activities": {
                "type": "array",
                "description": "The activities to run, in the order to run them.",
                "minItems": 1,
                "maxItems": names.len().max(1),
                "items": {"type": "string", "enum": names},
            },
            "reasoning": {"type": "string", "maxLength": 400},
        },
    })
}

/// The catalogue the model chooses from: one line per activity, in canonical order.
pub fn catalogue(registry: &Registry) -> String {
    registry
        .activities()
        .iter()
        .map(|a| format!("- {} (order {}): {}", a.name, a.order, a.description.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rules' plan: every activity named by one of its registry keywords (`planner.keywords`)
/// or by its own name, in canonical order, with the activities that choose the service
/// (discover) first for a new idea (no service discovered yet). When nothing matches, the
/// `planner.fallback` activities are added: a new idea gets discover and plan, a known service
/// plan.
pub fn keyword_plan(registry: &Registry, input: &str, new_idea: bool) -> (Vec<String>, String) {
    let words: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let matches = |activity: &Activity| {
        words
            .iter()
            .any(|word| activity.planner.matches(&activity.name, word))
    };
    let first = |activity: &Activity| new_idea && rules::of(activity).chooses_service();
    let mut chosen: Vec<&Activity> = registry
        .activities()
        .iter()
        .filter(|activity| matches(activity) || first(activity))
        .collect();
    let matched_any = chosen.iter().any(|activity| !first(activity));
    let mut fallback = Vec::new();
    if !matched_any {
        for activity in registry.activities() {
            if activity.planner.fallback && !chosen.iter().any(|c| c.name == activity.name) {
                chosen.push(activity);
                fallback.push(activity.name.as_str());
            }
        }
    }
    let reasoning = format!(
        "keyword rules: {}{}",
        if matched_any {
            "activities named by words of the input".to_string()
        } else {
            format!("no activity named by the input, so {}", fallback.join(", "))
        },
        if new_idea {
            "; discover first, as no service has been discovered yet"
        } else {
            ""
        }
    );
    let chosen = chosen
        .iter()
        .map(|activity| activity.name.clone())
        .collect();
    (chosen, reasoning)
}

impl Engine<'_> {
    /// Decides which activities to run for `input`: the model if there is one and it answers
    /// usefully, else the keyword rules; an activity whose own command is not configured is
    /// left out. Nothing is recorded yet (see [`record`]).
    pub fn plan(&self, input: &str) -> Plan {
        let mut plan = self.plan_any(input);
        plan.leave_out_unconfigured(self.registry, &self.root);
        plan
    }

    /// The plan, configured or not.
    fn plan_any(&self, input: &str) -> Plan {
        let new_idea = self.is_new_idea();
        let fallback = |reason: &str, message: String, attempts, model| {
            let (activities, reasoning) = keyword_plan(self.registry, input, new_idea);
            Plan {
                activities,
                reasoning,
                decided_by: "rules",
                dropped: Vec::new(),
                fallback: Some(json!({"reason": reason, "message": message})),
                left_out: Vec::new(),
                attempts,
                model,
                format: Value::Null,
                repairs: 0,
            }
        };
        let client = match &self.decider {
            Decider::Model(client) => client,
            Decider::Offline { reason } => {
                let mut plan = fallback("offline", reason.clone(), Vec::new(), None);
                plan.keep_offline_capable(self.registry);
                return plan;
            }
        };
        let model = client.settings().model.value.clone();
        let request = self.plan_request(input);
        self.progress.thinking("planner");
        let answer = client.decide_watched(&request, &PlannerProgress(self.progress));
        self.progress.done_thinking();
        let (value, attempts, format, repairs) = match answer {
            Ok(decided) => (
                decided.value,
                decided.records,
                json!(decided.format),
                decided.repairs,
            ),
            Err(failure) => match salvage(&failure, &request.schema) {
                Some(value) => {
                    let repairs = failure.records.last().map_or(0, |r| r.turn);
                    (value, failure.records, Value::Null, repairs)
                }
                None => {
                    let reason = super::decider::llm_reason(&failure.error);
                    return fallback(
                        reason,
                        failure.error.to_string(),
                        failure.records,
                        Some(model),
                    );
                }
            },
        };
        let (activities, dropped) = known_activities(self.registry, &value);
        if activities.is_empty() {
            return fallback(
                "empty_plan",
                "the model's plan named no activity of the registry".into(),
                attempts,
                Some(model),
            );
        }
        Plan {
            activities,
            reasoning: value["reasoning"].as_str().unwrap_or_default().to_string(),
            decided_by: "model",
            dropped,
            fallback: None,
            left_out: Vec::new(),
            attempts,
            model: Some(model),
            format,
            repairs,
        }
    }

    /// A new idea: no service was named, or the one named was never discovered. Without a
    /// name, a service counts as discovered when its specification is in the work tree (a
    /// clone has the specifications without the events that wrote them) or when the log has a
    /// completed discover.
    fn is_new_idea(&self) -> bool {
        let service = self.options.service.as_deref();
        if service.is_none() && !super::existing::in_tree(self.root()).is_empty() {
            return false;
        }
        let Ok(manifests) = crate::fold_cache::manifests::query(self.repo, self.store, |index| {
            let mut manifests = Vec::new();
            for name in rules::service_choosers(self.registry) {
                manifests.extend(index.try_manifests(Some(name), service)?);
            }
            Ok(manifests)
        }) else {
            return true;
        };
        manifests.iter().all(|manifest| !manifest.has_result())
    }

    fn plan_request(&self, input: &str) -> DecisionRequest {
        let system = "You are the planner of SPECTRA, an engineering process run inside a Git \
            repository. Given a request, choose which activities to run and in what order, \
            only from the catalogue you are given. Start with discover when the request is a \
            new idea. Reply with one JSON object {\"activities\": [names], \"reasoning\": \
            string}, and nothing else."
            .to_string();
        let service = self
            .options
            .service
            .as_deref()
            .unwrap_or("(not chosen yet)");
        let user = format!(
            "Request: {input}\nService: {service}\n\nActivities you may choose:\n{}",
            catalogue(self.registry)
        );
        let schema = schema(self.registry);
        let max_tokens = crate::llm::estimate::max_tokens(&schema, PLAN_TOKEN_BUDGET);
        DecisionRequest {
            system,
            user,
            schema,
            schema_name: SCHEMA_NAME.into(),
            max_tokens: Some(max_tokens),
        }
    }
}

/// The last whole plan of a failed conversation, when it failed only by naming unknown
/// activities: with those names dropped it must validate against the schema. (A repair turn
/// that asked for some paths alone answered with those paths, not a plan: it is skipped.)
fn salvage(failure: &LlmFailure, schema: &Value) -> Option<Value> {
    if !matches!(failure.error, crate::llm::LlmError::InvalidOutput { .. }) {
        return None;
    }
    let whole_plan = |body: &crate::llm::record::Body| {
        let response: Value = serde_json::from_slice(body.as_bytes()).ok()?;
        let content = response["choices"][0]["message"]["content"].as_str()?;
        let (reply, _) = extract_json(content).ok()?;
        reply.get("activities").is_some().then_some(reply)
    };
    let reply = failure
        .records
        .iter()
        .rev()
        .filter_map(|r| r.response_body.as_ref())
        .find_map(whole_plan)?;
    let names = schema["properties"]["activities"]["items"]["enum"].as_array()?;
    let mut cleaned = reply.clone();
    cleaned
        .get_mut("activities")?
        .as_array_mut()?
        .retain(|name| names.contains(name));
    let validator = jsonschema::validator_for(schema).ok()?;
    validator.is_valid(&cleaned).then_some(reply)
}

/// The model's names split into those the registry has (deduplicated, in the model's order)
/// and those it does not.
fn known_activities(registry: &Registry, value: &Value) -> (Vec<String>, Vec<String>) {
    let mut known = Vec::new();
    let mut dropped = Vec::new();
    for name in value["activities"].as_array().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        if registry.activity(name).is_none() {
            dropped.push(name.to_string());
        } else if !known.iter().any(|k| k == name) {
            known.push(name.to_string());
        }
    }
    (known, dropped)
}

/// Records the planner's `llm.called` events and its `decision.made` under the run.
pub(super) fn record(recorder: &mut Recorder<'_>, plan: &Plan, service: Option<&str>) {
    let causes = match &plan.model {
        Some(model) => recorder.record_llm_attempts(None, service, model, &plan.attempts),
        None => Vec::new(),
    };
    let mut event = NewEvent::new(kind::DECISION_MADE)
        .subject(format!(
            "planner: {} chose {}",
            plan.decided_by,
            plan.activities.join(", ")
        ))
        .payload(json!({
            "decision": {"activities": plan.activities, "reasoning": plan.reasoning},
            "mode": "planner",
            "decided_by": plan.decided_by,
            "format": plan.format,
            "repairs": plan.repairs,
            "dropped": plan.dropped,
            "fallback": plan.fallback,
        }));
    event.causes = causes;
    if let Some(service) = service {
        event = event.service(service);
    }
    recorder.record(event);
}

/// Shows the planner's progress. Its attempts are recorded with the plan once the run starts:
/// the plan is made before the run exists, so there is nothing to record them under earlier.
struct PlannerProgress<'a>(&'a dyn super::Progress);

impl crate::llm::Watcher for PlannerProgress<'_> {
    fn writing(&self, tokens: u64, elapsed: std::time::Duration) {
        self.0.writing("planner", tokens, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(input: &str, new_idea: bool) -> Vec<String> {
        let registry = Registry::builtin().unwrap();
        keyword_plan(&registry, input, new_idea).0
    }

    #[test]
    fn keywords_choose_activities_in_canonical_order() {
        assert_eq!(
            plan("deploy it, then set up alerts and run the tests", false),
            ["test", "deploy", "monitor"]
        );
        assert_eq!(plan("optimise latency", false), ["optimise"]);
    }

    #[test]
    fn a_new_idea_always_starts_with_discover() {
        assert_eq!(plan("design the API", true), ["discover", "design"]);
        assert_eq!(plan("central logging", true), ["discover", "plan"]);
        assert_eq!(plan("central logging", false), ["plan"]);
    }

    /// The keywords and the fallback are the registry's, not the planner's own.
    #[test]
    fn keywords_and_the_fallback_come_from_the_registry() {
        let mut registry = Registry::builtin().unwrap();
        registry.edit_activity("optimise", |optimise| {
            optimise.planner.keywords = vec!["incident".into()];
            optimise.planner.fallback = true;
        });
        registry.edit_activity("plan", |plan| plan.planner.fallback = false);
        let (chosen, _) = keyword_plan(&registry, "an incident at night", false);
        assert_eq!(chosen, ["optimise"]);
        let (chosen, _) = keyword_plan(&registry, "latency", false);
        assert_eq!(
            chosen,
            ["optimise"],
            "latency is no longer a keyword: fallback"
        );
        let (chosen, reasoning) = keyword_plan(&registry, "central logging", true);
        assert_eq!(chosen, ["discover", "optimise"]);
        assert!(reasoning.contains("so optimise"), "{reasoning}");
    }

    #[test]
    fn the_schema_enumerates_the_registry() {
        let registry = Registry::builtin().unwrap();
        let schema = schema(&registry);
        assert_eq!(
            schema["properties"]["activities"]["items"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            12
        );
        let (known, dropped) = known_activities(
            &registry,
            &json!({"activities": ["discover", "launch-rocket", "discover", "plan"]}),
        );
        assert_eq!(known, ["discover", "plan"]);
        assert_eq!(dropped, ["launch-rocket"]);
    }
}
