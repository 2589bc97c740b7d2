//! The dispatcher thread: takes one CPU lease per job, hands the job to a
//! CPU worker and queues the job's result slot for the writer, in read
//! order.
//!
//! Order is kept by construction (as gzp does): the slots are queued in
//! read order, so the writer never sorts and never holds more than one
//! result it cannot write yet. The dispatcher is where CPU back-pressure
//! lands: it blocks on the lease, the jobs channel fills, the reader stops.

use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::reader::Job;
use super::state::RunState;
use super::worker::{self, Finished, Task, Timing};
use crate::error::{Error, Result};
use crate::recorder::{self, Permit};

/// Where the chunk jobs run (`--spawn-style`); both give the same bytes.
#[derive(Clone, Copy)]
pub(crate) enum Cpu<'p> {
    /// Spawned as tasks on the pipeline's rayon pool: the threads outlive
    /// the run and are shared by every run (work stealing keeps them busy
    /// across files).
    Rayon(&'p rayon::ThreadPool),
    /// This many dedicated OS threads, started for the run, pulling jobs
    /// from one shared bounded channel (plain FIFO, no stealing).
    Threads(usize),
}

/// One chunk's result slot, queued in read order: the writer receives the
/// slots in turn and waits on each for its one result.
pub(crate) struct Slot<O>(pub Receiver<Option<Finished<O>>>);

/// The dispatcher's state, built before the stream's threads start.
pub(crate) struct Dispatcher<'s, 'g, J, O> {
    pub state: &'s RunState<'g>,
    pub cpu: Cpu<'s>,
    /// From the reader.
    pub jobs: Receiver<Job<J>>,
    /// To the writer.
    pub slots: Sender<Slot<O>>,
}

impl<'g, J: Send, O: Send> Dispatcher<'_, 'g, J, O> {
    /// The dispatcher loop; `work` runs once per job on a CPU worker. Ends
    /// when the reader drops its sender, after every job it started is
    /// done; dropping `slots` then ends the writer.
    pub fn run(self, work: &(impl Fn(u64, J) -> Result<O> + Sync)) -> Result<()> {
        let state = self.state;
        match self.cpu {
            // `in_place_scope` runs this closure on the dispatcher thread
            // (blocking here is fine) and waits for every spawned job before
            // returning, so jobs may borrow the stages and the run state.
            Cpu::Rayon(pool) => pool.in_place_scope(|scope| {
                self.feed(|task| {
                    scope.spawn(move |_| worker::run_task(state, work, task));
                    Ok(())
                })
            }),
            Cpu::Threads(n) => thread::scope(|s| {
                // As deep as the CPU tokens: a worker never waits for a task
                // that holds a permit, and the dispatcher blocks here only
                // when every permitted job is already queued or running.
                let (tasks_tx, tasks_rx) = bounded::<Task<'_, J, O>>(state.governor.cpu.capacity());
                let mut workers = Vec::with_capacity(n.max(1));
                for i in 0..n.max(1) {
                    let rx = tasks_rx.clone();
                    workers.push(
                        thread::Builder::new()
                            .name(format!("syncpipe-worker-{i}"))
                            .spawn_scoped(s, move || {
                                for task in rx.iter() {
                                    worker::run_task(state, work, task);
                                }
                            }),
                    );
                }
                drop(tasks_rx);
                let fed = self.feed(|task| tasks_tx.send(task).map_err(|_| Error::cancelled()));
                // Workers end when the queue is closed and drained.
                drop(tasks_tx);
                let mut spawned = Ok(());
                for w in workers {
                    match w {
                        Ok(h) => {
                            let _ = h.join();
                        }
                        Err(e) => {
                            spawned = Err(Error::io(e).with_stage("spawning a worker thread"))
                        }
                    }
                }
                // A worker that could not start is the root cause of
                // whatever the feeding then ran into.
                spawned.and(fed)
            }),
        }
    }

    /// Takes a CPU lease per job, hands the job to `submit` and queues its
    /// result slot for the writer, in read order.
    fn feed(&self, mut submit: impl FnMut(Task<'g, J, O>) -> Result<()>) -> Result<()> {
        let state = self.state;
        let metrics = state.metrics();
        for (index, Job { item, stamp }) in (0u64..).zip(self.jobs.iter()) {
            state.check()?;
            let dispatched = stamp.map(|_| Instant::now());
            let lease = state.cpu()?;
            let timing = stamp.zip(dispatched).map(|(s, dispatched)| Timing {
                queued: s.queued,
                read_wait: s.read_wait,
                dispatched,
                cpu_wait: recorder::take_wait(Permit::Cpu),
            });
            let (tx, rx) = bounded(1);
            submit(Task {
                index,
                job: item,
                timing,
                lease,
                result: tx,
            })?;
            if self.slots.send(Slot(rx)).is_err() {
                return Err(Error::cancelled());
            }
            if let Some(m) = metrics {
                m.note_dispatched(self.slots.len());
            }
        }
        Ok(())
    }
}
