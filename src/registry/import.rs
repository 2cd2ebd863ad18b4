//! Turning a Markdown runbook written for people into a registry entry: its front matter kept
//! where it has one, derived where it can be (the name from the file name, the description
//! from the title, the summary from the first paragraph), and every index field nobody wrote
//! listed, so a person knows what to fill in.
//!
//! Pure text to text: `git spectra registry import` reads the folder and writes the files.

use serde_json::Value;

use super::runbook;
use super::{Kind, Layer, SourceFile};

/// What an imported runbook's entry is made of, beside the folder it came from.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// The activities that may use it, when its front matter names none.
    pub activities: Vec<String>,
    /// Its domain, when its front matter names none.
    pub domain: String,
}

/// One runbook made into a registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The entry's name (its playbook id, and its file name without `.md`).
    pub name: String,
    /// The entry's file: front matter, then the runbook's body unchanged.
    pub text: String,
    /// The activities that may use it.
    pub activities: Vec<String>,
    /// Its domain.
    pub domain: String,
    /// The fields derived rather than read from front matter.
    pub derived: Vec<&'static str>,
    /// The index fields nobody wrote, left empty for a person to fill in.
    pub fill_in: Vec<&'static str>,
    /// Front matter keys that are not runbook fields, left out of the entry.
    pub dropped: Vec<String>,
}

/// Why a runbook cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Its front matter is not YAML (or not a mapping).
    #[error("front matter is not a YAML mapping: {0}")]
    FrontMatter(String),
    /// No activity may use it: none in its front matter, none given.
    #[error("no activity may use it: its front matter names none; pass --activity NAME")]
    NoActivity,
}

/// The index fields a runbook may leave for a person to fill in, with what each is for.
const INDEX_FIELDS: &[(&str, &str)] = &[
    ("inputs", "what the steps need before they start"),
    ("outputs", "what following the steps leaves behind"),
    (
        "automation_possible",
        "whether an agent could follow every step alone",
    ),
    ("manual_steps", "the steps only a person can take"),
];

/// Makes the runbook `text`, read from a file named `file_stem`.md, into a registry entry.
pub fn runbook(file_stem: &str, text: &str, defaults: &Defaults) -> Result<Imported, ImportError> {
    let (front, body) = match runbook::split(text) {
        Some(split) => (front_matter(split.front_matter)?, split.body),
        None => (serde_json::Map::new(), text),
    };
    let mut derived = Vec::new();
    let mut fill_in = Vec::new();
    let string = |key: &str| {
        front
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let name = string("name").map_or_else(
        || {
            derived.push("name");
            slug(file_stem)
        },
        |name| slug(&name),
    );
    let description = string("description").unwrap_or_else(|| {
        derived.push("description");
        title(body).unwrap_or_else(|| file_stem.replace(['-', '_'], " "))
    });
    let summary = string("summary").or_else(|| {
        let paragraph = first_paragraph(body)?;
        derived.push("summary");
        Some(paragraph)
    });
    if summary.is_none() {
        fill_in.push("summary");
    }
    let mut activities = strings(front.get("activities"));
    activities.extend(strings(front.get("activity")));
    if activities.is_empty() {
        if defaults.activities.is_empty() {
            return Err(ImportError::NoActivity);
        }
        derived.push("activities");
        activities = defaults.activities.clone();
    }
    let domain = string("domain").map_or_else(
        || {
            derived.push("domain");
            defaults.domain.clone()
        },
        |domain| slug(&domain),
    );
    let mut lines = vec![
        "---".to_string(),
        format!("name: {}", quoted(&name)),
        format!("description: {}", quoted(&description)),
        format!("activities: {}", Value::from(activities.clone())),
        format!("domain: {}", quoted(&domain)),
        format!("summary: {}", quoted(summary.as_deref().unwrap_or(""))),
    ];
    for (field, meaning) in INDEX_FIELDS {
        let value = front
            .get(*field)
            .or_else(|| front.get(&field.replace('_', " ")));
        match value {
            Some(value) => lines.push(format!("{field}: {value}")),
            None => {
                fill_in.push(field);
                let empty = if *field == "automation_possible" {
                    "false"
                } else {
                    "[]"
                };
                lines.push(format!("{field}: {empty}  # fill in: {meaning}"));
            }
        }
    }
    lines.push("---".to_string());
    let known = [
        "name",
        "description",
        "activities",
        "activity",
        "domain",
        "summary",
        "inputs",
        "outputs",
        "automation_possible",
        "automation possible",
        "manual_steps",
        "manual steps",
    ];
    let dropped = front
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .cloned()
        .collect();
    Ok(Imported {
        name,
        text: format!("{}\n\n{}", lines.join("\n"), body),
        activities,
        domain,
        derived,
        fill_in,
        dropped,
    })
}

/// What the `entries` (the path under the repository as [`super::Problem::file`] names it,
/// and the text) would break in the registry of the repository at `root`: the registry is
/// loaded with them added (replacing a file of the same path), and every problem in their own
/// files is returned, with every problem elsewhere that the registry did not have without them
/// (an entry that takes a built-in playbook's id breaks the activities that use it). Problems
/// that were there before are not the import's. Empty: they can be written.
pub fn problems_with(root: &std::path::Path, entries: &[(String, String)]) -> Vec<super::Problem> {
    let is_entry = |path: &str| entries.iter().any(|(entry, _)| entry == path);
    let (repository, _) = super::source::repository(root);
    let mut without = super::source::builtin();
    without.extend(repository);
    let mut with: Vec<SourceFile> = without
        .iter()
        .filter(|file| !is_entry(&file.path))
        .cloned()
        .collect();
    with.extend(entries.iter().map(|(path, text)| SourceFile {
        path: path.clone(),
        kind: Kind::Runbook,
        layer: Layer::Repository,
        text: text.clone(),
    }));
    let before = problems_of(without);
    problems_of(with)
        .into_iter()
        .filter(|problem| is_entry(&problem.file) || !before.contains(problem))
        .collect()
}

/// The problems that keep `sources` from loading as a registry.
fn problems_of(sources: Vec<SourceFile>) -> Vec<super::Problem> {
    match super::Registry::from_sources(sources) {
        Err(super::RegistryError::Invalid(problems)) => problems,
        // Only a broken file stops a load.
        _ => Vec::new(),
    }
}

fn front_matter(yaml: &str) -> Result<serde_json::Map<String, Value>, ImportError> {
    match crate::yaml::to_json(yaml) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(serde_json::Map::new()),
        Ok(other) => Err(ImportError::FrontMatter(format!("found {other}"))),
        Err(error) => Err(ImportError::FrontMatter(error.to_string())),
    }
}

/// A string or a list of strings, as a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A name the registry accepts: lowercase letters and digits joined by `-` (and the `.`/`_`
/// already there), starting with a letter.
pub fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        let separator_allowed = !slug.is_empty() && !slug.ends_with(['-', '.', '_']);
        let kept = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || (['.', '_'].contains(&c) && separator_allowed);
        if kept {
            slug.push(c);
        } else if separator_allowed {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches(['-', '.', '_']).to_string();
    match slug.chars().next() {
        Some(first) if first.is_ascii_lowercase() => slug,
        Some(_) => format!("runbook-{slug}"),
        None => "runbook".to_string(),
    }
}

/// The text of the first `# ` heading.
fn title(body: &str) -> Option<String> {
    body.lines()
        .find_map(|line| line.trim().strip_prefix("# "))
        .map(|title| title.trim().to_string())
        .filter(|title| !title.is_empty())
}

/// The first paragraph of prose (not a heading, a list, a quote, a table or code), its lines
/// joined by spaces.
fn first_paragraph(body: &str) -> Option<String> {
    let mut paragraph: Vec<&str> = Vec::new();
    let mut in_code = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let prose = !in_code
            && !line.is_empty()
            && !line.starts_with(['#', '-', '*', '>', '|', '<'])
            && !line.starts_with(|c: char| c.is_ascii_digit());
        if prose {
            paragraph.push(line);
        } else if !paragraph.is_empty() {
            break;
        }
    }
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}

/// `text` as a YAML double-quoted scalar (JSON's escapes are YAML's).
fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            activities: vec!["deploy".into()],
            domain: "ops".into(),
        }
    }

    #[test]
    fn a_plain_runbook_gets_its_name_title_and_first_paragraph() {
        let text = "# Create a Railway service\n\nLink the repository to a new Railway\nservice and deploy it.\n\n1. `railway init`\n";
        let imported = runbook("Create Railway Service", text, &defaults()).unwrap();
        assert_eq!(imported.name, "create-railway-service");
        assert_eq!(
            imported.derived,
            ["name", "description", "summary", "activities", "domain"]
        );
        assert_eq!(
            imported.fill_in,
            ["inputs", "outputs", "automation_possible", "manual_steps"]
        );
        let entry = runbook::parse(&imported.text).unwrap();
        assert_eq!(entry.description, "Create a Railway service");
        let index = entry.index.unwrap();
        assert_eq!(
            index.summary,
            "Link the repository to a new Railway service and deploy it."
        );
        assert!(imported.text.ends_with(text), "the body is kept as written");
    }

    #[test]
    fn front_matter_is_kept_and_unknown_keys_are_dropped() {
        let text = "---\nname: Rotate GitHub deploy key\ndescription: Rotate a deploy key.\nactivity: maintain\ndomain: github\nmanual steps: [Approve in GitHub]\nowner: platform\n---\n# Rotate\n";
        let imported = runbook("x", text, &Defaults::default()).unwrap();
        assert_eq!(imported.name, "rotate-github-deploy-key");
        assert_eq!(imported.dropped, ["owner"]);
        assert_eq!(
            imported.fill_in,
            ["summary", "inputs", "outputs", "automation_possible"]
        );
        let entry = runbook::parse(&imported.text).unwrap();
        assert_eq!(entry.activities[0].value, "maintain");
        assert_eq!(entry.index.unwrap().manual_steps, ["Approve in GitHub"]);
    }

    /// What import writes is what the runbook schema describes: nothing it derives, fills in
    /// or renames (`manual steps` becomes `manual_steps`) falls outside it.
    #[test]
    fn what_import_writes_passes_the_runbook_schema() {
        let schema: Value = serde_json::from_str(crate::registry::RUNBOOK_SCHEMA).unwrap();
        let schema = jsonschema::validator_for(&schema).unwrap();
        for (stem, text) in [
            (
                "Create Railway Service",
                "# Create a Railway service\n\nLink it.\n",
            ),
            ("bare", "1. `railway up`\n"),
            (
                "x",
                "---\nname: Rotate GitHub deploy key\nactivity: maintain\ndomain: github\nautomation possible: true\nmanual steps: [Approve in GitHub]\ninputs: [a token]\nowner: platform\n---\n# Rotate\n",
            ),
        ] {
            let imported = runbook(stem, text, &defaults()).unwrap();
            let front_matter = runbook::split(&imported.text).unwrap().front_matter;
            let document = crate::yaml::to_json(front_matter).unwrap();
            let errors: Vec<String> = schema
                .iter_errors(&document)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}\n{errors:#?}", imported.text);
        }
    }

    #[test]
    fn a_runbook_no_activity_may_use_is_refused() {
        assert_eq!(
            runbook("x", "# X\n", &Defaults::default()),
            Err(ImportError::NoActivity)
        );
    }

    #[test]
    fn slugs_are_registry_names() {
        assert_eq!(slug("Deploy to Railway (prod)!"), "deploy-to-railway-prod");
        assert_eq!(slug("2fa_reset"), "runbook-2fa_reset");
        assert_eq!(slug("--"), "runbook");
    }
}
