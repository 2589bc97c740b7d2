//! The smallest reader that fits the engine: anything that implements
//! `std::io::Read + Send`. The engine's reader thread calls `read` until it
//! has a full chunk (or end of input), so a reader may return any number of
//! bytes per call; short reads, `Interrupted` and 0 = end all work.
//!
//! Here: a counter that produces `len` bytes of text lines on the fly, 1 to
//! 100 bytes per call, never holding more than one line. It streams through
//! `zstd:3,blake3` into memory and back, and checks the digest.
//!
//! Run: `cargo run --example minimal_reader`

use std::io::{self, Read};

use syncpipe::stages::parse_stages;
use syncpipe::Pipeline;

/// `len` bytes of "line N\n" text, generated as they are read.
struct Lines {
    left: usize,
    line: Vec<u8>,
    pos: usize,
    n: u64,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.line.len() {
            self.n += 1;
            self.line = format!("line {}\n", self.n).into_bytes();
            self.pos = 0;
        }
        // Deliberately short reads: the engine fills its chunks itself.
        let n = buf
            .len()
            .min(self.line.len() - self.pos)
            .min(self.left)
            .min(1 + (self.n % 100) as usize);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n;
        Ok(n)
    }
}

fn main() -> Result<(), syncpipe::Error> {
    let len = 5_000_000;
    let reader = Lines {
        left: len,
        line: Vec::new(),
        pos: 0,
        n: 0,
    };
    let pipeline = Pipeline::builder()
        .stages(parse_stages("zstd:3,blake3")?)
        .chunk_size(256 << 10)
        .build()?;
    let mut container = Vec::new();
    let report = pipeline.run(reader, &mut container)?;
    println!(
        "{} bytes from a generating reader -> {} bytes in {} chunks",
        report.bytes_in,
        container.len(),
        report.chunks
    );
    let mut back = Vec::new();
    let restored = pipeline.restore(&container[..], &mut back)?;
    assert_eq!(back.len(), len);
    assert_eq!(
        restored.digest, report.digest,
        "the whole-file digests agree"
    );
    assert!(back.starts_with(b"line 1\nline 2\n"));
    println!(
        "restored {} bytes, blake3 {}",
        back.len(),
        restored.digest_hex().unwrap_or_default()
    );
    Ok(())
}
