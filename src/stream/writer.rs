//! The writer thread: the only owner of the output. It receives the result
//! slots in chunk order (see the dispatcher) and waits on each in turn, so
//! it needs no lock around the output and no reorder buffer.
//!
//! It writes through a `BufWriter`, so the small record heads and CRCs
//! coalesce with the payloads into few syscalls, recycles buffers into the
//! pool, counts what it wrote and, when the run reports metrics, owns the
//! run's [`Recorder`], the only place chunk timings become histograms.

use std::io::{self, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError};

use super::dispatcher::Slot;
use super::state::RunState;
use super::worker::Finished;
use super::Weight;
use crate::chunk::Encoded;
use crate::error::{Error, Result};
use crate::recorder::{self, Permit, Recorder};
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

    /// Writes bytes that are a whole unit of the output (a `.zst` frame)
    /// under an IO permit.
    pub fn write_raw(&mut self, state: &RunState<'_>, bytes: &[u8]) -> Result<()> {
        let _io = state.io()?;
        self.out.write_all(bytes).map_err(write_failed)
    }

    /// Writes one chunk record and recycles its payload buffer.
    /// Returns the time the writes took (after the IO permit was granted:
    /// the writer's own cost for this record, which the hill climber adds
    /// to the chunk's CPU time).
    pub fn write_record(&mut self, state: &RunState<'_>, rec: Encoded) -> Result<Duration> {
        let took = {
            let _io = state.io()?;
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
            let _io = state.io()?;
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
        let _io = state.io()?;
        let counting = self
            .out
            .into_inner()
            .map_err(|e| write_failed(e.into_error()))?;
        Ok((counting.inner, counting.bytes))
    }
}

/// The writer's state, built before the stream's threads start.
pub(crate) struct Writer<'s, 'g, O> {
    pub state: &'s RunState<'g>,
    /// From the dispatcher, in chunk order.
    pub slots: Receiver<Slot<O>>,
    /// The run's recorder, when it reports metrics.
    pub recorder: Option<Recorder>,
}

impl<O: Weight> Writer<'_, '_, O> {
    /// The writer loop: each slot in turn, each result to `consume`. Ends
    /// when the dispatcher drops its sender.
    pub fn run(mut self, mut consume: impl FnMut(O) -> Result<()>) -> Result<()> {
        let state = self.state;
        while let Ok(Slot(slot)) = recv(&self.slots, self.recorder.as_mut()) {
            state.check()?;
            match recv(&slot, self.recorder.as_mut()) {
                Ok(Some(Finished { out, trace })) => match (self.recorder.as_mut(), trace) {
                    (Some(rec), Some(trace)) => {
                        let received = Instant::now();
                        let bytes = out.weight();
                        consume(out)?;
                        rec.record(&trace, received, recorder::take_wait(Permit::Io));
                        rec.metrics().note_written(bytes);
                    }
                    _ => consume(out)?,
                },
                // The job failed (error already recorded) or was dropped
                // unrun because the run is stopping.
                Ok(None) | Err(_) => return Err(Error::cancelled()),
            }
        }
        Ok(())
    }
}

/// The writer's blocking receive: a plain `recv`, except that with a
/// recorder it wakes every half interval while it waits, so that the
/// recorder can publish what it holds (see `Recorder::idle`).
fn recv<T>(rx: &Receiver<T>, recorder: Option<&mut Recorder>) -> std::result::Result<T, RecvError> {
    let Some((rec, wait)) = recorder.and_then(|r| r.idle_after().map(|w| (r, w))) else {
        return rx.recv();
    };
    loop {
        match rx.recv_timeout(wait) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => rec.idle(),
            Err(RecvTimeoutError::Disconnected) => return Err(RecvError),
        }
    }
}
