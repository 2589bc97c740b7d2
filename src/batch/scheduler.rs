//! The scheduler thread of a batch: the only owner of the queue of files
//! not yet started and of the count of slots in use. It fills free slots
//! in the policy's order (`policy.rs`), frees a slot on each completion and
//! stops starting files on a cancel; one owner means no lock on either.

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::policy::{Class, Queue, Running};
use super::{failed_unit, Done, FileResult, Unit, Work};
use crate::cancel::CancelToken;
use crate::error::Error;

/// The scheduler's state, built before the batch's threads start.
pub(super) struct Scheduler<'p> {
    pub cancel: &'p CancelToken,
    /// Units not yet started.
    pub queue: Queue<Unit>,
    /// Units in flight at most: the workers that started.
    pub slots: usize,
    pub start: Instant,
    /// To the workers.
    pub work: Sender<Work>,
    /// From the workers and the committer.
    pub done: Receiver<Done>,
}

impl Scheduler<'_> {
    /// Runs until every unit has ended (or, after a cancel, until those in
    /// flight have); returns every file's result. Dropping `work` at the
    /// end ends the workers' loops.
    pub fn run(mut self) -> Vec<FileResult> {
        let mut results = Vec::new();
        // Files handed to the committer whose result has not come back:
        // the batch is over only when they have. Signed, because the two
        // messages race: a worker hands its files over *before* it reports
        // its unit (with the count), so the committer's results can arrive
        // first and take the count below zero for a moment. Once no unit
        // is in flight every count has arrived, and zero means all back.
        let (mut in_flight, mut large, mut committing) = (0usize, 0usize, 0i64);
        loop {
            while in_flight < self.slots && !self.cancel.is_cancelled() {
                let Some((class, unit)) = self.queue.next(Running {
                    large,
                    slots: self.slots,
                }) else {
                    break;
                };
                if let Err(e) = self.work.send(Work { class, unit }) {
                    // Every worker is gone (cannot happen while they run:
                    // they catch panics). Report the unit, stop starting.
                    results.extend(failed_unit(
                        e.into_inner().unit,
                        self.start,
                        Error::cancelled,
                    ));
                    break;
                }
                in_flight += 1;
                large += usize::from(class == Class::Large);
            }
            if in_flight == 0 && committing == 0 {
                break;
            }
            match self.done.recv() {
                Ok(Done::Unit {
                    class,
                    files,
                    handed,
                }) => {
                    in_flight -= 1;
                    large -= usize::from(class == Class::Large);
                    committing += handed as i64;
                    results.extend(files);
                }
                Ok(Done::Committed { files }) => {
                    // Exact: the committer reports every file once.
                    committing -= files.len() as i64;
                    results.extend(files);
                }
                Err(_) => break,
            }
        }
        // Disconnection ends the workers' loops.
        drop(self.work);
        for unit in self.queue.drain() {
            results.extend(failed_unit(unit, self.start, Error::cancelled));
        }
        results
    }
}
