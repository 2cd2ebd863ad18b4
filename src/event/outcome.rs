//! How something the log records ended: the `outcome` word of `playbook.finished`,
//! `activity.finished` and `run.finished` (and of the summaries inside them), as one type.
//!
//! The words are part of the event format (docs/events.md), so they are spelled once, here.
//! A word this build does not know (a script's own `activity.finished`, a newer build's
//! outcome) is kept as [`Outcome::Other`] and written back unchanged: readers count and show it
//! as it was recorded.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a playbook, an activity or a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// It did its job (a playbook: exited with code 0).
    Succeeded,
    /// It did not (a playbook: exited with another code).
    Failed,
    /// An activity that decided and did its work, but a required quality gate failed: the
    /// decision lacks what the gate asks for, or a fact contradicts it.
    Incomplete,
    /// An activity stopped by a rule (a healthy duplicate service); nothing was changed.
    Blocked,
    /// Its process died or was stopped by a signal, and a later command closed it.
    Interrupted,
    /// A playbook that ran past its timeout; its process group was killed (in-process work is
    /// abandoned).
    TimedOut,
    /// A playbook ended by a signal it did not get from us.
    Killed,
    /// A playbook that did not run: a dry run.
    DryRun,
    /// A playbook refused before it started (not allowed, bad inputs, a path out of the
    /// repository); only in an activity's summaries, never in `playbook.finished`.
    Refused,
    /// A word this build does not write, kept as recorded.
    Other(String),
}

impl Outcome {
    /// The word the log records.
    pub fn word(&self) -> &str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Incomplete => "incomplete",
            Outcome::Blocked => "blocked",
            Outcome::Interrupted => "interrupted",
            Outcome::TimedOut => "timed_out",
            Outcome::Killed => "killed",
            Outcome::DryRun => "dry_run",
            Outcome::Refused => "refused",
            Outcome::Other(word) => word,
        }
    }

    /// The outcome a recorded word stands for.
    pub fn from_word(word: &str) -> Outcome {
        match word {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "incomplete" => Outcome::Incomplete,
            "blocked" => Outcome::Blocked,
            "interrupted" => Outcome::Interrupted,
            "timed_out" => Outcome::TimedOut,
            "killed" => Outcome::Killed,
            "dry_run" => Outcome::DryRun,
            "refused" => Outcome::Refused,
            other => Outcome::Other(other.to_string()),
        }
    }

    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        *self == Outcome::Succeeded
    }

    /// A playbook outcome that counts as a failure: failed, timed out or killed (a dry run is
    /// neither a success nor a failure; a refusal never reaches `playbook.finished`).
    pub fn is_playbook_failure(&self) -> bool {
        matches!(self, Outcome::Failed | Outcome::TimedOut | Outcome::Killed)
    }

    /// Whether a playbook with this outcome really ran (it was neither a dry run nor refused).
    pub fn executed(&self) -> bool {
        !matches!(self, Outcome::DryRun | Outcome::Refused)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Outcome, D::Error> {
        let word = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Outcome::from_word(&word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_word_reads_back_as_itself() {
        for outcome in [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Incomplete,
            Outcome::Blocked,
            Outcome::Interrupted,
            Outcome::TimedOut,
            Outcome::Killed,
            Outcome::DryRun,
            Outcome::Refused,
            Outcome::Other("skipped_by_script".into()),
        ] {
            let value = serde_json::to_value(&outcome).unwrap();
            assert_eq!(value, json!(outcome.word()));
            assert_eq!(serde_json::from_value::<Outcome>(value).unwrap(), outcome);
        }
    }

    #[test]
    fn a_known_word_never_reads_as_other() {
        assert_eq!(Outcome::from_word("timed_out"), Outcome::TimedOut);
        assert!(serde_json::from_value::<Outcome>(json!(3)).is_err());
    }

    #[test]
    fn playbook_failures_and_executions_are_told_apart() {
        assert!(Outcome::Killed.is_playbook_failure() && Outcome::Killed.executed());
        assert!(!Outcome::DryRun.is_playbook_failure() && !Outcome::DryRun.executed());
        assert!(!Outcome::Refused.executed());
        assert!(!Outcome::Succeeded.is_playbook_failure());
    }
}
