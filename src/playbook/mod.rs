//! Running one playbook, safely.
//!
//! The [`Runner`] is the last line of defence between a model's decision and a process: it
//! refuses a playbook the calling activity may not use (whatever the caller asks), validates the
//! inputs against the playbook's JSON Schema, keeps path inputs inside the repository, and fills
//! the argv template word by word; nothing meets a shell. The process runs in the repository
//! root with `SPECTRA_RUN` and `SPECTRA_EVENT` set, in its own process group that is killed
//! whole on timeout, with its output captured up to a cap; our own read-only built-ins run
//! in-process under the same contract (`in_process`). A dry run does every check and
//! returns the exact argv, and runs nothing. The [`Report`] serializes into the payload of a
//! `playbook.finished` event.

mod capture;
pub mod configured;
mod in_process;
mod process;
pub mod recorded;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::confine::escape_reason;
pub use capture::Captured;

use crate::registry::template::{self, RenderError};
use crate::registry::{Playbook, Registry, compile_schema};

/// How many bytes of each output stream are kept by default (1 MiB).
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;

/// Environment variable naming the run a playbook belongs to.
pub const ENV_RUN: &str = "SPECTRA_RUN";
/// Environment variable naming the `playbook.started` event of this invocation.
pub const ENV_EVENT: &str = "SPECTRA_EVENT";

/// Which of a playbook's argv templates to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run the playbook.
    Run,
    /// Undo what a run of it did.
    Undo,
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The activity asking; the playbook must be allowed for it.
    pub activity: &'a str,
    /// The playbook's id in the registry.
    pub playbook: &'a str,
    /// A JSON object matching the playbook's input schema (`null` counts as `{}`).
    pub inputs: &'a Value,
    /// Run or undo.
    pub action: Action,
    /// Passed to the playbook as `SPECTRA_RUN`.
    pub run_id: &'a str,
    /// Passed to the playbook as `SPECTRA_EVENT`.
    pub event_id: &'a str,
    /// Only render the invocation; do not run it.
    pub dry_run: bool,
}

/// A checked, fully rendered invocation: exactly what would run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    /// The playbook's id.
    pub playbook: String,
    /// The activity it runs for.
    pub activity: String,
    /// Run or undo.
    pub action: Action,
    /// The rendered command, as argv.
    pub argv: Vec<String>,
    /// The directory it runs in.
    pub cwd: PathBuf,
    /// How long it may run before it is stopped.
    pub timeout_ms: u64,
}

/// How an invocation ended: succeeded (exit code 0), failed (another code), timed out,
/// killed (by a signal it did not get from us) or a dry run (the log's one outcome type).
pub use crate::event::Outcome;

/// The result of one invocation, the payload of `playbook.finished`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was run.
    #[serde(flatten)]
    pub invocation: Invocation,
    /// How it ended.
    pub outcome: Outcome,
    /// Its exit code; `None` when a signal ended it or it did not start.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Wall-clock time it took.
    pub duration_ms: u64,
    /// What it wrote on standard output, within the capture limit.
    pub stdout: Captured,
    /// What it wrote on standard error, within the capture limit.
    pub stderr: Captured,
}

impl Report {
    /// The `playbook.finished` event that records this report: the report as payload (without
    /// the local `cwd`), the kept output as `stdout` / `stderr` attachments, caused by the
    /// `playbook.started` event `started_id`.
    pub fn finished_event(
        &self,
        activity: &str,
        started_id: &str,
        subject: String,
    ) -> crate::event::NewEvent {
        let mut payload = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(object) = payload.as_object_mut() {
            object.remove("cwd");
        }
        crate::event::NewEvent::new(crate::event::kind::PLAYBOOK_FINISHED)
            .activity(activity)
            .cause(started_id)
            .subject(subject)
            .payload(payload)
            .attach("stdout", self.stdout.bytes.clone())
            .attach("stderr", self.stderr.bytes.clone())
    }

    /// Whether the playbook did its job (a dry run counts as success: everything checked out).
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Succeeded | Outcome::DryRun)
    }

    /// One line saying how it went, for humans.
    pub fn message(&self) -> String {
        let name = &self.invocation.playbook;
        match &self.outcome {
            Outcome::Succeeded => format!("playbook {name} succeeded in {} ms", self.duration_ms),
            Outcome::Failed => match self.exit_code {
                Some(code) => format!("playbook {name} failed with exit code {code}"),
                None => format!("playbook {name} failed: {}", self.stderr.text().trim()),
            },
            // A process is killed with its group; in-process work (no signal) is abandoned.
            Outcome::TimedOut if self.signal.is_some() => format!(
                "playbook {name} timed out after {} ms; its process group was killed",
                self.invocation.timeout_ms
            ),
            Outcome::TimedOut => format!(
                "playbook {name} timed out after {} ms and was abandoned",
                self.invocation.timeout_ms
            ),
            Outcome::Killed => format!(
                "playbook {name} was killed by signal {}",
                self.signal.unwrap_or_default()
            ),
            Outcome::DryRun => format!(
                "dry run: playbook {name} would run {}",
                quoted_argv(&self.invocation.argv)
            ),
            // A runner ends an invocation only in the ways above.
            other => format!("playbook {name} ended: {other}"),
        }
    }
}

/// An argv as a copy-pasteable line, each word quoted when it needs to be.
pub fn quoted_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a playbook was not run.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// The playbook is not in the registry.
    #[error("no playbook `{0}` in the registry")]
    Unknown(String),
    /// The activity may not use the playbook.
    #[error("playbook `{playbook}` is not allowed for activity `{activity}` (allowed: {})", display_list(.allowed))]
    NotAllowed {
        /// The activity asking.
        activity: String,
        /// The playbook asked for.
        playbook: String,
        /// The playbooks the activity may use.
        allowed: Vec<String>,
    },
    /// The playbook has no argv for the action.
    #[error("playbook `{playbook}` has no `{action}` argv; it is context for the model only")]
    NotRunnable {
        /// The playbook.
        playbook: String,
        /// `run` or `undo`.
        action: &'static str,
    },
    /// The inputs do not match the playbook's input schema.
    #[error("invalid inputs for playbook `{playbook}`: {}", .errors.join("; "))]
    InvalidInputs {
        /// The playbook.
        playbook: String,
        /// Each schema violation.
        errors: Vec<String>,
    },
    /// A path input leaves the repository.
    #[error("input `{input}` of playbook `{playbook}` is refused: `{path}` {reason}")]
    PathEscapes {
        /// The playbook.
        playbook: String,
        /// The input's name.
        input: String,
        /// The path given.
        path: String,
        /// How it leaves the repository.
        reason: String,
    },
    /// The argv template could not be filled.
    #[error("cannot fill the argv of playbook `{playbook}`: {source}")]
    Template {
        /// The playbook.
        playbook: String,
        /// What was wrong with the template or inputs.
        source: RenderError,
    },
    /// The playbook's program could not be started.
    #[error("cannot run playbook `{playbook}` (`{program}`): {source}")]
    Spawn {
        /// The playbook.
        playbook: String,
        /// The program.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The playbook runs the repository's own command and none is configured.
    #[error("playbook `{playbook}` runs the repository's own command, and `{key}` is not set")]
    NotConfigured {
        /// The playbook.
        playbook: String,
        /// The `git config` key to set.
        key: String,
    },
    /// The configured timeout is not a duration.
    #[error("`{key}` is {value:?}: {reason}")]
    BadTimeout {
        /// The `git config` key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tool's own binary, which `{spectra}` names, could not be found.
    #[error("cannot find the git-spectra binary for `{{spectra}}`: {0}")]
    NoExecutable(std::io::Error),
}

impl crate::failure::Classify for PlaybookError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Failed
    }

    fn hints(&self) -> Vec<String> {
        let hint = match self {
            PlaybookError::NotConfigured { key, .. } => {
                return vec![format!(
                    "set it to the command, argv words split on spaces, no shell: `git config {key} '...'` (docs/config.md)"
                )];
            }
            PlaybookError::NotAllowed { .. } => {
                "an activity may run only playbooks that name it and that it names; see `git spectra registry show ACTIVITY`"
            }
            PlaybookError::InvalidInputs { .. } => {
                "`git spectra registry show PLAYBOOK` shows the input schema"
            }
            PlaybookError::PathEscapes { .. } => {
                "path inputs are relative to the repository root and may not leave it (no `..`, absolute paths, symlinks out or .git)"
            }
            PlaybookError::Unknown(_) => {
                "`git spectra registry list` shows the playbooks that exist"
            }
            _ => return Vec::new(),
        };
        vec![hint.into()]
    }
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// Runs playbooks from one registry in one repository.
#[derive(Debug, Clone)]
pub struct Runner<'r> {
    registry: &'r Registry,
    repo_root: PathBuf,
    spectra_exe: PathBuf,
    output_cap: usize,
    extra_env: Vec<(String, String)>,
}

impl<'r> Runner<'r> {
    /// A runner for the repository whose working tree is at `repo_root`, resolving `{spectra}`
    /// to the running executable.
    pub fn new(
        registry: &'r Registry,
        repo_root: impl Into<PathBuf>,
    ) -> Result<Self, PlaybookError> {
        let spectra_exe = std::env::current_exe().map_err(PlaybookError::NoExecutable)?;
        Ok(Runner {
            registry,
            repo_root: repo_root.into(),
            spectra_exe,
            output_cap: DEFAULT_OUTPUT_CAP,
            extra_env: Vec::new(),
        })
    }

    /// Resolves `{spectra}` to `path` instead (tests run the library from another binary).
    pub fn with_spectra_exe(mut self, path: impl Into<PathBuf>) -> Self {
        self.spectra_exe = path.into();
        self
    }

    /// Keeps at most `bytes` of each output stream.
    pub fn with_output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// Adds variables to the playbooks' environment (on top of ours; `SPECTRA_RUN` and
    /// `SPECTRA_EVENT` always win).
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.extra_env.extend(vars);
        self
    }

    /// Checks `request` and renders its argv, running nothing.
    pub fn prepare(&self, request: &Request) -> Result<Invocation, PlaybookError> {
        let playbook = self.allowed_playbook(request)?;
        if let Some(configured) = &playbook.configured {
            return self.prepare_configured(request, playbook, configured);
        }
        let args = match request.action {
            Action::Run => playbook.run.as_deref(),
            Action::Undo => playbook.undo.as_deref(),
        }
        .ok_or_else(|| PlaybookError::NotRunnable {
            playbook: playbook.id.clone(),
            action: match request.action {
                Action::Run => "run",
                Action::Undo => "undo",
            },
        })?;
        let inputs = validated_inputs(playbook, request.inputs)?;
        self.confine_paths(playbook, &inputs)?;
        let argv = template::render(args, &inputs, &self.spectra_exe).map_err(|source| {
            PlaybookError::Template {
                playbook: playbook.id.clone(),
                source,
            }
        })?;
        Ok(Invocation {
            playbook: playbook.id.clone(),
            activity: request.activity.to_string(),
            action: request.action,
            argv,
            cwd: self.repo_root.clone(),
            timeout_ms: duration_ms(playbook.timeout()),
        })
    }

    /// The invocation of a playbook whose argv is the repository's own configured command.
    fn prepare_configured(
        &self,
        request: &Request,
        playbook: &Playbook,
        configured: &crate::registry::Configured,
    ) -> Result<Invocation, PlaybookError> {
        let inputs = validated_inputs(playbook, request.inputs)?;
        let argv = configured::argv(
            &self.repo_root,
            playbook,
            configured,
            request.action,
            &inputs,
        )?;
        let timeout =
            configured::timeout(&self.repo_root, configured)?.unwrap_or_else(|| playbook.timeout());
        Ok(Invocation {
            playbook: playbook.id.clone(),
            activity: request.activity.to_string(),
            action: request.action,
            argv,
            cwd: self.repo_root.clone(),
            timeout_ms: duration_ms(timeout),
        })
    }

    /// Checks and runs `request` (or, for a dry run, only checks it).
    pub fn run(&self, request: &Request) -> Result<Report, PlaybookError> {
        let invocation = self.prepare(request)?;
        if request.dry_run {
            return Ok(Report {
                invocation,
                outcome: Outcome::DryRun,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                stdout: Captured::empty(),
                stderr: Captured::empty(),
            });
        }
        if let Some(work) = in_process::recognise(&invocation.argv, &self.spectra_exe) {
            let timeout = Duration::from_millis(invocation.timeout_ms);
            let finished = in_process::run(work, &invocation.cwd, timeout, self.output_cap);
            return Ok(report(invocation, finished));
        }
        let mut env: Vec<(&str, &str)> = self
            .extra_env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        env.extend([(ENV_RUN, request.run_id), (ENV_EVENT, request.event_id)]);
        let spec = process::Spec {
            argv: &invocation.argv,
            cwd: &invocation.cwd,
            env: &env,
            timeout: Duration::from_millis(invocation.timeout_ms),
            output_cap: self.output_cap,
        };
        match process::run(&spec) {
            Ok(finished) => Ok(report(invocation, finished)),
            // Recorded like any failure, with git's kind of reason on stderr: a typo in a
            // configured command must not leave its `playbook.started` without an end.
            Err(source) => {
                let error = PlaybookError::Spawn {
                    playbook: invocation.playbook.clone(),
                    program: invocation.argv.first().cloned().unwrap_or_default(),
                    source,
                };
                let reason = error.to_string().into_bytes();
                Ok(Report {
                    invocation,
                    outcome: Outcome::Failed,
                    exit_code: None,
                    signal: None,
                    duration_ms: 0,
                    stdout: Captured::empty(),
                    stderr: Captured::capped(reason, self.output_cap),
                })
            }
        }
    }

    /// Whether `invocation` is one of our read-only built-ins, run in this process: it changes
    /// nothing, so a caller need not record it before it runs.
    pub fn reads_only(&self, invocation: &Invocation) -> bool {
        in_process::recognise(&invocation.argv, &self.spectra_exe).is_some()
    }

    fn allowed_playbook(&self, request: &Request) -> Result<&'r Playbook, PlaybookError> {
        let playbook = self
            .registry
            .playbook(request.playbook)
            .ok_or_else(|| PlaybookError::Unknown(request.playbook.to_string()))?;
        if !self.registry.is_allowed(request.activity, &playbook.id) {
            return Err(PlaybookError::NotAllowed {
                activity: request.activity.to_string(),
                playbook: playbook.id.clone(),
                allowed: self
                    .registry
                    .allowed_playbooks(request.activity)
                    .iter()
                    .map(|allowed| allowed.id.clone())
                    .collect(),
            });
        }
        Ok(playbook)
    }

    fn confine_paths(
        &self,
        playbook: &Playbook,
        inputs: &Map<String, Value>,
    ) -> Result<(), PlaybookError> {
        for name in playbook.path_inputs() {
            let paths: Vec<&str> = match inputs.get(name) {
                Some(Value::String(path)) => vec![path],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for path in paths {
                if let Some(reason) = crate::confine::escape_reason(&self.repo_root, path) {
                    return Err(PlaybookError::PathEscapes {
                        playbook: playbook.id.clone(),
                        input: name.to_string(),
                        path: path.to_string(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The inputs as an object, once they match the playbook's schema.
fn validated_inputs(
    playbook: &Playbook,
    inputs: &Value,
) -> Result<Map<String, Value>, PlaybookError> {
    let invalid = |errors: Vec<String>| PlaybookError::InvalidInputs {
        playbook: playbook.id.clone(),
        errors,
    };
    let inputs = match inputs {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    let validator = compile_schema(&playbook.inputs).map_err(|error| invalid(vec![error]))?;
    let errors: Vec<String> = validator
        .iter_errors(&inputs)
        .map(|error| {
            let at = error.instance_path().to_string();
            if at.is_empty() {
                error.to_string()
            } else {
                format!("at {at}: {error}")
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    match inputs {
        Value::Object(map) => Ok(map),
        _ => Err(invalid(vec!["inputs must be a JSON object".to_string()])),
    }
}

fn report(invocation: Invocation, finished: process::Finished) -> Report {
    let outcome = if finished.timed_out {
        Outcome::TimedOut
    } else {
        match finished.exit_code() {
            Some(0) => Outcome::Succeeded,
            Some(_) => Outcome::Failed,
            None => Outcome::Killed,
        }
    };
    Report {
        invocation,
        outcome,
        exit_code: finished.exit_code(),
        signal: finished.signal(),
        duration_ms: duration_ms(finished.duration),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
