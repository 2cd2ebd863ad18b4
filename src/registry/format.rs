//! The registry file formats exactly as written, with the position of every value an error may
//! need to point at. `registry/schema/*.schema.json` describes the same formats for editors and
//! other tools; a test keeps the field lists of the two in step.

use serde::Deserialize;
use serde_json::Value;

use super::Origin;
use super::activity::{
    Activity, Behaviour, CommandHelp, Effect, PlannerRules, PlaybookRef, Prompts,
};
use super::gate::{Check, GateLevel, QualityGate};
use super::playbook::{Configured, Playbook, no_inputs};
use super::runbook::RunbookIndex;
use super::template::Arg;
use crate::yaml::Spanned;

/// An activity file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityFile {
    pub name: Spanned<String>,
    pub order: Spanned<u32>,
    pub description: String,
    pub prompts: Spanned<Prompts>,
    pub decision: Spanned<Value>,
    #[serde(default)]
    pub quality_gates: Vec<GateFile>,
    #[serde(default)]
    pub playbooks: Vec<Spanned<String>>,
    pub token_budget: Spanned<u32>,
    #[serde(default)]
    pub writes: Vec<Spanned<String>>,
    #[serde(default)]
    pub blocking: bool,
    #[serde(default)]
    pub behaviour: Option<Spanned<String>>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub planner: Option<PlannerFile>,
    #[serde(default)]
    pub command: Option<Spanned<CommandFile>>,
    #[serde(default)]
    pub effect: Option<EffectFile>,
}

/// The repository's own command an activity runs, inside an activity file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectFile {
    pub playbook: Spanned<String>,
    pub fact: Spanned<String>,
    #[serde(default)]
    pub tag: Option<Spanned<String>>,
    #[serde(default)]
    pub probe: Option<Spanned<String>>,
}

/// The planner's keyword rules inside an activity file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerFile {
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub fallback: bool,
}

/// The help of the activity's subcommand inside an activity file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    pub summary: Spanned<String>,
    pub examples: Vec<Spanned<String>>,
}

/// A quality gate inside an activity file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    pub name: Spanned<String>,
    pub description: String,
    pub checks: Vec<Spanned<Check>>,
    #[serde(default)]
    pub level: GateLevel,
}

/// A playbook file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookFile {
    pub id: Spanned<String>,
    pub activities: Vec<Spanned<String>>,
    pub domain: Spanned<String>,
    pub description: String,
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default)]
    pub run: Option<Vec<Spanned<Arg>>>,
    #[serde(default)]
    pub inputs: Option<Spanned<Value>>,
    #[serde(default)]
    pub undo: Option<Vec<Spanned<Arg>>>,
    pub reversible: bool,
    pub idempotent: bool,
    #[serde(default)]
    pub undo_unfinished: bool,
    #[serde(default)]
    pub undo_last: bool,
    pub timeout: Spanned<f64>,
    #[serde(default)]
    pub configured: Option<Spanned<ConfiguredFile>>,
    /// A runbook's index fields, from its front matter (never written in a `.yaml` file).
    #[serde(skip)]
    pub index: Option<RunbookIndex>,
}

/// The `git config` keys of a playbook that runs the repository's own command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredFile {
    pub run: String,
    #[serde(default)]
    pub undo: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

impl ActivityFile {
    pub fn into_activity(self, origin: Origin) -> Activity {
        Activity {
            name: self.name.value,
            order: self.order.value,
            description: self.description,
            prompts: self.prompts.value,
            decision: self.decision.value,
            quality_gates: self
                .quality_gates
                .into_iter()
                .map(GateFile::into_gate)
                .collect(),
            playbooks: self
                .playbooks
                .iter()
                .map(|name| PlaybookRef::parse(&name.value))
                .collect(),
            token_budget: self.token_budget.value,
            writes: self.writes.into_iter().map(|path| path.value).collect(),
            blocking: self.blocking,
            // Checked by `check::activity_file`; the built-in files by a unit test.
            behaviour: self
                .behaviour
                .and_then(|behaviour| Behaviour::parse(&behaviour.value))
                .unwrap_or_default(),
            external: self.external,
            planner: self
                .planner
                .map_or_else(PlannerRules::default, |planner| PlannerRules {
                    keywords: planner.keywords.into_iter().map(|k| k.value).collect(),
                    fallback: planner.fallback,
                }),
            command: self.command.map(|command| CommandHelp {
                summary: command.value.summary.value,
                examples: command
                    .value
                    .examples
                    .into_iter()
                    .map(|e| e.value)
                    .collect(),
            }),
            effect: self.effect.map(|effect| Effect {
                playbook: effect.playbook.value,
                fact: effect.fact.value,
                tag: effect.tag.map(|tag| tag.value),
                probe: effect.probe.map(|probe| probe.value),
            }),
            // Attached by the registry from the activity's `.md.j2` file, when there is one.
            document: None,
            origin,
        }
    }
}

impl GateFile {
    fn into_gate(self) -> QualityGate {
        QualityGate {
            name: self.name.value,
            description: self.description,
            checks: self.checks.into_iter().map(|check| check.value).collect(),
            level: self.level,
        }
    }
}

impl PlaybookFile {
    pub fn into_playbook(self, origin: Origin) -> Playbook {
        let values = |args: Vec<Spanned<Arg>>| args.into_iter().map(|arg| arg.value).collect();
        Playbook {
            id: self.id.value,
            activities: self.activities.into_iter().map(|name| name.value).collect(),
            domain: self.domain.value,
            description: self.description,
            runbook: self.runbook,
            run: self.run.map(values),
            inputs: self.inputs.map_or_else(no_inputs, |inputs| inputs.value),
            undo: self.undo.map(values),
            reversible: self.reversible,
            idempotent: self.idempotent,
            undo_unfinished: self.undo_unfinished,
            undo_last: self.undo_last,
            timeout: self.timeout.value,
            configured: self.configured.map(|configured| Configured {
                run: configured.value.run,
                undo: configured.value.undo,
                timeout: configured.value.timeout,
            }),
            index: self.index,
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The Rust structs and the published JSON Schemas must describe the same fields. The field
    //! names are read from serde's own derive output, through a deserializer that only records
    //! which fields a struct asks for.

    use std::collections::BTreeSet;

    use serde::de::{self, Deserializer, Visitor};

    use super::*;
    use crate::registry::runbook::{self, FrontMatter};
    use crate::registry::source::{ACTIVITY_SCHEMA, PLAYBOOK_SCHEMA, RUNBOOK_SCHEMA};

    struct FieldProbe<'a>(&'a mut Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe done")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for FieldProbe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    fn fields_of<T: for<'de> Deserialize<'de>>() -> BTreeSet<&'static str> {
        let mut fields = Vec::new();
        let _ = T::deserialize(FieldProbe(&mut fields));
        fields.into_iter().collect()
    }

    fn schema_properties(schema: &str, pointer: &str) -> BTreeSet<String> {
        let schema: Value = serde_json::from_str(schema).unwrap();
        schema
            .pointer(pointer)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn same(rust: BTreeSet<&str>, schema: BTreeSet<String>) {
        let schema: BTreeSet<&str> = schema.iter().map(String::as_str).collect();
        assert_eq!(rust, schema, "Rust struct fields vs schema properties");
    }

    #[test]
    fn activity_struct_and_schema_have_the_same_fields() {
        same(
            fields_of::<ActivityFile>(),
            schema_properties(ACTIVITY_SCHEMA, "/properties"),
        );
        same(
            fields_of::<Prompts>(),
            schema_properties(ACTIVITY_SCHEMA, "/$defs/prompts/properties"),
        );
        same(
            fields_of::<GateFile>(),
            schema_properties(ACTIVITY_SCHEMA, "/$defs/quality_gate/properties"),
        );
        same(
            fields_of::<PlannerFile>(),
            schema_properties(ACTIVITY_SCHEMA, "/$defs/planner/properties"),
        );
        same(
            fields_of::<CommandFile>(),
            schema_properties(ACTIVITY_SCHEMA, "/$defs/command/properties"),
        );
        same(
            fields_of::<EffectFile>(),
            schema_properties(ACTIVITY_SCHEMA, "/$defs/effect/properties"),
        );
    }

    #[test]
    fn playbook_struct_and_schema_have_the_same_fields() {
        same(
            fields_of::<PlaybookFile>(),
            schema_properties(PLAYBOOK_SCHEMA, "/properties"),
        );
        same(
            fields_of::<ConfiguredFile>(),
            schema_properties(PLAYBOOK_SCHEMA, "/properties/configured/properties"),
        );
    }

    #[test]
    fn runbook_front_matter_and_schema_have_the_same_fields() {
        same(
            fields_of::<FrontMatter>(),
            schema_properties(RUNBOOK_SCHEMA, "/properties"),
        );
        // A runbook's `name`, `domain` and `activity` are checked as a playbook's `id`.
        let schema: Value = serde_json::from_str(RUNBOOK_SCHEMA).unwrap();
        let playbook: Value = serde_json::from_str(PLAYBOOK_SCHEMA).unwrap();
        assert_eq!(schema["$defs"]["id"], playbook["$defs"]["id"]);
    }

    /// The schema's `required` is exactly what the parser cannot do without: dropping any one
    /// line of a full front matter fails the parse only for those fields. (`activities` and
    /// `activity` are optional to the parser; the schema's `anyOf` asks for one of them, as
    /// validation does.)
    #[test]
    fn runbook_schema_requires_what_the_parser_requires() {
        let lines = [
            "name: railway.deploy",
            "description: Deploy to Railway.",
            "activities: [deploy]",
            "activity: operate",
            "domain: railway",
            "summary: Link, deploy, check.",
            "inputs: [RAILWAY_TOKEN]",
            "outputs: [a deployed service]",
            "automation_possible: true",
            "manual_steps: [Approve the first deploy]",
        ];
        let schema: Value = serde_json::from_str(RUNBOOK_SCHEMA).unwrap();
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        let fields: BTreeSet<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(fields, fields_of::<FrontMatter>(), "one line per field");
        let text = |kept: &[&str]| format!("---\n{}\n---\n\n# Steps\n", kept.join("\n"));
        assert!(runbook::parse(&text(&lines)).is_ok());
        for (index, line) in lines.iter().enumerate() {
            let field = line.split(':').next().unwrap();
            let mut kept = lines.to_vec();
            kept.remove(index);
            assert_eq!(
                runbook::parse(&text(&kept)).is_err(),
                required.contains(field),
                "without `{field}`"
            );
        }
    }
}
