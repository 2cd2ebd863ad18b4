//! Where a value comes from: the [`Layers`] a setting is looked up in (flags, environment,
//! `git config`, defaults), the [`Key`] that describes a setting, and the [`Setting`] that
//! remembers the [`Source`] of its value.

use std::fmt;

use super::error::SettingsError;
use super::value::SettingValue;

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
    /// The typed value.
    pub value: T,
    /// Where it came from.
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
