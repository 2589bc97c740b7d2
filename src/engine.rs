//! The thread layout of one run: reader → dispatcher → rayon → writer.
//!
//! ```text
//!  reader thread ──jobs (bounded, depth)──▶ dispatcher thread
//!                                             │ takes a CPU lease (blocking, cancel-aware)
//!                                             │ spawns the chunk job on the rayon pool
//!                                             ▼ sends the job's one-shot receiver, in order
//!                              slots (bounded, depth + cpu tokens)
//!                                             ▼
//!                                        writer thread: recv each slot in turn, write
//! ```
//!
//! Order is kept by construction (as gzp does): the dispatcher queues each
//! chunk's one-shot receiver in read order, so the writer never sorts and
//! never holds more than one result it cannot write yet. Only the reader,
//! dispatcher and writer block; rayon workers never wait on a lock, channel
//! or permit (a `try_send` into a one-slot channel cannot block).
//!
//! Shutdown is disconnection: the reader returns and drops the jobs sender,
//! the dispatcher's loop ends, waits for its jobs and drops the slots sender,
//! the writer's loop ends. An error anywhere is stored (first wins), cancels
//! the run's token, and the disconnections that follow stop the other threads;
//! their own "cancelled" errors are consequences and are dropped.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::cancel::CancelToken;
use crate::chunk::{Chunk, Encoded, Sealed};
use crate::error::{Error, ErrorKind, Result};
use crate::governor::{Governor, MemoryGauge};
use crate::metrics::Metrics;
use crate::pool::BufferPool;
use crate::recorder::{self, Permit, Recorder, Trace};

/// State shared by the threads of one run.
pub(crate) struct RunState<'a> {
    pub governor: &'a Governor,
    pub cancel: CancelToken,
    pub buffers: BufferPool,
    /// Chunk bytes alive in this run (the governor's gauge covers all runs).
    pub memory: MemoryGauge,
    error: Mutex<Option<Error>>,
    /// Where this run reports (none: nothing is timed or counted).
    metrics: Option<Arc<Metrics>>,
    /// Histogram labels of the stages, the checksum's last.
    labels: Vec<String>,
    has_checksum: bool,
    /// Chunk jobs in flight at most, besides the CPU tokens (a restore of
    /// large chunks takes fewer, to stay within its memory limit).
    pub in_flight: usize,
}

impl<'a> RunState<'a> {
    pub fn new(governor: &'a Governor, cancel: CancelToken, buffers: BufferPool) -> RunState<'a> {
        RunState {
            governor,
            cancel,
            buffers,
            memory: MemoryGauge::default(),
            error: Mutex::new(None),
            metrics: None,
            labels: Vec::new(),
            has_checksum: false,
            in_flight: usize::MAX,
        }
    }

    /// Reports this run to `metrics`, if any; `stages` and `checksum` label
    /// the per-stage CPU histograms.
    pub fn observed(
        mut self,
        metrics: Option<Arc<Metrics>>,
        stages: impl IntoIterator<Item = String>,
        checksum: Option<&str>,
    ) -> RunState<'a> {
        if metrics.is_some() {
            self.labels = stages.into_iter().collect();
            self.labels.extend(checksum.map(str::to_string));
            self.has_checksum = checksum.is_some();
        }
        self.metrics = metrics;
        self
    }

    /// The writer thread's recorder, if this run reports metrics.
    fn recorder(&self) -> Option<Recorder> {
        self.metrics
            .as_ref()
            .map(|m| m.recorder(self.labels.clone(), self.has_checksum))
    }

    /// Counts `bytes` of chunk data as alive (read, not yet written).
    pub fn hold(&self, bytes: usize) {
        self.memory.add(bytes);
        self.governor.memory.add(bytes);
    }

    /// Counts `bytes` of chunk data as written.
    pub fn release(&self, bytes: usize) {
        self.memory.sub(bytes);
        self.governor.memory.sub(bytes);
    }

    /// Records `err` if it is the first, then cancels the run. The store
    /// happens before the cancel, so a thread that stops because it saw the
    /// cancel can never have its consequential error recorded first.
    pub fn fail(&self, err: Error) {
        {
            let mut slot = self.error.lock();
            if slot.is_none() {
                *slot = Some(err);
            }
        }
        self.cancel.cancel();
    }

    /// The first error of the run, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.lock().take()
    }

    /// `Err(Cancelled)` once the run is cancelled.
    pub fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }
}

/// Where the chunk results of a run arrive: one slot per chunk, in order,
/// with the chunk's timings when the run reports metrics. `None` means the
/// job failed and its error is already in the run state.
type Slot<O> = Receiver<Option<(O, Option<Trace>)>>;

/// When a job was queued and how long its read waited for an IO permit.
type Stamp = (Instant, u64);

/// Bytes of a job or a result, for the byte counters.
pub(crate) trait Weight {
    fn weight(&self) -> u64;
}

impl Weight for Chunk {
    fn weight(&self) -> u64 {
        self.data.len() as u64
    }
}

impl Weight for Sealed {
    fn weight(&self) -> u64 {
        self.payload.len() as u64
    }
}

impl Weight for Encoded {
    fn weight(&self) -> u64 {
        (self.head.len() + self.payload.len() + 4) as u64
    }
}

impl Weight for Vec<u8> {
    fn weight(&self) -> u64 {
        self.len() as u64
    }
}

/// The reader's end of the jobs channel: sends, and stamps and counts each
/// job when the run reports metrics.
pub(crate) struct Feed<'a, J> {
    tx: Sender<(J, Option<Stamp>)>,
    metrics: Option<&'a Metrics>,
}

impl<J: Weight> Feed<'_, J> {
    /// Sends `job`, blocking while the channel is full.
    ///
    /// # Errors
    ///
    /// `Err(())` if the dispatcher is gone (the run is stopping).
    pub fn send(&self, job: J) -> std::result::Result<(), ()> {
        let Some(m) = self.metrics else {
            return self.tx.send((job, None)).map_err(|_| ());
        };
        let bytes = job.weight();
        let stamp = (Instant::now(), recorder::take_wait(Permit::Io));
        self.tx.send((job, Some(stamp))).map_err(|_| ())?;
        m.note_read(bytes, self.tx.len());
        Ok(())
    }
}

/// Runs one stream through the reader → CPU → writer layout.
///
/// `produce` runs on the reader thread and sends jobs; `work` runs once per
/// job on the CPU workers (the job's sequence number is its chunk index);
/// `consume` runs on the writer thread, once per result, in order. Returns
/// what `produce` returned, or the first error of the run.
pub(crate) fn run<J, O, P>(
    state: &RunState<'_>,
    cpu: Cpu<'_>,
    depth: usize,
    produce: impl FnOnce(&Feed<'_, J>) -> Result<P> + Send,
    work: impl Fn(u64, J) -> Result<O> + Sync,
    mut consume: impl FnMut(O) -> Result<()> + Send,
) -> Result<P>
where
    J: Send + Weight,
    O: Send + Weight,
    P: Send,
{
    let depth = depth.max(1);
    // The slots hold the jobs in flight: their bound is the run's bound.
    let cpu_tokens = state.governor.cpu.capacity().min(state.in_flight.max(1));
    let metrics = state.metrics.as_deref();
    let produced = thread::scope(|s| {
        let (jobs_tx, jobs_rx) = bounded::<(J, Option<Stamp>)>(depth);
        // Room for every job in flight plus `depth` finished ones: the CPU
        // tokens, not this channel, are what bounds parallelism.
        let (slots_tx, slots_rx) = bounded::<Slot<O>>(depth + cpu_tokens);
        if let Some(m) = metrics {
            m.note_capacities(depth, depth + cpu_tokens);
        }
        let feed = Feed {
            tx: jobs_tx,
            metrics,
        };
        // Built before any thread starts; owned by the writer from then on.
        let mut recorder = state.recorder();

        let reader = thread::Builder::new()
            .name("syncpipe-reader".into())
            .spawn_scoped(s, move || guarded(state, "reader", || produce(&feed)));
        let dispatcher = thread::Builder::new()
            .name("syncpipe-dispatch".into())
            .spawn_scoped(s, || {
                guarded(state, "dispatcher", || {
                    dispatch(state, cpu, jobs_rx, slots_tx, &work)
                })
            });
        let writer = thread::Builder::new()
            .name("syncpipe-writer".into())
            .spawn_scoped(s, move || {
                guarded(state, "writer", || {
                    while let Ok(slot) = recv(&slots_rx, recorder.as_mut()) {
                        state.check()?;
                        match recv(&slot, recorder.as_mut()) {
                            Ok(Some((out, trace))) => match (recorder.as_mut(), trace) {
                                (Some(rec), Some(trace)) => {
                                    let received = Instant::now();
                                    let bytes = out.weight();
                                    consume(out)?;
                                    rec.record(&trace, received, recorder::take_wait(Permit::Io));
                                    rec.metrics().note_written(bytes);
                                }
                                _ => consume(out)?,
                            },
                            // The job failed (error already recorded) or was
                            // dropped unrun because the run is stopping.
                            Ok(None) | Err(_) => return Err(Error::cancelled()),
                        }
                    }
                    Ok(())
                })
            });
        // The ticker: every interval, a snapshot for the observer. It holds
        // no channel of the run; it ends when `stop` is dropped below.
        let (stop, stopped) = bounded::<()>(0);
        let ticker = metrics.filter(|m| m.ticks()).map(|m| {
            thread::Builder::new()
                .name("syncpipe-metrics".into())
                .spawn_scoped(s, move || {
                    guarded(state, "metrics", || {
                        while let Err(RecvTimeoutError::Timeout) =
                            stopped.recv_timeout(m.interval())
                        {
                            m.tick(state.governor, state.buffers.stats());
                        }
                        Ok(())
                    })
                })
        });
        // A failed spawn (out of threads) leaves the others to finish on
        // their own: the channels it would have held were dropped with its
        // closure, so the disconnection cascade still runs. The spawn error
        // is recorded as the root cause.
        let produced = joined(state, reader);
        joined(state, dispatcher);
        joined(state, writer);
        drop(stop);
        if let Some(t) = ticker {
            joined(state, t);
        }
        produced
    });
    if let Some(err) = state.take_error() {
        return Err(err);
    }
    produced.ok_or_else(|| Error::new(ErrorKind::Panic, "reader thread ended without a result"))
}

/// The writer's blocking receive: a plain `recv`, except that with a
/// recorder it wakes every half interval while it waits, so that the
/// recorder can publish what it holds (see `Recorder::idle`).
fn recv<T>(
    rx: &Receiver<T>,
    recorder: Option<&mut Recorder>,
) -> std::result::Result<T, crossbeam_channel::RecvError> {
    let Some((rec, wait)) = recorder.and_then(|r| r.idle_after().map(|w| (r, w))) else {
        return rx.recv();
    };
    loop {
        match rx.recv_timeout(wait) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => rec.idle(),
            Err(RecvTimeoutError::Disconnected) => return Err(crossbeam_channel::RecvError),
        }
    }
}

/// Where the chunk jobs run (`--spawn-style`); both give the same bytes.
#[derive(Clone, Copy)]
pub(crate) enum Cpu<'p> {
    /// Spawned as tasks on the pipeline's rayon pool: the threads outlive
    /// the run and are shared by every run of the pipeline (work stealing
    /// keeps them busy across files).
    Rayon(&'p rayon::ThreadPool),
    /// This many dedicated OS threads, started for the run, pulling jobs
    /// from one shared bounded channel (plain FIFO, no stealing).
    Threads(usize),
}

/// A job as the dispatcher hands it to a CPU worker: its index, the job,
/// its timings so far, the CPU lease it runs under, and its result slot.
type Task<'g, J, O> = (
    u64,
    J,
    Option<(Instant, u64, Instant, u64)>,
    crate::governor::Lease<'g>,
    Sender<Option<(O, Option<Trace>)>>,
);

/// The dispatcher loop: one CPU lease per job, job to a worker, slot in order.
fn dispatch<J: Send, O: Send>(
    state: &RunState<'_>,
    cpu: Cpu<'_>,
    jobs: Receiver<(J, Option<Stamp>)>,
    slots: Sender<Slot<O>>,
    work: &(impl Fn(u64, J) -> Result<O> + Sync),
) -> Result<()> {
    match cpu {
        // `in_place_scope` runs this closure on the dispatcher thread
        // (blocking here is fine) and waits for every spawned job before
        // returning, so jobs may borrow the stages and the run state.
        Cpu::Rayon(pool) => pool.in_place_scope(|scope| {
            feed_workers(state, jobs, &slots, |task| {
                scope.spawn(move |_| run_task(state, work, task));
                Ok(())
            })
        }),
        Cpu::Threads(n) => thread::scope(|s| {
            // As deep as the CPU tokens: a worker never waits for a task
            // that holds a permit, and the dispatcher blocks here only when
            // every permitted job is already queued or running.
            let (tasks_tx, tasks_rx) = bounded::<Task<'_, J, O>>(state.governor.cpu.capacity());
            let mut workers = Vec::with_capacity(n.max(1));
            for i in 0..n.max(1) {
                let rx = tasks_rx.clone();
                workers.push(
                    thread::Builder::new()
                        .name(format!("syncpipe-worker-{i}"))
                        .spawn_scoped(s, move || {
                            for task in rx.iter() {
                                run_task(state, work, task);
                            }
                        }),
                );
            }
            drop(tasks_rx);
            let fed = feed_workers(state, jobs, &slots, |task| {
                tasks_tx.send(task).map_err(|_| Error::cancelled())
            });
            // Workers end when the queue is closed and drained.
            drop(tasks_tx);
            let mut spawned = Ok(());
            for w in workers {
                match w {
                    Ok(h) => {
                        let _ = h.join();
                    }
                    Err(e) => spawned = Err(Error::io(e).with_stage("spawning a worker thread")),
                }
            }
            // A worker that could not start is the root cause of whatever
            // the feeding then ran into.
            spawned.and(fed)
        }),
    }
}

/// Takes a CPU lease per job, hands the job to `submit` and queues its
/// result slot for the writer, in read order.
fn feed_workers<'g, J: Send, O: Send>(
    state: &'g RunState<'_>,
    jobs: Receiver<(J, Option<Stamp>)>,
    slots: &Sender<Slot<O>>,
    mut submit: impl FnMut(Task<'g, J, O>) -> Result<()>,
) -> Result<()> {
    let metrics = state.metrics.as_deref();
    for (index, (job, stamp)) in (0u64..).zip(jobs.iter()) {
        state.check()?;
        let dispatched = stamp.map(|_| Instant::now());
        let lease = state.governor.cpu.acquire(&state.cancel)?;
        let trace = stamp
            .zip(dispatched)
            .map(|((queued, read_wait), dispatched)| {
                let cpu_wait = recorder::take_wait(Permit::Cpu);
                (queued, read_wait, dispatched, cpu_wait)
            });
        let (tx, rx) = bounded(1);
        submit((index, job, trace, lease, tx))?;
        if slots.send(rx).is_err() {
            return Err(Error::cancelled());
        }
        if let Some(m) = metrics {
            m.note_dispatched(slots.len());
        }
    }
    Ok(())
}

/// Runs one chunk job on a CPU worker (a rayon task or a dedicated thread)
/// and puts its result in its slot.
fn run_task<J, O>(
    state: &RunState<'_>,
    work: &(impl Fn(u64, J) -> Result<O> + Sync),
    (index, job, trace, lease, tx): Task<'_, J, O>,
) {
    let metrics = state.metrics.as_deref();
    let timed = trace.map(|t| {
        if let Some(m) = metrics {
            m.worker_started();
        }
        recorder::begin_laps();
        (t, Instant::now())
    });
    let result = panic::catch_unwind(AssertUnwindSafe(|| work(index, job)));
    let trace = timed.map(|((queued, read_wait, dispatched, cpu_wait), start)| {
        let done = Instant::now();
        let laps = recorder::end_laps();
        if let Some(m) = metrics {
            m.worker_finished();
        }
        Trace {
            queued,
            read_wait,
            dispatched,
            cpu_wait,
            cpu: done.saturating_duration_since(start).as_nanos() as u64,
            laps,
            done,
        }
    });
    // Give the CPU permit back before the hand-off: the work is done even
    // if the writer is slow to take the result.
    drop(lease);
    let out = match result {
        Ok(Ok(out)) => Some((out, trace)),
        // A stage that stopped for a cancel names no chunk: the cancel is
        // the cause, wherever it happened to land.
        Ok(Err(e)) if e.kind() == ErrorKind::Cancelled => {
            state.fail(e);
            None
        }
        Ok(Err(e)) => {
            state.fail(e.with_chunk(index));
            None
        }
        Err(payload) => {
            state.fail(panic_error(payload.as_ref()).with_chunk(index));
            None
        }
    };
    // Cannot block (one slot, one send); fails only if the writer is gone,
    // which means the run is already stopping.
    let _ = tx.try_send(out);
}

/// Joins a thread of the run; a thread that could not be spawned is
/// recorded as the run's failure.
fn joined<'s, T>(
    state: &RunState<'_>,
    h: std::io::Result<thread::ScopedJoinHandle<'s, Option<T>>>,
) -> Option<T> {
    match h {
        // `guarded` catches panics, so `join` cannot fail.
        Ok(h) => h.join().ok().flatten(),
        Err(e) => {
            state.fail(Error::io(e).with_stage("spawning a thread"));
            None
        }
    }
}

/// Runs a thread body, turning an error or a panic into the run's failure.
fn guarded<T>(state: &RunState<'_>, role: &str, body: impl FnOnce() -> Result<T>) -> Option<T> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            state.fail(e);
            None
        }
        Err(payload) => {
            state.fail(panic_error(payload.as_ref()).with_stage(role));
            None
        }
    }
}

fn panic_error(payload: &(dyn Any + Send)) -> Error {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Error::new(ErrorKind::Panic, format!("panicked: {msg}"))
}
