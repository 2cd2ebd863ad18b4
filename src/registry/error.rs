//! What can be wrong with a registry, always with the place it is wrong at.

use std::fmt;

use serde::Serialize;

use crate::yaml::Position;

/// One thing wrong in one registry file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// The file as the user knows it: `registry/...` for built-in files, the path under the
    /// repository for `.spectra/registry/...`.
    pub file: String,
    /// Line and column; `0:0` when the problem is the file as a whole (unreadable, misplaced).
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(file: &str, position: Position, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_string(),
            position,
            message: message.into(),
        }
    }

    pub(crate) fn whole_file(file: &str, message: impl Into<String>) -> Problem {
        Problem::new(file, Position::default(), message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position == Position::default() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.position, self.message)
        }
    }
}

/// Why a registry could not be loaded or an entry not found.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// One or more files are broken; every problem found is listed, sorted by file and place.
    #[error("{}", describe_problems(.0))]
    Invalid(Vec<Problem>),
    /// The activity named is not in the registry.
    #[error("no activity named `{0}` in the registry")]
    UnknownActivity(String),
    /// No activity or playbook has the id given.
    #[error("no activity or playbook with id `{0}` in the registry")]
    UnknownEntry(String),
}

impl crate::failure::Classify for RegistryError {
    fn class(&self) -> crate::failure::Class {
        // A broken registry file is a failed check, like a failed `verify`, not a fatal error.
        crate::failure::Class::Failed
    }

    fn hints(&self) -> Vec<String> {
        let hint = match self {
            RegistryError::Invalid(_) => {
                "run `git spectra registry validate` to list every problem with its file:line:column"
            }
            RegistryError::UnknownActivity(_) | RegistryError::UnknownEntry(_) => {
                "`git spectra registry list` shows the activities and playbooks that exist"
            }
        };
        vec![hint.into()]
    }
}

impl RegistryError {
    /// The problems behind an [`RegistryError::Invalid`]; empty for the other kinds.
    pub fn problems(&self) -> &[Problem] {
        match self {
            RegistryError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn describe_problems(problems: &[Problem]) -> String {
    match problems {
        [] => "the registry is invalid".to_string(),
        [only] => format!("invalid registry: {only}"),
        [first, rest @ ..] => format!("invalid registry: {first} (and {} more)", rest.len()),
    }
}
