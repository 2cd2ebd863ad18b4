//! `git spectra undo` and `git spectra redo`: revert earlier events by appending new ones.

use clap::Args;
use serde_json::json;

use super::error::{Error, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::registry::Registry;
use crate::run_lock::EffectLock;
use crate::store::Ids;
use crate::tip_cache;
use crate::undo::{self, Applied, Context, Direction, Plan, Step};

/// Undo a run or an event, by appending events that revert it (nothing is rewritten).
///
/// Without an argument, undoes the newest run that is not undone yet; run it again to walk
/// further back. With a run (the short form `runs` prints, its id or a unique prefix) it undoes
/// every event of that run; with an event (the short form `log` prints, its id...), that event
/// alone. Effects are undone in reverse order of the run: the
/// compensating playbooks the registry declares (`undo`) run, and the commits the run made on
/// your branch are reverted with `git revert` (new commits with Spectra-Reverts trailers,
/// never a reset). Then one events.reverted event names every target, and manifests and
/// history read as if the run had not happened. Undoing an undo (its event or run id) is a
/// redo.
///
/// Refused, with the reason: an effect declared `reversible: false`; later work that depends
/// on the targets (a later run for the same service, or an event naming one in its causes),
/// and a playbook with an undo that never finished (--force overrides only these two);
/// uncommitted or staged changes in the way of `git revert`; a
/// revert that conflicts (it is aborted and your work tree is left as it was).
///
/// Examples:
///   git spectra undo
///   git spectra undo 0193f2a1 --dry-run
///   git spectra undo 0193f2a1-7c4e-7d1a-9e1b-5a4f3c2d1e0f --force
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UndoArgs {
    /// A run id or unique prefix, or an event id (default: the newest run not undone).
    #[arg(value_name = "RUN-OR-EVENT")]
    target: Option<String>,
    /// Print the full plan (events, compensations, commits to revert) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Undo even though later work depends on it, and run the undo of a playbook that never
    /// finished (never overrides `reversible: false`).
    #[arg(long)]
    force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Redo: undo the newest undo still in effect.
///
/// Appends an events.restored event cancelling it, reverts the commits it reverted (a revert
/// of the revert) and runs its compensated playbooks again. Run it again to redo the undo
/// before that.
///
/// Examples:
///   git spectra redo
///   git spectra redo --dry-run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RedoArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn undo(args: UndoArgs) -> Result<u8> {
    let (helper, registry) = open()?;
    let context =
        Context::new(helper.store(), &registry, helper.repo()).ok_or(undo::UndoError::Bare)?;
    let make_plan = || undo::plan_undo(&context, args.target.as_deref(), args.force);
    let effects = hold_effects(&context, args.dry_run, &make_plan)?;
    let plan = make_plan()?;
    carry_out(&context, &plan, effects.as_ref(), args.format)
}

pub fn redo(args: RedoArgs) -> Result<u8> {
    let (helper, registry) = open()?;
    let context =
        Context::new(helper.store(), &registry, helper.repo()).ok_or(undo::UndoError::Bare)?;
    let make_plan = || undo::plan_redo(&context);
    let effects = hold_effects(&context, args.dry_run, &make_plan)?;
    let plan = make_plan()?;
    carry_out(&context, &plan, effects.as_ref(), args.format)
}

/// The effect lock, held from before the plan is made until the undo is recorded, so that two
/// undos (or an undo and a discover) never plan on a branch the other is changing. A dry run
/// changes nothing and takes no lock. While another command holds it, a refusal that does not
/// depend on waiting (the run is still in progress) is said at once; otherwise this waits.
fn hold_effects(
    context: &Context<'_>,
    dry_run: bool,
    make_plan: &dyn Fn() -> std::result::Result<Plan, undo::UndoError>,
) -> Result<Option<EffectLock>> {
    if dry_run {
        return Ok(None);
    }
    let state_dir = &context.state_dir;
    if let Some(lock) = EffectLock::try_acquire(state_dir).map_err(undo::UndoError::RunLock)? {
        return Ok(Some(lock));
    }
    if let Some(refusal) = make_plan()?.refusal() {
        return Err(refusal.into());
    }
    let lock = EffectLock::acquire(state_dir).map_err(undo::UndoError::RunLock)?;
    Ok(Some(lock))
}

fn open() -> Result<(CommandHelper, Registry)> {
    let helper = CommandHelper::open(Access::Writes)?;
    let repo = helper.repo();
    let root = repo.work_tree().ok_or(undo::UndoError::Bare)?;
    let registry = Registry::load_cached(root, Some(&tip_cache::dir(repo)))?;
    Ok((helper, registry))
}

/// Prints the plan (dry run) or carries it out and prints what was done.
fn carry_out(
    context: &Context<'_>,
    plan: &Plan,
    effects: Option<&EffectLock>,
    format: Format,
) -> Result<u8> {
    let mut out = Output::new();
    let Some(effects) = effects else {
        let refusal = plan.refusal();
        match format {
            Format::Human => render_plan(&mut out, plan, &context.store.ids()?)?,
            Format::Json => out.json_line(&json!({
                "dry_run": true,
                "plan": plan,
                "refused": refusal.as_ref().map(ToString::to_string),
            }))?,
        }
        out.flush()?;
        return match refusal {
            Some(refusal) => Err(Error::from(refusal)),
            None => Ok(0),
        };
    };
    let applied = undo::apply(context, plan, effects)?;
    match format {
        Format::Human => render_applied(&mut out, plan, &applied, &context.store.ids()?)?,
        Format::Json => {
            out.json_line(&json!({"dry_run": false, "plan": plan, "applied": applied}))?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Undo => "undo",
        Direction::Redo => "redo",
    }
}

fn render_plan(out: &mut Output, plan: &Plan, ids: &Ids) -> std::io::Result<()> {
    out.line(format_args!(
        "would {} {}",
        verb(plan.direction),
        ids.shorten(&plan.description)
    ))?;
    if plan.steps.is_empty() {
        out.line("  no effects to reverse (no commits, no compensations)")?;
    }
    for (number, step) in plan.steps.iter().enumerate() {
        render_step(out, number + 1, step)?;
    }
    let record = match plan.direction {
        Direction::Undo => "events.reverted",
        Direction::Redo => "events.restored",
    };
    out.line(format_args!(
        "  then record {record} naming {} event(s):",
        plan.targets.len()
    ))?;
    for target in &plan.targets {
        out.line(format_args!("    {}", ids.short(target)))?;
    }
    for note in &plan.notes {
        out.line(format_args!("  note: {note}"))?;
    }
    for dependent in &plan.blockers.dependents {
        let overridden = if plan.forced { " (--force)" } else { "" };
        out.line(format_args!(
            "  depends on it{overridden}: {}",
            dependent.why
        ))?;
    }
    Ok(())
}

fn render_step(out: &mut Output, number: usize, step: &Step) -> std::io::Result<()> {
    out.line(format_args!("  {number}. {}", step.describe()))?;
    match step {
        Step::Revert {
            files,
            already_done_as,
            ..
        } => {
            for file in files {
                out.line(format_args!("       {file}"))?;
            }
            if let Some(revert) = already_done_as {
                out.line(format_args!(
                    "       already done as {} by an earlier undo that stopped; skipped",
                    crate::worktree::short(revert)
                ))?;
            }
        }
        Step::Playbook { already_done, .. } if *already_done => {
            out.line("       already done by an earlier undo that stopped; skipped")?;
        }
        Step::Playbook { .. } => {}
    }
    Ok(())
}

fn render_applied(
    out: &mut Output,
    plan: &Plan,
    applied: &Applied,
    ids: &Ids,
) -> std::io::Result<()> {
    let done = match plan.direction {
        Direction::Undo => "undid",
        Direction::Redo => "redid",
    };
    out.line(format_args!("{done} {}", ids.shorten(&plan.description)))?;
    for step in &applied.steps {
        out.line(format_args!("  {}", crate::undo::describe_done(step)))?;
    }
    out.line(format_args!(
        "  event:  {} (run {})",
        ids.short(&applied.event),
        ids.short(&applied.run)
    ))?;
    match plan.direction {
        Direction::Undo => out.line("  redo:   git spectra redo")?,
        Direction::Redo => {
            out.line(format_args!(
                "  undo:   git spectra undo {}",
                ids.short(&applied.event)
            ))?;
        }
    }
    Ok(())
}
