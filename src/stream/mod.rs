//! One stream through the engine: the reader, dispatcher, writer and ticker
//! threads, one file each, started together in one `std::thread::scope`.
//!
//! ```text
//!  reader ──jobs (bounded, depth)──▶ dispatcher ── one CPU lease per job
//!                                       │ spawns the job on a CPU worker
//!                                       ▼ queues its one-shot slot, in order
//!                          slots (bounded, depth + cpu tokens)
//!                                       ▼
//!                                    writer: waits on each slot in turn
//! ```
//!
//! Invariants (the why is in `docs/design.md`, "One stream"):
//! - only the reader, dispatcher and writer block; a CPU worker never waits
//!   on a lock, channel or permit;
//! - order is kept by the slot queue, so nothing is ever sorted;
//! - shutdown is disconnection: each thread's return drops its sender and
//!   ends the next one's loop; the first error is stored, cancels the run,
//!   and the consequential "cancelled" errors that follow are dropped.
//!
//! [`process`] and [`restore`] are the two stream bodies, read top to bottom
//! from the `Pipeline` call to the trailer.

mod age;
mod dispatcher;
mod hasher;
mod process;
mod reader;
mod restore;
mod standard;
mod state;
mod ticker;
mod worker;
mod writer;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use crossbeam_channel::bounded;

use crate::chunk::{Chunk, Encoded, Sealed};
use crate::error::{Error, ErrorKind, Result};

pub(crate) use age::AgeLayout;
pub(crate) use dispatcher::Cpu;
use dispatcher::{Dispatcher, Slot};
use reader::{Feed, Job};
pub(crate) use restore::{check_file_digest, restore_codec, Opened};
pub(crate) use state::{Role, RunState};
use ticker::Ticker;
pub(crate) use writer::Counting;
use writer::Writer;

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

/// Runs one stream: `produce` on the reader thread sends the jobs; `work`
/// runs once per job on the CPU workers (with the job's index); `consume`
/// runs on the writer thread, once per result, in order. Returns what
/// `produce` returned, or the first error of the run.
pub(crate) fn run<J, O, P>(
    state: &RunState<'_>,
    cpu: Cpu<'_>,
    depth: usize,
    produce: impl FnOnce(&Feed<'_, J>) -> Result<P> + Send,
    work: impl Fn(u64, J) -> Result<O> + Sync,
    consume: impl FnMut(O) -> Result<()> + Send,
) -> Result<P>
where
    J: Send + Weight,
    O: Send + Weight,
    P: Send,
{
    let depth = depth.max(1);
    // The slots hold the jobs in flight: their bound is the run's bound.
    let cpu_tokens = state.governor.cpu.capacity().min(state.in_flight.max(1));
    let metrics = state.metrics();
    // Every role's state, built before any thread starts; each thread owns
    // its part from then on.
    let (jobs_tx, jobs_rx) = bounded::<Job<J>>(depth);
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
    let dispatcher = Dispatcher {
        state,
        cpu,
        jobs: jobs_rx,
        slots: slots_tx,
    };
    let writer = Writer {
        state,
        slots: slots_rx,
        recorder: state.recorder(),
    };
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let ticker = metrics.filter(|m| m.ticks()).map(|metrics| Ticker {
        state,
        metrics,
        stop: stop_rx,
    });
    let produced = thread::scope(|s| {
        let work = &work;
        let reader = thread::Builder::new()
            .name("syncpipe-reader".into())
            .spawn_scoped(s, move || guarded(state, Role::Reader, || produce(&feed)));
        let dispatcher = thread::Builder::new()
            .name("syncpipe-dispatch".into())
            .spawn_scoped(s, move || {
                guarded(state, Role::Dispatcher, || dispatcher.run(work))
            });
        let writer = thread::Builder::new()
            .name("syncpipe-writer".into())
            .spawn_scoped(s, move || {
                guarded(state, Role::Writer, || writer.run(consume))
            });
        let ticker = ticker.map(|t| {
            thread::Builder::new()
                .name("syncpipe-metrics".into())
                .spawn_scoped(s, move || {
                    guarded(state, Role::Ticker, || {
                        t.run();
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
        drop(stop_tx);
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

/// Runs a thread body, turning an error or a panic into the run's failure,
/// and adds the thread's CPU time to its role's.
fn guarded<T>(state: &RunState<'_>, role: Role, body: impl FnOnce() -> Result<T>) -> Option<T> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    state.note_thread_cpu(role);
    match outcome {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            state.fail(e);
            None
        }
        Err(payload) => {
            state.fail(panic_error(payload.as_ref()).with_stage(role.name()));
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
