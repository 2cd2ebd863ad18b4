//! `git spectra manifest | history | runs | export`: the projections of the event log.

use std::path::PathBuf;

use clap::Args;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::projection::{self, Projection};
use crate::store::Ids;

/// Show the latest manifest of each activity (per service).
///
/// A manifest is computed from the event log: status, times, outputs, errors and quality gates
/// of the latest run of that activity, skipping undone runs.
///
/// Examples:
///   git spectra manifest
///   git spectra manifest discover --service logging --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManifestArgs {
    /// Only this activity.
    activity: Option<String>,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

/// Show an activity's history: every decision, its context and outcome, oldest first.
///
/// Examples:
///   git spectra history discover
///   git spectra history --service logging --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HistoryArgs {
    /// Only this activity.
    activity: Option<String>,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

/// List runs, newest first, with their activities and outcomes.
///
/// Examples:
///   git spectra runs
///   git spectra runs --format json | jq .run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunsArgs {
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

/// Write manifests and history in the classic layout.
///
/// Writes DIR/manifests/{activity}-manifest.yaml and DIR/history/{activity}-history.yaml
/// (DIR defaults to .spectra in the work tree). The files are a view of the log: writing them
/// again from the same log gives the same bytes.
///
/// Examples:
///   git spectra export
///   git spectra export --dir /tmp/spectra-view
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// Where to write (default: .spectra in the work tree).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn load() -> Result<(CommandHelper, Projection)> {
    let helper = CommandHelper::open(Access::Shows)?;
    let projection = crate::fold_cache::projection::load(helper.repo(), helper.store())?;
    Ok((helper, projection))
}

/// The log's short forms when they will be printed (JSON keeps full ids).
fn short_forms(helper: &CommandHelper, format: Format) -> Result<Ids> {
    Ok(match format {
        Format::Human => helper.store().ids()?,
        Format::Json => Ids::default(),
    })
}

pub fn manifest(args: ManifestArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let manifests = crate::fold_cache::manifests::query(helper.repo(), helper.store(), |index| {
        index.try_manifests(args.activity.as_deref(), args.service.as_deref())
    })?;
    let mut out = Output::new();
    for manifest in &manifests {
        match args.format {
            Format::Json => out.json_line(manifest)?,
            Format::Human => {
                let text = crate::yaml::to_string(manifest).map_err(Error::failed)?;
                out.line(format_args!("---\n{}", text.trim_end()))?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn history(args: HistoryArgs) -> Result<u8> {
    let (helper, projection) = load()?;
    let ids = short_forms(&helper, args.format)?;
    let entries = projection.history(args.activity.as_deref(), args.service.as_deref());
    let mut out = Output::new();
    for (activity, entry) in &entries {
        match args.format {
            Format::Json => {
                out.json_line(&serde_json::json!({"activity": activity, "entry": entry}))?;
            }
            Format::Human => out.line(format_args!(
                "{} {} {:<10} {:<9} {} {}",
                entry.timestamp,
                ids.short(&entry.run),
                activity,
                entry.outcome,
                entry.service.as_deref().unwrap_or("-"),
                entry.decision["problem"]["statement"]
                    .as_str()
                    .unwrap_or_default()
            ))?,
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn runs(args: RunsArgs) -> Result<u8> {
    let (helper, projection) = load()?;
    let ids = short_forms(&helper, args.format)?;
    let mut out = Output::new();
    for row in projection.runs().iter().rev() {
        match args.format {
            Format::Json => out.json_line(row)?,
            Format::Human => {
                let activities = row.activity_outcomes();
                let marks = match (row.undone, row.dry_run) {
                    (true, _) => " [undone]",
                    (false, true) => " [dry run]",
                    _ => "",
                };
                out.line(format_args!(
                    "{} {} {} {}{} {}",
                    ids.short(&row.run),
                    row.started_at,
                    row.command.as_deref().unwrap_or("?"),
                    crate::cli::ui::outcome(&row.outcome),
                    marks,
                    activities.join(" ")
                ))?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn export(args: ExportArgs) -> Result<u8> {
    let (helper, projection) = load()?;
    let dir = match args.dir {
        Some(dir) => dir,
        None => helper
            .repo()
            .work_tree()
            .ok_or_else(|| Error::usage("a bare repository has no work tree; pass --dir", None))?
            .join(".spectra"),
    };
    let written = projection::export::export(&projection, &dir)?;
    let mut out = Output::new();
    for path in written {
        out.line(path.display())?;
    }
    out.flush()?;
    Ok(0)
}
