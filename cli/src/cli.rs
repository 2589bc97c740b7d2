//! Command-line flags (clap) and the commands that use them.
//!
//! `Args` only parses; the settings it yields go through the library's
//! builder, which validates them. Nothing here decides how the engine works.

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueHint};
use syncpipe::container::{self, KeySource};
use syncpipe::output;
use syncpipe::stages::parse_stages;
use syncpipe::storage::{self, StorageType};
use syncpipe::{limits as config, Optimize, Overwrite, ReaderKind, Source, SpawnStyle};
use syncpipe::{
    CancelToken, ChunkMethod, Error, Format, KdfParams, Pipeline, PipelineBuilder, Report,
};

use crate::batch_cli::{self, InputArgs, OutDirArgs, SmallArgs};
use crate::exit_code::{self, ExitCode};
use crate::key_source::{KeyArgs, Peeked, Purpose};
use crate::size;
use crate::telemetry::{Telemetry, TelemetryArgs};

/// The headings that group the options in `--help` and the man pages, in
/// the order the options are defined (clap lists a heading where its first
/// option comes).
pub(crate) mod heading {
    pub const IO: &str = "Input and output";
    pub const STAGES: &str = "Stages and chunks";
    pub const KEYS: &str = "Keys";
    pub const MANY: &str = "Many files";
    pub const TUNING: &str = "Tuning";
    pub const LIMITS: &str = "Limits on what a container may demand";
    pub const OBSERVE: &str = "Observability";
}

#[derive(Parser, Debug)]
#[command(
    name = "syncpipe",
    version,
    about = "Stream files through parallel compression, encryption and checksum stages (no async runtime).",
    after_help = exit_code::table()
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = heading::OBSERVE)]
    quiet: bool,
    /// Print a detailed summary after process and restore (chunks, buffer
    /// reuse, memory, permit waits, p50/p95/p99 of CPU time and waits), in a
    /// batch one line per file; verify adds the p50/p95/p99 lines; bench
    /// prints each row's full settings.
    #[arg(short, long, global = true, help_heading = heading::OBSERVE)]
    verbose: bool,
    #[command(flatten, next_help_heading = heading::OBSERVE)]
    telemetry: TelemetryArgs,
}

/// Deferred: a run builds the arguments of the subcommands its line names
/// only (`help::command_for`), not the whole tree, which took a third of
/// the CPU time of `syncpipe --version`.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
enum Command {
    /// Process a file (or stdin, `-`) into a container; many files (one
    /// container each) with several inputs, -r, --files-from.
    #[command(after_help = exit_code::table())]
    Process(ProcessArgs),
    /// Restore the original from a container, a `.zst`, a `.gz` or an
    /// age file (many with several inputs, -r, --files-from).
    #[command(after_help = exit_code::table())]
    Restore(RestoreArgs),
    /// Check a container end to end (every chunk and the whole-file digest),
    /// or a `.zst`, `.gz` or age file (every frame, member or piece and its
    /// checksum or tag), without writing anything.
    #[command(after_help = exit_code::table())]
    Verify(VerifyArgs),
    /// Show a container's header and statistics (framing checked, nothing decoded).
    #[command(after_help = exit_code::table())]
    Info(InfoArgs),
    /// Measure the pipeline over a sweep of settings, on a file or on
    /// generated data.
    ///
    /// One row per combination of the swept values: the input processed
    /// into a container on disk (timed), then restored and compared with
    /// the input. Printed as a table; also CSV (--csv), JSON lines (--json)
    /// and an SVG plot (--plot). Exit 3 if a row does not restore.
    #[command(after_help = exit_code::table())]
    Bench(crate::bench_cli::BenchArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `syncpipe completions bash > /etc/bash_completion.d/syncpipe`.
    Completions(CompletionsArgs),
    /// Print a man page (roff) to stdout, or write them all to a folder:
    /// `syncpipe man --dir /usr/local/share/man/man1`.
    Man(ManArgs),
}

// One struct per subcommand, so a subcommand's arguments can be added on
// their own (`augment_subcommand`), when it is the one being run.

#[derive(ClapArgs, Debug)]
struct ProcessArgs {
    /// The files to process (directories with -r); `-` for stdin.
    #[arg(required_unless_present = "files_from")]
    inputs: Vec<PathBuf>,
    #[command(flatten, next_help_heading = heading::IO)]
    out: OutputArgs,
    /// Stage list, e.g. `zstd:3,blake3`, `lz4,sha256`, `gzip:6`,
    /// `brotli:5`, `passthrough`, `zstd:3,aes-256-gcm,sha256`,
    /// `lz4,chacha20-poly1305,blake3`. At most one compressor, one cipher
    /// (after the compressor; needs a passphrase or key) and one checksum.
    /// [default: zstd:3,blake3; with --format zst: zstd:3; with --format
    /// gz or bgzf: gzip:6; with --format age: none]
    #[arg(short, long, value_name = "LIST", help_heading = heading::STAGES)]
    stages: Option<String>,
    /// What to write: `spipe`, syncpipe's container (any stage list, a
    /// cipher, a whole-file digest, the mode bits, every parameter
    /// authenticated); `zst`, a standard `.zst` that `zstd -d` reads (one
    /// frame per chunk with zstd's checksum, and a seek table; the stage
    /// list is one zstd stage); `gz`, a standard `.gz` that `gzip -d` and
    /// `pigz -d` read (one member per chunk, each with its CRC-32 and its
    /// size in an extra field); `bgzf`, the blocked gzip that `bgzip`,
    /// htslib and samtools index (64 KiB blocks, an end-of-file block);
    /// `age`, an age v1 file that `age -d` opens (to --recipient, -R or
    /// -i recipients, or under a passphrase; no stage, or one zstd or gzip
    /// stage for a `.zst` or `.gz` inside). `gz` and `bgzf` take one gzip
    /// stage. The default output name follows (`INPUT.spipe`, `INPUT.zst`,
    /// `INPUT.gz`, `INPUT.age`, `INPUT.zst.age`); restore and verify read
    /// them all, whatever this is. See docs/format.md. [default: spipe]
    #[arg(long, value_name = "FORMAT", ignore_case = true, help_heading = heading::STAGES)]
    format: Option<Format>,
    /// The compressor's level in the stage list (zstd 1-19, gzip 1-9,
    /// brotli 0-11), the rest of the list kept: `-l 19` is
    /// `zstd:19,blake3` (where `-s zstd:19` drops the checksum).
    /// Refused (exit 2) for a list without one (lz4, passthrough, a
    /// checksum alone) or a level out of its range.
    #[arg(short, long, value_name = "N", allow_negative_numbers = true,
          help_heading = heading::STAGES)]
    level: Option<i64>,
    /// Bytes per chunk, e.g. `256KiB`, `4MiB` (4 KiB to 64 MiB). [default:
    /// zstd's frame size, four of its windows (8 MiB at levels 3-8, 32 MiB
    /// at 17-19), 8 MiB for brotli, else 1 MiB; at least 4 chunks per file]
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = heading::STAGES)]
    chunk_size: Option<usize>,
    /// How chunk sizes are chosen: `fixed` (every chunk --chunk-size;
    /// the same input gives the same bytes), `filesize` (one size per
    /// file from its length: about 4 chunks per CPU token, 128 KiB-1 MiB),
    /// `hillclimb` (starts there or at --chunk-size, then keeps the mean
    /// cost of a chunk, its stages plus its write, within 0.5-5 ms in
    /// 128 KiB steps, 128 KiB-4 MiB, taking back a step up that makes
    /// a byte more than 25% dearer;
    /// -v shows the sizes chosen). [default: fixed]
    #[arg(long, value_name = "METHOD", ignore_case = true, help_heading = heading::STAGES)]
    chunk_method: Option<ChunkMethod>,
    #[command(flatten, next_help_heading = heading::KEYS)]
    keys: KeyArgs,
    #[command(flatten, next_help_heading = heading::KEYS)]
    recipients: crate::recipients::RecipientArgs,
    /// Argon2id cost for a passphrase: `m=KiB,t=PASSES,p=LANES`, any
    /// subset (caps: m <= 1 GiB, t <= 64, p <= 16). [default: m=65536,t=3,p=4]
    #[arg(long, value_name = "PARAMS", help_heading = heading::KEYS)]
    argon2: Option<String>,
    #[command(flatten, next_help_heading = heading::MANY)]
    batch: InputArgs,
    #[command(flatten, next_help_heading = heading::MANY)]
    out_dir: OutDirArgs,
    #[command(flatten, next_help_heading = heading::MANY)]
    small: SmallArgs,
    #[command(flatten, next_help_heading = heading::TUNING)]
    tuning: Tuning,
}

#[derive(ClapArgs, Debug)]
struct RestoreArgs {
    /// The containers, `.zst`, `.gz` or age files (directories with -r:
    /// their `*.spipe`, `*.zst`, `*.gz`, `*.tgz`, `*.tzst` and `*.age`);
    /// `-` for stdin.
    #[arg(required_unless_present = "files_from")]
    inputs: Vec<PathBuf>,
    #[command(flatten, next_help_heading = heading::IO)]
    out: OutputArgs,
    #[command(flatten, next_help_heading = heading::KEYS)]
    keys: KeyArgs,
    #[command(flatten, next_help_heading = heading::MANY)]
    batch: InputArgs,
    #[command(flatten, next_help_heading = heading::MANY)]
    out_dir: OutDirArgs,
    #[command(flatten, next_help_heading = heading::TUNING)]
    tuning: Tuning,
    #[command(flatten, next_help_heading = heading::LIMITS)]
    limits: Limits,
}

#[derive(ClapArgs, Debug)]
struct VerifyArgs {
    /// The containers, `.zst`, `.gz` or age files (directories with -r:
    /// their `*.spipe`, `*.zst`, `*.gz`, `*.tgz`, `*.tzst` and `*.age`);
    /// `-` for stdin.
    #[arg(required_unless_present = "files_from")]
    inputs: Vec<PathBuf>,
    #[command(flatten, next_help_heading = heading::KEYS)]
    keys: KeyArgs,
    #[command(flatten, next_help_heading = heading::MANY)]
    batch: InputArgs,
    #[command(flatten, next_help_heading = heading::TUNING)]
    tuning: Tuning,
    #[command(flatten, next_help_heading = heading::LIMITS)]
    limits: Limits,
}

#[derive(ClapArgs, Debug)]
struct InfoArgs {
    /// The container; `-` for stdin.
    input: PathBuf,
    /// Print the header and statistics as one JSON object on stdout
    /// (fields: docs/json.md, "syncpipe info --json").
    #[arg(long, help_heading = heading::IO)]
    json: bool,
}

#[derive(ClapArgs, Debug)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

#[derive(ClapArgs, Debug)]
struct ManArgs {
    /// Whose page: a subcommand's (`syncpipe man process` prints
    /// syncpipe-process(1)); without it, syncpipe(1).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir",
          value_parser = PossibleValuesParser::new(crate::manual::SUBCOMMANDS))]
    page: Option<String>,
    /// Write every page into DIR instead (syncpipe.1, syncpipe-process.1,
    /// ...), replacing pages of those names.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    dir: Option<PathBuf>,
}

impl Command {
    /// The subcommand's name, and whether it runs a pipeline.
    fn name(&self) -> (&'static str, bool) {
        match self {
            Command::Process(_) => ("process", true),
            Command::Restore(_) => ("restore", true),
            Command::Verify(_) => ("verify", true),
            Command::Info(_) => ("info", false),
            // Reports through its own rows (bench_cli), not the telemetry.
            Command::Bench(_) => ("bench", false),
            Command::Completions(_) => ("completions", false),
            Command::Man(_) => ("man", false),
        }
    }

    /// The `--shard` of a batch (a label of its Prometheus samples).
    fn shard(&self) -> Option<crate::shard::Shard> {
        match self {
            Command::Process(ProcessArgs { batch, .. })
            | Command::Restore(RestoreArgs { batch, .. })
            | Command::Verify(VerifyArgs { batch, .. }) => batch.shard(),
            _ => None,
        }
    }
}

#[derive(ClapArgs, Debug)]
pub(crate) struct OutputArgs {
    /// The container to write; `-` for stdout. [default: INPUT.spipe;
    /// stdout when INPUT is `-`]
    #[arg(short, long, value_name = "FILE", conflicts_with = "stdout",
          value_hint = ValueHint::FilePath)]
    pub(crate) output: Option<PathBuf>,
    /// Write the container to stdout.
    #[arg(short = 'c', long)]
    pub(crate) stdout: bool,
    /// Overwrite an existing output; with -c, write a container even to a
    /// terminal.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Remove the input once its output is durable (fsynced, renamed, its
    /// folder fsynced) and, for process, read back and verified with the
    /// same key; never after a failure, nor with -c, stdout or stdin. In a
    /// batch, each input once its own output is.
    #[arg(long)]
    pub(crate) rm: bool,
}

impl OutputArgs {
    /// What `-f` means to the library's file-to-file calls.
    fn overwrite(&self) -> Overwrite {
        if self.force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        }
    }
}

#[derive(ClapArgs, Debug)]
struct Tuning {
    /// Threads in the CPU pool, 0-1024; 0 = one per core.
    #[arg(short = 'T', long, value_name = "N", default_value_t = 0, value_parser = count(config::MAX_THREADS))]
    threads: usize,
    /// Chunk jobs allowed to run at once, 0-1024; 0 = the thread count.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = count(config::MAX_TOKENS))]
    cpu_tokens: usize,
    /// Reads and writes allowed in flight at once, 0-1024; 0 = from
    /// --storage-type.
    #[arg(long, value_name = "N", visible_alias = "io-qdepth", default_value_t = 0,
          value_parser = count(config::MAX_TOKENS))]
    io_tokens: usize,
    /// The device the input (in a batch, the first input) lives on, which
    /// sets the IO tokens unless
    /// --io-tokens is given: nvme 24, ssd 12, hdd 4; auto finds it through
    /// /sys (Linux) and uses 12 when it cannot tell (-v says why).
    #[arg(long, value_name = "TYPE", default_value = "auto", value_parser = storage_choice())]
    storage_type: StorageChoice,
    /// Where chunk jobs run: `rayon` (a pool shared by the runs, work
    /// stealing) or `threads` (-T dedicated OS threads per run pulling from
    /// one bounded channel). Same output bytes.
    #[arg(long, value_name = "STYLE", default_value = "rayon")]
    spawn_style: SpawnStyle,
    /// How an input file is read: `buffered` (read(2)) or `mmap` (a memory
    /// map; opt-in: if another process truncates the file meanwhile, the
    /// process dies of SIGBUS). A batch's files under 256 KiB are read
    /// whole either way.
    #[arg(long, value_name = "HOW", default_value = "buffered")]
    reader: ReaderKind,
    /// A preset over -T, --cpu-tokens, --io-tokens, --chunk-size,
    /// --channel-depth, --scheduler and --files-in-flight: `throughput`
    /// (64 KiB chunks, depth 8, FIFO), `latency` (64 KiB chunks, depth 2,
    /// fair), `resources` (1 thread, 1 CPU token, 2 IO tokens, 256 KiB
    /// chunks, depth 1, 2 files in flight). Flags given explicitly win; -v
    /// prints the result.
    #[arg(long, value_name = "GOAL")]
    optimize: Option<Optimize>,
    /// Depth of the bounded channels between threads, 0-256; 0 = 4.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = count(config::MAX_CHANNEL_DEPTH))]
    channel_depth: usize,
}

/// What a container being read may make restore and verify spend, before
/// its key has shown it to be genuine.
#[derive(ClapArgs, Debug)]
struct Limits {
    /// The most memory a container may make this run spend, 16 MiB to
    /// 1 TiB: an Argon2id over it is refused before any work, and large
    /// chunks are decoded with fewer in flight to stay within it (chunks
    /// too large for that are refused, exit 1). [default: 512MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    max_memory: Option<usize>,
    /// The most Argon2id passes (t) a container may ask for, 1-64; more is
    /// refused before any work (exit 1). [default: 16]
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new()
              .range(1..=u64::from(syncpipe::KdfParams::MAX_T)))]
    max_kdf_passes: Option<u32>,
}

impl Limits {
    fn apply(&self, b: PipelineBuilder) -> PipelineBuilder {
        b.max_memory(self.max_memory.unwrap_or(config::DEFAULT_MAX_MEMORY))
            .max_kdf_passes(
                self.max_kdf_passes
                    .unwrap_or(config::DEFAULT_MAX_KDF_PASSES),
            )
    }
}

/// `--max-memory`: 16 MiB ..= 1 TiB.
pub fn parse_memory(text: &str) -> Result<usize, String> {
    sized(text, config::MIN_MAX_MEMORY, 1 << 40)
}

/// Parses the process's arguments against `help::command_for` (the
/// derive's definition with its per-subcommand wording and scoping); a bad
/// command line exits 2 with clap's message, as `Parser::parse` does.
pub fn parse() -> Args {
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cmd = crate::help::command_for(&args);
    let mut matches = cmd
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| parse_failed(e));
    Args::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| parse_failed(e.format(&mut cmd)))
}

/// Adds the arguments of subcommand `sub` (a deferred one, as the derive
/// left it: its name, about and after-help only).
pub fn augment_subcommand(sub: clap::Command) -> clap::Command {
    // A flattened struct's doc comment becomes the about of what it is
    // added to: the subcommand's own, which the derive set, is put back.
    let about = sub.get_about().cloned();
    let long_about = sub.get_long_about().cloned();
    let sub = match sub.get_name() {
        "process" => ProcessArgs::augment_args(sub),
        "restore" => RestoreArgs::augment_args(sub),
        "verify" => VerifyArgs::augment_args(sub),
        "info" => InfoArgs::augment_args(sub),
        "bench" => crate::bench_cli::BenchArgs::augment_args(sub),
        "completions" => CompletionsArgs::augment_args(sub),
        "man" => ManArgs::augment_args(sub),
        _ => sub,
    };
    let sub = match about {
        Some(text) => sub.about(text),
        None => sub.about(None::<&str>),
    };
    match long_about {
        Some(text) => sub.long_about(text),
        None => sub.long_about(None::<&str>),
    }
}

/// Where an output goes.
enum Dest {
    Stdout,
    Path(PathBuf),
}

/// Runs the parsed command and returns the exit code (errors are printed here).
pub fn run(args: Args) -> ExitCode {
    let cancel = CancelToken::new();
    let terminated = Arc::new(AtomicBool::new(false));
    if let Err(e) = crate::signals::install(&cancel, &terminated, args.quiet) {
        eprintln!("syncpipe: cannot install signal handlers: {e}");
        return ExitCode::Runtime;
    }
    let verbosity = Verbosity {
        quiet: args.quiet,
        verbose: args.verbose,
    };
    let (name, runs) = args.command.name();
    let result = match args.command {
        // Every row has its own pipeline and metrics: the command-wide
        // telemetry (dashboard, Prometheus) does not apply.
        Command::Bench(bench) => {
            crate::bench_cli::run(&bench, &args.telemetry, cancel, verbosity, &terminated)
        }
        command => {
            // info's --json is its own output (one object), not the JSON
            // lines of a run.
            let mut telemetry = args.telemetry.clone();
            telemetry.json &= !matches!(command, Command::Info(_));
            Telemetry::start(&telemetry, verbosity, name, runs, command.shard(), &cancel).and_then(
                |tel| {
                    let result = dispatch(command, cancel, verbosity, &tel);
                    let code = match &result {
                        Ok(code) => *code as i32,
                        Err(e) => status_of(e, &terminated),
                    };
                    let finished = tel.finish(result.as_ref().err(), code);
                    result.and_then(|code| finished.map(|()| code))
                },
            )
        }
    };
    match result {
        // A reader of the `--json` lines went away: as below, unless the
        // run failed on its own.
        Ok(ExitCode::Success) if crate::signals::stdout_broken() => {
            crate::signals::end_by_sigpipe()
        }
        Ok(code) => code,
        // A reader such as `head` went away: no message, and the end
        // zstd and gzip have, by SIGPIPE (everything is cleaned up by now).
        Err(e) if e.is_broken_pipe() => crate::signals::end_by_sigpipe(),
        Err(e) => {
            let code = ExitCode::of(&e, terminated.load(Ordering::Relaxed));
            if !matches!(code, ExitCode::Interrupted | ExitCode::Terminated) || !args.quiet {
                eprintln!("syncpipe: {e}");
            }
            code
        }
    }
}

/// The exit status a failed run ends with: its code, or the shell's
/// status for SIGPIPE (141) after a broken pipe.
fn status_of(e: &Error, terminated: &AtomicBool) -> i32 {
    if e.is_broken_pipe() {
        128 + libc::SIGPIPE
    } else {
        ExitCode::of(e, terminated.load(Ordering::Relaxed)) as i32
    }
}

/// Ends a run whose command line did not parse: clap's message (exit 2),
/// or the help or version asked for (exit 0, or SIGPIPE if stdout is a
/// closed pipe, as for every command).
pub fn parse_failed(e: clap::Error) -> ! {
    if e.use_stderr() {
        e.exit()
    }
    match e.print() {
        Err(io) if io.kind() == io::ErrorKind::BrokenPipe => crate::signals::end_by_sigpipe(),
        _ => std::process::exit(0),
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Verbosity {
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
}

fn dispatch(
    command: Command,
    cancel: CancelToken,
    v: Verbosity,
    tel: &Telemetry,
) -> Result<ExitCode, Error> {
    match command {
        Command::Process(ProcessArgs {
            inputs,
            out,
            batch,
            out_dir,
            small,
            stages,
            format,
            level,
            chunk_size,
            chunk_method,
            keys,
            recipients,
            argon2,
            tuning,
        }) => {
            let format = format.unwrap_or_default();
            let stages = stages.unwrap_or_else(|| match format {
                Format::Spipe => config::DEFAULT_STAGES.to_string(),
                // The tools' own default levels, and no digest: the formats
                // have no place for one (each frame carries zstd's
                // checksum, each member gzip's CRC-32).
                Format::Zst => "zstd:3".to_string(),
                Format::Gz | Format::Bgzf => "gzip:6".to_string(),
                // What `age` does: the input itself.
                Format::Age => String::new(),
            });
            if stages.is_empty() && level.is_some() {
                return Err(Error::usage(
                    "--level sets a compressor's level, and --format age has none unless \
                     -s names one (e.g. -s zstd:19 for a .zst inside)",
                ));
            }
            let mut parsed = match stages.as_str() {
                // An age file of the input itself: no stage at all.
                "" if format == Format::Age => syncpipe::Stages {
                    transforms: Vec::new(),
                    cipher: None,
                    checksum: None,
                },
                text => parse_stages(text)?,
            };
            let stages = match level {
                Some(l) => {
                    parsed = parsed.with_level(l)?;
                    parsed.to_string()
                }
                None => stages,
            };
            let mut builder = tel
                .attach(tuning.builder(cancel, first(&inputs), v))
                .chunk_size(chunk_size.unwrap_or(0));
            if let Some(m) = chunk_method {
                builder = builder.chunk_method(m);
            }
            if format == Format::Age {
                builder = recipients.apply(builder, &keys, argon2.is_some())?;
            } else {
                recipients.refuse()?;
            }
            match parsed.cipher {
                _ if format == Format::Age => {}
                Some(cipher) => {
                    if let Some(text) = &argon2 {
                        if keys.is_key_file() {
                            return Err(Error::usage(
                                "--argon2 applies to passphrases; a --key-file needs no key derivation",
                            ));
                        }
                        builder = builder.kdf(text.parse::<KdfParams>()?);
                    }
                    let why = format!("encrypting with {cipher}");
                    builder = builder.secret(keys.resolve(Purpose::Encrypt, &why)?);
                }
                None if keys.given() || argon2.is_some() => {
                    // Refused rather than ignored: the user believes the
                    // output will be encrypted.
                    return Err(Error::usage(
                        "a passphrase or key was given but the stage list has no cipher; \
                         add aes-256-gcm or chacha20-poly1305, e.g. -s zstd:3,aes-256-gcm,sha256",
                    ));
                }
                None => {}
            }
            small.check(format)?;
            let pipeline = builder.stages(parsed).format(format).build()?;
            preset_note(v, pipeline.config());
            if batch_cli::is_batch(&inputs, &batch, Some(&out_dir), Some(&small)) {
                return batch_cli::process(
                    &pipeline,
                    &inputs,
                    &out,
                    &batch,
                    &out_dir,
                    &small,
                    (v, tel),
                );
            }
            let input = batch_cli::single(inputs)?;
            let dest = process_dest(&input, &out, &output_extension(&pipeline))?;
            let removal = Removal::check(&out, &input, &dest)?;
            tel.claim_stdout(matches!(dest, Dest::Stdout))?;
            tel.begin(&pipeline, &input, Some(stages));
            // Binary on a terminal garbles it (and may send it control
            // sequences): refused, as gzip and zstd do, unless forced.
            if matches!(dest, Dest::Stdout) && !out.force && io::stdout().is_terminal() {
                return Err(Error::usage(
                    "refusing to write a binary container to a terminal; \
                     use -o FILE, redirect stdout, or --force",
                ));
            }
            sweep_stale_temps(&dest);
            let report = match (&dest, is_stdio(&input)) {
                (Dest::Path(p), false) => pipeline.process_path(&input, p, out.overwrite())?,
                // A file: its length and mode are recorded, and a small one
                // takes the small-file path, as with -o.
                (Dest::Stdout, false) => pipeline.process_from_path(&input, stdout()?)?,
                _ => {
                    let src = Source::new(open_input(&input)?, tuning.reader);
                    match &dest {
                        Dest::Stdout => pipeline.run(src, stdout()?),
                        // A stream has no mode: the new file gets the default.
                        Dest::Path(p) => pipeline.process_to_path(src, p, out.overwrite()),
                    }
                    .map_err(|e| e.with_path(&input))?
                }
            };
            if let (Some(removal), Dest::Path(p)) = (removal, &dest) {
                pipeline.verify_written(p, &report)?;
                removal.remove(&input, v)?;
            }
            summary(v, "processed", &input, &dest, &report);
            tel.file_done(&input, &dest_name(&dest), &report);
            Ok(ExitCode::Success)
        }
        Command::Restore(RestoreArgs {
            inputs,
            out,
            batch,
            out_dir,
            keys,
            limits,
            tuning,
        }) => {
            if batch_cli::is_batch(&inputs, &batch, Some(&out_dir), None) {
                let builder = tel.attach(limits.apply(tuning.builder(cancel, first(&inputs), v)));
                return batch_cli::restore(
                    builder,
                    &keys,
                    &inputs,
                    &out,
                    &batch,
                    &out_dir,
                    (v, tel),
                );
            }
            let input = batch_cli::single(inputs)?;
            let dest = restore_dest(&input, &out)?;
            let removal = Removal::check(&out, &input, &dest)?;
            tel.claim_stdout(matches!(dest, Dest::Stdout))?;
            let (src, header) = peek_header(&input, tuning.reader)?;
            let builder = tel.attach(limits.apply(tuning.builder(cancel, &input, v)));
            let pipeline = with_secret(builder, &keys, &header, &input)?.build()?;
            preset_note(v, pipeline.config());
            tel.begin(&pipeline, &input, None);
            sweep_stale_temps(&dest);
            let report = match (&dest, is_stdio(&input)) {
                (Dest::Path(p), false) => pipeline.restore_path(&input, p, out.overwrite())?,
                // Header and key are checked before the temp file exists.
                (Dest::Path(p), true) => pipeline
                    .restore_to_path(src, p, out.overwrite())
                    .map_err(|e| e.with_path(&input))?,
                // A file: a `.zst` or `.gz` is laid out and decoded in
                // parallel.
                (Dest::Stdout, false) => {
                    drop(src);
                    pipeline.restore_from_path(&input, stdout()?)?
                }
                (Dest::Stdout, true) => pipeline
                    .restore(src, stdout()?)
                    .map_err(|e| e.with_path(&input))?,
            };
            // Before --rm takes the input away.
            bgzf_note(&input, v);
            // Every chunk and the whole-file digest were checked before the
            // commit: the restored file is the original.
            if let Some(removal) = removal {
                removal.remove(&input, v)?;
            }
            summary(v, "restored", &input, &dest, &report);
            tel.file_done(&input, &dest_name(&dest), &report);
            Ok(ExitCode::Success)
        }
        Command::Verify(VerifyArgs {
            inputs,
            batch,
            keys,
            limits,
            tuning,
        }) => {
            if batch_cli::is_batch(&inputs, &batch, None, None) {
                let builder = tel.attach(limits.apply(tuning.builder(cancel, first(&inputs), v)));
                return batch_cli::verify(builder, &keys, &inputs, &batch, v, tel);
            }
            let input = batch_cli::single(inputs)?;
            let (src, header) = peek_header(&input, tuning.reader)?;
            let builder = tel.attach(limits.apply(tuning.builder(cancel, &input, v)));
            let pipeline = with_secret(builder, &keys, &header, &input)?.build()?;
            preset_note(v, pipeline.config());
            tel.begin(&pipeline, &input, None);
            let report = if is_stdio(&input) {
                pipeline.verify(src).map_err(|e| e.with_path(&input))?
            } else {
                // A file: a `.zst` or `.gz` is laid out and checked in
                // parallel.
                drop(src);
                pipeline.verify_path(&input)?
            };
            if !v.quiet && !tel.json() {
                // Fallible, unlike `println!`: a closed stdout is the
                // quiet end (`run`), not a panic.
                let mut out = io::stdout().lock();
                writeln!(out, "{}", verified_line(&input, &report))?;
                out.flush()?;
            }
            bgzf_note(&input, v);
            tel.file_done(&input, "", &report);
            Ok(ExitCode::Success)
        }
        Command::Info(InfoArgs { input, json }) => info(&input, json).map(|()| ExitCode::Success),
        Command::Completions(CompletionsArgs { shell }) => {
            crate::manual::completions(shell).map(|()| ExitCode::Success)
        }
        Command::Man(ManArgs { page, dir }) => {
            crate::manual::man(page.as_deref(), dir.as_deref()).map(|()| ExitCode::Success)
        }
        // Handled in `run`, before the telemetry starts.
        Command::Bench(_) => Err(Error::usage("bench is not dispatched here")),
    }
}

impl Tuning {
    /// A builder with these settings, the storage type resolved for
    /// `input` (detected when `auto`; the decision is printed with -v).
    fn builder(
        &self,
        cancel: CancelToken,
        input: &Path,
        v: Verbosity,
    ) -> syncpipe::PipelineBuilder {
        let storage = match self.storage_type.0 {
            Some(kind) => Some(kind),
            None if is_stdio(input) => {
                storage_note(v, self.io_tokens, None, "stdin has no device");
                None
            }
            None => {
                let d = storage::detect(input);
                storage_note(v, self.io_tokens, d.kind, &d.reason);
                d.kind
            }
        };
        Pipeline::builder()
            .threads(self.threads)
            .spawn_style(self.spawn_style)
            .reader(self.reader)
            .optimize(self.optimize)
            .cpu_tokens(self.cpu_tokens)
            .io_tokens(self.io_tokens)
            .storage_type(storage)
            .channel_depth(self.channel_depth)
            .cancel(cancel)
    }
}

/// `--storage-type`: a storage type, or `None` for `auto` (detect it).
#[derive(Debug, Clone, Copy)]
struct StorageChoice(Option<StorageType>);

/// `auto` and the library's storage-type names, so help and completions
/// list exactly what parses.
fn storage_choice() -> impl TypedValueParser<Value = StorageChoice> {
    let names = std::iter::once("auto").chain(StorageType::ALL.iter().map(|t| t.name()));
    PossibleValuesParser::new(names)
        .map(|name| StorageChoice(StorageType::ALL.iter().copied().find(|t| t.name() == name)))
}

/// With -v and `--optimize`, the settings the preset resolved to.
pub(crate) fn preset_note(v: Verbosity, cfg: &syncpipe::Config) {
    let Some(o) = cfg.optimize.filter(|_| v.verbose) else {
        return;
    };
    let p = o.preset();
    eprintln!(
        "syncpipe: optimize {o}: threads {}, cpu tokens {}, io tokens {}, chunk size {}, \
         channel depth {}; in a batch, unless given: scheduler {:?}, files in flight {} \
         (0 = default)",
        cfg.threads,
        cfg.cpu_tokens,
        cfg.io_tokens,
        size::format(cfg.chunk_size as u64),
        cfg.channel_depth,
        p.scheduler,
        p.files_in_flight
    );
}

/// With -v, what `--storage-type auto` decided and why.
fn storage_note(v: Verbosity, io_tokens: usize, kind: Option<StorageType>, reason: &str) {
    if !v.verbose {
        return;
    }
    let tokens = match (io_tokens, kind) {
        (0, Some(k)) => format!("{} IO tokens", k.io_tokens()),
        (0, None) => format!("{} IO tokens (the SSD default)", config::DEFAULT_IO_TOKENS),
        (n, _) => format!("{n} IO tokens (--io-tokens)"),
    };
    let kind = kind.map_or("unknown", |k| k.name());
    eprintln!("syncpipe: storage {kind} ({reason}): {tokens}");
}

/// Warns (unless `-q`) when the BGZF file `input` lacks its end-of-file
/// block, as htslib does: it restored whole as far as it goes, but may have
/// been cut at a block boundary. Not an error: it is a valid `.gz`.
fn bgzf_note(input: &Path, v: Verbosity) {
    if v.quiet || is_stdio(input) {
        return;
    }
    let Ok(file) = std::fs::File::open(input) else {
        return;
    };
    let mut first = [0u8; 16];
    let bgzf = std::os::unix::fs::FileExt::read_exact_at(&file, &mut first, 0).is_ok()
        && Format::detect(&first) == Some(Format::Bgzf);
    if bgzf && syncpipe::bgzf_has_eof_block(&file).is_ok_and(|has| !has) {
        eprintln!(
            "syncpipe: {}: warning: no BGZF end-of-file block; the file may have been \
             cut at a block boundary",
            input.display()
        );
    }
}

/// Reads a container's header (to learn whether it needs a key) and gives
/// back a reader that starts at the beginning again.
fn peek_header(input: &Path, reader: ReaderKind) -> Result<(Box<dyn Read + Send>, Peeked), Error> {
    let mut src = Source::new(open_unseen(input)?, reader);
    // Enough to tell the formats apart, put back in front of the rest.
    let mut first = Vec::with_capacity(PEEK_LEN);
    (&mut src)
        .take(PEEK_LEN as u64)
        .read_to_end(&mut first)
        .map_err(|e| Error::io(e).with_path(input))?;
    let standard = Peeked::standard(&first);
    let again = io::Cursor::new(first).chain(src);
    if let Some(peeked) = standard {
        // A `.zst`, `.gz` or age file has no container header to show.
        return Ok((Box::new(again), peeked));
    }
    let (info, again) = container::peek(again).map_err(|e| e.with_path(input))?;
    Ok((Box::new(again), Peeked::Container(info)))
}

/// Bytes read to tell an input's format (and an age file's stanza).
pub(crate) const PEEK_LEN: usize = 32;

/// Adds the identities and, when the input needs it, the secret to
/// `builder`.
fn with_secret(
    builder: PipelineBuilder,
    keys: &KeyArgs,
    peeked: &Peeked,
    input: &Path,
) -> Result<PipelineBuilder, Error> {
    let why = match peeked {
        Peeked::Container(h) => match &h.encryption {
            Some(c) => format!("{} (encrypted with {})", input.display(), c.cipher),
            None => input.display().to_string(),
        },
        Peeked::Age { .. } => format!("{} (an age file under a passphrase)", input.display()),
        Peeked::Plain | Peeked::Unknown => input.display().to_string(),
    };
    keys.for_reading(builder, peeked, &why)
        .map_err(|e| e.with_path(input))
}

/// The first input: the one whose device `--storage-type auto` looks at
/// (`-`, no device, when there is none, e.g. with `--files-from`).
fn first(inputs: &[PathBuf]) -> &Path {
    inputs.first().map_or(Path::new("-"), PathBuf::as_path)
}

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// `--rm` of a single file: the input as it was before the run, to remove
/// once the output is committed (and, for process, verified).
pub(crate) struct Removal(std::fs::Metadata);

impl Removal {
    /// `None` without `--rm`; refuses it (exit 2) where there is nothing
    /// the removal could safely follow: stdout as the output, stdin or
    /// anything but a regular file as the input.
    fn check(out: &OutputArgs, input: &Path, dest: &Dest) -> Result<Option<Removal>, Error> {
        if !out.rm {
            return Ok(None);
        }
        if is_stdio(input) || matches!(dest, Dest::Stdout) {
            return Err(Error::usage(
                "--rm removes an input file once its output file is written; \
                 it does not go with stdin, stdout or -c",
            ));
        }
        Removal::of(input).map(Some)
    }

    /// The input's metadata now (links followed), if it is a regular file.
    pub(crate) fn of(input: &Path) -> Result<Removal, Error> {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(e).with_path(input))?;
        if !meta.is_file() {
            return Err(Error::usage("--rm removes regular files only").with_path(input));
        }
        Ok(Removal(meta))
    }

    /// Removes the input if it is still the file that was read.
    pub(crate) fn remove(self, input: &Path, v: Verbosity) -> Result<(), Error> {
        output::remove_input(input, &self.0)?;
        if v.verbose {
            eprintln!("syncpipe: {}: removed", input.display());
        }
        Ok(())
    }
}

fn process_dest(input: &Path, out: &OutputArgs, ext: &str) -> Result<Dest, Error> {
    pick_dest(input, out, || Ok(with_extension(input, ext)))
}

/// `INPUT.EXT`.
pub(crate) fn with_extension(input: &Path, ext: &str) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// The extension of what `pipeline` writes: its format's, and for an age
/// file holding a `.zst` or `.gz`, both (`x.zst.age`, as
/// `zstd -c x | age > x.zst.age` would be named).
pub(crate) fn output_extension(pipeline: &Pipeline) -> String {
    let format = pipeline.config().format;
    let inner = pipeline.stage_names().first().and_then(|s| {
        let codec = s.split(':').next()?;
        [Format::Zst, Format::Gz]
            .into_iter()
            .find(|f| f.codec() == Some(codec))
    });
    match (format, inner) {
        (Format::Age, Some(f)) => format!("{}.age", f.extension()),
        _ => format.extension().to_string(),
    }
}

/// Whether `p` ends in the extension of a format syncpipe writes or
/// reads (what a walk for restore takes, and a walk for process skips).
pub(crate) fn has_known_extension(p: &Path) -> bool {
    restored_name(p).is_some()
}

/// The tar short forms restore maps back to `.tar`, as `gzip -d` and
/// `zstd -d` do: `x.tgz` restores to `x.tar`.
const TAR_SHORT_FORMS: [&str; 2] = ["tgz", "tzst"];

/// The default name of what restoring `p` writes: `p` without its
/// `.spipe`, `.zst` or `.gz` (`.tgz` and `.tzst` become `.tar`); `None`
/// for any other name.
pub(crate) fn restored_name(p: &Path) -> Option<PathBuf> {
    let ext = p.extension()?;
    if ext == Format::Age.extension() {
        // Restore takes off a `.zst` or `.gz` inside an age file too.
        let inner = p.with_extension("");
        return Some(match restored_name(&inner) {
            Some(name)
                if inner
                    .extension()
                    .is_some_and(|e| e != "spipe" && e != "age") =>
            {
                name
            }
            _ => inner,
        });
    }
    if TAR_SHORT_FORMS.iter().any(|t| ext == *t) {
        Some(p.with_extension("tar"))
    } else if Format::ALL.iter().any(|f| ext == f.extension()) {
        Some(p.with_extension(""))
    } else {
        None
    }
}

fn restore_dest(input: &Path, out: &OutputArgs) -> Result<Dest, Error> {
    pick_dest(input, out, || {
        restored_name(input).ok_or_else(|| {
            Error::usage(format!(
                "{}: cannot infer the output name (no .{} suffix); use -o FILE or -c",
                input.display(),
                KNOWN_SUFFIXES
            ))
        })
    })
}

/// The suffixes restore strips, for messages.
pub(crate) const KNOWN_SUFFIXES: &str = "spipe, .zst, .gz, .tgz, .tzst or .age";

fn pick_dest(
    input: &Path,
    out: &OutputArgs,
    default: impl FnOnce() -> Result<PathBuf, Error>,
) -> Result<Dest, Error> {
    // Input == output is refused by the library (`OutputFile::create`),
    // before anything is opened for writing.
    Ok(match &out.output {
        Some(p) if is_stdio(p) => Dest::Stdout,
        Some(p) => Dest::Path(p.clone()),
        None if out.stdout || is_stdio(input) => Dest::Stdout,
        None => Dest::Path(default()?),
    })
}

/// Removes what killed runs left in the folder a single run writes into
/// (`output::remove_stale_temps`; a batch does it through its options).
/// Not for stdout, nor for an existing device, FIFO or descriptor link
/// (`/dev/null`, `/dev/stdout`): written in place, it has no temp file.
fn sweep_stale_temps(dest: &Dest) {
    let Dest::Path(p) = dest else { return };
    // Followed: `/dev/stdout` is what it points to.
    if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) {
        return;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Best effort: creating the output reports a folder it cannot use.
    let _ = output::remove_stale_temps(dir);
}

/// Opens a container to peek at its header without moving its access time
/// (`O_NOATIME`, where the file is ours): restore gives the restored file
/// the container's times, and the look before the run must not make that
/// time now. Anything else opens as [`open_input`] does.
pub(crate) fn open_unseen(p: &Path) -> Result<File, Error> {
    #[cfg(target_os = "linux")]
    if !is_stdio(p) {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(p);
        if let Ok(f) = opened {
            // A directory gets open_input's error.
            if f.metadata().is_ok_and(|m| !m.is_dir()) {
                return Ok(f);
            }
        }
    }
    open_input(p)
}

/// Opens a named input, or stdin for `-`.
fn open_input(p: &Path) -> Result<File, Error> {
    if is_stdio(p) {
        return stdin();
    }
    output::open_input(p).map(|(f, _)| f)
}

/// stdin and stdout as owned `File`s (duplicated descriptors): the engine
/// moves its input and output into threads, so they must be `Send`, which
/// the locked std handles are not; and a plain `File` skips std's
/// line-buffering of stdout.
fn stdin() -> Result<File, Error> {
    crate::stdin_state::check()?;
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

fn stdout() -> Result<File, Error> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

fn dest_name(dest: &Dest) -> String {
    match dest {
        Dest::Stdout => "stdout".to_string(),
        Dest::Path(p) => p.display().to_string(),
    }
}

/// The final summary on stderr, as zstd's rule has it: shown when stderr
/// is a terminal (after the dashboard) or with `-v`, which adds the
/// details; off a terminal a pipeline's stages stay quiet. `-q` silences
/// it.
fn summary(v: Verbosity, verb: &str, input: &Path, dest: &Dest, r: &Report) {
    if !shows_summary(v) {
        return;
    }
    let to = dest_name(dest);
    // Compression ratio, original / container, in both directions.
    let container = r.bytes_in + r.bytes_out - r.original_bytes;
    let ratio = if container > 0 {
        r.original_bytes as f64 / container as f64
    } else {
        0.0
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "{}: {verb} {} => {} (ratio {ratio:.3}) in {:.2}s, {:.1} MB/s -> {to}",
        input.display(),
        size::format(r.bytes_in),
        size::format(r.bytes_out),
        r.elapsed.as_secs_f64(),
        r.mb_per_s(),
    );
    if v.verbose {
        let _ = writeln!(
            err,
            "  chunks {}, buffers reused {:.1}% ({} new), peak chunk memory {}, cpu permit waits {} ({:.3}s)",
            r.chunks,
            r.reuse_rate() * 100.0,
            r.buffers_allocated,
            size::format(r.peak_chunk_bytes),
            r.cpu_waits.0,
            r.cpu_waits.1.as_secs_f64(),
        );
        let t = r.thread_cpu;
        if t.total() > std::time::Duration::ZERO {
            let _ = writeln!(
                err,
                "  thread cpu: reader {:.3}s, hasher {:.3}s, dispatcher {:.3}s, writer {:.3}s",
                t.reader.as_secs_f64(),
                t.hasher.as_secs_f64(),
                t.dispatcher.as_secs_f64(),
                t.writer.as_secs_f64(),
            );
        }
        if let (Some(k), Some(d)) = (r.checksum, r.digest_hex()) {
            let _ = writeln!(err, "  {} {d}", k.name());
        }
    }
}

/// What `verify` prints for an input that checked out: its bytes, in how
/// many chunks (or units decoded in parallel) or in one sequential stream
/// (a `.zst` or `.gz` whose units cannot be found without decoding), and
/// the whole-file digest where there is one.
pub(crate) fn verified_line(input: &Path, r: &Report) -> String {
    let digest = match (r.checksum, r.digest_hex()) {
        (Some(k), Some(d)) => format!(", {} {d}", k.name()),
        _ => String::new(),
    };
    let how = if r.chunks == 0 && r.bytes_out > 0 {
        "one sequential stream".to_string()
    } else {
        format!("{} chunks", r.chunks)
    };
    format!(
        "{}: ok ({} bytes in {how}{digest})",
        input.display(),
        r.bytes_out
    )
}

/// Whether the final summary (of a file, of a batch) is printed: not with
/// `-q`; with `-v`; otherwise only on a terminal.
pub(crate) fn shows_summary(v: Verbosity) -> bool {
    !v.quiet && (v.verbose || io::stderr().is_terminal())
}

fn info(input: &Path, json: bool) -> Result<(), Error> {
    let mut src = io::BufReader::new(open_input(input)?);
    // A `.zst` or `.gz` has no header to show: said plainly, not as bad
    // magic.
    let first = src.fill_buf().map_err(|e| Error::io(e).with_path(input))?;
    let lister = match Format::detect(first) {
        Some(Format::Zst) => Some("a zstd file, not a syncpipe container: restore and verify read it, `zstd -lv` lists its frames"),
        Some(Format::Gz) => Some("a gzip file, not a syncpipe container: restore and verify read it, `gzip -l` lists it"),
        Some(Format::Bgzf) => Some("a BGZF file, not a syncpipe container: restore and verify read it, `bgzip -r` indexes it"),
        Some(Format::Age) => Some("an age file, not a syncpipe container: restore and verify open it with -i or its passphrase, as `age -d` does"),
        _ => None,
    };
    if let Some(what) = lister {
        return Err(Error::integrity(what).with_path(input));
    }
    let i = syncpipe::inspect(src).map_err(|e| e.with_path(input))?;
    let h = &i.header;
    let container = i.payload_bytes;
    let ratio = if container > 0 {
        i.original_len as f64 / container as f64
    } else {
        0.0
    };
    // Written through a handle whose errors come back: `println!` panics
    // on a closed stdout (`syncpipe info x | head -n 1`); a broken pipe
    // becomes the quiet end in `run`.
    let mut out = io::stdout().lock();
    if json {
        writeln!(out, "{}", info_json(input, &i, ratio))?;
        out.flush()?;
        return Ok(());
    }
    writeln!(out, "file:           {}", input.display())?;
    writeln!(out, "format:         syncpipe container v{}", h.version)?;
    let stages = if h.stages.is_empty() {
        "none".to_string()
    } else {
        h.stages.join(",")
    };
    writeln!(out, "stages:         {stages}")?;
    writeln!(
        out,
        "checksum:       {}",
        h.checksum.map_or("none", |c| c.name())
    )?;
    if h.variable_chunks {
        writeln!(
            out,
            "chunk size:     up to {} (varies)",
            size::format(h.chunk_size as u64)
        )?;
    } else {
        writeln!(out, "chunk size:     {}", size::format(h.chunk_size as u64))?;
    }
    writeln!(out, "original size:  {} bytes", i.original_len)?;
    writeln!(
        out,
        "chunks:         {} ({} stored raw)",
        i.chunks, i.stored_raw
    )?;
    writeln!(out, "payload:        {container} bytes (ratio {ratio:.3})")?;
    if h.mode != 0 {
        writeln!(out, "mode:           {:04o}", h.mode)?;
    }
    if let Some(c) = &h.encryption {
        let key = match c.key {
            KeySource::RawKey => "raw 32-byte key".to_string(),
            KeySource::Passphrase(params) => format!("passphrase, argon2id {params}"),
        };
        writeln!(out, "encryption:     {} ({key})", c.cipher)?;
    }
    match (h.checksum, i.digest_hex()) {
        (Some(k), Some(_)) if h.is_encrypted() => writeln!(
            out,
            "digest:         {} (keyed; verify with the key shows it)",
            k.name()
        )?,
        (Some(k), Some(d)) => writeln!(out, "digest:         {} {d}", k.name())?,
        _ => {}
    }
    out.flush()?;
    Ok(())
}

/// `info --json`: the same facts as the text, one object (docs/json.md).
fn info_json(input: &Path, i: &syncpipe::container::Inspection, ratio: f64) -> serde_json::Value {
    let h = &i.header;
    let encryption = h.encryption.map(|c| {
        let (key, argon2) = match c.key {
            KeySource::RawKey => ("key_file", None),
            KeySource::Passphrase(p) => (
                "passphrase",
                Some(serde_json::json!({ "m_kib": p.m_kib, "t": p.t, "p": p.p })),
            ),
        };
        serde_json::json!({ "cipher": c.cipher.name(), "key": key, "argon2": argon2 })
    });
    serde_json::json!({
        "message_type": "info",
        "file": input.display().to_string(),
        "format_version": h.version,
        "stages": h.stages,
        "checksum": h.checksum.map(|c| c.name()),
        "chunk_size": h.chunk_size,
        "variable_chunks": h.variable_chunks,
        "original_bytes": i.original_len,
        "chunks": i.chunks,
        "stored_raw": i.stored_raw,
        "payload_bytes": i.payload_bytes,
        "ratio": ratio,
        "mode": (h.mode != 0).then_some(h.mode),
        "encryption": encryption,
        // An encrypted container's digest is keyed: meaningless without
        // the key (verify with the key prints it).
        "digest": if h.is_encrypted() { None } else { i.digest_hex() },
    })
}

/// `--chunk-size`: 4 KiB ..= 64 MiB.
pub fn parse_size(text: &str) -> Result<usize, String> {
    sized(text, MIN_CHUNK_SIZE, config::MAX_CHUNK_SIZE)
}

/// A size flag's value within `min ..= max`, as a `usize`.
fn sized(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let bytes = size::parse(text, min as u64, max as u64)?;
    usize::try_from(bytes).map_err(|_| format!("{text:?} is too large for this machine"))
}

/// The smallest `--chunk-size`: below it the framing (about 40 bytes a
/// record) and the per-chunk hand-offs outweigh the data, and a file
/// becomes millions of records (the library takes any size, for tests).
pub const MIN_CHUNK_SIZE: usize = 4 << 10;

/// A count flag's parser: 0 ..= `max`, anything else refused by clap
/// (exit 2) before any work starts.
pub fn count(max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(0..=max as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("65MiB").is_err());
        assert!(parse_size("4GiB").is_err());
        assert!(parse_size("abc").is_err());
    }
}
