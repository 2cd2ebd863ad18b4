//! Quality gates: named checks over an activity's decision and the facts observed while it ran.
//!
//! A gate passes when every one of its checks holds. Checks look at the decision through JSON
//! Pointers (`/problem/statement`) or at facts, booleans the activity loop observed for itself
//! (`service_name_valid`, `no_duplicate_service`), so a gate can hold the model to what the
//! tool saw rather than to what the model claims.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One check inside a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The value at the pointer exists and is not null, `""`, `[]` or `{}`.
    NonEmpty(String),
    /// At least one of the pointed-at values is non-empty.
    AnyNonEmpty(Vec<String>),
    /// The value at the pointer is `true`.
    IsTrue(String),
    /// The number at `path` is at least `value`.
    AtLeast {
        /// A JSON pointer into the result.
        path: String,
        /// The least the number may be.
        value: f64,
    },
    /// The observed fact of that name is `true`.
    Fact(String),
}

impl Check {
    /// The JSON Pointers this check reads from the decision.
    pub fn pointers(&self) -> Vec<&str> {
        match self {
            Check::NonEmpty(pointer) | Check::IsTrue(pointer) => vec![pointer],
            Check::AtLeast { path, .. } => vec![path],
            Check::AnyNonEmpty(pointers) => pointers.iter().map(String::as_str).collect(),
            Check::Fact(_) => Vec::new(),
        }
    }

    /// Why this check fails on `decision` and `facts`, or `None` when it holds.
    pub fn failure(&self, decision: &Value, facts: &BTreeMap<String, bool>) -> Option<String> {
        match self {
            Check::NonEmpty(pointer) => {
                (!is_non_empty(decision.pointer(pointer))).then(|| format!("{pointer} is empty"))
            }
            Check::AnyNonEmpty(pointers) => (!pointers
                .iter()
                .any(|pointer| is_non_empty(decision.pointer(pointer))))
            .then(|| format!("all of {} are empty", pointers.join(", "))),
            Check::IsTrue(pointer) => (decision.pointer(pointer) != Some(&Value::Bool(true)))
                .then(|| format!("{pointer} is not true")),
            Check::AtLeast { path, value } => {
                let actual = decision.pointer(path).and_then(Value::as_f64);
                match actual {
                    Some(actual) if actual >= *value => None,
                    Some(actual) => Some(format!("{path} is {actual}, below {value}")),
                    None => Some(format!("{path} is not a number")),
                }
            }
            Check::Fact(name) => match facts.get(name) {
                Some(true) => None,
                Some(false) => Some(format!("fact {name} is false")),
                None => Some(format!("fact {name} was not observed")),
            },
        }
    }
}

fn is_non_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !text.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(fields)) => !fields.is_empty(),
        Some(Value::Bool(_) | Value::Number(_)) => true,
    }
}

/// Whether a failed gate decides the activity's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateLevel {
    /// A failed required gate makes the activity `incomplete` (the default).
    #[default]
    Required,
    /// Reported only: a failed advisory gate never changes the outcome.
    Advisory,
}

impl GateLevel {
    /// The word the registry, events and documents use.
    pub fn word(self) -> &'static str {
        match self {
            GateLevel::Required => "required",
            GateLevel::Advisory => "advisory",
        }
    }
}

/// A named gate: all its checks must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityGate {
    /// The gate's name.
    pub name: String,
    /// What it checks, in a sentence.
    pub description: String,
    /// The checks that must all hold.
    pub checks: Vec<Check>,
    /// Whether a failure decides the outcome.
    #[serde(default)]
    pub level: GateLevel,
}

/// How a gate was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check held.
    Passed,
    /// A check failed.
    Failed,
    /// Nothing could judge it: its checks read a decision no model made (offline rules), or a
    /// fact that was never observed, and none of them failed.
    NotJudged,
}

impl Verdict {
    /// The word events and documents use.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotJudged => "not_judged",
        }
    }
}

/// What a gate's checks read: facts spectra observed, the decision, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Only facts spectra observed.
    Fact,
    /// Only the decision.
    Decision,
    /// Facts and the decision: a fact that fails fails the gate whatever the decision says.
    FactAndDecision,
}

/// How one gate fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateResult {
    /// The gate's name.
    pub name: String,
    /// Whether every check held.
    pub passed: bool,
    /// Passed, failed, or not judged.
    pub verdict: Verdict,
    /// Whether a failure decides the outcome.
    pub level: GateLevel,
    /// What the checks read.
    pub basis: Basis,
    /// One line per failing check; empty when the gate passed.
    pub failures: Vec<String>,
}

/// What the checks may read: the decision only counts when a model made it (an offline
/// decision is rules filling in the input, not a judgement).
pub struct Evidence<'a> {
    /// The decision, when there is one.
    pub decision: &'a Value,
    /// Whether the decision is a model's judgement that decision checks may read.
    pub decision_judged: bool,
    /// The facts spectra observed.
    pub facts: &'a BTreeMap<String, bool>,
}

impl QualityGate {
    /// Runs every check against the decision and the observed facts, as if a model decided.
    pub fn evaluate(&self, decision: &Value, facts: &BTreeMap<String, bool>) -> GateResult {
        self.judge(&Evidence {
            decision,
            decision_judged: true,
            facts,
        })
    }

    /// Judges the gate: failed when any check fails (a fact that fails always counts), not
    /// judged when the rest could not be read, else passed.
    pub fn judge(&self, evidence: &Evidence<'_>) -> GateResult {
        let decision_readable = evidence.decision_judged && evidence.decision.is_object();
        let mut failures = Vec::new();
        let mut unknown = false;
        for check in &self.checks {
            let readable = match check {
                Check::Fact(name) => evidence.facts.contains_key(name),
                _ => decision_readable,
            };
            if !readable {
                unknown = true;
            } else if let Some(failure) = check.failure(evidence.decision, evidence.facts) {
                failures.push(failure);
            }
        }
        let verdict = if !failures.is_empty() {
            Verdict::Failed
        } else if unknown {
            Verdict::NotJudged
        } else {
            Verdict::Passed
        };
        GateResult {
            name: self.name.clone(),
            passed: verdict == Verdict::Passed,
            verdict,
            level: self.level,
            basis: self.basis(),
            failures,
        }
    }

    /// What the gate's checks read.
    pub fn basis(&self) -> Basis {
        let facts = self
            .checks
            .iter()
            .filter(|check| matches!(check, Check::Fact(_)))
            .count();
        match facts {
            0 => Basis::Decision,
            n if n == self.checks.len() => Basis::Fact,
            _ => Basis::FactAndDecision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_gate_passes_only_when_every_check_holds() {
        let gate = QualityGate {
            name: "g".into(),
            description: String::new(),
            checks: vec![
                Check::NonEmpty("/a".into()),
                Check::AnyNonEmpty(vec!["/b".into(), "/c".into()]),
                Check::IsTrue("/d".into()),
                Check::AtLeast {
                    path: "/e".into(),
                    value: 0.5,
                },
                Check::Fact("seen".into()),
            ],
            level: GateLevel::Required,
        };
        let facts = BTreeMap::from([("seen".to_string(), true)]);
        let good = json!({"a": "x", "b": [], "c": ["y"], "d": true, "e": 0.7});
        assert!(gate.evaluate(&good, &facts).passed);

        let bad = json!({"a": " ", "b": [], "c": {}, "d": "yes", "e": 0.2});
        let result = gate.evaluate(&bad, &BTreeMap::new());
        assert!(!result.passed);
        assert_eq!(
            result.failures,
            [
                "/a is empty",
                "all of /b, /c are empty",
                "/d is not true",
                "/e is 0.2, below 0.5",
            ]
        );
        assert_eq!(result.verdict, Verdict::Failed);
    }

    fn gate(checks: Vec<Check>) -> QualityGate {
        QualityGate {
            name: "g".into(),
            description: String::new(),
            checks,
            level: GateLevel::Required,
        }
    }

    #[test]
    fn an_offline_decision_leaves_decision_gates_not_judged_but_facts_still_fail_them() {
        let facts = BTreeMap::from([("valid".to_string(), true), ("fresh".to_string(), false)]);
        let judge = |gate: &QualityGate| {
            gate.judge(&Evidence {
                decision: &json!({"a": "x"}),
                decision_judged: false,
                facts: &facts,
            })
        };
        let by_decision = judge(&gate(vec![Check::NonEmpty("/a".into())]));
        assert_eq!(by_decision.verdict, Verdict::NotJudged);
        assert_eq!(by_decision.basis, Basis::Decision);

        let by_fact = judge(&gate(vec![Check::Fact("valid".into())]));
        assert_eq!(
            (by_fact.verdict, by_fact.basis),
            (Verdict::Passed, Basis::Fact)
        );

        // The model's claim cannot pass a gate that a fact contradicts, judged or not.
        let mixed = gate(vec![
            Check::NonEmpty("/a".into()),
            Check::Fact("fresh".into()),
        ]);
        assert_eq!(judge(&mixed).verdict, Verdict::Failed);
        assert_eq!(
            mixed.evaluate(&json!({"a": "x"}), &facts).verdict,
            Verdict::Failed
        );
        assert_eq!(mixed.basis(), Basis::FactAndDecision);
    }

    #[test]
    fn a_fact_never_observed_leaves_its_gate_not_judged() {
        let result =
            gate(vec![Check::Fact("tests_passed".into())]).evaluate(&json!({}), &BTreeMap::new());
        assert_eq!(result.verdict, Verdict::NotJudged);
        assert!(!result.passed);
    }
}
