//! Many files through one pipeline: the batch runner.
//!
//! ```text
//!  caller ── jobs ──▶ scheduler thread (owns the queue and the slot count)
//!                        │ work (bounded, one per free slot)
//!                        ▼
//!                     worker threads (one per slot)
//!                        │  small file: read whole, encode inline under
//!                        │              one CPU lease, write the temp file,
//!                        │              hand it on ──▶ committer thread:
//!                        │                  syncfs per group, renames ──┐
//!                        │  large file: the engine's reader → CPU → writer
//!                        │              threads and channels (depth per file)
//!                        ▼ done (bounded): class + results ◀────────────┘
//!                     scheduler thread: frees the slot, picks the next file
//! ```
//!
//! Two-level governance: every file of the batch draws its CPU and IO
//! permits from the pipeline's one [`Governor`](crate::Governor) (global
//! level), while each streamed file keeps its own bounded channels (local
//! level, depth per file). Why a scheduler thread: the next file is chosen
//! only when a slot frees, knowing what is running (the fair policy caps
//! large files in flight), and one thread owning the queue and the count
//! needs no lock. Why a bound on files in flight: each streamed file holds
//! up to its channel depth plus the CPU tokens in chunk buffers, three
//! threads and two descriptors, so the batch's memory and threads stay
//! bounded by `slots ×` one file's, whatever the number of files. Small
//! files spend most of their time in the kernel (open, create, fsync,
//! rename), so the default is the larger of twice the CPU tokens and the IO
//! tokens: enough files that the CPU stays busy while the others wait on
//! the disk (`benches/many_files.sh` measures it).
//!
//! Shutdown is disconnection: the scheduler drops the work sender when the
//! queue is empty (or the batch is cancelled), the workers' loops end. On a
//! cancel no new file starts; files in flight are cancelled through the
//! pipeline's token, and their temp files are removed; files never started
//! are reported as cancelled.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::committer::{self, Committed, Pending};
use crate::error::{Error, ErrorKind, Result};
use crate::output::{self, OutputFile};
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::scheduler::{Class, Policy, Queue, Running};

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
    /// default, off.
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

/// A small file on the inline path.
/// A small file after the write: its prepared temp file and report, or
/// `None` (skipped), or its failure.
type Written = Result<Option<(OutputFile, Box<Report>)>>;

enum Small {
    /// Read: its bytes and mode.
    Read(Vec<u8>, u32),
    /// Encoded: the container, the mode, the report.
    Encoded(Vec<u8>, u32, Box<Report>),
    /// Skipped or failed.
    Ended(Outcome),
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
    /// of the batch instead of once per file (see
    /// [`crate::committer`]).
    dirs: Mutex<HashSet<PathBuf>>,
    /// Output folders known to exist.
    made: Mutex<HashSet<PathBuf>>,
    /// Output folders already swept of stale temp files.
    swept: Mutex<HashSet<PathBuf>>,
}

/// A small file's prepared output on its way to the committer thread.
type ToCommit = Pending<(BatchJob, Box<Report>)>;

/// What the workers and the committer tell the scheduler.
enum Done {
    /// A unit ended on a worker: its class, the results of its files that
    /// ended there, and how many of its files went to the committer.
    Unit(Class, Vec<FileResult>, usize),
    /// The committer finished a group: one result per file handed to it.
    Committed(Vec<FileResult>),
}

impl Pipeline {
    /// Processes many files, each into its own container at its job's
    /// `output`, sharing this pipeline's governor; see the module docs of
    /// `batch.rs` (and `docs/design.md`) for the threads. A failing file
    /// does not stop the others.
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
        let queue = units(op, jobs, options);
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
        let files = thread::scope(|s| {
            let (work_tx, work_rx) = bounded::<(Class, Unit)>(slots);
            // The scheduler only ever blocks receiving from `done`, so the
            // senders (workers, committer) wait at most for it to drain.
            let (done_tx, done_rx) = bounded::<Done>(slots + 1);
            // The committer thread: it ends when the last worker (the last
            // sender of the queue) does. If it cannot start, the workers
            // commit their own files.
            let (commit_tx, commit_rx) = bounded::<ToCommit>(committer::QUEUE);
            let commit_tx = {
                let tx = done_tx.clone();
                thread::Builder::new()
                    .name("syncpipe-commit".into())
                    .spawn_scoped(s, move || self.commit_loop(ctx, &commit_rx, &tx))
                    .ok()
                    .map(|_| commit_tx)
            };
            let mut spawned = 0;
            let mut spawn_error = None;
            for i in 0..slots {
                let (rx, tx, commit) = (work_rx.clone(), done_tx.clone(), commit_tx.clone());
                let h = thread::Builder::new()
                    .name(format!("syncpipe-batch-{i}"))
                    .spawn_scoped(s, move || self.worker(ctx, rx, tx, commit));
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
            let scheduler = thread::Builder::new()
                .name("syncpipe-scheduler".into())
                .spawn_scoped(s, move || {
                    self.schedule(queue, spawned, start, work_tx, done_rx)
                });
            match scheduler {
                // The scheduler catches nothing, but it runs no stage code
                // either; a panic there would be a bug in this file.
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

    /// The scheduler thread: fills free slots in the policy's order, frees
    /// a slot on each completion, stops starting files on a cancel.
    fn schedule(
        &self,
        mut queue: Queue<Unit>,
        slots: usize,
        start: Instant,
        work: Sender<(Class, Unit)>,
        done: Receiver<Done>,
    ) -> Vec<FileResult> {
        let cancel = self.cancel_token();
        let mut results = Vec::new();
        // Files handed to the committer whose result has not come back:
        // the batch is over only when they have. Signed, because the two
        // messages race: a worker hands its files over *before* it reports
        // its unit (with the count), so the committer's results can arrive
        // first and take the count below zero for a moment. Once no unit
        // is in flight every count has arrived, and zero means all back.
        let (mut in_flight, mut large, mut committing) = (0usize, 0usize, 0i64);
        loop {
            while in_flight < slots && !cancel.is_cancelled() {
                let Some((class, unit)) = queue.next(Running { large, slots }) else {
                    break;
                };
                if let Err(e) = work.send((class, unit)) {
                    // Every worker is gone (cannot happen while they run:
                    // they catch panics). Report the unit, stop starting.
                    results.extend(failed_unit(e.into_inner().1, start, Error::cancelled));
                    break;
                }
                in_flight += 1;
                large += usize::from(class == Class::Large);
            }
            if in_flight == 0 && committing == 0 {
                break;
            }
            match done.recv() {
                Ok(Done::Unit(class, files, handed)) => {
                    in_flight -= 1;
                    large -= usize::from(class == Class::Large);
                    committing += handed as i64;
                    results.extend(files);
                }
                Ok(Done::Committed(files)) => {
                    // Exact: the committer reports every file once.
                    committing -= files.len() as i64;
                    results.extend(files);
                }
                Err(_) => break,
            }
        }
        // Disconnection ends the workers' loops.
        drop(work);
        for unit in queue.drain() {
            results.extend(failed_unit(unit, start, Error::cancelled));
        }
        results
    }

    /// A worker thread: runs the units it is handed, one at a time.
    fn worker(
        &self,
        ctx: &Ctx<'_>,
        work: Receiver<(Class, Unit)>,
        done: Sender<Done>,
        commit: Option<Sender<ToCommit>>,
    ) {
        for (class, unit) in work.iter() {
            // Per-file work catches its own panics; this outer catch keeps
            // the one-message-per-unit promise even if the bookkeeping
            // around it panicked, or the scheduler would wait forever.
            let names: Vec<(PathBuf, Option<PathBuf>)> = match &unit {
                Unit::Stream(j) => vec![(j.input.clone(), j.output.clone())],
                Unit::Small(js) => js
                    .iter()
                    .map(|j| (j.input.clone(), j.output.clone()))
                    .collect(),
            };
            let (results, handed) = panic::catch_unwind(AssertUnwindSafe(|| match unit {
                Unit::Stream(job) => (vec![self.one_file(ctx, job)], 0),
                Unit::Small(jobs) => self.small_files(ctx, jobs, commit.as_ref()),
            }))
            .unwrap_or_else(|_| {
                let failed = names
                    .into_iter()
                    .map(|(input, output)| FileResult {
                        outcome: Outcome::Failed(
                            Error::new(ErrorKind::Panic, "panicked").with_path(&input),
                        ),
                        input,
                        output,
                        finished: ctx.start.elapsed(),
                    })
                    .collect();
                // A panic before the hand-off sent nothing to the
                // committer (the hand-off is the last step that can fail).
                (failed, 0)
            });
            // Fails only if the scheduler is gone, which it is not while
            // a unit is in flight.
            let _ = done.send(Done::Unit(class, results, handed));
        }
    }

    /// One file through the streaming engine (or verify).
    fn one_file(&self, ctx: &Ctx<'_>, job: BatchJob) -> FileResult {
        let (op, options) = (ctx.op, ctx.options);
        let run = || -> Result<Option<Report>> {
            if self.cancel_token().is_cancelled() {
                return Err(Error::cancelled().with_path(&job.input));
            }
            let output = match (op, &job.output) {
                (Op::Verify, _) => None,
                (_, Some(o)) => {
                    if skip(ctx, o)? {
                        return Ok(None);
                    }
                    sweep(ctx, o);
                    Some(o.as_path())
                }
                (_, None) => return Err(Error::usage("no output path").with_path(&job.input)),
            };
            Ok(Some(match (op, output) {
                (Op::Process, Some(o)) => self.process_file(&job.input, o, options.force, true)?,
                (Op::Restore, Some(o)) => self.restore_file(&job.input, o, options.force, true)?,
                _ => {
                    let (file, _) = output::open_input(&job.input)?;
                    self.verify(file).map_err(|e| e.with_path(&job.input))?
                }
            }))
        };
        let outcome = caught(&job.input, run);
        ended(ctx, job, outcome)
    }

    /// The small-file path: read each file whole, encode them all under one
    /// CPU lease on this thread, then write each through its own temp file.
    ///
    /// Why on this thread and not on the rayon pool: the CPU lease is what
    /// bounds CPU work, and a hand-off to the pool and back would cost
    /// about as much as encoding a few KiB. Why one lease for the group:
    /// one permit wait per job instead of per file, the point of
    /// `batch_small`. The lease is dropped before the writes, so a slow
    /// disk never holds a CPU token.
    fn small_files(
        &self,
        ctx: &Ctx<'_>,
        jobs: Vec<BatchJob>,
        commit: Option<&Sender<ToCommit>>,
    ) -> (Vec<FileResult>, usize) {
        let cancel = self.cancel_token();
        // Read each file whole.
        let mut files: Vec<(BatchJob, Small)> = jobs
            .into_iter()
            .map(|job| {
                let state = match caught_value(&job.input, || self.read_small(ctx, &job)) {
                    Ok(Some((data, mode))) => Small::Read(data, mode),
                    Ok(None) => Small::Ended(Outcome::Skipped),
                    Err(e) => Small::Ended(Outcome::Failed(e)),
                };
                (job, state)
            })
            .collect();
        // The bytes read are chunk data alive in this batch: on the
        // governor's memory gauge until this unit is written.
        let held: usize = files
            .iter()
            .map(|(_, s)| match s {
                Small::Read(data, _) => data.len(),
                _ => 0,
            })
            .sum();
        self.governor().memory.add(held);
        // Encode them all under one CPU lease.
        if files.iter().any(|(_, s)| matches!(s, Small::Read(..))) {
            let lease = self.governor().cpu.acquire(cancel);
            for (job, state) in &mut files {
                let Small::Read(data, mode) = state else {
                    continue;
                };
                let mode = *mode;
                let encoded = match &lease {
                    Ok(_) => caught_value(&job.input, || self.encode_whole(data, mode)),
                    Err(_) => Err(Error::cancelled().with_path(&job.input)),
                };
                *state = match encoded {
                    Ok((bytes, report)) => Small::Encoded(bytes, mode, Box::new(report)),
                    Err(e) => Small::Ended(Outcome::Failed(e)),
                };
            }
        }
        // Write each into its own temp file (the lease is gone), then hand
        // the prepared ones to the committer thread (`committer.rs`).
        let written: Vec<(BatchJob, Written)> = files
            .into_iter()
            .map(|(job, state)| {
                let r = match state {
                    Small::Encoded(bytes, mode, report) => {
                        caught_value(&job.input, || self.write_small(ctx, &job, &bytes, mode))
                            .map(|out| Some((out, report)))
                    }
                    Small::Ended(Outcome::Failed(e)) => Err(e),
                    Small::Ended(_) => Ok(None),
                    Small::Read(..) => {
                        Err(Error::new(ErrorKind::Panic, "small file left unencoded")
                            .with_path(&job.input))
                    }
                };
                (job, r)
            })
            .collect();
        let cancelled = self.cancel_token().is_cancelled();
        let mut results = Vec::with_capacity(written.len());
        let mut inline = Vec::new();
        let mut handed = 0;
        for (job, r) in written {
            match r {
                Ok(Some((out, report))) if !cancelled => {
                    let pending = Pending {
                        out,
                        tag: (job, report),
                    };
                    match commit {
                        Some(tx) => match tx.send(pending) {
                            Ok(()) => handed += 1,
                            // The committer is gone (cannot happen while
                            // this worker holds a sender): commit here.
                            Err(crossbeam_channel::SendError(p)) => inline.push(p),
                        },
                        // No committer thread (it could not start): this
                        // worker commits its own files, as one group.
                        None => inline.push(pending),
                    }
                }
                // `out` drops here: the temp file is removed.
                Ok(Some(_)) => {
                    let e = Error::cancelled().with_path(&job.input);
                    results.push(ended(ctx, job, Outcome::Failed(e)));
                }
                Ok(None) => results.push(ended(ctx, job, Outcome::Skipped)),
                Err(e) => {
                    let e = e.with_path(&job.input);
                    results.push(ended(ctx, job, Outcome::Failed(e)));
                }
            }
        }
        if !inline.is_empty() {
            let (outs, tags): (Vec<_>, Vec<_>) = inline.into_iter().map(|p| (p.out, p.tag)).unzip();
            for ((job, report), r) in tags.into_iter().zip(committer::commit(outs)) {
                results.push(self.committed(ctx, job, report, r));
            }
        }
        self.governor().memory.sub(held);
        (results, handed)
    }

    /// The result of a committed (or failed to commit) small file.
    fn committed(
        &self,
        ctx: &Ctx<'_>,
        job: BatchJob,
        report: Box<Report>,
        r: Committed,
    ) -> FileResult {
        let outcome = match r {
            Ok(dir) => {
                if let Some(dir) = dir {
                    ctx.dirs.lock().insert(dir);
                }
                // The inline path skips the engine, so it reports the
                // finished file to the metrics here (the engine's runs do
                // it themselves). The output is in place by now; a
                // panicking observer still makes the file count as failed.
                match self.run_done(&report) {
                    Ok(()) => Outcome::Done(*report),
                    Err(e) => Outcome::Failed(e.with_path(&job.input)),
                }
            }
            Err(e) => Outcome::Failed(e.with_path(&job.input)),
        };
        ended(ctx, job, outcome)
    }

    /// The committer thread of a batch: commits what the workers hand it,
    /// group by group, and reports each group to the scheduler.
    fn commit_loop(&self, ctx: &Ctx<'_>, queue: &Receiver<ToCommit>, done: &Sender<Done>) {
        committer::serve(queue, self.cancel_token(), |group| {
            let files = group
                .into_iter()
                .map(|((job, report), r)| self.committed(ctx, job, report, r))
                .collect();
            // Fails only if the scheduler is gone, which it is not while
            // files are committing (it waits for them).
            let _ = done.send(Done::Committed(files));
        });
    }

    /// Reads a small input whole (under an IO lease), or `None` to skip it;
    /// refuses one that changed size since it was opened.
    fn read_small(&self, ctx: &Ctx<'_>, job: &BatchJob) -> Result<Option<(Vec<u8>, u32)>> {
        let path = &job.input;
        let out = job
            .output
            .as_deref()
            .ok_or_else(|| Error::usage("no output path").with_path(path))?;
        if skip(ctx, out)? {
            return Ok(None);
        }
        sweep(ctx, out);
        let (file, meta) = output::open_input(path)?;
        let mut data = Vec::with_capacity(meta.len() as usize);
        // A size-0 file may be a pseudo-file with content (`/proc`, `/sys`;
        // a batch takes regular files only): read to its end, unchecked.
        let stream = meta.len() == 0;
        {
            let _io = self.governor().io.acquire(self.cancel_token())?;
            let limit = if stream { u64::MAX } else { meta.len() + 1 };
            (&file)
                .take(limit)
                .read_to_end(&mut data)
                .map_err(|e| Error::io(e).with_path(path))?;
        }
        if !stream {
            output::check_unchanged(&file, &meta, data.len() as u64)
                .map_err(|e| e.with_path(path))?;
        }
        Ok(Some((data, output::mode_of(&meta))))
    }

    /// Writes one small container into its temp file and gives it its
    /// mode; `commit_group` makes it durable and renames it.
    fn write_small(
        &self,
        ctx: &Ctx<'_>,
        job: &BatchJob,
        bytes: &[u8],
        mode: u32,
    ) -> Result<OutputFile> {
        let dest = job
            .output
            .as_deref()
            .ok_or_else(|| Error::usage("no output path").with_path(&job.input))?;
        // Unnamed until the commit links it: one directory update per small
        // file instead of two (OutputFile::create_unnamed).
        let out = OutputFile::create_unnamed(&job.input, dest, ctx.options.force)?;
        {
            let _io = self.governor().io.acquire(self.cancel_token())?;
            let mut w = out.file();
            w.write_all(bytes)
                .map_err(|e| Error::io(e).with_path(dest))?;
        }
        out.prepare(Some(mode))?;
        Ok(out)
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

/// True if `output` exists and `skip_existing` is set; creates its folder
/// otherwise (below the output folder: level by level, refusing links).
fn skip(ctx: &Ctx<'_>, output: &Path) -> Result<bool> {
    if ctx.options.skip_existing && fs::symlink_metadata(output).is_ok() {
        return Ok(true);
    }
    let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(false);
    };
    if let Some(root) = ctx.options.output_dir.as_deref() {
        if let Ok(below) = dir.strip_prefix(root) {
            // Checked for every file, not once per folder: a link swapped
            // in for a folder mid-batch must be seen too (one lstat per
            // level, against the several system calls of each output).
            output::folder_below(root, below)?;
            return Ok(false);
        }
    }
    // Thousands of files share a few folders: create each once (two
    // system calls a file saved; the lock is never held across one).
    if !ctx.made.lock().contains(dir) {
        fs::create_dir_all(dir).map_err(|e| Error::io(e).with_path(dir))?;
        ctx.made.lock().insert(dir.to_path_buf());
    }
    Ok(false)
}

/// With `sweep_stale_temps`, removes the stale temp files of `output`'s
/// folder the first time the batch writes into it: once per folder, so a
/// batch of many files into one folder lists it once.
fn sweep(ctx: &Ctx<'_>, output: &Path) {
    if !ctx.options.sweep_stale_temps {
        return;
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Not listed under the lock: other workers' first folders go on.
    let first = ctx.swept.lock().insert(dir.to_path_buf());
    if first {
        // Best effort, as creating the output reports an unusable folder.
        let _ = output::remove_stale_temps(dir);
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
fn units(op: Op, jobs: Vec<BatchJob>, options: &BatchOptions) -> Queue<Unit> {
    let mut queue = Queue::new(options.scheduler);
    let mut group: Vec<BatchJob> = Vec::new();
    let mut group_bytes = 0u64;
    for job in jobs {
        let small = op == Op::Process && job.size < SMALL_FILE_MAX;
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
