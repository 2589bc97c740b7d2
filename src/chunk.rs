//! One chunk's CPU work: the stage chain forward (to a record) and inverse
//! (back to the original bytes). Runs on a rayon worker; touches no shared
//! state except the non-blocking buffer pool.

use std::mem;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{self, RecordHead, StageDesc, DIGEST_LEN, FLAG_LAST};
use crate::pool::BufferPool;
use crate::recorder::Lap;
use crate::stage::{ChunkInfo, Stage};
use crate::stages::ChecksumKind;

/// A stage as the engine holds it: the transform and its header description.
#[derive(Clone)]
pub(crate) struct ChainStage {
    pub stage: Arc<dyn Stage>,
    pub desc: StageDesc,
}

/// Original bytes of one chunk, as read.
pub(crate) struct Chunk {
    pub last: bool,
    pub data: Vec<u8>,
}

/// A chunk record ready for the writer: head (with digest), payload, CRC.
pub(crate) struct Encoded {
    pub head: Vec<u8>,
    pub payload: Vec<u8>,
    pub crc: u32,
    pub original_len: usize,
}

/// A record read from a container, waiting to be decoded.
pub(crate) struct Sealed {
    pub head: RecordHead,
    pub digest: Option<[u8; DIGEST_LEN]>,
    pub payload: Vec<u8>,
}

/// Runs the stage chain forward over one chunk and frames the result.
pub(crate) fn encode(
    chain: &[ChainStage],
    checksum: Option<ChecksumKind>,
    chunk_size: usize,
    buffers: &BufferPool,
    index: u64,
    chunk: Chunk,
) -> Result<Encoded> {
    let original_len = chunk.data.len();
    let info = ChunkInfo {
        index,
        last: chunk.last,
        limit: format::max_payload(chunk_size),
    };
    let lap = Lap::start();
    let digest = checksum.map(|c| c.digest(&chunk.data));
    lap.checksum();
    let mut cur = chunk.data;
    let mut skip_mask = 0u8;
    for (i, s) in chain.iter().enumerate() {
        let mut out = buffers.take();
        let lap = Lap::start();
        s.stage
            .forward(&info, &cur, &mut out)
            .map_err(|e| e.with_stage(s.desc.name.clone()))?;
        lap.stage(i);
        if s.stage.skip_if_larger() && out.len() >= cur.len() {
            // Incompressible: store what came in, remember the skip.
            skip_mask |= 1 << i;
            buffers.give(out);
        } else {
            buffers.give(mem::replace(&mut cur, out));
        }
    }
    if cur.len() > format::max_payload(chunk_size) {
        return Err(Error::stage(format!(
            "stage output of {} bytes exceeds the container bound of {} for a {chunk_size}-byte chunk",
            cur.len(),
            format::max_payload(chunk_size)
        )));
    }
    let head = RecordHead {
        index,
        flags: if chunk.last { FLAG_LAST } else { 0 },
        skip_mask,
        original_len: original_len as u32,
        payload_len: cur.len() as u32,
    };
    let mut head_bytes = Vec::with_capacity(64);
    head.encode(digest.as_ref(), &mut head_bytes);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head_bytes);
    crc.update(&cur);
    Ok(Encoded {
        head: head_bytes,
        payload: cur,
        crc: crc.finalize(),
        original_len,
    })
}

/// Runs the stage chain inverse over one record and checks the result
/// against the record's length and digest.
pub(crate) fn decode(
    chain: &[ChainStage],
    checksum: Option<ChecksumKind>,
    chunk_size: usize,
    buffers: &BufferPool,
    sealed: Sealed,
) -> Result<Vec<u8>> {
    let head = sealed.head;
    let mut cur = sealed.payload;
    for (i, s) in chain.iter().enumerate().rev() {
        if head.skip_mask & (1 << i) != 0 {
            continue;
        }
        // The first stage's output is the original chunk, whose exact length
        // the record states; inner stages are bounded like payloads.
        let limit = if i == 0 {
            head.original_len as usize
        } else {
            format::max_payload(chunk_size)
        };
        let info = ChunkInfo {
            index: head.index,
            last: head.is_last(),
            limit,
        };
        let mut out = buffers.take();
        let lap = Lap::start();
        s.stage
            .inverse(&info, &cur, &mut out)
            .map_err(|e| e.with_stage(s.desc.name.clone()))?;
        lap.stage(i);
        if out.len() > limit {
            return Err(Error::integrity(format!(
                "inverse produced {} bytes, more than the limit of {limit}",
                out.len()
            ))
            .with_stage(s.desc.name.clone()));
        }
        buffers.give(mem::replace(&mut cur, out));
    }
    if cur.len() != head.original_len as usize {
        return Err(Error::integrity(format!(
            "restored {} bytes, the record says {}",
            cur.len(),
            head.original_len
        )));
    }
    if let (Some(kind), Some(expected)) = (checksum, sealed.digest) {
        let lap = Lap::start();
        let ok = kind.digest(&cur) == expected;
        lap.checksum();
        if !ok {
            return Err(Error::integrity(format!("{} mismatch", kind.name())));
        }
    }
    Ok(cur)
}
