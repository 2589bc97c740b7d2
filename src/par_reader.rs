//! `ParReader`: restore behind `std::io::Read`.

use std::io::{self, Read};

use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::relay::{Direction, Offer, Relay};
use crate::report::Report;

/// Bytes read from the inner reader at a time.
const READ_BLOCK: usize = 256 << 10;

/// Restores a container read from the inner reader, in parallel, as a
/// `Read` of the original bytes, in the style of zstd's `Decoder`.
///
/// The inner reader stays on the caller's thread (it may be borrowed and
/// need not be `Send`); the restore runs on a background thread (see
/// `relay.rs`), decoding chunks on the pipeline's CPU workers while the
/// caller reads.
///
/// Every chunk is authenticated and checked before its bytes are returned;
/// the whole-file digest can only be checked at the end, so a container
/// whose chunks are intact but reordered or cut short returns its bytes and
/// then fails the final `read` with an error (kind `InvalidData` for an
/// integrity failure; [`crate::Error`] converts with its kind). A caller
/// that must not act on unverified bytes reads to the end first, or
/// restores into a file with [`Pipeline::restore_path`].
///
/// ```
/// use std::io::Read;
/// use syncpipe::Pipeline;
///
/// let pipeline = Pipeline::builder().threads(2).build()?;
/// let mut container = Vec::new();
/// pipeline.run(&b"hello, parallel restore"[..], &mut container)?;
/// let mut back = String::new();
/// pipeline.par_reader(&container[..]).read_to_string(&mut back)?;
/// assert_eq!(back, "hello, parallel restore");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParReader<R: Read> {
    relay: Relay,
    inner: R,
    /// A block read from `inner` that the run has not taken yet.
    pending: Option<Vec<u8>>,
    /// The output block being read out, and how far.
    cur: Vec<u8>,
    pos: usize,
    /// The run's end, once seen: its report, or the error already returned.
    ended: Option<Option<Report>>,
}

impl<R: Read> ParReader<R> {
    pub(crate) fn new(pipeline: &Pipeline, input: R) -> ParReader<R> {
        ParReader {
            relay: Relay::start(
                pipeline,
                Direction::Restore,
                pipeline.config().channel_depth,
            ),
            inner: input,
            pending: None,
            cur: Vec::new(),
            pos: 0,
            ended: None,
        }
    }

    /// The report of the restore, once `read` has returned 0 (the end,
    /// every check passed); `None` before.
    pub fn report(&self) -> Option<&Report> {
        self.ended.as_ref().and_then(Option::as_ref)
    }

    /// Gets the next output block into `cur`; false at the end.
    fn next_block(&mut self) -> Result<bool> {
        loop {
            if self.relay.input_ended() {
                return Ok(match self.relay.recv(true) {
                    Some(b) => {
                        self.cur = b;
                        self.pos = 0;
                        true
                    }
                    None => false,
                });
            }
            let block = match self.pending.take() {
                Some(b) => b,
                None => {
                    let mut b = vec![0; READ_BLOCK];
                    let n = match self.inner.read(&mut b) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            self.relay.abort();
                            return Err(crate::Error::io(e).with_stage("reading the input"));
                        }
                    };
                    if n == 0 {
                        self.relay.end_input();
                        continue;
                    }
                    b.truncate(n);
                    b
                }
            };
            // Send it, or take an output block that arrives first.
            match self.relay.offer(block) {
                Offer::Sent => {}
                Offer::Output { unsent, output } => {
                    self.pending = Some(unsent);
                    self.cur = output;
                    self.pos = 0;
                    return Ok(true);
                }
                // The run stopped early: its error comes from the join.
                Offer::Stopped => self.relay.end_input(),
            }
        }
    }
}

impl<R: Read> Read for ParReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.cur.len() {
            if self.ended.is_some() {
                return Ok(0);
            }
            let more = self.next_block().map_err(|e| {
                self.ended = Some(None);
                io::Error::from(e)
            })?;
            if !more {
                return match self.relay.join() {
                    Ok(report) => {
                        self.ended = Some(Some(report));
                        Ok(0)
                    }
                    Err(e) => {
                        self.ended = Some(None);
                        Err(e.into())
                    }
                };
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
