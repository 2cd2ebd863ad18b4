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

/// The fewest playbooks a model's re-ranking leaves offered (when the limit allows): a
/// model that picks one name must not hide every alternative from the decision.
pub const MIN_RERANKED: usize = 3;
/// How many times the limit the lexical shortlist a model re-ranks holds.
pub const SHORTLIST_FACTOR: usize = 3;

/// The name of the index cache file inside the cache directory.
pub const CACHE_FILE: &str = "rank-index.json";
/// Bumped whenever the index's form or its tokenizer changes, so older caches are rebuilt.
const FORMAT_VERSION: u32 = 2;

/// Words too common to tell two playbooks apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "with", "your",
];

/// The ranking index of a registry's playbooks: inverted, so a query touches only the
/// playbooks that hold one of its terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Playbook ids, sorted; a playbook is its position here.
    ids: Vec<String>,
    /// Each playbook's length in terms, by position.
    lengths: Vec<u32>,
    /// Term → (playbook, how often the term occurs in it), by playbook. Name words count
    /// [`NAME_WEIGHT`] times.
    postings: BTreeMap<String, Vec<(u32, u32)>>,
    /// The mean playbook length, in terms.
    average_length: f64,
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
    /// How a model re-ranked the lexical list, when it was asked to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<Rerank>,
}

/// A model's re-ranking of the lexical shortlist, as `activity.started` records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rerank {
    /// The lexical shortlist the model chose from, best first, with its scores.
    pub shortlist: Vec<Offer>,
    /// The names the model answered, in its order, exactly as it wrote them.
    pub picked: Vec<String>,
    /// Names it answered that are not on the shortlist: dropped, never offered.
    pub dropped: Vec<String>,
    /// How many offered playbooks were added in lexical order because the model picked too few.
    pub padded: usize,
    /// Why the model's answer was not used; the lexical top `limit` is offered instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Selection {
    /// The offered ids, best first.
    pub fn ids(&self) -> Vec<&str> {
        self.playbooks
            .iter()
            .map(|offer| offer.id.as_str())
            .collect()
    }

    /// Whether this is a ranked shortlist longer than the limit, for a model to re-rank.
    pub fn is_shortlist(&self) -> bool {
        self.ranked && self.playbooks.len() > self.limit
    }

    /// The offer after a model `picked` from this shortlist: its known names in its order,
    /// each once, at most `limit`; names not on the shortlist dropped; padded in lexical order
    /// to [`MIN_RERANKED`] (or the limit, when lower) when it picked fewer.
    pub fn reranked(&self, picked: &[String]) -> Selection {
        let on_shortlist = |name: &str| self.playbooks.iter().find(|offer| offer.id == name);
        let mut offered: Vec<Offer> = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        for name in picked {
            match on_shortlist(name) {
                Some(offer) if !offered.contains(offer) && offered.len() < self.limit => {
                    offered.push(offer.clone());
                }
                Some(_) => {}
                None if !dropped.contains(name) => dropped.push(name.clone()),
                None => {}
            }
        }
        let least = MIN_RERANKED.min(self.limit);
        let mut padded = 0;
        for offer in &self.playbooks {
            if offered.len() >= least {
                break;
            }
            if !offered.contains(offer) {
                offered.push(offer.clone());
                padded += 1;
            }
        }
        self.settled(
            offered,
            Rerank {
                picked: picked.to_vec(),
                dropped,
                padded,
                ..Rerank::default()
            },
        )
    }

    /// The offer when the model could not re-rank this shortlist: its lexical top `limit`.
    pub fn rerank_failed(&self, reason: String) -> Selection {
        let offered = self.playbooks.iter().take(self.limit).cloned().collect();
        self.settled(
            offered,
            Rerank {
                failed: Some(reason),
                ..Rerank::default()
            },
        )
    }

    fn settled(&self, playbooks: Vec<Offer>, rerank: Rerank) -> Selection {
        Selection {
            candidates: self.candidates,
            limit: self.limit,
            ranked: true,
            playbooks,
            rerank: Some(Rerank {
                shortlist: self.playbooks.clone(),
                ..rerank
            }),
        }
    }
}

impl Index {
    /// The index of `playbooks`.
    pub fn build<'a>(playbooks: impl IntoIterator<Item = &'a Playbook>) -> Index {
        let mut documents: Vec<(&str, BTreeMap<String, u32>)> = playbooks
            .into_iter()
            .map(|playbook| (playbook.id.as_str(), terms_of(playbook)))
            .collect();
        documents.sort_by_key(|(id, _)| *id);
        documents.dedup_by(|(a, _), (b, _)| a == b);
        let mut postings: BTreeMap<String, Vec<(u32, u32)>> = BTreeMap::new();
        let mut lengths = Vec::with_capacity(documents.len());
        for (position, (_, terms)) in (0u32..).zip(&documents) {
            lengths.push(terms.values().sum());
            for (term, count) in terms {
                postings
                    .entry(term.clone())
                    .or_default()
                    .push((position, *count));
            }
        }
        let total: u64 = lengths.iter().map(|&length| u64::from(length)).sum();
        let average_length = if lengths.is_empty() {
            0.0
        } else {
            total as f64 / lengths.len() as f64
        };
        Index {
            ids: documents.iter().map(|(id, _)| id.to_string()).collect(),
            lengths,
            postings,
            average_length,
        }
    }

    /// How many playbooks it indexes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it indexes no playbook.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every id in `candidates` with its score against `query`, best first; equal scores by id.
    /// A candidate the index does not hold scores 0.
    pub fn rank(&self, query: &str, candidates: &[&str]) -> Vec<(String, f64)> {
        self.top(query, candidates, candidates.len())
    }

    /// The `limit` best of `candidates` against `query`, as [`Index::rank`] orders them.
    pub fn top(&self, query: &str, candidates: &[&str], limit: usize) -> Vec<(String, f64)> {
        let scores = self.scores(query);
        let wanted = self.positions_of(candidates);
        let mut best = Best::new(limit);
        for (position, score) in scores.iter().enumerate() {
            if let Some(score) = *score
                && wanted[position]
            {
                best.offer(self.ids[position].as_str(), score);
            }
        }
        if best.len() < limit {
            // Too few hold a word of the query: the rest, in id order, score 0.
            for id in candidates {
                let scored = self
                    .position(id)
                    .is_some_and(|position| scores[position as usize].is_some());
                if !scored {
                    best.offer(id, 0.0);
                }
            }
        }
        best.into_vec()
    }

    /// Which of the index's playbooks are among `candidates`, by position. Candidates in id
    /// order (as a registry lists them) are matched in one walk beside the sorted ids, without
    /// hashing every id on every query.
    fn positions_of(&self, candidates: &[&str]) -> Vec<bool> {
        let mut wanted = vec![false; self.ids.len()];
        if candidates.is_sorted() {
            let mut ids = self.ids.iter().enumerate().peekable();
            for candidate in candidates {
                while let Some((position, id)) = ids.peek() {
                    match id.as_str().cmp(candidate) {
                        std::cmp::Ordering::Less => {
                            ids.next();
                        }
                        std::cmp::Ordering::Equal => {
                            wanted[*position] = true;
                            ids.next();
                            break;
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                }
            }
        } else {
            for candidate in candidates {
                if let Some(position) = self.position(candidate) {
                    wanted[position as usize] = true;
                }
            }
        }
        wanted
    }

    /// The BM25 score of every playbook that holds a term of `query`, by position (`None`: it
    /// holds none).
    fn scores(&self, query: &str) -> Vec<Option<f64>> {
        let count = self.ids.len() as f64;
        let terms: BTreeSet<String> = tokens(query).collect();
        let mut scores: Vec<Option<f64>> = vec![None; self.ids.len()];
        for term in &terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let holding = postings.len() as f64;
            let idf = ((count - holding + 0.5) / (holding + 0.5) + 1.0).ln();
            for &(position, frequency) in postings {
                let length = self.lengths.get(position as usize).copied().unwrap_or(0);
                let length_ratio = if self.average_length > 0.0 {
                    f64::from(length) / self.average_length
                } else {
                    1.0
                };
                let frequency = f64::from(frequency);
                let score =
                    idf * frequency * (K1 + 1.0) / (frequency + K1 * (1.0 - B + B * length_ratio));
                if let Some(total) = scores.get_mut(position as usize) {
                    *total = Some(total.unwrap_or(0.0) + score);
                }
            }
        }
        scores
    }

    fn position(&self, id: &str) -> Option<u32> {
        let position = self
            .ids
            .binary_search_by(|other| other.as_str().cmp(id))
            .ok()?;
        u32::try_from(position).ok()
    }
}

/// The best few (id, score), kept sorted: higher scores first, equal scores by id.
struct Best<'a> {
    limit: usize,
    kept: Vec<(&'a str, f64)>,
}

impl<'a> Best<'a> {
    fn new(limit: usize) -> Best<'a> {
        Best {
            limit,
            kept: Vec::with_capacity(limit.saturating_add(1).min(64)),
        }
    }

    fn len(&self) -> usize {
        self.kept.len()
    }

    fn offer(&mut self, id: &'a str, score: f64) {
        let place = self.kept.partition_point(|(other, other_score)| {
            *other_score > score || (*other_score == score && *other < id)
        });
        if place < self.limit {
            self.kept.insert(place, (id, score));
            self.kept.truncate(self.limit);
        }
    }

    fn into_vec(self) -> Vec<(String, f64)> {
        self.kept
            .into_iter()
            .map(|(id, score)| (id.to_string(), score))
            .collect()
    }
}

/// Term → how often it occurs in `playbook`'s id and domain (counted [`NAME_WEIGHT`] times),
/// description and summary.
fn terms_of(playbook: &Playbook) -> BTreeMap<String, u32> {
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
    terms
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
    select_keeping(index, candidates, query, limit, limit)
}

/// Like [`select`], but ranks and keeps the best `keep` (at least `limit`) when there are more
/// candidates than `limit`: the shortlist a model re-ranks down to `limit`.
pub fn select_keeping(
    index: &Index,
    candidates: &[&str],
    query: &str,
    limit: usize,
    keep: usize,
) -> Selection {
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
            rerank: None,
        };
    }
    let playbooks = index
        .top(query, candidates, keep.max(limit))
        .into_iter()
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
        rerank: None,
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
            undo_last: false,
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
    fn candidates_in_any_order_rank_alike_and_only_candidates_are_offered() {
        let playbooks = sample();
        let index = Index::build(&playbooks);
        let mut ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        ids.sort();
        let sorted = index.rank("deploy a service", &ids);
        ids.reverse();
        assert_eq!(index.rank("deploy a service", &ids), sorted);
        // Two of four, with an id the index does not hold, sorted and not.
        let some = ["fly.app-deploy", "not.indexed", "railway.service-deploy"];
        let ranked = index.rank("deploy a service", &some);
        let names: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            names,
            ["railway.service-deploy", "fly.app-deploy", "not.indexed"]
        );
        let unsorted = ["railway.service-deploy", "not.indexed", "fly.app-deploy"];
        assert_eq!(index.rank("deploy a service", &unsorted), ranked);
    }

    #[test]
    fn the_index_round_trips_through_json() {
        let index = Index::build(&sample());
        let text = serde_json::to_string(&index).unwrap();
        assert_eq!(serde_json::from_str::<Index>(&text).unwrap(), index);
    }

    fn shortlist(limit: usize) -> Selection {
        let playbooks = sample();
        let index = Index::build(&playbooks);
        let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        select_keeping(&index, &ids, "deploy a service to railway", limit, 4)
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_shortlist_keeps_more_than_the_limit_and_records_the_limit() {
        let list = shortlist(1);
        assert_eq!(list.limit, 1);
        assert_eq!(list.playbooks.len(), 4);
        assert!(list.is_shortlist());
        assert!(!select(&Index::build(&sample()), &["a"], "x", 1).is_shortlist());
    }

    #[test]
    fn a_rerank_keeps_known_names_in_the_model_s_order_and_drops_unknown_ones() {
        let list = shortlist(2);
        let picked = names(&[
            "fly.app-deploy",
            "no.such",
            "fly.app-deploy",
            "pytest.job-add",
        ]);
        let offered = list.reranked(&picked);
        assert_eq!(offered.ids(), ["fly.app-deploy", "pytest.job-add"]);
        let rerank = offered.rerank.as_ref().unwrap();
        assert_eq!(rerank.dropped, ["no.such"]);
        assert_eq!(rerank.picked, picked);
        assert_eq!(rerank.padded, 0);
        assert_eq!(rerank.shortlist, list.playbooks);
        assert!(
            !offered.is_shortlist(),
            "a re-ranked offer is not re-ranked again"
        );
        // The lexical score stays with each playbook.
        let fly = list.playbooks.iter().find(|o| o.id == "fly.app-deploy");
        assert_eq!(offered.playbooks.first(), fly);
    }

    #[test]
    fn a_rerank_with_too_few_known_names_is_padded_in_lexical_order() {
        let list = shortlist(3);
        let offered = list.reranked(&names(&["pytest.job-add", "made.up"]));
        let lexical = list.ids();
        let padding: Vec<&str> = lexical
            .iter()
            .copied()
            .filter(|id| *id != "pytest.job-add")
            .take(2)
            .collect();
        assert_eq!(offered.ids()[0], "pytest.job-add");
        assert_eq!(offered.ids()[1..], padding[..]);
        assert_eq!(offered.rerank.as_ref().unwrap().padded, 2);
        // Nothing known at all: the lexical best, padded.
        assert_eq!(list.reranked(&[]).ids(), lexical[..3]);
    }

    #[test]
    fn a_failed_rerank_offers_the_lexical_top_limit_and_says_why() {
        let list = shortlist(2);
        let offered = list.rerank_failed("HTTP 500".into());
        assert_eq!(offered.ids(), list.ids()[..2]);
        let rerank = offered.rerank.unwrap();
        assert_eq!(rerank.failed.as_deref(), Some("HTTP 500"));
        assert!(rerank.picked.is_empty());
    }
}
