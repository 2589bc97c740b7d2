//! Opening age pieces in order as they are read: the sequential decode of
//! an age stream (stdin, or a file whose plaintext is a `.zst` or `.gz`).
//! One sealed piece is read ahead, since only the end of the input tells
//! which piece was sealed as the last.

use std::io::{self, Read};

use super::payload::{PayloadKey, SEALED_PIECE};
use crate::format::read_full;

/// A `Read` of the plaintext of the age pieces read from `inner`.
pub(crate) struct Opener<R: Read> {
    inner: R,
    key: PayloadKey,
    plain: Vec<u8>,
    pos: usize,
    /// The sealed piece being opened, and the one read after it.
    cur: Vec<u8>,
    ahead: Vec<u8>,
    next: u64,
    done: bool,
}

impl<R: Read> Opener<R> {
    /// Opens what `inner` holds from the first piece on, under `key`.
    pub fn new(inner: R, key: PayloadKey) -> Opener<R> {
        Opener {
            inner,
            key,
            plain: Vec::new(),
            pos: 0,
            cur: Vec::with_capacity(SEALED_PIECE),
            ahead: Vec::with_capacity(SEALED_PIECE),
            next: 0,
            done: false,
        }
    }

    /// Reads the next sealed piece (shorter only at the end) into `ahead`.
    fn read_ahead(&mut self) -> io::Result<()> {
        self.ahead.resize(SEALED_PIECE, 0);
        let n = read_full(&mut self.inner, &mut self.ahead).map_err(io::Error::other)?;
        self.ahead.truncate(n);
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.next == 0 {
            self.read_ahead()?;
        }
        std::mem::swap(&mut self.cur, &mut self.ahead);
        let last = if self.cur.len() < SEALED_PIECE {
            true
        } else {
            self.read_ahead()?;
            self.ahead.is_empty()
        };
        self.plain.clear();
        self.pos = 0;
        self.key
            .open(self.next, last, &self.cur, &mut self.plain)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.next += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
