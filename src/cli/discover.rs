//! `git spectra discover`: turn an idea into a validated service specification.

use clap::Args;

use super::error::Result;
use super::lifecycle::{self, Request, Selection};
use super::ui::Format;

/// Discover the problem behind an idea and write the service's specification.
///
/// Asks the model for a decision (problem, current and desired state, stakeholders,
/// constraints, requirements, risks, alternatives, a service name), checks the name and the
/// service catalog, runs the playbooks it chose, writes .spectra/<service>.specification.yaml
/// and commits it on the current branch. Every step is an event on refs/spectra/events.
/// Without a configured model (or with --offline) it runs on rules instead, and says so.
/// A service that already has a specification is updated only with --update: the new one
/// keeps the earlier stages, and the report names the fields that changed.
///
/// Examples:
///   git spectra discover "Our services log to files nobody reads"
///   git spectra discover "central logging" --service log-shipper --no-commit
///   git spectra discover "logs must be kept a year" --service logging --update
///   git spectra discover "central logging" --dry-run --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DiscoverArgs {
    /// The idea, in your own words.
    idea: String,
    /// The service name to use instead of the model's (normalised and validated the same way).
    #[arg(long)]
    service: Option<String>,
    /// Record what would happen; run no playbook, write no file.
    #[arg(long)]
    dry_run: bool,
    /// Write the specification but do not commit it.
    #[arg(long)]
    no_commit: bool,
    /// Decide with rules instead of a model.
    #[arg(long)]
    offline: bool,
    /// Update a service that already has a specification (.spectra/<service>.specification.yaml);
    /// without it such a name is refused, never overwritten.
    #[arg(long)]
    update: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: DiscoverArgs) -> Result<u8> {
    lifecycle::execute(Request {
        command: "discover",
        input: &args.idea,
        selection: Selection::Given(vec!["discover".to_string()]),
        service: args.service.as_deref(),
        dry_run: args.dry_run,
        no_commit: args.no_commit,
        execute: false,
        offline: args.offline,
        update: args.update,
        format: args.format,
    })
}
