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
use crate::chunk_plan::ChunkPlan;
use crate::cipher::FileKeys;
use crate::error::{Error, Result};
use crate::format::{Trailer, DIGEST_LEN};
use crate::pipeline::Pipeline;
use crate::pool::BufferPool;
use crate::recorder::{self, Recorder};
use crate::report::Report;
use crate::stages::{ChecksumKind, Hasher};
use crate::tuner::ChunkMethod;
use std::time::Instant;

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
            pieces: None,
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

    /// A whole container of `data`, held in memory, encoded chunk after
    /// chunk on the calling thread: header, records, trailer. The same
    /// bytes the sync engine writes for that input (an encrypted container
    /// draws its own file nonce either way). An empty input is one empty,
    /// final chunk, as the reader makes it. Returns the container and the
    /// number of chunks.
    ///
    /// # Errors
    ///
    /// As [`Encoder::encode`].
    pub fn encode_all(&self, data: &[u8]) -> Result<(Vec<u8>, u64, Option<[u8; DIGEST_LEN]>)> {
        self.encode_all_recorded(data, None)
    }

    /// [`Encoder::encode_all`], recording each chunk into `recorder` (when
    /// given) as the streamed engine's writer does: its CPU time on this
    /// thread, its wall time, its stage laps, its bytes in and out.
    pub(crate) fn encode_all_recorded(
        &self,
        data: &[u8],
        mut recorder: Option<&mut Recorder>,
    ) -> Result<(Vec<u8>, u64, Option<[u8; DIGEST_LEN]>)> {
        let mut out = self.header.clone();
        let mut hasher = self.hasher();
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(self.chunk_size).collect()
        };
        let chunks = pieces.len() as u64;
        for (index, piece) in (0u64..).zip(pieces) {
            if let Some(h) = hasher.as_mut() {
                h.update(piece);
            }
            let last = index + 1 == chunks;
            match recorder.as_deref_mut() {
                None => self.encode_into(index, last, piece.to_vec(), &mut out)?,
                Some(rec) => {
                    let at = out.len();
                    let (encoded, cost) = recorder::timed_job(Some(rec.metrics()), || {
                        self.encode_into(index, last, piece.to_vec(), &mut out)
                    });
                    encoded?;
                    rec.record_inline(cost, piece.len() as u64, (out.len() - at) as u64);
                }
            }
        }
        let digest = hasher.map(Hasher::finalize);
        out.extend_from_slice(&self.trailer(chunks, data.len() as u64, digest));
        Ok((out, chunks, digest))
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

impl Pipeline {
    /// Processes an input held whole in memory into a container, encoding
    /// every chunk in turn on the calling thread: the small-file path of a
    /// batch (`batch/worker.rs`), where the engine's three threads and two channels
    /// would cost more than the work. The bytes are those [`Pipeline::run`]
    /// writes for the same input, length and mode (an encrypted container
    /// draws its own file nonce either way). The caller holds the CPU lease.
    pub(crate) fn encode_whole(&self, data: &[u8], mode: u32) -> Result<(Vec<u8>, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let len = data.len() as u64;
        // A hill climb would not get past its start within a small file:
        // the chunks are the start size, as a streamed run's would be.
        let plan = self.chunk_plan(Some(len));
        let buffers = BufferPool::new(4, data.len().min(plan.start));
        let enc = self.encoder_for(&plan, Some(len), mode, buffers)?;
        // Recorded as a streamed run records its chunks, so that a file is
        // counted alike whichever path it took.
        let mut recorder = self.recorder();
        let (out, chunks, digest) = enc.encode_all_recorded(data, recorder.as_mut())?;
        let report = Report {
            elapsed: start.elapsed(),
            bytes_in: len,
            original_bytes: len,
            bytes_out: out.len() as u64,
            chunks,
            chunk_size: plan.start,
            chunk_sizes: plan.history(),
            peak_chunk_bytes: len,
            cpu_waits: self.inner.governor.cpu.wait_stats(),
            chunk_method: cfg.chunk_method,
            checksum: cfg.checksum,
            digest,
            mode: Some(mode),
            ..Report::default()
        };
        Ok((out, report))
    }

    /// An [`Encoder`]: this pipeline's container framing without its
    /// threads, for an engine of your own (e.g. on an async runtime; see
    /// `examples/async_pipeline.rs`). `original_len` and `mode` go into the
    /// header as [`Pipeline::process_path`] puts them (the input's length
    /// and permission bits; `None` and 0 for a stream), so the same input
    /// gives the same container bytes as the sync engine (an encrypted one
    /// draws its own file nonce either way). Chunks are fixed-size:
    /// [`ChunkMethod::FileSize`] is resolved from `original_len` here.
    /// Encoding watches this pipeline's cancel token.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] for a pipeline that writes another
    /// format than [`crate::Format::Spipe`], for [`ChunkMethod::HillClimb`] (its
    /// sizes follow the engine's own timings) or for a cipher without a
    /// secret; [`crate::ErrorKind::WrongKey`] or a KDF failure while
    /// deriving the key.
    pub fn encoder(&self, original_len: Option<u64>, mode: u32) -> Result<Encoder> {
        let cfg = &self.inner.config;
        if cfg.format != crate::Format::Spipe {
            return Err(Error::usage(format!(
                "an Encoder writes syncpipe containers; the {} format is written by the \
                 pipeline's own runs (Pipeline::run, Pipeline::process_path)",
                cfg.format
            )));
        }
        if cfg.chunk_method == ChunkMethod::HillClimb {
            return Err(Error::usage(
                "an Encoder writes fixed-size chunks: use the fixed or filesize chunk method, not hillclimb",
            ));
        }
        let plan = self.chunk_plan(original_len);
        // Enough idle buffers for every chunk the CPU tokens let run at once.
        let buffers = BufferPool::new(2 * cfg.cpu_tokens + 4, plan.start);
        self.encoder_for(&plan, original_len, mode, buffers)
    }

    fn encoder_for(
        &self,
        plan: &ChunkPlan,
        original_len: Option<u64>,
        mode: u32,
        buffers: BufferPool,
    ) -> Result<Encoder> {
        let (header, keys) = self.new_header(original_len, mode, plan)?;
        Ok(Encoder::new(EncoderParts {
            chain: self.inner.chain.clone(),
            checksum: self.inner.config.checksum,
            chunk_size: plan.start,
            bound: plan.largest,
            keys,
            header: header.encode(),
            buffers,
            cancel: self.inner.cancel.clone(),
        }))
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
        enc.encode_all(data).unwrap().0
    }

    /// `encode_all` is `encode` chunk by chunk, framed by header and trailer.
    #[test]
    fn encode_all_is_the_records_in_order() {
        let p = Pipeline::builder()
            .stages(parse_stages("lz4,sha256").unwrap())
            .chunk_size(1000)
            .build()
            .unwrap();
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 13) as u8).collect();
        let enc = p.encoder(Some(2500), 0).unwrap();
        let mut by_hand = enc.header().to_vec();
        let mut h = enc.hasher().unwrap();
        for (i, piece) in data.chunks(1000).enumerate() {
            h.update(piece);
            by_hand.extend(enc.encode(i as u64, i == 2, piece.to_vec()).unwrap());
        }
        by_hand.extend(enc.trailer(3, 2500, Some(h.finalize())));
        let (all, chunks, digest) = enc.encode_all(&data).unwrap();
        assert_eq!((chunks, digest.is_some()), (3, true));
        assert_eq!(all, by_hand);
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
