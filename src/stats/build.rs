//! Builds the [`Stats`] view from the tally's in-scope, unreverted samples: groups them by
//! activity, endpoint and model, playbook and run, then turns each group into counts, rates
//! and [`Durations`].

use std::collections::BTreeMap;

use super::reduce::{Fact, Sample, UNKNOWN_REASON};
use super::view::{
    ActivityStats, Durations, LlmStats, PlaybookStats, RunStats, Stats, StatusErrors, UndoStats,
};
use super::{STATS_SCHEMA, Scope};
use crate::event::Outcome;

/// The group of an `activity.finished` whose envelope names no activity.
const NO_ACTIVITY: &str = "-";

/// Accumulates in-scope, unreverted samples by group, then summarises them.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) excluded: u64,
    activities: BTreeMap<String, ActivityAcc>,
    llm: BTreeMap<(String, String), LlmAcc>,
    playbooks: BTreeMap<String, PlaybookAcc>,
    runs: RunAcc,
}

#[derive(Default)]
struct ActivityAcc {
    outcomes: BTreeMap<String, u64>,
    reasons: BTreeMap<String, u64>,
    durations: Vec<u64>,
}

#[derive(Default)]
struct LlmAcc {
    calls: u64,
    retries: u64,
    errors_by_status: BTreeMap<Option<u64>, u64>,
    latencies: Vec<u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Default)]
struct PlaybookAcc {
    outcomes: BTreeMap<String, u64>,
    durations: Vec<u64>,
}

#[derive(Default)]
struct RunAcc {
    outcomes: BTreeMap<String, u64>,
    durations: Vec<u64>,
}

impl Builder {
    pub(super) fn add(&mut self, sample: &Sample) {
        match &sample.fact {
            Fact::Activity {
                outcome,
                duration_ms,
                reasons,
            } => {
                let name = sample.activity.as_deref().unwrap_or(NO_ACTIVITY);
                let acc = self.activities.entry(name.to_string()).or_default();
                acc.add(outcome, *duration_ms, reasons);
            }
            Fact::Llm { url, model, .. } => {
                let acc = self.llm.entry((url.clone(), model.clone())).or_default();
                acc.add(&sample.fact);
            }
            Fact::Playbook {
                playbook,
                outcome,
                duration_ms,
            } => {
                let acc = self.playbooks.entry(playbook.clone()).or_default();
                *acc.outcomes.entry(outcome.word().to_string()).or_default() += 1;
                // A dry run ran nothing, so its duration says nothing about the playbook.
                if *outcome != Outcome::DryRun {
                    acc.durations.extend(*duration_ms);
                }
            }
            Fact::Run {
                outcome,
                duration_ms,
            } => {
                *self
                    .runs
                    .outcomes
                    .entry(outcome.word().to_string())
                    .or_default() += 1;
                self.runs.durations.extend(*duration_ms);
            }
        }
    }

    pub(super) fn finish(self, events: u64, scope: &Scope, undo: UndoStats) -> Stats {
        Stats {
            schema: STATS_SCHEMA,
            events,
            since: scope.since.map(|since| since.to_string()),
            activity: scope.activity.clone(),
            excluded_reverted: self.excluded,
            activities: self
                .activities
                .into_iter()
                .map(|(name, acc)| acc.finish(name))
                .collect(),
            llm: self
                .llm
                .into_iter()
                .map(|((url, model), acc)| acc.finish(url, model))
                .collect(),
            playbooks: self
                .playbooks
                .into_iter()
                .map(|(name, acc)| acc.finish(name))
                .collect(),
            runs: self.runs.finish(),
            undo,
        }
    }
}

impl ActivityAcc {
    fn add(&mut self, outcome: &Outcome, duration_ms: Option<u64>, reasons: &[String]) {
        *self.outcomes.entry(outcome.word().to_string()).or_default() += 1;
        self.durations.extend(duration_ms);
        if outcome.succeeded() {
            return;
        }
        if reasons.is_empty() {
            // An incomplete activity has no error: a required gate failed, which is its reason.
            let reason = match outcome {
                Outcome::Incomplete => outcome.word(),
                _ => UNKNOWN_REASON,
            };
            *self.reasons.entry(reason.to_string()).or_default() += 1;
        }
        for reason in reasons {
            *self.reasons.entry(reason.clone()).or_default() += 1;
        }
    }

    fn finish(self, activity: String) -> ActivityStats {
        let runs = self.outcomes.values().sum();
        let succeeded = count_of(&self.outcomes, &Outcome::Succeeded);
        ActivityStats {
            activity,
            runs,
            succeeded,
            failed: runs - succeeded,
            success_rate: ratio(succeeded, runs),
            outcomes: self.outcomes,
            failures_by_reason: self.reasons,
            duration_ms: Durations::of(self.durations),
        }
    }
}

impl LlmAcc {
    fn add(&mut self, fact: &Fact) {
        let Fact::Llm {
            attempt,
            status,
            failed,
            latency_ms,
            prompt_tokens,
            completion_tokens,
            ..
        } = fact
        else {
            return;
        };
        self.calls += 1;
        self.retries += u64::from(*attempt > 1);
        if *failed {
            *self.errors_by_status.entry(*status).or_default() += 1;
        }
        self.latencies.extend(*latency_ms);
        self.prompt_tokens += prompt_tokens;
        self.completion_tokens += completion_tokens;
    }

    fn finish(self, url: String, model: String) -> LlmStats {
        let errors = self.errors_by_status.values().sum();
        let errors_by_status = self
            .errors_by_status
            .into_iter()
            .map(|(status, count)| StatusErrors {
                status,
                count,
                rate: count as f64 / self.calls as f64,
            })
            .collect();
        LlmStats {
            url,
            model,
            calls: self.calls,
            retries: self.retries,
            errors,
            error_rate: ratio(errors, self.calls),
            errors_by_status,
            latency_ms: Durations::of(self.latencies),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        }
    }
}

impl PlaybookAcc {
    fn finish(self, playbook: String) -> PlaybookStats {
        let dry_runs = count_of(&self.outcomes, &Outcome::DryRun);
        let runs = self.outcomes.values().sum::<u64>() - dry_runs;
        let failed = self
            .outcomes
            .iter()
            .filter(|(word, _)| Outcome::from_word(word).is_playbook_failure())
            .map(|(_, count)| count)
            .sum();
        PlaybookStats {
            playbook,
            runs,
            dry_runs,
            failed,
            failure_rate: ratio(failed, runs),
            outcomes: self.outcomes,
            duration_ms: Durations::of(self.durations),
        }
    }
}

impl RunAcc {
    fn finish(self) -> RunStats {
        let runs = self.outcomes.values().sum();
        let succeeded = count_of(&self.outcomes, &Outcome::Succeeded);
        RunStats {
            runs,
            succeeded,
            failed: runs - succeeded,
            success_rate: ratio(succeeded, runs),
            duration_ms: Durations::of(self.durations),
        }
    }
}

/// How many times `outcome` was counted in `outcomes` (counted by word).
fn count_of(outcomes: &BTreeMap<String, u64>, outcome: &Outcome) -> u64 {
    outcomes.get(outcome.word()).copied().unwrap_or(0)
}

/// `part / whole`; `None` (null in the JSON) when there is nothing to divide by.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}
