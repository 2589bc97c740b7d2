//! Processing one stream: header, then chunks read, encoded on the CPU
//! workers and written in order, then the trailer. The thread roles are in
//! the sibling files; this is the data path, top to bottom.

use std::io::{Read, Write};
use std::time::Instant;

use super::reader::{self, ReadSummary};
use super::state::RunState;
use super::writer::Sink;
use crate::chunk::{self, Codec};
use crate::chunk_plan::ChunkPlan;
use crate::cipher::FileKeys;
use crate::encoder;
use crate::error::Result;
use crate::file_format::Format;
use crate::format::Header;
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::stages::tree::{Pieces, Tree};
use crate::stages::ChecksumKind;
use crate::tuner::Tuner;

impl Pipeline {
    pub(crate) fn process_stream<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
        mode: u32,
    ) -> Result<(W, Report)> {
        match self.inner.config.format {
            Format::Spipe => self.process_body(input, output, original_len, mode),
            _ => self.process_standard(input, output, original_len),
        }
        .inspect_err(|_| self.failed())
    }

    fn process_body<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
        mode: u32,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let chain = &self.inner.chain;
        let plan = self.chunk_plan(original_len);
        let (header, keys) = self.new_header(original_len, mode, &plan)?;
        // BLAKE3 over fixed chunks that are whole subtrees is hashed on the
        // workers and merged here in order; anything else on the hasher
        // thread.
        let pieces = match (cfg.checksum, &plan.tuner) {
            (Some(ChecksumKind::Blake3), None) => Pieces::for_chunks(plan.start),
            _ => None,
        };
        let serial_digest = cfg.checksum.filter(|_| pieces.is_none());
        let mut tree = pieces.map(|_| Tree::default());
        let codec = Codec {
            pieces,
            ..self.codec(keys.as_ref(), &plan)
        };
        let mut sink = Sink::new(output);
        sink.write_all(&header.encode())?;
        let cpu = self.cpu()?;
        let _active = self.begin_run();
        let window = (cfg.channel_depth, cfg.cpu_tokens);
        let state = self.new_state(plan.start, window, chain, cfg.cipher, cfg.checksum);
        let result = {
            let sink = &mut sink;
            let state = &state;
            let tree = &mut tree;
            let tuner = plan.tuner.as_ref();
            let next_size = || tuner.map_or(plan.start, Tuner::next_size);
            super::run(
                state,
                cpu,
                cfg.channel_depth,
                |tx| reader::read_chunks(state, input, next_size, serial_digest, tx),
                |index, c| match tuner {
                    None => chunk::encode(&codec, &state.buffers, &state.cancel, index, c),
                    // The chunk's whole encoding (stages, cipher, checksum)
                    // is the cost the climber steers by.
                    Some(t) => {
                        let (len, started) = (c.data.len(), Instant::now());
                        let rec = chunk::encode(&codec, &state.buffers, &state.cancel, index, c);
                        t.record(len, started.elapsed());
                        rec
                    }
                },
                |rec| {
                    if let Some(t) = tree.as_mut() {
                        rec.pieces.iter().for_each(|cv| t.push(*cv));
                    }
                    let len = rec.original_len;
                    let took = sink.write_record(state, rec)?;
                    if let Some(t) = tuner {
                        t.record_write(len, took);
                    }
                    Ok(())
                },
            )
        };
        self.settle(&state);
        let mut summary = result?;
        if let Some(t) = tree {
            summary.digest = Some(t.finalize());
        }
        let trailer =
            encoder::trailer(keys.as_ref(), summary.chunks, summary.bytes, summary.digest);
        sink.write_all(&trailer.encode())?;
        let (output, bytes_out) = sink.finish(&state)?;
        let mut report = self.processed(&state, start, &plan, &summary, bytes_out);
        report.checksum = cfg.checksum;
        report.digest = summary.digest;
        report.mode = Some(mode);
        self.run_done(&report)?;
        Ok((output, report))
    }

    /// The report of a finished process run, whatever its format: what was
    /// read, written and the chunk sizes used.
    pub(crate) fn processed(
        &self,
        state: &RunState<'_>,
        start: Instant,
        plan: &ChunkPlan,
        summary: &ReadSummary,
        bytes_out: u64,
    ) -> Report {
        let mut report = self.report(state, start);
        report.bytes_in = summary.bytes;
        report.original_bytes = summary.bytes;
        report.bytes_out = bytes_out;
        report.chunks = summary.chunks;
        report.chunk_method = self.inner.config.chunk_method;
        report.chunk_sizes = plan.history();
        report.chunk_size = report
            .chunk_sizes
            .iter()
            .map(|c| c.size)
            .max()
            .unwrap_or(plan.start);
        report
    }

    /// The header of a container this pipeline writes, sealed when it has
    /// a cipher, and the file's keys.
    pub(crate) fn new_header(
        &self,
        original_len: Option<u64>,
        mode: u32,
        plan: &ChunkPlan,
    ) -> Result<(Header, Option<FileKeys>)> {
        let cfg = &self.inner.config;
        let mut header = Header {
            chunk_size: plan.largest,
            variable_chunks: plan.tuner.is_some(),
            original_len,
            mode,
            checksum: cfg.checksum,
            stages: self.inner.chain.iter().map(|s| s.desc.clone()).collect(),
            crypto: None,
        };
        let keys = self.seal_header(&mut header)?;
        Ok((header, keys))
    }

    /// What every chunk this pipeline writes shares.
    pub(crate) fn codec<'a>(&'a self, keys: Option<&'a FileKeys>, plan: &ChunkPlan) -> Codec<'a> {
        let cfg = &self.inner.config;
        Codec {
            chain: &self.inner.chain,
            checksum: cfg.checksum,
            chunk_size: plan.largest,
            keys,
            pieces: None,
        }
    }
}
