//! Keeping the configured secrets out of everything an endpoint or a model sends back.
//!
//! The endpoint receives the API key, so a hostile or careless one can send it back in any
//! form, and the ones that matter are those a later reader decodes into the key: literally, or
//! spelled with backslash escapes (`sk-\u0073ecret` in a JSON string; `sk-\\u0073ecret` in the
//! reply's JSON inside the response's JSON, which decodes twice). A [`Scrubber`] replaces every
//! span of a text that spells a secret, literally or after undoing backslash escapes any number
//! of levels deep, with `***`, and leaves every other byte as it was. Other encodings are not
//! recognised: base64, percent-encoding, HTML entities, or a secret cut up by other text.

use serde_json::Value;

use crate::settings::LlmSettings;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Secrets shorter than this are not scrubbed: they would match ordinary text everywhere and
/// protect nothing.
const MIN_SECRET_BYTES: usize = 4;

/// A backslash that survives `n` levels of decoding needs at least `2^n` bytes, so no text we
/// hold has more than about 30 levels; the bound only guards the loop.
const MAX_LEVELS: usize = 64;

/// Removes the configured secrets from text, bytes and JSON values.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// A scrubber for `secrets`, ignoring the ones too short to scrub.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Scrubber {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            let secret = secret.as_bytes().to_vec();
            if secret.len() >= MIN_SECRET_BYTES && !kept.contains(&secret) {
                kept.push(secret);
            }
        }
        Scrubber { secrets: kept }
    }

    /// The secrets `settings` hold: the API key, and a password in the endpoint URL (as
    /// written and percent-decoded), which reqwest repeats in its error messages.
    pub fn for_settings(settings: &LlmSettings) -> Scrubber {
        let password = settings.url.value.password().unwrap_or_default();
        let decoded = percent_decoded(password);
        Scrubber::new([settings.api_key.value.expose(), password, decoded.as_str()])
    }

    /// The secrets the repository's settings hold (`layers`), also when some other setting is
    /// invalid: the API key at least, whatever else cannot be read.
    pub fn for_layers(layers: &crate::settings::Layers) -> Scrubber {
        if let Ok(settings) = LlmSettings::resolve(layers) {
            return Scrubber::for_settings(&settings);
        }
        let key = layers
            .get::<crate::settings::Secret>(&crate::settings::keys::LLM_API_KEY)
            .map(|setting| setting.value.expose().to_string())
            .unwrap_or_default();
        Scrubber::new([key.as_str()])
    }

    /// The secrets of the repository `repo`'s settings (its config and the environment).
    pub fn for_repo(repo: &crate::repo::Repo) -> Scrubber {
        Scrubber::for_layers(&crate::settings::Layers::from_process(|key| {
            repo.config_string(key)
        }))
    }

    /// Scrubs an event about to be recorded: its subject, body, payload and attachments. An
    /// attachment that changes gets its new SHA-256 where the payload names it
    /// (`payload.<name>.sha256`, as a playbook's `stdout` and `stderr`).
    pub fn event(&self, event: &mut crate::event::NewEvent) {
        if self.secrets.is_empty() {
            return;
        }
        for text in [&mut event.subject, &mut event.body].into_iter().flatten() {
            *text = self.text(text);
        }
        self.value(&mut event.payload);
        for (name, bytes) in &mut event.attachments {
            let scrubbed = self.bytes(bytes);
            if scrubbed == *bytes {
                continue;
            }
            if let Some(sha256) = event
                .payload
                .get_mut(name.as_str())
                .and_then(|named| named.get_mut("sha256"))
            {
                *sha256 = Value::String(crate::digest::sha256_hex(&scrubbed));
            }
            *bytes = scrubbed;
        }
    }

    /// `input` with every span that spells a secret replaced by `***`.
    pub fn bytes(&self, input: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return input.to_vec();
        }
        redact(input, &self.spans(input))
    }

    /// [`Scrubber::bytes`] for text.
    pub fn text(&self, input: &str) -> String {
        if self.secrets.is_empty() {
            return input.to_owned();
        }
        let spans = self.spans(input.as_bytes());
        if spans.is_empty() {
            return input.to_owned();
        }
        // Spans cover whole escape sequences or whole secrets, which are UTF-8, so the result is
        // UTF-8; the lossy fallback is only there so that no input can panic here.
        match String::from_utf8(redact(input.as_bytes(), &spans)) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }
    }

    /// Scrubs every string and every object key in `value`, at any depth (iteratively, so no
    /// nesting can exhaust the stack).
    pub fn value(&self, value: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            match value {
                Value::String(text) => *text = self.text(text),
                Value::Array(items) => pending.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map.keys().any(|key| self.text(key) != *key) {
                        let entries = std::mem::take(map);
                        *map = entries
                            .into_iter()
                            .map(|(key, value)| (self.text(&key), value))
                            .collect();
                    }
                    pending.extend(map.values_mut());
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
    }

    /// The byte ranges of `input` that spell a secret at some level of decoding, sorted and
    /// merged.
    fn spans(&self, input: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        self.find(input, |start, end| spans.push((start, end)));
        // Offsets are kept as u32 to halve the memory; a longer input is only scanned literally.
        if input.contains(&b'\\') && u32::try_from(input.len()).is_ok() {
            self.find_escaped(input, &mut spans);
        }
        merge(spans)
    }

    /// Every occurrence of every secret in `text`, reported as `found(start, end)`.
    fn find(&self, text: &[u8], mut found: impl FnMut(usize, usize)) {
        for secret in &self.secrets {
            let mut from = 0;
            while let Some(at) = find_from(text, secret, from) {
                found(at, at + secret.len());
                from = at + 1;
            }
        }
    }

    /// Decodes `input` level after level while anything decodes, finding the secrets in each
    /// level and mapping each find back to the bytes of `input` it came from.
    fn find_escaped(&self, input: &[u8], spans: &mut Vec<(usize, usize)>) {
        let (mut level, mut origin) = unescape_once(input);
        for _ in 0..MAX_LEVELS {
            self.find(&level, |start, end| {
                let to = origin.get(end).map_or(input.len(), |&o| o as usize);
                spans.push((origin[start] as usize, to));
            });
            if !level.contains(&b'\\') {
                return;
            }
            let (next, next_origin) = unescape_once(&level);
            if next.len() == level.len() {
                return; // nothing decoded: every decoded escape is shorter than its source
            }
            origin = next_origin.iter().map(|&o| origin[o as usize]).collect();
            level = next;
        }
    }
}

/// The first position at or after `from` where `needle` occurs in `haystack`.
fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let offset = haystack[at..].iter().position(|&b| b == first)?;
        at += offset;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Sorted, with overlapping and touching ranges joined.
fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `input` with each of the sorted, disjoint `spans` replaced by `***`.
fn redact(input: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut from = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&input[from..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        from = end;
    }
    out.extend_from_slice(&input[from..]);
    out
}

/// One level of backslash unescaping, leniently (anything that is not an escape stays as it
/// is), and for every output byte the offset in `input` where the unit it came from starts.
/// Every input byte belongs to exactly one unit, so a range of output maps to a range of input.
fn unescape_once(input: &[u8]) -> (Vec<u8>, Vec<u32>) {
    let mut out = Vec::with_capacity(input.len());
    let mut origin = Vec::with_capacity(input.len());
    let mut at = 0;
    while at < input.len() {
        let decoded = if input[at] == b'\\' {
            escape_at(&input[at..])
        } else {
            None
        };
        let (bytes, consumed) = match decoded {
            Some((c, consumed)) => {
                let mut buffer = [0u8; 4];
                let encoded = c.encode_utf8(&mut buffer).as_bytes();
                out.extend_from_slice(encoded);
                (encoded.len(), consumed)
            }
            None => {
                out.push(input[at]);
                (1, 1)
            }
        };
        // `input` is at most u32::MAX bytes long (checked by the caller).
        origin.extend(std::iter::repeat_n(at as u32, bytes));
        at += consumed;
    }
    (out, origin)
}

/// The character the escape sequence at the start of `text` (which starts with `\`) stands for,
/// and the sequence's length: JSON's escapes, and YAML's `\xHH` and `\UHHHHHHHH`.
fn escape_at(text: &[u8]) -> Option<(char, usize)> {
    let simple = match *text.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(text),
        b'x' => return char::from_u32(hex(text.get(2..4)?)?).map(|c| (c, 4)),
        b'U' => return char::from_u32(hex(text.get(2..10)?)?).map(|c| (c, 10)),
        _ => return None,
    };
    Some((simple, 2))
}

/// `\uXXXX`, or a surrogate pair `\uD83D\uDE00`; a lone surrogate is not decoded.
fn unicode_escape(text: &[u8]) -> Option<(char, usize)> {
    let unit = hex(text.get(2..6)?)?;
    if let Some(c) = char::from_u32(unit) {
        return Some((c, 6));
    }
    if !(0xD800..0xDC00).contains(&unit) || text.get(6..8)? != b"\\u" {
        return None;
    }
    let low = hex(text.get(8..12)?)?;
    if !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)).map(|c| (c, 12))
}

/// The value of ASCII hex digits (at most 8 of them).
fn hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = (digit as char).to_digit(16)?;
        Some((value << 4) | nibble)
    })
}

/// `%HH` sequences decoded; anything else (and any invalid UTF-8 result) left as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let decoded = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3).and_then(hex))
            .flatten();
        match decoded {
            Some(byte) => {
                out.push(byte as u8);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "sk-secret-42";

    fn scrubber() -> Scrubber {
        Scrubber::new([KEY])
    }

    /// Every character of `text` as a JSON `\u` escape.
    fn all_escaped(text: &str) -> String {
        text.chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect()
    }

    #[test]
    fn a_literal_secret_is_replaced_everywhere_and_nothing_else_changes() {
        let s = scrubber();
        assert_eq!(
            s.text(&format!("a {KEY} b {KEY}{KEY}!")),
            "a *** b ***!",
            "adjacent finds are merged into one redaction"
        );
        assert_eq!(s.text("nothing \\n to \\\" see"), "nothing \\n to \\\" see");
        assert_eq!(s.bytes(&[0xff, b'a', 0xfe]), [0xff, b'a', 0xfe]);
    }

    #[test]
    fn a_secret_spelled_with_json_escapes_is_replaced_with_its_escapes() {
        let s = scrubber();
        assert_eq!(s.text("key: sk-\\u0073ecret-42."), "key: ***.");
        assert_eq!(s.text(&format!("[{}]", all_escaped(KEY))), "[***]");
        assert_eq!(s.text("sk\\u002Dsecret-42"), "***", "upper-case hex digits");
        assert_eq!(
            s.text("sk-\\x73ecret-42 and sk-\\U00000073ecret-42"),
            "*** and ***"
        );
        // Short escapes that a key can contain.
        let slashed = Scrubber::new(["ab/cd\\ef"]);
        assert_eq!(slashed.text(r"x ab\/cd\\ef y"), "x *** y");
    }

    #[test]
    fn a_secret_escaped_inside_json_inside_json_is_found_at_every_level() {
        let s = scrubber();
        // The model wrote an escape in its JSON; the response's JSON escapes its backslash.
        let decision = r#"{"statement": "the key is sk-\u0073ecret-42"}"#;
        let body = json!({"choices": [{"message": {"content": decision}}]}).to_string();
        assert!(body.contains(r"sk-\\u0073ecret-42"), "{body}");
        let scrubbed = s.text(&body);
        assert!(!scrubbed.contains("u0073"), "{scrubbed}");
        // The scrubbed body still parses, down to the statement.
        let parsed: Value = serde_json::from_str(&scrubbed).unwrap();
        let content = parsed["choices"][0]["message"]["content"].as_str().unwrap();
        let inner: Value = serde_json::from_str(content).unwrap();
        assert_eq!(inner["statement"], "the key is ***");
        // An escaped backslash written as `\u005c`, three levels deep.
        assert_eq!(s.text("sk-\\u005c\\u005cu0073ecret-42"), "***");
    }

    #[test]
    fn surrogate_pairs_decode_and_lone_surrogates_stay_as_written() {
        let s = Scrubber::new(["key-😀-key"]);
        assert_eq!(s.text("a key-\\ud83d\\ude00-key b"), "a *** b");
        assert_eq!(s.text("\\ud83d alone"), "\\ud83d alone");
        assert_eq!(s.text("\\ud83d\\u0041"), "\\ud83d\\u0041");
    }

    #[test]
    fn incomplete_or_unknown_escapes_are_left_alone() {
        let s = scrubber();
        for text in [
            "\\",
            "\\u12",
            "\\uzzzz",
            "\\q",
            "sk-\\u007",
            "\\U0011ffff",
            "\\x",
        ] {
            assert_eq!(s.text(text), text);
        }
    }

    #[test]
    fn every_string_and_key_of_a_value_is_scrubbed() {
        let s = scrubber();
        let mut value = json!({
            "a": ["x", {"deep": "sk-\\u0073ecret-42"}],
            KEY: 1,
            "n": 5, "b": true, "z": null,
            "plain": format!("in {KEY} text"),
        });
        s.value(&mut value);
        assert_eq!(
            value,
            json!({"a": ["x", {"deep": "***"}], "***": 1, "n": 5, "b": true, "z": null,
                   "plain": "in *** text"})
        );
    }

    #[test]
    fn a_value_nested_deeper_than_any_stack_is_scrubbed_without_recursion() {
        let mut value = json!(KEY);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        scrubber().value(&mut value);
        let mut inner = &value;
        while let Value::Array(items) = inner {
            inner = &items[0];
        }
        assert_eq!(inner, &json!("***"));
        // Dropping a deep value recurses in serde_json; take it apart by hand.
        let mut pending = vec![value];
        while let Some(mut value) = pending.pop() {
            if let Value::Array(items) = &mut value {
                pending.append(items);
            }
        }
    }

    #[test]
    fn short_secrets_are_not_scrubbed_and_duplicates_count_once() {
        assert_eq!(Scrubber::new(["abc", ""]).text("abc"), "abc");
        assert_eq!(
            format!("{:?}", Scrubber::new([KEY, KEY])),
            "Scrubber(1 secrets)"
        );
    }

    #[test]
    fn the_settings_secrets_are_the_key_and_the_url_password() {
        let mut settings = LlmSettings::for_url("http://user:p%40ss-word@127.0.0.1:1/v1").unwrap();
        settings.api_key.value = crate::settings::Secret::new(KEY);
        let s = Scrubber::for_settings(&settings);
        assert_eq!(
            s.text(&format!("{KEY} p%40ss-word p@ss-word user")),
            "*** *** *** user"
        );
    }

    #[test]
    fn backslash_floods_are_handled_in_linear_passes() {
        // Each level halves the backslashes; the result is unchanged and nothing panics.
        let flood = "\\".repeat(1 << 16);
        assert_eq!(scrubber().text(&flood), flood);
        let escapes = "\\u005c".repeat(1 << 12);
        assert_eq!(scrubber().text(&escapes), escapes);
    }
}
