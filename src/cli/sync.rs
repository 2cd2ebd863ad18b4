//! `git spectra fetch` and `git spectra sync`: share the event log through a git remote.

use clap::Args;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};
use crate::sync::{self, Fetched, Git, Joined};

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
/// Fetches the remote's log into refs/spectra/remotes/REMOTE/events, joins it into the local
/// log (a fast-forward, or one log.merged event with both tips as parents: no event is ever
/// rewritten), and pushes the result to the remote's refs/spectra/events as a fast-forward
/// (never forced; when the remote moved meanwhile it fetches, merges and tries again). Prints
/// what moved. With --setup it only adds the log's fetch refspec to remote.REMOTE.fetch, so
/// that a plain `git fetch` brings the remote's log too; it never adds a push refspec.
///
/// Examples:
///   git spectra sync
///   git spectra sync upstream --format json
///   git spectra sync --setup
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

/// Join a remote's fetched log into the local log.
///
/// A fast-forward when one log holds the other; otherwise one log.merged event whose commit
/// has both tips as parents. The remote's log must verify, and be one of git spectra's logs,
/// or nothing changes. When both sides ran the same activity for the same service since they
/// diverged, it says so (`git spectra status` lists it until a later run settles it).
///
/// Examples:
///   git spectra merge
///   git spectra merge upstream --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MergeArgs {
    /// The remote (default: the branch's remote, else origin).
    remote: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Push the local log to a remote as a fast-forward, merging first when it moved.
///
/// Never forced: when the remote's log has events this clone lacks, it fetches them, merges
/// them into the local log and tries again (a few times, with a pause), so two clones pushing
/// at the same moment both land.
///
/// Examples:
///   git spectra push
///   git spectra push upstream --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PushArgs {
    /// The remote (default: the branch's remote, else origin).
    remote: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn fetch(args: FetchArgs) -> Result<u8> {
    // Fetching appends no event (it moves the remote's tracking ref, as `git fetch` does), so
    // it needs no git identity.
    let helper = CommandHelper::open(Access::Reads)?;
    let repo = helper.repo();
    let git = Git::new(repo);
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
    let helper = CommandHelper::open(Access::Writes)?;
    let repo = helper.repo();
    let git = Git::new(repo);
    let remote = sync::choose_remote(&git, args.remote.as_deref())?;
    if args.setup {
        return setup(&git, &remote, args.format);
    }
    // These commands fetch: the hint after `git clone` that a remote log exists is moot.
    sync::remember_remote_checked(repo);
    let store = helper.store();
    let synced = sync::sync(&git, store, &remote)?;
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&synced)?,
        Format::Human => {
            warn_conflicts(&synced.joined, &remote);
            out.line(format_args!(
                "{remote}: {} in, {} out, {}",
                events(synced.events_in),
                events(synced.events_out),
                describe_joined(&synced.joined)
            ))?;
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn merge(args: MergeArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Writes)?;
    let repo = helper.repo();
    let git = Git::new(repo);
    let remote = sync::choose_remote(&git, args.remote.as_deref())?;
    // These commands fetch: the hint after `git clone` that a remote log exists is moot.
    sync::remember_remote_checked(repo);
    let store = helper.store();
    let joined = sync::merge(&git, store, &remote)?;
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&joined)?,
        Format::Human => {
            warn_conflicts(&joined, &remote);
            out.line(format_args!("{remote}: {}", describe_joined(&joined)))?;
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn push(args: PushArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Writes)?;
    let repo = helper.repo();
    let git = Git::new(repo);
    let remote = sync::choose_remote(&git, args.remote.as_deref())?;
    // These commands fetch: the hint after `git clone` that a remote log exists is moot.
    sync::remember_remote_checked(repo);
    let store = helper.store();
    let pushed = sync::push_merging(&git, store, &remote)?;
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&pushed)?,
        Format::Human => out.line(match &pushed.tip {
            None => "nothing to push: the local log is empty".to_string(),
            Some(_) if pushed.events == 0 => format!("{remote} is up to date"),
            Some(_) => format!(
                "{} out to {remote}{}",
                events(pushed.events),
                match pushed.merges {
                    0 => String::new(),
                    n => format!(" (after merging what it gained meanwhile, {n}x)"),
                }
            ),
        })?,
    }
    out.flush()?;
    Ok(0)
}

fn events(count: usize) -> String {
    format!("{count} event{}", if count == 1 { "" } else { "s" })
}

fn describe_joined(joined: &Joined) -> String {
    match joined {
        Joined::UpToDate => "up to date".into(),
        Joined::FastForward { events: n } => format!("fast-forward ({})", events(*n)),
        Joined::Merged {
            event,
            ours_events,
            theirs_events,
            ..
        } => format!(
            "merged ({} here, {} there) in event {event}",
            events(*ours_events),
            events(*theirs_events)
        ),
    }
}

/// One `warning:` per service and activity both sides ran since they diverged.
fn warn_conflicts(joined: &Joined, remote: &str) {
    let Joined::Merged { conflicts, .. } = joined else {
        return;
    };
    for conflict in conflicts {
        crate::cli::ui::warning(format_args!(
            "both logs ran {} for {} since they diverged: here {}, on {remote} {}; the later in the log's order counts until a new {} run for {} settles it (`git spectra status` lists it)",
            conflict.activity,
            conflict.service,
            conflict.ours.join(", "),
            conflict.theirs.join(", "),
            conflict.activity,
            conflict.service
        ));
    }
}

fn setup(git: &Git, remote: &str, format: Format) -> Result<u8> {
    let added = sync::setup(git, remote)?;
    let mut out = Output::new();
    let refspec = sync::fetch_refspec(remote);
    match format {
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
