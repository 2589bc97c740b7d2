//! The async baseline: syncpipe's `process` written the way a
//! tokio user would write it, to compare against the sync engine (threads,
//! crossbeam channels, a Condvar governor, rayon) on the same inputs.
//!
//! Same container bytes: the per-chunk work and the framing come from the
//! library's [`syncpipe::Encoder`]; only the engine around it differs. For
//! an unencrypted stage list the output is byte for byte what
//! `syncpipe process` writes with the same chunk size
//! (`cli/tests/async_baseline.rs` checks it).
//!
//! ```text
//! reader task ──mpsc(depth)──▶ dispatcher ──spawn_blocking(encode)──▶ mpsc ──▶ writer task
//!  (spawn_blocking reads,        (CPU permit,                         (reorder buffer by index,
//!   IO permit, whole-file hash)   window permit)                       IO permit, tokio::fs)
//! ```
//!
//! Run: `cargo run --release --example async_pipeline -- big.log -o big.spipe
//! -s zstd:3,blake3 --json`. `benches/sync_vs_async.sh` runs it beside the
//! sync engine and the peers; `docs/learn/12-sync-vs-async.md` explains
//! the mapping.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use syncpipe::metrics::{Family, Latency, Snapshot};
use syncpipe::output::{self, OutputFile};
use syncpipe::stages::{parse_stages, Hasher};
use syncpipe::tuner::SizeChange;
use syncpipe::{CancelToken, Encoder, Error, ErrorKind, Pipeline, Report, Secret, SpawnStyle};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// The CLI's size parser itself, so `--chunk-size` reads the same here.
#[allow(dead_code)] // the formatter half is the CLI's
#[path = "../cli/src/size.rs"]
mod size;

// The JSON lines of `syncpipe process --json`, from the very same code, so
// the two backends cannot drift apart; only `backend` is changed.
#[allow(dead_code)]
#[path = "../cli/src/json_lines.rs"]
mod json_lines;

/// Flags mirror `syncpipe process` (one input file).
#[derive(Parser, Debug)]
#[command(
    name = "async_pipeline",
    about = "syncpipe process on tokio (the async baseline)"
)]
struct Args {
    /// The file to process.
    input: PathBuf,
    /// The container to write (through a temp file, renamed on success).
    #[arg(short, long)]
    output: PathBuf,
    /// Stage list, as `syncpipe process -s`.
    #[arg(short, long, default_value = "zstd:3,blake3")]
    stages: String,
    /// Bytes per chunk (plain bytes, or with a KiB/MiB suffix).
    #[arg(long, value_parser = parse_size)]
    chunk_size: Option<usize>,
    /// Chunks encoding at once (the CPU semaphore). [default: as syncpipe]
    #[arg(long)]
    cpu_tokens: Option<usize>,
    /// Reads and writes at once (the IO semaphore). [default: as syncpipe]
    #[arg(long)]
    io_tokens: Option<usize>,
    /// Capacity of the reader's channel. [default: as syncpipe]
    #[arg(long)]
    channel_depth: Option<usize>,
    /// Worker threads of the tokio runtime. [default: as syncpipe's -T]
    #[arg(short = 'T', long)]
    threads: Option<usize>,
    /// A raw 32-byte key file, as `syncpipe process --key-file`.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Replace an existing output.
    #[arg(short, long)]
    force: bool,
    /// JSON lines on stdout (file_done, summary), schema of docs/json.md.
    #[arg(long)]
    json: bool,
}

/// `--chunk-size`: 1 byte to 64 MiB (the format's largest chunk).
fn parse_size(text: &str) -> Result<usize, String> {
    let max = syncpipe::limits::MAX_CHUNK_SIZE;
    size::parse(text, 1, max as u64).map(|n| n as usize)
}

/// One chunk as read.
struct Chunk {
    index: u64,
    last: bool,
    data: Vec<u8>,
}

/// One chunk encoded, on its way to the writer. The window permit travels
/// with it and is dropped once the record is written: that, not the CPU
/// permit, bounds the chunks in memory (see `Governor::window`).
struct Done {
    index: u64,
    record: syncpipe::Result<Vec<u8>>,
    cpu: Duration,
    _window: OwnedSemaphorePermit,
}

/// What the reader saw.
struct ReadSummary {
    chunks: u64,
    bytes: u64,
    digest: Option<[u8; 32]>,
}

/// The two token pools of syncpipe's governor, as tokio semaphores, and
/// the in-flight window.
struct Governor {
    cpu: Arc<Semaphore>,
    io: Arc<Semaphore>,
    /// Chunks read but not yet written: without it a slow chunk 0 would
    /// let every later chunk pile up in the writer's reorder buffer. The
    /// sync engine gets the same bound from its channels: `jobs` (depth)
    /// plus the ordered `slots` (depth + CPU tokens), hence
    /// `cpu_tokens + 2 × depth` permits here.
    window: Arc<Semaphore>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let json = args.json;
    match run(args, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async_pipeline: {e}");
            let code = exit_code(&e);
            if json {
                // As `syncpipe --json`: an error line, then the summary is
                // always the last line.
                emit(json_lines::error("process", &e, code));
                let snap = Snapshot {
                    elapsed: started.elapsed(),
                    ..Snapshot::default()
                };
                let tuning = json_lines::Tuning {
                    storage_type: "unknown",
                    ..json_lines::Tuning::default()
                };
                emit(json_lines::summary(
                    "process",
                    &snap,
                    0,
                    (1, 0),
                    &tuning,
                    code,
                    rss_peak(),
                ));
            }
            ExitCode::from(code as u8)
        }
    }
}

/// The exit codes of the README's table.
fn exit_code(e: &Error) -> i32 {
    match e.kind() {
        ErrorKind::Usage => 2,
        ErrorKind::Integrity => 3,
        ErrorKind::WrongKey => 4,
        ErrorKind::Cancelled => 130,
        _ => 1,
    }
}

fn emit(mut line: serde_json::Value) {
    line["backend"] = "async".into();
    println!("{line}");
}

fn run(args: Args, started: Instant) -> syncpipe::Result<()> {
    // The library resolves every default exactly as `syncpipe process`
    // does; the sync engine's own threads are never started here
    // (`SpawnStyle::Threads` builds no rayon pool).
    let cancel = CancelToken::new();
    let mut builder = Pipeline::builder()
        .stages(parse_stages(&args.stages)?)
        .spawn_style(SpawnStyle::Threads)
        .cancel(cancel.clone());
    if let Some(n) = args.chunk_size {
        builder = builder.chunk_size(n);
    }
    if let Some(n) = args.cpu_tokens {
        builder = builder.cpu_tokens(n);
    }
    if let Some(n) = args.io_tokens {
        builder = builder.io_tokens(n);
    }
    if let Some(n) = args.channel_depth {
        builder = builder.channel_depth(n);
    }
    if let Some(n) = args.threads {
        builder = builder.threads(n);
    }
    if let Some(path) = &args.key_file {
        builder = builder.secret(Secret::from_key_file(path)?);
    }
    let pipeline = builder.build()?;
    let cfg = pipeline.config().clone();

    let (file, meta) = output::open_input(&args.input)?;
    let out = OutputFile::create(&args.input, &args.output, args.force)?;
    let mode = meta.permissions().mode() & 0o777;
    let encoder = Arc::new(pipeline.encoder(Some(meta.len()), mode)?);

    // Worker threads: the -T of the sync engine. Blocking threads: the CPU
    // jobs (at most cpu_tokens at once, by the semaphore) plus reads and
    // tokio::fs writes (at most io_tokens), plus slack for the odd
    // metadata call; tokio's default of 512 would hide a missing bound.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .max_blocking_threads(cfg.cpu_tokens + cfg.io_tokens + 2)
        .thread_name("async-pipeline")
        .enable_all()
        .build()
        .map_err(|e| Error::io(e).with_stage("starting the tokio runtime"))?;
    let gov = Governor {
        cpu: Arc::new(Semaphore::new(cfg.cpu_tokens)),
        io: Arc::new(Semaphore::new(cfg.io_tokens)),
        window: Arc::new(Semaphore::new(cfg.cpu_tokens + 2 * cfg.channel_depth)),
    };
    let result = runtime.block_on(engine(
        &encoder,
        &gov,
        file,
        &out,
        cfg.channel_depth,
        cancel.clone(),
    ));
    let (summary, bytes_out, latency) = result.map_err(|e| e.with_path(&args.input))?;
    // fsync, mode, rename, fsync of the folder: the library's commit (a
    // few blocking calls once per file; the runtime is done by now).
    out.commit(Some(mode))?;

    if args.json {
        let elapsed = started.elapsed();
        let report = Report {
            bytes_in: summary.bytes,
            bytes_out,
            original_bytes: summary.bytes,
            chunks: summary.chunks,
            elapsed,
            checksum: cfg.checksum,
            digest: summary.digest,
            chunk_size: encoder.chunk_size(),
            chunk_method: cfg.chunk_method,
            // One size from the first chunk on, as a fixed run reports it.
            chunk_sizes: vec![SizeChange {
                from_chunk: 0,
                size: encoder.chunk_size(),
                mean_cost: Duration::ZERO,
            }],
            mode: Some(mode),
            ..Report::default()
        };
        emit(json_lines::file_done(
            "process",
            &args.input,
            &args.output.display().to_string(),
            &report,
        ));
        let snap = Snapshot {
            elapsed,
            files: 1,
            chunks: summary.chunks,
            bytes_read: summary.bytes,
            bytes_written: bytes_out,
            bytes_in: summary.bytes,
            bytes_out,
            cpu_permits: (gov.cpu.available_permits() as u64, cfg.cpu_tokens as u64),
            io_permits: (gov.io.available_permits() as u64, cfg.io_tokens as u64),
            latencies: vec![latency],
            ..Snapshot::default()
        };
        let tuning = json_lines::Tuning {
            threads: cfg.threads,
            cpu_tokens: cfg.cpu_tokens,
            io_tokens: cfg.io_tokens,
            channel_depth: cfg.channel_depth,
            chunk_size: encoder.chunk_size(),
            stages: Some(args.stages.clone()),
            storage_type: "unknown",
        };
        emit(json_lines::summary(
            "process",
            &snap,
            summary.bytes,
            (0, 0),
            &tuning,
            0,
            rss_peak(),
        ));
    }
    Ok(())
}

/// The whole run on the runtime: three tasks and the CPU jobs. Returns what
/// the reader saw, the container's size and the chunk CPU histogram.
async fn engine(
    encoder: &Arc<Encoder>,
    gov: &Governor,
    file: File,
    out: &OutputFile,
    depth: usize,
    cancel: CancelToken,
) -> syncpipe::Result<(ReadSummary, u64, Latency)> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Chunk>(depth);
    // Never full: the window permits bound what is in flight to its size.
    let (done_tx, done_rx) = mpsc::channel::<Done>(gov.window.available_permits());

    let reader = tokio::spawn(read_chunks(
        file,
        encoder.chunk_size(),
        encoder.hasher(),
        Arc::clone(&gov.io),
        jobs_tx,
    ));
    let dispatcher = tokio::spawn(dispatch(
        jobs_rx,
        Arc::clone(encoder),
        Arc::clone(&gov.cpu),
        Arc::clone(&gov.window),
        done_tx,
    ));
    let std_file = out
        .as_file()
        .try_clone()
        .map_err(|e| Error::io(e).with_stage("opening the output"))?;
    let written = write_records(
        tokio::fs::File::from_std(std_file),
        encoder,
        Arc::clone(&gov.io),
        done_rx,
        reader,
    )
    .await;
    if written.is_err() {
        // Stops stages that are mid-chunk (the Encoder watches the token);
        // the closed channels stop the reader and the dispatcher.
        cancel.cancel();
    }
    // The dispatcher ends once the reader's channel closes; its own errors
    // are only "the writer is gone", already reported by `written`.
    let _ = dispatcher.await;
    written
}

/// The reader: one chunk of look-ahead (so the last chunk is known to be
/// last when it is sent, as in the sync reader), the whole-file digest in
/// order, and an IO permit around each read.
///
/// Reads run on the blocking pool with a plain `std::fs::File` moved in
/// and out: that is what `tokio::fs::File` does inside too (files have no
/// readiness API), but it would copy every chunk through its own buffer
/// and cap each read. The hash of a chunk goes into the blocking call that
/// reads the next one: hashing a MiB takes hundreds of microseconds, too
/// long to run on a worker thread between two awaits.
async fn read_chunks(
    file: File,
    chunk_size: usize,
    hasher: Option<Hasher>,
    io: Arc<Semaphore>,
    tx: mpsc::Sender<Chunk>,
) -> syncpipe::Result<ReadSummary> {
    let (mut chunks, mut bytes) = (0u64, 0u64);
    let mut step = Step {
        file,
        hasher,
        cur: Vec::new(),
        next: None,
    };
    step = step.run(&io, true, chunk_size).await?;
    let mut cur = step.next.take().unwrap_or_default();
    loop {
        // A short chunk can only be the end of the input.
        let full = cur.len() == chunk_size;
        step.cur = cur;
        step = step.run(&io, full, chunk_size).await?;
        cur = std::mem::take(&mut step.cur);
        let next = step.next.take().filter(|n| !n.is_empty());
        let last = next.is_none();
        bytes += cur.len() as u64;
        let chunk = Chunk {
            index: chunks,
            last,
            data: cur,
        };
        chunks += 1;
        // Backpressure: waits (without holding a thread) while the channel
        // is full.
        tx.send(chunk).await.map_err(|_| Error::cancelled())?;
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Ok(ReadSummary {
        chunks,
        bytes,
        digest: step.hasher.map(Hasher::finalize),
    })
}

/// What one blocking call of the reader owns: moved to the blocking pool
/// and back, so no lock is needed around the file or the hasher.
struct Step {
    file: File,
    hasher: Option<Hasher>,
    /// The chunk to hash (empty for none).
    cur: Vec<u8>,
    /// The chunk read, when asked for.
    next: Option<Vec<u8>>,
}

impl Step {
    /// Hashes `cur`, then reads the next chunk if `read`, on the blocking
    /// pool, under an IO permit when it reads.
    async fn run(self, io: &Semaphore, read: bool, chunk_size: usize) -> syncpipe::Result<Step> {
        let _permit = match read {
            true => Some(io.acquire().await.map_err(|_| Error::cancelled())?),
            false => None,
        };
        tokio::task::spawn_blocking(move || {
            let mut s = self;
            if let Some(h) = s.hasher.as_mut() {
                h.update(&s.cur);
            }
            if read {
                let mut buf = vec![0u8; chunk_size];
                let n = syncpipe::format::read_full(&mut s.file, &mut buf)?;
                buf.truncate(n);
                s.next = Some(buf);
            }
            Ok(s)
        })
        .await
        .map_err(|e| Error::io(std::io::Error::other(e)).with_stage("the reader"))?
    }
}

/// The dispatcher: a window permit and a CPU permit per chunk, then the
/// encoding on the blocking pool.
///
/// Why `spawn_blocking` and not `tokio::spawn` + `block_in_place`: a chunk
/// is milliseconds of pure CPU, and the runtime's workers must stay free to
/// poll the reader and the writer. `block_in_place` would turn the worker
/// it runs on into a blocking thread and start a replacement worker for
/// each call (a thread handoff per chunk), and it is refused on a
/// current-thread runtime. `spawn_blocking` sends the closure to a pool of
/// threads meant for it; the CPU semaphore, not the pool size, keeps the
/// jobs at `cpu_tokens`, as the sync governor keeps rayon's.
async fn dispatch(
    mut rx: mpsc::Receiver<Chunk>,
    encoder: Arc<Encoder>,
    cpu: Arc<Semaphore>,
    window: Arc<Semaphore>,
    tx: mpsc::Sender<Done>,
) -> syncpipe::Result<()> {
    while let Some(chunk) = rx.recv().await {
        if tx.is_closed() {
            // The writer failed and is gone: stop taking chunks, which
            // closes the reader's channel and stops the reader.
            break;
        }
        let held = Arc::clone(&window)
            .acquire_owned()
            .await
            .map_err(|_| Error::cancelled())?;
        let token = Arc::clone(&cpu)
            .acquire_owned()
            .await
            .map_err(|_| Error::cancelled())?;
        let (encoder, tx) = (Arc::clone(&encoder), tx.clone());
        tokio::task::spawn_blocking(move || {
            // The blocking thread's own CPU time, as the sync engine's
            // `chunk_cpu` is: comparable, and never more than the process's.
            let started = thread_cpu();
            let record = encoder.encode(chunk.index, chunk.last, chunk.data);
            let cpu = thread_cpu().saturating_sub(started);
            // The CPU token goes back before the hand-over, as a lease does
            // when the job ends.
            drop(token);
            // Never waits: the channel holds as many as the window allows.
            // An error means the writer is gone; the run is stopping.
            let _ = tx.blocking_send(Done {
                index: chunk.index,
                record,
                cpu,
                _window: held,
            });
        });
    }
    Ok(())
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`); zero
/// if the clock cannot be read.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.max(0) as u32)
}

/// The writer: header, records in index order (a reorder buffer keyed by
/// index, since the jobs finish in any order), trailer. The only owner of
/// the output, as in the sync engine.
async fn write_records(
    file: tokio::fs::File,
    encoder: &Encoder,
    io: Arc<Semaphore>,
    mut rx: mpsc::Receiver<Done>,
    reader: tokio::task::JoinHandle<syncpipe::Result<ReadSummary>>,
) -> syncpipe::Result<(ReadSummary, u64, Latency)> {
    let failed = |e: std::io::Error| Error::io(e).with_stage("writing the output");
    // Merges the small heads and CRCs with the payloads into few writes,
    // as the sync writer's BufWriter does.
    let mut out = tokio::io::BufWriter::with_capacity(256 << 10, file);
    let mut latency = Latency::new(Family::ChunkCpu, "");
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut written = encoder.header().len() as u64;
    out.write_all(encoder.header()).await.map_err(failed)?;
    while let Some(done) = rx.recv().await {
        pending.insert(done.index, done);
        while let Some(done) = pending.remove(&next) {
            let record = done.record?;
            latency.record(u64::try_from(done.cpu.as_nanos()).unwrap_or(u64::MAX));
            {
                let _permit = io.acquire().await.map_err(|_| Error::cancelled())?;
                out.write_all(&record).await.map_err(failed)?;
            }
            written += record.len() as u64;
            next += 1;
        }
    }
    // The channel closed: every job has ended. The reader's result says
    // whether it saw the whole input (or why not).
    let summary = reader
        .await
        .map_err(|e| Error::io(std::io::Error::other(e)).with_stage("the reader task"))??;
    if next != summary.chunks {
        return Err(Error::cancelled());
    }
    let trailer = encoder.trailer(summary.chunks, summary.bytes, summary.digest);
    let _permit = io.acquire().await.map_err(|_| Error::cancelled())?;
    out.write_all(&trailer).await.map_err(failed)?;
    out.flush().await.map_err(failed)?;
    written += trailer.len() as u64;
    Ok((summary, written, latency))
}

/// Peak resident set size (Linux `VmHWM`), as `syncpipe --json` reports it.
fn rss_peak() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
