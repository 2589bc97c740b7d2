//! One small file processed without the streaming engine's threads: read
//! whole, encoded on the calling thread under one CPU lease, written (and,
//! into a file, committed). The path a batch's small files take
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

use crate::error::{Error, Result};
use crate::output;
use crate::pipeline::Pipeline;
use crate::report::Report;

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
