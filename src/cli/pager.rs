//! Paging long human output on a terminal, the way git pages `git log`.
//!
//! The pager is chosen as git chooses it (`pager.c`, `git_pager`): `GIT_PAGER`, then
//! `pager.spectra` when it names a command, then `core.pager`, then `PAGER`, then `less`; an
//! empty pager or `cat` means none, and `pager.spectra=false` turns paging off. Git itself
//! handles `git -p`, `git --no-pager` and `pager.spectra` for external commands before it runs
//! us: it starts the pager and exports `GIT_PAGER_IN_USE=true`, or exports `GIT_PAGER=cat`,
//! which the same rules read as "no pager". Like git, `LESS=FRX` and `LV=-c` are set for the
//! pager when unset, so short output prints and returns at once.
//!
//! Standard output (and standard error, when it is the terminal too) are pointed at the
//! pager's input for the whole command, as git does, so every byte the command prints goes
//! through it; [`Pager::finish`] points them back, which closes the pipe, and waits for the
//! pager. A reader who quits early makes our writes fail with a broken pipe, which the binary
//! already treats as a quiet success.

use std::io::{IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use crate::interrupt::Caught;

/// What the pager choice depends on, read from the process and git config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagerInputs {
    /// `GIT_PAGER`.
    pub git_pager: Option<String>,
    /// `git config pager.spectra`: a boolean, or the pager to use for git spectra.
    pub pager_spectra: Option<String>,
    /// `git config core.pager`.
    pub core_pager: Option<String>,
    /// `PAGER`.
    pub pager: Option<String>,
}

/// The pager command to run, or `None` for no pager, by git's rules (see the module docs).
pub fn choose(inputs: &PagerInputs) -> Option<String> {
    let per_command = inputs.pager_spectra.as_deref().map(str::trim);
    if per_command.and_then(crate::repo::parse_git_bool) == Some(false) {
        return None;
    }
    let named_for_spectra =
        per_command.filter(|value| crate::repo::parse_git_bool(value).is_none());
    let command = inputs
        .git_pager
        .as_deref()
        .or(named_for_spectra)
        .or(inputs.core_pager.as_deref())
        .or(inputs.pager.as_deref())
        .unwrap_or("less");
    let command = command.trim();
    (!command.is_empty() && command != "cat").then(|| command.to_owned())
}

/// The pager the process would use: `None` unless standard output is a terminal, git has not
/// started a pager already and `--no-pager` was not given.
fn wanted(no_pager: bool) -> Option<String> {
    if no_pager || !std::io::stdout().is_terminal() || git_pager_in_use() {
        return None;
    }
    let repo = crate::repo::Repo::discover().ok();
    let config = |key: &str| repo.as_ref()?.config_string(key);
    let env = |name: &str| std::env::var(name).ok();
    choose(&PagerInputs {
        git_pager: env("GIT_PAGER"),
        pager_spectra: config("pager.spectra"),
        core_pager: config("core.pager"),
        pager: env("PAGER"),
    })
}

/// Git already pages our output (`git -p spectra ...`, or `pager.spectra=true`).
fn git_pager_in_use() -> bool {
    std::env::var("GIT_PAGER_IN_USE")
        .ok()
        .and_then(|value| crate::repo::parse_git_bool(&value))
        .unwrap_or(false)
}

/// A running pager that our standard output (and maybe standard error) point at.
pub struct Pager {
    child: Child,
    saved_stdout: OwnedFd,
    saved_stderr: Option<OwnedFd>,
}

/// Starts the pager when one is wanted (see [`wanted`]); `None` when output goes straight to
/// the terminal, including when the pager cannot be started (git then prints unpaged too).
pub fn start(no_pager: bool) -> Option<Pager> {
    let command = wanted(no_pager)?;
    spawn(&command).ok()
}

fn spawn(command: &str) -> std::io::Result<Pager> {
    // Caught before the pager exists: a Ctrl-C pressed (or sent by the pager itself) the
    // moment it starts must not find this process with the default, fatal, handling.
    let interrupts = InterruptsCaught::install();
    match spawn_shell(command) {
        Ok(pager) => Ok(pager),
        Err(error) => {
            // Output goes straight to the terminal after all, where Ctrl-C must stop us.
            if let Some(interrupts) = interrupts {
                interrupts.exit_on_next();
            }
            Err(error)
        }
    }
}

fn spawn_shell(command: &str) -> std::io::Result<Pager> {
    // The pager is the user's own shell command line (`less -S`, `delta | less`...), so it is
    // run through the shell exactly as git runs it (`sh -c "$pager" "$pager"`); this is the one
    // place a shell runs, and it only runs what the user configured as their pager.
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command).arg(command);
    for (name, value) in [("LESS", "FRX"), ("LV", "-c")] {
        if std::env::var_os(name).is_none() {
            shell.env(name, value);
        }
    }
    let mut child = shell.stdin(Stdio::piped()).spawn()?;
    let input = child.stdin.take().expect("stdin was piped");
    let saved_stdout = rustix::io::dup(std::io::stdout())?;
    let saved_stderr = if std::io::stderr().is_terminal() {
        Some(rustix::io::dup(std::io::stderr())?)
    } else {
        None
    };
    rustix::stdio::dup2_stdout(&input)?;
    if saved_stderr.is_some() {
        rustix::stdio::dup2_stderr(&input)?;
    }
    // Standard output (and error) now hold the only write end of the pipe; dropping ours
    // lets the pager see the end of input once they are pointed back.
    drop(input);
    super::ui::set_pager_started();
    Ok(Pager {
        child,
        saved_stdout,
        saved_stderr,
    })
}

/// SIGINT caught and left pending, so that this process outlives a Ctrl-C at the pager.
///
/// Ctrl-C at the pager reaches the whole foreground process group, so this process too: as
/// git does, it must not die then (its shell would print the prompt under a pager still
/// reading the terminal) but go on until the reader quits the pager, whose closed pipe ends
/// the output.
struct InterruptsCaught(Caught);

impl InterruptsCaught {
    fn install() -> Option<Self> {
        Caught::catch(&[tokio::signal::unix::SignalKind::interrupt()])
            .inspect_err(|error| {
                tracing::debug!(%error, "cannot keep running through SIGINT while paging");
            })
            .ok()
            .map(Self)
    }

    /// The handler cannot be removed again, so a thread gives Ctrl-C its usual effect: the
    /// process ends as one killed by SIGINT would report itself to a shell (128 + 2).
    fn exit_on_next(self) {
        std::thread::spawn(move || {
            if self.0.wait().is_some() {
                std::process::exit(130);
            }
        });
    }
}

impl Pager {
    /// Sends the end of input to the pager and waits until the user leaves it, so the shell
    /// prompt does not come back under a pager still running.
    pub fn finish(mut self) {
        // A reader that quit early closed the pipe; nothing is left to flush to.
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let _ = rustix::stdio::dup2_stdout(&self.saved_stdout);
        if let Some(saved) = &self.saved_stderr {
            let _ = rustix::stdio::dup2_stderr(saved);
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn git_s_order_decides_and_less_is_the_default() {
        let mut inputs = PagerInputs::default();
        assert_eq!(choose(&inputs), some("less"));
        inputs.pager = some("more");
        assert_eq!(choose(&inputs), some("more"));
        inputs.core_pager = some("most");
        assert_eq!(choose(&inputs), some("most"));
        inputs.pager_spectra = some("less -S");
        assert_eq!(choose(&inputs), some("less -S"));
        inputs.git_pager = some("delta");
        assert_eq!(choose(&inputs), some("delta"));
    }

    #[test]
    fn cat_an_empty_pager_and_a_false_pager_spectra_mean_no_pager() {
        let cat = PagerInputs {
            git_pager: some("cat"),
            ..PagerInputs::default()
        };
        assert_eq!(choose(&cat), None);
        let empty = PagerInputs {
            pager: some(""),
            ..PagerInputs::default()
        };
        assert_eq!(choose(&empty), None);
        let off = PagerInputs {
            pager_spectra: some("false"),
            git_pager: some("less"),
            ..PagerInputs::default()
        };
        assert_eq!(choose(&off), None);
        let on = PagerInputs {
            pager_spectra: some("true"),
            ..PagerInputs::default()
        };
        assert_eq!(choose(&on), some("less"));
    }
}
