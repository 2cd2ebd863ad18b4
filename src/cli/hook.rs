//! `git spectra hook record-noted COMMIT` (what the installed shim starts in the background),
//! `git spectra hook post-commit` (what it runs in the foreground when it cannot note the
//! commit) and `git spectra hook run-activities` (the background runner a specification change
//! starts). All are hidden: people use `git spectra hooks`.
//!
//! The first two run beside the user's `git commit`, so they never fail: whatever goes wrong
//! becomes one `warning:` line on stderr and a line in the hooks log, and the exit code is 0.

use clap::{Args, Subcommand};

use super::error::Result;
use super::helper::{Access, CommandHelper};
use crate::hook::{self, HookError, ObservedCommit, Recorded, pending, trigger};
use crate::repo::Repo;

/// Run a git hook's work (called by the shims `git spectra hooks install` puts in place).
#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    command: HookCommand,
}

#[derive(Debug, Subcommand)]
enum HookCommand {
    /// Record the commit HEAD points at as `commit.observed`; start onSpecChange activities.
    PostCommit,
    /// Record the commits the post-commit shim noted (what it starts in the background after
    /// noting COMMIT).
    RecordNoted { commit: String },
    /// Run `git spectra <activity> --service S INPUT` for each activity in order, stopping at
    /// the first failure; what post-commit starts in the background.
    RunActivities {
        #[arg(long)]
        service: String,
        #[arg(long)]
        input: String,
        #[arg(required = true)]
        activities: Vec<String>,
    },
}

pub fn run(args: HookArgs) -> Result<u8> {
    match args.command {
        HookCommand::PostCommit => {
            post_commit();
            Ok(0)
        }
        HookCommand::RecordNoted { commit } => {
            record_noted(&commit);
            Ok(0)
        }
        HookCommand::RunActivities {
            service,
            input,
            activities,
        } => {
            // Standard output is the hooks log the post-commit hook opened for us.
            let mut log = std::io::stdout().lock();
            Ok(trigger::run_activities(
                &service,
                &input,
                &activities,
                &mut log,
            )?)
        }
    }
}

pub(super) fn post_commit() {
    if !hook::enabled_by_env() {
        return;
    }
    let helper = match CommandHelper::discover(Access::Writes) {
        Ok(helper) => helper,
        Err(err) => return warn(None, &format!("commit not recorded: {err}")),
    };
    let repo = helper.repo();
    if !hook::enabled_by_config(repo) {
        return;
    }
    // The shim records in the foreground only until this directory exists (see hook::pending).
    let _ = pending::prepare(repo);
    // Commits noted before this one go first.
    settle_noted(repo);
    let commit = match hook::record_head(repo) {
        Ok(Recorded::Observed { commit, .. }) => commit,
        Ok(Recorded::MadeBySpectra(_)) => return,
        Err(err) => {
            return warn(
                Some(repo),
                &format!("commit not recorded: {}", one_line(&err)),
            );
        }
    };
    start_triggers(repo, &commit, &hook::on_spec_change(repo), None);
}

/// What the shim starts in the background after noting `commit`: records every noted commit,
/// unless the hooks were switched off for this commit alone (its environment or `git -c`),
/// which removes only its own note.
pub(super) fn record_noted(commit: &str) {
    let helper = match CommandHelper::discover(Access::Writes) {
        Ok(helper) => helper,
        Err(err) => return warn(None, &format!("commit not recorded: {err}")),
    };
    let repo = helper.repo();
    if !hook::enabled_by_env() || !hook::enabled_by_config(repo) {
        pending::forget(repo, commit);
        return;
    }
    settle_noted(repo);
}

/// Records the commits the post-commit shim noted and starts what they trigger; a failure is
/// one warning (the notes stay for the next command to record).
pub(crate) fn settle_noted(repo: &Repo) {
    let settlement = match pending::settle(repo) {
        Ok(settlement) => settlement,
        Err(err) => {
            return warn(
                Some(repo),
                &format!("commit not recorded: {}", one_line(&err)),
            );
        }
    };
    for err in &settlement.dropped {
        warn(
            Some(repo),
            &format!("a noted commit was not recorded: {}", one_line(err)),
        );
    }
    if settlement.recorded.is_empty() {
        return;
    }
    let activities = hook::on_spec_change(repo);
    for settled in &settlement.recorded {
        start_triggers(repo, &settled.commit, &activities, settled.made_in.as_ref());
    }
}

fn start_triggers(
    repo: &Repo,
    commit: &ObservedCommit,
    activities: &[String],
    made_in: Option<&pending::Workplace>,
) {
    if let Err(err) = trigger::start_for_commit(repo, commit, activities, made_in) {
        warn(
            Some(repo),
            &format!(
                "commit {} recorded, but {} not started: {}",
                commit.short_id(),
                activities.join(", "),
                one_line(&err)
            ),
        );
    }
}

/// One short line on stderr (git prints it under the commit summary), and the same in the hooks
/// log, where `git spectra hooks status` points people.
fn warn(repo: Option<&Repo>, message: &str) {
    crate::cli::ui::warning(format_args!("git spectra: {message}"));
    if let Some(repo) = repo {
        let _ = trigger::append_to_log(repo, &format!("warning: {message}"));
    }
}

/// Errors can carry a multi-line list (an ambiguous id...); a hook warning is one line.
fn one_line(err: &HookError) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
