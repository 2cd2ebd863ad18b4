//! Stats: how activities, LLM endpoints and playbooks have behaved, folded from the event log
//! alone.
//!
//! The fold has two stages so that it can be cached and extended. [`Tally::add`] reduces each
//! event to the few facts stats need (a [`Sample`], a revert or a restore), in log order, and
//! keeps them by event id: a later `events.reverted` can then take an earlier event back out,
//! and an `events.restored` put it back. [`Tally::stats`] turns the facts into the [`Stats`]
//! view, applying the `--since` / `--activity` [`Scope`] and leaving reverted events out (except
//! from the undo count). Because the tally keeps every sample, percentiles are exact:
//! nearest-rank over all of them, no sampling or sketches.
//!
//! Only the payload fields documented in docs/events.md are read. Kinds stats does not use, and
//! events whose payload lacks what stats needs, are skipped. The JSON shape of [`Stats`] is
//! documented in docs/stats.md and is stable within its `schema`.

// Temporary: this module is being restructured; its public items get their docs then.
#![allow(missing_docs)]

mod stored;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{self, Event, EventError, Outcome, RevertedSet, kind};
use crate::fold::{Fold, NeedsRebuild};

/// The version of the JSON object [`Stats`] serialises to.
pub const STATS_SCHEMA: u32 = 1;

/// Which events a [`Stats`] view covers. Empty fields cover everything.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only events at or after this instant.
    pub since: Option<jiff::Timestamp>,
    /// Only events recorded by this activity (the envelope's `activity`).
    pub activity: Option<String>,
}

/// The facts stats keeps from the log: one entry per event that matters, by event id.
/// Cached in the compact shape of [`stored`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "stored::StoredTally", try_from = "stored::StoredTally")]
pub struct Tally {
    /// Events folded so far, whatever their kind.
    events: u64,
    samples: Vec<Sample>,
    reverts: Vec<Revert>,
    restores: Vec<Restore>,
}

/// What one stats-relevant event contributed.
#[derive(Debug, Clone)]
struct Sample {
    id: String,
    /// The event's `at`, in milliseconds since the Unix epoch (for `--since`).
    at_ms: i64,
    activity: Option<String>,
    fact: Fact,
}

/// The kind-specific part of a sample: exactly the payload fields stats reads.
#[derive(Debug, Clone)]
enum Fact {
    /// `activity.finished`: `outcome`, `duration_ms`, `errors[].reason`.
    Activity {
        outcome: Outcome,
        duration_ms: Option<u64>,
        reasons: Vec<String>,
    },
    /// `llm.called`: one HTTP attempt.
    Llm {
        url: String,
        model: String,
        attempt: u64,
        status: Option<u64>,
        failed: bool,
        latency_ms: Option<u64>,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// `playbook.finished`: `playbook`, `outcome`, `duration_ms`.
    Playbook {
        playbook: String,
        outcome: Outcome,
        duration_ms: Option<u64>,
    },
    /// `run.finished`: `outcome`, `duration_ms`.
    Run {
        outcome: Outcome,
        duration_ms: Option<u64>,
    },
}

/// An `events.reverted`: the events it takes out of stats.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Revert {
    id: String,
    at_ms: i64,
    targets: Vec<String>,
}

/// An `events.restored`: the `events.reverted` ids it cancels.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Restore {
    at_ms: i64,
    targets: Vec<String>,
}

/// Folds `events` (oldest first) into a tally.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Tally {
    let mut tally = Tally::default();
    for event in events {
        tally.add(event);
    }
    tally
}

/// What one event contributes to a tally, reduced so that a long log stays small in memory.
#[derive(Debug, Clone)]
enum Reduced {
    Sample(Sample),
    Revert(Revert),
    Restore(Restore),
    /// A kind stats does not use, or a payload without what it needs.
    Skipped,
}

impl Reduced {
    fn of(event: &Event) -> Reduced {
        Reduced::of_parts(
            &event.id,
            &event.at,
            &event.kind,
            event.activity.as_deref(),
            &event.payload,
        )
    }

    /// The entry of one `event.json`, decoding only the fields stats reads: on a long log this
    /// is most of the cost of a cold `stats`. Any other schema goes through the full decoder.
    fn of_json(bytes: &[u8]) -> Result<Reduced, EventError> {
        match serde_json::from_slice::<StatsEnvelope>(bytes) {
            Ok(envelope) if envelope.schema == event::SCHEMA_VERSION => Ok(envelope.entry()),
            _ => event::decode(bytes).map(|event| Reduced::of(&event)),
        }
    }

    fn of_parts(
        id: &str,
        at: &str,
        kind: &str,
        activity: Option<&str>,
        payload: &impl Payload,
    ) -> Reduced {
        let at_ms = millis_of(at);
        match kind {
            kind::EVENTS_REVERTED => Reduced::Revert(Revert {
                id: id.to_string(),
                at_ms,
                targets: strings_at(payload, "targets"),
            }),
            kind::EVENTS_RESTORED => Reduced::Restore(Restore {
                at_ms,
                targets: strings_at(payload, "targets"),
            }),
            _ => match fact_of(kind, payload) {
                Some(fact) => Reduced::Sample(Sample {
                    id: id.to_string(),
                    at_ms,
                    activity: activity.map(str::to_string),
                    fact,
                }),
                None => Reduced::Skipped,
            },
        }
    }
}

/// The envelope fields stats reads; serde skips the rest without allocating.
#[derive(Deserialize)]
struct StatsEnvelope<'a> {
    schema: u32,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow)]
    activity: Option<Cow<'a, str>>,
    payload: StatsPayload,
}

/// Every payload field any stats fact reads, kept as JSON so that [`fact_of`] judges them
/// exactly as it judges a fully decoded event (a missing field and a `null` read the same).
#[derive(Deserialize, Default)]
#[serde(default)]
struct StatsPayload {
    attempt: Option<Value>,
    duration_ms: Option<Value>,
    error: Option<Value>,
    errors: Option<Value>,
    latency_ms: Option<Value>,
    model: Option<Value>,
    outcome: Option<Value>,
    playbook: Option<Value>,
    status: Option<Value>,
    targets: Option<Value>,
    url: Option<Value>,
    usage: Option<Value>,
}

impl StatsEnvelope<'_> {
    fn entry(self) -> Reduced {
        Reduced::of_parts(
            &self.id,
            &self.at,
            &self.kind,
            self.activity.as_deref(),
            &self.payload,
        )
    }
}

/// Where [`fact_of`] reads payload fields from: a decoded payload, or the few fields of it
/// that [`StatsPayload`] kept.
trait Payload {
    fn field(&self, name: &str) -> Option<&Value>;
}

impl Payload for Value {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Payload for StatsPayload {
    fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "attempt" => self.attempt.as_ref(),
            "duration_ms" => self.duration_ms.as_ref(),
            "error" => self.error.as_ref(),
            "errors" => self.errors.as_ref(),
            "latency_ms" => self.latency_ms.as_ref(),
            "model" => self.model.as_ref(),
            "outcome" => self.outcome.as_ref(),
            "playbook" => self.playbook.as_ref(),
            "status" => self.status.as_ref(),
            "targets" => self.targets.as_ref(),
            "url" => self.url.as_ref(),
            "usage" => self.usage.as_ref(),
            other => {
                // fact_of reads a field this struct does not keep: add it above, or the light
                // decoder would quietly count the event differently from a full decode.
                debug_assert!(false, "StatsPayload does not keep `{other}`");
                None
            }
        }
    }
}

impl Tally {
    /// Adds the next event of the log (events must come oldest first).
    pub fn add(&mut self, event: &Event) {
        self.apply_entry(Reduced::of(event));
    }

    fn apply_entry(&mut self, entry: Reduced) {
        self.events += 1;
        match entry {
            Reduced::Sample(sample) => self.samples.push(sample),
            Reduced::Revert(revert) => self.reverts.push(revert),
            Reduced::Restore(restore) => self.restores.push(restore),
            Reduced::Skipped => {}
        }
    }

    /// How many events have been folded, whatever their kind.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The view over the events `scope` covers, without reverted events.
    pub fn stats(&self, scope: &Scope) -> Stats {
        let reverted = self.reverted();
        let reverted = reverted.reverted_ids();
        let since_ms = scope.since.map(|since| since.as_millisecond());
        let in_time = |at_ms: i64| since_ms.is_none_or(|since| at_ms >= since);
        let mut builder = Builder::default();
        for sample in &self.samples {
            let in_scope = in_time(sample.at_ms)
                && scope
                    .activity
                    .as_deref()
                    .is_none_or(|wanted| sample.activity.as_deref() == Some(wanted));
            if !in_scope {
                continue;
            }
            if reverted.contains(sample.id.as_str()) {
                builder.excluded += 1;
            } else {
                builder.add(sample);
            }
        }
        let undo = UndoStats {
            undos: self.reverts.iter().filter(|r| in_time(r.at_ms)).count() as u64,
            redos: self.restores.iter().filter(|r| in_time(r.at_ms)).count() as u64,
        };
        builder.finish(self.events, scope, undo)
    }

    /// The undos and redos folded, as the projections and undo fold them.
    fn reverted(&self) -> RevertedSet {
        let mut reverted = RevertedSet::default();
        for revert in &self.reverts {
            reverted.revert(&revert.id, revert.targets.clone());
        }
        for restore in &self.restores {
            reverted.restore(restore.targets.iter().cloned());
        }
        reverted
    }
}

/// The stats-relevant facts of `event`, or `None` for kinds (or payloads) stats does not use.
fn fact_of(kind: &str, payload: &impl Payload) -> Option<Fact> {
    match kind {
        kind::ACTIVITY_FINISHED => Some(Fact::Activity {
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
            reasons: error_reasons(payload),
        }),
        kind::LLM_CALLED => Some(llm_fact(payload)?),
        kind::PLAYBOOK_FINISHED => Some(Fact::Playbook {
            playbook: payload.field("playbook")?.as_str()?.to_string(),
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
        }),
        kind::RUN_FINISHED => Some(Fact::Run {
            outcome: outcome_at(payload)?,
            duration_ms: u64_at(payload, "duration_ms"),
        }),
        _ => None,
    }
}

/// The payload's `outcome`, when it is a word.
fn outcome_at(payload: &impl Payload) -> Option<Outcome> {
    payload.field("outcome")?.as_str().map(Outcome::from_word)
}

fn llm_fact(payload: &impl Payload) -> Option<Fact> {
    let usage = payload.field("usage").filter(|usage| usage.is_object());
    let tokens = |name: &str| usage.and_then(|usage| u64_at(usage, name)).unwrap_or(0);
    Some(Fact::Llm {
        url: payload.field("url")?.as_str()?.to_string(),
        model: payload.field("model")?.as_str()?.to_string(),
        attempt: u64_at(payload, "attempt").unwrap_or(1),
        status: u64_at(payload, "status"),
        failed: payload.field("error").is_some_and(|error| !error.is_null()),
        latency_ms: u64_at(payload, "latency_ms"),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}

/// The `reason` of every entry of `errors`; `unknown` for an entry without one.
fn error_reasons(payload: &impl Payload) -> Vec<String> {
    let Some(errors) = payload.field("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|error| {
            error
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(UNKNOWN_REASON)
                .to_string()
        })
        .collect()
}

/// The reason a failure is counted under when the event gives none.
const UNKNOWN_REASON: &str = "unknown";

fn u64_at(value: &impl Payload, key: &str) -> Option<u64> {
    value.field(key).and_then(Value::as_u64)
}

fn strings_at(value: &impl Payload, key: &str) -> Vec<String> {
    value
        .field(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `at` in milliseconds; an unreadable time sorts before every `--since`.
fn millis_of(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>()
        .map(|at| at.as_millisecond())
        .unwrap_or(i64::MIN)
}

/// The stats view: the JSON object documented in docs/stats.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// [`STATS_SCHEMA`].
    pub schema: u32,
    /// Events in the log, whatever their kind and scope.
    pub events: u64,
    /// The `--since` instant, if any.
    pub since: Option<String>,
    /// The `--activity`, if any.
    pub activity: Option<String>,
    /// In-scope events left out because an undo reverted them.
    pub excluded_reverted: u64,
    /// Per activity, by name.
    pub activities: Vec<ActivityStats>,
    /// Per endpoint URL and model.
    pub llm: Vec<LlmStats>,
    /// Per playbook id.
    pub playbooks: Vec<PlaybookStats>,
    /// Whole runs (`run.finished`).
    pub runs: RunStats,
    pub undo: UndoStats,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityStats {
    pub activity: String,
    /// `activity.finished` events.
    pub runs: u64,
    pub succeeded: u64,
    /// Every finished activity whose outcome is not `succeeded`.
    pub failed: u64,
    /// `succeeded / runs`; null when there are no runs.
    pub success_rate: Option<f64>,
    /// Outcome -> count (`succeeded`, `failed`, `blocked`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Reason -> count, over the `errors` of activities that did not succeed.
    pub failures_by_reason: BTreeMap<String, u64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmStats {
    pub url: String,
    pub model: String,
    /// HTTP attempts (`llm.called` events).
    pub calls: u64,
    /// Attempts with `attempt > 1`.
    pub retries: u64,
    /// Attempts whose `error` is not null.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: Option<f64>,
    /// Failed attempts grouped by HTTP status; status null means no response (connection error
    /// or timeout). Sorted by status, null first.
    pub errors_by_status: Vec<StatusErrors>,
    pub latency_ms: Durations,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusErrors {
    pub status: Option<u64>,
    pub count: u64,
    /// `count / calls` of the endpoint and model.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookStats {
    pub playbook: String,
    /// `playbook.finished` events that really ran (outcome other than `dry_run`).
    pub runs: u64,
    /// `dry_run` outcomes: recorded, nothing ran.
    pub dry_runs: u64,
    /// Outcomes `failed`, `timed_out` and `killed`.
    pub failed: u64,
    /// `failed / runs`.
    pub failure_rate: Option<f64>,
    /// Outcome -> count, dry runs included.
    pub outcomes: BTreeMap<String, u64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStats {
    /// `run.finished` events.
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    pub duration_ms: Durations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoStats {
    /// `events.reverted` events (reverted or not, in the `--since` window).
    pub undos: u64,
    /// `events.restored` events.
    pub redos: u64,
}

/// A distribution of milliseconds: exact nearest-rank percentiles over every sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Durations {
    pub count: u64,
    /// Arithmetic mean; null when there are no samples.
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Durations {
    /// The summary of `samples` (in any order).
    pub fn of(mut samples: Vec<u64>) -> Durations {
        samples.sort_unstable();
        let count = samples.len() as u64;
        let mean =
            (count > 0).then(|| samples.iter().map(|&v| v as f64).sum::<f64>() / count as f64);
        Durations {
            count,
            mean,
            p50: nearest_rank(&samples, 50),
            p95: nearest_rank(&samples, 95),
            p99: nearest_rank(&samples, 99),
            max: samples.last().copied(),
        }
    }
}

/// The `percent`-th percentile of `sorted` by the nearest-rank method: the smallest sample such
/// that at least `percent`% of the samples are less than or equal to it, i.e. the sample at
/// 1-based rank `ceil(percent / 100 * n)`. Always one of the samples, never an interpolation;
/// `None` when there are none.
pub fn nearest_rank(sorted: &[u64], percent: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // Integer ceiling, so 95% of 20 is exactly rank 19 with no floating-point doubt.
    let rank = (u64::from(percent) * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize])
}

/// How many times `outcome` was counted in `outcomes` (counted by word).
fn count_of(outcomes: &BTreeMap<String, u64>, outcome: &Outcome) -> u64 {
    outcomes.get(outcome.word()).copied().unwrap_or(0)
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The group of an `activity.finished` whose envelope names no activity.
const NO_ACTIVITY: &str = "-";

/// Accumulates in-scope, unreverted samples by group, then summarises them.
#[derive(Default)]
struct Builder {
    excluded: u64,
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
    fn add(&mut self, sample: &Sample) {
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

    fn finish(self, events: u64, scope: &Scope, undo: UndoStats) -> Stats {
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
            *self.reasons.entry(UNKNOWN_REASON.to_string()).or_default() += 1;
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

/// What the tally keeps of one event, as the store reads it.
pub struct Entry(Reduced);

/// The tally is a [`Fold`] of the log (cached by [`crate::fold_cache`]).
impl Fold for Tally {
    type Item = Entry;

    fn keep(event_json: &[u8]) -> Result<Entry, EventError> {
        Reduced::of_json(event_json).map(Entry)
    }

    fn apply(&mut self, entry: Entry) -> Result<(), NeedsRebuild> {
        self.apply_entry(entry.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};
    use serde_json::json;
    use std::collections::HashMap;

    /// The facts a tally holds, by event id.
    fn sample_ids(tally: &Tally) -> HashMap<&str, &Fact> {
        tally
            .samples
            .iter()
            .map(|sample| (sample.id.as_str(), &sample.fact))
            .collect()
    }

    fn event(kind: &str, activity: Option<&str>, payload: Value) -> Event {
        let mut new = NewEvent::new(kind).payload(payload);
        new.activity = activity.map(str::to_string);
        new.seal("A <a@x>", 1, GENESIS_DIGEST)
    }

    fn at(mut event: Event, at: &str) -> Event {
        event.at = at.to_string();
        event
    }

    #[test]
    fn nearest_rank_picks_the_sample_at_rank_ceil_p_n() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 50), Some(50));
        assert_eq!(nearest_rank(&hundred, 95), Some(95));
        assert_eq!(nearest_rank(&hundred, 99), Some(99));
        assert_eq!(nearest_rank(&hundred, 100), Some(100));
        let twenty: Vec<u64> = (1..=20).map(|n| n * 10).collect();
        assert_eq!(nearest_rank(&twenty, 50), Some(100));
        assert_eq!(nearest_rank(&twenty, 95), Some(190));
        assert_eq!(nearest_rank(&twenty, 99), Some(200));
    }

    #[test]
    fn nearest_rank_of_tiny_sets() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 1), Some(7));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        assert_eq!(nearest_rank(&[1, 2], 51), Some(2));
        assert_eq!(nearest_rank(&[5], 0), Some(5));
    }

    #[test]
    fn durations_sort_before_ranking_and_report_the_mean() {
        let summary = Durations::of(vec![30, 10, 20, 40]);
        assert_eq!(summary.count, 4);
        assert_eq!(summary.mean, Some(25.0));
        assert_eq!(summary.p50, Some(20));
        assert_eq!(summary.p95, Some(40));
        assert_eq!(summary.max, Some(40));
        let empty = Durations::of(Vec::new());
        assert_eq!((empty.count, empty.mean, empty.p99), (0, None, None));
    }

    #[test]
    fn failures_are_counted_by_reason_and_unknown_without_one() {
        let events = [
            event(
                kind::ACTIVITY_FINISHED,
                Some("plan"),
                json!({"outcome": "failed", "duration_ms": 5, "errors": [{"reason": "llm_unreachable", "message": "x"}]}),
            ),
            event(
                kind::ACTIVITY_FINISHED,
                Some("plan"),
                json!({"outcome": "blocked", "duration_ms": 7, "errors": []}),
            ),
            event(
                kind::ACTIVITY_FINISHED,
                Some("plan"),
                json!({"outcome": "succeeded", "duration_ms": 9, "errors": []}),
            ),
        ];
        let stats = fold(&events).stats(&Scope::default());
        let plan = &stats.activities[0];
        assert_eq!((plan.runs, plan.succeeded, plan.failed), (3, 1, 2));
        assert_eq!(plan.failures_by_reason["llm_unreachable"], 1);
        assert_eq!(plan.failures_by_reason["unknown"], 1);
        assert_eq!(plan.duration_ms.p50, Some(7));
    }

    #[test]
    fn reverted_events_leave_stats_until_restored() {
        let finished = event(
            kind::RUN_FINISHED,
            None,
            json!({"outcome": "succeeded", "duration_ms": 10}),
        );
        let revert = event(
            kind::EVENTS_REVERTED,
            None,
            json!({"targets": [finished.id.clone()]}),
        );
        let mut tally = fold([&finished, &revert]);
        assert_eq!(sample_ids(&tally).len(), 1);
        let stats = tally.stats(&Scope::default());
        assert_eq!((stats.runs.runs, stats.excluded_reverted), (0, 1));
        assert_eq!(stats.undo.undos, 1);
        tally.add(&event(
            kind::EVENTS_RESTORED,
            None,
            json!({"targets": [revert.id.clone()]}),
        ));
        let stats = tally.stats(&Scope::default());
        assert_eq!((stats.runs.runs, stats.excluded_reverted), (1, 0));
        assert_eq!((stats.undo.undos, stats.undo.redos), (1, 1));
    }

    #[test]
    fn scope_filters_by_time_and_activity() {
        let old = at(
            event(
                kind::ACTIVITY_FINISHED,
                Some("plan"),
                json!({"outcome": "succeeded"}),
            ),
            "2026-01-01T00:00:00.000Z",
        );
        let new = at(
            event(
                kind::ACTIVITY_FINISHED,
                Some("build"),
                json!({"outcome": "succeeded"}),
            ),
            "2026-02-01T00:00:00.000Z",
        );
        let tally = fold([&old, &new]);
        let since = Scope {
            since: Some("2026-01-15T00:00:00Z".parse().unwrap()),
            activity: None,
        };
        let names: Vec<_> = tally
            .stats(&since)
            .activities
            .into_iter()
            .map(|a| a.activity)
            .collect();
        assert_eq!(names, ["build"]);
        let plan = Scope {
            since: None,
            activity: Some("plan".into()),
        };
        let names: Vec<_> = tally
            .stats(&plan)
            .activities
            .into_iter()
            .map(|a| a.activity)
            .collect();
        assert_eq!(names, ["plan"]);
    }

    #[test]
    fn unknown_kinds_and_incomplete_payloads_are_skipped() {
        let events = [
            event("note.added", None, json!({"outcome": "succeeded"})),
            event(kind::PLAYBOOK_FINISHED, None, json!({"outcome": "failed"})),
        ];
        let tally = fold(&events);
        assert_eq!(tally.events(), 2);
        assert!(sample_ids(&tally).is_empty());
    }

    #[test]
    fn llm_errors_group_by_status_with_null_for_no_response() {
        let call = |attempt: u64, status: Value, error: Value| {
            event(
                kind::LLM_CALLED,
                Some("plan"),
                json!({"url": "u", "model": "m", "attempt": attempt, "status": status, "error": error,
                       "latency_ms": 10, "usage": null}),
            )
        };
        let events = [
            call(1, Value::Null, json!("timed out")),
            call(2, json!(429), json!("HTTP 429")),
            call(3, json!(200), Value::Null),
        ];
        let stats = fold(&events).stats(&Scope::default());
        let llm = &stats.llm[0];
        assert_eq!((llm.calls, llm.retries, llm.errors), (3, 2, 2));
        let statuses: Vec<_> = llm.errors_by_status.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [None, Some(429)]);
        assert_eq!(llm.prompt_tokens, 0);
    }

    #[test]
    fn the_compact_cache_shape_gives_back_the_same_stats_and_the_light_decoder_agrees() {
        let events = [
            event(
                kind::ACTIVITY_FINISHED,
                Some("plan"),
                json!({"outcome": "failed", "duration_ms": 5, "errors": [{"reason": "llm_unreachable"}, {}]}),
            ),
            event(
                kind::LLM_CALLED,
                Some("plan"),
                json!({"url": "http://127.0.0.1:1/v1/chat/completions", "model": "m", "attempt": 2,
                       "status": 429, "error": "HTTP 429", "latency_ms": 31,
                       "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
            ),
            event(
                kind::PLAYBOOK_FINISHED,
                None,
                json!({"playbook": "repo.inventory", "outcome": "succeeded", "duration_ms": 12}),
            ),
            event(
                kind::RUN_FINISHED,
                None,
                json!({"outcome": "succeeded", "duration_ms": 80}),
            ),
            event(kind::DECISION_MADE, Some("plan"), json!({"decision": {}})),
        ];
        let mut undo = event(kind::EVENTS_REVERTED, None, json!({}));
        undo.payload = json!({"targets": [events[2].id.clone()]});
        let mut tally = fold(events.iter().chain([&undo]));
        let scope = Scope::default();
        let json = serde_json::to_string(&tally).unwrap();
        let back: Tally = serde_json::from_str(&json).unwrap();
        assert_eq!(back.stats(&scope), tally.stats(&scope));
        assert!(json.len() < 700, "compact: {json}");

        // Folding through the light decoder gives the same tally as through whole events.
        let mut light = Tally::default();
        for event in events.iter().chain([&undo]) {
            light.apply_entry(Reduced::of_json(&event.canonical_json()).unwrap());
        }
        assert_eq!(light.stats(&scope), tally.stats(&scope));
        tally.add(&events[0]);
        assert_ne!(light.stats(&scope), tally.stats(&scope));

        // A file whose rows name strings it does not hold is refused, not misread.
        let broken = json.replace("\"strings\":[", "\"strings\":[],\"unused\":[");
        assert!(serde_json::from_str::<Tally>(&broken).is_err());
    }
}
