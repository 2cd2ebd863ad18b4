//! Which playbooks to offer a decision when an activity may use more than fit: a BM25 ranking
//! over each playbook's id, domain, description and (for a runbook) summary, against the
//! activity's input, the service's specification and the activity itself.
//!
//! Deterministic and offline: the same registry and the same query offer the same list, ties
//! broken by id, so a replay sees what the run saw. The index is plain data (term counts), built
//! from the registry's content and cached as JSON keyed by the registry's content hash
//! ([`cached`]): it is never stale, and deleting it costs only the time to build it again.
//! Hundreds of playbooks need no search engine: a few thousand terms fit in a map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Playbook, Registry};

/// BM25's term-frequency saturation: the usual value.
const K1: f64 = 1.2;
/// BM25's length normalisation: the usual value.
const B: f64 = 0.75;
/// How many times an id's and a domain's words count: a playbook's name says what it is for
/// more surely than a word of its description.
const NAME_WEIGHT: u32 = 2;

/// The name of the index cache file inside the cache directory.
pub const CACHE_FILE: &str = "rank-index.json";
/// Bumped whenever the index's form or its tokenizer changes, so older caches are rebuilt.
const FORMAT_VERSION: u32 = 1;

/// Words too common to tell two playbooks apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "with", "your",
];

/// The ranking index of a registry's playbooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// One per playbook, by id.
    documents: BTreeMap<String, Document>,
    /// How many documents hold each term.
    document_frequency: BTreeMap<String, u32>,
    /// The mean document length, in terms.
    average_length: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Document {
    /// Term → how often it occurs (name words counted [`NAME_WEIGHT`] times).
    terms: BTreeMap<String, u32>,
    /// The document's length in terms.
    length: u32,
}

/// One playbook offered, with its score (`None` when every allowed playbook is offered and
/// nothing was ranked).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The playbook's id.
    pub id: String,
    /// Its BM25 score against the query, rounded to three decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// What a decision is offered, and why: recorded in `activity.started`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Selection {
    /// How many playbooks the activity may use.
    pub candidates: usize,
    /// The most that may be offered (`spectra.playbooks.offered`).
    pub limit: usize,
    /// Whether they were ranked (more candidates than the limit).
    pub ranked: bool,
    /// What is offered, best first.
    pub playbooks: Vec<Offer>,
}

impl Selection {
    /// The offered ids, best first.
    pub fn ids(&self) -> Vec<&str> {
        self.playbooks
            .iter()
            .map(|offer| offer.id.as_str())
            .collect()
    }
}

impl Index {
    /// The index of `playbooks`.
    pub fn build<'a>(playbooks: impl IntoIterator<Item = &'a Playbook>) -> Index {
        let mut documents = BTreeMap::new();
        let mut document_frequency: BTreeMap<String, u32> = BTreeMap::new();
        for playbook in playbooks {
            let document = Document::of(playbook);
            for term in document.terms.keys() {
                *document_frequency.entry(term.clone()).or_default() += 1;
            }
            documents.insert(playbook.id.clone(), document);
        }
        let total: u64 = documents.values().map(|d| u64::from(d.length)).sum();
        let average_length = if documents.is_empty() {
            0.0
        } else {
            total as f64 / documents.len() as f64
        };
        Index {
            documents,
            document_frequency,
            average_length,
        }
    }

    /// How many playbooks it indexes.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether it indexes no playbook.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Every id in `candidates` with its score against `query`, best first; equal scores by id.
    /// A candidate the index does not hold scores 0.
    pub fn rank(&self, query: &str, candidates: &[&str]) -> Vec<(String, f64)> {
        let terms: BTreeSet<String> = tokens(query).collect();
        let mut scored: Vec<(String, f64)> = candidates
            .iter()
            .map(|id| (id.to_string(), self.score(id, &terms)))
            .collect();
        scored.sort_by(|(a_id, a), (b_id, b)| b.total_cmp(a).then_with(|| a_id.cmp(b_id)));
        scored
    }

    fn score(&self, id: &str, terms: &BTreeSet<String>) -> f64 {
        let Some(document) = self.documents.get(id) else {
            return 0.0;
        };
        let count = self.documents.len() as f64;
        let length_ratio = if self.average_length > 0.0 {
            f64::from(document.length) / self.average_length
        } else {
            1.0
        };
        terms
            .iter()
            .filter_map(|term| {
                let frequency = f64::from(*document.terms.get(term)?);
                let holding = f64::from(self.document_frequency.get(term).copied().unwrap_or(0));
                let idf = ((count - holding + 0.5) / (holding + 0.5) + 1.0).ln();
                Some(idf * frequency * (K1 + 1.0) / (frequency + K1 * (1.0 - B + B * length_ratio)))
            })
            // From +0.0: `sum` starts at -0.0, which would sort below a candidate the index
            // does not hold.
            .fold(0.0, |total, score| total + score)
    }
}

impl Document {
    fn of(playbook: &Playbook) -> Document {
        let mut terms: BTreeMap<String, u32> = BTreeMap::new();
        let mut add = |text: &str, weight: u32| {
            for term in tokens(text) {
                *terms.entry(term).or_default() += weight;
            }
        };
        add(&playbook.id, NAME_WEIGHT);
        add(&playbook.domain, NAME_WEIGHT);
        add(&playbook.description, 1);
        if let Some(index) = &playbook.index {
            add(&index.summary, 1);
        }
        let length = terms.values().sum();
        Document { terms, length }
    }
}

/// The terms of `text`: lowercase words of letters and digits, without stop words and
/// one-letter words, with a plural or `-ing`/`-ed` ending taken off so `deploying` and
/// `deploys` find `deploy`.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() > 1)
        .map(str::to_lowercase)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
        .map(|word| stem(&word).to_string())
}

fn stem(word: &str) -> &str {
    for (suffix, keep) in [("ing", 4), ("ed", 4), ("s", 3)] {
        if let Some(stem) = word.strip_suffix(suffix)
            && stem.len() >= keep
            && !stem.ends_with('s')
        {
            return stem;
        }
    }
    word
}

/// Chooses what to offer out of `candidates` (the playbooks an activity may use, by id): all
/// of them, unranked, when there are at most `limit`; otherwise the `limit` best against
/// `query`.
pub fn select(index: &Index, candidates: &[&str], query: &str, limit: usize) -> Selection {
    if candidates.len() <= limit {
        return Selection {
            candidates: candidates.len(),
            limit,
            ranked: false,
            playbooks: candidates
                .iter()
                .map(|id| Offer {
                    id: id.to_string(),
                    score: None,
                })
                .collect(),
        };
    }
    let playbooks = index
        .rank(query, candidates)
        .into_iter()
        .take(limit)
        .map(|(id, score)| Offer {
            id,
            score: Some((score * 1000.0).round() / 1000.0),
        })
        .collect();
    Selection {
        candidates: candidates.len(),
        limit,
        ranked: true,
        playbooks,
    }
}

#[derive(Serialize)]
struct CacheRef<'a> {
    key: &'a str,
    index: &'a Index,
}

#[derive(Deserialize)]
struct CacheFile {
    key: String,
    index: Index,
}

/// The index of `registry`'s playbooks: read from `cache_dir` when one is given and it holds
/// the index of this very registry content, otherwise built (and saved there; a save that
/// fails costs only the time to build it next time).
pub fn cached(registry: &Registry, cache_dir: Option<&Path>) -> Index {
    let Some(cache_dir) = cache_dir else {
        return Index::build(registry.playbooks());
    };
    let path = cache_dir.join(CACHE_FILE);
    let key = format!("{}-{FORMAT_VERSION}", registry.content_key());
    let from_cache = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
        .filter(|file| file.key == key);
    if let Some(file) = from_cache {
        return file.index;
    }
    let index = Index::build(registry.playbooks());
    crate::tip_cache::write_json(
        &path,
        &CacheRef {
            key: &key,
            index: &index,
        },
    );
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Layer, Origin, RunbookIndex};

    fn playbook(id: &str, domain: &str, description: &str, summary: &str) -> Playbook {
        Playbook {
            id: id.into(),
            activities: vec!["deploy".into()],
            domain: domain.into(),
            description: description.into(),
            runbook: Some("steps".into()),
            run: None,
            inputs: crate::registry::playbook::no_inputs(),
            undo: None,
            reversible: true,
            idempotent: true,
            undo_unfinished: false,
            timeout: 1.0,
            configured: None,
            index: Some(RunbookIndex {
                summary: summary.into(),
                ..RunbookIndex::default()
            }),
            origin: Origin {
                file: format!("{id}.md"),
                layer: Layer::Repository,
            },
        }
    }

    fn sample() -> Vec<Playbook> {
        vec![
            playbook(
                "railway.service-deploy",
                "railway",
                "Deploy a service to the Railway platform.",
                "Link, set variables, railway up.",
            ),
            playbook(
                "github.deploy-key-rotate",
                "github",
                "Rotate a GitHub deploy key.",
                "New key, add it, remove the old one.",
            ),
            playbook(
                "pytest.job-add",
                "ci",
                "Add a pytest job to CI.",
                "A workflow running pytest on each push.",
            ),
            playbook(
                "fly.app-deploy",
                "fly",
                "Deploy an app to Fly.io.",
                "fly launch, fly deploy.",
            ),
        ]
    }

    #[test]
    fn tokens_are_lowercase_stemmed_words_without_stop_words() {
        let words: Vec<String> = tokens("Deploying the Services to Railway, v2!").collect();
        assert_eq!(words, ["deploy", "service", "railway", "v2"]);
        let words: Vec<String> = tokens("railway.service-deploy").collect();
        assert_eq!(words, ["railway", "service", "deploy"]);
    }

    #[test]
    fn the_playbook_matching_rare_words_ranks_first() {
        let playbooks = sample();
        let index = Index::build(&playbooks);
        let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        let ranked = index.rank("Deploy service to Railway platform", &ids);
        assert_eq!(ranked[0].0, "railway.service-deploy", "{ranked:?}");
        assert!(ranked[0].1 > ranked[1].1);
        let ranked = index.rank("add a pytest job", &ids);
        assert_eq!(ranked[0].0, "pytest.job-add", "{ranked:?}");
    }

    #[test]
    fn equal_scores_are_ordered_by_id_and_unknown_ids_score_zero() {
        let playbooks = sample();
        let index = Index::build(&playbooks);
        let ranked = index.rank("zebra quartz", &["z.none", "pytest.job-add", "a.none"]);
        let ids: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.none", "pytest.job-add", "z.none"]);
        assert!(ranked.iter().all(|(_, score)| *score == 0.0));
    }

    #[test]
    fn select_offers_everything_unranked_within_the_limit_and_the_best_beyond_it() {
        let playbooks = sample();
        let index = Index::build(&playbooks);
        let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        let all = select(&index, &ids, "deploy", 5);
        assert!(!all.ranked);
        assert_eq!(all.ids(), ids);
        assert!(all.playbooks.iter().all(|offer| offer.score.is_none()));

        let two = select(&index, &ids, "deploy to railway", 2);
        assert!(two.ranked);
        assert_eq!(two.candidates, 4);
        assert_eq!(two.playbooks.len(), 2);
        assert_eq!(two.playbooks[0].id, "railway.service-deploy");
        assert_eq!(
            two,
            select(&index, &ids, "deploy to railway", 2),
            "deterministic"
        );
    }

    #[test]
    fn the_index_round_trips_through_json() {
        let index = Index::build(&sample());
        let text = serde_json::to_string(&index).unwrap();
        assert_eq!(serde_json::from_str::<Index>(&text).unwrap(), index);
    }
}
