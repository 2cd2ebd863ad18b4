//! `git spectra rerun`: a past run again, for real, reusing the decisions before `--from`.

use clap::Args;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::lifecycle::{self, Request, Selection};
use super::ui::Format;

/// Run a past run again for real, reusing its recorded decisions before --from.
///
/// A new run (new events, new commits, undoable as usual) with the same command, input,
/// activities and service as RUN, asking the model live, except for the activities before
/// --from: their recorded decisions are taken again (`decision.made` with `reused_from`), so
/// after fixing the design prompt, "everything from design on" is redone without paying for
/// discover again. A rerun may replace the specification its original wrote (as --update).
/// Playbooks with external effects run in dry-run unless --execute. See docs/replay.md.
///
/// Examples:
///   git spectra rerun 3f9c2a1 --from design
///   git spectra rerun 3f9c2a1 --from test --offline
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RerunArgs {
    /// The run to run again (its id or a unique prefix, as `git spectra runs` shows it).
    run: String,
    /// The first activity decided again; the ones before it reuse their recorded decisions.
    /// Without it, every activity decides again.
    #[arg(long, value_name = "ACTIVITY")]
    from: Option<String>,
    /// Decide the activities from --from on with rules instead of a model.
    #[arg(long)]
    offline: bool,
    /// Really run the playbooks of provision, deploy and monitor (otherwise they run in dry-run).
    #[arg(long)]
    execute: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: RerunArgs) -> Result<u8> {
    let (run, asked, reuse) = {
        let helper = CommandHelper::open(Access::Shows)?;
        let store = helper.store();
        let run = store.ids()?.resolve_run(&args.run)?;
        let (asked, reuse) = crate::replay::rerun_of(store, &run, args.from.as_deref())?;
        (run, asked, reuse)
    };
    lifecycle::execute_reusing(
        Request {
            command: &asked.command,
            input: &asked.input,
            selection: Selection::Given(asked.activities.clone()),
            service: asked.service.as_deref(),
            dry_run: asked.dry_run,
            no_commit: false,
            execute: args.execute,
            offline: args.offline,
            update: true,
            format: args.format,
        },
        reuse,
        Some(run),
    )
}
