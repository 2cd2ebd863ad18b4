//! Records a run's events as they happen.
//!
//! Events are queued and appended in one ref update before each step's first effect (a model
//! call, a playbook that may change something, a file written or committed) and at the end of
//! the run, so a run costs a
//! few appends rather than one per event, while a crash still leaves everything that led to an
//! effect in the log.

use serde_json::{Value, json};

use crate::event::{NewEvent, kind};
use crate::llm::AttemptRecord;
use crate::store::{Store, StoreError, StoredEvent};

/// The events of one run, on their way to the store.
pub struct Recorder<'s> {
    store: &'s Store,
    run: String,
    pending: Vec<NewEvent>,
    /// Ids of every event this run recorded (pending or appended).
    pub recorded: Vec<String>,
    /// The events appended so far, as stored, oldest first.
    appended: Vec<StoredEvent>,
    /// What no event may hold: the settings' secrets, whatever a playbook printed.
    scrubber: crate::llm::scrub::Scrubber,
}

impl<'s> Recorder<'s> {
    /// A recorder appending to `store` on behalf of `run`.
    pub fn new(store: &'s Store, run: impl Into<String>) -> Recorder<'s> {
        Recorder {
            store,
            run: run.into(),
            pending: Vec::new(),
            recorded: Vec::new(),
            appended: Vec::new(),
            scrubber: crate::llm::scrub::Scrubber::default(),
        }
    }

    /// Scrubs every event recorded from now on with `scrubber`: a playbook that prints the API
    /// key (read from the config, say) leaves `***` in the log, never the key.
    pub fn scrubbing(mut self, scrubber: crate::llm::scrub::Scrubber) -> Recorder<'s> {
        self.scrubber = scrubber;
        self
    }

    /// The run id every event gets.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Queues `event` under this run and returns its id.
    pub fn record(&mut self, event: NewEvent) -> String {
        let mut event = event.run(self.run.clone());
        self.scrubber.event(&mut event);
        let id = event.id.clone();
        self.recorded.push(id.clone());
        self.pending.push(event);
        id
    }

    /// Queues one `llm.called` event per HTTP attempt, request and response bodies as
    /// attachments, and returns their ids (the causes of the decision they led to). `activity`
    /// is `None` for the planner, which decides for the run rather than for one activity.
    pub fn record_llm_attempts(
        &mut self,
        activity: Option<&str>,
        service: Option<&str>,
        model: &str,
        records: &[AttemptRecord],
    ) -> Vec<String> {
        records
            .iter()
            .map(|record| {
                let status = record
                    .status
                    .map_or_else(|| "no response".into(), |status| format!("HTTP {status}"));
                let mut payload = json!({
                    "attempt": record.attempt,
                    "turn": record.turn,
                    "format": record.format,
                    "url": record.url,
                    "model": model,
                    "started_at": record.started_at,
                    "status": record.status,
                    "latency_ms": record.latency_ms,
                    "usage": record.usage,
                    "finish_reason": record.finish_reason,
                    "headers": record.headers,
                    "error": record.error,
                    "request_sha256": record.request_sha256,
                    "response_sha256": record.response_sha256,
                });
                add_stream_fields(&mut payload, record);
                let mut event = NewEvent::new(kind::LLM_CALLED)
                    .subject(format!(
                        "{}: asked {model} (attempt {}, {status})",
                        activity.unwrap_or("planner"),
                        record.attempt,
                    ))
                    .payload(payload)
                    .attach("request.json", record.request_body.as_bytes().to_vec());
                if let Some(body) = &record.response_body {
                    event = event.attach("response.json", body.as_bytes().to_vec());
                }
                if let Some(activity) = activity {
                    event = event.activity(activity);
                }
                if let Some(service) = service {
                    event = event.service(service);
                }
                self.record(event)
            })
            .collect()
    }

    /// Appends everything queued, in one ref update.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let stored = self.store.append_batch(batch)?;
        self.appended.extend(stored);
        Ok(())
    }

    /// The events appended so far, as stored, oldest first.
    pub fn appended(&self) -> &[StoredEvent] {
        &self.appended
    }
}

/// A run that stops early (an error returned with `?` between two flushes) still leaves what it
/// recorded in the log: those events describe things that happened. Best effort: a store that
/// just failed will likely fail again, and that error was already reported.
impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.flush();
        }
    }
}

/// A streamed attempt's own fields, only on streamed attempts so that other `llm.called`
/// payloads keep their shape: `stream`, why it was cut off, and the tokens it delivered.
fn add_stream_fields(payload: &mut Value, record: &AttemptRecord) {
    if !record.stream {
        return;
    }
    payload["stream"] = json!(true);
    if let Some(reason) = &record.cut_off {
        payload["cut_off"] = json!(reason);
    }
    if let Some(tokens) = record.tokens_received {
        payload["tokens_received"] = json!(tokens);
    }
}
