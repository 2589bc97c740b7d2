//! The state the threads of one stream share: governor, cancel token,
//! buffer pool, the run's memory gauge and its first error. Built before
//! the threads start and borrowed by each of them (`std::thread::scope`),
//! so nothing in it needs an `Arc`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::cancel::CancelToken;
use crate::error::{Error, ErrorKind, Result};
use crate::governor::{Governor, Lease, MemoryGauge};
use crate::metrics::Metrics;
use crate::pool::BufferPool;
use crate::recorder::{self, Permit, Recorder};
use crate::report::ThreadCpu;

/// State shared by the threads of one run.
pub(crate) struct RunState<'a> {
    pub governor: &'a Governor,
    pub cancel: CancelToken,
    pub buffers: BufferPool,
    /// Chunk bytes alive in this run (the governor's gauge covers all runs).
    pub memory: MemoryGauge,
    error: Mutex<FirstError>,
    /// Where this run reports (none: nothing is timed or counted).
    metrics: Option<Arc<Metrics>>,
    /// Histogram labels of the stages, the checksum's last.
    labels: Vec<String>,
    has_checksum: bool,
    /// Chunk jobs in flight at most, besides the CPU tokens (a restore of
    /// large chunks takes fewer, to stay within its memory limit).
    pub in_flight: usize,
    /// CPU time of the serial threads, each added as its thread ends.
    thread_cpu: Mutex<ThreadCpu>,
}

/// A serial thread of a run, for [`RunState::note_thread_cpu`].
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Reader,
    Hasher,
    Dispatcher,
    Writer,
    Ticker,
}

impl Role {
    /// The name an error or panic of the thread is reported under.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Hasher => "hasher",
            Role::Dispatcher => "dispatcher",
            Role::Writer => "writer",
            Role::Ticker => "metrics",
        }
    }
}

impl<'a> RunState<'a> {
    pub fn new(governor: &'a Governor, cancel: CancelToken, buffers: BufferPool) -> RunState<'a> {
        RunState {
            governor,
            cancel,
            buffers,
            memory: MemoryGauge::default(),
            error: Mutex::new(FirstError::default()),
            metrics: None,
            labels: Vec::new(),
            has_checksum: false,
            in_flight: usize::MAX,
            thread_cpu: Mutex::new(ThreadCpu::default()),
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

    /// The metrics this run reports to, if any.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The writer thread's recorder, if this run reports metrics.
    pub fn recorder(&self) -> Option<Recorder> {
        self.metrics
            .as_ref()
            .map(|m| Recorder::new(Arc::clone(m), self.labels.clone(), self.has_checksum))
    }

    /// An IO permit for one read or write of this run; its wait goes into
    /// the chunk's timings.
    pub fn io(&self) -> Result<Lease<'a>> {
        recorder::lease(&self.governor.io, Permit::Io, &self.cancel)
    }

    /// A CPU permit for one chunk job of this run.
    pub fn cpu(&self) -> Result<Lease<'a>> {
        recorder::lease(&self.governor.cpu, Permit::Cpu, &self.cancel)
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
    ///
    /// One race is left to settle here: a thread that fails drops its
    /// channel ends as its body returns, just before its error reaches this
    /// call, so a neighbour can meet the disconnection and record
    /// "cancelled" first (a writer's broken pipe would then exit 130). A
    /// "cancelled" recorded while the token was still clear came from such
    /// a disconnection, not from a cancel, and the real error replaces it.
    pub fn fail(&self, err: Error) {
        {
            let mut first = self.error.lock();
            let cancelled = err.kind() == ErrorKind::Cancelled;
            let replace = match &first.error {
                None => true,
                Some(_) => first.from_disconnection && !cancelled,
            };
            if replace {
                first.from_disconnection = cancelled && !self.cancel.is_cancelled();
                first.error = Some(err);
            }
        }
        self.cancel.cancel();
    }

    /// Adds the calling thread's CPU time so far to `role`'s; called by the
    /// thread as it ends (a thread's clock cannot be read from another).
    pub fn note_thread_cpu(&self, role: Role) {
        let cpu = Duration::from_nanos(recorder::thread_cpu_ns());
        let mut t = self.thread_cpu.lock();
        match role {
            Role::Reader => t.reader += cpu,
            Role::Hasher => t.hasher += cpu,
            Role::Dispatcher => t.dispatcher += cpu,
            Role::Writer => t.writer += cpu,
            // Not part of the data path: reading counters and copying
            // histograms is not a serial cost of the run's bytes.
            Role::Ticker => {}
        }
    }

    /// The serial threads' CPU time, once they have all ended.
    pub fn thread_cpu(&self) -> ThreadCpu {
        *self.thread_cpu.lock()
    }

    /// The first error of the run, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.lock().error.take()
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

/// The error a run ends with.
#[derive(Default)]
struct FirstError {
    error: Option<Error>,
    /// `error` is a "cancelled" met at a closed channel before any cancel.
    from_disconnection: bool,
}
