//! The `Pipeline`: built once, runs many streams (process, restore, verify).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cancel::Cancel;
use crate::chunk::{self, ChainStage};
use crate::config::{Config, PipelineBuilder, StageEntry};
use crate::engine::{self, RunState};
use crate::error::{Error, Result};
use crate::format::{Header, StageDesc, Trailer, CUSTOM_STAGE_ID};
use crate::governor::Governor;
use crate::metrics::Metrics;
use crate::output::{self, OutputFile};
use crate::par_writer::ParWriter;
use crate::pool::BufferPool;
use crate::reader;
use crate::report::Report;
use crate::stages::{ChecksumKind, StageSpec};
use crate::writer::Sink;

/// A configured engine: stages, settings, a CPU thread pool and a governor.
///
/// Cheap to clone (the parts are shared); every run is independent and may
/// run concurrently with others on the same pipeline, all drawing on the
/// same governor.
///
/// ```
/// use syncpipe::Pipeline;
/// use syncpipe::stages::StageSpec;
///
/// let pipeline = Pipeline::builder().stage(StageSpec::Zstd(3)).threads(2).build()?;
/// let data = b"hello hello hello hello".repeat(1000);
/// let mut container = Vec::new();
/// pipeline.run(&data[..], &mut container)?;
/// let mut restored = Vec::new();
/// pipeline.restore(&container[..], &mut restored)?;
/// assert_eq!(restored, data);
/// # Ok::<(), syncpipe::Error>(())
/// ```
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    chain: Vec<ChainStage>,
    pool: rayon::ThreadPool,
    governor: Arc<Governor>,
    shared_governor: bool,
    cancel: Cancel,
    metrics: Option<Arc<Metrics>>,
}

impl Pipeline {
    /// A builder with every setting at its default.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    pub(crate) fn from_parts(
        config: Config,
        entries: Vec<StageEntry>,
        governor: Option<Arc<Governor>>,
        cancel: Cancel,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Pipeline> {
        let mut chain = Vec::with_capacity(entries.len());
        for entry in entries {
            chain.push(match entry {
                StageEntry::Builtin(spec) => ChainStage {
                    stage: spec.build()?,
                    desc: StageDesc {
                        id: spec.id(),
                        param: spec.param(),
                        name: spec.name().to_string(),
                    },
                },
                StageEntry::Custom(stage) => {
                    let name = stage.name();
                    if name.is_empty() || name.len() > 255 {
                        return Err(Error::usage(format!(
                            "custom stage name {name:?} must be 1 to 255 bytes"
                        )));
                    }
                    // Restore finds custom stages by name: names must be unique.
                    if chain
                        .iter()
                        .any(|s: &ChainStage| s.desc.id == CUSTOM_STAGE_ID && s.desc.name == name)
                    {
                        return Err(Error::usage(format!(
                            "two custom stages are named {name:?}; names must be unique"
                        )));
                    }
                    ChainStage {
                        stage,
                        desc: StageDesc {
                            id: CUSTOM_STAGE_ID,
                            param: 0,
                            name,
                        },
                    }
                }
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("syncpipe-cpu-{i}"))
            .build()
            .map_err(|e| Error::io(io::Error::other(e)).with_stage("starting the thread pool"))?;
        let shared_governor = governor.is_some();
        let governor = governor
            .unwrap_or_else(|| Arc::new(Governor::new(config.cpu_tokens, config.io_tokens)));
        Ok(Pipeline {
            inner: Arc::new(Inner {
                config,
                chain,
                pool,
                governor,
                shared_governor,
                cancel,
                metrics,
            }),
        })
    }

    /// The resolved settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The governor this pipeline draws its permits from.
    pub fn governor(&self) -> &Arc<Governor> {
        &self.inner.governor
    }

    /// The metrics this pipeline reports to, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.inner.metrics.as_ref()
    }

    /// The stage list as written into containers, e.g. `zstd:3`.
    pub fn stage_names(&self) -> Vec<String> {
        self.inner
            .chain
            .iter()
            .map(|s| s.desc.name.clone())
            .collect()
    }

    /// Processes `input` into a container written to `output`.
    ///
    /// # Errors
    ///
    /// The first error of the run: [`crate::ErrorKind::Io`] for read/write
    /// failures, [`crate::ErrorKind::Stage`] / [`crate::ErrorKind::Panic`]
    /// for a failing stage (with its chunk index), or
    /// [`crate::ErrorKind::Cancelled`].
    pub fn run<R: Read + Send, W: Write + Send>(&self, input: R, output: W) -> Result<Report> {
        self.process_stream(input, output, None, 0).map(|(_, r)| r)
    }

    /// Restores a container read from `input`, writing the original to
    /// `output`. Every chunk is checked before it is written; the whole-file
    /// digest is checked at the end (bytes already written to a stream cannot
    /// be taken back, which is why [`Pipeline::restore_path`] writes to a
    /// temp file).
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] for anything wrong with the container
    /// (naming the chunk), [`crate::ErrorKind::Usage`] if it needs a custom
    /// stage this pipeline lacks, and the errors of [`Pipeline::run`].
    pub fn restore<R: Read + Send, W: Write + Send>(&self, input: R, output: W) -> Result<Report> {
        self.restore_stream(input, output).map(|(_, r)| r)
    }

    /// Checks a container end to end without writing anything.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::restore`].
    pub fn verify<R: Read + Send>(&self, input: R) -> Result<Report> {
        self.restore(input, io::sink())
    }

    /// Processes the file `input` into `output`: written to a temp file in
    /// the output's folder, fsynced and renamed only on success, so a failed
    /// or cancelled run leaves nothing. The container gets the input's
    /// permission bits.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] if `output` exists and `force` is false,
    /// or is the input itself (also through links); otherwise as
    /// [`Pipeline::run`], with the path in the message.
    pub fn process_path(&self, input: &Path, output: &Path, force: bool) -> Result<Report> {
        let (file, meta) = output::open_input(input)?;
        let out = OutputFile::create(input, output, force)?;
        let mode = output::mode_of(&meta);
        let (_, report) = self
            .process_stream(file, out.file(), Some(meta.len()), mode)
            .map_err(|e| e.with_path(input))?;
        if report.bytes_in != meta.len() {
            // A runtime condition (exit 1), not a damaged container.
            return Err(Error::new(
                crate::error::ErrorKind::Io,
                format!(
                    "input changed while it was read ({} bytes at the start, {} read)",
                    meta.len(),
                    report.bytes_in
                ),
            )
            .with_path(input));
        }
        out.commit(Some(mode))?;
        Ok(report)
    }

    /// Restores the container file `input` into `output`, through a temp
    /// file renamed only once every check (whole-file digest included) has
    /// passed. The original's permission bits are restored.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::process_path`] and [`Pipeline::restore`].
    pub fn restore_path(&self, input: &Path, output: &Path, force: bool) -> Result<Report> {
        let (file, _) = output::open_input(input)?;
        let out = OutputFile::create(input, output, force)?;
        let (_, report) = self
            .restore_stream(file, out.file())
            .map_err(|e| e.with_path(input))?;
        out.commit(report.mode.filter(|&m| m != 0))?;
        Ok(report)
    }

    /// A `Write` adapter that processes everything written to it into a
    /// container on `output`, in parallel; see [`ParWriter`].
    pub fn par_writer<W: Write + Send + 'static>(&self, output: W) -> ParWriter<W> {
        ParWriter::new(self.clone(), output)
    }

    pub(crate) fn process_stream<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
        mode: u32,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let chain = &self.inner.chain;
        let header = Header {
            chunk_size: cfg.chunk_size,
            original_len,
            mode,
            checksum: cfg.checksum,
            stages: chain.iter().map(|s| s.desc.clone()).collect(),
        };
        let state = self.new_state(cfg.chunk_size, chain, cfg.checksum);
        let mut sink = Sink::new(output);
        sink.write_all(&header.encode())?;
        let result = {
            let sink = &mut sink;
            let state = &state;
            engine::run(
                state,
                &self.inner.pool,
                cfg.channel_depth,
                |tx| reader::read_chunks(state, input, cfg.chunk_size, cfg.checksum, tx),
                |index, c| {
                    chunk::encode(
                        chain,
                        cfg.checksum,
                        cfg.chunk_size,
                        &state.buffers,
                        index,
                        c,
                    )
                },
                |rec| sink.write_record(state, rec),
            )
        };
        self.settle(&state);
        let summary = result?;
        let trailer = Trailer {
            chunk_count: summary.chunks,
            original_len: summary.bytes,
            digest: summary.digest,
        };
        sink.write_all(&trailer.encode())?;
        let (output, bytes_out) = sink.finish()?;
        let mut report = self.report(&state, start);
        report.bytes_in = summary.bytes;
        report.original_bytes = summary.bytes;
        report.bytes_out = bytes_out;
        report.chunks = summary.chunks;
        report.checksum = cfg.checksum;
        report.digest = summary.digest;
        report.mode = Some(mode);
        report.chunk_size = cfg.chunk_size;
        self.run_done(&report);
        Ok((output, report))
    }

    pub(crate) fn restore_stream<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        // Counted from the first byte, so `bytes_in` includes the header.
        let mut counted = crate::writer::Counting {
            inner: input,
            bytes: 0,
        };
        let header = Header::read_from(&mut counted)?;
        let chain = self.chain_for(&header)?;
        let state = self.new_state(header.chunk_size, &chain, header.checksum);
        let mut sink = Sink::new(output);
        let mut hasher = header.checksum.map(|c| c.hasher());
        let mut chunks = 0u64;
        let mut container_bytes = 0u64;
        let result = {
            let (sink, hasher, state, header) = (&mut sink, &mut hasher, &state, &header);
            let (chain, chunks) = (&chain, &mut chunks);
            engine::run(
                state,
                &self.inner.pool,
                self.inner.config.channel_depth,
                |tx| {
                    let t = reader::read_records(state, &mut counted, header, tx);
                    container_bytes = counted.bytes;
                    t
                },
                |_, sealed| {
                    chunk::decode(
                        chain,
                        header.checksum,
                        header.chunk_size,
                        &state.buffers,
                        sealed,
                    )
                },
                |data| {
                    *chunks += 1;
                    sink.write_plain(state, data, hasher.as_mut())
                },
            )
        };
        self.settle(&state);
        let trailer = result?;
        if let (Some(h), Some(expected), Some(kind)) = (hasher, trailer.digest, header.checksum) {
            if h.finalize() != expected {
                return Err(Error::integrity(format!(
                    "whole-file {} mismatch (the chunks are intact but do not form the original)",
                    kind.name()
                )));
            }
        }
        let (output, bytes_out) = sink.finish()?;
        let mut report = self.report(&state, start);
        report.bytes_in = container_bytes;
        report.bytes_out = bytes_out;
        report.original_bytes = bytes_out;
        report.chunks = chunks;
        report.checksum = header.checksum;
        report.digest = trailer.digest;
        report.mode = Some(header.mode);
        report.chunk_size = header.chunk_size;
        self.run_done(&report);
        Ok((output, report))
    }

    /// The stage chain a container needs: built-ins from the header,
    /// custom stages matched by name against this pipeline's.
    fn chain_for(&self, header: &Header) -> Result<Vec<ChainStage>> {
        header
            .stages
            .iter()
            .map(|desc| {
                if desc.id == CUSTOM_STAGE_ID {
                    self.inner
                        .chain
                        .iter()
                        .find(|s| s.desc.id == CUSTOM_STAGE_ID && s.desc.name == desc.name)
                        .cloned()
                        .ok_or_else(|| {
                            Error::usage(format!(
                                "the container needs the custom stage {:?}, which this pipeline lacks",
                                desc.name
                            ))
                        })
                } else {
                    let spec = StageSpec::from_id(desc.id, desc.param)?;
                    Ok(ChainStage {
                        stage: spec.build()?,
                        desc: desc.clone(),
                    })
                }
            })
            .collect()
    }

    fn new_state(
        &self,
        chunk_size: usize,
        chain: &[ChainStage],
        checksum: Option<ChecksumKind>,
    ) -> RunState<'_> {
        let cfg = &self.inner.config;
        // Enough idle buffers to cover the memory bound (see docs/design.md):
        // beyond that, returned buffers are simply freed.
        let max_free = 2 * cfg.channel_depth + 2 * cfg.cpu_tokens + 8;
        RunState::new(
            &self.inner.governor,
            self.inner.cancel.child(),
            BufferPool::new(max_free, chunk_size),
        )
        .observed(
            self.inner.metrics.clone(),
            chain.iter().map(|s| s.desc.name.clone()),
            checksum.map(|c| c.name()),
        )
    }

    /// Tells the metrics (if any) that a run succeeded.
    fn run_done(&self, report: &Report) {
        if let Some(m) = &self.inner.metrics {
            m.run_done(&self.inner.governor, report);
        }
    }

    /// After a run (any outcome): chunk buffers dropped on an error path were
    /// never counted as written, so take them off the shared gauge; and with
    /// an unshared governor every permit must be back.
    fn settle(&self, state: &RunState<'_>) {
        self.inner
            .governor
            .memory
            .sub(state.memory.current() as usize);
        debug_assert!(
            self.inner.shared_governor || self.inner.governor.all_returned(),
            "permits leaked: {:?}",
            self.inner.governor
        );
    }

    fn report(&self, state: &RunState<'_>, start: Instant) -> Report {
        let (reused, fresh) = state.buffers.stats();
        Report {
            elapsed: start.elapsed(),
            buffers_reused: reused,
            buffers_allocated: fresh,
            peak_chunk_bytes: state.memory.peak(),
            cpu_waits: self.inner.governor.cpu.wait_stats(),
            ..Report::default()
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.inner.config)
            .field("stages", &self.stage_names())
            .field("governor", &self.inner.governor)
            .finish()
    }
}
