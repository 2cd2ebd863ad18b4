//! Streamed replies: reading chat-completions server-sent events into one reply.
//!
//! With `stream: true` the endpoint sends `data: {json}` lines whose `choices[0].delta.content`
//! pieces make up the reply, ending with `data: [DONE]`. [`Assembler`] buffers bytes and decodes
//! only whole lines, so a chunk boundary inside a UTF-8 character or a JSON string does no
//! harm. The assembled reply is recorded as the non-streamed body it stands for
//! ([`Assembler::body`]): replays and attachments never see SSE framing.
//!
//! [`RunawayWatch`] looks at the reply while it is written and says when it cannot become a
//! valid decision (the same item repeated over and over, or longer than the reply budget), so
//! the conversation can cut it and ask for a repair instead of waiting for a timeout.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::record::Usage;

/// Consecutive identical items (lines or array items) after which a reply is a runaway.
pub const RUNAWAY_REPEATS: usize = 8;
/// The longest repeating unit, in items, the watch looks for (`{"a":1,"b":2}` is two items).
const MAX_PERIOD: usize = 4;
/// Times in a row a short run of characters (up to [`MAX_STUTTER`]) may repeat before a reply
/// is a runaway: small models under a grammar fall into `1.1.1.1…` or endless whitespace inside
/// one string, which no list-item check sees and which only ends at the token limit.
pub const STUTTER_REPEATS: usize = 48;
/// The longest run of characters the stutter check looks for.
const MAX_STUTTER: usize = 8;
/// Characters a reply may hold per token of its budget before it is a runaway: a token is
/// rarely more than four characters, so twice that is a reply the budget cannot account for.
const CHARS_PER_TOKEN_BOUND: usize = 8;

/// What the stream said so far.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    /// The reply so far.
    pub content: String,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// `data:` events that carried content: the token count when no usage is given.
    pub pieces: u64,
    /// `data: [DONE]` arrived.
    pub done: bool,
    /// `id`, `created` and `model` of the first event, kept for the recorded body.
    header: Option<(Value, Value, Value)>,
}

impl Assembler {
    /// Takes the next bytes; returns the content that arrived with them. An event that is not
    /// JSON is an error: the stream is not a chat completion.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<String, String> {
        self.pending.extend_from_slice(bytes);
        let mut arrived = String::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            arrived.push_str(&self.line(&line)?);
        }
        Ok(arrived)
    }

    /// Feeds a last line that had no newline.
    pub fn finish(&mut self) -> Result<String, String> {
        let rest = std::mem::take(&mut self.pending);
        self.line(&rest)
    }

    fn line(&mut self, line: &[u8]) -> Result<String, String> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        // Comments (`: keep-alive`), `event:` and `id:` lines carry nothing we use.
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(String::new());
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(String::new());
        }
        if data.is_empty() {
            return Ok(String::new());
        }
        let event: Value = serde_json::from_str(data).map_err(|e| {
            let start: String = data.chars().take(200).collect();
            format!("a streamed event is not JSON ({e}): {start:?}")
        })?;
        if self.header.is_none() {
            self.header = Some((
                event["id"].clone(),
                event["created"].clone(),
                event["model"].clone(),
            ));
        }
        if let Some(usage) = event.get("usage").filter(|u| !u.is_null()) {
            self.usage = serde_json::from_value(usage.clone()).ok();
        }
        let choice = &event["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        let piece = choice["delta"]["content"].as_str().unwrap_or_default();
        if !piece.is_empty() {
            self.pieces += 1;
            self.content.push_str(piece);
        }
        Ok(piece.to_owned())
    }

    /// Tokens written so far: the endpoint's count if it gave one, else the pieces.
    pub fn tokens(&self) -> u64 {
        self.usage
            .map(|u| u.completion_tokens)
            .filter(|&n| n > 0)
            .unwrap_or(self.pieces)
    }

    /// The reply as the non-streamed response body it stands for.
    pub fn body(&self) -> Vec<u8> {
        let (id, created, model) = self.header.clone().unwrap_or_default();
        let mut body = json!({
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content},
                "finish_reason": self.finish_reason,
            }],
        });
        for (name, value) in [("id", id), ("created", created), ("model", model)] {
            if !value.is_null() {
                body[name] = value;
            }
        }
        if let Some(usage) = self.usage {
            body["usage"] = json!(usage);
        }
        serde_json::to_vec(&body).expect("a serde_json::Value always serializes")
    }
}

/// Watches a reply being written for signs that it cannot become valid.
#[derive(Debug)]
pub(crate) struct RunawayWatch {
    /// The item being written (text since the last `,` or newline).
    current: String,
    /// The last complete items, trimmed; at most `RUNAWAY_REPEATS * MAX_PERIOD`.
    items: VecDeque<String>,
    chars: usize,
    max_chars: usize,
    /// The last [`MAX_STUTTER`] characters.
    recent: VecDeque<char>,
    /// For each period p (index), how many characters in a row equal the one p before.
    echoes: [usize; MAX_STUTTER + 1],
}

impl RunawayWatch {
    /// A watch for a reply with a budget of `max_tokens`.
    pub fn new(max_tokens: u64) -> Self {
        RunawayWatch {
            current: String::new(),
            items: VecDeque::new(),
            chars: 0,
            max_chars: (max_tokens as usize).saturating_mul(CHARS_PER_TOKEN_BOUND),
            recent: VecDeque::new(),
            echoes: [0; MAX_STUTTER + 1],
        }
    }

    /// Takes the next piece of the reply; `Some(reason)` when the reply is a runaway.
    pub fn push(&mut self, piece: &str) -> Option<String> {
        self.chars += piece.chars().count();
        if self.chars > self.max_chars {
            return Some(format!(
                "the reply grew past {} characters, more than its {}-token budget allows",
                self.max_chars,
                self.max_chars / CHARS_PER_TOKEN_BOUND
            ));
        }
        for c in piece.chars() {
            if let Some(reason) = self.stutter(c) {
                return Some(reason);
            }
            if c == ',' || c == '\n' {
                let item = std::mem::take(&mut self.current);
                if let Some(reason) = self.item(item.trim()) {
                    return Some(reason);
                }
            } else {
                self.current.push(c);
            }
        }
        None
    }

    /// Takes one character; `Some(reason)` when the text now ends with a unit of at most
    /// [`MAX_STUTTER`] characters repeated [`STUTTER_REPEATS`] times.
    fn stutter(&mut self, c: char) -> Option<String> {
        let mut found = None;
        for period in 1..=MAX_STUTTER {
            let echoes =
                self.recent.len() >= period && self.recent[self.recent.len() - period] == c;
            self.echoes[period] = if echoes { self.echoes[period] + 1 } else { 0 };
            if found.is_none() && self.echoes[period] >= period * (STUTTER_REPEATS - 1) {
                found = Some(period);
            }
        }
        self.recent.push_back(c);
        if self.recent.len() > MAX_STUTTER {
            self.recent.pop_front();
        }
        let period = found?;
        let unit: String = self
            .recent
            .iter()
            .skip(self.recent.len() - period)
            .collect();
        Some(format!(
            "the reply repeated {unit:?} {STUTTER_REPEATS} times in a row; it would not have ended"
        ))
    }

    fn item(&mut self, item: &str) -> Option<String> {
        if item.is_empty() {
            return None;
        }
        self.items.push_back(item.to_owned());
        if self.items.len() > RUNAWAY_REPEATS * MAX_PERIOD {
            self.items.pop_front();
        }
        let period = (1..=MAX_PERIOD).find(|&p| self.repeats(p))?;
        let unit: Vec<&str> = self
            .items
            .iter()
            .skip(self.items.len() - period)
            .map(String::as_str)
            .collect();
        let unit: String = unit.join(",").chars().take(80).collect();
        Some(format!(
            "the same item was repeated {RUNAWAY_REPEATS} times in a row ({unit:?}); \
             the reply would not have ended"
        ))
    }

    /// Whether the last `RUNAWAY_REPEATS` units of `period` items are all the same.
    fn repeats(&self, period: usize) -> bool {
        let needed = period * RUNAWAY_REPEATS;
        if self.items.len() < needed {
            return false;
        }
        let tail: Vec<&String> = self.items.iter().skip(self.items.len() - needed).collect();
        tail.iter()
            .enumerate()
            .skip(period)
            .all(|(i, item)| *item == tail[i - period])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(content: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "created": 0, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        )
    }

    #[test]
    fn pieces_split_anywhere_assemble_to_the_reply() {
        let mut stream = String::new();
        for piece in ["{\"a\": \"h", "é", "llo\"", "}"] {
            stream.push_str(&event(piece));
        }
        stream.push_str(
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        );
        let bytes = stream.as_bytes();
        // Every single byte in its own chunk: boundaries inside `é` and inside strings.
        let mut assembler = Assembler::default();
        for byte in bytes {
            assembler.feed(std::slice::from_ref(byte)).unwrap();
        }
        assembler.finish().unwrap();
        assert_eq!(assembler.content, "{\"a\": \"héllo\"}");
        assert_eq!(assembler.finish_reason.as_deref(), Some("stop"));
        assert!(assembler.done);
        assert_eq!(assembler.tokens(), 4);
        let body: Value = serde_json::from_slice(&assembler.body()).unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "{\"a\": \"héllo\"}"
        );
        assert_eq!(body["model"], "m");
    }

    #[test]
    fn a_non_json_event_is_an_error() {
        let mut assembler = Assembler::default();
        assert!(assembler.feed(b"data: <html>\n").is_err());
    }

    #[test]
    fn a_repeated_item_or_object_is_a_runaway_and_a_varied_list_is_not() {
        let mut watch = RunawayWatch::new(10_000);
        assert!(watch.push("{\"items\": [").is_none());
        let reason = (0..20).find_map(|_| watch.push("\"x\", "));
        assert!(reason.unwrap().contains("repeated 8 times"));

        let mut watch = RunawayWatch::new(10_000);
        let reason = (0..20).find_map(|_| watch.push("{\"a\": 1, \"b\": 2},\n"));
        assert!(reason.is_some());

        let mut watch = RunawayWatch::new(10_000);
        assert!((0..50).all(|i| watch.push(&format!("\"item {i}\", ")).is_none()));
    }

    #[test]
    fn a_reply_longer_than_its_budget_is_a_runaway() {
        let mut watch = RunawayWatch::new(10);
        assert!(watch.push(&"abcdefghij".repeat(8)).is_none());
        assert!(watch.push("b").unwrap().contains("10-token budget"));
    }

    #[test]
    fn a_short_unit_repeated_inside_a_string_is_a_runaway_and_varied_text_is_not() {
        let mut watch = RunawayWatch::new(10_000);
        assert!(watch.push("{\"why\": \"1.1.0").is_none());
        let reason = (0..200).find_map(|_| watch.push(".1"));
        assert!(reason.unwrap().contains("\".1\" 48 times"));

        let mut watch = RunawayWatch::new(10_000);
        let reason = (0..200).find_map(|_| watch.push("\n"));
        assert!(reason.unwrap().contains("\"\\n\" 48 times"));

        let mut watch = RunawayWatch::new(10_000);
        let prose = |i: usize| format!("Host {i} keeps its logs for {} days. ", i * 7);
        assert!((0..50).all(|i| watch.push(&prose(i)).is_none()));
        assert!(watch.push(&"-".repeat(40)).is_none());
    }
}
