//! The `Pipeline`: built once, runs many streams (process, restore, verify).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::cancel::CancelToken;
use crate::chunk::{self, ChainStage, Codec};
use crate::cipher::{self, CipherKind, FileKeys, FILE_NONCE_LEN};
use crate::config::{Config, PipelineBuilder, SpawnStyle, StageEntry};
use crate::encoder::{self, Encoder, EncoderParts};
use crate::engine::{self, Cpu, RunState};
use crate::error::{Error, Result};
use crate::format::{Crypto, Header, Kdf, StageDesc, CUSTOM_STAGE_ID};
use crate::governor::Governor;
use crate::metrics::Metrics;
use crate::output::{self, OutputFile};
use crate::par_writer::ParWriter;
use crate::pool::BufferPool;
use crate::reader;
use crate::report::Report;
use crate::secret::Secret;
use crate::source::{ReaderKind, Source};
use crate::stages::{ChecksumKind, StageSpec};
use crate::tuner::{self, ChunkMethod, SizeChange, Tuner};
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
    /// The rayon pool, for `SpawnStyle::Rayon` (none for dedicated threads).
    pool: Option<rayon::ThreadPool>,
    governor: Arc<Governor>,
    shared_governor: bool,
    /// Runs (and batches) of this pipeline in progress: its permits can
    /// only all be back when none is.
    active: AtomicUsize,
    cancel: CancelToken,
    secret: Option<Secret>,
    /// Master keys derived so far, by KDF input. Argon2id costs ~0.1 s and
    /// 64 MiB at the default cost; a batch of files pays for it once per salt.
    masters: Mutex<Vec<(Kdf, Zeroizing<[u8; 32]>)>>,
    /// The KDF input this pipeline encrypts under, fixed at first use: one
    /// salt per pipeline, one random file nonce (hence own keys) per file.
    write_kdf: Mutex<Option<Kdf>>,
    metrics: Option<Arc<Metrics>>,
}

/// Most master keys kept by one pipeline; older ones are dropped (zeroized).
const MAX_CACHED_MASTERS: usize = 8;

impl Pipeline {
    /// A builder with every setting at its default.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    pub(crate) fn from_parts(
        config: Config,
        entries: Vec<StageEntry>,
        governor: Option<Arc<Governor>>,
        cancel: CancelToken,
        secret: Option<Secret>,
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
        let pool = match config.spawn_style {
            SpawnStyle::Rayon => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(config.threads)
                    .thread_name(|i| format!("syncpipe-cpu-{i}"))
                    .build()
                    .map_err(|e| {
                        Error::io(io::Error::other(e)).with_stage("starting the thread pool")
                    })?,
            ),
            SpawnStyle::Threads => None,
        };
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
                active: AtomicUsize::new(0),
                cancel,
                secret,
                masters: Mutex::new(Vec::new()),
                write_kdf: Mutex::new(None),
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

    /// The stage list of the containers this pipeline writes, cipher
    /// included, e.g. `zstd:3`, `aes-256-gcm`.
    pub fn stage_names(&self) -> Vec<String> {
        self.inner
            .chain
            .iter()
            .map(|s| s.desc.name.clone())
            .chain(self.inner.config.cipher.map(|c| c.name().to_string()))
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
        self.process_file(input, output, force, false)
    }

    /// [`Pipeline::process_path`]; `derived` for a batch's output, whose
    /// name the user did not type (see `OutputFile::create_derived`).
    pub(crate) fn process_file(
        &self,
        input: &Path,
        output: &Path,
        force: bool,
        derived: bool,
    ) -> Result<Report> {
        // Refreshed on every failure, also one before the run (the
        // snapshot would otherwise be an empty one, no permits at all) or
        // after it (the commit).
        let run = || -> Result<Report> {
            let (file, meta) = output::open_input(input)?;
            // A second descriptor of the same open file, to look at it again
            // once the reader (which owns `file`) is done.
            let watch = file
                .try_clone()
                .map_err(|e| Error::io(e).with_path(input))?;
            let out = create_output(input, output, force, derived)?;
            // A pipe, a device or a pseudo-file that reports size 0 but has
            // content (`/proc/cpuinfo`) is read as a stream, as stdin is: its
            // size says nothing, so neither the length nor the change check
            // can hold. A pipe's mode is not the data's: none is recorded.
            let (stream, first) =
                output::probe_stream(&file, &meta).map_err(|e| e.with_path(input))?;
            let mode = if meta.is_file() {
                output::mode_of(&meta)
            } else {
                0
            };
            let reader = if stream {
                ReaderKind::Buffered
            } else {
                self.inner.config.reader
            };
            let source = io::Cursor::new(first).chain(Source::new(file, reader));
            let len = (!stream).then_some(meta.len());
            let (_, report) = self
                .process_stream(source, out.file(), len, mode)
                .map_err(|e| e.with_path(input))?;
            // Before the commit: a container of a file that changed meanwhile
            // never appears under the destination name.
            if !stream {
                output::check_unchanged(&watch, &meta, report.bytes_in)
                    .map_err(|e| e.with_path(input))?;
            }
            out.commit(Some(mode).filter(|&m| m != 0))?;
            Ok(report)
        };
        run().inspect_err(|_| self.failed())
    }

    /// Restores the container file `input` into `output`, through a temp
    /// file renamed only once every check (whole-file digest included) has
    /// passed. The original's permission bits are restored.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::process_path`] and [`Pipeline::restore`].
    pub fn restore_path(&self, input: &Path, output: &Path, force: bool) -> Result<Report> {
        self.restore_file(input, output, force, false)
    }

    /// [`Pipeline::restore_path`]; `derived` as for
    /// [`Pipeline::process_file`].
    pub(crate) fn restore_file(
        &self,
        input: &Path,
        output: &Path,
        force: bool,
        derived: bool,
    ) -> Result<Report> {
        let run = || -> Result<Report> {
            let (file, _) = output::open_input(input)?;
            let mut source = Source::new(file, self.inner.config.reader);
            // Header and key first: a wrong key or a foreign file creates
            // nothing, not even a temp file.
            let opened = self
                .open_header(&mut source)
                .map_err(|e| e.with_path(input))?;
            let out = create_output(input, output, force, derived)?;
            self.restore_into(opened, source, out)
                .map_err(|e| e.with_path(input))
        };
        run().inspect_err(|_| self.failed())
    }

    /// Restores a container read from any reader (a pipe, stdin) into the
    /// file `output`, as [`Pipeline::restore_path`] does: the header is read
    /// and the key checked before the temp file is created, which is renamed
    /// only once every check has passed.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::restore_path`] (the input is not checked against the
    /// output: a reader has no path).
    pub fn restore_to_path<R: Read + Send>(
        &self,
        mut input: R,
        output: &Path,
        force: bool,
    ) -> Result<Report> {
        let run = || {
            let opened = self.open_header(&mut input)?;
            let out = OutputFile::create_for(output, force)?;
            self.restore_into(opened, input, out)
        };
        run().inspect_err(|_| self.failed())
    }

    fn restore_into<R: Read + Send>(
        &self,
        opened: Opened,
        input: R,
        out: OutputFile,
    ) -> Result<Report> {
        let (_, report) = self.restore_body(opened, input, out.file())?;
        // 0 = not recorded (stdin was processed): a new file's default.
        let mode = match report.mode.filter(|&m| m != 0) {
            Some(m) => Some(output::restored_mode(m, out.dest())?),
            None => None,
        };
        out.commit(mode)?;
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
        self.process_body(input, output, original_len, mode)
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
        let codec = self.codec(keys.as_ref(), &plan);
        let mut sink = Sink::new(output);
        sink.write_all(&header.encode())?;
        let _active = self.begin_run();
        let window = (cfg.channel_depth, cfg.cpu_tokens);
        let state = self.new_state(plan.start, window, chain, cfg.cipher, cfg.checksum);
        let result = {
            let sink = &mut sink;
            let state = &state;
            let tuner = plan.tuner.as_ref();
            let next_size = || tuner.map_or(plan.start, Tuner::next_size);
            engine::run(
                state,
                self.cpu(),
                cfg.channel_depth,
                |tx| reader::read_chunks(state, input, next_size, cfg.checksum, tx),
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
        let summary = result?;
        let trailer =
            encoder::trailer(keys.as_ref(), summary.chunks, summary.bytes, summary.digest);
        sink.write_all(&trailer.encode())?;
        let (output, bytes_out) = sink.finish(&state)?;
        let mut report = self.report(&state, start);
        report.bytes_in = summary.bytes;
        report.original_bytes = summary.bytes;
        report.bytes_out = bytes_out;
        report.chunks = summary.chunks;
        report.checksum = cfg.checksum;
        report.digest = summary.digest;
        report.mode = Some(mode);
        report.chunk_method = cfg.chunk_method;
        report.chunk_sizes = plan.history();
        report.chunk_size = report
            .chunk_sizes
            .iter()
            .map(|c| c.size)
            .max()
            .unwrap_or(plan.start);
        self.run_done(&report)?;
        Ok((output, report))
    }

    pub(crate) fn restore_stream<R: Read + Send, W: Write + Send>(
        &self,
        mut input: R,
        output: W,
    ) -> Result<(W, Report)> {
        self.open_header(&mut input)
            .and_then(|opened| self.restore_body(opened, input, output))
            .inspect_err(|_| self.failed())
    }

    /// Restores the records that follow an already opened header.
    fn restore_body<R: Read + Send, W: Write + Send>(
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
        let codec = Codec {
            chain: &chain,
            checksum: header.checksum,
            chunk_size: header.chunk_size,
            keys: keys.as_ref(),
        };
        let cipher = header.crypto.as_ref().map(|c| c.cipher);
        // The header's chunk size sets the memory a run may need: within
        // the limit, large chunks run with fewer in flight.
        let (depth, in_flight) =
            crate::config::restore_window(&self.inner.config, header.chunk_size).ok_or_else(
                || {
                    Error::resource(format!(
                    "the container's chunks of {} MiB need more memory than the limit of {} MiB; \
                     if the file is trusted, raise it (--max-memory, PipelineBuilder::max_memory)",
                    header.chunk_size >> 20,
                    self.inner.config.max_memory >> 20
                ))
                },
            )?;
        let _active = self.begin_run();
        let window = (depth, in_flight);
        let mut state = self.new_state(header.chunk_size, window, &chain, cipher, header.checksum);
        state.in_flight = in_flight;
        let mut sink = Sink::new(output);
        let mut hasher = header.checksum.map(|c| c.hasher());
        let mut chunks = 0u64;
        let mut container_bytes = 0u64;
        let result = {
            let (sink, hasher, state, header) = (&mut sink, &mut hasher, &state, &header);
            let (codec, chunks) = (&codec, &mut chunks);
            engine::run(
                state,
                self.cpu(),
                depth,
                |tx| {
                    let mut counted = crate::writer::Counting {
                        inner: input,
                        bytes: 0,
                    };
                    let t = reader::read_records(state, &mut counted, header, tx);
                    container_bytes = counted.bytes;
                    t
                },
                |_, sealed| chunk::decode(codec, &state.buffers, sealed),
                |data| {
                    *chunks += 1;
                    sink.write_plain(state, data, hasher.as_mut())
                },
            )
        };
        self.settle(&state);
        let trailer = result?;
        let digest = hasher.map(|h| h.finalize());
        if let (Some(d), Some(expected), Some(kind)) = (digest, trailer.digest, header.checksum) {
            let stored = keys.as_ref().map_or(d, |k| k.mask_file_digest(&d));
            if stored != expected {
                return Err(Error::integrity(format!(
                    "whole-file {} mismatch (the chunks are intact but do not form the original)",
                    kind.name()
                )));
            }
        }
        let (output, bytes_out) = sink.finish(&state)?;
        let mut report = self.report(&state, start);
        report.bytes_in = header_len + container_bytes;
        report.bytes_out = bytes_out;
        report.original_bytes = bytes_out;
        report.chunks = chunks;
        report.checksum = header.checksum;
        report.digest = digest;
        report.mode = Some(header.mode);
        report.chunk_size = header.chunk_size;
        self.run_done(&report)?;
        Ok((output, report))
    }

    /// Reads the header and, for an encrypted container, derives the file's
    /// keys, checks the key and authenticates the header: all before a
    /// single record is read.
    fn open_header(&self, input: &mut impl Read) -> Result<Opened> {
        let (header, raw) = Header::read_with_bytes(input)?;
        let keys = match &header.crypto {
            // A secret means "this should be encrypted": an unencrypted
            // container where an encrypted one was expected is refused, or
            // an attacker could substitute plaintext of their choosing.
            None if self.inner.secret.is_some() => {
                return Err(Error::integrity(
                    "the container is not encrypted, but a passphrase or key was given \
                     (an unencrypted file may have been substituted); \
                     restore it without a key if that is expected",
                ))
            }
            None => None,
            Some(c) => {
                self.check_kdf_cost(&c.kdf)?;
                let master = self.master(&c.kdf)?;
                let mut keys = FileKeys::derive(c.cipher, &master, &c.file_nonce);
                if !keys.check_matches(&c.key_check) {
                    return Err(Error::wrong_key(
                        "wrong passphrase or key: it does not open this container",
                    ));
                }
                keys.verify_header(Header::mac_input(&raw), &c.mac)?;
                Some(keys)
            }
        };
        Ok(Opened {
            header,
            header_len: raw.len() as u64,
            keys,
        })
    }

    /// Refuses an Argon2id cost over the reader's limits before any of the
    /// work: the header is not authenticated until the key it derives is.
    fn check_kdf_cost(&self, kdf: &Kdf) -> Result<()> {
        let Kdf::Argon2id { params, .. } = kdf else {
            return Ok(());
        };
        let cfg = &self.inner.config;
        let memory = u64::from(params.m_kib) * 1024;
        if memory > cfg.max_memory as u64 {
            return Err(Error::resource(format!(
                "the container asks for Argon2id with {} MiB of memory, over the limit of {} MiB; \
                 if the file is trusted, raise it (--max-memory, PipelineBuilder::max_memory)",
                memory >> 20,
                cfg.max_memory >> 20
            )));
        }
        if params.t > cfg.max_kdf_passes {
            return Err(Error::resource(format!(
                "the container asks for Argon2id with {} passes, over the limit of {}; \
                 if the file is trusted, raise it (--max-kdf-passes, PipelineBuilder::max_kdf_passes)",
                params.t, cfg.max_kdf_passes
            )));
        }
        Ok(())
    }

    /// The header of a container this pipeline writes, sealed when it has
    /// a cipher, and the file's keys.
    fn new_header(
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
    fn codec<'a>(&'a self, keys: Option<&'a FileKeys>, plan: &ChunkPlan) -> Codec<'a> {
        let cfg = &self.inner.config;
        Codec {
            chain: &self.inner.chain,
            checksum: cfg.checksum,
            chunk_size: plan.largest,
            keys,
        }
    }

    /// How the chunks of an input of `original_len` bytes are sized.
    fn chunk_plan(&self, original_len: Option<u64>) -> ChunkPlan {
        let cfg = &self.inner.config;
        let by_file = || tuner::size_for_file(original_len, cfg.cpu_tokens);
        match cfg.chunk_method {
            ChunkMethod::Fixed => ChunkPlan::fixed(cfg.chunk_size),
            ChunkMethod::FileSize => ChunkPlan::fixed(by_file()),
            ChunkMethod::HillClimb => {
                let tuner = Tuner::new(if cfg.chunk_size_given {
                    cfg.chunk_size
                } else {
                    by_file()
                });
                ChunkPlan {
                    start: tuner.history()[0].size,
                    largest: tuner::MAX_CHUNK,
                    tuner: Some(tuner),
                }
            }
        }
    }

    /// Fills in the encryption section of a header about to be written
    /// (when this pipeline has a cipher) and returns the file's keys.
    fn seal_header(&self, header: &mut Header) -> Result<Option<FileKeys>> {
        let Some(cipher) = self.inner.config.cipher else {
            return Ok(None);
        };
        let kdf = self.write_kdf()?;
        let master = self.master(&kdf)?;
        let mut file_nonce = [0u8; FILE_NONCE_LEN];
        cipher::random_bytes(&mut file_nonce)?;
        let mut keys = FileKeys::derive(cipher, &master, &file_nonce);
        header.crypto = Some(Crypto {
            cipher,
            kdf,
            file_nonce,
            key_check: keys.key_check(),
            mac: [0; cipher::CHECK_LEN],
        });
        let mac = keys.sign_header(Header::mac_input(&header.encode()));
        if let Some(c) = header.crypto.as_mut() {
            c.mac = mac;
        }
        Ok(Some(keys))
    }

    /// The KDF input of the containers this pipeline writes: a raw key, or
    /// Argon2id with the configured parameters and a salt drawn once.
    fn write_kdf(&self) -> Result<Kdf> {
        let mut slot = self.inner.write_kdf.lock();
        if let Some(kdf) = *slot {
            return Ok(kdf);
        }
        let secret = self.secret()?;
        let kdf = if secret.is_passphrase() {
            let mut salt = [0u8; crate::kdf::SALT_LEN];
            cipher::random_bytes(&mut salt)?;
            Kdf::Argon2id {
                params: self.inner.config.kdf,
                salt,
            }
        } else {
            Kdf::RawKey
        };
        *slot = Some(kdf);
        Ok(kdf)
    }

    /// The master key for `kdf`, derived from this pipeline's secret (or
    /// taken from the cache).
    fn master(&self, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
        let secret = self.secret()?;
        // The lock is held across the derivation on purpose: two runs that
        // need the same master wait for one Argon2id instead of doing two,
        // and at most one 64 MiB Argon2id matrix is alive per pipeline.
        let mut cache = self.inner.masters.lock();
        if let Some((_, m)) = cache.iter().find(|(k, _)| k == kdf) {
            return Ok(m.clone());
        }
        let master = match kdf {
            Kdf::RawKey => Zeroizing::new(*secret.key_bytes().ok_or_else(|| {
                Error::wrong_key("this container was encrypted with a key file, not a passphrase")
            })?),
            Kdf::Argon2id { params, salt } => {
                let pass = secret.passphrase_bytes().ok_or_else(|| {
                    Error::wrong_key(
                        "this container was encrypted with a passphrase, not a key file",
                    )
                })?;
                params.derive(pass, salt)?
            }
        };
        if cache.len() == MAX_CACHED_MASTERS {
            cache.remove(0);
        }
        cache.push((*kdf, master.clone()));
        Ok(master)
    }

    fn secret(&self) -> Result<&Secret> {
        self.inner.secret.as_ref().ok_or_else(|| {
            Error::usage(
                "the container is encrypted: a passphrase or key is needed \
                 (PipelineBuilder::secret)",
            )
        })
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

    /// Where this pipeline's chunk jobs run.
    fn cpu(&self) -> Cpu<'_> {
        match &self.inner.pool {
            Some(pool) => Cpu::Rayon(pool),
            None => Cpu::Threads(self.inner.config.threads),
        }
    }

    /// Processes an input held whole in memory into a container, encoding
    /// every chunk in turn on the calling thread: the small-file path of a
    /// batch (`batch.rs`), where the engine's three threads and two channels
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
        let mut out = enc.header().to_vec();
        let mut hasher = enc.hasher();
        // An empty input is one empty, final chunk, as the reader makes it.
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(enc.chunk_size()).collect()
        };
        for (index, piece) in (0u64..).zip(&pieces) {
            if self.inner.cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            if let Some(h) = hasher.as_mut() {
                h.update(piece);
            }
            let last = index + 1 == pieces.len() as u64;
            enc.encode_into(index, last, piece.to_vec(), &mut out)?;
        }
        let digest = hasher.map(|h| h.finalize());
        out.extend_from_slice(&enc.trailer(pieces.len() as u64, len, digest));
        let report = Report {
            elapsed: start.elapsed(),
            bytes_in: len,
            original_bytes: len,
            bytes_out: out.len() as u64,
            chunks: pieces.len() as u64,
            chunk_size: plan.start,
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
    /// [`crate::ErrorKind::Usage`] for [`ChunkMethod::HillClimb`] (its
    /// sizes follow the engine's own timings) or for a cipher without a
    /// secret; [`crate::ErrorKind::WrongKey`] or a KDF failure while
    /// deriving the key.
    pub fn encoder(&self, original_len: Option<u64>, mode: u32) -> Result<Encoder> {
        let cfg = &self.inner.config;
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

    /// The token every run of this pipeline is a child of.
    pub(crate) fn cancel_token(&self) -> &CancelToken {
        &self.inner.cancel
    }

    /// A run's state; `(depth, in_flight)` is its channel depth and the
    /// chunk jobs it may have in flight.
    fn new_state(
        &self,
        chunk_size: usize,
        (depth, in_flight): (usize, usize),
        chain: &[ChainStage],
        cipher: Option<CipherKind>,
        checksum: Option<ChecksumKind>,
    ) -> RunState<'_> {
        // Enough idle buffers to cover the memory bound (see docs/design.md):
        // beyond that, returned buffers are simply freed.
        let max_free = 2 * depth + 2 * in_flight + 8;
        RunState::new(
            &self.inner.governor,
            self.inner.cancel.child(),
            // New buffers reserve at most the default chunk size: the
            // header's size is only an upper bound (4 MiB for a hill-climbed
            // container, up to 64 MiB in a hostile one), and a buffer grows
            // to what its chunk really holds the first time it is filled.
            BufferPool::new(max_free, chunk_size.min(crate::config::DEFAULT_CHUNK_SIZE)),
        )
        .observed(
            self.inner.metrics.clone(),
            // The cipher is timed as one more stage after the transforms.
            chain
                .iter()
                .map(|s| s.desc.name.clone())
                .chain(cipher.map(|c| c.name().to_string())),
            checksum.map(|c| c.name()),
        )
    }

    /// Tells the metrics (if any) that a run succeeded. An observer that
    /// panics here fails the run, as a panic during the run does, instead
    /// of unwinding into the caller (or into a batch's committer thread,
    /// whose scheduler would then wait for results that never come).
    pub(crate) fn run_done(&self, report: &Report) -> Result<()> {
        if let Some(m) = &self.inner.metrics {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                m.run_done(&self.inner.governor, report)
            }))
            .map_err(|_| {
                Error::new(
                    crate::error::ErrorKind::Panic,
                    "the metrics observer panicked at the end of the run",
                )
            })?;
        }
        Ok(())
    }

    /// After a run's threads are joined (any outcome): chunk buffers dropped
    /// on an error path were never counted as written, so take them off the
    /// shared gauge.
    fn settle(&self, state: &RunState<'_>) {
        self.inner
            .governor
            .memory
            .sub(state.memory.current() as usize);
    }

    /// Counts a run as started until the returned guard drops, at the very
    /// end of the run: after the writer's final flush, which takes an IO
    /// permit of its own. (Leaving at `settle`, before that flush, let a
    /// concurrent run on the same pipeline find that permit out and fail
    /// the leak check: `examples/whole_file.rs`, which runs one pipeline
    /// on several threads at once, hit it.)
    fn begin_run(&self) -> ActiveRun<'_> {
        self.enter();
        ActiveRun(self)
    }

    /// After a failed run or any batch (its threads joined): the metrics'
    /// gauges are read again (see [`Metrics::run_failed`]).
    pub(crate) fn failed(&self) {
        if let Some(m) = &self.inner.metrics {
            m.run_failed(&self.inner.governor);
        }
    }

    /// Counts a run (or a batch) of this pipeline as started.
    pub(crate) fn enter(&self) {
        // AcqRel on both sides: the last run to leave sees every permit the
        // others returned before they left.
        self.inner.active.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a run as ended; the last one to end on an unshared governor
    /// checks that every permit is back.
    pub(crate) fn leave(&self) {
        let before = self.inner.active.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(
            self.inner.shared_governor || before > 1 || self.inner.governor.all_returned(),
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

/// A header read and, if encrypted, opened.
struct Opened {
    header: Header,
    header_len: u64,
    keys: Option<FileKeys>,
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

/// How one run's chunks are sized: the first size, the most any chunk may
/// hold (the header's chunk size) and, when hill climbing, the climber.
struct ChunkPlan {
    start: usize,
    largest: usize,
    tuner: Option<Tuner>,
}

impl ChunkPlan {
    fn fixed(size: usize) -> ChunkPlan {
        ChunkPlan {
            start: size,
            largest: size,
            tuner: None,
        }
    }

    /// Every size the run used, from its start.
    fn history(&self) -> Vec<SizeChange> {
        match &self.tuner {
            Some(t) => t.history(),
            None => vec![SizeChange {
                from_chunk: 0,
                size: self.start,
                mean_cost: std::time::Duration::ZERO,
            }],
        }
    }
}

/// A run counted as active on its pipeline (see `Pipeline::begin_run`);
/// dropping it ends the count and, on an unshared governor, checks that
/// every permit is back.
struct ActiveRun<'p>(&'p Pipeline);

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The output of a file-to-file run: typed by the user, or derived (a
/// batch's).
fn create_output(input: &Path, output: &Path, force: bool, derived: bool) -> Result<OutputFile> {
    if derived {
        OutputFile::create_derived(input, output, force)
    } else {
        OutputFile::create(input, output, force)
    }
}
