//! What an activity knows before it asks the model, fitted to its token budget.
//!
//! The context is a list of whole items: the service's specification, the manifests of earlier
//! activities for the service, the playbooks the activity is offered (all it may use, or the
//! best [`rank`]ed of them when there are more than `spectra.playbooks.offered`, optionally
//! re-ranked by a model from a longer lexical shortlist; a runbook's steps only once the
//! decision chose it), the
//! last entries of its own history, and an inventory of the repository (of the files git
//! tracks, when it tracks any), and the services that already have a specification in the work
//! tree. When the prompt would not fit, whole items are dropped, least relevant first (oldest
//! history, then runbooks, then the earliest manifests, then the inventory, then the existing
//! services, then the specification). A string is never cut in the middle: a half sentence
//! misleads a model more than a missing one.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::llm::budget::estimate_prompt_tokens;
use crate::projection::manifests::{CorruptIndex, ManifestIndex, RECENT_HISTORY};
use crate::registry::rank::{self, Selection};
use crate::registry::{Activity, Playbook, PlaybookKind, Registry};

/// How many history entries an activity sees at most.
const HISTORY_ENTRIES: usize = 5;
const _: () = assert!(
    HISTORY_ENTRIES <= RECENT_HISTORY,
    "the index keeps what context shows"
);

/// The gathered context of one activity.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// (path, text) of the service's specification, when the repository has one.
    pub specification: Option<(String, String)>,
    /// (activity, compact JSON of its manifest), in activity order.
    pub manifests: Vec<(String, String)>,
    /// (playbook id, text with runbook, text without).
    pub playbooks: Vec<(String, String, String)>,
    /// How many playbooks, from the last, are shown without their runbook to fit.
    pub runbooks_dropped: usize,
    /// Oldest first.
    pub history: Vec<String>,
    /// The repository inventory as compact JSON, when it could be taken.
    pub repository: Option<String>,
    /// One line per service with a specification in the work tree (`- name: purpose`).
    pub services: Vec<String>,
    /// What was left out to fit, in the order it was dropped.
    pub dropped: Vec<String>,
    /// Which playbooks are offered, and their scores when they were ranked.
    pub offered: Selection,
}

/// How many playbooks a decision may be offered, and where the ranking index is cached.
#[derive(Debug, Clone, Copy)]
pub struct Offering<'a> {
    /// `spectra.playbooks.offered`.
    pub limit: usize,
    /// How many the lexical ranking keeps when there are more than `limit`: `limit`, or a
    /// longer shortlist when a model re-ranks it down to `limit` before the decision.
    pub shortlist: usize,
    /// The cache directory under the git dir, for the ranking index.
    pub cache_dir: Option<&'a Path>,
}

/// What `activity` is asked, as the ranking reads it: everything the decision is about.
pub struct Query<'a> {
    /// The activity's input.
    pub input: &'a str,
    /// The service, when one is chosen.
    pub service: Option<&'a str>,
}

/// Gathers everything `activity` may see.
pub fn gather(
    repo: &gix::Repository,
    root: &Path,
    projection: &ManifestIndex,
    registry: &Registry,
    activity: &Activity,
    query: &Query<'_>,
    offering: Offering<'_>,
) -> Result<Context, CorruptIndex> {
    let mut context = Context::default();
    if let Some(service) = query.service {
        let path = super::specification::path(service);
        if let Ok(text) = std::fs::read_to_string(root.join(&path)) {
            context.specification = Some((path, text));
        }
        context.manifests = earlier_manifests(projection, registry, activity, service)?;
    }
    let ranked_against = [
        query.input,
        &activity.name,
        &activity.description,
        context.specification.as_ref().map_or("", |(_, text)| text),
    ]
    .join("\n");
    context.offer(
        registry,
        offer(registry, activity, &ranked_against, offering),
    );
    let history = projection.try_recent_history(&activity.name, query.service)?;
    let start = history.len().saturating_sub(HISTORY_ENTRIES);
    context.history = history[start..]
        .iter()
        .map(|entry| {
            json!({
                "timestamp": entry.timestamp,
                "run": entry.run,
                "service": entry.service,
                "outcome": entry.outcome,
                "decision": entry.decision,
            })
            .to_string()
        })
        .collect();
    context.repository = crate::builtin::inventory::of_repository(repo, root)
        .ok()
        .and_then(|inventory| serde_json::to_string(&inventory).ok());
    context.services = super::existing::prompt_lines(&super::existing::in_tree(root));
    Ok(context)
}

/// The playbooks `activity` is offered: every one it may use when they are at most
/// `offering.limit`, otherwise the best `limit` ranked against `query` (the index built only
/// then).
fn offer(
    registry: &Registry,
    activity: &Activity,
    query: &str,
    offering: Offering<'_>,
) -> Selection {
    let allowed = registry.allowed_playbooks(&activity.name);
    let candidates: Vec<&str> = allowed.iter().map(|p| p.id.as_str()).collect();
    if candidates.len() <= offering.limit {
        return rank::select(&rank::Index::default(), &candidates, query, offering.limit);
    }
    let index = rank::cached(registry, offering.cache_dir);
    rank::select_keeping(
        &index,
        &candidates,
        query,
        offering.limit,
        offering.shortlist,
    )
}

/// How a playbook is listed in the prompt before any decision chose it.
pub(super) fn short_entry(playbook: &Playbook) -> String {
    match &playbook.index {
        Some(index) => format!(
            "- {} ({}, runbook: choose it to get its steps): {}\n  summary: {}",
            playbook.id, playbook.domain, playbook.description, index.summary
        ),
        None => format!(
            "- {} ({}): {}\n  inputs: {}",
            playbook.id, playbook.domain, playbook.description, playbook.inputs
        ),
    }
}

fn earlier_manifests(
    projection: &ManifestIndex,
    registry: &Registry,
    activity: &Activity,
    service: &str,
) -> Result<Vec<(String, String)>, CorruptIndex> {
    let order_of = |name: &str| registry.activity(name).map_or(u32::MAX, |a| a.order);
    let mut manifests: Vec<_> = projection
        .try_manifests(None, Some(service))?
        .into_iter()
        .filter(|manifest| order_of(&manifest.activity) < activity.order)
        .collect();
    manifests.sort_by_key(|manifest| order_of(&manifest.activity));
    Ok(manifests
        .into_iter()
        .map(|manifest| {
            let text = json!({
                "activity": manifest.activity,
                "status": manifest.status,
                "completed_at": manifest.completed_at,
                "outputs": manifest.outputs,
            })
            .to_string();
            (manifest.activity, text)
        })
        .collect())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Context {
    /// The template variables this context fills.
    pub fn variables(&self) -> BTreeMap<&'static str, String> {
        let mut values = BTreeMap::new();
        values.insert(
            "specification",
            self.specification
                .as_ref()
                .map_or_else(|| "(none yet)".into(), |(_, text)| text.clone()),
        );
        values.insert(
            "manifests",
            or_none(self.manifests.iter().map(|(_, t)| t.as_str())),
        );
        values.insert("history", or_none(self.history.iter().map(String::as_str)));
        values.insert(
            "playbooks",
            or_none(
                self.playbooks
                    .iter()
                    .enumerate()
                    .map(|(i, (_, full, short))| {
                        if i < self.playbooks.len() - self.runbooks_dropped {
                            full.as_str()
                        } else {
                            short.as_str()
                        }
                    }),
            ),
        );
        values.insert(
            "repository",
            self.repository
                .clone()
                .unwrap_or_else(|| "(not available)".into()),
        );
        values.insert(
            "services",
            or_none(self.services.iter().map(String::as_str)),
        );
        values
    }

    /// What was loaded and what was left out, for `activity.started`.
    pub fn summary(&self) -> Value {
        json!({
            "specification": self.specification.as_ref().map(|(path, _)| path),
            "manifests": self.manifests.iter().map(|(activity, _)| activity).collect::<Vec<_>>(),
            "playbooks": self.playbooks.iter().map(|(id, _, _)| id).collect::<Vec<_>>(),
            "offered": self.offered,
            "history_entries": self.history.len(),
            "services": self.services.len(),
            "dropped": self.dropped,
        })
    }

    /// Offers `selection`: lists its playbooks for the prompt, best first.
    pub fn offer(&mut self, registry: &Registry, selection: Selection) {
        self.playbooks = selection
            .ids()
            .into_iter()
            .filter_map(|id| registry.playbook(id))
            .map(|playbook| {
                let short = short_entry(playbook);
                let full = match (&playbook.runbook, playbook.kind()) {
                    // A runbook's steps reach the prompt only once a decision chose it.
                    (_, PlaybookKind::Runbook) | (None, _) => short.clone(),
                    (Some(runbook), PlaybookKind::Command) => {
                        format!("{short}\n  runbook:\n{}", indent(runbook))
                    }
                };
                (playbook.id.clone(), full, short)
            })
            .collect();
        self.offered = selection;
    }

    /// The ids of the offered playbooks, best first.
    pub fn offered_ids(&self) -> Vec<&str> {
        self.offered.ids()
    }

    /// Puts the steps of the chosen runbooks (id, body) into the prompt, for the decision that
    /// follows them.
    pub fn follow_runbooks(&mut self, runbooks: &[(String, String)]) {
        for (id, full, short) in &mut self.playbooks {
            if let Some((_, body)) = runbooks.iter().find(|(chosen, _)| chosen == id) {
                *full = format!(
                    "{short}\n  runbook (chosen; follow these steps and choose the playbooks they name):\n{}",
                    indent(body)
                );
            }
        }
    }

    /// Drops whole items, least relevant first, until `render(self)` fits in `budget` tokens.
    pub fn fit(&mut self, budget: u32, render: impl Fn(&Context) -> (String, String)) {
        loop {
            let (system, user) = render(self);
            if estimate_prompt_tokens([system.as_str(), user.as_str()]) <= budget {
                return;
            }
            if !self.drop_least_relevant() {
                return;
            }
        }
    }

    fn drop_least_relevant(&mut self) -> bool {
        if !self.history.is_empty() {
            self.history.remove(0);
            self.dropped.push("history entry".into());
        } else if self.runbooks_dropped < self.playbooks.len() {
            self.runbooks_dropped += 1;
            let id = &self.playbooks[self.playbooks.len() - self.runbooks_dropped].0;
            self.dropped.push(format!("runbook of {id}"));
        } else if !self.manifests.is_empty() {
            let (activity, _) = self.manifests.remove(0);
            self.dropped.push(format!("manifest of {activity}"));
        } else if self.repository.take().is_some() {
            self.dropped.push("repository inventory".into());
        } else if !self.services.is_empty() {
            self.services.clear();
            self.dropped.push("existing services".into());
        } else if let Some((path, _)) = self.specification.take() {
            self.dropped.push(format!("specification {path}"));
        } else {
            return false;
        }
        true
    }
}

fn or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let joined = items.collect::<Vec<_>>().join("\n");
    if joined.is_empty() {
        "(none)".into()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Context {
        Context {
            specification: Some(("spec".into(), "s".repeat(400))),
            manifests: vec![("discover".into(), "m".repeat(400))],
            playbooks: vec![("a".into(), format!("a {}", "r".repeat(800)), "a".into())],
            runbooks_dropped: 0,
            history: vec!["h1 ".repeat(100), "h2 ".repeat(100)],
            repository: Some("i".repeat(400)),
            services: vec!["- logging: Logs are scattered".into()],
            dropped: Vec::new(),
            offered: Selection::default(),
        }
    }

    fn render(context: &Context) -> (String, String) {
        let values = context.variables();
        (
            "system".into(),
            values.values().cloned().collect::<Vec<_>>().join("\n"),
        )
    }

    #[test]
    fn drops_whole_items_least_relevant_first() {
        let mut context = sample();
        context.fit(450, render);
        assert_eq!(
            context.dropped,
            vec!["history entry", "history entry", "runbook of a"]
        );
        // What is left is whole.
        assert_eq!(context.manifests[0].1.len(), 400);
        assert_eq!(context.specification.as_ref().unwrap().1.len(), 400);
    }

    #[test]
    fn a_context_that_fits_is_left_alone() {
        let mut context = sample();
        context.fit(100_000, render);
        assert!(context.dropped.is_empty());
        assert_eq!(context.history.len(), 2);
    }
}
