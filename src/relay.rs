//! A stream run on a thread of its own, with channels for its input and its
//! output, so that [`ParWriter`](crate::ParWriter) and
//! [`ParReader`](crate::ParReader) can keep the caller's writer or reader on
//! the caller's thread (borrowed, not `Send`, not `'static`).
//!
//! The caller pumps both channels: it never blocks sending input without
//! also taking output (`select!`), because the run's writer may be blocked
//! on a full output channel while its reader waits for input. Both channels
//! are bounded, so a relay holds at most a few blocks on either side.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Receiver, Select, Sender};

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::Pipeline;
use crate::report::Report;

/// Blocks of output queued at most, besides the one being written.
const OUTPUT_BLOCKS: usize = 4;

/// What [`Relay::offer`] did.
pub(crate) enum Offer {
    /// The block went to the run.
    Sent,
    /// An output block came first; the input block is handed back.
    Output { unsent: Vec<u8>, output: Vec<u8> },
    /// The run has stopped (its cause comes from [`Relay::join`]).
    Stopped,
}

/// Which stream the relay runs.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Process,
    Restore,
}

/// The caller's side of a relayed run.
pub(crate) struct Relay {
    /// Input blocks to the run; dropped at end of input.
    input: Option<Sender<Vec<u8>>>,
    /// Output blocks from the run, in order; disconnected when it ends.
    output: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<Result<Report>>>,
    /// Set before the input is dropped early: the run must fail, not take
    /// the disconnection for the end of its input.
    aborted: Arc<AtomicBool>,
}

impl Relay {
    /// Starts the run; `depth` bounds the queued input blocks.
    pub fn start(pipeline: &Pipeline, direction: Direction, depth: usize) -> Relay {
        let (in_tx, in_rx) = bounded::<Vec<u8>>(depth.max(1));
        let (out_tx, out_rx) = bounded::<Vec<u8>>(OUTPUT_BLOCKS);
        let aborted = Arc::new(AtomicBool::new(false));
        let input = ChannelReader {
            rx: in_rx,
            cur: Vec::new(),
            pos: 0,
            aborted: Arc::clone(&aborted),
        };
        let output = ChannelWriter { tx: out_tx };
        let pipeline = pipeline.clone();
        let handle = thread::Builder::new()
            .name("syncpipe-relay".into())
            .spawn(move || match direction {
                Direction::Process => pipeline
                    .process_stream(input, output, None, 0)
                    .map(|(_, r)| r),
                Direction::Restore => pipeline.restore_stream(input, output).map(|(_, r)| r),
            });
        match handle {
            Ok(h) => Relay {
                input: Some(in_tx),
                output: out_rx,
                handle: Some(h),
                aborted,
            },
            // No thread: the channels are closed at once; `finish` reports it.
            Err(_) => Relay {
                input: None,
                output: out_rx,
                handle: None,
                aborted,
            },
        }
    }

    /// Offers one input block to the run, or takes an output block if one
    /// comes first: the caller's one blocking step, which never waits on
    /// the input alone (see the module docs).
    pub fn offer(&self, block: Vec<u8>) -> Offer {
        let Some(input) = &self.input else {
            return Offer::Stopped;
        };
        let mut sel = Select::new();
        let send = sel.send(input);
        let recv = sel.recv(&self.output);
        let op = sel.select();
        // The block moves only if the send was the operation selected.
        match op.index() {
            i if i == send => match op.send(input, block) {
                Ok(()) => Offer::Sent,
                Err(_) => Offer::Stopped,
            },
            i => {
                debug_assert_eq!(i, recv);
                match op.recv(&self.output) {
                    Ok(output) => Offer::Output {
                        unsent: block,
                        output,
                    },
                    // The run ended before its input did: it failed.
                    Err(_) => Offer::Stopped,
                }
            }
        }
    }

    /// Takes one output block: waits for it when `wait`, else only one
    /// that is ready. `None` once the run has ended (or none is ready).
    pub fn recv(&self, wait: bool) -> Option<Vec<u8>> {
        if wait {
            self.output.recv().ok()
        } else {
            self.output.try_recv().ok()
        }
    }

    /// Marks the end of the input.
    pub fn end_input(&mut self) {
        self.input = None;
    }

    /// True once the input has ended (or the run could not start).
    pub fn input_ended(&self) -> bool {
        self.input.is_none()
    }

    /// Ends the input, hands the rest of the output to `out` and returns
    /// the run's report or first error.
    pub fn finish(&mut self, out: &mut impl FnMut(Vec<u8>) -> io::Result<()>) -> Result<Report> {
        self.input = None;
        let mut written = Ok(());
        while let Ok(block) = self.output.recv() {
            if written.is_ok() {
                written = out(block);
                if written.is_err() {
                    // Stop the run: its next output block finds no receiver.
                    self.abort();
                }
            }
        }
        let report = self.join()?;
        written.map_err(|e| Error::io(e).with_stage("writing the output"))?;
        Ok(report)
    }

    /// Stops the run early: it fails instead of completing.
    pub fn abort(&mut self) {
        // Store before disconnecting: the run's reader checks the flag after
        // it sees the disconnection, and the channel orders the two.
        self.aborted.store(true, Ordering::Release);
        self.input = None;
    }

    /// Waits for the run's thread and returns its result.
    pub fn join(&mut self) -> Result<Report> {
        let handle = self
            .handle
            .take()
            .ok_or_else(|| Error::io(io::Error::other("could not start the pipeline thread")))?;
        handle
            .join()
            .map_err(|_| Error::new(ErrorKind::Panic, "pipeline thread panicked"))?
    }
}

impl Drop for Relay {
    /// An unfinished run is aborted and its thread joined; output it still
    /// produces is dropped.
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.abort();
            while self.output.recv().is_ok() {}
            let _ = self.join();
        }
    }
}

/// The run's input: blocks from the channel, end at disconnection.
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
                    return Err(io::Error::other(
                        "the reader or writer was dropped unfinished",
                    ))
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

/// The run's output: each write is one block on the channel. The run's
/// writer thread writes through a 256 KiB buffer, so blocks are large.
struct ChannelWriter {
    tx: Sender<Vec<u8>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.send(buf.to_vec()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the caller stopped taking output",
            )
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
