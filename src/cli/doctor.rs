//! `git spectra doctor`: show the LLM settings and check that the endpoint works.

use std::io::Write;

use clap::Args;

use super::error::{EXIT_FAILED, Result};
use super::helper::{Access, CommandHelper};
use super::ui::Format;
use crate::llm::Client;
use crate::llm::probe::{DoctorReport, FormatProbe, FormatVerdict, ModelsProbe};
use crate::repo::{Repo, RepoError};
use crate::settings::{Layers, LlmSettings, keys};

/// Check the LLM endpoint and show where each setting came from.
///
/// Prints the resolved LLM settings (the API key masked) and the place each came from (flag,
/// environment, git config or default), then probes the endpoint: `GET /v1/models`, then a tiny
/// completion at each response_format level (json_schema, json_object, instructions only),
/// reporting latency and which levels work. The best working level is remembered for later
/// runs. Exits 1 when the endpoint is unreachable or no level works.
///
/// Examples:
///   git spectra doctor
///   SPECTRA_LLM_URL=http://localhost:11434/v1 git spectra doctor
///   git spectra doctor --url http://localhost:8001/v1 --model qwen2.5-7b-instruct
///   git spectra doctor --format json | jq .best_format
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DoctorArgs {
    /// Endpoint to check instead of the configured one (a base URL ending in /v1 is fine).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Model to check instead of the configured one.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Per-attempt timeout, e.g. 10s or 500ms.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Output format; `json` prints one object: settings, models, formats, best_format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: DoctorArgs) -> Result<u8> {
    // Outside a repository the doctor still helps: environment and defaults apply.
    let helper = match CommandHelper::discover(Access::Reads) {
        Ok(helper) => Some(helper),
        Err(RepoError::NotARepository) => None,
        Err(error) => return Err(error.into()),
    };
    let repo = helper.as_ref().map(CommandHelper::repo);
    let layers = Layers::from_process(|key| repo?.config_string(key))
        .with_flag(&keys::LLM_URL, args.url)
        .with_flag(&keys::LLM_MODEL, args.model)
        .with_flag(&keys::LLM_TIMEOUT, args.timeout);
    let settings = LlmSettings::resolve(&layers)?;
    let state_dir = repo.map(Repo::state_dir);
    let client = Client::new(settings, state_dir.as_deref())?;
    let mut report = client.doctor();

    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        let mut value = serde_json::to_value(&report).map_err(std::io::Error::other)?;
        value["best_format"] = serde_json::json!(report.best_format());
        value["in_repository"] = serde_json::json!(repo.is_some());
        out.write_all(&super::ui::json_record(&value)?)?;
    } else {
        if repo.is_none() {
            writeln!(
                out,
                "note: not inside a git repository, so git config was not read"
            )?;
        }
        render(&mut out, &report)?;
    }
    out.flush()?;
    match report.problem.take() {
        Some(problem) => Err(problem.into()),
        None if report.best_format().is_some() => Ok(0),
        None => Ok(EXIT_FAILED),
    }
}

fn render(out: &mut impl Write, report: &DoctorReport) -> std::io::Result<()> {
    writeln!(out, "LLM settings:")?;
    let width = report
        .settings
        .iter()
        .map(|row| row.key.len())
        .max()
        .unwrap_or(0);
    for row in &report.settings {
        writeln!(out, "  {:width$}  {}  ({})", row.key, row.value, row.source)?;
    }
    writeln!(out, "endpoint:")?;
    writeln!(
        out,
        "  GET {}: {}",
        report.models.url,
        models_line(&report.models)
    )?;
    writeln!(out, "response formats:")?;
    for probe in &report.formats {
        writeln!(
            out,
            "  {:12}  {}",
            probe.format.as_str(),
            format_line(probe)
        )?;
    }
    match report.best_format() {
        Some(best) => writeln!(out, "decisions will use {best}"),
        None => writeln!(out, "no response format works"),
    }
}

fn models_line(probe: &ModelsProbe) -> String {
    let Some(status) = probe.status else {
        return format!(
            "unreachable ({})",
            probe.error.as_deref().unwrap_or("no response")
        );
    };
    let mut line = format!("HTTP {status} in {} ms", probe.latency_ms);
    if let Some(error) = &probe.error {
        line.push_str(&format!(" ({error})"));
    }
    if let Some(listed) = probe.model_listed {
        let count = probe.models.len();
        let plural = if count == 1 { "" } else { "s" };
        let presence = if listed {
            "the configured model is listed"
        } else {
            "the configured model is NOT listed"
        };
        line.push_str(&format!(", {count} model{plural}, {presence}"));
    }
    line
}

fn format_line(probe: &FormatProbe) -> String {
    let verdict = match probe.verdict {
        FormatVerdict::Works => "works",
        FormatVerdict::Ignored => "accepted but not followed",
        FormatVerdict::Rejected => "rejected",
        FormatVerdict::Failed => "failed",
        FormatVerdict::Skipped => return "not tried (endpoint unreachable)".to_owned(),
    };
    let status = probe
        .status
        .map_or_else(|| "no response".to_owned(), |s| format!("HTTP {s}"));
    let mut line = format!("{verdict} ({status}, {} ms)", probe.latency_ms);
    if let Some(detail) = &probe.detail {
        line.push_str(&format!(": {detail}"));
    }
    line
}
