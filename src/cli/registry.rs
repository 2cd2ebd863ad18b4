//! `git spectra registry list | show ID | validate | import DIR`: what the registry holds,
//! whether it is sound, and runbooks written for people made into entries. Loads the built-in
//! registry merged with the repository's `.spectra/registry/`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use std::path::Path;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::registry::{Activity, Layer, Playbook, Problem, Registry, RegistryError, template::Arg};
use crate::repo::Repo;
use crate::tip_cache;

/// Inspect and check the activities and playbooks.
///
/// Shows the built-in registry merged with the repository's `.spectra/registry/`.
///
/// Examples:
///   git spectra registry list
///   git spectra registry show discover --format json
///   git spectra registry validate
///   git spectra registry import docs/runbooks --activity deploy
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

/// The registry subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List activities (in canonical order) and playbooks.
    ///
    /// Examples:
    ///   git spectra registry list
    ///   git spectra registry list --format json | jq -r .name
    #[command(verbatim_doc_comment)]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one activity (by name) or playbook (by id) in full.
    ///
    /// Examples:
    ///   git spectra registry show discover
    ///   git spectra registry show catalog.lookup --format json
    #[command(verbatim_doc_comment)]
    Show {
        /// An activity name or a playbook id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Check every registry file; print each problem as file:line:column: message.
    ///
    /// Examples:
    ///   git spectra registry validate
    ///   git spectra registry validate --format json
    #[command(verbatim_doc_comment)]
    Validate {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Make a folder of Markdown runbooks into runbook playbooks.
    ///
    /// Each `DIR/*.md` (with or without YAML front matter) becomes
    /// `.spectra/registry/playbooks/NAME.md`: its front matter kept, the rest derived (name from
    /// the file name, description from the title, summary from the first paragraph), and every
    /// index field nobody wrote listed (and marked in the file) for a person to fill in. An
    /// existing entry with other content is never overwritten without --force; nothing is
    /// written unless every runbook can be.
    ///
    /// Examples:
    ///   git spectra registry import docs/runbooks --activity deploy
    ///   git spectra registry import ops/ --activity deploy --activity provision --domain railway
    #[command(verbatim_doc_comment)]
    Import {
        /// The folder of `.md` runbooks.
        dir: std::path::PathBuf,
        /// An activity that may use them, for runbooks whose front matter names none
        /// (repeatable).
        #[arg(long = "activity", value_name = "NAME")]
        activities: Vec<String>,
        /// Their domain, for runbooks whose front matter names none [default: the folder's
        /// name].
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
        /// Replace entries that exist with other content.
        #[arg(long)]
        force: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs a registry subcommand and returns the exit code.
pub fn run(args: RegistryArgs) -> Result<u8> {
    let mut out = Output::new();
    match args.command {
        RegistryCommand::List { format } => list(&mut out, &load()?, format)?,
        RegistryCommand::Show { id, format } => show(&mut out, &load()?, &id, format)?,
        RegistryCommand::Validate { format } => validate(&mut out, format)?,
        RegistryCommand::Import {
            dir,
            activities,
            domain,
            force,
            format,
        } => {
            let request = ImportRequest {
                dir,
                activities,
                domain,
                force,
            };
            super::registry_import::run(&mut out, &request, format)?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// The registry of the current repository; through the registry cache when `cached`.
fn load_result(cached: bool) -> Result<std::result::Result<Registry, RegistryError>> {
    let helper = CommandHelper::open(Access::Reads)?;
    let repo = helper.repo();
    Ok(match repo.work_tree() {
        Some(root) if cached => Registry::load_cached(root, Some(&tip_cache::dir(repo))),
        Some(root) => Registry::load(root),
        // A bare repository has no working tree, so no `.spectra/registry/` to add.
        None => Registry::builtin(),
    })
}

/// What `registry import` was asked to do.
pub struct ImportRequest {
    /// The folder of runbooks.
    pub dir: std::path::PathBuf,
    /// `--activity`.
    pub activities: Vec<String>,
    /// `--domain`.
    pub domain: Option<String>,
    /// `--force`.
    pub force: bool,
}

pub(super) fn load() -> Result<Registry> {
    Ok(load_result(true)??)
}

fn list(out: &mut Output, registry: &Registry, format: Format) -> Result<()> {
    if format == Format::Json {
        for activity in registry.activities() {
            out.json_line(&activity_summary(registry, activity))?;
        }
        for playbook in registry.playbooks() {
            out.json_line(&playbook_summary(playbook))?;
        }
        return Ok(());
    }
    out.line("activities:")?;
    for activity in registry.activities() {
        out.line(format_args!(
            "  {:>2} {:<10} {}{}",
            activity.order,
            activity.name,
            ids(registry.allowed_playbooks(&activity.name)).join(", "),
            layer_note(activity.origin.layer)
        ))?;
    }
    out.line("playbooks:")?;
    for playbook in registry.playbooks() {
        out.line(format_args!(
            "  {:<16} {:<14} {:<7} {}{}",
            playbook.id,
            playbook.domain,
            playbook.kind().as_str(),
            playbook.description,
            layer_note(playbook.origin.layer)
        ))?;
    }
    Ok(())
}

fn show(out: &mut Output, registry: &Registry, id: &str, format: Format) -> Result<()> {
    if let Some(activity) = registry.activity(id) {
        let mut value = serde_json::to_value(activity).map_err(std::io::Error::other)?;
        value["decision_schema"] = registry.decision_schema(id)?;
        value["allowed_playbooks"] = json!(ids(registry.allowed_playbooks(id)));
        match format {
            Format::Json => out.json_line(&value)?,
            Format::Human => out.bytes(activity_text(registry, activity).as_bytes())?,
        }
        return Ok(());
    }
    let playbook = registry
        .playbook(id)
        .ok_or_else(|| RegistryError::UnknownEntry(id.to_string()))?;
    match format {
        Format::Json => out.json_line(playbook)?,
        Format::Human => out.bytes(playbook_text(playbook).as_bytes())?,
    }
    Ok(())
}

fn validate(out: &mut Output, format: Format) -> Result<()> {
    // Validation always parses and checks every file: it is the command that says whether the
    // files are sound, so it does not take a cached answer.
    let loaded = load_result(false)?.and_then(|registry| {
        let taken = commands_taken(&registry);
        if taken.is_empty() {
            Ok(registry)
        } else {
            Err(RegistryError::Invalid(taken))
        }
    });
    let error = match loaded {
        Ok(registry) => {
            print_warnings(out, registry.warnings(), format)?;
            let message = format!(
                "registry ok: {} activities, {} playbooks",
                registry.activities().len(),
                registry.playbooks().count()
            );
            match format {
                Format::Json => out.json_line(&json!({"ok": true, "message": message}))?,
                Format::Human => out.line(message)?,
            }
            return Ok(());
        }
        Err(error) => error,
    };
    let problems = error.problems();
    for problem in problems {
        match format {
            Format::Json => out.json_line(problem)?,
            Format::Human => out.line(problem)?,
        }
    }
    // The problems are the output; make sure they are out before the error line on stderr.
    out.flush()?;
    Err(Error::failed_with_hint(
        match problems.len() {
            0 | 1 => "1 problem in the registry".to_string(),
            count => format!("{count} problems in the registry"),
        },
        "each line names file:line:column; files under .spectra/registry/ override the built-in ones",
    ))
}

/// Warnings do not fail validation: each is a `warning: file:line:column: message` line (a JSON
/// object with `"level": "warning"`), before the verdict.
fn print_warnings(out: &mut Output, warnings: &[Problem], format: Format) -> Result<()> {
    for warning in warnings {
        match format {
            Format::Json => {
                let mut value = serde_json::to_value(warning).map_err(std::io::Error::other)?;
                value["level"] = json!("warning");
                out.json_line(&value)?;
            }
            Format::Human => out.line(format_args!("warning: {warning}"))?,
        }
    }
    Ok(())
}

/// A repository's activity whose name is a command of its own gets no command: it would run
/// only as `git spectra run -a NAME`, which is surely not what its author meant.
fn commands_taken(registry: &Registry) -> Vec<Problem> {
    let commands = super::Cli::static_command();
    let root = Repo::discover()
        .ok()
        .and_then(|repo| repo.work_tree().map(Path::to_path_buf));
    registry
        .activities()
        .iter()
        .filter(|activity| activity.origin.layer == Layer::Repository)
        .filter(|activity| super::activities::is_taken(&commands, &activity.name))
        // Overriding discover keeps its own command, which runs the override.
        .filter(|activity| Registry::builtin().is_ok_and(|builtin| builtin.activity(&activity.name).is_none()))
        .map(|activity| {
            let position = root
                .as_ref()
                .and_then(|root| std::fs::read_to_string(root.join(&activity.origin.file)).ok())
                .and_then(|text| crate::yaml::position_at(&text, "/name"))
                .unwrap_or_default();
            Problem::new(
                &activity.origin.file,
                position,
                format!(
                    "`{}` is already a git spectra command, so this activity gets none; choose another name",
                    activity.name
                ),
            )
        })
        .collect()
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
        "playbook_kind": playbook.kind(),
        "id": playbook.id,
        "domain": playbook.domain,
        "activities": playbook.activities,
        "description": playbook.description,
        "reversible": playbook.reversible,
        "idempotent": playbook.idempotent,
        "undo_unfinished": playbook.undo_unfinished,
        "undo_last": playbook.undo_last,
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

/// The argv line of `show`: for a playbook whose argv is the repository's own command, the
/// `git config` key it is read from.
fn run_text(
    playbook: &Playbook,
    written: String,
    key: impl Fn(&crate::registry::Configured) -> Option<String>,
) -> String {
    match playbook.configured.as_ref() {
        Some(configured) => match key(configured) {
            Some(key) => format!("the command in `git config {key}`"),
            None => "(none)".to_string(),
        },
        None => written,
    }
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
        run_text(playbook, argv(&playbook.run), |c| Some(c.run.clone())),
        run_text(playbook, argv(&playbook.undo), |c| c.undo.clone()),
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
