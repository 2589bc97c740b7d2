//! The reader thread: the only owner of the input.
//!
//! Processing reads fixed-size chunks with one chunk of look-ahead, so the
//! final chunk is known to be final when it is sent (stages such as
//! STREAM-style encryption bind that into their output), and hashes the whole
//! original in order as it goes. Restoring splits the container into records
//! by their length prefixes without decoding them, checks framing (order,
//! CRC, trailer, nothing appended) and leaves the decoding to the pool.

use std::io::Read;

use crate::chunk::{Chunk, Sealed};
use crate::engine::{Feed, RunState};
use crate::error::{Error, Result};
use crate::format::{self, Header, Item, Trailer, Walker, DIGEST_LEN};
use crate::stages::ChecksumKind;

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
        let _io = state.governor.io.acquire(&state.cancel)?;
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
            let _io = state.governor.io.acquire(&state.cancel)?;
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
