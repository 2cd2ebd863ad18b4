//! `git spectra completions`: shell completion scripts generated from the clap definitions, so
//! every subcommand and flag is covered the moment it exists.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

use super::error::Result;
use super::ui::Output;

/// The name completion is registered for; `git spectra` reaches it through git's completion.
const BIN_NAME: &str = "git-spectra";

/// Print a shell completion script for git spectra.
///
/// Completes subcommands, flags and their values for `git-spectra` and, through git's own
/// completion, for `git spectra`. For bash the script also defines `_git_spectra`, the function
/// git's bash completion calls for `git spectra <TAB>`; zsh's and fish's git completions find
/// the `git-spectra` completion by themselves. See docs/commands.md for where each file goes.
///
/// Examples:
///   git spectra completions bash > ~/.local/share/bash-completion/completions/git-spectra
///   git spectra completions zsh > ~/.zfunc/_git-spectra
///   git spectra completions fish > ~/.config/fish/completions/git-spectra.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: CompletionShell,
}

/// The shells a script is generated for.
// A doc comment on a variant would add a line per shell to `--help`; the names say it all.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl CompletionShell {
    fn clap_shell(self) -> Shell {
        match self {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

pub fn run(args: CompletionsArgs) -> Result<u8> {
    let mut out = Output::new();
    out.bytes(&script(args.shell))?;
    out.flush()?;
    Ok(0)
}

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> Vec<u8> {
    let mut command = super::command();
    let mut script = Vec::new();
    if shell == CompletionShell::Bash {
        clap_complete::generate(Shell::Bash, &mut command, BASH_NAME, &mut script);
        let script = String::from_utf8_lossy(&script)
            .replace(&format!(" {BASH_NAME}\n"), &format!(" {BIN_NAME}\n"));
        return format!("{script}{BASH_GIT_SHIM}").into_bytes();
    }
    clap_complete::generate(shell.clap_shell(), &mut command, BIN_NAME, &mut script);
    script
}

/// The name the bash script is generated under. clap_complete 4.6 names the case arms of a
/// hyphenated binary inconsistently (`git__spectra__subcmd__log` in one place,
/// `git__subcmd__spectra__subcmd__log` in the other), so nothing below the first word
/// completes; an unhyphenated name is consistent, and its `complete` lines are then pointed at
/// the real binary name. The e2e tests complete through bash to keep this honest.
const BASH_NAME: &str = "gitspectra";

/// git's bash completion calls `_git_<command>` for `git <command> <TAB>`, with its own `words`
/// and `cword` (and `__git_cmd_idx`, the index of the command, which `git -C dir` shifts). The
/// shim rewrites them into the `COMP_*` variables the generated `_gitspectra` reads, as if
/// `git-spectra ...` had been typed, and calls it.
const BASH_GIT_SHIM: &str = r#"
# `git spectra <TAB>`: git's completion calls _git_spectra; hand over to the generated _gitspectra.
_git_spectra() {
    local command_index=${__git_cmd_idx:-1}
    local COMP_WORDS=("git-spectra" "${words[@]:command_index+1}")
    local COMP_CWORD=$((cword - command_index))
    local COMP_LINE="${COMP_WORDS[*]}"
    local COMP_POINT=${#COMP_LINE}
    _gitspectra "git-spectra" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
"#;
