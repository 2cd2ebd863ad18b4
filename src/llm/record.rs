//! The record of one HTTP attempt, which callers append as an `llm.called` event.
//!
//! A record holds what an auditor needs to see and a replayer needs to reproduce the call: the
//! exact request and response bodies (stored by callers as attachments) with their SHA-256, the
//! status, the headers that explain rate limiting, latency, token usage and the response-format
//! level. The API key travels only in the `Authorization` header, which is never recorded, and
//! any echo of a secret in a body, a header or an error text, however escaped, is replaced by
//! `***` ([`super::scrub`]) before it gets here.

use std::collections::BTreeMap;

use super::ResponseFormat;

/// One HTTP attempt, successful or not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRecord {
    /// 1-based position among all attempts of one decision.
    pub attempt: u32,
    /// 0 for the first question, 1 and 2 for repair turns.
    pub turn: u32,
    /// The response-format level asked for.
    pub format: ResponseFormat,
    /// The endpoint, without any user or password part.
    pub url: String,
    /// When the attempt started (RFC 3339, UTC).
    pub started_at: String,
    /// The request as sent (the API key is in a header, never here).
    pub request_body: Body,
    /// SHA-256 of the request body, in hex.
    pub request_sha256: String,
    /// `None` when no response arrived (connection refused, timeout before headers).
    pub response_body: Option<Body>,
    /// SHA-256 of the response body, in hex, when there was one.
    pub response_sha256: Option<String>,
    /// The HTTP status; `None` when no response arrived.
    pub status: Option<u16>,
    /// `retry-after`, `retry-after-ms`, `x-ratelimit-*`, `x-request-id`, `request-id`.
    pub headers: BTreeMap<String, String>,
    /// Time to the full response or the failure.
    pub latency_ms: u64,
    /// Token counts, when the endpoint reported them.
    pub usage: Option<Usage>,
    /// Why the model stopped, as it said.
    pub finish_reason: Option<String>,
    /// What went wrong with this attempt, if anything (transport error, refusal, invalid reply).
    pub error: Option<String>,
    /// Whether the request asked for a streamed reply; the recorded response body is then the
    /// assembled reply in the non-streamed shape, never the SSE framing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Why the streamed reply was cut short before it ended (a runaway reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<String>,
    /// Tokens a streamed reply delivered (the endpoint's count when it gave one, else the
    /// pieces received), also when the stream broke off or was cut: the work the model did
    /// even where no usage was reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_received: Option<u64>,
}

/// Token counts the endpoint reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens in the reply.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both together.
    #[serde(default)]
    pub total_tokens: u64,
}

/// Raw body bytes. Serialized as a string when they are UTF-8 (they almost always are: JSON),
/// else as an array of bytes, so nothing is ever lossily converted.
#[derive(Clone, PartialEq, Eq)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The body as text, with invalid UTF-8 replaced (for messages, never for storage).
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({:?})", self.lossy())
    }
}

impl serde::Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_bytes(&self.0),
        }
    }
}

/// Whether a response header is worth keeping: it explains a wait, a limit or names the request.
pub fn is_recorded_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "retry-after" | "retry-after-ms" | "x-request-id" | "request-id"
    ) || name.starts_with("x-ratelimit-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_and_request_id_headers_are_kept_others_are_not() {
        for name in [
            "Retry-After",
            "retry-after-ms",
            "x-ratelimit-remaining-requests",
            "X-Request-Id",
            "request-id",
        ] {
            assert!(is_recorded_header(name), "{name}");
        }
        for name in ["authorization", "set-cookie", "content-type", "server"] {
            assert!(!is_recorded_header(name), "{name}");
        }
    }

    #[test]
    fn bodies_serialize_as_text_when_they_are_utf8() {
        assert_eq!(
            serde_json::to_string(&Body(b"{\"a\":1}".to_vec())).unwrap(),
            r#""{\"a\":1}""#
        );
        assert_eq!(
            serde_json::to_string(&Body(vec![0xff, 1])).unwrap(),
            "[255,1]"
        );
    }
}
