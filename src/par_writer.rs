//! `ParWriter`: the pipeline behind `std::io::Write`.

use std::io::{self, Write};
use std::mem;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::relay::{Direction, Offer, Relay};
use crate::report::Report;

/// Processes everything written to it into a container on the inner writer,
/// in parallel, in the style of zstd's `Encoder`: write, then call
/// [`ParWriter::finish`] to complete the container and get the writer back.
///
/// The inner writer stays on the caller's thread: it may be borrowed
/// (`&mut Vec<u8>`, `&mut File`) and need not be `Send`. The run itself
/// happens on a background thread (see `relay.rs`); written bytes are
/// batched into chunk-sized buffers and handed over a bounded channel, and
/// the container's bytes come back over another, written to the inner
/// writer during later writes and at `finish`. A fast producer is slowed to
/// the pipeline's pace instead of buffering without bound.
///
/// Dropping a `ParWriter` without `finish` abandons the run: the container
/// is left without its trailer (restore reports it truncated) and `Drop`
/// never panics.
///
/// ```
/// use std::io::Write;
/// use syncpipe::Pipeline;
///
/// let pipeline = Pipeline::builder().threads(2).build()?;
/// let mut container = Vec::new();
/// let mut w = pipeline.par_writer(&mut container);
/// w.write_all(b"some data, streamed")?;
/// w.finish()?;
/// let mut back = Vec::new();
/// pipeline.restore(&container[..], &mut back)?;
/// assert_eq!(back, b"some data, streamed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParWriter<W: Write> {
    relay: Relay,
    buf: Vec<u8>,
    chunk_size: usize,
    /// `None` only after `finish` has taken it.
    inner: Option<W>,
    /// The first failed write to `inner`: the output has a hole from then
    /// on, so the run is stopped and `finish` returns this.
    broken: Option<io::Error>,
}

impl<W: Write> ParWriter<W> {
    pub(crate) fn new(pipeline: &Pipeline, output: W) -> ParWriter<W> {
        let chunk_size = pipeline.config().chunk_size;
        ParWriter {
            relay: Relay::start(
                pipeline,
                Direction::Process,
                pipeline.config().channel_depth,
            ),
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            inner: Some(output),
            broken: None,
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_size));
        let mut block = full;
        loop {
            match self.relay.offer(block) {
                Offer::Sent => break,
                Offer::Output { unsent, output } => {
                    self.write_out(&output)?;
                    block = unsent;
                }
                // `finish` returns the run's real error.
                Offer::Stopped => return Err(stopped()),
            }
        }
        // Whatever else is ready, so the output channel rarely fills.
        while let Some(b) = self.relay.recv(false) {
            self.write_out(&b)?;
        }
        Ok(())
    }

    /// Writes run output to the inner writer; the first failure stops the
    /// run and is kept for `finish`.
    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.broken.is_some() {
            return Err(stopped());
        }
        let Some(inner) = self.inner.as_mut() else {
            return Err(io::Error::other("the ParWriter is finished"));
        };
        match inner.write_all(bytes) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.relay.abort();
                let kind = e.kind();
                self.broken = Some(e);
                Err(io::Error::new(
                    kind,
                    "writing the output failed; finish() returns the cause",
                ))
            }
        }
    }

    /// Completes the container (last chunk, trailer) and returns the writer.
    ///
    /// # Errors
    ///
    /// The first error of the run, or of writing to the inner writer.
    pub fn finish(self) -> Result<W> {
        self.finish_with_report().map(|(w, _)| w)
    }

    /// As [`ParWriter::finish`], with the run's [`Report`].
    ///
    /// # Errors
    ///
    /// The first error of the run, or of writing to the inner writer.
    pub fn finish_with_report(mut self) -> Result<(W, Report)> {
        let flushed = self.send_buf();
        if let Some(e) = self.broken.take() {
            return Err(Error::io(e).with_stage("writing the output"));
        }
        let mut inner = self
            .inner
            .take()
            .expect("the writer is taken only here, and finish consumes self");
        let report = self.relay.finish(&mut |b| inner.write_all(&b));
        let report = report?;
        flushed?;
        Ok((inner, report))
    }
}

impl<W: Write> Write for ParWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk_size {
            self.send_buf()?;
        }
        Ok(n)
    }

    /// Hands buffered bytes to the pipeline and writes the output that is
    /// ready. Records are cut at chunk boundaries, so output for a partial
    /// chunk appears only at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("syncpipe pipeline stopped; call finish() for the cause")
}

impl<W: Write> Drop for ParWriter<W> {
    /// Abandons an unfinished run: what the run already produced is
    /// written, then it is stopped (errors are ignored: `Drop` cannot
    /// report them).
    fn drop(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            self.relay.abort();
            while let Some(b) = self.relay.recv(true) {
                let _ = inner.write_all(&b);
            }
            let _ = self.relay.join();
        }
    }
}
