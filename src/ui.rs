//! Output: human text or JSON (Lines), written so that a closed pipe is not an error.
//!
//! Every command writes through [`Output`], which returns `io::Error`s instead of panicking as
//! `println!` would when `git spectra log | head -1` closes the pipe; the binary turns a broken
//! pipe into a quiet exit 0.

use std::io::{self, Write};

use serde::Serialize;

/// How a read command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// JSON; one object per line for lists (JSON Lines).
    Json,
}

/// Buffered standard output.
pub struct Output {
    out: io::BufWriter<io::StdoutLock<'static>>,
}

impl Default for Output {
    fn default() -> Self {
        Self::new()
    }
}

impl Output {
    pub fn new() -> Output {
        Output {
            out: io::BufWriter::new(io::stdout().lock()),
        }
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.out, "{text}")
    }

    /// Writes `value` as one line of compact JSON.
    pub fn json_line(&mut self, value: &impl Serialize) -> io::Result<()> {
        // Serialise first so a closed pipe surfaces as a plain `BrokenPipe` io::Error.
        let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)
    }

    /// Writes raw bytes (an attachment).
    pub fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// True when `err` (or anything it wraps) is a closed pipe.
pub fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// A spinner on standard error while something slow happens; only on a terminal.
pub struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning with `message`, or returns `None` when stderr is not a terminal.
    pub fn start(message: &str) -> Option<Spinner> {
        use std::io::IsTerminal;
        if !io::stderr().is_terminal() {
            return None;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let message = message.to_string();
        let handle = std::thread::spawn(move || {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut frame = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                eprint!("\r{} {message}", frames[frame % frames.len()]);
                frame += 1;
                std::thread::park_timeout(std::time::Duration::from_millis(100));
            }
            // Clear the line so what follows starts clean.
            eprint!("\r\x1b[2K");
        });
        Some(Spinner {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}
