//! `git spectra registry list | show ID | validate`: what the registry holds, and whether it is
//! sound. Loads the built-in registry merged with the repository's `.spectra/registry/`.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::registry::{Activity, Layer, Playbook, Registry, RegistryError, template::Arg};
use crate::repo::Repo;
use crate::{Error, Result};

/// Inspect and check the activities and playbooks.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

/// The registry subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List activities (in canonical order) and playbooks.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show one activity (by name) or playbook (by id) in full.
    Show {
        /// An activity name or a playbook id.
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check every registry file; print each problem as file:line:column: message.
    Validate {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    /// JSON; one object per line for lists.
    Json,
}

/// Runs a registry subcommand.
pub fn run(args: &RegistryArgs) -> Result<()> {
    match &args.command {
        RegistryCommand::List { format } => list(&load()?, *format),
        RegistryCommand::Show { id, format } => show(&load()?, id, *format),
        RegistryCommand::Validate { format } => validate(*format),
    }
}

fn load_result() -> Result<std::result::Result<Registry, RegistryError>> {
    let repo = Repo::discover()?;
    Ok(match repo.work_tree() {
        Some(root) => Registry::load(root),
        // A bare repository has no working tree, so no `.spectra/registry/` to add.
        None => Registry::builtin(),
    })
}

fn load() -> Result<Registry> {
    Ok(load_result()??)
}

fn list(registry: &Registry, format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            for activity in registry.activities() {
                writeln!(out, "{}", activity_summary(registry, activity))?;
            }
            for playbook in registry.playbooks() {
                writeln!(out, "{}", playbook_summary(playbook))?;
            }
        }
        Format::Text => {
            writeln!(out, "activities:")?;
            for activity in registry.activities() {
                let allowed = ids(registry.allowed_playbooks(&activity.name));
                writeln!(
                    out,
                    "  {:>2} {:<10} {}{}",
                    activity.order,
                    activity.name,
                    allowed.join(", "),
                    layer_note(activity.origin.layer)
                )?;
            }
            writeln!(out, "playbooks:")?;
            for playbook in registry.playbooks() {
                writeln!(
                    out,
                    "  {:<16} {:<14} {}{}",
                    playbook.id,
                    playbook.domain,
                    playbook.description,
                    layer_note(playbook.origin.layer)
                )?;
            }
        }
    }
    Ok(())
}

fn show(registry: &Registry, id: &str, format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(activity) = registry.activity(id) {
        let mut value = serde_json::to_value(activity).map_err(std::io::Error::other)?;
        value["decision_schema"] = registry.decision_schema(id)?;
        value["allowed_playbooks"] = json!(ids(registry.allowed_playbooks(id)));
        match format {
            Format::Json => writeln!(out, "{value}")?,
            Format::Text => write!(out, "{}", activity_text(registry, activity))?,
        }
        return Ok(());
    }
    let playbook = registry
        .playbook(id)
        .ok_or_else(|| RegistryError::UnknownEntry(id.to_string()))?;
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_value(playbook).map_err(std::io::Error::other)?
        )?,
        Format::Text => write!(out, "{}", playbook_text(playbook))?,
    }
    Ok(())
}

fn validate(format: Format) -> Result<()> {
    let error = match load_result()? {
        Ok(registry) => {
            let message = format!(
                "registry ok: {} activities, {} playbooks",
                registry.activities().len(),
                registry.playbooks().count()
            );
            match format {
                Format::Json => println!("{}", json!({"ok": true, "message": message})),
                Format::Text => println!("{message}"),
            }
            return Ok(());
        }
        Err(error) => error,
    };
    let problems = error.problems();
    let mut out = std::io::stdout().lock();
    for problem in problems {
        match format {
            Format::Json => writeln!(out, "{}", json!(problem))?,
            Format::Text => writeln!(out, "{problem}")?,
        }
    }
    Err(Error::Failed {
        message: match problems.len() {
            0 | 1 => "1 problem in the registry".to_string(),
            count => format!("{count} problems in the registry"),
        },
        hint: Some(
            "each line names file:line:column; files under .spectra/registry/ override the built-in ones"
                .to_string(),
        ),
    })
}

fn ids(playbooks: Vec<&Playbook>) -> Vec<String> {
    playbooks
        .into_iter()
        .map(|playbook| playbook.id.clone())
        .collect()
}

fn layer_note(layer: Layer) -> &'static str {
    match layer {
        Layer::Builtin => "",
        Layer::Repository => "  (from .spectra/registry)",
    }
}

fn activity_summary(registry: &Registry, activity: &Activity) -> Value {
    json!({
        "kind": "activity",
        "name": activity.name,
        "order": activity.order,
        "description": activity.description,
        "playbooks": ids(registry.allowed_playbooks(&activity.name)),
        "origin": activity.origin,
    })
}

fn playbook_summary(playbook: &Playbook) -> Value {
    json!({
        "kind": "playbook",
        "id": playbook.id,
        "domain": playbook.domain,
        "activities": playbook.activities,
        "description": playbook.description,
        "reversible": playbook.reversible,
        "idempotent": playbook.idempotent,
        "timeout": playbook.timeout,
        "origin": playbook.origin,
    })
}

fn activity_text(registry: &Registry, activity: &Activity) -> String {
    let gates: Vec<String> = activity
        .quality_gates
        .iter()
        .map(|gate| format!("  {}: {}", gate.name, gate.description))
        .collect();
    format!(
        "activity {} (order {}, {})\n\n{}\n\nplaybooks: {}\ntoken budget: {}\nwrites: {}\n\nquality gates:\n{}\n\nsystem prompt:\n{}\nuser prompt:\n{}\ndecision schema:\n{}\n",
        activity.name,
        activity.order,
        activity.origin.file,
        activity.description,
        ids(registry.allowed_playbooks(&activity.name)).join(", "),
        activity.token_budget,
        activity.writes.join(", "),
        gates.join("\n"),
        activity.prompts.system,
        activity.prompts.user,
        serde_json::to_string_pretty(&activity.decision).unwrap_or_default(),
    )
}

fn playbook_text(playbook: &Playbook) -> String {
    let argv = |args: &Option<Vec<Arg>>| match args {
        None => "(none)".to_string(),
        Some(args) => serde_json::to_string(args).unwrap_or_default(),
    };
    format!(
        "playbook {} (domain {}, {})\n\n{}\n\nactivities: {}\nrun: {}\nundo: {}\nreversible: {}\nidempotent: {}\ntimeout: {}s\ninputs:\n{}\n{}",
        playbook.id,
        playbook.domain,
        playbook.origin.file,
        playbook.description,
        playbook.activities.join(", "),
        argv(&playbook.run),
        argv(&playbook.undo),
        playbook.reversible,
        playbook.idempotent,
        playbook.timeout,
        serde_json::to_string_pretty(&playbook.inputs).unwrap_or_default(),
        playbook
            .runbook
            .as_deref()
            .map(|runbook| format!("\nrunbook:\n{runbook}"))
            .unwrap_or_default(),
    )
}
