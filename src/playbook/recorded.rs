//! Playbook results answered from a record instead of running, for a replay.
//!
//! A replay runs the read-only built-ins for real (they only read the repository as it was),
//! and answers every other playbook (the repository's own commands, `changes.apply`,
//! `tests.run`, `release.tag`, `service.probe`, anything with effects) from the recorded
//! `playbook.finished` of the same activity and playbook, in the order they were recorded: its
//! outcome, exit code, signal, duration and kept output. Nothing with an effect runs.

use std::sync::Mutex;

use super::{Captured, Invocation, Outcome, Report};

/// One recorded `playbook.finished`.
#[derive(Debug, Clone)]
pub struct RecordedResult {
    /// The activity it ran for.
    pub activity: Option<String>,
    /// The playbook's id.
    pub playbook: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    /// How long it took.
    pub duration_ms: u64,
    /// Its kept standard output.
    pub stdout: Captured,
    /// Its kept standard error.
    pub stderr: Captured,
}

/// A past run's playbook results, each answered once.
#[derive(Debug, Default)]
pub struct RecordedPlaybooks {
    results: Mutex<Vec<(bool, RecordedResult)>>,
}

impl RecordedPlaybooks {
    /// The results of one run, in the order they were recorded.
    pub fn new(results: Vec<RecordedResult>) -> RecordedPlaybooks {
        RecordedPlaybooks {
            results: Mutex::new(results.into_iter().map(|result| (false, result)).collect()),
        }
    }

    /// The report of `invocation` as the record has it: the first result not yet answered of
    /// the same activity and playbook. `None` when the record holds none.
    pub fn answer(&self, invocation: &Invocation) -> Option<Report> {
        let mut results = self
            .results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (used, result) = results.iter_mut().find(|(used, result)| {
            !*used
                && result.playbook == invocation.playbook
                && result.activity.as_deref() == Some(invocation.activity.as_str())
        })?;
        *used = true;
        Some(Report {
            invocation: invocation.clone(),
            outcome: result.outcome.clone(),
            exit_code: result.exit_code,
            signal: result.signal,
            duration_ms: result.duration_ms,
            stdout: result.stdout.clone(),
            stderr: result.stderr.clone(),
        })
    }
}
