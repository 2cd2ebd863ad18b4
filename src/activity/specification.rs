//! The service's specification, `.spectra/<service>.specification.yaml`: what discover wrote,
//! and the summary every later activity updates (`stages`, `documents`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Outcome;

/// Where a service's specification lives, relative to the repository root.
pub fn path(service: &str) -> String {
    format!(".spectra/{service}.specification.yaml")
}

/// The specification document: what the later activities build on. A struct, so the file
/// reads top-down in this order; fields a person added by hand are kept, after these.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Specification {
    /// The service's name.
    #[serde(default)]
    pub service: String,
    /// The problem it solves, in a sentence.
    #[serde(default)]
    pub purpose: Value,
    /// Where it stands and where it is going.
    #[serde(default)]
    pub maturity: Value,
    /// Services it depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Each activity's state for this service: `complete`, `incomplete` or `failed`.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Each activity's reviewable document, by activity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub documents: BTreeMap<String, String>,
    /// Discover's checks, by name.
    #[serde(default)]
    pub quality_gates: Value,
    /// How the service is deployed.
    #[serde(default)]
    pub deployment: Value,
    /// What discover found.
    #[serde(default)]
    pub discovery: Value,
    /// Anything else the file holds, kept as it was.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The stage word of an activity that ended with `outcome`, or `None` when the activity left
/// no result to record (blocked, interrupted).
pub fn stage(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Succeeded => Some("complete"),
        Outcome::Incomplete => Some("incomplete"),
        Outcome::Failed => Some("failed"),
        _ => None,
    }
}

impl Specification {
    /// Reads a specification's text (YAML).
    pub fn parse(text: &str) -> Result<Specification, String> {
        let value = crate::yaml::to_json(text).map_err(|error| error.to_string())?;
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    /// The file's text: a comment naming who wrote it, then the YAML.
    pub fn to_text(&self, activity: &str, run: &str) -> Result<String, String> {
        let yaml = crate::yaml::to_string(self)?;
        Ok(format!(
            "# Written by git spectra {activity} (run {run}).\n{yaml}"
        ))
    }

    /// Records that `activity` ended as `stage` and wrote `document`.
    pub fn record_stage(&mut self, activity: &str, stage: &str, document: Option<&str>) {
        self.stages.insert(activity.to_string(), stage.to_string());
        if let Some(document) = document {
            self.documents
                .insert(activity.to_string(), document.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_update_keeps_every_other_field_and_what_a_person_added() {
        let text = "# Written by git spectra discover (run r1).\nservice: logging\npurpose: logs\nstages:\n  discover: complete\nowner: ops team\n";
        let mut spec = Specification::parse(text).unwrap();
        spec.record_stage("design", "incomplete", Some(".spectra/logging/design.md"));
        let again = Specification::parse(&spec.to_text("design", "r2").unwrap()).unwrap();
        assert_eq!(again.purpose, "logs");
        assert_eq!(again.stages["discover"], "complete");
        assert_eq!(again.stages["design"], "incomplete");
        assert_eq!(again.documents["design"], ".spectra/logging/design.md");
        assert_eq!(again.other["owner"], "ops team");
    }
}
