//! How a failure ends a command, said by the library without knowing any command line.
//!
//! Every module keeps its own typed error; beside it, it implements [`Classify`]: the
//! [`Class`] of failure (bad input, a failed run or check, or a fatal one such as an unreadable
//! repository) and the hints that tell the user what to do. The command line turns any
//! `Classify` error into git's exit code and `error:`/`hint:` lines, as jj's `CommandError`
//! does at its boundary; the library never prints a diagnostic of its own.

/// What kind of failure an error is, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The input was understood but is wrong (a malformed argument, a prefix too short).
    Usage,
    /// A run, check or verification failed; the message says which.
    Failed,
    /// Nothing could be done: no repository, an unreadable store, a bad setting (as in git).
    Fatal,
}

/// Exit code for a run, check or verification that failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a fatal error (not a repository, unreadable store), as git uses.
pub const EXIT_FATAL: u8 = 128;

impl Class {
    /// The process exit code that goes with this class, git's codes.
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Usage => EXIT_USAGE,
            Class::Failed => EXIT_FAILED,
            Class::Fatal => EXIT_FATAL,
        }
    }

    /// The label git writes before the message: `fatal` for what exits 128, else `error`.
    pub fn label(self) -> &'static str {
        match self {
            Class::Fatal => "fatal",
            Class::Usage | Class::Failed => "error",
        }
    }
}

/// An error that knows how it ends a command: implemented beside each module's error type.
pub trait Classify: std::error::Error {
    /// Which kind of failure this is.
    fn class(&self) -> Class;

    /// What the user can do about it, each printed as `hint: ...` lines; none by default.
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An I/O error on the process's own streams or files, with nothing more specific to say, is
/// fatal, as it is in git.
impl Classify for std::io::Error {
    fn class(&self) -> Class {
        Class::Fatal
    }
}
