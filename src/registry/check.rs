//! Registry validation: everything that can be wrong with a file that did parse, each found
//! problem pointing at the value at fault. Per-file checks run on each file; cross checks run
//! on the merged registry (defaults plus repository overrides), where references resolve.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::activity::{Behaviour, PROMPT_VARIABLES, PlaybookRef};
use super::error::Problem;
use super::format::{ActivityFile, PlaybookFile};
use super::source::Layer;
use super::template::{self, Arg, SPECTRA_PLACEHOLDER, prompt_variables};
use crate::yaml::{Position, Spanned};
use bounds::check_decision_bounds;
pub use bounds::{activity_warnings, playbook_warnings};
pub use document::document_template;
use nulls::check_no_nulls;
#[cfg(test)]
use {document::minimal_instance, nulls::null_values};

mod bounds;
mod document;
mod nulls;

/// The longest timeout a playbook may declare: a day. Longer is almost surely a unit mistake.
const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// A parsed registry file and where it came from.
#[derive(Debug)]
pub struct Parsed<T> {
    pub file: String,
    pub layer: Layer,
    pub doc: T,
    /// The file's text, to point inside values read without positions (JSON Schemas).
    pub text: String,
}

/// Collects problems for one file.
struct Report<'a> {
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Report<'_> {
    fn at(&mut self, position: Position, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.file, position, message));
    }

    /// Where the value at JSON `pointer` (from the top of the file) is written, else `fallback`.
    fn position_at(&self, pointer: &str, fallback: Position) -> Position {
        crate::yaml::position_at(self.text, pointer).unwrap_or(fallback)
    }
}

/// Checks one activity file on its own.
pub fn activity_file(parsed: &Parsed<ActivityFile>, problems: &mut Vec<Problem>) {
    let doc = &parsed.doc;
    let mut report = Report {
        file: &parsed.file,
        text: &parsed.text,
        problems,
    };
    check_name(&mut report, &doc.name, "activity name");
    check_decision_schema(&mut report, &doc.decision);
    check_prompts(&mut report, doc);
    check_gates(&mut report, doc);
    for reference in &doc.playbooks {
        let (what, name) = match PlaybookRef::parse(&reference.value) {
            PlaybookRef::Id(id) => ("playbook id", id),
            PlaybookRef::Domain(domain) => ("domain", domain),
        };
        if !is_id(&name) {
            report.at(
                Position::of(reference),
                format!("`{name}` is not a valid {what}"),
            );
        }
    }
    if doc.token_budget.value == 0 {
        report.at(
            Position::of(&doc.token_budget),
            "token_budget must be above 0",
        );
    }
    for path in &doc.writes {
        if let Some(why) = unsafe_relative_path(&path.value) {
            report.at(Position::of(path), format!("`{}` {why}", path.value));
        }
    }
    check_behaviour(&mut report, doc);
    check_planner(&mut report, doc);
    check_command(&mut report, doc);
}

fn check_behaviour(report: &mut Report, doc: &ActivityFile) {
    let Some(behaviour) = &doc.behaviour else {
        return;
    };
    if Behaviour::parse(&behaviour.value).is_none() {
        let known: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
        report.at(
            Position::of(behaviour),
            format!(
                "`{}` is not a behaviour; use one of: {}",
                behaviour.value,
                known.join(", ")
            ),
        );
    }
}

/// Keywords are matched against the lowercase words of the input, which hold letters, digits
/// and `-`: anything else could never match.
fn check_planner(report: &mut Report, doc: &ActivityFile) {
    let Some(planner) = &doc.planner else {
        return;
    };
    for keyword in &planner.keywords {
        if !is_keyword(&keyword.value) {
            report.at(
                Position::of(keyword),
                format!(
                    "`{}` is not a planner keyword (lowercase letters, digits and `-`, as the words of the input are)",
                    keyword.value
                ),
            );
        }
    }
}

fn is_keyword(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c == '-' || (c.is_alphanumeric() && !c.is_uppercase()))
}

fn check_command(report: &mut Report, doc: &ActivityFile) {
    let Some(command) = &doc.command else {
        return;
    };
    let summary = &command.value.summary;
    if summary.value.contains('\n') || !summary.value.starts_with(|c: char| c.is_uppercase()) {
        report.at(
            Position::of(summary),
            "command.summary must be one line starting with a capital verb",
        );
    }
    if command.value.examples.is_empty() {
        report.at(
            Position::of(command),
            "command.examples must give at least one example",
        );
    }
    for example in &command.value.examples {
        if example.value.contains('\n') || !example.value.starts_with("git ") {
            report.at(
                Position::of(example),
                format!(
                    "`{}` is not an example: one command line starting with `git spectra`",
                    example.value.trim()
                ),
            );
        }
    }
}

/// Checks one playbook file on its own.
pub fn playbook_file(parsed: &Parsed<PlaybookFile>, problems: &mut Vec<Problem>) {
    let doc = &parsed.doc;
    let mut report = Report {
        file: &parsed.file,
        text: &parsed.text,
        problems,
    };
    check_name(&mut report, &doc.id, "playbook id");
    check_name(&mut report, &doc.domain, "domain");
    if doc.activities.is_empty() {
        report.at(
            Position::of(&doc.id),
            "a playbook must name at least one activity",
        );
    }
    for activity in &doc.activities {
        check_name(&mut report, activity, "activity name");
    }
    let input_names = doc.inputs.as_ref().map_or_else(BTreeSet::new, |inputs| {
        check_inputs_schema(&mut report, inputs);
        property_names(&inputs.value)
    });
    for (field, args) in [("run", &doc.run), ("undo", &doc.undo)] {
        if let Some(args) = args {
            check_template(&mut report, field, args, &input_names);
        }
    }
    if doc.undo_unfinished && doc.undo.is_none() {
        report.at(
            Position::of(&doc.id),
            "`undo_unfinished` is true but there is no `undo` argv to run",
        );
    }
    if doc.undo_last && doc.undo.is_none() {
        report.at(
            Position::of(&doc.id),
            "`undo_last` is true but there is no `undo` argv to run",
        );
    }
    if doc.undo.is_some() && !doc.reversible {
        report.at(
            Position::of(&doc.id),
            "`undo` is given but `reversible` is false",
        );
    }
    let timeout = doc.timeout.value;
    if !(timeout > 0.0 && timeout <= MAX_TIMEOUT_SECONDS) {
        report.at(
            Position::of(&doc.timeout),
            format!(
                "timeout must be above 0 and at most {MAX_TIMEOUT_SECONDS} seconds, not {timeout}"
            ),
        );
    }
}

/// Checks that hold between files: references resolve both ways, orders are unique.
pub fn cross(
    activities: &[&Parsed<ActivityFile>],
    playbooks: &[&Parsed<PlaybookFile>],
    problems: &mut Vec<Problem>,
) {
    check_orders(activities, problems);
    for activity in activities {
        check_activity_references(activity, playbooks, problems);
        check_effect(activity, playbooks, problems);
    }
    let known: BTreeSet<&str> = activities
        .iter()
        .map(|a| a.doc.name.value.as_str())
        .collect();
    for playbook in playbooks {
        check_playbook_activities(playbook, activities, &known, problems);
    }
}

fn check_orders(activities: &[&Parsed<ActivityFile>], problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for activity in activities {
        let order = activity.doc.order.value;
        if let Some(other) = seen.insert(order, &activity.doc.name.value) {
            problems.push(Problem::new(
                &activity.file,
                Position::of(&activity.doc.order),
                format!("order {order} is also used by activity `{other}`"),
            ));
        }
    }
}

fn check_activity_references(
    activity: &Parsed<ActivityFile>,
    playbooks: &[&Parsed<PlaybookFile>],
    problems: &mut Vec<Problem>,
) {
    let name = activity.doc.name.value.as_str();
    for reference in &activity.doc.playbooks {
        let message = match PlaybookRef::parse(&reference.value) {
            PlaybookRef::Id(id) => match playbooks.iter().find(|p| p.doc.id.value == id) {
                None => Some(format!("unknown playbook `{id}`")),
                Some(playbook) if !lists(&playbook.doc, name) => Some(format!(
                    "playbook `{id}` ({}) does not list `{name}` in its activities",
                    playbook.file
                )),
                Some(_) => None,
            },
            PlaybookRef::Domain(domain) => (!playbooks
                .iter()
                .any(|p| p.doc.domain.value == domain && lists(&p.doc, name)))
            .then(|| format!("no playbook in domain `{domain}` lists `{name}` in its activities")),
        };
        if let Some(message) = message {
            problems.push(Problem::new(
                &activity.file,
                Position::of(reference),
                message,
            ));
        }
    }
}

/// An activity's `effect` names a playbook it may run whose argv is `configured`: anything
/// else could never run the repository's own command.
fn check_effect(
    activity: &Parsed<ActivityFile>,
    playbooks: &[&Parsed<PlaybookFile>],
    problems: &mut Vec<Problem>,
) {
    let Some(effect) = &activity.doc.effect else {
        return;
    };
    let name = activity.doc.name.value.as_str();
    let id = effect.playbook.value.as_str();
    let named = |playbook: &PlaybookFile| {
        activity
            .doc
            .playbooks
            .iter()
            .any(|r| PlaybookRef::parse(&r.value).covers(id, &playbook.domain.value))
    };
    let message = match playbooks.iter().find(|p| p.doc.id.value == id) {
        None => format!("effect: unknown playbook `{id}`"),
        Some(playbook) if !named(&playbook.doc) => {
            format!("effect: `{name}` does not name playbook `{id}` in its playbooks")
        }
        Some(playbook) if playbook.doc.configured.is_none() => format!(
            "effect: playbook `{id}` ({}) has no `configured` keys; an effect runs the repository's own command",
            playbook.file
        ),
        Some(_) => {
            check_effect_extras(activity, effect, playbooks, problems);
            return;
        }
    };
    problems.push(Problem::new(
        &activity.file,
        Position::of(&effect.playbook),
        message,
    ));
}

/// An effect's `tag` needs the release playbook among the activity's playbooks and a pointer
/// to a string of the decision; its `probe` needs the probe playbook. Without them the tag or
/// probe would be refused only after the command ran.
fn check_effect_extras(
    activity: &Parsed<ActivityFile>,
    effect: &super::format::EffectFile,
    playbooks: &[&Parsed<PlaybookFile>],
    problems: &mut Vec<Problem>,
) {
    let names =
        |id: &str| {
            playbooks
                .iter()
                .find(|p| p.doc.id.value == id)
                .is_some_and(|playbook| {
                    activity.doc.playbooks.iter().any(|r| {
                        PlaybookRef::parse(&r.value).covers(id, &playbook.doc.domain.value)
                    })
                })
        };
    let name = activity.doc.name.value.as_str();
    let mut problem = |at: &Spanned<String>, message: String| {
        problems.push(Problem::new(&activity.file, Position::of(at), message));
    };
    if let Some(tag) = &effect.tag {
        if !names(super::RELEASE_TAG_PLAYBOOK) {
            problem(
                tag,
                format!(
                    "effect: `tag` needs playbook `{}` in the playbooks of `{name}`",
                    super::RELEASE_TAG_PLAYBOOK
                ),
            );
        } else if !is_string_at(&activity.doc.decision.value, &tag.value) {
            problem(
                tag,
                format!(
                    "effect: `tag` points at `{}`, which is not a string property of the decision schema",
                    tag.value
                ),
            );
        }
    }
    if let Some(probe) = &effect.probe
        && !names(super::PROBE_PLAYBOOK)
    {
        problem(
            probe,
            format!(
                "effect: `probe` needs playbook `{}` in the playbooks of `{name}`",
                super::PROBE_PLAYBOOK
            ),
        );
    }
}

/// Whether the JSON Pointer `pointer` names, through `properties`, a property of `schema` whose
/// type is (or includes) `string`.
fn is_string_at(schema: &Value, pointer: &str) -> bool {
    let Some(path) = pointer.strip_prefix('/') else {
        return false;
    };
    let mut at = schema;
    for segment in path.split('/') {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        match at["properties"].get(segment.as_str()) {
            Some(property) => at = property,
            None => return false,
        }
    }
    match &at["type"] {
        Value::String(kind) => kind == "string",
        Value::Array(kinds) => kinds.iter().any(|kind| kind == "string"),
        _ => false,
    }
}

fn check_playbook_activities(
    playbook: &Parsed<PlaybookFile>,
    activities: &[&Parsed<ActivityFile>],
    known: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    let doc = &playbook.doc;
    for activity_name in &doc.activities {
        let name = activity_name.value.as_str();
        let message = if !known.contains(name) {
            Some(format!("unknown activity `{name}`"))
        } else {
            let activity = activities.iter().find(|a| a.doc.name.value == name);
            let covered = activity.is_some_and(|a| {
                a.doc
                    .playbooks
                    .iter()
                    .any(|r| PlaybookRef::parse(&r.value).covers(&doc.id.value, &doc.domain.value))
            });
            (!covered).then(|| {
                format!(
                    "activity `{name}` does not name playbook `{}` or domain `{}` in its playbooks",
                    doc.id.value, doc.domain.value
                )
            })
        };
        if let Some(message) = message {
            problems.push(Problem::new(
                &playbook.file,
                Position::of(activity_name),
                message,
            ));
        }
    }
}

fn lists(playbook: &PlaybookFile, activity: &str) -> bool {
    playbook
        .activities
        .iter()
        .any(|name| name.value == activity)
}

fn check_name(report: &mut Report, name: &Spanned<String>, what: &str) {
    if !is_id(&name.value) {
        report.at(
            Position::of(name),
            format!(
                "`{}` is not a valid {what} (lowercase letters and digits, joined by `.`, `-` or `_`)",
                name.value
            ),
        );
    }
}

/// Ids, names and domains: lowercase words of letters and digits joined by `.`, `-` or `_`.
fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text.split(['.', '-', '_']).all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn check_decision_schema(report: &mut Report, decision: &Spanned<Value>) {
    let position = Position::of(decision);
    check_no_nulls(report, "decision", decision);
    if let Err(message) = compile_schema(&decision.value) {
        report.at(
            position,
            format!("invalid JSON Schema for `decision`: {message}"),
        );
        return;
    }
    if decision.value.get("type").and_then(Value::as_str) != Some("object") {
        report.at(
            position,
            "`decision` must be an object schema (`type: object`)",
        );
    }
    if decision.value.pointer("/properties/playbooks").is_some() {
        report.at(
            position,
            "`decision` must not define `playbooks`: it is added from the playbooks the activity may use",
        );
    }
    check_decision_bounds(report, decision);
}

fn check_inputs_schema(report: &mut Report, inputs: &Spanned<Value>) {
    let position = Position::of(inputs);
    check_no_nulls(report, "inputs", inputs);
    if let Err(message) = compile_schema(&inputs.value) {
        report.at(
            position,
            format!("invalid JSON Schema for `inputs`: {message}"),
        );
        return;
    }
    if inputs.value.get("type").and_then(Value::as_str) != Some("object") {
        report.at(
            position,
            "`inputs` must be an object schema (`type: object`)",
        );
    }
}

/// Compiles `schema`, which also checks it against its meta-schema.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if let Some(dialect) = schema.get("$schema").and_then(Value::as_str)
        && !dialect.starts_with("https://json-schema.org/")
        && !dialect.starts_with("http://json-schema.org/")
    {
        return Err(format!("unknown `$schema` `{dialect}`"));
    }
    jsonschema::validator_for(schema).map_err(|error| {
        let path = error.instance_path().to_string();
        if path.is_empty() {
            error.to_string()
        } else {
            format!("at {path}: {error}")
        }
    })
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn check_template(
    report: &mut Report,
    field: &str,
    args: &[Spanned<Arg>],
    input_names: &BTreeSet<String>,
) {
    if args.is_empty() {
        report.at(Position::default(), format!("`{field}` must not be empty"));
    }
    if let Some(Spanned {
        value: Arg::Group(_),
        ..
    }) = args.first()
    {
        report.at(
            Position::of(&args[0]),
            format!("`{field}` must start with a program, not a group"),
        );
    }
    for arg in args {
        match template::all_placeholders(std::slice::from_ref(&arg.value)) {
            Err(error) => report.at(Position::of(arg), error.to_string()),
            Ok(names) => {
                for name in names {
                    if name != SPECTRA_PLACEHOLDER && !input_names.contains(name) {
                        report.at(
                            Position::of(arg),
                            format!("placeholder `{{{name}}}` in `{field}` names no input"),
                        );
                    }
                }
            }
        }
    }
}

fn check_prompts(report: &mut Report, doc: &ActivityFile) {
    let position = Position::of(&doc.prompts);
    for (which, template) in [
        ("system", &doc.prompts.value.system),
        ("user", &doc.prompts.value.user),
    ] {
        for name in prompt_variables(template) {
            if !PROMPT_VARIABLES.contains(&name) {
                report.at(
                    position,
                    format!(
                        "unknown variable `{{{{{name}}}}}` in the {which} prompt (known: {})",
                        PROMPT_VARIABLES.join(", ")
                    ),
                );
            }
        }
    }
}

fn check_gates(report: &mut Report, doc: &ActivityFile) {
    let mut names = BTreeSet::new();
    for gate in &doc.quality_gates {
        check_name(report, &gate.name, "quality gate name");
        if !names.insert(gate.name.value.as_str()) {
            report.at(
                Position::of(&gate.name),
                format!("duplicate quality gate `{}`", gate.name.value),
            );
        }
        if gate.checks.is_empty() {
            report.at(
                Position::of(&gate.name),
                "a quality gate needs at least one check",
            );
        }
        for check in &gate.checks {
            for pointer in check.value.pointers() {
                if schema_at(&doc.decision.value, pointer).is_none() {
                    report.at(
                        Position::of(check),
                        format!("`{pointer}` is not a property of the decision schema"),
                    );
                }
            }
        }
    }
}

/// The sub-schema a JSON Pointer into an instance would land in, following `properties` and
/// `items`; `None` when the schema does not declare that path.
fn schema_at<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').try_fold(schema, |schema, token| {
        let token = token.replace("~1", "/").replace("~0", "~");
        schema
            .get("properties")
            .and_then(|properties| properties.get(&token))
            .or_else(|| token.parse::<usize>().ok().and(schema.get("items")))
    })
}

/// Why `path` is not a safe path relative to the repository root, if it is not.
pub fn unsafe_relative_path(path: &str) -> Option<&'static str> {
    let path = std::path::Path::new(path);
    if path.is_absolute() {
        return Some("must be relative to the repository root");
    }
    path.components()
        .any(|component| matches!(component, std::path::Component::ParentDir))
        .then_some("must not contain `..`")
}

#[cfg(test)]
mod tests;
