//! `git spectra show`: one event, its envelope and attachments.

use clap::Args;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::store::{Ids, StoredEvent};

/// Show one event: its envelope, payload and attachments.
///
/// The name may be the short form `git spectra log` prints, the full id, or a unique prefix of
/// the id or of the commit hash; a run's name shows the run's first event.
///
/// Examples:
///   git spectra show 3f2a1c9
///   git spectra show 0193f2a1 --attachment response.json | jq .
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ShowArgs {
    /// An event's short form, id or commit on refs/spectra/events, or a unique prefix of either.
    id: String,
    /// Print this attachment's raw bytes instead.
    #[arg(long, value_name = "NAME")]
    attachment: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

pub fn run(args: ShowArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let store = helper.store();
    let ids = store.ids()?;
    let stored = store.find_in(&ids, &args.id)?;
    let mut out = Output::new();
    if let Some(name) = &args.attachment {
        out.bytes(&store.attachment(&stored, name)?)?;
    } else {
        match args.format {
            Format::Human => render_human(&mut out, &stored, &ids)?,
            Format::Json => out.json_line(&super::log::json_record(&stored))?,
        }
    }
    out.flush()?;
    Ok(0)
}

fn render_human(out: &mut Output, stored: &StoredEvent, ids: &Ids) -> std::io::Result<()> {
    let event = &stored.event;
    let none = || "-".to_string();
    let run = |run: &String| format!("{} ({run})", ids.short(run));
    let fields = [
        ("short", ids.short_commit(&stored.commit)),
        ("event", event.id.clone()),
        ("kind", event.kind.clone()),
        ("at", event.at.clone()),
        ("actor", event.actor.clone()),
        ("run", event.run.as_ref().map_or_else(none, run)),
        ("activity", event.activity.clone().unwrap_or_else(none)),
        ("service", event.service.clone().unwrap_or_else(none)),
        ("lamport", event.lamport.to_string()),
        ("causes", join_or_dash(&event.causes)),
        ("commit", stored.commit.to_string()),
        ("digest", stored.digest.clone()),
    ];
    for (name, value) in fields {
        out.line(format_args!("{name:<9} {value}"))?;
    }
    out.line("")?;
    out.line(format_args!("    {}", stored.subject))?;
    out.line("")?;
    let payload = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    out.line("payload:")?;
    for line in payload.lines() {
        out.line(format_args!("  {line}"))?;
    }
    if !event.attachments.is_empty() {
        out.line("attachments (read one with --attachment NAME):")?;
        for (name, sha) in &event.attachments {
            out.line(format_args!("  {name:<16} sha256:{sha}"))?;
        }
    }
    Ok(())
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}
