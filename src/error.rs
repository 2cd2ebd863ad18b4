//! The error every command can end in, with the exit code and the hint that goes with it.
//!
//! Library modules define their own `thiserror` enums; this type gathers them so the binary can
//! print `error: ...` and `hint: ...` lines the way git does and exit with git's codes.

use crate::hook::HookError;
use crate::store::StoreError;

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
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A run, check or verification failed; the message says which.
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// The repository could not be found or opened.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// The registry is invalid, or has no entry by the name asked for.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// A playbook was refused (not allowed, bad inputs, a path out of the repository) or could
    /// not be started.
    #[error(transparent)]
    Playbook(#[from] crate::playbook::PlaybookError),
    /// A built-in playbook failed.
    #[error(transparent)]
    Builtin(#[from] crate::builtin::BuiltinError),
    /// The event log could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The LLM endpoint could not give a valid decision (unreachable, refused, invalid output).
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// A setting (flag, environment variable or `git config spectra.*`) has a bad value.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// A run could not be started or recorded.
    #[error(transparent)]
    Run(#[from] crate::activity::RunError),
    /// Export could not write its files.
    #[error(transparent)]
    Export(#[from] crate::projection::export::ExportError),
    /// Sharing the log with a remote failed.
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    /// A git hook could not be installed, removed or inspected.
    #[error(transparent)]
    Hook(#[from] crate::hook::HookError),
    /// An undo or redo was refused, or stopped part way.
    #[error(transparent)]
    Undo(#[from] crate::undo::UndoError),
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
            // A broken registry file is a failed check, like a failed `verify`, not a fatal error.
            Error::Registry(_) | Error::Playbook(_) | Error::Builtin(_) => EXIT_FAILED,
            Error::Store(err) => Error::store_exit_code(err),
            Error::Llm(_) | Error::Export(_) => EXIT_FAILED,
            // git could not reach the remote: fatal, as git's own fetch is.
            Error::Sync(crate::sync::SyncError::Store(err)) => Error::store_exit_code(err),
            Error::Sync(err) if err.is_fatal() => EXIT_FATAL,
            Error::Sync(_) => EXIT_FAILED,
            Error::Undo(err) => match err {
                crate::undo::UndoError::Store(store) => Error::store_exit_code(store),
                _ => EXIT_FAILED,
            },
            Error::Run(err) => match err {
                crate::activity::RunError::UnknownActivity(_)
                | crate::activity::RunError::Registry(_)
                | crate::activity::RunError::OperationInProgress(_) => EXIT_FAILED,
                crate::activity::RunError::Store(_)
                | crate::activity::RunError::Bare(_)
                | crate::activity::RunError::RunLock(_) => EXIT_FATAL,
            },
            // An existing hook we will not edit is a refusal, like a failed check; the rest
            // (no hooks directory, unreadable files) is fatal, as in git.
            Error::Hook(HookError::Unsupported { .. }) => EXIT_FAILED,
            Error::Hook(_) => EXIT_FATAL,
            // As git does for a bad config value.
            Error::Repo(_) | Error::Io(_) | Error::Settings(_) => EXIT_FATAL,
        }
    }

    fn store_exit_code(err: &StoreError) -> u8 {
        match err {
            // A prefix too short to look up is bad input, as a malformed argument would be.
            StoreError::TooShort(_) => EXIT_USAGE,
            StoreError::NotFound(_)
            | StoreError::Ambiguous { .. }
            | StoreError::NoSuchAttachment { .. }
            | StoreError::Contention { .. }
            | StoreError::Unverifiable { .. }
            | StoreError::Tampered(_)
            | StoreError::NotALog { .. }
            | StoreError::UnverifiedLog { .. }
            | StoreError::Event(_) => EXIT_FAILED,
            StoreError::Read(_) | StoreError::Write(_) | StoreError::NotAnEvent { .. } => {
                EXIT_FATAL
            }
        }
    }

    /// A line telling the user what to do about it, printed as `hint: ...`.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } | Error::Failed { hint, .. } => hint.clone(),
            Error::Store(err) => err.hint(),
            Error::Llm(err) => err.hint().map(str::to_string),
            Error::Settings(_) => Some("fix or unset the value at the place named above".into()),
            Error::Registry(err) => registry_hint(err).map(str::to_string),
            Error::Playbook(err) => playbook_hint(err).map(str::to_string),
            Error::Builtin(err) => builtin_hint(err).map(str::to_string),
            Error::Run(err) => err.hint(),
            Error::Undo(err) => err.hint(),
            Error::Export(_) => None,
            Error::Sync(err) => err.hint(),
            Error::Hook(err) => err.hint(),
            Error::Repo(_) | Error::Io(_) => None,
        }
    }

    /// A usage error with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A failed run or check.
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
            hint: None,
        }
    }
}

fn registry_hint(error: &crate::registry::RegistryError) -> Option<&'static str> {
    use crate::registry::RegistryError;
    Some(match error {
        RegistryError::Invalid(_) => {
            "run `git spectra registry validate` to list every problem with its file:line:column"
        }
        RegistryError::UnknownActivity(_) | RegistryError::UnknownEntry(_) => {
            "`git spectra registry list` shows the activities and playbooks that exist"
        }
    })
}

fn playbook_hint(error: &crate::playbook::PlaybookError) -> Option<&'static str> {
    use crate::playbook::PlaybookError;
    match error {
        PlaybookError::NotAllowed { .. } => Some(
            "an activity may run only playbooks that name it and that it names; see `git spectra registry show ACTIVITY`",
        ),
        PlaybookError::InvalidInputs { .. } => {
            Some("`git spectra registry show PLAYBOOK` shows the input schema")
        }
        PlaybookError::PathEscapes { .. } => Some(
            "path inputs are relative to the repository root and may not leave it (no `..`, absolute paths, symlinks out or .git)",
        ),
        PlaybookError::Unknown(_) => {
            Some("`git spectra registry list` shows the playbooks that exist")
        }
        _ => None,
    }
}

fn builtin_hint(error: &crate::builtin::BuiltinError) -> Option<&'static str> {
    use crate::builtin::BuiltinError;
    match error {
        BuiltinError::NoTestCommand => {
            Some("for example: git config spectra.test.command \"cargo test --workspace\"")
        }
        BuiltinError::SpecConflict(_) => {
            Some("edit the existing file by hand, or write the specification to another path")
        }
        _ => None,
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
