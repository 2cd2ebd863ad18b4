//! `git spectra log`: list events newest first.

use clap::Args;
use serde_json::json;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output, Stream, Style, paint};
use crate::store::{Filter, StoredEvent};

/// Show events, newest first.
///
/// Examples:
///   git spectra log -n 20
///   git spectra log --run 0193f2 --kind llm.called
///   git spectra log --since '2 days ago' --format json | jq .event.kind
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LogArgs {
    /// Show at most this many events.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Only events of this run (an id or a unique prefix).
    #[arg(long)]
    run: Option<String>,
    /// Only events of this activity.
    #[arg(long)]
    activity: Option<String>,
    /// Only events about this service.
    #[arg(long)]
    service: Option<String>,
    /// Only events of this kind (e.g. decision.made).
    #[arg(long)]
    kind: Option<String>,
    /// Only events at or after this time (2026-11-25, an RFC 3339 instant, or `2 hours ago`).
    #[arg(long, value_parser = super::parse_since)]
    since: Option<jiff::Timestamp>,
    /// Output format; `json` prints one object per line.
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

pub fn run(args: LogArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let store = helper.store();
    let filter = Filter {
        run: args.run,
        activity: args.activity,
        service: args.service,
        kind: args.kind,
        since: args.since,
    };
    // Which events an undo reverted comes from the small manifest index (cached by tip), not
    // the full projection, so `log -n 1` stays cheap on a long log.
    let index = crate::fold_cache::manifests::load(helper.repo(), store)?;
    let reverted = index.marked_reverted();
    let mut out = Output::new();
    let limit = args.max_count.unwrap_or(usize::MAX);
    for stored in store.walk_newest_first(&filter).take(limit) {
        let stored = stored?;
        let is_reverted = reverted.contains(stored.event.id.as_str());
        match args.format {
            Format::Human => out.line(human_line(&stored, is_reverted))?,
            Format::Json => {
                let mut record = json_record(&stored);
                record["reverted"] = is_reverted.into();
                out.json_line(&record)?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// `3f2a1c9 2026-11-25T18:50:00.123Z decision.made discover: chose ...`, with `[reverted]`
/// after the kind when an undo in effect reverts the event.
///
/// The handle is the commit's short hash, as in `git log --oneline`: UUIDv7 ids begin with
/// their timestamp, so their first characters are shared by every event of the same minute.
/// `git spectra show` takes either.
fn human_line(stored: &StoredEvent, reverted: bool) -> String {
    let event = &stored.event;
    let commit = stored.commit.to_string();
    let mark = if reverted {
        format!(" {}", paint(Stream::Stdout, Style::Error, "[reverted]"))
    } else {
        String::new()
    };
    format!(
        "{} {} {}{mark} {}",
        paint(Stream::Stdout, Style::Commit, &commit[..7]),
        event.at,
        paint(Stream::Stdout, Style::Kind, &event.kind),
        stored.subject
    )
}

/// The shape of one JSON line: the envelope plus where it lives. Documented in docs/events.md.
pub(crate) fn json_record(stored: &StoredEvent) -> serde_json::Value {
    json!({
        "commit": stored.commit.to_string(),
        "digest": stored.digest,
        "subject": stored.subject,
        "event": stored.event,
    })
}
