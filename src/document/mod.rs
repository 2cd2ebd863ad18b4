//! The bytes of an activity's document, `.spectra/<service>/<activity>.md`: a YAML front matter
//! block that says which run, decision and gates it comes from, then a Markdown body rendered
//! from the decision by the activity's template.
//!
//! The front matter is serialised by [`crate::yaml`], never by the template, so it is valid
//! YAML whatever the decision holds. The body comes from a Jinja template (minijinja) that lives
//! in the registry beside the activity; a value printed by the template is never expanded again,
//! so a decision that quotes `{{ service }}` prints it as written. Rendering is deterministic:
//! the same template, front matter and decision give the same bytes.
//!
//! Writing the file and committing it is the activity loop's job; this module only makes and
//! reads the text.

mod filters;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, syntax::SyntaxConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The directory every document lives under, relative to the repository root.
pub const DIR: &str = ".spectra";

/// The line that opens and closes the front matter.
const FENCE: &str = "---";

/// Where the document of `activity` for `service` lives: `.spectra/<service>/<activity>.md`.
pub fn path(service: &str, activity: &str) -> String {
    format!("{DIR}/{service}/{activity}.md")
}

/// The YAML block at the top of a document: where its content comes from and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontMatter {
    /// The service the activity worked on.
    pub service: String,
    /// The activity's name.
    pub activity: String,
    /// The run it belongs to.
    pub run: String,
    /// The `decision.made` event whose decision the document renders.
    pub event: String,
    /// `succeeded`, `incomplete` or `failed`.
    pub outcome: String,
    /// Each gate's verdict, by gate name (in name order).
    pub gates: BTreeMap<String, GateEntry>,
    /// `llm` or `offline`.
    pub decided_by: String,
    /// The model's name when `decided_by` is `llm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One gate's verdict in the front matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateEntry {
    /// `passed`, `failed` or `not_judged`.
    pub result: String,
    /// `required` or `advisory`.
    pub level: String,
}

/// A document template: its Jinja source and the file it came from, which errors name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The file, as the registry names it (`registry/activities/plan.md.j2`, or a path under
    /// `.spectra/registry/`).
    pub file: String,
    /// The template's text.
    pub source: String,
}

/// The name errors give the generic template, which is compiled in and has no file of its own.
pub const FALLBACK_FILE: &str = "(built-in generic document template)";

static FALLBACK: LazyLock<Template> = LazyLock::new(|| Template {
    file: FALLBACK_FILE.to_string(),
    source: include_str!("fallback.md.j2").to_string(),
});

impl Template {
    /// A template read from `file`.
    pub fn new(file: impl Into<String>, source: impl Into<String>) -> Template {
        Template {
            file: file.into(),
            source: source.into(),
        }
    }

    /// The generic template, for an activity that has none of its own: each field of the
    /// decision under its own heading, lists as bullets, lists of objects as tables.
    pub fn fallback() -> &'static Template {
        &FALLBACK
    }

    /// Parses the template without rendering it: a syntax error names the file and line.
    pub fn check(&self) -> Result<(), DocumentError> {
        let environment = environment();
        environment
            .template_from_named_str(&self.file, &self.source)
            .map(|_| ())
            .map_err(|error| DocumentError::template(self, &error))
    }
}

/// Why a document could not be rendered or read back.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The template does not parse, or failed while rendering.
    #[error("{file}{}: {message}", line.map(|line| format!(":{line}")).unwrap_or_default())]
    Template {
        /// The template's file.
        file: String,
        /// The line the error is at, when the engine knows it.
        line: Option<usize>,
        /// The column (from 1) the error starts at, when the engine knows it.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The front matter could not be serialised.
    #[error("cannot write the document's front matter: {0}")]
    FrontMatter(String),
    /// The text is not a document: no front matter, or front matter that does not parse.
    #[error("not an activity document: {0}")]
    Malformed(String),
}

impl DocumentError {
    fn template(template: &Template, error: &minijinja::Error) -> DocumentError {
        let message = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        let column = error.range().and_then(|range| {
            let before = template.source.get(..range.start)?;
            let line_start = before.rfind('\n').map_or(0, |at| at + 1);
            Some(before[line_start..].chars().count() + 1)
        });
        DocumentError::Template {
            file: template.file.clone(),
            line: error.line(),
            column,
            message,
        }
    }
}

impl crate::failure::Classify for DocumentError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Failed
    }

    fn hints(&self) -> Vec<String> {
        match self {
            DocumentError::Template { .. } => vec![
                "fix the template at the line named; `git spectra registry validate` checks every template".into(),
            ],
            DocumentError::Malformed(_) => vec![
                "a document starts with a `---` line, its YAML front matter, and another `---` line".into(),
            ],
            DocumentError::FrontMatter(_) => Vec::new(),
        }
    }
}

/// The whole document: `---`, the front matter as YAML, `---`, a blank line and the body the
/// template renders from `decision` (its `playbooks` key left out). Ends with exactly one
/// newline; runs of blank lines in the body are folded into one, so a template's conditionals
/// need no whitespace care.
pub fn render(
    template: &Template,
    front: &FrontMatter,
    decision: &Value,
) -> Result<String, DocumentError> {
    let yaml = crate::yaml::to_string(front).map_err(DocumentError::FrontMatter)?;
    let yaml = yaml.strip_prefix("---\n").unwrap_or(&yaml);
    let environment = environment();
    let body = environment
        .render_named_str(&template.file, &template.source, context(front, decision))
        .map_err(|error| DocumentError::template(template, &error))?;
    let mut text = format!("{FENCE}\n{yaml}");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(FENCE);
    text.push_str("\n\n");
    text.push_str(&tidy(&body));
    Ok(text)
}

/// Reads a document back: its front matter, and its body (what follows the blank line after
/// the front matter). The front matter ends at the first line that is exactly `---`; the YAML
/// writer indents or quotes every line of a value, so no value can end it early.
pub fn parse(text: &str) -> Result<(FrontMatter, &str), DocumentError> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or_else(|| DocumentError::Malformed("it does not start with a `---` line".into()))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == FENCE {
            let front = crate::yaml::from_str::<FrontMatter>(&rest[..offset]).map_err(|error| {
                // The front matter starts on the document's second line.
                let line = error.position.line + 1;
                DocumentError::Malformed(format!("front matter line {line}: {}", error.message))
            })?;
            let body = &rest[offset + line.len()..];
            let body = body
                .strip_prefix('\n')
                .or_else(|| body.strip_prefix("\r\n"))
                .unwrap_or(body);
            return Ok((front, body));
        }
        offset += line.len();
    }
    Err(DocumentError::Malformed(
        "its front matter has no closing `---` line".into(),
    ))
}

/// The engine as every document template sees it: no escaping (the output is Markdown, not
/// HTML), undefined values print empty and can be looked into (so an older decision that lacks
/// a field still renders), block tags on their own lines leave no blank lines behind.
fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.set_undefined_behavior(UndefinedBehavior::Chainable);
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        environment.set_syntax(syntax);
    }
    filters::add(&mut environment);
    environment
}

/// The template's variables: the front matter's fields at the top level, and `decision`.
fn context(front: &FrontMatter, decision: &Value) -> minijinja::Value {
    let mut decision = decision.clone();
    if let Some(object) = decision.as_object_mut() {
        // The playbooks chosen are the run's business, recorded in their own events.
        object.remove("playbooks");
    }
    let mut context = match serde_json::to_value(front) {
        Ok(Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    context.entry("model").or_insert(Value::Null);
    context.insert("decision".into(), decision);
    minijinja::Value::from(minijinja::value::Serde(Value::Object(context)))
}

/// The body with trailing spaces of blank lines dropped, runs of blank lines folded into one,
/// no blank lines at the start and exactly one newline at the end.
fn tidy(body: &str) -> String {
    let mut text = String::with_capacity(body.len());
    let mut blank_run = 0;
    for line in body.lines() {
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if blank_run > 0 && !text.is_empty() {
            text.push('\n');
        }
        blank_run = 0;
        text.push_str(line);
        text.push('\n');
    }
    if text.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
