//! The shape a [`Tally`] is cached in: every string once, samples as short rows.
//!
//! A tally keeps one sample per event it uses, and most samples repeat the same few strings
//! (activities, endpoints, models, playbooks, outcomes). Written as plain structs, the cache of
//! a large log was big enough that writing and reading it was a large part of a cold or warm
//! `stats` (figures in docs/performance.md). Here each distinct string is stored once in
//! `strings` and rows refer to it by index. A file that does not fit (an index out of range) is
//! rejected as a whole, and the cache is then rebuilt from the log.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Tally;
use super::reduce::{Fact, Restore, Revert, Sample};
use crate::event::Outcome;

/// A [`Tally`] as cached: its strings once, its samples as rows indexing them.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredTally {
    events: u64,
    strings: Vec<String>,
    samples: Vec<StoredSample>,
    reverts: Vec<Revert>,
    restores: Vec<Restore>,
}

/// `[id, at_ms, activity, fact]`.
#[derive(Serialize, Deserialize)]
struct StoredSample(String, i64, Option<u32>, StoredFact);

/// A [`Fact`] with its strings as indexes into `strings`, fields in declaration order.
#[derive(Serialize, Deserialize)]
enum StoredFact {
    #[serde(rename = "a")]
    Activity(u32, Option<u64>, Vec<u32>),
    #[serde(rename = "l")]
    Llm(u32, u32, u64, Option<u64>, bool, Option<u64>, u64, u64),
    #[serde(rename = "p")]
    Playbook(u32, u32, Option<u64>),
    #[serde(rename = "r")]
    Run(u32, Option<u64>),
}

impl From<Tally> for StoredTally {
    fn from(tally: Tally) -> StoredTally {
        let mut strings = Interner::default();
        let samples = tally
            .samples
            .into_iter()
            .map(|sample| {
                let activity = sample.activity.map(|activity| strings.index(activity));
                let fact = strings.fact(sample.fact);
                StoredSample(sample.id, sample.at_ms, activity, fact)
            })
            .collect();
        StoredTally {
            events: tally.events,
            strings: strings.strings,
            samples,
            reverts: tally.reverts,
            restores: tally.restores,
        }
    }
}

impl TryFrom<StoredTally> for Tally {
    type Error = String;

    fn try_from(stored: StoredTally) -> Result<Tally, String> {
        let strings = &stored.strings;
        let string = |index: u32| -> Result<String, String> {
            strings
                .get(index as usize)
                .cloned()
                .ok_or_else(|| format!("string {index} is out of range"))
        };
        let samples = stored
            .samples
            .into_iter()
            .map(|StoredSample(id, at_ms, activity, fact)| {
                Ok(Sample {
                    id,
                    at_ms,
                    activity: activity.map(string).transpose()?,
                    fact: fact_of(fact, &string)?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Tally {
            events: stored.events,
            samples,
            reverts: stored.reverts,
            restores: stored.restores,
        })
    }
}

fn fact_of(
    fact: StoredFact,
    string: &impl Fn(u32) -> Result<String, String>,
) -> Result<Fact, String> {
    Ok(match fact {
        StoredFact::Activity(outcome, duration_ms, reasons) => Fact::Activity {
            outcome: Outcome::from_word(&string(outcome)?),
            duration_ms,
            reasons: reasons.into_iter().map(string).collect::<Result<_, _>>()?,
        },
        StoredFact::Llm(url, model, attempt, status, failed, latency_ms, prompt, completion) => {
            Fact::Llm {
                url: string(url)?,
                model: string(model)?,
                attempt,
                status,
                failed,
                latency_ms,
                prompt_tokens: prompt,
                completion_tokens: completion,
            }
        }
        StoredFact::Playbook(playbook, outcome, duration_ms) => Fact::Playbook {
            playbook: string(playbook)?,
            outcome: Outcome::from_word(&string(outcome)?),
            duration_ms,
        },
        StoredFact::Run(outcome, duration_ms) => Fact::Run {
            outcome: Outcome::from_word(&string(outcome)?),
            duration_ms,
        },
    })
}

/// Gives each distinct string one index.
#[derive(Default)]
struct Interner {
    indexes: HashMap<String, u32>,
    strings: Vec<String>,
}

impl Interner {
    fn index(&mut self, string: String) -> u32 {
        if let Some(&index) = self.indexes.get(&string) {
            return index;
        }
        let index = u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct strings");
        self.strings.push(string.clone());
        self.indexes.insert(string, index);
        index
    }

    fn fact(&mut self, fact: Fact) -> StoredFact {
        match fact {
            Fact::Activity {
                outcome,
                duration_ms,
                reasons,
            } => StoredFact::Activity(
                self.index(outcome.word().to_string()),
                duration_ms,
                reasons
                    .into_iter()
                    .map(|reason| self.index(reason))
                    .collect(),
            ),
            Fact::Llm {
                url,
                model,
                attempt,
                status,
                failed,
                latency_ms,
                prompt_tokens,
                completion_tokens,
            } => StoredFact::Llm(
                self.index(url),
                self.index(model),
                attempt,
                status,
                failed,
                latency_ms,
                prompt_tokens,
                completion_tokens,
            ),
            Fact::Playbook {
                playbook,
                outcome,
                duration_ms,
            } => StoredFact::Playbook(
                self.index(playbook),
                self.index(outcome.word().to_string()),
                duration_ms,
            ),
            Fact::Run {
                outcome,
                duration_ms,
            } => StoredFact::Run(self.index(outcome.word().to_string()), duration_ms),
        }
    }
}
