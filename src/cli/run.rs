//! `git spectra run`: run several activities as one run, chosen by you or by the planner.

use clap::Args;

use super::error::Result;
use super::lifecycle::{self, Request, Selection};
use super::ui::Format;

/// Run activities in order as one run; without -a, the planner chooses them.
///
/// The planner asks the model which activities to run, given the registry's catalogue, and
/// falls back to keyword rules when the model fails (discover always comes first for a new
/// idea). Each activity sees the manifests of the activities before it for the same service.
/// One failing does not stop the others unless it is blocking (discover is). Playbooks of
/// provision, deploy and monitor run in dry-run unless --execute is given. Exits 1 when any
/// activity did not succeed. See docs/run.md.
///
/// Examples:
///   git spectra run "central logging for our services"
///   git spectra run "plan the rollout" -a assess -a plan --service logging
///   git spectra run "ship it" -a test -a deploy --execute --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// What you want, in your own words.
    input: String,
    /// An activity to run (repeat for several, run in the order given); default: the planner chooses.
    #[arg(short = 'a', long = "activity", value_name = "ACTIVITY")]
    activities: Vec<String>,
    /// The service to work on (default: discover's choice in this run, else the latest discover's).
    #[arg(long)]
    service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    #[arg(long)]
    dry_run: bool,
    /// Really run the playbooks of provision, deploy and monitor (otherwise they run in dry-run).
    #[arg(long)]
    execute: bool,
    /// Decide with rules instead of a model (the planner's keyword rules; discover and test).
    #[arg(long)]
    offline: bool,
    /// Let discover update a service that already has a specification (.spectra/<service>.specification.yaml);
    /// without it such a name is refused, never overwritten.
    #[arg(long)]
    update: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: RunArgs) -> Result<u8> {
    let selection = if args.activities.is_empty() {
        Selection::Planned
    } else {
        Selection::Given(args.activities.clone())
    };
    lifecycle::execute(Request {
        command: "run",
        input: &args.input,
        selection,
        service: args.service.as_deref(),
        dry_run: args.dry_run,
        no_commit: false,
        execute: args.execute,
        offline: args.offline,
        update: args.update,
        format: args.format,
    })
}
