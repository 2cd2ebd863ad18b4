//! The error of a setting whose value could not be understood.

use super::layers::{Key, Source};

/// A setting whose value could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("bad value {shown} for {key} (from {origin}): {reason}")]
pub struct SettingsError {
    /// The `git config` name of the setting.
    pub key: &'static str,
    /// The offending value, or `***` for a secret.
    pub shown: String,
    /// Where the value came from, so the user knows where to fix it.
    pub origin: Source,
    /// What was expected, in a few words.
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

/// The error for `key` when its value, shown as `shown`, breaks a rule beyond its syntax.
pub(super) fn invalid(key: &Key, shown: &str, origin: Source, reason: &str) -> SettingsError {
    SettingsError {
        key: key.git,
        shown: shown.to_owned(),
        origin,
        reason: reason.to_owned(),
    }
}
