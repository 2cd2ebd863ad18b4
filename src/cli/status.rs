//! `git spectra status`: one screen that says whether git spectra is ready to work here.

use clap::Args;
use serde::Serialize;

use super::error::Result;
use super::helper::{Access, CommandHelper};
use super::ui::{self, Format, Output, Stream, Style};
use crate::hook::install::{self, HookState};
use crate::llm::Client;
use crate::llm::probe::ModelsProbe;
use crate::repo::Repo;
use crate::settings::{Layers, LlmSettings};

/// Show the version, repository, event log, hooks and LLM endpoint at a glance.
///
/// Reports the version of git spectra, the repository it works on, how many events the log
/// holds and the newest run, whether the post-commit hook is installed, and the LLM endpoint
/// and model with the place each was set. Unless --offline is given it asks the endpoint for
/// its models (`GET /v1/models`, one attempt) to say whether it answers; `git spectra doctor`
/// checks it in depth. Exits 0 even when the endpoint does not answer.
///
/// Examples:
///   git spectra status
///   git spectra status --offline
///   git -c spectra.llm.model=qwen2.5-7b-instruct spectra status --format json | jq .llm
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// Do not contact the LLM endpoint.
    #[arg(long)]
    offline: bool,
    /// Output format; `json` prints one object.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Everything status reports; the JSON shape of `--format json` (documented in docs/commands.md).
#[derive(Debug, Serialize)]
struct Status {
    version: &'static str,
    repository: RepositoryStatus,
    events: EventsStatus,
    /// The last full `git spectra verify` (status never runs one itself).
    integrity: IntegrityStatus,
    hooks: HooksStatus,
    /// Where the log stands against the remote's last fetched log; `None` without a remote.
    remote: Option<crate::sync::Standing>,
    /// What merged logs both decided and no later run has settled.
    conflicts: Vec<crate::sync::Unresolved>,
    llm: LlmStatus,
}

#[derive(Debug, Serialize)]
struct RepositoryStatus {
    work_tree: Option<std::path::PathBuf>,
    git_dir: std::path::PathBuf,
}

#[derive(Debug, Serialize)]
struct EventsStatus {
    count: usize,
    last_run: Option<LastRun>,
}

#[derive(Debug, Serialize)]
struct LastRun {
    run: String,
    command: Option<String>,
    started_at: String,
    outcome: String,
    /// The undo (`events.reverted` event id) that undid it; `None` while it stands.
    undone_by: Option<String>,
    /// The short forms of `run` and `undone_by`, for people (JSON keeps full ids).
    #[serde(skip)]
    names: (String, Option<String>),
}

#[derive(Debug, Serialize)]
struct IntegrityStatus {
    /// `None`: `git spectra verify` never ran in this repository.
    last_verify: Option<crate::store::LastVerify>,
    /// Events appended since that verification (or all of them, never verified).
    events_since: usize,
}

#[derive(Debug, Serialize)]
struct HooksStatus {
    installed: bool,
    state: HookState,
    path: std::path::PathBuf,
    /// Commits the post-commit hook noted that the log does not record yet.
    noted_commits: usize,
}

#[derive(Debug, Serialize)]
struct LlmStatus {
    url: String,
    url_source: String,
    model: String,
    model_source: String,
    /// `None` when not checked (`--offline`).
    answers: Option<bool>,
    latency_ms: Option<u64>,
    error: Option<String>,
}

pub fn run(args: StatusArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Shows)?;
    let repo = helper.repo();
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        repository: RepositoryStatus {
            work_tree: repo
                .work_tree()
                .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.into())),
            git_dir: std::path::absolute(repo.git_dir()).unwrap_or_else(|_| repo.git_dir().into()),
        },
        events: events_status(&helper)?,
        integrity: integrity_status(&helper)?,
        hooks: hooks_status(repo)?,
        remote: {
            let git = crate::sync::Git::new(repo);
            crate::sync::choose_remote(&git, None)
                .ok()
                .map(|remote| crate::sync::standing(&git, &remote))
        },
        conflicts: crate::sync::open_conflicts(helper.store())?,
        llm: llm_status(repo, args.offline)?,
    };
    let mut out = Output::new();
    match args.format {
        Format::Json => out.json_line(&status)?,
        Format::Human => render_human(&mut out, &status)?,
    }
    out.flush()?;
    Ok(0)
}

fn events_status(helper: &CommandHelper) -> Result<EventsStatus> {
    let (repo, store) = (helper.repo(), helper.store());
    let count = store.count()?;
    // The projection cache makes this cheap after the first read; an empty log has no runs.
    let last_run = if count == 0 {
        None
    } else {
        let projection = crate::fold_cache::projection::load(repo, store)?;
        projection.runs().pop().map(|row| {
            let undone_by = projection.undone_by(&row.run).map(str::to_owned);
            let short = |id: &str| store.short_near_tip(id).unwrap_or_else(|| id.to_owned());
            LastRun {
                names: (short(&row.run), undone_by.as_deref().map(short)),
                undone_by,
                run: row.run,
                command: row.command,
                started_at: row.started_at,
                outcome: row.outcome,
            }
        })
    };
    Ok(EventsStatus { count, last_run })
}

/// What the last `verify` found, from its note; the log is not checked again here.
fn integrity_status(helper: &CommandHelper) -> Result<IntegrityStatus> {
    let store = helper.store();
    let count = store.count()?;
    let last_verify = store.last_verify();
    let events_since = match &last_verify {
        // Events verified when the log held that many; a longer log has the rest unchecked.
        Some(last) => count.saturating_sub(last.verified),
        None => count,
    };
    Ok(IntegrityStatus {
        last_verify,
        events_since,
    })
}

fn hooks_status(repo: &Repo) -> Result<HooksStatus> {
    let file = install::inspect(&install::hooks_dir(repo)?)?;
    let installed = !matches!(file.state, HookState::Missing | HookState::NotInstalled);
    Ok(HooksStatus {
        installed,
        state: file.state,
        path: file.path,
        noted_commits: crate::hook::pending::waiting(repo),
    })
}

fn llm_status(repo: &Repo, offline: bool) -> Result<LlmStatus> {
    let settings = LlmSettings::resolve(&Layers::from_process(|key| repo.config_string(key)))?;
    let mut status = LlmStatus {
        url: settings.shown_url(),
        url_source: settings.url.source.to_string(),
        model: settings.model.value.clone(),
        model_source: settings.model.source.to_string(),
        answers: None,
        latency_ms: None,
        error: None,
    };
    if !offline {
        let probe = Client::new(settings, Some(&repo.state_dir()))?.probe_endpoint();
        record_probe(&mut status, probe);
    }
    Ok(status)
}

/// Any HTTP answer means the endpoint is there; a 401 still says so, with the reason.
fn record_probe(status: &mut LlmStatus, probe: ModelsProbe) {
    status.answers = Some(probe.status.is_some());
    status.latency_ms = Some(probe.latency_ms);
    status.error = probe.error;
}

fn render_human(out: &mut Output, status: &Status) -> std::io::Result<()> {
    let field = |name: &str| ui::paint(Stream::Stdout, Style::Kind, format!("{name:<11}"));
    out.line(format_args!(
        "{} git spectra {}",
        field("version"),
        status.version
    ))?;
    let repository = &status.repository;
    let place = match &repository.work_tree {
        Some(work_tree) => work_tree.display().to_string(),
        None => format!("{} (bare)", repository.git_dir.display()),
    };
    out.line(format_args!("{} {place}", field("repository")))?;
    out.line(format_args!(
        "{} {}",
        field("events"),
        describe_events(&status.events)
    ))?;
    out.line(format_args!(
        "{} {}",
        field("integrity"),
        describe_integrity(&status.integrity)
    ))?;
    out.line(format_args!(
        "{} {}",
        field("hooks"),
        describe_hooks(&status.hooks)
    ))?;
    if let Some(remote) = &status.remote {
        out.line(format_args!(
            "{} {}",
            field("remote"),
            describe_remote(remote)
        ))?;
    }
    for conflict in &status.conflicts {
        out.line(format_args!(
            "{} {} for {}: runs {} and {} both decided (merged in {}); the later counts until a new {} run settles it",
            field("conflict"),
            conflict.activity,
            conflict.service,
            conflict.ours.join(", "),
            conflict.theirs.join(", "),
            conflict.merge,
            conflict.activity
        ))?;
    }
    let llm = &status.llm;
    out.line(format_args!(
        "{} {} ({})",
        field("endpoint"),
        llm.url,
        llm.url_source
    ))?;
    out.line(format_args!(
        "{} {} ({})",
        field("model"),
        llm.model,
        llm.model_source
    ))?;
    out.line(format_args!(
        "{} {}",
        field("answers"),
        describe_answer(llm)
    ))
}

fn describe_events(events: &EventsStatus) -> String {
    let plural = if events.count == 1 { "" } else { "s" };
    let count = format!("{} event{plural} on refs/spectra/events", events.count);
    match &events.last_run {
        None => format!("{count}, no runs yet"),
        Some(run) => {
            let (run_name, undo_name) = &run.names;
            let undone = match undo_name {
                Some(undo) => format!(" ({} by {undo})", ui::outcome("undone")),
                None => String::new(),
            };
            format!(
                "{count}; last run {} {} {} at {}{undone}",
                run_name,
                run.command.as_deref().unwrap_or("?"),
                ui::outcome(&run.outcome),
                run.started_at
            )
        }
    }
}

fn describe_integrity(integrity: &IntegrityStatus) -> String {
    let events = |n: usize| format!("{n} event{}", if n == 1 { "" } else { "s" });
    let Some(last) = &integrity.last_verify else {
        return "never verified (`git spectra verify` checks the whole log)".to_owned();
    };
    let since = match integrity.events_since {
        0 => String::new(),
        n => format!("; {} appended since", events(n)),
    };
    match &last.failure {
        None => format!(
            "{} {} at {}{since}",
            ui::outcome("verified"),
            events(last.verified),
            last.at
        ),
        Some(failure) => format!(
            "{} at {}: {failure} (`git spectra verify` says more)",
            ui::outcome("failed"),
            last.at
        ),
    }
}

fn describe_remote(standing: &crate::sync::Standing) -> String {
    use crate::sync::Standing as S;
    let events = |n: usize| format!("{n} event{}", if n == 1 { "" } else { "s" });
    match standing {
        S::NeverFetched { remote } => {
            format!("{remote}'s log never fetched (`git spectra fetch {remote}`)")
        }
        S::InSync { remote } => format!("in sync with {remote} (as last fetched)"),
        S::Ahead { remote, ahead } => format!("{} ahead of {remote}", events(*ahead)),
        S::Behind { remote, behind } => format!("{} behind {remote}", events(*behind)),
        S::Diverged {
            remote,
            ahead,
            behind,
        } => format!(
            "diverged from {remote}: {} here only, {} there only",
            events(*ahead),
            events(*behind)
        ),
    }
}

fn describe_hooks(hooks: &HooksStatus) -> String {
    let state = if hooks.installed {
        format!("post-commit installed: {}", hooks.path.display())
    } else {
        "not installed (git spectra hooks install records every commit)".to_owned()
    };
    match hooks.noted_commits {
        0 => state,
        1 => format!("{state}; 1 noted commit not recorded yet"),
        n => format!("{state}; {n} noted commits not recorded yet"),
    }
}

fn describe_answer(llm: &LlmStatus) -> String {
    match (llm.answers, &llm.error) {
        (None, _) => "not checked (--offline)".to_owned(),
        (Some(true), None) => format!(
            "{} in {} ms",
            ui::outcome("ok"),
            llm.latency_ms.unwrap_or_default()
        ),
        (Some(true), Some(error)) => format!("{} ({error})", ui::outcome("error")),
        (Some(false), error) => format!(
            "{} ({}); `git spectra doctor` says more",
            ui::outcome("unreachable"),
            error.as_deref().unwrap_or("no response")
        ),
    }
}
