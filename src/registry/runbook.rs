//! Runbook playbooks: Markdown steps a person or an agent follows, with their index fields in
//! YAML front matter. A runbook has no argv: choosing it puts its body into the activity's next
//! decision, and its execution is that decision's own plan plus whatever executable playbooks
//! the steps name.
//!
//! The front matter is parsed where it stands in the file (from the opening `---`), so every
//! problem keeps the file's own line and column.

use serde::{Deserialize, Serialize};

use super::format::PlaybookFile;
use crate::yaml::{Spanned, YamlError};

/// The index fields of a runbook, beyond what every playbook has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookIndex {
    /// A few sentences on what following it achieves; ranked beside the description.
    #[serde(default)]
    pub summary: String,
    /// What the steps need before they start (an account, a token, a service name).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// What following the steps leaves behind.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Whether an agent could follow every step without a person.
    #[serde(default)]
    pub automation_possible: bool,
    /// The steps only a person can take (a console click, an approval).
    #[serde(default)]
    pub manual_steps: Vec<String>,
}

/// A runbook's front matter exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub name: Spanned<String>,
    pub description: String,
    #[serde(default)]
    pub activities: Vec<Spanned<String>>,
    #[serde(default)]
    pub activity: Option<Spanned<String>>,
    pub domain: Spanned<String>,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub automation_possible: bool,
    #[serde(default)]
    pub manual_steps: Vec<String>,
}

/// A Markdown file split at its front matter.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// From the opening `---` line up to (not including) the closing one: YAML whose line
    /// numbers are the file's.
    pub front_matter: &'a str,
    /// Everything after the closing line, without the blank lines that start it.
    pub body: &'a str,
}

/// Splits `text` at its front matter: `None` when it does not start with a `---` line or the
/// front matter is never closed by a `---` (or `...`) line.
pub fn split(text: &str) -> Option<Split<'_>> {
    let first_end = text.find('\n')?;
    if text[..first_end].trim_end() != "---" {
        return None;
    }
    let mut offset = first_end + 1;
    for line in text[offset..].split_inclusive('\n') {
        let marker = line.trim_end();
        if marker == "---" || marker == "..." {
            let body = &text[offset + line.len()..];
            return Some(Split {
                front_matter: &text[..offset],
                body: body.trim_start_matches(['\n', '\r']),
            });
        }
        offset += line.len();
    }
    None
}

/// Reads a runbook file as a playbook: its front matter checked field by field (unknown fields
/// refused), its body the playbook's runbook.
pub fn parse(text: &str) -> Result<PlaybookFile, YamlError> {
    let Some(split) = split(text) else {
        return Err(YamlError {
            position: crate::yaml::Position { line: 1, column: 1 },
            message: "a runbook starts with YAML front matter between `---` lines (name, description, activities, domain, ...); `git spectra registry import` writes one".into(),
        });
    };
    let front: FrontMatter = crate::yaml::from_str(split.front_matter)?;
    Ok(front.into_playbook_file(split.body))
}

impl FrontMatter {
    fn into_playbook_file(self, body: &str) -> PlaybookFile {
        let at = |value| Spanned::new(value, self.name.referenced, self.name.defined);
        let mut activities = self.activities;
        activities.extend(self.activity);
        PlaybookFile {
            timeout: at(RUNBOOK_TIMEOUT_SECONDS),
            id: self.name,
            activities,
            domain: self.domain,
            description: self.description,
            runbook: Some(body.to_string()),
            run: None,
            inputs: None,
            undo: None,
            // Following a runbook runs nothing itself; what its steps run is recorded, and
            // undone, as those playbooks.
            reversible: true,
            idempotent: true,
            undo_unfinished: false,
            undo_last: false,
            configured: None,
            index: Some(RunbookIndex {
                summary: self.summary,
                inputs: self.inputs,
                outputs: self.outputs,
                automation_possible: self.automation_possible,
                manual_steps: self.manual_steps,
            }),
        }
    }
}

/// A runbook runs no process, so its timeout is never used; it still needs a valid one.
const RUNBOOK_TIMEOUT_SECONDS: f64 = 1.0;

#[cfg(test)]
mod tests {
    use super::*;

    const RAILWAY: &str = "---\nname: railway.deploy\ndescription: Deploy a service to Railway.\nactivities: [deploy]\ndomain: railway\nsummary: Link the project, set variables, deploy.\ninputs: [RAILWAY_TOKEN]\nmanual_steps: [Approve the first deploy]\n---\n\n# Deploy to Railway\n\n1. `railway up`\n";

    #[test]
    fn splits_front_matter_from_the_body() {
        let parts = split(RAILWAY).unwrap();
        assert!(
            parts
                .front_matter
                .starts_with("---\nname: railway.deploy\n")
        );
        assert!(parts.front_matter.ends_with("[Approve the first deploy]\n"));
        assert_eq!(parts.body, "# Deploy to Railway\n\n1. `railway up`\n");
        assert_eq!(split("# no front matter\n"), None);
        assert_eq!(split("---\nname: x\n"), None, "never closed");
    }

    #[test]
    fn a_runbook_is_a_playbook_with_its_body_and_index() {
        let file = parse(RAILWAY).unwrap();
        assert_eq!(file.id.value, "railway.deploy");
        assert_eq!(file.activities[0].value, "deploy");
        assert!(file.run.is_none());
        assert_eq!(
            file.runbook.as_deref(),
            Some("# Deploy to Railway\n\n1. `railway up`\n")
        );
        let index = file.index.unwrap();
        assert_eq!(index.inputs, ["RAILWAY_TOKEN"]);
        assert!(!index.automation_possible);
    }

    #[test]
    fn front_matter_problems_keep_the_file_line() {
        let text = RAILWAY.replace("domain: railway\n", "domain: railway\nrun: [echo]\n");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.position.line, 6, "{error}");
        assert!(error.message.contains("unknown field `run`"), "{error}");
        let error = parse("# Title\n\nText.\n").unwrap_err();
        assert!(error.message.contains("front matter"), "{error}");
    }
}
