//! The error every command can end in, with the exit code and the hint that goes with it.
//!
//! Library modules define their own `thiserror` enums; this type gathers them so the binary can
//! print `error: ...` and `hint: ...` lines the way git does and exit with git's codes.

/// Exit code for a run, check or verification that failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a fatal error (not a repository, unreadable store), as git uses.
pub const EXIT_FATAL: u8 = 128;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments were understood by clap but are still wrong (a payload that is not JSON...).
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },
    /// A run, check or verification failed; the message says which.
    #[error("{message}")]
    Failed { message: String, hint: Option<String> },
    /// The repository could not be found or opened.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// Reading or writing standard streams failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The process exit code that goes with this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => EXIT_USAGE,
            Error::Failed { .. } => EXIT_FAILED,
            Error::Repo(_) | Error::Io(_) => EXIT_FATAL,
        }
    }

    /// A line telling the user what to do about it, printed as `hint: ...`.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } | Error::Failed { hint, .. } => hint.as_deref(),
            Error::Repo(_) | Error::Io(_) => None,
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
