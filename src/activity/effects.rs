//! Activities whose playbooks reach outside the repository (`external: true` in the registry:
//! provision, deploy and monitor by default).
//!
//! Their effects cannot be taken back by reverting a commit, so they run only registry
//! playbooks and only in dry-run unless the user passes `--execute`. Their manifests record,
//! playbook by playbook, which effects really happened, so nobody reads a model's "deployed" as
//! a deployment.

use serde_json::{Value, json};

use super::PlaybookSummary;

/// `[{playbook, executed, outcome}]`: `executed` is true only for a playbook that really ran.
pub(super) fn summary(playbooks: &[PlaybookSummary]) -> Value {
    Value::Array(
        playbooks
            .iter()
            .map(|playbook| {
                let executed = playbook.outcome.executed();
                json!({"playbook": playbook.playbook, "executed": executed, "outcome": playbook.outcome})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;

    #[test]
    fn only_playbooks_that_ran_count_as_executed() {
        let summary = summary(&[
            PlaybookSummary {
                playbook: "a".into(),
                outcome: Outcome::DryRun,
                message: String::new(),
            },
            PlaybookSummary {
                playbook: "b".into(),
                outcome: Outcome::Failed,
                message: String::new(),
            },
        ]);
        assert_eq!(summary[0]["executed"], false);
        assert_eq!(summary[1]["executed"], true);
    }
}
