//! The CPU pool the pipelines of a process share: one rayon pool per thread
//! count, alive while any pipeline holds it. Fifty pipelines built with
//! the defaults run on one pool of one thread per core, not on fifty.
//!
//! Sharing is safe for the engine's invariant that CPU workers never block
//! (see `stream/worker.rs`): a job of one pipeline can only delay another's
//! by running, never by waiting, and each pipeline's CPU tokens still bound
//! how many of its jobs are queued at once.

use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, Result};

/// Pools by thread count; a dead entry is replaced on the next request.
static SHARED: Mutex<Vec<(usize, Weak<rayon::ThreadPool>)>> = Mutex::new(Vec::new());

/// The shared pool of `threads` threads, started on first use.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] if the pool's threads cannot be started.
pub(crate) fn shared(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    // A panic while the lock was held cannot leave the list inconsistent
    // (each step is one push or retain), so a poisoned lock is used as is.
    let mut pools = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|(_, pool)| pool.strong_count() > 0);
    if let Some(pool) = pools
        .iter()
        .find(|(n, _)| *n == threads)
        .and_then(|(_, p)| p.upgrade())
    {
        return Ok(pool);
    }
    let pool = Arc::new(start(threads)?);
    pools.push((threads, Arc::downgrade(&pool)));
    Ok(pool)
}

/// A pool of `threads` threads of its own.
pub(crate) fn start(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("syncpipe-cpu-{i}"))
        .build()
        .map_err(|e| Error::io(std::io::Error::other(e)).with_stage("starting the thread pool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_thread_count_shares_a_pool_while_it_is_held() {
        let a = shared(3).expect("pool");
        let b = shared(3).expect("pool");
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared(4).expect("pool");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.current_num_threads(), 4);
        let weak = Arc::downgrade(&a);
        drop((a, b));
        // Nobody holds the 3-thread pool: it is gone, and a new request
        // starts a new one.
        assert!(weak.upgrade().is_none());
        let d = shared(3).expect("pool");
        assert_eq!(d.current_num_threads(), 3);
    }
}
