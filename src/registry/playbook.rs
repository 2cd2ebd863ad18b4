//! A playbook as the rest of the tool sees it: what it is for, how to run and undo it, and the
//! inputs it takes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Origin;
use super::runbook::RunbookIndex;
use super::template::Arg;

/// The JSON Schema `format` that marks an input as a path inside the repository. The runner
/// refuses such inputs when they would point outside it.
pub const PATH_FORMAT: &str = "path";

/// One playbook definition. `Serialize` is also the user-facing form (`registry show --format
/// json`); `Deserialize` reads it back, for the registry cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Playbook {
    /// The playbook's id, unique in the registry.
    pub id: String,
    /// The activities that may run it (each must also name it or its domain).
    pub activities: Vec<String>,
    /// The group it belongs to, which activities may name instead of each id.
    pub domain: String,
    /// What it does, in a sentence.
    pub description: String,
    /// Markdown given to the model as context.
    pub runbook: Option<String>,
    /// The argv template; `None` for a runbook-only playbook.
    pub run: Option<Vec<Arg>>,
    /// The JSON Schema of the inputs (an object schema).
    pub inputs: Value,
    /// The argv template that undoes `run`, given the same inputs.
    pub undo: Option<Vec<Arg>>,
    /// Whether its effect can be undone.
    pub reversible: bool,
    /// Whether running it twice with the same inputs does what running it once does.
    pub idempotent: bool,
    /// Whether undo runs its `undo` also when its run did not finish (interrupted, killed, timed
    /// out): its undo finds out for itself whether the effect happened, and leaves alone what
    /// it did not make.
    #[serde(default)]
    pub undo_unfinished: bool,
    /// Whether it records what the run's other effects did (a release tag names a deployment),
    /// so that an undo compensates it only after the others succeeded, and a redo runs it again
    /// only after them: the record follows the effect, never the other way round.
    #[serde(default)]
    pub undo_last: bool,
    /// Seconds the run may take before its process group is killed.
    pub timeout: f64,
    /// Where the argv comes from when it is the repository's own command, set in `git config`
    /// rather than written in the registry (provision, deploy, monitor).
    #[serde(default)]
    pub configured: Option<Configured>,
    /// A runbook's index fields; `None` for a playbook written as YAML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<RunbookIndex>,
    /// The file and layer it was defined in.
    pub origin: Origin,
}

/// What choosing a playbook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookKind {
    /// It runs a command (or is context only, written as YAML).
    Command,
    /// Its Markdown steps go into the next decision; it runs nothing itself.
    Runbook,
}

impl PlaybookKind {
    /// The word `registry list` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybookKind::Command => "command",
            PlaybookKind::Runbook => "runbook",
        }
    }
}

impl Playbook {
    /// Whether it is a runbook (a Markdown file) or a command.
    pub fn kind(&self) -> PlaybookKind {
        if self.index.is_some() {
            PlaybookKind::Runbook
        } else {
            PlaybookKind::Command
        }
    }

    /// The timeout as a [`Duration`]. Validation keeps `timeout` within (0, 86400]; a value
    /// that slipped past it (a hand-built `Playbook`) counts as no time at all rather than
    /// forever.
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout).unwrap_or(Duration::ZERO)
    }

    /// Whether it declares a way to undo its run: an `undo` argv, or a configured undo key.
    pub fn has_undo(&self) -> bool {
        self.undo.is_some()
            || self
                .configured
                .as_ref()
                .is_some_and(|configured| configured.undo.is_some())
    }

    /// The inputs whose schema declares `format: path` (directly or for array items).
    pub fn path_inputs(&self) -> Vec<&str> {
        let Some(properties) = self.inputs.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        properties
            .iter()
            .filter(|(_, schema)| is_path_schema(schema))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// The `git config` keys of a playbook whose argv is the repository's own command: words split
/// on whitespace, no shell. The registry names the keys; the user's config holds the commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configured {
    /// The key of the command to run, e.g. `spectra.deploy.command`. With an `environment`
    /// input `ENV`, the key is `spectra.deploy.ENV.command` instead (see [`Configured::run_key`]).
    pub run: String,
    /// The key of the command that undoes it, e.g. `spectra.deploy.rollbackCommand`.
    #[serde(default)]
    pub undo: Option<String>,
    /// The key of a timeout overriding the playbook's `timeout` (`30s`, `500ms`, `10m`).
    #[serde(default)]
    pub timeout: Option<String>,
}

impl Configured {
    /// The key of the command to run: `run`, or with `environment` the same key with the
    /// environment inserted before its last part (`spectra.deploy.staging.command`).
    pub fn run_key(&self, environment: Option<&str>) -> String {
        match (environment, self.run.rsplit_once('.')) {
            (Some(environment), Some((section, name))) => format!("{section}.{environment}.{name}"),
            _ => self.run.clone(),
        }
    }
}

fn is_path_schema(schema: &Value) -> bool {
    let declares =
        |schema: &Value| schema.get("format").and_then(Value::as_str) == Some(PATH_FORMAT);
    declares(schema) || schema.get("items").is_some_and(declares)
}

/// The input schema of a playbook that declares none: an empty object and nothing else.
pub fn no_inputs() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": false
    })
}
