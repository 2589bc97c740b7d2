//! Per-chunk timing: stopwatches for stages and permit waits (kept in
//! thread-locals while a thread works on a chunk), the [`Trace`] that
//! travels with each chunk, and the writer thread's [`Recorder`], which
//! alone turns them into histograms. See `metrics.rs` for the overview.
//!
//! Stage and job CPU figures are the worker thread's own CPU time as the
//! OS accounts it ([`thread_cpu_ns`]), not wall time: a job that is
//! preempted, or waits on a page fault, does not count the time it did not
//! run. A chunk's job runs on one pool thread from start to end, so the
//! difference of two readings on that thread is the job's CPU time.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::format::MAX_STAGES;
use crate::governor::{Lease, Semaphore};
use crate::metrics::Metrics;
use crate::snapshot::{Family, Latencies};

/// Which permit a wait was for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Permit {
    Cpu = 0,
    Io = 1,
}

/// The CPU time (user + system) the calling thread has used, in
/// nanoseconds, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`; 0 if the
/// clock cannot be read (then every CPU figure reads 0, never a guess).
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; CLOCK_THREAD_CPUTIME_ID is a clock every supported OS has.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// CPU time one chunk's job spent in each stage and in the checksum.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Laps {
    /// Transform stages, then one slot for the cipher (timed as a stage).
    pub stages: [u64; MAX_STAGES + 1],
    pub checksum: u64,
}

thread_local! {
    /// True while a chunk job with metrics runs on this thread.
    static TIMING: Cell<bool> = const { Cell::new(false) };
    static LAPS: Cell<Laps> = const { Cell::new(Laps { stages: [0; MAX_STAGES + 1], checksum: 0 }) };
    /// Permit waits of this thread not yet attached to a chunk.
    static WAITS: Cell<[u64; 2]> = const { Cell::new([0; 2]) };
}

/// Takes a permit of `sem` and adds its wait, if it had to wait, to this
/// thread's tally for `permit`, which the engine attaches to the chunk the
/// wait was for. The semaphore only returns the wait; recording it is the
/// engine's business, so the governor depends on no metrics.
pub(crate) fn lease<'a>(
    sem: &'a Semaphore,
    permit: Permit,
    cancel: &CancelToken,
) -> Result<Lease<'a>> {
    let lease = sem.acquire(cancel)?;
    if !lease.waited().is_zero() {
        note_wait(permit, lease.waited());
    }
    Ok(lease)
}

/// Adds a permit wait to this thread's tally (the slow path only: an
/// acquire that does not wait costs nothing here).
fn note_wait(permit: Permit, wait: Duration) {
    let ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
    WAITS.with(|w| {
        let mut v = w.get();
        v[permit as usize] = v[permit as usize].saturating_add(ns);
        w.set(v);
    });
}

/// Takes this thread's tally of waits for `permit` since the last take.
pub(crate) fn take_wait(permit: Permit) -> u64 {
    WAITS.with(|w| {
        let mut v = w.get();
        let ns = std::mem::take(&mut v[permit as usize]);
        w.set(v);
        ns
    })
}

/// Starts timing the chunk job about to run on this thread.
pub(crate) fn begin_laps() {
    LAPS.with(|l| l.set(Laps::default()));
    TIMING.with(|t| t.set(true));
}

/// Stops timing and returns the job's laps.
pub(crate) fn end_laps() -> Laps {
    TIMING.with(|t| t.set(false));
    LAPS.with(Cell::get)
}

/// What one chunk's job cost on the thread that ran it ([`timed_job`]).
pub(crate) struct JobCost {
    /// Thread CPU time, nanoseconds.
    pub cpu: u64,
    /// Wall time, nanoseconds.
    pub time: u64,
    /// CPU time per stage and in the checksum.
    pub laps: Laps,
    /// When the job started and ended.
    pub start: Instant,
    pub done: Instant,
}

/// Runs one chunk's `job` on this thread, timed: a chunk's job runs on one
/// thread from start to end, so the difference of two readings of this
/// thread's CPU clock is the job's CPU time. `metrics` counts a busy
/// worker meanwhile. The one place both engines (the streamed worker and
/// the small-file encoder) time a job, so their figures mean the same.
pub(crate) fn timed_job<R>(metrics: Option<&Metrics>, job: impl FnOnce() -> R) -> (R, JobCost) {
    if let Some(m) = metrics {
        m.worker_started();
    }
    begin_laps();
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    let out = job();
    let cpu = thread_cpu_ns().saturating_sub(cpu_start);
    let done = Instant::now();
    let laps = end_laps();
    if let Some(m) = metrics {
        m.worker_finished();
    }
    let time = done.saturating_duration_since(start).as_nanos() as u64;
    (
        out,
        JobCost {
            cpu,
            time,
            laps,
            start,
            done,
        },
    )
}

/// A CPU stopwatch for one stage of one chunk (this thread's CPU time,
/// see [`thread_cpu_ns`]); inert unless the job is timed.
pub(crate) struct Lap(Option<u64>);

impl Lap {
    pub fn start() -> Lap {
        Lap(TIMING.with(Cell::get).then(thread_cpu_ns))
    }

    /// Adds the CPU time since the start to stage `i`.
    pub fn stage(self, i: usize) {
        if let Some(t) = self.0 {
            let ns = thread_cpu_ns().saturating_sub(t);
            LAPS.with(|l| {
                let mut v = l.get();
                if let Some(s) = v.stages.get_mut(i) {
                    *s += ns;
                }
                l.set(v);
            });
        }
    }

    /// Adds the CPU time since the start to the checksum.
    pub fn checksum(self) {
        if let Some(t) = self.0 {
            let ns = thread_cpu_ns().saturating_sub(t);
            LAPS.with(|l| {
                let mut v = l.get();
                v.checksum += ns;
                l.set(v);
            });
        }
    }
}

/// Where one chunk was when: stamped by the reader, the dispatcher and the
/// pool, read by the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trace {
    pub queued: Instant,
    pub read_wait: u64,
    pub dispatched: Instant,
    pub cpu_wait: u64,
    /// CPU time of the job on its worker thread (ns).
    pub cpu: u64,
    /// Wall time of the job, from its start on the worker to its end (ns).
    pub time: u64,
    pub laps: Laps,
    pub done: Instant,
}

/// A run's histograms, owned by its writer thread: recording is a plain
/// `&mut` update, no lock, no atomic. Published about twice per interval
/// (and when the writer goes idle), merged into the totals when dropped
/// (at the end of the run, whatever its outcome).
pub(crate) struct Recorder {
    metrics: Arc<Metrics>,
    run: u64,
    /// Number of stage histograms (transforms, then the checksum if any).
    stages: usize,
    has_checksum: bool,
    /// In a fixed order: chunk CPU, chunk time, one per stage, CPU permit,
    /// IO permit, jobs queue, results queue (indexed, not searched, per
    /// chunk).
    lat: Latencies,
    next_publish: Instant,
    /// Samples recorded since the last publication.
    dirty: bool,
}

impl Recorder {
    /// `stages`: the labels of the stage histograms, the checksum's last
    /// when `has_checksum`.
    pub(crate) fn new(metrics: Arc<Metrics>, stages: Vec<String>, has_checksum: bool) -> Recorder {
        let run = metrics.next_run_id();
        let mut lat = Latencies::default();
        lat.slot(Family::ChunkCpu, "");
        lat.slot(Family::ChunkTime, "");
        for name in &stages {
            lat.slot(Family::StageCpu, name);
        }
        lat.slot(Family::PermitWait, "cpu");
        lat.slot(Family::PermitWait, "io");
        lat.slot(Family::QueueWait, "jobs");
        lat.slot(Family::QueueWait, "results");
        Recorder {
            // The first chunk publishes at once, so that the first tick
            // already shows percentiles.
            next_publish: Instant::now(),
            metrics,
            run,
            stages: stages.len(),
            has_checksum,
            lat,
            dirty: false,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records one chunk, received by the writer at `received` and written
    /// after waiting `write_wait` ns for an IO permit.
    pub fn record(&mut self, t: &Trace, received: Instant, write_wait: u64) {
        let ns = |d: Duration| d.as_nanos() as u64;
        let n = self.stages;
        let transforms = n - usize::from(self.has_checksum);
        let e = &mut self.lat.entries;
        e[0].record(t.cpu);
        e[1].record(t.time);
        for i in 0..n {
            e[2 + i].record(if i < transforms {
                t.laps.stages[i]
            } else {
                t.laps.checksum
            });
        }
        e[n + 2].record(t.cpu_wait);
        e[n + 3].record(t.read_wait);
        e[n + 3].record(write_wait);
        e[n + 4].record(ns(t.dispatched.saturating_duration_since(t.queued)));
        e[n + 5].record(ns(received.saturating_duration_since(t.done)));
        self.dirty = true;
        if received >= self.next_publish {
            // Twice per interval: a tick then shows data at most about half
            // an interval old, whatever the phase between the two threads.
            self.publish(received);
        }
    }

    /// Records a chunk whose job ran on the calling thread as soon as it
    /// was read (the small-file paths): no queue and no wait; `read` bytes
    /// came in, `written` went out.
    pub fn record_inline(&mut self, cost: JobCost, read: u64, written: u64) {
        let trace = Trace {
            queued: cost.start,
            read_wait: 0,
            dispatched: cost.start,
            cpu_wait: 0,
            cpu: cost.cpu,
            time: cost.time,
            laps: cost.laps,
            done: cost.done,
        };
        self.record(&trace, cost.done, 0);
        self.metrics.note_read(read, 0);
        self.metrics.note_written(written);
    }

    fn publish(&mut self, now: Instant) {
        if !self.metrics.interval().is_zero() {
            self.next_publish = now + self.metrics.interval() / 2;
            self.metrics.publish(self.run, &self.lat);
        }
        self.dirty = false;
    }

    /// How long the writer may block before calling [`Recorder::idle`];
    /// `None`: no limit (nothing is ever published live).
    pub fn idle_after(&self) -> Option<Duration> {
        let interval = self.metrics.interval();
        (!interval.is_zero()).then_some(interval / 2)
    }

    /// The writer has waited [`Recorder::idle_after`] for the next chunk:
    /// publishes what it recorded since the last publication, so that a
    /// run that stalls (e.g. on a slow input) does not show stale numbers.
    pub fn idle(&mut self) {
        if self.dirty {
            self.publish(Instant::now());
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // At the end of the run, whatever its outcome.
        self.metrics.retire(self.run, &self.lat);
    }
}
