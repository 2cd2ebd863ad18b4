//! `git spectra fetch` and `git spectra sync`: share the event log through a git remote.

use clap::Args;

use crate::error::Result;
use crate::repo::Repo;
use crate::sync::{self, Fetched, Git};
use crate::ui::{Format, Output};

/// Fetch a remote's event log into refs/spectra/remotes/REMOTE/events.
///
/// Mirrors the remote's refs/spectra/events (forced there, as refs/remotes/* are) and never
/// touches the local log; `git spectra sync` then merges it. REMOTE defaults to the current
/// branch's remote, else origin. A remote without a log is not an error. What the remote holds
/// under that name must be an event log of git spectra, else nothing is kept.
///
/// Examples:
///   git spectra fetch
///   git spectra fetch upstream --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FetchArgs {
    /// The remote (default: the branch's remote, else origin).
    remote: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Share the event log with a remote: fetch, merge, push.
///
/// With --setup, adds the log's fetch refspec to remote.REMOTE.fetch so that a plain `git
/// fetch` brings the remote's log too (into refs/spectra/remotes/REMOTE/events). It never adds
/// a push refspec: what `git push` pushes stays as it was.
///
/// Examples:
///   git spectra sync --setup
///   git spectra sync --setup upstream
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SyncArgs {
    /// The remote (default: the branch's remote, else origin).
    remote: Option<String>,
    /// Make `git fetch` bring the remote's log too, and change nothing else.
    #[arg(long)]
    setup: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn fetch(args: FetchArgs) -> Result<u8> {
    let repo = Repo::discover()?;
    let git = Git::new(&repo);
    let remote = sync::choose_remote(&git, args.remote.as_deref())?;
    let fetched = sync::fetch(&git, &remote)?;
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&fetched)?,
        Format::Human => out.line(describe_fetch(&fetched))?,
    }
    out.flush()?;
    Ok(0)
}

fn describe_fetch(fetched: &Fetched) -> String {
    if !fetched.remote_has_log {
        return format!(
            "{} has no event log yet (`git spectra sync` pushes this one there)",
            fetched.remote
        );
    }
    match fetched.new_events {
        0 => format!("{} is up to date", fetched.tracking),
        n => format!(
            "{n} new event{} from {} in {}",
            if n == 1 { "" } else { "s" },
            fetched.remote,
            fetched.tracking
        ),
    }
}

pub fn run(args: SyncArgs) -> Result<u8> {
    let repo = Repo::discover()?;
    let git = Git::new(&repo);
    let remote = sync::choose_remote(&git, args.remote.as_deref())?;
    if !args.setup {
        return Err(crate::Error::usage(
            "merging and pushing the log are not available yet; only `git spectra sync --setup` and `git spectra fetch` are",
            Some(
                "`git spectra fetch` brings the remote's log into refs/spectra/remotes/"
                    .to_string(),
            ),
        ));
    }
    let added = sync::setup(&git, &remote)?;
    let mut out = Output::new();
    let refspec = sync::fetch_refspec(&remote);
    match args.format {
        Format::Json => out.json_line(
            &serde_json::json!({"remote": remote, "refspec": refspec, "added": added}),
        )?,
        Format::Human if added => out.line(format_args!(
            "added {refspec} to remote.{remote}.fetch: `git fetch {remote}` now brings its event log too"
        ))?,
        Format::Human => out.line(format_args!(
            "remote.{remote}.fetch already has {refspec}"
        ))?,
    }
    out.flush()?;
    Ok(0)
}
