//! `git spectra log`: list events newest first.

use clap::Args;
use serde_json::json;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output, Stream, Style, paint};
use crate::store::{Filter, Store, StoredEvent};

/// Show events, newest first.
///
/// Each event is printed with its short form: the shortest prefix of its commit hash (at least
/// 7 characters) no other event of the log shares. `show`, `undo` and `log --run` take it, the
/// full id, or any unique prefix of either.
///
/// Filters apply first, then the count, then `--reverse` (as in git: `-n 2 --reverse` shows
/// the two newest events, oldest of them first).
///
/// Examples:
///   git spectra log -5 --oneline
///   git spectra log --run 3f2a1c9 --kind llm.called
///   git spectra log --author Ana --grep 'chose|rejected'
///   git spectra log --since '2 days ago' --format json | jq .event.kind
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LogArgs {
    /// Show at most this many events (also `-N`, as in `git log -5`).
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// `-N`: git's short spelling of `-n N`.
    #[arg(value_parser = parse_dash_count, allow_negative_numbers = true, hide = true)]
    dash_count: Option<usize>,
    /// One line per event: its short form and subject.
    #[arg(long, conflicts_with = "format")]
    oneline: bool,
    /// Oldest first (of the events the filters and the count keep).
    #[arg(long)]
    reverse: bool,
    /// Only events of this run: its short form, id or a unique prefix, or any of its events'.
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
    /// Only events whose commit author (`Name <email>`) matches this regular expression.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    author: Option<regex::Regex>,
    /// Only events whose subject matches this regular expression.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    grep: Option<regex::Regex>,
    /// Output format; `json` prints one object per line.
    #[arg(long, value_enum, default_value_t)]
    pub(super) format: Format,
}

/// `-5` → 5: only a dash and digits, so that a stray word is not taken for a count.
fn parse_dash_count(text: &str) -> Result<usize, String> {
    text.strip_prefix('-')
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| format!("unexpected argument `{text}` (a count is written -N or -n N)"))
}

/// A regular expression (Rust's `regex` syntax, close to git's `--extended-regexp`).
fn parse_pattern(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|error| format!("not a regular expression: {error}"))
}

pub fn run(args: LogArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let store = helper.store();
    // A typed run name is resolved against the whole log; the printed short forms are git's
    // abbreviations of the commits shown, so `log -n 5` reads five commits, not the log.
    let run = match &args.run {
        Some(typed) => Some(store.ids()?.resolve_run(typed)?),
        None => None,
    };
    let filter = Filter {
        run,
        activity: args.activity,
        service: args.service,
        kind: args.kind,
        since: args.since,
        author: args.author,
        grep: args.grep,
    };
    // Which events an undo reverted comes from the small manifest index (cached by tip), not
    // the full projection, so `log -n 1` stays cheap on a long log.
    let index = crate::fold_cache::manifests::load(helper.repo(), store)?;
    let reverted = index.marked_reverted();
    let limit = args.max_count.or(args.dash_count).unwrap_or(usize::MAX);
    let events = store.walk_newest_first(&filter).take(limit);
    let events: Box<dyn Iterator<Item = _>> = if args.reverse {
        let mut kept = events.collect::<Vec<_>>();
        kept.reverse();
        Box::new(kept.into_iter())
    } else {
        Box::new(events)
    };
    let mut out = Output::new();
    for stored in events {
        let stored = stored?;
        let is_reverted = reverted.contains(stored.event.id.as_str());
        match args.format {
            Format::Human if args.oneline => out.line(oneline(store, &stored))?,
            Format::Human => out.line(human_line(store, &stored, is_reverted))?,
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

/// `3f2a1c9 decision.made discover: chose ...`, as `git log --oneline`.
fn oneline(store: &Store, stored: &StoredEvent) -> String {
    format!(
        "{} {}",
        paint(
            Stream::Stdout,
            Style::Commit,
            store.short_commit(stored.commit)
        ),
        stored.subject
    )
}

/// `3f2a1c9 2026-11-25T18:50:00.123Z decision.made discover: chose ...`, with `[reverted]`
/// after the kind when an undo in effect reverts the event.
///
/// The short form is the commit's hash, abbreviated as git does (see
/// [`crate::store::Store::short_commit`]): UUIDv7 ids begin with their timestamp, so their
/// first characters are shared by every event of the same second.
fn human_line(store: &Store, stored: &StoredEvent, reverted: bool) -> String {
    let event = &stored.event;
    let mark = if reverted {
        format!(" {}", paint(Stream::Stdout, Style::Error, "[reverted]"))
    } else {
        String::new()
    };
    format!(
        "{} {} {}{mark} {}",
        paint(
            Stream::Stdout,
            Style::Commit,
            store.short_commit(stored.commit)
        ),
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
