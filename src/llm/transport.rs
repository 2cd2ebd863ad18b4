//! Sending one chat-completions request: HTTP attempts, timeouts, waits, one record per attempt.
//!
//! This is the async core under the blocking [`super::Client`]. It knows HTTP and the retry
//! policy in [`super::retry`], and nothing about schemas or repair turns: it returns the reply
//! text of the first successful attempt, or the reason it stopped. Each attempt runs under the
//! per-attempt timeout, cut short by the total deadline; the connect timeout is set on the
//! underlying client. A non-streamed response is read whole (up to a size cap); a streamed one
//! (`streamed`, with [`super::stream`]) is assembled into the same shape, waiting at most the
//! silence timeout for each new piece once the model writes, and cut short when it turns into
//! a runaway. Either is scrubbed of secrets ([`super::scrub`]) whole, before anything reads or
//! records it, so a secret split across chunks is whole when the scrub runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::record::{AttemptRecord, Body, Usage, is_recorded_header};
use super::retry::{self, Verdict};
use super::scrub::Scrubber;
use super::{LlmError, ResponseFormat};
use crate::backoff::Backoff;
use crate::digest::sha256_hex;
use crate::settings::LlmSettings;
use streamed::{events_without_their_type, is_event_stream, with_stream};

mod streamed;

/// A response body larger than this is not a chat completion we want to hold in memory.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// How much of an error body to quote in a message.
const DETAIL_CHARS: usize = 400;

/// The HTTP side of the client.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    pub(crate) settings: LlmSettings,
    scrubber: Scrubber,
    /// A replay's record: every request is answered from it and nothing is sent.
    recorded: Option<std::sync::Arc<super::recorded::Recorded>>,
}

/// One request to send, possibly several times.
pub(crate) struct Exchange<'a> {
    pub body: &'a [u8],
    pub format: ResponseFormat,
    pub turn: u32,
    pub deadline: Instant,
    /// When the decision started, to report the total time in [`LlmError::DeadlineExceeded`].
    pub total: Duration,
    pub max_attempts: u32,
    /// Ask for a streamed reply.
    pub stream: bool,
    /// Told the tokens written a few times a second, and the attempts that are final.
    pub watcher: &'a dyn super::Watcher,
}

/// The text of a successful completion and the index of its record in the records list.
#[derive(Debug)]
pub(crate) struct Reply {
    pub content: String,
    pub finish_reason: Option<String>,
    pub record_index: usize,
    /// The reply came as a stream (an endpoint asked to stream may answer whole).
    pub streamed: bool,
    /// Why a streamed reply was cut short: it is invalid for that reason.
    pub cut_off: Option<String>,
}

/// Why [`Transport::send`] stopped without a reply.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The endpoint rejected the `response_format`; the caller may step down the ladder.
    FormatRejected {
        detail: String,
    },
    /// The endpoint rejected `stream`; the caller asks again without it.
    StreamRejected {
        detail: String,
    },
    Failed(LlmError),
}

impl From<LlmError> for SendError {
    fn from(error: LlmError) -> Self {
        SendError::Failed(error)
    }
}

/// What the retry loop knows about the failures so far.
struct Failures {
    /// Every attempt failed to connect: the endpoint is unreachable, not failing.
    all_connect: bool,
    /// The last failure, for the final error message.
    last: String,
}

/// What the retry policy made of one attempt.
enum Assessed {
    Done(Result<Completion, SendError>),
    Retry { requested_wait: Option<Duration> },
}

/// What came back from one attempt, before the retry policy looks at it.
pub(crate) enum Arrived {
    Response {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// A streamed 2xx reply, assembled into the non-streamed body it stands for.
    Streamed {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
        end: StreamEnd,
        /// Tokens received (the endpoint's count, else the pieces), however the stream ended.
        tokens: u64,
    },
    /// No (complete) response: connect failure, timeout, broken connection.
    NoResponse {
        reason: String,
        connect_failed: bool,
    },
}

/// How a streamed reply ended.
pub(crate) enum StreamEnd {
    /// It ended (`[DONE]` or the end of the body).
    Complete,
    /// We cut it: it could not become valid.
    CutOff(String),
    /// It stopped: silence, the total deadline, a broken connection or an event that is not JSON.
    Broken(String),
}

impl Transport {
    pub(crate) fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout.value)
            .user_agent(concat!("git-spectra/", env!("CARGO_PKG_VERSION")));
        if settings.url.value.scheme() == "http" {
            // A plain-HTTP endpoint (a local server, the usual case) needs no trust roots, and
            // reading the system's certificate store is the slowest part of building a client
            // (several ms, every command). A redirect to https then fails as untrusted.
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        let http = builder
            .build()
            .map_err(|e| LlmError::Setup(error_chain(&e)))?;
        let scrubber = Scrubber::for_settings(&settings);
        Ok(Transport {
            http,
            settings,
            scrubber,
            recorded: None,
        })
    }

    /// This transport answering every request from `recorded`, sending nothing.
    pub(crate) fn replaying(mut self, recorded: std::sync::Arc<super::recorded::Recorded>) -> Self {
        self.recorded = Some(recorded);
        self
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The endpoint as recorded and shown: no user or password part.
    pub(crate) fn endpoint(&self) -> String {
        self.settings.shown_url()
    }

    /// What removes the configured secrets from everything the endpoint sends back.
    pub(crate) fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Sends `exchange` until it succeeds, fails for good, runs out of attempts or of time.
    /// Every attempt is appended to `records`.
    pub(crate) async fn send(
        &self,
        exchange: &Exchange<'_>,
        records: &mut Vec<AttemptRecord>,
    ) -> Result<Reply, SendError> {
        let mut failures = Failures {
            all_connect: true,
            last: String::new(),
        };
        for n in 1..=exchange.max_attempts {
            let remaining = exchange.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self
                    .deadline_error(exchange, records.len(), failures.last)
                    .into());
            }
            exchange.watcher.settled(records);
            let (record, arrived) = self
                .attempt(exchange, records.len() as u32 + 1, remaining)
                .await?;
            records.push(record);
            let record_index = records.len() - 1;
            let requested_wait =
                match self.assess(arrived, &mut records[record_index], &mut failures) {
                    Assessed::Done(Ok(completion)) => {
                        return Ok(Reply {
                            content: completion.content,
                            finish_reason: completion.finish_reason,
                            record_index,
                            streamed: records[record_index].cut_off.is_some()
                                || completion.streamed,
                            cut_off: records[record_index].cut_off.clone(),
                        });
                    }
                    Assessed::Done(Err(error)) => return Err(error),
                    Assessed::Retry { requested_wait } => requested_wait,
                };
            if n < exchange.max_attempts {
                let wait = self.wait_before(n + 1, requested_wait, exchange, records, &failures)?;
                tracing::debug!(
                    attempt = n + 1,
                    wait_ms = wait.as_millis() as u64,
                    "retrying the LLM request"
                );
                // A replay's answers are already there: waiting would only slow it down.
                if self.recorded.is_none() {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(self
            .out_of_attempts(exchange, records.len(), failures)
            .into())
    }

    /// What one attempt's outcome means: a completion, a final error, or another attempt
    /// (with the wait the server asked for, if it did). Fills in the record's error.
    fn assess(
        &self,
        arrived: Arrived,
        record: &mut AttemptRecord,
        failures: &mut Failures,
    ) -> Assessed {
        let (status, headers, body) = match arrived {
            Arrived::NoResponse {
                reason,
                connect_failed,
            } => {
                failures.all_connect &= connect_failed;
                record.error = Some(reason.clone());
                failures.last = reason;
                return Assessed::Retry {
                    requested_wait: None,
                };
            }
            Arrived::Response {
                status,
                headers,
                body,
            } => (status, headers, body),
            Arrived::Streamed { body, end, .. } => {
                failures.all_connect = false;
                return self.assess_stream(body, end, record, failures);
            }
        };
        failures.all_connect = false;
        if record.stream && retry::is_stream_rejection(status, &body) {
            let detail = error_detail(&body, &self.scrubber);
            record.error = Some(format!("HTTP {status}: {detail}"));
            return Assessed::Done(Err(SendError::StreamRejected { detail }));
        }
        let sent_format = record.format != ResponseFormat::Instructions;
        let verdict = retry::classify(status, &body, sent_format);
        if verdict == Verdict::Success {
            return Assessed::Done(self.completion(record, &body));
        }
        let detail = error_detail(&body, &self.scrubber);
        record.error = Some(format!("HTTP {status}: {detail}"));
        if verdict != Verdict::Retry {
            return Assessed::Done(Err(refusal(verdict, status, detail)));
        }
        failures.last = format!("HTTP {status}: {detail}");
        let requested_wait = retry::requested_delay(
            header(&headers, "retry-after"),
            header(&headers, "retry-after-ms"),
            SystemTime::now(),
        );
        Assessed::Retry { requested_wait }
    }

    /// What a streamed reply means: a completion (possibly cut off), or another attempt.
    fn assess_stream(
        &self,
        body: Vec<u8>,
        end: StreamEnd,
        record: &mut AttemptRecord,
        failures: &mut Failures,
    ) -> Assessed {
        match end {
            StreamEnd::Complete => {
                Assessed::Done(self.completion(record, &body).map(|mut completion| {
                    completion.streamed = true;
                    completion
                }))
            }
            StreamEnd::CutOff(reason) => {
                let reason = self.scrubber.text(&reason);
                tracing::info!(%reason, "cut the streamed reply short");
                record.cut_off = Some(reason);
                Assessed::Done(self.completion(record, &body))
            }
            StreamEnd::Broken(reason) => {
                let reason = self.scrubber.text(&reason);
                record.error = Some(reason.clone());
                failures.last = reason;
                Assessed::Retry {
                    requested_wait: None,
                }
            }
        }
    }

    /// The wait before attempt `next`: what the server asked for, else jittered backoff; an
    /// error if the server asks for too long or the wait would outlast the deadline.
    fn wait_before(
        &self,
        next: u32,
        requested: Option<Duration>,
        exchange: &Exchange<'_>,
        records: &[AttemptRecord],
        failures: &Failures,
    ) -> Result<Duration, LlmError> {
        let max = self.settings.max_delay.value;
        let wait = match requested {
            Some(wait) if wait > max => return Err(LlmError::RetryAfterTooLong { wait, max }),
            Some(wait) => wait,
            None => {
                let backoff = Backoff {
                    base: self.settings.backoff_base.value,
                    cap: max,
                };
                backoff.pause(next - 1)
            }
        };
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|end| end >= exchange.deadline)
        {
            return Err(self.deadline_error(exchange, records.len(), failures.last.clone()));
        }
        Ok(wait)
    }

    /// The error after the last attempt failed with a retryable error. `made` counts every
    /// attempt of the decision, repair turns included.
    fn out_of_attempts(
        &self,
        exchange: &Exchange<'_>,
        made: usize,
        failures: Failures,
    ) -> LlmError {
        let attempts = exchange.max_attempts;
        if Instant::now() >= exchange.deadline {
            // The last attempt was cut short by the deadline, not by its own timeout.
            return self.deadline_error(exchange, made, failures.last);
        }
        let url = self.endpoint();
        if failures.all_connect {
            LlmError::Unreachable {
                url,
                attempts,
                reason: failures.last,
            }
        } else {
            LlmError::RetriesExhausted {
                url,
                attempts,
                last: failures.last,
            }
        }
    }

    /// The total deadline passed; `made` counts every attempt of the decision so far, over
    /// all its turns, since the deadline is the decision's and not one turn's.
    fn deadline_error(&self, exchange: &Exchange<'_>, made: usize, last: String) -> LlmError {
        LlmError::DeadlineExceeded {
            url: self.endpoint(),
            total: exchange.total,
            attempts: made as u32,
            last,
        }
    }

    /// Reads the completion out of a 2xx body, filling in the record's usage and finish reason.
    fn completion(&self, record: &mut AttemptRecord, body: &[u8]) -> Result<Completion, SendError> {
        match parse_completion(body) {
            Ok(mut completion) => {
                record.usage = completion.usage;
                record.finish_reason.clone_from(&completion.finish_reason);
                // The body was scrubbed at every level of escaping, which covers the content;
                // the decoded reply goes back to the endpoint in a repair turn and into errors,
                // so scrub it again rather than rely on that.
                completion.content = self.scrubber.text(&completion.content);
                Ok(completion)
            }
            Err(detail) => {
                let detail = self.scrubber.text(&detail);
                record.error = Some(format!("not a chat completion: {detail}"));
                Err(LlmError::MalformedResponse { detail }.into())
            }
        }
    }

    /// One HTTP attempt under `min(attempt timeout, remaining)`, and its record; in a replay,
    /// the recorded answer to the same request instead, or [`LlmError::NotRecorded`].
    async fn attempt(
        &self,
        exchange: &Exchange<'_>,
        number: u32,
        remaining: Duration,
    ) -> Result<(AttemptRecord, Arrived), LlmError> {
        let timeout = self.settings.attempt_timeout.value.min(remaining);
        self.log_request(exchange, number);
        let started_at = jiff::Timestamp::now().to_string();
        let started = Instant::now();
        let sent = if exchange.stream {
            with_stream(exchange.body)
        } else {
            exchange.body.to_vec()
        };
        let arrived = match &self.recorded {
            Some(recorded) => {
                let request_body = self.scrubber.bytes(&sent);
                let attempt = recorded
                    .answer(&request_body, &sha256_hex(&request_body))
                    .map_err(|miss| LlmError::NotRecorded(miss.to_string()))?;
                recorded_arrival(attempt)
            }
            None => self.over_http(exchange, &sent, timeout, started).await,
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        let arrived = self.scrubbed(arrived);
        // Our own request holds no secret unless the user's prompt did; record it without one.
        let request_body = self.scrubber.bytes(&sent);
        let mut record = AttemptRecord {
            attempt: number,
            turn: exchange.turn,
            format: exchange.format,
            url: self.endpoint(),
            started_at,
            request_sha256: sha256_hex(&request_body),
            request_body: Body(request_body),
            response_body: None,
            response_sha256: None,
            status: None,
            headers: BTreeMap::new(),
            latency_ms,
            usage: None,
            finish_reason: None,
            error: None,
            stream: exchange.stream,
            cut_off: None,
            tokens_received: match &arrived {
                Arrived::Streamed { tokens, .. } => Some(*tokens),
                _ => None,
            },
        };
        if let Arrived::Response {
            status,
            headers,
            body,
        }
        | Arrived::Streamed {
            status,
            headers,
            body,
            ..
        } = &arrived
        {
            record.status = Some(*status);
            record.headers = recorded_headers(headers, &self.scrubber);
            record.response_sha256 = Some(sha256_hex(body));
            record.response_body = Some(Body(body.clone()));
        }
        tracing::debug!(attempt = number, status = ?record.status, latency_ms, format = %exchange.format, "LLM attempt");
        Ok((record, arrived))
    }

    /// What came back over HTTP for `sent` within `timeout`.
    async fn over_http(
        &self,
        exchange: &Exchange<'_>,
        sent: &[u8],
        timeout: Duration,
        started: Instant,
    ) -> Arrived {
        let timed_out = || Arrived::NoResponse {
            reason: format!("no complete response within {}s", timeout.as_secs_f64()),
            connect_failed: false,
        };
        match tokio::time::timeout(timeout, self.post(sent)).await {
            Ok(Ok(response)) if exchange.stream && is_event_stream(&response) => {
                self.read_stream(response, exchange, started).await
            }
            Ok(Ok(response)) => match tokio::time::timeout(
                timeout.saturating_sub(started.elapsed()),
                read_response(response),
            )
            .await
            {
                Ok(Ok(arrived)) if exchange.stream => events_without_their_type(arrived),
                Ok(Ok(arrived)) => arrived,
                Ok(Err(error)) => self.no_response(&error),
                Err(_) => timed_out(),
            },
            Ok(Err(error)) => self.no_response(&error),
            Err(_) => timed_out(),
        }
    }

    /// An attempt whose request or response failed in transport, in words without a secret.
    fn no_response(&self, error: &reqwest::Error) -> Arrived {
        Arrived::NoResponse {
            reason: self.scrubber.text(&error_chain(error)),
            connect_failed: error.is_connect(),
        }
    }

    /// `arrived` with the secrets scrubbed from the body, so that nothing downstream (the
    /// record, the completion, an error message, the planner's salvage) sees them.
    fn scrubbed(&self, arrived: Arrived) -> Arrived {
        match arrived {
            Arrived::Response {
                status,
                headers,
                body,
            } => Arrived::Response {
                status,
                headers,
                body: self.scrubber.bytes(&body),
            },
            Arrived::Streamed {
                status,
                headers,
                body,
                end,
                tokens,
            } => Arrived::Streamed {
                status,
                headers,
                body: self.scrubber.bytes(&body),
                end,
                tokens,
            },
            no_response => no_response,
        }
    }

    /// The request body holds the prompts, so the log shows it only when
    /// `SPECTRA_LOG_PROMPTS=1`, and never with the API key in it.
    fn log_request(&self, exchange: &Exchange<'_>, number: u32) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let body = self.scrubber.text(&String::from_utf8_lossy(exchange.body));
        tracing::debug!(
            attempt = number,
            url = %self.endpoint(),
            request = %crate::logging::loggable_prompt(&body),
            "sending the LLM request"
        );
    }

    async fn post(&self, body: &[u8]) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.settings.url.value.clone())
            .bearer_auth(self.settings.api_key.value.expose())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
    }
}

/// A recorded attempt as if it had just arrived: the same response, streamed or whole, or no
/// response for the same reason.
fn recorded_arrival(attempt: super::recorded::RecordedAttempt) -> Arrived {
    let (Some(status), Some(body)) = (attempt.status, attempt.response_body) else {
        return Arrived::NoResponse {
            reason: attempt
                .error
                .unwrap_or_else(|| "no response (as recorded)".to_string()),
            connect_failed: false,
        };
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &attempt.headers {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    // Only a reply that came as a stream counted the tokens it delivered; an endpoint asked to
    // stream may have answered whole.
    let Some(tokens) = attempt.tokens_received.filter(|_| attempt.stream) else {
        return Arrived::Response {
            status,
            headers,
            body,
        };
    };
    Arrived::Streamed {
        status,
        headers,
        body,
        end: attempt
            .cut_off
            .map_or(StreamEnd::Complete, StreamEnd::CutOff),
        tokens,
    }
}

/// Status, headers and body, the body cut at [`MAX_RESPONSE_BYTES`].
pub(crate) async fn read_response(
    mut response: reqwest::Response,
) -> Result<Arrived, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            body.truncate(MAX_RESPONSE_BYTES);
            break;
        }
    }
    Ok(Arrived::Response {
        status,
        headers,
        body,
    })
}

fn refusal(verdict: Verdict, status: u16, detail: String) -> SendError {
    match verdict {
        Verdict::FormatRejected => SendError::FormatRejected { detail },
        Verdict::ContextLength => LlmError::ContextLength { detail }.into(),
        Verdict::InsufficientQuota => LlmError::InsufficientQuota { detail }.into(),
        Verdict::Success | Verdict::Retry | Verdict::Refused => {
            LlmError::Refused { status, detail }.into()
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn recorded_headers(headers: &HeaderMap, scrubber: &Scrubber) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| is_recorded_header(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                scrubber.text(&String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect()
}

/// The error's message and its causes, `a: b: c`, because reqwest's top-level message alone
/// ("error sending request") hides the useful part ("Connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A short description of an error body: OpenAI-style `error.message` (or a top-level `message`
/// as vLLM sends), else the start of the body; the secrets scrubbed out before it is cut short,
/// so that the cut cannot leave half a secret behind.
pub(crate) fn error_detail(body: &[u8], scrubber: &Scrubber) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = json.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
    });
    let text = match message {
        Some(message) => message.to_owned(),
        None => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    scrubber.text(&text).chars().take(DETAIL_CHARS).collect()
}

/// The parts of a chat completion we use.
struct Completion {
    content: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    streamed: bool,
}

fn parse_completion(body: &[u8]) -> Result<Completion, String> {
    #[derive(serde::Deserialize)]
    struct Wire {
        choices: Vec<Choice>,
        usage: Option<Usage>,
    }
    #[derive(serde::Deserialize)]
    struct Choice {
        message: Option<Message>,
        finish_reason: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        content: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body)
            .chars()
            .take(DETAIL_CHARS)
            .collect();
        format!("{e}; body starts {start:?}")
    })?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or("no choices in the response")?;
    let message = choice.message.ok_or("the first choice has no message")?;
    Ok(Completion {
        // A null content (a refusal, or a tool call we did not ask for) is an empty reply, which
        // the repair turn then reports to the model.
        content: message.content.unwrap_or_default(),
        finish_reason: choice.finish_reason,
        usage: wire.usage,
        streamed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_prefer_the_openai_message_and_scrub_the_key() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-secret-1","type":"invalid_request_error"}}"#;
        let scrubber = Scrubber::new(["sk-secret-1"]);
        assert_eq!(
            error_detail(body, &scrubber),
            "Incorrect API key provided: ***"
        );
        assert_eq!(error_detail(br#"{"message":"bad"}"#, &scrubber), "bad");
        assert_eq!(error_detail(b"", &scrubber), "(empty body)");
        assert_eq!(error_detail(b"plain text", &scrubber), "plain text");
        // Escaped twice: the message decodes to `sk-\u0073ecret-1`, still the key.
        let escaped = br#"{"error":{"message":"bad key sk-\u0073ecret-1"}}"#;
        assert_eq!(error_detail(escaped, &scrubber), "bad key ***");
        // A key that straddles the cut is scrubbed whole, not cut in half first.
        let long = format!("{}sk-secret-1", "x".repeat(DETAIL_CHARS - 4));
        let detail = error_detail(long.as_bytes(), &scrubber);
        assert!(!detail.contains("sk-s"), "{detail}");
    }

    #[test]
    fn completions_yield_content_finish_reason_and_usage() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"{}"},"finish_reason":"length"}],
                       "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let c = parse_completion(body).unwrap();
        assert_eq!(c.content, "{}");
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        assert_eq!(c.usage.unwrap().total_tokens, 7);
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(b"<html>").is_err());
        assert_eq!(
            parse_completion(br#"{"choices":[{"message":{"content":null}}]}"#)
                .unwrap()
                .content,
            ""
        );
    }
}
