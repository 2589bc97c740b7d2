//! Synthetic input: deterministic generated data of a chosen kind, for
//! `syncpipe bench` and for tests that need an input of a known character.
//!
//! Each kind stands for a class of real inputs, so that a sweep shows how
//! the pipeline behaves on it:
//!
//! - `text`: lines of words from a fixed vocabulary of source-code and log
//!   tokens, with indentation and numbers; compresses roughly as source
//!   code or logs do.
//! - `binary`: fixed-size records (a sequence number, a slowly rising
//!   timestamp, a small type code, a measurement with random low bits): the
//!   redundancy of structured binary data, a ratio well above 1 but below
//!   text.
//! - `random`: uniformly random bytes (incompressible).
//! - `zeros`: all zero bytes (the best case of every compressor).
//!
//! The bytes depend only on the kind, the seed and the position: the same
//! three give the same data whatever buffer sizes it is read with.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use tempfile::NamedTempFile;

use syncpipe::CancelToken;
use syncpipe::{Error, Result};

/// The kind of data a [`Synthetic`] reader generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum DataKind {
    /// Text-like: words and lines from a fixed vocabulary.
    #[default]
    Text,
    /// Structured binary records with some redundancy.
    Binary,
    /// Incompressible random bytes.
    Random,
    /// Zero bytes.
    Zeros,
}

impl DataKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Text => "text",
            DataKind::Binary => "binary",
            DataKind::Random => "random",
            DataKind::Zeros => "zeros",
        }
    }
}

impl fmt::Display for DataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The seed used when none is given (any fixed value would do; fixed so
/// that two bench runs read the same bytes).
pub const DEFAULT_SEED: u64 = 0x5eed_5eed_5eed_5eed;

/// Words of the `text` kind: tokens of source code and log lines. Picked
/// with a bias toward the front (see `Rng::skewed`), as real text repeats
/// its common words far more often than its rare ones.
const VOCABULARY: &[&str] = &[
    "the",
    "=",
    "(",
    ")",
    "{",
    "}",
    ";",
    "let",
    "fn",
    "if",
    "return",
    "self",
    "mut",
    "else",
    "for",
    "in",
    "match",
    "Ok",
    "Err",
    "Some",
    "None",
    "pub",
    "struct",
    "impl",
    "use",
    "const",
    "&",
    "->",
    "=>",
    "::",
    "error",
    "info",
    "debug",
    "warn",
    "request",
    "response",
    "user",
    "id",
    "status",
    "time",
    "ms",
    "bytes",
    "chunk",
    "buffer",
    "reader",
    "writer",
    "channel",
    "permit",
    "governor",
    "thread",
    "pool",
    "stage",
    "file",
    "path",
    "len",
    "size",
    "count",
    "index",
    "value",
    "key",
    "data",
    "state",
    "config",
    "result",
    "output",
    "input",
    "stream",
    "queue",
    "lock",
    "wait",
    "send",
    "recv",
    "token",
    "cancel",
    "done",
    "start",
    "end",
    "next",
    "new",
    "String",
    "Vec",
    "u64",
    "usize",
    "bool",
    "true",
    "false",
    "GET",
    "POST",
    "/api/v1/items",
    "200",
    "404",
    "500",
    "connection",
    "closed",
    "opened",
    "timeout",
    "retry",
    "handler",
    "session",
    "cache",
    "hit",
    "miss",
    "latency",
    "p99",
    "worker",
    "job",
    "scheduled",
];

/// A small, fast, seeded PRNG (SplitMix64): statistically good enough for
/// test data and the same on every platform. Not for anything secret.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In `0..n`, low values far more likely: the smallest of three
    /// uniform draws, roughly a Zipf-like word frequency.
    fn skewed(&mut self, n: u64) -> u64 {
        self.below(n).min(self.below(n)).min(self.below(n))
    }
}

/// Size of one generated unit of `random` data; any fixed value keeps the
/// bytes independent of the read sizes.
const RANDOM_UNIT: usize = 4096;
/// Bytes of one `binary` record.
const RECORD_LEN: usize = 32;

/// A reader of `len` bytes of generated data of one [`DataKind`].
///
/// ```
/// use std::io::Read;
/// use syncpipe::synthetic::{DataKind, Synthetic};
///
/// let mut text = Vec::new();
/// Synthetic::new(DataKind::Text, 7, 10_000).read_to_end(&mut text)?;
/// assert_eq!(text.len(), 10_000);
/// let mut again = Vec::new();
/// Synthetic::new(DataKind::Text, 7, 10_000).read_to_end(&mut again)?;
/// assert_eq!(text, again);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Synthetic {
    kind: DataKind,
    rng: Rng,
    remaining: u64,
    /// Generated bytes not yet read: one line, record or random unit.
    pending: Vec<u8>,
    at: usize,
    /// State of the `binary` records.
    seq: u64,
    clock: u64,
}

impl Synthetic {
    /// `len` bytes of `kind` data from `seed`.
    pub fn new(kind: DataKind, seed: u64, len: u64) -> Synthetic {
        Synthetic {
            kind,
            rng: Rng(seed),
            remaining: len,
            pending: Vec::with_capacity(RANDOM_UNIT),
            at: 0,
            seq: 0,
            clock: 1_700_000_000_000,
        }
    }

    /// Writes the data to a new temp file in `dir`
    /// (`.bench-input.syncpipe-tmp.…`, deleted when the returned handle is
    /// dropped), checking `cancel` between megabytes.
    ///
    /// # Errors
    ///
    /// I/O errors with the folder's path; [`syncpipe::ErrorKind::Cancelled`].
    pub fn write_temp(mut self, dir: &Path, cancel: &CancelToken) -> Result<NamedTempFile> {
        // Named like every syncpipe temp file, so that the leftover of a
        // killed run is recognised (`output::remove_stale_temps`).
        let tmp = syncpipe::output::temp_file(dir, "bench-input", 0o600)
            .map_err(|e| Error::io(e).with_path(dir))?;
        {
            let file: &File = tmp.as_file();
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                if cancel.is_cancelled() {
                    return Err(Error::cancelled());
                }
                let n = self.read(&mut buf).map_err(Error::io)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io(e).with_path(tmp.path()))?;
            }
            out.flush()
                .map_err(|e| Error::io(e).with_path(tmp.path()))?;
        }
        Ok(tmp)
    }

    /// Generates the next unit into `pending`.
    fn refill(&mut self) {
        self.pending.clear();
        self.at = 0;
        match self.kind {
            DataKind::Text => self.line(),
            DataKind::Binary => self.record(),
            DataKind::Random => {
                while self.pending.len() < RANDOM_UNIT {
                    let r = self.rng.next();
                    self.pending.extend_from_slice(&r.to_le_bytes());
                }
            }
            // Never called: zeros are written straight into the caller's buffer.
            DataKind::Zeros => self.pending.resize(RANDOM_UNIT, 0),
        }
    }

    /// One line of text: indentation, 3 to 14 words, sometimes a number.
    fn line(&mut self) {
        let indent = self.rng.below(4) as usize * 4;
        self.pending.resize(indent, b' ');
        let words = 3 + self.rng.below(12);
        for i in 0..words {
            if i > 0 {
                self.pending.push(b' ');
            }
            // One word in sixteen is a number: the part of logs and code
            // that compresses worst.
            if self.rng.below(16) == 0 {
                let n = self.rng.below(100_000);
                self.pending.extend_from_slice(n.to_string().as_bytes());
            } else {
                let w = VOCABULARY[self.rng.skewed(VOCABULARY.len() as u64) as usize];
                self.pending.extend_from_slice(w.as_bytes());
            }
        }
        self.pending.push(b'\n');
    }

    /// One 32-byte record: sequence number (+1), timestamp (+0..255 ms),
    /// a type code (one of 8), flags (mostly 0), a measurement whose high
    /// bytes vary little and whose low bytes are random, and a random id.
    fn record(&mut self) {
        self.seq += 1;
        self.clock += self.rng.below(256);
        let kind = self.rng.skewed(8) as u16;
        let flags: u16 = if self.rng.below(16) == 0 { 1 } else { 0 };
        let measurement = 1_000_000 + self.rng.below(1 << 24);
        let id = self.rng.below(1 << 20) as u32;
        let p = &mut self.pending;
        p.extend_from_slice(&self.seq.to_le_bytes());
        p.extend_from_slice(&self.clock.to_le_bytes());
        p.extend_from_slice(&kind.to_le_bytes());
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&measurement.to_le_bytes());
        debug_assert_eq!(p.len(), RECORD_LEN);
    }
}

impl Read for Synthetic {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        if self.kind == DataKind::Zeros {
            buf[..want].fill(0);
            self.remaining -= want as u64;
            return Ok(want);
        }
        let mut filled = 0;
        while filled < want {
            if self.at == self.pending.len() {
                self.refill();
            }
            let n = (want - filled).min(self.pending.len() - self.at);
            buf[filled..filled + n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        self.remaining -= want as u64;
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn all(kind: DataKind, seed: u64, len: u64) -> Vec<u8> {
        let mut v = Vec::new();
        Synthetic::new(kind, seed, len)
            .read_to_end(&mut v)
            .expect("reading generated data cannot fail");
        v
    }

    /// Reads with odd buffer sizes, to show the bytes do not depend on them.
    fn in_pieces(kind: DataKind, seed: u64, len: u64) -> Vec<u8> {
        let mut s = Synthetic::new(kind, seed, len);
        let mut v = Vec::new();
        let mut sizes = [1usize, 7, 33, 4095, 4097, 100_000].into_iter().cycle();
        loop {
            let mut buf = vec![0u8; sizes.next().unwrap_or(1)];
            let n = s
                .read(&mut buf)
                .expect("reading generated data cannot fail");
            if n == 0 {
                return v;
            }
            v.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn exact_size_and_deterministic_per_seed() {
        for &kind in DataKind::value_variants() {
            for len in [0u64, 1, 31, 4096, 123_457] {
                let a = all(kind, 42, len);
                assert_eq!(a.len() as u64, len, "{kind} {len}");
                assert_eq!(a, all(kind, 42, len), "{kind} {len}");
                assert_eq!(a, in_pieces(kind, 42, len), "{kind} {len}");
            }
        }
    }

    #[test]
    fn seeds_change_the_data_except_zeros() {
        for kind in [DataKind::Text, DataKind::Binary, DataKind::Random] {
            assert_ne!(all(kind, 1, 10_000), all(kind, 2, 10_000), "{kind}");
        }
        assert!(all(DataKind::Zeros, 9, 5000).iter().all(|&b| b == 0));
    }

    #[test]
    fn a_prefix_is_the_start_of_a_longer_run() {
        let long = all(DataKind::Text, 5, 50_000);
        assert_eq!(all(DataKind::Text, 5, 1234)[..], long[..1234]);
    }

    #[test]
    fn text_is_printable_lines() {
        let t = all(DataKind::Text, 3, 20_000);
        assert!(t.iter().all(|&b| b == b'\n' || (0x20..0x7f).contains(&b)));
        assert!(t.iter().filter(|&&b| b == b'\n').count() > 100);
    }

    #[test]
    fn clap_parses_exactly_the_report_names() {
        for &kind in DataKind::value_variants() {
            assert_eq!(DataKind::from_str(kind.name(), false).ok(), Some(kind));
        }
        assert!(DataKind::from_str("words", false).is_err());
    }

    #[test]
    fn written_to_a_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tmp = Synthetic::new(DataKind::Binary, 1, 3_000_000)
            .write_temp(dir.path(), &CancelToken::new())
            .expect("write");
        let on_disk = std::fs::read(tmp.path()).expect("read back");
        assert_eq!(on_disk, all(DataKind::Binary, 1, 3_000_000));
        let cancel = CancelToken::new();
        cancel.cancel();
        let e = Synthetic::new(DataKind::Text, 1, 1 << 20).write_temp(dir.path(), &cancel);
        assert!(e.is_err());
    }
}
