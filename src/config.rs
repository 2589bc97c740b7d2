//! Settings: the builder (raw, never fails) and the resolved `Config`.

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::cipher::CipherKind;
use crate::error::{Error, Result};
use crate::file_format::Format;
use crate::format::{MAX_CHUNK_SIZE, MAX_STAGES};
use crate::governor::Governor;
use crate::kdf::KdfParams;
use crate::metrics::Metrics;
use crate::optimize::{Optimize, Preset};
use crate::pipeline::Pipeline;
use crate::secret::Secret;
use crate::source::ReaderKind;
use crate::stage::Stage;
use crate::stages::{ChecksumKind, StageSpec, Stages};
use crate::storage::StorageType;
use crate::tuner::ChunkMethod;

/// Default chunk size of a stage list that compresses with neither zstd
/// nor brotli: 1 MiB, which keeps the memory bound near 16 MiB at the
/// default depth. zstd and brotli get larger chunks by default, as
/// independent frames lose ratio at every boundary
/// (`chunk_plan::default_chunk_size`; `docs/performance.md`, "Ratio
/// against zstd -T2").
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;
/// Default depth of the reader → CPU channel (and the finished-results part
/// of the ordered hand-off): 4, enough to ride out a slow
/// read without holding much memory.
pub const DEFAULT_CHANNEL_DEPTH: usize = 4;
/// Default IO tokens: 12, a SATA SSD's useful queue depth (see `storage`).
pub const DEFAULT_IO_TOKENS: usize = 12;
/// Default stage list of the CLI and of a builder given no stage.
pub const DEFAULT_STAGES: &str = "zstd:3,blake3";
/// The most CPU-pool threads a pipeline takes (`-T`): past this a machine
/// runs out of thread stacks before it gains anything.
pub const MAX_THREADS: usize = 1024;
/// The most CPU or IO tokens a governor hands out.
pub const MAX_TOKENS: usize = 1024;
/// The deepest bounded channel: each slot may hold a chunk, so the memory
/// bound grows with it (`docs/design.md`), and past a few slots nothing
/// is gained (`docs/performance.md`, channel depth).
pub const MAX_CHANNEL_DEPTH: usize = 256;
/// The most files a batch works on at once (each streamed one has threads
/// and buffers of its own).
pub const MAX_FILES_IN_FLIGHT: usize = 1024;
/// The memory a restore or verify may spend on what a container asks for,
/// by default: its Argon2id matrix and its chunk buffers. A hostile 200-byte
/// header can ask for a 1 GiB Argon2id or 64 MiB chunks; within this
/// budget it gets neither, and a trusted file over it needs the limit
/// raised ([`PipelineBuilder::max_memory`], `--max-memory`), as zstd's
/// `--memory` does for large windows.
pub const DEFAULT_MAX_MEMORY: usize = 512 << 20;
/// The smallest memory limit: room for the bound of a default run.
pub const MIN_MAX_MEMORY: usize = 16 << 20;
/// The most Argon2id passes a container may ask for, by default: with the
/// memory limit, the work a header can demand before its key is checked
/// (512 MiB × 16 passes is a few seconds of one core; the writer's cap,
/// 64 passes of 1 GiB, is minutes).
pub const DEFAULT_MAX_KDF_PASSES: u32 = 16;
/// Chunk buffers a run holds at least, on top of the channels (the reader's,
/// the job's input and output, the writer's): see [`restore_window`].
const MIN_BUFFERS: usize = 4;

/// Where chunk jobs run. Both give the same output bytes; see
/// `docs/design.md` ("Spawn styles") for when each wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpawnStyle {
    /// Tasks on the pipeline's rayon pool, shared by all its runs (work
    /// stealing). The default.
    #[default]
    Rayon,
    /// Dedicated OS threads per run, pulling from one shared bounded
    /// channel.
    Threads,
}

named_enum!(
    SpawnStyle,
    "spawn style",
    [
        SpawnStyle::Rayon => "rayon",
        SpawnStyle::Threads => "threads",
    ]
);

/// Resolved, validated settings of a [`Pipeline`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Threads in the CPU pool (or dedicated worker threads per run).
    pub threads: usize,
    /// Where chunk jobs run.
    pub spawn_style: SpawnStyle,
    /// How `process_path` and `restore_path` read their input file.
    pub reader: ReaderKind,
    /// The preset the settings came from, if any.
    pub optimize: Option<Optimize>,
    /// CPU tokens: chunk jobs that may run at once.
    pub cpu_tokens: usize,
    /// IO tokens: reads and writes that may be in flight at once.
    pub io_tokens: usize,
    /// The storage type the IO tokens were chosen for, if one was given.
    pub storage_type: Option<StorageType>,
    /// Depth of the bounded channels.
    pub channel_depth: usize,
    /// Bytes per chunk: every chunk with [`ChunkMethod::Fixed`], the first
    /// chunks with [`ChunkMethod::HillClimb`] when it was set explicitly;
    /// unused by [`ChunkMethod::FileSize`]. When not set, the stages' frame
    /// size (8 MiB for zstd:3), which a file of known length shorter than
    /// four such chunks cuts down to a quarter of its length (at least
    /// 1 MiB).
    pub chunk_size: usize,
    /// How chunk sizes are chosen.
    pub chunk_method: ChunkMethod,
    /// True when `chunk_size` was set (explicitly or by a preset) rather
    /// than defaulted: hill climbing then starts from it.
    pub chunk_size_given: bool,
    /// The checksum computed per chunk and over the whole original.
    pub checksum: Option<ChecksumKind>,
    /// The cipher sealing every chunk of the containers this pipeline
    /// writes; `None` writes unencrypted containers.
    pub cipher: Option<CipherKind>,
    /// Argon2id parameters for containers encrypted under a passphrase.
    pub kdf: KdfParams,
    /// What a container read by restore or verify may make this pipeline
    /// spend: Argon2id memory, and chunk buffers (a restore keeps its chunk window within it).
    pub max_memory: usize,
    /// The most Argon2id passes a container read may ask for.
    pub max_kdf_passes: u32,
    /// What processing writes (restore and verify detect the format).
    pub format: Format,
}

/// The channel depth and the jobs in flight of a restore whose chunks are
/// `chunk_size` bytes, within `max_memory`: the configured ones when their
/// bound, `(2 × depth + 2 × jobs + 4) × chunk` (a job holds its input and
/// its output), fits; depth 1 and fewer jobs when it does not (large
/// chunks run with less in flight, not with more memory); `None` when even
/// one of each would not fit.
pub fn restore_window(config: &Config, chunk_size: usize) -> Option<(usize, usize)> {
    let units = config.max_memory / chunk_size.max(1);
    let (depth, jobs) = (config.channel_depth.max(1), config.cpu_tokens.max(1));
    if 2 * depth + 2 * jobs + MIN_BUFFERS <= units {
        return Some((depth, jobs));
    }
    // A deep channel only smooths the flow; jobs in flight are the
    // parallelism, so they get what is left.
    let spare = units.checked_sub(2 + 2 + MIN_BUFFERS)?;
    Some((1, (1 + spare / 2).min(jobs)))
}

pub(crate) enum StageEntry {
    Builtin(StageSpec),
    Custom(Arc<dyn Stage>),
}

/// Builds a [`Pipeline`]. Setters never fail; [`PipelineBuilder::build`]
/// validates.
#[must_use]
pub struct PipelineBuilder {
    pub(crate) stages: Option<Vec<StageEntry>>,
    pub(crate) checksum: Option<Option<ChecksumKind>>,
    pub(crate) threads: usize,
    pub(crate) cpu_tokens: usize,
    pub(crate) io_tokens: usize,
    pub(crate) channel_depth: usize,
    pub(crate) chunk_size: usize,
    pub(crate) chunk_method: Option<ChunkMethod>,
    pub(crate) governor: Option<Arc<Governor>>,
    pub(crate) cancel: CancelToken,
    pub(crate) max_memory: usize,
    pub(crate) max_kdf_passes: u32,
    pub(crate) cipher: Option<Option<CipherKind>>,
    pub(crate) secret: Option<Secret>,
    pub(crate) age: crate::age::AgeKeys,
    pub(crate) kdf: KdfParams,
    pub(crate) storage_type: Option<StorageType>,
    pub(crate) spawn_style: SpawnStyle,
    pub(crate) reader: ReaderKind,
    pub(crate) optimize: Option<Optimize>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
    pub(crate) format: Format,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            stages: None,
            checksum: None,
            threads: 0,
            cpu_tokens: 0,
            io_tokens: 0,
            channel_depth: 0,
            chunk_size: 0,
            chunk_method: None,
            governor: None,
            cancel: CancelToken::new(),
            max_memory: DEFAULT_MAX_MEMORY,
            max_kdf_passes: DEFAULT_MAX_KDF_PASSES,
            cipher: None,
            secret: None,
            age: crate::age::AgeKeys::default(),
            kdf: KdfParams::default(),
            storage_type: None,
            spawn_style: SpawnStyle::Rayon,
            reader: ReaderKind::Buffered,
            format: Format::Spipe,
            optimize: None,
            metrics: None,
            pool: None,
        }
    }
}

impl PipelineBuilder {
    /// Appends a built-in stage.
    ///
    /// By default (no stage added), the stages are `zstd:3`.
    pub fn stage(mut self, spec: StageSpec) -> Self {
        self.stages
            .get_or_insert_with(Vec::new)
            .push(StageEntry::Builtin(spec));
        self
    }

    /// Appends a custom stage. Its name is written into the container;
    /// restoring needs a pipeline given the same stage.
    pub fn custom_stage(mut self, stage: impl Stage + 'static) -> Self {
        self.stages
            .get_or_insert_with(Vec::new)
            .push(StageEntry::Custom(Arc::new(stage)));
        self
    }

    /// Replaces the stages and the checksum with a parsed stage list (see
    /// [`crate::stages::parse_stages`]). A list with only a checksum means
    /// no transform: chunks are stored as read.
    pub fn stages(mut self, stages: Stages) -> Self {
        self.stages = Some(
            stages
                .transforms
                .into_iter()
                .map(StageEntry::Builtin)
                .collect(),
        );
        self.checksum = Some(stages.checksum);
        self.cipher = Some(stages.cipher);
        self
    }

    /// The cipher that seals every chunk of the containers this pipeline
    /// writes (it then needs a [`PipelineBuilder::secret`]); `None` for
    /// unencrypted containers. Restoring needs no cipher setting: the
    /// container names its own.
    ///
    /// By default, none.
    pub fn cipher(mut self, cipher: Option<CipherKind>) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The passphrase or key that encrypts what this pipeline writes and
    /// opens the encrypted containers it restores. A pipeline with a secret
    /// refuses to restore an unencrypted container (an integrity error): it
    /// expects encrypted input, and plaintext in its place may have been
    /// substituted.
    ///
    /// By default, none: encrypted containers are refused.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// An age X25519 recipient the [`Format::Age`] files this pipeline
    /// writes are encrypted to (each recipient opens them with its
    /// identity); repeatable. With none, an age file is encrypted under the
    /// [`PipelineBuilder::secret`] passphrase (scrypt).
    ///
    /// ```
    /// use syncpipe::{AgeIdentity, Format, Pipeline};
    ///
    /// let identity = AgeIdentity::generate()?;
    /// let writer = Pipeline::builder()
    ///     .format(Format::Age)
    ///     .age_recipient(identity.recipient())
    ///     .build()?;
    /// let mut sealed = Vec::new();
    /// writer.run(&b"attack at dawn"[..], &mut sealed)?;
    /// assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    ///
    /// let reader = Pipeline::builder().age_identity(identity).build()?;
    /// let mut plain = Vec::new();
    /// reader.restore(&sealed[..], &mut plain)?;
    /// assert_eq!(plain, b"attack at dawn");
    /// # Ok::<(), syncpipe::Error>(())
    /// ```
    pub fn age_recipient(mut self, recipient: crate::AgeRecipient) -> Self {
        self.age.recipients.push(recipient);
        self
    }

    /// An age identity that opens the age files this pipeline restores and
    /// verifies (each is tried on each X25519 stanza); repeatable. A
    /// pipeline with an identity refuses to restore an unencrypted file,
    /// as with [`PipelineBuilder::secret`].
    pub fn age_identity(mut self, identity: crate::AgeIdentity) -> Self {
        self.age.identities.push(identity);
        self
    }

    /// The scrypt work factor (log2 N, 1 to [`crate::age::MAX_WORK_FACTOR`])
    /// an age file written under a passphrase is stretched with. Reading
    /// takes the file's own, within [`crate::age::MAX_WORK_FACTOR`] and
    /// [`PipelineBuilder::max_memory`] (scrypt needs 1 KiB × 2^N).
    ///
    /// By default, [`crate::age::DEFAULT_WORK_FACTOR`] (18: 256 MiB, what
    /// `age` uses).
    pub fn age_work_factor(mut self, log_n: u8) -> Self {
        self.age.work_factor = Some(log_n);
        self
    }

    /// Argon2id parameters for encrypting under a passphrase (restore takes
    /// them from the container, within [`KdfParams::check`]'s caps).
    ///
    /// By default, m = 64 MiB, t = 3, p = 4.
    pub fn kdf(mut self, params: KdfParams) -> Self {
        self.kdf = params;
        self
    }

    /// The most memory a container read by restore or verify may make this
    /// pipeline spend: an Argon2id asking for more is refused before any
    /// work, larger chunks are restored with fewer in flight, and chunks
    /// too large for even one in flight are refused (an error of kind
    /// [`crate::ErrorKind::Resource`], before anything is written).
    ///
    /// By default, [`DEFAULT_MAX_MEMORY`] (512 MiB); at least
    /// [`MIN_MAX_MEMORY`].
    ///
    /// ```
    /// let p = syncpipe::Pipeline::builder().max_memory(2 << 30).build()?;
    /// assert_eq!(p.config().max_memory, 2 << 30);
    /// # Ok::<(), syncpipe::Error>(())
    /// ```
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The most Argon2id passes a container read may ask for (`t`); more
    /// is refused before any work, as for [`PipelineBuilder::max_memory`].
    ///
    /// By default, [`DEFAULT_MAX_KDF_PASSES`] (16).
    pub fn max_kdf_passes(mut self, t: u32) -> Self {
        self.max_kdf_passes = t;
        self
    }

    /// What processing writes: syncpipe's container (the default) or a
    /// standard format (see [`Format`]). Restore and verify read every
    /// format, told by its magic, whatever this is set to.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The checksum computed per chunk and over the whole original; `None`
    /// for none.
    ///
    /// By default, BLAKE3.
    pub fn checksum(mut self, checksum: Option<ChecksumKind>) -> Self {
        self.checksum = Some(checksum);
        self
    }

    /// Threads in the CPU pool.
    ///
    /// By default (0), one per core: the reader and writer threads spend
    /// little CPU, so leaving a core for them (cores − 1) would
    /// idle half of a 2-core machine (see `docs/performance.md`).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// CPU tokens: how many chunk jobs may run at once.
    ///
    /// By default (0), equal to the thread count. Ignored when a shared
    /// [`PipelineBuilder::governor`] is given.
    pub fn cpu_tokens(mut self, n: usize) -> Self {
        self.cpu_tokens = n;
        self
    }

    /// IO tokens: how many reads and writes may be in flight.
    ///
    /// By default (0), the [`PipelineBuilder::storage_type`]'s depth, or 12
    /// (the SSD depth) without one. Ignored when a shared governor is given.
    pub fn io_tokens(mut self, n: usize) -> Self {
        self.io_tokens = n;
        self
    }

    /// The kind of storage the data lives on: sets the IO tokens (NVMe 24,
    /// SSD 12, HDD 4) unless [`PipelineBuilder::io_tokens`] is given. See
    /// [`crate::storage::detect`] to find it for a path.
    ///
    /// By default, none (12 IO tokens).
    pub fn storage_type(mut self, kind: Option<StorageType>) -> Self {
        self.storage_type = kind;
        self
    }

    /// Where the chunk jobs run: the rayon pool, or `threads` dedicated OS
    /// threads started for each run.
    ///
    /// By default, rayon.
    pub fn spawn_style(mut self, style: SpawnStyle) -> Self {
        self.spawn_style = style;
        self
    }

    /// How [`Pipeline::process_path`] and [`Pipeline::restore_path`] read
    /// their input: `read(2)` or a memory map (opt-in: a file truncated by
    /// another process while mapped kills the process with `SIGBUS`; see
    /// [`crate::ReaderKind`]). Runs on a reader you pass are not affected.
    ///
    /// By default, buffered reads.
    pub fn reader(mut self, kind: ReaderKind) -> Self {
        self.reader = kind;
        self
    }

    /// A preset over threads, CPU tokens, IO tokens, chunk size and channel
    /// depth (see [`Optimize`]); a knob set explicitly keeps its value,
    /// whichever order the setters are called in.
    ///
    /// By default, none: each knob's own default.
    pub fn optimize(mut self, preset: Option<Optimize>) -> Self {
        self.optimize = preset;
        self
    }

    /// Depth of the bounded channels between the threads.
    ///
    /// By default (0), 4.
    pub fn channel_depth(mut self, n: usize) -> Self {
        self.channel_depth = n;
        self
    }

    /// Bytes per chunk, at most 64 MiB.
    ///
    /// By default (0), the stages' frame size: 8 MiB for zstd:3 (four of
    /// its windows), 32 MiB for zstd:17–19, 8 MiB for brotli, 1 MiB for any
    /// other list; a file shorter than four such chunks gets a quarter of
    /// its length (at least 1 MiB).
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n;
        self
    }

    /// How chunk sizes are chosen (see [`ChunkMethod`] and `docs/design.md`,
    /// "Chunk sizing"). With hill climbing, a chunk size set explicitly is
    /// where the climb starts.
    ///
    /// By default, [`ChunkMethod::Fixed`].
    pub fn chunk_method(mut self, method: ChunkMethod) -> Self {
        self.chunk_method = Some(method);
        self
    }

    /// Shares a governor with other pipelines (two-level governance: the
    /// tokens are global, the channel depth stays per pipeline).
    ///
    /// By default, each pipeline gets its own.
    pub fn governor(mut self, governor: Arc<Governor>) -> Self {
        self.governor = Some(governor);
        self
    }

    /// A token that cancels every run of the pipeline when set.
    ///
    /// By default, a token nobody else holds.
    pub fn cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Runs the chunk jobs on `pool` instead of the process's shared pool;
    /// the thread count is then the pool's.
    ///
    /// By default, pipelines of the same thread count share one pool (50
    /// pipelines, one pool), which is what most programs want; a pool of
    /// its own isolates a pipeline's CPU work from the others'.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build()?);
    /// let p = syncpipe::Pipeline::builder().thread_pool(pool).build()?;
    /// assert_eq!(p.config().threads, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Records metrics of every run into `metrics` (which may be shared
    /// with other pipelines) and reports them to its observer.
    ///
    /// By default, none: nothing is timed or counted.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Validates the settings and builds the pipeline (and its thread pool).
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] for a chunk size over 64 MiB, more than 8
    /// stages, an invalid stage, a cipher without a secret or KDF parameters
    /// outside the caps; [`crate::ErrorKind::Io`] if the thread pool cannot
    /// be started.
    pub fn build(self) -> Result<Pipeline> {
        // An explicit setting wins, then the preset's value, then the
        // default (0 means "not set" at every level).
        let preset = self.optimize.map(Optimize::preset);
        let pick = |explicit: usize, from_preset: fn(&Preset) -> usize| {
            if explicit != 0 {
                explicit
            } else {
                preset.as_ref().map_or(0, from_preset)
            }
        };
        let threads = match (&self.pool, pick(self.threads, |p| p.threads)) {
            (Some(pool), _) => pool.current_num_threads(),
            (None, 0) => num_cpus::get().max(1),
            (None, n) => n,
        };
        if self.reader == ReaderKind::Mmap && !cfg!(feature = "mmap") {
            return Err(Error::usage(
                "the mmap reader is not in this build of syncpipe (its `mmap` feature is off)",
            ));
        }
        // An age file holds the input itself unless a stage is asked for.
        let stages = match (self.stages, self.format) {
            (Some(s), _) => s,
            (None, Format::Age) => Vec::new(),
            (None, _) => vec![StageEntry::Builtin(StageSpec::Zstd(3))],
        };
        let (chunk_size, chunk_size_given) = match pick(self.chunk_size, |p| p.chunk_size) {
            0 => (crate::chunk_plan::default_chunk_size(&stages), false),
            n => (n, true),
        };
        if chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::usage(format!(
                "chunk size {chunk_size} exceeds the maximum of {MAX_CHUNK_SIZE} (64 MiB)"
            )));
        }
        if stages.len() > MAX_STAGES {
            return Err(Error::usage(format!(
                "{} stages exceed the maximum of {MAX_STAGES}",
                stages.len()
            )));
        }
        let cipher = self.cipher.flatten();
        let checksum = match (self.format, self.checksum) {
            (Format::Spipe, c) => c.unwrap_or(Some(ChecksumKind::Blake3)),
            (_, None | Some(None)) => None,
            (f, Some(Some(c))) => {
                let own = match f {
                    Format::Zst => "each frame has zstd's own checksum",
                    Format::Age => "each 64 KiB piece is authenticated",
                    _ => "each member has gzip's CRC-32",
                };
                return Err(Error::usage(format!(
                    "the {f} format cannot carry a whole-file {} digest ({own}); \
                     leave the checksum out, or use the spipe format",
                    c.name()
                )));
            }
        };
        if let Some(codec) = self.format.codec() {
            let f = self.format;
            let one_stage = match stages.as_slice() {
                [StageEntry::Builtin(spec)] => spec.name() == codec,
                _ => false,
            };
            if !one_stage {
                let level = if codec == "zstd" { 19 } else { 9 };
                return Err(Error::usage(format!(
                    "the {f} format needs exactly one stage, {codec} (e.g. `-s {codec}:{level}`); \
                     other stage lists need the spipe format"
                )));
            }
            if let Some(c) = cipher {
                return Err(Error::usage(format!(
                    "the {f} format cannot be encrypted ({c} was asked for); use the spipe format"
                )));
            }
        }
        if self.format == Format::Age {
            check_age(
                &self.age,
                self.secret.as_ref(),
                self.chunk_method,
                &stages,
                cipher,
            )?;
        }
        if let (Some(c), None) = (cipher, &self.secret) {
            return Err(Error::usage(format!(
                "the cipher {c} needs a passphrase or key (PipelineBuilder::secret)"
            )));
        }
        self.kdf.check()?;
        for (what, value, max) in [
            ("threads", threads, MAX_THREADS),
            ("CPU tokens", self.cpu_tokens, MAX_TOKENS),
            ("IO tokens", self.io_tokens, MAX_TOKENS),
            ("channel depth", self.channel_depth, MAX_CHANNEL_DEPTH),
        ] {
            if value > max {
                return Err(Error::usage(format!(
                    "{what} {value} exceeds the maximum of {max}"
                )));
            }
        }
        if self.max_memory < MIN_MAX_MEMORY {
            return Err(Error::usage(format!(
                "a memory limit of {} bytes is below the minimum of {MIN_MAX_MEMORY} (16 MiB)",
                self.max_memory
            )));
        }
        if self.max_kdf_passes == 0 {
            return Err(Error::usage("a limit of 0 Argon2id passes opens nothing"));
        }
        let config = Config {
            threads,
            spawn_style: self.spawn_style,
            reader: self.reader,
            cpu_tokens: match pick(self.cpu_tokens, |p| p.cpu_tokens) {
                0 => threads,
                n => n,
            },
            io_tokens: match (pick(self.io_tokens, |p| p.io_tokens), self.storage_type) {
                (0, Some(kind)) => kind.io_tokens(),
                (0, None) => DEFAULT_IO_TOKENS,
                (n, _) => n,
            },
            storage_type: self.storage_type,
            channel_depth: match pick(self.channel_depth, |p| p.channel_depth) {
                0 => DEFAULT_CHANNEL_DEPTH,
                n => n,
            },
            optimize: self.optimize,
            chunk_size,
            chunk_method: self.chunk_method.unwrap_or_default(),
            chunk_size_given,
            checksum,
            cipher,
            kdf: self.kdf,
            max_memory: self.max_memory,
            max_kdf_passes: self.max_kdf_passes,
            format: self.format,
        };
        Pipeline::from_parts(
            config,
            stages,
            self.governor,
            self.cancel,
            (self.secret, self.age),
            self.metrics,
            self.pool,
        )
    }
}

/// What the age format takes: no stage or one zstd or gzip stage (the
/// file then holds a `.zst` or `.gz`), no cipher stage (age is the
/// cipher), fixed chunks (a chunk's first piece index follows from its
/// own index), and recipients or a passphrase, not both.
fn check_age(
    age: &crate::age::AgeKeys,
    secret: Option<&Secret>,
    chunk_method: Option<ChunkMethod>,
    stages: &[StageEntry],
    cipher: Option<CipherKind>,
) -> Result<()> {
    let inner_ok = match stages {
        [] => true,
        [StageEntry::Builtin(spec)] => matches!(spec, StageSpec::Zstd(_) | StageSpec::Gzip(_)),
        _ => false,
    };
    if !inner_ok {
        return Err(Error::usage(
            "the age format takes no stage (the input itself) or one zstd or gzip stage \
             (e.g. `-s zstd:3`: a .zst inside, what `age -d | zstd -d` restores)",
        ));
    }
    if let Some(c) = cipher {
        return Err(Error::usage(format!(
            "the age format is its own encryption (ChaCha20-Poly1305): leave {c} out of the stage list"
        )));
    }
    if chunk_method == Some(ChunkMethod::HillClimb) {
        return Err(Error::usage(
            "the age format is written in fixed chunks: use the fixed or filesize chunk method",
        ));
    }
    match secret {
        Some(s) if !s.is_passphrase() => Err(Error::usage(
            "an age file takes a passphrase, not a raw key file",
        )),
        s => age.check(s.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mmap reader exists only with the `mmap` feature; without it the
    /// builder says so instead of silently reading another way.
    #[test]
    fn the_mmap_reader_follows_the_feature() {
        let built = PipelineBuilder::default().reader(ReaderKind::Mmap).build();
        if cfg!(feature = "mmap") {
            assert!(built.is_ok());
        } else {
            let err = built.expect_err("no mmap in this build");
            assert_eq!(err.kind(), crate::ErrorKind::Usage);
            assert!(err.to_string().contains("mmap"), "{err}");
        }
    }
}
