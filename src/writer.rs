//! The writer side: the only owner of the output.
//!
//! The writer thread receives results already in chunk order (see
//! `engine.rs`), so it needs no lock around the output and no reorder
//! buffer. It writes through a `BufWriter` so the small record heads and CRCs
//! coalesce with the payloads into few syscalls, recycles buffers into the
//! pool, and counts what it wrote.

use std::io::{self, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use crate::chunk::Encoded;
use crate::engine::RunState;
use crate::error::{Error, Result};
use crate::stages::Hasher;

/// Buffer in front of the output: large enough to merge a record's head, CRC
/// and the next head into one write; payloads larger than it bypass it.
const WRITE_BUFFER: usize = 256 << 10;

/// A `Read` or `Write` that counts the bytes that went through it.
pub(crate) struct Counting<W> {
    pub inner: W,
    pub bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A failed write, named as such: "in.bin: writing the output: No space
/// left on device" says which side of the run failed.
fn write_failed(e: io::Error) -> Error {
    Error::io(e).with_stage("writing the output")
}

/// The output of one run, as the writer thread holds it.
pub(crate) struct Sink<W: Write> {
    out: BufWriter<Counting<W>>,
}

impl<W: Write> Sink<W> {
    pub fn new(inner: W) -> Sink<W> {
        Sink {
            out: BufWriter::with_capacity(WRITE_BUFFER, Counting { inner, bytes: 0 }),
        }
    }

    /// Writes raw bytes (header, trailer).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(write_failed)
    }

    /// Writes one chunk record and recycles its payload buffer.
    /// Returns the time the writes took (after the IO permit was granted:
    /// the writer's own cost for this record, which the hill climber adds
    /// to the chunk's CPU time).
    pub fn write_record(&mut self, state: &RunState<'_>, rec: Encoded) -> Result<Duration> {
        let took = {
            let _io = state.governor.io.acquire(&state.cancel)?;
            let started = Instant::now();
            rec.write_to(&mut self.out).map_err(write_failed)?;
            started.elapsed()
        };
        state.release(rec.original_len);
        state.buffers.give(rec.payload);
        Ok(took)
    }

    /// Writes restored bytes, feeds the whole-file hasher, recycles the buffer.
    pub fn write_plain(
        &mut self,
        state: &RunState<'_>,
        data: Vec<u8>,
        hasher: Option<&mut Hasher>,
    ) -> Result<()> {
        {
            let _io = state.governor.io.acquire(&state.cancel)?;
            self.out.write_all(&data).map_err(write_failed)?;
        }
        if let Some(h) = hasher {
            h.update(&data);
        }
        state.release(data.len());
        state.buffers.give(data);
        Ok(())
    }

    /// Flushes and hands back the output with the number of bytes written.
    /// The flush is a write like any other (up to `WRITE_BUFFER` bytes of
    /// the last records and the trailer), so it takes an IO token too: the
    /// tokens bound every write of a run (`tests/io_tokens.rs`).
    pub fn finish(self, state: &RunState<'_>) -> Result<(W, u64)> {
        let _io = state.governor.io.acquire(&state.cancel)?;
        let counting = self
            .out
            .into_inner()
            .map_err(|e| write_failed(e.into_error()))?;
        Ok((counting.inner, counting.bytes))
    }
}
