//! Model calls answered from a record instead of the network, for a replay.
//!
//! A [`Recorded`] holds a past run's attempts (request and response bodies, as its `llm.called`
//! events kept them) in the order they were made. A client built with
//! [`super::Client::replaying`] sends nothing: each request is looked up by the SHA-256 of its
//! body (as it would be recorded, secrets scrubbed) with its ids and times [`masked`] by role,
//! the first unused attempt with that hash at or after the current position first, then any
//! unused one; the recorded response is handed to the same code that reads a live one.
//!
//! Masking is what makes a replay possible at all: a later activity's prompt quotes what an
//! earlier one wrote (a specification that names the run that wrote it and when), and a replay
//! is a new run, made at another time. Two requests that differ only in which ids and times
//! they name, each named in the same places, are the same request. A request the record does not hold stops the call with
//! [`super::LlmError::NotRecorded`], and the first such miss is kept, saying which call it was
//! and where the request first differs from the one recorded at that position.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use super::ResponseFormat;

/// One recorded attempt, as a replay needs it.
#[derive(Debug, Clone)]
pub struct RecordedAttempt {
    /// Who asked (the activity, or `None` for the planner): for the message of a miss.
    pub asker: Option<String>,
    /// The response-format level the attempt asked for.
    pub format: ResponseFormat,
    /// Whether it asked for a streamed reply.
    pub stream: bool,
    /// The request body as recorded.
    pub request_body: Vec<u8>,
    /// Its SHA-256 as recorded.
    pub request_sha256: String,
    /// The HTTP status, or `None` when no response arrived.
    pub status: Option<u16>,
    /// The headers recorded (`retry-after` and the like).
    pub headers: BTreeMap<String, String>,
    /// The response body, when there was one.
    pub response_body: Option<Vec<u8>>,
    /// The attempt's error (for an attempt with no response, why).
    pub error: Option<String>,
    /// Why a streamed reply was cut short.
    pub cut_off: Option<String>,
    /// Tokens a streamed reply delivered.
    pub tokens_received: Option<u64>,
}

/// The first request a replay could not answer from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// Who asked, as the record at that position says (`None`: the planner).
    pub asker: Option<String>,
    /// The recorded request's SHA-256 at that position, if the record has one there.
    pub recorded_sha256: Option<String>,
    /// The new request's SHA-256.
    pub now_sha256: String,
    /// Where the new request first differs from the recorded one.
    pub first_difference: String,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = self.asker.as_deref().unwrap_or("the planner");
        match &self.recorded_sha256 {
            Some(recorded) => write!(
                f,
                "the prompt for {who} changed: recorded sha256 {}…, now {}…; first differing line: {}",
                short(recorded),
                short(&self.now_sha256),
                self.first_difference
            ),
            None => write!(
                f,
                "a model call the record does not hold (after {who}'s): sha256 {}…; {}",
                short(&self.now_sha256),
                self.first_difference
            ),
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `text` with every UUID, every commit id (40 hex digits standing alone) and every RFC 3339
/// UTC time replaced by its role: `<id N>`, `<commit N>` and `<time N>`, numbered in the order
/// each distinct value first appears. A replay's commits are new commits (their trailers name
/// the replay's events), so they are compared by role like the ids.
pub fn masked(text: &str) -> String {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(
            r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(?P<commit>\b[0-9a-f]{40}\b)|(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)",
        )
        .expect("a valid pattern")
    });
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    let (mut ids, mut commits, mut times) = (0, 0, 0);
    pattern
        .replace_all(text, |found: &regex::Captures<'_>| {
            let value = found[0].to_string();
            roles
                .entry(value)
                .or_insert_with(|| {
                    if found.name("id").is_some() {
                        ids += 1;
                        format!("<id {ids}>")
                    } else if found.name("commit").is_some() {
                        commits += 1;
                        format!("<commit {commits}>")
                    } else {
                        times += 1;
                        format!("<time {times}>")
                    }
                })
                .clone()
        })
        .into_owned()
}

/// The SHA-256 of a request body with its ids and times masked.
fn masked_sha256(body: &[u8]) -> String {
    crate::digest::sha256_hex(masked(&String::from_utf8_lossy(body)).as_bytes())
}

/// A past run's model calls, answered in order.
#[derive(Debug)]
pub struct Recorded {
    attempts: Vec<RecordedAttempt>,
    /// Each attempt's [`masked_sha256`], which is what a request is matched by.
    masked: Vec<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    used: Vec<bool>,
    /// The position of the next call: one past the last attempt answered.
    cursor: usize,
    miss: Option<Miss>,
    answered: usize,
}

impl Recorded {
    /// The attempts of one run, in the order they were made.
    pub fn new(attempts: Vec<RecordedAttempt>) -> Recorded {
        let used = vec![false; attempts.len()];
        let masked = attempts
            .iter()
            .map(|attempt| masked_sha256(&attempt.request_body))
            .collect();
        Recorded {
            attempts,
            masked,
            state: Mutex::new(State {
                used,
                ..State::default()
            }),
        }
    }

    /// The first attempt, whose format level and streaming the replaying client starts with.
    pub fn first(&self) -> Option<&RecordedAttempt> {
        self.attempts.first()
    }

    /// The first request that was not in the record, if any.
    pub fn miss(&self) -> Option<Miss> {
        self.lock().miss.clone()
    }

    /// How many requests were answered from the record.
    pub fn answered(&self) -> usize {
        self.lock().answered
    }

    /// How many recorded attempts were never asked for.
    pub fn unused(&self) -> usize {
        self.lock().used.iter().filter(|used| !**used).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The recorded attempt answering `body` (hash `sha256`), or the miss, which is kept if it
    /// is the first.
    pub(crate) fn answer(&self, body: &[u8], sha256: &str) -> Result<RecordedAttempt, Miss> {
        let wanted = masked_sha256(body);
        let mut state = self.lock();
        let unused = |index: &usize| !state.used[*index] && self.masked[*index] == wanted;
        let found = (state.cursor..self.attempts.len())
            .find(unused)
            .or_else(|| (0..state.cursor).find(unused));
        if let Some(index) = found {
            state.used[index] = true;
            state.cursor = index + 1;
            state.answered += 1;
            return Ok(self.attempts[index].clone());
        }
        let expected = (state.cursor..self.attempts.len())
            .find(|index| !state.used[*index])
            .map(|index| &self.attempts[index]);
        let miss = match expected {
            Some(recorded) => Miss {
                asker: recorded.asker.clone(),
                recorded_sha256: Some(recorded.request_sha256.clone()),
                now_sha256: sha256.to_string(),
                first_difference: first_difference(&recorded.request_body, body),
            },
            None => Miss {
                asker: self.attempts.last().and_then(|last| last.asker.clone()),
                recorded_sha256: None,
                now_sha256: sha256.to_string(),
                first_difference: "the recorded run made no more calls".to_string(),
            },
        };
        state.miss.get_or_insert_with(|| miss.clone());
        Err(miss)
    }
}

/// Where `now` first differs from `recorded`, both chat-completions request bodies: the first
/// message whose content differs and its first differing line, else the first other field that
/// differs (`model`, `max_tokens`, `response_format`, ...).
pub fn first_difference(recorded: &[u8], now: &[u8]) -> String {
    let (Ok(recorded), Ok(now)) = (
        serde_json::from_slice::<Value>(recorded),
        serde_json::from_slice::<Value>(now),
    ) else {
        return "the recorded request is not JSON".to_string();
    };
    let messages = |body: &Value| body["messages"].as_array().cloned().unwrap_or_default();
    let (old_messages, new_messages) = (messages(&recorded), messages(&now));
    for (index, (old, new)) in old_messages.iter().zip(&new_messages).enumerate() {
        if old == new {
            continue;
        }
        let role = new["role"].as_str().unwrap_or("?");
        let (old_text, new_text) = (
            masked(old["content"].as_str().unwrap_or_default()),
            masked(new["content"].as_str().unwrap_or_default()),
        );
        return match first_differing_line(&old_text, &new_text) {
            Some((line, was, is)) => format!(
                "{role} message {}, line {line}: was {was:?}, now {is:?}",
                index + 1
            ),
            None => format!("{role} message {} (role or shape)", index + 1),
        };
    }
    if old_messages.len() != new_messages.len() {
        return format!(
            "{} messages recorded, {} now",
            old_messages.len(),
            new_messages.len()
        );
    }
    let fields = |body: &Value| {
        body.as_object()
            .map(|object| object.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut keys = fields(&recorded);
    keys.extend(fields(&now));
    keys.sort();
    keys.dedup();
    for key in keys.iter().filter(|key| key.as_str() != "messages") {
        if recorded.get(key) != now.get(key) {
            return format!(
                "field `{key}`: was {}, now {}",
                cut(&recorded.get(key).map_or("absent".into(), Value::to_string)),
                cut(&now.get(key).map_or("absent".into(), Value::to_string))
            );
        }
    }
    "the bodies differ only in their bytes".to_string()
}

/// The first line (1-based) where the texts differ, with both versions of it (`""` past the
/// end of the shorter text), each cut to a window around the first character that differs.
fn first_differing_line(old: &str, new: &str) -> Option<(usize, String, String)> {
    let mut old_lines = old.lines();
    let mut new_lines = new.lines();
    let mut number = 0;
    loop {
        number += 1;
        match (old_lines.next(), new_lines.next()) {
            (None, None) => return None,
            (a, b) if a == b => continue,
            (a, b) => {
                let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
                let from = same.saturating_sub(CONTEXT_CHARS);
                return Some((number, window(a, from), window(b, from)));
            }
        }
    }
}

/// How much of the common start of a differing line is shown before the difference.
const CONTEXT_CHARS: usize = 40;

/// `text` from character `from`, cut; `…` marks what was left out at the start.
fn window(text: &str, from: usize) -> String {
    let rest: String = text.chars().skip(from).collect();
    let shown = cut(&rest);
    if from > 0 {
        format!("…{shown}")
    } else {
        shown
    }
}

fn cut(text: &str) -> String {
    const CHARS: usize = 120;
    match text.char_indices().nth(CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(system: &str, user: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "model": "m",
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }))
        .unwrap()
    }

    fn attempt(asker: &str, body: Vec<u8>) -> RecordedAttempt {
        RecordedAttempt {
            asker: Some(asker.into()),
            format: ResponseFormat::JsonSchema,
            stream: false,
            request_sha256: crate::digest::sha256_hex(&body),
            request_body: body,
            status: Some(200),
            headers: BTreeMap::new(),
            response_body: Some(b"{}".to_vec()),
            error: None,
            cut_off: None,
            tokens_received: None,
        }
    }

    #[test]
    fn requests_are_answered_by_hash_in_order_and_a_changed_one_names_its_line() {
        let first = body("a\nb", "u");
        let second = body("c", "u");
        let recorded = Recorded::new(vec![
            attempt("discover", first.clone()),
            attempt("design", second.clone()),
        ]);
        let sha = |b: &[u8]| crate::digest::sha256_hex(b);
        assert!(recorded.answer(&first, &sha(&first)).is_ok());
        let changed = body("c\nnew", "u");
        let miss = recorded.answer(&changed, &sha(&changed)).unwrap_err();
        assert_eq!(miss.asker.as_deref(), Some("design"));
        assert_eq!(
            miss.first_difference,
            "system message 1, line 2: was \"\", now \"new\""
        );
        assert!(
            miss.to_string()
                .starts_with("the prompt for design changed")
        );
        assert!(recorded.answer(&second, &sha(&second)).is_ok());
        assert_eq!(recorded.miss(), Some(miss));
        assert_eq!((recorded.answered(), recorded.unused()), (2, 0));
    }

    #[test]
    fn ids_and_times_are_masked_by_role() {
        let one = "run 01a24658-4da7-71a1-b39f-24cc57fe30e2 at 2026-12-05T13:15:21.927Z, again 01a24658-4da7-71a1-b39f-24cc57fe30e2";
        let two = "run 01a24658-4f37-71ba-bd58-8c7d6f998a1e at 2026-12-05T13:15:22.328Z, again 01a24658-4f37-71ba-bd58-8c7d6f998a1e";
        assert_eq!(masked(one), "run <id 1> at <time 1>, again <id 1>");
        assert_eq!(masked(one), masked(two));
        let other = "run 01a24658-4f37-71ba-bd58-8c7d6f998a1e at 2026-12-05T13:15:22.328Z, again 01a24658-0000-71ba-bd58-8c7d6f998a1e";
        assert_ne!(masked(one), masked(other));
    }

    #[test]
    fn a_field_other_than_the_messages_is_named() {
        let old = br#"{"model":"a","messages":[],"max_tokens":5}"#;
        let new = br#"{"model":"a","messages":[],"max_tokens":6}"#;
        assert_eq!(
            first_difference(old, new),
            "field `max_tokens`: was 5, now 6"
        );
    }
}
