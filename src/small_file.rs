//! One small file processed or restored without the streaming engine's
//! threads: read whole, encoded on the calling thread under one CPU lease,
//! written (and, into a file, committed); or a small container's records
//! read, decoded and written in turn on the calling thread. The path a batch's small files take
//! (`batch/worker.rs`), for [`Pipeline::process_path`] and
//! [`Pipeline::process_from_path`] too: at a few KiB, starting the reader,
//! dispatcher and writer threads costs more than the compression.
//!
//! The container is byte for byte the streamed one (same header, chunks
//! and trailer: `Encoder::encode_all`), committed the same way (fsync of
//! the file, rename, fsync of the folder), with the same permits taken and
//! given back and the same metrics recorded.

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use crate::chunk::{self, Sealed};
use crate::error::{Error, Result};
use crate::format::{Item, Walker};
use crate::output;
use crate::pipeline::Pipeline;
use crate::pool::BufferPool;
use crate::recorder;
use crate::report::Report;
use crate::stream::{check_file_digest, restore_codec, Counting, Opened};

impl Pipeline {
    /// Processes the regular file `input` (opened as `file`, `meta` taken
    /// at the open, smaller than [`crate::batch::SMALL_FILE_MAX`]) into
    /// `out`: read whole, checked unchanged, encoded and written. The
    /// caller commits a file output (its times, the rename).
    pub(crate) fn process_small<W: Write>(
        &self,
        input: &Path,
        file: &File,
        meta: &Metadata,
        out: &mut W,
    ) -> Result<Report> {
        let _active = self.begin_run();
        let governor = self.governor();
        let cancel = self.cancel_token();
        let mut data = Vec::with_capacity(meta.len() as usize);
        {
            let _io = governor.io.acquire(cancel)?;
            // One byte past the size: a file that grew is seen as changed.
            file.take(meta.len() + 1)
                .read_to_end(&mut data)
                .map_err(|e| Error::io(e).with_path(input))?;
        }
        output::check_unchanged(file, meta, data.len() as u64).map_err(|e| e.with_path(input))?;
        let mode = output::mode_of(meta);
        // The bytes read are chunk data alive in this run, as a streamed
        // run's chunks are, until they are encoded.
        governor.memory.add(data.len());
        let encoded = governor
            .cpu
            .acquire(cancel)
            .and_then(|_cpu| self.encode_whole(&data, mode));
        governor.memory.sub(data.len());
        let (bytes, report) = encoded.map_err(|e| e.with_path(input))?;
        {
            let _io = governor.io.acquire(cancel)?;
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| {
                    Error::io(e)
                        .with_stage("writing the output")
                        .with_path(input)
                })?;
        }
        // Counted before a commit, as a streamed run is: an observer that
        // panics fails the run and leaves no output.
        self.run_done(&report)?;
        Ok(report)
    }
}

impl Pipeline {
    /// Restores the records after the opened header of a small container
    /// (one whose header gives an original length under
    /// [`crate::batch::SMALL_FILE_MAX`]) on the calling thread: each record
    /// read under an IO permit, decoded and checked under one CPU lease,
    /// written, then the trailer and the whole-file digest checked, as the
    /// streamed restore does, with the same metrics. A header that lies
    /// about the length only makes the restore run on one thread: every
    /// record is bounded and checked the same way.
    pub(crate) fn restore_small<R: Read, W: Write>(
        &self,
        opened: Opened,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let Opened {
            header,
            header_len,
            keys,
        } = opened;
        let chain = self.chain_for(&header)?;
        let codec = restore_codec(&header, &chain, keys.as_ref());
        // The same memory bound as a streamed restore of this header.
        self.restore_window_for(&header)?;
        let _active = self.begin_run();
        let governor = self.governor();
        let cancel = self.cancel_token();
        let buffers = BufferPool::new(4, header.chunk_size.min(crate::config::DEFAULT_CHUNK_SIZE));
        let mut recorder = self.metrics_recorder(
            chain
                .iter()
                .map(|s| s.desc.name.clone())
                .chain(header.crypto.as_ref().map(|c| c.cipher.name().to_string())),
            header.checksum,
        );
        let mut walker = Walker::new(&header);
        let mut hasher = header.checksum.map(|c| c.hasher());
        let mut input = Counting {
            inner: input,
            bytes: 0,
        };
        let mut out = Counting {
            inner: output,
            bytes: 0,
        };
        let (mut chunks, mut peak) = (0u64, 0usize);
        let _cpu = governor.cpu.acquire(cancel)?;
        let trailer = loop {
            if cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let mut payload = buffers.take();
            let item = {
                let _io = governor.io.acquire(cancel)?;
                walker.next(&mut input, &mut payload)?
            };
            let (head, digest) = match item {
                Item::Chunk { head, digest } => (head, digest),
                Item::Trailer(t) => break t,
            };
            let read = payload.len() as u64;
            let original = head.original_len as usize;
            let sealed = Sealed {
                head,
                digest,
                payload,
            };
            // A decoded chunk is chunk data alive in this run, as in a
            // streamed one.
            governor.memory.add(original);
            let decoded = match recorder.as_mut() {
                None => chunk::decode(&codec, &buffers, sealed),
                Some(rec) => {
                    let (decoded, cost) = recorder::timed_job(Some(rec.metrics()), || {
                        chunk::decode(&codec, &buffers, sealed)
                    });
                    if decoded.is_ok() {
                        rec.record_inline(cost, read, original as u64);
                    }
                    decoded
                }
            }
            .map_err(|e| e.with_chunk(chunks));
            let written = decoded.and_then(|data| {
                if let Some(h) = hasher.as_mut() {
                    h.update(&data);
                }
                let _io = governor.io.acquire(cancel)?;
                out.write_all(&data)
                    .map_err(|e| Error::io(e).with_stage("writing the output"))?;
                buffers.give(data);
                Ok(())
            });
            governor.memory.sub(original);
            written?;
            chunks += 1;
            peak = peak.max(original);
        };
        // Retired before the run is counted done, as a streamed run's
        // writer retires its recorder: the summary then holds every chunk.
        drop(recorder);
        let digest = check_file_digest(&header, keys.as_ref(), hasher, &trailer)?;
        {
            let _io = governor.io.acquire(cancel)?;
            out.flush()
                .map_err(|e| Error::io(e).with_stage("writing the output"))?;
        }
        let report = Report {
            elapsed: start.elapsed(),
            bytes_in: header_len + input.bytes,
            bytes_out: out.bytes,
            original_bytes: out.bytes,
            chunks,
            checksum: header.checksum,
            digest,
            mode: Some(header.mode),
            chunk_size: header.chunk_size,
            peak_chunk_bytes: peak as u64,
            cpu_waits: governor.cpu.wait_stats(),
            ..Report::default()
        };
        self.run_done(&report)?;
        Ok((out.inner, report))
    }
}
