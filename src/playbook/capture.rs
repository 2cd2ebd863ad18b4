//! Reading a child's output without trusting its size, nor how long it keeps the pipes open.
//!
//! Both streams are read on one thread that waits on them with `poll`, so a child that fills one
//! pipe while we wait on the other can never deadlock us. Only the first `cap` bytes of each are
//! kept; the rest is read, counted and dropped, so a playbook printing 100 MB costs a counter,
//! not 100 MB of memory. The reader also watches a stop signal: a process that escaped the
//! child's process group (`setsid`) can hold the pipes open for ever, so the caller decides when
//! reading ends. On that signal the reader takes what is already in the pipes, closes them and
//! returns; it never waits for more.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use crate::digest::sha256_hex;
use rustix::event::{PollFd, PollFlags};
use serde::Serialize;

/// What was kept of one output stream, and how much there was.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Captured {
    /// The kept bytes. Not serialized: they travel as event attachments, named by `sha256`.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// How many bytes the stream produced in all.
    pub total_bytes: u64,
    /// Whether bytes past the cap were dropped.
    pub truncated: bool,
    /// Lowercase hex SHA-256 of the kept bytes.
    pub sha256: String,
}

impl Captured {
    /// The kept bytes as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// An empty stream, as a dry run reports it.
    pub fn empty() -> Captured {
        Captured::from_kept(Vec::new(), 0)
    }

    /// All of `bytes`, produced at once, as a stream capped at `cap` would keep them.
    pub(super) fn capped(mut bytes: Vec<u8>, cap: usize) -> Captured {
        let total_bytes = bytes.len() as u64;
        bytes.truncate(cap);
        Captured::from_kept(bytes, total_bytes)
    }

    fn from_kept(bytes: Vec<u8>, total_bytes: u64) -> Captured {
        Captured {
            truncated: total_bytes > bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            total_bytes,
            bytes,
        }
    }
}

/// How much a stopped reader takes from one pipe at most: more than any pipe buffers (Linux
/// allows 1 MiB), so everything written before the stop is read, while a process that keeps
/// writing cannot keep the reader busy for ever.
const FINAL_READ_LIMIT: usize = 4 * 1024 * 1024;

/// A child's stdout and stderr, being read on a thread of its own.
pub struct Drain {
    finished: Receiver<io::Result<[Captured; 2]>>,
    /// Dropping it tells the reader to stop.
    stop: UnixStream,
}

/// Starts reading `stdout` and `stderr` (the read ends of pipes), keeping at most `cap` bytes
/// of each.
pub fn drain(
    stdout: impl Into<OwnedFd>,
    stderr: impl Into<OwnedFd>,
    cap: usize,
) -> io::Result<Drain> {
    let (stop, stop_seen) = UnixStream::pair()?;
    let streams = [File::from(stdout.into()), File::from(stderr.into())];
    let (sender, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(read_until_closed_or_stopped(streams, &stop_seen, cap));
    });
    Ok(Drain { finished, stop })
}

impl Drain {
    /// What the streams held: all of it if both close before `until`; otherwise what reached
    /// the pipes by then, after which they are closed without waiting for anything more.
    pub fn finish(self, until: Instant) -> io::Result<(Captured, Captured)> {
        let timeout = until.saturating_duration_since(Instant::now());
        let result = match self.finished.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                drop(self.stop);
                self.finished.recv().unwrap_or_else(|_| Err(reader_died()))
            }
            Err(RecvTimeoutError::Disconnected) => Err(reader_died()),
        };
        let [stdout, stderr] = result?;
        Ok((stdout, stderr))
    }
}

fn reader_died() -> io::Error {
    io::Error::other("output reader thread panicked")
}

/// Reads both streams until each has closed, or until `stop` becomes readable (its other end
/// was dropped), in which case only what is already buffered is read.
fn read_until_closed_or_stopped(
    streams: [File; 2],
    stop: &UnixStream,
    cap: usize,
) -> io::Result<[Captured; 2]> {
    let mut open = streams.map(Some);
    let mut kept = [Kept::new(cap), Kept::new(cap)];
    let mut buffer = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let ready = wait_for_input(&open, stop)?;
        if ready.stop {
            for (stream, kept) in open.iter_mut().zip(&mut kept) {
                if let Some(file) = stream.take() {
                    read_buffered(file, kept, &mut buffer)?;
                }
            }
            break;
        }
        for (index, stream) in open.iter_mut().enumerate() {
            if !ready.streams[index] {
                continue;
            }
            if let Some(file) = stream {
                match read_once(file, &mut buffer)? {
                    0 => *stream = None,
                    read => kept[index].push(&buffer[..read]),
                }
            }
        }
    }
    Ok(kept.map(Kept::finish))
}

/// Which of the open streams (and whether the stop signal) have something to say.
struct Ready {
    streams: [bool; 2],
    stop: bool,
}

fn wait_for_input(open: &[Option<File>; 2], stop: &UnixStream) -> io::Result<Ready> {
    // Readable, closed by the writer, or in error: each means a read will not block.
    let wakes = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
    let mut fds = vec![PollFd::new(stop, PollFlags::IN)];
    let mut slots = Vec::new();
    for (index, file) in open.iter().enumerate() {
        if let Some(file) = file {
            fds.push(PollFd::new(file, PollFlags::IN));
            slots.push(index);
        }
    }
    loop {
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(_) => break,
        }
    }
    let mut ready = Ready {
        streams: [false; 2],
        stop: fds[0].revents().intersects(wakes),
    };
    for (fd, index) in fds[1..].iter().zip(slots) {
        ready.streams[index] = fd.revents().intersects(wakes);
    }
    Ok(ready)
}

fn read_once(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads what `file` holds right now, without waiting for more, then closes it.
fn read_buffered(mut file: File, kept: &mut Kept, buffer: &mut [u8]) -> io::Result<()> {
    let mut taken = 0;
    while taken < FINAL_READ_LIMIT && has_input(&file)? {
        match read_once(&mut file, buffer)? {
            0 => break,
            read => {
                kept.push(&buffer[..read]);
                taken += read;
            }
        }
    }
    Ok(())
}

/// Whether a read of `file` would return at once.
fn has_input(file: &File) -> io::Result<bool> {
    let mut fds = [PollFd::new(file, PollFlags::IN)];
    let now = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&now)) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(_) => {
                return Ok(fds[0]
                    .revents()
                    .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR));
            }
        }
    }
}

/// The first `cap` bytes of a stream, and how many it produced in all.
struct Kept {
    bytes: Vec<u8>,
    total: u64,
    cap: usize,
}

impl Kept {
    fn new(cap: usize) -> Kept {
        Kept {
            bytes: Vec::new(),
            total: 0,
            cap,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self.cap.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn finish(self) -> Captured {
        Captured::from_kept(self.bytes, self.total)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let mut kept = Kept::new(10);
        kept.push(&[b'x'; 600]);
        kept.push(&[b'y'; 400]);
        let captured = kept.finish();
        assert_eq!(captured.bytes, b"xxxxxxxxxx");
        assert_eq!(captured.total_bytes, 1000);
        assert!(captured.truncated);
        assert_eq!(captured.sha256, sha256_hex(b"xxxxxxxxxx"));
    }

    /// `finish` on a thread, so that a reader that waits for ever fails the test, not hangs it.
    fn finish_within_ten_seconds(drain: Drain, until: Instant) -> (Captured, Captured) {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let _ = sender.send(drain.finish(until));
        });
        receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("finish returned")
            .expect("finish succeeded")
    }

    #[test]
    fn streams_that_close_are_read_to_the_end() {
        let (out_read, out_write) = rustix::pipe::pipe().unwrap();
        let (err_read, err_write) = rustix::pipe::pipe().unwrap();
        let drain = drain(out_read, err_read, 4).unwrap();
        File::from(out_write).write_all(b"all of it").unwrap();
        File::from(err_write).write_all(b"err").unwrap();
        let far = Instant::now() + Duration::from_secs(3600);
        let (stdout, stderr) = finish_within_ten_seconds(drain, far);
        assert_eq!(stdout.bytes, b"all ");
        assert_eq!(stdout.total_bytes, 9);
        assert_eq!(stderr.bytes, b"err");
    }

    #[test]
    fn a_writer_that_never_closes_is_left_at_the_deadline_with_what_it_wrote() {
        let (out_read, out_write) = rustix::pipe::pipe().unwrap();
        let (err_read, err_write) = rustix::pipe::pipe().unwrap();
        let mut out_write = File::from(out_write);
        let drain = drain(out_read, err_read, 1024).unwrap();
        out_write.write_all(b"before the deadline").unwrap();
        // Both write ends stay open past the deadline, as an escaped process would keep them.
        let (stdout, stderr) = finish_within_ten_seconds(drain, Instant::now());
        assert_eq!(stdout.text(), "before the deadline");
        assert_eq!(stderr.total_bytes, 0);
        // The reader closed its end: writing now fails instead of filling a pipe nobody reads.
        assert_eq!(
            out_write.write_all(b"after").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        drop(err_write);
    }
}
