//! A CPU worker's part of one stream: runs one chunk job (a rayon task or a
//! dedicated thread, see [`Cpu`](super::dispatcher::Cpu)) and puts its
//! result in the job's one-slot channel.
//!
//! A worker never blocks: it holds the CPU lease the dispatcher took for the
//! job, gives it back as soon as the work is done, and hands the result over
//! with a `try_send` into a channel of one slot that only it sends on.

use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::state::RunState;
use crate::error::{ErrorKind, Result};
use crate::governor::Lease;
use crate::recorder::{self, Trace};

/// A job as the dispatcher hands it to a worker.
pub(crate) struct Task<'g, J, O> {
    /// The chunk's index in the stream.
    pub index: u64,
    pub job: J,
    /// Its timings so far, when the run reports metrics.
    pub timing: Option<Timing>,
    /// The CPU permit the job runs under.
    pub lease: Lease<'g>,
    /// Where the result goes: the slot the writer waits on, in order.
    pub result: Sender<Option<Finished<O>>>,
}

/// A job's timings up to its dispatch.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    pub queued: Instant,
    pub read_wait: u64,
    pub dispatched: Instant,
    pub cpu_wait: u64,
}

/// A job's result and, when the run reports metrics, its timings.
pub(crate) struct Finished<O> {
    pub out: O,
    pub trace: Option<Trace>,
}

/// Runs `task` with `work` and puts the result (`None` if it failed: the
/// error is then in the run state) in its slot.
pub(crate) fn run_task<J, O>(
    state: &RunState<'_>,
    work: &(impl Fn(u64, J) -> Result<O> + Sync),
    task: Task<'_, J, O>,
) {
    let Task {
        index,
        job,
        timing,
        lease,
        result,
    } = task;
    let metrics = state.metrics();
    let run = || panic::catch_unwind(AssertUnwindSafe(|| work(index, job)));
    let (outcome, trace) = match timing {
        None => (run(), None),
        Some(t) => {
            let (outcome, cost) = recorder::timed_job(metrics, run);
            let trace = Trace {
                queued: t.queued,
                read_wait: t.read_wait,
                dispatched: t.dispatched,
                cpu_wait: t.cpu_wait,
                cpu: cost.cpu,
                time: cost.time,
                laps: cost.laps,
                done: cost.done,
            };
            (outcome, Some(trace))
        }
    };
    // Give the CPU permit back before the hand-off: the work is done even
    // if the writer is slow to take the result.
    drop(lease);
    let out = match outcome {
        Ok(Ok(out)) => Some(Finished { out, trace }),
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
            state.fail(super::panic_error(payload.as_ref()).with_chunk(index));
            None
        }
    };
    // Cannot block (one slot, one send); fails only if the writer is gone,
    // which means the run is already stopping.
    let _ = result.try_send(out);
}
