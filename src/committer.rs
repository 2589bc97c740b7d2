//! Group commit for the outputs of a batch (leader/follower).
//!
//! A finished output must be durable before it is renamed into place, or a
//! crash could leave a complete-looking but empty file. An fsync per file
//! flushes the device once per file: for 20,000 small files that is most of
//! the run (`docs/performance.md`, "Many files"). Here every worker that
//! has a prepared temp file queues it and waits; whichever worker finds no
//! commit in progress becomes the leader, takes *everything* queued so far,
//! makes it durable with one `syncfs` per filesystem, renames each file, and
//! hands the results back. Files queued while the leader works form the
//! next group, led by one of their own workers. Under load, groups grow by
//! themselves; alone, a file is just fsynced.
//!
//! The lock is never held across the sync or the renames (the leader
//! releases it while it works); a panic in the leader still releases the
//! leadership and fails its group, so followers cannot wait forever.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, ErrorKind, Result};
use crate::output::{self, OutputFile};

/// The result of committing one file: the folder it was renamed into (to
/// fsync once at the end of the batch), or its failure.
pub(crate) type Committed = Result<Option<PathBuf>>;

/// The shared commit queue of one batch.
#[derive(Default)]
pub(crate) struct Committer {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Prepared files waiting for the next group, with their tickets.
    queue: Vec<(u64, OutputFile)>,
    /// A leader is committing a group now.
    leading: bool,
    /// Results of committed tickets, until their workers take them.
    results: HashMap<u64, Committed>,
    next_ticket: u64,
}

impl Committer {
    /// Makes `files` durable and renames them, in some group with whatever
    /// other workers queued; returns one result per file, in order.
    pub fn commit(&self, files: Vec<OutputFile>) -> Vec<Committed> {
        let mut st = self.state.lock();
        let tickets: Vec<u64> = files
            .into_iter()
            .map(|f| {
                let t = st.next_ticket;
                st.next_ticket += 1;
                st.queue.push((t, f));
                t
            })
            .collect();
        loop {
            if tickets.iter().all(|t| st.results.contains_key(t)) {
                return tickets
                    .iter()
                    .map(|t| {
                        st.results
                            .remove(t)
                            .expect("checked just above: every ticket has a result")
                    })
                    .collect();
            }
            if st.leading {
                self.done.wait(&mut st);
                continue;
            }
            // Lead: take the whole queue (ours, and any follower's).
            st.leading = true;
            let group = std::mem::take(&mut st.queue);
            let results = MutexGuard::unlocked(&mut st, || lead(group));
            st.results.extend(results);
            st.leading = false;
            self.done.notify_all();
        }
    }
}

/// Commits one group with the lock released. Never panics out: a panic
/// fails the group's files instead (their temp files are removed).
fn lead(group: Vec<(u64, OutputFile)>) -> Vec<(u64, Committed)> {
    let tickets: Vec<u64> = group.iter().map(|(t, _)| *t).collect();
    match panic::catch_unwind(AssertUnwindSafe(|| commit_group(group))) {
        Ok(results) => results,
        Err(_) => tickets
            .into_iter()
            .map(|t| {
                (
                    t,
                    Err(Error::new(
                        ErrorKind::Panic,
                        "panic while committing outputs",
                    )),
                )
            })
            .collect(),
    }
}

/// One `syncfs` per filesystem, then the renames; a lone file (or a failed
/// `syncfs`) is fsynced on its own instead.
fn commit_group(group: Vec<(u64, OutputFile)>) -> Vec<(u64, Committed)> {
    let synced = group.len() > 1 && {
        let mut devs = HashSet::new();
        group
            .iter()
            .map(|(_, f)| f.as_file())
            .filter(|f| f.metadata().map_or(true, |m| devs.insert(m.dev())))
            .all(|f| output::sync_filesystem(f).is_ok())
    };
    group
        .into_iter()
        .map(|(t, f)| {
            let r = if synced {
                f.rename_synced()
            } else {
                f.commit_prepared()
            };
            (t, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn concurrent_workers_all_land_their_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let (tx, rx) = mpsc::channel();
        // Under a watchdog: a lost wake-up would hang the followers.
        std::thread::spawn(move || {
            let committer = Committer::default();
            std::thread::scope(|s| {
                for w in 0..8 {
                    let (committer, root) = (&committer, &root);
                    s.spawn(move || {
                        for i in 0..20 {
                            let files: Vec<OutputFile> = (0..1 + i % 3)
                                .map(|k| {
                                    let dest = root.join(format!("w{w}-{i}-{k}"));
                                    let out = OutputFile::create_for(&dest, false).expect("temp");
                                    out.file()
                                        .write_all(format!("{w} {i} {k}").as_bytes())
                                        .expect("write");
                                    out.prepare(Some(0o644)).expect("mode");
                                    out
                                })
                                .collect();
                            for r in committer.commit(files) {
                                r.expect("committed");
                            }
                        }
                    });
                }
            });
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("watchdog: the workers did not finish (lost wake-up?)");
        let mut n = 0;
        for w in 0..8 {
            for i in 0..20 {
                for k in 0..1 + i % 3 {
                    let got =
                        std::fs::read(dir.path().join(format!("w{w}-{i}-{k}"))).expect("landed");
                    assert_eq!(got, format!("{w} {i} {k}").as_bytes());
                    n += 1;
                }
            }
        }
        // No temp file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), n);
    }
}
