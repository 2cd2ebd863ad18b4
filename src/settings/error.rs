//! The error of a setting whose value could not be understood.

use super::layers::{Key, Source};

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

pub(super) fn invalid(key: &Key, shown: &str, origin: Source, reason: &str) -> SettingsError {
    SettingsError {
        key: key.git,
        shown: shown.to_owned(),
        origin,
        reason: reason.to_owned(),
    }
}
