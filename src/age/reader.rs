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
            ahead: Vec::new(),
            next: 0,
            done: false,
        }
    }

    fn read_piece(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
        into.resize(SEALED_PIECE, 0);
        let n = read_full(&mut self.inner, into).map_err(io::Error::other)?;
        into.truncate(n);
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.next == 0 && self.ahead.is_empty() {
            let mut first = Vec::with_capacity(SEALED_PIECE);
            self.read_piece(&mut first)?;
            self.ahead = first;
        }
        let cur = std::mem::take(&mut self.ahead);
        let last = if cur.len() < SEALED_PIECE {
            true
        } else {
            let mut ahead = Vec::with_capacity(SEALED_PIECE);
            self.read_piece(&mut ahead)?;
            self.ahead = ahead;
            self.ahead.is_empty()
        };
        self.plain.clear();
        self.pos = 0;
        self.key
            .open(self.next, last, &cur, &mut self.plain)
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
