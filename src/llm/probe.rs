//! What `git spectra doctor` checks about the endpoint.
//!
//! Three questions, each answered with a measured latency: is anything listening (`GET
//! /v1/models`, which also says whether the configured model is served); does a tiny completion
//! work; and which `response_format` levels the endpoint accepts and honours. Each probe is a
//! single attempt (a health check should report a failure, not retry it away). The best level
//! that works is remembered, so the next decision starts there.

use std::time::Instant;

use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use super::client::{Client, DecisionRequest, instant_after};
use super::extract::extract_json_by;
use super::transport::{Arrived, Exchange, SendError, error_chain, error_detail, read_response};
use super::{LlmError, ResponseFormat};
use crate::settings::Source;

/// The doctor's findings. `problem` is why the endpoint is unusable, if it is.
#[derive(Debug, serde::Serialize)]
pub struct DoctorReport {
    /// Every LLM setting, its value and where it came from.
    pub settings: Vec<SettingRow>,
    /// What listing the models answered.
    pub models: ModelsProbe,
    /// What each response-format level answered, most structured first.
    pub formats: Vec<FormatProbe>,
    /// Why the endpoint cannot be used, if it cannot.
    #[serde(skip)]
    pub problem: Option<LlmError>,
}

/// One resolved setting, as shown (the API key masked).
#[derive(Debug, serde::Serialize)]
pub struct SettingRow {
    /// The git config key.
    pub key: &'static str,
    /// Its value as shown.
    pub value: String,
    /// Where the value came from.
    pub source: String,
}

/// The result of `GET /v1/models`.
#[derive(Debug, serde::Serialize)]
pub struct ModelsProbe {
    /// The URL asked.
    pub url: String,
    /// The HTTP status; `None` when no response came.
    pub status: Option<u16>,
    /// Time to the answer or the failure.
    pub latency_ms: u64,
    /// The model ids listed.
    pub models: Vec<String>,
    /// Whether the configured model is among them (`None` when the list could not be read).
    pub model_listed: Option<bool>,
    /// Why the list could not be read, if it could not.
    pub error: Option<String>,
}

/// The result of a tiny completion at one response-format level.
#[derive(Debug, serde::Serialize)]
pub struct FormatProbe {
    /// The level tried.
    pub format: ResponseFormat,
    /// What it answered.
    pub verdict: FormatVerdict,
    /// The HTTP status; `None` when no response came.
    pub status: Option<u16>,
    /// Time to the answer or the failure.
    pub latency_ms: u64,
    /// What went wrong, if anything.
    pub detail: Option<String>,
}

/// What one response-format level answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatVerdict {
    /// Accepted, and the reply was the JSON asked for.
    Works,
    /// Accepted, but the reply was not the JSON asked for.
    Ignored,
    /// The endpoint rejected this `response_format`.
    Rejected,
    /// The request failed for another reason (see `detail`).
    Failed,
    /// Not tried, because the endpoint is unreachable.
    Skipped,
}

impl DoctorReport {
    /// The best level that works, if any.
    pub fn best_format(&self) -> Option<ResponseFormat> {
        self.formats
            .iter()
            .find(|p| p.verdict == FormatVerdict::Works)
            .map(|p| p.format)
    }
}

impl Client {
    /// Probes the endpoint as described in the module documentation.
    pub fn doctor(&self) -> DoctorReport {
        let settings = self
            .settings()
            .describe()
            .into_iter()
            .map(|(key, value, source): (&str, String, Source)| SettingRow {
                key,
                value,
                source: source.to_string(),
            })
            .collect();
        let models = self.block_on(self.probe_models());
        let unreachable = models.status.is_none();
        let mut formats = Vec::new();
        let mut problem = None;
        for format in ResponseFormat::LADDER {
            if unreachable && problem.is_some() {
                formats.push(skipped(format));
                continue;
            }
            let (probe, error) = self.block_on(self.probe_format(format));
            if probe.verdict != FormatVerdict::Works && problem.is_none() {
                problem = error;
            }
            formats.push(probe);
        }
        let mut report = DoctorReport {
            settings,
            models,
            formats,
            problem: None,
        };
        match report.best_format() {
            Some(best) => self.memory.remember(
                &self.transport.endpoint(),
                &self.settings().model.value,
                best,
            ),
            None => report.problem = problem,
        }
        report
    }

    /// Only `GET /v1/models`: whether the endpoint answers, for `git spectra status`.
    pub fn probe_endpoint(&self) -> ModelsProbe {
        self.block_on(self.probe_models())
    }

    async fn probe_models(&self) -> ModelsProbe {
        let url = models_url(&self.transport.endpoint());
        let started = Instant::now();
        let request = self
            .transport
            .http()
            .get(&url)
            .bearer_auth(self.settings().api_key.value.expose())
            .header(CONTENT_TYPE, "application/json")
            .send();
        let timeout = self.settings().attempt_timeout.value;
        let arrived =
            tokio::time::timeout(timeout, async { read_response(request.await?).await }).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let scrubber = self.transport.scrubber();
        let mut probe = ModelsProbe {
            url,
            status: None,
            latency_ms,
            models: Vec::new(),
            model_listed: None,
            error: None,
        };
        match arrived {
            Err(_) => probe.error = Some(format!("no response within {}s", timeout.as_secs_f64())),
            Ok(Err(error)) => probe.error = Some(scrubber.text(&error_chain(&error))),
            Ok(Ok(Arrived::NoResponse { reason, .. })) => probe.error = Some(reason),
            Ok(Ok(
                Arrived::Response { status, body, .. } | Arrived::Streamed { status, body, .. },
            )) => {
                // The model list is printed by doctor: no secret may come back through it.
                let body = scrubber.bytes(&body);
                probe.status = Some(status);
                if (200..300).contains(&status) {
                    probe.models = model_ids(&body);
                    probe.model_listed = Some(probe.models.contains(&self.settings().model.value));
                } else {
                    probe.error = Some(format!("HTTP {status}: {}", error_detail(&body, scrubber)));
                }
            }
        }
        probe
    }

    /// One single-attempt completion at `format`, judged like a real decision.
    async fn probe_format(&self, format: ResponseFormat) -> (FormatProbe, Option<LlmError>) {
        let request = DecisionRequest {
            system: "You are a health check.".to_owned(),
            user: "Reply with the JSON object {\"ok\": true}.".to_owned(),
            schema: json!({
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
                "additionalProperties": false,
            }),
            schema_name: "health_check".to_owned(),
            max_tokens: Some(32),
        };
        let mut probe = FormatProbe {
            format,
            verdict: FormatVerdict::Failed,
            status: None,
            latency_ms: 0,
            detail: None,
        };
        let body = match self.request_body(&request, format, &[], None) {
            Ok(body) => body,
            Err(error) => {
                probe.detail = Some(error.to_string());
                return (probe, Some(error));
            }
        };
        let total = self.settings().attempt_timeout.value;
        let deadline = instant_after(total);
        let exchange = Exchange {
            body: &body,
            format,
            turn: 0,
            deadline,
            total,
            max_attempts: 1,
            // The probe checks formats; a streamed reply would only complicate its verdict.
            stream: false,
            watcher: &super::Unwatched,
        };
        let mut records = Vec::new();
        let outcome = self.transport.send(&exchange, &mut records).await;
        if let Some(record) = records.last() {
            probe.status = record.status;
            probe.latency_ms = record.latency_ms;
        }
        let error = match outcome {
            Ok(reply) => match extract_json_by(&reply.content, Some(deadline)) {
                Ok((value, _)) if value.get("ok").is_some_and(serde_json::Value::is_boolean) => {
                    probe.verdict = FormatVerdict::Works;
                    None
                }
                _ => {
                    probe.verdict = FormatVerdict::Ignored;
                    let quoted: String = reply.content.chars().take(120).collect();
                    probe.detail = Some(format!("reply was {quoted:?}"));
                    None
                }
            },
            Err(SendError::FormatRejected { detail }) => {
                probe.verdict = FormatVerdict::Rejected;
                probe.detail = Some(detail.clone());
                Some(LlmError::Refused {
                    status: probe.status.unwrap_or(400),
                    detail,
                })
            }
            Err(SendError::StreamRejected { detail }) => {
                probe.detail = Some(detail.clone());
                Some(LlmError::Refused {
                    status: probe.status.unwrap_or(400),
                    detail,
                })
            }
            Err(SendError::Failed(error)) => {
                probe.detail = Some(error.to_string());
                Some(error)
            }
        };
        (probe, error)
    }
}

fn skipped(format: ResponseFormat) -> FormatProbe {
    FormatProbe {
        format,
        verdict: FormatVerdict::Skipped,
        status: None,
        latency_ms: 0,
        detail: None,
    }
}

/// `.../v1/chat/completions` → `.../v1/models`.
pub fn models_url(chat_completions_url: &str) -> String {
    match chat_completions_url.strip_suffix("/chat/completions") {
        Some(base) => format!("{base}/models"),
        None => format!("{}/models", chat_completions_url.trim_end_matches('/')),
    }
}

/// The `id`s in an OpenAI-style model list (`{"data": [{"id": ...}]}`).
fn model_ids(body: &[u8]) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    list.get("data")
        .and_then(|d| d.as_array())
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_url_sits_beside_chat_completions() {
        assert_eq!(
            models_url("http://h:1/v1/chat/completions"),
            "http://h:1/v1/models"
        );
    }

    #[test]
    fn model_ids_are_read_from_the_data_list() {
        let body = br#"{"object":"list","data":[{"id":"a"},{"id":"b"},{"x":1}]}"#;
        assert_eq!(model_ids(body), ["a", "b"]);
        assert!(model_ids(b"nope").is_empty());
    }
}
