//! The registry's templates, read by one scanner: a playbook's argv (`run`, `undo`) and an
//! activity's prompts.
//!
//! The two keep the placeholder marks their documents have always used, since a change would
//! break every registry already written: an argv word marks a placeholder with single braces
//! and escapes a brace by doubling it, while a prompt marks one with double braces and leaves
//! every other brace alone, so the JSON examples prompts quote need no escaping. Both are
//! scanned once, left to right, and a value filled in is never scanned again.
//!
//! An argv template is a list of words; a word may hold `{name}` placeholders, filled from the
//! playbook's inputs, and `{spectra}`, filled with the path of this very binary so built-in
//! playbooks can call `git spectra builtin ...`. `{{` and `}}` stand for literal braces. A word
//! that is exactly one placeholder naming an array becomes one argument per element. A nested
//! list is an optional group: it is dropped whole when any input it names is absent or null, so
//! `[--base, "{base}"]` needs no shell to be conditional. Nothing here ever meets a shell: each
//! word becomes exactly one argv element (or none, or one per array element).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The placeholder that names the `git-spectra` binary itself.
pub const SPECTRA_PLACEHOLDER: &str = "spectra";

/// One element of an argv template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    /// A word, possibly with placeholders.
    Word(String),
    /// Words that appear together, or not at all when one of their inputs is absent.
    Group(Vec<String>),
}

/// A template word that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` never closes.
    #[error("unclosed `{{` in `{0}` (write `{{{{` for a literal brace)")]
    Unclosed(String),
    /// A `}` closes nothing.
    #[error("stray `}}` in `{0}` (write `}}}}` for a literal brace)")]
    Stray(String),
    /// A placeholder name has characters other than letters, digits and `_`.
    #[error("`{{{name}}}` in `{word}` is not a placeholder name (letters, digits, `_`)")]
    BadName {
        /// The whole word.
        word: String,
        /// What sits between the braces.
        name: String,
    },
}

/// Why inputs could not fill a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template itself is malformed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A required input was not given.
    #[error("input `{0}` is required by the argv template but was not given")]
    Missing(String),
    /// A list or object input sits inside a longer word.
    #[error(
        "input `{0}` is a list or an object; only a word that is exactly `{{{0}}}` can take a list"
    )]
    NotScalar(String),
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(String),
    Placeholder(&'a str),
}

/// How a template marks its placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// A playbook's argv word: `{name}`, with `{{` and `}}` for literal braces.
    Argv,
    /// An activity's prompt: `{{name}}` or `{{ name }}`; any other brace is text.
    Prompt,
}

/// What the scanner found at the start of the rest of a template, and how many bytes it took.
enum Step<'a> {
    Text(&'a str, usize),
    Placeholder(&'a str, usize),
}

/// The placeholder names used in `word`, in order.
pub fn placeholders(word: &str) -> Result<Vec<&str>, TemplateError> {
    Ok(parse(word)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect())
}

/// The placeholder names used anywhere in `args`, in order, repeats kept.
pub fn all_placeholders(args: &[Arg]) -> Result<Vec<&str>, TemplateError> {
    let mut names = Vec::new();
    for arg in args {
        for word in words(arg) {
            names.extend(placeholders(word)?);
        }
    }
    Ok(names)
}

/// Fills `args` from `inputs`, resolving `{spectra}` to `spectra_exe`.
pub fn render(
    args: &[Arg],
    inputs: &Map<String, Value>,
    spectra_exe: &Path,
) -> Result<Vec<String>, RenderError> {
    let mut argv = Vec::new();
    for arg in args {
        match arg {
            Arg::Word(word) => argv.extend(render_word(word, inputs, spectra_exe)?),
            Arg::Group(group) if group_is_complete(group, inputs)? => {
                for word in group {
                    argv.extend(render_word(word, inputs, spectra_exe)?);
                }
            }
            Arg::Group(_) => {}
        }
    }
    Ok(argv)
}

fn words(arg: &Arg) -> Vec<&str> {
    match arg {
        Arg::Word(word) => vec![word.as_str()],
        Arg::Group(group) => group.iter().map(String::as_str).collect(),
    }
}

fn group_is_complete(group: &[String], inputs: &Map<String, Value>) -> Result<bool, TemplateError> {
    for word in group {
        for name in placeholders(word)? {
            if name != SPECTRA_PLACEHOLDER && is_absent(inputs.get(name)) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn is_absent(value: Option<&Value>) -> bool {
    matches!(value, None | Some(Value::Null))
}

fn render_word(
    word: &str,
    inputs: &Map<String, Value>,
    spectra_exe: &Path,
) -> Result<Vec<String>, RenderError> {
    let pieces = parse(word)?;
    if let [Piece::Placeholder(name)] = pieces.as_slice()
        && let Some(Value::Array(items)) = inputs.get(*name)
    {
        return items.iter().map(|item| scalar(name, item)).collect();
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Placeholder(SPECTRA_PLACEHOLDER) => out.push_str(&spectra_exe.to_string_lossy()),
            Piece::Placeholder(name) => match inputs.get(name) {
                None | Some(Value::Null) => return Err(RenderError::Missing(name.to_string())),
                Some(value) => out.push_str(&scalar(name, value)?),
            },
        }
    }
    Ok(vec![out])
}

fn scalar(name: &str, value: &Value) -> Result<String, RenderError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => {
            Err(RenderError::NotScalar(name.to_string()))
        }
    }
}

fn parse(word: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    scan(word, Syntax::Argv)
}

/// `template` as text and placeholders, read once from left to right.
fn scan(template: &str, syntax: Syntax) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        let step = match syntax {
            Syntax::Argv => argv_step(rest, template)?,
            Syntax::Prompt => prompt_step(rest),
        };
        let taken = match step {
            Step::Text(literal, taken) => {
                text.push_str(literal);
                taken
            }
            Step::Placeholder(name, taken) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Placeholder(name));
                taken
            }
        };
        rest = &rest[taken..];
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// One step through an argv word (`word` is the whole of it, for errors).
fn argv_step<'a>(rest: &'a str, word: &str) -> Result<Step<'a>, TemplateError> {
    if rest.starts_with("{{") {
        return Ok(Step::Text("{", 2));
    }
    if rest.starts_with("}}") {
        return Ok(Step::Text("}", 2));
    }
    if rest.starts_with('}') {
        return Err(TemplateError::Stray(word.to_string()));
    }
    if rest.starts_with('{') {
        let end = rest
            .find('}')
            .ok_or_else(|| TemplateError::Unclosed(word.to_string()))?;
        let name = &rest[1..end];
        if !is_placeholder_name(name) {
            return Err(TemplateError::BadName {
                word: word.to_string(),
                name: name.to_string(),
            });
        }
        return Ok(Step::Placeholder(name, end + 1));
    }
    Ok(one_character(rest))
}

/// One step through a prompt: `{{ name }}` (spaces inside trimmed), else one character.
fn prompt_step(rest: &str) -> Step<'_> {
    if let Some(inside) = rest.strip_prefix("{{")
        && let Some(end) = inside.find("}}")
    {
        return Step::Placeholder(inside[..end].trim(), end + 4);
    }
    one_character(rest)
}

fn one_character(rest: &str) -> Step<'_> {
    let len = rest.chars().next().map_or(0, char::len_utf8);
    Step::Text(&rest[..len], len)
}

/// The `{{name}}` variables a prompt template uses, in order.
pub fn prompt_variables(template: &str) -> Vec<&str> {
    prompt_pieces(template)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// `template` with every `{{name}}` replaced by `values[name]` (empty if absent). A value is
/// inserted as it is: a `{{...}}` inside it (an idea quoting a template) stays text.
pub fn render_prompt(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in prompt_pieces(template) {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Placeholder(name) => out.push_str(values.get(name).map_or("", String::as_str)),
        }
    }
    out
}

fn prompt_pieces(template: &str) -> Vec<Piece<'_>> {
    scan(template, Syntax::Prompt).expect("a prompt always scans: any other brace is text")
}

fn is_placeholder_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn word(text: &str) -> Arg {
        Arg::Word(text.to_string())
    }

    #[test]
    fn placeholders_are_found_and_braces_escape() {
        assert_eq!(
            placeholders("--name={name}-{x}").unwrap(),
            vec!["name", "x"]
        );
        assert_eq!(placeholders("{{literal}}").unwrap(), Vec::<&str>::new());
        assert!(matches!(
            placeholders("{oops"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(
            placeholders("oops}"),
            Err(TemplateError::Stray(_))
        ));
        assert!(matches!(
            placeholders("{a b}"),
            Err(TemplateError::BadName { .. })
        ));
    }

    #[test]
    fn render_fills_words_splices_lists_and_drops_incomplete_groups() {
        let args = vec![
            word("{spectra}"),
            word("--n={n}"),
            word("{files}"),
            Arg::Group(vec!["--base".into(), "{base}".into()]),
            word("{{x}}"),
        ];
        let argv = render(
            &args,
            &inputs(json!({"n": 3, "files": ["a", "b c"], "base": null})),
            Path::new("/bin/gs"),
        )
        .unwrap();
        assert_eq!(argv, ["/bin/gs", "--n=3", "a", "b c", "{x}"]);
    }

    #[test]
    fn prompts_fill_variables_in_one_pass() {
        let values = BTreeMap::from([
            ("input", "see {{service}} and {x}".to_string()),
            ("service", "logs".to_string()),
        ]);
        assert_eq!(
            render_prompt(
                "{{input}} / {{  service }} / {\"a\": {}} / {{unknown}} / {{",
                &values
            ),
            "see {{service}} and {x} / logs / {\"a\": {}} /  / {{"
        );
        assert_eq!(prompt_variables("{{ a }}{{b}} {c} {{"), vec!["a", "b"]);
    }

    #[test]
    fn render_refuses_missing_inputs_and_embedded_lists() {
        let exe = Path::new("x");
        assert_eq!(
            render(&[word("{a}")], &Map::new(), exe),
            Err(RenderError::Missing("a".into()))
        );
        assert_eq!(
            render(&[word("-{a}")], &inputs(json!({"a": [1]})), exe),
            Err(RenderError::NotScalar("a".into()))
        );
    }
}
