//! Placeholder for the activity document renderer (replaced by the real module on merge).
#![allow(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const DIR: &str = ".spectra";

pub fn path(service: &str, activity: &str) -> String {
    format!("{DIR}/{service}/{activity}.md")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontMatter {
    pub service: String,
    pub activity: String,
    pub run: String,
    pub event: String,
    pub outcome: String,
    pub gates: BTreeMap<String, GateEntry>,
    pub decided_by: String,
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateEntry {
    pub result: String,
    pub level: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(String);

pub fn render(front: &FrontMatter, decision: &Value) -> Result<String, DocumentError> {
    let yaml = crate::yaml::to_string(front).map_err(DocumentError)?;
    Ok(format!(
        "---\n{yaml}---\n\n# {} — {}\n\n```json\n{}\n```\n",
        front.activity,
        front.service,
        serde_json::to_string_pretty(decision).unwrap_or_default()
    ))
}
