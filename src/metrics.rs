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
//! - **Publication** happens once per interval, not per chunk: the writer
//!   copies its histograms into the shared [`Metrics`] under a mutex, and a
//!   ticker thread of the run builds a [`Snapshot`] and hands it to the
//!   [`Observer`]. At the end of a run the writer's histograms are merged
//!   into the totals.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::format::MAX_STAGES;
use crate::governor::Governor;
use crate::report::Report;

/// Largest latency the histograms resolve: one hour in nanoseconds; longer
/// samples are clamped to it.
const HIGHEST_NS: u64 = 3_600_000_000_000;
/// Significant digits of the histograms: 2 keeps every percentile within
/// 1% of the true value in about 35 KiB per histogram (3 digits would need
/// about 250 KiB each, copied at every interval).
const SIGFIG: u8 = 2;

/// What a histogram measures. Together with a label (the stage, the permit
/// or the queue) it names one histogram of a [`Snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// CPU time of one chunk's whole job on the pool (all stages and the
    /// checksum), no label.
    ChunkCpu,
    /// CPU time of one stage (or the checksum) on one chunk; label: the
    /// stage name, e.g. `zstd:3`, `blake3`.
    StageCpu,
    /// Time one chunk waited for a permit; label `cpu` (dispatcher, one
    /// sample per chunk) or `io` (reader and writer, one sample each per
    /// chunk). An acquire that did not wait counts as 0.
    PermitWait,
    /// Time one chunk spent queued; label `jobs` (read, waiting for the
    /// dispatcher) or `results` (done on the pool, waiting for the writer).
    QueueWait,
}

impl Family {
    /// The snake-case name used in JSON keys and Prometheus metric names.
    pub fn name(self) -> &'static str {
        match self {
            Family::ChunkCpu => "chunk_cpu",
            Family::StageCpu => "stage_cpu",
            Family::PermitWait => "permit_wait",
            Family::QueueWait => "queue_wait",
        }
    }

    /// The Prometheus label key of this family (`None` for [`Family::ChunkCpu`]).
    pub fn label_key(self) -> Option<&'static str> {
        match self {
            Family::ChunkCpu => None,
            Family::StageCpu => Some("stage"),
            Family::PermitWait => Some("permit"),
            Family::QueueWait => Some("queue"),
        }
    }
}

/// One latency histogram (nanoseconds) with the exact sum of its samples.
#[derive(Clone)]
pub struct Latency {
    /// What it measures.
    pub family: Family,
    /// The stage, permit or queue; empty for [`Family::ChunkCpu`].
    pub label: String,
    /// The samples, in nanoseconds, 2 significant digits.
    pub histogram: Histogram<u64>,
    /// Exact sum of the samples, in nanoseconds.
    pub sum_ns: u64,
}

impl Latency {
    fn new(family: Family, label: &str) -> Latency {
        Latency {
            family,
            label: label.to_string(),
            histogram: Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG)
                .expect("constant histogram bounds are valid"),
            sum_ns: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        self.histogram.saturating_record(ns);
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail; a failure would
        // only lose samples of a statistic.
        let _ = self.histogram.add(&other.histogram);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// `family` or `family.label`: the key of this histogram in JSON.
    pub fn key(&self) -> String {
        if self.label.is_empty() {
            self.family.name().to_string()
        } else {
            format!("{}.{}", self.family.name(), self.label)
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at quantile `q` (0.0–1.0) in nanoseconds; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.histogram.is_empty() {
            0
        } else {
            self.histogram.value_at_quantile(q)
        }
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latency")
            .field("key", &self.key())
            .field("count", &self.count())
            .field("p50_ns", &self.quantile_ns(0.5))
            .field("p99_ns", &self.quantile_ns(0.99))
            .finish()
    }
}

/// A set of latency histograms, found by family and label.
#[derive(Clone, Debug, Default)]
struct Latencies {
    entries: Vec<Latency>,
}

impl Latencies {
    fn slot(&mut self, family: Family, label: &str) -> &mut Latency {
        let at = match self
            .entries
            .iter()
            .position(|l| l.family == family && l.label == label)
        {
            Some(i) => i,
            None => {
                self.entries.push(Latency::new(family, label));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }

    fn merge(&mut self, other: &Latencies) {
        for l in &other.entries {
            self.slot(l.family, &l.label).merge(l);
        }
    }
}

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

/// Depth statistics of one of a run's bounded channels.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStat {
    /// `jobs` (reader → dispatcher) or `results` (pool → writer, in order).
    pub name: &'static str,
    /// Depth seen by the latest send.
    pub depth: u64,
    /// The channel's capacity (of the latest run).
    pub capacity: u64,
    /// Average depth seen by sends.
    pub avg: f64,
    /// Largest depth seen by a send.
    pub max: u64,
}

/// Everything the metrics know at one moment: what observers get and what
/// [`Metrics::snapshot`] returns.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since the [`Metrics`] were created.
    pub elapsed: Duration,
    /// Runs (files) finished successfully.
    pub files: u64,
    /// Chunks written (all runs, the running ones included).
    pub chunks: u64,
    /// Input bytes handed over by the reader in chunks (process: original
    /// bytes; restore: record payloads), the running runs included.
    pub bytes_read: u64,
    /// Chunk bytes handed to the output by the writer (process: framed
    /// records; restore: original bytes), the running runs included.
    pub bytes_written: u64,
    /// Exact bytes read by finished runs (container header and trailer
    /// included), as in their [`Report::bytes_in`].
    pub bytes_in: u64,
    /// Exact bytes written by finished runs, as in [`Report::bytes_out`].
    pub bytes_out: u64,
    /// CPU permits free now, and the capacity.
    pub cpu_permits: (u64, u64),
    /// IO permits free now, and the capacity.
    pub io_permits: (u64, u64),
    /// Chunk jobs running on the pool now.
    pub active_workers: u64,
    /// Bytes of chunk data held in buffers now (the governor's gauge).
    pub buffer_bytes: u64,
    /// Most bytes of chunk data ever held at once.
    pub buffer_bytes_peak: u64,
    /// Buffers taken from the pools that were reused.
    pub buffers_reused: u64,
    /// Buffers taken from the pools that had to be allocated.
    pub buffers_allocated: u64,
    /// The two channels of a run.
    pub queues: Vec<QueueStat>,
    /// Every latency histogram that has samples.
    pub latencies: Vec<Latency>,
}

impl Snapshot {
    /// The histogram of `family` with `label` (`""` for none), if it has
    /// samples.
    pub fn latency(&self, family: Family, label: &str) -> Option<&Latency> {
        self.latencies
            .iter()
            .find(|l| l.family == family && l.label == label)
    }

    /// Share of reused buffers among all buffers taken, 0.0–1.0.
    pub fn reuse_rate(&self) -> f64 {
        let total = self.buffers_reused + self.buffers_allocated;
        if total == 0 {
            0.0
        } else {
            self.buffers_reused as f64 / total as f64
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

    /// A recorder for one run's writer thread.
    pub(crate) fn recorder(self: &Arc<Self>, stages: Vec<String>) -> Recorder {
        // Relaxed: a unique number is all that is needed.
        let run = self.next_run.fetch_add(1, Ordering::Relaxed);
        Recorder::new(Arc::clone(self), run, stages)
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
        let snap = Arc::new(self.capture(governor, buffers));
        *self.latest.lock() = Arc::clone(&snap);
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
        let snap = Arc::new(self.capture(governor, (0, 0)));
        *self.latest.lock() = Arc::clone(&snap);
        if let Some(observer) = &self.observer {
            observer.observe(&Event::RunDone {
                report,
                snapshot: &snap,
            });
        }
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

// ----- per-chunk timing --------------------------------------------------------

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
    fn new(metrics: Arc<Metrics>, run: u64, stages: Vec<String>) -> Recorder {
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
        if !self.metrics.interval.is_zero() && received >= self.next_publish {
            // Twice per interval: a tick then shows data at most about half
            // an interval old, whatever the phase between the two threads.
            self.next_publish = received + self.metrics.interval / 2;
            self.publish();
        }
    }

    /// Copies the histograms where ticks can see them (once per interval).
    fn publish(&self) {
        let mut live = self.metrics.live.lock();
        match live.iter_mut().find(|(r, _)| *r == self.run) {
            Some((_, l)) => l.clone_from(&self.lat),
            None => live.push((self.run, self.lat.clone())),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Merge and withdraw the live copy under both locks (the order
        // `capture` takes them in), so no snapshot counts this run twice or
        // misses it.
        let mut finished = self.metrics.finished.lock();
        let mut live = self.metrics.live.lock();
        finished.merge(&self.lat);
        live.retain(|(r, _)| *r != self.run);
    }
}
