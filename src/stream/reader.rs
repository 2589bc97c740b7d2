//! The reader thread: the only owner of the input. It reads chunks (or,
//! restoring, container records) in order and sends them to the dispatcher
//! as [`Job`]s over the bounded jobs channel, whose depth is what bounds the
//! read-ahead.
//!
//! Processing reads with one chunk of look-ahead, so the final chunk is
//! known to be final when it is sent (STREAM-style encryption binds that
//! into its output), and hashes the whole original in order as it goes.
//! Restoring splits the container into records by their length prefixes
//! without decoding them, checks the framing (order, CRC, trailer, nothing
//! appended) and leaves the decoding to the CPU workers.

use std::io::Read;
use std::time::Instant;

use crossbeam_channel::Sender;

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
        let Some(m) = self.metrics else {
            return self.tx.send(Job { item, stamp: None }).map_err(|_| ());
        };
        let bytes = item.weight();
        let stamp = Stamp {
            queued: Instant::now(),
            read_wait: recorder::take_wait(Permit::Io),
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
/// in order. An empty input yields one empty, final chunk, so every
/// container has a last chunk.
pub(crate) fn read_chunks(
    state: &RunState<'_>,
    mut input: impl Read,
    mut next_size: impl FnMut() -> usize,
    checksum: Option<ChecksumKind>,
    tx: &Feed<'_, Chunk>,
) -> Result<ReadSummary> {
    let mut hasher = checksum.map(|c| c.hasher());
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
        if let Some(h) = hasher.as_mut() {
            h.update(&cur);
        }
        // Unreachable in practice (2^64 chunks), but a wrapped counter would
        // reuse a STREAM nonce, so it is an error, not a wrap.
        chunks = chunks
            .checked_add(1)
            .ok_or_else(|| Error::stage("chunk counter overflow"))?;
        bytes += cur.len() as u64;
        let last = next.is_none();
        let chunk = Chunk { last, data: cur };
        // A failed send means the dispatcher is gone: the run is stopping
        // and the root cause is already recorded.
        tx.send(chunk).map_err(|_| Error::cancelled())?;
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Ok(ReadSummary {
        chunks,
        bytes,
        digest: hasher.map(|h| h.finalize()),
    })
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
