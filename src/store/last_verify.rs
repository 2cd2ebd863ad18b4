//! The answer of the last `git spectra verify`: when it ran, how far it got and what it found,
//! saved under the git dir (`<git common dir>/spectra/last-verify.json`, written atomically) so
//! that `git spectra status` can say how recently the whole log was checked without checking
//! it again. It is a note about the log, never part of it: a missing or unreadable file reads as
//! "never verified".

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, Verification};

/// The file name under the state dir.
pub(super) const FILE_NAME: &str = "last-verify.json";

/// What the last full verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastVerify {
    /// When it finished (RFC 3339, UTC).
    pub at: String,
    /// Whether every event verified.
    pub ok: bool,
    /// Events found sound (all of them when `ok`).
    pub verified: usize,
    /// The commit the log ended at when it was checked; `None` for an empty log.
    pub tip: Option<String>,
    /// The first bad event and why, as `verify` printed it.
    pub failure: Option<String>,
}

impl Store {
    /// [`Store::verify`], and its answer saved for [`Store::last_verify`]. A file that cannot
    /// be written costs only the note (logged at debug level).
    pub fn verify_and_record(&self) -> Result<Verification, StoreError> {
        let tip = self.tip()?;
        let verification = self.verify()?;
        let record = LastVerify {
            at: now_to_the_millisecond(),
            ok: verification.failure.is_none(),
            verified: verification.verified,
            tip: tip.map(|tip| tip.to_string()),
            failure: verification.failure.as_ref().map(ToString::to_string),
        };
        if let Ok(bytes) = serde_json::to_vec(&record) {
            crate::tip_cache::write_bytes(&self.last_verify, &bytes);
        }
        Ok(verification)
    }

    /// What the last `git spectra verify` found, or `None` if it never ran here.
    pub fn last_verify(&self) -> Option<LastVerify> {
        read(&self.last_verify)
    }
}

/// Now, in the form event times take (`2026-11-25T18:50:00.123Z`).
fn now_to_the_millisecond() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Millisecond)
        .unwrap_or(now)
        .to_string()
}

fn read(path: &Path) -> Option<LastVerify> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}
