//! Streamed replies against the scripted server: assembly across awkward chunk boundaries,
//! the fallback for endpoints that refuse `stream`, the runaway cut-off and the silence timeout.
//!
//! The server writes each event chunk when the test sends it on a channel; a stream the test
//! keeps open without sending is one that never ends, so the only waits are the timeouts under
//! test (a second, or a few where a loaded machine must first get a round trip done) and the
//! beat of the terminal test, which must outlast the binary's progress interval.

use std::time::Duration;

use serde_json::{Value, json};
use spectra::llm::{Client, Decision, DecisionRequest, LlmFailure};
use spectra::settings::{LlmSettings, Secret, Setting};

use crate::llm_server::{LlmServer, Reply, sse_text};

fn settings(url: &str) -> LlmSettings {
    let mut s = LlmSettings::for_url(url).expect("valid test URL");
    s.api_key = Setting::flag(Secret::new("sk-stream-secret-0123456789"));
    s.model = Setting::flag("test-model".to_owned());
    s.attempt_timeout = Setting::flag(Duration::from_secs(5));
    s.connect_timeout = Setting::flag(Duration::from_secs(1));
    s.total_timeout = Setting::flag(Duration::from_secs(20));
    s.max_attempts = Setting::flag(1);
    s.backoff_base = Setting::flag(Duration::from_millis(10));
    s
}

fn request() -> DecisionRequest {
    DecisionRequest {
        system: "You choose playbooks.".to_owned(),
        user: "Choose one for the logging service.".to_owned(),
        schema: json!({
            "type": "object",
            "properties": {
                "playbook": {"type": "string"},
                "reason": {"type": "string"},
                "items": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["playbook", "reason"],
            "additionalProperties": false
        }),
        schema_name: "discover_decision".to_owned(),
        max_tokens: None,
    }
}

fn good() -> Value {
    json!({"playbook": "catalog.check", "reason": "déjà vu, it is cheap — “quoted”"})
}

fn decide(settings: LlmSettings, state: Option<&std::path::Path>) -> Result<Decision, LlmFailure> {
    Client::new(settings, state).unwrap().decide(&request())
}

/// `text` cut into pieces of `size` characters.
fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[test]
fn a_reply_streamed_in_tiny_chunks_is_the_same_decision_and_record_as_a_whole_one() {
    let content = good().to_string();
    let pieces = pieces(&content, 3);
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let events = sse_text(&pieces);
    // 5-byte chunks: boundaries fall inside multi-byte characters and inside JSON strings.
    let streamed_server = LlmServer::start();
    streamed_server.push(Reply::sse_chunks(
        events.as_bytes().chunks(5).map(<[u8]>::to_vec),
    ));
    let whole_server = LlmServer::start();
    whole_server.push(Reply::chat(&content));
    let mut no_stream = settings(&whole_server.url());
    no_stream.stream = Setting::flag(false);

    let streamed = decide(settings(&streamed_server.url()), None).expect("streamed decision");
    let whole = decide(no_stream, None).expect("whole decision");

    assert_eq!(streamed.value, good());
    assert_eq!(streamed.value, whole.value);
    assert_eq!(streamed_server.chat_requests()[0].json()["stream"], true);
    assert_eq!(whole_server.chat_requests()[0].json().get("stream"), None);
    let body = |d: &Decision| -> Value {
        serde_json::from_slice(d.records[0].response_body.as_ref().unwrap().as_bytes()).unwrap()
    };
    assert_eq!(body(&streamed), body(&whole));
    assert!(streamed.records[0].stream);
    assert_eq!(streamed.records[0].usage, whole.records[0].usage);
}

#[test]
fn an_endpoint_that_rejects_stream_is_asked_whole_and_remembered() {
    let server = LlmServer::start();
    server.push(Reply::error(
        400,
        "stream is not supported by this server",
        None,
    ));
    server.push(Reply::chat_json(&good()));
    server.push(Reply::chat_json(&good()));
    let state = tempfile::tempdir().unwrap();

    let first = decide(settings(&server.url()), Some(state.path())).expect("decision");
    let later = decide(settings(&server.url()), Some(state.path())).expect("decision");

    assert_eq!((first.value.clone(), later.value), (good(), good()));
    let sent: Vec<Value> = server.chat_requests().iter().map(|r| r.json()).collect();
    assert_eq!(
        sent.len(),
        3,
        "one refused stream, then whole requests only"
    );
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(sent[1].get("stream"), None);
    assert_eq!(sent[2].get("stream"), None, "the refusal was remembered");
    assert_eq!(first.records.len(), 2);
    assert!(
        first.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("stream")
    );
}

#[test]
fn a_runaway_stream_is_cut_and_the_repair_turn_names_the_reason() {
    let server = LlmServer::start();
    let (runaway, sender) = Reply::sse();
    server.push(runaway);
    server.push(Reply::chat_json(&good()));
    let start = sse_text(&[]);
    let head = start.split("\n\n").next().unwrap();
    sender.send(format!("{head}\n\n").into_bytes()).unwrap();
    let piece = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": text}}]})
        )
        .into_bytes()
    };
    sender
        .send(piece("{\"playbook\": \"catalog.check\", \"items\": ["))
        .unwrap();
    // Far more repeats than the cut-off needs; the stream is never closed.
    for _ in 0..200 {
        sender.send(piece("\"again\", ")).unwrap();
    }

    let decision = decide(settings(&server.url()), None).expect("repaired decision");

    assert_eq!(decision.value, good());
    assert_eq!(decision.repairs, 1);
    let cut = decision.records[0]
        .cut_off
        .as_deref()
        .expect("cut_off recorded");
    assert!(cut.contains("repeated 8 times"), "{cut}");
    let echoed = decision.records[0].response_body.as_ref().unwrap().lossy();
    assert!(
        echoed.matches("again").count() < 20,
        "cut within a bounded number of chunks: {echoed}"
    );
    let repair = server.chat_requests()[1].message_texts().join("\n");
    assert!(repair.contains("cut off while it was written"), "{repair}");
    assert!(repair.contains("repeated 8 times"), "{repair}");
    drop(sender);
}

#[test]
fn a_stream_that_goes_silent_hits_the_silence_timeout_and_says_what_to_raise() {
    let server = LlmServer::start();
    let (silent, sender) = Reply::sse();
    server.push(silent);
    sender
        .send(
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": "{\"playbook\""}}]})
            )
            .into_bytes(),
        )
        .unwrap();
    let mut s = settings(&server.url());
    s.silence_timeout = Setting::flag(Duration::from_secs(1));

    let failure = decide(s, None).expect_err("the stream never ends");

    let message = failure.error.to_string();
    assert!(message.contains("spectra.llm.silenceTimeout"), "{message}");
    assert!(message.contains("1 tokens"), "{message}");
    let record = &failure.records[0];
    assert!(record.error.as_deref().unwrap().contains("went silent"));
    drop(sender);
}

/// How far apart paced chunks are sent: more than the binary's 250 ms progress interval, so
/// every chunk after the first finds a progress report due.
const BEAT: Duration = Duration::from_millis(300);

/// How long the test waits for the binary to ask the model, or to show what it waits for: a
/// bound that turns a regression into a failure rather than a hang, never a pace.
const PATIENCE: Duration = Duration::from_secs(60);

/// How long to stream, once the model is asked.
#[derive(Clone, Copy)]
enum Pacing {
    /// Until the terminal shows this text (or [`PATIENCE`] runs out).
    UntilShown(&'static str),
    /// For this many beats.
    Beats(usize),
}

/// What the pseudo-terminal shows, read on a thread as it comes.
struct Terminal {
    seen: std::sync::mpsc::Receiver<Vec<u8>>,
    shown: Vec<u8>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    fn read(mut output: impl std::io::Read + Send + 'static) -> Terminal {
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = output.read(&mut buffer) {
                if n == 0 || seen_tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            seen,
            shown: Vec::new(),
            reader,
        }
    }

    /// Collects what is shown for `span`; false once the terminal has closed (the process
    /// ended), since nothing more will come.
    fn watch(&mut self, span: Duration) -> bool {
        use std::sync::mpsc::RecvTimeoutError;
        let end = std::time::Instant::now() + span;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(bytes) => self.shown.extend(bytes),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn shows(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.shown).contains(text)
    }

    /// Everything shown, once the process has ended.
    fn finish(mut self) -> String {
        self.reader.join().unwrap();
        self.shown.extend(self.seen.try_iter().flatten());
        String::from_utf8_lossy(&self.shown).into_owned()
    }
}

/// The events of a streamed decision, sent on the server's channel one at a time.
struct Stream {
    sender: std::sync::mpsc::Sender<Vec<u8>>,
    events: std::collections::VecDeque<Vec<u8>>,
}

impl Stream {
    /// The events of a streamed `content`, in about 30 pieces.
    fn of(content: &str, sender: std::sync::mpsc::Sender<Vec<u8>>) -> Stream {
        let pieces = pieces(content, content.len() / 30 + 1);
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let events = sse_text(&pieces)
            .split_inclusive("\n\n")
            .map(|e| e.as_bytes().to_vec())
            .collect();
        Stream { sender, events }
    }

    /// Sends the next piece of the reply; once only its end is left (the finish reason, the
    /// usage and `[DONE]`), a keep-alive comment instead, so the stream can go on as long as
    /// the test needs. False when the server no longer reads (the process hung up).
    fn send_next(&mut self) -> bool {
        let event = match self.events.len() {
            0..=3 => b": keep-alive\n\n".to_vec(),
            _ => self.events.pop_front().expect("more than 3 events"),
        };
        self.sender.send(event).is_ok()
    }

    /// Sends the rest of the reply and ends the stream.
    fn finish(self) {
        for event in self.events {
            let _ = self.sender.send(event);
        }
    }
}

/// Sends `stream` a piece per [`BEAT`], as `pacing` says, watching `terminal` in between.
fn pace(stream: &mut Stream, terminal: &mut Terminal, pacing: Pacing) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut beats = 0;
    while stream.send_next() && terminal.watch(BEAT) {
        beats += 1;
        let done = match pacing {
            Pacing::UntilShown(text) => {
                terminal.shows(text) || std::time::Instant::now() >= deadline
            }
            Pacing::Beats(count) => beats >= count,
        };
        if done {
            return;
        }
    }
}

/// Runs `git-spectra discover <args>` on a pseudo-terminal (`script`), streaming the decision
/// as `pacing` says, then the rest of it. Returns everything the terminal showed.
fn discover_on_a_terminal(args: &[&str], pacing: Pacing) -> (String, std::process::ExitStatus) {
    use std::process::Stdio;

    use crate::common::{TestEnv, spectra_bin};

    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let (reply, sender) = Reply::sse();
    let arrived = server.reply_and_signal(reply);
    let content = crate::discover::decision("logging").to_string();
    let mut stream = Stream::of(&content, sender);

    let mut line = format!("{}", spectra_bin().display());
    for arg in ["discover"].iter().chain(args) {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut child = env
        .command("script", &repo)
        .args(["-qfec", &line, "/dev/null"])
        .env("SPECTRA_LLM_URL", server.base_url())
        .env("SPECTRA_LLM_MODEL", "test-model")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut terminal = Terminal::read(child.stdout.take().unwrap());
    // The beat starts when the request arrives: pieces sent before then would only queue up
    // and reach the binary in one burst, too fast for any progress report.
    if arrived.recv_timeout(PATIENCE).is_ok() {
        pace(&mut stream, &mut terminal, pacing);
    }
    stream.finish();
    let status = child.wait().unwrap();
    (terminal.finish(), status)
}

#[test]
fn a_terminal_shows_the_model_writing_and_json_output_does_not() {
    let (terminal, status) =
        discover_on_a_terminal(&["Our logs are everywhere"], Pacing::UntilShown("tok/s"));
    assert!(status.success(), "{terminal}");
    assert!(
        terminal.contains("discover: model is writing… "),
        "{terminal}"
    );
    assert!(
        terminal.contains(" tokens, ") && terminal.contains(" tok/s"),
        "{terminal}"
    );

    // As many beats as the progress line needs several times over: JSON output must show
    // none of it, however long the model writes.
    let (json, status) = discover_on_a_terminal(
        &["--format", "json", "Our logs are everywhere"],
        Pacing::Beats(5),
    );
    assert!(status.success(), "{json}");
    assert!(!json.contains("model is writing"), "{json}");
    assert!(!json.contains("asking the model"), "{json}");
}

#[test]
fn an_event_stream_without_its_content_type_is_still_assembled() {
    let server = LlmServer::start();
    let content = good().to_string();
    server.push(Reply::raw(
        200,
        &sse_text(&[&content[..10], &content[10..]]),
    ));

    let decision = decide(settings(&server.url()), None).expect("decision");

    assert_eq!(decision.value, good());
    let body = decision.records[0].response_body.as_ref().unwrap().lossy();
    assert!(!body.contains("data:"), "{body}");
}

/// One SSE event carrying `content`.
fn content_event(content: &str) -> Vec<u8> {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": content}}]})
    )
    .into_bytes()
}

#[test]
fn the_total_deadline_in_the_middle_of_a_stream_says_how_far_to_raise_it() {
    let server = LlmServer::start();
    let (writing, sender) = Reply::sse();
    server.push(writing);
    for piece in ["{\"playbook\"", ": \"catalog", ".check\""] {
        sender.send(content_event(piece)).unwrap();
    }
    let mut s = settings(&server.url());
    // The three queued tokens must be read before the deadline, so it leaves a loaded machine
    // ample time for the round trip; the attempt and silence timeouts never fire first.
    s.total_timeout = Setting::flag(Duration::from_secs(5));
    s.attempt_timeout = Setting::flag(Duration::from_secs(60));
    s.silence_timeout = Setting::flag(Duration::from_secs(60));

    let failure = decide(s, None).expect_err("the stream outlives the total timeout");

    let message = failure.error.to_string();
    assert!(
        message.contains("within the total timeout of 5s"),
        "{message}"
    );
    assert!(
        message.contains("ran out while the model was writing: it wrote 3 tokens at"),
        "{message}"
    );
    assert!(
        message.contains("raise spectra.llm.totalTimeout to at least"),
        "{message}"
    );
    assert!(!message.contains("silenceTimeout"), "{message}");
    // The tokens the broken stream delivered are recorded, though no usage was reported.
    let record = &failure.records[0];
    assert_eq!(record.usage, None);
    assert_eq!(record.tokens_received, Some(3));
    drop(sender);
}

#[test]
fn a_deadline_in_a_repair_turn_counts_every_attempt_of_the_decision() {
    let server = LlmServer::start();
    server.push(Reply::chat("{\"reason\": \"no playbook\"}"));
    let (silent, sender) = Reply::sse();
    server.push(silent);
    let mut s = settings(&server.url());
    // The first answer and the repair turn's request must come before the deadline, so it
    // leaves a loaded machine ample time for them; the repair turn's own timeouts are longer,
    // so the deadline is what ends it.
    s.total_timeout = Setting::flag(Duration::from_secs(5));
    s.attempt_timeout = Setting::flag(Duration::from_secs(60));
    s.silence_timeout = Setting::flag(Duration::from_secs(60));

    let failure = decide(s, None).expect_err("the repair turn never answers");

    assert_eq!(failure.records.len(), 2);
    let message = failure.error.to_string();
    assert!(message.contains("(2 attempt(s))"), "{message}");
    drop(sender);
}
