//! A model re-ranks the lexical shortlist of playbooks down to the few one decision is offered
//! (`spectra.playbooks.rerank`).
//!
//! The model may only pick from the shortlist: a name it invents is dropped and recorded, too
//! few picks are padded in lexical order, and a call that fails (no answer, an invalid one, a
//! timeout) offers the lexical best instead, with the reason. Its attempts are `llm.called`
//! events like a decision's, appended before `activity.started`, which records the resulting
//! offer and names them as its causes: a replay answers the same call from the record and so
//! sees the same list.

use serde_json::{Value, json};

use super::context::short_entry;
use super::run::RunState;
use super::{Engine, RunError};
use crate::llm::{Client, DecisionRequest};
use crate::registry::rank::Selection;
use crate::registry::{Activity, Registry};

/// The reply budget of a re-ranking: a short list of ids.
const RERANK_TOKENS: u32 = 512;

impl Engine<'_> {
    /// The offer after the model behind `client` re-ranked `shortlist` for `definition`'s
    /// decision on `input`, and the ids of the attempts that asked it.
    pub(super) fn rerank(
        &self,
        state: &mut RunState<'_>,
        client: &Client,
        definition: &Activity,
        input: &str,
        shortlist: &Selection,
    ) -> Result<(Selection, Vec<String>), RunError> {
        let request = request(
            self.registry,
            definition,
            input,
            state.service.as_deref(),
            shortlist,
        );
        let (answer, attempts) =
            self.ask_model_recorded(state, client, &definition.name, &request, Vec::new())?;
        let offer = match answer {
            Ok((reply, _)) => shortlist.reranked(&picked(&reply)),
            Err(error) => shortlist.rerank_failed(without_url(
                &error.to_string(),
                client.settings().url.value.as_str(),
            )),
        };
        Ok((offer, attempts))
    }
}

/// The question: the activity, the service and the input, then the shortlist as the decision's
/// prompt lists playbooks; the answer's schema bounds it to at most the shortlist's length of
/// names no longer than its longest id.
fn request(
    registry: &Registry,
    definition: &Activity,
    input: &str,
    service: Option<&str>,
    shortlist: &Selection,
) -> DecisionRequest {
    let ids = shortlist.ids();
    let listed: Vec<String> = ids
        .iter()
        .filter_map(|id| registry.playbook(id))
        .map(short_entry)
        .collect();
    let longest = ids.iter().map(|id| id.chars().count()).max().unwrap_or(1);
    let limit = shortlist.limit;
    let system = format!(
        "You choose which playbooks the next decision of the `{}` activity is shown. \
         Answer with the ids of at most {limit} of the playbooks listed, most useful first, \
         each written exactly as listed. Never write an id that is not listed.",
        definition.name
    );
    let user = format!(
        "Activity: {}: {}\nService: {}\nTask: {input}\n\nPlaybooks:\n{}",
        definition.name,
        definition.description,
        service.unwrap_or("(none chosen yet)"),
        listed.join("\n")
    );
    let schema = json!({
        "type": "object",
        "properties": {
            "playbooks": {
                "type": "array",
                "description": format!("At most {limit} ids from the list, most useful first."),
                "maxItems": ids.len(),
                "items": {"type": "string", "maxLength": longest}
            }
        },
        "required": ["playbooks"],
        "additionalProperties": false
    });
    let max_tokens = crate::llm::estimate::max_tokens(&schema, RERANK_TOKENS);
    DecisionRequest {
        system,
        user,
        schema,
        schema_name: format!("{}_playbooks", definition.name),
        max_tokens: Some(max_tokens),
    }
}

/// The names a valid answer lists, in its order.
fn picked(reply: &Value) -> Vec<String> {
    reply["playbooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(str::to_string))
        .collect()
}

/// `reason` with the endpoint's URL named by its setting: the offer recorded in
/// `activity.started` is compared by a replay, which may be answered from another endpoint;
/// the attempts keep the URL they were sent to.
fn without_url(reason: &str, url: &str) -> String {
    if url.is_empty() {
        return reason.to_string();
    }
    reason.replace(url, "`spectra.llm.url`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_endpoint_by_its_setting() {
        let url = "http://127.0.0.1:9/v1/chat/completions";
        let reason = format!(
            "cannot reach the LLM endpoint {url} after 1 attempt(s): error sending request for url ({url})"
        );
        let shown = without_url(&reason, url);
        assert!(!shown.contains("127.0.0.1"), "{shown}");
        assert_eq!(shown.matches("`spectra.llm.url`").count(), 2);
        assert_eq!(without_url("HTTP 503", ""), "HTTP 503");
    }
}
