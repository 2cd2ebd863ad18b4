//! One zlib compressor for every object an append writes.
//!
//! A new compressor allocates and zeroes a few hundred kilobytes of tables; made afresh for
//! each object (as a plain loose-object write does), that is most of the memory an append
//! touches, and page faults are expensive where this runs. Resetting one between objects
//! keeps the same tables.

use std::io;

use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::zlib::{Compression, Status};

/// A zlib compressor, reset and reused for every object of an append instead of made anew.
pub struct Deflater {
    compress: Compress,
}

impl Deflater {
    /// A compressor at `level` (0–9; git's default for loose objects is 1).
    pub fn new(level: i32) -> Deflater {
        let level = Compression::new(level).unwrap_or_default();
        Deflater {
            compress: Compress::new(level),
        }
    }

    /// Appends the zlib stream of `parts` (concatenated) to `out`.
    pub fn compress(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) -> io::Result<()> {
        self.compress.reset();
        let last = parts.len().saturating_sub(1);
        for (index, part) in parts.iter().enumerate() {
            let flush = if index == last {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            self.feed(part, flush, out)?;
        }
        if parts.is_empty() {
            self.feed(&[], FlushCompress::Finish, out)?;
        }
        Ok(())
    }

    /// Compresses all of `input`, growing `out` as needed; with `Finish`, until the stream ends.
    fn feed(
        &mut self,
        mut input: &[u8],
        flush: FlushCompress,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 256);
            }
            let start = out.len();
            let spare = out.capacity() - start;
            out.resize(start + spare, 0);
            let (in_before, out_before) = (self.compress.total_in(), self.compress.total_out());
            let status = self
                .compress
                .compress(input, &mut out[start..], flush)
                .map_err(io::Error::other)?;
            let consumed = (self.compress.total_in() - in_before) as usize;
            let written = (self.compress.total_out() - out_before) as usize;
            out.truncate(start + written);
            input = &input[consumed..];
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty(),
            };
            if done {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0; 1 << 20];
        let mut inflate = gix::zlib::Inflate::default();
        let (_, _, written) = inflate.once(bytes, &mut out).unwrap();
        out.truncate(written);
        out
    }

    #[test]
    fn one_compressor_makes_independent_streams_that_inflate_back() {
        let mut deflater = Deflater::new(1);
        let big: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
        for parts in [
            vec![&b"blob 5\0"[..], b"hello"],
            vec![&b"tree 0\0"[..], b""],
            vec![&b"blob 800000\0"[..], &big],
        ] {
            let mut out = b"prefix".to_vec();
            deflater.compress(&parts, &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(inflate(&out[6..]), parts.concat());
        }
    }
}
