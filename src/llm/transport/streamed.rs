//! Reading a streamed reply: assembling it, reporting progress, and stopping it when it goes
//! silent, outlives the total deadline or turns into a runaway; and what to raise when it does.

use std::time::{Duration, Instant};

use super::{Arrived, Exchange, MAX_RESPONSE_BYTES, StreamEnd, Transport, error_chain, header};
use crate::llm::stream::{Assembler, RunawayWatch};

impl Transport {
    /// Reads a streamed reply to its end, or until it goes silent, runs past the total
    /// deadline, or turns into a runaway. Before the first piece the model may still be reading
    /// the prompt, so that wait is the attempt timeout; after it, the silence timeout.
    pub(super) async fn read_stream(
        &self,
        mut response: reqwest::Response,
        exchange: &Exchange<'_>,
        started: Instant,
    ) -> Arrived {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut assembler = Assembler::default();
        let mut watch = RunawayWatch::new(max_tokens_of(exchange.body));
        let mut last_report = started;
        let mut last_log = started;
        let end = loop {
            let quiet_limit = if assembler.pieces == 0 {
                (self.settings.attempt_timeout.value, "spectra.llm.timeout")
            } else {
                (
                    self.settings.silence_timeout.value,
                    "spectra.llm.silenceTimeout",
                )
            };
            let left = exchange.deadline.saturating_duration_since(Instant::now());
            let wait = quiet_limit.0.min(left);
            let chunk = match tokio::time::timeout(wait, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => match assembler.finish() {
                    Ok(_) => break StreamEnd::Complete,
                    Err(detail) => break StreamEnd::Broken(detail),
                },
                Ok(Err(error)) => break StreamEnd::Broken(error_chain(&error)),
                Err(_) if wait < quiet_limit.0 => {
                    break StreamEnd::Broken(self.deadline_advice(&assembler, exchange, started));
                }
                Err(_) => {
                    break StreamEnd::Broken(silence_advice(
                        &assembler,
                        quiet_limit,
                        started.elapsed(),
                    ));
                }
            };
            let piece = match assembler.feed(&chunk) {
                Ok(piece) => piece,
                Err(detail) => break StreamEnd::Broken(detail),
            };
            if let Some(reason) = watch.push(&piece) {
                break StreamEnd::CutOff(reason);
            }
            if assembler.done {
                break StreamEnd::Complete;
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                if last_log.elapsed() >= LOG_EVERY {
                    last_log = Instant::now();
                    log_writing(assembler.tokens(), started.elapsed());
                }
                exchange
                    .watcher
                    .writing(assembler.tokens(), started.elapsed());
            }
            if assembler.content.len() > MAX_RESPONSE_BYTES {
                break StreamEnd::CutOff("the reply grew past the response size cap".to_owned());
            }
        };
        exchange
            .watcher
            .writing(assembler.tokens(), started.elapsed());
        streamed(status, headers, &assembler, end)
    }

    /// What the total deadline cut short, and how far to raise it given the speed measured.
    fn deadline_advice(
        &self,
        assembler: &Assembler,
        exchange: &Exchange<'_>,
        started: Instant,
    ) -> String {
        let elapsed = started.elapsed().as_secs_f64();
        let tokens = assembler.tokens();
        let needed = max_tokens_of(exchange.body);
        if tokens == 0 || elapsed <= 0.0 {
            return format!(
                "the total timeout ran out after {elapsed:.0}s before the model wrote anything: \
                 raise spectra.llm.totalTimeout (now {}s)",
                exchange.total.as_secs()
            );
        }
        let rate = tokens as f64 / elapsed;
        // Time for a whole reply at this speed, plus what this attempt spent before it, with a
        // margin for a repair turn's shorter reply.
        let at_least = (needed as f64 / rate * 1.25).ceil() as u64 + 30;
        let at_least = at_least.max(exchange.total.as_secs() + 60);
        format!(
            "the total timeout ran out while the model was writing: it wrote {tokens} tokens at \
             {rate:.1} tok/s; a decision needs up to {needed}: raise spectra.llm.totalTimeout to \
             at least {at_least}s"
        )
    }
}

/// How often, at most, the progress of a streamed reply is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How often, at most, `-v` logs the progress of a streamed reply (the terminal line is updated
/// more often; a log is read later and need not be flooded).
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The `-v` log line of a streamed reply's progress: what the terminal shows.
fn log_writing(tokens: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(0.001);
    tracing::info!(
        tokens,
        elapsed_s = elapsed.as_secs(),
        tok_per_s = format!("{:.1}", tokens as f64 / secs),
        "the model is writing"
    );
}

/// `body` asking for a streamed reply, with the token usage in its last event.
pub(super) fn with_stream(body: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    value["stream"] = serde_json::Value::Bool(true);
    value["stream_options"] = serde_json::json!({"include_usage": true});
    serde_json::to_vec(&value).expect("a serde_json::Value always serializes")
}

/// The request's `max_tokens`: the reply budget the runaway watch and the advice go by.
pub(super) fn max_tokens_of(body: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["max_tokens"].as_u64())
        .unwrap_or(u64::from(u32::MAX))
}

/// Whether a response is a 2xx server-sent event stream (anything else is read whole).
pub(super) fn is_event_stream(response: &reqwest::Response) -> bool {
    response.status().is_success()
        && header(response.headers(), "content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// A 2xx body read whole that is really an event stream (a server that streams without saying
/// `text/event-stream`), assembled like one; anything else unchanged.
pub(super) fn events_without_their_type(arrived: Arrived) -> Arrived {
    let Arrived::Response {
        status,
        headers,
        body,
    } = arrived
    else {
        return arrived;
    };
    if !(200..300).contains(&status) || !body.trim_ascii_start().starts_with(b"data:") {
        return Arrived::Response {
            status,
            headers,
            body,
        };
    }
    let mut assembler = Assembler::default();
    let end = match assembler.feed(&body).and_then(|_| assembler.finish()) {
        Ok(_) => StreamEnd::Complete,
        Err(detail) => StreamEnd::Broken(detail),
    };
    streamed(status, headers, &assembler, end)
}

/// The assembled reply and how its stream ended.
fn streamed(
    status: u16,
    headers: reqwest::header::HeaderMap,
    assembler: &Assembler,
    end: StreamEnd,
) -> Arrived {
    Arrived::Streamed {
        status,
        headers,
        body: assembler.body(),
        end,
        tokens: assembler.tokens(),
    }
}

/// What a silent stream stopped at, and the setting to raise.
fn silence_advice(
    assembler: &Assembler,
    (limit, key): (Duration, &str),
    elapsed: Duration,
) -> String {
    let tokens = assembler.tokens();
    let rate = tokens as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "the model went silent: no new token for {}s after {tokens} tokens ({rate:.1} tok/s); \
         raise {key} if the model pauses longer",
        limit.as_secs_f64()
    )
}
