//! The LLM group: everything the client needs, resolved from the LLM keys, and the rule that
//! completes an endpoint URL.

use std::time::Duration;

use reqwest::Url;

use super::error::invalid;
use super::layers::{Key, Layers, Setting, Source};
use super::secret::Secret;
use super::{SettingsError, keys};

/// Everything the LLM client needs, each value with its source.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The full chat-completions URL (a base URL ending in `/v1` is completed).
    pub url: Setting<Url>,
    /// The API key, sent only in the `Authorization` header.
    pub api_key: Setting<Secret>,
    /// The `model` of every request.
    pub model: Setting<String>,
    /// How long one HTTP attempt may take, from sending to the last byte of the reply.
    pub attempt_timeout: Setting<Duration>,
    /// How long opening a connection may take.
    pub connect_timeout: Setting<Duration>,
    /// How long one decision may take, all attempts, waits and repair turns included.
    pub total_timeout: Setting<Duration>,
    /// Whether to ask for streamed replies (endpoints that refuse get non-streamed ones).
    pub stream: Setting<bool>,
    /// While a reply is streamed, the longest wait for the next token.
    pub silence_timeout: Setting<Duration>,
    /// HTTP attempts per request before giving up (at least 1).
    pub max_attempts: Setting<u32>,
    /// The first backoff step; later steps double it, with full jitter.
    pub backoff_base: Setting<Duration>,
    /// The longest single wait, backoff or `Retry-After`; a longer `Retry-After` ends the retries.
    pub max_delay: Setting<Duration>,
    /// The model's context window in tokens, prompt and reply together.
    pub context_window: Setting<u32>,
    /// The most reply tokens to ask for; fewer when the prompt leaves less room.
    pub max_tokens: Setting<u32>,
    /// The sampling temperature.
    pub temperature: Setting<f64>,
}

impl LlmSettings {
    /// Resolves every LLM key from `layers`.
    pub fn resolve(layers: &Layers) -> Result<Self, SettingsError> {
        let url: Setting<String> = layers.get(&keys::LLM_URL)?;
        let max_attempts: Setting<u32> = layers.get(&keys::LLM_MAX_ATTEMPTS)?;
        if max_attempts.value == 0 {
            return Err(invalid(
                &keys::LLM_MAX_ATTEMPTS,
                "0",
                max_attempts.source,
                "must be 1 or more",
            ));
        }
        Ok(LlmSettings {
            url: Setting {
                value: chat_completions_url(&url.value, url.source)?,
                source: url.source,
            },
            api_key: layers.get(&keys::LLM_API_KEY)?,
            model: layers.get(&keys::LLM_MODEL)?,
            attempt_timeout: layers.get(&keys::LLM_TIMEOUT)?,
            connect_timeout: layers.get(&keys::LLM_CONNECT_TIMEOUT)?,
            total_timeout: layers.get(&keys::LLM_TOTAL_TIMEOUT)?,
            stream: layers.get(&keys::LLM_STREAM)?,
            silence_timeout: layers.get(&keys::LLM_SILENCE_TIMEOUT)?,
            max_attempts,
            backoff_base: layers.get(&keys::LLM_BACKOFF_BASE)?,
            max_delay: layers.get(&keys::LLM_MAX_DELAY)?,
            context_window: layers.get(&keys::LLM_CONTEXT_WINDOW)?,
            max_tokens: layers.get(&keys::LLM_MAX_TOKENS)?,
            temperature: layers.get(&keys::LLM_TEMPERATURE)?,
        })
    }

    /// Defaults only, pointed at `url`: the starting point for tests and probes.
    pub fn for_url(url: &str) -> Result<Self, SettingsError> {
        let owned = url.to_owned();
        let layers = Layers::new(|_| None, |_| None).with_flag(&keys::LLM_URL, Some(owned));
        LlmSettings::resolve(&layers)
    }

    /// The endpoint without the user name and password a URL may carry: what is ever printed
    /// or recorded of it.
    pub fn shown_url(&self) -> String {
        let mut url = self.url.value.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }

    /// Every key with its displayed value (the API key masked, the URL without credentials)
    /// and source, for `doctor`.
    pub fn describe(&self) -> Vec<(&'static str, String, Source)> {
        let secs = |d: &Setting<Duration>| (format!("{}s", d.value.as_secs_f64()), d.source);
        let rows: Vec<(&Key, (String, Source))> = vec![
            (&keys::LLM_URL, (self.shown_url(), self.url.source)),
            (
                &keys::LLM_API_KEY,
                (self.api_key.value.to_string(), self.api_key.source),
            ),
            (
                &keys::LLM_MODEL,
                (self.model.value.clone(), self.model.source),
            ),
            (&keys::LLM_TIMEOUT, secs(&self.attempt_timeout)),
            (&keys::LLM_CONNECT_TIMEOUT, secs(&self.connect_timeout)),
            (&keys::LLM_TOTAL_TIMEOUT, secs(&self.total_timeout)),
            (
                &keys::LLM_STREAM,
                (self.stream.value.to_string(), self.stream.source),
            ),
            (&keys::LLM_SILENCE_TIMEOUT, secs(&self.silence_timeout)),
            (
                &keys::LLM_MAX_ATTEMPTS,
                (
                    self.max_attempts.value.to_string(),
                    self.max_attempts.source,
                ),
            ),
            (&keys::LLM_BACKOFF_BASE, secs(&self.backoff_base)),
            (&keys::LLM_MAX_DELAY, secs(&self.max_delay)),
            (
                &keys::LLM_CONTEXT_WINDOW,
                (
                    self.context_window.value.to_string(),
                    self.context_window.source,
                ),
            ),
            (
                &keys::LLM_MAX_TOKENS,
                (self.max_tokens.value.to_string(), self.max_tokens.source),
            ),
            (
                &keys::LLM_TEMPERATURE,
                (self.temperature.value.to_string(), self.temperature.source),
            ),
        ];
        rows.into_iter()
            .map(|(key, (value, source))| (key.git, value, source))
            .collect()
    }
}

/// Completes a base URL to the chat-completions endpoint: `http://host:8001/v1` and
/// `http://host:8001` both mean `http://host:8001/v1/chat/completions`, which is what
/// OpenAI-compatible servers document and what users paste.
pub fn chat_completions_url(raw: &str, source: Source) -> Result<Url, SettingsError> {
    let bad = |reason: &str| invalid(&keys::LLM_URL, &format!("{raw:?}"), source, reason);
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected an http:// or https:// URL"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let completed = if path.ends_with("/chat/completions") {
        path
    } else if path.ends_with("/v1") {
        format!("{path}/chat/completions")
    } else if path.is_empty() {
        "/v1/chat/completions".to_owned()
    } else {
        return Err(bad("expected a URL ending in /v1 or /v1/chat/completions"));
    };
    url.set_path(&completed);
    Ok(url)
}
