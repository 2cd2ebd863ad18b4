//! `builtin probe-service`: is the running service answering? A `GET` to every URL the service
//! catalog lists for the service (`.spectra/service-catalog.yaml`, see [`super::catalog`]),
//! each under a timeout, with its status code and latency. Only the catalog's URLs are probed,
//! never one a model wrote: the playbook's only input is the service name.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BuiltinError;
use super::catalog;

/// The `git config` key of one probe's timeout.
pub const PROBE_TIMEOUT_KEY: &str = "spectra.monitor.probeTimeout";
/// The timeout of one probe when the key is not set.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What probing a service's URLs observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probed {
    /// The service probed.
    pub service: String,
    /// One entry per catalog URL, in catalog order.
    pub probes: Vec<Probe>,
    /// Every URL answered with a 2xx status, and there was at least one.
    pub healthy: bool,
}

/// One `GET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The catalog environment the URL is listed under, if any.
    pub environment: Option<String>,
    /// The URL, as the catalog lists it.
    pub url: String,
    /// The HTTP status, `None` when no response came (refused, timed out, not http(s)).
    pub status: Option<u16>,
    /// Milliseconds from sending to the response's status line (or to the failure).
    pub latency_ms: u64,
    /// Whether the status is 2xx.
    pub healthy: bool,
    /// Why there is no status, when there is none.
    pub error: Option<String>,
}

/// Probes every URL the catalog of the repository at `root` lists for `service`, each with
/// `timeout`.
pub fn probe(root: &Path, service: &str, timeout: Duration) -> Result<Probed, BuiltinError> {
    let lookup = catalog::lookup(root, service)?;
    let targets: Vec<(Option<String>, String)> = lookup
        .matches
        .into_iter()
        .filter_map(|entry| Some((entry.environment, entry.url?)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| BuiltinError::Probe {
            message: source.to_string(),
        })?;
    let probes = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Only the catalog's URL is probed: a redirect is its answer, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("git-spectra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| BuiltinError::Probe {
                message: error.to_string(),
            })?;
        let mut probes = Vec::new();
        for (environment, url) in targets {
            probes.push(get(&client, environment, url).await);
        }
        Ok::<_, BuiltinError>(probes)
    })?;
    let healthy = !probes.is_empty() && probes.iter().all(|probe| probe.healthy);
    Ok(Probed {
        service: service.to_string(),
        probes,
        healthy,
    })
}

/// The timeout `git config spectra.monitor.probeTimeout` sets in `root`, else the default.
pub fn configured_timeout(root: &Path) -> Result<Duration, BuiltinError> {
    match super::git_config(root, PROBE_TIMEOUT_KEY) {
        None => Ok(DEFAULT_PROBE_TIMEOUT),
        Some(raw) => crate::settings::parse_duration(&raw).map_err(|reason| BuiltinError::Probe {
            message: format!("`{PROBE_TIMEOUT_KEY}` is {raw:?}: {reason}"),
        }),
    }
}

async fn get(client: &reqwest::Client, environment: Option<String>, url: String) -> Probe {
    let started = Instant::now();
    let http = url.starts_with("http://") || url.starts_with("https://");
    let answer = if http {
        client
            .get(&url)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|error| error_chain(&error))
    } else {
        Err("not an http(s) URL; not probed".to_string())
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, error) = match answer {
        Ok(status) => (Some(status), None),
        Err(error) => (None, Some(error)),
    };
    Probe {
        environment,
        url,
        healthy: status.is_some_and(|status| (200..300).contains(&status)),
        status,
        latency_ms,
        error,
    }
}

/// The error and its causes on one line: reqwest's own message alone says only "error sending
/// request".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
