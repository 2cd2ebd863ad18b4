//! The bytes a command prints, shared by the command line and by the built-in playbooks that
//! run inside this process (see `playbook::in_process`), which must print exactly what
//! `git spectra builtin ...` would: one JSON line per record, and git's failure report.

use serde::Serialize;

use crate::failure::{Class, Classify};

/// `value` as one line of compact JSON and a newline: what `--format json` prints per record.
pub fn json_line(value: &impl Serialize) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// `label: message` and a newline. Like git, only hints label every line; an error's
/// continuation lines (a list of candidates...) follow unlabelled.
pub fn labelled(label: &str, message: &str, label_every_line: bool) -> String {
    let text = if label_every_line {
        message
            .lines()
            .collect::<Vec<_>>()
            .join(&format!("\n{label}: "))
    } else {
        message.to_owned()
    };
    format!("{label}: {text}\n")
}

/// What a failing command prints on standard error: `fatal:` (when it exits 128) or `error:`
/// and the message, then its hints, each line labelled `hint:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// How the command fails: usage, failed or fatal (this chooses the exit code).
    pub class: Class,
    /// The first line, after `error:` or `fatal:`.
    pub message: String,
    /// Lines printed after it, each after `hint:`.
    pub hints: Vec<String>,
}

impl FailureReport {
    /// The report for `error`.
    pub fn of(error: &(impl Classify + ?Sized)) -> FailureReport {
        FailureReport {
            class: error.class(),
            message: error.to_string(),
            hints: error.hints(),
        }
    }

    /// The exit code that goes with it.
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }

    /// The text, each label (`error`, `fatal`, `hint`) passed through `label` (the command
    /// line colours them on a terminal).
    pub fn text_with(&self, label: impl Fn(&str) -> String) -> String {
        let mut text = labelled(&label(self.class.label()), &self.message, false);
        for hint in &self.hints {
            text.push_str(&labelled(&label("hint"), hint, true));
        }
        text
    }

    /// The text without colour, as a process writing into a pipe prints it.
    pub fn plain_text(&self) -> String {
        self.text_with(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_failure_is_labelled_fatal_and_every_hint_line_is_labelled() {
        let report = FailureReport {
            class: Class::Fatal,
            message: "cannot read\nsecond line".into(),
            hints: vec!["do this\nthen that".into()],
        };
        assert_eq!(
            report.plain_text(),
            "fatal: cannot read\nsecond line\nhint: do this\nhint: then that\n"
        );
        assert_eq!(report.exit_code(), 128);
    }

    #[test]
    fn a_failed_check_is_an_error_with_exit_code_one() {
        let report = FailureReport {
            class: Class::Failed,
            message: "no".into(),
            hints: Vec::new(),
        };
        assert_eq!(report.plain_text(), "error: no\n");
        assert_eq!(report.exit_code(), 1);
    }
}
