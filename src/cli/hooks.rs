//! `git spectra hooks install | uninstall | status`: put the post-commit shim in place, take it
//! out again, and say what is installed where.

use clap::{Args, Subcommand};
use serde_json::json;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::hook::install::{self, HookState, HooksDir, InstallOutcome, UninstallOutcome};
use crate::hook::{self, ENV_SWITCH, keys};
use crate::repo::Repo;

/// Install, remove or inspect the git hook that records commits.
///
/// The post-commit hook appends a `commit.observed` event for every commit and, when a commit
/// changes `.spectra/<service>.specification.yaml`, starts the activities named in
/// `git config spectra.hooks.onSpecChange` in the background. It goes where git runs hooks
/// (`git rev-parse --git-path hooks`, which follows core.hooksPath); an existing post-commit hook
/// keeps working and gets a marked block that `uninstall` removes again.
///
/// Examples:
///   git spectra hooks install
///   git spectra hooks status --format json
///   git config spectra.hooks.onSpecChange discover
///   SPECTRA_HOOKS=0 git commit -m "not recorded"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HooksArgs {
    #[command(subcommand)]
    command: HooksCommand,
}

#[derive(Debug, Subcommand)]
enum HooksCommand {
    /// Install the post-commit hook (again: nothing changes).
    ///
    /// Examples:
    ///   git spectra hooks install
    ///   git -C ~/src/shop spectra hooks install
    #[command(verbatim_doc_comment)]
    Install,
    /// Remove exactly what install added.
    ///
    /// Examples:
    ///   git spectra hooks uninstall
    #[command(verbatim_doc_comment)]
    Uninstall,
    /// Say what is installed where, and whether it will run.
    ///
    /// Examples:
    ///   git spectra hooks status
    ///   git spectra hooks status --format json | jq .enabled
    #[command(verbatim_doc_comment)]
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(args: HooksArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Reads)?;
    let repo = helper.repo();
    let dir = install::hooks_dir(repo)?;
    let mut out = Output::new();
    match args.command {
        HooksCommand::Install => {
            // Where the shim notes commits for recording in the background.
            crate::hook::pending::prepare(repo)?;
            run_install(&mut out, &dir)?;
        }
        HooksCommand::Uninstall => run_uninstall(&mut out, &dir)?,
        HooksCommand::Status { format } => run_status(&mut out, repo, &dir, format)?,
    }
    out.flush()?;
    Ok(0)
}

fn run_install(out: &mut Output, dir: &HooksDir) -> Result<()> {
    let path = dir.hook_file().display().to_string();
    let message = match install::install(dir)? {
        InstallOutcome::Created => format!("installed the post-commit hook: {path}"),
        InstallOutcome::AddedToExisting => format!(
            "added git spectra to the existing post-commit hook: {path} (its own commands still run)"
        ),
        InstallOutcome::Updated => format!("updated the git spectra block in {path}"),
        InstallOutcome::Unchanged => format!("already installed: {path} (nothing changed)"),
    };
    out.line(message)?;
    if let Some(value) = &dir.hooks_path_config {
        out.line(format!(
            "note: core.hooksPath is `{value}`, so git runs hooks from there"
        ))?;
        if dir.path.ends_with(".husky/_") {
            out.line("note: husky rewrites .husky/_ on `npm install`; to keep the hook, add `git-spectra hook post-commit || :` to .husky/post-commit")?;
        }
    }
    warn_if_it_will_not_run(dir)?;
    Ok(())
}

/// Things that would make an installed hook silently do nothing, said once at install time.
fn warn_if_it_will_not_run(dir: &HooksDir) -> Result<()> {
    let file = install::inspect(dir)?;
    if !file.executable {
        crate::cli::ui::warning(format_args!(
            "{} is not executable, so git will not run it; `chmod +x` it",
            file.path.display()
        ));
    }
    if install::binary_on_path().is_none() {
        crate::cli::ui::warning(
            "git-spectra is not on PATH; until it is, the hook only prints a warning",
        );
    }
    Ok(())
}

fn run_uninstall(out: &mut Output, dir: &HooksDir) -> Result<()> {
    let path = dir.hook_file().display().to_string();
    let message = match install::uninstall(dir)? {
        UninstallOutcome::Removed => format!("removed the post-commit hook: {path}"),
        UninstallOutcome::RemovedFromExisting => {
            format!("removed the git spectra block from {path}; the rest of the hook is as it was")
        }
        UninstallOutcome::NotInstalled => format!("not installed: {path} (nothing changed)"),
    };
    out.line(message)?;
    Ok(())
}

fn run_status(out: &mut Output, repo: &Repo, dir: &HooksDir, format: Format) -> Result<()> {
    let file = install::inspect(dir)?;
    let binary = install::binary_on_path();
    let disabled_by = if !hook::enabled_by_env() {
        Some(ENV_SWITCH)
    } else if !hook::enabled_by_config(repo) {
        Some(keys::ENABLED)
    } else {
        None
    };
    let activities = hook::on_spec_change(repo);
    let log = hook::hooks_log_path(repo);
    let log = std::path::absolute(&log).unwrap_or(log);
    if format == Format::Json {
        out.json_line(&json!({
            "hooks_dir": dir.path,
            "core_hooks_path": dir.hooks_path_config,
            "hook": file,
            "binary": binary,
            "enabled": disabled_by.is_none(),
            "disabled_by": disabled_by,
            "on_spec_change": activities,
            "log": log,
        }))?;
        return Ok(());
    }
    let hooks_path = match &dir.hooks_path_config {
        Some(value) => format!(" (core.hooksPath = {value})"),
        None => String::new(),
    };
    out.line(format!(
        "hooks directory: {}{hooks_path}",
        dir.path.display()
    ))?;
    out.line(format!("post-commit:     {}", describe_hook(&file)))?;
    out.line(format!(
        "git-spectra:     {}",
        binary.map_or("not on PATH (the hook only warns)".into(), |p| p
            .display()
            .to_string())
    ))?;
    out.line(format!(
        "enabled:         {}",
        disabled_by.map_or("yes".to_string(), |by| format!("no (turned off by {by})"))
    ))?;
    out.line(format!(
        "on spec change:  {}",
        if activities.is_empty() {
            format!("nothing ({} is not set)", keys::ON_SPEC_CHANGE)
        } else {
            activities.join(", ")
        }
    ))?;
    out.line(format!("log:             {}", log.display()))?;
    Ok(())
}

fn describe_hook(file: &install::HookFile) -> String {
    let state = match file.state {
        HookState::Missing => "not installed (no post-commit hook)",
        HookState::Installed => "installed",
        HookState::InstalledInExistingHook => "installed (a block in an existing hook)",
        HookState::Outdated => {
            "installed, but from another version (run `git spectra hooks install`)"
        }
        HookState::InstalledByHand => "installed by hand (the hook calls git-spectra itself)",
        HookState::NotInstalled => "not installed (the existing hook does not call git spectra)",
    };
    let runs = if file.state != HookState::Missing && !file.executable {
        "; NOT executable, so git does not run it"
    } else {
        ""
    };
    format!("{state}{runs}: {}", file.path.display())
}
