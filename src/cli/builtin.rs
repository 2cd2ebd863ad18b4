//! `git spectra builtin NAME ...` (hidden): the entry point of the built-in playbooks. Each
//! prints one JSON object on stdout; the work is in [`crate::builtin`].

use clap::{Args, Subcommand};
use serde::Serialize;

use super::error::{Error, Result};
use super::ui::Output;
use crate::builtin::{branch, catalog, changes, inventory, probe, release, spec, tests};

/// Run a built-in playbook in the current directory (the runner sets it to the repository root).
#[derive(Debug, Args)]
pub struct BuiltinArgs {
    #[command(subcommand)]
    pub command: BuiltinCommand,
}

/// The built-in playbooks.
#[derive(Debug, Subcommand)]
pub enum BuiltinCommand {
    /// Inventory the repository as JSON.
    Inventory,
    /// Look a service name up in .spectra/service-catalog.yaml.
    CatalogLookup {
        #[arg(long)]
        name: String,
    },
    /// Write a service's specification file.
    WriteSpec {
        #[arg(long)]
        service: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        content: String,
    },
    /// Remove a service's specification file if it still holds the given content.
    RemoveSpec {
        #[arg(long)]
        service: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        content: String,
    },
    /// Run the project's tests and count the results.
    RunTests {
        /// Test this revision in a temporary linked worktree instead of the working tree.
        #[arg(long)]
        at: Option<String>,
    },
    /// Apply a build's changes (a JSON list) as one commit on spectra/SERVICE/build-RUN.
    ApplyChanges {
        #[arg(long)]
        service: String,
        #[arg(long)]
        run: String,
        #[arg(long, allow_hyphen_values = true)]
        changes: String,
    },
    /// Delete the branch a build made (or revert its commit if HEAD already contains it).
    RemoveBuildBranch {
        #[arg(long)]
        service: String,
        #[arg(long)]
        run: String,
    },
    /// Create the branch service/SERVICE.
    CreateBranch {
        #[arg(long)]
        service: String,
        #[arg(long)]
        base: Option<String>,
    },
    /// Delete the branch service/SERVICE if merged.
    DeleteBranch {
        #[arg(long)]
        service: String,
    },
    /// GET every URL the service catalog lists for SERVICE.
    ProbeService {
        #[arg(long)]
        service: String,
    },
    /// Create the annotated release tag SERVICE/vVERSION at HEAD.
    TagRelease {
        #[arg(long)]
        service: String,
        #[arg(long)]
        version: String,
        /// The deploy's run, for the tag's `Spectra-Run` trailer (a redo keeps it).
        #[arg(long)]
        run: String,
    },
    /// Delete the release tag SERVICE/vVERSION.
    DeleteReleaseTag {
        #[arg(long)]
        service: String,
        #[arg(long)]
        version: String,
        /// The run that made the tag; a tag another run made is left alone.
        #[arg(long)]
        run: String,
    },
}

/// Runs a built-in playbook, prints its JSON result and returns the exit code.
pub fn run(args: BuiltinArgs) -> Result<u8> {
    run_command(&args.command)?;
    Ok(0)
}

fn run_command(command: &BuiltinCommand) -> Result<()> {
    let root = std::env::current_dir()?;
    match command {
        BuiltinCommand::Inventory => print(&inventory::inventory(&root)?),
        BuiltinCommand::CatalogLookup { name } => print(&catalog::lookup(&root, name)?),
        BuiltinCommand::WriteSpec {
            service,
            path,
            content,
        } => print(&spec::write(&root, service, path.as_deref(), content)?),
        BuiltinCommand::RemoveSpec {
            service,
            path,
            content,
        } => print(&spec::remove(&root, service, path.as_deref(), content)?),
        BuiltinCommand::ApplyChanges {
            service,
            run,
            changes: list,
        } => {
            let event = std::env::var(crate::playbook::ENV_EVENT).ok();
            let applied = changes::apply(
                &root,
                service,
                run,
                event.as_deref(),
                &changes::parse(list)?,
            )?;
            print(&applied)?;
            if applied.success {
                return Ok(());
            }
            let refused: Vec<String> = applied
                .changes
                .iter()
                .filter_map(|c| {
                    c.reason
                        .as_ref()
                        .map(|reason| format!("{}: {reason}", c.path))
                })
                .collect();
            Err(Error::failed(format!(
                "no change applied: {}",
                refused.join("; ")
            )))
        }
        BuiltinCommand::RemoveBuildBranch { service, run } => {
            let undo_run = std::env::var(crate::playbook::ENV_RUN).ok();
            let undo_event = std::env::var(crate::playbook::ENV_EVENT).ok();
            let trailers = changes::revert_trailers(undo_run.as_deref(), undo_event.as_deref())?;
            let removed = changes::remove_branch(&root, service, run, &trailers)?;
            print_said(&removed, removed.said())
        }
        BuiltinCommand::RunTests { at } => {
            let run = match at {
                Some(revision) => tests::run_at(&root, revision)?,
                None => tests::run(&root)?,
            };
            print(&run)?;
            if run.success {
                return Ok(());
            }
            Err(Error::failed(format!(
                "tests failed: {} passed, {} failed, {} skipped",
                run.passed, run.failed, run.skipped
            )))
        }
        BuiltinCommand::CreateBranch { service, base } => {
            print(&branch::create(&root, service, base.as_deref())?)
        }
        BuiltinCommand::DeleteBranch { service } => print(&branch::delete(&root, service)?),
        BuiltinCommand::ProbeService { service } => {
            let timeout = probe::configured_timeout(&root)?;
            let probed = probe::probe(&root, service, timeout)?;
            print(&probed)?;
            if probed.healthy || probed.probes.is_empty() {
                return Ok(());
            }
            Err(Error::failed(format!(
                "{service} is not healthy: {} of {} URLs answered 2xx",
                probed.probes.iter().filter(|p| p.healthy).count(),
                probed.probes.len()
            )))
        }
        BuiltinCommand::TagRelease {
            service,
            version,
            run,
        } => {
            let tagged = release::tag(&root, service, version, run)?;
            print_said(&tagged, tagged.said())
        }
        BuiltinCommand::DeleteReleaseTag {
            service,
            version,
            run,
        } => {
            let deleted = release::delete(&root, service, version, run)?;
            print_said(&deleted, deleted.said())
        }
    }
}

/// `value` with `said`, the line an undo or redo shows of what the built-in did.
fn print_said(value: &impl Serialize, said: String) -> Result<()> {
    #[derive(Serialize)]
    struct Said<'a, T: Serialize> {
        #[serde(flatten)]
        value: &'a T,
        said: String,
    }
    print(&Said { value, said })
}

fn print(value: &impl Serialize) -> Result<()> {
    let mut out = Output::new();
    // Exactly what the in-process built-ins give the activity (`crate::output::json_line`),
    // not the `--format json` conventions: the activity reads these lines.
    out.bytes(&crate::output::json_line(value)?)?;
    out.flush()?;
    Ok(())
}
