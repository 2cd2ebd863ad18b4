//! `git spectra append`: record one event from a script or playbook.

use std::io::Read;

use clap::Args;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::Output;
use crate::event::{EventError, NewEvent, PayloadTextError, TrailerField};
use crate::logging;

/// Append one event to the log and print its id.
///
/// Inside a playbook, SPECTRA_RUN and SPECTRA_EVENT are set: the event joins that run and names
/// the playbook's event as its cause.
///
/// Examples:
///   git spectra append --kind note.added --payload '{"text":"reviewed by Ana"}'
///   echo '{"score": 3}' | git spectra append --kind review.scored --run 0193... --payload -
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AppendArgs {
    /// Event kind: lowercase dotted words, past tense (e.g. `note.added`).
    #[arg(long)]
    kind: String,
    /// The run the event belongs to.
    #[arg(long, env = "SPECTRA_RUN")]
    run: Option<String>,
    /// The activity that produced it.
    #[arg(long)]
    activity: Option<String>,
    /// The service it concerns.
    #[arg(long)]
    service: Option<String>,
    /// Ids of events this one depends on (repeatable; SPECTRA_EVENT is added when set).
    #[arg(long = "cause", value_name = "ID")]
    causes: Vec<String>,
    /// The commit subject (default: a sentence made from kind, activity and service).
    #[arg(long, short = 'm')]
    message: Option<String>,
    /// The payload: a JSON object, or `-` to read it from standard input.
    #[arg(long)]
    payload: String,
}

pub fn run(args: AppendArgs) -> Result<u8> {
    if crate::event::kind::TOOL_ONLY.contains(&args.kind.as_str()) {
        return Err(crate::cli::error::Error::usage(
            format!(
                "--kind {}: events of this kind record what git spectra itself did to your branch or its log, and only it writes them",
                args.kind
            ),
            Some("append a kind of your own (`note.added`, `review.scored`); `git spectra undo` and `redo` write these".to_string()),
        ));
    }
    let payload = read_payload(&args.payload)?;
    let mut event = NewEvent::new(&args.kind).payload(payload);
    event.run = args.run.filter(|run| !run.is_empty());
    event.activity = args.activity;
    event.service = args.service;
    event.causes = args.causes;
    if let Ok(cause) = std::env::var("SPECTRA_EVENT")
        && !cause.is_empty()
        && !event.causes.contains(&cause)
    {
        event.causes.push(cause);
    }
    event.subject = args.message;
    event.validate().map_err(invalid_event)?;
    // Inside a playbook the event joins a run: its log lines carry that run id too.
    let _run = event
        .run
        .as_deref()
        .map(|run| logging::run_span(run).entered());
    let helper = CommandHelper::open(Access::Writes)?;
    let stored = helper.store().append(event)?;
    tracing::info!(
        event = %stored.event.id,
        kind = %stored.event.kind,
        lamport = stored.event.lamport,
        "appended the event"
    );
    let mut out = Output::new();
    out.line(&stored.event.id)?;
    out.flush()?;
    Ok(0)
}

/// A refused event as a usage error that names the flag (or variable) the value came from.
fn invalid_event(err: EventError) -> Error {
    match &err {
        EventError::InvalidTrailerValue { field, .. } => Error::usage(
            format!("{}: {err}", source_of(*field)),
            Some("fix the value and run the command again; nothing was written".to_string()),
        ),
        _ => Error::usage(err.to_string(), None),
    }
}

/// Where `append` takes a trailer-bound field from.
fn source_of(field: TrailerField) -> &'static str {
    match field {
        TrailerField::Run => "--run (or SPECTRA_RUN)",
        TrailerField::Activity => "--activity",
        TrailerField::Service => "--service",
        // Made by `append` itself; never wrong, but named all the same.
        TrailerField::Id => "the event id",
    }
}

fn read_payload(source: &str) -> Result<serde_json::Value> {
    let (text, origin) = if source == "-" {
        (read_stdin_text()?, "standard input")
    } else {
        (source.to_string(), "--payload")
    };
    crate::event::parse_payload(&text).map_err(|err| {
        Error::usage(
            format!("the payload from {origin} {err}"),
            Some(payload_hint(&err).to_string()),
        )
    })
}

/// Standard input as text; bytes that are not UTF-8 are bad input, not a failure to read.
fn read_stdin_text() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|err| {
        Error::usage(
            format!(
                "the payload from standard input is not valid UTF-8 (at byte offset {}); JSON text must be UTF-8",
                err.utf8_error().valid_up_to()
            ),
            Some(
                "convert it first, e.g. `iconv -f LATIN1 -t UTF-8 | git spectra append ... --payload -`, or put binary data in a base64 string".to_string(),
            ),
        )
    })
}

fn payload_hint(err: &PayloadTextError) -> &'static str {
    match err {
        PayloadTextError::Syntax(_) => "pass a JSON object, e.g. --payload '{\"text\": \"hello\"}'",
        PayloadTextError::NotObject(_) => {
            "wrap it in an object, e.g. --payload '{\"value\": [1, 2]}'"
        }
        PayloadTextError::DuplicateKey { .. } => {
            "keep each key once per object; an event records exactly what it is given"
        }
        PayloadTextError::InexactNumber { .. } => {
            "write a number that large or that precise as a string, e.g. \"12345678901234567890123\""
        }
    }
}
