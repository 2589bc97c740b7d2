//! The `Pipeline`: built once, runs many streams (process, restore, verify).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::batch::SMALL_FILE_MAX;
use crate::cancel::CancelToken;
use crate::chunk::ChainStage;
use crate::config::{Config, PipelineBuilder, SpawnStyle, StageEntry};
use crate::cpu_pool;
use crate::error::{Error, Result};
use crate::file_format::{sniff, sniff_file, Format};
use crate::format::{Kdf, StageDesc, CUSTOM_STAGE_ID};
use crate::governor::Governor;
use crate::metrics::Metrics;
use crate::output::{self, OutputFile};
use crate::overwrite::Overwrite;
use crate::par_reader::ParReader;
use crate::par_writer::ParWriter;
use crate::report::Report;
use crate::secret::Secret;
use crate::source::{ReaderKind, Source};
use crate::stream::{Cpu, Opened};

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) chain: Vec<ChainStage>,
    /// The rayon pool, for `SpawnStyle::Rayon` (never set for dedicated
    /// threads): shared with the process's other pipelines of the same
    /// thread count unless the builder was given one. Started by the first
    /// streamed run, not by the builder: a run that takes the small-file
    /// path (a `find -exec` of small files) never starts its threads.
    pub(crate) pool: OnceLock<Arc<rayon::ThreadPool>>,
    pub(crate) governor: Arc<Governor>,
    pub(crate) shared_governor: bool,
    /// Runs (and batches) of this pipeline in progress: its permits can
    /// only all be back when none is.
    pub(crate) active: AtomicUsize,
    pub(crate) cancel: CancelToken,
    pub(crate) secret: Option<Secret>,
    /// The recipients age files are written to, the identities they are
    /// opened with.
    pub(crate) age: crate::age::AgeKeys,
    /// Master keys derived so far, by KDF input. Argon2id costs ~0.1 s and
    /// 64 MiB at the default cost; a batch of files pays for it once per salt.
    pub(crate) masters: Mutex<Vec<(Kdf, Zeroizing<[u8; 32]>)>>,
    /// The KDF input this pipeline encrypts under, fixed at first use: one
    /// salt per pipeline, one random file nonce (hence own keys) per file.
    pub(crate) write_kdf: Mutex<Option<Kdf>>,
    pub(crate) metrics: Option<Arc<Metrics>>,
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
        cancel: CancelToken,
        (secret, age): (Option<Secret>, crate::age::AgeKeys),
        metrics: Option<Arc<Metrics>>,
        pool: Option<Arc<rayon::ThreadPool>>,
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
        let given = OnceLock::new();
        if let (SpawnStyle::Rayon, Some(pool)) = (config.spawn_style, pool) {
            let _ = given.set(pool);
        }
        let pool = given;
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
                age,
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

    /// Restores the file `input` into any writer (stdout), as
    /// [`Pipeline::restore`] does; a `.zst` or `.gz` file is laid out
    /// first, so its frames or members are decoded in parallel where the
    /// layout allows it (a stream has no layout and is decoded in one
    /// sequential pass).
    ///
    /// # Errors
    ///
    /// As [`Pipeline::restore`], with the path in the message.
    pub fn restore_from_path<W: Write + Send>(&self, input: &Path, output: W) -> Result<Report> {
        let run = || -> Result<Report> {
            let (file, meta) = output::open_input(input)?;
            if let Some(format) = standard_file(&file, &meta)? {
                return self
                    .standard_layout(format, &file, meta.len())
                    .and_then(|layout| self.restore_standard_file(format, &layout, file, output))
                    .map(|(_, r)| r)
                    .inspect_err(|_| self.failed());
            }
            // `restore` counts its own failure.
            self.restore(Source::new(file, self.inner.config.reader), output)
        };
        run().map_err(|e| e.with_path(input))
    }

    /// Checks the file `input` end to end without writing anything, as
    /// [`Pipeline::verify`] does; a `.zst` or `.gz` file is laid out first,
    /// so its frames or members are checked in parallel where the layout
    /// allows it.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::verify`], with the path in the message.
    pub fn verify_path(&self, input: &Path) -> Result<Report> {
        self.restore_from_path(input, io::sink())
    }

    /// Processes the file `input` into `output`: written to a temp file in
    /// the output's folder, fsynced and renamed only on success, so a failed
    /// or cancelled run leaves nothing. The container gets the input's
    /// permission bits and its access and modification times (the format
    /// has no field for them: the container file carries them, as a `.zst`
    /// does; [`Pipeline::restore_path`] gives them back).
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] if `output` exists and `overwrite` is
    /// [`Overwrite::Refuse`],
    /// or is the input itself (also through links); otherwise as
    /// [`Pipeline::run`], with the path in the message.
    pub fn process_path(
        &self,
        input: &Path,
        output: &Path,
        overwrite: Overwrite,
    ) -> Result<Report> {
        self.process_file(input, output, overwrite.allowed(), false)
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
            let out = create_output(input, output, force, derived)?;
            let (_, report, stream) = self.process_opened(input, file, &meta, out.file())?;
            if !stream {
                // Its times, taken before the read moved the access time.
                out.set_times(&meta);
            }
            let mode = if meta.is_file() {
                output::mode_of(&meta)
            } else {
                0
            };
            out.commit(Some(mode).filter(|&m| m != 0))?;
            Ok(report)
        };
        run().inspect_err(|_| self.failed())
    }

    /// Processes the file `input` into any writer (stdout), as
    /// [`Pipeline::process_path`] does but without a commit: the container
    /// records the file's length and mode, a small file takes the
    /// small-file path, and a file that changes during the read fails the
    /// run. (A reader has no length or mode: [`Pipeline::run`] records
    /// neither.)
    ///
    /// # Errors
    ///
    /// As [`Pipeline::run`], with the path in the message, and
    /// [`crate::ErrorKind::Io`] if the file changed while it was read.
    pub fn process_from_path<W: Write + Send>(&self, input: &Path, output: W) -> Result<Report> {
        let run = || -> Result<Report> {
            let (file, meta) = output::open_input(input)?;
            self.process_opened(input, file, &meta, output)
                .map(|(_, report, _)| report)
        };
        run().inspect_err(|_| self.failed())
    }

    /// Processes the opened `input` into `output`: a small regular file
    /// whole, anything else through the stream engine. Also says whether
    /// the input was read as a stream (no length, no times to keep).
    fn process_opened<W: Write + Send>(
        &self,
        input: &Path,
        file: std::fs::File,
        meta: &std::fs::Metadata,
        mut output: W,
    ) -> Result<(W, Report, bool)> {
        // A pipe, a device or a pseudo-file that reports size 0 but has
        // content (`/proc/cpuinfo`) is read as a stream, as stdin is: its
        // size says nothing, so neither the length nor the change check
        // can hold. A pipe's mode is not the data's: none is recorded.
        let (stream, first) = output::probe_stream(&file, meta).map_err(|e| e.with_path(input))?;
        // A regular file known to be small takes the batch's small-file
        // path: no per-file threads (see `small_file.rs`).
        if !stream && meta.len() < SMALL_FILE_MAX && self.inner.config.format == Format::Spipe {
            let report = self.process_small(input, &file, meta, &mut output)?;
            return Ok((output, report, false));
        }
        // A second descriptor of the same open file, to look at it again
        // once the reader (which owns `file`) is done.
        let watch = file
            .try_clone()
            .map_err(|e| Error::io(e).with_path(input))?;
        let mode = if meta.is_file() {
            output::mode_of(meta)
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
        let (output, report) = self
            .process_stream(source, output, len, mode)
            .map_err(|e| e.with_path(input))?;
        // Before any commit: a container of a file that changed meanwhile
        // never appears under the destination name.
        if !stream {
            output::check_unchanged(&watch, meta, report.bytes_in)
                .map_err(|e| e.with_path(input))?;
        }
        Ok((output, report, stream))
    }

    /// Restores the container file `input` into `output`, through a temp
    /// file renamed only once every check (whole-file digest included) has
    /// passed. The original's permission bits are restored, and its access
    /// and modification times are the container's (which
    /// [`Pipeline::process_path`] gave the original's).
    ///
    /// # Errors
    ///
    /// As [`Pipeline::process_path`] and [`Pipeline::restore`].
    pub fn restore_path(
        &self,
        input: &Path,
        output: &Path,
        overwrite: Overwrite,
    ) -> Result<Report> {
        self.restore_file(input, output, overwrite.allowed(), false)
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
            let (file, meta) = output::open_input(input)?;
            if let Some(format) = standard_file(&file, &meta)? {
                return self
                    .restore_standard_path(format, input, file, &meta, output, force, derived);
            }
            let mut source = Source::new(file, self.inner.config.reader);
            // Header and key first: a wrong key or a foreign file creates
            // nothing, not even a temp file.
            let opened = self
                .open_header(&mut source)
                .map_err(|e| e.with_path(input))?;
            let out = create_output(input, output, force, derived)?;
            let times = meta.is_file().then_some(&meta);
            self.restore_into(opened, source, out, times)
                .map_err(|e| e.with_path(input))
        };
        run().inspect_err(|_| self.failed())
    }

    /// Processes any reader (a pipe, stdin) into a container at the file
    /// `output`, through a temp file in its folder that is fsynced and
    /// renamed only on success, as [`Pipeline::process_path`] does. The
    /// container records no length and no mode (a stream has neither); the
    /// new file gets the default mode under the umask.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::process_path`] (the input is not checked against the
    /// output: a reader has no path).
    pub fn process_to_path<R: Read + Send>(
        &self,
        input: R,
        output: &Path,
        overwrite: Overwrite,
    ) -> Result<Report> {
        let run = || {
            let out = OutputFile::create_for(output, overwrite.allowed())?;
            let (_, report) = self.process_stream(input, out.file(), None, 0)?;
            out.commit(None)?;
            Ok(report)
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
        input: R,
        output: &Path,
        overwrite: Overwrite,
    ) -> Result<Report> {
        let run = || {
            let (format, mut input) = sniff(input)?;
            if let Some(f) = format.filter(|&f| f != Format::Spipe) {
                let out = OutputFile::create_for(output, overwrite.allowed())?;
                let (_, report) = self.restore_sequential(f, input, out.file())?;
                out.commit(None)?;
                return Ok(report);
            }
            let opened = self.open_header(&mut input)?;
            let out = OutputFile::create_for(output, overwrite.allowed())?;
            self.restore_into(opened, input, out, None)
        };
        run().inspect_err(|_| self.failed())
    }

    /// [`Pipeline::restore_file`] of a regular `.zst` or `.gz` file: as
    /// `zstd -d` and `gzip -d` do, the output gets the file's mode bits and
    /// times (the formats have no field for them: gzip's MTIME is written
    /// as 0 and not read back).
    #[allow(clippy::too_many_arguments)]
    fn restore_standard_path(
        &self,
        format: Format,
        input: &Path,
        file: std::fs::File,
        meta: &std::fs::Metadata,
        output: &Path,
        force: bool,
        derived: bool,
    ) -> Result<Report> {
        // Laid out (and a forged seek table refused) before the output
        // exists, as a container's header is read first.
        let layout = self
            .standard_layout(format, &file, meta.len())
            .map_err(|e| e.with_path(input))?;
        let out = create_output(input, output, force, derived)?;
        let (_, report) = self
            .restore_standard_file(format, &layout, file, out.file())
            .map_err(|e| e.with_path(input))?;
        out.set_times(meta);
        let mode = output::restored_mode(output::mode_of(meta), out.dest())?;
        out.commit(Some(mode))?;
        Ok(report)
    }

    fn restore_into<R: Read + Send>(
        &self,
        opened: Opened,
        input: R,
        out: OutputFile,
        times: Option<&std::fs::Metadata>,
    ) -> Result<Report> {
        let (_, report) = self.restore_body(opened, input, out.file())?;
        if let Some(meta) = times {
            out.set_times(meta);
        }
        // 0 = not recorded (stdin was processed): a new file's default.
        let mode = match report.mode.filter(|&m| m != 0) {
            Some(m) => Some(output::restored_mode(m, out.dest())?),
            None => None,
        };
        out.commit(mode)?;
        Ok(report)
    }

    /// Reads back the container file `container` that a run of this
    /// pipeline wrote (`written` is that run's report) and checks it end to
    /// end with this pipeline's key, as [`Pipeline::verify`] does, and that
    /// it holds what was written: the same number of original bytes and,
    /// with a checksum stage, the same whole-file digest. What to call
    /// before removing the input ([`output::remove_input`], `process --rm`):
    /// a container that does not restore never replaces its original.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::verify`]; [`crate::ErrorKind::Integrity`] if the
    /// container verifies but holds something else.
    pub fn verify_written(&self, container: &Path, written: &Report) -> Result<Report> {
        let report = self.verify_path(container)?;
        check_same(&report, written).map_err(|e| e.with_path(container))?;
        Ok(report)
    }

    /// A `Write` adapter that processes everything written to it into a
    /// container on `output`, in parallel; see [`ParWriter`]. `output` may
    /// be borrowed (`&mut Vec<u8>`, `&mut File`).
    pub fn par_writer<W: Write>(&self, output: W) -> ParWriter<W> {
        ParWriter::new(self, output)
    }

    /// A `Read` adapter that restores the container read from `input`, in
    /// parallel, as the original bytes; see [`ParReader`]. `input` may be
    /// borrowed (`&[u8]`, `&mut File`).
    pub fn par_reader<R: Read>(&self, input: R) -> ParReader<R> {
        ParReader::new(self, input)
    }

    /// Where this pipeline's chunk jobs run.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Io`] if the rayon pool, started here on first
    /// use, cannot start its threads.
    pub(crate) fn cpu(&self) -> Result<Cpu<'_>> {
        let cfg = &self.inner.config;
        match cfg.spawn_style {
            SpawnStyle::Threads => Ok(Cpu::Threads(cfg.threads)),
            SpawnStyle::Rayon => {
                if let Some(pool) = self.inner.pool.get() {
                    return Ok(Cpu::Rayon(pool));
                }
                // Two runs racing here get the same shared pool (or one of
                // two equal ones, the other then dropped).
                let pool = cpu_pool::shared(cfg.threads)?;
                Ok(Cpu::Rayon(self.inner.pool.get_or_init(|| pool)))
            }
        }
    }

    /// The token every run of this pipeline is a child of.
    pub(crate) fn cancel_token(&self) -> &CancelToken {
        &self.inner.cancel
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

/// Whether a verify's report `read` shows the container holding what the
/// process run `written` put in it: its bytes, and the original's length
/// and digest.
fn check_same(read: &Report, written: &Report) -> Result<()> {
    let (got, want) = (
        (read.bytes_in, read.original_bytes),
        (written.bytes_out, written.original_bytes),
    );
    if got != want {
        return Err(Error::integrity(format!(
            "read back, it is {} bytes holding {}; {} bytes holding {} were written",
            got.0, got.1, want.0, want.1
        )));
    }
    if read.digest != written.digest {
        return Err(Error::integrity(
            "read back, its digest is not the one written",
        ));
    }
    Ok(())
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

/// The standard format (`.zst`, `.gz`) of the regular file `file`, if it
/// is one: such a file is laid out before it is read.
fn standard_file(file: &std::fs::File, meta: &std::fs::Metadata) -> Result<Option<Format>> {
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(sniff_file(file)?.filter(|&f| f != Format::Spipe))
}
