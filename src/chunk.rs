//! One chunk's CPU work: the stage chain forward (to a record) and inverse
//! (back to the original bytes). Runs on a rayon worker; touches no shared
//! state except the non-blocking buffer pool.

use std::io::{self, Write};
use std::mem;
use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::cipher::{FileKeys, TAG_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{self, RecordHead, StageDesc, DIGEST_LEN, FLAG_LAST};
use crate::pool::BufferPool;
use crate::recorder::Lap;
use crate::stage::{ChunkInfo, Stage};
use crate::stages::tree::Pieces;
use crate::stages::ChecksumKind;
use blake3::hazmat::ChainingValue;

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
    /// The chunk's BLAKE3 subtree values for the whole-file digest, when
    /// the run assembles it from the workers' pieces ([`Codec::pieces`]).
    pub pieces: Vec<ChainingValue>,
}

impl Encoded {
    /// Writes the record in container order: head, payload, CRC. Every
    /// writer of records (the sync writer, the small-file path, the
    /// [`crate::Encoder`]) frames through here.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.head)?;
        out.write_all(&self.payload)?;
        out.write_all(&self.crc.to_le_bytes())
    }
}

/// A record read from a container, waiting to be decoded.
pub(crate) struct Sealed {
    pub head: RecordHead,
    pub digest: Option<[u8; DIGEST_LEN]>,
    pub payload: Vec<u8>,
}

/// What every chunk of one container shares: the stages, the checksum, the
/// chunk size and, for an encrypted container, the file's keys.
#[derive(Clone, Copy)]
pub(crate) struct Codec<'a> {
    pub chain: &'a [ChainStage],
    pub checksum: Option<ChecksumKind>,
    pub chunk_size: usize,
    pub keys: Option<&'a FileKeys>,
    /// Set when the whole-file BLAKE3 is hashed here, piece by piece, on
    /// the workers (`stages/tree.rs`), instead of serially.
    pub pieces: Option<Pieces>,
}

impl Codec<'_> {
    /// The record's digest of the original chunk: none when encrypted (the
    /// AEAD tag authenticates the chunk, and a plain digest of plaintext
    /// would let anyone confirm a guess of its contents).
    fn record_digest(&self, data: &[u8]) -> Option<[u8; DIGEST_LEN]> {
        match self.keys {
            Some(_) => None,
            None => self.checksum.map(|c| c.digest(data)),
        }
    }
}

/// Runs the stage chain forward over one chunk, seals it when the container
/// is encrypted, and frames the result. Long stages watch `cancel` (see
/// [`Stage::forward_cancellable`]).
pub(crate) fn encode(
    codec: &Codec<'_>,
    buffers: &BufferPool,
    cancel: &CancelToken,
    index: u64,
    chunk: Chunk,
) -> Result<Encoded> {
    let Codec {
        chain, chunk_size, ..
    } = *codec;
    let original_len = chunk.data.len();
    let info = ChunkInfo {
        index,
        last: chunk.last,
        limit: format::max_payload(chunk_size),
    };
    let lap = Lap::start();
    let digest = codec.record_digest(&chunk.data);
    let pieces = codec
        .pieces
        .map(|p| p.hash(index, chunk.last, &chunk.data))
        .unwrap_or_default();
    lap.checksum();
    let mut cur = chunk.data;
    let mut skip_mask = 0u8;
    for (i, s) in chain.iter().enumerate() {
        let mut out = buffers.take();
        let lap = Lap::start();
        s.stage
            .forward_cancellable(&info, &cur, &mut out, cancel)
            .map_err(|e| match e.kind() {
                // A consequence of the cancel, not the stage's failure.
                ErrorKind::Cancelled => e,
                _ => e.with_stage(s.desc.name.clone()),
            })?;
        lap.stage(i);
        if s.stage.skip_if_larger() && out.len() >= cur.len() {
            // Incompressible: store what came in, remember the skip.
            skip_mask |= 1 << i;
            buffers.give(out);
        } else {
            buffers.give(mem::replace(&mut cur, out));
        }
    }
    let payload_len = cur.len() + if codec.keys.is_some() { TAG_LEN } else { 0 };
    if payload_len > format::max_payload(chunk_size) {
        return Err(Error::stage(format!(
            "stage output of {payload_len} bytes exceeds the container bound of {} for a {chunk_size}-byte chunk",
            format::max_payload(chunk_size)
        )));
    }
    let head = RecordHead {
        index,
        flags: if chunk.last { FLAG_LAST } else { 0 },
        skip_mask,
        original_len: original_len as u32,
        payload_len: payload_len as u32,
    };
    let mut head_bytes = Vec::with_capacity(64);
    head.encode(digest.as_ref(), &mut head_bytes);
    if let Some(keys) = codec.keys {
        // Encrypt last, over the compressed bytes (ciphertext does not
        // compress), with the head as associated data.
        let lap = Lap::start();
        keys.seal(index, chunk.last, &head_bytes, &mut cur)
            .map_err(|e| e.with_stage(keys.cipher().name()))?;
        lap.stage(chain.len());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head_bytes);
    crc.update(&cur);
    Ok(Encoded {
        head: head_bytes,
        payload: cur,
        crc: crc.finalize(),
        original_len,
        pieces,
    })
}

/// Opens an encrypted record (nothing else happens to bytes that do not
/// authenticate), runs the stage chain inverse, and checks the result
/// against the record's length and digest.
pub(crate) fn decode(codec: &Codec<'_>, buffers: &BufferPool, sealed: Sealed) -> Result<Vec<u8>> {
    let Codec {
        chain, chunk_size, ..
    } = *codec;
    let head = sealed.head;
    let mut cur = sealed.payload;
    if let Some(keys) = codec.keys {
        let mut head_bytes = Vec::with_capacity(64);
        head.encode(sealed.digest.as_ref(), &mut head_bytes);
        let lap = Lap::start();
        keys.open(head.index, head.is_last(), &head_bytes, &mut cur)
            .map_err(|e| e.with_stage(keys.cipher().name()))?;
        lap.stage(chain.len());
    }
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
    if let (Some(kind), Some(expected)) = (codec.checksum, sealed.digest) {
        let lap = Lap::start();
        let ok = kind.digest(&cur) == expected;
        lap.checksum();
        if !ok {
            return Err(Error::integrity(format!("{} mismatch", kind.name())));
        }
    }
    Ok(cur)
}
