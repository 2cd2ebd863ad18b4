//! The argv of a playbook that runs the repository's own command (`configured` in its registry
//! file): read from `git config` in the repository, split on whitespace, never given to a
//! shell. The registry names the keys; only the user's config says what runs, never a model.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Action, PlaybookError};
use crate::registry::{Configured, Playbook};

/// The input that picks a per-environment command (`spectra.deploy.ENV.command`).
pub const ENVIRONMENT_INPUT: &str = "environment";

pub use crate::builtin::git_config;

/// The key the argv of `action` comes from, given the inputs.
pub fn key(configured: &Configured, action: Action, inputs: &Map<String, Value>) -> Option<String> {
    match action {
        Action::Run => {
            let environment = inputs.get(ENVIRONMENT_INPUT).and_then(Value::as_str);
            Some(configured.run_key(environment))
        }
        Action::Undo => configured.undo.clone(),
    }
}

/// Whether the repository sets the command for the default or for any environment: with only
/// `spectra.deploy.production.command` set, a deploy to production can run.
pub fn is_set_for_some_environment(root: &Path, configured: &Configured) -> bool {
    git_config(root, &configured.run_key(None)).is_some()
        || !environments(root, configured).is_empty()
}

/// The environments the repository sets a command of their own for
/// (`spectra.deploy.ENV.command`), in git's order.
pub fn environments(root: &Path, configured: &Configured) -> Vec<String> {
    let Some((section, name)) = configured.run.rsplit_once('.') else {
        return Vec::new();
    };
    let pattern = format!(
        "^{}\\.[a-z][a-z0-9-]*\\.{}$",
        section.replace('.', "\\."),
        name
    );
    // git prints a key's last part lowercased.
    let (prefix, suffix) = (format!("{section}."), format!(".{}", name.to_lowercase()));
    crate::builtin::git_config_keys_matching(root, &pattern)
        .into_iter()
        .filter_map(|key| {
            let environment = key.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
            Some(environment.to_string())
        })
        .collect()
}

/// The configured argv of `action`, or why there is none.
pub fn argv(
    root: &Path,
    playbook: &Playbook,
    configured: &Configured,
    action: Action,
    inputs: &Map<String, Value>,
) -> Result<Vec<String>, PlaybookError> {
    let key = key(configured, action, inputs).ok_or_else(|| PlaybookError::NotRunnable {
        playbook: playbook.id.clone(),
        action: "undo",
    })?;
    let command = git_config(root, &key).ok_or_else(|| PlaybookError::NotConfigured {
        playbook: playbook.id.clone(),
        key: key.clone(),
    })?;
    Ok(command.split_whitespace().map(str::to_string).collect())
}

/// The timeout the config sets for the playbook, if it sets a valid one.
pub fn timeout(root: &Path, configured: &Configured) -> Result<Option<Duration>, PlaybookError> {
    let Some(key) = &configured.timeout else {
        return Ok(None);
    };
    let Some(raw) = git_config(root, key) else {
        return Ok(None);
    };
    crate::settings::parse_duration(&raw)
        .map(Some)
        .map_err(|reason| PlaybookError::BadTimeout {
            key: key.clone(),
            value: raw,
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_picks_its_own_key() {
        let configured = Configured {
            run: "spectra.deploy.command".into(),
            undo: Some("spectra.deploy.rollbackCommand".into()),
            timeout: None,
        };
        let mut inputs = Map::new();
        assert_eq!(
            key(&configured, Action::Run, &inputs).as_deref(),
            Some("spectra.deploy.command")
        );
        inputs.insert(ENVIRONMENT_INPUT.into(), "staging".into());
        assert_eq!(
            key(&configured, Action::Run, &inputs).as_deref(),
            Some("spectra.deploy.staging.command")
        );
        assert_eq!(
            key(&configured, Action::Undo, &inputs).as_deref(),
            Some("spectra.deploy.rollbackCommand")
        );
    }
}
