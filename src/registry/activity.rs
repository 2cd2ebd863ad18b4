//! An activity as the rest of the tool sees it: what it asks the model, the shape of the answer,
//! the gates the answer must pass and the playbooks it may run.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::Origin;
use super::gate::QualityGate;
use super::template::render_prompt;
use crate::document::Template;

/// The twelve SPECTRA activities in canonical order.
pub const CANONICAL_ACTIVITIES: [&str; 12] = [
    "engage",
    "discover",
    "plan",
    "assess",
    "design",
    "provision",
    "build",
    "test",
    "deploy",
    "monitor",
    "optimise",
    "finalise",
];

/// The variables a prompt template may use as `{{name}}`; the activity loop fills them.
pub const PROMPT_VARIABLES: [&str; 9] = [
    "activity",
    "input",
    "service",
    "specification",
    "manifests",
    "history",
    "playbooks",
    "repository",
    "services",
];

/// One activity definition. `Serialize` is also the user-facing form (`registry show --format
/// json`); `Deserialize` reads it back, for the registry cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// The activity's name, also its subcommand.
    pub name: String,
    /// Position in the SPECTRA sequence; activities run and list in this order.
    pub order: u32,
    /// One line saying what it does.
    pub description: String,
    /// The prompts given to the model.
    pub prompts: Prompts,
    /// The JSON Schema of the decision, as written (without the `playbooks` key, which
    /// [`super::Registry::decision_schema`] adds from the playbooks this activity may use).
    pub decision: Value,
    /// The gates its result must pass.
    pub quality_gates: Vec<QualityGate>,
    /// The playbooks it may use.
    pub playbooks: Vec<PlaybookRef>,
    /// The most tokens the model may spend answering.
    pub token_budget: u32,
    /// Files the activity writes, as path templates relative to the repository root.
    pub writes: Vec<String>,
    /// Whether a run stops when this activity does not succeed: later activities would build on
    /// a result that is not there (discover's service name, or a duplicate it refused).
    pub blocking: bool,
    /// Which rules of the activity loop it follows beyond the generic ones.
    pub behaviour: Behaviour,
    /// Whether its playbooks reach outside the repository: they then run in dry-run unless the
    /// user passes `--execute`, and the manifest records which effects really happened.
    pub external: bool,
    /// How the planner's keyword rules choose it.
    pub planner: PlannerRules,
    /// The help of `git spectra <name>`; `None` gives a plain one (see [`Activity::summary`]).
    pub command: Option<CommandHelp>,
    /// The repository's own command the activity always runs, when it has one (provision,
    /// deploy, monitor).
    #[serde(default)]
    pub effect: Option<Effect>,
    /// The template of the activity's document (`<name>.md.j2` beside its definition, or the
    /// repository's override); `None` when it has none, and then
    /// [`Activity::document_template`] gives the generic one.
    #[serde(default)]
    pub document: Option<Template>,
    /// The file and layer it was defined in.
    pub origin: Origin,
}

impl Activity {
    /// The one-line summary of the activity's subcommand.
    pub fn summary(&self) -> String {
        match &self.command {
            Some(command) => command.summary.clone(),
            None => format!("Run the {} activity.", self.name),
        }
    }

    /// The template its document is rendered with: its own, else the generic one that prints
    /// every field of the decision.
    pub fn document_template(&self) -> &Template {
        self.document
            .as_ref()
            .unwrap_or_else(|| Template::fallback())
    }

    /// The examples of the activity's subcommand, one command line each.
    pub fn examples(&self) -> Vec<String> {
        match &self.command {
            Some(command) => command.examples.clone(),
            None => vec![format!("git spectra {} \"<input>\"", self.name)],
        }
    }
}

/// The repository's own command an activity always runs: a playbook whose argv is configured
/// in `git config`, whose outcome decides a fact, and which may tag a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// The playbook that runs the configured command.
    pub playbook: String,
    /// The fact its outcome decides: true only when it really ran and exited 0.
    pub fact: String,
    /// A JSON Pointer to the decision's semver version: on success, the tag
    /// `<service>/v<version>` is created.
    #[serde(default)]
    pub tag: Option<String>,
    /// The fact the service catalog's URLs decide, when the activity probes them
    /// (`service.probe`): true when every URL answered 2xx.
    #[serde(default)]
    pub probe: Option<String>,
}

/// Which rules of the activity loop an activity follows beyond the generic ones (context,
/// decision, playbooks, gates). The loop picks its rules by this field, never by the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// The generic loop alone.
    #[default]
    Default,
    /// Chooses the run's service: name rules, the service catalog, the specification file.
    Discover,
    /// Runs the project's real tests and trusts only their counts.
    Test,
    /// Applies the decision's changes on a branch of its own and tests that branch.
    Build,
}

impl Behaviour {
    /// Every behaviour, as written in an activity file.
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Default,
        Behaviour::Discover,
        Behaviour::Test,
        Behaviour::Build,
    ];

    /// The word an activity file uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Default => "default",
            Behaviour::Discover => "discover",
            Behaviour::Test => "test",
            Behaviour::Build => "build",
        }
    }

    /// The behaviour an activity file names, if it names one.
    pub fn parse(text: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.name() == text)
    }
}

/// How the planner's keyword rules (used when no model plans) see an activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannerRules {
    /// Stems that choose the activity, besides its own name: a word of the input matches a
    /// stem when it starts with it (`deploying` matches `deploy`).
    pub keywords: Vec<String>,
    /// Chosen when no activity matches the input.
    pub fallback: bool,
}

impl PlannerRules {
    /// Whether `word` (lowercase) starts with one of the keywords or with `name`.
    pub fn matches(&self, name: &str, word: &str) -> bool {
        word.starts_with(name)
            || self
                .keywords
                .iter()
                .any(|stem| word.starts_with(stem.as_str()))
    }
}

/// The help of an activity's own subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandHelp {
    /// One line, starting with a capital verb.
    pub summary: String,
    /// Whole command lines, shown one per line under `Examples:`.
    pub examples: Vec<String>,
}

/// The system and user prompt templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// The system prompt template.
    pub system: String,
    /// The user prompt template.
    pub user: String,
}

impl Prompts {
    /// The system and user prompts with `{{name}}` replaced by `values[name]` (empty if absent).
    pub fn render(&self, values: &BTreeMap<&str, String>) -> (String, String) {
        (
            render_prompt(&self.system, values),
            render_prompt(&self.user, values),
        )
    }
}

/// How an activity names a playbook it may use: by id, or every playbook of a domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlaybookRef {
    /// One playbook, by id.
    Id(String),
    /// Every playbook of a domain.
    Domain(String),
}

impl PlaybookRef {
    /// Reads `domain:NAME` as a domain and anything else as an id.
    pub fn parse(text: &str) -> PlaybookRef {
        match text.strip_prefix("domain:") {
            Some(domain) => PlaybookRef::Domain(domain.to_string()),
            None => PlaybookRef::Id(text.to_string()),
        }
    }

    /// Whether this reference covers the playbook with `id` in `domain`.
    pub fn covers(&self, id: &str, domain: &str) -> bool {
        match self {
            PlaybookRef::Id(wanted) => wanted == id,
            PlaybookRef::Domain(wanted) => wanted == domain,
        }
    }
}

impl fmt::Display for PlaybookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaybookRef::Id(id) => f.write_str(id),
            PlaybookRef::Domain(domain) => write!(f, "domain:{domain}"),
        }
    }
}

impl Serialize for PlaybookRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Reads back what [`Serialize`] writes: `domain:NAME` or an id, as [`PlaybookRef::parse`] does.
impl<'de> Deserialize<'de> for PlaybookRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| PlaybookRef::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_render_known_variables_with_or_without_spaces() {
        let prompts = Prompts {
            system: "You are {{activity}}.".into(),
            user: "Idea: {{ input }} for {{service}}".into(),
        };
        let values = BTreeMap::from([
            ("activity", "discover".to_string()),
            ("input", "logs".to_string()),
        ]);
        let (system, user) = prompts.render(&values);
        assert_eq!(system, "You are discover.");
        assert_eq!(user, "Idea: logs for ");
    }

    #[test]
    fn playbook_refs_parse_ids_and_domains() {
        assert_eq!(
            PlaybookRef::parse("domain:git"),
            PlaybookRef::Domain("git".into())
        );
        assert!(PlaybookRef::parse("a.b").covers("a.b", "x"));
        assert!(PlaybookRef::parse("domain:x").covers("a.b", "x"));
    }
}
