//! Group commit for the outputs of a batch, on a committer thread.
//!
//! A finished output must be durable before it is renamed into place, or a
//! crash could leave a complete-looking but empty file. An fsync per file
//! flushes the device once per file: for 20,000 small files that is most of
//! the run (`docs/performance.md`, "Many files"). Here a worker that has a
//! prepared temp file hands it to the batch's committer thread through a
//! bounded queue and goes on with its next file. The committer takes
//! *everything* queued so far, makes it durable with one `syncfs` per
//! filesystem, renames each file and reports the results; files queued
//! while it works form the next group. Under load, groups grow by
//! themselves; alone, a file is just fsynced.
//!
//! Why a thread of its own rather than a worker leading the group (the
//! first version, leader/follower): a worker that waits for a flush does
//! no compression meanwhile, so with the flush on every file's path the
//! batch ran at `slots / flush time`. With the committer off the path the
//! workers keep both cores busy while the disk flushes. Why bounded: every
//! queued file holds a temp file and its descriptor; when the disk cannot
//! keep up, a full queue makes the workers wait (backpressure) instead of
//! piling up descriptors.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use super::{ended, BatchJob, Ctx, Done, FileResult, Outcome, ToCommit};
use crate::pipeline::Pipeline;
use crate::report::Report;

use crate::cancel::CancelToken;
use crate::error::{Error, ErrorKind, Result};
use crate::output::{self, OutputFile};

/// Prepared files waiting for the committer, at most: 256 temp files and
/// descriptors (well under the usual limit of 1,024 open files, with room
/// for the workers' own).
pub(super) const QUEUE: usize = 256;

/// The most files one group commits: a group is one `syncfs` and then its
/// renames, and the workers' results wait for the whole group.
const MAX_GROUP: usize = 1024;

/// The result of committing one file: the folder it was renamed into (to
/// fsync once at the end of the batch), or its failure.
pub(super) type Committed = Result<Option<PathBuf>>;

/// A prepared output and what the batch needs to report it.
pub(super) struct Pending<T> {
    /// The temp file, written and given its mode.
    pub out: OutputFile,
    /// Carried through to [`serve`]'s `deliver`.
    pub tag: T,
}

/// The committer thread's loop: commits what arrives on `queue` in groups
/// and hands each group's results to `deliver`, exactly one per file, until
/// every sender is gone. After `cancel`, queued files are not renamed but
/// removed (their results are `Cancelled`).
pub(super) fn serve<T>(
    queue: &Receiver<Pending<T>>,
    cancel: &CancelToken,
    mut deliver: impl FnMut(Vec<(T, Committed)>),
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let (outs, tags): (Vec<OutputFile>, Vec<T>) =
            group.into_iter().map(|p| (p.out, p.tag)).unzip();
        let results = if cancel.is_cancelled() {
            // Dropping an OutputFile removes its temp file.
            drop(outs);
            tags.iter().map(|_| Err(Error::cancelled())).collect()
        } else {
            commit(outs)
        };
        deliver(tags.into_iter().zip(results).collect());
    }
}

/// Commits one group: never panics out (a panic fails the group's files,
/// whose temp files are then removed), one result per file, in order.
pub(super) fn commit(group: Vec<OutputFile>) -> Vec<Committed> {
    let n = group.len();
    match panic::catch_unwind(AssertUnwindSafe(|| commit_group(group))) {
        Ok(results) => results,
        Err(_) => (0..n)
            .map(|_| {
                Err(Error::new(
                    ErrorKind::Panic,
                    "panic while committing outputs",
                ))
            })
            .collect(),
    }
}

/// One `syncfs` per filesystem, then the renames; a lone file (or a failed
/// `syncfs`) is fsynced on its own instead.
fn commit_group(group: Vec<OutputFile>) -> Vec<Committed> {
    let synced = group.len() > 1 && {
        let mut devs = HashSet::new();
        group
            .iter()
            .map(OutputFile::as_file)
            .filter(|f| f.metadata().map_or(true, |m| devs.insert(m.dev())))
            .all(|f| output::sync_filesystem(f).is_ok())
    };
    group
        .into_iter()
        .map(|f| {
            if synced {
                f.rename_synced()
            } else {
                f.commit_prepared()
            }
        })
        .collect()
}

/// The committer thread's state, built before the batch's threads start.
pub(super) struct Committer<'p, 'c> {
    pub pipeline: &'p Pipeline,
    pub ctx: &'c Ctx<'c>,
    /// From the workers.
    pub queue: Receiver<ToCommit>,
    /// To the scheduler.
    pub done: Sender<Done>,
}

impl Committer<'_, '_> {
    /// Commits what the workers hand over, group by group, and reports
    /// each group to the scheduler; ends when the last worker is gone.
    pub fn run(self) {
        let (p, ctx) = (self.pipeline, self.ctx);
        serve(&self.queue, p.cancel_token(), |group| {
            let files = group
                .into_iter()
                .map(|((job, report), r)| committed(p, ctx, job, report, r))
                .collect();
            // Fails only if the scheduler is gone, which it is not while
            // files are committing (it waits for them).
            let _ = self.done.send(Done::Committed { files });
        });
    }
}

/// The result of a committed (or failed to commit) small file.
pub(super) fn committed(
    p: &Pipeline,
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
            match p.run_done(&report) {
                Ok(()) => Outcome::Done(*report),
                Err(e) => Outcome::Failed(e.with_path(&job.input)),
            }
        }
        Err(e) => Outcome::Failed(e.with_path(&job.input)),
    };
    ended(ctx, job, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    fn prepared(dest: &std::path::Path, text: &str) -> OutputFile {
        let out = OutputFile::create_for(dest, false).expect("temp");
        out.file().write_all(text.as_bytes()).expect("write");
        out.prepare(Some(0o644)).expect("mode");
        out
    }

    #[test]
    fn concurrent_workers_all_land_their_files_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let (tx, rx) = mpsc::channel();
        // Under a watchdog: a lost file would leave the count short and a
        // hung committer would never return.
        std::thread::spawn(move || {
            let (queue_tx, queue_rx) = crossbeam_channel::bounded(4);
            let cancel = CancelToken::new();
            let mut delivered = Vec::new();
            std::thread::scope(|s| {
                for w in 0..8 {
                    let (queue_tx, root) = (queue_tx.clone(), &root);
                    s.spawn(move || {
                        for i in 0..40 {
                            let name = format!("w{w}-{i}");
                            let out = prepared(&root.join(&name), &name);
                            queue_tx.send(Pending { out, tag: name }).expect("send");
                        }
                    });
                }
                drop(queue_tx);
                serve(&queue_rx, &cancel, |group| delivered.extend(group));
            });
            let _ = tx.send(delivered);
        });
        let delivered = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("watchdog: the committer did not finish");
        assert_eq!(delivered.len(), 8 * 40, "one result per file");
        for (name, r) in &delivered {
            r.as_ref().expect("committed");
            let got = std::fs::read(dir.path().join(name)).expect("landed");
            assert_eq!(got, name.as_bytes());
        }
        // No temp file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 8 * 40);
    }

    #[test]
    fn a_cancelled_batch_removes_what_is_queued() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (queue_tx, queue_rx) = crossbeam_channel::bounded(8);
        for i in 0..5 {
            let dest = dir.path().join(format!("f{i}"));
            let out = prepared(&dest, "x");
            queue_tx.send(Pending { out, tag: i }).expect("send");
        }
        drop(queue_tx);
        let cancel = CancelToken::new();
        cancel.cancel();
        let mut delivered = Vec::new();
        serve(&queue_rx, &cancel, |group| delivered.extend(group));
        assert_eq!(delivered.len(), 5);
        assert!(delivered
            .iter()
            .all(|(_, r)| matches!(r, Err(e) if e.kind() == ErrorKind::Cancelled)));
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "no output, no temp file"
        );
    }
}
