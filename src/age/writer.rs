//! Sealing a byte stream into age pieces as it is written, in order, on
//! the writing thread: what wraps a `.zst` or `.gz` body in age (the
//! compressed frames have no 64 KiB boundaries to seal on in parallel).
//! A full piece is held back until more bytes arrive, since only the end
//! of the stream tells which piece is the last.

use std::io::{self, Write};

use super::payload::{PayloadKey, PIECE};

/// A `Write` that seals everything written into age pieces on `inner`;
/// [`Sealer::finish`] seals the last one.
pub(crate) struct Sealer<W: Write> {
    inner: W,
    key: PayloadKey,
    /// Plaintext not yet sealed: at most one piece once a write returns.
    pending: Vec<u8>,
    sealed: Vec<u8>,
    next: u64,
}

impl<W: Write> Sealer<W> {
    /// Writes `head` (the header and payload nonce) to `inner`, then seals
    /// under `key` what is written.
    pub fn new(mut inner: W, head: &[u8], key: PayloadKey) -> io::Result<Sealer<W>> {
        inner.write_all(head)?;
        Ok(Sealer {
            inner,
            key,
            pending: Vec::with_capacity(2 * PIECE),
            sealed: Vec::with_capacity(2 * PIECE),
            next: 0,
        })
    }

    fn seal(&mut self, data_end: usize, last: bool) -> io::Result<()> {
        self.sealed.clear();
        self.key
            .seal(self.next, last, &self.pending[..data_end], &mut self.sealed)
            .map_err(io::Error::other)?;
        self.next += data_end.div_ceil(PIECE) as u64;
        self.inner.write_all(&self.sealed)?;
        self.pending.drain(..data_end);
        Ok(())
    }

    /// Seals the held piece as the last one (an empty stream gets the one
    /// empty piece) and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        let n = self.pending.len();
        self.seal(n, true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        // Every full piece but one: the one held may turn out to be the last.
        let ready = (self.pending.len().saturating_sub(1) / PIECE) * PIECE;
        if ready > 0 {
            self.seal(ready, false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
