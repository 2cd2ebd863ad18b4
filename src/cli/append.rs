//! `git spectra append`: record one event from a script or playbook.

use std::io::Read;

use clap::Args;

use crate::error::{Error, Result};
use crate::event::{EventError, NewEvent, TrailerField};
use crate::logging;
use crate::repo::Repo;
use crate::ui::Output;

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
    let repo = Repo::discover()?;
    let stored = super::open_store(&repo).append(event)?;
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
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        (text, "standard input")
    } else {
        (source.to_string(), "--payload")
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
        Error::usage(
            format!("the payload from {origin} is not valid JSON: {err}"),
            Some("pass a JSON object, e.g. --payload '{\"text\": \"hello\"}'".to_string()),
        )
    })?;
    if !value.is_object() {
        return Err(Error::usage(
            format!(
                "the payload from {origin} must be a JSON object, not {}",
                kind_of(&value)
            ),
            Some("wrap it in an object, e.g. --payload '{\"value\": [1, 2]}'".to_string()),
        ));
    }
    Ok(value)
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
