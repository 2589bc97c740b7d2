//! A worker thread of a batch: runs the units the scheduler hands it, one
//! at a time, and reports each back with exactly one `Done::Unit`. A large
//! file goes through the streaming engine (its own reader, dispatcher and
//! writer threads, depth per file); small files are read whole, encoded
//! inline under one CPU lease, written to temp files and handed to the
//! committer thread.

use std::fs;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use super::committer::{self, Pending};
use super::{
    caught, caught_value, ended, BatchJob, Ctx, Done, FileResult, Op, Outcome, ToCommit, Unit, Work,
};
use crate::error::{Error, ErrorKind, Result};
use crate::output::{self, OutputFile};
use crate::pipeline::Pipeline;
use crate::report::Report;

/// A small file after the write: its prepared temp file and report, or
/// `None` (skipped), or its failure.
type Written = Result<Option<(OutputFile, Box<Report>)>>;

enum Small {
    /// Read: its bytes, and its metadata from before the read (mode, times).
    Read(Vec<u8>, Box<fs::Metadata>),
    /// Encoded: the container, the input's metadata, the report.
    Encoded(Vec<u8>, Box<fs::Metadata>, Box<Report>),
    /// Skipped or failed.
    Ended(Outcome),
}

/// A worker's state, built before the batch's threads start.
pub(super) struct Worker<'p, 'c> {
    pub pipeline: &'p Pipeline,
    pub ctx: &'c Ctx<'c>,
    /// From the scheduler.
    pub work: Receiver<Work>,
    /// To the scheduler.
    pub done: Sender<Done>,
    /// To the committer; `None` if its thread could not start (this worker
    /// then commits its own small files).
    pub commit: Option<Sender<ToCommit>>,
}

impl Worker<'_, '_> {
    /// The worker loop: ends when the scheduler drops its sender.
    pub fn run(self) {
        for Work { class, unit } in self.work.iter() {
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
                Unit::Stream(job) => (vec![self.one_file(job)], 0),
                Unit::Small(jobs) => self.small_files(jobs),
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
                        finished: self.ctx.start.elapsed(),
                    })
                    .collect();
                // A panic before the hand-off sent nothing to the
                // committer (the hand-off is the last step that can fail).
                (failed, 0)
            });
            // Fails only if the scheduler is gone, which it is not while
            // a unit is in flight.
            let _ = self.done.send(Done::Unit {
                class,
                files: results,
                handed,
            });
        }
    }

    /// One file through the streaming engine (or verify).
    fn one_file(&self, job: BatchJob) -> FileResult {
        let (p, ctx) = (self.pipeline, self.ctx);
        let (op, options) = (ctx.op, ctx.options);
        let run = || -> Result<Option<Report>> {
            if p.cancel_token().is_cancelled() {
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
                (Op::Process, Some(o)) => p.process_file(&job.input, o, options.force, true)?,
                (Op::Restore, Some(o)) => p.restore_file(&job.input, o, options.force, true)?,
                _ => p.verify_path(&job.input)?,
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
    fn small_files(&self, jobs: Vec<BatchJob>) -> (Vec<FileResult>, usize) {
        let (p, ctx) = (self.pipeline, self.ctx);
        let cancel = p.cancel_token();
        // Read each file whole.
        let mut files: Vec<(BatchJob, Small)> = jobs
            .into_iter()
            .map(|job| {
                let state = match caught_value(&job.input, || self.read_small(&job)) {
                    Ok(Some((data, meta))) => Small::Read(data, Box::new(meta)),
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
        p.governor().memory.add(held);
        // Encode them all under one CPU lease.
        if files.iter().any(|(_, s)| matches!(s, Small::Read(..))) {
            let lease = p.governor().cpu.acquire(cancel);
            for (job, state) in &mut files {
                if !matches!(state, Small::Read(..)) {
                    continue;
                }
                let taken = std::mem::replace(state, Small::Ended(Outcome::Skipped));
                let Small::Read(data, meta) = taken else {
                    continue;
                };
                let mode = output::mode_of(&meta);
                let encoded = match &lease {
                    Ok(_) => caught_value(&job.input, || p.encode_whole(&data, mode)),
                    Err(_) => Err(Error::cancelled().with_path(&job.input)),
                };
                *state = match encoded {
                    Ok((bytes, report)) => Small::Encoded(bytes, meta, Box::new(report)),
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
                    Small::Encoded(bytes, meta, report) => {
                        caught_value(&job.input, || self.write_small(&job, &bytes, &meta))
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
        let cancelled = cancel.is_cancelled();
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
                    match &self.commit {
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
                results.push(committer::committed(p, ctx, job, report, r));
            }
        }
        p.governor().memory.sub(held);
        (results, handed)
    }

    /// Reads a small input whole (under an IO lease), or `None` to skip it;
    /// refuses one that changed size since it was opened.
    fn read_small(&self, job: &BatchJob) -> Result<Option<(Vec<u8>, fs::Metadata)>> {
        let path = &job.input;
        let out = job
            .output
            .as_deref()
            .ok_or_else(|| Error::usage("no output path").with_path(path))?;
        if skip(self.ctx, out)? {
            return Ok(None);
        }
        sweep(self.ctx, out);
        let (file, meta) = output::open_input(path)?;
        let mut data = Vec::with_capacity(meta.len() as usize);
        // A size-0 file may be a pseudo-file with content (`/proc`, `/sys`;
        // a batch takes regular files only): read to its end, unchecked.
        let stream = meta.len() == 0;
        {
            let _io = self
                .pipeline
                .governor()
                .io
                .acquire(self.pipeline.cancel_token())?;
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
        Ok(Some((data, meta)))
    }

    /// Writes one small container into its temp file and gives it the
    /// input's mode and times; `commit_group` makes it durable and renames
    /// it.
    fn write_small(&self, job: &BatchJob, bytes: &[u8], meta: &fs::Metadata) -> Result<OutputFile> {
        let dest = job
            .output
            .as_deref()
            .ok_or_else(|| Error::usage("no output path").with_path(&job.input))?;
        // Unnamed until the commit links it: one directory update per small
        // file instead of two (OutputFile::create_unnamed).
        let out = OutputFile::create_unnamed(&job.input, dest, self.ctx.options.force)?;
        {
            let _io = self
                .pipeline
                .governor()
                .io
                .acquire(self.pipeline.cancel_token())?;
            let mut w = out.file();
            w.write_all(bytes)
                .map_err(|e| Error::io(e).with_path(dest))?;
        }
        out.set_times(meta);
        out.prepare(Some(output::mode_of(meta)))?;
        Ok(out)
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
