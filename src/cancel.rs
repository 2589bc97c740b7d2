//! A cancellation token shared by every thread of a run.
//!
//! The library never installs signal handlers: a program that embeds it
//! decides what cancels a run (a signal, a timeout, a button) and calls
//! [`CancelToken::cancel`]. The `syncpipe` binary registers SIGINT and
//! SIGTERM (`signals.rs`) to set the token's flag.
//!
//! A cancel is seen at the run's checks; it cannot end a system call that
//! blocks (a `read` on an idle pipe, the `open` of a FIFO, a `write` into
//! a full pipe) or a key derivation. An embedder that must stop within a
//! bound anyway ends the process after a grace period and first calls
//! [`crate::output::remove_live_temps`], as the binary does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cheap, clonable cancellation token.
///
/// Setting it asks every thread of the runs that hold a clone to stop at its
/// next check: the reader stops reading, the dispatcher stops taking CPU
/// permits (governor waits poll it), the writer stops writing and the output's
/// temp file is removed. The binary sets it from SIGINT/SIGTERM handlers,
/// which is why the flag is a bare `Arc<AtomicBool>`: storing to an atomic is
/// async-signal-safe, and [`CancelToken::flag`] hands it to `signal-hook`.
///
/// What a cancel guarantees: the run returns [`crate::ErrorKind::Cancelled`]
/// promptly (a brotli chunk stops within one 256 KiB encoder block, see
/// [`crate::Stage::forward_cancellable`]; zstd chunks are one-shot calls
/// that finish, which bounds the drain by one chunk's time), every
/// governor permit is back when `run` returns, and a file output's temp file
/// is removed.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    parent: Option<Box<CancelToken>>,
}

impl CancelToken {
    /// A new token, not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Requests cancellation. Idempotent.
    pub fn cancel(&self) {
        // Release pairs with the Acquire in `is_cancelled`: whatever the
        // cancelling thread wrote before (e.g. the first error) is visible to
        // a thread that sees the flag. SeqCst would buy nothing more here.
        self.flag.store(true, Ordering::Release);
    }

    /// True once [`CancelToken::cancel`] was called (or the signal handler fired).
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire) || self.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }

    /// A token that is cancelled when it or `self` is. Each run gets a child
    /// of the caller's token: an error cancels that run only, while the
    /// caller's cancel (a signal) reaches every run.
    pub fn child(&self) -> CancelToken {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
            parent: Some(Box::new(self.clone())),
        }
    }

    /// The underlying flag, for registering with a signal handler.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_sees_parent_but_not_the_reverse() {
        let parent = CancelToken::new();
        let child = parent.child();
        child.cancel();
        assert!(!parent.is_cancelled());
        let child2 = parent.child();
        parent.cancel();
        assert!(child2.is_cancelled());
    }
}
