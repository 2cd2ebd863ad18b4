//! Typed settings, resolved from flags > environment > `git config spectra.*` > defaults.
//!
//! Every setting is described once by a [`Key`]: its git config name, the environment variables
//! that may set it (the first is the documented one, later ones are accepted aliases), and its
//! default. [`Layers`] holds the places a value can come from and turns a key into a typed
//! [`Setting`] that remembers its [`Source`], so `git spectra doctor` can say where each value came
//! from and a bad value can be reported with the place to fix it. The LLM keys live here as
//! [`LlmSettings`]; later settings are added the same way: a `Key` constant, a field, one `get`.

// Temporary: this module is being restructured; its public items get their docs then.
#![allow(missing_docs)]

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The named environment variable.
    Env(&'static str),
    /// The named `git config` key (repository, global, or `git -c`).
    GitConfig(&'static str),
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::GitConfig(key) => write!(f, "git config {key}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The description of one setting.
#[derive(Debug)]
pub struct Key {
    /// The `git config` name, e.g. `spectra.llm.url`.
    pub git: &'static str,
    /// Environment variables, in priority order; the first is the documented name.
    pub env: &'static [&'static str],
    /// The default, in the same syntax a user would write.
    pub default: &'static str,
    /// Secret values are never printed, not even in a parse error.
    pub secret: bool,
}

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    /// A value set in code (tests, or a caller that already knows what it wants).
    pub fn flag(value: T) -> Self {
        Setting {
            value,
            source: Source::Flag,
        }
    }
}

/// A setting whose value could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("bad value {shown} for {key} (from {origin}): {reason}")]
pub struct SettingsError {
    pub key: &'static str,
    /// The offending value, or `***` for a secret.
    pub shown: String,
    pub origin: Source,
    pub reason: String,
}

impl crate::failure::Classify for SettingsError {
    fn class(&self) -> crate::failure::Class {
        // As git does for a bad config value.
        crate::failure::Class::Fatal
    }

    fn hints(&self) -> Vec<String> {
        vec!["fix or unset the value at the place named above".into()]
    }
}

/// A string that must never be shown: its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that must send it (the `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// How a value type is read from the text of a flag, variable or config entry.
pub trait SettingValue: Sized {
    /// Parses `raw`, or says in a few words what was expected.
    fn parse_setting(raw: &str) -> Result<Self, String>;
}

impl SettingValue for String {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
}

impl SettingValue for Secret {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(Secret::new(raw))
    }
}

impl SettingValue for bool {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        crate::repo::parse_git_bool(raw)
            .ok_or_else(|| "expected a boolean (true/false, yes/no, on/off, 1/0)".to_owned())
    }
}

impl SettingValue for u32 {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| "expected a whole number".to_owned())
    }
}

impl SettingValue for f64 {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err("expected a number".to_owned()),
        }
    }
}

impl SettingValue for Duration {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        parse_duration(raw)
    }
}

/// Reads `30`, `30s`, `1.5s`, `500ms` or `2m`; a bare number is seconds, as in `timeout = 30`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit_seconds) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else {
        (raw, 1.0)
    };
    let expected = || "expected a duration such as 30, 30s, 500ms or 2m".to_owned();
    let number: f64 = number.trim().parse().map_err(|_| expected())?;
    if !number.is_finite() || number < 0.0 {
        return Err(expected());
    }
    Duration::try_from_secs_f64(number * unit_seconds).map_err(|_| expected())
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// The places a setting can come from, highest priority first.
pub struct Layers<'a> {
    flags: Vec<(&'static str, String)>,
    env: Lookup<'a>,
    git_config: Lookup<'a>,
}

impl<'a> Layers<'a> {
    /// The process environment over the given `git config` reader (e.g. `Repo::config_string`).
    pub fn from_process(git_config: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Layers::new(|var| std::env::var(var).ok(), git_config)
    }

    /// Explicit environment and config readers, for tests and embedding.
    pub fn new(
        env: impl Fn(&str) -> Option<String> + 'a,
        git_config: impl Fn(&str) -> Option<String> + 'a,
    ) -> Self {
        Layers {
            flags: Vec::new(),
            env: Box::new(env),
            git_config: Box::new(git_config),
        }
    }

    /// Adds a flag value for `key`; `None` (flag not given) changes nothing.
    pub fn with_flag(mut self, key: &Key, value: Option<impl Into<String>>) -> Self {
        if let Some(value) = value {
            self.flags.push((key.git, value.into()));
        }
        self
    }

    /// The raw text for `key` and where it came from. Empty values count as unset, so
    /// `SPECTRA_LLM_URL= git spectra ...` falls through to config, as users expect.
    pub fn raw(&self, key: &Key) -> (String, Source) {
        let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        if let Some((_, value)) = self.flags.iter().rev().find(|(name, _)| *name == key.git) {
            return (value.clone(), Source::Flag);
        }
        for var in key.env {
            if let Some(value) = non_empty((self.env)(var)) {
                return (value, Source::Env(var));
            }
        }
        if let Some(value) = non_empty((self.git_config)(key.git)) {
            return (value, Source::GitConfig(key.git));
        }
        (key.default.to_owned(), Source::Default)
    }

    /// The typed value for `key`, or an error naming the key, the source and what was wrong.
    pub fn get<T: SettingValue>(&self, key: &Key) -> Result<Setting<T>, SettingsError> {
        let (raw, source) = self.raw(key);
        match T::parse_setting(&raw) {
            Ok(value) => Ok(Setting { value, source }),
            Err(reason) => Err(SettingsError {
                key: key.git,
                shown: if key.secret {
                    "***".to_owned()
                } else {
                    format!("{raw:?}")
                },
                origin: source,
                reason,
            }),
        }
    }
}

/// Every key. Each is documented in `docs/config.md` (a test checks that it is).
pub mod keys {
    use super::Key;

    /// Whether appends start git's housekeeping (`git gc --auto`).
    pub const STORE_AUTO_GC: Key = Key {
        git: "spectra.store.autoGc",
        env: &["SPECTRA_STORE_AUTO_GC"],
        default: "true",
        secret: false,
    };
    /// The project's test command for the `run-tests` built-in playbook.
    pub const TEST_COMMAND: Key = Key {
        git: "spectra.test.command",
        env: &["SPECTRA_TEST_COMMAND"],
        default: "",
        secret: false,
    };
    /// `false` turns the post-commit hook off.
    pub const HOOKS_ENABLED: Key = Key {
        git: "spectra.hooks.enabled",
        env: &["SPECTRA_HOOKS"],
        default: "true",
        secret: false,
    };
    /// Activities to start when a commit changes a specification.
    pub const HOOKS_ON_SPEC_CHANGE: Key = Key {
        git: "spectra.hooks.onSpecChange",
        env: &["SPECTRA_HOOKS_ON_SPEC_CHANGE"],
        default: "",
        secret: false,
    };

    /// Colour of human output: `auto`, `always` or `never` (`--color` overrides both).
    pub const COLOR: Key = Key {
        git: "spectra.color",
        env: &["SPECTRA_COLOR"],
        default: "auto",
        secret: false,
    };

    /// The keys outside the LLM group, in the order the docs show them.
    pub const OTHERS: &[&Key] = &[
        &STORE_AUTO_GC,
        &TEST_COMMAND,
        &HOOKS_ENABLED,
        &HOOKS_ON_SPEC_CHANGE,
        &COLOR,
    ];

    /// Every key there is: the LLM keys, then the others.
    pub fn all() -> impl Iterator<Item = &'static Key> {
        LLM.iter().chain(OTHERS).copied()
    }

    pub const LLM_URL: Key = Key {
        git: "spectra.llm.url",
        env: &["SPECTRA_LLM_URL", "ORCHESTRATOR_LLM_URL"],
        default: "http://localhost:8001/v1/chat/completions",
        secret: false,
    };
    pub const LLM_API_KEY: Key = Key {
        git: "spectra.llm.apiKey",
        env: &["SPECTRA_LLM_API_KEY", "ORCHESTRATOR_LLM_API_KEY"],
        default: "token-irrelevant",
        secret: true,
    };
    pub const LLM_MODEL: Key = Key {
        git: "spectra.llm.model",
        env: &["SPECTRA_LLM_MODEL", "ORCHESTRATOR_LLM_MODEL"],
        default: "mistralai/Mistral-7B-Instruct-v0.3",
        secret: false,
    };
    pub const LLM_TIMEOUT: Key = Key {
        git: "spectra.llm.timeout",
        env: &["SPECTRA_LLM_TIMEOUT"],
        default: "120s",
        secret: false,
    };
    pub const LLM_CONNECT_TIMEOUT: Key = Key {
        git: "spectra.llm.connectTimeout",
        env: &["SPECTRA_LLM_CONNECT_TIMEOUT"],
        default: "10s",
        secret: false,
    };
    pub const LLM_TOTAL_TIMEOUT: Key = Key {
        git: "spectra.llm.totalTimeout",
        env: &["SPECTRA_LLM_TOTAL_TIMEOUT"],
        default: "300s",
        secret: false,
    };
    pub const LLM_MAX_ATTEMPTS: Key = Key {
        git: "spectra.llm.maxAttempts",
        env: &["SPECTRA_LLM_MAX_ATTEMPTS"],
        default: "5",
        secret: false,
    };
    pub const LLM_BACKOFF_BASE: Key = Key {
        git: "spectra.llm.backoffBase",
        env: &["SPECTRA_LLM_BACKOFF_BASE"],
        default: "500ms",
        secret: false,
    };
    pub const LLM_MAX_DELAY: Key = Key {
        git: "spectra.llm.maxDelay",
        env: &["SPECTRA_LLM_MAX_DELAY"],
        default: "60s",
        secret: false,
    };
    pub const LLM_CONTEXT_WINDOW: Key = Key {
        git: "spectra.llm.contextWindow",
        env: &["SPECTRA_LLM_CONTEXT_WINDOW"],
        default: "8192",
        secret: false,
    };
    pub const LLM_MAX_TOKENS: Key = Key {
        git: "spectra.llm.maxTokens",
        env: &["SPECTRA_LLM_MAX_TOKENS"],
        default: "1024",
        secret: false,
    };
    pub const LLM_TEMPERATURE: Key = Key {
        git: "spectra.llm.temperature",
        env: &["SPECTRA_LLM_TEMPERATURE"],
        default: "0.3",
        secret: false,
    };

    /// Every LLM key, in the order `doctor` and the docs show them.
    pub const LLM: &[&Key] = &[
        &LLM_URL,
        &LLM_API_KEY,
        &LLM_MODEL,
        &LLM_TIMEOUT,
        &LLM_CONNECT_TIMEOUT,
        &LLM_TOTAL_TIMEOUT,
        &LLM_MAX_ATTEMPTS,
        &LLM_BACKOFF_BASE,
        &LLM_MAX_DELAY,
        &LLM_CONTEXT_WINDOW,
        &LLM_MAX_TOKENS,
        &LLM_TEMPERATURE,
    ];
}

/// Everything the LLM client needs, each value with its source.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The full chat-completions URL (a base URL ending in `/v1` is completed).
    pub url: Setting<Url>,
    pub api_key: Setting<Secret>,
    pub model: Setting<String>,
    /// How long one HTTP attempt may take, from sending to the last byte of the reply.
    pub attempt_timeout: Setting<Duration>,
    /// How long opening a connection may take.
    pub connect_timeout: Setting<Duration>,
    /// How long one decision may take, all attempts, waits and repair turns included.
    pub total_timeout: Setting<Duration>,
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

    /// Every key with its displayed value (the API key masked) and source, for `doctor`.
    /// The endpoint without the user name and password a URL may carry: what is ever printed
    /// or recorded of it.
    pub fn shown_url(&self) -> String {
        let mut url = self.url.value.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }

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

fn invalid(key: &Key, shown: &str, origin: Source, reason: &str) -> SettingsError {
    SettingsError {
        key: key.git,
        shown: shown.to_owned(),
        origin,
        reason: reason.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn layers(env: &[(&str, &str)], config: &[(&str, &str)]) -> Layers<'static> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config: HashMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layers::new(
            move |k| env.get(k).cloned(),
            move |k| config.get(k).cloned(),
        )
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = LlmSettings::resolve(&layers(&[], &[])).unwrap();
        assert_eq!(
            s.url.value.as_str(),
            "http://localhost:8001/v1/chat/completions"
        );
        assert_eq!(s.model.value, "mistralai/Mistral-7B-Instruct-v0.3");
        assert_eq!(s.api_key.value.expose(), "token-irrelevant");
        assert_eq!(s.temperature.value, 0.3);
        assert_eq!(s.url.source, Source::Default);
    }

    #[test]
    fn flag_beats_env_beats_config() {
        let all = layers(
            &[("SPECTRA_LLM_MODEL", "env-model")],
            &[("spectra.llm.model", "cfg-model")],
        );
        let s = LlmSettings::resolve(&all.with_flag(&keys::LLM_MODEL, Some("flag-model"))).unwrap();
        assert_eq!(
            (s.model.value.as_str(), s.model.source),
            ("flag-model", Source::Flag)
        );

        let env_and_config = layers(
            &[("SPECTRA_LLM_MODEL", "env-model")],
            &[("spectra.llm.model", "cfg-model")],
        );
        let s = LlmSettings::resolve(&env_and_config).unwrap();
        assert_eq!(s.model.source, Source::Env("SPECTRA_LLM_MODEL"));

        let s = LlmSettings::resolve(&layers(&[], &[("spectra.llm.model", "cfg-model")])).unwrap();
        assert_eq!(s.model.source, Source::GitConfig("spectra.llm.model"));
    }

    #[test]
    fn orchestrator_names_are_aliases_below_spectra_names() {
        let s = LlmSettings::resolve(&layers(&[("ORCHESTRATOR_LLM_URL", "http://h:1/v1")], &[]))
            .unwrap();
        assert_eq!(s.url.value.as_str(), "http://h:1/v1/chat/completions");
        assert_eq!(s.url.source, Source::Env("ORCHESTRATOR_LLM_URL"));

        let both = layers(
            &[
                ("ORCHESTRATOR_LLM_URL", "http://old/v1"),
                ("SPECTRA_LLM_URL", "http://new/v1"),
            ],
            &[],
        );
        assert_eq!(
            LlmSettings::resolve(&both).unwrap().url.value.host_str(),
            Some("new")
        );
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let s = LlmSettings::resolve(&layers(
            &[("SPECTRA_LLM_MODEL", "")],
            &[("spectra.llm.model", "m")],
        ))
        .unwrap();
        assert_eq!(s.model.value, "m");
    }

    #[test]
    fn base_urls_are_completed_to_the_chat_completions_path() {
        for raw in [
            "http://h:8/v1",
            "http://h:8/v1/",
            "http://h:8",
            "http://h:8/v1/chat/completions",
        ] {
            let url = chat_completions_url(raw, Source::Default).unwrap();
            assert_eq!(url.as_str(), "http://h:8/v1/chat/completions", "{raw}");
        }
        assert!(chat_completions_url("http://h:8/api", Source::Default).is_err());
        assert!(chat_completions_url("ftp://h/v1", Source::Default).is_err());
        assert!(chat_completions_url("localhost:8001", Source::Default).is_err());
    }

    #[test]
    fn bad_values_name_key_source_and_reason() {
        let err =
            LlmSettings::resolve(&layers(&[("SPECTRA_LLM_TIMEOUT", "soon")], &[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("spectra.llm.timeout"), "{text}");
        assert!(text.contains("env SPECTRA_LLM_TIMEOUT"), "{text}");
        assert!(text.contains("\"soon\""), "{text}");
    }

    #[test]
    fn docs_config_lists_every_key_and_variable() {
        let docs = include_str!("../docs/config.md");
        for key in keys::all() {
            assert!(
                docs.contains(&format!("`{}`", key.git)),
                "{} undocumented",
                key.git
            );
            for var in key.env {
                assert!(docs.contains(&format!("`{var}`")), "{var} undocumented");
            }
        }
    }

    #[test]
    fn booleans_read_as_git_reads_them() {
        let s: Setting<bool> = layers(&[("SPECTRA_STORE_AUTO_GC", "off")], &[])
            .get(&keys::STORE_AUTO_GC)
            .unwrap();
        assert!(!s.value);
        let s: Setting<bool> = layers(&[], &[]).get(&keys::STORE_AUTO_GC).unwrap();
        assert!(s.value);
        assert!(
            layers(&[], &[("spectra.store.autoGc", "maybe")])
                .get::<bool>(&keys::STORE_AUTO_GC)
                .is_err()
        );
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn the_api_key_is_masked_everywhere_it_could_be_shown() {
        let s = LlmSettings::resolve(&layers(&[("SPECTRA_LLM_API_KEY", "sk-very-secret")], &[]))
            .unwrap();
        assert!(!format!("{s:?}").contains("sk-very-secret"));
        assert!(
            !serde_json::to_string(&s.api_key.value)
                .unwrap()
                .contains("sk-very-secret")
        );
        assert!(!format!("{:?}", s.describe()).contains("sk-very-secret"));
        assert_eq!(s.api_key.value.expose(), "sk-very-secret");
    }

    #[test]
    fn a_password_in_the_endpoint_url_is_never_shown() {
        let s = LlmSettings::resolve(&layers(
            &[(
                "SPECTRA_LLM_URL",
                "http://me:pa55word@127.0.0.1:8001/v1/chat/completions",
            )],
            &[],
        ))
        .unwrap();
        let shown = format!("{:?} {}", s.describe(), s.shown_url());
        assert!(
            !shown.contains("pa55word") && !shown.contains("me:"),
            "{shown}"
        );
        assert!(s.shown_url().starts_with("http://127.0.0.1:8001/"));
    }
}
