//! Help that needs no man page: `git spectra help [COMMAND]` is clap's own `help` subcommand,
//! which prints the long help of the tool or of any command (the registry's activity commands
//! too); a usage mistake ends with a `hint:` line pointing to it.
//!
//! `git spectra --help` is git's: it runs `man git-spectra`, which fails until the man page is
//! installed (the README's install line installs it), so no message of ours sends anyone there.

use std::ffi::OsString;

use super::ui;

/// Prints clap's usage error on standard error without its closing "try '--help'" tip (at the
/// top level git would turn that into `man git-spectra`), then a `hint:` naming the help of the
/// command the mistake was made in.
pub fn render_usage_error(err: &clap::Error, command: &clap::Command, args: &[OsString]) {
    let colored = match super::clap_color(args) {
        clap::ColorChoice::Always => true,
        clap::ColorChoice::Never => false,
        clap::ColorChoice::Auto => ui::colored(ui::Stream::Stderr),
    };
    let rendered = err.render();
    let text = if colored {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    // Nothing sensible is left to do when stderr itself is closed.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr().lock(),
        without_help_tip(&text).as_bytes(),
    );
    ui::hint(format_args!(
        "see '{}'",
        help_command(&command_path(command, args))
    ));
}

/// `git spectra help` or `git spectra help registry show`.
fn help_command(path: &[String]) -> String {
    let mut words = vec!["git spectra help".to_string()];
    words.extend(path.iter().cloned());
    words.join(" ")
}

/// The text without clap's `For more information, try '--help'.` line (coloured or not).
fn without_help_tip(text: &str) -> String {
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|line| !strip_ansi(line).starts_with("For more information, try '"))
        .collect();
    // The tip followed a blank line, which would now end the text.
    while kept
        .last()
        .is_some_and(|line| strip_ansi(line).trim().is_empty())
    {
        kept.pop();
    }
    let mut text = kept.join("\n");
    text.push('\n');
    text
}

/// `line` without its ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for end in chars.by_ref() {
                if end.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The subcommands named on the command line, outermost first, as far as they exist:
/// `git spectra registry show --bogus` gives `registry show`, `git spectra lgo` nothing. The
/// value of an option (`--color never`) is skipped, not taken for a subcommand.
fn command_path(command: &clap::Command, args: &[OsString]) -> Vec<String> {
    let mut visited = vec![command];
    let mut words = args.iter().skip(1).filter_map(|arg| arg.to_str());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if word.starts_with('-') {
            if takes_a_separate_value(&visited, word) {
                words.next();
            }
            continue;
        }
        // `git spectra help nosuch`: the help of the whole tool.
        if word == "help" {
            break;
        }
        let current = visited.last().expect("the tool itself is always visited");
        match current.find_subcommand(word) {
            Some(sub) => visited.push(sub),
            None => break,
        }
    }
    visited
        .iter()
        .skip(1)
        .map(|sub| sub.get_name().to_string())
        .collect()
}

/// Whether `word` (`--color`, `-m`; not `--color=never`) is an option of one of the commands
/// given so far that takes its value from the next word.
fn takes_a_separate_value(visited: &[&clap::Command], word: &str) -> bool {
    if word.contains('=') {
        return false;
    }
    let matches = |arg: &clap::Arg| match word.strip_prefix("--") {
        Some(long) => arg.get_long() == Some(long),
        None => word.len() == 2 && arg.get_short().is_some_and(|short| word.ends_with(short)),
    };
    visited
        .iter()
        .flat_map(|command| command.get_arguments())
        .find(|arg| matches(arg))
        .is_some_and(|arg| arg.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("git-spectra")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn the_path_follows_the_subcommands_given() {
        let cli = super::super::command_for(&crate::registry::Registry::builtin().unwrap());
        let path = |words: &[&str]| command_path(&cli, &args(words)).join(" ");
        assert_eq!(path(&["log", "--bogus"]), "log");
        assert_eq!(
            path(&["--color", "never", "registry", "show"]),
            "registry show"
        );
        assert_eq!(path(&["--color=always", "log", "-v"]), "log");
        assert_eq!(path(&["--log-format", "json", "-v", "status"]), "status");
        assert_eq!(path(&["plan", "--nope"]), "plan");
        assert_eq!(path(&["lgo"]), "");
        assert_eq!(path(&["help", "nosuch"]), "");
        assert_eq!(path(&["append", "--", "log"]), "append");
    }

    #[test]
    fn the_help_tip_goes_whether_coloured_or_not() {
        let plain = "error: unexpected argument\n\nUsage: git spectra log\n\nFor more information, try '--help'.\n";
        assert_eq!(
            without_help_tip(plain),
            "error: unexpected argument\n\nUsage: git spectra log\n"
        );
        let coloured = "Usage: x\n\nFor more information, try '\u{1b}[1m--help\u{1b}[0m'.\n";
        assert_eq!(without_help_tip(coloured), "Usage: x\n");
    }
}
