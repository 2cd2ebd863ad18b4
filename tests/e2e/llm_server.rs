//! A scripted OpenAI-compatible chat-completions server for tests.
//!
//! [`LlmServer::start`] listens on `127.0.0.1:0` and speaks just enough HTTP/1.1 for a real
//! client: one request per connection, answered with `Connection: close`. Each test scripts it:
//! [`LlmServer::push`] queues canned [`Reply`]s (status, headers, body sent whole or in chunks,
//! or a stall that never answers), served in order to `POST .../chat/completions`; when the
//! queue is empty a [`LlmServer::respond_with`] function answers, else a 500 that names the
//! missing script.
//! `GET .../models` answers from [`LlmServer::set_models`] without touching the queue. Every
//! request is logged with its arrival time ([`LlmServer::requests`]), so tests can assert attempt
//! counts, request bodies and that no retry came before a `Retry-After`.
//!
//! The server is std-only and thread-per-connection, so a stalled reply never blocks others.
//! Dropping it stops the accept loop. It is shared by the library tests in `llm.rs` and by
//! tests that drive the `git-spectra` binary (point `SPECTRA_LLM_URL` at [`LlmServer::base_url`]).

#![allow(dead_code)] // Each test module uses a different part of this support code.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request was fully read (monotonic, for "waited at least" assertions).
    pub arrived: Instant,
    /// The same moment on the wall clock, for comparing with an HTTP-date.
    pub arrived_wall: SystemTime,
}

impl Request {
    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_chat(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/chat/completions")
    }

    /// The `content` of the request's messages, in order.
    pub fn message_texts(&self) -> Vec<String> {
        self.json()["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Hold the connection this long without answering (until the client hangs up, at most),
    /// then close it without a response.
    pub stall: Option<Duration>,
    /// Send the body with `Transfer-Encoding: chunked`, in chunks of this many bytes, each
    /// written and flushed on its own.
    pub chunk_size: Option<usize>,
    /// A server-sent event stream: each byte string received is written as one chunk, as soon
    /// as it arrives; the stream ends when the test drops the sender (never, if it holds it).
    pub events: Option<Arc<Mutex<Receiver<Vec<u8>>>>>,
}

impl Reply {
    /// A 200 chat completion whose assistant message is `content`, finished normally.
    pub fn chat(content: &str) -> Reply {
        Reply::completion(content, "stop")
    }

    /// A 200 chat completion cut off at the token limit (`finish_reason: length`).
    pub fn chat_cut_off(content: &str) -> Reply {
        Reply::completion(content, "length")
    }

    /// A 200 chat completion whose content is `value` serialized.
    pub fn chat_json(value: &Value) -> Reply {
        Reply::chat(&value.to_string())
    }

    fn completion(content: &str, finish_reason: &str) -> Reply {
        Reply::json(
            200,
            &json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": "test-model",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }),
        )
    }

    /// An OpenAI-style error: `{"error": {"message", "type", "code"}}`.
    pub fn error(status: u16, message: &str, code: Option<&str>) -> Reply {
        Reply::json(
            status,
            &json!({"error": {"message": message, "type": "test_error", "code": code}}),
        )
    }

    /// Any JSON body with `status`.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            stall: None,
            chunk_size: None,
            events: None,
        }
    }

    /// A raw body with `status` and no content type.
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            stall: None,
            chunk_size: None,
            events: None,
        }
    }

    /// No answer: hold the connection for up to `duration` (or until the client gives up).
    pub fn stall(duration: Duration) -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
            stall: Some(duration),
            chunk_size: None,
            events: None,
        }
    }

    /// A 200 event stream whose chunks the test sends, when it chooses, through the sender.
    pub fn sse() -> (Reply, Sender<Vec<u8>>) {
        let (sender, receiver) = channel();
        let reply = Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            body: Vec::new(),
            stall: None,
            chunk_size: None,
            events: Some(Arc::new(Mutex::new(receiver))),
        };
        (reply, sender)
    }

    /// A 200 event stream of `chunks`, all there at once, then closed.
    pub fn sse_chunks(chunks: impl IntoIterator<Item = Vec<u8>>) -> Reply {
        let (reply, sender) = Reply::sse();
        for chunk in chunks {
            sender.send(chunk).expect("the receiver is in the reply");
        }
        reply
    }

    /// Sends the body in chunks of `size` bytes (`Transfer-Encoding: chunked`).
    pub fn in_chunks(mut self, size: usize) -> Reply {
        self.chunk_size = Some(size.max(1));
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Responder = Box<dyn Fn(&Request) -> Reply + Send>;

struct State {
    script: Mutex<VecDeque<Reply>>,
    responder: Mutex<Option<Responder>>,
    log: Mutex<Vec<Request>>,
    models: Mutex<Vec<String>>,
}

/// The running server; stops when dropped.
pub struct LlmServer {
    addr: SocketAddr,
    state: Arc<State>,
    stopping: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl LlmServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> LlmServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            responder: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            models: Mutex::new(vec!["test-model".to_owned()]),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let (state, stopping) = (Arc::clone(&state), Arc::clone(&stopping));
            std::thread::spawn(move || accept_loop(&listener, &state, &stopping))
        };
        LlmServer {
            addr,
            state,
            stopping,
            accept_loop: Some(accept_loop),
        }
    }

    /// The full chat-completions URL.
    pub fn url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    /// The base URL (`http://127.0.0.1:PORT/v1`), as users usually configure it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a reply for the next chat-completions request.
    pub fn push(&self, reply: Reply) -> &Self {
        lock(&self.state.script).push_back(reply);
        self
    }

    /// Queues several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        lock(&self.state.script).extend(replies);
        self
    }

    /// Answers chat-completions requests with `responder` once the queue is empty.
    pub fn respond_with(&self, responder: impl Fn(&Request) -> Reply + Send + 'static) -> &Self {
        *lock(&self.state.responder) = Some(Box::new(responder));
        self
    }

    /// Holds every chat request once the queue is empty (until the client gives up or is
    /// killed), and says on the returned channel when one arrives: a crash test waits on it,
    /// then stops the process at that point.
    pub fn hold_and_signal(&self) -> Receiver<()> {
        let (arrived, waiting) = channel();
        let arrived = Mutex::new(arrived);
        self.respond_with(move |_| {
            let _ = lock(&arrived).send(());
            Reply::stall(Duration::from_secs(600))
        });
        waiting
    }

    /// Answers the next chat request with `reply` once the queue is empty (any later one gets
    /// a 500), and says on the returned channel when it arrives: a test that paces a stream
    /// starts its beat there, since what it sends before then only queues up.
    pub fn reply_and_signal(&self, reply: Reply) -> Receiver<()> {
        let (arrived, waiting) = channel();
        let pending = Mutex::new((arrived, Some(reply)));
        self.respond_with(move |_| {
            let mut pending = lock(&pending);
            let _ = pending.0.send(());
            pending.1.take().unwrap_or_else(|| {
                Reply::error(500, "llm_server: the one scripted reply was served", None)
            })
        });
        waiting
    }

    /// The model ids `GET /v1/models` lists.
    pub fn set_models(&self, models: &[&str]) -> &Self {
        *lock(&self.state.models) = models.iter().map(ToString::to_string).collect();
        self
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state.log).clone()
    }

    /// The chat-completions requests received so far.
    pub fn chat_requests(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_chat)
            .collect()
    }

    /// Scripted replies not yet served.
    pub fn unserved(&self) -> usize {
        lock(&self.state.script).len()
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

/// A chat-completions URL on 127.0.0.1 that refuses every connection while this lives.
///
/// Its port is bound but never listened on: the kernel answers a connection with a reset, and
/// no other socket can take the port meanwhile. (A port bound and released at once could be
/// taken by a server of a test running in parallel; a fixed port may be in use on some
/// machine.) std cannot bind without listening; tokio's `TcpSocket`, already a dependency,
/// can, and needs no runtime for it. It sets no `SO_REUSEADDR`, so even sockets that set it
/// cannot bind the port.
pub struct RefusedUrl {
    url: String,
    _bound: tokio::net::TcpSocket,
}

impl RefusedUrl {
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// See [`RefusedUrl`]; keep it alive for as long as the URL must refuse.
pub fn refused_url() -> RefusedUrl {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local addr");
    RefusedUrl {
        url: format!("http://{addr}/v1/chat/completions"),
        _bound: socket,
    }
}

/// A `Retry-After` HTTP-date `seconds` from now, and that instant (whole seconds, as HTTP-dates are).
pub fn http_date_in(seconds: u64) -> (String, SystemTime) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs() + seconds);
    let timestamp = jiff::Timestamp::try_from(at).expect("representable");
    let text = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&timestamp)
        .expect("printable");
    (text, at)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler thread must not hide the log from the test that asserts on it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stopping: &AtomicBool) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(state);
        std::thread::spawn(move || {
            let _ = serve(stream, &state);
        });
    }
}

fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    lock(&state.log).push(request.clone());
    let reply = route(&request, state);
    let mut stream = stream;
    if let Some(stall) = reply.stall {
        return hold(&mut reader, stall);
    }
    if let Some(events) = &reply.events {
        return write_events(&mut stream, &reply, events);
    }
    if let Some(size) = reply.chunk_size {
        return write_chunked(&mut stream, &reply, size);
    }
    stream.write_all(&encode(&reply))?;
    stream.flush()
}

/// Writes each event chunk as it arrives on the channel, until the sender is dropped.
fn write_events(
    stream: &mut TcpStream,
    reply: &Reply,
    events: &Mutex<Receiver<Vec<u8>>>,
) -> std::io::Result<()> {
    stream.write_all(head(reply).as_bytes())?;
    stream.write_all(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    stream.flush()?;
    let events = lock(events);
    while let Ok(chunk) = events.recv() {
        if chunk.is_empty() {
            continue;
        }
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
        stream.write_all(&chunk)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
    }
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

/// The SSE text of a streamed chat completion of `pieces`, ending with usage and `[DONE]`,
/// with the same id, created and model as [`Reply::chat`]'s body.
pub fn sse_text(pieces: &[&str]) -> String {
    let event = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
                   "model": "test-model",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut text = event(json!({"role": "assistant", "content": ""}), Value::Null);
    for piece in pieces {
        text.push_str(&event(json!({"content": piece}), Value::Null));
    }
    text.push_str(&event(json!({}), json!("stop")));
    text.push_str(&format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
               "model": "test-model", "choices": [],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
    ));
    text
}

/// Writes `reply` with `Transfer-Encoding: chunked`, flushing after every chunk.
fn write_chunked(stream: &mut TcpStream, reply: &Reply, size: usize) -> std::io::Result<()> {
    stream.write_all(head(reply).as_bytes())?;
    stream.write_all(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    stream.flush()?;
    for chunk in reply.body.chunks(size) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
        stream.write_all(chunk)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
    }
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

fn route(request: &Request, state: &State) -> Reply {
    if request.method == "GET" && request.path.ends_with("/models") {
        let data: Vec<Value> = lock(&state.models)
            .iter()
            .map(|id| json!({"id": id, "object": "model"}))
            .collect();
        return Reply::json(200, &json!({"object": "list", "data": data}));
    }
    if !request.is_chat() {
        return Reply::error(
            404,
            &format!(
                "llm_server: no route for {} {}",
                request.method, request.path
            ),
            None,
        );
    }
    if let Some(reply) = lock(&state.script).pop_front() {
        return reply;
    }
    match lock(&state.responder).as_ref() {
        Some(responder) => responder(request),
        None => Reply::error(
            500,
            "llm_server: no scripted reply left for this request",
            None,
        ),
    }
}

/// Waits without answering until the client closes the connection or `stall` passes.
fn hold(reader: &mut BufReader<TcpStream>, stall: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + stall;
    let mut scratch = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        reader.get_ref().set_read_timeout(Some(left))?;
        match reader.read(&mut scratch) {
            Ok(0) => return Ok(()), // the client gave up
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(None); // a connection opened only to wake the accept loop
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
        arrived: Instant::now(),
        arrived_wall: SystemTime::now(),
    }))
}

/// The status line and the scripted headers.
fn head(reply: &Reply) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

fn encode(reply: &Reply) -> Vec<u8> {
    let mut head = head(reply);
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&reply.body);
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A small value that satisfies `schema` (strict schemas: every property required) and its
/// gates: one item per array (but no playbook), `true`, the largest number allowed (a
/// confidence of 100).
pub fn minimal(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(first) = schema["anyOf"].as_array().and_then(|a| a.first()) {
        return minimal(first);
    }
    let kind = match &schema["type"] {
        Value::Array(types) if types.iter().any(|t| t == "null") => return Value::Null,
        Value::Array(types) => types[0].as_str().unwrap_or("object").to_string(),
        Value::String(kind) => kind.clone(),
        _ => "object".into(),
    };
    match kind.as_str() {
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                // No playbook unless a test asks for one: they have effects of their own.
                .map(|(name, property)| match name.as_str() {
                    "playbooks" => (name.clone(), json!([])),
                    _ => (name.clone(), minimal(property)),
                })
                .collect(),
        ),
        "array" => json!([minimal(&schema["items"])]),
        "string" => json!("x"),
        "integer" | "number" => schema["maximum"].clone().max_or_zero(),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

trait OrZero {
    fn max_or_zero(self) -> Value;
}
impl OrZero for Value {
    fn max_or_zero(self) -> Value {
        if self.is_number() { self } else { json!(0) }
    }
}
