//! Metrics of runs: counters, gauges, latency histograms, and the observer
//! the library reports them to. The library never prints; a program that
//! wants a dashboard, JSON lines or Prometheus text renders [`Snapshot`]s.
//!
//! Where each number is recorded, and why nothing on the per-chunk path
//! takes a lock (see also `docs/design.md`, "Metrics"):
//!
//! - **Counters and gauges** are atomics updated with `Ordering::Relaxed`
//!   by the thread that owns the event (reader: bytes read and the jobs
//!   queue depth; dispatcher: the results queue depth; rayon workers:
//!   active workers; writer: chunks and bytes written).
//! - **Latencies** are measured where they happen and travel *with the
//!   chunk*: the reader stamps a chunk when it queues it, the dispatcher
//!   adds its CPU-permit wait, the rayon job adds its CPU time per stage
//!   (kept in a thread-local while the job runs), and the writer thread —
//!   which sees every chunk, in order — records them all into HdrHistograms
//!   that it alone owns. One owner, so no lock and no atomics per sample.
//! - **Publication** happens about twice per interval, not per chunk: the
//!   writer copies its histograms into the shared [`Metrics`] under a mutex
//!   (also when it has been idle for half an interval), and once per
//!   interval a ticker thread of the run builds a [`Snapshot`] and hands it
//!   to the [`Observer`]. At the end of a run the writer's histograms are
//!   merged into the totals.
//!
//! This file holds the shared [`Metrics`] and the observer API; the
//! per-chunk stopwatches and the writer's recorder are in `recorder.rs`,
//! the snapshot types in `snapshot.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::governor::Governor;
use crate::report::Report;
use crate::snapshot::Latencies;
pub use crate::snapshot::{Family, Latency, QueueStat, Snapshot};

/// Average and maximum depth of a bounded channel, sampled by its sender
/// right after each send (the depth an arriving item found, itself included).
#[derive(Debug, Default)]
struct QueueGauge {
    now: AtomicU64,
    sum: AtomicU64,
    samples: AtomicU64,
    max: AtomicU64,
}

impl QueueGauge {
    fn observe(&self, depth: usize) {
        // Relaxed: one sender thread per run writes these, the ticker only
        // reads them for display; no other data is published through them.
        let d = depth as u64;
        self.now.store(d, Ordering::Relaxed);
        self.sum.fetch_add(d, Ordering::Relaxed);
        self.samples.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(d, Ordering::Relaxed);
    }

    fn stat(&self, name: &'static str, capacity: u64) -> QueueStat {
        let samples = self.samples.load(Ordering::Relaxed);
        QueueStat {
            name,
            depth: self.now.load(Ordering::Relaxed),
            capacity,
            avg: if samples == 0 {
                0.0
            } else {
                self.sum.load(Ordering::Relaxed) as f64 / samples as f64
            },
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// What an [`Observer`] is told.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Sent every interval while a run is going on, from a thread of the run.
    Tick(&'a Snapshot),
    /// A run finished successfully; `snapshot` includes it.
    RunDone {
        /// The run's report.
        report: &'a Report,
        /// The metrics after the run.
        snapshot: &'a Snapshot,
    },
}

/// Receives metrics events. Called from threads of the run (the ticker for
/// [`Event::Tick`], the caller of the run for [`Event::RunDone`]); a slow
/// observer delays only the next tick, never a chunk. A panic in `observe`
/// during a run fails that run.
///
/// Implemented for closures:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use syncpipe::metrics::{Event, Metrics};
///
/// let metrics = Arc::new(Metrics::observed(Duration::from_millis(100), |e: &Event<'_>| {
///     if let Event::RunDone { snapshot, .. } = e {
///         assert_eq!(snapshot.files, 1);
///     }
/// }));
/// let pipeline = syncpipe::Pipeline::builder().metrics(metrics).build()?;
/// pipeline.run(&b"some bytes"[..], std::io::sink())?;
/// # Ok::<(), syncpipe::Error>(())
/// ```
pub trait Observer: Send + Sync {
    /// Handles one event.
    fn observe(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync> Observer for F {
    fn observe(&self, event: &Event<'_>) {
        self(event)
    }
}

/// The metrics of every run of the pipelines they are given to (see
/// [`crate::PipelineBuilder::metrics`]).
///
/// Shared through an `Arc`, like a [`Governor`]. Without an observer they
/// are only pulled with [`Metrics::snapshot`], which returns what the last
/// tick or the last finished run saw.
pub struct Metrics {
    start: Instant,
    interval: Duration,
    observer: Option<Box<dyn Observer>>,
    // Counters. Relaxed everywhere (see `note_*`), except `files`, whose
    // Release/Acquire pair orders it after the exact byte totals.
    files: AtomicU64,
    chunks: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    buffers_reused: AtomicU64,
    buffers_allocated: AtomicU64,
    active_workers: AtomicU64,
    jobs_queue: QueueGauge,
    results_queue: QueueGauge,
    queue_capacity: [AtomicU64; 2],
    /// Nanoseconds since `start` of the last tick, so that concurrent runs
    /// sharing these metrics tick once per interval between them.
    last_tick: AtomicU64,
    next_run: AtomicU64,
    /// Histograms of finished runs, merged.
    finished: Mutex<Latencies>,
    /// The latest copy published by each running run's writer.
    live: Mutex<Vec<(u64, Latencies)>>,
    latest: Mutex<Arc<Snapshot>>,
}

impl Metrics {
    /// Metrics without an observer, pulled with [`Metrics::snapshot`]
    /// (refreshed at the end of every run).
    pub fn new() -> Metrics {
        Metrics::build(Duration::ZERO, None)
    }

    /// Metrics that send `observer` an [`Event::Tick`] every `interval`
    /// while a run is going on (none when `interval` is zero) and an
    /// [`Event::RunDone`] after each successful run.
    pub fn observed(interval: Duration, observer: impl Observer + 'static) -> Metrics {
        Metrics::build(interval, Some(Box::new(observer)))
    }

    fn build(interval: Duration, observer: Option<Box<dyn Observer>>) -> Metrics {
        Metrics {
            start: Instant::now(),
            interval,
            observer,
            files: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            buffers_reused: AtomicU64::new(0),
            buffers_allocated: AtomicU64::new(0),
            active_workers: AtomicU64::new(0),
            jobs_queue: QueueGauge::default(),
            results_queue: QueueGauge::default(),
            queue_capacity: [AtomicU64::new(0), AtomicU64::new(0)],
            last_tick: AtomicU64::new(0),
            next_run: AtomicU64::new(0),
            finished: Mutex::new(Latencies::default()),
            live: Mutex::new(Vec::new()),
            latest: Mutex::new(Arc::new(Snapshot::default())),
        }
    }

    /// The interval between ticks (zero: no ticks).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// True if runs should start a ticker thread.
    pub(crate) fn ticks(&self) -> bool {
        self.observer.is_some() && !self.interval.is_zero()
    }

    /// The latest snapshot: of the last tick, or of the end of the last
    /// finished run.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.latest.lock())
    }

    // ----- recording, called by the engine ---------------------------------
    //
    // Every counter below is Relaxed. That is enough because each is a
    // monotonic tally read only for display: no thread reads a counter and
    // then relies on other memory written before the increment. Atomicity
    // alone guarantees that no increment is lost; the final values are read
    // after the run's threads are joined, and `join` is itself the
    // synchronisation that makes them exact.

    pub(crate) fn note_read(&self, bytes: u64, queue_depth: usize) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        self.jobs_queue.observe(queue_depth);
    }

    pub(crate) fn note_dispatched(&self, queue_depth: usize) {
        self.results_queue.observe(queue_depth);
    }

    pub(crate) fn note_written(&self, bytes: u64) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn worker_started(&self) {
        self.active_workers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn worker_finished(&self) {
        self.active_workers.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn note_capacities(&self, jobs: usize, results: usize) {
        self.queue_capacity[0].store(jobs as u64, Ordering::Relaxed);
        self.queue_capacity[1].store(results as u64, Ordering::Relaxed);
    }

    /// A number for a new run, unique within these metrics.
    pub(crate) fn next_run_id(&self) -> u64 {
        // Relaxed: a unique number is all that is needed.
        self.next_run.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes `lat` the latest copy of run `run`'s histograms (called by its
    /// writer about twice per interval).
    pub(crate) fn publish(&self, run: u64, lat: &Latencies) {
        let mut live = self.live.lock();
        match live.iter_mut().find(|(r, _)| *r == run) {
            Some((_, l)) => l.clone_from(lat),
            None => live.push((run, lat.clone())),
        }
    }

    /// Merges a run's histograms into the totals and withdraws its live
    /// copy, under both locks (the order `capture` takes them in), so no
    /// snapshot counts the run twice or misses it.
    pub(crate) fn retire(&self, run: u64, lat: &Latencies) {
        let mut finished = self.finished.lock();
        let mut live = self.live.lock();
        finished.merge(lat);
        live.retain(|(r, _)| *r != run);
    }

    /// Sends a tick unless another run sharing these metrics sent one less
    /// than half an interval ago. `buffers` is the (reused, allocated) count
    /// of the calling run's pool so far.
    pub(crate) fn tick(&self, governor: &Governor, buffers: (u64, u64)) {
        let Some(observer) = &self.observer else {
            return;
        };
        let now = self.start.elapsed().as_nanos() as u64;
        let last = self.last_tick.load(Ordering::Relaxed);
        let half = self.interval.as_nanos() as u64 / 2;
        // A Relaxed compare-exchange is enough: it only elects one ticker
        // per interval; the data the tick shows is read under locks and
        // from counters that need no ordering.
        if now < last.saturating_add(half)
            || self
                .last_tick
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let snap = self.refresh(governor, buffers);
        observer.observe(&Event::Tick(&snap));
    }

    /// Adds a finished run's exact totals, refreshes the snapshot and tells
    /// the observer.
    pub(crate) fn run_done(&self, governor: &Governor, report: &Report) {
        self.bytes_in.fetch_add(report.bytes_in, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(report.bytes_out, Ordering::Relaxed);
        self.buffers_reused
            .fetch_add(report.buffers_reused, Ordering::Relaxed);
        self.buffers_allocated
            .fetch_add(report.buffers_allocated, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `capture`. A snapshot that
        // sees this run counted in `files` also sees its bytes above, so a
        // reader never gets "3 files done" with the bytes of only 2. (The
        // only counter that needs more than Relaxed.)
        self.files.fetch_add(1, Ordering::Release);
        let snap = self.refresh(governor, (0, 0));
        if let Some(observer) = &self.observer {
            observer.observe(&Event::RunDone {
                report,
                snapshot: &snap,
            });
        }
    }

    /// Refreshes the snapshot after a run that failed, or at the end of a
    /// batch, once its threads are joined: no totals are added, but the
    /// gauges — permits, workers, buffer bytes — are read again, so a final
    /// summary after an error or a cancel shows the governor as the run
    /// left it, not as the last tick saw it mid-run.
    pub(crate) fn run_failed(&self, governor: &Governor) {
        self.refresh(governor, (0, 0));
    }

    /// Captures a snapshot and makes it the latest. The capture happens
    /// under the `latest` lock on purpose: publishers then store in capture
    /// order, so the stored snapshot is always the newest. (Without it, two
    /// runs of a batch finishing at once could store their snapshots in the
    /// opposite order and leave the older one as the final summary: seen
    /// as 40 of 41 files done.) Off the per-chunk path: once per run and
    /// per tick.
    fn refresh(&self, governor: &Governor, live_buffers: (u64, u64)) -> Arc<Snapshot> {
        let mut latest = self.latest.lock();
        let snap = Arc::new(self.capture(governor, live_buffers));
        *latest = Arc::clone(&snap);
        snap
    }

    /// Builds a snapshot: counters, the governor's gauges, and the finished
    /// histograms merged with the latest copies of the running ones.
    fn capture(&self, governor: &Governor, live_buffers: (u64, u64)) -> Snapshot {
        // Acquire first (see `run_done`), then the byte totals.
        let files = self.files.load(Ordering::Acquire);
        let mut latencies = {
            // Both locks at once, in the order `Recorder::drop` takes them,
            // so a run that ends meanwhile is counted exactly once.
            let finished = self.finished.lock();
            let live = self.live.lock();
            let mut all = finished.clone();
            for (_, l) in live.iter() {
                all.merge(l);
            }
            all.entries
        };
        latencies.retain(|l| l.count() > 0);
        // Stable: within a family, stages keep their pipeline order.
        latencies.sort_by_key(|l| l.family as u8);
        let r = Ordering::Relaxed;
        Snapshot {
            elapsed: self.start.elapsed(),
            files,
            chunks: self.chunks.load(r),
            bytes_read: self.bytes_read.load(r),
            bytes_written: self.bytes_written.load(r),
            bytes_in: self.bytes_in.load(r),
            bytes_out: self.bytes_out.load(r),
            cpu_permits: (
                governor.cpu.available() as u64,
                governor.cpu.capacity() as u64,
            ),
            io_permits: (
                governor.io.available() as u64,
                governor.io.capacity() as u64,
            ),
            active_workers: self.active_workers.load(r),
            buffer_bytes: governor.memory.current(),
            buffer_bytes_peak: governor.memory.peak(),
            buffers_reused: self.buffers_reused.load(r) + live_buffers.0,
            buffers_allocated: self.buffers_allocated.load(r) + live_buffers.1,
            queues: vec![
                self.jobs_queue.stat("jobs", self.queue_capacity[0].load(r)),
                self.results_queue
                    .stat("results", self.queue_capacity[1].load(r)),
            ],
            latencies,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("interval", &self.interval)
            .field("observer", &self.observer.is_some())
            .field("files", &self.files.load(Ordering::Relaxed))
            .field("chunks", &self.chunks.load(Ordering::Relaxed))
            .finish()
    }
}
