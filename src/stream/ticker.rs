//! The ticker thread: every interval, a snapshot of the run for the
//! metrics' observer. It holds no channel of the stream, so it can never
//! hold up the shutdown cascade; it ends when its stop channel is dropped.

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::state::RunState;
use crate::metrics::Metrics;

/// The ticker's state, built before the stream's threads start.
pub(crate) struct Ticker<'s, 'g> {
    pub state: &'s RunState<'g>,
    pub metrics: &'s Metrics,
    /// Disconnected (never sent on) when the run's other threads are done.
    pub stop: Receiver<()>,
}

impl Ticker<'_, '_> {
    pub fn run(self) {
        while let Err(RecvTimeoutError::Timeout) = self.stop.recv_timeout(self.metrics.interval()) {
            self.metrics
                .tick(self.state.governor, self.state.buffers.stats());
        }
    }
}
