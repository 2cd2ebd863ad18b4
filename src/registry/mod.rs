//! The registry: the single source of truth for which activities exist, what they ask the model,
//! and which playbooks each may run.
//!
//! Defaults live in `registry/` and are compiled into the binary; a repository adds or replaces
//! entries (by activity name or playbook id) with files under `.spectra/registry/`. Loading
//! validates everything and reports every problem with its file, line and column; a registry
//! with any problem is never used, so a broken override cannot silently fall back to a default.

mod activity;
mod bounds;
mod cache;
mod check;
mod error;
mod format;
mod gate;
pub mod import;
mod playbook;
pub mod rank;
mod runbook;
mod source;
pub mod template;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use activity::{
    Activity, Behaviour, CANONICAL_ACTIVITIES, CommandHelp, Effect, PROMPT_VARIABLES, PlannerRules,
    PlaybookRef, Prompts,
};
pub use check::compile_schema;

/// The playbook that tags a release after a successful effect; only the effect rules choose it.
pub const RELEASE_TAG_PLAYBOOK: &str = "release.tag";
/// The playbook that probes the service catalog's URLs; only the effect rules choose it, with
/// the run's service as its one input.
pub const PROBE_PLAYBOOK: &str = "service.probe";
pub use error::{Problem, RegistryError};
pub use gate::{Basis, Check, Evidence, GateLevel, GateResult, QualityGate, Verdict};
pub use playbook::{Configured, PATH_FORMAT, Playbook, PlaybookKind};
pub use runbook::{RunbookIndex, split as split_front_matter};
pub use source::{
    ACTIVITY_SCHEMA, EMBEDDED, Kind, Layer, PLAYBOOK_SCHEMA, REPOSITORY_DIR, RUNBOOK_SCHEMA,
    RUNBOOK_SUFFIX, SourceFile, TEMPLATE_SUFFIX,
};
pub use template::prompt_variables;

use check::Parsed;
use format::{ActivityFile, PlaybookFile};

/// Where an entry was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The file, as [`Problem::file`] names it.
    pub file: String,
    /// Built in, or from the repository.
    pub layer: Layer,
}

/// A loaded, validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Sorted by `order`.
    activities: Vec<Activity>,
    playbooks: BTreeMap<String, Playbook>,
    /// What is allowed but works badly (constraints a grammar-constrained server does not
    /// enforce), in the repository's files; empty when loaded from the cache.
    warnings: Vec<Problem>,
    /// The SHA-256 over every file it was loaded from (the cache key).
    key: String,
}

impl Registry {
    /// The registry compiled into the binary, without any repository's additions.
    pub fn builtin() -> Result<Registry, RegistryError> {
        Registry::from_sources(source::builtin())
    }

    /// The built-in registry merged with `<repo_root>/.spectra/registry/`.
    pub fn load(repo_root: &Path) -> Result<Registry, RegistryError> {
        let (files, problems) = Registry::sources(repo_root);
        Registry::load_sources(files, problems)
    }

    /// Like [`Registry::load`], through the cache file `registry.json` in `cache_dir` (usually
    /// `<git common dir>/spectra/cache`) when one is given: the same result, without parsing
    /// and validating the files again when none of them changed. A registry with problems is
    /// never cached, and a cache that cannot be read or written is ignored.
    pub fn load_cached(
        repo_root: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Registry, RegistryError> {
        let (files, problems) = Registry::sources(repo_root);
        // Problems found while reading the directory belong to no source file, so the key
        // cannot see them: report them from a real load.
        let Some(cache_dir) = cache_dir.filter(|_| problems.is_empty()) else {
            return Registry::load_sources(files, problems);
        };
        let path = cache_dir.join(cache::FILE_NAME);
        let key = cache::key(&files);
        if let Some(registry) = cache::read(&path, &key) {
            return Ok(registry);
        }
        let registry = Registry::load_sources(files, problems)?;
        cache::write(&path, &key, &registry);
        Ok(registry)
    }

    /// The built-in files followed by the repository's, and any problem reading the latter.
    fn sources(repo_root: &Path) -> (Vec<SourceFile>, Vec<Problem>) {
        let (repository_files, problems) = source::repository(repo_root);
        let mut files = source::builtin();
        files.extend(repository_files);
        (files, problems)
    }

    fn load_sources(
        files: Vec<SourceFile>,
        mut problems: Vec<Problem>,
    ) -> Result<Registry, RegistryError> {
        match Registry::from_sources(files) {
            Ok(registry) if problems.is_empty() => Ok(registry),
            Ok(_) => Err(RegistryError::Invalid(problems)),
            Err(error) => {
                problems.extend(error.problems().iter().cloned());
                problems.sort();
                Err(RegistryError::Invalid(problems))
            }
        }
    }

    /// Parses, merges (later layers replace earlier ones by name) and validates `files`.
    pub fn from_sources(files: Vec<SourceFile>) -> Result<Registry, RegistryError> {
        let key = cache::key(&files);
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut activities = Vec::new();
        let mut playbooks = Vec::new();
        let mut templates = Vec::new();
        for file in files {
            match file.kind {
                Kind::Activity => activities.extend(parse::<ActivityFile>(file, &mut problems)),
                Kind::Playbook => playbooks.extend(parse::<PlaybookFile>(file, &mut problems)),
                Kind::Template => templates.push(file),
                Kind::Runbook => playbooks.extend(parse_runbook(file, &mut problems)),
            }
        }
        // The built-in files are checked by a unit test (`built_in_files_pass_every_check`), so
        // a release binary does not compile their JSON Schemas again on every command: that was
        // a third of loading the registry.
        for activity in activities.iter().filter(|a| a.layer != Layer::Builtin) {
            check::activity_file(activity, &mut problems);
            check::activity_warnings(activity, &mut warnings);
        }
        for playbook in playbooks.iter().filter(|p| p.layer != Layer::Builtin) {
            check::playbook_file(playbook, &mut problems);
            check::playbook_warnings(playbook, &mut warnings);
        }
        let activities = merge(activities, |a| &a.name, "activity", &mut problems);
        let playbooks = merge(playbooks, |p| &p.id, "playbook id", &mut problems);
        check::cross(
            &activities.values().collect::<Vec<_>>(),
            &playbooks.values().collect::<Vec<_>>(),
            &mut problems,
        );
        let documents = documents(templates, &activities, &mut problems);
        if !problems.is_empty() {
            problems.sort();
            problems.dedup();
            return Err(RegistryError::Invalid(problems));
        }
        warnings.sort();
        let mut registry = Registry::assemble(activities, playbooks, documents);
        registry.warnings = warnings;
        registry.key = key;
        Ok(registry)
    }

    fn assemble(
        activities: BTreeMap<String, Parsed<ActivityFile>>,
        playbooks: BTreeMap<String, Parsed<PlaybookFile>>,
        mut documents: BTreeMap<String, crate::document::Template>,
    ) -> Registry {
        let origin = |file: String, layer| Origin { file, layer };
        let mut activities: Vec<Activity> = activities
            .into_iter()
            .map(|(name, parsed)| Activity {
                document: documents.remove(&name),
                ..parsed.doc.into_activity(origin(parsed.file, parsed.layer))
            })
            .collect();
        activities.sort_by_key(|activity| activity.order);
        let playbooks = playbooks
            .into_iter()
            .map(|(id, parsed)| {
                (
                    id,
                    parsed.doc.into_playbook(origin(parsed.file, parsed.layer)),
                )
            })
            .collect();
        Registry {
            activities,
            playbooks,
            warnings: Vec::new(),
            key: String::new(),
        }
    }

    /// The SHA-256 (lowercase hex) over the version of the tool and every file the registry
    /// was loaded from: the same files give the same key, any change another.
    pub fn content_key(&self) -> &str {
        &self.key
    }

    /// What is allowed in the repository's registry files but works badly, each at its place:
    /// `registry validate` prints them as warnings. Empty for a registry read from the cache.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Every activity, in canonical order.
    pub fn activities(&self) -> &[Activity] {
        &self.activities
    }

    /// The activity called `name`.
    pub fn activity(&self, name: &str) -> Option<&Activity> {
        self.activities
            .iter()
            .find(|activity| activity.name == name)
    }

    /// Changes the activity called `name` in place (tests build variants of the built-in one).
    #[cfg(test)]
    pub(crate) fn edit_activity(&mut self, name: &str, edit: impl FnOnce(&mut Activity)) {
        let activity = self.activities.iter_mut().find(|a| a.name == name);
        edit(activity.expect("no such activity"));
    }

    /// Every playbook, by id.
    pub fn playbooks(&self) -> impl Iterator<Item = &Playbook> {
        self.playbooks.values()
    }

    /// The playbook with `id`.
    pub fn playbook(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.get(id)
    }

    /// Whether `activity` may run playbook `id`: the activity names it (or its domain) and the
    /// playbook lists the activity. Both sides must agree.
    pub fn is_allowed(&self, activity: &str, id: &str) -> bool {
        let (Some(activity), Some(playbook)) = (self.activity(activity), self.playbook(id)) else {
            return false;
        };
        playbook.activities.contains(&activity.name)
            && activity
                .playbooks
                .iter()
                .any(|r| r.covers(&playbook.id, &playbook.domain))
    }

    /// The playbooks `activity` may run, by id.
    pub fn allowed_playbooks(&self, activity: &str) -> Vec<&Playbook> {
        self.playbooks()
            .filter(|playbook| self.is_allowed(activity, &playbook.id))
            .collect()
    }

    /// The decision schema sent to the model: the activity's own schema plus a required
    /// `playbooks` array whose items can only be the playbooks it may run, each with that
    /// playbook's input schema. Objects are closed and every property is required, as OpenAI's
    /// strict structured outputs demand.
    pub fn decision_schema(&self, activity: &str) -> Result<Value, RegistryError> {
        self.decision_schema_offering(activity, None)
    }

    /// Like [`Registry::decision_schema`], with the playbooks limited to those `offered` (ids
    /// in the order they were offered; `None`: every allowed one) when there are more than
    /// fit in a prompt (see [`rank`]).
    pub fn decision_schema_offering(
        &self,
        activity: &str,
        offered: Option<&[&str]>,
    ) -> Result<Value, RegistryError> {
        let definition = self
            .activity(activity)
            .ok_or_else(|| RegistryError::UnknownActivity(activity.to_string()))?;
        let mut schema = definition.decision.clone();
        let choices = self.playbook_choices(activity, offered);
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.insert("playbooks".to_string(), choices);
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.push(json!("playbooks"));
        } else if let Some(object) = schema.as_object_mut() {
            object.insert("required".to_string(), json!(["playbooks"]));
        }
        Ok(schema)
    }

    fn playbook_choices(&self, activity: &str, offered: Option<&[&str]>) -> Value {
        let allowed = self.allowed_playbooks(activity);
        let playbooks: Vec<&Playbook> = match offered {
            None => allowed,
            Some(offered) => offered
                .iter()
                .filter_map(|id| allowed.iter().find(|p| p.id == *id).copied())
                .collect(),
        };
        let choices: Vec<Value> = playbooks
            .into_iter()
            .map(|playbook| {
                json!({
                    "type": "object",
                    "description": playbook.description,
                    "properties": {
                        "id": {"type": "string", "enum": [playbook.id]},
                        "inputs": playbook.inputs,
                        "reason": {"type": "string", "maxLength": PLAYBOOK_REASON_CHARS}
                    },
                    "required": ["id", "inputs", "reason"],
                    "additionalProperties": false
                })
            })
            .collect();
        if choices.is_empty() {
            return json!({"type": "array", "maxItems": 0, "items": {
                "type": "object", "properties": {}, "required": [], "additionalProperties": false}});
        }
        json!({
            "type": "array",
            "description": "The playbooks to run, in order. Only these ids exist for this activity.",
            "maxItems": choices.len().min(MAX_PLAYBOOK_RUNS),
            "items": {"anyOf": choices}
        })
    }
}

/// How many playbooks one decision may run, at most one run per playbook it may choose:
/// bounded like every array a model writes, so a grammar-constrained model cannot keep
/// appending runs (docs/registry.md).
const MAX_PLAYBOOK_RUNS: usize = 6;
/// How long the reason given for one playbook run may be.
const PLAYBOOK_REASON_CHARS: usize = 200;

fn parse<T: serde::de::DeserializeOwned>(
    file: SourceFile,
    problems: &mut Vec<Problem>,
) -> Option<Parsed<T>> {
    let doc = crate::yaml::from_str::<T>(&file.text);
    parsed(file, doc, problems)
}

fn parse_runbook(file: SourceFile, problems: &mut Vec<Problem>) -> Option<Parsed<PlaybookFile>> {
    let doc = runbook::parse(&file.text);
    parsed(file, doc, problems)
}

/// `file` with its parsed `doc`, or its problem noted.
fn parsed<T>(
    file: SourceFile,
    doc: Result<T, crate::yaml::YamlError>,
    problems: &mut Vec<Problem>,
) -> Option<Parsed<T>> {
    match doc {
        Ok(doc) => Some(Parsed {
            file: file.path,
            layer: file.layer,
            doc,
            text: file.text,
        }),
        Err(error) => {
            problems.push(Problem::new(&file.path, error.position, error.message));
            None
        }
    }
}

/// The document template of each activity, by activity name: a repository's
/// `activities/<name>.md.j2` replaces the built-in one. A template for no activity is a problem,
/// and so is one that does not parse or fails to render the activity's smallest valid decision;
/// the built-in templates of built-in activities are checked by a unit test instead, as their
/// definitions are.
fn documents(
    templates: Vec<SourceFile>,
    activities: &BTreeMap<String, Parsed<ActivityFile>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, crate::document::Template> {
    let mut documents = BTreeMap::new();
    for file in templates {
        let name = source::template_activity(&file.path).to_string();
        let Some(activity) = activities.get(&name) else {
            problems.push(Problem::whole_file(
                &file.path,
                format!(
                    "document template for `{name}`, which is not an activity; name it `<activity>{TEMPLATE_SUFFIX}` after the activity it renders"
                ),
            ));
            continue;
        };
        let template = crate::document::Template::new(file.path, file.text);
        if file.layer != Layer::Builtin || activity.layer != Layer::Builtin {
            check::document_template(&template, activity, problems);
        }
        documents.insert(name, template);
    }
    documents
}

/// Merges entries by name: a later layer replaces an earlier one; the same name twice in one
/// layer is a problem (which one would win would depend on file order).
fn merge<T>(
    entries: Vec<Parsed<T>>,
    name_of: impl Fn(&T) -> &crate::yaml::Spanned<String>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Parsed<T>> {
    let mut merged: BTreeMap<String, Parsed<T>> = BTreeMap::new();
    for entry in entries {
        let name = name_of(&entry.doc);
        let key = name.value.clone();
        if let Some(existing) = merged.get(&key)
            && existing.layer == entry.layer
        {
            problems.push(Problem::new(
                &entry.file,
                crate::yaml::Position::of(name),
                format!(
                    "duplicate {what} `{key}`, already defined in {}",
                    existing.file
                ),
            ));
            continue;
        }
        merged.insert(key, entry);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_registry_loads_with_the_twelve_activities_in_order() {
        let registry = Registry::builtin().unwrap_or_else(|error| panic!("{error:#?}"));
        let names: Vec<&str> = registry
            .activities()
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, CANONICAL_ACTIVITIES);
    }

    #[test]
    fn only_discover_is_blocking_by_default() {
        let registry = Registry::builtin().unwrap_or_else(|error| panic!("{error:#?}"));
        let blocking: Vec<&str> = registry
            .activities()
            .iter()
            .filter(|a| a.blocking)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(blocking, ["discover"]);
    }

    /// Every check, the bounds of each decision schema included (issue 20), and no warning:
    /// the shipped schemas ask only for what a grammar-constrained server enforces.
    #[test]
    fn built_in_files_pass_every_check() {
        let mut problems = Vec::new();
        for file in source::builtin() {
            match file.kind {
                Kind::Activity => {
                    if let Some(parsed) = parse::<ActivityFile>(file, &mut problems) {
                        check::activity_file(&parsed, &mut problems);
                        check::activity_warnings(&parsed, &mut problems);
                    }
                }
                Kind::Playbook => {
                    if let Some(parsed) = parse::<PlaybookFile>(file, &mut problems) {
                        check::playbook_file(&parsed, &mut problems);
                        check::playbook_warnings(&parsed, &mut problems);
                    }
                }
                Kind::Template | Kind::Runbook => {}
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_built_in_activity_has_its_document_template_and_it_renders() {
        let files = source::builtin();
        let mut activities = BTreeMap::new();
        let mut problems = Vec::new();
        for file in files.iter().filter(|file| file.kind == Kind::Activity) {
            let parsed = parse::<ActivityFile>(file.clone(), &mut problems).unwrap();
            activities.insert(parsed.doc.name.value.clone(), parsed);
        }
        for file in files.iter().filter(|file| file.kind == Kind::Template) {
            let name = source::template_activity(&file.path);
            let template = crate::document::Template::new(&file.path, &file.text);
            check::document_template(&template, &activities[name], &mut problems);
        }
        assert!(problems.is_empty(), "{problems:#?}");

        let registry = Registry::builtin().unwrap_or_else(|error| panic!("{error:#?}"));
        for activity in registry.activities() {
            let expected = format!("registry/activities/{}{TEMPLATE_SUFFIX}", activity.name);
            assert_eq!(activity.document_template().file, expected);
        }
    }

    fn repository_file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            kind: if path.ends_with(TEMPLATE_SUFFIX) {
                Kind::Template
            } else if path.ends_with(RUNBOOK_SUFFIX) {
                Kind::Runbook
            } else if path.contains("/playbooks/") {
                Kind::Playbook
            } else {
                Kind::Activity
            },
            layer: Layer::Repository,
            text: text.into(),
        }
    }

    /// The built-in registry with these repository files (path, text) on top.
    fn with_repository(files: &[(&str, &str)]) -> Result<Registry, RegistryError> {
        let mut sources = source::builtin();
        sources.extend(files.iter().map(|(path, text)| repository_file(path, text)));
        Registry::from_sources(sources)
    }

    #[test]
    fn a_repository_template_replaces_the_built_in_one() {
        let path = ".spectra/registry/activities/plan.md.j2";
        let registry = with_repository(&[(path, "# Our plan for {{ service }}\n")])
            .unwrap_or_else(|error| panic!("{error:#?}"));
        let template = registry.activity("plan").unwrap().document_template();
        assert_eq!(template.file, path);
        assert_eq!(template.source, "# Our plan for {{ service }}\n");
    }

    #[test]
    fn a_repository_activity_without_a_template_gets_the_generic_one() {
        let text = include_str!("../../registry/activities/plan.yaml")
            .replace("name: plan", "name: roadmap")
            .replace("order: 3", "order: 30")
            .replace("playbooks: [repo.inventory]", "playbooks: []");
        let registry = with_repository(&[(".spectra/registry/activities/roadmap.yaml", &text)])
            .unwrap_or_else(|error| panic!("{error:#?}"));
        let roadmap = registry.activity("roadmap").unwrap();
        assert!(roadmap.document.is_none());
        assert_eq!(
            roadmap.document_template().file,
            crate::document::FALLBACK_FILE
        );
    }

    /// An editor checking a runbook's front matter against `registry/schema/runbook.schema.json`
    /// gets the registry's verdict: what the registry refuses the schema refuses, and the other
    /// way round (for values written with the documented types: the parser also reads `42` as
    /// text, which the schema refuses).
    #[test]
    fn the_runbook_schema_and_the_registry_agree_on_front_matter() {
        let operate = include_str!("../../registry/activities/plan.yaml")
            .replace("name: plan", "name: operate")
            .replace("order: 3", "order: 30")
            .replace("playbooks: [repo.inventory]", "playbooks: [domain:railway]");
        let schema = check::compile_schema(&serde_json::from_str(RUNBOOK_SCHEMA).unwrap())
            .unwrap_or_else(|error| panic!("{error}"));
        let good = "name: railway.deploy\ndescription: Deploy to Railway.\nactivities: [operate]\ndomain: railway\nsummary: Link, deploy, check.\ninputs: [RAILWAY_TOKEN]\nmanual_steps: [Approve the first deploy]\n";
        let cases = [
            (good.to_string(), true),
            (
                good.replace("activities: [operate]", "activity: operate"),
                true,
            ),
            (
                good.replace("activities: [operate]", "activities: []\nactivity: operate"),
                true,
            ),
            // Both may be given: the activities are the list and the one.
            (format!("{good}activity: operate\n"), true),
            (
                format!("{good}automation_possible: false\noutputs: []\n"),
                true,
            ),
            (format!("{good}owner: platform\n"), false),
            // `registry import` reads these spellings; the registry itself does not.
            (good.replace("manual_steps", "manual steps"), false),
            (format!("{good}automation possible: true\n"), false),
            (good.replace("name: railway.deploy\n", ""), false),
            (good.replace("description: Deploy to Railway.\n", ""), false),
            (good.replace("domain: railway\n", ""), false),
            (good.replace("activities: [operate]\n", ""), false),
            (good.replace("[operate]", "[]"), false),
            (good.replace("railway.deploy", "Railway.Deploy"), false),
            (good.replace("railway.deploy", "railway..deploy"), false),
            (
                good.replace("activities: [operate]", "activity: [operate]"),
                false,
            ),
            (good.replace("[RAILWAY_TOKEN]", "RAILWAY_TOKEN"), false),
            (format!("{good}automation_possible: sometimes\n"), false),
            (
                good.replace("[Approve the first deploy]", "[[a], b]"),
                false,
            ),
        ];
        for (front_matter, accepted) in cases {
            let text = format!("---\n{front_matter}---\n\n# Deploy\n\n1. `railway up`\n");
            let registry = with_repository(&[
                (".spectra/registry/activities/operate.yaml", &operate),
                (".spectra/registry/playbooks/railway.deploy.md", &text),
            ]);
            assert_eq!(registry.is_ok(), accepted, "{front_matter}{registry:#?}");
            let document = crate::yaml::to_json(front_matter.as_str()).unwrap();
            assert_eq!(schema.is_valid(&document), accepted, "{front_matter}");
        }
    }

    #[test]
    fn broken_and_stray_templates_are_problems_with_their_place() {
        let mut files = source::builtin();
        files.push(repository_file(
            ".spectra/registry/activities/plan.md.j2",
            "# Plan\n\n{% for x in decision.backlog %}\n",
        ));
        files.push(repository_file(
            ".spectra/registry/activities/design.md.j2",
            "# Design\n{{ decision | no_such_filter }}\n",
        ));
        files.push(repository_file(
            ".spectra/registry/activities/nowhere.md.j2",
            "# x\n",
        ));
        let error = Registry::from_sources(files).unwrap_err();
        let messages: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
        for expected in [
            ".spectra/registry/activities/design.md.j2:2:",
            ".spectra/registry/activities/nowhere.md.j2: document template for `nowhere`, which is not an activity",
            ".spectra/registry/activities/plan.md.j2:3:",
        ] {
            assert!(
                messages.iter().any(|m| m.starts_with(expected)),
                "missing `{expected}` in {messages:#?}"
            );
        }
    }

    #[test]
    fn the_decisions_sent_to_the_model_are_bounded_playbook_runs_included() {
        let registry = Registry::builtin().unwrap_or_else(|error| panic!("{error:#?}"));
        for activity in registry.activities() {
            let schema = registry.decision_schema(&activity.name).unwrap();
            let unbounded: Vec<_> = bounds::findings(&schema)
                .into_iter()
                .filter(|finding| finding.kind.is_error())
                .collect();
            assert!(unbounded.is_empty(), "{}: {unbounded:#?}", activity.name);
        }
    }

    #[test]
    fn a_repository_activity_leaving_a_list_unbounded_is_refused_at_its_line() {
        let text = include_str!("../../registry/activities/plan.yaml").replace(
            "        must_have: {type: array, maxItems: 4,",
            "        must_have: {type: array,",
        );
        let path = ".spectra/registry/activities/plan.yaml";
        let error = with_repository(&[(path, &text)]).unwrap_err();
        let messages: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
        let line = text
            .lines()
            .position(|l| l.contains("must_have: {"))
            .unwrap()
            + 1;
        assert_eq!(
            messages,
            [format!(
                "{path}:{line}:9: `decision` at `/properties/moscow_priorities/properties/must_have` is an array without `maxItems`; bound it (3 to 8 items, what a reviewer reads) so a model cannot keep appending items"
            )]
        );
    }

    #[test]
    fn a_repository_number_with_bounds_is_a_warning_not_a_problem() {
        let text = include_str!("../../registry/activities/discover.yaml").replace(
            "confidence: {type: integer, minimum: 0, maximum: 100,",
            "confidence: {type: number, minimum: 0, maximum: 1,",
        );
        let path = ".spectra/registry/activities/discover.yaml";
        let registry =
            with_repository(&[(path, &text)]).unwrap_or_else(|error| panic!("{error:#?}"));
        let warnings: Vec<String> = registry
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].contains("/properties/validation/properties/confidence` puts `maximum`")
        );
        assert!(Registry::builtin().unwrap().warnings().is_empty());
    }

    #[test]
    fn a_repository_playbook_with_unbounded_inputs_is_a_warning() {
        let text = include_str!("../../registry/playbooks/spec.write.yaml")
            .replace("      maxLength: 2000\n", "");
        let path = ".spectra/registry/playbooks/spec.write.yaml";
        let registry =
            with_repository(&[(path, &text)]).unwrap_or_else(|error| panic!("{error:#?}"));
        let warnings: Vec<String> = registry
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        let line = text.lines().position(|l| l.trim() == "content:").unwrap() + 1;
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(
            warnings[0].starts_with(&format!(
                "{path}:{line}:5: `/inputs/properties/content` is a string without `maxLength`"
            )),
            "{warnings:#?}"
        );
    }

    #[test]
    fn blocking_must_be_a_boolean() {
        let text = include_str!("../../registry/activities/plan.yaml");
        let file = |extra: &str| SourceFile {
            path: ".spectra/registry/activities/plan.yaml".into(),
            kind: source::Kind::Activity,
            layer: source::Layer::Repository,
            text: format!("{text}{extra}"),
        };
        let mut files = source::builtin();
        files.push(file("blocking: true\n"));
        let registry = Registry::from_sources(files).unwrap_or_else(|error| panic!("{error:#?}"));
        assert!(registry.activity("plan").is_some_and(|plan| plan.blocking));

        let mut files = source::builtin();
        files.push(file("blocking: sometimes\n"));
        assert!(Registry::from_sources(files).is_err());
    }
}
