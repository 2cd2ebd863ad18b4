//! The error every command can end in: any library error that can [`Classify`] itself, or a
//! message the command line composed, with the class (hence the exit code) and hints that go
//! with it.
//!
//! Library modules define their own `thiserror` enums and say beside them, through
//! [`Classify`], how they end a command; this type only carries that across the boundary so
//! the binary can print `error: ...` and `hint: ...` lines the way git does and exit with
//! git's codes.

use crate::failure::{Class, Classify};
use crate::output::FailureReport;

pub use crate::failure::{EXIT_FAILED, EXIT_FATAL, EXIT_USAGE};

/// Everything a command can fail with: what went wrong, its class and what to do about it.
#[derive(Debug)]
pub struct Error {
    class: Class,
    error: Box<dyn std::error::Error + Send + Sync>,
    hints: Vec<String>,
}

/// A failure the command line itself describes (a payload that is not JSON...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

impl Error {
    /// A usage error with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Error {
        Error::message(Class::Usage, message.into(), hint.into())
    }

    /// A failed run or check.
    pub fn failed(message: impl Into<String>) -> Error {
        Error::message(Class::Failed, message.into(), None)
    }

    /// A failed run or check with a hint.
    pub fn failed_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::message(Class::Failed, message.into(), Some(hint.into()))
    }

    fn message(class: Class, message: String, hint: Option<String>) -> Error {
        Error {
            class,
            error: Box::new(Message(message)),
            hints: hint.into_iter().collect(),
        }
    }

    /// The process exit code that goes with this error.
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }

    /// What the binary prints for it.
    pub fn report(&self) -> FailureReport {
        FailureReport {
            class: self.class,
            message: self.error.to_string(),
            hints: self.hints.clone(),
        }
    }

    /// True when this error (or anything it wraps) is a closed pipe.
    pub fn is_broken_pipe(&self) -> bool {
        super::ui::is_broken_pipe(self.error.as_ref())
    }
}

impl<E> From<E> for Error
where
    E: Classify + Send + Sync + 'static,
{
    fn from(error: E) -> Error {
        Error {
            class: error.class(),
            hints: error.hints(),
            error: Box::new(error),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(formatter)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Result with the command line's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_error_keeps_its_class_hints_and_message() {
        let error = Error::from(crate::repo::RepoError::NotARepository);
        assert_eq!(error.exit_code(), EXIT_FATAL);
        assert_eq!(
            error.report().plain_text(),
            "fatal: not a git repository (or any of the parent directories): .git\n"
        );
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_the_wrapper() {
        let error = Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(error.is_broken_pipe());
        assert!(!Error::failed("no").is_broken_pipe());
    }
}
