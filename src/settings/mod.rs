//! Typed settings, resolved from flags > environment > `git config spectra.*` > defaults.
//!
//! Every setting is described once by a [`Key`]: its git config name, the environment variables
//! that may set it (the first is the documented one, later ones are accepted aliases), and its
//! default. [`Layers`] holds the places a value can come from and turns a key into a typed
//! [`Setting`] that remembers its [`Source`], so `git spectra doctor` can say where each value came
//! from and a bad value can be reported with the place to fix it. The LLM group resolves into
//! [`LlmSettings`]; later groups are added the same way: `Key` constants in [`keys`], a field,
//! one `get`.
//!
//! One job per file: `layers` (keys, sources and the lookup through the layers), `value` (how
//! text becomes a typed value), `secret` (values never shown), `keys` (every key there is),
//! `llm` (the LLM group) and `error` (a value that could not be understood).

mod error;
pub mod keys;
mod layers;
mod llm;
mod secret;
mod value;

pub use error::SettingsError;
pub use layers::{Key, Layers, Setting, Source};
pub use llm::{LlmSettings, chat_completions_url};
pub use secret::Secret;
pub use value::{SettingValue, parse_duration};

#[cfg(test)]
mod tests;
