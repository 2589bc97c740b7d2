//! A pipeline's accounting of its runs: each run's state, the count of runs
//! in progress (the last to end on an unshared governor checks that every
//! permit is back), the memory gauge settled after a run, and the report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::chunk::ChainStage;
use crate::cipher::CipherKind;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pool::BufferPool;
use crate::recorder::Recorder;
use crate::report::Report;
use crate::stages::ChecksumKind;
use crate::stream::RunState;

impl Pipeline {
    /// A run's state; `(depth, in_flight)` is its channel depth and the
    /// chunk jobs it may have in flight.
    pub(crate) fn new_state(
        &self,
        chunk_size: usize,
        (depth, in_flight): (usize, usize),
        chain: &[ChainStage],
        cipher: Option<CipherKind>,
        checksum: Option<ChecksumKind>,
    ) -> RunState<'_> {
        // Enough idle buffers to cover the memory bound (see docs/design.md):
        // beyond that, returned buffers are simply freed.
        let max_free = 2 * depth + 2 * in_flight + 8;
        RunState::new(
            &self.inner.governor,
            self.inner.cancel.child(),
            // New buffers reserve at most the default chunk size: the
            // header's size is only an upper bound (4 MiB for a hill-climbed
            // container, up to 64 MiB in a hostile one), and a buffer grows
            // to what its chunk really holds the first time it is filled.
            BufferPool::new(max_free, chunk_size.min(crate::config::DEFAULT_CHUNK_SIZE)),
        )
        .observed(
            self.inner.metrics.clone(),
            // The cipher is timed as one more stage after the transforms.
            chain
                .iter()
                .map(|s| s.desc.name.clone())
                .chain(cipher.map(|c| c.name().to_string())),
            checksum.map(|c| c.name()),
        )
    }

    /// A recorder for a run that encodes its chunks on the calling thread
    /// (the small-file path), with the stage labels a streamed run's
    /// writer uses; `None` without metrics.
    pub(crate) fn recorder(&self) -> Option<Recorder> {
        let cfg = &self.inner.config;
        let stages = self
            .inner
            .chain
            .iter()
            .map(|s| s.desc.name.clone())
            .chain(cfg.cipher.map(|c| c.name().to_string()));
        self.metrics_recorder(stages, cfg.checksum)
    }

    /// A recorder for a run on the calling thread whose transform stages
    /// (the cipher last) are labelled `stages` and whose checksum is
    /// `checksum`: a restore's come from the container's header. `None`
    /// without metrics.
    pub(crate) fn metrics_recorder(
        &self,
        stages: impl Iterator<Item = String>,
        checksum: Option<crate::stages::ChecksumKind>,
    ) -> Option<Recorder> {
        let metrics = self.inner.metrics.as_ref()?;
        let labels = stages
            .chain(checksum.map(|c| c.name().to_string()))
            .collect();
        Some(Recorder::new(
            Arc::clone(metrics),
            labels,
            checksum.is_some(),
        ))
    }

    /// Tells the metrics (if any) that a run succeeded. An observer that
    /// panics here fails the run, as a panic during the run does, instead
    /// of unwinding into the caller (or into a batch's committer thread,
    /// whose scheduler would then wait for results that never come).
    pub(crate) fn run_done(&self, report: &Report) -> Result<()> {
        if let Some(m) = &self.inner.metrics {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                m.run_done(&self.inner.governor, report)
            }))
            .map_err(|_| {
                Error::new(
                    crate::error::ErrorKind::Panic,
                    "the metrics observer panicked at the end of the run",
                )
            })?;
        }
        Ok(())
    }

    /// After a run's threads are joined (any outcome): chunk buffers dropped
    /// on an error path were never counted as written, so take them off the
    /// shared gauge.
    pub(crate) fn settle(&self, state: &RunState<'_>) {
        self.inner
            .governor
            .memory
            .sub(state.memory.current() as usize);
    }

    /// Counts a run as started until the returned guard drops, at the very
    /// end of the run: after the writer's final flush, which takes an IO
    /// permit of its own. (Leaving at `settle`, before that flush, let a
    /// concurrent run on the same pipeline find that permit out and fail
    /// the leak check: `examples/whole_file.rs`, which runs one pipeline
    /// on several threads at once, hit it.)
    pub(crate) fn begin_run(&self) -> ActiveRun<'_> {
        self.enter();
        ActiveRun(self)
    }

    /// After a failed run or any batch (its threads joined): the metrics'
    /// gauges are read again (see [`Metrics::run_failed`]).
    pub(crate) fn failed(&self) {
        if let Some(m) = &self.inner.metrics {
            m.run_failed(&self.inner.governor);
        }
    }

    /// Counts a run (or a batch) of this pipeline as started.
    pub(crate) fn enter(&self) {
        // AcqRel on both sides: the last run to leave sees every permit the
        // others returned before they left.
        self.inner.active.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a run as ended; the last one to end on an unshared governor
    /// checks that every permit is back.
    pub(crate) fn leave(&self) {
        let before = self.inner.active.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(
            self.inner.shared_governor || before > 1 || self.inner.governor.all_returned(),
            "permits leaked: {:?}",
            self.inner.governor
        );
    }

    pub(crate) fn report(&self, state: &RunState<'_>, start: Instant) -> Report {
        let (reused, fresh) = state.buffers.stats();
        Report {
            elapsed: start.elapsed(),
            buffers_reused: reused,
            buffers_allocated: fresh,
            peak_chunk_bytes: state.memory.peak(),
            cpu_waits: self.inner.governor.cpu.wait_stats(),
            thread_cpu: state.thread_cpu(),
            ..Report::default()
        }
    }
}

/// A run counted as active on its pipeline (see `Pipeline::begin_run`);
/// dropping it ends the count and, on an unshared governor, checks that
/// every permit is back.
pub(crate) struct ActiveRun<'p>(&'p Pipeline);

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
