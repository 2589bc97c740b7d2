//! The reader thread: the only owner of the input. It reads chunks (or,
//! restoring, container records) in order and sends them to the dispatcher
//! as [`Job`]s over the bounded jobs channel, whose depth is what bounds the
//! read-ahead.
//!
//! Processing reads with one chunk of look-ahead, so the final chunk is
//! known to be final when it is sent (STREAM-style encryption binds that
//! into its output). It does not hash: a serial whole-file digest is the
//! hasher thread's (`hasher.rs`), which the reader then feeds instead of
//! the dispatcher.
//! Restoring splits the container into records by their length prefixes
//! without decoding them, checks the framing (order, CRC, trailer, nothing
//! appended) and leaves the decoding to the CPU workers.

use std::io::Read;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, Sender};

use super::hasher;
use super::state::RunState;
use super::Weight;
use crate::chunk::{Chunk, Sealed};
use crate::error::{Error, Result};
use crate::format::{self, Header, Item, Trailer, Walker, DIGEST_LEN};
use crate::metrics::Metrics;
use crate::recorder::{self, Permit};
use crate::stages::ChecksumKind;

/// A job on its way to the dispatcher: a chunk to encode or a record to
/// decode, and when the run reports metrics, when it was queued.
pub(crate) struct Job<J> {
    pub item: J,
    pub stamp: Option<Stamp>,
}

/// When a job was queued, and how long its read waited for an IO permit.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    pub queued: Instant,
    pub read_wait: u64,
}

/// The reader's end of the jobs channel: sends, and stamps and counts each
/// job when the run reports metrics.
pub(crate) struct Feed<'a, J> {
    pub tx: Sender<Job<J>>,
    pub metrics: Option<&'a Metrics>,
}

impl<J: Weight> Feed<'_, J> {
    /// Sends `item`, blocking while the channel is full.
    ///
    /// # Errors
    ///
    /// `Err(())` if the dispatcher is gone (the run is stopping).
    pub fn send(&self, item: J) -> std::result::Result<(), ()> {
        let read_wait = match self.metrics {
            Some(_) => recorder::take_wait(Permit::Io),
            None => 0,
        };
        self.send_waited(item, read_wait)
    }

    /// [`Feed::send`] from a thread other than the one that read `item`:
    /// `read_wait` is that read's IO wait, taken on the reading thread.
    pub fn send_waited(&self, item: J, read_wait: u64) -> std::result::Result<(), ()> {
        let Some(m) = self.metrics else {
            return self.tx.send(Job { item, stamp: None }).map_err(|_| ());
        };
        let bytes = item.weight();
        let stamp = Stamp {
            queued: Instant::now(),
            read_wait,
        };
        let job = Job {
            item,
            stamp: Some(stamp),
        };
        self.tx.send(job).map_err(|_| ())?;
        m.note_read(bytes, self.tx.len());
        Ok(())
    }
}

/// What the reader saw of the original.
pub(crate) struct ReadSummary {
    pub chunks: u64,
    pub bytes: u64,
    pub digest: Option<[u8; DIGEST_LEN]>,
}

/// Reads `input` in chunks of the sizes `next_size` gives (asked once per
/// chunk, in order: fixed, or what the hill climber decided) and sends them
/// in order: through a hasher thread that computes the `serial_digest`, if
/// any, else straight to the dispatcher. An empty input yields one empty,
/// final chunk, so every container has a last chunk.
pub(crate) fn read_chunks(
    state: &RunState<'_>,
    input: impl Read,
    next_size: impl FnMut() -> usize,
    serial_digest: Option<ChecksumKind>,
    tx: &Feed<'_, Chunk>,
) -> Result<ReadSummary> {
    let Some(kind) = serial_digest else {
        let (chunks, bytes) = read_loop(state, input, next_size, |chunk| tx.send(chunk))?;
        return Ok(ReadSummary {
            chunks,
            bytes,
            digest: None,
        });
    };
    let (hash_tx, hash_rx) = bounded::<hasher::Read>(hasher::DEPTH);
    thread::scope(|s| {
        let hashing = thread::Builder::new()
            .name("syncpipe-hasher".into())
            .spawn_scoped(s, move || hasher::run(state, kind, hash_rx, tx))
            .map_err(|e| Error::io(e).with_stage("spawning a thread"))?;
        let read = read_loop(state, input, next_size, |chunk| {
            let read_wait = match tx.metrics {
                Some(_) => recorder::take_wait(Permit::Io),
                None => 0,
            };
            hash_tx
                .send(hasher::Read { chunk, read_wait })
                .map_err(|_| ())
        });
        // Closing the channel ends the hasher after the chunks already
        // queued.
        drop(hash_tx);
        let digest = hashing.join().unwrap_or_else(|payload| {
            Err(super::panic_error(payload.as_ref()).with_stage("hasher"))
        });
        // The reader's own error is the root cause of a hasher that then
        // stopped; a hasher's error alone (its send failed) is the run's.
        let (chunks, bytes) = read?;
        Ok(ReadSummary {
            chunks,
            bytes,
            digest: Some(digest?),
        })
    })
}

/// The read loop of [`read_chunks`]: `send` takes each chunk, in order.
/// Returns (chunks, bytes) read.
fn read_loop(
    state: &RunState<'_>,
    mut input: impl Read,
    mut next_size: impl FnMut() -> usize,
    mut send: impl FnMut(Chunk) -> std::result::Result<(), ()>,
) -> Result<(u64, u64)> {
    let mut chunks = 0u64;
    let mut bytes = 0u64;
    // The size asked for the chunk in `cur`.
    let mut want = next_size();
    let mut cur = read_one(state, &mut input, want)?;
    loop {
        state.check()?;
        // A short chunk can only come from end of input (`read_full` loops
        // until the buffer is full or the reader reports 0).
        let next = if cur.len() < want {
            None
        } else {
            want = next_size();
            Some(read_one(state, &mut input, want)?).filter(|n| !n.is_empty())
        };
        // Unreachable in practice (2^64 chunks), but a wrapped counter would
        // reuse a STREAM nonce, so it is an error, not a wrap.
        chunks = chunks
            .checked_add(1)
            .ok_or_else(|| Error::stage("chunk counter overflow"))?;
        bytes += cur.len() as u64;
        let last = next.is_none();
        let chunk = Chunk { last, data: cur };
        // A failed send means the next thread is gone: the run is stopping
        // and the root cause is already recorded.
        send(chunk).map_err(|_| Error::cancelled())?;
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Ok((chunks, bytes))
}

fn read_one(state: &RunState<'_>, input: &mut impl Read, chunk_size: usize) -> Result<Vec<u8>> {
    let mut buf = state.buffers.take();
    crate::pool::reserve(&mut buf, chunk_size)?;
    buf.resize(chunk_size, 0);
    let n = {
        let _io = state.io()?;
        format::read_full(input, &mut buf)?
    };
    buf.truncate(n);
    state.hold(n);
    Ok(buf)
}

/// Splits a container body into records and sends them in order; returns the
/// trailer once the framing rules (`format::Walker`) have all passed.
pub(crate) fn read_records(
    state: &RunState<'_>,
    mut input: impl Read,
    header: &Header,
    tx: &Feed<'_, Sealed>,
) -> Result<Trailer> {
    let mut walker = Walker::new(header);
    loop {
        state.check()?;
        let mut payload = state.buffers.take();
        let item = {
            let _io = state.io()?;
            walker.next(&mut input, &mut payload)?
        };
        match item {
            Item::Chunk { head, digest } => {
                state.hold(head.original_len as usize);
                let sealed = Sealed {
                    head,
                    digest,
                    payload,
                };
                tx.send(sealed).map_err(|_| Error::cancelled())?;
            }
            Item::Trailer(trailer) => {
                state.buffers.give(payload);
                return Ok(trailer);
            }
        }
    }
}
