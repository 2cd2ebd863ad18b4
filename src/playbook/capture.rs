//! Reading a child's output without trusting its size.
//!
//! Each stream is drained on its own thread, so a child that fills one pipe while we wait on the
//! other can never deadlock us. Only the first `cap` bytes are kept; the rest is read, counted
//! and dropped, so a playbook printing 100 MB costs a counter, not 100 MB of memory.

use std::io::{self, Read};
use std::thread::{self, JoinHandle};

use serde::Serialize;
use sha2::{Digest, Sha256};

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

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Drains `reader` on a new thread, keeping at most `cap` bytes.
pub fn drain<R: Read + Send + 'static>(reader: R, cap: usize) -> JoinHandle<io::Result<Captured>> {
    thread::spawn(move || read_capped(reader, cap))
}

fn read_capped(mut reader: impl Read, cap: usize) -> io::Result<Captured> {
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        total += read as u64;
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..read.min(room)]);
    }
    Ok(Captured::from_kept(kept, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let captured = read_capped(io::repeat(b'x').take(1000), 10).unwrap();
        assert_eq!(captured.bytes, b"xxxxxxxxxx");
        assert_eq!(captured.total_bytes, 1000);
        assert!(captured.truncated);
        assert_eq!(captured.sha256, sha256_hex(b"xxxxxxxxxx"));
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
