//! What the metrics know at one moment: the [`Snapshot`] that observers
//! get, its latency histograms and queue statistics.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

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
    /// checksum), no label: the worker thread's CPU time as the OS counts
    /// it (`CLOCK_THREAD_CPUTIME_ID`), so time the thread was not running
    /// (preempted, waiting for a page) is not in it, and the sum over all
    /// chunks never exceeds the process's CPU time.
    ChunkCpu,
    /// Wall time of one chunk's whole job, from its start on a pool thread
    /// to its end, no label: [`Family::ChunkCpu`] plus any time the thread
    /// was preempted or blocked (on a loaded machine, much more).
    ChunkTime,
    /// CPU time of one stage (or the checksum) on one chunk, measured as
    /// [`Family::ChunkCpu`] is (on the worker thread: work a stage hands
    /// to threads of its own is not counted); label: the stage name, e.g.
    /// `zstd:3`, `blake3`.
    StageCpu,
    /// Time one chunk waited for a permit; label `cpu` (dispatcher, one
    /// sample per chunk) or `io` (reader and writer, one sample each per
    /// chunk). An acquire that did not wait counts as 0.
    PermitWait,
    /// Time one chunk spent queued; label `jobs` (from the reader handing
    /// it over, a wait for room in a full channel included, to the
    /// dispatcher taking it) or `results` (done on the pool, waiting for
    /// the writer).
    QueueWait,
}

impl Family {
    /// The snake-case name used in JSON keys and Prometheus metric names.
    pub fn name(self) -> &'static str {
        match self {
            Family::ChunkCpu => "chunk_cpu",
            Family::ChunkTime => "chunk_time",
            Family::StageCpu => "stage_cpu",
            Family::PermitWait => "permit_wait",
            Family::QueueWait => "queue_wait",
        }
    }

    /// The Prometheus label key of this family (`None` for
    /// [`Family::ChunkCpu`] and [`Family::ChunkTime`]).
    pub fn label_key(self) -> Option<&'static str> {
        match self {
            Family::ChunkCpu | Family::ChunkTime => None,
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
    /// The stage, permit or queue; empty for [`Family::ChunkCpu`] and
    /// [`Family::ChunkTime`].
    pub label: String,
    /// The samples, in nanoseconds, 2 significant digits.
    pub histogram: Histogram<u64>,
    /// Exact sum of the samples, in nanoseconds.
    pub sum_ns: u64,
}

impl Latency {
    /// An empty histogram with the bounds and precision of the library's
    /// own (1 ns to 1 h, 2 significant digits): another engine that records
    /// into one reports percentiles comparable with the sync engine's.
    pub fn new(family: Family, label: &str) -> Latency {
        Latency {
            family,
            label: label.to_string(),
            histogram: Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG)
                .expect("constant histogram bounds are valid"),
            sum_ns: 0,
        }
    }

    /// Adds one sample (nanoseconds; above an hour counts as an hour).
    pub fn record(&mut self, ns: u64) {
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
pub(crate) struct Latencies {
    pub(crate) entries: Vec<Latency>,
}

impl Latencies {
    pub(crate) fn slot(&mut self, family: Family, label: &str) -> &mut Latency {
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

    pub(crate) fn merge(&mut self, other: &Latencies) {
        for l in &other.entries {
            self.slot(l.family, &l.label).merge(l);
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
/// [`Metrics::snapshot`](crate::metrics::Metrics::snapshot) returns.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since the [`Metrics`](crate::metrics::Metrics) were created.
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
    /// included), as in their [`Report::bytes_in`](crate::Report::bytes_in).
    pub bytes_in: u64,
    /// Exact bytes written by finished runs, as in [`Report::bytes_out`](crate::Report::bytes_out).
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
        crate::report::reuse_rate(self.buffers_reused, self.buffers_allocated)
    }
}
