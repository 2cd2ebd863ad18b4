//! The services that already have a specification in the work tree, and how discover treats
//! them: discovering such a name again is an update of that service, never a silent overwrite.
//!
//! The specifications in the tree (`.spectra/*.specification.yaml`) are read as well as the log:
//! a clone that has a teammate's committed specification but not her events still knows the
//! service exists. An update needs the user's `--update` ([`super::RunOptions::update`]); with
//! it the new specification keeps what the earlier one recorded in `stages` and `documents`
//! (the other activities' results), and the run reports which fields changed
//! (`outputs.update`, see docs/discover.md).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::specification::path as specification_path;
use super::{ActivityError, ActivityWork, Engine};
use crate::service_name;

/// The reason of the error that refuses to overwrite a specification without `--update`.
pub const SERVICE_EXISTS: &str = "service_exists";

/// The output key that says the run updated an existing specification.
pub const UPDATE_OUTPUT: &str = "update";

/// Fields that change on every discover and say nothing about the service.
const BOOKKEEPING: [&str; 2] = ["discovery.run", "discovery.decided_at"];

/// A service with a specification in the work tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingService {
    /// The service's name, from the file's name.
    pub name: String,
    /// The specification's path relative to the repository root.
    pub path: String,
    /// The first line of the specification's `purpose`, or a note when it has none.
    pub purpose: String,
}

/// The services with a specification in the work tree at `root`, by name. Files whose name is
/// not a valid service name are not specifications spectra writes, and are left out.
pub fn in_tree(root: &Path) -> Vec<ExistingService> {
    let Ok(entries) = std::fs::read_dir(root.join(".spectra")) else {
        return Vec::new();
    };
    let mut services: Vec<ExistingService> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let name = file.strip_suffix(".specification.yaml")?.to_string();
            service_name::validate(&name).ok()?;
            let path = specification_path(&name);
            let purpose = read(root, &path).map_or_else(
                || "(unreadable specification)".to_string(),
                |spec| purpose_line(&spec),
            );
            Some(ExistingService {
                name,
                path,
                purpose,
            })
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    services
}

/// One line per service (`- name: purpose`), for the `{{services}}` prompt variable.
pub fn prompt_lines(services: &[ExistingService]) -> Vec<String> {
    services
        .iter()
        .map(|service| format!("- {}: {}", service.name, service.purpose))
        .collect()
}

fn purpose_line(specification: &Value) -> String {
    specification["purpose"]
        .as_str()
        .and_then(|purpose| purpose.lines().map(str::trim).find(|l| !l.is_empty()))
        .map_or_else(|| "(no purpose recorded)".to_string(), str::to_string)
}

/// The specification at `path` (relative to `root`) as JSON, when it exists and parses.
fn read(root: &Path, path: &str) -> Option<Value> {
    let text = std::fs::read_to_string(root.join(path)).ok()?;
    crate::yaml::to_json(&text).ok()
}

/// Refuses, in `work`, to discover `service` again when it already has a specification and the
/// user did not pass `--update`: the activity is blocked with [`SERVICE_EXISTS`]. Returns
/// whether it refused.
pub(crate) fn refuse_without_update(
    engine: &Engine<'_>,
    service: &str,
    work: &mut ActivityWork,
) -> bool {
    let path = specification_path(service);
    if engine.options.update || !engine.root().join(&path).is_file() {
        return false;
    }
    work.blocked = true;
    work.errors.push(ActivityError::new(
        SERVICE_EXISTS,
        format!("service {service} already has a specification ({path})"),
    ));
    true
}

/// The specification a run is about to replace: what it recorded, and the commit that last
/// changed it.
pub(crate) struct Earlier {
    specification: Value,
    commit: Option<String>,
}

impl Earlier {
    /// The specification of `service` in the work tree, if it has one that parses.
    pub(crate) fn read(engine: &Engine<'_>, service: &str) -> Option<Earlier> {
        let path = specification_path(service);
        let specification = read(engine.root(), &path)?;
        let commit = engine.worktree().last_commit_of(&path);
        Some(Earlier {
            specification,
            commit,
        })
    }

    /// Keeps in `current` (a map such as `stages` or `documents`) every entry the earlier
    /// specification had under `field` that this run does not set itself: other activities'
    /// results survive a new discover.
    pub(crate) fn keep(&self, field: &str, current: &mut BTreeMap<String, String>) {
        let Some(earlier) = self.specification[field].as_object() else {
            return;
        };
        for (key, value) in earlier {
            if let Some(value) = value.as_str() {
                current
                    .entry(key.clone())
                    .or_insert_with(|| value.to_string());
            }
        }
    }

    /// `outputs.update`: the commit that last changed the earlier specification (when it was
    /// committed) and the fields that differ in `new`.
    pub(crate) fn summary(&self, new: &impl serde::Serialize) -> Value {
        let new = serde_json::to_value(new).unwrap_or(Value::Null);
        let mut update = json!({"changed": changed_fields(&self.specification, &new)});
        if let Some(commit) = &self.commit {
            update["previous_commit"] = json!(commit);
        }
        update
    }
}

/// The top-level fields of `old` and `new` that differ, named `field.key` one level down when
/// both sides are maps; sorted, without the fields every run changes ([`BOOKKEEPING`]).
pub fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let mut changed = Vec::new();
    for field in union_of_keys(old, new) {
        let (before, after) = (&old[&field], &new[&field]);
        if before == after {
            continue;
        }
        if before.is_object() && after.is_object() {
            for key in union_of_keys(before, after) {
                let name = format!("{field}.{key}");
                if before[&key] != after[&key] && !BOOKKEEPING.contains(&name.as_str()) {
                    changed.push(name);
                }
            }
        } else {
            changed.push(field);
        }
    }
    changed
}

fn union_of_keys(a: &Value, b: &Value) -> std::collections::BTreeSet<String> {
    [a, b]
        .into_iter()
        .filter_map(Value::as_object)
        .flat_map(|map| map.keys().cloned())
        .collect()
}

/// The subject of the commit that writes the specification of `service`: an update when the
/// run replaces an earlier specification.
pub(crate) fn commit_subject(work: &ActivityWork, service: &str) -> String {
    let verb = if work.extra_outputs.contains_key(UPDATE_OUTPUT) {
        "update"
    } else {
        "add"
    };
    format!("{}: {verb} specification for {service}", work.activity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_name_the_second_level_and_skip_bookkeeping() {
        let old = json!({
            "service": "logging",
            "purpose": "old",
            "stages": {"discover": "complete"},
            "dependencies": [],
            "discovery": {"run": "a", "decided_at": "t1", "requirements": {"functional": []}, "risks": 1},
        });
        let new = json!({
            "service": "logging",
            "purpose": "new",
            "stages": {"discover": "complete"},
            "dependencies": ["x"],
            "discovery": {"run": "b", "decided_at": "t2", "requirements": {"functional": ["f"]}, "risks": 1},
            "documents": {"discover": ".spectra/logging/discover.md"},
        });
        assert_eq!(
            changed_fields(&old, &new),
            [
                "dependencies",
                "discovery.requirements",
                "documents",
                "purpose"
            ]
        );
        assert!(changed_fields(&old, &old).is_empty());
    }

    #[test]
    fn earlier_entries_are_kept_unless_the_run_sets_them() {
        let earlier = Earlier {
            specification: json!({"stages": {"discover": "complete", "plan": "complete"}}),
            commit: None,
        };
        let mut stages = BTreeMap::from([("discover".to_string(), "failed".to_string())]);
        earlier.keep("stages", &mut stages);
        assert_eq!(stages["discover"], "failed");
        assert_eq!(stages["plan"], "complete");
        let mut documents = BTreeMap::new();
        earlier.keep("documents", &mut documents);
        assert!(documents.is_empty(), "nothing earlier, nothing added");
    }

    #[test]
    fn the_services_in_the_tree_are_read_by_file_name_with_their_purpose() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".spectra");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("logging.specification.yaml"),
            "service: logging\npurpose: |\n  Logs are scattered\n  across hosts\n",
        )
        .unwrap();
        std::fs::write(dir.join("billing.specification.yaml"), "service: billing\n").unwrap();
        std::fs::write(dir.join("Not Valid.specification.yaml"), "x: 1\n").unwrap();
        std::fs::write(dir.join("service-catalog.yaml"), "services: []\n").unwrap();
        let services = in_tree(root.path());
        assert_eq!(
            prompt_lines(&services),
            [
                "- billing: (no purpose recorded)",
                "- logging: Logs are scattered"
            ]
        );
        assert_eq!(services[1].path, ".spectra/logging.specification.yaml");
        assert!(in_tree(&root.path().join("nowhere")).is_empty());
    }
}
