//! `ParWriter`: the pipeline behind `std::io::Write`.

use std::io::{self, Read, Write};
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::Pipeline;
use crate::report::Report;

/// Processes everything written to it into a container on the inner writer,
/// in parallel, in the style of zstd's `Encoder`: write, then call
/// [`ParWriter::finish`] to complete the container and get the writer back.
///
/// The run happens on a background thread (which is why `W` must be `Send +
/// 'static`); written bytes are batched into chunk-sized buffers and handed
/// over a bounded channel, so a fast producer is slowed to the pipeline's
/// pace instead of buffering without bound.
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
/// let mut w = pipeline.par_writer(Vec::new());
/// w.write_all(b"some data, streamed")?;
/// let container: Vec<u8> = w.finish()?;
/// let mut back = Vec::new();
/// pipeline.restore(&container[..], &mut back)?;
/// assert_eq!(back, b"some data, streamed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParWriter<W: Write + Send + 'static> {
    tx: Option<Sender<Vec<u8>>>,
    buf: Vec<u8>,
    chunk_size: usize,
    aborted: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<(W, Report)>>>,
}

impl<W: Write + Send + 'static> ParWriter<W> {
    pub(crate) fn new(pipeline: Pipeline, output: W) -> ParWriter<W> {
        let chunk_size = pipeline.config().chunk_size;
        let (tx, rx) = crossbeam_channel::bounded(pipeline.config().channel_depth);
        let aborted = Arc::new(AtomicBool::new(false));
        let source = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            aborted: Arc::clone(&aborted),
        };
        let handle = thread::Builder::new()
            .name("syncpipe-par-writer".into())
            .spawn(move || pipeline.process_stream(source, output, None, 0));
        let (tx, handle) = match handle {
            Ok(h) => (Some(tx), Some(h)),
            // No thread: writes will fail and `finish` reports it.
            Err(_) => (None, None),
        };
        ParWriter {
            tx,
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            aborted,
            handle,
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_size));
        match &self.tx {
            Some(tx) if tx.send(full).is_ok() => Ok(()),
            // The run has stopped; `finish` returns its real error.
            _ => Err(io::Error::other(
                "syncpipe pipeline stopped; call finish() for the cause",
            )),
        }
    }

    /// Completes the container (last chunk, trailer) and returns the writer.
    ///
    /// # Errors
    ///
    /// The first error of the run.
    pub fn finish(self) -> Result<W> {
        self.finish_with_report().map(|(w, _)| w)
    }

    /// As [`ParWriter::finish`], with the run's [`Report`].
    ///
    /// # Errors
    ///
    /// The first error of the run.
    pub fn finish_with_report(mut self) -> Result<(W, Report)> {
        let flushed = self.send_buf();
        // Disconnection is the end-of-input signal for the background reader.
        self.tx = None;
        let handle = self
            .handle
            .take()
            .ok_or_else(|| Error::io(io::Error::other("could not start the pipeline thread")))?;
        let result = handle
            .join()
            .map_err(|_| Error::new(ErrorKind::Panic, "pipeline thread panicked"))?;
        let out = result?;
        flushed?;
        Ok(out)
    }
}

impl<W: Write + Send + 'static> Write for ParWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk_size {
            self.send_buf()?;
        }
        Ok(n)
    }

    /// Hands buffered bytes to the pipeline. Records are cut at chunk
    /// boundaries, so output for a partial chunk appears only at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

impl<W: Write + Send + 'static> Drop for ParWriter<W> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // Store before disconnecting: the reader checks the flag after it
            // sees the disconnection, and the channel orders the two.
            self.aborted.store(true, Ordering::Release);
            self.tx = None;
            let _ = handle.join();
        }
    }
}

/// The background run's input: buffers from the channel, end at disconnect.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    aborted: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.cur = next;
                    self.pos = 0;
                }
                Err(_) if self.aborted.load(Ordering::Acquire) => {
                    return Err(io::Error::other("ParWriter dropped without finish()"))
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
