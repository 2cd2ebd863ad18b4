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

/// A named gate: all its checks must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityGate {
    /// The gate's name.
    pub name: String,
    /// What it checks, in a sentence.
    pub description: String,
    /// The checks that must all hold.
    pub checks: Vec<Check>,
}

/// How one gate fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateResult {
    /// The gate's name.
    pub name: String,
    /// Whether every check held.
    pub passed: bool,
    /// One line per failing check; empty when the gate passed.
    pub failures: Vec<String>,
}

impl QualityGate {
    /// Runs every check against the decision and the observed facts.
    pub fn evaluate(&self, decision: &Value, facts: &BTreeMap<String, bool>) -> GateResult {
        let failures: Vec<String> = self
            .checks
            .iter()
            .filter_map(|check| check.failure(decision, facts))
            .collect();
        GateResult {
            name: self.name.clone(),
            passed: failures.is_empty(),
            failures,
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
                "fact seen was not observed"
            ]
        );
    }
}
