//! The container's framing without the threads, for alternative engines.
//!
//! [`Pipeline::run`](crate::Pipeline::run) owns its threads, channels and
//! governor. An engine built another way (an async runtime, a job system,
//! a test harness) still has to write the same container: the same header,
//! the same records (stage chain, seal, head, CRC) and the same trailer. An
//! [`Encoder`] is the part of a run that every chunk needs and nothing else:
//! the stage chain, the checksum, the chunk size and, when encrypting, the
//! file's keys. It holds no thread and takes no permit; the caller decides
//! where `encode` runs, how many at once, and writes the records in index
//! order. The sync engine frames its records and trailer through the same
//! functions, so the bytes are the same.

use crate::cancel::CancelToken;
use crate::chunk::{self, ChainStage, Chunk, Codec};
use crate::cipher::FileKeys;
use crate::error::Result;
use crate::format::{Trailer, DIGEST_LEN};
use crate::pool::BufferPool;
use crate::stages::{ChecksumKind, Hasher};

/// Encodes the chunks of one container, from any thread (`Send + Sync`: share
/// it in an `Arc`). Made by [`Pipeline::encoder`](crate::Pipeline::encoder).
///
/// The container is `header()`, then `encode(i, last, chunk_i)` for
/// `i = 0, 1, …` in order (each chunk `chunk_size()` bytes but the last,
/// which is shorter or equal and the only one with `last`; an empty input is
/// one empty, last chunk), then `trailer(…)` with the digest of the whole
/// input (`hasher()`).
///
/// ```
/// use syncpipe::Pipeline;
/// use syncpipe::stages::parse_stages;
///
/// let pipeline = Pipeline::builder()
///     .stages(parse_stages("lz4,blake3")?)
///     .chunk_size(64 << 10)
///     .build()?;
/// let data = vec![3u8; 150_000];
/// // `run` streams from a reader of unknown length with mode 0; a file
/// // would give `Some(len)` and its permission bits, as `process_path` does.
/// let enc = pipeline.encoder(None, 0)?;
/// let mut container = enc.header().to_vec();
/// let mut hasher = enc.hasher();
/// let pieces: Vec<&[u8]> = data.chunks(enc.chunk_size()).collect();
/// for (i, piece) in pieces.iter().enumerate() {
///     if let Some(h) = hasher.as_mut() {
///         h.update(piece);
///     }
///     let last = i + 1 == pieces.len();
///     container.extend(enc.encode(i as u64, last, piece.to_vec())?);
/// }
/// let digest = hasher.map(|h| h.finalize());
/// container.extend(enc.trailer(pieces.len() as u64, data.len() as u64, digest));
///
/// let mut sync = Vec::new();
/// pipeline.run(&data[..], &mut sync)?;
/// assert_eq!(container, sync);
/// # Ok::<(), syncpipe::Error>(())
/// ```
pub struct Encoder {
    chain: Vec<ChainStage>,
    checksum: Option<ChecksumKind>,
    /// Bytes per chunk as read.
    chunk_size: usize,
    /// The header's chunk size: the bound a record's payload is checked
    /// against (larger than `chunk_size` only for a hill-climbed container).
    bound: usize,
    keys: Option<FileKeys>,
    header: Vec<u8>,
    buffers: BufferPool,
    cancel: CancelToken,
}

/// What [`Encoder::new`] needs from the pipeline.
pub(crate) struct EncoderParts {
    pub chain: Vec<ChainStage>,
    pub checksum: Option<ChecksumKind>,
    pub chunk_size: usize,
    pub bound: usize,
    pub keys: Option<FileKeys>,
    pub header: Vec<u8>,
    pub buffers: BufferPool,
    pub cancel: CancelToken,
}

impl Encoder {
    pub(crate) fn new(p: EncoderParts) -> Encoder {
        Encoder {
            chain: p.chain,
            checksum: p.checksum,
            chunk_size: p.chunk_size,
            bound: p.bound,
            keys: p.keys,
            header: p.header,
            buffers: p.buffers,
            cancel: p.cancel,
        }
    }

    /// The container's header bytes (sealed when encrypting): write them first.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Bytes per chunk: every chunk but the last holds exactly this many.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// A hasher for the whole-file digest the trailer carries: feed it every
    /// chunk in order. `None` when the stage list has no checksum.
    pub fn hasher(&self) -> Option<Hasher> {
        self.checksum.map(|c| c.hasher())
    }

    /// Encodes chunk `index` (stages, seal, framing) into the complete
    /// record, exactly the bytes the sync engine writes for it. Pure CPU
    /// work: run it where CPU work belongs in your engine.
    ///
    /// # Errors
    ///
    /// A failing stage ([`crate::ErrorKind::Stage`], with the chunk index),
    /// or [`crate::ErrorKind::Cancelled`] once the pipeline's token is
    /// cancelled.
    pub fn encode(&self, index: u64, last: bool, data: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() + 64);
        self.encode_into(index, last, data, &mut out)?;
        Ok(out)
    }

    /// [`Encoder::encode`], appending to `out`.
    pub(crate) fn encode_into(
        &self,
        index: u64,
        last: bool,
        data: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let codec = Codec {
            chain: &self.chain,
            checksum: self.checksum,
            chunk_size: self.bound,
            keys: self.keys.as_ref(),
        };
        let rec = chunk::encode(
            &codec,
            &self.buffers,
            &self.cancel,
            index,
            Chunk { last, data },
        )
        .map_err(|e| e.with_chunk(index))?;
        rec.write_to(out)
            .expect("writing into a Vec<u8> cannot fail");
        self.buffers.give(rec.payload);
        Ok(())
    }

    /// The trailer's bytes: `chunks` records, `original_len` bytes, and the
    /// whole-file digest from [`Encoder::hasher`] (masked with the file's
    /// key when encrypting, as the sync engine does).
    pub fn trailer(&self, chunks: u64, original_len: u64, digest: Option<[u8; 32]>) -> Vec<u8> {
        trailer(self.keys.as_ref(), chunks, original_len, digest).encode()
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("chunk_size", &self.chunk_size)
            .field("checksum", &self.checksum)
            .field("encrypted", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

/// The trailer of a container: the whole-file digest is masked with the
/// file's key when the container is encrypted (see
/// `FileKeys::mask_file_digest`).
pub(crate) fn trailer(
    keys: Option<&FileKeys>,
    chunks: u64,
    original_len: u64,
    digest: Option<[u8; DIGEST_LEN]>,
) -> Trailer {
    Trailer {
        chunk_count: chunks,
        original_len,
        digest: match (keys, digest) {
            (Some(k), Some(d)) => Some(k.mask_file_digest(&d)),
            (_, d) => d,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Encoder>();
    }

    use crate::stages::parse_stages;
    use crate::{ChunkMethod, ErrorKind, Pipeline};

    /// The container an engine of one thread writes with an `Encoder`.
    fn by_encoder(p: &Pipeline, data: &[u8], mode: u32) -> Vec<u8> {
        let enc = p.encoder(Some(data.len() as u64), mode).unwrap();
        let mut out = enc.header().to_vec();
        let mut hasher = enc.hasher();
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(enc.chunk_size()).collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            if let Some(h) = hasher.as_mut() {
                h.update(piece);
            }
            let last = i + 1 == pieces.len();
            out.extend(enc.encode(i as u64, last, piece.to_vec()).unwrap());
        }
        let digest = hasher.map(Hasher::finalize);
        out.extend(enc.trailer(pieces.len() as u64, data.len() as u64, digest));
        out
    }

    #[test]
    fn same_bytes_as_the_threaded_engine() {
        for stages in ["zstd:3,blake3", "lz4", "brotli:1,sha256"] {
            let p = Pipeline::builder()
                .stages(parse_stages(stages).unwrap())
                .chunk_size(1000)
                .build()
                .unwrap();
            for len in [0, 1, 999, 1000, 1001, 4321] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let (sync, _) = p
                    .process_stream(&data[..], Vec::new(), Some(len as u64), 0o640)
                    .unwrap();
                assert_eq!(by_encoder(&p, &data, 0o640), sync, "{stages}, {len}");
            }
        }
    }

    #[test]
    fn filesize_is_resolved_and_hillclimb_refused() {
        let p = Pipeline::builder()
            .chunk_method(ChunkMethod::FileSize)
            .build()
            .unwrap();
        let data = vec![1u8; 3 << 20];
        let (sync, _) = p
            .process_stream(&data[..], Vec::new(), Some(data.len() as u64), 0)
            .unwrap();
        assert_eq!(by_encoder(&p, &data, 0), sync);
        let p = Pipeline::builder()
            .chunk_method(ChunkMethod::HillClimb)
            .build()
            .unwrap();
        let err = p.encoder(None, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("hillclimb"), "{err}");
    }
}
