//! Many files through one pipeline: the batch's threads, one file each.
//!
//! ```text
//!  caller ── jobs ──▶ scheduler.rs  (owns the queue and the slot count)
//!                        │ Work (bounded, one per free slot)
//!                        ▼
//!                     worker.rs  (one thread per slot)
//!                        │  small file: read whole, encode inline under one
//!                        │              CPU lease, write the temp file ──▶
//!                        │                  committer.rs: syncfs per group,
//!                        │                  renames ───────────────────┐
//!                        │  large file: one stream (`crate::stream`)   │
//!                        ▼ Done (bounded) ◀────────────────────────────┘
//!                     scheduler.rs: frees the slot, picks the next unit
//! ```
//!
//! Invariants (the why is in `docs/design.md`, "Many files"): every file
//! draws its permits from the pipeline's one [`Governor`](crate::Governor);
//! at most `slots` units are in flight, so memory and threads stay bounded
//! by `slots ×` one file's whatever the number of files; every unit is
//! reported exactly once (`Done::Unit`), every file handed to the committer
//! exactly once (`Done::Committed`). Shutdown is disconnection: the
//! scheduler drops the work sender when the queue is empty or the batch is
//! cancelled; files never started are reported as cancelled.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use parking_lot::Mutex;

mod committer;
mod policy;
mod scheduler;
mod worker;

use committer::{Committer, Pending};
use policy::{Class, Queue};
pub use policy::{Policy, FAIR_SMALLS_PER_LARGE, FAIR_SMALL_MAX};
use scheduler::Scheduler;
use worker::Worker;

use crate::error::{Error, ErrorKind, Result};
use crate::output;
use crate::pipeline::Pipeline;
use crate::report::Report;

/// Files smaller than this (256 KiB) take the small-file path: read whole,
/// every chunk encoded inline in one CPU job, no per-file threads or
/// channels. At this size the three threads and two channels of a streamed
/// run cost as much as the compression itself.
pub const SMALL_FILE_MAX: u64 = 256 << 10;
/// With `batch_small`, at most this many small files share one CPU job...
pub const BATCH_SMALL_FILES: usize = 64;
/// ...and at most this many bytes (1 MiB, one default chunk): enough to
/// amortise the job's hand-offs, small enough that one job does not hold a
/// CPU token much longer than a chunk does.
pub const BATCH_SMALL_BYTES: u64 = 1 << 20;

/// One file of a batch.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The file to read.
    pub input: PathBuf,
    /// Where its result goes (`None` for verify). Missing folders are
    /// created.
    pub output: Option<PathBuf>,
    /// The input's size when listed (decides the path and the scheduler's
    /// size class; the file is measured again when opened).
    pub size: u64,
}

/// Settings of a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Which file starts next. By default, [`Policy::Fair`].
    pub scheduler: Policy,
    /// Encode several small files per CPU job (one container each). By
    /// default, off. A pipeline that writes another format than
    /// [`crate::Format::Spipe`] streams every file, so this has no effect
    /// there (the binary refuses `--batch-small` with `--format zst`).
    pub batch_small: bool,
    /// Overwrite existing outputs. By default, off: an existing output is
    /// that file's failure.
    pub force: bool,
    /// Skip files whose output already exists (outputs appear only when
    /// complete, so an existing one is a finished one). By default, off.
    pub skip_existing: bool,
    /// Files in flight at once; 0 = the larger of twice the CPU tokens and
    /// the IO tokens.
    pub files_in_flight: usize,
    /// The folder the outputs are confined to (`--output-dir`), if any.
    /// Every folder between it and an output is created by the batch or
    /// must be a real folder: a symbolic link there (planted to send
    /// outputs elsewhere) fails that file. By default, none.
    pub output_dir: Option<PathBuf>,
    /// Remove, before the batch's first output into each folder, the temp
    /// files that killed runs on this host left there
    /// ([`crate::output::remove_stale_temps`]). By default, off: a batch
    /// removes nothing it did not create.
    pub sweep_stale_temps: bool,
}

/// What happened to one file.
#[derive(Debug)]
pub enum Outcome {
    /// Done: the run's report.
    Done(Report),
    /// Not processed: the output exists and `skip_existing` is set.
    Skipped,
    /// Failed (the error names the path); the rest of the batch went on.
    Failed(Error),
}

/// One file's result.
#[derive(Debug)]
pub struct FileResult {
    /// The input.
    pub input: PathBuf,
    /// The output, if the operation writes one.
    pub output: Option<PathBuf>,
    /// What happened.
    pub outcome: Outcome,
    /// When it ended, from the start of the batch.
    pub finished: Duration,
}

/// The results of a batch, one per file, in completion order.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Per-file results.
    pub files: Vec<FileResult>,
    /// Wall time of the batch.
    pub elapsed: Duration,
}

impl BatchReport {
    /// Files done.
    pub fn done(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Done(_)))
    }

    /// Files skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped))
    }

    /// Files failed (cancelled ones included).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.files.iter().filter(|r| f(&r.outcome)).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Process,
    Restore,
    Verify,
}

/// What a worker is handed: one file to stream, or small files to encode
/// inline in one CPU job.
enum Unit {
    Stream(BatchJob),
    Small(Vec<BatchJob>),
}

impl Unit {
    fn jobs(self) -> Vec<BatchJob> {
        match self {
            Unit::Stream(j) => vec![j],
            Unit::Small(js) => js,
        }
    }
}

/// What every worker of one batch shares.
struct Ctx<'a> {
    op: Op,
    options: &'a BatchOptions,
    start: Instant,
    /// Folders that received small files; each is fsynced once at the end
    /// of the batch instead of once per file (see `committer.rs`).
    dirs: Mutex<HashSet<PathBuf>>,
    /// Output folders known to exist.
    made: Mutex<HashSet<PathBuf>>,
    /// Output folders already swept of stale temp files.
    swept: Mutex<HashSet<PathBuf>>,
}

/// The scheduler's message to a worker: a unit and its size class.
struct Work {
    class: Class,
    unit: Unit,
}

/// A small file's prepared output on its way to the committer thread.
type ToCommit = Pending<(BatchJob, Box<Report>)>;

/// What the workers and the committer tell the scheduler.
enum Done {
    /// A unit ended on a worker: the results of its files that ended
    /// there, and how many of its files went to the committer.
    Unit {
        class: Class,
        files: Vec<FileResult>,
        handed: usize,
    },
    /// The committer finished a group: one result per file handed to it.
    Committed { files: Vec<FileResult> },
}

impl Pipeline {
    /// Processes many files, each into its own container at its job's
    /// `output`, sharing this pipeline's governor; see the
    /// [`batch`](crate::batch) module docs (`src/batch/mod.rs`) and
    /// `docs/design.md` for the threads. A failing file does not stop the
    /// others.
    pub fn process_batch(&self, jobs: Vec<BatchJob>, options: &BatchOptions) -> BatchReport {
        self.run_batch(Op::Process, jobs, options)
    }

    /// Restores many containers, each to its job's `output`.
    pub fn restore_batch(&self, jobs: Vec<BatchJob>, options: &BatchOptions) -> BatchReport {
        self.run_batch(Op::Restore, jobs, options)
    }

    /// Verifies many containers (outputs are ignored).
    pub fn verify_batch(&self, jobs: Vec<BatchJob>, options: &BatchOptions) -> BatchReport {
        self.run_batch(Op::Verify, jobs, options)
    }

    fn run_batch(&self, op: Op, jobs: Vec<BatchJob>, options: &BatchOptions) -> BatchReport {
        let start = Instant::now();
        let cfg = self.config();
        let slots = match options.files_in_flight {
            0 => (2 * cfg.cpu_tokens).max(cfg.io_tokens),
            n => n,
        }
        .max(1);
        // The small-file path writes containers: other formats stream.
        let small_path = op == Op::Process && cfg.format == crate::Format::Spipe;
        let queue = units(small_path, jobs, options);
        let ctx = Ctx {
            op,
            options,
            start,
            dirs: Mutex::new(HashSet::new()),
            made: Mutex::new(HashSet::new()),
            swept: Mutex::new(HashSet::new()),
        };
        let ctx = &ctx;
        self.enter();
        // Every role's channels and state, built before any thread starts.
        let (work_tx, work_rx) = bounded::<Work>(slots);
        // The scheduler only ever blocks receiving from `done`, so the
        // senders (workers, committer) wait at most for it to drain.
        let (done_tx, done_rx) = bounded::<Done>(slots + 1);
        let (commit_tx, commit_rx) = bounded::<ToCommit>(committer::QUEUE);
        let committer = Committer {
            pipeline: self,
            ctx,
            queue: commit_rx,
            done: done_tx.clone(),
        };
        let files = thread::scope(|s| {
            // The committer ends when the last worker (the last sender of
            // its queue) does. If it cannot start, the workers commit their
            // own files.
            let commit_tx = thread::Builder::new()
                .name("syncpipe-commit".into())
                .spawn_scoped(s, move || committer.run())
                .ok()
                .map(|_| commit_tx);
            let mut spawned = 0;
            let mut spawn_error = None;
            for i in 0..slots {
                let worker = Worker {
                    pipeline: self,
                    ctx,
                    work: work_rx.clone(),
                    done: done_tx.clone(),
                    commit: commit_tx.clone(),
                };
                let h = thread::Builder::new()
                    .name(format!("syncpipe-batch-{i}"))
                    .spawn_scoped(s, move || worker.run());
                match h {
                    Ok(_) => spawned += 1,
                    Err(e) => spawn_error = Some(e),
                }
            }
            drop((work_rx, done_tx, commit_tx));
            if spawned == 0 {
                let err = spawn_error.map(Error::io);
                return failed_all(queue, start, || match &err {
                    Some(e) => Error::new(e.kind(), format!("starting a batch worker: {e}")),
                    None => Error::cancelled(),
                });
            }
            let scheduler = Scheduler {
                cancel: self.cancel_token(),
                queue,
                slots: spawned,
                start,
                work: work_tx,
                done: done_rx,
            };
            let scheduler = thread::Builder::new()
                .name("syncpipe-scheduler".into())
                .spawn_scoped(s, move || scheduler.run());
            match scheduler {
                // The scheduler catches nothing, but it runs no stage code
                // either; a panic there would be a bug in scheduler.rs.
                Ok(h) => h.join().unwrap_or_else(|_| {
                    vec![FileResult {
                        input: PathBuf::new(),
                        output: None,
                        outcome: Outcome::Failed(Error::new(
                            ErrorKind::Panic,
                            "the batch scheduler panicked",
                        )),
                        finished: start.elapsed(),
                    }]
                }),
                // The queue went with the closure; the workers end as its
                // sender is dropped. Nothing was started.
                Err(e) => vec![FileResult {
                    input: PathBuf::new(),
                    output: None,
                    outcome: Outcome::Failed(
                        Error::io(e).with_stage("starting the batch scheduler"),
                    ),
                    finished: start.elapsed(),
                }],
            }
        });
        for dir in ctx.dirs.lock().drain() {
            output::sync_dir(&dir);
        }
        self.leave();
        // Every file is done now; the last snapshot a file's end took may
        // have been taken while others still held permits, and a batch of
        // skipped or failed files took none.
        self.failed();
        BatchReport {
            files,
            elapsed: start.elapsed(),
        }
    }
}

/// A file's result, timed now.
fn ended(ctx: &Ctx<'_>, job: BatchJob, outcome: Outcome) -> FileResult {
    FileResult {
        input: job.input,
        output: job.output,
        outcome,
        finished: ctx.start.elapsed(),
    }
}

/// Runs one file's work, turning a panic into that file's failure.
fn caught(input: &Path, f: impl FnOnce() -> Result<Option<Report>>) -> Outcome {
    match caught_value(input, f) {
        Ok(Some(r)) => Outcome::Done(r),
        Ok(None) => Outcome::Skipped,
        Err(e) => Outcome::Failed(e),
    }
}

fn caught_value<T>(input: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.with_path(input)),
        Err(_) => Err(Error::new(ErrorKind::Panic, "panicked").with_path(input)),
    }
}

/// Groups the jobs into units and queues them.
fn units(small_path: bool, jobs: Vec<BatchJob>, options: &BatchOptions) -> Queue<Unit> {
    let mut queue = Queue::new(options.scheduler);
    let mut group: Vec<BatchJob> = Vec::new();
    let mut group_bytes = 0u64;
    for job in jobs {
        let small = small_path && job.size < SMALL_FILE_MAX;
        if !small {
            queue.push(job.size, Unit::Stream(job));
        } else if !options.batch_small {
            queue.push(job.size, Unit::Small(vec![job]));
        } else {
            if !group.is_empty()
                && (group.len() == BATCH_SMALL_FILES || group_bytes + job.size > BATCH_SMALL_BYTES)
            {
                queue.push(group_bytes, Unit::Small(std::mem::take(&mut group)));
                group_bytes = 0;
            }
            group_bytes += job.size;
            group.push(job);
        }
    }
    if !group.is_empty() {
        queue.push(group_bytes, Unit::Small(group));
    }
    queue
}

fn failed_unit(unit: Unit, start: Instant, err: impl Fn() -> Error) -> Vec<FileResult> {
    unit.jobs()
        .into_iter()
        .map(|job| FileResult {
            outcome: Outcome::Failed(err().with_path(&job.input)),
            input: job.input,
            output: job.output,
            finished: start.elapsed(),
        })
        .collect()
}

fn failed_all(mut queue: Queue<Unit>, start: Instant, err: impl Fn() -> Error) -> Vec<FileResult> {
    queue
        .drain()
        .into_iter()
        .flat_map(|u| failed_unit(u, start, &err))
        .collect()
}
