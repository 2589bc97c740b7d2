//! Per-chunk timing: stopwatches for stages and permit waits (kept in
//! thread-locals while a thread works on a chunk), the [`Trace`] that
//! travels with each chunk, and the writer thread's [`Recorder`], which
//! alone turns them into histograms. See `metrics.rs` for the overview.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::MAX_STAGES;
use crate::metrics::Metrics;
use crate::snapshot::{Family, Latencies};

/// Which permit a wait was for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Permit {
    Cpu = 0,
    Io = 1,
}

/// Time one chunk's job spent in each stage and in the checksum.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Laps {
    pub stages: [u64; MAX_STAGES],
    pub checksum: u64,
}

thread_local! {
    /// True while a chunk job with metrics runs on this thread.
    static TIMING: Cell<bool> = const { Cell::new(false) };
    static LAPS: Cell<Laps> = const { Cell::new(Laps { stages: [0; MAX_STAGES], checksum: 0 }) };
    /// Permit waits of this thread not yet attached to a chunk.
    static WAITS: Cell<[u64; 2]> = const { Cell::new([0; 2]) };
}

/// Adds a permit wait to this thread's tally (called by the governor on
/// the slow path only: an acquire that does not wait costs nothing here).
pub(crate) fn note_wait(permit: Permit, wait: Duration) {
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

/// A stopwatch for one stage of one chunk; inert unless the job is timed.
pub(crate) struct Lap(Option<Instant>);

impl Lap {
    pub fn start() -> Lap {
        Lap(TIMING.with(Cell::get).then(Instant::now))
    }

    /// Adds the elapsed time to stage `i`.
    pub fn stage(self, i: usize) {
        if let Some(t) = self.0 {
            let ns = t.elapsed().as_nanos() as u64;
            LAPS.with(|l| {
                let mut v = l.get();
                if let Some(s) = v.stages.get_mut(i) {
                    *s += ns;
                }
                l.set(v);
            });
        }
    }

    /// Adds the elapsed time to the checksum.
    pub fn checksum(self) {
        if let Some(t) = self.0 {
            let ns = t.elapsed().as_nanos() as u64;
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
    pub cpu: u64,
    pub laps: Laps,
    pub done: Instant,
}

/// A run's histograms, owned by its writer thread: recording is a plain
/// `&mut` update, no lock, no atomic. Published every interval, merged into
/// the totals when dropped (at the end of the run, whatever its outcome).
pub(crate) struct Recorder {
    metrics: Arc<Metrics>,
    run: u64,
    /// Stage names, then the checksum's (if any) last.
    stages: Vec<String>,
    has_checksum: bool,
    lat: Latencies,
    next_publish: Instant,
}

impl Recorder {
    pub(crate) fn new(metrics: Arc<Metrics>, run: u64, stages: Vec<String>) -> Recorder {
        Recorder {
            // The first chunk publishes at once, so that the first tick
            // already shows percentiles.
            next_publish: Instant::now(),
            metrics,
            run,
            has_checksum: false,
            stages,
            lat: Latencies::default(),
        }
    }

    /// Labels the checksum lap (the last of `stages` given to `new`).
    pub fn with_checksum(mut self, yes: bool) -> Recorder {
        self.has_checksum = yes;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records one chunk, received by the writer at `received` and written
    /// after waiting `write_wait` ns for an IO permit.
    pub fn record(&mut self, t: &Trace, received: Instant, write_wait: u64) {
        let ns = |d: Duration| d.as_nanos() as u64;
        self.lat.slot(Family::ChunkCpu, "").record(t.cpu);
        let transforms = self.stages.len() - usize::from(self.has_checksum);
        for (i, name) in self.stages.iter().enumerate() {
            let v = if i < transforms {
                t.laps.stages[i]
            } else {
                t.laps.checksum
            };
            self.lat.slot(Family::StageCpu, name).record(v);
        }
        self.lat.slot(Family::PermitWait, "cpu").record(t.cpu_wait);
        let io = self.lat.slot(Family::PermitWait, "io");
        io.record(t.read_wait);
        io.record(write_wait);
        self.lat
            .slot(Family::QueueWait, "jobs")
            .record(ns(t.dispatched.saturating_duration_since(t.queued)));
        self.lat
            .slot(Family::QueueWait, "results")
            .record(ns(received.saturating_duration_since(t.done)));
        let interval = self.metrics.interval();
        if !interval.is_zero() && received >= self.next_publish {
            // Twice per interval: a tick then shows data at most about half
            // an interval old, whatever the phase between the two threads.
            self.next_publish = received + interval / 2;
            self.metrics.publish(self.run, &self.lat);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // At the end of the run, whatever its outcome.
        self.metrics.retire(self.run, &self.lat);
    }
}
