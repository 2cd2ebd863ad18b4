//! Who decides an activity: a model, or the offline rules (when asked for, or when nothing is
//! configured and nothing answers at the default endpoint).

use crate::llm::Client;
use crate::repo::Repo;

/// Who decides: a model, or the offline rules.
pub enum Decider {
    /// A model behind an OpenAI-compatible endpoint.
    Model(Box<Client>),
    /// No model; `reason` says why (asked for, or nothing configured and nothing answering).
    Offline {
        /// Why the offline rules decide.
        reason: String,
    },
}

/// Why no decider could be set up: the model's settings are bad, or its client cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DeciderError {
    /// The model's settings are invalid.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The model's client could not be built.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
}

impl crate::failure::Classify for DeciderError {
    fn class(&self) -> crate::failure::Class {
        match self {
            DeciderError::Settings(error) => crate::failure::Classify::class(error),
            DeciderError::Llm(error) => crate::failure::Classify::class(error),
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            DeciderError::Settings(error) => crate::failure::Classify::hints(error),
            DeciderError::Llm(error) => crate::failure::Classify::hints(error),
        }
    }
}

impl Decider {
    /// The model from the settings, or the offline rules when asked for (`offline`) or when no
    /// endpoint is configured anywhere and the default one does not answer. An endpoint the
    /// user configured is never silently replaced by the offline rules.
    pub fn choose(repo: &Repo, offline: bool) -> Result<Decider, DeciderError> {
        if offline {
            return Ok(Decider::Offline {
                reason: "--offline was given".into(),
            });
        }
        let layers = crate::settings::Layers::from_process(|key| repo.config_string(key));
        let settings = crate::settings::LlmSettings::resolve(&layers)?;
        let url = settings.url.value.clone();
        if settings.url.source == crate::settings::Source::Default && !answers(&url) {
            return Ok(Decider::Offline {
                reason: format!("no model is configured and nothing answers at {url}"),
            });
        }
        let state_dir = repo.state_dir();
        Ok(Decider::Model(Box::new(Client::new(
            settings,
            Some(&state_dir),
        )?)))
    }

    /// Why the offline rules decide, if they do.
    pub fn offline_reason(&self) -> Option<&str> {
        match self {
            Decider::Offline { reason } => Some(reason),
            Decider::Model(_) => None,
        }
    }

    /// Whether its decisions are a model's judgement, which the gates that read the decision
    /// may judge (offline rules only fill in the input).
    pub(crate) fn judges(&self) -> bool {
        matches!(self, Decider::Model(_))
    }

    /// The model's name, when a model decides.
    pub(crate) fn model(&self) -> Option<&str> {
        match self {
            Decider::Model(client) => Some(client.settings().model.value.as_str()),
            Decider::Offline { .. } => None,
        }
    }

    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Decider::Model(_) => "llm",
            Decider::Offline { .. } => "offline",
        }
    }
}

/// Whether something accepts TCP connections at the URL's host and port, within a moment.
fn answers(url: &reqwest::Url) -> bool {
    use std::net::ToSocketAddrs;
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(addresses) = (host, port).to_socket_addrs() else {
        return false;
    };
    addresses.into_iter().any(|address| {
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(300))
            .is_ok()
    })
}

/// The stable reason word recorded for a failed model call.
pub(crate) fn llm_reason(error: &crate::llm::LlmError) -> &'static str {
    use crate::llm::LlmError as E;
    match error {
        E::Unreachable { .. } | E::DeadlineExceeded { .. } | E::RetriesExhausted { .. } => {
            "llm_unreachable"
        }
        E::InvalidOutput { .. } | E::MalformedResponse { .. } => "invalid_decision",
        E::PromptTooLarge { .. } | E::ContextLength { .. } => "prompt_too_large",
        _ => "llm_refused",
    }
}
